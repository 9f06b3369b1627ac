//! How each table is laid out in Parquet: schema, sort columns, encodings, statistics. The policy
//! the writers follow; measurements behind it are in the README's benchmark section.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::domain::table::Table;
use crate::transform::schema;

/// How one table is laid out in Parquet.
#[derive(Debug, Clone)]
pub struct TableLayout {
    pub table: Table,
    /// `table`'s name.
    pub name: &'static str,
    pub schema: SchemaRef,
    /// Columns the rows are sorted by, in order (recorded as Parquet sorting columns).
    pub sorted_by: Vec<&'static str>,
    /// Integer timestamp columns that are delta-encoded rather than dictionary-encoded.
    pub delta_columns: Vec<&'static str>,
    /// Float columns written with `BYTE_STREAM_SPLIT` rather than a dictionary.
    pub split_columns: Vec<&'static str>,
    /// Columns whose dictionary may grow to [`super::WIDE_DICTIONARY_BYTES`] before the writer falls
    /// back to plain pages.
    pub wide_dictionary_columns: Vec<&'static str>,
    /// Leaf columns (dotted Parquet paths, e.g. `tags.key_value.key`) written without min/max
    /// statistics: descriptive strings no reader prunes on, whose statistics cost a string
    /// comparison per row.
    pub no_stats_columns: Vec<&'static str>,
}

impl TableLayout {
    /// The same layout with its times in microseconds, the unit of Delta Lake's `timestamp`: its
    /// readers map a table's columns onto the files', and some (polars before 2.1) refuse a file
    /// in milliseconds. The rows keep milliseconds; the writers scale them.
    pub fn in_microseconds(self) -> TableLayout {
        let fields: Vec<Field> = self
            .schema
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                DataType::Timestamp(TimeUnit::Millisecond, tz) => f
                    .as_ref()
                    .clone()
                    .with_data_type(DataType::Timestamp(TimeUnit::Microsecond, tz.clone())),
                _ => f.as_ref().clone(),
            })
            .collect();
        let schema = Schema::new_with_metadata(fields, self.schema.metadata().clone());
        TableLayout {
            schema: Arc::new(schema),
            ..self
        }
    }
}

/// The string columns of a metrics table that readers filter on, which keep their statistics.
const PRUNED_STRINGS: [&str; 7] = [
    "metric",
    "service_name",
    "datacenter",
    "vm",
    "host",
    "nicname",
    "datastore",
];

/// How a table is laid out in Parquet: schema, sort columns, encodings, statistics.
pub fn layout(table: Table) -> TableLayout {
    let def = schema::table(table);
    // Timestamps ascend within a series and repeat across the snapshot column: deltas are small
    // or zero, which DELTA_BINARY_PACKED stores in a few bits where a dictionary would not.
    // (Metrics files encoded from runs, `load::encode`, keep this for `ts` only: `snapshot_ts` is
    // one value per run there, a one-entry dictionary.)
    let delta_columns = ["ts", "snapshot_ts"]
        .into_iter()
        .filter(|c| def.column(c).is_some())
        .collect();
    let metrics = table.component().is_some();
    // BYTE_STREAM_SPLIT for `value` makes the file larger than the dictionary does (two-decimal
    // values repeat; `VSCOPE_BENCH_LAYOUT=split` in examples/transform_bench compares them, and
    // docs/measurements.md has the figures), so no column uses it for now.
    let split_columns = Vec::new();
    let wide_dictionary_columns = if metrics { vec!["value"] } else { Vec::new() };
    // In the metrics tables, a string min/max per row costs as much as encoding it. Readers prune
    // on the time, the metric, the entity, the service and datacenter and the ids; the other
    // strings (names, states, the tags) only describe and are left without statistics. The
    // inventories are small and keep them all.
    let no_stats_columns = if metrics {
        let mut columns: Vec<&'static str> = def
            .columns
            .iter()
            .filter(|c| c.data_type == DataType::Utf8)
            .map(|c| c.name)
            .filter(|n| !PRUNED_STRINGS.contains(n))
            .collect();
        columns.extend(["tags.key_value.key", "tags.key_value.value"]);
        columns
    } else {
        Vec::new()
    };
    TableLayout {
        table,
        name: def.name,
        schema: Arc::new(def.schema()),
        sorted_by: table.sorted_by().to_vec(),
        delta_columns,
        split_columns,
        wide_dictionary_columns,
        no_stats_columns,
    }
}
