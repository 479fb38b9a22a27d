//! A tour of the cache: add, resume, replace, expire, evict and flush, with a remove callback
//! and the statistics at the end. Time is a manual clock, so the run is the same every time.
//!
//! `cargo run --example quickstart`

use std::sync::Arc;

use sesscache::cache::ExtendedMasterSecret;
use sesscache::cache::{CacheConfig, Lookup, LookupRequest, RemovalCause, SessionCache};
use sesscache::core::{
    Clock, ManualClock, MasterKey, ProtocolVersion, Session, SessionBuilder, SessionId, SidCtx,
};

fn session(id: &str, now: u64, timeout: u64) -> Session {
    SessionBuilder::new(ProtocolVersion::TLS1_2, now)
        .id(SessionId::new(id.as_bytes()).expect("ids here are short"))
        .master_key(MasterKey::new(&[0x42; 48]).expect("48 bytes fit"))
        .timeout(timeout)
        .build()
}

fn main() {
    let clock = Arc::new(ManualClock::new(1_700_000_000));
    let cache = SessionCache::new(CacheConfig {
        size: 3,
        clock: clock.clone(),
        ..CacheConfig::default()
    });
    cache.set_remove_session_callback(Some(Arc::new(
        |_: &SessionCache, s: &Session, cause: RemovalCause| {
            println!(
                "  remove callback: {} ({cause:?})",
                String::from_utf8_lossy(s.id().as_bytes())
            );
        },
    )));

    let now = clock.now();
    println!("adding alice (300 s), bob (600 s), carol (60 s) to a cache of size 3");
    for (id, timeout) in [("alice", 300), ("bob", 600), ("carol", 60)] {
        let outcome = cache
            .add(&session(id, now, timeout))
            .expect("ids are not empty");
        println!("  {id}: {outcome:?}");
    }

    let offer = |id: &'static str| {
        LookupRequest::new(
            ProtocolVersion::TLS1_2,
            id.as_bytes(),
            SidCtx::empty(),
            ExtendedMasterSecret::NotOffered,
        )
    };
    match cache.lookup(&offer("alice")) {
        Lookup::Hit(s) => println!("alice resumes (references now held: {})", s.ref_count()),
        other => println!("alice: {other:?}"),
    }

    println!("adding dave to the full cache evicts the session that expires soonest:");
    let _ = cache.add(&session("dave", now, 900)).expect("not empty");

    println!("301 s later alice has expired: her lookup times out and removes her");
    clock.advance(301);
    println!("  alice: {:?}", cache.lookup(&offer("alice")));

    println!("300 s more, and a flush removes bob; dave lives until the cache is dropped");
    clock.advance(300);
    println!("  flushed {}", cache.flush());

    let stats = cache.stats();
    println!(
        "stats: number={} hits={} misses={} timeouts={} cache_full={}",
        stats.number, stats.hits, stats.misses, stats.timeouts, stats.cache_full
    );
    println!("dropping the cache (the context) flushes what is left:");
}
