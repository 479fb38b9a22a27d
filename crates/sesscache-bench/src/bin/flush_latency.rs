//! Lookup latency while a flush of 100k expired sessions runs, beside the idle latency, for
//! sesscache and for OpenSSL's own cache.
//!
//! `cargo run --release -p sesscache-bench --bin flush_latency`
//!
//! One thread looks up random live sessions of a 1M-session cache without pause and records
//! each lookup's latency, into the "idle" histogram or, while the main thread is flushing
//! 100k expired sessions, into the "during flush" one. Five flushes; the expired sessions
//! are put back (not recorded) before each.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use session_cache::{CacheConfig, SessionCache};
use session_core::{MasterKey, ProtocolVersion, Session, SessionBuilder, SessionId};

use sesscache_bench::openssl_ffi as ossl;

const LIVE: usize = 900_000;
const EXPIRED: usize = 100_000;
const ROUNDS: u64 = 5;
const BASE: u64 = 1_000_000_000;
const FOREVER: u64 = 1 << 40;

const IDLE: u8 = 0;
const FLUSHING: u8 = 1;
const REFILLING: u8 = 2;
const STOP: u8 = 3;

fn key(n: usize) -> [u8; 32] {
    let mut k = [0u8; 32];
    k[..8].copy_from_slice(&(n as u64).to_le_bytes());
    k[8..16].copy_from_slice(&(n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
    k
}

fn session(n: usize, time: u64, timeout: u64) -> Session {
    SessionBuilder::new(ProtocolVersion::TLS1_2, time)
        .id(SessionId::new(&key(n)).unwrap())
        .master_key(MasterKey::new(&[7; 48]).unwrap())
        .timeout(timeout)
        .build()
}

struct Report {
    idle: Histogram<u64>,
    during: Histogram<u64>,
    flushes: Vec<Duration>,
}

/// Runs the measurement against any cache: `lookup(n)` must hit for every live n, `refill(r)`
/// adds the expired sessions of round r, and `flush(r)` removes them.
fn measure(
    lookup: impl Fn(usize) -> bool + Sync,
    refill: impl Fn(u64),
    flush: impl Fn(u64),
) -> Report {
    let phase = Arc::new(AtomicU8::new(REFILLING));
    std::thread::scope(|scope| {
        let looker = {
            let (phase, lookup) = (phase.clone(), &lookup);
            scope.spawn(move || {
                let mut rng = SmallRng::seed_from_u64(9);
                let mut idle = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).unwrap();
                let mut during = idle.clone();
                loop {
                    let n = rng.random_range(0..LIVE);
                    let before = phase.load(Ordering::Acquire);
                    if before == STOP {
                        break;
                    }
                    let began = Instant::now();
                    let hit = lookup(n);
                    let took = began.elapsed().as_nanos() as u64;
                    assert!(hit, "a live session was not found");
                    let after = phase.load(Ordering::Acquire);
                    match (before, after) {
                        (IDLE, IDLE) => idle.saturating_record(took.max(1)),
                        (FLUSHING, _) | (_, FLUSHING) => during.saturating_record(took.max(1)),
                        _ => {}
                    }
                }
                (idle, during)
            })
        };
        let mut flushes = Vec::new();
        for round in 1..=ROUNDS {
            phase.store(REFILLING, Ordering::Release);
            refill(round);
            phase.store(IDLE, Ordering::Release);
            std::thread::sleep(Duration::from_millis(300));
            phase.store(FLUSHING, Ordering::Release);
            let began = Instant::now();
            flush(round);
            flushes.push(began.elapsed());
            phase.store(IDLE, Ordering::Release);
            std::thread::sleep(Duration::from_millis(300));
        }
        phase.store(STOP, Ordering::Release);
        let (idle, during) = looker.join().unwrap();
        Report {
            idle,
            during,
            flushes,
        }
    })
}

fn print(name: &str, r: &Report) {
    let us = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1_000.0;
    let mean_flush = r.flushes.iter().sum::<Duration>() / r.flushes.len() as u32;
    println!(
        "{name}: flush of {EXPIRED} expired out of {} took {:.1} ms on average",
        LIVE + EXPIRED,
        mean_flush.as_secs_f64() * 1e3
    );
    for (label, h) in [("idle", &r.idle), ("during flush", &r.during)] {
        println!(
            "  lookups {label:<13} n={:>9}  p50 {:>7.2} us  p99 {:>7.2} us  p99.9 {:>8.2} us  max {:>9.1} us",
            h.len(),
            us(h, 0.5),
            us(h, 0.99),
            us(h, 0.999),
            h.max() as f64 / 1_000.0
        );
    }
}

fn expiring_key(round: u64, j: usize) -> usize {
    LIVE + (round as usize) * EXPIRED + j
}

fn main() {
    // sesscache
    let cache = SessionCache::new(CacheConfig {
        size: 0,
        ..CacheConfig::default()
    });
    let live: Vec<Session> = (0..LIVE).map(|n| session(n, BASE, FOREVER)).collect();
    for s in &live {
        cache.add(s).unwrap();
    }
    let ours = measure(
        |n| cache.get(ProtocolVersion::TLS1_2, &key(n)).is_some(),
        |round| {
            for j in 0..EXPIRED {
                cache
                    .add(&session(
                        expiring_key(round, j),
                        BASE + round * 1_000_000 - 1 - j as u64,
                        0,
                    ))
                    .unwrap();
            }
        },
        |round| assert_eq!(cache.flush_expired(BASE + round * 1_000_000), EXPIRED),
    );
    drop(cache);
    drop(live);
    print("sesscache", &ours);

    // OpenSSL: its flush holds the context's write lock from start to end.
    let ctx = ossl::Ctx::new(0);
    let held: Vec<_> = (0..LIVE)
        .map(|n| ctx.session(&key(n), BASE, FOREVER))
        .collect();
    for s in &held {
        assert!(ctx.add(s));
    }
    let openssl = {
        let ctx = &ctx;
        measure(
            |n| {
                thread_local! {
                    static CONN: std::cell::RefCell<Option<ossl::Conn>> = const { std::cell::RefCell::new(None) };
                }
                CONN.with(|c| {
                    let mut c = c.borrow_mut();
                    let conn = c.get_or_insert_with(|| ctx.conn());
                    ctx.has(conn, &key(n))
                })
            },
            |round| {
                for j in 0..EXPIRED {
                    let s = ctx.session(
                        &key(expiring_key(round, j)),
                        BASE + round * 1_000_000 - 1 - j as u64,
                        0,
                    );
                    assert!(ctx.add(&s));
                }
            },
            |round| ctx.flush(BASE + round * 1_000_000),
        )
    };
    print("openssl", &openssl);
    drop(held);
}
