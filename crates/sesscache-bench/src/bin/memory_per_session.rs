//! Measures how much memory the cache adds per cached session, beyond the session's own data,
//! with a counting global allocator.
//!
//! `cargo run --release -p sesscache-bench --bin memory_per_session [-- SESSIONS]` (default 1,000,000)
//!
//! The sessions are made and held first; the figure is the growth of live heap bytes from
//! adding them all to a cache (map tables, expiry order, shards), divided by their number: once
//! after the cache has served some lookups (the steady state: tables it outgrew while
//! filling are reclaimed through the epoch by then), and once right after the adds.

use session_cache::{CacheConfig, SessionCache};
use session_core::{MasterKey, ProtocolVersion, Session, SessionBuilder, SessionId};

use test_support::counting_alloc::{live_bytes, Counting};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn main() {
    let n: usize = match std::env::args().nth(1).map(|a| a.parse()) {
        None => 1_000_000,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("memory_per_session: SESSIONS must be a positive whole number");
            std::process::exit(2);
        }
    };
    let before_sessions = live_bytes();
    let sessions: Vec<Session> = (0..n as u64)
        .map(|i| {
            let mut id = [0u8; 32];
            id[..8].copy_from_slice(&i.to_le_bytes());
            SessionBuilder::new(ProtocolVersion::TLS1_3, 1_700_000_000)
                .id(SessionId::new(&id).unwrap())
                .master_key(MasterKey::new(&[7; 48]).unwrap())
                .timeout(7_200 + i % 600)
                .build()
        })
        .collect();
    let own = (live_bytes() - before_sessions) as f64 / n as f64;

    let before_cache = live_bytes();
    let cache = SessionCache::new(CacheConfig {
        size: 0,
        ..CacheConfig::default()
    });
    for s in &sessions {
        cache.add(s).unwrap();
    }
    let just_added = (live_bytes() - before_cache) as f64 / n as f64;
    assert_eq!(cache.len(), n);
    // Tables outgrown while adding are freed through the epoch, once no lookup can still be
    // reading them: serve some lookups (each pins the epoch, which reclaims in passing).
    for s in sessions.iter().take(200_000) {
        assert!(cache.get(s.version(), s.id().as_bytes()).is_some());
    }
    let overhead = (live_bytes() - before_cache) as f64 / n as f64;

    println!("sessions cached:                 {n}");
    println!("a session's own data (bytes):    {own:.1}  (its allocation and secret, plus the Vec slot holding it)");
    println!("cache overhead per session:      {overhead:.1}  bytes (after 200,000 lookups)");
    println!("  right after the adds:          {just_added:.1}  bytes");
}
