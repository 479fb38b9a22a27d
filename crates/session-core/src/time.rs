//! Time as sessions see it: whole seconds since the Unix epoch, read through an injectable
//! [`Clock`] so that tests move time by hand instead of sleeping.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, as OpenSSL keeps `SSL_SESSION`'s time.
pub type UnixTime = u64;

/// A source of the current time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time in seconds since the Unix epoch.
    fn now(&self) -> UnixTime;
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixTime {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}

/// A clock that moves only when told to: for tests and simulations.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// A clock that reads `now` until it is set or advanced.
    pub fn new(now: UnixTime) -> Self {
        Self(AtomicU64::new(now))
    }

    /// Sets the time.
    pub fn set(&self, now: UnixTime) {
        self.0.store(now, Ordering::SeqCst);
    }

    /// Moves the time forward to `now` if it is behind (never back): several threads may
    /// each report how far they got.
    pub fn advance_to(&self, now: UnixTime) {
        self.0.fetch_max(now, Ordering::SeqCst);
    }

    /// Moves the time forward by `secs` (saturating), returning the new time.
    pub fn advance(&self, secs: u64) -> UnixTime {
        let mut cur = self.0.load(Ordering::SeqCst);
        loop {
            let next = cur.saturating_add(secs);
            match self
                .0
                .compare_exchange(cur, next, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return next,
                Err(actual) => cur = actual,
            }
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> UnixTime {
        self.0.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(100);
        assert_eq!(clock.now(), 100);
        assert_eq!(clock.advance(5), 105);
        clock.set(7);
        assert_eq!(clock.now(), 7);
        assert_eq!(clock.advance(u64::MAX), u64::MAX, "saturates");
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now() > 1_577_836_800);
    }
}
