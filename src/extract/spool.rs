//! A page's series between the response and the transform stage. A page is handed on only once
//! it has completely succeeded (a failed attempt's series must not reach the tables), so its
//! series wait here; past [`MEMORY_POINTS`] they go to an anonymous temporary file, which keeps
//! memory bounded whatever the size of a request.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use crate::tsdb::{OwnedSeries, Series, SeriesSink};

/// Points held in memory per page before spooling to disk: 4 MiB of (ts, value), so the pages
/// in flight together stay a small part of the memory budget.
const MEMORY_POINTS: usize = 1 << 18;

/// The series of one page, in arrival order.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    memory: Vec<OwnedSeries>,
    memory_points: usize,
    file: Option<BufWriter<File>>,
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
            error: None,
        }
    }

    fn overflow(&mut self) -> std::io::Result<()> {
        if self.file.is_none() {
            self.file = Some(BufWriter::with_capacity(
                1 << 20,
                tempfile::tempfile_in(&self.dir)?,
            ));
        }
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        for series in self.memory.drain(..) {
            write_series(file, &series.as_series())?;
        }
        self.memory_points = 0;
        Ok(())
    }

    /// Hands every series, in arrival order, to `sink`. Fails if spooling to disk failed.
    pub fn replay(mut self, sink: &mut impl SeriesSink) -> std::io::Result<()> {
        if let Some(error) = self.error.take() {
            return Err(error);
        }
        if let Some(file) = self.file.take() {
            let mut file = file.into_inner().map_err(|e| e.into_error())?;
            file.seek(SeekFrom::Start(0))?;
            let mut reader = BufReader::with_capacity(1 << 20, file);
            let mut series = OwnedSeries::default();
            while read_series(&mut reader, &mut series)? {
                sink.series(series.as_series());
            }
        }
        for series in &self.memory {
            sink.series(series.as_series());
        }
        Ok(())
    }
}

impl SeriesSink for Spool {
    fn series(&mut self, series: Series<'_>) {
        if self.error.is_some() {
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

fn write_series(out: &mut impl Write, s: &Series<'_>) -> std::io::Result<()> {
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
    out.write_all(&(s.timestamps_ms.len() as u64).to_le_bytes())?;
    for ts in s.timestamps_ms {
        out.write_all(&ts.to_le_bytes())?;
    }
    for v in s.values {
        out.write_all(&v.to_le_bytes())?;
    }
    Ok(())
}

fn read_u32(r: &mut impl Read) -> std::io::Result<u32> {
    let mut b = [0; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_le_bytes(b))
}

fn read_u64(r: &mut impl Read) -> std::io::Result<u64> {
    let mut b = [0; 8];
    r.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

fn read_str(r: &mut impl Read, into: &mut String) -> std::io::Result<()> {
    let len = read_u32(r)? as usize;
    let mut bytes = vec![0; len];
    r.read_exact(&mut bytes)?;
    *into = String::from_utf8(bytes)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    Ok(())
}

/// Reads the next series into `s`; `false` at the end of the spool.
fn read_series(r: &mut impl Read, s: &mut OwnedSeries) -> std::io::Result<bool> {
    let mut first = [0; 4];
    match r.read_exact(&mut first) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(false),
        Err(e) => return Err(e),
    }
    let mut metric = vec![0; u32::from_le_bytes(first) as usize];
    r.read_exact(&mut metric)?;
    s.metric = String::from_utf8(metric)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    let tags = read_u32(r)? as usize;
    s.tags.resize(tags, Default::default());
    for (k, v) in s.tags.iter_mut() {
        read_str(r, k)?;
        read_str(r, v)?;
    }
    let aggregate = read_u32(r)? as usize;
    s.aggregate_tags.resize(aggregate, String::new());
    for t in s.aggregate_tags.iter_mut() {
        read_str(r, t)?;
    }
    let index = read_u64(r)?;
    s.query_index = (index != u64::MAX).then_some(index as usize);
    let n = read_u64(r)? as usize;
    s.timestamps_ms.clear();
    s.values.clear();
    let mut b = [0; 8];
    for _ in 0..n {
        r.read_exact(&mut b)?;
        s.timestamps_ms.push(i64::from_le_bytes(b));
    }
    for _ in 0..n {
        r.read_exact(&mut b)?;
        s.values.push(f64::from_le_bytes(b));
    }
    Ok(true)
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
