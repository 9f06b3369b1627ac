//! The fast encoder: metrics files encoded straight from runs of series, behind one function,
//! [`write`] (and [`encodes`], whether it can honour given writer settings). Nothing else in the
//! crate builds Parquet pages; `load` chooses between this and arrow-rs' `ArrowWriter`.
//!
//! A metrics row repeats its series' strings (service, datacenter, entity, the joined inventory,
//! the tags) for every point, and rows come in runs of one series: a VM's metric over a day is
//! 1,440 rows. Given materialised string columns, arrow-rs' dictionary encoder hashes and compares
//! every row of every one of them, the largest share of the exporter's CPU (docs/measurements.md).
//! Here each such column
//! chunk is encoded from the runs instead: its dictionary gets each series' value once, and its
//! levels and dictionary indices are RLE runs, one per run of rows, so a row costs next to
//! nothing in those columns. `value`, which changes every row, has its own encoder
//! ([`values`]); only `ts` and Boolean columns (which Parquet does not dictionary-encode)
//! go through arrow-rs' own column writers; every kind of chunk is spliced into the same row
//! groups with `append_column`.
//!
//! The chunks written here hold a PLAIN dictionary page and one data page (v1) of RLE levels and
//! RLE_DICTIONARY indices (bit-packed where a row repeats a pattern, as the `tags` levels do),
//! ZSTD-compressed, with min/max statistics from the dictionary and an offset index: what
//! arrow-rs writes for a dictionary column, minus the per-row work. Of the writer settings, they
//! follow the compression and which columns have statistics; they are always dictionary-encoded
//! (a run column has one entry per series at most) in one page per row group, since a few bytes
//! per run leave nothing for page-level pruning to skip, and so they have no column index.
//!
//! The codec and its level come from the writer properties alone ([`zstd_level`]); anything but
//! one ZSTD level for every column makes [`encodes`] say no, and arrow-rs writes the file.
//!
//! ## What this relies on in arrow-rs (check these on every `parquet` upgrade)
//! - `ArrowRowGroupWriterFactory`, `ArrowColumnWriter` and `compute_leaves`, for the columns
//!   arrow-rs still writes (`ts`, Booleans), and `SerializedRowGroupWriter::append_column` taking
//!   a `ColumnCloseResult` with the chunk's bytes, metadata, column and offset index;
//! - `SerializedPageWriter` over a `TrackedWrite`, writing the pages assembled here, and the
//!   `PageWriter`/`CompressedPage`/`PageWriteSpec` types it takes;
//! - `ColumnChunkMetaData`, `PageEncodingStats`, `ColumnIndexMetaData`, `OffsetIndexMetaData`
//!   and `Statistics` built by hand, as arrow-rs' writer would fill them;
//! - the differential test (`transform::tests::the_runs_encoder_and_arrow_rs_write_…`) holds the
//!   two writers to the same rows and the same footers, so an upgrade that changes either fails
//!   there first.

mod times;
mod values;

use foldhash::{HashMap, HashMapExt};
use std::io::Write;
use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::datatypes::{DataType, SchemaRef};
use bytes::Bytes;
use parquet::arrow::arrow_writer::{compute_leaves, ArrowColumnWriter, ArrowRowGroupWriterFactory};
use parquet::arrow::ArrowWriter;
use parquet::basic::{
    Compression, Encoding, EncodingMask, LogicalType, PageType, TimeUnit, Type as PhysicalType,
    ZstdLevel,
};
use parquet::column::page::{CompressedPage, Page, PageWriteSpec, PageWriter};
use parquet::column::writer::ColumnCloseResult;
use parquet::data_type::ByteArray;
use parquet::errors::{ParquetError, Result};
use parquet::file::metadata::{ColumnChunkMetaData, PageEncodingStats};
use parquet::file::page_index::column_index::ColumnIndexMetaData;
use parquet::file::page_index::offset_index::{OffsetIndexMetaData, PageLocation};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::statistics::{Statistics, ValueStatistics};
use parquet::file::writer::{SerializedFileWriter, SerializedPageWriter, TrackedWrite};
use parquet::schema::types::ColumnDescPtr;

use self::times::TsChunk;
use self::values::ValueChunk;
use crate::transform::{Cell, RunBatch, RunBatches, TransformError};

/// Longest RLE run written in one header (the format's run length is a 31-bit count).
const MAX_RUN: u64 = 1 << 30;

/// Why writing stopped: the Parquet writer, or the rows it was given.
#[derive(Debug)]
pub(crate) enum RunsError {
    Parquet(ParquetError),
    Rows(TransformError),
}

impl From<ParquetError> for RunsError {
    fn from(e: ParquetError) -> RunsError {
        RunsError::Parquet(e)
    }
}

/// How one Parquet leaf column of a metrics table is written.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Leaf {
    /// By arrow-rs from the arrays of each batch: Boolean columns.
    Arrow,
    /// `ts`, by [`TsChunk`].
    Ts,
    /// `value`, by [`ValueChunk`].
    Value,
    /// From the runs: a top-level column whose value is the series' cell.
    Flat,
    /// From the runs: the keys (`false`) or values (`true`) of the `tags` map.
    Tags { values: bool },
}

/// How many of a timestamp column's units make the millisecond the rows hold their times in:
/// 1000 for a Delta table's microseconds (`load::delta`), 1 otherwise.
pub(crate) fn per_millisecond(descr: &parquet::schema::types::ColumnDescriptor) -> i64 {
    match descr.logical_type_ref() {
        Some(LogicalType::Timestamp(t)) if t.unit == TimeUnit::MICROS => 1_000,
        Some(LogicalType::Timestamp(t)) if t.unit == TimeUnit::NANOS => 1_000_000,
        _ => 1,
    }
}

/// The leaves of `schema` in Parquet order, with the Arrow column each belongs to.
fn leaves(schema: &SchemaRef) -> Vec<(usize, Leaf)> {
    let mut out = Vec::new();
    for (c, field) in schema.fields().iter().enumerate() {
        match (field.name().as_str(), field.data_type()) {
            ("value", DataType::Float64) => out.push((c, Leaf::Value)),
            ("ts", DataType::Timestamp(..)) => out.push((c, Leaf::Ts)),
            ("ts" | "value", _) | (_, DataType::Boolean) => out.push((c, Leaf::Arrow)),
            (_, DataType::Map(..)) => {
                out.push((c, Leaf::Tags { values: false }));
                out.push((c, Leaf::Tags { values: true }));
            }
            _ => out.push((c, Leaf::Flat)),
        }
    }
    out
}

/// The ZSTD level of every leaf encoded here, when `props` give them all the same one: the only
/// codec these encoders write. The codec and level come from the writer properties alone, so a
/// chunk's metadata and its pages can never disagree.
fn zstd_level(schema: &SchemaRef, props: &WriterProperties) -> Option<i32> {
    let descr = parquet::arrow::ArrowSchemaConverter::new()
        .convert(schema)
        .ok()?;
    let mut level = None;
    for (column, (_, leaf)) in descr.columns().iter().zip(leaves(schema)) {
        if leaf == Leaf::Arrow {
            continue;
        }
        let Compression::ZSTD(l) = props.compression(column.path()) else {
            return None;
        };
        match level {
            Some(seen) if seen != l.compression_level() => return None,
            _ => level = Some(l.compression_level()),
        }
    }
    Some(level.unwrap_or(ZstdLevel::default().compression_level()))
}

/// Whether [`write`] can encode a file of `schema` with `props`; arrow-rs' own writer must
/// otherwise.
pub(crate) fn encodes(schema: &SchemaRef, props: &WriterProperties) -> bool {
    zstd_level(schema, props).is_some()
}

/// Writes `batches` (one partition of a metrics table, in row order) to `out` with `props`, in
/// row groups of `row_group_rows` rows (the last one fewer). Returns the writer, after the
/// footer, and the rows written. Fails unless [`encodes`] holds.
#[cfg(test)]
pub(crate) fn write<W: super::ParquetSink>(
    out: W,
    props: WriterProperties,
    row_group_rows: usize,
    batches: RunBatches,
) -> std::result::Result<(W, u64), RunsError> {
    write_as(out, batches.schema(), props, row_group_rows, batches)
}

/// [`write`] as a file of `schema`: the rows' own, but for the unit of its timestamps (see
/// [`per_millisecond`]).
pub(crate) fn write_as<W: super::ParquetSink>(
    out: W,
    schema: SchemaRef,
    props: WriterProperties,
    row_group_rows: usize,
    mut batches: RunBatches,
) -> std::result::Result<(W, u64), RunsError> {
    if schema.fields().len() != batches.schema().fields().len() {
        return Err(ParquetError::General(format!(
            "a file of {} columns for rows of {}",
            schema.fields().len(),
            batches.schema().fields().len()
        ))
        .into());
    }
    let leaves = leaves(&schema);
    let zstd_level = zstd_level(&schema, &props).ok_or_else(|| {
        ParquetError::NYI("the runs encoder writes ZSTD pages only, at one level".to_string())
    })?;
    let props = Arc::new(props);
    let (mut file, factory) = ArrowWriter::try_new_with_options(
        out,
        Arc::clone(&schema),
        super::arrow_writer_options((*props).clone()),
    )?
    .into_serialized_writer()?;
    let descrs: Vec<ColumnDescPtr> = file.schema_descr().columns().to_vec();
    if descrs.len() != leaves.len() {
        return Err(ParquetError::General(format!(
            "{} Parquet leaves for {} expected",
            descrs.len(),
            leaves.len()
        ))
        .into());
    }
    let mut encoders = Encoders {
        // One compression context for every page of the file.
        zstd: zstd::bulk::Compressor::new(zstd_level)
            .map_err(|e| ParquetError::External(Box::new(e)))?,
        value: match leaves.iter().position(|l| l.1 == Leaf::Value) {
            Some(leaf) => Some(ValueChunk::new(Arc::clone(&descrs[leaf]), &props)?),
            None => None,
        },
        ts: match leaves.iter().position(|l| l.1 == Leaf::Ts) {
            Some(leaf) => Some(TsChunk::new(Arc::clone(&descrs[leaf]), &props)?),
            None => None,
        },
    };
    let mut rows = 0u64;
    // arrow-rs's column writers (each with its own compression contexts) only where a leaf
    // takes one: none for the metrics tables as they are.
    let arrow = leaves.iter().any(|l| l.1 == Leaf::Arrow);
    let new_group = |index| RowGroup::new(&factory, index, arrow, leaves.len());
    let mut group = new_group(0)?;
    let mut groups = 0;
    let row_group_rows = row_group_rows.max(1);
    loop {
        let room = row_group_rows - group.rows;
        let Some(batch) = batches.next_batch(room).map_err(RunsError::Rows)? else {
            break;
        };
        rows += batch.rows() as u64;
        group.push(&schema, &leaves, &batch, &mut encoders)?;
        if group.rows >= row_group_rows {
            groups += 1;
            let full = std::mem::replace(&mut group, new_group(groups)?);
            full.write(&mut file, &batches, &leaves, &descrs, &props, &mut encoders)?;
        }
    }
    if group.rows > 0 {
        group.write(&mut file, &batches, &leaves, &descrs, &props, &mut encoders)?;
    }
    // What follows is the page indexes and footer.
    file.flush().map_err(ParquetError::from)?;
    file.inner_mut().footer_follows();
    Ok((file.into_inner()?, rows))
}

/// What a file's row groups share: the compression context and the `value` and `ts` chunks'
/// buffers.
struct Encoders {
    zstd: zstd::bulk::Compressor<'static>,
    value: Option<ValueChunk>,
    ts: Option<TsChunk>,
}

/// A row group being gathered: arrow-rs writers for its `Arrow` leaves, the runs for the rest.
struct RowGroup {
    /// By leaf; `None` for the leaves encoded from runs.
    writers: Vec<Option<ArrowColumnWriter>>,
    runs: Vec<(u32, usize)>,
    rows: usize,
}

impl RowGroup {
    fn new(
        factory: &ArrowRowGroupWriterFactory,
        index: usize,
        arrow: bool,
        leaves: usize,
    ) -> Result<RowGroup> {
        let writers = if arrow {
            let writers = factory.create_column_writers(index)?;
            writers.into_iter().map(Some).collect()
        } else {
            (0..leaves).map(|_| None).collect()
        };
        Ok(RowGroup {
            writers,
            runs: Vec::new(),
            rows: 0,
        })
    }

    fn push(
        &mut self,
        schema: &SchemaRef,
        leaves: &[(usize, Leaf)],
        batch: &RunBatch<'_>,
        encoders: &mut Encoders,
    ) -> std::result::Result<(), RunsError> {
        for points in batch.points() {
            if let Some(chunk) = encoders.ts.as_mut() {
                chunk.push(points.ts, &mut encoders.zstd)?;
            }
            if let Some(chunk) = encoders.value.as_mut() {
                chunk.push_keyed(points.rank, points.values, &mut encoders.zstd)?;
            }
        }
        let mut leaf = 0;
        while leaf < leaves.len() {
            let (c, kind) = leaves[leaf];
            let field = schema.field(c);
            let width = leaves[leaf..].iter().take_while(|l| l.0 == c).count();
            if kind == Leaf::Arrow {
                let array: ArrayRef = batch.column(c).map_err(RunsError::Rows)?;
                let parts = compute_leaves(field, &array)?;
                for (part, writer) in parts.iter().zip(&mut self.writers[leaf..leaf + width]) {
                    if let Some(writer) = writer {
                        writer.write(part)?;
                    }
                }
            }
            leaf += width;
        }
        for &run in batch.runs() {
            self.rows += run.1;
            match self.runs.last_mut() {
                Some(last) if last.0 == run.0 => last.1 += run.1,
                _ => self.runs.push(run),
            }
        }
        Ok(())
    }

    /// Encodes the run leaves and appends every chunk, in leaf order, as one row group.
    fn write<W: Write + Send>(
        mut self,
        file: &mut SerializedFileWriter<W>,
        batches: &RunBatches,
        leaves: &[(usize, Leaf)],
        descrs: &[ColumnDescPtr],
        props: &WriterProperties,
        encoders: &mut Encoders,
    ) -> std::result::Result<(), RunsError> {
        let zstd = &mut encoders.zstd;
        let mut group = file.next_row_group()?;
        for (leaf, &(c, kind)) in leaves.iter().enumerate() {
            if kind == Leaf::Value {
                let chunk = encoders.value.as_mut().ok_or_else(|| {
                    ParquetError::General(format!("leaf {leaf} has no value chunk"))
                })?;
                let (bytes, close) = chunk.finish(props, zstd)?;
                chunk.reset();
                group.append_column(&bytes, close)?;
                continue;
            }
            if kind == Leaf::Ts {
                let chunk = encoders
                    .ts
                    .as_mut()
                    .ok_or_else(|| ParquetError::General(format!("leaf {leaf} has no ts chunk")))?;
                let (bytes, close) = chunk.finish(props, zstd)?;
                group.append_column(&bytes, close)?;
                continue;
            }
            if kind == Leaf::Arrow {
                let writer = self.writers[leaf]
                    .take()
                    .ok_or_else(|| ParquetError::General(format!("leaf {leaf} written twice")))?;
                writer.close()?.append_to_row_group(&mut group)?;
                continue;
            }
            let descr = &descrs[leaf];
            let mut chunk = RunChunk::new(Arc::clone(descr), kind)?;
            for &(rank, n) in &self.runs {
                chunk.push(rank, &batches.cells(rank)[c], n)?;
            }
            let stats = props.statistics_enabled(descr.path()) != EnabledStatistics::None;
            let (bytes, close) = chunk.finish(self.rows as u64, props, zstd, stats)?;
            group.append_column(&bytes, close)?;
        }
        group.close()?;
        Ok(())
    }
}

/// Runs of one stream of small integers (repetition levels, definition levels or dictionary
/// indices), RLE-encoded when the chunk is finished and its bit width known.
#[derive(Debug, Default)]
pub(super) struct Runs(Vec<RunItem>);

#[derive(Debug)]
enum RunItem {
    /// `count` times `value`.
    Same(u32, u64),
    /// A row's pattern of (value, count) runs, `times` times over.
    Repeat(Arc<[(u32, u32)]>, u64),
}

impl Runs {
    pub(super) fn push(&mut self, value: u32, count: u64) {
        if count == 0 {
            return;
        }
        match self.0.last_mut() {
            Some(RunItem::Same(v, n)) if *v == value => *n += count,
            _ => self.0.push(RunItem::Same(value, count)),
        }
    }

    fn push_pattern(&mut self, pattern: &Arc<[(u32, u32)]>, times: u64) {
        match pattern.as_ref() {
            [] => {}
            [(value, count)] => self.push(*value, *count as u64 * times),
            _ if times > 0 => self.0.push(RunItem::Repeat(Arc::clone(pattern), times)),
            _ => {}
        }
    }

    /// The RLE/bit-packing hybrid encoding (RLE runs only) of the stream at `bit_width`.
    pub(super) fn encode(&self, bit_width: u8, out: &mut Vec<u8>) {
        let width = bit_width.div_ceil(8) as usize;
        for item in &self.0 {
            match item {
                RunItem::Same(value, count) => put_run(out, *value, *count, width),
                RunItem::Repeat(pattern, times) => {
                    put_repeat(out, pattern, *times, bit_width, width);
                }
            }
        }
    }
}

/// One RLE run (split if longer than [`MAX_RUN`]): the ULEB128 header `count << 1`, then the
/// value in `width` little-endian bytes.
pub(super) fn put_run(out: &mut Vec<u8>, value: u32, mut count: u64, width: usize) {
    while count > 0 {
        let n = count.min(MAX_RUN);
        put_uleb128(out, n << 1);
        out.extend_from_slice(&value.to_le_bytes()[..width]);
        count -= n;
    }
}

/// A row's pattern of values `times` over: a bit-packed run of every whole group of eight
/// values, then the few left over as RLE runs. The pattern (a handful of tags per row) repeats
/// with a period of whole bytes once packed, so one period is packed and then copied.
fn put_repeat(out: &mut Vec<u8>, pattern: &[(u32, u32)], times: u64, bit_width: u8, width: usize) {
    let unit: Vec<u32> = pattern
        .iter()
        .flat_map(|&(value, count)| std::iter::repeat_n(value, count as usize))
        .collect();
    let total = unit.len() as u64 * times;
    let groups = if bit_width == 0 {
        0
    } else {
        (total / 8).min(MAX_RUN)
    };
    if groups > 0 {
        put_uleb128(out, (groups << 1) | 1);
        // `unit.len() × 8` values always fill whole bytes (8 × bit_width bits per group of 8).
        let period: Vec<u32> = unit.iter().copied().cycle().take(unit.len() * 8).collect();
        let start = out.len();
        pack(out, &period, bit_width);
        cycle_to(out, start, (groups * bit_width as u64) as usize);
    }
    let mut rest = Runs::default();
    for i in groups * 8..total {
        rest.push(unit[(i % unit.len() as u64) as usize], 1);
    }
    for item in &rest.0 {
        if let RunItem::Same(value, count) = item {
            put_run(out, *value, *count, width);
        }
    }
}

/// Bit-packs `values` at `bit_width` bits each, least significant bit first, as the RLE/bit-packing
/// hybrid's bit-packed runs store them; a last group of fewer than eight is padded with zeros,
/// as the format allows (readers stop at the page's value count).
pub(super) fn pack(out: &mut Vec<u8>, values: &[u32], bit_width: u8) {
    let width = bit_width as usize;
    let bytes = values.len().div_ceil(8) * width;
    out.reserve(bytes);
    let end = out.len() + bytes;
    let mut acc: u64 = 0;
    let mut bits = 0;
    for &v in values {
        acc |= (v as u64) << bits;
        bits += width;
        if bits >= 32 {
            out.extend_from_slice(&(acc as u32).to_le_bytes());
            acc >>= 32;
            bits -= 32;
        }
    }
    while out.len() < end {
        out.push(acc as u8);
        acc >>= 8;
    }
}

/// Makes `out[start..]` exactly `len` bytes long by repeating its current content cyclically
/// (or cutting it), doubling the copied span each time.
fn cycle_to(out: &mut Vec<u8>, start: usize, len: usize) {
    let unit = out.len() - start;
    if unit == 0 || len <= unit {
        out.truncate(start + len);
        return;
    }
    out.reserve(len - unit);
    while out.len() - start < len {
        let have = out.len() - start;
        out.extend_from_within(start..start + have.min(len - have));
    }
}

pub(super) fn put_uleb128(out: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        out.push((x as u8 & 0x7f) | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

/// Bits needed to store values up to `max`.
pub(super) fn bit_width(max: u32) -> u8 {
    (32 - max.leading_zeros()) as u8
}

/// The levels and dictionary indices one row of a series adds to a leaf.
#[derive(Debug)]
struct Pattern {
    rep: Arc<[(u32, u32)]>,
    def: Arc<[(u32, u32)]>,
    idx: Arc<[(u32, u32)]>,
    levels: u64,
    nulls: u64,
}

/// The column chunk of one run leaf in one row group.
struct RunChunk {
    descr: ColumnDescPtr,
    kind: Leaf,
    max_def: u32,
    max_rep: u32,
    /// Dictionary entries in order of first appearance: the string's bytes, or the 8
    /// little-endian bytes of an INT64 or DOUBLE.
    entries: Vec<Box<[u8]>>,
    index: HashMap<Box<[u8]>, u32>,
    /// By series rank: what one of its rows adds.
    patterns: HashMap<u32, Pattern>,
    /// By series rank, for [`Leaf::Flat`] chunks: the cell's dictionary index, `None` for null.
    flat: HashMap<u32, Option<u32>>,
    rep: Runs,
    def: Runs,
    idx: Runs,
    levels: u64,
    nulls: u64,
}

impl RunChunk {
    fn new(descr: ColumnDescPtr, kind: Leaf) -> Result<RunChunk> {
        let (max_def, max_rep) = (descr.max_def_level() as u32, descr.max_rep_level() as u32);
        let expected = match kind {
            Leaf::Flat => max_rep == 0 && max_def <= 1,
            Leaf::Tags { values } => max_rep == 1 && max_def == 1 + values as u32,
            Leaf::Arrow | Leaf::Value | Leaf::Ts => false,
        };
        let physical = descr.physical_type();
        if !expected
            || !matches!(
                physical,
                PhysicalType::BYTE_ARRAY | PhysicalType::INT64 | PhysicalType::DOUBLE
            )
        {
            return Err(ParquetError::General(format!(
                "column {} ({physical}, levels {max_def}/{max_rep}) cannot be written from runs",
                descr.path()
            )));
        }
        Ok(RunChunk {
            descr,
            kind,
            max_def,
            max_rep,
            entries: Vec::new(),
            index: HashMap::new(),
            patterns: HashMap::new(),
            flat: HashMap::new(),
            rep: Runs::default(),
            def: Runs::default(),
            idx: Runs::default(),
            levels: 0,
            nulls: 0,
        })
    }

    /// Adds `n` rows of the series of rank `rank`, whose cell for this column is `cell`.
    fn push(&mut self, rank: u32, cell: &Cell, n: usize) -> Result<()> {
        if self.kind == Leaf::Flat {
            // One level per row: a definition level and, unless null, an index; no pattern.
            let index = match self.flat.get(&rank) {
                Some(&index) => index,
                None => {
                    let index = self.flat_index(cell)?;
                    self.flat.insert(rank, index);
                    index
                }
            };
            let n = n as u64;
            match index {
                Some(i) => {
                    self.def.push(self.max_def, n);
                    self.idx.push(i, n);
                }
                None => {
                    self.def.push(0, n);
                    self.nulls += n;
                }
            }
            self.levels += n;
            return Ok(());
        }
        if !self.patterns.contains_key(&rank) {
            let pattern = self.pattern(cell)?;
            self.patterns.insert(rank, pattern);
        }
        let p = &self.patterns[&rank];
        let n = n as u64;
        self.rep.push_pattern(&p.rep, n);
        self.def.push_pattern(&p.def, n);
        self.idx.push_pattern(&p.idx, n);
        self.levels += p.levels * n;
        self.nulls += p.nulls * n;
        Ok(())
    }

    /// The dictionary index of a flat column's cell, `None` for null; interned from borrowed
    /// bytes, so a cell seen before costs no allocation.
    fn flat_index(&mut self, cell: &Cell) -> Result<Option<u32>> {
        let mismatch = || {
            ParquetError::General(format!(
                "column {} has no value of its type in {cell:?}",
                self.descr.path()
            ))
        };
        let eight: Option<[u8; 8]>;
        let bytes: Option<&[u8]> = match (self.descr.physical_type(), cell) {
            (PhysicalType::BYTE_ARRAY, Cell::Str(s)) => s.as_ref().map(|s| s.as_bytes()),
            (PhysicalType::INT64, Cell::I64(x)) => {
                eight = x.map(i64::to_le_bytes);
                eight.as_ref().map(|b| &b[..])
            }
            (PhysicalType::INT64, Cell::Ts(x)) => {
                eight = Some(x.saturating_mul(per_millisecond(&self.descr)).to_le_bytes());
                eight.as_ref().map(|b| &b[..])
            }
            // NaN is "no value" everywhere in this exporter.
            (PhysicalType::DOUBLE, Cell::F64(x)) => {
                eight = x.filter(|x| !x.is_nan()).map(f64::to_le_bytes);
                eight.as_ref().map(|b| &b[..])
            }
            _ => return Err(mismatch()),
        };
        match bytes {
            Some(bytes) => Ok(Some(self.intern(bytes))),
            None if self.max_def == 0 => Err(ParquetError::General(format!(
                "null in the not-null column {}",
                self.descr.path()
            ))),
            None => Ok(None),
        }
    }

    /// The dictionary index of `value`, added on first sight.
    fn intern(&mut self, value: &[u8]) -> u32 {
        if let Some(&i) = self.index.get(value) {
            return i;
        }
        let i = self.entries.len() as u32;
        self.entries.push(value.into());
        self.index.insert(value.into(), i);
        i
    }

    /// What one row of a `tags` leaf adds (flat leaves take [`Self::flat_index`] instead).
    fn pattern(&mut self, cell: &Cell) -> Result<Pattern> {
        let mismatch = || {
            ParquetError::General(format!(
                "column {} has no value of its type in {cell:?}",
                self.descr.path()
            ))
        };
        // (repetition level, definition level, dictionary index) per level of one row.
        let mut levels: Vec<(u32, u32, Option<u32>)> = Vec::new();
        match (self.kind, cell) {
            (Leaf::Tags { values }, Cell::Tags(tags)) => {
                if tags.is_empty() {
                    levels.push((0, 0, None));
                }
                for (i, (k, v)) in tags.iter().enumerate() {
                    let bytes = if values { v } else { k };
                    let index = self.intern(bytes.as_bytes());
                    levels.push(((i > 0) as u32, self.max_def, Some(index)));
                }
            }
            _ => return Err(mismatch()),
        }
        let runs = |values: &mut dyn Iterator<Item = u32>| -> Arc<[(u32, u32)]> {
            let mut out: Vec<(u32, u32)> = Vec::new();
            for v in values {
                match out.last_mut() {
                    Some((last, n)) if *last == v => *n += 1,
                    _ => out.push((v, 1)),
                }
            }
            out.into()
        };
        Ok(Pattern {
            rep: runs(&mut levels.iter().map(|l| l.0)),
            def: runs(&mut levels.iter().map(|l| l.1)),
            idx: runs(&mut levels.iter().filter_map(|l| l.2)),
            levels: levels.len() as u64,
            nulls: levels.iter().filter(|l| l.2.is_none()).count() as u64,
        })
    }

    /// The chunk's bytes (dictionary page, data page) and what the row group needs to know.
    fn finish(
        self,
        rows: u64,
        props: &WriterProperties,
        zstd: &mut zstd::bulk::Compressor<'static>,
        with_statistics: bool,
    ) -> Result<(Bytes, ColumnCloseResult)> {
        let mut compress = |data: &[u8]| -> Result<Bytes> {
            zstd.compress(data)
                .map(Bytes::from)
                .map_err(|e| ParquetError::External(Box::new(e)))
        };
        let mut data = Vec::new();
        for (max, runs) in [(self.max_rep, &self.rep), (self.max_def, &self.def)] {
            if max > 0 {
                // Data page v1 levels: a 4-byte length, then the RLE runs.
                let at = data.len();
                data.extend_from_slice(&[0; 4]);
                runs.encode(bit_width(max), &mut data);
                let len = (data.len() - at - 4) as u32;
                data[at..at + 4].copy_from_slice(&len.to_le_bytes());
            }
        }
        let dictionary = !self.entries.is_empty();
        let encoding = if dictionary {
            let width = bit_width(self.entries.len() as u32 - 1);
            data.push(width);
            self.idx.encode(width, &mut data);
            Encoding::RLE_DICTIONARY
        } else {
            // Every value is null: the page holds levels only.
            Encoding::PLAIN
        };
        let levels = u32::try_from(self.levels)
            .map_err(|_| ParquetError::General(format!("{} levels in one page", self.levels)))?;
        let dictionary = if dictionary {
            let mut plain = Vec::new();
            for e in &self.entries {
                if self.descr.physical_type() == PhysicalType::BYTE_ARRAY {
                    plain.extend_from_slice(&(e.len() as u32).to_le_bytes());
                }
                plain.extend_from_slice(e);
            }
            Some((compress(&plain)?, plain.len(), self.entries.len() as u32))
        } else {
            None
        };
        let page = ChunkPage {
            buf: compress(&data)?,
            uncompressed: data.len(),
            num_values: levels,
            encoding,
            first_row: 0,
        };
        let statistics = with_statistics.then(|| self.statistics());
        assemble_chunk(
            &self.descr,
            props,
            rows,
            dictionary,
            &[page],
            statistics,
            None,
        )
    }

    /// Min, max and null count, from the dictionary (which holds exactly the chunk's values).
    fn statistics(&self) -> Statistics {
        let nulls = Some(self.nulls);
        let entries = &self.entries;
        match self.descr.physical_type() {
            PhysicalType::INT64 => {
                let values = entries.iter().map(|e| i64::from_le_bytes(eight(e)));
                let (min, max) = (values.clone().min(), values.max());
                ValueStatistics::new(min, max, None, nulls, false)
                    .with_backwards_compatible_min_max(true)
                    .into()
            }
            PhysicalType::DOUBLE => double_statistics(
                entries.iter().map(|e| f64::from_le_bytes(eight(e))),
                self.nulls,
            ),
            _ => {
                let min = entries.iter().min().map(|e| ByteArray::from(e.to_vec()));
                let max = entries.iter().max().map(|e| ByteArray::from(e.to_vec()));
                ValueStatistics::new(min, max, None, nulls, false).into()
            }
        }
    }
}

/// A compressed data page (v1) of a chunk being assembled.
#[derive(Debug)]
pub(super) struct ChunkPage {
    pub(super) buf: Bytes,
    pub(super) uncompressed: usize,
    /// Levels in the page (rows, for a flat column).
    pub(super) num_values: u32,
    pub(super) encoding: Encoding,
    /// Index of the page's first row in the row group.
    pub(super) first_row: i64,
}

/// Lays out a column chunk: its dictionary page (compressed PLAIN bytes, their uncompressed
/// length and the entry count), then its data pages; returns the bytes and the metadata, offset
/// index and column index (if given) the row group records.
pub(super) fn assemble_chunk(
    descr: &ColumnDescPtr,
    props: &WriterProperties,
    rows: u64,
    dictionary: Option<(Bytes, usize, u32)>,
    data_pages: &[ChunkPage],
    statistics: Option<Statistics>,
    column_index: Option<ColumnIndexMetaData>,
) -> Result<(Bytes, ColumnCloseResult)> {
    // Room for every page and its header at once, not by doubling: a `value` chunk is megabytes.
    let bytes = dictionary.as_ref().map_or(0, |d| d.0.len())
        + data_pages.iter().map(|p| p.buf.len() + 64).sum::<usize>();
    let mut sink = TrackedWrite::new(Vec::with_capacity(bytes + 256));
    let mut pages = SerializedPageWriter::new(&mut sink);
    let mut encodings = vec![Encoding::RLE];
    let mut page_stats: Vec<PageEncodingStats> = Vec::new();
    let mut dict_spec: Option<PageWriteSpec> = None;
    if let Some((buf, uncompressed, num_values)) = dictionary {
        let page = Page::DictionaryPage {
            buf,
            num_values,
            encoding: Encoding::PLAIN,
            is_sorted: false,
        };
        dict_spec = Some(pages.write_page(CompressedPage::new(page, uncompressed))?);
        encodings.push(Encoding::PLAIN);
        page_stats.push(PageEncodingStats {
            page_type: PageType::DICTIONARY_PAGE,
            encoding: Encoding::PLAIN,
            count: 1,
        });
    }
    let mut specs = Vec::with_capacity(data_pages.len());
    let mut locations = Vec::with_capacity(data_pages.len());
    let mut levels = 0u64;
    for p in data_pages {
        let page = Page::DataPage {
            buf: p.buf.clone(),
            num_values: p.num_values,
            encoding: p.encoding,
            def_level_encoding: Encoding::RLE,
            rep_level_encoding: Encoding::RLE,
            statistics: None,
        };
        let spec = pages.write_page(CompressedPage::new(page, p.uncompressed))?;
        locations.push(PageLocation {
            offset: spec.offset as i64,
            compressed_page_size: spec.compressed_size as i32,
            first_row_index: p.first_row,
        });
        levels += p.num_values as u64;
        if !encodings.contains(&p.encoding) {
            encodings.push(p.encoding);
        }
        match page_stats
            .iter_mut()
            .find(|s| s.page_type == PageType::DATA_PAGE && s.encoding == p.encoding)
        {
            Some(s) => s.count += 1,
            None => page_stats.push(PageEncodingStats {
                page_type: PageType::DATA_PAGE,
                encoding: p.encoding,
                count: 1,
            }),
        }
        specs.push(spec);
    }
    pages.close()?;
    let bytes = Bytes::from(sink.into_inner()?);
    let first_data = specs.first().ok_or_else(|| {
        ParquetError::General(format!("column chunk {} without data pages", descr.path()))
    })?;
    let all = dict_spec.iter().chain(&specs);
    let compressed: u64 = all.clone().map(|s| s.compressed_size as u64).sum();
    let uncompressed: u64 = all.map(|s| s.uncompressed_size as u64).sum();
    let mut builder = ColumnChunkMetaData::builder(Arc::clone(descr))
        .set_compression(props.compression(descr.path()))
        .set_encodings_mask(EncodingMask::new_from_encodings(encodings.iter()))
        .set_page_encoding_stats(page_stats)
        .set_total_compressed_size(compressed as i64)
        .set_total_uncompressed_size(uncompressed as i64)
        .set_num_values(levels as i64)
        .set_data_page_offset(first_data.offset as i64)
        .set_dictionary_page_offset(dict_spec.map(|s| s.offset as i64));
    if let Some(statistics) = statistics {
        builder = builder.set_statistics(statistics);
    }
    let close = ColumnCloseResult {
        bytes_written: bytes.len() as u64,
        rows_written: rows,
        metadata: builder.build()?,
        bloom_filter: None,
        column_index,
        offset_index: Some(OffsetIndexMetaData {
            page_locations: locations,
            unencoded_byte_array_data_bytes: None,
        }),
    };
    Ok((bytes, close))
}

/// Min, max and null count of a DOUBLE chunk whose non-null values are `values` (NaN-free).
pub(super) fn double_statistics(values: impl Iterator<Item = f64>, nulls: u64) -> Statistics {
    let bounds = values.fold(None, |b: Option<(f64, f64)>, v| match b {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    });
    // The format asks for -0.0 as the minimum and +0.0 as the maximum when the bound is a zero
    // of either sign, so readers prune zeros of both signs right.
    let min = bounds.map(|b| if b.0 == 0.0 { -0.0 } else { b.0 });
    let max = bounds.map(|b| if b.1 == 0.0 { 0.0 } else { b.1 });
    // NaN counts are written whatever the order, as arrow-rs writes them: none here, since a NaN
    // is written as a null.
    ValueStatistics::new(min, max, None, Some(nulls), false)
        .with_backwards_compatible_min_max(true)
        .with_nan_count(Some(0))
        .into()
}

fn eight(bytes: &[u8]) -> [u8; 8] {
    let mut out = [0; 8];
    out.copy_from_slice(&bytes[..8]);
    out
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A file writer whose schema is the one column `name`, for a chunk encoder's test to append
    /// its chunks to and read back through arrow-rs.
    pub(in crate::load) fn one_column_file(
        name: &str,
        physical: PhysicalType,
        repetition: parquet::basic::Repetition,
        props: &Arc<WriterProperties>,
    ) -> SerializedFileWriter<Vec<u8>> {
        use parquet::schema::types::Type;
        let column = Type::primitive_type_builder(name, physical)
            .with_repetition(repetition)
            .build()
            .unwrap();
        let schema = Type::group_type_builder("schema")
            .with_fields(vec![Arc::new(column)])
            .build()
            .unwrap();
        SerializedFileWriter::new(Vec::new(), Arc::new(schema), Arc::clone(props)).unwrap()
    }

    #[test]
    fn runs_encode_as_rle_with_merged_neighbours() {
        let mut runs = Runs::default();
        runs.push(3, 2);
        runs.push(3, 1);
        runs.push(1, 200);
        let mut out = Vec::new();
        runs.encode(2, &mut out);
        // (3 << 1) then 3; 200 << 1 = 400 = ULEB128 [0x90, 0x03], then 1.
        assert_eq!(out, vec![6, 3, 0x90, 0x03, 1]);
    }

    #[test]
    fn a_row_pattern_repeats_as_bit_packed_groups_then_rle() {
        let mut runs = Runs::default();
        // Levels 0, 1, 1 per row, five rows: 15 values, one group of 8 bit-packed, 7 in RLE.
        let pattern: Arc<[(u32, u32)]> = vec![(0, 1), (1, 2)].into();
        runs.push_pattern(&pattern, 5);
        let mut out = Vec::new();
        runs.encode(1, &mut out);
        // Header (1 << 1) | 1; values 0,1,1,0,1,1,0,1 LSB first = 0b1011_0110; then the values
        // 1,0,1,1,0,1,1 as RLE runs (1 × 1), (1 × 0), (2 × 1), (1 × 0), (2 × 1).
        assert_eq!(out, vec![3, 0b1011_0110, 2, 1, 2, 0, 4, 1, 2, 0, 4, 1]);
    }

    #[test]
    fn a_long_repeat_decodes_to_the_pattern() {
        // Decode with the format's own rules and compare, for several periods and widths.
        for (pattern, times, bit_width) in [
            (vec![(0u32, 1u32), (1, 1)], 1_000u64, 1u8),
            (vec![(3, 1), (5, 2), (7, 1)], 999, 3),
            (vec![(0, 1), (1, 2)], 7, 1),
        ] {
            let pattern: Arc<[(u32, u32)]> = pattern.into();
            let mut runs = Runs::default();
            runs.push_pattern(&pattern, times);
            let mut out = Vec::new();
            runs.encode(bit_width, &mut out);
            let unit: Vec<u32> = pattern
                .iter()
                .flat_map(|&(v, c)| std::iter::repeat_n(v, c as usize))
                .collect();
            let expected: Vec<u32> = unit
                .iter()
                .copied()
                .cycle()
                .take(unit.len() * times as usize)
                .collect();
            assert_eq!(decode(&out, bit_width, expected.len()).0, expected);
        }
    }

    /// The RLE/bit-packing hybrid, decoded the way readers do; with the bytes left over.
    pub(in crate::load) fn decode(mut bytes: &[u8], bit_width: u8, n: usize) -> (Vec<u32>, &[u8]) {
        let width = bit_width.div_ceil(8) as usize;
        let mut out = Vec::new();
        while out.len() < n {
            let mut header = 0u64;
            let mut shift = 0;
            loop {
                let b = bytes[0];
                bytes = &bytes[1..];
                header |= ((b & 0x7f) as u64) << shift;
                shift += 7;
                if b < 0x80 {
                    break;
                }
            }
            if header & 1 == 1 {
                let values = (header >> 1) as usize * 8;
                let len = values * bit_width as usize / 8;
                let (packed, rest) = bytes.split_at(len);
                for i in 0..values {
                    let mut v = 0u32;
                    for b in 0..bit_width as usize {
                        let bit = i * bit_width as usize + b;
                        v |= (((packed[bit / 8] >> (bit % 8)) & 1) as u32) << b;
                    }
                    out.push(v);
                }
                bytes = rest;
            } else {
                let mut v = [0u8; 4];
                v[..width].copy_from_slice(&bytes[..width]);
                bytes = &bytes[width..];
                out.extend(std::iter::repeat_n(
                    u32::from_le_bytes(v),
                    (header >> 1) as usize,
                ));
            }
        }
        out.truncate(n);
        (out, bytes)
    }

    #[test]
    fn bit_widths() {
        assert_eq!(bit_width(0), 0);
        assert_eq!(bit_width(1), 1);
        assert_eq!(bit_width(2), 2);
        assert_eq!(bit_width(255), 8);
        assert_eq!(bit_width(256), 9);
    }
}
