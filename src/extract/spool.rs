//! A page's series between the response and the transform stage. A page is handed on only once
//! it has completely succeeded (a failed attempt's series must not reach the tables), so its
//! series wait here; past [`MEMORY_POINTS`] they go to anonymous temporary files, which keeps
//! memory bounded whatever the size of a request.
//!
//! On disk a page is two files: the series' headers (metric, tags, where the points are and, for
//! a grid with breaks, where it breaks), read once when the page is handed over, and their
//! points, a run file ([`crate::points::file`]: values only for a series on a grid, three-byte
//! keys for hundredths), read when they are written out.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::Arc;

use super::ParsedPoints;
use crate::points::cents::ValuesSlice;
use crate::points::{PointsAt, RunWriter, Times, TsAt};
use crate::tsdb::{OwnedSeries, Series, SeriesSink};

/// Points held in memory per page before spooling to disk: 1 MiB of (ts, value), so the pages
/// in flight together stay a small part of the memory budget.
const MEMORY_POINTS: usize = 1 << 16;

/// Read buffer of a spool's headers.
const IO_BUFFER: usize = 64 << 10;

/// What [`Spool::hand_over`] gives for each series of a page that overflowed to disk: the
/// points stay in the page's points file (anonymous, freed with its last handle), which lives
/// as long as something holds it.
pub trait SpoolSink: SeriesSink {
    /// `series` has no points (its timestamps are `times`, its values at `at` in `file`).
    fn spooled(&mut self, series: Series<'_>, times: Times<'_>, file: &Arc<File>, at: PointsAt);

    /// Said once before the spooled series: how many there are, for the sink to make room.
    fn expect(&mut self, _series: usize) {}
}

/// A page's overflow to disk: the series' headers, and their points in a run file.
#[derive(Debug)]
struct SpoolFiles {
    headers: BufWriter<File>,
    points: RunWriter,
    /// Series written.
    series: usize,
}

impl SpoolFiles {
    fn new(dir: &std::path::Path) -> std::io::Result<SpoolFiles> {
        Ok(SpoolFiles {
            headers: BufWriter::with_capacity(64 << 10, tempfile::tempfile_in(dir)?),
            points: RunWriter::new(dir)?,
            series: 0,
        })
    }

    /// One series: its points to the points file, its header to the headers file.
    fn write_series(&mut self, s: &Series<'_>) -> std::io::Result<()> {
        // Whole, as `SeriesSink::series` checked: a value for every timestamp.
        let ts = s.timestamps_ms;
        let n = ts.len();
        let at = self.points.put(ts, s.values)?;
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
        at.write_place(ts, out)?;
        Ok(())
    }

    /// Everything written; the headers file back at its start, and the points file.
    fn finish(self) -> std::io::Result<(File, File)> {
        let points = self.points.finish()?;
        let mut headers = self.headers.into_inner().map_err(|e| e.into_error())?;
        headers.seek(SeekFrom::Start(0))?;
        Ok((headers, points))
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
                TsAt::At(_) => Times::Listed(&series.timestamps_ms),
                TsAt::Grid { step } | TsAt::Broken { step } => Times::Grid {
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
    fn spooled(&mut self, series: Series<'_>, times: Times<'_>, file: &Arc<File>, at: PointsAt) {
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
    ) -> std::io::Result<Option<(PointsAt, i64, usize)>> {
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
        let at = PointsAt::read_place(&mut self.0, n, breaks)?;
        if let TsAt::At(_) = at.ts {
            at.read_ts(points, first, n, bytes, &mut s.timestamps_ms)?;
        }
        Ok(Some((at, first, n)))
    }
}

#[cfg(test)]
mod tests {
    use std::ops::Range;

    use super::*;
    use crate::points::cents;
    use crate::points::ValuesAt;

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
    struct Collect(Vec<OwnedSeries>, Vec<TsAt>, Vec<ValuesAt>);

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
            at: PointsAt,
        ) {
            assert!(series.values.is_empty());
            // Only timestamps stored in the file come listed; a grid's are worked out.
            assert_eq!(
                matches!(times, Times::Listed(_)),
                matches!(at.ts, TsAt::At(_))
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
                TsAt::Broken { .. } => assert_eq!(stretches, gaps + 1, "cut at the breaks"),
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
    fn ts_form(i: usize) -> TsAt {
        match i % 3 {
            0 => TsAt::Broken { step: 60_000 },
            1 => TsAt::At(0),
            _ => TsAt::Grid { step: 60_000 },
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
                let forms = |t: &TsAt| match *t {
                    TsAt::At(_) => TsAt::At(0),
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
                        .map(|v| matches!(v, ValuesAt::Cents(_)))
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
