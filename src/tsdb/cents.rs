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

/// Each value whose key is known (not [`NO_KEY`]) set from it: the values of points read as
/// keys hold a placeholder until something needs the doubles.
pub fn resolve(values: &mut [f64], keys: &[u32]) {
    for (v, &k) in values.iter_mut().zip(keys) {
        if k != NO_KEY {
            *v = value(k);
        }
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
}
