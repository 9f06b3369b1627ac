//! Column builders for tables whose rows come in runs: most columns of a metrics row are the same
//! for every point of a series (service, datacenter, entity, joined inventory), so a value is
//! appended `n` times at once and the buffers are filled with plain copies. Nothing here
//! allocates per row beyond the growth of the column buffers themselves.

use std::sync::Arc;

use arrow::array::NullBufferBuilder;
use arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, MapArray, StringArray, StructArray,
    TimestampMillisecondArray,
};
use arrow::buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, TimeUnit};
use arrow::error::ArrowError;

/// One value of a column for one row or a run of rows.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    /// Shared: the series of one VM (a dozen metrics) hold its strings once.
    Str(Option<Arc<str>>),
    I64(Option<i64>),
    F64(Option<f64>),
    Bool(Option<bool>),
    /// Milliseconds since the epoch, for `Timestamp(Millisecond, "UTC")` columns.
    Ts(i64),
    /// The entries of a `tags` map, sorted by key; shared by the series that have the same.
    Tags(Arc<[(String, String)]>),
    /// A column filled point by point (`ts`, `value`) rather than per series.
    Point,
}

impl Cell {
    pub(crate) fn str(value: Option<&str>) -> Cell {
        Cell::Str(value.map(Arc::from))
    }
}

/// Offsets and bytes of a `Utf8` column being built.
#[derive(Debug)]
pub(crate) struct StrBuf {
    offsets: Vec<i32>,
    bytes: Vec<u8>,
    nulls: NullBufferBuilder,
}

impl StrBuf {
    pub(crate) fn with_capacity(rows: usize) -> StrBuf {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        StrBuf {
            offsets,
            bytes: Vec::new(),
            nulls: NullBufferBuilder::new(rows),
        }
    }

    /// Appends `value` `n` times.
    pub(crate) fn repeat(&mut self, value: Option<&str>, n: usize) -> Result<(), ColumnError> {
        match value {
            None => {
                self.nulls.append_n_nulls(n);
                let last = self.offsets.last().copied().unwrap_or(0);
                self.offsets.extend(std::iter::repeat_n(last, n));
                Ok(())
            }
            Some(s) => {
                self.nulls.append_n_non_nulls(n);
                self.repeat_seq(&[s], n)
            }
        }
    }

    /// Appends the sequence `items` `n` times over (all valid). The bytes are written once and
    /// then doubled with `extend_from_within`, so a long run costs a few `memcpy`s rather than
    /// one copy per row; the offsets are plain arithmetic.
    pub(crate) fn repeat_seq(&mut self, items: &[&str], n: usize) -> Result<(), ColumnError> {
        if n == 0 || items.is_empty() {
            return Ok(());
        }
        let unit: usize = items.iter().map(|s| s.len()).sum();
        let start = self.bytes.len();
        let total = unit * n;
        if start + total > i32::MAX as usize {
            return Err(ColumnError::Overflow);
        }
        self.bytes.reserve(total);
        for s in items {
            self.bytes.extend_from_slice(s.as_bytes());
        }
        while self.bytes.len() - start < total {
            let have = self.bytes.len() - start;
            let take = have.min(total - have);
            self.bytes.extend_from_within(start..start + take);
        }
        // Both fit in i32: checked against `i32::MAX` above.
        let (base, unit) = (start as i32, unit as i32);
        self.offsets.reserve(items.len() * n);
        if let [single] = items {
            let len = single.len() as i32;
            self.offsets.extend((1..=n as i32).map(|i| base + i * len));
        } else {
            for r in 0..n as i32 {
                let mut end = base + r * unit;
                for s in items {
                    end += s.len() as i32;
                    self.offsets.push(end);
                }
            }
        }
        Ok(())
    }

    #[allow(
        unsafe_code,
        reason = "builds the array without validating it again; see SAFETY below"
    )]
    pub(crate) fn finish(mut self) -> Result<StringArray, ArrowError> {
        // `None` when no null was appended, as a not-null column needs.
        let nulls = self.nulls.finish();
        let rows = self.offsets.len() - 1;
        if nulls.as_ref().is_some_and(|n| n.len() != rows) {
            return Err(ArrowError::InvalidArgumentError(format!(
                "{} nulls for {rows} strings",
                nulls.map_or(0, |n| n.len())
            )));
        }
        // SAFETY: the offsets start at 0 (`with_capacity`) and every one appended is the
        // previous plus the byte length of a string appended at the same time (`repeat_seq`;
        // a null repeats the last offset), so they are non-decreasing and end at
        // `bytes.len()` <= `i32::MAX` (checked there). Every byte comes from a `&str`, so each
        // slice between two offsets is one whole `&str`: valid UTF-8, cut on char boundaries.
        // The null buffer has one entry per string (checked above). Validating again would
        // read every byte of every row once more.
        let array = unsafe {
            let offsets = OffsetBuffer::new_unchecked(ScalarBuffer::from(self.offsets));
            StringArray::new_unchecked(offsets, Buffer::from_vec(self.bytes), nulls)
        };
        Ok(array)
    }
}

/// Why a column could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ColumnError {
    #[error("a string column of one partition would exceed 2 GiB")]
    Overflow,
    #[error("no value of type {expected} for this column")]
    Mismatch { expected: &'static str },
    #[error(transparent)]
    Arrow(#[from] ArrowError),
}

/// A column being built, by Arrow type.
#[derive(Debug)]
pub(crate) enum ColumnBuilder {
    Str(StrBuf),
    I64(Vec<i64>, NullBufferBuilder),
    F64(Vec<f64>, NullBufferBuilder),
    Bool(Vec<bool>, NullBufferBuilder),
    Ts(Vec<i64>),
    Tags {
        offsets: Vec<i32>,
        keys: StrBuf,
        values: StrBuf,
    },
}

impl ColumnBuilder {
    /// A builder for a column of `data_type`, or `None` for a type no table uses.
    pub(crate) fn for_type(data_type: &DataType, rows: usize) -> Option<ColumnBuilder> {
        Some(match data_type {
            DataType::Utf8 => ColumnBuilder::Str(StrBuf::with_capacity(rows)),
            DataType::Int64 => {
                ColumnBuilder::I64(Vec::with_capacity(rows), NullBufferBuilder::new(rows))
            }
            DataType::Float64 => {
                ColumnBuilder::F64(Vec::with_capacity(rows), NullBufferBuilder::new(rows))
            }
            DataType::Boolean => {
                ColumnBuilder::Bool(Vec::with_capacity(rows), NullBufferBuilder::new(rows))
            }
            DataType::Timestamp(TimeUnit::Millisecond, _) => {
                ColumnBuilder::Ts(Vec::with_capacity(rows))
            }
            DataType::Map(_, _) => {
                let mut offsets = Vec::with_capacity(rows + 1);
                offsets.push(0);
                ColumnBuilder::Tags {
                    offsets,
                    keys: StrBuf::with_capacity(0),
                    values: StrBuf::with_capacity(0),
                }
            }
            _ => return None,
        })
    }

    /// Appends `cell` `n` times.
    pub(crate) fn repeat(&mut self, cell: &Cell, n: usize) -> Result<(), ColumnError> {
        match (self, cell) {
            (ColumnBuilder::Str(b), Cell::Str(v)) => b.repeat(v.as_deref(), n)?,
            (ColumnBuilder::I64(v, nulls), Cell::I64(x)) => repeat_opt(v, nulls, *x, n),
            (ColumnBuilder::F64(v, nulls), Cell::F64(x)) => {
                // NaN is "no value" everywhere in this exporter.
                repeat_opt(v, nulls, x.filter(|f| !f.is_nan()), n)
            }
            (ColumnBuilder::Bool(v, nulls), Cell::Bool(x)) => repeat_opt(v, nulls, *x, n),
            (ColumnBuilder::Ts(v), Cell::Ts(x)) => v.extend(std::iter::repeat_n(*x, n)),
            (
                ColumnBuilder::Tags {
                    offsets,
                    keys,
                    values,
                },
                Cell::Tags(tags),
            ) => {
                let mut end = offsets.last().copied().unwrap_or(0);
                if end as usize + tags.len() * n > i32::MAX as usize {
                    return Err(ColumnError::Overflow);
                }
                let k: Vec<&str> = tags.iter().map(|(k, _)| k.as_str()).collect();
                let v: Vec<&str> = tags.iter().map(|(_, v)| v.as_str()).collect();
                keys.repeat_seq(&k, n)?;
                values.repeat_seq(&v, n)?;
                keys.nulls.append_n_non_nulls(tags.len() * n);
                values.nulls.append_n_non_nulls(tags.len() * n);
                offsets.reserve(n);
                for _ in 0..n {
                    end += tags.len() as i32;
                    offsets.push(end);
                }
            }
            (b, _) => {
                return Err(ColumnError::Mismatch {
                    expected: b.type_name(),
                })
            }
        }
        Ok(())
    }

    fn type_name(&self) -> &'static str {
        match self {
            ColumnBuilder::Str(_) => "Utf8",
            ColumnBuilder::I64(..) => "Int64",
            ColumnBuilder::F64(..) => "Float64",
            ColumnBuilder::Bool(..) => "Boolean",
            ColumnBuilder::Ts(_) => "Timestamp",
            ColumnBuilder::Tags { .. } => "Map",
        }
    }

    /// The finished array, typed as `data_type` (which this builder was made for).
    pub(crate) fn finish(self, data_type: &DataType) -> Result<ArrayRef, ColumnError> {
        Ok(match self {
            ColumnBuilder::Str(b) => Arc::new(b.finish()?),
            ColumnBuilder::I64(v, mut nulls) => {
                Arc::new(Int64Array::try_new(ScalarBuffer::from(v), nulls.finish())?)
            }
            ColumnBuilder::F64(v, mut nulls) => Arc::new(Float64Array::try_new(
                ScalarBuffer::from(v),
                nulls.finish(),
            )?),
            ColumnBuilder::Bool(v, mut nulls) => {
                Arc::new(BooleanArray::new(v.into(), nulls.finish()))
            }
            ColumnBuilder::Ts(v) => {
                let tz = match data_type {
                    DataType::Timestamp(_, tz) => tz.clone(),
                    _ => None,
                };
                Arc::new(
                    TimestampMillisecondArray::try_new(ScalarBuffer::from(v), None)?
                        .with_timezone_opt(tz),
                )
            }
            ColumnBuilder::Tags {
                offsets,
                keys,
                values,
            } => {
                let DataType::Map(entries_field, sorted) = data_type else {
                    return Err(ColumnError::Mismatch { expected: "Map" });
                };
                let DataType::Struct(fields) = entries_field.data_type() else {
                    return Err(ColumnError::Mismatch { expected: "Map" });
                };
                let entries = StructArray::try_new(
                    fields.clone(),
                    vec![Arc::new(keys.finish()?), Arc::new(values.finish()?)],
                    None,
                )?;
                Arc::new(MapArray::try_new(
                    Arc::clone(entries_field),
                    OffsetBuffer::new(ScalarBuffer::from(offsets)),
                    entries,
                    None,
                    *sorted,
                )?)
            }
        })
    }
}

fn repeat_opt<T: Copy + Default>(
    values: &mut Vec<T>,
    nulls: &mut NullBufferBuilder,
    x: Option<T>,
    n: usize,
) {
    match x {
        Some(x) => {
            values.extend(std::iter::repeat_n(x, n));
            nulls.append_n_non_nulls(n);
        }
        None => {
            values.extend(std::iter::repeat_n(T::default(), n));
            nulls.append_n_nulls(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};

    #[test]
    fn repeated_strings_and_nulls() {
        let mut b = ColumnBuilder::for_type(&DataType::Utf8, 4).unwrap();
        b.repeat(&Cell::str(Some("ab")), 2).unwrap();
        b.repeat(&Cell::Str(None), 1).unwrap();
        b.repeat(&Cell::str(Some("")), 1).unwrap();
        let a = b.finish(&DataType::Utf8).unwrap();
        let s = a.as_string::<i32>();
        assert_eq!(s.len(), 4);
        assert_eq!(s.value(0), "ab");
        assert_eq!(s.value(1), "ab");
        assert!(s.is_null(2));
        assert_eq!(s.value(3), "");
    }

    #[test]
    fn tags_map_repeats_entries_per_row() {
        let dt = super::super::schema::tags_type();
        let mut b = ColumnBuilder::for_type(&dt, 3).unwrap();
        let tags = vec![("env".to_string(), "prod".to_string())];
        b.repeat(&Cell::Tags(tags.into()), 2).unwrap();
        b.repeat(&Cell::Tags(Arc::from([])), 1).unwrap();
        let a = b.finish(&dt).unwrap();
        let m = a.as_map();
        assert_eq!(m.len(), 3);
        assert_eq!(m.value_length(0), 1);
        assert_eq!(m.value_length(1), 1);
        assert_eq!(m.value_length(2), 0);
        assert_eq!(a.data_type(), &dt);
        assert_eq!(a.null_count(), 0);
    }

    #[test]
    fn wrong_cell_type_is_an_error_not_a_panic() {
        let mut b = ColumnBuilder::for_type(&DataType::Int64, 1).unwrap();
        assert!(matches!(
            b.repeat(&Cell::str(Some("x")), 1),
            Err(ColumnError::Mismatch { expected: "Int64" })
        ));
    }
}
