//! Which hive partition a timestamp falls in: UTC days (`date=YYYY-MM-DD`) or months
//! (`month=YYYY-MM`), computed with integer calendar arithmetic so that routing a point costs a
//! division and never fails, whatever the timestamp.

use crate::job::PartitionBy;
use crate::load::PartitionKey;

const DAY_MS: i64 = 86_400_000;

/// The time granularity of a job's partitioning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Period {
    Day,
    Month,
    /// No time column among the partition keys: one period for all time.
    None,
}

impl Period {
    pub(crate) fn of(partitioning: &[PartitionBy]) -> Period {
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
    pub(crate) fn locate(self, ts_ms: i64) -> (i64, i64) {
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
pub(crate) fn key(partitioning: &[PartitionBy], service: Option<&str>, ts_ms: i64) -> PartitionKey {
    let (y, m, d) = civil_from_days(ts_ms.div_euclid(DAY_MS));
    PartitionKey(
        partitioning
            .iter()
            .map(|p| match p {
                PartitionBy::ServiceName => ("service_name", service.map(str::to_string)),
                PartitionBy::Date => ("date", Some(format!("{y:04}-{m:02}-{d:02}"))),
                PartitionBy::Month => ("month", Some(format!("{y:04}-{m:02}"))),
            })
            .collect(),
    )
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
        let ms = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .unwrap()
                .timestamp_millis()
        };
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
            key(&[PartitionBy::Date], None, -1).0,
            vec![("date", Some("1969-12-31".to_string()))]
        );
        assert_eq!(
            key(
                &[PartitionBy::ServiceName, PartitionBy::Month],
                Some("pcc-1"),
                ms("2026-11-24T10:00:00Z")
            )
            .0,
            vec![
                ("service_name", Some("pcc-1".to_string())),
                ("month", Some("2026-11".to_string()))
            ]
        );
    }
}
