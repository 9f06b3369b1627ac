//! The transform stage: metric series plus the inventory snapshot become Arrow record batches with
//! the table schemas of [`schema`], routed to their hive partitions and sorted by
//! (entity, metric, ts). Owns no file I/O and no HTTP.
//!
//! - [`MetricsTable`] takes series page by page, within a memory budget (spilling beyond it),
//!   and hands out each partition as [`PartitionRows`] once its day or month is complete; those
//!   become sorted batches lazily, one [`BATCH_ROWS`]-sized batch at a time;
//! - [`InventoryIndex`] is the snapshot keyed the way the metrics' tags name objects;
//! - [`inventory_tables`] writes the snapshot itself as the `*_inventory` tables;
//! - [`merge_outside_window`] (and its streaming form [`merge_outside_window_rows`]) keeps the
//!   rows of a re-run's partition that the run did not cover.

mod columns;
mod index;
mod inventory;
mod metrics;
mod rows;
pub mod schema;
mod spill;

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, BooleanArray, RecordBatch};
use arrow::compute::{
    concat_batches, filter_record_batch, interleave_record_batch, lexsort_to_indices,
    take_record_batch, SortColumn, SortOptions,
};
use arrow::datatypes::{Schema, SchemaRef, TimestampMillisecondType};
use arrow::row::{RowConverter, Rows, SortField};

pub(crate) use columns::Cell;
pub use columns::ColumnError;
pub use index::InventoryIndex;
pub use inventory::inventory_tables;
pub use metrics::{MetricsTable, DEFAULT_BUDGET_POINTS};
pub use rows::{PartitionRows, RunBatch, RunBatches, BATCH_ROWS};

use crate::domain::table::Table;

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
    #[error("cannot spill or read back points of {table} (temporary file)")]
    Spill {
        table: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the existing {table} file has another schema than this version writes ({difference}); \
         move the old partition away or export to a new folder"
    )]
    SchemaMismatch { table: String, difference: String },
}

/// The columns `table`'s rows are sorted by within a file, in order.
fn sorted_by(table: Table) -> Vec<&'static str> {
    table.sorted_by().to_vec()
}

/// A re-run over part of a partition: the rows of `old` (the job's previous file there) outside
/// `[start_ms, end_ms)` are kept, merged with `new`, and sorted again. Tables without `ts` (the
/// inventories) are simply replaced by `new`.
pub fn merge_outside_window(
    table: Table,
    old: &[RecordBatch],
    start_ms: i64,
    end_ms: i64,
    new: &RecordBatch,
) -> Result<RecordBatch, TransformError> {
    let (def, schema, old) = merge_inputs(table, old, new.schema().as_ref())?;
    let arrow_err = |source| TransformError::Arrow {
        table: def.name,
        source,
    };
    let new =
        RecordBatch::try_new(Arc::clone(&schema), new.columns().to_vec()).map_err(arrow_err)?;
    let Some(kept) = kept_outside(def.name, &schema, &old, start_ms, end_ms)? else {
        return Ok(new);
    };
    let all = concat_batches(&schema, &[kept, new]).map_err(arrow_err)?;
    sort_batch(table, &all)
}

/// The table's definition and schema, and the old file's rows in that schema, after checking
/// that the old file's and the new rows' schemas are that schema.
fn merge_inputs(
    table: Table,
    old: &[RecordBatch],
    new: &arrow::datatypes::Schema,
) -> Result<
    (
        schema::TableDef,
        arrow::datatypes::SchemaRef,
        Vec<RecordBatch>,
    ),
    TransformError,
> {
    let def = schema::table(table);
    let schema = Arc::new(def.schema());
    check_schema(table.name(), &schema, new, "new rows")?;
    let old = old
        .iter()
        .map(|batch| {
            let batch = renamed_nested_fields(&schema, batch);
            check_schema(
                table.name(),
                &schema,
                batch.schema().as_ref(),
                "existing file",
            )?;
            Ok(batch)
        })
        .collect::<Result<_, TransformError>>()?;
    Ok((def, schema, old))
}

/// `batch` in `schema` where the two differ only in the names of nested fields: files written
/// before the `tags` map took the names the Parquet specification gives (`key_value`, `key`,
/// `value`) carry arrow-rs' (`entries`, `keys`, `values`), and a re-run must keep their rows.
/// Any other difference is left for [`check_schema`] to report.
fn renamed_nested_fields(schema: &SchemaRef, batch: &RecordBatch) -> RecordBatch {
    if batch.schema().as_ref() == schema.as_ref() || batch.num_columns() != schema.fields().len() {
        return batch.clone();
    }
    let columns: Option<Vec<ArrayRef>> = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(column, field)| {
            if column.data_type() == field.data_type() {
                Some(Arc::clone(column))
            } else if column.data_type().equals_datatype(field.data_type()) {
                arrow::compute::cast(column, field.data_type()).ok()
            } else {
                None
            }
        })
        .collect();
    columns
        .and_then(|columns| RecordBatch::try_new(Arc::clone(schema), columns).ok())
        .unwrap_or_else(|| batch.clone())
}

/// The streaming form of [`merge_outside_window`]: the rows of `old` (the job's previous file in
/// the partition) outside `[start_ms, end_ms)`, merged in sort order with `new`, in batches of
/// about [`BATCH_ROWS`] new rows. The old rows are held whole — a file is at most one partition,
/// and only a re-run over part of a partition has any — while `new` is built batch by batch.
/// Tables without `ts` (the inventories) are simply replaced by `new`.
pub fn merge_outside_window_rows(
    table: Table,
    old: Vec<RecordBatch>,
    start_ms: i64,
    end_ms: i64,
    new: PartitionRows,
) -> impl Iterator<Item = Result<RecordBatch, TransformError>> + Send {
    let merge: Box<dyn Iterator<Item = Result<RecordBatch, TransformError>> + Send> =
        match MergeRows::new(table, &old, start_ms, end_ms, &new) {
            Err(e) => Box::new(std::iter::once(Err(e))),
            Ok(None) => Box::new(new.into_batches(BATCH_ROWS)),
            Ok(Some(mut merge)) => {
                merge.new = Box::new(new.into_batches(BATCH_ROWS));
                Box::new(merge)
            }
        };
    merge
}

/// Two sorted streams of rows merged: the kept old rows, whole, and the new ones batch by batch.
struct MergeRows {
    table: &'static str,
    new: Box<dyn Iterator<Item = Result<RecordBatch, TransformError>> + Send>,
    /// The columns compared, by index: the sort columns, then datacenter and service_name.
    keys: Vec<usize>,
    converter: RowConverter,
    old: RecordBatch,
    old_keys: Rows,
    old_next: usize,
    done: bool,
}

impl MergeRows {
    /// `None` when no old row is kept (or the table has no `ts`): the new rows are the result.
    fn new(
        table: Table,
        old: &[RecordBatch],
        start_ms: i64,
        end_ms: i64,
        new: &PartitionRows,
    ) -> Result<Option<MergeRows>, TransformError> {
        let (def, schema, old) = merge_inputs(table, old, new.schema().as_ref())?;
        let arrow_err = |source| TransformError::Arrow {
            table: def.name,
            source,
        };
        let Some(kept) = kept_outside(def.name, &schema, &old, start_ms, end_ms)? else {
            return Ok(None);
        };
        let old = sort_batch(table, &kept)?;
        let keys = merge_keys(table, &schema);
        let fields = keys
            .iter()
            .map(|&i| {
                SortField::new_with_options(
                    schema.field(i).data_type().clone(),
                    SortOptions {
                        descending: false,
                        nulls_first: true,
                    },
                )
            })
            .collect();
        let converter = RowConverter::new(fields).map_err(arrow_err)?;
        let old_keys = converter
            .convert_columns(
                &keys
                    .iter()
                    .map(|&i| Arc::clone(old.column(i)))
                    .collect::<Vec<_>>(),
            )
            .map_err(arrow_err)?;
        Ok(Some(MergeRows {
            table: def.name,
            new: Box::new(std::iter::empty()),
            keys,
            converter,
            old,
            old_keys,
            old_next: 0,
            done: false,
        }))
    }

    fn merge(&mut self, batch: RecordBatch) -> Result<RecordBatch, TransformError> {
        let table = self.table;
        let arrow_err = |source| TransformError::Arrow { table, source };
        let columns: Vec<_> = self
            .keys
            .iter()
            .map(|&i| Arc::clone(batch.column(i)))
            .collect();
        let new_keys = self
            .converter
            .convert_columns(&columns)
            .map_err(arrow_err)?;
        let mut indices = Vec::with_capacity(batch.num_rows());
        for i in 0..batch.num_rows() {
            let row = new_keys.row(i);
            // Old rows first on equal keys, as the sort of a concatenation (old, new) does.
            while self.old_next < self.old.num_rows() && self.old_keys.row(self.old_next) <= row {
                indices.push((0, self.old_next));
                self.old_next += 1;
            }
            indices.push((1, i));
        }
        interleave_record_batch(&[&self.old, &batch], &indices).map_err(arrow_err)
    }
}

impl Iterator for MergeRows {
    type Item = Result<RecordBatch, TransformError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.new.next() {
            Some(Ok(batch)) => {
                let merged = self.merge(batch);
                self.done = merged.is_err();
                Some(merged)
            }
            Some(Err(e)) => {
                self.done = true;
                Some(Err(e))
            }
            None => {
                let left = self.old.num_rows() - self.old_next;
                if left == 0 {
                    self.done = true;
                    return None;
                }
                let n = left.min(BATCH_ROWS);
                let rest = self.old.slice(self.old_next, n);
                self.old_next += n;
                Some(Ok(rest))
            }
        }
    }
}

/// The rows of `old` outside `[start_ms, end_ms)`, with the table's schema, or `None` when there
/// are none or the table has no `ts`.
fn kept_outside(
    table: &'static str,
    schema: &Arc<Schema>,
    old: &[RecordBatch],
    start_ms: i64,
    end_ms: i64,
) -> Result<Option<RecordBatch>, TransformError> {
    let arrow_err = |source| TransformError::Arrow { table, source };
    let Ok(ts_index) = schema.index_of("ts") else {
        return Ok(None);
    };
    let mut parts = Vec::with_capacity(old.len());
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
                RecordBatch::try_new(Arc::clone(schema), kept.columns().to_vec())
                    .map_err(arrow_err)?,
            );
        }
    }
    if parts.is_empty() {
        return Ok(None);
    }
    concat_batches(schema, &parts).map(Some).map_err(arrow_err)
}

/// The columns rows are ordered by when merging: the sort columns, then datacenter and
/// service_name (as [`sort_batch`]).
fn merge_keys(table: Table, schema: &Schema) -> Vec<usize> {
    let mut names = sorted_by(table);
    names.extend(["datacenter", "service_name"]);
    names
        .iter()
        .filter_map(|n| schema.index_of(n).ok())
        .collect()
}

/// Sorts a batch of a metrics table by its layout's columns (then datacenter and service, so the
/// order is total enough to be stable across runs).
fn sort_batch(table: Table, batch: &RecordBatch) -> Result<RecordBatch, TransformError> {
    let arrow_err = |source| TransformError::Arrow {
        table: table.name(),
        source,
    };
    let mut names = sorted_by(table);
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
