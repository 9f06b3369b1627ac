//! Time-window expressions: RFC 3339 instants, dates, `now`, `today`, `yesterday`, `<n><unit>-ago`
//! and `last-run`, resolved against an injected clock.

use std::time::Duration;

use chrono::{DateTime, Utc};

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
}

impl TimeExpr {
    pub fn parse(text: &str) -> Result<TimeExpr, WindowError> {
        let _ = text;
        todo!("time expressions")
    }

    /// The instant this expression names at `now`; `last_run` answers `LastRun`.
    pub fn resolve(
        &self,
        now: DateTime<Utc>,
        last_run: Option<DateTime<Utc>>,
    ) -> Option<DateTime<Utc>> {
        let _ = (now, last_run);
        todo!("time expressions")
    }
}

/// `90s`, `15m`, `6h`, `1d`, `2w`: a page length or look-back.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let _ = text;
    todo!("durations")
}
