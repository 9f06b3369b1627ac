//! Spill files: when a metrics table holds more points than its memory budget, the runs of its
//! largest partition are written out, sorted, to an anonymous temporary file and read back run
//! by run when the partition's batches are built.
//!
//! The files are unnamed (`O_TMPFILE` on Linux, created and unlinked at once elsewhere, through
//! `tempfile::tempfile_in`): they never show up in a folder listing, and the operating system
//! frees them when the handle is closed — when the partition's rows are done, dropped, fail, or
//! the process is killed. Nothing can be left behind.
//!
//! Format, little endian, one record per run: series id `u32`, arrival position `u64`, length
//! `u64`, then `length` timestamps (`i64`) and `length` values (`f64`). Plain columns rather than
//! Arrow IPC: a run is read straight into the merge's buffers, with no schema or framing to parse.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// Buffer of each spill file's writer.
const IO_BUFFER: usize = 1 << 18;

/// Buffer of each spill file's reader: a partition merges one reader per spill, and a long page
/// (ten days of a thousand VMs) leaves a hundred and more spills per partition, so this is kept to
/// a few runs' worth.
const READ_BUFFER: usize = 1 << 16;

/// Bytes of a run's header: series id, arrival position, length.
const HEADER: usize = 4 + 8 + 8;

/// A run about to be spilled: `len` points of `series` from `start` in the partition's buffers;
/// `pos` is the arrival position of its first point in the table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SpillRun {
    pub(crate) series: u32,
    pub(crate) pos: u64,
    pub(crate) start: usize,
    pub(crate) len: usize,
}

/// A sealed spill file: its runs, in the order they were given.
#[derive(Debug)]
pub(crate) struct SpillFile {
    file: File,
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
        w.run(run.series, run.pos, &ts[range.clone()], &values[range])?;
    }
    w.finish()
}

/// A spill file being written run by run, in merge order.
pub(crate) struct SpillWriter {
    w: BufWriter<File>,
    bytes: Vec<u8>,
    series: Vec<u32>,
    points: u64,
}

impl SpillWriter {
    pub(crate) fn new(dir: &Path) -> io::Result<SpillWriter> {
        Ok(SpillWriter {
            w: BufWriter::with_capacity(IO_BUFFER, tempfile::tempfile_in(dir)?),
            bytes: Vec::new(),
            series: Vec::new(),
            points: 0,
        })
    }

    /// Appends a run of `series` whose first point arrived `pos`-th.
    pub(crate) fn run(
        &mut self,
        series: u32,
        pos: u64,
        ts: &[i64],
        values: &[f64],
    ) -> io::Result<()> {
        let bytes = &mut self.bytes;
        bytes.clear();
        bytes.reserve(HEADER + ts.len() * 16);
        bytes.extend_from_slice(&series.to_le_bytes());
        bytes.extend_from_slice(&pos.to_le_bytes());
        bytes.extend_from_slice(&(ts.len() as u64).to_le_bytes());
        bytes.extend(ts.iter().flat_map(|t| t.to_le_bytes()));
        bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        self.w.write_all(bytes)?;
        self.series.push(series);
        self.points += ts.len() as u64;
        Ok(())
    }

    pub(crate) fn finish(self) -> io::Result<SpillFile> {
        let mut file = self.w.into_inner().map_err(|e| e.into_error())?;
        file.seek(SeekFrom::Start(0))?;
        let mut series = self.series;
        series.sort_unstable();
        series.dedup();
        Ok(SpillFile {
            file,
            series,
            points: self.points,
        })
    }
}

/// The header of the next run in a spill file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header {
    pub(crate) series: u32,
    pub(crate) pos: u64,
    pub(crate) len: usize,
}

/// Reads a spill file back run by run.
#[derive(Debug)]
pub(crate) struct SpillReader {
    reader: BufReader<File>,
    next: Option<Header>,
    bytes: Vec<u8>,
}

impl SpillReader {
    pub(crate) fn open(spill: SpillFile) -> io::Result<SpillReader> {
        let mut r = SpillReader {
            reader: BufReader::with_capacity(READ_BUFFER, spill.file),
            next: None,
            bytes: Vec::new(),
        };
        r.next = r.read_header()?;
        Ok(r)
    }

    /// The next run's header, or `None` at the end of the file.
    pub(crate) fn peek(&self) -> Option<Header> {
        self.next
    }

    /// Appends the next run's points to `ts` and `values` and moves on to the run after it.
    pub(crate) fn read_run(&mut self, ts: &mut Vec<i64>, values: &mut Vec<f64>) -> io::Result<()> {
        let Some(header) = self.next else {
            return Ok(());
        };
        self.bytes.resize(header.len * 8, 0);
        self.reader.read_exact(&mut self.bytes)?;
        ts.extend(
            self.bytes
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap_or_default())),
        );
        self.reader.read_exact(&mut self.bytes)?;
        values.extend(
            self.bytes
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or_default())),
        );
        self.next = self.read_header()?;
        Ok(())
    }

    fn read_header(&mut self) -> io::Result<Option<Header>> {
        let mut h = [0u8; HEADER];
        // End of file exactly at a record boundary is the normal end; anywhere else it is an
        // error (`read_exact` reports it).
        let n = self.reader.read(&mut h[..1])?;
        if n == 0 {
            return Ok(None);
        }
        self.reader.read_exact(&mut h[1..])?;
        let u32_at = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        let u64_at = |i: usize| (u64::from(u32_at(i + 4)) << 32) | u64::from(u32_at(i));
        let len = usize::try_from(u64_at(12))
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "spill run too long"))?;
        Ok(Some(Header {
            series: u32_at(0),
            pos: u64_at(4),
            len,
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
        assert_eq!(spill.points, 5);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "the file is anonymous"
        );
        let mut r = SpillReader::open(spill).unwrap();
        let (mut t, mut v) = (Vec::new(), Vec::new());
        let h = r.peek().unwrap();
        assert_eq!((h.series, h.pos, h.len), (7, 103, 2));
        r.read_run(&mut t, &mut v).unwrap();
        let h = r.peek().unwrap();
        assert_eq!((h.series, h.pos, h.len), (2, 100, 3));
        r.read_run(&mut t, &mut v).unwrap();
        assert!(r.peek().is_none());
        assert_eq!(t, vec![10, 11, 1, 2, 3]);
        assert_eq!(v[0], -2.0);
        assert!(v[3].is_nan());
    }
}
