//! Values that are a whole number of hundredths, `m / 100` (`4.38`, `35.31`, `1225.91`: what
//! vScope serves), keyed by `m`. A key is three bytes and sorts as its value does, which the spool
//! (three bytes a value on disk instead of eight) and the `value` column's dictionary (a bitmap
//! over the keys instead of a hash table) both use.

/// Keys run from 0 to `KEYS − 1`: hundredths from −2^23 to 2^23 − 1 (±83,886.08).
pub const KEYS: usize = 1 << 24;

/// Where a key is expected, "this value has none".
pub const NO_KEY: u32 = u32::MAX;

/// `m + OFFSET` is the key of `m / 100`.
pub(crate) const OFFSET: i64 = 1 << 23;

/// The key of `v`, if it is exactly a number of hundredths in range: the same double as
/// `m as f64 / 100.0`, which is what the response parser makes of `"4.38"`, `"4.3"` or `"4"`.
/// Not −0.0 (whose bits differ from 0.0's), NaN or the infinities.
#[inline]
pub fn key(v: f64) -> Option<u32> {
    let scaled = v * 100.0;
    // Rounded half away from zero; whether it was the right rounding, the check below tells.
    let m = (scaled + 0.5f64.copysign(scaled)) as i64;
    let key = m.wrapping_add(OFFSET);
    if (0..KEYS as i64).contains(&key) && (m as f64 / 100.0).to_bits() == v.to_bits() {
        Some(key as u32)
    } else {
        None
    }
}

/// The value of `key`, exactly the double it was the key of.
#[inline]
pub fn value(key: u32) -> f64 {
    (i64::from(key) - OFFSET) as f64 / 100.0
}

/// What [`Values`] holds in `doubles` for a point held as its key. Never NaN, which is a null.
const PLACEHOLDER: f64 = 0.0;

/// Points' values, each held as its double or, where it was read as one, as its key: points read
/// back from the spool come as keys, which spares the `value` column turning each key into its
/// double and back. The one place that knows a keyed point's double is a placeholder: readers
/// get the doubles ([`Values::into_doubles`]) or a [`ValuesSlice`], never a placeholder alone.
#[derive(Debug, Clone, Default)]
pub struct Values {
    /// One per point: its value, or [`PLACEHOLDER`] where `keys` holds its key.
    doubles: Vec<f64>,
    /// One per point: its value's key, or [`NO_KEY`] where `doubles` holds its value.
    keys: Vec<u32>,
}

impl Values {
    pub fn with_capacity(points: usize) -> Values {
        Values {
            doubles: Vec::with_capacity(points),
            keys: Vec::with_capacity(points),
        }
    }

    /// How many points.
    pub fn len(&self) -> usize {
        self.doubles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.doubles.is_empty()
    }

    pub fn clear(&mut self) {
        self.doubles.clear();
        self.keys.clear();
    }

    /// Appends points held as doubles (NaN: no value).
    pub fn extend_doubles(&mut self, doubles: &[f64]) {
        self.doubles.extend_from_slice(doubles);
        self.keys.resize(self.doubles.len(), NO_KEY);
    }

    /// Appends the doubles `read` appends to the vector it is given, as points held as doubles
    /// (also those appended before it fails).
    pub fn append_doubles<E>(
        &mut self,
        read: impl FnOnce(&mut Vec<f64>) -> Result<(), E>,
    ) -> Result<(), E> {
        let read = read(&mut self.doubles);
        self.keys.resize(self.doubles.len(), NO_KEY);
        read
    }

    /// Appends the keys `read` appends to the vector it is given, as points held as keys (also
    /// those appended before it fails). Each must be a key ([`key`]), not [`NO_KEY`].
    pub fn append_keys<E>(
        &mut self,
        read: impl FnOnce(&mut Vec<u32>) -> Result<(), E>,
    ) -> Result<(), E> {
        let read = read(&mut self.keys);
        self.doubles.resize(self.keys.len(), PLACEHOLDER);
        read
    }

    /// Appends the points of `values`.
    pub fn extend_from(&mut self, values: ValuesSlice<'_>) {
        self.doubles.extend_from_slice(values.doubles);
        match values.keys {
            Some(keys) => self.keys.extend_from_slice(keys),
            None => self.keys.resize(self.doubles.len(), NO_KEY),
        }
    }

    /// The points at `order` (indices into these), in that order.
    pub fn gather(&self, order: impl Iterator<Item = usize> + Clone) -> Values {
        Values {
            doubles: order.clone().map(|i| self.doubles[i]).collect(),
            keys: order.map(|i| self.keys[i]).collect(),
        }
    }

    /// The points in `range`.
    pub fn slice(&self, range: std::ops::Range<usize>) -> ValuesSlice<'_> {
        ValuesSlice {
            doubles: &self.doubles[range.clone()],
            keys: Some(&self.keys[range]),
        }
    }

    /// Each point's double, the keyed ones worked out from their keys.
    pub fn into_doubles(self) -> Vec<f64> {
        let mut doubles = self.doubles;
        for (v, &k) in doubles.iter_mut().zip(&self.keys) {
            if k != NO_KEY {
                *v = value(k);
            }
        }
        doubles
    }

    /// `doubles`, each held as its key where it has one.
    #[cfg(test)]
    pub(crate) fn keyed(doubles: &[f64]) -> Values {
        let keys: Vec<u32> = doubles.iter().map(|&v| key(v).unwrap_or(NO_KEY)).collect();
        let doubles = doubles
            .iter()
            .zip(&keys)
            .map(|(&v, &k)| if k == NO_KEY { v } else { PLACEHOLDER })
            .collect();
        Values { doubles, keys }
    }
}

/// A stretch of [`Values`], or of doubles alone.
#[derive(Debug, Clone, Copy)]
pub struct ValuesSlice<'a> {
    doubles: &'a [f64],
    /// As long as `doubles`; `None` when every point is held as its double.
    keys: Option<&'a [u32]>,
}

impl<'a> ValuesSlice<'a> {
    /// Points held as doubles (NaN: no value).
    pub fn doubles(doubles: &'a [f64]) -> ValuesSlice<'a> {
        ValuesSlice {
            doubles,
            keys: None,
        }
    }

    /// How many points.
    pub fn len(&self) -> usize {
        self.doubles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.doubles.is_empty()
    }

    /// The value of point `i`.
    pub fn get(&self, i: usize) -> f64 {
        match self.keys.map_or(NO_KEY, |k| k[i]) {
            NO_KEY => self.doubles[i],
            k => value(k),
        }
    }

    /// The points as held, for an encoder that reads them in bulk: the doubles, where a point
    /// whose key (if there are keys) is not [`NO_KEY`] has a placeholder that is never NaN, and
    /// the keys, as many as the doubles. Read a double only where its key is [`NO_KEY`].
    pub fn as_held(&self) -> (&'a [f64], Option<&'a [u32]>) {
        (self.doubles, self.keys)
    }

    /// The points before `mid` and those from it.
    pub fn split_at(&self, mid: usize) -> (ValuesSlice<'a>, ValuesSlice<'a>) {
        let (a, b) = self.doubles.split_at(mid);
        let (ka, kb) = match self.keys.map(|k| k.split_at(mid)) {
            Some((ka, kb)) => (Some(ka), Some(kb)),
            None => (None, None),
        };
        (
            ValuesSlice {
                doubles: a,
                keys: ka,
            },
            ValuesSlice {
                doubles: b,
                keys: kb,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hundredths_have_keys_in_value_order_and_nothing_else_has_one() {
        let m: Vec<i64> = (-2_000..2_000)
            .chain([-OFFSET, -123_456, 438, 3_531, 122_591, OFFSET - 1])
            .collect();
        for &m in &m {
            let v = m as f64 / 100.0;
            assert_eq!(key(v), Some((m + OFFSET) as u32), "{v}");
            assert_eq!(value((m + OFFSET) as u32).to_bits(), v.to_bits());
        }
        // What the parser makes of "4.3", "4.30" and "4": the same doubles as m / 100.
        assert_eq!(key(43.0 / 10.0), key(430.0 / 100.0));
        assert_eq!(key(4.0), Some((400 + OFFSET) as u32));
        for v in [
            0.125,
            4.385,
            1e-3,
            -0.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            OFFSET as f64 / 100.0,
            -(OFFSET as f64 + 1.0) / 100.0,
            1e300,
        ] {
            assert_eq!(key(v), None, "{v}");
        }
    }

    #[test]
    fn values_held_as_keys_read_as_the_doubles_they_are_keys_of() {
        let doubles = [4.38, f64::NAN, 0.1 + 0.2, -7.0, 1e300];
        let mut values = Values::default();
        values.extend_doubles(&doubles[..2]);
        values
            .append_keys(|keys| {
                keys.extend(doubles[2..].iter().map(|&v| key(v).unwrap_or(NO_KEY)));
                Ok::<(), ()>(())
            })
            .unwrap();
        // 0.1 + 0.2 and 1e300 have no key: what a reader of keys never appends.
        let mut values = values.gather([0, 1, 3].into_iter());
        values
            .append_doubles(|d| {
                d.extend_from_slice(&doubles[2..]);
                Ok::<(), ()>(())
            })
            .unwrap();
        let mut copy = Values::with_capacity(values.len());
        let (a, b) = values.slice(0..values.len()).split_at(2);
        copy.extend_from(a);
        copy.extend_from(b);
        copy.extend_from(ValuesSlice::doubles(&[2.5]));
        let slice = copy.slice(0..copy.len());
        let expected = [4.38, f64::NAN, -7.0, 0.1 + 0.2, -7.0, 1e300, 2.5];
        let got: Vec<u64> = (0..slice.len()).map(|i| slice.get(i).to_bits()).collect();
        let bits: Vec<u64> = expected.iter().map(|v| v.to_bits()).collect();
        assert_eq!(got, bits);
        let (held, keys) = slice.as_held();
        assert_eq!(keys.map(|k| k[2]), key(-7.0), "-7.0 is held as its key");
        assert!(!held[2].is_nan(), "a placeholder is never taken for a null");
        let doubles: Vec<u64> = copy.into_doubles().iter().map(|v| v.to_bits()).collect();
        assert_eq!(doubles, bits);
    }
}
