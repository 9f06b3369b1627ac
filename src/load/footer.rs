//! The footer every reader can use: the column order older readers know, and floating-point
//! statistics that follow its rules.
//!
//! arrow-rs (`parquet` 60) declares every FLOAT/DOUBLE leaf with the `IEEE_754_TOTAL_ORDER` column
//! order and computes its min/max in that order, with no writer setting to do otherwise. Readers
//! released before that order existed cannot use it: polars before 1.43 fails to open the file,
//! pyarrow 25–26 and parquet-java (Spark) drop the `value` statistics and so cannot prune on them.
//! So once a file is written, and before it is made durable and renamed into place, [`settle`]
//! rewrites its footer in place to declare `TYPE_DEFINED_ORDER` for those leaves, and makes their
//! min/max follow that order's rules: a zero minimum is written as `-0.0` and a zero maximum as
//! `+0.0`, in the chunk statistics and in the column index alike. `nan_count` is kept: it is
//! optional under the type-defined order, and a reader that knows it uses it.
//!
//! Every change keeps the encoded length (a union's field id in one byte, eight bytes of a
//! double), so no offset recorded anywhere in the file moves. The walk reads Thrift's compact
//! protocol as the format defines it and refuses anything it does not recognise, rather than
//! guess: a refused file is never committed.
//!
//! What this relies on from arrow-rs, to check on an upgrade (the tests below fail if it changes):
//! the footer is `FileMetaData` in the compact protocol followed by its length and `PAR1`; the
//! column orders are written for every leaf; page statistics are not written into page headers
//! (`EnabledStatistics::Page` fills the column index, not the headers).

use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;

/// Physical types, as the format numbers them.
const FLOAT: i32 = 4;
const DOUBLE: i32 = 5;

/// Compact-protocol element types.
const STOP: u8 = 0;
const TRUE: u8 = 1;
const FALSE: u8 = 2;
const BYTE: u8 = 3;
const I16: u8 = 4;
const I32: u8 = 5;
const I64: u8 = 6;
const DOUBLE_T: u8 = 7;
const BINARY: u8 = 8;
const LIST: u8 = 9;
const SET: u8 = 10;
const MAP: u8 = 11;
const STRUCT: u8 = 12;
const UUID: u8 = 13;

/// A `ColumnOrder` union member as arrow-rs writes it: field 2 (`IEEE_754_TOTAL_ORDER`, an empty
/// struct) in the short form, and field 1 (`TYPE_ORDER`) in its place.
const TOTAL_ORDER_FIELD: u8 = (2 << 4) | STRUCT;
const TYPE_ORDER_FIELD: u8 = (1 << 4) | STRUCT;

/// Nesting deeper than any Parquet footer has: a corrupt file cannot recurse without bound.
const MAX_DEPTH: usize = 32;

/// Why a footer could not be settled.
#[derive(Debug, thiserror::Error)]
pub enum FooterError {
    #[error("cannot read or rewrite the footer")]
    Io(#[from] std::io::Error),
    #[error("unexpected footer: {0}")]
    Format(String),
}

fn bad(message: impl Into<String>) -> FooterError {
    FooterError::Format(message.into())
}

/// Whether a leaf of this physical type has floating-point statistics.
fn is_float(physical: i32) -> bool {
    physical == FLOAT || physical == DOUBLE
}

/// Rewrites the footer of the Parquet file `file` (open for reading and writing, fully written)
/// as described in the module docs. Leaves the file position unspecified. `file` may be the tail
/// of a file (an upload's last part, from the end of its row groups): it is read and written at
/// the offsets the whole file has, and a seek before its start is an error.
pub fn settle<F: Read + Write + Seek>(file: &mut F) -> Result<(), FooterError> {
    let len = file.seek(SeekFrom::End(0))?;
    if len < 12 {
        return Err(bad("file shorter than a Parquet header and footer"));
    }
    let mut tail = [0u8; 8];
    file.seek(SeekFrom::Start(len - 8))?;
    file.read_exact(&mut tail)?;
    if &tail[4..] != b"PAR1" {
        return Err(bad("no PAR1 at the end (an encrypted footer?)"));
    }
    let footer_len = u64::from(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]));
    let footer_start = len
        .checked_sub(8 + footer_len)
        .ok_or_else(|| bad("footer length past the start of the file"))?;
    let mut footer = vec![0u8; footer_len as usize];
    file.seek(SeekFrom::Start(footer_start))?;
    file.read_exact(&mut footer)?;

    let found = walk_file_metadata(&footer)?;
    let mut footer_changed = false;
    for at in &found.float_orders {
        footer[*at] = TYPE_ORDER_FIELD;
        footer_changed = true;
    }
    for bound in &found.float_bounds {
        footer_changed |= type_defined_zero(&mut footer[bound.range.clone()], bound.min);
    }
    for index in &found.float_indexes {
        let end = index
            .offset
            .checked_add(index.length)
            .filter(|&end| end <= footer_start)
            .ok_or_else(|| bad("column index outside the file's data"))?;
        let mut bytes = vec![0u8; (end - index.offset) as usize];
        file.seek(SeekFrom::Start(index.offset))?;
        file.read_exact(&mut bytes)?;
        let mut changed = false;
        for bound in walk_column_index(&bytes)? {
            changed |= type_defined_zero(&mut bytes[bound.range], bound.min);
        }
        if changed {
            file.seek(SeekFrom::Start(index.offset))?;
            file.write_all(&bytes)?;
        }
    }
    if footer_changed {
        file.seek(SeekFrom::Start(footer_start))?;
        file.write_all(&footer)?;
    }
    Ok(())
}

/// Applies the type-defined order's writing rule to one encoded float bound: a zero minimum is
/// `-0.0`, a zero maximum `+0.0`. Returns whether it changed. Bounds of other widths (an empty
/// one for an all-null page) are left alone. A NaN bound stays: arrow-rs writes one only when
/// every value is NaN, and readers are told to ignore a NaN bound.
fn type_defined_zero(bytes: &mut [u8], min: bool) -> bool {
    let sign = bytes.len().checked_sub(1);
    let is_zero = bytes
        .split_last()
        .is_some_and(|(last, rest)| last & 0x7f == 0 && rest.iter().all(|&b| b == 0));
    match sign {
        Some(sign) if is_zero && (bytes.len() == 4 || bytes.len() == 8) => {
            let want = if min { 0x80 } else { 0x00 };
            let changed = bytes[sign] != want;
            bytes[sign] = want;
            changed
        }
        _ => false,
    }
}

/// A float min or max found in the encoded metadata.
#[derive(Debug)]
struct Bound {
    range: Range<usize>,
    min: bool,
}

/// A float column's column index, where the file has one.
#[derive(Debug)]
struct IndexAt {
    offset: u64,
    length: u64,
}

/// What the footer holds that [`settle`] changes.
#[derive(Debug, Default)]
struct Found {
    /// Positions of the union field headers of float leaves' `IEEE_754_TOTAL_ORDER`.
    float_orders: Vec<usize>,
    /// Float chunks' statistics bounds (`min`/`max` and `min_value`/`max_value`).
    float_bounds: Vec<Bound>,
    float_indexes: Vec<IndexAt>,
}

fn walk_file_metadata(footer: &[u8]) -> Result<Found, FooterError> {
    let mut r = Reader::new(footer);
    let mut leaf_types: Vec<i32> = Vec::new();
    let mut found = Found::default();
    let mut orders: Option<Vec<(usize, u8)>> = None;
    r.fields(|r, id, ty| match (id, ty) {
        (2, LIST) => {
            // The schema, depth first: leaves are the elements with a physical type.
            for _ in 0..r.list_of(STRUCT)? {
                let mut physical = None;
                r.fields(|r, id, ty| match (id, ty) {
                    (1, I32) => {
                        physical = Some(r.int()? as i32);
                        Ok(())
                    }
                    _ => r.skip(ty),
                })?;
                leaf_types.extend(physical);
            }
            Ok(())
        }
        (4, LIST) => {
            for _ in 0..r.list_of(STRUCT)? {
                walk_row_group(r, &mut found)?;
            }
            Ok(())
        }
        (7, LIST) => {
            let mut members = Vec::new();
            for _ in 0..r.list_of(STRUCT)? {
                let at = r.pos;
                let header = r.byte()?;
                members.push((at, header));
                r.pos = at;
                r.skip(STRUCT)?;
            }
            orders = Some(members);
            Ok(())
        }
        _ => r.skip(ty),
    })?;
    if r.pos != footer.len() {
        return Err(bad("bytes after the file metadata"));
    }
    if let Some(orders) = orders {
        if orders.len() != leaf_types.len() {
            return Err(bad(format!(
                "{} column orders for {} leaves",
                orders.len(),
                leaf_types.len()
            )));
        }
        for ((at, header), physical) in orders.into_iter().zip(&leaf_types) {
            if is_float(*physical) && header == TOTAL_ORDER_FIELD {
                found.float_orders.push(at);
            }
        }
    }
    Ok(found)
}

fn walk_row_group(r: &mut Reader<'_>, found: &mut Found) -> Result<(), FooterError> {
    r.fields(|r, id, ty| match (id, ty) {
        (1, LIST) => {
            for _ in 0..r.list_of(STRUCT)? {
                walk_column_chunk(r, found)?;
            }
            Ok(())
        }
        _ => r.skip(ty),
    })
}

fn walk_column_chunk(r: &mut Reader<'_>, found: &mut Found) -> Result<(), FooterError> {
    let mut physical = None;
    let mut bounds = Vec::new();
    let (mut index_offset, mut index_length) = (None, None);
    r.fields(|r, id, ty| match (id, ty) {
        (3, STRUCT) => r.fields(|r, id, ty| match (id, ty) {
            (1, I32) => {
                physical = Some(r.int()? as i32);
                Ok(())
            }
            (12, STRUCT) => r.fields(|r, id, ty| match (id, ty) {
                // max, min (legacy), max_value, min_value.
                (1 | 2 | 5 | 6, BINARY) => {
                    let range = r.binary()?;
                    bounds.push(Bound {
                        range,
                        min: id == 2 || id == 6,
                    });
                    Ok(())
                }
                _ => r.skip(ty),
            }),
            _ => r.skip(ty),
        }),
        (6, I64) => {
            index_offset = Some(r.int()?);
            Ok(())
        }
        (7, I32) => {
            index_length = Some(r.int()?);
            Ok(())
        }
        _ => r.skip(ty),
    })?;
    if physical.is_some_and(is_float) {
        found.float_bounds.extend(bounds);
        if let (Some(offset), Some(length)) = (index_offset, index_length) {
            let (Ok(offset), Ok(length)) = (u64::try_from(offset), u64::try_from(length)) else {
                return Err(bad("negative column index location"));
            };
            found.float_indexes.push(IndexAt { offset, length });
        }
    }
    Ok(())
}

/// The bounds of a `ColumnIndex`: `min_values` (field 2) and `max_values` (field 3).
fn walk_column_index(bytes: &[u8]) -> Result<Vec<Bound>, FooterError> {
    let mut r = Reader::new(bytes);
    let mut bounds = Vec::new();
    r.fields(|r, id, ty| match (id, ty) {
        (2 | 3, LIST) => {
            for _ in 0..r.list_of(BINARY)? {
                let range = r.binary()?;
                bounds.push(Bound {
                    range,
                    min: id == 2,
                });
            }
            Ok(())
        }
        _ => r.skip(ty),
    })?;
    if r.pos != bytes.len() {
        return Err(bad("bytes after a column index"));
    }
    Ok(bounds)
}

/// A reader of Thrift's compact protocol that records where things are.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    depth: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader {
            buf,
            pos: 0,
            depth: 0,
        }
    }

    fn byte(&mut self) -> Result<u8, FooterError> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or_else(|| bad("metadata cut short"))?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<Range<usize>, FooterError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.buf.len())
            .ok_or_else(|| bad("metadata cut short"))?;
        let range = self.pos..end;
        self.pos = end;
        Ok(range)
    }

    fn varint(&mut self) -> Result<u64, FooterError> {
        let mut out = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            out |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(out);
            }
        }
        Err(bad("varint longer than 64 bits"))
    }

    /// An i16, i32 or i64 (zigzag varint).
    fn int(&mut self) -> Result<i64, FooterError> {
        let v = self.varint()?;
        Ok((v >> 1) as i64 ^ -((v & 1) as i64))
    }

    fn binary(&mut self) -> Result<Range<usize>, FooterError> {
        let n = usize::try_from(self.varint()?).map_err(|_| bad("binary too long"))?;
        self.take(n)
    }

    /// A list or set header: its size and element type.
    fn list(&mut self) -> Result<(usize, u8), FooterError> {
        let header = self.byte()?;
        let size = match header >> 4 {
            15 => usize::try_from(self.varint()?).map_err(|_| bad("list too long"))?,
            n => usize::from(n),
        };
        Ok((size, header & 0x0f))
    }

    /// A list header whose elements must be of type `element`: the size.
    fn list_of(&mut self, element: u8) -> Result<usize, FooterError> {
        let (size, ty) = self.list()?;
        // Booleans in a list are one byte each and typed either way.
        let same = ty == element || (element == TRUE && ty == FALSE);
        if size > 0 && !same {
            return Err(bad(format!(
                "list of type {ty} where {element} was expected"
            )));
        }
        Ok(size)
    }

    /// A struct's fields until its stop byte, each handed to `field` with its id and type;
    /// `field` must consume the value.
    fn fields(
        &mut self,
        mut field: impl FnMut(&mut Self, i16, u8) -> Result<(), FooterError>,
    ) -> Result<(), FooterError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(bad("metadata nested too deep"));
        }
        let mut last = 0i16;
        loop {
            let header = self.byte()?;
            let ty = header & 0x0f;
            if ty == STOP {
                break;
            }
            let id = match header >> 4 {
                0 => i16::try_from(self.int()?).map_err(|_| bad("field id out of range"))?,
                delta => last
                    .checked_add(i16::from(delta))
                    .ok_or_else(|| bad("field id out of range"))?,
            };
            last = id;
            field(self, id, ty)?;
        }
        self.depth -= 1;
        Ok(())
    }

    /// Skips a value of type `ty`.
    fn skip(&mut self, ty: u8) -> Result<(), FooterError> {
        match ty {
            TRUE | FALSE => Ok(()),
            BYTE => self.take(1).map(drop),
            I16 | I32 | I64 => self.varint().map(drop),
            DOUBLE_T => self.take(8).map(drop),
            BINARY => self.binary().map(drop),
            UUID => self.take(16).map(drop),
            LIST | SET => {
                let (size, element) = self.list()?;
                for _ in 0..size {
                    match element {
                        // A boolean element is a byte of its own.
                        TRUE | FALSE => self.take(1).map(drop)?,
                        _ => self.skip(element)?,
                    }
                }
                Ok(())
            }
            MAP => {
                let size = self.varint()?;
                if size == 0 {
                    return Ok(());
                }
                let types = self.byte()?;
                for _ in 0..size {
                    self.skip(types >> 4)?;
                    self.skip(types & 0x0f)?;
                }
                Ok(())
            }
            STRUCT => self.fields(|r, _, ty| r.skip(ty)),
            other => Err(bad(format!("unknown Thrift type {other}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow::array::{Float64Array, Int64Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Schema};
    use parquet::arrow::ArrowWriter;
    use parquet::basic::{ColumnOrder, SortOrder};
    use parquet::file::metadata::ParquetMetaDataReader;
    use parquet::file::page_index::column_index::ColumnIndexMetaData;
    use parquet::file::properties::{EnabledStatistics, WriterProperties};
    use parquet::file::statistics::Statistics;

    /// A file of `values` (and an INT64 column beside), written by arrow-rs with page statistics
    /// and small pages, then settled.
    fn written(values: &[Option<f64>], settle_it: bool) -> std::fs::File {
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, false),
            Field::new("value", DataType::Float64, true),
        ]));
        let n = Int64Array::from_iter_values(0..values.len() as i64);
        let v = Float64Array::from(values.to_vec());
        let batch =
            RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(n), Arc::new(v)]).unwrap();
        let props = WriterProperties::builder()
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_data_page_row_count_limit(2)
            .set_write_batch_size(2)
            .set_dictionary_enabled(false)
            .build();
        let mut file = tempfile::tempfile().unwrap();
        let mut writer =
            ArrowWriter::try_new(file.try_clone().unwrap(), schema, Some(props)).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        if settle_it {
            settle(&mut file).unwrap();
        }
        file
    }

    fn metadata(file: &std::fs::File) -> parquet::file::metadata::ParquetMetaData {
        ParquetMetaDataReader::new()
            .with_page_index_policy(parquet::file::metadata::PageIndexPolicy::Required)
            .parse_and_finish(&file.try_clone().unwrap())
            .unwrap()
    }

    fn double_bounds(meta: &parquet::file::metadata::ParquetMetaData) -> (f64, f64) {
        let Some(Statistics::Double(s)) = meta.row_group(0).column(1).statistics() else {
            panic!("no double statistics");
        };
        (*s.min_opt().unwrap(), *s.max_opt().unwrap())
    }

    #[test]
    fn arrow_rs_still_writes_the_total_order_this_module_rewrites() {
        // If an upgrade makes arrow-rs write the type-defined order itself, this module can go.
        let file = written(&[Some(1.0), Some(2.0)], false);
        let orders = metadata(&file)
            .file_metadata()
            .column_orders()
            .unwrap()
            .clone();
        assert_eq!(orders[1], ColumnOrder::IEEE_754_TOTAL_ORDER);
    }

    #[test]
    fn float_leaves_declare_the_type_defined_order_and_others_keep_theirs() {
        let file = written(&[Some(1.5), None, Some(-2.25)], true);
        let meta = metadata(&file);
        let orders = meta.file_metadata().column_orders().unwrap();
        assert_eq!(
            orders[0],
            ColumnOrder::TYPE_DEFINED_ORDER(SortOrder::SIGNED)
        );
        assert_eq!(
            orders[1],
            ColumnOrder::TYPE_DEFINED_ORDER(SortOrder::SIGNED)
        );
        // Non-zero bounds, null and NaN counts are as written.
        assert_eq!(double_bounds(&meta), (-2.25, 1.5));
        let Some(Statistics::Double(s)) = meta.row_group(0).column(1).statistics() else {
            panic!()
        };
        assert_eq!(s.null_count_opt(), Some(1));
        assert_eq!(s.nan_count_opt(), Some(0));
    }

    #[test]
    fn zero_bounds_follow_the_type_defined_rules_in_statistics_and_column_index() {
        // Only +0.0 as the smallest value, only -0.0 as the largest.
        let cases: [(&[Option<f64>], u64, u64); 3] = [
            (
                &[Some(0.0), Some(3.0)],
                (-0.0f64).to_bits(),
                3.0f64.to_bits(),
            ),
            (
                &[Some(-0.0), Some(-3.0)],
                (-3.0f64).to_bits(),
                0.0f64.to_bits(),
            ),
            (
                &[Some(0.0), Some(-0.0)],
                (-0.0f64).to_bits(),
                0.0f64.to_bits(),
            ),
        ];
        for (values, min, max) in cases {
            let meta = metadata(&written(values, true));
            let (lo, hi) = double_bounds(&meta);
            assert_eq!((lo.to_bits(), hi.to_bits()), (min, max), "{values:?}");
            let page_index = meta.page_index_for_row_group(0);
            let index = page_index.column_index(1).unwrap();
            let ColumnIndexMetaData::DOUBLE(index) = index else {
                panic!("no double column index: {index:?}")
            };
            let page_min = index.min_values()[0];
            let page_max = index.max_values()[0];
            assert_eq!(
                (page_min.to_bits(), page_max.to_bits()),
                (min, max),
                "page bounds of {values:?}"
            );
        }
    }

    #[test]
    fn values_read_back_unchanged() {
        let values = [
            Some(0.0),
            Some(-0.0),
            None,
            Some(f64::MAX),
            Some(f64::MIN_POSITIVE),
        ];
        let file = written(&values, true);
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        let batch = reader.map(Result::unwrap).next().unwrap();
        let back = batch
            .column(1)
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap();
        let bits: Vec<Option<u64>> = back.iter().map(|v| v.map(f64::to_bits)).collect();
        let want: Vec<Option<u64>> = values.iter().map(|v| v.map(f64::to_bits)).collect();
        assert_eq!(bits, want);
    }

    #[test]
    fn garbage_is_refused_not_patched() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"PAR1 not a footer \x05\x00\x00\x00PAR1")
            .unwrap();
        assert!(matches!(settle(&mut file), Err(FooterError::Format(_))));
        let mut short = tempfile::tempfile().unwrap();
        short.write_all(b"PAR1").unwrap();
        assert!(settle(&mut short).is_err());
    }
}
