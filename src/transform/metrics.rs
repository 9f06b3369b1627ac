//! The metrics tables: series go in page by page, sorted batches per partition come out.
//!
//! Pushing a series costs one lookup per series (its tags are resolved and joined once, the first
//! time it is seen) and per point only two `memcpy`-able copies: its timestamp and value go into
//! the buffers of the partition they fall in, as a *run* (series, offset, length). Everything that
//! is the same for all points of a series (service, datacenter, entity, joined inventory, tags) is
//! written when the partition is finished, a run at a time. Sorting happens there too, on runs
//! rather than rows: runs are ordered by the series' rank in (entity…, metric) order, then by
//! time, and only where two runs of one (entity…, metric) overlap in time are their points merged
//! one by one.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use super::columns::{Cell, ColumnBuilder};
use super::index::InventoryIndex;
use super::partition::{self, Period};
use super::schema::{self, TableDef};
use super::TransformError;
use crate::job::{Component, PartitionBy};
use crate::load::PartitionKey;
use crate::tsdb::Series;

/// Tags that become columns of their own in every metrics table; the entity tags are added per
/// component. `servicename` feeds `service_name`.
const COLUMN_TAGS: [&str; 2] = ["datacenter", "servicename"];

/// Column buffers of one metrics table, per partition, filled series by series.
///
/// Holds 16 bytes per point (timestamp and value) plus one entry per distinct series until
/// [`MetricsTable::finish`], which materialises every column: finish a table per window of a
/// size that fits in memory (a day of a few thousand VMs is a few hundred MB once built).
#[derive(Debug)]
pub struct MetricsTable {
    component: Component,
    def: TableDef,
    schema: SchemaRef,
    partitioning: Vec<PartitionBy>,
    period: Period,
    by_service: bool,
    index: Arc<InventoryIndex>,
    series: Vec<SeriesEntry>,
    /// Hash of (metric, tags) → ids of the series with that hash.
    lookup: HashMap<u64, Vec<u32>>,
    hasher: RandomState,
    /// `service_name` values seen, for partitioning by service.
    services: Vec<Option<String>>,
    /// (service id, or `u32::MAX` when not partitioned by service; period id) → partition.
    partition_ids: HashMap<(u32, i64), usize>,
    partitions: Vec<PartitionBuf>,
    /// Error found while resolving a series; reported by [`MetricsTable::finish`].
    failed: Option<TransformError>,
}

/// One distinct series (metric + tags) and everything its rows share.
#[derive(Debug)]
struct SeriesEntry {
    metric: String,
    tags: Vec<(String, String)>,
    /// One per column of the table; [`Cell::Point`] for `ts` and `value`.
    cells: Vec<Cell>,
    /// The sort columns before `ts`: entity tag(s), then metric.
    key: Vec<Option<String>>,
    /// Tie-breakers between series with the same key: datacenter, service_name, tags.
    tie: Vec<Option<String>>,
    service: u32,
}

/// The points of one partition, in runs as they arrived.
#[derive(Debug)]
struct PartitionBuf {
    service: Option<String>,
    /// Any timestamp within the partition's period, to name it.
    some_ts: i64,
    ts: Vec<i64>,
    values: Vec<f64>,
    runs: Vec<Run>,
}

/// `len` consecutive points of one series, from `start` in a partition's buffers.
#[derive(Debug, Clone, Copy)]
struct Run {
    series: u32,
    start: usize,
    len: usize,
}

impl MetricsTable {
    pub fn new(
        component: Component,
        partitioning: &[PartitionBy],
        index: Arc<InventoryIndex>,
    ) -> MetricsTable {
        let def = schema::metrics_table(component);
        let schema = Arc::new(def.schema());
        MetricsTable {
            component,
            def,
            schema,
            partitioning: partitioning.to_vec(),
            period: Period::of(partitioning),
            by_service: partitioning.contains(&PartitionBy::ServiceName),
            index,
            series: Vec::new(),
            lookup: HashMap::new(),
            hasher: RandomState::new(),
            services: Vec::new(),
            partition_ids: HashMap::new(),
            partitions: Vec::new(),
            failed: None,
        }
    }

    pub fn component(&self) -> Component {
        self.component
    }

    /// Points pushed so far.
    pub fn rows(&self) -> u64 {
        self.partitions.iter().map(|p| p.ts.len() as u64).sum()
    }

    /// Appends the series' points with `start_ms <= ts < end_ms` (a page keeps `[start, end)`,
    /// so a point on a boundary belongs to exactly one page). Null values (gaps) are kept as null.
    /// Returns the number of rows added.
    pub fn push_series(&mut self, series: &Series<'_>, start_ms: i64, end_ms: i64) -> u64 {
        let n = series.timestamps_ms.len().min(series.values.len());
        let ts = &series.timestamps_ms[..n];
        let values = &series.values[..n];
        // The parser hands points sorted by time (it sorts them when the server did not).
        debug_assert!(ts.windows(2).all(|w| w[0] <= w[1]), "unsorted series");
        let lo = ts.partition_point(|&t| t < start_ms);
        let hi = lo + ts[lo..].partition_point(|&t| t < end_ms);
        if lo >= hi {
            return 0;
        }
        let id = self.intern(series);
        let service = self.series[id as usize].service;
        let mut i = lo;
        while i < hi {
            let (period, period_end) = self.period.locate(ts[i]);
            let j = if period_end >= end_ms {
                hi
            } else {
                i + ts[i..hi].partition_point(|&t| t < period_end)
            };
            let p = self.partition(service, period, ts[i]);
            let buf = &mut self.partitions[p];
            buf.runs.push(Run {
                series: id,
                start: buf.ts.len(),
                len: j - i,
            });
            buf.ts.extend_from_slice(&ts[i..j]);
            buf.values.extend_from_slice(&values[i..j]);
            i = j;
        }
        (hi - lo) as u64
    }

    /// The series' id, resolving and joining it the first time it is seen.
    fn intern(&mut self, series: &Series<'_>) -> u32 {
        let hash = self.hasher.hash_one((series.metric, series.tags));
        if let Some(ids) = self.lookup.get(&hash) {
            for &id in ids {
                let e = &self.series[id as usize];
                if e.metric == series.metric && e.tags == series.tags {
                    return id;
                }
            }
        }
        let id = self.series.len() as u32;
        let entry = self.resolve(series);
        self.series.push(entry);
        self.lookup.entry(hash).or_default().push(id);
        id
    }

    fn partition(&mut self, service: u32, period: i64, ts: i64) -> usize {
        let service = if self.by_service { service } else { u32::MAX };
        if let Some(&p) = self.partition_ids.get(&(service, period)) {
            return p;
        }
        let p = self.partitions.len();
        self.partitions.push(PartitionBuf {
            service: self.services.get(service as usize).cloned().flatten(),
            some_ts: ts,
            ts: Vec::new(),
            values: Vec::new(),
            runs: Vec::new(),
        });
        self.partition_ids.insert((service, period), p);
        p
    }

    /// The values every row of this series shares: its tags split into columns, the joined
    /// inventory, the leftover tags.
    fn resolve(&mut self, series: &Series<'_>) -> SeriesEntry {
        // Linear search: tags are few, and this runs once per distinct series.
        let tag = |k: &str| {
            series
                .tags
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        let entity_tags: &[&str] = match self.component {
            Component::Vm => &["vm"],
            Component::Host => &["host", "nicname"],
            Component::Filer => &["datastore"],
        };
        let datacenter = tag("datacenter");
        let entity = tag(entity_tags[0]);
        let service_name = self.index.service_name(tag("servicename"), datacenter);
        let mut extra: Vec<(String, String)> = series
            .tags
            .iter()
            .filter(|(k, _)| {
                !COLUMN_TAGS.contains(&k.as_str()) && !entity_tags.contains(&k.as_str())
            })
            .cloned()
            .collect();
        extra.sort();

        let index = &self.index;
        let datacenter_id = datacenter.and_then(|dc| index.datacenter_id(dc));
        let vm = datacenter.zip(entity).and_then(|(dc, e)| index.vm(dc, e));
        let host = datacenter.zip(entity).and_then(|(dc, e)| index.host(dc, e));
        let filer = datacenter
            .zip(entity)
            .and_then(|(dc, e)| index.filer(dc, e));

        let mut cells = Vec::with_capacity(self.def.columns.len());
        for column in &self.def.columns {
            let cell = match column.name {
                "ts" | "value" => Cell::Point,
                "metric" => Cell::str(Some(series.metric)),
                "service_name" => Cell::str(service_name),
                "datacenter" => Cell::str(datacenter),
                "vm" | "host" | "nicname" | "datastore" => Cell::str(tag(column.name)),
                "datacenter_id" => Cell::I64(datacenter_id),
                "snapshot_ts" => Cell::Ts(index.snapshot_ts.timestamp_millis()),
                "tags" => Cell::Tags(extra.clone()),
                name => {
                    let cell = match self.component {
                        Component::Vm => vm_cell(name, vm),
                        Component::Host => host_cell(name, host),
                        Component::Filer => filer_cell(name, filer),
                    };
                    cell.unwrap_or_else(|| {
                        // A column without a source is a bug in this module; the tests build
                        // every table, so it cannot ship. Report it rather than guess.
                        self.failed.get_or_insert(TransformError::NoSource {
                            table: self.def.name,
                            column: column.name,
                        });
                        Cell::Str(None)
                    })
                }
            };
            cells.push(cell);
        }

        let mut key: Vec<Option<String>> = entity_tags
            .iter()
            .map(|t| tag(t).map(str::to_string))
            .collect();
        key.push(Some(series.metric.to_string()));
        let mut tie = vec![
            datacenter.map(str::to_string),
            service_name.map(str::to_string),
        ];
        for (k, v) in &extra {
            tie.push(Some(k.clone()));
            tie.push(Some(v.clone()));
        }

        let service_value = service_name.map(str::to_string);
        let service = match self.services.iter().position(|s| *s == service_value) {
            Some(i) => i as u32,
            None => {
                self.services.push(service_value);
                (self.services.len() - 1) as u32
            }
        };
        SeriesEntry {
            metric: series.metric.to_string(),
            tags: series.tags.to_vec(),
            cells,
            key,
            tie,
            service,
        }
    }

    /// The rows, one sorted batch per partition, in partition order.
    pub fn finish(self) -> Result<Vec<(PartitionKey, RecordBatch)>, TransformError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let (rank, group) = ranks(&self.series);
        let mut out = Vec::with_capacity(self.partitions.len());
        for part in self.partitions {
            let key = partition::key(&self.partitioning, part.service.as_deref(), part.some_ts);
            let batch =
                build_partition(&self.def, &self.schema, &self.series, &rank, &group, part)?;
            out.push((key, batch));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}

fn vm_cell(name: &str, vm: Option<&crate::ovh::model::Vm>) -> Option<Cell> {
    Some(match name {
        "vm_id" => Cell::I64(vm.map(|v| v.vm_id)),
        "vm_name" => Cell::str(vm.and_then(|v| v.name.as_deref())),
        "host_name" => Cell::str(vm.and_then(|v| v.host_name.as_deref())),
        "cluster_name" => Cell::str(vm.and_then(|v| v.cluster_name.as_deref())),
        "folder_name" => Cell::str(vm.and_then(|v| v.folder_name.as_deref())),
        "power_state" => Cell::str(vm.map(|v| v.power_state.as_str())),
        "guest_os_family" => Cell::str(vm.and_then(|v| v.guest_os_family.as_deref())),
        "cpu_num" => Cell::I64(vm.and_then(|v| v.cpu_num)),
        "memory_max_mb" => Cell::I64(vm.and_then(|v| v.memory_max)),
        _ => return None,
    })
}

fn host_cell(name: &str, host: Option<&crate::ovh::model::Host>) -> Option<Cell> {
    Some(match name {
        "host_id" => Cell::I64(host.map(|h| h.host_id)),
        "cluster_name" => Cell::str(host.and_then(|h| h.cluster_name.as_deref())),
        "profile" => Cell::str(host.and_then(|h| h.profile.as_deref())),
        "state" => Cell::str(host.and_then(|h| h.state.as_deref())),
        "connection_state" => Cell::str(host.and_then(|h| h.connection_state.as_deref())),
        "in_maintenance" => Cell::Bool(host.and_then(|h| h.in_maintenance)),
        "cpu_num" => Cell::I64(host.and_then(|h| h.cpu_num)),
        _ => return None,
    })
}

fn filer_cell(name: &str, filer: Option<&crate::ovh::model::Filer>) -> Option<Cell> {
    Some(match name {
        "filer_id" => Cell::I64(filer.map(|f| f.filer_id)),
        "filer_profile" => Cell::str(filer.and_then(|f| f.profile.as_deref())),
        "filer_state" => Cell::str(filer.and_then(|f| f.state.as_deref())),
        "size_value" => Cell::I64(filer.and_then(|f| f.size.as_ref()).map(|s| s.value)),
        "size_unit" => Cell::str(filer.and_then(|f| f.size.as_ref()).map(|s| s.unit.as_str())),
        _ => return None,
    })
}

/// Each series' rank in (key, tie) order, and the id of its group of equal keys.
fn ranks(series: &[SeriesEntry]) -> (Vec<u32>, Vec<u32>) {
    let mut order: Vec<u32> = (0..series.len() as u32).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (&series[a as usize], &series[b as usize]);
        a.key.cmp(&b.key).then_with(|| a.tie.cmp(&b.tie))
    });
    let mut rank = vec![0; series.len()];
    let mut group = vec![0; series.len()];
    let mut g = 0;
    for (r, &id) in order.iter().enumerate() {
        if r > 0 && series[order[r - 1] as usize].key != series[id as usize].key {
            g += 1;
        }
        rank[id as usize] = r as u32;
        group[id as usize] = g;
    }
    (rank, group)
}

/// Sorts a partition's runs into row order and writes its batch.
fn build_partition(
    def: &TableDef,
    schema: &SchemaRef,
    series: &[SeriesEntry],
    rank: &[u32],
    group: &[u32],
    mut part: PartitionBuf,
) -> Result<RecordBatch, TransformError> {
    let ts = &part.ts;
    part.runs
        .sort_unstable_by_key(|r| (rank[r.series as usize], ts[r.start], r.start));
    let segments = order_runs(&part.runs, ts, rank, group);

    let rows = ts.len();
    let table = def.name;
    let column_err = |column: &'static str| {
        move |source| TransformError::Column {
            table,
            column,
            source,
        }
    };
    let mut builders = Vec::with_capacity(def.columns.len());
    for c in &def.columns {
        builders.push(ColumnBuilder::for_type(&c.data_type, rows).ok_or(
            TransformError::Column {
                table,
                column: c.name,
                source: super::ColumnError::Mismatch {
                    expected: "a supported type",
                },
            },
        )?);
    }
    for seg in &segments {
        let range = seg.start..seg.start + seg.len;
        let cells = &series[seg.series as usize].cells;
        for ((builder, cell), column) in builders.iter_mut().zip(cells).zip(&def.columns) {
            match (cell, column.name) {
                (Cell::Point, "ts") => builder.extend_ts(&part.ts[range.clone()]),
                (Cell::Point, _) => builder.extend_f64(&part.values[range.clone()]),
                (cell, _) => builder.repeat(cell, seg.len),
            }
            .map_err(column_err(column.name))?;
        }
    }
    // The point buffers are no longer needed: free them before the columns are assembled.
    drop(part);
    let mut columns = Vec::with_capacity(builders.len());
    for (builder, column) in builders.into_iter().zip(&def.columns) {
        columns.push(
            builder
                .finish(&column.data_type)
                .map_err(column_err(column.name))?,
        );
    }
    RecordBatch::try_new(Arc::clone(schema), columns)
        .map_err(|source| TransformError::Arrow { table, source })
}

/// Turns runs sorted by (rank, first ts) into row order: runs of one (entity…, metric) group
/// that follow each other in time are taken whole; a group whose runs overlap in time (two series
/// of one VM and metric in two services, or a page pushed twice) is merged point by point by
/// (ts, rank).
fn order_runs(runs: &[Run], ts: &[i64], rank: &[u32], group: &[u32]) -> Vec<Run> {
    let mut out = Vec::with_capacity(runs.len());
    let mut i = 0;
    while i < runs.len() {
        let g = group[runs[i].series as usize];
        let mut j = i + 1;
        let mut in_order = true;
        while j < runs.len() && group[runs[j].series as usize] == g {
            let prev = runs[j - 1];
            if ts[prev.start + prev.len - 1] > ts[runs[j].start] {
                in_order = false;
            }
            j += 1;
        }
        if in_order {
            out.extend_from_slice(&runs[i..j]);
        } else {
            let mut points: Vec<(i64, u32, usize, u32)> = runs[i..j]
                .iter()
                .flat_map(|r| {
                    (r.start..r.start + r.len)
                        .map(move |p| (ts[p], rank[r.series as usize], p, r.series))
                })
                .collect();
            points.sort_unstable();
            for (_, _, p, s) in points {
                match out.last_mut() {
                    Some(last) if last.series == s && last.start + last.len == p => last.len += 1,
                    _ => out.push(Run {
                        series: s,
                        start: p,
                        len: 1,
                    }),
                }
            }
        }
        i = j;
    }
    out
}
