//! The tier's counters, kept beside the cache's own.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use session_cache::metrics::{Describe, Metric};

use crate::store::{Every, Window};

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
    pub(crate) dropped_deletes: Counter,
    pub(crate) refused: Counter,
    pub(crate) local_claims: Counter,
    pub(crate) lost_tickets: Counter,
    pub(crate) later_offers: Counter,
    pub(crate) in_flight: std::sync::Arc<AtomicU64>,
    pub(crate) round_trip_us: AtomicU64,
    pub(crate) lookup_window: Window,
    pub(crate) refusal_log: Every,
    pub(crate) slow_log: Every,
}

impl Default for Counters {
    fn default() -> Self {
        Self {
            remote_hits: Counter::default(),
            remote_misses: Counter::default(),
            already_used: Counter::default(),
            open_failures: Counter::default(),
            errors: Counter::default(),
            timeouts: Counter::default(),
            skipped: Counter::default(),
            writes: Counter::default(),
            dropped_writes: Counter::default(),
            write_errors: Counter::default(),
            deletes: Counter::default(),
            dropped_deletes: Counter::default(),
            refused: Counter::default(),
            local_claims: Counter::default(),
            lost_tickets: Counter::default(),
            later_offers: Counter::default(),
            in_flight: std::sync::Arc::new(AtomicU64::new(0)),
            round_trip_us: AtomicU64::new(0),
            lookup_window: Window::new(),
            refusal_log: Every::new(Duration::from_secs(10)),
            slow_log: Every::new(Duration::from_secs(60)),
        }
    }
}

/// Whether handshakes ask the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Yes.
    Closed,
    /// No: it (one of its nodes, on a cluster) failed too often in a row. A background ping
    /// closes it once the node answers within the budget.
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
    /// Lookups not answered within the budget.
    pub timeouts: u64,
    /// Of the last full window of 64 lookups that asked the store, the percentage that timed
    /// out. Above 50 the store is slower than the budget (a warning says so).
    pub recent_timeout_percent: u64,
    /// The slowest node's answer to the prober's last ping, in microseconds (a timed-out
    /// ping counts as the write budget): what a lookup costs now. Above the budget, lookups
    /// time out (a warning says so).
    pub round_trip_us: u64,
    /// Store calls the store refused (`NOPERM`, `WRONGPASS`, `NOAUTH`): its ACL or the
    /// password does not let the tier in. Each is also an error, and logged.
    pub refused: u64,
    /// Lookups that did not ask the store because the breaker was open.
    pub skipped: u64,
    /// Offers after a handshake's first, answered without the store.
    pub later_offers: u64,
    /// TLS 1.3 tickets this server issued and claimed without the store, their write never
    /// having left it (cancelled).
    pub local_claims: u64,
    /// TLS 1.3 tickets this server issued and wrote, refused because the store no longer has
    /// them (restarted, flushed, evicted, failed over): the store cannot show them unused.
    pub lost_tickets: u64,
    /// How often a breaker (of any node, lookups or writes) opened.
    pub breaker_opens: u64,
    /// Whether lookups skip the store: open when any node's lookups are skipped.
    pub breaker: BreakerState,
    /// Nodes whose lookups are skipped now.
    pub nodes_open: u64,
    /// Store calls started and not yet finished or dropped (also those a handshake stopped
    /// waiting for).
    pub in_flight: u64,
    /// Sessions written to the store.
    pub writes: u64,
    /// Writes given up: the queue was full or the breaker open.
    pub dropped_writes: u64,
    /// Writes (and deletes) the store failed or did not answer in time.
    pub write_errors: u64,
    /// Sessions deleted from the store (a removal on this server).
    pub deletes: u64,
    /// Deletes given up (the queue was full or the breaker open): removal is best effort,
    /// and such a session stays in the store until it expires.
    pub dropped_deletes: u64,
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
            recent_timeout_percent: self
                .recent_timeout_percent
                .max(other.recent_timeout_percent),
            round_trip_us: self.round_trip_us.max(other.round_trip_us),
            refused: self.refused + other.refused,
            skipped: self.skipped + other.skipped,
            later_offers: self.later_offers + other.later_offers,
            local_claims: self.local_claims + other.local_claims,
            lost_tickets: self.lost_tickets + other.lost_tickets,
            nodes_open: self.nodes_open + other.nodes_open,
            in_flight: self.in_flight + other.in_flight,
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
            dropped_deletes: self.dropped_deletes + other.dropped_deletes,
            queued: self.queued + other.queued,
        }
    }
}

/// In the order of the tier's report; the in-flight and queued levels, the recent timeout
/// percentage and the breaker's openings and open nodes are metrics only (the breaker's line
/// shows the last two).
impl Describe for TierStats {
    const METRICS: &'static [Metric] = &[
        Metric::counter(
            "remote_hits",
            "Sessions the shared store supplied after an internal miss.",
        )
        .reported("remote hits"),
        Metric::counter(
            "remote_misses",
            "Store lookups that found nothing under the name.",
        )
        .reported("remote misses"),
        Metric::counter(
            "already_used",
            "TLS 1.3 tickets refused because the store says they were used.",
        )
        .reported("tickets already used"),
        Metric::counter(
            "open_failures",
            "Values that did not open (damaged, unknown key, other context).",
        )
        .reported("values not opened"),
        Metric::counter(
            "lost_tickets",
            "TLS 1.3 tickets refused because the store lost their value (restart, flush, eviction, failover).",
        )
        .reported("tickets lost by store"),
        Metric::counter(
            "local_claims",
            "TLS 1.3 tickets claimed without the store, their write never having left this server.",
        )
        .reported("tickets claimed here"),
        Metric::counter(
            "later_offers",
            "Offers after a handshake's first, answered without the store.",
        )
        .reported("later offers"),
        Metric::counter("errors", "Store calls that failed.").reported("errors"),
        Metric::counter(
            "refused",
            "Store calls the store refused (NOPERM, WRONGPASS, NOAUTH): check its ACL and the password.",
        )
        .reported("refused by the store"),
        Metric::counter("timeouts", "Lookups not answered within the budget.").reported("timeouts"),
        Metric::gauge(
            "recent_timeout_percent",
            "Of the last 64 lookups that asked the store, the percentage that timed out (above 50: the budget is below the store's round trip).",
        ),
        Metric::counter(
            "skipped",
            "Lookups that did not ask the store because the breaker was open.",
        )
        .reported("skipped (breaker)"),
        Metric::gauge(
            "breaker",
            "The breaker's state now (1 for the current one): open when any node's lookups are skipped.",
        )
        .labelled("state")
        .reported("breaker"),
        Metric::counter("breaker_opens", "How often a node's breaker opened."),
        Metric::gauge("nodes_open", "Store nodes whose lookups are skipped now."),
        Metric::gauge(
            "round_trip_us",
            "The slowest store node's answer to the last ping, in microseconds (above the budget, lookups time out).",
        )
        .reported("round trip"),
        Metric::gauge(
            "in_flight",
            "Store calls started and not yet finished or dropped.",
        ),
        Metric::counter("writes", "Sessions written to the store.").reported("writes"),
        Metric::counter(
            "dropped_writes",
            "Writes given up: the queue was full or the breaker open.",
        )
        .reported("dropped writes"),
        Metric::counter(
            "write_errors",
            "Writes and deletes the store failed or did not answer in time.",
        )
        .reported("write errors"),
        Metric::counter("deletes", "Sessions deleted from the store.").reported("deletes"),
        Metric::counter(
            "dropped_deletes",
            "Deletes given up (queue full or breaker open): removal is best effort.",
        )
        .reported("dropped deletes"),
        Metric::gauge("queued", "Writes and deletes waiting in the queue."),
    ];
}

impl Counters {
    pub(crate) fn snapshot(&self, breakers: Breakers, queued: u64) -> TierStats {
        TierStats {
            remote_hits: self.remote_hits.get(),
            remote_misses: self.remote_misses.get(),
            already_used: self.already_used.get(),
            open_failures: self.open_failures.get(),
            errors: self.errors.get(),
            timeouts: self.timeouts.get(),
            recent_timeout_percent: self.lookup_window.percent(),
            round_trip_us: self.round_trip_us.load(Ordering::Relaxed),
            refused: self.refused.get(),
            skipped: self.skipped.get(),
            later_offers: self.later_offers.get(),
            local_claims: self.local_claims.get(),
            lost_tickets: self.lost_tickets.get(),
            breaker_opens: breakers.opens,
            breaker: if breakers.open > 0 {
                BreakerState::Open
            } else {
                BreakerState::Closed
            },
            nodes_open: breakers.open,
            in_flight: self.in_flight.load(Ordering::Relaxed),
            writes: self.writes.get(),
            dropped_writes: self.dropped_writes.get(),
            write_errors: self.write_errors.get(),
            deletes: self.deletes.get(),
            dropped_deletes: self.dropped_deletes.get(),
            queued,
        }
    }
}

/// The nodes' breakers, summed up for a snapshot.
pub(crate) struct Breakers {
    /// Nodes whose lookups are skipped.
    pub(crate) open: u64,
    /// Openings, all nodes and sides.
    pub(crate) opens: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_of_the_tier_statistics_is_described() {
        let stats = Counters::default().snapshot(Breakers { open: 1, opens: 2 }, 3);
        assert_eq!(sesscache_metrics::undescribed(&stats), Vec::<String>::new());
    }
}
