//! The memory of sessions a flush unlinks is given back while the cache lives, and not
//! before every reader that might still read it is gone: their weak counts wait out the
//! epoch's grace period and then a writer (an add, a remove, a flush) frees them, so nothing
//! piles up. A counting global allocator watches live heap bytes.

use session_cache::{CacheConfig, SessionCache};
use session_core::{ProtocolVersion, Session};
use test_support::counting_alloc::{live_bytes, Counting};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn session(n: u32) -> Session {
    let mut id = [0u8; 32];
    id[..4].copy_from_slice(&n.to_le_bytes());
    test_support::session(&id, 1_000, 100)
}

/// One test, so that no other test allocates in this binary while it counts.
#[test]
fn flushed_sessions_are_freed_by_later_writes_once_readers_let_go() {
    const N: u32 = 20_000;
    let cache = SessionCache::new(CacheConfig {
        size: 0,
        ..CacheConfig::default()
    });
    let churn = session(u32::MAX);
    // Warm up whatever the epoch and the cache allocate once (thread-local bags, tables).
    for _ in 0..1_000 {
        cache.add(&churn).unwrap();
        cache.remove(&churn);
    }
    let before = live_bytes();
    for n in 0..N {
        cache.add(&session(n)).unwrap();
    }
    let full = live_bytes() - before;
    // Each session's allocation: its data and the `Arc`'s two counts.
    let session_bytes = size_of::<session_core::SessionData>() + 16;
    assert!(
        full > N as isize * session_bytes as isize,
        "the cache holds the only references: {full} bytes"
    );

    // A reader stays pinned through the whole flush (as a lookup that started before it
    // could): no flushed session's memory may be freed while it is.
    let (pinned_tx, pinned_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let reader = std::thread::spawn(move || {
        let guard = crossbeam_epoch::pin();
        pinned_tx.send(()).unwrap();
        done_rx.recv().unwrap();
        drop(guard);
    });
    pinned_rx.recv().unwrap();
    assert_eq!(cache.flush_expired(2_000), N as usize);
    let held = live_bytes() - before;
    assert!(
        held > full / 2,
        "memory a pinned reader may still read was freed: {held} of {full} bytes left"
    );
    done_tx.send(()).unwrap();
    reader.join().unwrap();

    // The cache goes on being used: lookups (whose pins end grace periods) and writes (which
    // free what is ready, a few at a time).
    let probe = session(N + 1);
    for round in 0..N {
        let _ = cache.get(ProtocolVersion::TLS1_2, probe.id().as_bytes());
        if round % 2 == 0 {
            cache.add(&churn).unwrap();
            cache.remove(&churn);
        }
    }
    let left = live_bytes() - before;
    // What may remain: the epoch's bags and the few handles still in a grace period, far
    // below one flushed session in a hundred.
    assert!(
        left < full / 100,
        "{left} of {full} bytes still held after the flush and {N} more operations"
    );
    assert!(cache.is_empty());
}
