//! Percentiles of lookups through the fleet tier on a loopback `redis-server`: a local hit, a
//! remote hit, a remote miss and the plain blocking `GET` beside them (the round trip's
//! floor), then what a hung store costs a lookup before and after the breaker opens.
//!
//! `cargo run --release -p sesscache-bench --bin tier_latency [-- ROUNDS]` (default 20000
//! lookups of each kind).

use std::hint::black_box;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use sesscache_bench::fleet::{blocking_get, request, Fleet};

const SESSIONS: usize = 1_000;

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds")
}

fn time(rounds: usize, mut f: impl FnMut(usize)) -> Histogram<u64> {
    let mut hist = histogram();
    for i in 0..rounds {
        let began = Instant::now();
        f(i);
        hist.saturating_record(began.elapsed().as_nanos().max(1) as u64);
    }
    hist
}

fn row(name: &str, h: &Histogram<u64>) {
    let us = |q: f64| h.value_at_quantile(q) as f64 / 1_000.0;
    println!(
        "{name:<28} {:>8} {:>10.1} {:>10.1} {:>10.1} {:>10.1}",
        h.len(),
        us(0.5),
        us(0.99),
        us(0.999),
        h.max() as f64 / 1_000.0
    );
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("ROUNDS is a number"))
        .unwrap_or(20_000);
    let budget = Duration::from_millis(5);
    let fleet = Fleet::start(SESSIONS, budget, 5);
    println!(
        "{:<28} {:>8} {:>10} {:>10} {:>10} {:>10}",
        "lookup", "n", "p50 us", "p99 us", "p99.9 us", "max us"
    );
    // Warm up every path once.
    for s in fleet.local.iter().chain(&fleet.remote) {
        black_box(fleet.cache.lookup(&request(s)));
    }
    let local = time(rounds, |i| {
        black_box(fleet.cache.lookup(&request(&fleet.local[i % SESSIONS])));
    });
    let remote = time(rounds, |i| {
        black_box(fleet.cache.lookup(&request(&fleet.remote[i % SESSIONS])));
    });
    let absent: Vec<_> = (0..SESSIONS).map(Fleet::absent).collect();
    let miss = time(rounds, |i| {
        black_box(fleet.cache.lookup(&request(&absent[i % SESSIONS])));
    });
    let names = fleet.remote_names();
    let mut conn = fleet.blocking_connection();
    let floor = time(rounds, |i| {
        black_box(blocking_get(&mut conn, &names[i % SESSIONS]));
    });
    row("local hit", &local);
    row("remote hit", &remote);
    row("remote miss", &miss);
    row("redis GET (blocking, floor)", &floor);
    let healthy = fleet.tier.stats();
    println!(
        "healthy store: {} of {} remote calls past the budget",
        healthy.timeouts,
        healthy.remote_hits + healthy.remote_misses + healthy.timeouts
    );

    fleet.redis.hang();
    let before = time(5, |i| {
        black_box(fleet.cache.lookup(&request(&fleet.remote[i])));
    });
    let after = time(rounds, |i| {
        black_box(fleet.cache.lookup(&request(&fleet.remote[i % SESSIONS])));
    });
    fleet.redis.resume();
    row("hung store, breaker closed", &before);
    row("hung store, breaker open", &after);
    let stats = fleet.tier.stats();
    println!(
        "budget {budget:?}; breaker opened {} time(s); {} timeouts, {} skipped",
        stats.breaker_opens, stats.timeouts, stats.skipped
    );
}
