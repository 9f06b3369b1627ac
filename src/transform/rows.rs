//! The rows of one finished partition of a metrics table, and the batches they become.
//!
//! A partition's points sit in *sources*: the in-memory buffers it had when it was taken out of
//! the table, the spill files written before, and the pages' spool files (a large page's points
//! stay where the spool wrote them; the table only knows where each run is). Each source holds
//! runs (consecutive points of one series, ascending in time) ordered by the series' rank. The
//! batch builder walks the partition one *group* at a time — the series that share an
//! (entity…, metric) key, usually one — taking that group's runs from every source; runs that
//! follow each other in time are emitted whole, and only a group whose runs overlap (two series
//! of one VM and metric in two services, or a page pushed twice) is merged point by point. Rows
//! therefore come out in the total order (entity…, metric, ts, series rank, arrival), the same
//! whatever was spilled.
//!
//! Batches are built one at a time, at most `max_rows` each, so memory holds one batch, one
//! group, and a read buffer per spill file. [`PartitionRows::into_runs`] hands them out as runs
//! of series ([`RunBatch`]), views of the group's buffers that end with the group, for the load
//! stage to encode without copying the points or repeating per row what a series' rows share;
//! [`PartitionRows::into_batches`] as Arrow record batches.

use foldhash::HashMap;
use std::fs::File;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, RecordBatch, TimestampMillisecondArray};
use arrow::buffer::{BooleanBuffer, NullBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, SchemaRef};

use super::columns::{Cell, ColumnBuilder, ColumnError};
use super::metrics::SeriesEntry;
use super::schema::TableDef;
use super::spill::{SpillFile, SpillReader};
use super::TransformError;
use crate::points::cents::{Values, ValuesSlice};
use crate::points::PointsAt;

/// Rows per batch handed to the Parquet writer: a materialised batch of `vm_metrics` repeats every
/// string column per row, and at 64 Ki rows it was the largest single item at the exporter's peak
/// (docs/measurements.md); at 16 Ki rows the per-batch costs (setting up columns, the writer's
/// bookkeeping) still stay negligible. The writer still cuts row groups at
/// [`crate::load::ROW_GROUP_ROWS`].
pub const BATCH_ROWS: usize = 1 << 14;

/// A table's definition and its Arrow schema, shared by the table and the partitions it hands out.
#[derive(Debug)]
pub(crate) struct TableShape {
    pub(crate) def: TableDef,
    pub(crate) schema: SchemaRef,
}

/// `len` consecutive points of one series, from `start` in a partition's buffers; `pos` is the
/// arrival position of its first point in the table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Run {
    pub(crate) series: u32,
    pub(crate) pos: u64,
    pub(crate) start: usize,
    pub(crate) len: usize,
}

/// A series of a page left in its spool file: what its runs in every partition share.
#[derive(Debug)]
pub(crate) struct SpooledSeries {
    /// The table's series id.
    pub(crate) series: u32,
    pub(crate) file: Arc<File>,
    /// Where its first placed point is.
    pub(crate) at: PointsAt,
    /// Arrival position of that point in the table.
    pub(crate) pos: u64,
}

/// `len` consecutive points of a spooled series, from its `start`-th placed point: 24 bytes, as
/// a page of 30 days leaves 30 runs of every series.
#[derive(Debug, Clone)]
pub(crate) struct FileRun {
    pub(crate) source: Arc<SpooledSeries>,
    pub(crate) start: u32,
    pub(crate) len: u32,
    /// Its first timestamp: what orders the runs of a series without reading them, and the
    /// start of a grid of timestamps.
    pub(crate) first_ts: i64,
}

impl FileRun {
    /// The table's series id.
    pub(crate) fn series(&self) -> u32 {
        self.source.series
    }

    /// Arrival position of its first point in the table.
    pub(crate) fn pos(&self) -> u64 {
        self.source.pos + u64::from(self.start)
    }

    /// Whether it takes up the points of its series where `before` leaves off.
    fn follows(&self, before: &FileRun) -> bool {
        Arc::ptr_eq(&self.source, &before.source)
            && u64::from(self.start) == u64::from(before.start) + u64::from(before.len)
    }

    /// Appends the points of `runs`, each following the one before it, with one read of their
    /// values (a grid's breaks cut a series into runs that lie end to end in its file); values
    /// stored as hundredths keys come as keys ([`PointsAt::read_keyed`]).
    pub(crate) fn read_joined<'a>(
        runs: impl Iterator<Item = &'a FileRun> + Clone,
        bytes: &mut Vec<u8>,
        ts: &mut Vec<i64>,
        values: &mut Values,
    ) -> std::io::Result<()> {
        let Some(first) = runs.clone().next() else {
            return Ok(());
        };
        let file = &first.source.file;
        let mut n = 0;
        for r in runs {
            let at = r.source.at.skip(r.start as usize);
            at.read_ts(file, r.first_ts, r.len as usize, bytes, ts)?;
            n += r.len as usize;
        }
        let at = first.source.at.skip(first.start as usize);
        at.read_keyed(file, n, bytes, values)
    }
}

/// The rows of one partition, taken out of a [`super::MetricsTable`]: owned, and ready to be
/// turned into sorted batches on another thread.
#[derive(Debug)]
pub struct PartitionRows {
    shape: Arc<TableShape>,
    /// The partition's series, by id.
    series: Vec<Arc<SeriesEntry>>,
    ts: Vec<i64>,
    values: Vec<f64>,
    /// In-memory runs; `series` is the table's series id.
    runs: Vec<Run>,
    spills: Vec<SpillFile>,
    file_runs: Vec<FileRun>,
    rows: u64,
    failed: Option<TransformError>,
}

/// Where a partition's points are, as the table hands them over.
#[derive(Debug)]
pub(crate) struct Points {
    /// In memory: the buffers and their runs (`series` is the table's series id).
    pub(crate) ts: Vec<i64>,
    pub(crate) values: Vec<f64>,
    pub(crate) runs: Vec<Run>,
    pub(crate) spills: Vec<SpillFile>,
    pub(crate) file_runs: Vec<FileRun>,
}

impl PartitionRows {
    pub(crate) fn new(
        shape: Arc<TableShape>,
        all_series: &[Arc<SeriesEntry>],
        points: Points,
        failed: Option<TransformError>,
    ) -> PartitionRows {
        let Points {
            ts,
            values,
            runs,
            spills,
            file_runs,
        } = points;
        let mut ids: Vec<u32> = runs.iter().map(|r| r.series).collect();
        for s in &spills {
            ids.extend_from_slice(&s.series);
        }
        ids.extend(file_runs.iter().map(FileRun::series));
        ids.sort_unstable();
        ids.dedup();
        // Ranked (sorted by row order) only when the rows are built: a partition waiting for
        // its turn holds its series once, nothing more.
        let series: Vec<Arc<SeriesEntry>> = ids
            .iter()
            .map(|&id| Arc::clone(&all_series[id as usize]))
            .collect();
        let rows = ts.len() as u64
            + spills.iter().map(SpillFile::points).sum::<u64>()
            + file_runs.iter().map(|r| r.len as u64).sum::<u64>();
        PartitionRows {
            shape,
            series,
            ts,
            values,
            runs,
            spills,
            file_runs,
            rows,
            failed,
        }
    }

    /// How many rows the partition holds.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The table's Arrow schema, which every batch has.
    pub fn schema(&self) -> SchemaRef {
        Arc::clone(&self.shape.schema)
    }

    /// The rows sorted by (entity…, metric, ts), at most `max_rows` per batch, built lazily one
    /// batch at a time. An error (reading a spill file back) ends the iteration.
    pub fn into_batches(
        self,
        max_rows: usize,
    ) -> impl Iterator<Item = Result<RecordBatch, TransformError>> + Send {
        Batches::new(self, max_rows.max(1))
    }

    /// The same rows as [`Self::into_batches`], as runs of series rather than materialised
    /// columns: what the load stage encodes without repeating each series' strings per row.
    pub fn into_runs(self, max_rows: usize) -> RunBatches {
        RunBatches(Batches::new(self, max_rows.max(1)))
    }
}

/// A partition's series in row order (its rank), with the group of each rank (series with equal
/// (entity…, metric) share one) and the rank of each series id.
pub(crate) fn ranked(
    mut series: Vec<Arc<SeriesEntry>>,
) -> (Vec<Arc<SeriesEntry>>, Vec<u32>, HashMap<u32, u32>) {
    series.sort_unstable_by(|a, b| a.order(b));
    let mut group = Vec::with_capacity(series.len());
    let mut g = 0;
    for (r, s) in series.iter().enumerate() {
        if r > 0 && series[r - 1].key != s.key {
            g += 1;
        }
        group.push(g);
    }
    let rank = series
        .iter()
        .enumerate()
        .map(|(r, s)| (s.id, r as u32))
        .collect();
    (series, group, rank)
}

/// One source of a partition's runs.
#[derive(Debug)]
enum Source {
    /// The in-memory buffers; `runs` sorted by (rank, first ts, start), `series` being the rank.
    Memory {
        ts: Vec<i64>,
        values: Vec<f64>,
        runs: Vec<Run>,
        next: usize,
    },
    Spill(SpillReader),
    /// Runs left in spool files with their rank, sorted by (rank, first ts, arrival).
    Files {
        runs: Vec<(u32, FileRun)>,
        next: usize,
        bytes: Vec<u8>,
    },
}

/// A run of the group being ordered: `len` points from `off` in the group's buffers.
#[derive(Debug, Clone, Copy)]
struct GroupRun {
    rank: u32,
    /// Arrival position of its first point in the table, whatever source it comes from.
    pos: u64,
    off: usize,
    len: usize,
}

impl GroupRun {
    /// The sort key of its `i`-th point: (ts, rank, arrival).
    fn key(&self, ts: &[i64], i: usize) -> (i64, u32, u64) {
        (ts[self.off + i], self.rank, self.pos + i as u64)
    }
}

/// A stretch of rows of one series in the group's buffers, in output order.
#[derive(Debug, Clone, Copy)]
struct Segment {
    rank: u32,
    off: usize,
    len: usize,
}

/// The iterator behind [`PartitionRows::into_batches`].
struct Batches {
    shape: Arc<TableShape>,
    series: Vec<Arc<SeriesEntry>>,
    group: Vec<u32>,
    rank: HashMap<u32, u32>,
    sources: Vec<Source>,
    max_rows: usize,
    remaining: u64,
    /// The current group: its points, its runs, and its segments in output order. Values read
    /// from the spool as hundredths keys stay keys ([`RunBatch`]).
    g_ts: Vec<i64>,
    g_values: Values,
    g_runs: Vec<GroupRun>,
    segments: Vec<Segment>,
    /// Next segment to emit, and how much of it was emitted already.
    seg_next: usize,
    seg_done: usize,
    /// The runs and pieces of the last [`RunBatch`].
    runs: Vec<(u32, usize)>,
    pieces: Vec<Piece>,
    /// Set after an error or the last batch.
    done: bool,
    failed: Option<TransformError>,
}

impl Batches {
    fn new(rows: PartitionRows, max_rows: usize) -> Batches {
        let table = rows.shape.def.name;
        let mut failed = rows.failed;
        let mut sources = Vec::with_capacity(rows.spills.len() + 1);
        // Spills first: they hold the earlier arrivals, and the source index breaks ties between
        // equal points in arrival order.
        for spill in rows.spills {
            match SpillReader::open(spill) {
                Ok(reader) => sources.push(Source::Spill(reader)),
                Err(source) => {
                    failed.get_or_insert(TransformError::Spill { table, source });
                }
            }
        }
        let (series, group, rank) = ranked(rows.series);
        let mut runs: Vec<Run> = rows
            .runs
            .iter()
            .map(|r| Run {
                // Every series of the runs was ranked when the rows were made.
                series: rank.get(&r.series).copied().unwrap_or(u32::MAX),
                ..*r
            })
            .collect();
        let ts = &rows.ts;
        runs.sort_unstable_by_key(|r| (r.series, ts[r.start], r.pos));
        sources.push(Source::Memory {
            ts: rows.ts,
            values: rows.values,
            runs,
            next: 0,
        });
        let mut file_runs: Vec<(u32, FileRun)> = rows
            .file_runs
            .into_iter()
            .map(|r| (rank.get(&r.series()).copied().unwrap_or(u32::MAX), r))
            .collect();
        file_runs.sort_unstable_by_key(|(rank, r)| (*rank, r.first_ts, r.pos()));
        sources.push(Source::Files {
            runs: file_runs,
            next: 0,
            bytes: Vec::new(),
        });
        Batches {
            shape: rows.shape,
            series,
            group,
            rank,
            sources,
            max_rows,
            remaining: rows.rows,
            g_ts: Vec::new(),
            g_values: Values::default(),
            g_runs: Vec::new(),
            segments: Vec::new(),
            seg_next: 0,
            seg_done: 0,
            runs: Vec::new(),
            pieces: Vec::new(),
            done: false,
            failed,
        }
    }

    fn spill_err(&self, source: std::io::Error) -> TransformError {
        TransformError::Spill {
            table: self.shape.def.name,
            source,
        }
    }

    /// The rank of a source's next run, if it has one.
    fn peek(&self, source: &Source) -> Result<Option<u32>, TransformError> {
        match source {
            Source::Memory { runs, next, .. } => Ok(runs.get(*next).map(|r| r.series)),
            Source::Files { runs, next, .. } => Ok(runs.get(*next).map(|r| r.0)),
            Source::Spill(reader) => match reader.peek() {
                None => Ok(None),
                Some(h) => match self.rank.get(&h.series) {
                    Some(&r) => Ok(Some(r)),
                    None => Err(self.spill_err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("spill file names series {} unknown here", h.series),
                    ))),
                },
            },
        }
    }

    /// Loads the next group from every source and orders it. `false` when all are exhausted.
    fn load_group(&mut self) -> Result<bool, TransformError> {
        let mut next_group = None;
        for s in &self.sources {
            if let Some(r) = self.peek(s)? {
                let g = self.group[r as usize];
                next_group = Some(next_group.map_or(g, |n: u32| n.min(g)));
            }
        }
        let Some(g) = next_group else {
            return Ok(false);
        };
        self.g_ts.clear();
        self.g_values.clear();
        self.g_runs.clear();
        for src in 0..self.sources.len() {
            loop {
                let Some(rank) = self.peek(&self.sources[src])? else {
                    break;
                };
                if self.group[rank as usize] != g {
                    break;
                }
                let off = self.g_ts.len();
                let pos = match &mut self.sources[src] {
                    Source::Memory {
                        ts,
                        values,
                        runs,
                        next,
                    } => {
                        let run = runs[*next];
                        *next += 1;
                        let range = run.start..run.start + run.len;
                        self.g_ts.extend_from_slice(&ts[range.clone()]);
                        self.g_values.extend_doubles(&values[range]);
                        run.pos
                    }
                    Source::Files { runs, next, bytes } => {
                        // Runs of a series that lie end to end in its file are read as one.
                        let first = *next;
                        *next += 1;
                        while runs
                            .get(*next)
                            .is_some_and(|(_, r)| r.follows(&runs[*next - 1].1))
                        {
                            *next += 1;
                        }
                        let joined = runs[first..*next].iter().map(|(_, r)| r);
                        FileRun::read_joined(joined, bytes, &mut self.g_ts, &mut self.g_values)
                            .map_err(|source| TransformError::Spill {
                                table: self.shape.def.name,
                                source,
                            })?;
                        runs[first].1.pos()
                    }
                    Source::Spill(reader) => {
                        let pos = reader.peek().map_or(0, |h| h.pos);
                        reader
                            .read_run(&mut self.g_ts, &mut self.g_values)
                            .map_err(|source| TransformError::Spill {
                                table: self.shape.def.name,
                                source,
                            })?;
                        pos
                    }
                };
                self.g_runs.push(GroupRun {
                    rank,
                    pos,
                    off,
                    len: self.g_ts.len() - off,
                });
            }
        }
        self.order_group();
        self.seg_next = 0;
        self.seg_done = 0;
        Ok(true)
    }

    /// Puts the group's runs in output order: whole when they follow each other, else merged
    /// point by point.
    fn order_group(&mut self) {
        let ts = &self.g_ts;
        let runs = &mut self.g_runs;
        self.segments.clear();
        runs.retain(|r| r.len > 0);
        runs.sort_unstable_by_key(|r| r.key(ts, 0));
        let in_order = runs
            .windows(2)
            .all(|w| w[0].key(ts, w[0].len - 1) < w[1].key(ts, 0));
        if in_order {
            self.segments.extend(runs.iter().map(|r| Segment {
                rank: r.rank,
                off: r.off,
                len: r.len,
            }));
            return;
        }
        let mut points: Vec<((i64, u32, u64), usize)> = runs
            .iter()
            .flat_map(|r| (0..r.len).map(move |i| (r.key(ts, i), r.off + i)))
            .collect();
        points.sort_unstable();
        let ts: Vec<i64> = points.iter().map(|&(_, p)| self.g_ts[p]).collect();
        let values = self.g_values.gather(points.iter().map(|&(_, p)| p));
        for (i, &((_, rank, _), _)) in points.iter().enumerate() {
            match self.segments.last_mut() {
                Some(last) if last.rank == rank => last.len += 1,
                _ => self.segments.push(Segment {
                    rank,
                    off: i,
                    len: 1,
                }),
            }
        }
        self.g_ts = ts;
        self.g_values = values;
    }

    /// The next piece of at most `max` (> 0) rows of one segment, in output order; when the
    /// group is done, the next group is loaded first if `load` (which moves the group's
    /// buffers: pieces taken before are no longer there). `None` at the end.
    fn next_piece(&mut self, max: usize, load: bool) -> Result<Option<Piece>, TransformError> {
        loop {
            if let Some(seg) = self.segments.get(self.seg_next).copied() {
                let len = (seg.len - self.seg_done).min(max);
                let piece = Piece {
                    rank: seg.rank,
                    at: seg.off + self.seg_done,
                    len,
                };
                self.seg_done += len;
                if self.seg_done == seg.len {
                    self.seg_next += 1;
                    self.seg_done = 0;
                }
                self.remaining = self.remaining.saturating_sub(len as u64);
                return Ok(Some(piece));
            }
            if !load || !self.load_group()? {
                return Ok(None);
            }
        }
    }

    /// Runs `step` unless the batches ended or failed; an error ends them.
    fn guarded<T>(
        &mut self,
        step: impl FnOnce(&mut Self) -> Result<Option<T>, TransformError>,
    ) -> Result<Option<T>, TransformError> {
        if self.done {
            return Ok(None);
        }
        if let Some(e) = self.failed.take() {
            self.done = true;
            return Err(e);
        }
        let next = step(self);
        self.done = !matches!(next, Ok(Some(_)));
        next
    }

    /// The next stretch of at most `max_rows` rows, as one Arrow batch.
    fn next_record_batch(&mut self) -> Result<Option<RecordBatch>, TransformError> {
        let cap = (self.remaining.min(self.max_rows as u64)) as usize;
        let (mut ts, mut values) = (Vec::with_capacity(cap), Values::with_capacity(cap));
        let mut runs: Vec<(u32, usize)> = Vec::new();
        while ts.len() < self.max_rows {
            let Some(p) = self.next_piece(self.max_rows - ts.len(), true)? else {
                break;
            };
            ts.extend_from_slice(&self.g_ts[p.range()]);
            values.extend_from(self.g_values.slice(p.range()));
            push_run(&mut runs, p.rank, p.len);
        }
        if ts.is_empty() {
            return Ok(None);
        }
        build_batch(&self.shape, &self.series, &runs, ts, values.into_doubles()).map(Some)
    }
}

/// Appends `rows` rows of the series of rank `rank` to `runs`, joining the last run if it is
/// that series'.
fn push_run(runs: &mut Vec<(u32, usize)>, rank: u32, rows: usize) {
    match runs.last_mut() {
        Some((r, n)) if *r == rank => *n += rows,
        _ => runs.push((rank, rows)),
    }
}

/// `len` rows of the series of rank `rank` from `at` in the group's buffers.
#[derive(Debug, Clone, Copy)]
struct Piece {
    rank: u32,
    at: usize,
    len: usize,
}

impl Piece {
    fn range(&self) -> std::ops::Range<usize> {
        self.at..self.at + self.len
    }
}

impl Iterator for Batches {
    type Item = Result<RecordBatch, TransformError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.guarded(Batches::next_record_batch).transpose()
    }
}

/// A stretch of a partition's rows in output order, within one group of series: which series
/// each run of rows belongs to (every column but `ts` and `value` is the same for all rows of a
/// run), and the points, where the group's buffers hold them (nothing is copied).
pub struct RunBatch<'a> {
    batches: &'a Batches,
    /// (series rank, rows), in order.
    runs: &'a [(u32, usize)],
    /// The runs' points in the group's buffers, in order: a run may be in several pieces.
    pieces: &'a [Piece],
}

/// The points of one piece of a [`RunBatch`].
pub struct PiecePoints<'a> {
    /// The series' rank.
    pub rank: u32,
    pub ts: &'a [i64],
    /// One per row. Points read back from the spool are held as their hundredths keys, which
    /// spares the `value` chunk turning each key into its double and back.
    pub values: ValuesSlice<'a>,
}

impl<'a> RunBatch<'a> {
    /// (series rank, rows), in order.
    pub fn runs(&self) -> &'a [(u32, usize)] {
        self.runs
    }

    pub fn rows(&self) -> usize {
        self.pieces.iter().map(|p| p.len).sum()
    }

    /// The points, in row order.
    pub fn points(&self) -> impl Iterator<Item = PiecePoints<'a>> + 'a {
        let b = self.batches;
        self.pieces.iter().map(move |p| PiecePoints {
            rank: p.rank,
            ts: &b.g_ts[p.range()],
            values: b.g_values.slice(p.range()),
        })
    }

    /// Column `c` of the batch's rows, as an Arrow array.
    pub(crate) fn column(&self, c: usize) -> Result<ArrayRef, TransformError> {
        let b = self.batches;
        run_column(&b.shape.def, &b.series, c, self.runs, self.rows())
    }
}

/// The iterator behind [`PartitionRows::into_runs`].
pub struct RunBatches(Batches);

impl RunBatches {
    /// The table's Arrow schema.
    pub fn schema(&self) -> SchemaRef {
        Arc::clone(&self.0.shape.schema)
    }

    /// The cells of the series of rank `rank`, one per column ([`Cell::Point`] for `ts` and
    /// `value`).
    pub(crate) fn cells(&self, rank: u32) -> &[Cell] {
        &self.0.series[rank as usize].cells
    }

    /// The next stretch of at most `max` (and at most the batch size) rows, or `None` when
    /// every row was given. It ends where its group of series does: its points are read where
    /// the group's buffers hold them, which the next call replaces.
    pub fn next_batch(&mut self, max: usize) -> Result<Option<RunBatch<'_>>, TransformError> {
        let max = max.min(self.0.max_rows).max(1);
        let got = self.0.guarded(|b| {
            b.pieces.clear();
            b.runs.clear();
            let mut rows = 0;
            while rows < max {
                // Only the first piece may move on to the next group.
                let Some(p) = b.next_piece(max - rows, b.pieces.is_empty())? else {
                    break;
                };
                rows += p.len;
                push_run(&mut b.runs, p.rank, p.len);
                b.pieces.push(p);
            }
            Ok((rows > 0).then_some(()))
        })?;
        let b = &self.0;
        Ok(got.map(|()| RunBatch {
            batches: b,
            runs: &b.runs,
            pieces: &b.pieces,
        }))
    }
}

/// One batch: `ts` and `values` per row, every other column repeated per run of a series.
fn build_batch(
    shape: &TableShape,
    series: &[Arc<SeriesEntry>],
    runs: &[(u32, usize)],
    ts: Vec<i64>,
    values: Vec<f64>,
) -> Result<RecordBatch, TransformError> {
    let def = &shape.def;
    let rows = ts.len();
    let mut ts = Some(ts);
    let mut values = Some(values);
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(def.columns.len());
    for (c, column) in def.columns.iter().enumerate() {
        let array: ArrayRef = match (column.name, &column.data_type) {
            ("ts", DataType::Timestamp(_, tz)) => {
                Arc::new(ts_array(ts.take().unwrap_or_default(), tz.clone()))
            }
            ("value", DataType::Float64) => {
                Arc::new(value_array(values.take().unwrap_or_default()))
            }
            _ => run_column(def, series, c, runs, rows)?,
        };
        columns.push(array);
    }
    RecordBatch::try_new(Arc::clone(&shape.schema), columns).map_err(|source| {
        TransformError::Arrow {
            table: def.name,
            source,
        }
    })
}

/// The `ts` column of a batch.
fn ts_array(ts: Vec<i64>, tz: Option<Arc<str>>) -> TimestampMillisecondArray {
    TimestampMillisecondArray::new(ScalarBuffer::from(ts), None).with_timezone_opt(tz)
}

/// The `value` column of a batch: NaN is "no value" everywhere in this exporter.
pub(crate) fn value_array(values: Vec<f64>) -> Float64Array {
    let valid = BooleanBuffer::collect_bool(values.len(), |i| !values[i].is_nan());
    let nulls = Some(NullBuffer::new(valid)).filter(|n| n.null_count() > 0);
    Float64Array::new(ScalarBuffer::from(values), nulls)
}

/// Column `c` (not `ts` or `value`) of `rows` rows made of `runs`: each series' cell repeated.
fn run_column(
    def: &TableDef,
    series: &[Arc<SeriesEntry>],
    c: usize,
    runs: &[(u32, usize)],
    rows: usize,
) -> Result<ArrayRef, TransformError> {
    let table = def.name;
    let column = &def.columns[c];
    let name = column.name;
    let column_err = |source| TransformError::Column {
        table,
        column: name,
        source,
    };
    let mut builder =
        ColumnBuilder::for_type(&column.data_type, rows).ok_or(TransformError::Column {
            table,
            column: name,
            source: ColumnError::Mismatch {
                expected: "a supported type",
            },
        })?;
    for &(rank, n) in runs {
        let cell = &series[rank as usize].cells[c];
        if matches!(cell, Cell::Point) {
            return Err(TransformError::NoSource {
                table,
                column: name,
            });
        }
        builder.repeat(cell, n).map_err(column_err)?;
    }
    builder.finish(&column.data_type).map_err(column_err)
}
