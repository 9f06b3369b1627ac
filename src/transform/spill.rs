//! Spill files: when a metrics table holds more points than its memory budget, the runs of its
//! largest partition are written out, sorted, and read back run by run when the partition's
//! batches are built. A spill is two anonymous files, as a spooled page is: the runs' points, a
//! run file ([`crate::points::file`], the format the spool writes too), and what each run is.
//!
//! The runs file holds one record per run, little endian: series id `u32`, arrival position
//! `u64`, length `u64`, first timestamp `i64`, then where its points are
//! ([`PointsAt::write_place`]). Nothing of a spilled run stays in memory.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::points::cents::{Values, ValuesSlice};
use crate::points::{PointsAt, RunWriter};

/// Buffer of each spill's runs file, written and read.
const IO_BUFFER: usize = 1 << 16;

/// A run about to be spilled: `len` points of `series` from `start` in the partition's buffers;
/// `pos` is the arrival position of its first point in the table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SpillRun {
    pub(crate) series: u32,
    pub(crate) pos: u64,
    pub(crate) start: usize,
    pub(crate) len: usize,
}

/// A sealed spill: its runs, in the order they were given, and their points.
#[derive(Debug)]
pub(crate) struct SpillFile {
    runs: File,
    points: File,
    /// The distinct series ids it holds, sorted.
    pub(crate) series: Vec<u32>,
    pub(crate) points_count: u64,
}

impl SpillFile {
    /// How many points it holds.
    pub(crate) fn points(&self) -> u64 {
        self.points_count
    }
}

/// Writes `runs` (already in merge order) of the buffers `ts`/`values` to a new spill in `dir`.
pub(crate) fn write(
    dir: &Path,
    runs: &[SpillRun],
    ts: &[i64],
    values: &[f64],
) -> io::Result<SpillFile> {
    let mut w = SpillWriter::new(dir)?;
    for run in runs {
        let range = run.start..run.start + run.len;
        let values = ValuesSlice::doubles(&values[range.clone()]);
        w.run(run.series, run.pos, &ts[range], values)?;
    }
    w.finish()
}

/// A spill being written run by run, in merge order.
pub(crate) struct SpillWriter {
    runs: BufWriter<File>,
    points: RunWriter,
    series: Vec<u32>,
    points_count: u64,
}

impl SpillWriter {
    pub(crate) fn new(dir: &Path) -> io::Result<SpillWriter> {
        Ok(SpillWriter {
            runs: BufWriter::with_capacity(IO_BUFFER, tempfile::tempfile_in(dir)?),
            points: RunWriter::new(dir)?,
            series: Vec::new(),
            points_count: 0,
        })
    }

    /// Appends a run of `series` whose first point arrived `pos`-th.
    pub(crate) fn run(
        &mut self,
        series: u32,
        pos: u64,
        ts: &[i64],
        values: ValuesSlice<'_>,
    ) -> io::Result<()> {
        let at = self.points.put(ts, values)?;
        let out = &mut self.runs;
        out.write_all(&series.to_le_bytes())?;
        out.write_all(&pos.to_le_bytes())?;
        out.write_all(&(ts.len() as u64).to_le_bytes())?;
        out.write_all(&ts.first().copied().unwrap_or(0).to_le_bytes())?;
        at.write_place(ts, out)?;
        self.series.push(series);
        self.points_count += ts.len() as u64;
        Ok(())
    }

    pub(crate) fn finish(self) -> io::Result<SpillFile> {
        let mut runs = self.runs.into_inner().map_err(|e| e.into_error())?;
        runs.seek(SeekFrom::Start(0))?;
        let mut series = self.series;
        series.sort_unstable();
        series.dedup();
        Ok(SpillFile {
            runs,
            points: self.points.finish()?,
            series,
            points_count: self.points_count,
        })
    }
}

/// What the next run of a spill is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header {
    pub(crate) series: u32,
    pub(crate) pos: u64,
    pub(crate) len: usize,
}

/// The next run of a spill: what it is and where its points are.
#[derive(Debug)]
struct Next {
    header: Header,
    first_ts: i64,
    at: PointsAt,
}

/// Reads a spill back run by run.
#[derive(Debug)]
pub(crate) struct SpillReader {
    runs: BufReader<File>,
    points: File,
    next: Option<Next>,
    breaks: Vec<(usize, i64)>,
    bytes: Vec<u8>,
}

impl SpillReader {
    pub(crate) fn open(spill: SpillFile) -> io::Result<SpillReader> {
        let mut r = SpillReader {
            runs: BufReader::with_capacity(IO_BUFFER, spill.runs),
            points: spill.points,
            next: None,
            breaks: Vec::new(),
            bytes: Vec::new(),
        };
        r.next = r.read_next()?;
        Ok(r)
    }

    /// The next run's header, or `None` at the end of the spill.
    pub(crate) fn peek(&self) -> Option<Header> {
        self.next.as_ref().map(|n| n.header)
    }

    /// Appends the next run's points to `ts` and `values` (values stored as hundredths keys as
    /// keys) and moves on to the run after it.
    pub(crate) fn read_run(&mut self, ts: &mut Vec<i64>, values: &mut Values) -> io::Result<()> {
        let Some(next) = self.next.take() else {
            return Ok(());
        };
        next.at.read_run(
            &self.points,
            next.first_ts,
            next.header.len,
            &self.breaks,
            &mut self.bytes,
            ts,
            values,
        )?;
        self.next = self.read_next()?;
        Ok(())
    }

    fn read_next(&mut self) -> io::Result<Option<Next>> {
        let mut word = [0u8; 8];
        // The end of the file exactly at a record boundary is the normal end; anywhere else it
        // is an error (`read_exact` reports it).
        let mut series = [0u8; 4];
        if self.runs.read(&mut series[..1])? == 0 {
            return Ok(None);
        }
        self.runs.read_exact(&mut series[1..])?;
        let mut u64 = || -> io::Result<u64> {
            self.runs.read_exact(&mut word)?;
            Ok(u64::from_le_bytes(word))
        };
        let (pos, len, first_ts) = (u64()?, u64()?, u64()? as i64);
        let len = usize::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "spill run too long"))?;
        let at = PointsAt::read_place(&mut self.runs, len, &mut self.breaks)?;
        Ok(Some(Next {
            header: Header {
                series: u32::from_le_bytes(series),
                pos,
                len,
            },
            first_ts,
            at,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_come_back_as_written_and_leave_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let ts = [1, 2, 3, 10, 11];
        let values = [0.5, f64::NAN, 1.5, -2.0, 3.0];
        let runs = [
            SpillRun {
                series: 7,
                pos: 103,
                start: 3,
                len: 2,
            },
            SpillRun {
                series: 2,
                pos: 100,
                start: 0,
                len: 3,
            },
        ];
        let spill = write(dir.path(), &runs, &ts, &values).unwrap();
        assert_eq!(spill.series, vec![2, 7]);
        assert_eq!(spill.points(), 5);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "the file is anonymous"
        );
        let mut r = SpillReader::open(spill).unwrap();
        let (mut t, mut v) = (Vec::new(), Values::default());
        let h = r.peek().unwrap();
        assert_eq!((h.series, h.pos, h.len), (7, 103, 2));
        r.read_run(&mut t, &mut v).unwrap();
        let h = r.peek().unwrap();
        assert_eq!((h.series, h.pos, h.len), (2, 100, 3));
        r.read_run(&mut t, &mut v).unwrap();
        assert!(r.peek().is_none());
        assert_eq!(t, vec![10, 11, 1, 2, 3]);
        let v = v.into_doubles();
        assert_eq!(v[0], -2.0);
        assert!(v[3].is_nan());
    }
}
