//! One run of one job, start to finish: resolve the window, connect (starting the in-process
//! simulator when the job asks for it), snapshot the inventory, plan, extract, transform and
//! commit partition by partition. Returns what happened; printing is the CLI's business.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use futures_util::StreamExt;

use crate::extract::{self, PageStats, RetryPolicy};
use crate::job::{Api, Component, Job, TimeExpr, TokenSource, Window};
use crate::load::{Destination, FileProvenance, PartitionKey, WrittenFile};
use crate::ovh::{self, inventory::Inventory, Auth};
use crate::plan::{self, Plan, ServiceScope};
use crate::secret::Secret;
use crate::sim::{self, World};
use crate::transform::{self, InventoryIndex, MetricsTable};
use crate::tsdb;

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
    pub elapsed: std::time::Duration,
}

impl RunReport {
    pub fn succeeded(&self) -> bool {
        self.failed.is_empty()
    }
}

/// Told how the run advances, for a progress display; the run itself never prints.
pub trait Observer: Sync {
    /// The plan is made: this many requests are to come.
    fn planned(&self, _pages: usize) {}
    /// One more page is done (fetched or failed for good), with the points it brought.
    fn page_done(&self, _points: u64) {}
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

/// Resolves a job's window at `now`.
pub fn resolve_window(job: &Job, now: DateTime<Utc>) -> anyhow::Result<Window> {
    Window::resolve(&job.window, now, None).with_context(|| format!("job {}: window", job.name))
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

/// The in-process simulator, for jobs with `endpoint = "simulator"`; stops when dropped.
struct RunningSim {
    addr: std::net::SocketAddr,
    world: Arc<World>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start_simulator(config: sim::SimConfig) -> anyhow::Result<RunningSim> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot start the built-in simulator on 127.0.0.1")?;
    let addr = listener.local_addr()?;
    let world = Arc::new(World::new(config));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = Arc::clone(&world);
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        if let Err(e) = sim::serve(listener, served, shutdown).await {
            tracing::error!(error = %e, "The built-in simulator stopped.");
        }
    });
    Ok(RunningSim {
        addr,
        world,
        _stop: stop,
    })
}

/// Runs a job. `Err` means nothing was done (bad credentials, unreachable API, bad output…);
/// `Ok` with failed pages means part of the window could not be fetched and was left as it was.
pub async fn run(
    job: &Job,
    overrides: &Overrides,
    now: DateTime<Utc>,
    observer: &dyn Observer,
) -> anyhow::Result<RunReport> {
    let started = Instant::now();
    let window = resolve_window(job, now)?;
    let destination = Destination::open(&job.output.path)
        .with_context(|| format!("job {}: output.path", job.name))?;

    // Connect to APIv6: the simulator's public credentials, or the user's.
    let simulator = match &job.source.api {
        Api::Simulator(config) => Some(start_simulator(config.clone()).await?),
        Api::Ovh { .. } => None,
    };
    let (base_url, auth) = match (&job.source.api, &simulator) {
        (_, Some(sim)) => {
            let creds = sim.world.credentials();
            let auth = Auth::Signed {
                application_key: creds.application_key,
                application_secret: Secret::new(creds.application_secret),
                consumer_key: Secret::new(creds.consumer_key),
            };
            (format!("http://{}/1.0", sim.addr), auth)
        }
        (Api::Ovh { endpoint }, None) => {
            ovh::credentials::load(endpoint.as_deref(), &|k| std::env::var(k).ok())?
        }
        (Api::Simulator(_), None) => unreachable!("the simulator was started above"),
    };
    let api = ovh::Client::connect(&base_url, auth)
        .await
        .with_context(|| format!("cannot connect to APIv6 at {base_url}"))?;

    let inventory = api
        .snapshot(&job.source.services, job.source.datacenters.as_deref(), now)
        .await
        .context("cannot read the inventory from APIv6")?;
    if inventory.services.is_empty() {
        bail!("APIv6 at {base_url} lists no Hosted Private Cloud service for this account");
    }
    let clients = metrics_clients(&api, &job.source.token, &inventory).await?;

    let scopes = scopes(&inventory);
    let plan = Arc::new(plan::build(job, window, &scopes));
    let run_id = format!(
        "{}-{}-{}",
        now.format("%Y%m%dT%H%M%SZ"),
        job.name,
        std::process::id()
    );
    tracing::info!(job = %job.name, run_id = %run_id, pages = plan.pages.len(), "Starting the export.");
    observer.planned(plan.pages.len());

    // Extract and transform: each page's series go to their table as the page completes.
    let index = Arc::new(InventoryIndex::new(&inventory));
    let mut tables: BTreeMap<Component, MetricsTable> = job
        .exports
        .iter()
        .map(|e| {
            (
                e.component,
                MetricsTable::new(e.component, &job.output.partitioning, Arc::clone(&index)),
            )
        })
        .collect();
    let concurrency = overrides
        .concurrency
        .unwrap_or(extract::DEFAULT_CONCURRENCY);
    let mut stream = Box::pin(extract::pages(
        Arc::clone(&plan),
        Arc::new(clients),
        concurrency,
        RetryPolicy::default(),
    ));
    let mut stats = PageStats::default();
    let mut failed = Vec::new();
    while let Some(result) = stream.next().await {
        match result {
            Ok(fetched) => {
                observer.page_done(fetched.stats.points);
                stats += fetched.stats;
                let page = plan.pages[fetched.page];
                let component = plan.groups[page.group].component;
                if let Some(table) = tables.get_mut(&component) {
                    for series in &fetched.series {
                        let borrowed = tsdb::Series {
                            metric: &series.metric,
                            tags: &series.tags,
                            aggregate_tags: &series.aggregate_tags,
                            query_index: series.query_index,
                            timestamps_ms: &series.timestamps_ms,
                            values: &series.values,
                        };
                        table.push_series(&borrowed, page.start_ms, page.end_ms);
                    }
                }
            }
            Err(failure) => {
                observer.page_done(0);
                stats += failure.stats;
                let page = plan.pages[failure.page];
                let group = &plan.groups[page.group];
                tracing::error!(
                    start = page.start_ms,
                    end = page.end_ms,
                    error = %failure.error,
                    "A page failed for good; its partitions keep their previous files."
                );
                failed.push(FailedPage {
                    table: group.component.table_name(),
                    service_name: plan.services[group.service].service_name.clone(),
                    start: millis(page.start_ms),
                    end: millis(page.end_ms),
                    error: format!("{:#}", anyhow::Error::new(failure.error)),
                });
            }
        }
    }

    // Load: commit partition by partition, leaving alone those a failed page covers.
    observer.committing();
    let provenance = FileProvenance {
        job: job.name.clone(),
        run_id: run_id.clone(),
        window_start: window.start.to_rfc3339(),
        window_end: window.end.to_rfc3339(),
    };
    let (start_ms, end_ms) = (
        window.start.timestamp_millis(),
        window.end.timestamp_millis(),
    );
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    for (component, table) in tables {
        let name = component.table_name();
        let layout =
            transform::layout(name).with_context(|| format!("no layout for table {name}"))?;
        for (key, batch) in table.finish()? {
            if failed
                .iter()
                .any(|f| f.table == name && overlaps(&key, f.start, f.end))
            {
                skipped.push(format!("{name}/{}", key.relative_dir()?.display()));
                continue;
            }
            let old = destination.read_job_partition(name, &key, &job.name)?;
            let rows = if old.is_empty() {
                batch
            } else {
                transform::merge_outside_window(name, &old, start_ms, end_ms, &batch)?
            };
            let written = destination.replace_job_partition(
                &layout,
                &key,
                &provenance,
                job.output.compression_level,
                &[rows],
            )?;
            files.extend(written);
        }
    }
    for (name, key, batch) in transform::inventory_tables(&inventory, &job.output.partitioning)? {
        let layout =
            transform::layout(name).with_context(|| format!("no layout for table {name}"))?;
        let written = destination.replace_job_partition(
            &layout,
            &key,
            &provenance,
            job.output.compression_level,
            &[batch],
        )?;
        files.extend(written);
    }

    Ok(RunReport {
        job: job.name.clone(),
        run_id,
        window,
        output: destination.root().display().to_string(),
        pages: plan.pages.len(),
        stats,
        files,
        skipped_partitions: skipped,
        failed,
        elapsed: started.elapsed(),
    })
}

/// Reads one metrics client per service of the plan: the service's own token (the guide's flow)
/// or one token given directly for all.
async fn metrics_clients(
    api: &ovh::Client,
    token: &TokenSource,
    inventory: &Inventory,
) -> anyhow::Result<Vec<tsdb::Client>> {
    let mut clients = Vec::new();
    match token {
        TokenSource::MetricsUser(user) => {
            for service in &inventory.services {
                let token = api
                    .metrics_token(&service.service_name, user)
                    .await
                    .with_context(|| {
                        format!(
                            "cannot get the metrics read token of user '{user}' on {}",
                            service.service_name
                        )
                    })?;
                clients.push(tsdb::Client::new(
                    &token.opentsdb_endpoint,
                    Secret::new(token.token),
                )?);
            }
        }
        TokenSource::Direct {
            token_env,
            opentsdb_url,
        } => {
            let value = std::env::var(token_env).ok().filter(|v| !v.is_empty()).with_context(|| {
                format!("the metrics read token is missing: set the environment variable {token_env} (named by source.token_env)")
            })?;
            let client = tsdb::Client::new(opentsdb_url, Secret::new(value))?;
            clients = vec![client; inventory.services.len()];
        }
    }
    Ok(clients)
}

fn millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// Whether a partition's time span (from its `date=` or `month=` value) meets `[start, end)`.
/// A partition without a time column is taken to meet every range.
fn overlaps(key: &PartitionKey, start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
    for (column, value) in &key.0 {
        let Some(value) = value else { continue };
        let span = match *column {
            "date" => NaiveDate::parse_from_str(value, "%Y-%m-%d").ok().map(|d| {
                let from = Utc.from_utc_datetime(&d.and_time(chrono::NaiveTime::MIN));
                (from, from + chrono::Duration::days(1))
            }),
            "month" => NaiveDate::parse_from_str(&format!("{value}-01"), "%Y-%m-%d")
                .ok()
                .map(|d| {
                    let from = Utc.from_utc_datetime(&d.and_time(chrono::NaiveTime::MIN));
                    let next = if d.month() == 12 {
                        NaiveDate::from_ymd_opt(d.year() + 1, 1, 1)
                    } else {
                        NaiveDate::from_ymd_opt(d.year(), d.month() + 1, 1)
                    };
                    let to =
                        next.map(|n| Utc.from_utc_datetime(&n.and_time(chrono::NaiveTime::MIN)));
                    (from, to.unwrap_or(from))
                }),
            _ => None,
        };
        if let Some((from, to)) = span {
            return from < end && start < to;
        }
    }
    true
}

/// For `vscope-export plan`: the plan of a job without touching the network. A simulator job
/// takes its sizes from the simulator's configuration; a real one from `sizes`.
pub fn offline_plan(job: &Job, window: Window, sizes: &ServiceScope) -> Plan {
    let scopes = match &job.source.api {
        Api::Simulator(config) => scopes(&World::new(config.clone()).inventory(window.end)),
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
