//! Where a lookup's time goes, counted rather than timed: runs cache hits, ours or the
//! ceiling's (`benches/cache.rs`'s immutable `HashMap` of the same sessions), in one function
//! that a cache simulator can be told to count alone. This machine's VM gives `perf` no
//! hardware counters, so the counts come from callgrind's simulated caches:
//!
//! ```text
//! cargo build --release -p sesscache-bench --bin lookup_misses
//! valgrind --tool=callgrind --cache-sim=yes --callgrind-out-file=/dev/null \
//!     --toggle-collect='*lookup_misses::lookups*' \
//!     target/release/lookup_misses sesscache|ceiling [SESSIONS] [LOOKUPS]
//! ```
//!
//! Divide callgrind's "Collected" events (instructions, data reads, D1 and last-level read
//! misses, ...) by LOOKUPS. Defaults: 1,000,000 sessions, 200,000 uniformly random lookups,
//! every one a hit (checked). Both contenders read the same session objects, so the
//! difference is the map and the reference protocol, not where sessions sit in memory.

use std::collections::HashMap;
use std::hint::black_box;
use std::process::exit;

use session_cache::{CacheConfig, SessionCache};
use session_core::{MasterKey, ProtocolVersion, Session, SessionBuilder, SessionId};

type Key = (u16, [u8; 32]);

fn usage() -> ! {
    eprintln!("usage: lookup_misses sesscache|ceiling [SESSIONS] [LOOKUPS]");
    exit(2)
}

fn arg(n: usize, default: usize) -> usize {
    match std::env::args().nth(n).map(|a| a.parse()) {
        None => default,
        Some(Ok(v)) if v > 0 => v,
        Some(_) => usage(),
    }
}

/// A small xorshift: the same key order for both contenders, with no dependency.
fn plan(sessions: usize, lookups: usize) -> Vec<usize> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..lookups)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % sessions as u64) as usize
        })
        .collect()
}

/// The counted part: every lookup of `plan`, each taking and dropping a reference.
#[inline(never)]
fn lookups(plan: &[usize], keys: &[Key], get: impl Fn(&Key) -> Option<Session>) -> usize {
    plan.iter()
        .filter(|&&i| black_box(get(&keys[i])).is_some())
        .count()
}

fn main() {
    let contender = std::env::args().nth(1).unwrap_or_else(|| usage());
    if contender != "sesscache" && contender != "ceiling" {
        usage();
    }
    let sessions = arg(2, 1_000_000);
    let plan = plan(sessions, arg(3, 200_000));

    let keys: Vec<Key> = (0..sessions as u64)
        .map(|i| {
            let mut id = [0u8; 32];
            id[..8].copy_from_slice(&i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
            id[8..16].copy_from_slice(&i.to_le_bytes());
            (ProtocolVersion::TLS1_2.wire(), id)
        })
        .collect();
    let cache = SessionCache::new(CacheConfig {
        size: 0,
        ..CacheConfig::default()
    });
    for (_, id) in &keys {
        let session = SessionBuilder::new(ProtocolVersion::TLS1_2, 1_700_000_000)
            .id(SessionId::new(id).expect("32 bytes"))
            .master_key(MasterKey::new(&[7; 48]).expect("48 bytes"))
            .timeout(1 << 30)
            .build();
        cache.add(&session).expect("no size limit");
    }

    let hits = if contender == "sesscache" {
        lookups(&plan, &keys, |(_, id)| {
            cache.get(ProtocolVersion::TLS1_2, id)
        })
    } else {
        let ceiling: HashMap<Key, Session, ahash::RandomState> = keys
            .iter()
            .map(|key| {
                let session = cache.get(ProtocolVersion::TLS1_2, &key.1).expect("cached");
                (*key, session)
            })
            .collect();
        lookups(&plan, &keys, |key| ceiling.get(key).cloned())
    };
    assert_eq!(hits, plan.len(), "every lookup must hit");
    println!("{contender}: {hits} lookups over {sessions} sessions, all hits");
}
