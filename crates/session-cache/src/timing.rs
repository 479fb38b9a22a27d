//! How long cache operations take, as histograms with fixed buckets, for the operator's
//! metrics. Off by default: an embedding that does not export metrics pays one relaxed load
//! per operation, and no clock read.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use serde::Serialize;

use crate::metrics::{Describe, Metric};
use crate::spread::Spread;

/// A timed cache operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Operation {
    /// A server's lookup ([`lookup`](crate::SessionCache::lookup) or
    /// [`lookup_take`](crate::SessionCache::lookup_take)), the get and take callbacks (and so
    /// a shared store's round trip) included.
    Lookup,
    /// An [`add`](crate::SessionCache::add), eviction included.
    Add,
    /// A [`remove`](crate::SessionCache::remove).
    Remove,
    /// A flush, of expired sessions or of all.
    Flush,
}

impl Operation {
    /// Every operation, in a fixed order.
    pub const ALL: [Operation; 4] = [Self::Lookup, Self::Add, Self::Remove, Self::Flush];

    /// The operation's name, as the metrics spell it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Lookup => "lookup",
            Self::Add => "add",
            Self::Remove => "remove",
            Self::Flush => "flush",
        }
    }
}

/// The buckets' upper bounds, in nanoseconds: from a local hit (tens of nanoseconds) to a
/// shared store's time budget and past it, and a flush of a large cache.
const BOUNDS_NS: [u64; 18] = [
    100,
    250,
    500,
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
];

/// The distribution of one operation's durations.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Latency {
    /// Operations timed.
    pub count: u64,
    /// Their durations added up, in seconds.
    pub sum_seconds: f64,
    /// (upper bound in seconds, operations that took at most that long), in increasing
    /// order; the last bound is infinite and its count is `count`.
    pub buckets: Vec<(f64, u64)>,
}

/// The histogram of each operation's durations, one series per operation.
impl Describe for Latency {
    const METRICS: &'static [Metric] = &[Metric::histogram(
        "operation_duration_seconds",
        "How long cache operations took (lookups include the shared store's round trip).",
    )
    .labelled("op")];
}

/// One operation's live histogram: a counter per bucket, the overflow, and the sum.
struct Histogram {
    /// `BOUNDS_NS.len()` buckets, then the overflow, then the sum of nanoseconds.
    counts: Spread,
}

impl Histogram {
    fn new() -> Self {
        Self {
            counts: Spread::new(BOUNDS_NS.len() + 2),
        }
    }

    fn observe(&self, nanos: u64) {
        let bucket = BOUNDS_NS.partition_point(|&bound| bound < nanos);
        self.counts.get(bucket).fetch_add(1, Ordering::Relaxed);
        self.counts
            .get(BOUNDS_NS.len() + 1)
            .fetch_add(nanos, Ordering::Relaxed);
    }

    fn snapshot(&self) -> Latency {
        let mut buckets = Vec::with_capacity(BOUNDS_NS.len() + 1);
        let mut seen = 0;
        for (i, bound) in BOUNDS_NS
            .iter()
            .map(|&ns| ns as f64 / 1e9)
            .chain([f64::INFINITY])
            .enumerate()
        {
            seen += self.counts.get(i).load(Ordering::Relaxed);
            buckets.push((bound, seen));
        }
        let sum = self.counts.get(BOUNDS_NS.len() + 1).load(Ordering::Relaxed);
        Latency {
            count: seen,
            sum_seconds: sum as f64 / 1e9,
            buckets,
        }
    }
}

/// The cache's timing: whether it is on, and a histogram per operation.
pub(crate) struct Timing {
    on: AtomicBool,
    histograms: [Histogram; 4],
}

impl Timing {
    pub(crate) fn new(on: bool) -> Self {
        Self {
            on: AtomicBool::new(on),
            histograms: std::array::from_fn(|_| Histogram::new()),
        }
    }

    pub(crate) fn set(&self, on: bool) {
        self.on.store(on, Ordering::Relaxed);
    }

    pub(crate) fn is_on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    /// Runs `f` (operation `op`), timing it if timing is on.
    #[inline]
    pub(crate) fn time<T>(&self, op: Operation, f: impl FnOnce() -> T) -> T {
        if !self.is_on() {
            return f();
        }
        let started = Instant::now();
        let out = f();
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.histograms[op as usize].observe(nanos);
        out
    }

    pub(crate) fn snapshot(&self, op: Operation) -> Latency {
        self.histograms[op as usize].snapshot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_land_in_their_buckets_and_add_up() {
        let h = Histogram::new();
        for nanos in [50, 100, 101, 3_000, 2_000_000_000] {
            h.observe(nanos);
        }
        let s = h.snapshot();
        assert_eq!(s.count, 5);
        assert_eq!(s.buckets[0], (100e-9, 2), "at most 100 ns: 50 and 100");
        assert_eq!(s.buckets[1].1, 3);
        assert_eq!(s.buckets[5].1, 4, "3 µs is within 5 µs");
        assert_eq!(s.buckets[BOUNDS_NS.len() - 1].1, 4);
        assert_eq!(*s.buckets.last().unwrap(), (f64::INFINITY, 5));
        assert!((s.sum_seconds - 2.000_003_251).abs() < 1e-12);
    }

    #[test]
    fn timing_off_records_nothing() {
        let t = Timing::new(false);
        assert_eq!(t.time(Operation::Add, || 7), 7);
        t.set(true);
        assert_eq!(t.time(Operation::Add, || 8), 8);
        assert_eq!(t.snapshot(Operation::Add).count, 1);
        assert_eq!(t.snapshot(Operation::Lookup).count, 0);
    }
}
