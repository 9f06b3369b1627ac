//! Hive partitions: the partition columns a job may use, the key of one partition, its folder
//! name (escaped as hive readers decode it), and which partition a timestamp falls in: UTC days
//! (`date=YYYY-MM-DD`) or months (`month=YYYY-MM`), computed with integer calendar arithmetic so
//! that routing a point costs a division and never fails, whatever the timestamp.

use std::path::{Path, PathBuf};

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

const DAY_MS: i64 = 86_400_000;

/// Longest partition folder name most file systems accept (255 bytes on ext4, XFS, APFS, NTFS).
const MAX_SEGMENT_BYTES: usize = 255;

/// What hive readers (pyarrow, DuckDB, Spark) decode: everything but unreserved URL characters is
/// percent-encoded, so `/`, `=`, `%`, `..`-tricks and newlines can never leave the folder.
pub const PARTITION_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The partition columns a job may use, as they appear in folder names.
pub const PARTITION_COLUMNS: [&str; 3] = ["service_name", "date", "month"];

/// The hive name of a null (or empty) partition value.
pub const HIVE_DEFAULT_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// One hive partition column of a job's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionBy {
    /// `service_name=…`
    ServiceName,
    /// `date=YYYY-MM-DD` of `ts` in UTC.
    Date,
    /// `month=YYYY-MM` of `ts` in UTC.
    Month,
}

impl PartitionBy {
    /// The column's name, as folder names and tables spell it.
    pub fn column(self) -> &'static str {
        match self {
            PartitionBy::ServiceName => "service_name",
            PartitionBy::Date => "date",
            PartitionBy::Month => "month",
        }
    }
}

/// A partition value that makes a folder name longer than file systems accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("partition value for {column} is too long for a folder name ({len} bytes once escaped)")]
pub struct PartitionValueError {
    pub column: String,
    pub len: usize,
}

/// A partition of a table: `(column, value)` pairs in path order, e.g. `[("date", "2026-11-24")]`,
/// and the time its `date=` or `month=` value covers. The span is a function of the values (the
/// first time column's), so keys compare, order and hash by their values alone.
#[derive(Debug, Clone)]
pub struct PartitionKey {
    values: Vec<(&'static str, Option<String>)>,
    span_ms: Option<(i64, i64)>,
}

impl PartitionKey {
    /// The key of these values; its span is read from the first `date` or `month` value.
    pub fn new(values: Vec<(&'static str, Option<String>)>) -> PartitionKey {
        let span_ms = values.iter().find_map(|(column, value)| match *column {
            "date" | "month" => Some(value.as_deref().and_then(|v| parse_span(column, v))),
            _ => None,
        });
        PartitionKey {
            values,
            span_ms: span_ms.flatten(),
        }
    }

    /// The `(column, value)` pairs, in path order.
    pub fn values(&self) -> &[(&'static str, Option<String>)] {
        &self.values
    }

    /// The time the partition covers, `[start, end)` in milliseconds since the epoch; `None`
    /// without a time column (or with a time value this tool does not write).
    pub fn span_ms(&self) -> Option<(i64, i64)> {
        self.span_ms
    }

    /// The folder below the table, e.g. `service_name=pcc-1/date=2026-11-24`.
    pub fn relative_dir(&self) -> Result<PathBuf, PartitionValueError> {
        let mut dir = PathBuf::new();
        for (column, value) in &self.values {
            dir.push(hive_segment(column, value.as_deref())?);
        }
        Ok(dir)
    }

    /// The key of the folder `dir` below a table (what [`PartitionKey::relative_dir`] built):
    /// segments that are no partition column of this tool are skipped.
    pub fn from_relative_dir(dir: &Path) -> PartitionKey {
        let mut key = Vec::new();
        for segment in dir.iter() {
            let segment = segment.to_string_lossy();
            let Some((column, value)) = segment.split_once('=') else {
                continue;
            };
            let Some(column) = PARTITION_COLUMNS.iter().copied().find(|c| *c == column) else {
                continue;
            };
            let value = (value != HIVE_DEFAULT_PARTITION).then(|| {
                percent_encoding::percent_decode_str(value)
                    .decode_utf8_lossy()
                    .into_owned()
            });
            key.push((column, value));
        }
        PartitionKey::new(key)
    }
}

/// The span of a `date` (`YYYY-MM-DD`) or `month` (`YYYY-MM`) value as [`key`] writes it, for a
/// key read back from a folder name; `None` for any other form.
fn parse_span(column: &str, value: &str) -> Option<(i64, i64)> {
    let (period, y, m, d) = match (column, value.as_bytes()) {
        ("date", [_, _, _, _, b'-', _, _, b'-', _, _]) => {
            (Period::Day, &value[..4], &value[5..7], &value[8..])
        }
        ("month", [_, _, _, _, b'-', _, _]) => (Period::Month, &value[..4], &value[5..], "01"),
        _ => return None,
    };
    let number = |s: &str| -> Option<u32> {
        s.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (y, m, d) = (i64::from(number(y)?), number(m)?, number(d)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let day = days_from_civil(y, m, d);
    // A day past the end of its month (`2026-02-30`) is no date.
    if civil_from_days(day) != (y, m, d) {
        return None;
    }
    let start_ms = day * DAY_MS;
    Some((start_ms, period.locate(start_ms).1))
}

impl PartialEq for PartitionKey {
    fn eq(&self, other: &Self) -> bool {
        self.values == other.values
    }
}

impl Eq for PartitionKey {}

impl std::hash::Hash for PartitionKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.values.hash(state);
    }
}

impl PartialOrd for PartitionKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PartitionKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.values.cmp(&other.values)
    }
}

/// One `column=value` path segment, escaped as hive readers expect.
pub fn hive_segment(column: &str, value: Option<&str>) -> Result<String, PartitionValueError> {
    let escaped = match value {
        None | Some("") => HIVE_DEFAULT_PARTITION.to_string(),
        Some(v) => utf8_percent_encode(v, PARTITION_VALUE).to_string(),
    };
    let segment = format!("{column}={escaped}");
    if segment.len() > MAX_SEGMENT_BYTES {
        return Err(PartitionValueError {
            column: column.to_string(),
            len: segment.len(),
        });
    }
    Ok(segment)
}

/// The time granularity of a job's partitioning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Day,
    Month,
    /// No time column among the partition keys: one period for all time.
    None,
}

impl Period {
    pub fn of(partitioning: &[PartitionBy]) -> Period {
        // Day is the finer one when a job asks for both.
        if partitioning.contains(&PartitionBy::Date) {
            Period::Day
        } else if partitioning.contains(&PartitionBy::Month) {
            Period::Month
        } else {
            Period::None
        }
    }

    /// The period holding `ts_ms` (an opaque id) and where the next period starts (exclusive end).
    pub fn locate(self, ts_ms: i64) -> (i64, i64) {
        let day = ts_ms.div_euclid(DAY_MS);
        match self {
            Period::Day => (day, (day + 1).saturating_mul(DAY_MS)),
            Period::Month => {
                let (y, m, _) = civil_from_days(day);
                let id = y * 12 + (m as i64 - 1);
                let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                (id, days_from_civil(ny, nm, 1).saturating_mul(DAY_MS))
            }
            Period::None => (0, i64::MAX),
        }
    }
}

/// The partition key of a row: `service` is the row's `service_name`, `ts_ms` any time within its
/// period. Keys come in the order the job lists them.
pub fn key(partitioning: &[PartitionBy], service: Option<&str>, ts_ms: i64) -> PartitionKey {
    let day = ts_ms.div_euclid(DAY_MS);
    let (y, m, d) = civil_from_days(day);
    let mut span_ms = None;
    let values = partitioning
        .iter()
        .map(|p| match p {
            PartitionBy::ServiceName => (p.column(), service.map(str::to_string)),
            PartitionBy::Date => {
                let end = Period::Day.locate(ts_ms).1;
                span_ms.get_or_insert((day.saturating_mul(DAY_MS), end));
                (p.column(), Some(format!("{y:04}-{m:02}-{d:02}")))
            }
            PartitionBy::Month => {
                let end = Period::Month.locate(ts_ms).1;
                let first = days_from_civil(y, m, 1).saturating_mul(DAY_MS);
                span_ms.get_or_insert((first, end));
                (p.column(), Some(format!("{y:04}-{m:02}")))
            }
        })
        .collect();
    PartitionKey { values, span_ms }
}

/// (year, month 1..=12, day 1..=31) of a count of days since 1970-01-01 (proleptic Gregorian;
/// Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Days since 1970-01-01 of a civil date (inverse of [`civil_from_days`]).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, NaiveDate};

    /// Milliseconds since the epoch of an RFC 3339 time.
    fn ms(t: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(t)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn partition_values_are_escaped_and_stay_in_their_folder() {
        let cases = [
            ("2026-11-24", "date=2026-11-24"),
            ("a/b", "service_name=a%2Fb"),
            ("..", "service_name=.."),
            ("x=y%z", "service_name=x%3Dy%25z"),
            ("line\nbreak", "service_name=line%0Abreak"),
            ("été", "service_name=%C3%A9t%C3%A9"),
        ];
        for (value, expected) in cases {
            let column = if value.starts_with("2026") {
                "date"
            } else {
                "service_name"
            };
            let segment = hive_segment(column, Some(value)).unwrap();
            assert_eq!(segment, expected);
            assert!(!segment.contains('/'));
            let decoded = percent_encoding::percent_decode_str(segment.split_once('=').unwrap().1)
                .decode_utf8()
                .unwrap();
            assert_eq!(decoded, value, "round trip of {value:?}");
        }
        let key = PartitionKey::new(vec![
            ("service_name", Some("a/b=c".to_string())),
            ("date", Some("2026-11-24".to_string())),
            ("month", None),
        ]);
        assert_eq!(
            PartitionKey::from_relative_dir(&key.relative_dir().unwrap()),
            key,
            "a folder reads back as its key"
        );
        assert_eq!(
            hive_segment("service_name", None).unwrap(),
            "service_name=__HIVE_DEFAULT_PARTITION__"
        );
        assert!(matches!(
            hive_segment("service_name", Some(&"x".repeat(300))),
            Err(PartitionValueError { len: 313, .. })
        ));
    }

    #[test]
    fn calendar_matches_chrono() {
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        for day in (-800_000..800_000).step_by(997) {
            let date = epoch + chrono::Duration::days(day);
            assert_eq!(
                civil_from_days(day),
                (date.year() as i64, date.month(), date.day()),
                "day {day}"
            );
            assert_eq!(
                days_from_civil(date.year() as i64, date.month(), date.day()),
                day
            );
        }
    }

    #[test]
    fn periods_end_at_utc_midnight_and_month_start() {
        let (d1, end) = Period::Day.locate(ms("2026-11-01T23:59:59.999Z"));
        assert_eq!(end, ms("2026-11-02T00:00:00Z"));
        assert_ne!(Period::Day.locate(ms("2026-11-02T00:00:00Z")).0, d1);
        let (_, end) = Period::Month.locate(ms("2026-12-31T12:00:00Z"));
        assert_eq!(end, ms("2027-01-01T00:00:00Z"));
        let (_, end) = Period::Month.locate(ms("2024-02-10T00:00:00Z"));
        assert_eq!(end, ms("2024-03-01T00:00:00Z"));
        assert_eq!(Period::None.locate(0), (0, i64::MAX));
        // Before the epoch too (negative millis round down, not toward zero).
        assert_eq!(
            key(&[PartitionBy::Date], None, -1).values(),
            vec![("date", Some("1969-12-31".to_string()))]
        );
        assert_eq!(
            key(
                &[PartitionBy::ServiceName, PartitionBy::Month],
                Some("pcc-1"),
                ms("2026-11-24T10:00:00Z")
            )
            .values(),
            vec![
                ("service_name", Some("pcc-1".to_string())),
                ("month", Some("2026-11".to_string()))
            ]
        );
    }

    #[test]
    fn a_key_read_back_from_its_folder_covers_the_same_time() {
        for partitioning in [
            &[PartitionBy::Date][..],
            &[PartitionBy::Month],
            &[PartitionBy::ServiceName, PartitionBy::Date],
            &[PartitionBy::ServiceName, PartitionBy::Month],
        ] {
            for t in [
                "2026-11-24T10:00:00Z",
                "2026-12-31T23:59:59.999Z",
                "2024-02-29T00:00:00Z",
            ] {
                let built = key(partitioning, Some("pcc-1"), ms(t));
                let read = PartitionKey::from_relative_dir(&built.relative_dir().unwrap());
                assert_eq!(read.span_ms(), built.span_ms(), "{partitioning:?} at {t}");
                let (from, to) = built.span_ms().unwrap();
                assert!(from <= ms(t) && ms(t) < to, "{t} lies in its partition");
            }
        }
        let day = key(&[PartitionBy::Date], None, ms("2026-11-24T10:00:00Z"));
        assert_eq!(
            day.span_ms(),
            Some((ms("2026-11-24T00:00:00Z"), ms("2026-11-25T00:00:00Z")))
        );
        let values = |column, value: &str| PartitionKey::new(vec![(column, Some(value.into()))]);
        for odd in [
            "2026-02-30",
            "2026-13-01",
            "26-11-24",
            "2026-11-24x",
            "２０２６-11-24",
        ] {
            assert_eq!(values("date", odd).span_ms(), None, "{odd}");
        }
        assert_eq!(values("month", "2026-11-01").span_ms(), None);
        assert_eq!(values("service_name", "2026-11").span_ms(), None);
    }
}
