//! Offline reports over an export folder (`vscope-export report`), built with polars.
//!
//! Owns reading the Parquet output back (lazy, pruned scans; `scan`), the figures of every series
//! in one streaming pass a table (`series`), the six sections the report holds (`sections`:
//! estate and coverage, capacity, rightsizing, contention, storage, network) and their formats
//! (`format_text`, `format_json`, `format_files` for CSV and Parquet, `format_html` with the `svg`
//! charts). Never touches the exporter's pipeline: it reads the files `run` wrote, like any other
//! reader, and shares no types with arrow-rs (polars has its own Arrow); the `parquet` crate only
//! reads the files' footers, to split a long span's scan into ranges of VMs. Built only with the
//! `report` cargo feature.

mod format_files;
mod format_html;
mod format_json;
mod format_text;
pub mod model;
mod scan;
mod sections;
mod series;
mod svg;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use chrono::{DateTime, Utc};

use crate::job::{Catalog, TimeExpr, WindowError};
pub use format_files::{write_csv, write_file, write_parquet};
pub use format_html::to_html;
pub use format_json::to_json;
pub use format_text::to_text;
pub use model::Report;
use scan::{Dataset, Span};

/// What the command line asks for.
#[derive(Debug, Clone)]
pub struct Options {
    /// The export folder (`OUT` of `run`).
    pub out: PathBuf,
    /// Start of the span (a job window's time forms); the first point present when `None`.
    pub from: Option<String>,
    /// End of the span (exclusive); just after the last point present when `None`.
    pub to: Option<String>,
    /// Only these services; every service when empty.
    pub services: Vec<String>,
    /// Rows of the top-N tables.
    pub top: usize,
}

/// Why no report could be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path} is not a folder")]
    NotAFolder { path: String },
    #[error("cannot read the output {path}: {reason}")]
    Output { path: String, reason: String },
    #[error("{path} holds no exported table (no <table>/…/*.parquet of vm_metrics, host_metrics, filer_metrics or an inventory): is it the output folder of `vscope-export run`?")]
    NotAnExport { path: String },
    #[error("{path} holds no metric table (vm_metrics, host_metrics or filer_metrics): there is nothing to report on")]
    NoMetrics { path: String },
    #[error("table {table} is not in the export")]
    MissingTable { table: String },
    #[error("--{flag} {text}: {source}")]
    Time {
        flag: &'static str,
        text: String,
        source: WindowError,
    },
    #[error("the span ends ({to}) before it starts or where it starts ({from})")]
    EmptySpan {
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    },
    #[error("no metric points in {from} → {to}{services} (the export holds points from {first} to {last})")]
    NoDataInSpan {
        from: String,
        to: String,
        services: String,
        first: String,
        last: String,
    },
    #[error("cannot read the footer of {path}: {reason}")]
    Footer { path: String, reason: String },
    #[error("{context}")]
    Polars {
        context: String,
        source: polars::error::PolarsError,
    },
    #[error("cannot write {path}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

impl ReportError {
    pub(crate) fn polars(context: String, source: polars::error::PolarsError) -> ReportError {
        ReportError::Polars { context, source }
    }
}

/// What every section reads: the dataset, the span, the steps of the series and the catalog.
pub(crate) struct Context {
    pub ds: Dataset,
    pub span: Span,
    pub top: usize,
    pub catalog: Catalog,
    /// The span of each metric table's points in the whole export.
    pub present: BTreeMap<&'static str, Span>,
    /// The most common interval between two points of a series, per metric (milliseconds).
    pub steps: BTreeMap<String, i64>,
    /// The figures of each metric table's series in the span ([`series::table`]): one pass a
    /// table (a range of VMs at a time for vm_metrics, whose percentiles are kept).
    pub series: BTreeMap<&'static str, HashMap<series::SeriesKey, series::Figures>>,
    /// The per-VM figures, computed once for rightsizing, contention and network.
    pub vms: std::cell::OnceCell<sections::rightsizing::VmFigures>,
}

impl Context {
    /// The catalog's unit of `metric` (`schemas/metrics.toml`), or `?` for a metric not in it.
    pub fn unit(&self, metric: &str) -> String {
        self.catalog
            .get(metric)
            .map_or_else(|| "?".to_string(), |m| m.unit.clone())
    }

    pub fn step_ms(&self, metric: &str) -> Option<i64> {
        self.steps.get(metric).copied()
    }
}

/// Reads the export and computes every section. `now` resolves relative times (`7d-ago`).
pub fn build(opts: &Options, now: DateTime<Utc>) -> Result<Report, ReportError> {
    let ds = Dataset::open(&opts.out, &opts.services)?;
    if !scan::METRIC_TABLES.iter().any(|(t, _)| ds.has(t)) {
        return Err(ReportError::NoMetrics {
            path: opts.out.display().to_string(),
        });
    }
    let present_by_table = ds.spans_present()?;
    let present = scan::union(present_by_table.values().copied());
    let resolve =
        |flag: &'static str, text: &Option<String>| -> Result<Option<DateTime<Utc>>, ReportError> {
            let Some(text) = text else { return Ok(None) };
            let err = |source| ReportError::Time {
                flag,
                text: text.clone(),
                source,
            };
            let expr = TimeExpr::parse(text).map_err(err)?;
            if expr == TimeExpr::LastRun {
                return Err(err(WindowError::Syntax { text: text.clone() }));
            }
            expr.resolve(now, None)
                .map(Some)
                .ok_or_else(|| err(WindowError::OutOfRange { text: text.clone() }))
        };
    let from = resolve("from", &opts.from)?;
    let to = resolve("to", &opts.to)?;
    let no_data = |from: DateTime<Utc>, to: DateTime<Utc>| ReportError::NoDataInSpan {
        from: from.to_rfc3339(),
        to: to.to_rfc3339(),
        services: if opts.services.is_empty() {
            String::new()
        } else {
            format!(" for {}", opts.services.join(", "))
        },
        first: present.map_or("nothing".into(), |s| s.from().to_rfc3339()),
        last: present.map_or("nothing".into(), |s| {
            DateTime::from_timestamp_millis(s.to_ms - 1)
                .unwrap_or_default()
                .to_rfc3339()
        }),
    };
    let span = match (from, to, present) {
        (from, to, Some(p)) => Span {
            from_ms: from.map_or(p.from_ms, |t| t.timestamp_millis()),
            to_ms: to.map_or(p.to_ms, |t| t.timestamp_millis()),
        },
        (Some(f), Some(t), None) => return Err(no_data(f, t)),
        (f, t, None) => {
            let t = t.or(f).unwrap_or(now);
            return Err(no_data(f.unwrap_or(t), t));
        }
    };
    if span.to_ms <= span.from_ms {
        return Err(ReportError::EmptySpan {
            from: span.from(),
            to: span.to(),
        });
    }
    let mut ctx = Context {
        ds,
        span,
        top: opts.top,
        catalog: Catalog::builtin(),
        present: present_by_table,
        steps: BTreeMap::new(),
        series: BTreeMap::new(),
        vms: std::cell::OnceCell::new(),
    };
    if !sections::coverage::has_points(&ctx)? {
        return Err(no_data(span.from(), span.to()));
    }
    ctx.steps = sections::coverage::steps(&ctx)?;
    for (table, series) in scan::METRIC_TABLES {
        if ctx.ds.has(table) {
            let wanted = match table {
                "vm_metrics" => sections::rightsizing::wanted(),
                _ => series::Wanted::default(),
            };
            let figures = series::table(&ctx.ds, table, series, ctx.span, &wanted)?;
            ctx.series.insert(table, figures);
        }
    }
    let sections = vec![
        sections::coverage::section(&ctx)?,
        sections::capacity::section(&ctx)?,
        sections::rightsizing::section(&ctx)?,
        sections::contention::section(&ctx)?,
        sections::storage::section(&ctx)?,
        sections::network::section(&ctx)?,
    ];
    Ok(Report {
        source: opts.out.display().to_string(),
        from: span.from(),
        to: span.to(),
        services: opts.services.clone(),
        top: opts.top,
        sections,
    })
}
