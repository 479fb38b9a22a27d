//! The server's own counters: live (for a metrics endpoint) and in the report.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::Serialize;
use sesscache_workload::trace::Losses;
use session_cache::metrics::{Describe, Metric};

/// The counters as the connections change them.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    pub(crate) connections: AtomicU64,
    pub(crate) resumed: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) refused: AtomicU64,
    pub(crate) in_flight: AtomicU64,
    pub(crate) peak_in_flight: AtomicU64,
    pub(crate) flushes: AtomicU64,
    pub(crate) flushed: AtomicU64,
}

impl Counts {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// One connection held: counted in `in_flight` (and `peak_in_flight`) while it lives.
pub(crate) struct InFlight(Arc<Counts>);

impl InFlight {
    pub(crate) fn enter(counts: &Arc<Counts>) -> Self {
        let now = counts.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        counts.peak_in_flight.fetch_max(now, Ordering::Relaxed);
        Self(counts.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A handle on a server's counters that reads them at any time, from any thread (a metrics
/// endpoint's). Cloning it is cheap.
#[derive(Debug, Clone)]
pub struct Counters {
    pub(crate) counts: Arc<Counts>,
    pub(crate) losses: Option<Arc<Losses>>,
}

impl Counters {
    /// The counters now, with the trace's losses if the server records one.
    pub fn snapshot(&self) -> CountsNow {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let counts = &self.counts;
        CountsNow {
            connections: get(&counts.connections),
            resumed: get(&counts.resumed),
            failed: get(&counts.failed),
            refused: get(&counts.refused),
            in_flight: get(&counts.in_flight),
            peak_in_flight: get(&counts.peak_in_flight),
            flushes: get(&counts.flushes),
            flushed: get(&counts.flushed),
            trace_dropped: self.losses.as_deref().map(Losses::dropped),
            trace_write_errors: self.losses.as_deref().map(Losses::write_errors),
        }
    }
}

/// The server's counters at one moment; each field's metric and report label are in its
/// [`Describe`] description.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CountsNow {
    /// Connections served (accepted and not refused).
    pub connections: u64,
    /// Connections whose handshake resumed a session.
    pub resumed: u64,
    /// Connections whose handshake failed or timed out.
    pub failed: u64,
    /// Connections closed at once because [`max_pending`](crate::ServerConfig::max_pending)
    /// were held.
    pub refused: u64,
    /// Connections held now.
    pub in_flight: u64,
    /// The most connections held at once.
    pub peak_in_flight: u64,
    /// Timed flushes of expired sessions.
    pub flushes: u64,
    /// Sessions the timed flushes removed.
    pub flushed: u64,
    /// Trace lines dropped because the trace's writer was behind (`None`: no trace).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_dropped: Option<u64>,
    /// Trace lines lost because writing them failed (`None`: no trace).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_write_errors: Option<u64>,
}

/// The server's counters, in the order of its report.
impl Describe for CountsNow {
    const METRICS: &'static [Metric] = &[
        Metric::counter("connections", "Connections accepted (and not refused).")
            .reported("connections"),
        Metric::counter("resumed", "Connections whose handshake resumed a session.")
            .reported("resumed"),
        Metric::counter("failed", "Connections whose handshake failed or timed out.")
            .reported("failed"),
        Metric::counter(
            "refused",
            "Connections closed at once because the most allowed were held (serve --max-pending).",
        )
        .reported("refused (too many)"),
        Metric::counter(
            "trace_dropped",
            "Trace lines dropped because the trace's writer was behind (serve --trace).",
        )
        .reported("trace lines dropped"),
        Metric::counter(
            "trace_write_errors",
            "Trace lines lost because writing them failed (serve --trace).",
        )
        .reported("trace write errors"),
        Metric::gauge("peak_in_flight", "The most connections served at once.")
            .reported("most at once"),
        Metric::gauge("in_flight", "Connections being served now."),
        Metric::counter("flushes", "Timed flushes of expired sessions.").reported("timed flushes"),
        Metric::counter("flushed", "Sessions the timed flushes removed.")
            .reported("sessions they removed"),
    ];
}
