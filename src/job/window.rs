//! Time-window expressions: RFC 3339 instants, dates, `now`, `today`, `yesterday`, `<n><unit>-ago`
//! and `last-run`, resolved against an injected clock. Nothing here reads the wall clock: callers
//! pass `now`, so a window is a pure function of the job, the clock and the job's state.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Utc};

use super::WindowSpec;
use crate::domain::duration::{format_duration, parse_duration};

/// A point in time as a job file writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeExpr {
    Absolute(DateTime<Utc>),
    Now,
    /// Midnight UTC of the current day.
    Today,
    /// Midnight UTC of the day before.
    Yesterday,
    /// `now - duration`, e.g. `7d-ago`.
    Ago(Duration),
    /// The end of the last committed window of this job (from its state).
    LastRun,
}

/// A resolved `[start, end)` window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error("'{text}' is not a time: use RFC 3339 (2026-11-24T00:00:00Z), a date (2026-11-24), now, today, yesterday, <n><unit>-ago (7d-ago) or last-run")]
    Syntax { text: String },
    #[error("'{text}' has no UTC offset: add Z (UTC) or one like +01:00")]
    MissingOffset { text: String },
    #[error("'{text}' is too far from now to be a time")]
    OutOfRange { text: String },
    #[error("the window ends ({end}) before it starts ({start})")]
    EndBeforeStart {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
    #[error("the window is empty: start and end are both {at}")]
    Empty { at: DateTime<Utc> },
    #[error("the window ends in the future ({end}, now is {now})")]
    Future {
        end: DateTime<Utc>,
        now: DateTime<Utc>,
    },
    #[error(
        "the window starts at last-run, the job has not run yet and there is no initial_start"
    )]
    NoInitialStart,
    #[error("the window cannot end at last-run")]
    EndAtLastRun,
}

impl TimeExpr {
    pub fn parse(text: &str) -> Result<TimeExpr, WindowError> {
        let syntax = || WindowError::Syntax {
            text: text.to_string(),
        };
        match text {
            "now" => return Ok(TimeExpr::Now),
            "today" => return Ok(TimeExpr::Today),
            "yesterday" => return Ok(TimeExpr::Yesterday),
            "last-run" => return Ok(TimeExpr::LastRun),
            _ => {}
        }
        if let Some(amount) = text.strip_suffix("-ago") {
            let duration = parse_duration(amount).ok_or_else(syntax)?;
            // Refused here rather than at run time: no clock can subtract it.
            if TimeDelta::from_std(duration).is_err() {
                return Err(WindowError::OutOfRange {
                    text: text.to_string(),
                });
            }
            return Ok(TimeExpr::Ago(duration));
        }
        if text.len() == 10 {
            let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| syntax())?;
            return Ok(TimeExpr::Absolute(date.and_time(NaiveTime::MIN).and_utc()));
        }
        match DateTime::parse_from_rfc3339(text) {
            Ok(t) => Ok(TimeExpr::Absolute(t.with_timezone(&Utc))),
            // A local date-time without offset parses in ISO 8601 form: name what is missing.
            Err(_)
                if chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").is_ok() =>
            {
                Err(WindowError::MissingOffset {
                    text: text.to_string(),
                })
            }
            Err(_) => Err(syntax()),
        }
    }

    /// The instant this expression names at `now`; `last_run` answers `LastRun`. `None` for
    /// `LastRun` without a last run, or when the result is outside the representable range.
    pub fn resolve(
        &self,
        now: DateTime<Utc>,
        last_run: Option<DateTime<Utc>>,
    ) -> Option<DateTime<Utc>> {
        let today = now.date_naive().and_time(NaiveTime::MIN).and_utc();
        match self {
            TimeExpr::Absolute(t) => Some(*t),
            TimeExpr::Now => Some(now),
            TimeExpr::Today => Some(today),
            TimeExpr::Yesterday => today.checked_sub_signed(TimeDelta::days(1)),
            TimeExpr::Ago(d) => now.checked_sub_signed(TimeDelta::from_std(*d).ok()?),
            TimeExpr::LastRun => last_run,
        }
    }

    /// Whether the instant depends on the clock or the job state (everything but `Absolute`).
    pub fn is_relative(&self) -> bool {
        !matches!(self, TimeExpr::Absolute(_))
    }
}

/// Writes the expression back in job-file syntax (`2026-11-24T00:00:00Z`, `7d-ago`, …).
impl fmt::Display for TimeExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeExpr::Absolute(t) => {
                write!(
                    f,
                    "{}",
                    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
                )
            }
            TimeExpr::Now => f.write_str("now"),
            TimeExpr::Today => f.write_str("today"),
            TimeExpr::Yesterday => f.write_str("yesterday"),
            TimeExpr::Ago(d) => write!(f, "{}-ago", format_duration(*d)),
            TimeExpr::LastRun => f.write_str("last-run"),
        }
    }
}

impl Window {
    /// Resolves a job's window at `now`, given the end of the job's last committed window.
    ///
    /// `start = last-run` becomes `last_run - lookback`, or `initial_start` when the job has no
    /// state yet. The result must be non-empty and must not end after `now` (data from the future
    /// does not exist yet, and a watermark there would skip it for good).
    pub fn resolve(
        spec: &WindowSpec,
        now: DateTime<Utc>,
        last_run: Option<DateTime<Utc>>,
    ) -> Result<Window, WindowError> {
        let out_of_range = |expr: &TimeExpr| WindowError::OutOfRange {
            text: expr.to_string(),
        };
        let start = match (&spec.start, last_run) {
            (TimeExpr::LastRun, Some(last)) => {
                let lookback =
                    TimeDelta::from_std(spec.lookback).map_err(|_| out_of_range(&spec.start))?;
                last.checked_sub_signed(lookback)
                    .ok_or_else(|| out_of_range(&spec.start))?
            }
            (TimeExpr::LastRun, None) => {
                let initial = spec
                    .initial_start
                    .as_ref()
                    .filter(|e| **e != TimeExpr::LastRun)
                    .ok_or(WindowError::NoInitialStart)?;
                initial
                    .resolve(now, None)
                    .ok_or_else(|| out_of_range(initial))?
            }
            (expr, _) => expr.resolve(now, None).ok_or_else(|| out_of_range(expr))?,
        };
        let end = match &spec.end {
            TimeExpr::LastRun => return Err(WindowError::EndAtLastRun),
            expr => expr.resolve(now, None).ok_or_else(|| out_of_range(expr))?,
        };
        if end > now {
            return Err(WindowError::Future { end, now });
        }
        if end < start {
            return Err(WindowError::EndBeforeStart { start, end });
        }
        if end == start {
            return Err(WindowError::Empty { at: start });
        }
        Ok(Window { start, end })
    }

    /// The window's length.
    pub fn duration(&self) -> TimeDelta {
        self.end - self.start
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::duration::parse_delay;

    fn at(t: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc)
    }

    /// The injected clock of these tests: mid-afternoon, so `today` and `now` differ.
    fn now() -> DateTime<Utc> {
        at("2026-11-25T15:01:32Z")
    }

    fn spec(start: TimeExpr, end: TimeExpr) -> WindowSpec {
        WindowSpec {
            start,
            end,
            page: None,
            lookback: Duration::ZERO,
            initial_start: None,
        }
    }

    #[test]
    fn every_form_of_time_expression_parses() {
        let cases = [
            ("now", TimeExpr::Now),
            ("today", TimeExpr::Today),
            ("yesterday", TimeExpr::Yesterday),
            ("last-run", TimeExpr::LastRun),
            ("7d-ago", TimeExpr::Ago(Duration::from_secs(7 * 86_400))),
            ("36h-ago", TimeExpr::Ago(Duration::from_secs(36 * 3_600))),
            ("90s-ago", TimeExpr::Ago(Duration::from_secs(90))),
            ("15m-ago", TimeExpr::Ago(Duration::from_secs(900))),
            ("2w-ago", TimeExpr::Ago(Duration::from_secs(14 * 86_400))),
            ("2026-11-24", TimeExpr::Absolute(at("2026-11-24T00:00:00Z"))),
            (
                "2026-11-24T06:30:00Z",
                TimeExpr::Absolute(at("2026-11-24T06:30:00Z")),
            ),
            // Offsets are converted to UTC, across midnight too.
            (
                "2026-11-24T00:30:00+01:00",
                TimeExpr::Absolute(at("2026-11-23T23:30:00Z")),
            ),
            (
                "2026-11-24T22:00:00-05:00",
                TimeExpr::Absolute(at("2026-11-25T03:00:00Z")),
            ),
            (
                "2026-11-24T06:30:00.250Z",
                TimeExpr::Absolute(at("2026-11-24T06:30:00.250Z")),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(TimeExpr::parse(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn malformed_time_expressions_are_refused() {
        for text in [
            "",
            "tomorrow",
            "Now",
            " today",
            "7d",
            "7x-ago",
            "-ago",
            "d-ago",
            "7 d-ago",
            "-7d-ago",
            "2026-02-30",
            "2026-13-01",
            "26-11-24",
            "2026/11/24",
            "2026-11-24T25:00:00Z",
            "1732406400",
        ] {
            assert_eq!(
                TimeExpr::parse(text),
                Err(WindowError::Syntax {
                    text: text.to_string()
                }),
                "{text:?}"
            );
        }
        assert_eq!(
            TimeExpr::parse("2026-11-24T06:00:00"),
            Err(WindowError::MissingOffset {
                text: "2026-11-24T06:00:00".into()
            })
        );
        assert!(matches!(
            TimeExpr::parse("9999999999999w-ago"),
            Err(WindowError::OutOfRange { .. })
        ));
    }

    #[test]
    fn expressions_resolve_against_the_injected_clock() {
        let last = at("2026-11-25T00:00:00Z");
        let resolve = |text: &str| TimeExpr::parse(text).unwrap().resolve(now(), Some(last));
        assert_eq!(resolve("now"), Some(now()));
        assert_eq!(resolve("today"), Some(at("2026-11-25T00:00:00Z")));
        assert_eq!(resolve("yesterday"), Some(at("2026-11-24T00:00:00Z")));
        assert_eq!(resolve("36h-ago"), Some(at("2026-11-24T03:01:32Z")));
        assert_eq!(resolve("2026-01-01"), Some(at("2026-01-01T00:00:00Z")));
        assert_eq!(resolve("last-run"), Some(last));
        assert_eq!(TimeExpr::LastRun.resolve(now(), None), None);
        // Just after midnight, yesterday is a whole day back still.
        let early = at("2026-03-01T00:00:00.001Z");
        assert_eq!(
            TimeExpr::Yesterday.resolve(early, None),
            Some(at("2026-02-28T00:00:00Z"))
        );
    }

    #[test]
    fn expressions_print_as_they_are_written() {
        for text in [
            "now",
            "today",
            "yesterday",
            "last-run",
            "7d-ago",
            "36h-ago",
            "90s-ago",
            "2026-11-24T06:30:00Z",
        ] {
            assert_eq!(TimeExpr::parse(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn durations_take_one_whole_amount_and_a_unit() {
        let cases = [
            ("90s", 90),
            ("15m", 900),
            ("1h", 3_600),
            ("6h", 21_600),
            ("1d", 86_400),
            ("14d", 1_209_600),
            ("0s", 0),
        ];
        assert_eq!(parse_duration("2w"), Some(Duration::from_secs(1_209_600)));
        for (text, secs) in cases {
            assert_eq!(
                parse_duration(text),
                Some(Duration::from_secs(secs)),
                "{text}"
            );
            if secs > 0 {
                assert_eq!(format_duration(Duration::from_secs(secs)), text);
            }
        }
        for text in [
            "",
            "5",
            "h",
            "1.5h",
            "-1h",
            "+1h",
            "1H",
            "1hr",
            "1h30m",
            " 1h",
            "1 h",
            "1ms",
            "1y",
            "99999999999999999999d",
        ] {
            assert_eq!(parse_duration(text), None, "{text:?}");
        }
        assert_eq!(parse_duration("9999999999999999w"), None, "overflow");
    }

    #[test]
    fn delays_also_take_milliseconds() {
        assert_eq!(parse_delay("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_delay("0ms"), Some(Duration::ZERO));
        assert_eq!(parse_delay("2s"), Some(Duration::from_secs(2)));
        assert_eq!(parse_delay("5m"), Some(Duration::from_secs(300)));
        for text in [
            "ms",
            "1.5ms",
            "-1ms",
            "1 ms",
            "1MS",
            "99999999999999999999ms",
        ] {
            assert_eq!(parse_delay(text), None, "{text:?}");
        }
    }

    #[test]
    fn a_last_run_window_restarts_lookback_before_the_last_committed_end() {
        let spec = WindowSpec {
            lookback: Duration::from_secs(2 * 3_600),
            initial_start: Some(TimeExpr::Yesterday),
            ..spec(TimeExpr::LastRun, TimeExpr::Today)
        };
        assert_eq!(
            Window::resolve(&spec, now(), Some(at("2026-11-24T00:00:00Z"))),
            Ok(Window {
                start: at("2026-11-23T22:00:00Z"),
                end: at("2026-11-25T00:00:00Z"),
            })
        );
        // No state yet: from initial_start, without lookback.
        assert_eq!(
            Window::resolve(&spec, now(), None),
            Ok(Window {
                start: at("2026-11-24T00:00:00Z"),
                end: at("2026-11-25T00:00:00Z"),
            })
        );
        let without_initial = WindowSpec {
            initial_start: None,
            ..spec.clone()
        };
        assert_eq!(
            Window::resolve(&without_initial, now(), None),
            Err(WindowError::NoInitialStart)
        );
    }

    #[test]
    fn a_window_must_be_non_empty_and_not_end_in_the_future() {
        let absolute =
            |s: &str, e: &str| spec(TimeExpr::parse(s).unwrap(), TimeExpr::parse(e).unwrap());
        assert_eq!(
            Window::resolve(&absolute("2026-11-23", "2026-11-24"), now(), None),
            Ok(Window {
                start: at("2026-11-23T00:00:00Z"),
                end: at("2026-11-24T00:00:00Z"),
            })
        );
        assert_eq!(
            Window::resolve(&absolute("2026-11-24", "2026-11-23"), now(), None),
            Err(WindowError::EndBeforeStart {
                start: at("2026-11-24T00:00:00Z"),
                end: at("2026-11-23T00:00:00Z"),
            })
        );
        assert_eq!(
            Window::resolve(&absolute("2026-11-24", "2026-11-24"), now(), None),
            Err(WindowError::Empty {
                at: at("2026-11-24T00:00:00Z")
            })
        );
        assert_eq!(
            Window::resolve(&absolute("2026-11-24", "2026-11-26"), now(), None),
            Err(WindowError::Future {
                end: at("2026-11-26T00:00:00Z"),
                now: now(),
            })
        );
        // Ending exactly now is fine.
        assert_eq!(
            Window::resolve(&absolute("yesterday", "now"), now(), None).map(|w| w.end),
            Ok(now())
        );
        // Re-run the same day after a run that ended today at midnight: an empty lookback window
        // is refused rather than silently exporting nothing.
        let rerun = spec(TimeExpr::LastRun, TimeExpr::Today);
        assert_eq!(
            Window::resolve(&rerun, now(), Some(at("2026-11-25T00:00:00Z"))),
            Err(WindowError::Empty {
                at: at("2026-11-25T00:00:00Z")
            })
        );
        assert_eq!(
            Window::resolve(&spec(TimeExpr::Yesterday, TimeExpr::LastRun), now(), None),
            Err(WindowError::EndAtLastRun)
        );
    }
}
