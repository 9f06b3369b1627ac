//! The per-client request rate limit of APIv6, on `governor`'s GCRA limiter: a burst may go at
//! once, then requests start no faster than the sustained rate. Owns pacing only; how many
//! requests are in flight at once is the client's semaphore.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

#[derive(Debug)]
pub struct Throttle {
    /// `None`: no pacing.
    limiter: Option<DefaultDirectRateLimiter>,
}

impl Throttle {
    /// `per_second` sustained (0 or less: no limit), with `burst` requests allowed at once.
    pub fn new(per_second: f64, burst: u32) -> Self {
        let quota = (per_second > 0.0 && per_second.is_finite())
            .then(|| Quota::with_period(Duration::from_secs_f64(1.0 / per_second)))
            .flatten()
            .map(|q| q.allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN)));
        Throttle {
            limiter: quota.map(RateLimiter::direct),
        }
    }

    /// Waits until the next request may start.
    pub async fn acquire(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.until_ready().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    // Real time with loose upper bounds: tokio's paused clock needs its `test-util` feature.
    #[tokio::test]
    async fn a_burst_goes_at_once_then_the_sustained_rate_applies() {
        let throttle = Throttle::new(20.0, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            throttle.acquire().await;
        }
        assert!(
            t0.elapsed() < Duration::from_millis(40),
            "{:?}",
            t0.elapsed()
        );
        throttle.acquire().await;
        throttle.acquire().await;
        let elapsed = t0.elapsed();
        assert!(elapsed >= Duration::from_millis(100), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(900), "{elapsed:?}");
    }

    #[tokio::test]
    async fn zero_means_unlimited() {
        let throttle = Throttle::new(0.0, 1);
        let t0 = Instant::now();
        for _ in 0..1000 {
            throttle.acquire().await;
        }
        assert!(t0.elapsed() < Duration::from_millis(100));
    }
}
