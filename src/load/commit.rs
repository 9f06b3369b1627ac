//! A run's commit: the queue of partition writers (one encodes on its own core while the run
//! fetches and parses on the other), the partitions a failed page holds back, the job's
//! partitions that got no rows this time, and where the run's committed time ends.

use std::collections::VecDeque;
use std::sync::Arc;

use anyhow::Context;
use arrow::array::RecordBatch;
use chrono::{DateTime, Utc};
use tokio::task::JoinHandle;

use super::{Destination, FileProvenance, LoadError, TableLayout, WrittenFile};
use crate::domain::partition::PartitionKey;
use crate::domain::table::Table;
use crate::job::{Job, Window};
use crate::transform::{self, PartitionRows};

/// Writers of partitions in flight at once. One encodes on its own core while the runtime
/// fetches and parses on the other; more would only hold more partitions in memory.
const MAX_WRITERS: usize = 1;

/// A page that failed for good, for the summary, the manifest and the exit code.
#[derive(Debug, Clone)]
pub struct FailedPage {
    pub table: Table,
    pub service_name: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub error: String,
}

/// A run that stopped after some partitions were committed: each committed partition is whole,
/// but the job's state did not move and no manifest was written. Reads as the error it wraps.
#[derive(Debug)]
pub struct StoppedAfterCommit {
    /// Files committed before the error.
    pub files: usize,
    error: Box<dyn std::error::Error + Send + Sync>,
}

impl StoppedAfterCommit {
    pub fn wrap(error: anyhow::Error, files: usize) -> anyhow::Error {
        anyhow::Error::new(StoppedAfterCommit {
            files,
            error: error.into(),
        })
    }

    /// `error` as it is when no file was committed, else wrapped.
    pub fn after(error: anyhow::Error, files: usize) -> anyhow::Error {
        match files {
            0 => error,
            files => StoppedAfterCommit::wrap(error, files),
        }
    }
}

impl std::fmt::Display for StoppedAfterCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for StoppedAfterCommit {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.source()
    }
}

/// What a run committed, once every writer is done.
#[derive(Debug)]
pub struct Committed {
    pub files: Vec<WrittenFile>,
    /// Partition folders (`<table>/<partition>`) left as they were because a failed page covers
    /// them.
    pub skipped: Vec<String>,
    pub failed: Vec<FailedPage>,
    /// Everything before this is committed: the window's end, or the start of the earliest
    /// partition left as it was or page that failed (within the window).
    pub until: DateTime<Utc>,
    /// In a Delta output, each table the run committed to and the version its commit made.
    pub table_versions: std::collections::BTreeMap<String, u64>,
}

/// Writes a run's partitions, on blocking tasks.
pub struct Commit<'a> {
    destination: &'a Destination,
    job: &'a Job,
    window: Window,
    provenance: Arc<FileProvenance>,
    failed: Vec<FailedPage>,
    files: Vec<WrittenFile>,
    /// Partitions left as they were because a failed page covers them.
    skipped: Vec<(Table, PartitionKey)>,
    /// Partitions written (or held back) by this run, per table.
    seen: Vec<(Table, PartitionKey)>,
    writers: VecDeque<JoinHandle<anyhow::Result<Option<WrittenFile>>>>,
}

impl<'a> Commit<'a> {
    pub fn new(
        destination: &'a Destination,
        job: &'a Job,
        window: Window,
        provenance: FileProvenance,
    ) -> Commit<'a> {
        Commit {
            destination,
            job,
            window,
            provenance: Arc::new(provenance),
            failed: Vec::new(),
            files: Vec::new(),
            skipped: Vec::new(),
            seen: Vec::new(),
            writers: VecDeque::new(),
        }
    }

    /// How many files readers can see so far: every file written, or in a Delta output, none
    /// before [`Commit::finish`] commits them.
    pub fn files_written(&self) -> usize {
        if self.destination.is_transactional() {
            return 0;
        }
        self.files.len()
    }

    /// A page failed for good: the partitions it covers keep their previous files.
    pub fn page_failed(&mut self, page: FailedPage) {
        self.failed.push(page);
    }

    /// Writes one complete partition of a metrics table, merged with the job's earlier rows
    /// outside the window, unless a failed page covers it.
    pub async fn partition(
        &mut self,
        table: Table,
        key: PartitionKey,
        rows: PartitionRows,
    ) -> anyhow::Result<()> {
        self.seen.push((table, key.clone()));
        if self.held_back(table, &key) {
            return Ok(());
        }
        while self.writers.len() >= MAX_WRITERS {
            self.wait_one().await?;
        }
        let layout = self.destination.layout(table);
        let name = table.name();
        let destination = self.destination.clone();
        let provenance = Arc::clone(&self.provenance);
        let (job, level) = (self.provenance.owner(), self.job.output.compression_level);
        let (start_ms, end_ms) = self.window_ms();
        self.writers.push_back(tokio::task::spawn_blocking(move || {
            let written = if destination.job_partition_within(name, &key, &job, start_ms, end_ms)? {
                destination.replace_job_partition_runs(&layout, &key, &provenance, level, rows)
            } else {
                let old = destination.read_job_partition(name, &key, &job)?;
                let merged =
                    transform::merge_outside_window_rows(table, old, start_ms, end_ms, rows);
                destination.replace_job_partition_stream(&layout, &key, &provenance, level, merged)
            };
            crate::sys::release_free_memory();
            Ok(written?)
        }));
        Ok(())
    }

    async fn wait_one(&mut self) -> anyhow::Result<()> {
        if let Some(writer) = self.writers.pop_front() {
            let written = writer.await.context("a partition writer stopped")??;
            self.files.extend(written);
        }
        Ok(())
    }

    /// Waits for every writer.
    pub async fn flush(&mut self) -> anyhow::Result<()> {
        while !self.writers.is_empty() {
            self.wait_one().await?;
        }
        Ok(())
    }

    /// The job's partitions of the window that got no rows this time: their source data is
    /// gone, so only their rows outside the window stay.
    pub fn vanished(&mut self, table: Table) -> anyhow::Result<()> {
        let layout = self.destination.layout(table);
        let name = table.name();
        let (start_ms, end_ms) = self.window_ms();
        let owner = self.provenance.owner();
        for key in self.destination.job_partitions(name, &owner)? {
            let seen = self.seen.iter().any(|(t, k)| *t == table && *k == key);
            if seen
                || !overlaps(&key, self.window.start, self.window.end)
                || self.held_back(table, &key)
            {
                continue;
            }
            let old = self.destination.read_job_partition(name, &key, &owner)?;
            // The rows' own schema (milliseconds), whatever the file's.
            let empty = RecordBatch::new_empty(super::layout(table).schema);
            let rows = transform::merge_outside_window(table, &old, start_ms, end_ms, &empty)?;
            self.write(&layout, &key, rows)?;
        }
        Ok(())
    }

    /// An inventory table's partition: replaced whole by this snapshot.
    pub fn replace(
        &mut self,
        table: Table,
        key: &PartitionKey,
        batch: RecordBatch,
    ) -> anyhow::Result<()> {
        self.write(&self.destination.layout(table), key, batch)
    }

    /// Makes what the run wrote visible (a Delta output's transactions) and says what it
    /// committed; call after [`Commit::flush`].
    pub fn finish(self) -> anyhow::Result<Committed> {
        let versions = self
            .destination
            .publish(&self.provenance.run_id)
            .map_err(|error| match error {
                LoadError::PartlyCommitted { files, source } => {
                    StoppedAfterCommit::wrap((*source).into(), files)
                }
                error => error.into(),
            })?;
        for (table, version) in &versions {
            tracing::info!(
                table = table.name(),
                version,
                "Committed the run's files to the Delta table."
            );
        }
        let until = self.committed_until();
        let skipped = self
            .skipped
            .iter()
            .map(|(name, key)| Ok(format!("{name}/{}", key.relative_dir()?.display())))
            .collect::<anyhow::Result<Vec<String>>>()?;
        Ok(Committed {
            files: self.files,
            skipped,
            failed: self.failed,
            until,
            table_versions: versions
                .into_iter()
                .map(|(table, version)| (table.name().to_string(), version))
                .collect(),
        })
    }

    fn window_ms(&self) -> (i64, i64) {
        (
            self.window.start.timestamp_millis(),
            self.window.end.timestamp_millis(),
        )
    }

    /// Whether a failed page covers the partition, which then keeps its previous file.
    fn held_back(&mut self, table: Table, key: &PartitionKey) -> bool {
        let held = self
            .failed
            .iter()
            .any(|f| f.table == table && overlaps(key, f.start, f.end));
        if held && !self.skipped.iter().any(|(t, k)| *t == table && k == key) {
            self.skipped.push((table, key.clone()));
        }
        held
    }

    /// Everything before this is committed: the window's end, or the start of the earliest
    /// partition left as it was (within the window).
    fn committed_until(&self) -> DateTime<Utc> {
        self.skipped
            .iter()
            .map(|(_, key)| match key.span_ms() {
                Some((from, _)) => millis(from).max(self.window.start),
                None => self.window.start,
            })
            .chain(self.failed.iter().map(|f| f.start))
            .min()
            .unwrap_or(self.window.end)
            .min(self.window.end)
    }

    fn write(
        &mut self,
        layout: &TableLayout,
        key: &PartitionKey,
        rows: RecordBatch,
    ) -> anyhow::Result<()> {
        let written = self.destination.replace_job_partition(
            layout,
            key,
            &self.provenance,
            self.job.output.compression_level,
            &[rows],
        )?;
        self.files.extend(written);
        Ok(())
    }
}

fn millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// Whether a partition meets `[start, end)`; one without a time column meets every range.
fn overlaps(key: &PartitionKey, start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
    key.span_ms()
        .is_none_or(|(from, to)| millis(from) < end && start < millis(to))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(column: &'static str, value: &str) -> PartitionKey {
        PartitionKey::new(vec![(column, Some(value.to_string()))])
    }

    fn at(t: &str) -> DateTime<Utc> {
        t.parse().unwrap()
    }

    #[test]
    fn a_failed_page_holds_back_exactly_the_partitions_it_touches() {
        let (s, e) = (at("2026-11-01T23:00:00Z"), at("2026-11-02T00:00:00Z"));
        assert!(overlaps(&key("date", "2026-11-01"), s, e));
        assert!(
            !overlaps(&key("date", "2026-11-02"), s, e),
            "the end is exclusive"
        );
        assert!(overlaps(&key("month", "2026-11"), s, e));
        assert!(!overlaps(&key("month", "2026-12"), s, e));
        assert!(overlaps(
            &key("month", "2026-12"),
            at("2026-12-31T23:00:00Z"),
            at("2027-01-01T01:00:00Z")
        ));
        assert!(overlaps(&key("service_name", "pcc-1"), s, e));
    }
}
