//! The tier's counters, kept beside the cache's own.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

#[derive(Default)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    pub(crate) fn inc(&self) {
        self.add(1);
    }

    pub(crate) fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) remote_hits: Counter,
    pub(crate) remote_misses: Counter,
    pub(crate) already_used: Counter,
    pub(crate) open_failures: Counter,
    pub(crate) errors: Counter,
    pub(crate) timeouts: Counter,
    pub(crate) skipped: Counter,
    pub(crate) writes: Counter,
    pub(crate) dropped_writes: Counter,
    pub(crate) write_errors: Counter,
    pub(crate) deletes: Counter,
}

/// Whether handshakes ask the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Yes.
    Closed,
    /// No: it failed too often in a row. A background ping closes it once the store answers.
    Open,
}

/// A snapshot of the tier's counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TierStats {
    /// Sessions the store supplied after an internal miss (TLS 1.2 lookups and TLS 1.3
    /// tickets claimed).
    pub remote_hits: u64,
    /// The store was asked and had nothing under the name.
    pub remote_misses: u64,
    /// TLS 1.3 tickets refused because the store says they were used (on this server or
    /// another).
    pub already_used: u64,
    /// Values that did not open: corrupted, sealed under a key not in the key file, or for
    /// another session id context. Each is a miss.
    pub open_failures: u64,
    /// Store calls that failed (refused, not connected, an error reply).
    pub errors: u64,
    /// Store calls not answered within the budget.
    pub timeouts: u64,
    /// Lookups that did not ask the store because the breaker was open.
    pub skipped: u64,
    /// How often the breaker opened.
    pub breaker_opens: u64,
    /// The breaker now.
    pub breaker: BreakerState,
    /// Sessions written to the store.
    pub writes: u64,
    /// Writes given up: the queue was full or the breaker open.
    pub dropped_writes: u64,
    /// Writes (and deletes) the store failed or did not answer in time.
    pub write_errors: u64,
    /// Sessions deleted from the store (a removal on this server).
    pub deletes: u64,
    /// Writes and deletes waiting in the queue.
    pub queued: u64,
}

impl TierStats {
    /// Two tiers' counters added up (several servers' in one process): the breaker is open
    /// if either is.
    pub fn merged(&self, other: &Self) -> Self {
        Self {
            remote_hits: self.remote_hits + other.remote_hits,
            remote_misses: self.remote_misses + other.remote_misses,
            already_used: self.already_used + other.already_used,
            open_failures: self.open_failures + other.open_failures,
            errors: self.errors + other.errors,
            timeouts: self.timeouts + other.timeouts,
            skipped: self.skipped + other.skipped,
            breaker_opens: self.breaker_opens + other.breaker_opens,
            breaker: if self.breaker == BreakerState::Open {
                self.breaker
            } else {
                other.breaker
            },
            writes: self.writes + other.writes,
            dropped_writes: self.dropped_writes + other.dropped_writes,
            write_errors: self.write_errors + other.write_errors,
            deletes: self.deletes + other.deletes,
            queued: self.queued + other.queued,
        }
    }
}

impl Counters {
    pub(crate) fn snapshot(
        &self,
        breaker: BreakerState,
        breaker_opens: u64,
        queued: u64,
    ) -> TierStats {
        TierStats {
            remote_hits: self.remote_hits.get(),
            remote_misses: self.remote_misses.get(),
            already_used: self.already_used.get(),
            open_failures: self.open_failures.get(),
            errors: self.errors.get(),
            timeouts: self.timeouts.get(),
            skipped: self.skipped.get(),
            breaker_opens,
            breaker,
            writes: self.writes.get(),
            dropped_writes: self.dropped_writes.get(),
            write_errors: self.write_errors.get(),
            deletes: self.deletes.get(),
            queued,
        }
    }
}
