//! Adds to a full cache and nothing else, from one or more threads, and prints the wall time
//! per iteration (one add on every thread), as `add_full` does: a quick driver for comparing
//! two builds of the add path, and a target for a profiler.
//!
//! `cargo run --release -p sesscache-bench --bin evicting_adds [-- THREADS [ADDS_PER_THREAD]]`
//! (defaults: 2 threads, 2,000,000 adds each)
//!
//! The cache holds 100,000 sessions; each thread cycles through its own 200,000 others, so
//! every add is of a session not cached and evicts one. Under callgrind, count one add's
//! instructions with `--toggle-collect='session_cache::cache::SessionCache::add'` (the
//! 100,000 adds that fill the cache are counted too). Criterion's `add_full` group is the
//! benchmark; this is for comparing builds of the add path and for profilers.

use std::sync::Barrier;
use std::time::Instant;

use session_cache::{CacheConfig, SessionCache};
use session_core::{MasterKey, ProtocolVersion, Session, SessionBuilder, SessionId};

const CACHED: usize = 100_000;
const RING: usize = 2 * CACHED;

fn session(n: usize) -> Session {
    let mut id = [0u8; 32];
    id[..8].copy_from_slice(&(n as u64).to_le_bytes());
    id[8..16].copy_from_slice(&(n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
    SessionBuilder::new(ProtocolVersion::TLS1_2, 1_700_000_000)
        .id(SessionId::new(&id).expect("32 bytes"))
        .master_key(MasterKey::new(&[7; 48]).expect("48 bytes"))
        .timeout(1_000_000)
        .build()
}

fn arg(n: usize, default: usize, name: &str) -> usize {
    match std::env::args().nth(n).map(|a| a.parse::<usize>()) {
        None => default,
        Some(Ok(v)) if v > 0 => v,
        Some(_) => {
            eprintln!("evicting_adds: {name} must be a positive whole number");
            std::process::exit(2);
        }
    }
}

fn main() {
    let threads = arg(1, 2, "THREADS");
    let adds = arg(2, 2_000_000, "ADDS_PER_THREAD");
    let pool: Vec<Session> = (0..CACHED + threads * RING).map(session).collect();
    let cache = SessionCache::new(CacheConfig {
        size: CACHED,
        ..CacheConfig::default()
    });
    for s in &pool[..CACHED] {
        cache.add(s).expect("a 32-byte id");
    }
    let start_line = Barrier::new(threads);
    let began = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..threads {
            let (cache, pool, start_line) = (&cache, &pool, &start_line);
            scope.spawn(move || {
                start_line.wait();
                let mine = &pool[CACHED + t * RING..CACHED + (t + 1) * RING];
                for j in 0..adds {
                    cache.add(&mine[j % RING]).expect("a 32-byte id");
                }
            });
        }
    });
    let per_iteration = began.elapsed().as_nanos() as f64 / adds as f64;
    println!("{threads}t: {per_iteration:.1} ns per iteration");
}
