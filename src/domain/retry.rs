//! How both API clients try a transient failure again: the policy (`[source.retry]`), the one
//! exponential backoff with jitter built from it, and the server's `Retry-After`, which wins over
//! the backoff within the policy's longest delay.

use std::time::Duration;

use backon::ExponentialBuilder;
use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// When and how often a transient failure is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// Further attempts after the first.
    pub max_retries: usize,
    /// Sleeping stops once this much time was spent waiting between attempts.
    pub total_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retries: 6,
            total_delay: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// The backoff of this policy: exponential with jitter, capped, within the total delay.
    pub fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_jitter()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_retries)
            .with_total_delay(Some(self.total_delay))
    }

    /// The wait before the next attempt: the server's `Retry-After` where it gave one (within
    /// `max_delay`), else the backoff's `delay`; `None` (no further attempt) stays `None`.
    pub fn delay(
        &self,
        retry_after: Option<Duration>,
        delay: Option<Duration>,
    ) -> Option<Duration> {
        match (retry_after, delay) {
            (Some(after), Some(_)) => Some(after.min(self.max_delay)),
            (_, delay) => delay,
        }
    }
}

/// `Retry-After` as a delay from `now`: seconds, or an HTTP date (RFC 9110 allows both).
pub fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    // IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") is an RFC 2822 date.
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_read_as_seconds_or_a_date() {
        let now = DateTime::parse_from_rfc3339("2026-11-24T08:49:37Z")
            .unwrap()
            .with_timezone(&Utc);
        let headers = |value: &str| {
            let mut h = HeaderMap::new();
            h.insert(RETRY_AFTER, value.parse().unwrap());
            h
        };
        assert_eq!(
            retry_after(&headers("3"), now),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            retry_after(&headers(" 120 "), now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            retry_after(&headers("Tue, 24 Nov 2026 08:49:47 GMT"), now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            retry_after(&headers("Tue, 24 Nov 2026 08:49:27 GMT"), now),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        assert_eq!(retry_after(&headers("soon"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn the_servers_word_wins_within_the_cap() {
        let policy = RetryPolicy::default();
        let s = Duration::from_secs;
        assert_eq!(policy.delay(Some(s(5)), Some(s(1))), Some(s(5)));
        assert_eq!(policy.delay(Some(s(500)), Some(s(1))), Some(s(30)));
        assert_eq!(policy.delay(None, Some(s(1))), Some(s(1)));
        assert_eq!(policy.delay(Some(s(5)), None), None, "no attempts left");
    }
}
