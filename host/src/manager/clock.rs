//! Time, as the manager sees it: a monotonic clock for freshness and a wall clock for
//! converting expiry timestamps. Injected, so tests move time by hand instead of sleeping.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A source of time for the [`AuthManager`](super::AuthManager).
pub trait Clock: Send + Sync + 'static {
    /// Monotonic time since an arbitrary origin fixed for the clock's lifetime.
    fn now(&self) -> Duration;
    /// Wall-clock time in milliseconds since the Unix epoch.
    fn unix_ms(&self) -> u64;
}

/// The real clocks: `Instant` for freshness, `SystemTime` for expiry conversion.
#[derive(Debug)]
pub struct SystemClock {
    origin: Instant,
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock {
            origin: Instant::now(),
        }
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn unix_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }
}

/// A clock that moves only when told to (for tests and simulations). Both readings
/// advance together.
#[derive(Debug)]
pub struct ManualClock {
    elapsed_ms: AtomicU64,
    unix_origin_ms: u64,
}

impl ManualClock {
    /// A clock whose wall time starts at `unix_ms`.
    pub fn starting_at(unix_ms: u64) -> Self {
        ManualClock {
            elapsed_ms: AtomicU64::new(0),
            unix_origin_ms: unix_ms,
        }
    }

    /// Moves both readings forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.elapsed_ms
            .fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_millis(self.elapsed_ms.load(Ordering::SeqCst))
    }

    fn unix_ms(&self) -> u64 {
        self.unix_origin_ms + self.elapsed_ms.load(Ordering::SeqCst)
    }
}
