//! Measures how much memory the cache adds per cached session, beyond the session's own data,
//! with a counting global allocator.
//!
//! `cargo run --release --example memory_per_session [-- SESSIONS]` (default 1,000,000)
//!
//! The sessions are made and held first; the figure is the growth of live heap bytes from
//! adding them all to a cache (map, expiry index, shards), divided by their number: once
//! after the cache has served some lookups (the steady state: tables it outgrew while
//! filling are reclaimed through the epoch by then), and once right after the adds.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use sesscache::cache::{CacheConfig, SessionCache};
use sesscache::core::{MasterKey, ProtocolVersion, Session, SessionBuilder, SessionId};

static LIVE: AtomicIsize = AtomicIsize::new(0);

struct Counting;

// SAFETY: every call is forwarded to `System` unchanged; the counter only observes sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

fn main() {
    let n: usize = match std::env::args().nth(1).map(|a| a.parse()) {
        None => 1_000_000,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("memory_per_session: SESSIONS must be a positive whole number");
            std::process::exit(2);
        }
    };
    let before_sessions = live();
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
    let own = (live() - before_sessions) as f64 / n as f64;

    let before_cache = live();
    let cache = SessionCache::new(CacheConfig {
        size: 0,
        ..CacheConfig::default()
    });
    for s in &sessions {
        cache.add(s).unwrap();
    }
    let just_added = (live() - before_cache) as f64 / n as f64;
    assert_eq!(cache.len(), n);
    // Tables outgrown while adding are freed through the epoch, once no lookup can still be
    // reading them: serve some lookups (each pins the epoch, which reclaims in passing).
    for s in sessions.iter().take(200_000) {
        assert!(cache.get(s.version(), s.id().as_bytes()).is_some());
    }
    let overhead = (live() - before_cache) as f64 / n as f64;

    println!("sessions cached:                 {n}");
    println!("a session's own data (bytes):    {own:.1}  (its allocation and secret, plus the Vec slot holding it)");
    println!("cache overhead per session:      {overhead:.1}  bytes (after 200,000 lookups)");
    println!("  right after the adds:          {just_added:.1}  bytes");
}
