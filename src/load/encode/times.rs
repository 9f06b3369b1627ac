//! The `ts` column chunk of a metrics file, DELTA_BINARY_PACKED straight from the rows'
//! timestamps.
//!
//! arrow-rs wrote this column from an Arrow array built for each batch, through its levels and a
//! generic delta encoder, at a share of the exporter's CPU out of all proportion to the column's
//! share of the file (docs/measurements.md). The rows of a
//! series on a regular grid (what OpenTSDB gives) differ by the step, so nearly every miniblock of
//! deltas is all the same and takes bit width 0: nothing to pack. A block that crosses from one
//! series to the next (the timestamps start over) packs its deltas in full, as any writer must.
//!
//! The chunk is what arrow-rs writes for a required INT64 column: data pages (v1) of
//! DELTA_BINARY_PACKED values (blocks of 128 deltas in 4 miniblocks), cut at the writer's row
//! count limit; min/max statistics; an offset index, and a column index when statistics are
//! asked for per page.

use bytes::Bytes;
use parquet::basic::{BoundaryOrder, Encoding, Type as PhysicalType};
use parquet::column::writer::ColumnCloseResult;
use parquet::errors::{ParquetError, Result};
use parquet::file::metadata::ColumnIndexBuilder;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::statistics::{Statistics, ValueStatistics};
use parquet::schema::types::ColumnDescPtr;

use super::{assemble_chunk, put_uleb128, ChunkPage};

/// Deltas per block, and per miniblock (the values arrow-rs and the format's example use).
const BLOCK: usize = 128;
const MINIBLOCK: usize = 32;

/// The `ts` chunk of one row group.
#[derive(Debug)]
pub(crate) struct TsChunk {
    descr: ColumnDescPtr,
    /// The column's units in a millisecond, the rows' unit ([`super::per_millisecond`]).
    per_ms: i64,
    page_rows: usize,
    /// The open page's timestamps.
    open: Vec<i64>,
    pages: Vec<ChunkPage>,
    /// Each closed page's (min, max), for the statistics and the column index.
    bounds: Vec<(i64, i64)>,
    /// Rows in the pages closed so far.
    rows: u64,
    scratch: Vec<u8>,
}

impl TsChunk {
    pub(crate) fn new(descr: ColumnDescPtr, props: &WriterProperties) -> Result<TsChunk> {
        if descr.physical_type() != PhysicalType::INT64
            || descr.max_def_level() != 0
            || descr.max_rep_level() != 0
        {
            return Err(ParquetError::General(format!(
                "column {} is not a required flat INT64 column",
                descr.path()
            )));
        }
        Ok(TsChunk {
            per_ms: super::per_millisecond(&descr),
            page_rows: props.column_data_page_row_count_limit(descr.path()).max(1),
            open: Vec::new(),
            pages: Vec::new(),
            bounds: Vec::new(),
            rows: 0,
            scratch: Vec::new(),
            descr,
        })
    }

    /// Appends the timestamps of the next rows.
    pub(crate) fn push(
        &mut self,
        ts: &[i64],
        zstd: &mut zstd::bulk::Compressor<'static>,
    ) -> Result<()> {
        let mut rest = ts;
        while !rest.is_empty() {
            let room = self.page_rows - self.open.len();
            let (now, later) = rest.split_at(room.min(rest.len()));
            if self.per_ms == 1 {
                self.open.extend_from_slice(now);
            } else {
                let per_ms = self.per_ms;
                self.open
                    .extend(now.iter().map(|t| t.saturating_mul(per_ms)));
            }
            rest = later;
            if self.open.len() >= self.page_rows {
                self.flush(zstd)?;
            }
        }
        Ok(())
    }

    fn flush(&mut self, zstd: &mut zstd::bulk::Compressor<'static>) -> Result<()> {
        if self.open.is_empty() {
            return Ok(());
        }
        self.scratch.clear();
        let bounds = encode_deltas(&self.open, &mut self.scratch);
        let buf = zstd
            .compress(&self.scratch)
            .map_err(|e| ParquetError::External(Box::new(e)))?;
        self.pages.push(ChunkPage {
            buf: Bytes::from(buf),
            uncompressed: self.scratch.len(),
            num_values: self.open.len() as u32,
            encoding: Encoding::DELTA_BINARY_PACKED,
            first_row: self.rows as i64,
        });
        self.bounds.push(bounds);
        self.rows += self.open.len() as u64;
        self.open.clear();
        Ok(())
    }

    /// The chunk's bytes and what the row group needs to know; the chunk is empty afterwards,
    /// ready for the next row group.
    pub(crate) fn finish(
        &mut self,
        props: &WriterProperties,
        zstd: &mut zstd::bulk::Compressor<'static>,
    ) -> Result<(Bytes, ColumnCloseResult)> {
        self.flush(zstd)?;
        let level = props.statistics_enabled(self.descr.path());
        let statistics = (level != EnabledStatistics::None).then(|| {
            let lo = self.bounds.iter().map(|b| b.0).min();
            let hi = self.bounds.iter().map(|b| b.1).max();
            // The legacy `min`/`max` fields too, as arrow-rs writes them for a signed column:
            // readers that predate `min_value`/`max_value` prune on them.
            Statistics::Int64(
                ValueStatistics::new(lo, hi, None, Some(0), false)
                    .with_backwards_compatible_min_max(true),
            )
        });
        let column_index = if level == EnabledStatistics::Page {
            let mut index = ColumnIndexBuilder::new(PhysicalType::INT64);
            for &(lo, hi) in &self.bounds {
                index.append(
                    false,
                    lo.to_le_bytes().to_vec(),
                    hi.to_le_bytes().to_vec(),
                    0,
                    None,
                );
            }
            // Rows are sorted by entity first, so pages' times are in no order.
            index.set_boundary_order(BoundaryOrder::UNORDERED);
            Some(index.build()?)
        } else {
            None
        };
        let out = assemble_chunk(
            &self.descr,
            props,
            self.rows,
            None,
            &self.pages,
            statistics,
            column_index,
        );
        self.pages.clear();
        self.bounds.clear();
        self.rows = 0;
        out
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// `values` (at least one) as DELTA_BINARY_PACKED: the header (block size, miniblocks per block,
/// value count, first value), then per block of deltas its minimum and, per miniblock, the bit
/// width and the deltas less the minimum, bit-packed (the last miniblock padded with zeros; the
/// miniblocks past the last delta have width 0 and no bytes). Deltas wrap, as the format's
/// arithmetic does, so any timestamps round-trip. Returns the values' (min, max).
fn encode_deltas(values: &[i64], out: &mut Vec<u8>) -> (i64, i64) {
    put_uleb128(out, BLOCK as u64);
    put_uleb128(out, (BLOCK / MINIBLOCK) as u64);
    put_uleb128(out, values.len() as u64);
    put_uleb128(out, zigzag(values[0]));
    let mut deltas = [0i64; BLOCK];
    let mut prev = values[0];
    let (mut lo, mut hi) = (prev, prev);
    for block in values[1..].chunks(BLOCK) {
        let before = prev;
        for (d, &v) in deltas.iter_mut().zip(block) {
            *d = v.wrapping_sub(prev);
            prev = v;
        }
        let deltas = &deltas[..block.len()];
        let step = deltas[0];
        let steady = deltas.iter().all(|&d| d == step)
            && (deltas.len() as i64)
                .checked_mul(step)
                .and_then(|span| before.checked_add(span))
                == Some(prev);
        if steady {
            // One step all along and no wrap (a series on its grid): the ends are the bounds,
            // and every miniblock has width 0.
            lo = lo.min(prev);
            hi = hi.max(prev);
            put_uleb128(out, zigzag(step));
            out.extend_from_slice(&[0; BLOCK / MINIBLOCK]);
            continue;
        }
        for &v in block {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        let min = deltas.iter().copied().min().unwrap_or(0);
        put_uleb128(out, zigzag(min));
        let widths = out.len();
        out.extend_from_slice(&[0; BLOCK / MINIBLOCK]);
        for (m, mini) in deltas.chunks(MINIBLOCK).enumerate() {
            let max = mini
                .iter()
                .map(|&d| d.wrapping_sub(min) as u64)
                .max()
                .unwrap_or(0);
            let width = 64 - max.leading_zeros();
            out[widths + m] = width as u8;
            if width > 0 {
                pack64(out, mini.iter().map(|&d| d.wrapping_sub(min) as u64), width);
            }
        }
    }
    (lo, hi)
}

/// One miniblock: `MINIBLOCK` values of `width` bits (1 to 64), lowest bit first, padded with
/// zeros past the values given.
fn pack64(out: &mut Vec<u8>, values: impl Iterator<Item = u64>, width: u32) {
    let mut acc: u128 = 0;
    let mut bits = 0;
    let padded = values.chain(std::iter::repeat(0)).take(MINIBLOCK);
    for v in padded {
        acc |= u128::from(v) << bits;
        bits += width;
        while bits >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            bits -= 8;
        }
    }
    // 32 values of any width fill whole bytes.
    debug_assert_eq!(bits, 0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow::array::{Array, Int64Array};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::basic::{Compression, Repetition};

    use crate::load::encode::tests::one_column_file;

    /// A file of one required INT64 column `ts`, written through [`TsChunk`] in row groups of
    /// the given pushes, read back through arrow-rs.
    fn round_trip(groups: &[Vec<&[i64]>], page_rows: usize) -> (Vec<i64>, Bytes) {
        let props = Arc::new(
            WriterProperties::builder()
                .set_compression(Compression::ZSTD(Default::default()))
                .set_data_page_row_count_limit(page_rows)
                .set_statistics_enabled(EnabledStatistics::Page)
                .build(),
        );
        let mut file = one_column_file("ts", PhysicalType::INT64, Repetition::REQUIRED, &props);
        let descr = file.schema_descr().column(0);
        let mut chunk = TsChunk::new(descr, &props).unwrap();
        let mut zstd = zstd::bulk::Compressor::new(1).unwrap();
        for pushes in groups {
            for ts in pushes {
                chunk.push(ts, &mut zstd).unwrap();
            }
            let (bytes, close) = chunk.finish(&props, &mut zstd).unwrap();
            let mut group = file.next_row_group().unwrap();
            group.append_column(&bytes, close).unwrap();
            group.close().unwrap();
        }
        let bytes = Bytes::from(file.into_inner().unwrap());
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes.clone())
            .unwrap()
            .build()
            .unwrap();
        let mut got = Vec::new();
        for batch in reader {
            let batch = batch.unwrap();
            let col = batch
                .column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap();
            assert_eq!(col.null_count(), 0);
            got.extend(col.values().iter().copied());
        }
        (got, bytes)
    }

    #[test]
    fn timestamps_of_any_shape_read_back_exactly() {
        // Series on a minute grid that start over (the delta goes back a day), a gap, extremes
        // whose deltas wrap, and lengths around the block and miniblock sizes.
        let mut grid: Vec<i64> = Vec::new();
        for series in 0..5 {
            let start = 1_759_276_800_000 + series * 7;
            grid.extend((0..1_440).map(|i| start + i * 60_000));
        }
        grid.remove(700);
        let extremes = [i64::MAX, i64::MIN, 0, -1, i64::MAX, 1, i64::MIN + 1];
        let ramp: Vec<i64> = (0..300).map(|i| i * i * 1_000 - 77).collect();
        for n in [1usize, 2, 31, 32, 33, 128, 129, 130, 257] {
            let (got, _) = round_trip(&[vec![&ramp[..n]]], 20_000);
            assert_eq!(got, &ramp[..n], "{n} values");
        }
        let (got, _) = round_trip(
            &[vec![&grid[..1_000], &grid[1_000..]], vec![&extremes]],
            1_000,
        );
        let mut want = grid.clone();
        want.extend(extremes);
        assert_eq!(got, want);
    }

    #[test]
    fn a_steady_step_that_wraps_around_is_not_taken_for_a_grid() {
        // Every delta is 5 in wrapping arithmetic, but the values pass i64::MAX and start over
        // from i64::MIN: the bounds are the extremes, not the ends.
        let wrapping: Vec<i64> = (0..200)
            .map(|i: i64| (i64::MAX - 500).wrapping_add(i * 5))
            .collect();
        let (got, bytes) = round_trip(&[vec![&wrapping]], 20_000);
        assert_eq!(got, wrapping);
        let file = parquet::file::serialized_reader::SerializedFileReader::new(bytes).unwrap();
        use parquet::file::reader::FileReader;
        let Some(Statistics::Int64(s)) = file.metadata().row_group(0).column(0).statistics() else {
            panic!("no statistics");
        };
        let (lo, hi) = (
            wrapping.iter().min().unwrap(),
            wrapping.iter().max().unwrap(),
        );
        assert!(*lo < -(1 << 62) && *hi > 1 << 62);
        assert_eq!((s.min_opt(), s.max_opt()), (Some(lo), Some(hi)));
    }

    #[test]
    fn statistics_and_the_page_index_follow_the_timestamps() {
        let ts: Vec<i64> = (0..2_500).map(|i| 1_000_000 - (i % 1_000) * 60).collect();
        let (_, bytes) = round_trip(&[vec![&ts]], 1_000);
        let options = parquet::file::serialized_reader::ReadOptionsBuilder::new()
            .with_page_index()
            .build();
        let file = parquet::file::serialized_reader::SerializedFileReader::new_with_options(
            bytes, options,
        )
        .unwrap();
        use parquet::file::reader::FileReader;
        let meta = file.metadata();
        let Some(Statistics::Int64(s)) = meta.row_group(0).column(0).statistics() else {
            panic!("no statistics");
        };
        assert_eq!(
            (s.min_opt(), s.max_opt()),
            (Some(&(1_000_000 - 999 * 60)), Some(&1_000_000))
        );
        let page_index = meta.page_index_for_row_group(0);
        let pages = &page_index.offset_index(0).unwrap().page_locations;
        let first_rows: Vec<i64> = pages.iter().map(|p| p.first_row_index).collect();
        assert_eq!(first_rows, [0, 1_000, 2_000]);
        match page_index.column_index(0).unwrap() {
            parquet::file::page_index::column_index::ColumnIndexMetaData::INT64(index) => {
                let bounds: Vec<(i64, i64)> = index
                    .min_values()
                    .iter()
                    .copied()
                    .zip(index.max_values().iter().copied())
                    .collect();
                let low = 1_000_000 - 999 * 60;
                assert_eq!(
                    bounds,
                    [
                        (low, 1_000_000),
                        (low, 1_000_000),
                        (low + 500 * 60, 1_000_000)
                    ]
                );
            }
            other => panic!("column index {other:?}"),
        }
    }
}
