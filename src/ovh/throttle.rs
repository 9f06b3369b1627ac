//! The per-client request rate limit of APIv6, on `governor`'s GCRA limiter: a burst may go at
//! once, then requests start no faster than the sustained rate. Owns pacing only; how many
//! requests are in flight at once is the client's semaphore.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::Clock as _;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use super::clock::VirtualClock;

#[derive(Debug)]
pub struct Throttle {
    limiter: Limiter,
}

#[derive(Debug)]
enum Limiter {
    /// No pacing.
    Off,
    /// Waits in real time.
    Real(DefaultDirectRateLimiter),
    /// Moves its clock to the next turn instead of waiting.
    Virtual(
        RateLimiter<NotKeyed, InMemoryState, VirtualClock, NoOpMiddleware<Nanos>>,
        VirtualClock,
    ),
}

impl Throttle {
    /// `per_second` sustained (0 or less: no limit), with `burst` requests allowed at once.
    pub fn new(per_second: f64, burst: u32) -> Self {
        Throttle {
            limiter: quota(per_second, burst)
                .map_or(Limiter::Off, |q| Limiter::Real(RateLimiter::direct(q))),
        }
    }

    /// [`Throttle::new`] on `clock`: the same turns, reached by moving the clock.
    pub fn on_virtual_clock(per_second: f64, burst: u32, clock: VirtualClock) -> Self {
        Throttle {
            limiter: quota(per_second, burst).map_or(Limiter::Off, |q| {
                Limiter::Virtual(RateLimiter::direct_with_clock(q, clock.clone()), clock)
            }),
        }
    }

    /// Waits until the next request may start.
    pub async fn acquire(&self) {
        match &self.limiter {
            Limiter::Off => {}
            Limiter::Real(limiter) => limiter.until_ready().await,
            Limiter::Virtual(limiter, clock) => {
                while let Err(not_until) = limiter.check() {
                    let turn = not_until.earliest_possible();
                    clock.advance_to(Duration::from(turn));
                    debug_assert!(clock.now() >= turn);
                }
            }
        }
    }
}

fn quota(per_second: f64, burst: u32) -> Option<Quota> {
    (per_second > 0.0 && per_second.is_finite())
        .then(|| Quota::with_period(Duration::from_secs_f64(1.0 / per_second)))
        .flatten()
        .map(|q| q.allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN)))
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

    #[tokio::test]
    async fn on_a_virtual_clock_the_turns_are_the_real_ones_and_take_no_time() {
        let clock = VirtualClock::starting_at(0);
        let throttle = Throttle::on_virtual_clock(10.0, 20, clock.clone());
        let t0 = Instant::now();
        for _ in 0..20 {
            throttle.acquire().await;
        }
        assert_eq!(clock.elapsed(), Duration::ZERO, "the burst goes at once");
        for _ in 0..2_000 {
            throttle.acquire().await;
        }
        // 2,000 turns at 10 a second after the burst.
        assert_eq!(clock.elapsed(), Duration::from_secs(200));
        assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    }
}
