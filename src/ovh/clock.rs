//! Time as the APIv6 client reads it: the local clock that signatures start from ([`Clock`]), and
//! [`VirtualClock`], one clock shared by a client's pacing, its signatures and the simulator's
//! server clock, which moves only when pacing has to wait. Owns no pacing itself (`throttle`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use governor::nanos::Nanos;

/// Seconds since the Unix epoch, as the local machine sees them; injected for tests.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The machine's clock.
pub fn system_clock() -> Clock {
    Arc::new(|| chrono::Utc::now().timestamp())
}

/// A clock that stands still until pacing moves it forward: a request that must wait for its
/// turn makes the clock jump to that turn instead of sleeping. Paced requests then leave at the
/// moments they would leave in real time, an hour of them in no time, and a server reading the
/// same clock sees exactly the timestamps it would see. Clones share the clock.
#[derive(Clone, Debug)]
pub struct VirtualClock {
    /// Unix seconds at the clock's start.
    start_secs: i64,
    /// Nanoseconds since the start; only ever grows.
    elapsed_nanos: Arc<AtomicU64>,
}

impl VirtualClock {
    /// A clock that reads `unix_secs` until something moves it.
    pub fn starting_at(unix_secs: i64) -> VirtualClock {
        VirtualClock {
            start_secs: unix_secs,
            elapsed_nanos: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Unix seconds now, on this clock.
    pub fn unix_secs(&self) -> i64 {
        self.start_secs + (self.elapsed().as_secs() as i64)
    }

    /// Time since the start.
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.elapsed_nanos.load(Ordering::SeqCst))
    }

    /// Moves the clock to `elapsed` since its start, unless it is there already: waits that
    /// overlap move it to the latest of their ends, never back.
    pub fn advance_to(&self, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.elapsed_nanos.fetch_max(nanos, Ordering::SeqCst);
    }

    /// This clock as the seconds a client signs with.
    pub fn clock(&self) -> Clock {
        let this = self.clone();
        Arc::new(move || this.unix_secs())
    }
}

impl governor::clock::Clock for VirtualClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        Nanos::new(self.elapsed_nanos.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_virtual_clock_only_moves_forward_and_reads_whole_seconds() {
        let clock = VirtualClock::starting_at(1_700_000_000);
        let read = clock.clock();
        assert_eq!(read(), 1_700_000_000);
        clock.advance_to(Duration::from_millis(2_500));
        assert_eq!(read(), 1_700_000_002);
        clock.advance_to(Duration::from_secs(1));
        assert_eq!(clock.elapsed(), Duration::from_millis(2_500), "never back");
        clock.clone().advance_to(Duration::from_secs(60));
        assert_eq!(read(), 1_700_000_060, "clones share the clock");
    }
}
