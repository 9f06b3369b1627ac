//! The transform stage: metric series plus the inventory snapshot become Arrow record batches with
//! the table schemas of [`schema`], routed to their hive partitions and sorted by
//! (entity, metric, ts). Owns no file I/O and no HTTP.
//!
//! - [`MetricsTable`] takes series page by page and hands back one sorted batch per partition;
//! - [`InventoryIndex`] is the snapshot keyed the way the metrics' tags name objects;
//! - [`inventory_tables`] writes the snapshot itself as the `*_inventory` tables;
//! - [`layout`] tells the load stage how each table is laid out in Parquet, and
//!   [`merge_outside_window`] keeps the rows of a re-run's partition that the run did not cover.

mod columns;
mod index;
mod inventory;
mod metrics;
mod partition;
pub mod schema;

use std::sync::Arc;

use arrow::array::{AsArray, BooleanArray, RecordBatch};
use arrow::compute::{
    concat_batches, filter_record_batch, lexsort_to_indices, take_record_batch, SortColumn,
    SortOptions,
};
use arrow::datatypes::{Schema, TimestampMillisecondType};

pub use columns::ColumnError;
pub use index::InventoryIndex;
pub use inventory::inventory_tables;
pub use metrics::MetricsTable;

use crate::load::TableLayout;

#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    #[error("cannot build the {table} batch")]
    Arrow {
        table: &'static str,
        #[source]
        source: arrow::error::ArrowError,
    },
    #[error("cannot build column {column} of {table}")]
    Column {
        table: &'static str,
        column: &'static str,
        #[source]
        source: ColumnError,
    },
    #[error("column {column} of {table} has no source (a bug in the transform stage)")]
    NoSource {
        table: &'static str,
        column: &'static str,
    },
    #[error("unknown table {table}")]
    UnknownTable { table: String },
    #[error(
        "the existing {table} file has another schema than this version writes ({difference}); \
         move the old partition away or export to a new folder"
    )]
    SchemaMismatch { table: String, difference: String },
}

/// The columns each table is sorted by within a file, in order. Metrics: (entity…, metric, ts);
/// inventories: (service_name, datacenter_id, id).
fn sorted_by(table: &str) -> Option<Vec<&'static str>> {
    Some(match table {
        "vm_metrics" => vec!["vm", "metric", "ts"],
        "host_metrics" => vec!["host", "nicname", "metric", "ts"],
        "filer_metrics" => vec!["datastore", "metric", "ts"],
        "vm_inventory" => vec!["service_name", "datacenter_id", "vm_id"],
        "host_inventory" => vec!["service_name", "datacenter_id", "host_id"],
        "filer_inventory" => vec!["service_name", "datacenter_id", "filer_id"],
        "datacenter_inventory" => vec!["service_name", "datacenter_id"],
        _ => return None,
    })
}

/// How a table is laid out in Parquet: schema, sort columns, delta-encoded columns.
pub fn layout(table: &str) -> Option<TableLayout> {
    let def = schema::table(table)?;
    // Timestamps ascend within a series and repeat across the snapshot column: deltas are small
    // or zero, which DELTA_BINARY_PACKED stores in a few bits where a dictionary would not.
    let delta_columns = ["ts", "snapshot_ts"]
        .into_iter()
        .filter(|c| def.column(c).is_some())
        .collect();
    Some(TableLayout {
        name: def.name,
        schema: Arc::new(def.schema()),
        sorted_by: sorted_by(def.name)?,
        delta_columns,
    })
}

/// A re-run over part of a partition: the rows of `old` (the job's previous file there) outside
/// `[start_ms, end_ms)` are kept, merged with `new`, and sorted again. Tables without `ts` (the
/// inventories) are simply replaced by `new`.
pub fn merge_outside_window(
    table: &str,
    old: &[RecordBatch],
    start_ms: i64,
    end_ms: i64,
    new: &RecordBatch,
) -> Result<RecordBatch, TransformError> {
    let unknown = || TransformError::UnknownTable {
        table: table.to_string(),
    };
    let def = schema::table(table).ok_or_else(unknown)?;
    let schema = Arc::new(def.schema());
    let arrow_err = |source| TransformError::Arrow {
        table: def.name,
        source,
    };
    check_schema(table, &schema, new.schema().as_ref(), "new rows")?;
    for batch in old {
        check_schema(table, &schema, batch.schema().as_ref(), "existing file")?;
    }
    let new =
        RecordBatch::try_new(Arc::clone(&schema), new.columns().to_vec()).map_err(arrow_err)?;
    let Ok(ts_index) = schema.index_of("ts") else {
        return Ok(new);
    };
    let mut parts = Vec::with_capacity(old.len() + 1);
    for batch in old {
        let ts = batch
            .column(ts_index)
            .as_primitive::<TimestampMillisecondType>();
        let keep: BooleanArray = ts
            .values()
            .iter()
            .map(|&t| Some(t < start_ms || t >= end_ms))
            .collect();
        let kept = filter_record_batch(batch, &keep).map_err(arrow_err)?;
        if kept.num_rows() > 0 {
            parts.push(
                RecordBatch::try_new(Arc::clone(&schema), kept.columns().to_vec())
                    .map_err(arrow_err)?,
            );
        }
    }
    if parts.is_empty() {
        return Ok(new);
    }
    parts.push(new);
    let all = concat_batches(&schema, &parts).map_err(arrow_err)?;
    sort_batch(def.name, &all)
}

/// Sorts a batch of a metrics table by its layout's columns (then datacenter and service, so the
/// order is total enough to be stable across runs).
fn sort_batch(table: &'static str, batch: &RecordBatch) -> Result<RecordBatch, TransformError> {
    let arrow_err = |source| TransformError::Arrow { table, source };
    let mut names = sorted_by(table).unwrap_or_default();
    names.extend(["datacenter", "service_name"]);
    let options = SortOptions {
        descending: false,
        nulls_first: true,
    };
    let columns: Vec<SortColumn> = names
        .iter()
        .filter_map(|n| batch.column_by_name(n))
        .map(|values| SortColumn {
            values: Arc::clone(values),
            options: Some(options),
        })
        .collect();
    let indices = lexsort_to_indices(&columns, None).map_err(arrow_err)?;
    take_record_batch(batch, &indices).map_err(arrow_err)
}

/// Whether `found` has the columns of `expected` (names, types, nullability, in order).
fn check_schema(
    table: &str,
    expected: &Schema,
    found: &Schema,
    what: &str,
) -> Result<(), TransformError> {
    let describe = |s: &Schema| -> Vec<String> {
        s.fields()
            .iter()
            .map(|f| {
                let null = if f.is_nullable() { "" } else { " not null" };
                format!("{} {}{null}", f.name(), f.data_type())
            })
            .collect()
    };
    let (want, got) = (describe(expected), describe(found));
    if want == got {
        return Ok(());
    }
    let mut difference: Vec<String> = Vec::new();
    for w in want.iter().filter(|w| !got.contains(w)) {
        difference.push(format!("{what} lacks `{w}`"));
    }
    for g in got.iter().filter(|g| !want.contains(g)) {
        difference.push(format!("{what} has `{g}`"));
    }
    if difference.is_empty() {
        difference.push(format!("{what} has the columns in another order"));
    }
    Err(TransformError::SchemaMismatch {
        table: table.to_string(),
        difference: difference.join(", "),
    })
}

#[cfg(test)]
pub(crate) mod tests;
