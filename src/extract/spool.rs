//! A page's series between the response and the transform stage. A page is handed on only once
//! it has completely succeeded (a failed attempt's series must not reach the tables), so its
//! series wait here; past [`MEMORY_POINTS`] they go to anonymous temporary files, which keeps
//! memory bounded whatever the size of a request.
//!
//! On disk a page is two files: the series' headers (metric, tags, where the points are), read
//! once when the page is handed over, and their points, read when they are written out. A
//! series on a regular grid (every series OpenTSDB downsamples without gaps) stores its values
//! only: its timestamps are its first one and a step. So does a series on a grid with a few gaps
//! (what raw vScope data is: a VM's minute is missing now and then), whose header lists where
//! the grid breaks. A series whose values are all hundredths
//! (what vScope serves) stores each as its three-byte key ([`cents`]) instead of a double's eight.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use super::ParsedPoints;
use crate::tsdb::cents::{self, Values, ValuesSlice};
use crate::tsdb::{OwnedSeries, Series, SeriesSink};

/// Points held in memory per page before spooling to disk: 1 MiB of (ts, value), so the pages
/// in flight together stay a small part of the memory budget.
const MEMORY_POINTS: usize = 1 << 16;

/// Read buffer of a spool's headers.
const IO_BUFFER: usize = 64 << 10;

/// A series on a grid with gaps keeps its timestamps out of the points file while it has at
/// most one break in this many points; its header lists them (16 bytes each), and each break
/// starts another run of the series in the table.
const MIN_BREAK_SPACING: usize = 64;

/// Points gathered before they are written to a spool's points file: large writes, and small
/// enough that the pages waiting for their hand-over hold little.
const POINTS_BUFFER: usize = 256 << 10;

/// What [`Spool::hand_over`] gives for each series of a page that overflowed to disk: the
/// points stay in the page's points file (anonymous, freed with its last handle), which lives
/// as long as something holds it.
pub trait SpoolSink: SeriesSink {
    /// `series` has no points (its timestamps are `times`, its values at `at` in `file`).
    fn spooled(
        &mut self,
        series: Series<'_>,
        times: Times<'_>,
        file: &Arc<File>,
        at: SpooledPoints,
    );

    /// Said once before the spooled series: how many there are, for the sink to make room.
    fn expect(&mut self, _series: usize) {}
}

/// Where a spooled series' timestamps are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpooledTs {
    /// Not stored: the `k`-th point's is the first one plus `k × step`.
    Grid { step: i64 },
    /// Not stored: a grid of `step` with breaks, where a point is not one step after the one
    /// before it; the header lists them ([`Times::Grid`]). Only a stretch without a break
    /// ([`Times::stretches`]) is read at once: its first timestamp plus `k × step`.
    Broken { step: i64 },
    /// Eight little-endian bytes each, from this offset.
    At(u64),
}

/// A series' timestamps as handed over: listed, or a grid's without them in memory (a day of
/// 1,000 VMs is 18 million timestamps that the table would only look at to find where days
/// begin).
#[derive(Debug, Clone, Copy)]
pub enum Times<'a> {
    /// Every timestamp, ascending.
    Listed(&'a [i64]),
    /// `n` points `step` apart from `first`, but at each break (the index of the point after
    /// it and that point's timestamp, ascending), where the grid starts again.
    Grid {
        first: i64,
        step: i64,
        n: usize,
        breaks: &'a [(usize, i64)],
    },
}

impl Times<'_> {
    pub fn len(&self) -> usize {
        match *self {
            Times::Listed(ts) => ts.len(),
            Times::Grid { n, .. } => n,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `i`-th timestamp.
    pub fn get(&self, i: usize) -> i64 {
        match *self {
            Times::Listed(ts) => ts[i],
            Times::Grid {
                first,
                step,
                breaks,
                ..
            } => {
                let k = breaks.partition_point(|&(at, _)| at <= i);
                let (at, t) = k.checked_sub(1).map_or((0, first), |k| breaks[k]);
                // Wrapping as `grid_step` compares: the same exact timestamps.
                t.wrapping_add((i - at) as i64 * step)
            }
        }
    }

    /// The first index of `range` whose timestamp is not below `t` (its end if none is).
    pub fn first_at_or_after(&self, range: Range<usize>, t: i64) -> usize {
        match *self {
            Times::Listed(ts) => range.start + ts[range].partition_point(|&x| x < t),
            Times::Grid { .. } => {
                let (mut lo, mut hi) = (range.start, range.end);
                while lo < hi {
                    let mid = lo + (hi - lo) / 2;
                    if self.get(mid) < t {
                        lo = mid + 1;
                    } else {
                        hi = mid;
                    }
                }
                lo
            }
        }
    }

    /// Cuts `range` into the stretches that [`SpooledPoints::read`] reads at once: `range`
    /// itself, but at the breaks of a grid.
    pub fn stretches(&self, range: Range<usize>, mut stretch: impl FnMut(Range<usize>)) {
        if range.is_empty() {
            return;
        }
        let Times::Grid { breaks, .. } = *self else {
            return stretch(range);
        };
        let mut start = range.start;
        let inside = breaks.partition_point(|&(at, _)| at <= range.start);
        for &(at, _) in &breaks[inside..] {
            if at >= range.end {
                break;
            }
            stretch(start..at);
            start = at;
        }
        stretch(start..range.end)
    }

    /// Appends every timestamp to `ts`.
    pub fn extend(&self, ts: &mut Vec<i64>) {
        match *self {
            Times::Listed(listed) => ts.extend_from_slice(listed),
            Times::Grid { n, step, .. } => {
                ts.reserve(n);
                self.stretches(0..n, |r| {
                    let first = self.get(r.start);
                    let grid =
                        (0..r.len() as i64).map(|k| first.wrapping_add(k.wrapping_mul(step)));
                    ts.extend(grid);
                });
            }
        }
    }

    /// The times of `ts` as stored in the form `form`, the grid's breaks found into `breaks`:
    /// what a page's sink is handed for a series spooled so (for tests that spool by hand).
    #[cfg(test)]
    pub(crate) fn of<'a>(
        ts: &'a [i64],
        form: SpooledTs,
        breaks: &'a mut Vec<(usize, i64)>,
    ) -> Times<'a> {
        let step = match form {
            SpooledTs::At(_) => return Times::Listed(ts),
            SpooledTs::Grid { step } | SpooledTs::Broken { step } => step,
        };
        breaks.clear();
        breaks.extend(grid_breaks(ts, step));
        Times::Grid {
            first: ts.first().copied().unwrap_or(0),
            step,
            n: ts.len(),
            breaks,
        }
    }
}

/// Where a spooled series' values are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpooledValues {
    /// Eight little-endian bytes each, from this offset.
    Doubles(u64),
    /// Three little-endian bytes each, the value's [`cents::key`], from this offset.
    Cents(u64),
}

/// Bytes of a value stored as its hundredths key.
const CENTS_BYTES: usize = 3;

/// `n` hundredths keys of [`CENTS_BYTES`] each, read from `at` (`bytes` is scratch).
fn read_keys<'a>(
    file: &File,
    at: u64,
    n: usize,
    bytes: &'a mut Vec<u8>,
) -> std::io::Result<impl Iterator<Item = u32> + 'a> {
    bytes.resize(n * CENTS_BYTES, 0);
    read_exact_at(file, bytes, at)?;
    Ok(bytes
        .chunks_exact(CENTS_BYTES)
        .map(|b| u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16))
}

/// Where a spooled series' points are in its page's points file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpooledPoints {
    pub ts: SpooledTs,
    pub values: SpooledValues,
}

impl SpooledPoints {
    /// The place of the same series' points from its `i`-th on.
    pub fn skip(self, i: usize) -> SpooledPoints {
        let i = i as u64;
        SpooledPoints {
            ts: match self.ts {
                grid @ (SpooledTs::Grid { .. } | SpooledTs::Broken { .. }) => grid,
                SpooledTs::At(at) => SpooledTs::At(at + 8 * i),
            },
            values: match self.values {
                SpooledValues::Doubles(at) => SpooledValues::Doubles(at + 8 * i),
                SpooledValues::Cents(at) => SpooledValues::Cents(at + CENTS_BYTES as u64 * i),
            },
        }
    }

    /// Appends `n` points, the first at `first_ts`, read from `file` (`bytes` is scratch).
    pub fn read(
        &self,
        file: &File,
        first_ts: i64,
        n: usize,
        bytes: &mut Vec<u8>,
        ts: &mut Vec<i64>,
        values: &mut Vec<f64>,
    ) -> std::io::Result<()> {
        self.read_ts(file, first_ts, n, bytes, ts)?;
        self.read_values(file, n, bytes, values)
    }

    /// [`Self::read`] for the values alone.
    pub fn read_values(
        &self,
        file: &File,
        n: usize,
        bytes: &mut Vec<u8>,
        values: &mut Vec<f64>,
    ) -> std::io::Result<()> {
        match self.values {
            SpooledValues::Doubles(at) => read_points(file, at, n, bytes, values),
            SpooledValues::Cents(at) => {
                values.extend(read_keys(file, at, n, bytes)?.map(cents::value));
                Ok(())
            }
        }
    }

    /// [`Self::read_values`] for a reader that takes hundredths keys: values stored as keys
    /// are appended as keys.
    pub fn read_keyed(
        &self,
        file: &File,
        n: usize,
        bytes: &mut Vec<u8>,
        values: &mut Values,
    ) -> std::io::Result<()> {
        match self.values {
            SpooledValues::Doubles(at) => {
                values.append_doubles(|doubles| read_points(file, at, n, bytes, doubles))
            }
            SpooledValues::Cents(at) => values.append_keys(|keys| {
                keys.extend(read_keys(file, at, n, bytes)?);
                Ok(())
            }),
        }
    }

    /// [`Self::read`] for the timestamps alone (of a stretch without a break, for
    /// [`SpooledTs::Broken`]).
    pub fn read_ts(
        &self,
        file: &File,
        first_ts: i64,
        n: usize,
        bytes: &mut Vec<u8>,
        ts: &mut Vec<i64>,
    ) -> std::io::Result<()> {
        match self.ts {
            SpooledTs::Grid { step } | SpooledTs::Broken { step } => {
                // Wrapping as `grid_step` compares: the same exact timestamps.
                ts.extend((0..n as i64).map(|k| first_ts.wrapping_add(k.wrapping_mul(step))));
                Ok(())
            }
            SpooledTs::At(at) => read_points(file, at, n, bytes, ts),
        }
    }
}

/// The step of `ts` if it is a regular grid (any one or no point is one).
fn grid_step(ts: &[i64]) -> Option<i64> {
    let step = match ts {
        [a, b, ..] => b.checked_sub(*a)?,
        _ => 0,
    };
    ts.windows(2)
        .all(|w| w[1].wrapping_sub(w[0]) == step)
        .then_some(step)
}

/// The step of a grid with breaks that `ts` is on, and how many breaks, if it has few enough to
/// keep its timestamps out of the file: strictly increasing timestamps, whose smallest distance
/// is the step, and a break wherever the distance is another.
fn broken_grid(ts: &[i64]) -> Option<(i64, usize)> {
    let mut step = i64::MAX;
    for w in ts.windows(2) {
        step = step.min(w[1].checked_sub(w[0]).filter(|&d| d > 0)?);
    }
    let breaks = grid_breaks(ts, step).count();
    (breaks <= ts.len() / MIN_BREAK_SPACING).then_some((step, breaks))
}

/// Where the grid of `step` that `ts` is on breaks: the index of each point that is not one
/// step after the point before it, and its timestamp (what a header lists, [`Times::Grid`]).
fn grid_breaks(ts: &[i64], step: i64) -> impl Iterator<Item = (usize, i64)> + '_ {
    let after = ts.windows(2).enumerate();
    after.filter_map(move |(k, w)| (w[1].wrapping_sub(w[0]) != step).then_some((k + 1, w[1])))
}

/// A page's overflow to disk: headers and points, each in its own unlinked temporary file.
#[derive(Debug)]
struct SpoolFiles {
    headers: BufWriter<File>,
    points: File,
    /// Bytes of points given to `points`, written or still in `pending`.
    points_len: u64,
    /// Series written.
    series: usize,
    /// Points on their way to `points`, written in large blocks.
    pending: Vec<u8>,
}

impl SpoolFiles {
    fn new(dir: &std::path::Path) -> std::io::Result<SpoolFiles> {
        Ok(SpoolFiles {
            headers: BufWriter::with_capacity(64 << 10, tempfile::tempfile_in(dir)?),
            points: tempfile::tempfile_in(dir)?,
            points_len: 0,
            series: 0,
            pending: Vec::with_capacity(POINTS_BUFFER),
        })
    }

    /// Appends `points` (eight bytes each) to the points file; their offset.
    fn put<T: Point>(&mut self, points: &[T]) -> std::io::Result<u64> {
        let at = self.points_len;
        let start = self.pending.len();
        self.pending.resize(start + 8 * points.len(), 0);
        for (out, &p) in self.pending[start..].chunks_exact_mut(8).zip(points) {
            out.copy_from_slice(&p.to_le());
        }
        self.points_len += 8 * points.len() as u64;
        self.flush_full()?;
        Ok(at)
    }

    /// Appends a series' values to the points file, as hundredths keys if every one is: as
    /// they are when held as keys (as the parser hands on a series of hundredths), else worked
    /// out from the doubles; their place.
    fn put_values(&mut self, values: ValuesSlice<'_>) -> std::io::Result<SpooledValues> {
        let n = values.len();
        let start = self.pending.len();
        // Each key is written as four bytes, the next one's over the last.
        self.pending.resize(start + CENTS_BYTES * n + 1, 0);
        let out = &mut self.pending[start..];
        if let Some(keys) = values.as_keys() {
            for (out, key) in out.chunks_exact_mut(CENTS_BYTES).zip(keys) {
                out.copy_from_slice(&key.to_le_bytes()[..CENTS_BYTES]);
            }
        } else {
            let doubles = match values.as_doubles() {
                Some(doubles) => Cow::Borrowed(doubles),
                None => Cow::Owned(values.to_doubles()),
            };
            let values = &doubles[..];
            for (i, &v) in values.iter().enumerate() {
                let Some(key) = cents::key(v) else {
                    self.pending.truncate(start);
                    return self.put(values).map(SpooledValues::Doubles);
                };
                out[CENTS_BYTES * i..CENTS_BYTES * i + 4].copy_from_slice(&key.to_le_bytes());
            }
        }
        self.pending.truncate(start + CENTS_BYTES * n);
        let at = self.points_len;
        self.points_len += (CENTS_BYTES * n) as u64;
        self.flush_full()?;
        Ok(SpooledValues::Cents(at))
    }

    fn flush_full(&mut self) -> std::io::Result<()> {
        if self.pending.len() >= POINTS_BUFFER {
            self.points.write_all(&self.pending)?;
            self.pending.clear();
        }
        Ok(())
    }

    /// One series: its points to the points file, its header to the headers file.
    fn write_series(&mut self, s: &Series<'_>) -> std::io::Result<()> {
        // Whole, as `SeriesSink::series` checked: a value for every timestamp.
        let ts = s.timestamps_ms;
        let n = ts.len();
        let (kind, ts_word, breaks) = match grid_step(ts) {
            Some(step) => (0u8, step as u64, 0),
            None => match broken_grid(ts) {
                Some((step, breaks)) => (2u8, step as u64, breaks),
                None => (1u8, self.put(ts)?, 0),
            },
        };
        let (values_kind, values_at) = match self.put_values(s.values)? {
            SpooledValues::Doubles(at) => (0u8, at),
            SpooledValues::Cents(at) => (1u8, at),
        };
        self.series += 1;
        let out = &mut self.headers;
        write_str(out, s.metric)?;
        out.write_all(&(s.tags.len() as u32).to_le_bytes())?;
        for (k, v) in s.tags {
            write_str(out, k)?;
            write_str(out, v)?;
        }
        out.write_all(&(s.aggregate_tags.len() as u32).to_le_bytes())?;
        for t in s.aggregate_tags {
            write_str(out, t)?;
        }
        out.write_all(&s.query_index.map_or(u64::MAX, |i| i as u64).to_le_bytes())?;
        out.write_all(&(n as u64).to_le_bytes())?;
        out.write_all(&ts.first().copied().unwrap_or(0).to_le_bytes())?;
        out.write_all(&[kind, values_kind])?;
        out.write_all(&ts_word.to_le_bytes())?;
        out.write_all(&values_at.to_le_bytes())?;
        if kind == 2 {
            // Each break: the index of the point that starts the next stretch, its timestamp.
            out.write_all(&(breaks as u64).to_le_bytes())?;
            for (at, t) in grid_breaks(ts, ts_word as i64) {
                out.write_all(&(at as u64).to_le_bytes())?;
                out.write_all(&t.to_le_bytes())?;
            }
        }
        Ok(())
    }

    /// Everything written; the headers file back at its start, and the points file.
    fn finish(mut self) -> std::io::Result<(File, File)> {
        self.points.write_all(&self.pending)?;
        let mut headers = self.headers.into_inner().map_err(|e| e.into_error())?;
        headers.seek(SeekFrom::Start(0))?;
        Ok((headers, self.points))
    }
}

/// The series of one page, in arrival order.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    memory: Vec<OwnedSeries>,
    memory_points: usize,
    files: Option<SpoolFiles>,
    error: Option<std::io::Error>,
    /// The run's count of parsed points, and what this spool added to it.
    counter: Option<(ParsedPoints, u64)>,
}

impl Spool {
    /// A spool whose overflow files (unlinked at once, so never visible) live in `dir`.
    pub fn new(dir: PathBuf) -> Spool {
        Spool {
            dir,
            memory: Vec::new(),
            memory_points: 0,
            files: None,
            error: None,
            counter: None,
        }
    }

    /// Adds the points of every series that arrives to `parsed`.
    pub fn counting(mut self, parsed: ParsedPoints) -> Spool {
        self.counter = Some((parsed, 0));
        self
    }

    /// Takes back from the count what this spool added: its request failed, and the points come
    /// again with the next attempt.
    pub fn take_back_count(&mut self) {
        if let Some((parsed, added)) = self.counter.as_mut() {
            parsed.take_back(std::mem::take(added));
        }
    }

    /// Whether the page overflowed to disk.
    pub fn on_disk(&self) -> bool {
        self.files.is_some()
    }

    /// Moves the series held in memory to the files, which are created on first use.
    fn overflow(&mut self) -> std::io::Result<()> {
        if self.files.is_none() {
            self.files = Some(SpoolFiles::new(&self.dir)?);
        }
        let Some(files) = self.files.as_mut() else {
            return Ok(());
        };
        for series in self.memory.drain(..) {
            files.write_series(&series.as_series())?;
        }
        self.memory_points = 0;
        Ok(())
    }

    /// Hands every series, in arrival order, to `sink`. Fails if spooling to disk failed.
    pub fn replay(self, sink: &mut impl SeriesSink) -> std::io::Result<()> {
        let mut back = ReadBack {
            sink,
            bytes: Vec::new(),
            ts: Vec::new(),
            values: Vec::new(),
            error: None,
        };
        self.hand_over(&mut back)?;
        back.error.map_or(Ok(()), Err)
    }

    /// Hands every series, in arrival order, to `sink`: as a whole series while the page fitted
    /// in memory; else with its timestamps and the place of its points in the spool's points
    /// file (see [`SpoolSink`]), so that the values are read back from disk only when they are
    /// written out, rather than copied into memory and spilled again.
    pub fn hand_over(mut self, sink: &mut impl SpoolSink) -> std::io::Result<()> {
        if self.files.is_some() && self.error.is_none() {
            // The last series go to the files too, so every series of the page is in one place.
            if let Err(e) = self.overflow() {
                self.error = Some(e);
            }
        }
        if let Some(error) = self.error.take() {
            return Err(error);
        }
        let Some(files) = self.files.take() else {
            for series in &self.memory {
                sink.series(series.as_series());
            }
            return Ok(());
        };
        sink.expect(files.series);
        let (headers, points) = files.finish()?;
        let points = Arc::new(points);
        let mut reader = HeaderReader(BufReader::with_capacity(IO_BUFFER, headers));
        let mut series = OwnedSeries::default();
        let (mut breaks, mut bytes) = (Vec::new(), Vec::new());
        while let Some((at, first, n)) =
            reader.header(&mut series, &mut breaks, &points, &mut bytes)?
        {
            let times = match at.ts {
                SpooledTs::At(_) => Times::Listed(&series.timestamps_ms),
                SpooledTs::Grid { step } | SpooledTs::Broken { step } => Times::Grid {
                    first,
                    step,
                    n,
                    breaks: &breaks,
                },
            };
            sink.spooled(series.as_series(), times, &points, at);
        }
        Ok(())
    }
}

/// A [`SpoolSink`] that reads every spooled series' values back, for a plain [`SeriesSink`].
/// After a failed read it hands on nothing more and keeps the error.
struct ReadBack<'a, S> {
    sink: &'a mut S,
    bytes: Vec<u8>,
    ts: Vec<i64>,
    values: Vec<f64>,
    error: Option<std::io::Error>,
}

impl<S: SeriesSink> SeriesSink for ReadBack<'_, S> {
    fn series(&mut self, series: Series<'_>) {
        self.sink.series(series);
    }
}

impl<S: SeriesSink> SpoolSink for ReadBack<'_, S> {
    fn spooled(
        &mut self,
        series: Series<'_>,
        times: Times<'_>,
        file: &Arc<File>,
        at: SpooledPoints,
    ) {
        if self.error.is_some() {
            return;
        }
        self.values.clear();
        self.ts.clear();
        times.extend(&mut self.ts);
        match at.read_values(file, times.len(), &mut self.bytes, &mut self.values) {
            Ok(()) => self.sink.series(Series {
                timestamps_ms: &self.ts,
                values: ValuesSlice::doubles(&self.values),
                ..series
            }),
            Err(e) => self.error = Some(e),
        }
    }
}

/// Why a series cannot be spooled whole: fewer values than timestamps. The parser never hands
/// on such a series; were another source to, its points would be lost without a word, so the
/// page fails instead.
fn incomplete(s: &Series<'_>) -> Option<std::io::Error> {
    let n = s.timestamps_ms.len();
    (s.values.len() != n).then(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "series {} has {n} timestamps but {} values",
                s.metric,
                s.values.len()
            ),
        )
    })
}

impl SeriesSink for Spool {
    fn series(&mut self, series: Series<'_>) {
        if let Some((parsed, added)) = self.counter.as_mut() {
            let points = series.timestamps_ms.len() as u64;
            parsed.add(points);
            *added += points;
        }
        if self.error.is_some() {
            return;
        }
        if let Some(e) = incomplete(&series) {
            self.error = Some(e);
            return;
        }
        if let Some(files) = self.files.as_mut() {
            // Past the first overflow, straight to the files.
            if let Err(e) = files.write_series(&series) {
                self.error = Some(e);
            }
            return;
        }
        self.memory_points += series.timestamps_ms.len();
        self.memory.push(series.to_owned_series());
        if self.memory_points > MEMORY_POINTS {
            if let Err(e) = self.overflow() {
                self.error = Some(e);
            }
        }
    }
}

fn write_str(out: &mut impl Write, s: &str) -> std::io::Result<()> {
    out.write_all(&(s.len() as u32).to_le_bytes())?;
    out.write_all(s.as_bytes())
}

/// Reads a spool's headers file from its start.
struct HeaderReader(BufReader<File>);

impl HeaderReader {
    fn exact<const N: usize>(&mut self) -> std::io::Result<[u8; N]> {
        let mut b = [0; N];
        self.0.read_exact(&mut b)?;
        Ok(b)
    }

    fn u32(&mut self) -> std::io::Result<u32> {
        self.exact().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> std::io::Result<u64> {
        self.exact().map(u64::from_le_bytes)
    }

    /// A string into `into`, in the buffer it had.
    fn string(&mut self, into: &mut String) -> std::io::Result<()> {
        let len = self.u32()? as usize;
        let mut bytes = std::mem::take(into).into_bytes();
        bytes.clear();
        bytes.resize(len, 0);
        self.0.read_exact(&mut bytes)?;
        *into = String::from_utf8(bytes)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        Ok(())
    }

    /// Reads the next series' header into `s` (no values; its timestamps only if they are
    /// stored, read from `points`, `bytes` being scratch) and a grid's breaks into `breaks`:
    /// where its points are, its first timestamp and how many points it has, or `None` at the
    /// end.
    fn header(
        &mut self,
        s: &mut OwnedSeries,
        breaks: &mut Vec<(usize, i64)>,
        points: &File,
        bytes: &mut Vec<u8>,
    ) -> std::io::Result<Option<(SpooledPoints, i64, usize)>> {
        if self.0.fill_buf()?.is_empty() {
            return Ok(None);
        }
        self.string(&mut s.metric)?;
        let tags = self.u32()? as usize;
        s.tags.resize(tags, Default::default());
        for (k, v) in s.tags.iter_mut() {
            self.string(k)?;
            self.string(v)?;
        }
        let aggregate = self.u32()? as usize;
        s.aggregate_tags.resize(aggregate, String::new());
        for t in s.aggregate_tags.iter_mut() {
            self.string(t)?;
        }
        let index = self.u64()?;
        s.query_index = (index != u64::MAX).then_some(index as usize);
        s.timestamps_ms.clear();
        s.values.clear();
        let n = self.u64()? as usize;
        let first = self.u64()? as i64;
        let [kind, values_kind] = self.exact::<2>()?;
        let word = self.u64()?;
        let ts = match kind {
            0 => SpooledTs::Grid { step: word as i64 },
            1 => SpooledTs::At(word),
            2 => SpooledTs::Broken { step: word as i64 },
            _ => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("spool header with timestamp kind {kind}"),
                ))
            }
        };
        let at = self.u64()?;
        let values = match values_kind {
            0 => SpooledValues::Doubles(at),
            1 => SpooledValues::Cents(at),
            _ => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("spool header with value kind {values_kind}"),
                ))
            }
        };
        let at = SpooledPoints { ts, values };
        breaks.clear();
        match ts {
            SpooledTs::Broken { .. } => self.breaks(n, breaks)?,
            SpooledTs::At(_) => at.read_ts(points, first, n, bytes, &mut s.timestamps_ms)?,
            SpooledTs::Grid { .. } => {}
        }
        Ok(Some((at, first, n)))
    }

    /// The breaks of a grid of `n` points: each the index of the point after it (ascending,
    /// inside the series) and that point's timestamp.
    fn breaks(&mut self, n: usize, breaks: &mut Vec<(usize, i64)>) -> std::io::Result<()> {
        let count = self.u64()?;
        for _ in 0..count {
            let (at, t) = (self.u64()? as usize, self.u64()? as i64);
            if at <= breaks.last().map_or(0, |b| b.0) || at >= n {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("spool header with a break at point {at} of {n}"),
                ));
            }
            breaks.push((at, t));
        }
        Ok(())
    }
}

/// A point's timestamp or value, stored as its eight little-endian bytes.
trait Point: Copy {
    fn to_le(self) -> [u8; 8];
    fn from_le(bytes: [u8; 8]) -> Self;
}

impl Point for i64 {
    fn to_le(self) -> [u8; 8] {
        self.to_le_bytes()
    }
    fn from_le(bytes: [u8; 8]) -> i64 {
        i64::from_le_bytes(bytes)
    }
}

impl Point for f64 {
    fn to_le(self) -> [u8; 8] {
        self.to_le_bytes()
    }
    fn from_le(bytes: [u8; 8]) -> f64 {
        f64::from_le_bytes(bytes)
    }
}

/// Appends `n` points read from `file` at `at` to `into`.
fn read_points<T: Point>(
    file: &File,
    at: u64,
    n: usize,
    bytes: &mut Vec<u8>,
    into: &mut Vec<T>,
) -> std::io::Result<()> {
    bytes.resize(n * 8, 0);
    read_exact_at(file, bytes, at)?;
    into.extend(bytes.chunks_exact(8).map(|c| {
        let mut b = [0; 8];
        b.copy_from_slice(c);
        T::from_le(b)
    }));
    Ok(())
}

/// Fills `buf` from `file` at `offset`, without moving the file's position (several partitions'
/// runs share one points file).
#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    while !buf.is_empty() {
        match std::os::windows::fs::FileExt::seek_read(file, buf, offset) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_series_with_fewer_values_than_timestamps_fails_the_page() {
        let dir = tempfile::tempdir().unwrap();
        let whole = series(1, 5);
        let short = &whole.values[..4];
        let keys: Vec<u32> = whole
            .values
            .iter()
            .map(|&v| cents::key(v).unwrap())
            .collect();
        for values in [ValuesSlice::doubles(short), ValuesSlice::keys(&keys[..3])] {
            let mut spool = Spool::new(dir.path().to_path_buf());
            spool.series(Series {
                values,
                ..whole.as_series()
            });
            let err = spool.hand_over(&mut Collect::default()).unwrap_err();
            assert!(err.to_string().contains("has 5 timestamps"), "{err}");
        }
        // Keys, or doubles, one for each timestamp are whole.
        for values in [
            ValuesSlice::keys(&keys),
            ValuesSlice::doubles(&whole.values),
        ] {
            let mut spool = Spool::new(dir.path().to_path_buf());
            spool.series(Series {
                values,
                ..whole.as_series()
            });
            spool.hand_over(&mut Collect::default()).unwrap();
        }
    }

    fn series(i: usize, points: usize) -> OwnedSeries {
        OwnedSeries {
            metric: format!("vscope.vm.m{}", i % 3),
            tags: vec![
                ("vm".into(), format!("vm-{i}")),
                ("x".into(), "été\n/".into()),
            ],
            aggregate_tags: if i.is_multiple_of(2) {
                vec!["env".into()]
            } else {
                vec![]
            },
            query_index: (!i.is_multiple_of(4)).then_some(i),
            timestamps_ms: (0..points as i64).map(|t| t * 60_000 + i as i64).collect(),
            // Every other series has thirds and gaps (stored as doubles), the others hundredths,
            // negative ones too (stored as keys).
            values: (0..points)
                .map(|t| match (i % 2, t % 7) {
                    (0, 0) => f64::NAN,
                    (0, _) => t as f64 / 3.0,
                    _ => (t as i64 % 9_000 - 3_000) as f64 / 100.0,
                })
                .collect(),
        }
    }

    /// Compares with NaN equal to NaN, as the values' bits.
    #[allow(
        clippy::type_complexity,
        reason = "a tuple of the series' parts, to compare"
    )]
    fn bits(
        s: &OwnedSeries,
    ) -> (
        String,
        Vec<(String, String)>,
        Vec<String>,
        Option<usize>,
        Vec<i64>,
        Vec<u64>,
    ) {
        (
            s.metric.clone(),
            s.tags.clone(),
            s.aggregate_tags.clone(),
            s.query_index,
            s.timestamps_ms.clone(),
            s.values.iter().map(|v| v.to_bits()).collect(),
        )
    }

    /// Collects what [`Spool::hand_over`] gives, reading spooled points back where it says,
    /// and the form of each spooled series' timestamps.
    #[derive(Default)]
    struct Collect(Vec<OwnedSeries>, Vec<SpooledTs>, Vec<SpooledValues>);

    impl SeriesSink for Collect {
        fn series(&mut self, series: Series<'_>) {
            self.0.push(series.to_owned_series());
        }
    }

    impl SpoolSink for Collect {
        fn spooled(
            &mut self,
            series: Series<'_>,
            times: Times<'_>,
            file: &Arc<File>,
            at: SpooledPoints,
        ) {
            assert!(series.values.is_empty());
            // Only timestamps stored in the file come listed; a grid's are worked out.
            assert_eq!(
                matches!(times, Times::Listed(_)),
                matches!(at.ts, SpooledTs::At(_))
            );
            let n = times.len();
            let mut all = Vec::new();
            times.extend(&mut all);
            assert_eq!(all.len(), n);
            // Read as the table does: a stretch without a break at a time.
            let read = |range: Range<usize>| {
                let (mut ts, mut values, mut bytes) = (Vec::new(), Vec::new(), Vec::new());
                let mut stretches = 0;
                times.stretches(range, |r| {
                    assert_eq!(times.get(r.start), all[r.start]);
                    at.skip(r.start)
                        .read(
                            file,
                            times.get(r.start),
                            r.len(),
                            &mut bytes,
                            &mut ts,
                            &mut values,
                        )
                        .unwrap();
                    stretches += 1;
                });
                (ts, values, stretches)
            };
            let (ts, values, stretches) = read(0..n);
            let gaps = all.windows(2).filter(|w| w[1] - w[0] != 60_000).count();
            match at.ts {
                SpooledTs::Broken { .. } => assert_eq!(stretches, gaps + 1, "cut at the breaks"),
                _ => assert_eq!(stretches, 1),
            }
            assert_eq!(ts, all, "the timestamps are where it says");
            // A run that starts inside the series (a later partition's) reads its tail.
            let (tail_ts, tail, _) = read(n / 2..n);
            assert_eq!(tail_ts, ts[n / 2..]);
            let bits = |v: &[f64]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&tail), bits(&values[n / 2..]));
            // Where a day would begin is found as in the listed timestamps.
            for t in [
                all[0] - 1,
                all[0],
                all[n / 3] + 1,
                all[n - 1],
                all[n - 1] + 1,
            ] {
                let expected = all.partition_point(|&x| x < t);
                assert_eq!(times.first_at_or_after(0..n, t), expected, "{t}");
                let from = expected / 2;
                assert_eq!(
                    times.first_at_or_after(from..n, t),
                    expected,
                    "{t} from {from}"
                );
            }
            let mut owned = series.to_owned_series();
            owned.timestamps_ms = all;
            owned.values = values;
            self.0.push(owned);
            self.1.push(at.ts);
            self.2.push(at.values);
        }
    }

    /// `series` with two gaps in every third series (a grid with breaks), and in the next one
    /// timestamps off the grid by a millisecond every other point (no grid at all).
    fn with_gaps(i: usize, points: usize) -> OwnedSeries {
        let mut s = series(i, points);
        if i.is_multiple_of(3) && points > 10 {
            for at in [points / 2, 1] {
                s.timestamps_ms.remove(at);
                s.values.remove(at);
            }
        } else if i % 3 == 1 {
            for (k, t) in s.timestamps_ms.iter_mut().enumerate() {
                *t += (k % 2) as i64;
            }
        }
        s
    }

    /// The form [`with_gaps`] gives series `i`'s timestamps once they go to disk.
    fn ts_form(i: usize) -> SpooledTs {
        match i % 3 {
            0 => SpooledTs::Broken { step: 60_000 },
            1 => SpooledTs::At(0),
            _ => SpooledTs::Grid { step: 60_000 },
        }
    }

    #[test]
    fn a_page_handed_over_is_whole_in_memory_or_at_its_place_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        for (count, points) in [(3, 10), (40, 60_000)] {
            let sent: Vec<OwnedSeries> = (0..count).map(|i| with_gaps(i, points)).collect();
            let mut spool = Spool::new(dir.path().to_path_buf());
            for (i, s) in sent.iter().enumerate() {
                // Half the series of hundredths come as their keys, as the parser hands them
                // on; the others' keys are worked out from the doubles.
                let keys: Option<Vec<u32>> = (i % 4 == 1)
                    .then(|| s.values.iter().map(|&v| cents::key(v).unwrap()).collect());
                let values = match &keys {
                    Some(keys) => ValuesSlice::keys(keys),
                    None => ValuesSlice::doubles(&s.values),
                };
                spool.series(Series {
                    values,
                    ..s.as_series()
                });
            }
            let mut got = Collect::default();
            spool.hand_over(&mut got).unwrap();
            if count * points > MEMORY_POINTS {
                // Series on a grid, with breaks or without, keep their timestamps out of the
                // file; the others' are in it.
                let forms = |t: &SpooledTs| match *t {
                    SpooledTs::At(_) => SpooledTs::At(0),
                    grid => grid,
                };
                assert_eq!(
                    got.1.iter().map(forms).collect::<Vec<_>>(),
                    (0..count).map(ts_form).collect::<Vec<_>>()
                );
                // Hundredths take three bytes a value, anything else eight.
                assert_eq!(
                    got.2
                        .iter()
                        .map(|v| matches!(v, SpooledValues::Cents(_)))
                        .collect::<Vec<_>>(),
                    (0..count).map(|i| i % 2 == 1).collect::<Vec<_>>()
                );
            } else {
                assert!(got.1.is_empty(), "{count}×{points} stays in memory");
            }
            assert_eq!(
                got.0.iter().map(bits).collect::<Vec<_>>(),
                sent.iter().map(bits).collect::<Vec<_>>()
            );
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn grids_are_found_exactly() {
        assert_eq!(grid_step(&[]), Some(0));
        assert_eq!(grid_step(&[5]), Some(0));
        assert_eq!(grid_step(&[5, 7, 9]), Some(2));
        assert_eq!(grid_step(&[5, 7, 10]), None);
        assert_eq!(
            grid_step(&[i64::MIN, i64::MAX]),
            None,
            "a step that overflows"
        );
    }

    #[test]
    fn a_grid_with_breaks_needs_few_of_them_and_increasing_timestamps() {
        let minutes = |n: i64| (0..n).map(|k| k * 60_000).collect::<Vec<i64>>();
        let mut ts = minutes(640);
        ts.drain(100..103);
        ts.remove(400);
        assert_eq!(broken_grid(&ts), Some((60_000, 2)));
        // One break in fewer than 64 points is too many.
        let mut ts = minutes(640);
        for at in (0..10).map(|k| 600 - 60 * k) {
            ts.remove(at);
        }
        assert_eq!(ts.len(), 630);
        assert_eq!(broken_grid(&ts), None, "10 breaks in 630 points");
        // The smallest distance is the step, wherever it first appears.
        let mut ts: Vec<i64> = (0..640).map(|k| k * 60_000).collect();
        ts.remove(1);
        assert_eq!(broken_grid(&ts), Some((60_000, 1)));
        let mut same = minutes(640);
        same[300] = same[299];
        assert_eq!(broken_grid(&same), None, "a repeated timestamp");
        let mut back = minutes(640);
        back.swap(300, 301);
        assert_eq!(broken_grid(&back), None, "out of order");
        let mut huge = minutes(640);
        huge[639] = i64::MAX;
        huge[0] = i64::MIN;
        assert_eq!(broken_grid(&huge), None, "a distance that overflows");
    }

    #[test]
    #[allow(
        clippy::single_range_in_vec_init,
        reason = "the stretches are ranges, one of them"
    )]
    fn a_broken_grid_is_read_a_stretch_at_a_time() {
        let ts = [0, 10, 20, 50, 60, 100];
        let cut = |form: SpooledTs, range: Range<usize>| {
            let mut got = Vec::new();
            let mut breaks = Vec::new();
            let times = Times::of(&ts, form, &mut breaks);
            times.stretches(range, |r| got.push(r));
            // The times say every timestamp as it was.
            assert_eq!((0..ts.len()).map(|i| times.get(i)).collect::<Vec<_>>(), ts);
            got
        };
        let broken = SpooledTs::Broken { step: 10 };
        assert_eq!(cut(broken, 0..6), [0..3, 3..5, 5..6]);
        assert_eq!(cut(broken, 1..5), [1..3, 3..5], "a partition's share");
        assert!(cut(broken, 3..3).is_empty(), "nothing");
        assert_eq!(cut(SpooledTs::At(0), 0..6), [0..6]);
        let grid = [0, 10, 20, 30];
        let mut breaks = Vec::new();
        let times = Times::of(&grid, SpooledTs::Grid { step: 10 }, &mut breaks);
        let mut got = Vec::new();
        times.stretches(1..4, |r| got.push(r));
        assert_eq!(got, [1..4]);
        assert_eq!((0..4).map(|i| times.get(i)).collect::<Vec<_>>(), grid);
    }

    #[test]
    fn series_come_back_whole_and_in_order_from_memory_and_from_disk() {
        let dir = tempfile::tempdir().unwrap();
        for (count, points) in [(3, 10), (40, 60_000)] {
            let sent: Vec<OwnedSeries> = (0..count).map(|i| with_gaps(i, points)).collect();
            let mut spool = Spool::new(dir.path().to_path_buf());
            for s in &sent {
                spool.series(s.as_series());
            }
            assert_eq!(
                spool.files.is_some(),
                count * points > MEMORY_POINTS,
                "{count}×{points}"
            );
            let mut got = Vec::new();
            spool
                .replay(&mut |s: Series<'_>| got.push(s.to_owned_series()))
                .unwrap();
            assert_eq!(
                got.iter().map(bits).collect::<Vec<_>>(),
                sent.iter().map(bits).collect::<Vec<_>>()
            );
        }
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "the overflow files are never visible"
        );
    }
}
