//! A page's series between the response and the transform stage. A page is handed on only once
//! it has completely succeeded (a failed attempt's series must not reach the tables), so its
//! series wait here; past [`MEMORY_POINTS`] they go to an anonymous temporary file, which keeps
//! memory bounded whatever the size of a request.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::Arc;

use crate::tsdb::{OwnedSeries, Series, SeriesSink};

/// Points held in memory per page before spooling to disk: 1 MiB of (ts, value), so the pages
/// in flight together stay a small part of the memory budget.
const MEMORY_POINTS: usize = 1 << 16;

/// Read and write buffer of a spool file.
const IO_BUFFER: usize = 1 << 20;

/// Where a spooled series has gone: what [`Spool::hand_over`] gives for each series of a page
/// that overflowed to disk. The points stay in the page's file, `8 × n` bytes of little-endian
/// timestamps from `ts_at`, then as many of values from `values_at`; the file (anonymous, freed
/// with its last handle) lives as long as something holds it.
pub trait SpoolSink: SeriesSink {
    /// `series` has every timestamp but no values (`series.values` is empty).
    fn spooled(&mut self, series: Series<'_>, file: &Arc<File>, ts_at: u64, values_at: u64);
}

/// The series of one page, in arrival order.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    memory: Vec<OwnedSeries>,
    memory_points: usize,
    file: Option<BufWriter<File>>,
    /// A series' points as bytes, on their way to the file.
    scratch: Vec<u8>,
    error: Option<std::io::Error>,
}

impl Spool {
    /// A spool whose overflow file (unlinked at once, so never visible) lives in `dir`.
    pub fn new(dir: PathBuf) -> Spool {
        Spool {
            dir,
            memory: Vec::new(),
            memory_points: 0,
            file: None,
            scratch: Vec::new(),
            error: None,
        }
    }

    /// Moves the series held in memory to the file, which is created on first use.
    fn overflow(&mut self) -> std::io::Result<()> {
        if self.file.is_none() {
            self.file = Some(BufWriter::with_capacity(
                IO_BUFFER,
                tempfile::tempfile_in(&self.dir)?,
            ));
        }
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        for series in self.memory.drain(..) {
            write_series(file, &series.as_series(), &mut self.scratch)?;
        }
        self.memory_points = 0;
        Ok(())
    }

    /// The file with everything written to it and its position back at the start, if the page
    /// overflowed to disk.
    fn into_file(mut self) -> std::io::Result<(Option<File>, Vec<OwnedSeries>)> {
        if let Some(error) = self.error.take() {
            return Err(error);
        }
        let Some(file) = self.file.take() else {
            return Ok((None, std::mem::take(&mut self.memory)));
        };
        let mut file = file.into_inner().map_err(|e| e.into_error())?;
        file.seek(SeekFrom::Start(0))?;
        Ok((Some(file), std::mem::take(&mut self.memory)))
    }

    /// Hands every series, in arrival order, to `sink`. Fails if spooling to disk failed.
    pub fn replay(self, sink: &mut impl SeriesSink) -> std::io::Result<()> {
        let (file, memory) = self.into_file()?;
        if let Some(file) = file {
            let mut reader = SpoolReader::new(file);
            let mut series = OwnedSeries::default();
            while let Some(n) = reader.header(&mut series)? {
                reader.points(n, &mut series.timestamps_ms, i64::from_le_bytes)?;
                reader.points(n, &mut series.values, f64::from_le_bytes)?;
                sink.series(series.as_series());
            }
        }
        for series in &memory {
            sink.series(series.as_series());
        }
        Ok(())
    }

    /// Hands every series, in arrival order, to `sink`: as a whole series while the page fitted
    /// in memory; else with its timestamps and its place in the spool's file (see
    /// [`SpoolSink`]), so that the values are read back from disk only when they are written
    /// out, rather than copied into memory and spilled again.
    pub fn hand_over(mut self, sink: &mut impl SpoolSink) -> std::io::Result<()> {
        if self.file.is_some() && self.error.is_none() {
            // The last series go to the file too, so every series of the page is in one place.
            if let Err(e) = self.overflow() {
                self.error = Some(e);
            }
        }
        let (file, memory) = self.into_file()?;
        let Some(file) = file else {
            for series in &memory {
                sink.series(series.as_series());
            }
            return Ok(());
        };
        let shared = Arc::new(file.try_clone()?);
        let mut reader = SpoolReader::new(file);
        let mut series = OwnedSeries::default();
        while let Some(n) = reader.header(&mut series)? {
            let ts_at = reader.at;
            reader.points(n, &mut series.timestamps_ms, i64::from_le_bytes)?;
            let values_at = reader.at;
            reader.skip(n as u64 * 8)?;
            series.values.clear();
            sink.spooled(series.as_series(), &shared, ts_at, values_at);
        }
        Ok(())
    }
}

impl SeriesSink for Spool {
    fn series(&mut self, series: Series<'_>) {
        if self.error.is_some() {
            return;
        }
        if let Some(file) = self.file.as_mut() {
            // Past the first overflow, straight to the file.
            if let Err(e) = write_series(file, &series, &mut self.scratch) {
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

/// One series: its header, then its timestamps, then its values, little-endian. `scratch` holds
/// the points' bytes so they are written in one call per array.
fn write_series(
    out: &mut impl Write,
    s: &Series<'_>,
    scratch: &mut Vec<u8>,
) -> std::io::Result<()> {
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
    let n = s.timestamps_ms.len().min(s.values.len());
    out.write_all(&(n as u64).to_le_bytes())?;
    scratch.clear();
    scratch.extend(s.timestamps_ms[..n].iter().flat_map(|t| t.to_le_bytes()));
    scratch.extend(s.values[..n].iter().flat_map(|v| v.to_le_bytes()));
    out.write_all(scratch)
}

/// Reads a spool file from its start, keeping count of the offset.
struct SpoolReader {
    r: BufReader<File>,
    at: u64,
    bytes: Vec<u8>,
}

impl SpoolReader {
    fn new(file: File) -> SpoolReader {
        SpoolReader {
            r: BufReader::with_capacity(IO_BUFFER, file),
            at: 0,
            bytes: Vec::new(),
        }
    }

    fn exact(&mut self, buf: &mut [u8]) -> std::io::Result<()> {
        self.r.read_exact(buf)?;
        self.at += buf.len() as u64;
        Ok(())
    }

    fn u32(&mut self) -> std::io::Result<u32> {
        let mut b = [0; 4];
        self.exact(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn u64(&mut self) -> std::io::Result<u64> {
        let mut b = [0; 8];
        self.exact(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn string(&mut self, into: &mut String) -> std::io::Result<()> {
        let len = self.u32()? as usize;
        let mut bytes = vec![0; len];
        self.exact(&mut bytes)?;
        *into = String::from_utf8(bytes)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        Ok(())
    }

    /// Reads the next series' header into `s`; its number of points, or `None` at the end.
    fn header(&mut self, s: &mut OwnedSeries) -> std::io::Result<Option<usize>> {
        let mut first = [0; 4];
        match self.exact(&mut first) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        let mut metric = vec![0; u32::from_le_bytes(first) as usize];
        self.exact(&mut metric)?;
        s.metric = String::from_utf8(metric)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
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
        Ok(Some(self.u64()? as usize))
    }

    /// Reads `n` eight-byte points into `into`, replacing what it held.
    fn points<T>(
        &mut self,
        n: usize,
        into: &mut Vec<T>,
        decode: fn([u8; 8]) -> T,
    ) -> std::io::Result<()> {
        let mut bytes = std::mem::take(&mut self.bytes);
        bytes.resize(n * 8, 0);
        let read = self.exact(&mut bytes);
        into.clear();
        into.extend(bytes.chunks_exact(8).map(|c| {
            let mut b = [0; 8];
            b.copy_from_slice(c);
            decode(b)
        }));
        self.bytes = bytes;
        read
    }

    fn skip(&mut self, bytes: u64) -> std::io::Result<()> {
        self.r.seek_relative(bytes as i64)?;
        self.at += bytes;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(i: usize, points: usize) -> OwnedSeries {
        OwnedSeries {
            metric: format!("vscope.vm.m{}", i % 3),
            tags: vec![
                ("vm".into(), format!("vm-{i}")),
                ("x".into(), "été\n/".into()),
            ],
            aggregate_tags: if i % 2 == 0 {
                vec!["env".into()]
            } else {
                vec![]
            },
            query_index: (i % 4 != 0).then_some(i),
            timestamps_ms: (0..points as i64).map(|t| t * 60_000 + i as i64).collect(),
            values: (0..points)
                .map(|t| if t % 7 == 0 { f64::NAN } else { t as f64 / 3.0 })
                .collect(),
        }
    }

    /// Compares with NaN equal to NaN, as the values' bits.
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

    /// Collects what [`Spool::hand_over`] gives, reading spooled points back at their offsets.
    #[cfg(unix)]
    #[derive(Default)]
    struct Collect(Vec<OwnedSeries>, usize);

    #[cfg(unix)]
    impl SeriesSink for Collect {
        fn series(&mut self, series: Series<'_>) {
            self.0.push(series.to_owned_series());
        }
    }

    #[cfg(unix)]
    impl SpoolSink for Collect {
        fn spooled(&mut self, series: Series<'_>, file: &Arc<File>, ts_at: u64, values_at: u64) {
            use std::os::unix::fs::FileExt;
            assert!(series.values.is_empty());
            let n = series.timestamps_ms.len();
            let mut bytes = vec![0; 8 * n];
            file.read_exact_at(&mut bytes, ts_at).unwrap();
            let ts: Vec<i64> = bytes
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
                .collect();
            assert_eq!(ts, series.timestamps_ms, "the timestamps are where it says");
            file.read_exact_at(&mut bytes, values_at).unwrap();
            let mut owned = series.to_owned_series();
            owned.values = bytes
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                .collect();
            self.0.push(owned);
            self.1 += 1;
        }
    }

    #[test]
    #[cfg(unix)]
    fn a_page_handed_over_is_whole_in_memory_or_at_its_place_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        for (count, points) in [(3, 10), (40, 60_000)] {
            let sent: Vec<OwnedSeries> = (0..count).map(|i| series(i, points)).collect();
            let mut spool = Spool::new(dir.path().to_path_buf());
            for s in &sent {
                spool.series(s.as_series());
            }
            let mut got = Collect::default();
            spool.hand_over(&mut got).unwrap();
            let on_disk = count * points > MEMORY_POINTS;
            assert_eq!(got.1, if on_disk { count } else { 0 }, "{count}×{points}");
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
            let sent: Vec<OwnedSeries> = (0..count).map(|i| series(i, points)).collect();
            let mut spool = Spool::new(dir.path().to_path_buf());
            for s in &sent {
                spool.series(s.as_series());
            }
            assert_eq!(
                spool.file.is_some(),
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
            "the overflow file is never visible"
        );
    }
}
