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

    /// Appends the points of `values`, each held as it is there.
    pub fn extend_from(&mut self, values: ValuesSlice<'_>) {
        match values.0 {
            Held::Doubles(doubles) => self.extend_doubles(doubles),
            Held::Keys(keys) => {
                self.keys.extend_from_slice(keys);
                self.doubles.resize(self.keys.len(), PLACEHOLDER);
            }
            Held::Mixed { doubles, keys } => {
                self.doubles.extend_from_slice(doubles);
                self.keys.extend_from_slice(keys);
            }
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
        ValuesSlice(Held::Mixed {
            doubles: &self.doubles[range.clone()],
            keys: &self.keys[range],
        })
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

/// How the points of a [`ValuesSlice`] are held, for an encoder that reads them in bulk.
#[derive(Debug, Clone, Copy)]
pub enum Held<'a> {
    /// Every point as its double (NaN: no value).
    Doubles(&'a [f64]),
    /// Every point as its key (so none is null); there are no doubles.
    Keys(&'a [u32]),
    /// Both, as many of each: a point whose key is not [`NO_KEY`] has a placeholder double,
    /// which is never NaN. Read a double only where its key is [`NO_KEY`].
    Mixed { doubles: &'a [f64], keys: &'a [u32] },
}

/// A stretch of points' values: doubles, hundredths keys, or both (a [`Values`]'). What a
/// double is for a keyed point, [`ValuesSlice::get`] and [`ValuesSlice::append_doubles_to`] work
/// out; nothing hands out a keyed point's double slot as its value.
#[derive(Debug, Clone, Copy)]
pub struct ValuesSlice<'a>(Held<'a>);

impl<'a> ValuesSlice<'a> {
    /// Points held as doubles (NaN: no value).
    pub fn doubles(doubles: &'a [f64]) -> ValuesSlice<'a> {
        ValuesSlice(Held::Doubles(doubles))
    }

    /// Points held as their keys; each must be a key ([`key`]), not [`NO_KEY`].
    pub fn keys(keys: &'a [u32]) -> ValuesSlice<'a> {
        debug_assert!(!keys.contains(&NO_KEY), "a point held as a key has one");
        ValuesSlice(Held::Keys(keys))
    }

    /// How many points.
    pub fn len(&self) -> usize {
        match self.0 {
            Held::Doubles(d) | Held::Mixed { doubles: d, .. } => d.len(),
            Held::Keys(k) => k.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value of point `i`.
    pub fn get(&self, i: usize) -> f64 {
        match self.0 {
            Held::Doubles(d) => d[i],
            Held::Keys(k) => value(k[i]),
            Held::Mixed { doubles, keys } => match keys[i] {
                NO_KEY => doubles[i],
                k => value(k),
            },
        }
    }

    /// Every point's key, when every point is held as its key: what a reader of keys (the
    /// spool) takes as it is.
    pub fn as_keys(&self) -> Option<&'a [u32]> {
        match self.0 {
            Held::Keys(k) => Some(k),
            _ => None,
        }
    }

    /// Every point's double, when every point is held as its double.
    pub fn as_doubles(&self) -> Option<&'a [f64]> {
        match self.0 {
            Held::Doubles(d) => Some(d),
            _ => None,
        }
    }

    /// Appends each point's double to `out`, the keyed ones worked out from their keys.
    pub fn append_doubles_to(&self, out: &mut Vec<f64>) {
        match self.0 {
            Held::Doubles(d) => out.extend_from_slice(d),
            Held::Keys(k) => out.extend(k.iter().map(|&k| value(k))),
            Held::Mixed { doubles, keys } => {
                out.extend(doubles.iter().zip(keys).map(|(&v, &k)| match k {
                    NO_KEY => v,
                    k => value(k),
                }))
            }
        }
    }

    /// Each point's double.
    pub fn to_doubles(&self) -> Vec<f64> {
        let mut out = Vec::with_capacity(self.len());
        self.append_doubles_to(&mut out);
        out
    }

    /// The points as held, for an encoder that reads them in bulk (see [`Held`]).
    pub fn as_held(&self) -> Held<'a> {
        self.0
    }

    /// The points in `range`.
    pub fn range(&self, range: std::ops::Range<usize>) -> ValuesSlice<'a> {
        ValuesSlice(match self.0 {
            Held::Doubles(d) => Held::Doubles(&d[range]),
            Held::Keys(k) => Held::Keys(&k[range]),
            Held::Mixed { doubles, keys } => Held::Mixed {
                doubles: &doubles[range.clone()],
                keys: &keys[range],
            },
        })
    }

    /// The points before `mid` and those from it.
    pub fn split_at(&self, mid: usize) -> (ValuesSlice<'a>, ValuesSlice<'a>) {
        (self.range(0..mid), self.range(mid..self.len()))
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
        let Held::Mixed {
            doubles: held,
            keys,
        } = slice.as_held()
        else {
            panic!("a Values' points are held as both");
        };
        assert_eq!(keys[2], key(-7.0).unwrap(), "-7.0 is held as its key");
        assert!(!held[2].is_nan(), "a placeholder is never taken for a null");
        let doubles: Vec<u64> = copy.into_doubles().iter().map(|v| v.to_bits()).collect();
        assert_eq!(doubles, bits);
    }

    #[test]
    fn points_held_only_as_keys_read_as_their_doubles_and_offer_no_doubles() {
        let doubles = [4.38, -7.0, 0.0, 1225.91];
        let keys: Vec<u32> = doubles.iter().map(|&v| key(v).unwrap()).collect();
        let slice = ValuesSlice::keys(&keys);
        assert_eq!(slice.len(), 4);
        assert!(
            slice.as_doubles().is_none(),
            "keys are never read as doubles"
        );
        assert_eq!(slice.as_keys(), Some(&keys[..]));
        let bits = |v: &[f64]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&slice.to_doubles()), bits(&doubles));
        let (a, b) = slice.split_at(1);
        assert_eq!(b.get(2).to_bits(), 1225.91f64.to_bits());
        let mut values = Values::default();
        values.extend_from(ValuesSlice::doubles(&[f64::NAN]));
        values.extend_from(b);
        values.extend_from(a);
        let expected = [f64::NAN, -7.0, 0.0, 1225.91, 4.38];
        assert_eq!(bits(&values.slice(0..5).to_doubles()), bits(&expected));
        assert_eq!(bits(&values.into_doubles()), bits(&expected));
    }
}
