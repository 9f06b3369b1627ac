//! Spill files: when a metrics table holds more points than its memory budget, the runs of its
//! largest partition are written out, sorted, to a run file ([`crate::points::file`], the format
//! the spool writes too) and read back run by run when the partition's batches are built.
//!
//! The file holds the runs' points only; what each run is (its series, its arrival position, its
//! length, where its points are and a grid's first timestamp and breaks) stays in memory with the
//! file, some 60 bytes a run against the kilobytes of its points.

use std::fs::File;
use std::io;
use std::ops::Range;
use std::path::Path;

use crate::points::cents::{Values, ValuesSlice};
use crate::points::times::grid_breaks;
use crate::points::{PointsAt, RunWriter, TsAt};

/// A run about to be spilled: `len` points of `series` from `start` in the partition's buffers;
/// `pos` is the arrival position of its first point in the table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SpillRun {
    pub(crate) series: u32,
    pub(crate) pos: u64,
    pub(crate) start: usize,
    pub(crate) len: usize,
}

/// A spilled run: what it is, and where its points are.
#[derive(Debug, Clone)]
struct Spilled {
    header: Header,
    at: PointsAt,
    first_ts: i64,
    /// Its grid's breaks, in [`SpillFile::breaks`].
    breaks: Range<usize>,
}

/// A sealed spill file: its runs, in the order they were given.
#[derive(Debug)]
pub(crate) struct SpillFile {
    file: File,
    runs: Vec<Spilled>,
    breaks: Vec<(usize, i64)>,
    /// The distinct series ids it holds, sorted.
    pub(crate) series: Vec<u32>,
    pub(crate) points: u64,
}

/// Writes `runs` (already in merge order) of the buffers `ts`/`values` to a new anonymous file in
/// `dir`.
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

/// A spill file being written run by run, in merge order.
pub(crate) struct SpillWriter {
    w: RunWriter,
    runs: Vec<Spilled>,
    breaks: Vec<(usize, i64)>,
}

impl SpillWriter {
    pub(crate) fn new(dir: &Path) -> io::Result<SpillWriter> {
        Ok(SpillWriter {
            w: RunWriter::new(dir)?,
            runs: Vec::new(),
            breaks: Vec::new(),
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
        let at = self.w.put(ts, values)?;
        let from = self.breaks.len();
        if let TsAt::Broken { step } = at.ts {
            self.breaks.extend(grid_breaks(ts, step));
        }
        self.runs.push(Spilled {
            header: Header {
                series,
                pos,
                len: ts.len(),
            },
            at,
            first_ts: ts.first().copied().unwrap_or(0),
            breaks: from..self.breaks.len(),
        });
        Ok(())
    }

    pub(crate) fn finish(self) -> io::Result<SpillFile> {
        let file = self.w.finish()?;
        let mut series: Vec<u32> = self.runs.iter().map(|r| r.header.series).collect();
        series.sort_unstable();
        series.dedup();
        Ok(SpillFile {
            file,
            points: self.runs.iter().map(|r| r.header.len as u64).sum(),
            runs: self.runs,
            breaks: self.breaks,
            series,
        })
    }
}

/// What the next run of a spill file is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header {
    pub(crate) series: u32,
    pub(crate) pos: u64,
    pub(crate) len: usize,
}

/// Reads a spill file back run by run.
#[derive(Debug)]
pub(crate) struct SpillReader {
    spill: SpillFile,
    next: usize,
    bytes: Vec<u8>,
}

impl SpillReader {
    pub(crate) fn open(spill: SpillFile) -> io::Result<SpillReader> {
        Ok(SpillReader {
            spill,
            next: 0,
            bytes: Vec::new(),
        })
    }

    /// The next run's header, or `None` at the end of the file.
    pub(crate) fn peek(&self) -> Option<Header> {
        self.spill.runs.get(self.next).map(|r| r.header)
    }

    /// Appends the next run's points to `ts` and `values` (values stored as hundredths keys as
    /// keys) and moves on to the run after it.
    pub(crate) fn read_run(&mut self, ts: &mut Vec<i64>, values: &mut Values) -> io::Result<()> {
        let Some(run) = self.spill.runs.get(self.next) else {
            return Ok(());
        };
        self.next += 1;
        run.at.read_run(
            &self.spill.file,
            run.first_ts,
            run.header.len,
            &self.spill.breaks[run.breaks.clone()],
            &mut self.bytes,
            ts,
            values,
        )
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
        assert_eq!(spill.points, 5);
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
