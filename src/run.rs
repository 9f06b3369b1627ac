//! One run of one job, start to finish, one function per phase: connect (starting the
//! in-process simulator when the job asks for it) and snapshot the inventory (`run/connect.rs`);
//! check and lock the output (`run/output.rs`); plan; extract and transform, handing each partition
//! to the commit as soon as no pending page can add to it; commit what is left; record the
//! manifest and the job's state (`run/output.rs`). Orchestration only: each phase's work is its
//! stage's. Returns what happened; printing is the CLI's business.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;

use crate::domain::table::Table;
use crate::extract::{self, PageStats, ParsedPoints};
use crate::job::{Api, Component, Job, TimeExpr, Window};
use crate::load::commit::Commit;
use crate::load::state::JobState;
use crate::load::{Destination, WrittenFile};
use crate::ovh::{self, inventory::Inventory};
use crate::plan::{self, ObjectNames, Pending, Plan, ServiceScope};
use crate::transform::{self, InventoryIndex, MetricsTable};
use crate::tsdb;

mod connect;
mod output;
mod simulator;

use connect::connect;
use output::Output;

pub use crate::load::commit::{FailedPage, StoppedAfterCommit};

/// What the command line may change about a job for one run.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub output: Option<String>,
    pub start: Option<String>,
    pub end: Option<String>,
    pub concurrency: Option<usize>,
    /// `--shard`: `Some(None)` for the whole job (`0/1`).
    pub shard: Option<Option<crate::domain::shard::Shard>>,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub job: String,
    /// The slice of the job the run did, with the planner's split; `None`: all of it.
    pub shard: Option<plan::ShardShare>,
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
    /// In a Delta output, the version of each table that the run's commit made.
    pub delta_versions: std::collections::BTreeMap<String, u64>,
    pub elapsed: std::time::Duration,
    /// Shards of the same split whose latest run over this window computed another split.
    pub split_otherwise: Vec<u32>,
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
    if let Some(shard) = overrides.shard {
        job.shard = shard;
    }
    // A shard selects its datacenters through the `datacenter` tag; an export's own filter on it
    // would replace that, and every shard would fetch the same series.
    if job.shard.is_some_and(|s| s.count > 1) {
        if let Some(export) = job
            .exports
            .iter()
            .find(|e| e.tags.contains_key("datacenter"))
        {
            anyhow::bail!(
                "job {}: the {} export filters on the `datacenter` tag, which a sharded run sets \
                 itself to split the work: choose datacenters with `source.datacenters` instead",
                job.name,
                export.component.table_name(),
            );
        }
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
            objects: s
                .datacenters
                .iter()
                .enumerate()
                .map(|(i, d)| ObjectNames {
                    vms: d.vms.iter().map(|v| v.mo_ref.clone()).collect(),
                    hosts: d.hosts.iter().map(|h| h.name.clone()).collect(),
                    // Datastores shared by the service's datacenters report under its first.
                    filers: d
                        .filers
                        .iter()
                        .chain(if i == 0 { &s.filers[..] } else { &[] })
                        .map(|f| f.name.clone())
                        .collect(),
                })
                .collect(),
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
/// manifest is written, and the error is a [`StoppedAfterCommit`]. `Ok` with failed pages means
/// part of the window could not be fetched: the partitions it covers keep their previous files.
pub async fn run(
    job: &Job,
    overrides: &Overrides,
    now: DateTime<Utc>,
    observer: &dyn Observer,
) -> anyhow::Result<RunReport> {
    let output = Output::open(job, now)?;
    // Fail before any request where we can: a bad window, or the job running already.
    let early = output.check(job)?;
    let connected = connect(job, now, early).await?;
    let locked = output.lock(job)?;
    let window = locked.window;
    let inventory = &connected.inventory;
    let plan = Arc::new(plan::build_shard(
        job,
        window,
        &scopes(inventory),
        job.shard,
    ));
    tracing::info!(job = %job.name, shard = ?job.shard.map(|s| s.to_string()), run_id = %output.run_id, pages = plan.pages.len(), "Starting the export.");

    let mut commit = Commit::new(
        &output.destination,
        job,
        window,
        output.provenance(job, window),
    );
    let concurrency = overrides
        .concurrency
        .unwrap_or(extract::DEFAULT_CONCURRENCY);
    // Everything from here may leave a partition writer running on its own thread; on an error
    // it is waited for before the lock goes, so no file lands after the run has given up (what
    // it writes is whole, and the partition was complete).
    let outcome = async {
        let (stats, tables) = extract_and_transform(
            job,
            &plan,
            connected.clients,
            inventory,
            concurrency,
            &output.destination,
            &mut commit,
            observer,
        )
        .await?;
        observer.committing();
        commit_rest(job, tables, inventory, &mut commit).await?;
        Ok(stats)
    }
    .await;
    let stats = match outcome {
        Ok(stats) => stats,
        Err(error) => {
            let _ = commit.flush().await;
            return Err(StoppedAfterCommit::after(error, commit.files_written()));
        }
    };
    let files = commit.files_written();
    let after_commit = |error| StoppedAfterCommit::after(error, files);
    let committed = commit.finish().map_err(after_commit)?;
    // Whatever fails now, readers see every file of the run (a Delta output's too, now).
    let files = committed.files.len();
    output
        .record(job, locked, &plan, stats, committed)
        .map_err(|error| StoppedAfterCommit::after(error, files))
}

/// Extracts the plan's pages and transforms each page's series into its table as the page
/// completes; partitions no pending page can add to go to `commit` while fetching goes on.
/// Returns the extraction's counts and the tables, with what is left in them.
#[allow(clippy::too_many_arguments)]
async fn extract_and_transform(
    job: &Job,
    plan: &Arc<Plan>,
    clients: Vec<tsdb::Client>,
    inventory: &Inventory,
    concurrency: usize,
    destination: &Destination,
    commit: &mut Commit<'_>,
    observer: &dyn Observer,
) -> anyhow::Result<(PageStats, BTreeMap<Component, MetricsTable>)> {
    let parsed = ParsedPoints::default();
    observer.planned(plan.pages.len(), &parsed);
    let index = Arc::new(InventoryIndex::new(inventory));
    let mut tables: BTreeMap<Component, MetricsTable> = job
        .exports
        .iter()
        .map(|e| {
            (
                e.component,
                MetricsTable::new(e.component, &job.output.partitioning, Arc::clone(&index))
                    // Spill beside the output rather than in a /tmp that may be RAM.
                    .with_spill_dir(destination.spill_dir()),
            )
        })
        .collect();
    let mut stream = Box::pin(extract::pages(
        Arc::clone(plan),
        Arc::new(clients),
        concurrency,
        job.source.retry,
        destination.spill_dir(),
        parsed,
    ));
    let mut pending = Pending::new(plan);
    let mut stats = PageStats::default();
    while let Some(result) = stream.next().await {
        observer.page_done();
        let (page, failed_with) = match result {
            Ok(fetched) => {
                stats += fetched.stats;
                let page = plan.pages[fetched.page];
                let component = plan.groups[page.group].component;
                if fetched.spools.iter().any(extract::Spool::on_disk) {
                    // A page left on disk is handed over once the partitions before it are
                    // written: its series then wait in its spool file, not in memory beside
                    // the partitions being encoded, so memory stays what one partition
                    // needs however many pages are done (the 30-day export's peak is the
                    // 1-day one's). The encoder waits only for the hand-over.
                    commit.flush().await?;
                }
                let replayed = match tables.get_mut(&component) {
                    Some(table) => table.push_page(fetched.spools, page.start_ms, page.end_ms),
                    None => Ok(()),
                };
                // A spool that cannot be read back (a full or failing disk) fails its page
                // only: the partitions it touches are held back, with what it replayed.
                let error = replayed
                    .err()
                    .map(|e| format!("cannot read the page's series back from disk: {e}"));
                (page, error)
            }
            Err(failure) => {
                stats += failure.stats;
                if matches!(failure.error, tsdb::TsdbError::Unauthorized { .. }) {
                    // A refused token fails every page the same way: stop, commit nothing more.
                    return Err(anyhow::Error::new(failure.error)
                        .context("the metrics endpoint refused the read token"));
                }
                let error = format!("{:#}", anyhow::Error::new(failure.error));
                (plan.pages[failure.page], Some(error))
            }
        };
        let component = plan.groups[page.group].component;
        if let Some(error) = failed_with {
            commit.page_failed(failed_page(plan, page, error));
        }
        // Partitions no pending page can add to leave memory now, written while fetching goes on.
        pending.done(component, page.start_ms);
        if let Some(table) = tables.get_mut(&component) {
            let until = pending
                .done_until(component)
                .unwrap_or(plan.window.end.timestamp_millis());
            for (key, rows) in table.take_complete(until) {
                commit
                    .partition(Table::metrics(component), key, rows)
                    .await?;
            }
        }
    }
    Ok((stats, tables))
}

/// A page that failed for good, logged.
fn failed_page(plan: &Plan, page: plan::Page, error: String) -> FailedPage {
    let group = &plan.groups[page.group];
    let (start, end) = (millis(page.start_ms), millis(page.end_ms));
    tracing::error!(
        start = %start,
        end = %end,
        error = %error,
        "A page failed for good; its partitions keep their previous files."
    );
    FailedPage {
        table: Table::metrics(group.component),
        service_name: plan.services[group.service].service_name.clone(),
        start,
        end,
        error,
    }
}

/// Commits what the tables hold still, then the partitions of the window that got no rows, then
/// the inventory snapshot's tables.
async fn commit_rest(
    job: &Job,
    tables: BTreeMap<Component, MetricsTable>,
    inventory: &Inventory,
    commit: &mut Commit<'_>,
) -> anyhow::Result<()> {
    for (component, mut table) in tables {
        for (key, rows) in table.take_all() {
            commit
                .partition(Table::metrics(component), key, rows)
                .await?;
        }
    }
    commit.flush().await?;
    for component in job.exports.iter().map(|e| e.component) {
        commit.vanished(Table::metrics(component))?;
    }
    // The first shard alone writes the inventory snapshot (every shard reads all of it, for its
    // joins): each row once, and the tables are a few rows per object against the metrics'
    // thousands.
    if job.shard.is_none_or(|s| s.index == 0) {
        for (name, key, batch) in transform::inventory_tables(inventory, &job.output.partitioning)?
        {
            commit.replace(name, &key, batch)?;
        }
    }
    Ok(())
}

fn millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// For `vscope-export plan`: the plan of a job without touching the network. A simulator job
/// takes its sizes from the simulator's configuration; a real one from `sizes`.
pub fn offline_plan(job: &Job, window: Window, sizes: &ServiceScope) -> Plan {
    let shard = job.shard;
    let scopes = match &job.source.api {
        Api::Simulator(section) => match simulator::inventory(section, window.end) {
            Some(inventory) => scopes(&inventory),
            // Without the simulator in this build, its sizes are unknown: those given, as for
            // a real API.
            None => vec![sizes.clone()],
        },
        Api::Ovh { .. } => vec![sizes.clone()],
    };
    plan::build_shard(job, window, &scopes, shard)
}
