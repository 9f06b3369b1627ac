//! Finding the tables of an export folder and scanning them with polars: lazy, hive-partitioned
//! scans that read only the partitions of the span (the `date` key), the rows of the span and
//! services (`ts`, `service_name`, pushed down to row-group statistics) and the columns a query
//! names. Queries run on polars' streaming engine, so what is held is the aggregation's state,
//! not the span's rows.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use polars::prelude::*;

use super::ReportError;

/// The metric tables and the columns naming one series in each (besides `metric`).
pub const METRIC_TABLES: [(&str, &[&str]); 3] = [
    ("vm_metrics", &["service_name", "datacenter", "vm"]),
    (
        "host_metrics",
        &["service_name", "datacenter", "host", "nicname"],
    ),
    (
        "filer_metrics",
        &["service_name", "datacenter", "datastore"],
    ),
];

/// Every table an export can hold.
const TABLES: [&str; 7] = [
    "vm_metrics",
    "host_metrics",
    "filer_metrics",
    "vm_inventory",
    "host_inventory",
    "filer_inventory",
    "datacenter_inventory",
];

pub const DAY_MS: i64 = 86_400_000;

/// The `[from, to)` span a report covers, in Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub from_ms: i64,
    pub to_ms: i64,
}

impl Span {
    pub fn from(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.from_ms).unwrap_or_default()
    }

    pub fn to(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.to_ms).unwrap_or_default()
    }
}

/// One table's folder and its hive partition keys (`date`, `month`, `service_name`).
#[derive(Debug, Clone)]
struct TableDir {
    dir: PathBuf,
    keys: Vec<String>,
}

/// The tables present in an export folder.
#[derive(Debug, Clone)]
pub struct Dataset {
    tables: BTreeMap<&'static str, TableDir>,
    services: Vec<String>,
}

impl Dataset {
    /// Finds the tables of `root`: folders named after a table that hold Parquet files.
    pub fn open(root: &Path, services: &[String]) -> Result<Dataset, ReportError> {
        if !root.is_dir() {
            return Err(ReportError::NotAFolder {
                path: root.display().to_string(),
            });
        }
        let mut tables = BTreeMap::new();
        for table in TABLES {
            let dir = root.join(table);
            let mut keys = Vec::new();
            if has_parquet(&dir, &mut keys, 0) {
                tables.insert(table, TableDir { dir, keys });
            }
        }
        if tables.is_empty() {
            return Err(ReportError::NotAnExport {
                path: root.display().to_string(),
            });
        }
        Ok(Dataset {
            tables,
            services: services.to_vec(),
        })
    }

    pub fn has(&self, table: &str) -> bool {
        self.tables.contains_key(table)
    }

    /// A lazy scan of every Parquet file of `table`, restricted to the `--service` services.
    fn scan(&self, table: &str) -> Result<(LazyFrame, &TableDir), ReportError> {
        let dir = self
            .tables
            .get(table)
            .ok_or_else(|| ReportError::MissingTable {
                table: table.to_string(),
            })?;
        // The glob leaves out writers' temporary files and anything else that is not Parquet;
        // names starting with `_` (state, manifests) are outside the table folders anyway.
        let glob = format!("{}/**/*.parquet", dir.dir.display());
        let args = ScanArgsParquet {
            hive_options: HiveOptions::new_enabled(),
            ..ScanArgsParquet::default()
        };
        let mut lf = LazyFrame::scan_parquet(PlRefPath::from(glob.as_str()), args)
            .map_err(|e| ReportError::polars(format!("cannot scan {table}"), e))?;
        if !self.services.is_empty() {
            let names = Series::new("services".into(), self.services.clone());
            lf = lf.filter(col("service_name").is_in(lit(names).implode(false), false));
        }
        Ok((lf, dir))
    }

    /// The rows of `metrics` in `table` within `span`, with `columns` (and `ts`, `metric`, `value`).
    pub fn metrics(
        &self,
        table: &str,
        metrics: &[&str],
        columns: &[&str],
        span: Span,
    ) -> Result<LazyFrame, ReportError> {
        let (lf, dir) = self.scan(table)?;
        let mut lf = lf;
        if dir.keys.iter().any(|k| k == "date") {
            // Partition pruning: the dates the span touches, by the hive key alone.
            let first = day_of(span.from_ms);
            let last = day_of(span.to_ms - 1);
            lf = lf.filter(
                col("date")
                    .gt_eq(lit(first))
                    .and(col("date").lt_eq(lit(last))),
            );
        }
        lf = lf.filter(
            col("ts")
                .gt_eq(ts_lit(span.from_ms))
                .and(col("ts").lt(ts_lit(span.to_ms))),
        );
        if !metrics.is_empty() {
            let names = Series::new(
                "metrics".into(),
                metrics.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
            );
            lf = lf.filter(col("metric").is_in(lit(names).implode(false), false));
        }
        let mut select: Vec<Expr> = vec![col("ts"), col("metric"), col("value")];
        select.extend(columns.iter().map(|c| col(*c)));
        Ok(lf.select(select))
    }

    /// The rows of the latest snapshot of an inventory table, with `columns`; `None` when the
    /// table is absent.
    pub fn latest_inventory(
        &self,
        table: &str,
        columns: &[&str],
    ) -> Result<Option<LazyFrame>, ReportError> {
        if !self.has(table) {
            return Ok(None);
        }
        let (lf, _) = self.scan(table)?;
        let mut select: Vec<Expr> = vec![col("snapshot_ts").alias("_snapshot")];
        select.extend(columns.iter().map(|c| col(*c)));
        if !columns.contains(&"service_name") {
            select.push(col("service_name"));
        }
        // Each service's latest snapshot: services may be exported by different jobs and days.
        let latest = lf
            .clone()
            .group_by([col("service_name").alias("_service")])
            .agg([col("snapshot_ts").max().alias("_latest")]);
        let lf = lf
            .select(select)
            .join(
                latest,
                [col("service_name"), col("_snapshot")],
                [col("_service"), col("_latest")],
                JoinArgs::new(JoinType::Inner),
            )
            .drop(by_name(["_snapshot", "_service", "_latest"], false, false));
        Ok(Some(lf))
    }

    /// The span of all metric points present: `[first ts, last ts + 1 ms)`.
    pub fn span_present(&self) -> Result<Option<Span>, ReportError> {
        let mut span: Option<Span> = None;
        for (table, _) in METRIC_TABLES {
            if !self.has(table) {
                continue;
            }
            let (lf, _) = self.scan(table)?;
            let df = run(
                lf.select([
                    col("ts").min().cast(DataType::Int64).alias("first"),
                    col("ts").max().cast(DataType::Int64).alias("last"),
                ]),
                "the span of the export",
            )?;
            let (Some(first), Some(last)) = (ints(&df, "first")?[0], ints(&df, "last")?[0]) else {
                continue;
            };
            let this = Span {
                from_ms: first,
                to_ms: last + 1,
            };
            span = Some(match span {
                None => this,
                Some(s) => Span {
                    from_ms: s.from_ms.min(this.from_ms),
                    to_ms: s.to_ms.max(this.to_ms),
                },
            });
        }
        Ok(span)
    }
}

/// Whether `dir` holds a Parquet file at some depth; collects the hive keys of the first path.
fn has_parquet(dir: &Path, keys: &mut Vec<String>, depth: usize) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if path.is_dir() {
            if let Some((key, _)) = name.split_once('=') {
                if depth == keys.len() {
                    keys.push(key.to_string());
                }
                if has_parquet(&path, keys, depth + 1) {
                    return true;
                }
                keys.truncate(depth);
            }
        } else if name.ends_with(".parquet") && !name.starts_with('.') {
            return true;
        }
    }
    false
}

/// The UTC date of a Unix millisecond.
pub fn day_of(ms: i64) -> NaiveDate {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .date_naive()
}

/// `YYYY-MM-DD` of a count of days since 1970-01-01.
pub fn date_of_day(day: i64) -> String {
    day_of(day.saturating_mul(DAY_MS)).to_string()
}

/// A `Timestamp(ms, "UTC")` literal, comparable with the `ts` column.
pub fn ts_lit(ms: i64) -> Expr {
    lit(ms).cast(DataType::Datetime(
        TimeUnit::Milliseconds,
        Some(TimeZone::UTC),
    ))
}

/// `ts` as Unix milliseconds.
pub fn ts_ms() -> Expr {
    col("ts").cast(DataType::Int64)
}

/// The UTC day of `ts`, as days since 1970-01-01 (`ts` is in UTC, so its date is the UTC date).
pub fn day_number() -> Expr {
    col("ts").cast(DataType::Date).cast(DataType::Int64)
}

/// Runs a query on the streaming engine.
pub fn run(lf: LazyFrame, what: &str) -> Result<DataFrame, ReportError> {
    let started = std::time::Instant::now();
    let df = lf
        .collect_with_engine(Engine::Streaming)
        .map(|r| r.unwrap_single())
        .map_err(|e| ReportError::polars(format!("cannot compute {what}"), e))?;
    tracing::info!(
        query = what,
        rows = df.height(),
        secs = started.elapsed().as_secs_f64(),
        "Query done."
    );
    Ok(df)
}

fn series_of<'a>(df: &'a DataFrame, name: &str) -> Result<&'a Series, ReportError> {
    df.column(name)
        .map(|c| c.as_materialized_series())
        .map_err(|e| ReportError::polars(format!("no column {name}"), e))
}

/// A column as floats (nulls and NaN as `None`).
pub fn floats(df: &DataFrame, name: &str) -> Result<Vec<Option<f64>>, ReportError> {
    let s = series_of(df, name)?
        .cast(&DataType::Float64)
        .map_err(|e| ReportError::polars(format!("column {name}"), e))?;
    let ca = s
        .f64()
        .map_err(|e| ReportError::polars(format!("column {name}"), e))?;
    Ok(ca.iter().map(|v| v.filter(|x| x.is_finite())).collect())
}

/// A column as integers.
pub fn ints(df: &DataFrame, name: &str) -> Result<Vec<Option<i64>>, ReportError> {
    let s = series_of(df, name)?
        .cast(&DataType::Int64)
        .map_err(|e| ReportError::polars(format!("column {name}"), e))?;
    let ca = s
        .i64()
        .map_err(|e| ReportError::polars(format!("column {name}"), e))?;
    Ok(ca.iter().collect())
}

/// A column as strings.
pub fn strings(df: &DataFrame, name: &str) -> Result<Vec<Option<String>>, ReportError> {
    let s = series_of(df, name)?
        .cast(&DataType::String)
        .map_err(|e| ReportError::polars(format!("column {name}"), e))?;
    let ca = s
        .str()
        .map_err(|e| ReportError::polars(format!("column {name}"), e))?;
    Ok(ca.iter().map(|v| v.map(str::to_string)).collect())
}

/// The `p`-quantile with linear interpolation between the closest ranks (DuckDB's
/// `quantile_cont`, numpy's default).
pub fn quantile(e: Expr, p: f64) -> Expr {
    e.quantile(lit(p), QuantileMethod::Linear)
}
