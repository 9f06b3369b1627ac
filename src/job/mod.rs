//! Job files: the TOML model, validation (every problem at once, each with its key and line), time
//! window expressions and the metric catalog. Owns reading the job file and nothing else: no
//! network, no output folder.
//!
//! A job file is parsed into the plain serde structs of `file` (unknown keys are errors), checked,
//! then resolved once into [`Job`], which the rest of the program reads:
//!
//! 1. TOML syntax (`toml::de::DeTable`, which keeps the span of every key and value);
//! 2. unknown keys, all of them, against the serde structs' own field lists;
//! 3. each section deserialized on its own (a type error in one does not hide the others);
//! 4. every value checked and resolved (`resolve`), problems keyed by dotted path and located.
//!
//! Each step reports every problem it finds; a later step runs when the earlier ones found none
//! that would make its reports misleading (syntax errors stop; unknown keys do not).

mod file;
mod report;
mod resolve;
mod simulator;
#[cfg(test)]
mod tests;
mod window;

pub use crate::domain::catalog::{Catalog, Component, MetricDef};
pub use crate::domain::duration::{format_duration, parse_delay, parse_duration};
pub use crate::domain::partition::PartitionBy;
pub use simulator::Simulator;
pub use window::{TimeExpr, Window, WindowError};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A job, validated and resolved: what to fetch, over which window, and where to write it.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Names the job's files (`part-<name>-…`), its state and its lock; `[A-Za-z0-9_-]+`.
    pub name: String,
    /// The one slice of the job a run does (`shard = "I/N"`, `run --shard`); `None`: all of it.
    pub shard: Option<crate::domain::shard::Shard>,
    /// The file it came from, for error messages.
    pub path: PathBuf,
    pub source: Source,
    pub window: WindowSpec,
    pub exports: Vec<Export>,
    pub output: Output,
    /// What is allowed but probably unintended (e.g. a metric missing from the catalog), in
    /// document order; `vscope-export validate` prints them, `run` logs them.
    pub warnings: Vec<Problem>,
}

/// Where the data comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub api: Api,
    /// Which Hosted Private Cloud services to export.
    pub services: Services,
    /// Only these datacenters (by APIv6 `Datacenter.name`, e.g. `datacenter869`); `None` = all.
    pub datacenters: Option<Vec<String>>,
    /// How the metrics read token is obtained.
    pub token: TokenSource,
    /// How transient failures of both APIs are tried again (`[source.retry]`).
    pub retry: crate::domain::retry::RetryPolicy,
}

/// The APIv6 to talk to.
#[derive(Debug, Clone, PartialEq)]
pub enum Api {
    /// A real (or proxied) APIv6: an endpoint name from the OVH table (`ovh-eu`, …) or a full URL.
    /// `None` means "from `OVH_ENDPOINT` or ovh.conf, else ovh-eu", as the official clients do.
    Ovh { endpoint: Option<String> },
    /// The built-in simulator, started in-process on loopback for this run.
    Simulator(Simulator),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Services {
    All,
    Named(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum TokenSource {
    /// `POST /dedicatedCloud/{sn}/user/{id}/metricsToken` for the user with this login/name.
    MetricsUser(String),
    /// A token read from the environment variable `token_env`, for the OpenTSDB endpoint `url`.
    Direct {
        token_env: String,
        opentsdb_url: String,
    },
}

/// The window as written in the job (expressions, resolved against the clock at run time).
#[derive(Debug, Clone, PartialEq)]
pub struct WindowSpec {
    pub start: TimeExpr,
    pub end: TimeExpr,
    /// Page length; `None` = automatic from the inventory size and the point cap.
    pub page: Option<Duration>,
    /// With `start = "last-run"`: how far before the last committed end to start again.
    pub lookback: Duration,
    /// With `start = "last-run"` and no state yet: where the first run starts.
    pub initial_start: Option<TimeExpr>,
}

/// One `[[export]]`: a table and the sub-queries that fill it.
#[derive(Debug, Clone, PartialEq)]
pub struct Export {
    pub component: Component,
    /// Metric names, already expanded from `"all"`.
    pub metrics: Vec<String>,
    /// OpenTSDB aggregator; `none` (the default) returns every series with its raw points.
    pub aggregator: String,
    /// e.g. `5m-avg-nan`; `None` = raw points.
    pub downsample: Option<String>,
    /// Extra tag filters (`{"vm": "vm-1|vm-2"}`); the entity tag is grouped with `*` by default.
    pub tags: BTreeMap<String, String>,
}

/// Where and how the tables are written.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// A folder (relative paths are relative to the current directory), a `file://` URL or
    /// `s3://bucket/prefix`.
    pub path: String,
    /// Hive partition columns, outermost first.
    pub partitioning: Vec<PartitionBy>,
    /// ZSTD level, 1..=22.
    pub compression_level: i32,
    /// How to reach the object store of an `s3://` path (`[output.s3]`).
    pub s3: S3Settings,
    /// Plain hive-partitioned Parquet, or Delta Lake tables.
    pub format: OutputFormat,
}

/// `[output] format`: how the tables are kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OutputFormat {
    /// Hive-partitioned Parquet: each partition's files replaced one at a time.
    #[default]
    Parquet,
    /// Delta Lake tables (cargo feature `delta`): the same Parquet files, made visible by one
    /// transaction per table and run (or shard) in each table's `_delta_log/`.
    Delta,
}

impl OutputFormat {
    pub fn name(self) -> &'static str {
        match self {
            OutputFormat::Parquet => "parquet",
            OutputFormat::Delta => "delta",
        }
    }
}

/// `[output.s3]`, checked: what a job file may say about an S3-compatible store. Whatever it
/// leaves out comes from the usual AWS environment variables; credentials always do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Settings {
    /// https, or http to a loopback host.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// `Some(true)` for virtual-hosted addressing, `Some(false)` for path-style.
    pub virtual_hosted: Option<bool>,
}

/// One thing wrong with a job file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key, e.g. `export[1].metrics`; empty for the file as a whole.
    pub key: String,
    /// 1-based line (and column) where known.
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("cannot read job file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", render_problems(path, problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

/// `path:line:column: key: message`, one line per problem.
fn render_problems(path: &Path, problems: &[Problem]) -> String {
    let mut text = format!(
        "job file {} has {} problem(s):",
        path.display(),
        problems.len()
    );
    for p in problems {
        text.push_str(&format!("\n  {}", path.display()));
        if let Some(line) = p.line {
            text.push_str(&format!(":{line}"));
            if let Some(col) = p.column {
                text.push_str(&format!(":{col}"));
            }
        }
        if !p.key.is_empty() {
            text.push_str(&format!(": {}", p.key));
        }
        text.push_str(&format!(": {}", p.message));
    }
    text
}

/// Reads, validates and resolves one job file.
pub fn load(path: &Path) -> Result<Job, JobError> {
    let text = std::fs::read_to_string(path).map_err(|source| JobError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &text)
}

/// Validates and resolves job text; `path` is only used in messages. Every problem is reported
/// at once in [`JobError::Invalid`]; warnings of a valid job are in [`Job::warnings`].
pub fn parse(path: &Path, text: &str) -> Result<Job, JobError> {
    let invalid = |problems| JobError::Invalid {
        path: path.to_path_buf(),
        problems,
    };
    let mut report = report::Report::new(text);

    let (root, syntax_errors) = toml::de::DeTable::parse_recoverable(text);
    if !syntax_errors.is_empty() {
        for error in &syntax_errors {
            report.problem_at("", error.span(), error.message().trim_end());
        }
        report.finish();
        return Err(invalid(report.problems));
    }
    let mut root = root.into_inner();
    file::remove_unknown_keys(&mut root, &mut report);

    report.locate_in(&root);
    let sections = file::read(&root, &mut report);
    let job = resolve::job(path, &sections, &mut report);
    report.finish();
    match job {
        Some(job) if report.problems.is_empty() => Ok(Job {
            warnings: report.warnings,
            ..job
        }),
        _ => Err(invalid(report.problems)),
    }
}
