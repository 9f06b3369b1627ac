//! The report's tables as files for pipelines: one CSV or Parquet file per table, named
//! `<section>.<table>.csv|parquet`, into one folder. Every row is written (the display formats'
//! limits do not apply). CSV puts each column's unit in its header (`cpu_p95 [percent]`); Parquet
//! keeps plain column names and records the units in the file's key-value metadata
//! (`vscope.units`, a JSON object) with the span and the source.

use std::fs;
use std::path::{Path, PathBuf};

use polars::prelude::*;

use super::model::{Cell, Report, Table};
use super::ReportError;

/// Writes `<dir>/<section>.<table>.csv` for every table; returns the files written.
pub fn write_csv(report: &Report, dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    each_table(report, dir, "csv", |t, path| {
        let mut text = String::new();
        let header: Vec<String> = t
            .columns
            .iter()
            .map(|c| match &c.unit {
                Some(u) => quote(&format!("{} [{u}]", c.name)),
                None => quote(c.name),
            })
            .collect();
        text.push_str(&header.join(","));
        text.push('\n');
        for r in &t.rows {
            let fields: Vec<String> = r
                .iter()
                .map(|c| match c {
                    Cell::Null => String::new(),
                    Cell::Int(i) => i.to_string(),
                    // Shortest text that reads back as the same double.
                    Cell::Float(f) => format!("{f:?}"),
                    Cell::Text(s) => quote(s),
                    Cell::Bool(b) => b.to_string(),
                })
                .collect();
            text.push_str(&fields.join(","));
            text.push('\n');
        }
        fs::write(path, text).map_err(|source| ReportError::Write {
            path: path.display().to_string(),
            source,
        })
    })
}

/// Writes `text` to `path` under a hidden temporary name beside it, then renames it into place:
/// neither a reader nor a crash ever finds half a report.
pub fn write_file(path: &Path, text: &str) -> Result<(), ReportError> {
    replace(path, |temp| {
        fs::write(temp, text).map_err(|source| ReportError::Write {
            path: path.display().to_string(),
            source,
        })
    })
}

/// Runs `write` on a hidden temporary path beside `path`, then renames the file over `path`; the
/// temporary file is removed when either step fails.
fn replace(
    path: &Path,
    write: impl FnOnce(&Path) -> Result<(), ReportError>,
) -> Result<(), ReportError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let renamed = write(&temp).and_then(|()| {
        fs::rename(&temp, path).map_err(|source| ReportError::Write {
            path: path.display().to_string(),
            source,
        })
    });
    if renamed.is_err() {
        let _ = fs::remove_file(&temp);
    }
    renamed
}

/// Writes `<dir>/<section>.<table>.parquet` for every table; returns the files written.
pub fn write_parquet(report: &Report, dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    each_table(report, dir, "parquet", |t, path| {
        let mut df = frame(t).map_err(|e| ReportError::polars(format!("table {}", t.id), e))?;
        let units: serde_json::Map<String, serde_json::Value> = t
            .columns
            .iter()
            .filter_map(|c| Some((c.name.to_string(), c.unit.clone()?.into())))
            .collect();
        let metadata = KeyValueMetadata::from_static(vec![
            (
                "vscope.units".to_string(),
                serde_json::Value::Object(units).to_string(),
            ),
            ("vscope.from".to_string(), report.from.to_rfc3339()),
            ("vscope.to".to_string(), report.to.to_rfc3339()),
            ("vscope.source".to_string(), report.source.clone()),
        ]);
        let write_err = |source| ReportError::Write {
            path: path.display().to_string(),
            source,
        };
        let file = fs::File::create(path).map_err(write_err)?;
        ParquetWriter::new(file)
            .with_compression(ParquetCompression::Zstd(None))
            .with_key_value_metadata(Some(metadata))
            .finish(&mut df)
            .map_err(|e| ReportError::polars(format!("cannot write {}", path.display()), e))?;
        Ok(())
    })
}

fn each_table(
    report: &Report,
    dir: &Path,
    ext: &str,
    mut write: impl FnMut(&Table, &Path) -> Result<(), ReportError>,
) -> Result<Vec<PathBuf>, ReportError> {
    fs::create_dir_all(dir).map_err(|source| ReportError::Write {
        path: dir.display().to_string(),
        source,
    })?;
    let mut written = Vec::new();
    for s in &report.sections {
        for t in &s.tables {
            let path = dir.join(format!("{}.{}.{ext}", s.id, t.id));
            replace(&path, |temp| write(t, temp))?;
            written.push(path);
        }
    }
    Ok(written)
}

/// RFC 4180 quoting where needed.
fn quote(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A table as a DataFrame: a column is Int64, Float64, Boolean or String by the cells it holds
/// (a column of integers and floats is Float64).
fn frame(t: &Table) -> PolarsResult<DataFrame> {
    let mut columns = Vec::with_capacity(t.columns.len());
    for (i, c) in t.columns.iter().enumerate() {
        let cells = t.rows.iter().map(|r| &r[i]);
        let name = PlSmallStr::from(c.name);
        let has = |f: fn(&Cell) -> bool| t.rows.iter().any(|r| f(&r[i]));
        let series = if has(|c| matches!(c, Cell::Text(_))) {
            let v: Vec<Option<String>> = cells
                .map(|c| match c {
                    Cell::Null => None,
                    Cell::Text(s) => Some(s.clone()),
                    other => Some(super::format_text::display(other)),
                })
                .collect();
            Series::new(name, v)
        } else if has(|c| matches!(c, Cell::Float(_))) {
            let v: Vec<Option<f64>> = cells
                .map(|c| match c {
                    Cell::Float(f) => Some(*f),
                    Cell::Int(i) => Some(*i as f64),
                    _ => None,
                })
                .collect();
            Series::new(name, v)
        } else if has(|c| matches!(c, Cell::Int(_))) {
            let v: Vec<Option<i64>> = cells
                .map(|c| match c {
                    Cell::Int(i) => Some(*i),
                    _ => None,
                })
                .collect();
            Series::new(name, v)
        } else if has(|c| matches!(c, Cell::Bool(_))) {
            let v: Vec<Option<bool>> = cells
                .map(|c| match c {
                    Cell::Bool(b) => Some(*b),
                    _ => None,
                })
                .collect();
            Series::new(name, v)
        } else {
            Series::full_null(name, t.rows.len(), &DataType::String)
        };
        columns.push(series.into());
    }
    DataFrame::new(t.rows.len(), columns)
}
