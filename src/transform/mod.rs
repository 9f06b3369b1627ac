//! The transform stage: metric series plus the inventory snapshot become Arrow record batches with
//! the table schemas of [`schema`], routed to their hive partitions and sorted by
//! (entity, metric, ts). Owns no file I/O and no HTTP.

pub mod schema;

use std::sync::Arc;

use arrow::array::RecordBatch;
use chrono::{DateTime, Utc};

use crate::job::{Component, PartitionBy};
use crate::load::{PartitionKey, TableLayout};
use crate::ovh::inventory::Inventory;
use crate::tsdb::Series;

#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    #[error("cannot build the {table} batch")]
    Arrow {
        table: &'static str,
        #[source]
        source: arrow::error::ArrowError,
    },
}

/// The inventory, indexed for the join: (datacenter tag, entity tag value) → object.
#[derive(Debug)]
pub struct InventoryIndex {
    pub snapshot_ts: DateTime<Utc>,
}

impl InventoryIndex {
    pub fn new(inventory: &Inventory) -> InventoryIndex {
        let _ = inventory;
        todo!("inventory index")
    }
}

/// Column buffers of one metrics table, per partition, filled series by series.
#[derive(Debug)]
pub struct MetricsTable {
    component: Component,
}

impl MetricsTable {
    pub fn new(
        component: Component,
        partitioning: &[PartitionBy],
        index: Arc<InventoryIndex>,
    ) -> MetricsTable {
        let _ = (partitioning, index);
        MetricsTable { component }
    }

    pub fn component(&self) -> Component {
        self.component
    }

    /// Appends the series' points with `start_ms <= ts < end_ms` (a page keeps `[start, end)`,
    /// so a point on a boundary belongs to exactly one page). Null values (gaps) are kept as null.
    /// Returns the number of rows added.
    pub fn push_series(&mut self, series: &Series<'_>, start_ms: i64, end_ms: i64) -> u64 {
        let _ = (series, start_ms, end_ms);
        todo!("push series")
    }

    /// The rows, one sorted batch per partition, in partition order.
    pub fn finish(self) -> Result<Vec<(PartitionKey, RecordBatch)>, TransformError> {
        todo!("finish metrics table")
    }
}

/// The four inventory tables of a snapshot: (table, partition, batch), partitioned like the
/// metrics by the snapshot's date.
pub fn inventory_tables(
    inventory: &Inventory,
    partitioning: &[PartitionBy],
) -> Result<Vec<(&'static str, PartitionKey, RecordBatch)>, TransformError> {
    let _ = (inventory, partitioning);
    todo!("inventory tables")
}

/// How a table is laid out in Parquet: schema, sort columns, delta-encoded columns.
pub fn layout(table: &str) -> Option<TableLayout> {
    let _ = table;
    todo!("layout")
}

/// A re-run over part of a partition: the rows of `old` (the job's previous file there) outside
/// `[start_ms, end_ms)` are kept, merged with `new`, and sorted again.
pub fn merge_outside_window(
    table: &str,
    old: &[RecordBatch],
    start_ms: i64,
    end_ms: i64,
    new: &RecordBatch,
) -> Result<RecordBatch, TransformError> {
    let _ = (table, old, start_ms, end_ms, new);
    todo!("merge")
}
