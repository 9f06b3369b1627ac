//! One run of one job, start to finish: resolve the window, connect (starting the in-process
//! simulator when the job asks for it), snapshot the inventory, plan, extract, transform and
//! commit partition by partition. Returns what happened; printing is the CLI's business.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use arrow::array::RecordBatch;
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use futures_util::StreamExt;
use serde::Serialize;

use crate::domain::partition::PartitionKey;
use crate::extract::{self, PageStats, ParsedPoints};
use crate::job::{Api, Component, Job, TimeExpr, Window};
use crate::load::state::JobState;
use crate::load::{self, Destination, FileProvenance, TableLayout, WrittenFile};
use crate::ovh::{self, inventory::Inventory};
use crate::plan::{self, Plan, ServiceScope};
use crate::transform::{self, InventoryIndex, MetricsTable, PartitionRows};
use crate::tsdb;

mod connect;
mod simulator;

use connect::connect;

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

/// What the command line may change about a job for one run.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub output: Option<String>,
    pub start: Option<String>,
    pub end: Option<String>,
    pub concurrency: Option<usize>,
}

/// A page that failed for good, for the summary and the exit code.
#[derive(Debug, Clone)]
pub struct FailedPage {
    pub table: &'static str,
    pub service_name: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub error: String,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub job: String,
    pub run_id: String,
    pub window: Window,
    pub output: String,
    pub pages: usize,
    pub stats: PageStats,
    pub files: Vec<WrittenFile>,
    /// Partitions left as they were because a page that covers them failed.
    pub skipped_partitions: Vec<String>,
    pub failed: Vec<FailedPage>,
    /// The job's state after the run: everything before it is committed.
    pub committed_until: Option<DateTime<Utc>>,
    /// Temporary files of an interrupted earlier run that were removed.
    pub leftovers_removed: usize,
    pub elapsed: std::time::Duration,
}

impl RunReport {
    pub fn succeeded(&self) -> bool {
        self.failed.is_empty()
    }
}

/// Told how the run advances, for a progress display; the run itself never prints.
pub trait Observer: Sync {
    /// The plan is made: this many requests are to come, and `parsed` counts the points parsed
    /// from here on, moving while a response is read.
    fn planned(&self, _pages: usize, _parsed: &ParsedPoints) {}
    /// One more page is done (fetched or failed for good).
    fn page_done(&self) {}
    /// Extraction is over; files are being committed.
    fn committing(&self) {}
}

/// An observer that ignores everything.
pub struct Quiet;

impl Observer for Quiet {}

/// Applies the command line's overrides to a job.
pub fn apply_overrides(job: &mut Job, overrides: &Overrides) -> anyhow::Result<()> {
    if let Some(output) = &overrides.output {
        job.output.path = output.clone();
    }
    if let Some(start) = &overrides.start {
        job.window.start = TimeExpr::parse(start).context("--start")?;
    }
    if let Some(end) = &overrides.end {
        job.window.end = TimeExpr::parse(end).context("--end")?;
    }
    Ok(())
}

/// Resolves a job's window at `now`, `last-run` from the job's state.
pub fn resolve_window(
    job: &Job,
    now: DateTime<Utc>,
    state: Option<&JobState>,
) -> anyhow::Result<Window> {
    Window::resolve(&job.window, now, state.map(|s| s.committed_until))
        .with_context(|| format!("job {} ({}): window", job.name, job.path.display()))
}

/// The service scopes of an inventory, for the plan.
pub fn scopes(inventory: &Inventory) -> Vec<ServiceScope> {
    inventory
        .services
        .iter()
        .map(|s| ServiceScope {
            service_name: s.service_name.clone(),
            datacenter_tags: s
                .datacenters
                .iter()
                .map(|d| ovh::inventory::datacenter_tag(&s.service_name, &d.datacenter.name))
                .collect(),
            vms: s.datacenters.iter().map(|d| d.vms.len() as u64).sum(),
            hosts: s.datacenters.iter().map(|d| d.hosts.len() as u64).sum(),
            filers: (s.filers.len() + s.datacenters.iter().map(|d| d.filers.len()).sum::<usize>())
                as u64,
        })
        .collect()
}

/// Runs a job. `Err` means the run stopped: before any work (bad credentials, unreachable API, a
/// job already running) nothing is written; later (a refused token, a write that failed) the
/// partitions completed so far are replaced, each whole, but the state does not move and no
/// manifest is written, and the error is a [`StoppedAfterCommit`]. `Ok` with failed pages means part of the window could not be fetched:
/// the partitions it covers keep their previous files.
pub async fn run(
    job: &Job,
    overrides: &Overrides,
    now: DateTime<Utc>,
    observer: &dyn Observer,
) -> anyhow::Result<RunReport> {
    let started = Instant::now();
    let destination = Destination::open(&job.output.path)
        .with_context(|| format!("job {}: output.path", job.name))?;
    let store = destination.state();
    let run_id = format!(
        "{}-{}-{}",
        now.format("%Y%m%dT%H%M%SZ"),
        job.name,
        std::process::id()
    );

    // Fail before any request where we can: a bad window, or the job running already.
    let early = resolve_window(job, now, store.read(&job.name)?.as_ref())?;
    store.check_unlocked(&job.name)?;

    let connected = connect(job, now, early).await?;

    destination.create()?;
    let _lock = store.lock(&job.name, &run_id)?;
    let leftovers = destination.remove_leftovers(&job.name)?;
    if leftovers > 0 {
        tracing::info!(job = %job.name, files = leftovers, "Removed temporary files an interrupted run left.");
    }
    // Under the lock, the state is the one to go by.
    let previous = store.read(&job.name)?;
    let window = resolve_window(job, now, previous.as_ref())?;

    let inventory = &connected.inventory;
    let plan = Arc::new(plan::build(job, window, &scopes(inventory)));
    tracing::info!(job = %job.name, run_id = %run_id, pages = plan.pages.len(), "Starting the export.");
    let parsed = ParsedPoints::default();
    observer.planned(plan.pages.len(), &parsed);

    // Extract and transform: each page's series go to their table as the page completes.
    let index = Arc::new(InventoryIndex::new(inventory));
    let mut tables: BTreeMap<Component, MetricsTable> = job
        .exports
        .iter()
        .map(|e| {
            (
                e.component,
                MetricsTable::new(e.component, &job.output.partitioning, Arc::clone(&index))
                    // Spill beside the output rather than in a /tmp that may be RAM.
                    .with_spill_dir(destination.root()),
            )
        })
        .collect();
    let concurrency = overrides
        .concurrency
        .unwrap_or(extract::DEFAULT_CONCURRENCY);
    let mut stream = Box::pin(extract::pages(
        Arc::clone(&plan),
        Arc::new(connected.clients),
        concurrency,
        job.source.retry,
        destination.root().to_path_buf(),
        parsed,
    ));
    let provenance = FileProvenance {
        job: job.name.clone(),
        run_id: run_id.clone(),
        window_start: window.start.to_rfc3339(),
        window_end: window.end.to_rfc3339(),
    };
    let mut commit = Commit::new(&destination, job, window, provenance);
    // Everything from here may leave a partition writer running on its own thread; on an error
    // it is waited for before the lock goes, so no file lands after the run has given up (what
    // it writes is whole, and the partition was complete).
    let outcome: anyhow::Result<PageStats> = async {
        let mut pending = Pending::new(&plan);
        let mut stats = PageStats::default();
        while let Some(result) = stream.next().await {
            let index = match &result {
                Ok(fetched) => fetched.page,
                Err(failure) => failure.page,
            };
            let page = plan.pages[index];
            let component = plan.groups[page.group].component;
            let failed_with: Option<String> = match result {
                Ok(fetched) => {
                    observer.page_done();
                    stats += fetched.stats;
                    let mut replayed = Ok(());
                    let fetched_on_disk = fetched.spools.iter().any(extract::Spool::on_disk);
                    if fetched_on_disk {
                        // A page left on disk is handed over once the partitions before it are
                        // written: its series then wait in its spool file, not in memory beside
                        // the partitions being encoded, so memory stays what one partition
                        // needs however many pages are done (the 30-day export's peak is the
                        // 1-day one's). The encoder waits only for the hand-over.
                        commit.flush().await?;
                    }
                    if let Some(table) = tables.get_mut(&component) {
                        let mut sink = PageSink { table, page };
                        for spool in fetched.spools {
                            replayed = spool.hand_over(&mut sink);
                            if replayed.is_err() {
                                break;
                            }
                        }
                    }
                    if fetched_on_disk {
                        // What reading the page's headers back took is free again.
                        release_free_memory();
                    }
                    // A spool that cannot be read back (a full or failing disk) fails its page
                    // only: the partitions it touches are held back, with what it replayed.
                    replayed
                        .err()
                        .map(|e| format!("cannot read the page's series back from disk: {e}"))
                }
                Err(failure) => {
                    observer.page_done();
                    stats += failure.stats;
                    if matches!(failure.error, tsdb::TsdbError::Unauthorized { .. }) {
                        // A refused token fails every page the same way: stop, commit nothing more.
                        return Err(anyhow::Error::new(failure.error)
                            .context("the metrics endpoint refused the read token"));
                    }
                    Some(format!("{:#}", anyhow::Error::new(failure.error)))
                }
            };
            if let Some(error) = failed_with {
                let group = &plan.groups[page.group];
                tracing::error!(
                    start = %millis(page.start_ms),
                    end = %millis(page.end_ms),
                    error = %error,
                    "A page failed for good; its partitions keep their previous files."
                );
                commit.failed.push(FailedPage {
                    table: component.table_name(),
                    service_name: plan.services[group.service].service_name.clone(),
                    start: millis(page.start_ms),
                    end: millis(page.end_ms),
                    error,
                });
            }
            // Partitions no pending page can add to leave memory now, written while fetching goes on.
            pending.done(component, page.start_ms);
            if let Some(table) = tables.get_mut(&component) {
                let until = pending
                    .done_until(component)
                    .unwrap_or(plan.window.end.timestamp_millis());
                for (key, rows) in table.take_complete(until) {
                    commit.partition(component.table_name(), key, rows).await?;
                }
            }
        }

        // Load: what is left, then the partitions of the window that got no rows, then inventories.
        observer.committing();
        for (component, mut table) in tables {
            for (key, rows) in table.take_all() {
                commit.partition(component.table_name(), key, rows).await?;
            }
        }
        commit.flush().await?;
        for component in job.exports.iter().map(|e| e.component) {
            commit.vanished(component.table_name())?;
        }
        for (name, key, batch) in transform::inventory_tables(inventory, &job.output.partitioning)?
        {
            commit.replace(name, &key, batch)?;
        }
        Ok(stats)
    }
    .await;
    let stats = match outcome {
        Ok(stats) => stats,
        Err(error) => {
            let _ = commit.flush().await;
            return Err(match commit.files.len() {
                0 => error,
                files => StoppedAfterCommit::wrap(error, files),
            });
        }
    };
    let failed = std::mem::take(&mut commit.failed);
    // The state moves only over what is committed, and never leaves a gap behind it.
    let committed_until = commit.committed_until(&failed);
    let Commit { files, skipped, .. } = commit;
    let committed = files.len();
    let after_commit = |error: anyhow::Error| match committed {
        0 => error,
        files => StoppedAfterCommit::wrap(error, files),
    };
    let skipped = skipped
        .iter()
        .map(|(name, key)| Ok(format!("{name}/{}", key.relative_dir()?.display())))
        .collect::<anyhow::Result<Vec<String>>>()
        .map_err(after_commit)?;
    let state = next_state(
        previous.as_ref(),
        window,
        committed_until,
        &job.name,
        &run_id,
        now,
    );
    let report = RunReport {
        job: job.name.clone(),
        run_id,
        window,
        output: destination.root().display().to_string(),
        pages: plan.pages.len(),
        stats,
        files,
        skipped_partitions: skipped,
        failed,
        committed_until: state
            .as_ref()
            .map(|s| s.committed_until)
            .or(previous.map(|p| p.committed_until)),
        leftovers_removed: leftovers,
        elapsed: started.elapsed(),
    };
    // A manifest's presence means the run completed; the state moves after it, so that the run
    // the state names always has its manifest (a run killed between the two leaves the state
    // where it was, and the next run reads that window again).
    store
        .write_manifest(&report.run_id, &Manifest::new(&report, now))
        .map_err(|e| after_commit(e.into()))?;
    if let Some(state) = &state {
        store.write(state).map_err(|e| after_commit(e.into()))?;
    }
    Ok(report)
}

/// The job's next state, or `None` to leave it: it moves forward to `committed_until` when the
/// window starts at or before the committed end (so nothing between is skipped), never back.
fn next_state(
    previous: Option<&JobState>,
    window: Window,
    committed_until: DateTime<Utc>,
    job: &str,
    run_id: &str,
    now: DateTime<Utc>,
) -> Option<JobState> {
    let moves = match previous {
        None => committed_until > window.start,
        Some(p) => window.start <= p.committed_until && committed_until > p.committed_until,
    };
    moves.then(|| JobState {
        job: job.to_string(),
        committed_until,
        run_id: run_id.to_string(),
        updated_at: now,
    })
}

/// Pages of each table not done yet, counted by start: a partition is complete once no pending
/// page starts before its end.
struct Pending(BTreeMap<Component, BTreeMap<i64, usize>>);

impl Pending {
    fn new(plan: &Plan) -> Pending {
        let mut pending: BTreeMap<Component, BTreeMap<i64, usize>> = BTreeMap::new();
        for page in &plan.pages {
            *pending
                .entry(plan.groups[page.group].component)
                .or_default()
                .entry(page.start_ms)
                .or_default() += 1;
        }
        Pending(pending)
    }

    fn done(&mut self, component: Component, start_ms: i64) {
        if let Some(starts) = self.0.get_mut(&component) {
            if let Some(count) = starts.get_mut(&start_ms) {
                *count -= 1;
                if *count == 0 {
                    starts.remove(&start_ms);
                }
            }
        }
    }

    /// The start of the earliest pending page of the table; `None` when none is left.
    fn done_until(&self, component: Component) -> Option<i64> {
        self.0
            .get(&component)
            .and_then(|starts| starts.keys().next().copied())
    }
}

/// Where a completed page's series go: its table, clipped to the page's range.
struct PageSink<'a> {
    table: &'a mut MetricsTable,
    page: plan::Page,
}

impl tsdb::SeriesSink for PageSink<'_> {
    fn series(&mut self, series: tsdb::Series<'_>) {
        self.table
            .push_series(&series, self.page.start_ms, self.page.end_ms);
    }
}

impl extract::SpoolSink for PageSink<'_> {
    fn spooled(
        &mut self,
        series: tsdb::Series<'_>,
        times: extract::Times<'_>,
        file: &Arc<std::fs::File>,
        at: extract::SpooledPoints,
    ) {
        let page = self.page;
        self.table
            .push_spooled(&series, times, page.start_ms, page.end_ms, file, at);
    }

    fn expect(&mut self, series: usize) {
        self.table.expect_spooled(series);
    }
}

/// Writers of partitions in flight at once. One encodes on its own core while the runtime
/// fetches and parses on the other; more would only hold more partitions in memory.
const MAX_WRITERS: usize = 1;

/// Gives the allocator's free pages back to the system once a partition's buffers are dropped,
/// so that the next page's runs do not land beside them: the peak stays what is live at once.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn release_free_memory() {
    // SAFETY: `malloc_trim` only returns free memory to the system; it touches no live block.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_free_memory() {}

/// Writes a run's partitions, on blocking tasks.
struct Commit<'a> {
    destination: &'a Destination,
    job: &'a Job,
    window: Window,
    provenance: Arc<FileProvenance>,
    failed: Vec<FailedPage>,
    files: Vec<WrittenFile>,
    /// Partitions left as they were because a failed page covers them.
    skipped: Vec<(&'static str, PartitionKey)>,
    /// Partitions written (or held back) by this run, per table.
    seen: Vec<(&'static str, PartitionKey)>,
    writers:
        std::collections::VecDeque<tokio::task::JoinHandle<anyhow::Result<Option<WrittenFile>>>>,
}

impl<'a> Commit<'a> {
    fn new(
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
            writers: Default::default(),
        }
    }

    /// Writes one complete partition of a metrics table, merged with the job's earlier rows
    /// outside the window, unless a failed page covers it.
    async fn partition(
        &mut self,
        name: &'static str,
        key: PartitionKey,
        rows: PartitionRows,
    ) -> anyhow::Result<()> {
        self.seen.push((name, key.clone()));
        if self.held_back(name, &key) {
            return Ok(());
        }
        while self.writers.len() >= MAX_WRITERS {
            self.wait_one().await?;
        }
        let layout = load::layout(name).with_context(|| format!("no layout for table {name}"))?;
        let destination = self.destination.clone();
        let provenance = Arc::clone(&self.provenance);
        let (job, level) = (self.job.name.clone(), self.job.output.compression_level);
        let (start_ms, end_ms) = (
            self.window.start.timestamp_millis(),
            self.window.end.timestamp_millis(),
        );
        self.writers.push_back(tokio::task::spawn_blocking(move || {
            let written = if destination.job_partition_within(name, &key, &job, start_ms, end_ms)? {
                destination.replace_job_partition_runs(&layout, &key, &provenance, level, rows)
            } else {
                let old = destination.read_job_partition(name, &key, &job)?;
                let merged =
                    transform::merge_outside_window_rows(name, old, start_ms, end_ms, rows);
                destination.replace_job_partition_stream(&layout, &key, &provenance, level, merged)
            };
            release_free_memory();
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
    async fn flush(&mut self) -> anyhow::Result<()> {
        while !self.writers.is_empty() {
            self.wait_one().await?;
        }
        Ok(())
    }

    /// The job's partitions of the window that got no rows this time: their source data is
    /// gone, so only their rows outside the window stay.
    fn vanished(&mut self, name: &'static str) -> anyhow::Result<()> {
        let layout = load::layout(name).with_context(|| format!("no layout for table {name}"))?;
        let (start_ms, end_ms) = (
            self.window.start.timestamp_millis(),
            self.window.end.timestamp_millis(),
        );
        for key in self.destination.job_partitions(name, &self.job.name)? {
            let seen = self.seen.iter().any(|(n, k)| *n == name && *k == key);
            if seen
                || !overlaps(&key, self.window.start, self.window.end)
                || self.held_back(name, &key)
            {
                continue;
            }
            let old = self
                .destination
                .read_job_partition(name, &key, &self.job.name)?;
            let empty = RecordBatch::new_empty(Arc::clone(&layout.schema));
            let rows = transform::merge_outside_window(name, &old, start_ms, end_ms, &empty)?;
            self.write(&layout, &key, rows)?;
        }
        Ok(())
    }

    /// Whether a failed page covers the partition, which then keeps its previous file.
    fn held_back(&mut self, name: &'static str, key: &PartitionKey) -> bool {
        let held = self
            .failed
            .iter()
            .any(|f| f.table == name && overlaps(key, f.start, f.end));
        if held && !self.skipped.iter().any(|(n, k)| *n == name && k == key) {
            self.skipped.push((name, key.clone()));
        }
        held
    }

    /// Everything before this is committed: the window's end, or the start of the earliest
    /// partition left as it was (within the window).
    fn committed_until(&self, failed: &[FailedPage]) -> DateTime<Utc> {
        self.skipped
            .iter()
            .map(|(_, key)| {
                partition_span(key)
                    .map_or(self.window.start, |(from, _)| from.max(self.window.start))
            })
            .chain(failed.iter().map(|f| f.start))
            .min()
            .unwrap_or(self.window.end)
            .min(self.window.end)
    }

    /// An inventory table's partition: replaced whole by this snapshot.
    fn replace(
        &mut self,
        name: &'static str,
        key: &PartitionKey,
        batch: RecordBatch,
    ) -> anyhow::Result<()> {
        let layout = load::layout(name).with_context(|| format!("no layout for table {name}"))?;
        self.write(&layout, key, batch)
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

/// `_runs/<run-id>.json`.
#[derive(Debug, Serialize)]
struct Manifest<'a> {
    run_id: &'a str,
    job: &'a str,
    tool_version: &'static str,
    started_at: DateTime<Utc>,
    duration_secs: f64,
    outcome: &'static str,
    window: ManifestWindow,
    committed_until: Option<DateTime<Utc>>,
    pages: usize,
    requests: u64,
    retries: u64,
    splits: u64,
    points: u64,
    bytes_fetched: u64,
    rows: u64,
    bytes_written: u64,
    files: Vec<ManifestFile<'a>>,
    partitions_kept_after_failure: &'a [String],
    failed_pages: Vec<ManifestFailure<'a>>,
    leftovers_removed: usize,
}

#[derive(Debug, Serialize)]
struct ManifestWindow {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
struct ManifestFile<'a> {
    table: &'a str,
    partition: &'a str,
    rows: u64,
    bytes: u64,
}

#[derive(Debug, Serialize)]
struct ManifestFailure<'a> {
    table: &'a str,
    service_name: &'a str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    error: &'a str,
}

impl<'a> Manifest<'a> {
    fn new(r: &'a RunReport, started_at: DateTime<Utc>) -> Manifest<'a> {
        Manifest {
            run_id: &r.run_id,
            job: &r.job,
            tool_version: crate::VERSION,
            started_at,
            duration_secs: r.elapsed.as_secs_f64(),
            outcome: if r.succeeded() {
                "succeeded"
            } else {
                "partial"
            },
            window: ManifestWindow {
                start: r.window.start,
                end: r.window.end,
            },
            committed_until: r.committed_until,
            pages: r.pages,
            requests: r.stats.requests,
            retries: r.stats.retries,
            splits: r.stats.splits,
            points: r.stats.points,
            bytes_fetched: r.stats.bytes,
            rows: r.files.iter().map(|f| f.rows).sum(),
            bytes_written: r.files.iter().map(|f| f.bytes).sum(),
            files: r
                .files
                .iter()
                .map(|f| ManifestFile {
                    table: f.table,
                    partition: &f.partition,
                    rows: f.rows,
                    bytes: f.bytes,
                })
                .collect(),
            partitions_kept_after_failure: &r.skipped_partitions,
            failed_pages: r
                .failed
                .iter()
                .map(|f| ManifestFailure {
                    table: f.table,
                    service_name: &f.service_name,
                    start: f.start,
                    end: f.end,
                    error: &f.error,
                })
                .collect(),
            leftovers_removed: r.leftovers_removed,
        }
    }
}

fn millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// The time a partition covers, from its `date=` or `month=` value; `None` without one.
fn partition_span(key: &PartitionKey) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let midnight = |d: NaiveDate| Utc.from_utc_datetime(&d.and_time(chrono::NaiveTime::MIN));
    key.0.iter().find_map(|(column, value)| {
        let value = value.as_deref()?;
        match *column {
            "date" => {
                let day = NaiveDate::parse_from_str(value, "%Y-%m-%d").ok()?;
                Some((midnight(day), midnight(day.succ_opt()?)))
            }
            "month" => {
                let first = NaiveDate::parse_from_str(&format!("{value}-01"), "%Y-%m-%d").ok()?;
                let next = if first.month() == 12 {
                    NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
                } else {
                    NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
                }?;
                Some((midnight(first), midnight(next)))
            }
            _ => None,
        }
    })
}

/// Whether a partition meets `[start, end)`; one without a time column meets every range.
fn overlaps(key: &PartitionKey, start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
    partition_span(key).is_none_or(|(from, to)| from < end && start < to)
}

/// For `vscope-export plan`: the plan of a job without touching the network. A simulator job
/// takes its sizes from the simulator's configuration; a real one from `sizes`.
pub fn offline_plan(job: &Job, window: Window, sizes: &ServiceScope) -> Plan {
    let scopes = match &job.source.api {
        Api::Simulator(section) => match simulator::inventory(section, window.end) {
            Some(inventory) => scopes(&inventory),
            // Without the simulator in this build, its sizes are unknown: those given, as for
            // a real API.
            None => vec![sizes.clone()],
        },
        Api::Ovh { .. } => vec![sizes.clone()],
    };
    plan::build(job, window, &scopes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(column: &'static str, value: &str) -> PartitionKey {
        PartitionKey(vec![(column, Some(value.to_string()))])
    }

    fn at(t: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc)
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
        assert!(overlaps(
            &PartitionKey(vec![("service_name", Some("pcc-1".into()))]),
            s,
            e
        ));
    }
}
