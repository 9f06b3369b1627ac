//! Finding the tables of an export folder and scanning them with polars: lazy, hive-partitioned
//! scans that read only the partitions of the span (the `date` key), the rows of the span and
//! services (`ts`, `service_name`, pushed down to row-group statistics) and the columns a query
//! names. Queries run on polars' streaming engine, so what is held is the aggregation's state,
//! not the span's rows.
//!
//! An output in an object store (`s3://bucket/prefix`, cargo feature `s3`) is read the same way:
//! polars scans it with its own S3 client (ranged GETs, no download of whole files), the tables
//! are found by listing the prefix and the footers read with ranged GETs too
//! ([`crate::load::object`]). The endpoint and credentials come from the AWS environment
//! variables.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use polars::prelude::*;

use super::ReportError;
use crate::domain::table::Table;

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

/// The column a metrics table's files are sorted by first: the entity of its series.
pub fn entity_of(table: &str) -> &'static str {
    match table {
        "host_metrics" => "host",
        "filer_metrics" => "datastore",
        _ => "vm",
    }
}

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
    /// The folder, or in an object store the table's `s3://…` URL.
    dir: PathBuf,
    keys: Vec<String>,
    /// In an object store, the table's Parquet objects (keys below the output's prefix).
    objects: Vec<String>,
    /// A Delta table's files in its current version (paths, or `s3://` URLs): a scan reads these
    /// rather than every Parquet file below `dir`, since the folders also hold the files earlier
    /// versions named.
    current: Option<Vec<String>>,
}

/// The keys of the hive partition folders of `rel`, a file's path below its table.
#[cfg(any(feature = "s3", feature = "delta"))]
fn hive_keys(rel: &str) -> Vec<String> {
    rel.split('/')
        .map_while(|part| part.split_once('=').map(|(k, _)| k.to_string()))
        .collect()
}

/// The files of a Delta table's current version (relative to the table's folder), `None` when
/// `table` is not a Delta table there. `delta` reads the tables' logs.
#[cfg(feature = "delta")]
fn delta_files(
    delta: &crate::load::delta::DeltaOutput,
    table: Table,
    root: &str,
) -> Result<Option<Vec<String>>, ReportError> {
    delta.current_files(table).map_err(|e| ReportError::Output {
        path: root.to_string(),
        reason: format!(
            "cannot read the Delta table {}: {}",
            table.name(),
            error_chain(&e)
        ),
    })
}

/// What the report says of a Delta table in a build that cannot read its log.
#[cfg(not(feature = "delta"))]
fn no_delta(root: &str, table: &str) -> ReportError {
    ReportError::Output {
        path: root.to_string(),
        reason: format!(
            "{table} is a Delta table (`format = \"delta\"`), and this build cannot read its log: build with the cargo feature `delta`, or query it through its log (polars `scan_delta`, DuckDB `delta_scan`)"
        ),
    }
}

/// The tables present in an export folder.
#[derive(Debug, Clone)]
pub struct Dataset {
    tables: BTreeMap<&'static str, TableDir>,
    services: Vec<String>,
    #[cfg(feature = "s3")]
    object: Option<std::sync::Arc<crate::load::object::ObjectOutput>>,
}

impl Dataset {
    /// Finds the tables of `root`: folders named after a table that hold Parquet files.
    pub fn open(root: &Path, services: &[String]) -> Result<Dataset, ReportError> {
        if root.to_string_lossy().starts_with("s3://") {
            return Dataset::open_object_store(root, services);
        }
        if !root.is_dir() {
            return Err(ReportError::NotAFolder {
                path: root.display().to_string(),
            });
        }
        let mut tables = BTreeMap::new();
        #[cfg(feature = "delta")]
        let delta = crate::load::delta::DeltaOutput::new(root, &[]);
        for table in Table::ALL {
            let dir = root.join(table.name());
            if dir.join("_delta_log").is_dir() {
                // Its folders hold every version's files: read as plain Parquet, a re-run's
                // rows would count twice. Its log says which files are the table.
                #[cfg(not(feature = "delta"))]
                return Err(no_delta(&root.display().to_string(), table.name()));
                #[cfg(feature = "delta")]
                {
                    let Some(files) = delta_files(&delta, table, &root.display().to_string())?
                    else {
                        continue;
                    };
                    let Some(first) = files.first() else { continue };
                    let keys = hive_keys(first);
                    let current = files
                        .iter()
                        .map(|f| dir.join(f).display().to_string())
                        .collect();
                    tables.insert(
                        table.name(),
                        TableDir {
                            dir,
                            keys,
                            objects: Vec::new(),
                            current: Some(current),
                        },
                    );
                    continue;
                }
            }
            let table = table.name();
            let mut keys = Vec::new();
            if has_parquet(&dir, &mut keys, 0) {
                tables.insert(
                    table,
                    TableDir {
                        dir,
                        keys,
                        objects: Vec::new(),
                        current: None,
                    },
                );
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
            #[cfg(feature = "s3")]
            object: None,
        })
    }

    /// The tables of an output in an object store, found by listing each table's prefix.
    #[cfg(feature = "s3")]
    fn open_object_store(root: &Path, services: &[String]) -> Result<Dataset, ReportError> {
        use crate::domain::location::Location;
        let url = root.to_string_lossy().into_owned();
        let unusable = |reason: String| ReportError::Output {
            path: url.clone(),
            reason,
        };
        let Location::S3 { bucket, prefix } = Location::parse(&url).map_err(&unusable)? else {
            return Err(unusable("not an s3:// URL".to_string()));
        };
        let object = crate::load::object::ObjectOutput::connect(
            &bucket,
            &prefix,
            &crate::job::S3Settings::default(),
        )
        .map_err(|e| unusable(error_chain(&e)))?;
        let object = std::sync::Arc::new(object);
        #[cfg(feature = "delta")]
        let delta = crate::load::delta::DeltaOutput::in_store(std::sync::Arc::clone(&object), &[])
            .map_err(|e| unusable(error_chain(&e)))?;
        let mut tables = BTreeMap::new();
        for table in Table::ALL {
            let name = table.name();
            let listed: Vec<String> = object
                .list(&format!("{name}/"))
                .map_err(|e| unusable(error_chain(&e)))?
                .into_iter()
                .map(|(rel, _)| rel)
                .collect();
            let log = format!("{name}/_delta_log/");
            let is_delta = listed.iter().any(|rel| rel.starts_with(&log));
            let mut objects: Vec<String> = listed
                .into_iter()
                .filter(|rel| {
                    let file = rel.rsplit('/').next().unwrap_or_default();
                    file.ends_with(".parquet") && !file.starts_with('.')
                })
                .collect();
            let current = if is_delta {
                #[cfg(not(feature = "delta"))]
                return Err(no_delta(&url, name));
                #[cfg(feature = "delta")]
                {
                    let Some(files) = delta_files(&delta, table, &url)? else {
                        continue;
                    };
                    objects = files.iter().map(|f| format!("{name}/{f}")).collect();
                    Some(objects.iter().map(|key| object.url(key)).collect())
                }
            } else {
                None
            };
            objects.sort();
            let Some(first) = objects.first() else {
                continue;
            };
            let keys = hive_keys(first.split_once('/').map_or("", |(_, rel)| rel));
            tables.insert(
                name,
                TableDir {
                    dir: PathBuf::from(object.url(name)),
                    keys,
                    objects,
                    current,
                },
            );
        }
        if tables.is_empty() {
            return Err(ReportError::NotAnExport { path: url });
        }
        Ok(Dataset {
            tables,
            services: services.to_vec(),
            object: Some(object),
        })
    }

    #[cfg(not(feature = "s3"))]
    fn open_object_store(root: &Path, _: &[String]) -> Result<Dataset, ReportError> {
        Err(ReportError::Output {
            path: root.display().to_string(),
            reason: "this build has no object-storage support (cargo feature `s3`)".to_string(),
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
        let scanned = match &dir.current {
            // A Delta table: its current files, named one by one (hive keys are read from their
            // paths all the same).
            Some(files) => LazyFrame::scan_parquet_files(
                files.iter().map(|f| PlRefPath::from(f.as_str())).collect(),
                args,
            ),
            None => LazyFrame::scan_parquet(PlRefPath::from(glob.as_str()), args),
        };
        let mut lf = scanned.map_err(|e| ReportError::polars(format!("cannot scan {table}"), e))?;
        if dir.current.is_some() {
            // A Delta table's files hold microseconds, Delta's unit; the report counts in
            // milliseconds, as the Parquet format stores them.
            let schema = lf
                .collect_schema()
                .map_err(|e| ReportError::polars(format!("cannot scan {table}"), e))?;
            let casts: Vec<Expr> = schema
                .iter()
                .filter_map(|(name, dtype)| match dtype {
                    DataType::Datetime(unit, tz) if *unit != TimeUnit::Milliseconds => Some(
                        col(name.clone())
                            .cast(DataType::Datetime(TimeUnit::Milliseconds, tz.clone())),
                    ),
                    _ => None,
                })
                .collect();
            if !casts.is_empty() {
                lf = lf.with_columns(casts);
            }
        }
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

    /// The span of each metric table's points: `[first ts, last ts + 1 ms)`; tables without a
    /// point are left out.
    pub fn spans_present(&self) -> Result<BTreeMap<&'static str, Span>, ReportError> {
        let mut spans = BTreeMap::new();
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
            if let (Some(first), Some(last)) = (ints(&df, "first")?[0], ints(&df, "last")?[0]) {
                spans.insert(
                    table,
                    Span {
                        from_ms: first,
                        to_ms: last + 1,
                    },
                );
            }
        }
        Ok(spans)
    }
}

/// The smallest span holding all of `spans`.
pub fn union(spans: impl IntoIterator<Item = Span>) -> Option<Span> {
    spans.into_iter().reduce(|a, b| Span {
        from_ms: a.from_ms.min(b.from_ms),
        to_ms: a.to_ms.max(b.to_ms),
    })
}

/// One row group of a table: its rows and the min and max of one string column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowGroup {
    pub rows: i64,
    pub min: Option<String>,
    pub max: Option<String>,
}

impl Dataset {
    /// The row groups of `table`'s files whose `date` partition the span touches, with the
    /// statistics of `column`, read from the files' footers alone. A file whose footer cannot be
    /// read is an error naming it (the scan would fail on it anyway).
    pub fn row_groups(
        &self,
        table: &str,
        column: &str,
        span: Span,
    ) -> Result<Vec<RowGroup>, ReportError> {
        use parquet::file::statistics::Statistics;
        let Some(dir) = self.tables.get(table) else {
            return Ok(Vec::new());
        };
        let (first, last) = (day_of(span.from_ms), day_of(span.to_ms - 1));
        let mut files = Vec::new();
        match &dir.current {
            // In an object store, `objects` are the current files already.
            Some(_) if !dir.objects.is_empty() => {}
            Some(current) => files.extend(current.iter().map(PathBuf::from)),
            None => parquet_files(&dir.dir, &mut files),
        }
        files.extend(dir.objects.iter().map(PathBuf::from));
        let mut out = Vec::new();
        for path in files {
            let in_span = path.components().all(|c| {
                let c = c.as_os_str().to_string_lossy();
                match c.strip_prefix("date=").map(|d| d.parse::<NaiveDate>()) {
                    Some(Ok(d)) => first <= d && d <= last,
                    _ => true,
                }
            });
            if !in_span {
                continue;
            }
            let footer = self.footer(&path, dir)?;
            for rg in footer.row_groups() {
                let stats = rg
                    .columns()
                    .iter()
                    .find(|c| c.column_path().string() == column)
                    .and_then(|c| c.statistics());
                let text = |b: Option<&[u8]>| b.map(|b| String::from_utf8_lossy(b).into_owned());
                let (min, max) = match stats {
                    Some(Statistics::ByteArray(s)) => (
                        text(s.min_opt().map(|v| v.data())),
                        text(s.max_opt().map(|v| v.data())),
                    ),
                    _ => (None, None),
                };
                out.push(RowGroup {
                    rows: rg.num_rows(),
                    min,
                    max,
                });
            }
        }
        Ok(out)
    }
}

impl Dataset {
    /// The footer of a table's file: `path` is a local file, or an object's key (one of
    /// `dir.objects`) in the output's object store.
    fn footer(
        &self,
        path: &Path,
        dir: &TableDir,
    ) -> Result<parquet::file::metadata::ParquetMetaData, ReportError> {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let failed = |e: String| ReportError::Footer {
            path: path.display().to_string(),
            reason: e,
        };
        #[cfg(feature = "s3")]
        if let Some(object) = &self.object {
            let key = path.to_string_lossy();
            if dir.objects.iter().any(|o| *o == key) {
                let file = crate::load::object::ObjectFile::open(object, &key)
                    .map_err(|e| failed(error_chain(&e)))?
                    .ok_or_else(|| failed("the object is gone".to_string()))?;
                return SerializedFileReader::new(file)
                    .map(|r| r.metadata().clone())
                    .map_err(|e| failed(e.to_string()));
            }
        }
        let _ = dir;
        std::fs::File::open(path)
            .map_err(|e| e.to_string())
            .and_then(|f| SerializedFileReader::new(f).map_err(|e| e.to_string()))
            .map(|r| r.metadata().clone())
            .map_err(failed)
    }
}

/// An error and its causes on one line.
#[cfg(any(feature = "s3", feature = "delta"))]
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Every Parquet file below `dir` (leaving out hidden files: writers' temporary ones).
fn parquet_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            parquet_files(&path, out);
        } else if name.ends_with(".parquet") && !name.starts_with('.') {
            out.push(path);
        }
    }
}

/// Filters on `column` that split a table into ranges of about `budget` rows, from its row
/// groups' statistics: the files are sorted by `column`, so each range's scan skips the row
/// groups of the others. Every row is in exactly one range (nulls in the first); one range,
/// `true`, when the table is small or its statistics are missing.
pub fn ranges(column: &str, mut groups: Vec<RowGroup>, budget: i64) -> Vec<Expr> {
    if groups.iter().any(|g| g.min.is_none() || g.max.is_none()) {
        return vec![lit(true)];
    }
    groups.sort_by(|a, b| a.min.cmp(&b.min));
    // Cuts at row-group minimums: a range holds the row groups that start in it.
    let mut cuts: Vec<String> = Vec::new();
    let mut rows = 0;
    for g in groups {
        if rows > 0 && rows + g.rows > budget {
            if let Some(min) = g.min.filter(|m| cuts.last() != Some(m)) {
                cuts.push(min);
                rows = 0;
            }
        }
        rows += g.rows;
    }
    if cuts.is_empty() {
        return vec![lit(true)];
    }
    let c = || col(column);
    let mut out = vec![c().lt(lit(cuts[0].clone())).or(c().is_null())];
    for pair in cuts.windows(2) {
        out.push(
            c().gt_eq(lit(pair[0].clone()))
                .and(c().lt(lit(pair[1].clone()))),
        );
    }
    out.push(c().gt_eq(lit(cuts[cuts.len() - 1].clone())));
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    fn group(rows: i64, min: &str, max: &str) -> RowGroup {
        RowGroup {
            rows,
            min: Some(min.into()),
            max: Some(max.into()),
        }
    }

    /// How many of `ranges` each name (and a null) falls in.
    fn hits(ranges: &[Expr], names: &[Option<&str>]) -> Vec<u32> {
        let vm = Column::new("vm".into(), names.to_vec());
        let df = DataFrame::new(names.len(), vec![vm]).unwrap();
        let mut hits = vec![0; names.len()];
        for range in ranges {
            let df = df
                .clone()
                .lazy()
                .with_row_index("i", None)
                .filter(range.clone())
                .collect()
                .unwrap();
            for i in df.column("i").unwrap().idx().unwrap().into_no_null_iter() {
                hits[i as usize] += 1;
            }
        }
        hits
    }

    #[test]
    fn ranges_split_a_long_table_and_hold_every_row_once() {
        // Two files of three row groups each, sorted by vm, 10 rows a group.
        let groups = vec![
            group(10, "vm-1", "vm-3"),
            group(10, "vm-4", "vm-6"),
            group(10, "vm-7", "vm-9"),
            group(10, "vm-1", "vm-2"),
            group(10, "vm-3", "vm-6"),
            group(10, "vm-7", "vm-9"),
        ];
        let ranges = ranges("vm", groups.clone(), 25);
        assert!(ranges.len() >= 3, "{ranges:?}");
        let names = [
            None,
            Some("vm-0"),
            Some("vm-1"),
            Some("vm-25"),
            Some("vm-3"),
            Some("vm-4"),
            Some("vm-5"),
            Some("vm-7"),
            Some("vm-9"),
            Some("zz"),
        ];
        assert_eq!(hits(&ranges, &names), vec![1; names.len()]);
        // A budget the whole table fits in, or a row group without statistics: one range.
        assert_eq!(super::ranges("vm", groups.clone(), 1_000).len(), 1);
        let mut blind = groups;
        blind[2].min = None;
        assert_eq!(super::ranges("vm", blind, 25).len(), 1);
    }
}
