//! The run file: runs of points (a series' timestamps and values) appended one after the other
//! to an anonymous temporary file, each read back where [`PointsAt`] says. The one format for
//! points on disk, shared by the extract stage's spool (a page's series until the page is handed
//! over) and the transform stage's spill (a table's runs past its memory budget).
//!
//! A run's timestamps are stored only when they are on no grid ([`super::times`]): a grid's are
//! its first timestamp and a step, which the caller keeps with the run, with the breaks of a grid
//! that has some. Its values are stored as three-byte hundredths keys ([`cents`]) when every one
//! is a number of hundredths (what vScope serves), else as doubles, eight bytes each. Numbers are
//! little endian; nothing else is in the file.
//!
//! The files are unnamed (`O_TMPFILE` on Linux, created and unlinked at once elsewhere, through
//! `tempfile::tempfile_in`): they never show up in a folder listing, and the operating system
//! frees them when the last handle is closed — when their points are written out, dropped, fail,
//! or the process is killed. Nothing can be left behind.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use super::cents::{self, Held, Values, ValuesSlice};
use super::times::{broken_grid, grid_breaks, grid_step, Times};

/// Points gathered before they are written to a run file: large writes, and small enough that
/// the files being written at once (a page's spool each) hold little.
const POINTS_BUFFER: usize = 256 << 10;

/// Where a run's timestamps are in its run file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsAt {
    /// Not stored: the `k`-th point's is the first one plus `k × step`.
    Grid { step: i64 },
    /// Not stored: a grid of `step` with breaks, where a point is not one step after the one
    /// before it; the writer's caller lists them ([`grid_breaks`], [`Times::Grid`]). Only a
    /// stretch without a break ([`Times::stretches`]) is read at once: its first timestamp plus
    /// `k × step`.
    Broken { step: i64 },
    /// Eight little-endian bytes each, from this offset.
    At(u64),
}

/// Where a run's values are in its run file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValuesAt {
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
) -> io::Result<impl Iterator<Item = u32> + 'a> {
    bytes.resize(n * CENTS_BYTES, 0);
    read_exact_at(file, bytes, at)?;
    Ok(bytes
        .chunks_exact(CENTS_BYTES)
        .map(|b| u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16))
}

/// Where a run of points is in its run file: what [`RunWriter::put`] returns and the reads take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PointsAt {
    pub ts: TsAt,
    pub values: ValuesAt,
}

impl PointsAt {
    /// The place of the same series' points from its `i`-th on.
    pub fn skip(self, i: usize) -> PointsAt {
        let i = i as u64;
        PointsAt {
            ts: match self.ts {
                grid @ (TsAt::Grid { .. } | TsAt::Broken { .. }) => grid,
                TsAt::At(at) => TsAt::At(at + 8 * i),
            },
            values: match self.values {
                ValuesAt::Doubles(at) => ValuesAt::Doubles(at + 8 * i),
                ValuesAt::Cents(at) => ValuesAt::Cents(at + CENTS_BYTES as u64 * i),
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
    ) -> io::Result<()> {
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
    ) -> io::Result<()> {
        match self.values {
            ValuesAt::Doubles(at) => read_points(file, at, n, bytes, values),
            ValuesAt::Cents(at) => {
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
    ) -> io::Result<()> {
        match self.values {
            ValuesAt::Doubles(at) => {
                values.append_doubles(|doubles| read_points(file, at, n, bytes, doubles))
            }
            ValuesAt::Cents(at) => values.append_keys(|keys| {
                keys.extend(read_keys(file, at, n, bytes)?);
                Ok(())
            }),
        }
    }

    /// Appends a whole run of `n` points: its timestamps (a grid's from its first one,
    /// `first_ts`, and its `breaks` as [`Times::Grid`] lists them) and its values, as keys
    /// where stored as keys ([`Self::read_keyed`]).
    #[allow(
        clippy::too_many_arguments,
        reason = "a run's place and the buffers it goes to"
    )]
    pub fn read_run(
        &self,
        file: &File,
        first_ts: i64,
        n: usize,
        breaks: &[(usize, i64)],
        bytes: &mut Vec<u8>,
        ts: &mut Vec<i64>,
        values: &mut Values,
    ) -> io::Result<()> {
        match self.ts {
            TsAt::At(_) => self.read_ts(file, first_ts, n, bytes, ts)?,
            TsAt::Grid { step } | TsAt::Broken { step } => Times::Grid {
                first: first_ts,
                step,
                n,
                breaks,
            }
            .extend(ts),
        }
        self.read_keyed(file, n, bytes, values)
    }

    /// [`Self::read`] for the timestamps alone (of a stretch without a break, for
    /// [`TsAt::Broken`]).
    pub fn read_ts(
        &self,
        file: &File,
        first_ts: i64,
        n: usize,
        bytes: &mut Vec<u8>,
        ts: &mut Vec<i64>,
    ) -> io::Result<()> {
        match self.ts {
            TsAt::Grid { step } | TsAt::Broken { step } => {
                // Wrapping as `grid_step` compares: the same exact timestamps.
                ts.extend((0..n as i64).map(|k| first_ts.wrapping_add(k.wrapping_mul(step))));
                Ok(())
            }
            TsAt::At(at) => read_points(file, at, n, bytes, ts),
        }
    }
}

impl PointsAt {
    /// Writes where a run is, for a reader of [`Self::read_place`]: the kinds of its timestamps
    /// and values (a byte each), the step or offset of its timestamps, the offset of its values,
    /// and for a grid with breaks the breaks of `ts` (its timestamps): their count, then each the
    /// index of the point after it and that point's timestamp. Eight-byte numbers, little endian.
    pub fn write_place(&self, ts: &[i64], out: &mut impl Write) -> io::Result<()> {
        let (kind, ts_word) = match self.ts {
            TsAt::Grid { step } => (0u8, step as u64),
            TsAt::At(at) => (1u8, at),
            TsAt::Broken { step } => (2u8, step as u64),
        };
        let (values_kind, values_at) = match self.values {
            ValuesAt::Doubles(at) => (0u8, at),
            ValuesAt::Cents(at) => (1u8, at),
        };
        out.write_all(&[kind, values_kind])?;
        out.write_all(&ts_word.to_le_bytes())?;
        out.write_all(&values_at.to_le_bytes())?;
        if let TsAt::Broken { step } = self.ts {
            out.write_all(&(grid_breaks(ts, step).count() as u64).to_le_bytes())?;
            for (at, t) in grid_breaks(ts, step) {
                out.write_all(&(at as u64).to_le_bytes())?;
                out.write_all(&t.to_le_bytes())?;
            }
        }
        Ok(())
    }

    /// Reads what [`Self::write_place`] wrote for a run of `n` points, its breaks (if any) into
    /// `breaks`.
    pub fn read_place(
        r: &mut impl Read,
        n: usize,
        breaks: &mut Vec<(usize, i64)>,
    ) -> io::Result<PointsAt> {
        let mut kinds = [0u8; 2];
        r.read_exact(&mut kinds)?;
        let [kind, values_kind] = kinds;
        let word = read_u64(r)?;
        let ts = match kind {
            0 => TsAt::Grid { step: word as i64 },
            1 => TsAt::At(word),
            2 => TsAt::Broken { step: word as i64 },
            _ => return Err(invalid(format!("a run's timestamp kind {kind}"))),
        };
        let at = read_u64(r)?;
        let values = match values_kind {
            0 => ValuesAt::Doubles(at),
            1 => ValuesAt::Cents(at),
            _ => return Err(invalid(format!("a run's value kind {values_kind}"))),
        };
        breaks.clear();
        if let TsAt::Broken { .. } = ts {
            for _ in 0..read_u64(r)? {
                let (at, t) = (read_u64(r)? as usize, read_u64(r)? as i64);
                if at <= breaks.last().map_or(0, |b| b.0) || at >= n {
                    return Err(invalid(format!("a run's break at point {at} of {n}")));
                }
                breaks.push((at, t));
            }
        }
        Ok(PointsAt { ts, values })
    }
}

fn read_u64(r: &mut impl Read) -> io::Result<u64> {
    let mut b = [0; 8];
    r.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// A run file being written: each run's points appended after the previous run's.
#[derive(Debug)]
pub struct RunWriter {
    file: File,
    /// Bytes given, written or still in `pending`.
    len: u64,
    /// Points on their way to `file`, written in large blocks.
    pending: Vec<u8>,
}

impl RunWriter {
    /// A new, anonymous run file in `dir`.
    pub fn new(dir: &Path) -> io::Result<RunWriter> {
        Ok(RunWriter {
            file: tempfile::tempfile_in(dir)?,
            len: 0,
            pending: Vec::with_capacity(POINTS_BUFFER),
        })
    }

    /// Appends a run (`values` one for each of `ts`, ascending); where it is. The timestamps of
    /// a grid with breaks are not stored: the caller keeps the breaks ([`grid_breaks`]).
    pub fn put(&mut self, ts: &[i64], values: ValuesSlice<'_>) -> io::Result<PointsAt> {
        debug_assert_eq!(ts.len(), values.len(), "a value for each timestamp");
        let ts = match grid_step(ts) {
            Some(step) => TsAt::Grid { step },
            None => match broken_grid(ts) {
                Some((step, _)) => TsAt::Broken { step },
                None => TsAt::At(self.put_raw(ts)?),
            },
        };
        let values = self.put_values(values)?;
        Ok(PointsAt { ts, values })
    }

    /// Everything written; the file, to be read where [`Self::put`] said.
    pub fn finish(mut self) -> io::Result<File> {
        self.file.write_all(&self.pending)?;
        Ok(self.file)
    }

    /// Appends `points` (eight bytes each); their offset.
    fn put_raw<T: Point>(&mut self, points: &[T]) -> io::Result<u64> {
        let at = self.len;
        let start = self.pending.len();
        self.pending.resize(start + 8 * points.len(), 0);
        for (out, &p) in self.pending[start..].chunks_exact_mut(8).zip(points) {
            out.copy_from_slice(&p.to_le());
        }
        self.len += 8 * points.len() as u64;
        self.flush_full()?;
        Ok(at)
    }

    /// Appends values, as hundredths keys if every one is: as they are when held as keys, else
    /// worked out from the doubles; their place.
    fn put_values(&mut self, values: ValuesSlice<'_>) -> io::Result<ValuesAt> {
        let n = values.len();
        let start = self.pending.len();
        // Each key is written as four bytes, the next one's over the last.
        self.pending.resize(start + CENTS_BYTES * n + 1, 0);
        let out = &mut self.pending[start..];
        if let Held::Keys(keys) = values.as_held() {
            for (out, key) in out.chunks_exact_mut(CENTS_BYTES).zip(keys) {
                out.copy_from_slice(&key.to_le_bytes()[..CENTS_BYTES]);
            }
        }
        let mut put = |i: usize, key: u32| {
            out[CENTS_BYTES * i..CENTS_BYTES * i + 4].copy_from_slice(&key.to_le_bytes())
        };
        let keyed = match values.as_held() {
            Held::Keys(_) => true,
            Held::Doubles(doubles) => doubles
                .iter()
                .enumerate()
                .all(|(i, &v)| cents::key(v).map(|key| put(i, key)).is_some()),
            Held::Mixed { doubles, keys } => {
                doubles.iter().zip(keys).enumerate().all(|(i, (&v, &k))| {
                    let key = if k == cents::NO_KEY {
                        cents::key(v)
                    } else {
                        Some(k)
                    };
                    key.map(|key| put(i, key)).is_some()
                })
            }
        };
        if !keyed {
            self.pending.truncate(start);
            let at = match values.as_doubles() {
                Some(doubles) => self.put_raw(doubles)?,
                None => self.put_raw(&values.to_doubles())?,
            };
            return Ok(ValuesAt::Doubles(at));
        }
        self.pending.truncate(start + CENTS_BYTES * n);
        let at = self.len;
        self.len += (CENTS_BYTES * n) as u64;
        self.flush_full()?;
        Ok(ValuesAt::Cents(at))
    }

    fn flush_full(&mut self) -> io::Result<()> {
        if self.pending.len() >= POINTS_BUFFER {
            self.file.write_all(&self.pending)?;
            self.pending.clear();
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
) -> io::Result<()> {
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
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    while !buf.is_empty() {
        match std::os::windows::fs::FileExt::seek_read(file, buf, offset) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::times::grid_breaks;
    use super::*;

    /// Each run's points read back from `file` at `at`, whole.
    fn read_back(file: &File, at: PointsAt, ts: &[i64]) -> (Vec<i64>, Vec<u64>) {
        let step = match at.ts {
            TsAt::Grid { step } | TsAt::Broken { step } => step,
            TsAt::At(_) => 0,
        };
        let breaks: Vec<(usize, i64)> = grid_breaks(ts, step).collect();
        let (mut got_ts, mut values, mut bytes) = (Vec::new(), Values::default(), Vec::new());
        let first = ts.first().copied().unwrap_or(0);
        at.read_run(
            file,
            first,
            ts.len(),
            &breaks,
            &mut bytes,
            &mut got_ts,
            &mut values,
        )
        .unwrap();
        let bits = values.into_doubles().iter().map(|v| v.to_bits()).collect();
        (got_ts, bits)
    }

    #[test]
    fn runs_of_every_form_come_back_as_written_from_an_anonymous_file() {
        let dir = tempfile::tempdir().unwrap();
        let grid: Vec<i64> = (0..200).map(|k| 1_700_000_000_000 + 60_000 * k).collect();
        let mut broken = grid.clone();
        broken.remove(150);
        broken.remove(20);
        let listed: Vec<i64> = grid
            .iter()
            .enumerate()
            .map(|(k, t)| t + (k % 2) as i64)
            .collect();
        let hundredths: Vec<f64> = (0..200)
            .map(|k| f64::from(k * 7 % 500 - 100) / 100.0)
            .collect();
        let mut others = hundredths.clone();
        others[3] = 0.1 + 0.2;
        others[9] = f64::NAN;
        let keys: Vec<u32> = hundredths.iter().map(|&v| cents::key(v).unwrap()).collect();
        let mixed = Values::keyed(&others);
        let mut w = RunWriter::new(dir.path()).unwrap();
        let mut runs = Vec::new();
        for (ts, form) in [
            (&grid[..], TsAt::Grid { step: 60_000 }),
            (&broken[..], TsAt::Broken { step: 60_000 }),
            (&listed[..], TsAt::At(0)),
        ] {
            let n = ts.len();
            for (values, as_keys) in [
                (ValuesSlice::keys(&keys[..n]), true),
                (ValuesSlice::doubles(&hundredths[..n]), true),
                (ValuesSlice::doubles(&others[..n]), false),
                (mixed.slice(0..n), false),
            ] {
                let at = w.put(ts, values).unwrap();
                let same_form = match (at.ts, form) {
                    (TsAt::At(_), TsAt::At(_)) => true,
                    (a, b) => a == b,
                };
                assert!(same_form, "{:?} stored as {:?}", form, at.ts);
                assert_eq!(matches!(at.values, ValuesAt::Cents(_)), as_keys);
                runs.push((at, ts, values.to_doubles()));
            }
        }
        let file = w.finish().unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        for (at, ts, doubles) in runs {
            let (got_ts, got) = read_back(&file, at, ts);
            assert_eq!(got_ts, ts, "{at:?}");
            let bits: Vec<u64> = doubles.iter().map(|v| v.to_bits()).collect();
            assert_eq!(got, bits, "{at:?}");
            // From the middle of a run, as a table reads a partition's share of it.
            let (mut tail, mut bytes) = (Values::default(), Vec::new());
            at.skip(5)
                .read_keyed(&file, 10, &mut bytes, &mut tail)
                .unwrap();
            let tail: Vec<u64> = tail.into_doubles().iter().map(|v| v.to_bits()).collect();
            assert_eq!(tail, bits[5..15]);
        }
    }

    #[test]
    fn a_place_reads_back_as_written_with_its_breaks_and_a_bad_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut broken: Vec<i64> = (0..200).map(|k| 60_000 * k).collect();
        broken.remove(70);
        let values = vec![1.5; broken.len()];
        let mut w = RunWriter::new(dir.path()).unwrap();
        let at = w.put(&broken, ValuesSlice::doubles(&values)).unwrap();
        assert_eq!(at.ts, TsAt::Broken { step: 60_000 });
        let mut bytes = Vec::new();
        at.write_place(&broken, &mut bytes).unwrap();
        let mut breaks = vec![(1, 1)];
        let back = PointsAt::read_place(&mut &bytes[..], broken.len(), &mut breaks).unwrap();
        assert_eq!(back, at);
        assert_eq!(breaks, [(70, 71 * 60_000)]);
        // A break past the run's end, and an unknown kind, are a damaged file.
        let short = PointsAt::read_place(&mut &bytes[..], 50, &mut breaks);
        assert_eq!(short.unwrap_err().kind(), io::ErrorKind::InvalidData);
        bytes[0] = 9;
        let bad = PointsAt::read_place(&mut &bytes[..], broken.len(), &mut breaks);
        assert_eq!(bad.unwrap_err().kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn hundredths_take_three_bytes_a_value_and_anything_else_eight() {
        let dir = tempfile::tempdir().unwrap();
        let ts: Vec<i64> = (0..100).collect();
        let hundredths: Vec<f64> = (0..100).map(|k| f64::from(k) / 100.0).collect();
        let mut w = RunWriter::new(dir.path()).unwrap();
        w.put(&ts, ValuesSlice::doubles(&hundredths)).unwrap();
        let mut thirds = hundredths.clone();
        thirds[99] = 1.0 / 3.0;
        w.put(&ts, ValuesSlice::doubles(&thirds)).unwrap();
        let file = w.finish().unwrap();
        assert_eq!(file.metadata().unwrap().len(), 100 * 3 + 100 * 8);
    }
}
