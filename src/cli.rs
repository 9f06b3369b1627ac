//! The command line: argument parsing, logging set-up, exit codes, and the one printer through
//! which everything the user reads (summaries, plans, schemas) goes. No business logic.
//!
//! Exit codes: 0 everything committed; 1 the run finished but some pages failed for good; 2 bad
//! usage, a bad job file, bad credentials or any other error before work began.

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::domain::shard::{self, Shard};
use crate::domain::table::Table;
use crate::job::{self, Job, Window};
use crate::plan::{self, ServiceScope};
use crate::run::{self, Overrides, RunReport};
use crate::transform::schema;

mod report_command;
mod sim_command;

/// Exports OVHcloud vScope monitoring history (OpenTSDB) joined with the APIv6 inventory into
/// hive-partitioned Parquet for DuckDB, Spark, polars or any warehouse.
#[derive(Debug, Parser)]
#[command(name = "vscope-export", version, about, max_term_width = 100, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    log: LogArgs,
}

#[derive(Debug, Args)]
struct LogArgs {
    /// Less output: only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// More log detail (-v: progress of each step, -vv: every request).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Log format on standard error.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Progress {
    /// A progress bar when standard error is a terminal.
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Export the jobs' windows into Parquet or Delta Lake tables.
    ///
    /// The job's `[output] format` chooses: `parquet` (the default), hive-partitioned files; or
    /// `delta`, Delta Lake tables with one commit per table and run (builds with the cargo
    /// feature `delta`).
    Run(RunArgs),
    /// Show what a run would fetch (pages, requests, estimated points), without any network.
    Plan(PlanArgs),
    /// Check job files and report every problem with its line.
    Validate {
        /// Job files (TOML).
        #[arg(required = true)]
        jobs: Vec<PathBuf>,
    },
    /// Show or rewind a job's incremental state (the end of its last committed window).
    State {
        #[command(subcommand)]
        action: StateAction,
    },
    /// List recent runs of an output folder, newest first (from its run manifests).
    Runs {
        /// A job file (its output folder is listed, only its runs), an output folder or
        /// `s3://bucket/prefix`.
        target: PathBuf,
        /// How many runs to show (at least 1).
        #[arg(long, default_value_t = 20, value_parser = at_least_one())]
        limit: usize,
    },
    /// Serve the built-in simulator of APIv6 and the metrics endpoint on loopback.
    Sim(sim_command::SimArgs),
    /// Print the columns of the output tables.
    Schema {
        /// One table; all tables when left out.
        table: Option<String>,
        /// As JSON (what `schemas/tables/*.json` holds).
        #[arg(long)]
        json: bool,
    },
    /// Report on an export: coverage, capacity, rightsizing, contention, storage, network.
    Report(report_command::ReportArgs),
}

#[derive(Debug, Subcommand)]
enum StateAction {
    /// Print the job's state as JSON.
    Show(StateArgs),
    /// Forget the job's state: its next `last-run` window starts at `initial_start` again.
    Reset(StateArgs),
}

#[derive(Debug, Args)]
struct StateArgs {
    /// Job file (TOML).
    job: PathBuf,
    /// Output folder or `s3://bucket/prefix` (overrides the job's output.path).
    #[arg(long, value_name = "DIR|URL")]
    output: Option<String>,
    /// Only this shard's state (I/N, 0-based); without it, every state of the job: its own and
    /// each shard's.
    #[arg(long, value_name = "I/N")]
    shard: Option<String>,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Job files (TOML), run one after the other.
    #[arg(required = true)]
    jobs: Vec<PathBuf>,
    /// Output folder or `s3://bucket/prefix` (overrides the job's output.path).
    #[arg(long, value_name = "DIR|URL")]
    output: Option<String>,
    /// Window start (overrides window.start): RFC 3339, a date, today, yesterday, 7d-ago, …
    #[arg(long, value_name = "T")]
    start: Option<String>,
    /// Window end (overrides window.end).
    #[arg(long, value_name = "T")]
    end: Option<String>,
    /// Metrics requests in flight at once (at least 1).
    #[arg(long, value_name = "N", default_value_t = crate::extract::DEFAULT_CONCURRENCY, value_parser = at_least_one())]
    concurrency: usize,
    /// Show a progress bar.
    #[arg(long, value_enum, default_value_t = Progress::Auto)]
    progress: Progress,
    /// Run one of N disjoint slices of each job, for N workers of a scheduler: I/N with a
    /// 0-based index (0/4 to 3/4), or auto/N to take I from JOB_COMPLETION_INDEX (which a
    /// Kubernetes Indexed Job sets). A slice writes its own files (part-<job>-s<I>of<N>-…),
    /// state and lock; the N slices together hold what one run of the job would. 0/1 is the
    /// whole job. Overrides the job's `shard`.
    #[arg(long, value_name = "I/N", env = "VSCOPE_SHARD")]
    shard: Option<String>,
}

#[derive(Debug, Args)]
struct PlanArgs {
    /// Job file (TOML).
    job: PathBuf,
    /// Window start (overrides window.start).
    #[arg(long, value_name = "T")]
    start: Option<String>,
    /// Window end (overrides window.end).
    #[arg(long, value_name = "T")]
    end: Option<String>,
    /// VMs to plan for (a real endpoint's inventory is not read by `plan`).
    #[arg(long, default_value_t = 1000)]
    vms: u64,
    /// Hosts to plan for.
    #[arg(long, default_value_t = 40)]
    hosts: u64,
    /// Datastores to plan for.
    #[arg(long, default_value_t = 20)]
    filers: u64,
    /// List every request, not only the first few.
    #[arg(long)]
    all: bool,
    /// Plan one slice of the job, as `run --shard` would (I/N, 0-based), with every slice's share.
    #[arg(long, value_name = "I/N")]
    shard: Option<String>,
}

/// A `--shard` value: `auto/N` takes the index from the environment (see
/// [`crate::domain::shard::INDEX_ENV`]).
fn parse_shard(text: &str) -> anyhow::Result<Option<Shard>> {
    let env = |name: &str| std::env::var(name).ok();
    Shard::parse(text, Some(&env)).context("--shard")
}

/// A count that must be 1 or more: 0 would be accepted by the type and mean nothing useful
/// (no request ever in flight, no run listed).
fn at_least_one() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
}

/// Some pages failed for good; what succeeded is committed.
const EXIT_PAGES_FAILED: u8 = 1;
/// Nothing was written: bad usage, job file, credentials, lock, or any error before work began.
const EXIT_NOTHING_WRITTEN: u8 = 2;
/// An error after some partitions were committed: those are whole, the state did not move.
const EXIT_AFTER_COMMIT: u8 = 3;

/// What `--help` says of the exit codes (the README's "Commands" says the same).
const EXIT_CODES: &str = "Exit codes:
  0  everything committed
  1  some pages failed for good; what succeeded is committed, the job's state stops before them
  2  nothing written: bad usage, job file or credentials, the job already running, any error
     before work began
  3  an error after some partitions were committed: each is whole, the job's state did not move";

/// Parses the command line, runs it and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    init_logging(&cli.log);
    let printer = Printer {
        quiet: cli.log.quiet,
    };
    match execute(cli.command, &printer) {
        Ok(code) => code,
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            print_error(&e);
            if e.downcast_ref::<run::StoppedAfterCommit>().is_some() {
                ExitCode::from(EXIT_AFTER_COMMIT)
            } else {
                ExitCode::from(EXIT_NOTHING_WRITTEN)
            }
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// `error: …` then one `caused by: …` line per source.
fn print_error(e: &anyhow::Error) {
    let mut stderr = io::stderr().lock();
    let _ = writeln!(stderr, "error: {e}");
    for cause in e.chain().skip(1) {
        let _ = writeln!(stderr, "caused by: {cause}");
    }
}

fn init_logging(args: &LogArgs) {
    let level = match (args.quiet, args.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("VSCOPE_LOG").unwrap_or_else(|_| {
        // delta-rs reports each lost race of a commit as a warning or an error; the load stage
        // settles them (`load::delta`), and what it cannot settle comes back as the run's error.
        tracing_subscriber::EnvFilter::new(format!(
            "vscope_export={level},warn,deltalake_core::kernel::transaction=off"
        ))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(io::stderr().is_terminal());
    let _ = match args.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.with_target(false).try_init(),
    };
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn execute(command: Command, printer: &Printer) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run(args) => run_jobs(args, printer),
        Command::Plan(args) => plan_job(args, printer).map(|()| ExitCode::SUCCESS),
        Command::Validate { jobs } => validate(&jobs, printer),
        Command::Sim(args) => sim_command::run(args, printer).map(|()| ExitCode::SUCCESS),
        Command::State { action } => state(action, printer).map(|()| ExitCode::SUCCESS),
        Command::Runs { target, limit } => {
            runs(&target, limit, printer).map(|()| ExitCode::SUCCESS)
        }
        Command::Schema { table, json } => {
            print_schema(table.as_deref(), json, printer).map(|()| ExitCode::SUCCESS)
        }
        Command::Report(args) => report_command::run(args, printer).map(|()| ExitCode::SUCCESS),
    }
}

fn load_job(path: &Path) -> anyhow::Result<Job> {
    let job = job::load(path)?;
    for warning in &job.warnings {
        tracing::warn!(file = %path.display(), key = %warning.key, "{}", warning.message);
    }
    Ok(job)
}

fn run_jobs(args: RunArgs, printer: &Printer) -> anyhow::Result<ExitCode> {
    // Every job file is checked before any work starts: a typo in the third job must not
    // surface after the first two ran for an hour.
    let overrides = Overrides {
        output: args.output.clone(),
        start: args.start.clone(),
        end: args.end.clone(),
        concurrency: Some(args.concurrency),
        shard: args.shard.as_deref().map(parse_shard).transpose()?,
    };
    let mut jobs = Vec::new();
    for path in &args.jobs {
        let mut job = load_job(path)?;
        run::apply_overrides(&mut job, &overrides)?;
        jobs.push(job);
    }
    let show_progress = match args.progress {
        Progress::Auto => io::stderr().is_terminal() && !printer.quiet,
        Progress::Always => true,
        Progress::Never => false,
    };
    let rt = runtime()?;
    let mut code = ExitCode::SUCCESS;
    // Files the jobs before this one committed: an error after them is no longer "nothing written".
    let mut committed = 0;
    for job in &jobs {
        let report = if show_progress {
            let bar = ProgressBar::new(&job.name);
            let report = rt.block_on(run::run(job, &overrides, Utc::now(), &bar));
            bar.bar.finish_and_clear();
            report
        } else {
            rt.block_on(run::run(job, &overrides, Utc::now(), &run::Quiet))
        };
        let report = match report {
            Err(e) if committed > 0 && e.downcast_ref::<run::StoppedAfterCommit>().is_none() => {
                return Err(run::StoppedAfterCommit::wrap(e, committed));
            }
            report => report?,
        };
        committed += report.files.len();
        printer.summary(&report)?;
        if !report.succeeded() {
            code = ExitCode::from(EXIT_PAGES_FAILED);
        }
    }
    Ok(code)
}

fn plan_job(args: PlanArgs, printer: &Printer) -> anyhow::Result<()> {
    let mut job = load_job(&args.job)?;
    let overrides = Overrides {
        start: args.start,
        end: args.end,
        shard: args.shard.as_deref().map(parse_shard).transpose()?,
        ..Overrides::default()
    };
    run::apply_overrides(&mut job, &overrides)?;
    let state = crate::load::Destination::open(&job.output.path, &job.output.s3)?
        .state()
        .read(&shard::owner(&job.name, job.shard))?;
    let window = run::resolve_window(&job, Utc::now(), state.as_ref())?;
    let sizes = ServiceScope {
        service_name: "(every service)".to_string(),
        datacenter_tags: Vec::new(),
        vms: args.vms,
        hosts: args.hosts,
        filers: args.filers,
        objects: Vec::new(),
    };
    let plan = run::offline_plan(&job, window, &sizes);
    printer.plan(&job, &plan, args.all)
}

fn validate(paths: &[PathBuf], printer: &Printer) -> anyhow::Result<ExitCode> {
    let mut failed = 0;
    for path in paths {
        match job::load(path) {
            Ok(job) => {
                for w in &job.warnings {
                    printer.line(&format!(
                        "warning: {}: {}: {}",
                        path.display(),
                        w.key,
                        w.message
                    ))?;
                }
                printer.line(&format!("{}: ok (job {})", path.display(), job.name))?;
            }
            Err(e) => {
                failed += 1;
                print_error(&anyhow::Error::new(e));
            }
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

fn state(action: StateAction, printer: &Printer) -> anyhow::Result<()> {
    let (StateAction::Show(args) | StateAction::Reset(args)) = &action;
    let job = load_job(&args.job)?;
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| job.output.path.clone());
    let store = crate::load::Destination::open(&output, &job.output.s3)?.state();
    let owners = match args.shard.as_deref().map(parse_shard).transpose()? {
        Some(one) => vec![shard::owner(&job.name, one)],
        None => {
            let mut owners = store.owners(&job.name)?;
            if owners.is_empty() {
                owners.push(job.name.clone());
            }
            owners
        }
    };
    for owner in owners {
        let what = match shard::owned_by(&owner, &job.name).flatten() {
            Some(shard) => format!("job {} shard {shard}", job.name),
            None => format!("job {}", job.name),
        };
        match action {
            StateAction::Show(_) => match store.read(&owner)? {
                Some(state) => printer.line(&serde_json::to_string_pretty(&state)?)?,
                None => printer.line(&format!(
                    "{what} has no state in {output}: its next run starts at its window's start"
                ))?,
            },
            StateAction::Reset(_) => {
                // Under the lock, so a running export cannot write it back a moment later.
                let _lock = store.lock(&owner, "state-reset")?;
                if store.reset(&owner)? {
                    printer.line(&format!(
                        "{what}: state removed; its next last-run window starts at initial_start"
                    ))?;
                } else {
                    printer.line(&format!("{what} had no state in {output}"))?;
                }
            }
        }
    }
    Ok(())
}

fn runs(target: &std::path::Path, limit: usize, printer: &Printer) -> anyhow::Result<()> {
    let is_url = target.to_string_lossy().starts_with("s3://");
    let (output, s3, only_job) = if target.is_dir() || is_url {
        (target.display().to_string(), Default::default(), None)
    } else {
        let job = load_job(target)?;
        (job.output.path.clone(), job.output.s3, Some(job.name))
    };
    let manifests = crate::load::Destination::open(&output, &s3)?
        .state()
        .manifests()?;
    let mut text = format!(
        "{:<44} {:<10} {:<25} {:<25} {:>13} {:>8} {:>6}\n",
        "run", "outcome", "window start", "window end", "rows", "seconds", "shard"
    );
    let mut shown = 0;
    let time = |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    for (_, m) in manifests {
        if only_job.as_deref().is_some_and(|j| m.job != j) {
            continue;
        }
        if shown == limit {
            break;
        }
        shown += 1;
        let shard = m
            .shard
            .as_ref()
            .map_or("-".to_string(), |s| format!("{}/{}", s.index, s.count));
        text.push_str(&format!(
            "{:<44} {:<10} {:<25} {:<25} {:>13} {:>8.1} {:>6}\n",
            m.run_id,
            m.outcome.as_str(),
            time(m.window.start),
            time(m.window.end),
            thousands(m.rows),
            m.duration_secs,
            shard,
        ));
    }
    if shown == 0 {
        return printer.line(&format!("no runs recorded in {output}"));
    }
    printer.line(text.trim_end())
}

fn print_schema(table: Option<&str>, json: bool, printer: &Printer) -> anyhow::Result<()> {
    let tables = match table {
        Some(name) => vec![Table::from_name(name).map(schema::table).with_context(|| {
            let names: Vec<_> = Table::ALL.iter().map(|t| t.name()).collect();
            format!(
                "no table named '{name}': the tables are {}",
                names.join(", ")
            )
        })?],
        None => schema::tables(),
    };
    if json {
        let value = if table.is_some() {
            schema::to_json(&tables[0])
        } else {
            serde_json::Value::Array(tables.iter().map(schema::to_json).collect())
        };
        printer.line(&serde_json::to_string_pretty(&value)?)
    } else {
        for t in &tables {
            printer.line(&schema::to_text(t))?;
        }
        Ok(())
    }
}

/// Everything the user reads on standard output goes through here, apart from logs.
struct Printer {
    quiet: bool,
}

impl Printer {
    fn line(&self, text: &str) -> anyhow::Result<()> {
        let mut out = io::stdout().lock();
        writeln!(out, "{text}")?;
        Ok(())
    }

    fn summary(&self, r: &RunReport) -> anyhow::Result<()> {
        if self.quiet && r.succeeded() {
            return Ok(());
        }
        let mut by_table: std::collections::BTreeMap<&str, (usize, u64, u64)> = Default::default();
        for f in &r.files {
            let e = by_table.entry(f.table).or_default();
            e.0 += 1;
            e.1 += f.rows;
            e.2 += f.bytes;
        }
        let shard = match &r.shard {
            Some(share) => format!(" (shard {})", share.shard),
            None => String::new(),
        };
        let mut text = format!(
            "job {}{shard}: {} → {} in {}\n  {} requests ({} retried, {} split), {} points, {} pages\n",
            r.job,
            r.window.start.to_rfc3339(),
            r.window.end.to_rfc3339(),
            format_elapsed(r.elapsed),
            thousands(r.stats.requests),
            thousands(r.stats.retries),
            thousands(r.stats.splits),
            thousands(r.stats.points),
            thousands(r.pages as u64),
        );
        text.push_str(&format!(
            "  {:<22} {:>10} {:>13} {:>15}\n",
            "table", "partitions", "rows", "bytes"
        ));
        for (table, (files, rows, bytes)) in &by_table {
            text.push_str(&format!(
                "  {table:<22} {:>10} {:>13} {:>15}\n",
                thousands(*files as u64),
                thousands(*rows),
                thousands(*bytes),
            ));
        }
        text.push_str(&format!("  output: {}\n", r.output));
        if let Some(until) = r.committed_until {
            text.push_str(&format!(
                "  committed until {} (the next last-run window starts there)\n",
                until.to_rfc3339()
            ));
        }
        if !r.split_otherwise.is_empty() {
            let shards: Vec<String> = r.split_otherwise.iter().map(u32::to_string).collect();
            text.push_str(&format!(
                "  WARNING shard(s) {} of this window split the job otherwise (the inventory changed \
                 between their starts): run every shard of the window again\n",
                shards.join(", ")
            ));
        }
        for skipped in &r.skipped_partitions {
            text.push_str(&format!("  kept as it was (a page failed): {skipped}\n"));
        }
        for f in &r.failed {
            text.push_str(&format!(
                "  FAILED {} {} {} → {}: {}\n",
                f.table,
                f.service_name,
                f.start.to_rfc3339(),
                f.end.to_rfc3339(),
                f.error
            ));
        }
        if r.succeeded() && !r.delta_versions.is_empty() {
            let versions: Vec<String> = r
                .delta_versions
                .iter()
                .map(|(table, version)| format!("{table} v{version}"))
                .collect();
            text.push_str(&format!(
                "  Delta tables committed: {}\n\nQuery it (a Delta table: read it through its log, not its files):\n  duckdb -c \"SELECT metric, count(*), avg(value) FROM delta_scan('{}/vm_metrics') GROUP BY ALL ORDER BY 1\"",
                versions.join(", "),
                r.output
            ));
        } else if r.succeeded() {
            text.push_str(&format!(
                "\nQuery it:\n  duckdb -c \"SELECT metric, count(*), avg(value) FROM read_parquet('{}/vm_metrics/**/*.parquet', hive_partitioning = true) GROUP BY ALL ORDER BY 1\"",
                r.output
            ));
        } else {
            text.push_str(&format!(
                "\n{} page(s) failed; run the job again to complete them.",
                r.failed.len()
            ));
        }
        self.line(&text)
    }

    fn plan(&self, job: &Job, plan: &plan::Plan, all: bool) -> anyhow::Result<()> {
        let Window { start, end } = plan.window;
        let mut text = format!(
            "job {}: {} → {}\n  page length {} ({} pages of time), {} query groups, {} requests, at most {} points\n",
            job.name,
            start.to_rfc3339(),
            end.to_rfc3339(),
            crate::domain::duration::format_duration(Duration::from_secs(plan.page_secs as u64)),
            plan::page_ranges(plan.window, plan.page_secs).len(),
            plan.groups.len(),
            thousands(plan.pages.len() as u64),
            thousands(plan.estimated_points()),
        );
        if let Some(share) = &plan.shard {
            let total: u64 = share.shard_points.iter().sum();
            let percent = |points: u64| points as f64 * 100.0 / total.max(1) as f64;
            text.push_str(&format!(
                "  shard {} of the job's {} points; every shard's:",
                share.shard,
                thousands(total),
            ));
            for (index, points) in share.shard_points.iter().enumerate() {
                text.push_str(&format!(
                    " {index}: {} ({:.1}%)",
                    thousands(*points),
                    percent(*points)
                ));
            }
            text.push('\n');
        }
        text.push_str("\n  query groups:\n");
        for (i, g) in plan.groups.iter().enumerate() {
            let metrics: Vec<&str> = g.queries.iter().map(|q| q.metric.as_str()).collect();
            text.push_str(&format!(
                "  #{i:<3} {:<14} {:<22} {:>6} series  {}\n",
                g.component.table_name(),
                plan.services[g.service].service_name,
                g.series,
                metrics.join(", ")
            ));
        }
        text.push_str("\n  requests:\n");
        let shown = if all {
            plan.pages.len()
        } else {
            plan.pages.len().min(10)
        };
        for p in &plan.pages[..shown] {
            let from = chrono::DateTime::from_timestamp_millis(p.start_ms).unwrap_or_default();
            let to = chrono::DateTime::from_timestamp_millis(p.end_ms).unwrap_or_default();
            text.push_str(&format!(
                "  {} → {}  group #{}\n",
                from.to_rfc3339(),
                to.to_rfc3339(),
                p.group
            ));
        }
        if shown < plan.pages.len() {
            text.push_str(&format!(
                "  … and {} more (--all lists them)\n",
                plan.pages.len() - shown
            ));
        }
        self.line(text.trim_end())
    }
}

/// The progress bar on standard error (only on a terminal unless asked for).
struct ProgressBar {
    bar: indicatif::ProgressBar,
}

/// How often the bar is drawn again on its own, so that the points parsed move while a long
/// response is read and no request completes.
const PROGRESS_REDRAW: Duration = Duration::from_millis(250);

impl ProgressBar {
    fn new(job: &str) -> ProgressBar {
        let bar =
            indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
        bar.set_prefix(job.to_string());
        bar.set_message("connecting");
        bar.set_style(progress_style(None));
        ProgressBar { bar }
    }
}

/// The bar's look: `{msg}` alone until the run counts points, then the points and `{msg}`.
fn progress_style(parsed: Option<&crate::extract::ParsedPoints>) -> indicatif::ProgressStyle {
    let template = match parsed {
        None => "{prefix} [{bar:30}] {pos}/{len} requests, {msg} ({elapsed})",
        Some(_) => "{prefix} [{bar:30}] {pos}/{len} requests, {points} points{msg} ({elapsed})",
    };
    let style = indicatif::ProgressStyle::with_template(template)
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> ");
    match parsed.cloned() {
        None => style,
        Some(parsed) => style.with_key(
            "points",
            move |_: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = w.write_str(&thousands(parsed.get()));
            },
        ),
    }
}

impl run::Observer for ProgressBar {
    fn planned(&self, pages: usize, parsed: &crate::extract::ParsedPoints) {
        self.bar.set_message("");
        self.bar.set_style(progress_style(Some(parsed)));
        self.bar.set_length(pages as u64);
        self.bar.enable_steady_tick(PROGRESS_REDRAW);
    }

    fn page_done(&self) {
        self.bar.inc(1);
    }

    fn committing(&self) {
        self.bar.set_message(", writing Parquet");
    }
}

fn format_elapsed(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// `n` with a comma between groups of three digits (`1,234,567`): the locale-independent form,
/// which reads the same in every terminal and log.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_grouped_by_thousands() {
        for (n, text) in [
            (0, "0"),
            (999, "999"),
            (1_000, "1,000"),
            (65_432, "65,432"),
            (1_234_567, "1,234,567"),
            (u64::MAX, "18,446,744,073,709,551,615"),
        ] {
            assert_eq!(thousands(n), text);
        }
    }
}
