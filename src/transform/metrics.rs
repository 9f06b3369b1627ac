//! The metrics tables: series go in page by page, sorted batches per partition come out.
//!
//! Pushing a series costs one lookup per series (its tags are resolved and joined once, the first
//! time it is seen) and per point only two `memcpy`-able copies: its timestamp and value go into
//! the buffers of the partition they fall in, as a *run* (series, offset, length). Everything that
//! is the same for all points of a series (service, datacenter, entity, joined inventory, tags) is
//! written when the partition's batches are built, a run at a time (see [`super::rows`]).
//!
//! Memory is bounded three times over: a partition leaves the table as soon as its period is over
//! ([`MetricsTable::take_complete`]); a page too large for memory leaves its points in its spool
//! file and the table keeps only where each run is ([`MetricsTable::push_spooled`]); and when the
//! points buffered in all partitions exceed the table's budget, the largest partition's runs are
//! sorted and spilled to a temporary file ([`super::spill`]) that the batch builder merges back
//! in.

use foldhash::{HashMap, HashMapExt, HashSet};
use std::fs::File;
use std::hash::{BuildHasher, RandomState};
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use super::columns::Cell;
use super::index::InventoryIndex;
use super::rows::{ranked, FileRun, PartitionRows, Points, Run, SpooledSeries, TableShape};
use super::schema;
use super::spill::{self, SpillFile, SpillRun, SpillWriter};
use super::TransformError;
use crate::domain::partition::PartitionKey;
use crate::domain::partition::{self, Period};
use crate::extract::{Spool, SpoolSink};
use crate::job::{Component, PartitionBy};
use crate::points::cents::Values;
use crate::points::{PointsAt, Times};
use crate::tsdb::{Series, SeriesSink};

/// Tags that become columns of their own in every metrics table; the entity tags are added per
/// component. `servicename` feeds `service_name`.
const COLUMN_TAGS: [&str; 2] = ["datacenter", "servicename"];

/// Points a table buffers in memory before it spills: 1 Mi points are 16 MiB of (ts, value).
/// Only pages small enough to stay in memory (see `extract::spool`) fill these buffers; a large
/// page's points stay in its spool file. Many small pages (a long window of short pages) still
/// add up, which is what the budget bounds.
pub const DEFAULT_BUDGET_POINTS: usize = 1 << 20;

/// What a run left in a spool file ([`MetricsTable::push_spooled`]) counts for in the budget: its
/// place takes about as much memory as four buffered points.
pub const FILE_RUN_POINTS: usize = 4;

/// Column buffers of one metrics table, per partition, filled series by series.
///
/// Holds 16 bytes per buffered point (timestamp and value), at most the budget's worth, plus one
/// entry per distinct series. Partitions come out with [`MetricsTable::take_complete`] (those
/// whose period is over) and [`MetricsTable::take_all`]; [`MetricsTable::finish`] builds them all
/// at once, for small tables and tests.
#[derive(Debug)]
pub struct MetricsTable {
    component: Component,
    shape: Arc<TableShape>,
    partitioning: Vec<PartitionBy>,
    period: Period,
    by_service: bool,
    index: Arc<InventoryIndex>,
    series: Vec<Arc<SeriesEntry>>,
    /// Hash of (metric, tags) → ids of the series with that hash.
    lookup: HashMap<u64, Vec<u32>>,
    hasher: RandomState,
    /// `service_name` values seen, for partitioning by service.
    services: Vec<Option<String>>,
    /// The strings and tag sets of the series' cells, each held once.
    shared: Shared,
    /// (service id, or `u32::MAX` when not partitioned by service; period id) → partition.
    partitions: HashMap<(u32, i64), PartitionBuf>,
    /// Points pushed since the table was made, including those already taken out.
    pushed: u64,
    /// Points held in memory by all partitions.
    buffered: usize,
    budget: usize,
    spill_dir: PathBuf,
    /// Set when writing a spill file failed: the table then keeps its points in memory rather
    /// than retrying on every push.
    spill_disabled: bool,
    /// Spooled series of the page being handed over (see [`Self::expect_spooled`]).
    expected_spooled: usize,
    spills: u64,
    /// A column found without a source while resolving a series (a bug in this module, which
    /// the tests would catch); reported with every partition.
    failed: Option<&'static str>,
}

/// One distinct series (metric + tags) and everything its rows share.
#[derive(Debug)]
pub(crate) struct SeriesEntry {
    metric: Arc<str>,
    tags: Vec<(Arc<str>, Arc<str>)>,
    /// One per column of the table; [`Cell::Point`] for `ts` and `value`.
    pub(crate) cells: Vec<Cell>,
    /// The sort columns before `ts`: entity tag(s), then metric.
    pub(crate) key: Vec<Option<Arc<str>>>,
    /// Tie-breakers between series with the same key: datacenter, service_name, tags.
    pub(crate) tie: Vec<Option<Arc<str>>>,
    service: u32,
    /// Order of arrival in the table: the last tie-breaker, so the order is total.
    pub(crate) id: u32,
}

impl SeriesEntry {
    /// The order of rows between series: (entity…, metric), then the tie-breakers.
    pub(crate) fn order(&self, other: &SeriesEntry) -> std::cmp::Ordering {
        self.key
            .cmp(&other.key)
            .then_with(|| self.tie.cmp(&other.tie))
            .then_with(|| self.id.cmp(&other.id))
    }
}

/// The points of one partition, in runs as they arrived, plus what was spilled of it.
#[derive(Debug)]
struct PartitionBuf {
    service: Option<String>,
    /// Any timestamp within the partition's period, to name it.
    some_ts: i64,
    /// Where the partition's period ends (exclusive).
    period_end: i64,
    ts: Vec<i64>,
    values: Vec<f64>,
    /// Runs of the in-memory buffers; `series` is the table's series id.
    runs: Vec<Run>,
    spills: Vec<SpillFile>,
    /// Runs whose points stay in a page's spool file.
    file_runs: Vec<FileRun>,
}

impl PartitionBuf {
    /// What it counts for in the table's budget.
    fn weight(&self) -> usize {
        self.ts.len() + FILE_RUN_POINTS * self.file_runs.len()
    }
}

impl MetricsTable {
    pub fn new(
        component: Component,
        partitioning: &[PartitionBy],
        index: Arc<InventoryIndex>,
    ) -> MetricsTable {
        let def = schema::metrics_table(component);
        let schema: SchemaRef = Arc::new(def.schema());
        MetricsTable {
            component,
            shape: Arc::new(TableShape { def, schema }),
            partitioning: partitioning.to_vec(),
            period: Period::of(partitioning),
            by_service: partitioning.contains(&PartitionBy::ServiceName),
            index,
            series: Vec::new(),
            lookup: HashMap::new(),
            hasher: RandomState::new(),
            services: Vec::new(),
            shared: Shared::default(),
            partitions: HashMap::new(),
            pushed: 0,
            buffered: 0,
            budget: DEFAULT_BUDGET_POINTS,
            spill_dir: std::env::temp_dir(),
            spill_disabled: false,
            expected_spooled: 0,
            spills: 0,
            failed: None,
        }
    }

    /// Sets how many points the table holds in memory before it spills (at least one run is
    /// always kept, whatever the budget).
    pub fn with_budget(mut self, points: usize) -> MetricsTable {
        self.budget = points;
        self
    }

    /// Sets the folder of the spill files (the system's temporary folder by default). Where that
    /// is a RAM file system (`tmpfs`), a folder on disk, such as the output's, keeps spilled
    /// points out of memory.
    pub fn with_spill_dir(mut self, dir: impl Into<PathBuf>) -> MetricsTable {
        self.spill_dir = dir.into();
        self
    }

    pub fn component(&self) -> Component {
        self.component
    }

    /// Points pushed so far, including those of partitions already taken out.
    pub fn rows(&self) -> u64 {
        self.pushed
    }

    /// Spill files written so far.
    pub fn spills(&self) -> u64 {
        self.spills
    }

    /// Appends the series' points with `start_ms <= ts < end_ms` (a page keeps `[start, end)`,
    /// so a point on a boundary belongs to exactly one page). Null values (gaps) are kept as null.
    /// Returns the number of rows added.
    ///
    /// Points of a partition already taken out make a new partition with the same key: push a
    /// period's points before taking it.
    pub fn push_series(&mut self, series: &Series<'_>, start_ms: i64, end_ms: i64) -> u64 {
        let n = series.timestamps_ms.len().min(series.values.len());
        let ts = &series.timestamps_ms[..n];
        let values = series.values;
        let Some((lo, hi)) = within(Times::Listed(ts), start_ms, end_ms) else {
            return 0;
        };
        self.make_room(hi - lo);
        self.buffered += hi - lo;
        let id = self.intern(series);
        self.place(id, Times::Listed(ts), lo, hi, |buf, pos, i, j| {
            buf.runs.push(Run {
                series: id,
                pos,
                start: buf.ts.len(),
                len: j - i,
            });
            buf.ts.extend_from_slice(&ts[i..j]);
            values.range(i..j).append_doubles_to(&mut buf.values);
        })
    }

    /// Takes a fetched page's series from its spools, clipped to the page's `[start_ms, end_ms)`.
    /// A spool that cannot be read back (a full or failing disk) stops the page there, with what
    /// it replayed, and its error is returned. After a page left on disk, what reading its headers
    /// back took is given back to the system.
    pub fn push_page(
        &mut self,
        spools: Vec<Spool>,
        start_ms: i64,
        end_ms: i64,
    ) -> std::io::Result<()> {
        let on_disk = spools.iter().any(Spool::on_disk);
        let mut sink = PageSink {
            table: self,
            start_ms,
            end_ms,
        };
        let mut replayed = Ok(());
        for spool in spools {
            replayed = spool.hand_over(&mut sink);
            if replayed.is_err() {
                break;
            }
        }
        if on_disk {
            crate::sys::release_free_memory();
        }
        replayed
    }

    /// Says that `series` spooled series of one page follow: each partition they reach makes
    /// room for that many runs at once.
    pub fn expect_spooled(&mut self, series: usize) {
        self.expected_spooled = series;
    }

    /// Like [`Self::push_series`], for a series whose points stay in a page's spool file (see
    /// [`crate::extract::SpoolSink`]): `series` has no points, its timestamps are `times` and
    /// its values are at `at` in `file`. The table keeps only where each partition's share is:
    /// 24 bytes a run, beside the series' place in the file that its runs share, counted in the
    /// budget as [`FILE_RUN_POINTS`] points; past the budget they are spilled like buffered points (read
    /// back and written out sorted), which also closes the spool files no run refers to any more.
    pub fn push_spooled(
        &mut self,
        series: &Series<'_>,
        times: Times<'_>,
        start_ms: i64,
        end_ms: i64,
        file: &Arc<File>,
        at: PointsAt,
    ) -> u64 {
        let Some((lo, hi)) = within(times, start_ms, end_ms) else {
            return 0;
        };
        self.make_room(FILE_RUN_POINTS);
        let mut runs = 0;
        let mut placed = 0;
        let expected = self.expected_spooled.max(1);
        let id = self.intern(series);
        // A run counts its points in 32 bits: a longer series is taken in several stretches.
        let mut lo = lo;
        while lo < hi {
            let end = hi.min(lo.saturating_add(u32::MAX as usize));
            let source = Arc::new(SpooledSeries {
                series: id,
                file: Arc::clone(file),
                at: at.skip(lo),
                pos: self.pushed,
            });
            placed += self.place(id, times, lo, end, |buf, _, i, j| {
                // A run is read back at once, so a grid's breaks start new ones.
                times.stretches(i..j, |stretch| {
                    if buf.file_runs.len() == buf.file_runs.capacity() {
                        // Room for the page's series at once (a first page gets just that),
                        // then doubling as usual.
                        buf.file_runs.reserve(expected);
                    }
                    buf.file_runs.push(FileRun {
                        source: Arc::clone(&source),
                        start: (stretch.start - lo) as u32,
                        len: stretch.len() as u32,
                        first_ts: times.get(stretch.start),
                    });
                    runs += 1;
                });
            });
            lo = end;
        }
        self.buffered += FILE_RUN_POINTS * runs;
        placed
    }

    /// Hands `put` the stretches `[i, j)` of series `id`'s points `lo..hi` (timestamps `ts`)
    /// that fall in one partition each, with that partition and the arrival position of point
    /// `i` in the table; returns the points placed.
    fn place(
        &mut self,
        id: u32,
        ts: Times<'_>,
        lo: usize,
        hi: usize,
        mut put: impl FnMut(&mut PartitionBuf, u64, usize, usize),
    ) -> u64 {
        let service = self.series[id as usize].service;
        let service = if self.by_service { service } else { u32::MAX };
        let mut i = lo;
        while i < hi {
            let (period, period_end) = self.period.locate(ts.get(i));
            let j = ts.first_at_or_after(i..hi, period_end);
            let services = &self.services;
            let buf = self
                .partitions
                .entry((service, period))
                .or_insert_with(|| PartitionBuf {
                    service: services.get(service as usize).cloned().flatten(),
                    some_ts: ts.get(i),
                    period_end,
                    ts: Vec::new(),
                    values: Vec::new(),
                    runs: Vec::new(),
                    spills: Vec::new(),
                    file_runs: Vec::new(),
                });
            put(buf, self.pushed + (i - lo) as u64, i, j);
            i = j;
        }
        self.pushed += (hi - lo) as u64;
        (hi - lo) as u64
    }

    /// Spills the largest partitions until `incoming` more points fit in the budget.
    fn make_room(&mut self, incoming: usize) {
        while !self.spill_disabled && self.buffered > 0 && self.buffered + incoming > self.budget {
            let Some(key) = self
                .partitions
                .iter()
                .max_by_key(|(_, p)| p.weight())
                .map(|(k, _)| *k)
            else {
                return;
            };
            if let Err(error) = self.spill(key) {
                // Losing the budget is better than losing the points: keep them in memory.
                tracing::warn!(
                    %error,
                    dir = %self.spill_dir.display(),
                    "Cannot write a spill file; keeping the points in memory."
                );
                self.spill_disabled = true;
            }
        }
    }

    /// Writes the in-memory runs of a partition, then its runs left in spool files, to spill
    /// files in merge order, and frees them.
    fn spill(&mut self, key: (u32, i64)) -> std::io::Result<()> {
        let series = &self.series;
        let Some(part) = self.partitions.get_mut(&key) else {
            return Ok(());
        };
        if !part.runs.is_empty() {
            let rank = ranks(series, part.runs.iter().map(|r| r.series));
            let ts = &part.ts;
            let mut runs: Vec<SpillRun> = part
                .runs
                .iter()
                .map(|r| SpillRun {
                    series: r.series,
                    pos: r.pos,
                    start: r.start,
                    len: r.len,
                })
                .collect();
            runs.sort_unstable_by_key(|r| (rank.get(&r.series).copied(), ts[r.start], r.pos));
            let file = spill::write(&self.spill_dir, &runs, &part.ts, &part.values)?;
            self.buffered -= part.ts.len();
            // Freed rather than cleared: the budget is about resident memory.
            part.ts = Vec::new();
            part.values = Vec::new();
            part.runs = Vec::new();
            part.spills.push(file);
            self.spills += 1;
        }
        if !part.file_runs.is_empty() {
            let rank = ranks(series, part.file_runs.iter().map(FileRun::series));
            part.file_runs
                .sort_unstable_by_key(|r| (rank.get(&r.series()).copied(), r.first_ts, r.pos()));
            let mut w = SpillWriter::new(&self.spill_dir)?;
            let (mut ts, mut values, mut bytes) = (Vec::new(), Values::default(), Vec::new());
            for r in &part.file_runs {
                ts.clear();
                values.clear();
                FileRun::read_joined(std::iter::once(r), &mut bytes, &mut ts, &mut values)?;
                w.run(r.series(), r.pos(), &ts, values.slice(0..values.len()))?;
            }
            part.spills.push(w.finish()?);
            self.buffered -= FILE_RUN_POINTS * part.file_runs.len();
            part.file_runs = Vec::new();
            self.spills += 1;
        }
        Ok(())
    }

    /// The series' id, resolving and joining it the first time it is seen.
    fn intern(&mut self, series: &Series<'_>) -> u32 {
        let hash = self.hasher.hash_one((series.metric, series.tags));
        if let Some(ids) = self.lookup.get(&hash) {
            for &id in ids {
                let e = &self.series[id as usize];
                if *e.metric == *series.metric && same_pairs(&e.tags, series.tags) {
                    return id;
                }
            }
        }
        let id = self.series.len() as u32;
        let entry = self.resolve(series, id);
        self.series.push(Arc::new(entry));
        self.lookup.entry(hash).or_default().push(id);
        id
    }

    /// The values every row of this series shares: its tags split into columns, the joined
    /// inventory, the leftover tags.
    fn resolve(&mut self, series: &Series<'_>, id: u32) -> SeriesEntry {
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
        let mut extra: Vec<(&str, &str)> = series
            .tags
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .filter(|(k, _)| !COLUMN_TAGS.contains(k) && !entity_tags.contains(k))
            .collect();
        extra.sort();

        let index = &self.index;
        let datacenter_id = datacenter.and_then(|dc| index.datacenter_id(dc));
        let vm = datacenter.zip(entity).and_then(|(dc, e)| index.vm(dc, e));
        let host = datacenter.zip(entity).and_then(|(dc, e)| index.host(dc, e));
        let filer = datacenter
            .zip(entity)
            .and_then(|(dc, e)| index.filer(dc, e));

        let def = &self.shape.def;
        let shared = &mut self.shared;
        let mut cells = Vec::with_capacity(def.columns.len());
        for column in &def.columns {
            let cell = match column.name {
                "ts" | "value" => Cell::Point,
                "metric" => shared.cell(Some(series.metric)),
                "service_name" => shared.cell(service_name),
                "datacenter" => shared.cell(datacenter),
                "vm" | "host" | "nicname" | "datastore" => shared.cell(tag(column.name)),
                "datacenter_id" => Cell::I64(datacenter_id),
                "snapshot_ts" => Cell::Ts(index.snapshot_ts.timestamp_millis()),
                "tags" => Cell::Tags(shared.tags(&extra)),
                name => {
                    let cell = match self.component {
                        Component::Vm => vm_cell(name, vm, shared),
                        Component::Host => host_cell(name, host, shared),
                        Component::Filer => filer_cell(name, filer, shared),
                    };
                    cell.unwrap_or_else(|| {
                        // A column without a source is a bug in this module; the tests build
                        // every table, so it cannot ship. Report it rather than guess.
                        self.failed.get_or_insert(column.name);
                        Cell::Str(None)
                    })
                }
            };
            cells.push(cell);
        }

        let mut key: Vec<Option<Arc<str>>> =
            entity_tags.iter().map(|t| shared.opt(tag(t))).collect();
        let metric = shared.str(series.metric);
        key.push(Some(Arc::clone(&metric)));
        let mut tie = vec![shared.opt(datacenter), shared.opt(service_name)];
        for &(k, v) in &extra {
            tie.push(Some(shared.str(k)));
            tie.push(Some(shared.str(v)));
        }
        let tags = series
            .tags
            .iter()
            .map(|(k, v)| (shared.str(k), shared.str(v)))
            .collect();

        let service = match self
            .services
            .iter()
            .position(|s| s.as_deref() == service_name)
        {
            Some(i) => i as u32,
            None => {
                self.services.push(service_name.map(str::to_string));
                (self.services.len() - 1) as u32
            }
        };
        SeriesEntry {
            metric,
            tags,
            cells,
            key,
            tie,
            service,
            id,
        }
    }

    /// Removes and returns every partition whose period (UTC day or month) ends at or before
    /// `until_ms`, in key order: once every page before `until_ms` is pushed, those partitions
    /// are complete. A table not partitioned by time has no such partition; see
    /// [`MetricsTable::take_all`].
    pub fn take_complete(&mut self, until_ms: i64) -> Vec<(PartitionKey, PartitionRows)> {
        self.take(|p| p.period_end <= until_ms)
    }

    /// Removes and returns every partition, in key order.
    pub fn take_all(&mut self) -> Vec<(PartitionKey, PartitionRows)> {
        self.take(|_| true)
    }

    fn take(&mut self, done: impl Fn(&PartitionBuf) -> bool) -> Vec<(PartitionKey, PartitionRows)> {
        let keys: Vec<(u32, i64)> = self
            .partitions
            .iter()
            .filter(|(_, p)| done(p))
            .map(|(k, _)| *k)
            .collect();
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            let Some(mut part) = self.partitions.remove(&k) else {
                continue;
            };
            // It may wait for a writer a while: only what it holds.
            part.file_runs.shrink_to_fit();
            self.buffered -= part.weight();
            let key = partition::key(&self.partitioning, part.service.as_deref(), part.some_ts);
            let failed = self.failed.map(|column| TransformError::NoSource {
                table: self.shape.def.name,
                column,
            });
            let rows = PartitionRows::new(
                Arc::clone(&self.shape),
                &self.series,
                Points {
                    ts: part.ts,
                    values: part.values,
                    runs: part.runs,
                    spills: part.spills,
                    file_runs: part.file_runs,
                },
                failed,
            );
            out.push((key, rows));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The rows, one sorted batch per partition, in partition order.
    pub fn finish(mut self) -> Result<Vec<(PartitionKey, RecordBatch)>, TransformError> {
        if let Some(column) = self.failed {
            return Err(TransformError::NoSource {
                table: self.shape.def.name,
                column,
            });
        }
        let mut out = Vec::new();
        for (key, rows) in self.take_all() {
            let batches = rows
                .into_batches(usize::MAX)
                .collect::<Result<Vec<_>, _>>()?;
            let batch = match <[RecordBatch; 1]>::try_from(batches) {
                Ok([batch]) => batch,
                Err(batches) => arrow::compute::concat_batches(&self.shape.schema, &batches)
                    .map_err(|source| TransformError::Arrow {
                        table: self.shape.def.name,
                        source,
                    })?,
            };
            out.push((key, batch));
        }
        Ok(out)
    }
}

/// Where a page's series go as its spools hand them over: its table, clipped to the page's range.
struct PageSink<'a> {
    table: &'a mut MetricsTable,
    start_ms: i64,
    end_ms: i64,
}

impl SeriesSink for PageSink<'_> {
    fn series(&mut self, series: Series<'_>) {
        self.table.push_series(&series, self.start_ms, self.end_ms);
    }
}

impl SpoolSink for PageSink<'_> {
    fn spooled(&mut self, series: Series<'_>, times: Times<'_>, file: &Arc<File>, at: PointsAt) {
        self.table
            .push_spooled(&series, times, self.start_ms, self.end_ms, file, at);
    }

    fn expect(&mut self, series: usize) {
        self.table.expect_spooled(series);
    }
}

/// The rank of each of `ids` among them, by [`ranked`]: the rule the batch builder ranks all of
/// a partition's series with later, so the relative order is the same.
fn ranks(series: &[Arc<SeriesEntry>], ids: impl Iterator<Item = u32>) -> HashMap<u32, u32> {
    let mut ids: Vec<u32> = ids.collect();
    ids.sort_unstable();
    ids.dedup();
    ranked(
        ids.iter()
            .map(|&id| Arc::clone(&series[id as usize]))
            .collect(),
    )
    .2
}

/// The strings and `tags` maps of a table's series, each held once: a VM's name, host and
/// cluster are the same for its dozen metrics, and most series have the same leftover tags
/// (docs/measurements.md: what a copy per series cost).
#[derive(Debug, Default)]
struct Shared {
    strings: HashSet<Arc<str>>,
    /// `tags` maps by the hash of their entries.
    tag_sets: HashMap<u64, Vec<TagSet>>,
}

/// The entries of one `tags` map, sorted by key.
type TagSet = Arc<[(String, String)]>;

/// Whether two lists of (key, value) strings are the same, however each holds its strings.
fn same_pairs<A: AsRef<str>, B: AsRef<str>>(a: &[(A, A)], b: &[(B, B)]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(a, b)| a.0.as_ref() == b.0.as_ref() && a.1.as_ref() == b.1.as_ref())
}

impl Shared {
    fn str(&mut self, s: &str) -> Arc<str> {
        if let Some(held) = self.strings.get(s) {
            return Arc::clone(held);
        }
        let held: Arc<str> = Arc::from(s);
        self.strings.insert(Arc::clone(&held));
        held
    }

    fn opt(&mut self, s: Option<&str>) -> Option<Arc<str>> {
        s.map(|s| self.str(s))
    }

    fn cell(&mut self, s: Option<&str>) -> Cell {
        Cell::Str(self.opt(s))
    }

    /// The `tags` map of `entries` (sorted by key).
    fn tags(&mut self, entries: &[(&str, &str)]) -> TagSet {
        let hash = foldhash::quality::FixedState::default().hash_one(entries);
        let sets = self.tag_sets.entry(hash).or_default();
        if let Some(set) = sets.iter().find(|set| same_pairs(set, entries)) {
            return Arc::clone(set);
        }
        let set: Arc<[(String, String)]> = entries
            .iter()
            .map(|&(k, v)| (k.to_string(), v.to_string()))
            .collect();
        sets.push(Arc::clone(&set));
        set
    }
}

/// The points `lo..hi` of `ts` (ascending) with `start_ms <= ts < end_ms`, if there are any.
fn within(ts: Times<'_>, start_ms: i64, end_ms: i64) -> Option<(usize, usize)> {
    // The parser hands points sorted by time (it sorts them when the server did not); a grid
    // is ascending by construction.
    if let Times::Listed(listed) = ts {
        debug_assert!(listed.windows(2).all(|w| w[0] <= w[1]), "unsorted series");
    }
    let lo = ts.first_at_or_after(0..ts.len(), start_ms);
    let hi = ts.first_at_or_after(lo..ts.len(), end_ms);
    (lo < hi).then_some((lo, hi))
}

fn vm_cell(name: &str, vm: Option<&crate::ovh::model::Vm>, s: &mut Shared) -> Option<Cell> {
    Some(match name {
        "vm_id" => Cell::I64(vm.map(|v| v.vm_id)),
        "vm_name" => s.cell(vm.and_then(|v| v.name.as_deref())),
        "host_name" => s.cell(vm.and_then(|v| v.host_name.as_deref())),
        "cluster_name" => s.cell(vm.and_then(|v| v.cluster_name.as_deref())),
        "folder_name" => s.cell(vm.and_then(|v| v.folder_name.as_deref())),
        "power_state" => s.cell(vm.map(|v| v.power_state.as_str())),
        "guest_os_family" => s.cell(vm.and_then(|v| v.guest_os_family.as_deref())),
        "cpu_num" => Cell::I64(vm.and_then(|v| v.cpu_num)),
        "memory_max_mb" => Cell::I64(vm.and_then(|v| v.memory_max)),
        _ => return None,
    })
}

fn host_cell(name: &str, host: Option<&crate::ovh::model::Host>, s: &mut Shared) -> Option<Cell> {
    Some(match name {
        "host_id" => Cell::I64(host.map(|h| h.host_id)),
        "cluster_name" => s.cell(host.and_then(|h| h.cluster_name.as_deref())),
        "profile" => s.cell(host.and_then(|h| h.profile.as_deref())),
        "state" => s.cell(host.and_then(|h| h.state.as_deref())),
        "connection_state" => s.cell(host.and_then(|h| h.connection_state.as_deref())),
        "in_maintenance" => Cell::Bool(host.and_then(|h| h.in_maintenance)),
        "cpu_num" => Cell::I64(host.and_then(|h| h.cpu_num)),
        _ => return None,
    })
}

fn filer_cell(
    name: &str,
    filer: Option<&crate::ovh::model::Filer>,
    s: &mut Shared,
) -> Option<Cell> {
    Some(match name {
        "filer_id" => Cell::I64(filer.map(|f| f.filer_id)),
        "filer_profile" => s.cell(filer.and_then(|f| f.profile.as_deref())),
        "filer_state" => s.cell(filer.and_then(|f| f.state.as_deref())),
        "size_value" => Cell::I64(filer.and_then(|f| f.size.as_ref()).map(|s| s.value)),
        "size_unit" => s.cell(filer.and_then(|f| f.size.as_ref()).map(|s| s.unit.as_str())),
        _ => return None,
    })
}
