//! The statistics counters (`SSL_CTX_sess_*`). Lookup-path counters are striped over slots on
//! cache lines of their own (`spread.rs`) so that threads looking up at once do not fight over
//! one line.

use std::fmt;

use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;

use crate::metrics::{Describe, Metric};
use crate::resumption::Resumptions;
use crate::spread::Spread;

const STRIPES: usize = 8;

fn stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: usize = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
    }
    STRIPE.with(|s| *s)
}

/// A counter that many threads bump often and few read.
pub(crate) struct Striped(Spread);

impl Striped {
    fn new() -> Self {
        Self(Spread::new(STRIPES))
    }

    pub(crate) fn add(&self, n: u64) {
        self.0.get(stripe()).fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn inc(&self) {
        self.add(1);
    }

    fn sum(&self) -> u64 {
        self.0.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

/// A handshake event counted in the cache's statistics, by [`Handshake`](crate::Handshake)
/// only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// A client handshake started (`sess_connect`).
    Connect,
    /// A client renegotiation started (`sess_connect_renegotiate`).
    ConnectRenegotiate,
    /// A client handshake finished (`sess_connect_good`).
    ConnectGood,
    /// A server handshake started (`sess_accept`).
    Accept,
    /// A server renegotiation started (`sess_accept_renegotiate`).
    AcceptRenegotiate,
    /// A server handshake finished (`sess_accept_good`).
    AcceptGood,
    /// A session issued by a server handshake the TLS stack does not report: these drive the
    /// automatic flush in place of good handshakes. Not exported.
    UntrackedIssued,
}

/// The live counters of one cache.
pub(crate) struct Counters {
    pub(crate) hits: Striped,
    pub(crate) cb_hits: Striped,
    pub(crate) misses: Striped,
    pub(crate) timeouts: Striped,
    pub(crate) cache_full: Striped,
    /// One counter per [`Event`], in declaration order.
    handshakes: Spread,
}

impl Counters {
    pub(crate) fn new() -> Self {
        Self {
            hits: Striped::new(),
            cb_hits: Striped::new(),
            misses: Striped::new(),
            timeouts: Striped::new(),
            cache_full: Striped::new(),
            handshakes: Spread::new(7),
        }
    }

    /// Counts a handshake event and returns the counter's new value, exactly (the context
    /// flushes after every 255th good handshake).
    pub(crate) fn count(&self, event: Event) -> u64 {
        self.handshakes
            .get(event as usize)
            .fetch_add(1, Ordering::Relaxed)
            + 1
    }

    pub(crate) fn snapshot(&self, number: usize, size: usize, resumptions: Resumptions) -> Stats {
        let h = |e: Event| self.handshakes.get(e as usize).load(Ordering::Relaxed);
        Stats {
            number,
            size,
            resumptions,
            connect: h(Event::Connect),
            connect_renegotiate: h(Event::ConnectRenegotiate),
            connect_good: h(Event::ConnectGood),
            accept: h(Event::Accept),
            accept_renegotiate: h(Event::AcceptRenegotiate),
            accept_good: h(Event::AcceptGood),
            hits: self.hits.sum(),
            cb_hits: self.cb_hits.sum(),
            misses: self.misses.sum(),
            timeouts: self.timeouts.sum(),
            cache_full: self.cache_full.sum(),
        }
    }
}

impl fmt::Debug for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.snapshot(0, 0, Resumptions::default()), f)
    }
}

/// A snapshot of a cache's statistics, named as OpenSSL's `SSL_CTX_sess_*` functions, with
/// the size limit and why handshakes resumed or not.
///
/// Each counter is exact once the threads that move it have stopped; while they run, a
/// snapshot may catch one counter before and another after the same lookup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Stats {
    /// Sessions in the cache now (`SSL_CTX_sess_number`).
    pub number: usize,
    /// The cache's size limit, 0 for none (`SSL_CTX_sess_get_cache_size`).
    pub size: usize,
    /// Client handshakes started (`SSL_CTX_sess_connect`).
    pub connect: u64,
    /// Client renegotiations started (`SSL_CTX_sess_connect_renegotiate`).
    pub connect_renegotiate: u64,
    /// Client handshakes finished (`SSL_CTX_sess_connect_good`).
    pub connect_good: u64,
    /// Server handshakes started (`SSL_CTX_sess_accept`).
    pub accept: u64,
    /// Server renegotiations started (`SSL_CTX_sess_accept_renegotiate`).
    pub accept_renegotiate: u64,
    /// Server handshakes finished (`SSL_CTX_sess_accept_good`).
    pub accept_good: u64,
    /// Lookups that resumed a session (`SSL_CTX_sess_hits`).
    pub hits: u64,
    /// Sessions found by the get callback (`SSL_CTX_sess_cb_hits`).
    pub cb_hits: u64,
    /// Lookups the internal cache could not answer (`SSL_CTX_sess_misses`).
    pub misses: u64,
    /// Sessions found expired at lookup (`SSL_CTX_sess_timeouts`).
    pub timeouts: u64,
    /// Sessions evicted because the cache was full (`SSL_CTX_sess_cache_full`).
    pub cache_full: u64,
    /// Finished server handshakes by outcome: resumed, or why not (counted by the TLS stack's
    /// adapter, see [`HandshakeRecord`](crate::HandshakeRecord)).
    pub resumptions: Resumptions,
}

impl std::ops::Add for Stats {
    type Output = Self;

    /// Two caches' statistics added up (the servers of a fleet).
    fn add(self, other: Self) -> Self {
        Self {
            number: self.number + other.number,
            size: self.size + other.size,
            resumptions: self.resumptions + other.resumptions,
            connect: self.connect + other.connect,
            connect_renegotiate: self.connect_renegotiate + other.connect_renegotiate,
            connect_good: self.connect_good + other.connect_good,
            accept: self.accept + other.accept,
            accept_renegotiate: self.accept_renegotiate + other.accept_renegotiate,
            accept_good: self.accept_good + other.accept_good,
            hits: self.hits + other.hits,
            cb_hits: self.cb_hits + other.cb_hits,
            misses: self.misses + other.misses,
            timeouts: self.timeouts + other.timeouts,
            cache_full: self.cache_full + other.cache_full,
        }
    }
}

impl Describe for Stats {
    const METRICS: &'static [Metric] = &[
        Metric::gauge("number", "Sessions in the cache (SSL_CTX_sess_number).")
            .named("sessions")
            .reported("sessions cached"),
        Metric::gauge(
            "size",
            "The cache's size limit, 0 for none (SSL_CTX_sess_get_cache_size).",
        )
        .named("size_limit")
        .reported("size limit"),
        Metric::counter(
            "connect",
            "Client handshakes started (SSL_CTX_sess_connect).",
        )
        .reported("connect"),
        Metric::counter(
            "connect_renegotiate",
            "Client renegotiations started (SSL_CTX_sess_connect_renegotiate).",
        )
        .reported("connect_renegotiate"),
        Metric::counter(
            "connect_good",
            "Client handshakes finished (SSL_CTX_sess_connect_good).",
        )
        .reported("connect_good"),
        Metric::counter("accept", "Server handshakes started (SSL_CTX_sess_accept).")
            .reported("accept"),
        Metric::counter(
            "accept_renegotiate",
            "Server renegotiations started (SSL_CTX_sess_accept_renegotiate).",
        )
        .reported("accept_renegotiate"),
        Metric::counter(
            "accept_good",
            "Server handshakes finished (SSL_CTX_sess_accept_good).",
        )
        .reported("accept_good"),
        Metric::counter(
            "hits",
            "Lookups that found a session to resume (SSL_CTX_sess_hits).",
        )
        .reported("hits"),
        Metric::counter(
            "cb_hits",
            "Sessions the get-session callback (the fleet tier) supplied (SSL_CTX_sess_cb_hits).",
        )
        .reported("callback hits"),
        Metric::counter(
            "misses",
            "Lookups the internal cache could not answer (SSL_CTX_sess_misses).",
        )
        .reported("misses"),
        Metric::counter(
            "timeouts",
            "Sessions found expired at lookup (SSL_CTX_sess_timeouts).",
        )
        .reported("timeouts"),
        Metric::counter(
            "cache_full",
            "Sessions evicted because the cache was full (SSL_CTX_sess_cache_full).",
        )
        .reported("evictions (cache full)"),
        Metric::counter(
            "resumptions",
            "Finished server handshakes by outcome: resumed, or why not.",
        )
        .labelled("outcome")
        .with_parts(Resumptions::METRICS)
        .reported("resumption"),
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_add_field_by_field() {
        let one = Stats {
            number: 2,
            hits: 3,
            cb_hits: 1,
            accept_good: 5,
            ..Stats::default()
        };
        let two = Stats {
            number: 1,
            misses: 4,
            accept_good: 1,
            ..Stats::default()
        };
        let sum = one + two;
        assert_eq!((sum.number, sum.hits, sum.cb_hits), (3, 3, 1));
        assert_eq!((sum.misses, sum.accept_good), (4, 6));
    }

    #[test]
    fn striped_counters_sum_across_threads() {
        let c = Counters::new();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        c.hits.inc();
                    }
                    c.count(Event::AcceptGood);
                });
            }
        });
        let stats = c.snapshot(3, 5, Resumptions::default());
        assert_eq!(stats.hits, 4000);
        assert_eq!(stats.accept_good, 4);
        assert_eq!((stats.number, stats.size), (3, 5));
        assert_eq!(c.count(Event::AcceptGood), 5, "count returns the new value");
    }
}
