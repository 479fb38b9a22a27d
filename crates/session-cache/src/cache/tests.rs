//! Unit tests of the cache that look inside it: after each change, the count, the map and
//! the expiry order must agree. The cache's other behaviour is tested through the public API
//! in `tests/cache/`.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use session_core::{ManualClock, ProtocolVersion, Session, SidCtx};
use test_support::session;

use crate::{
    Added, CacheConfig, CacheMode, ExtendedMasterSecret, Lookup, LookupRequest, Miss, RemovalCause,
    SessionCache,
};

#[path = "../../tests/cache/helpers.rs"]
mod helpers;
use helpers::{cache, record_removals, request, NOW};

#[track_caller]
fn check_consistent(cache: &SessionCache) {
    assert_eq!(cache.len(), cache.map.len(), "count vs map");
    assert_eq!(
        cache.map.order_len(),
        cache.map.len(),
        "expiry order vs map"
    );
}

#[test]
fn the_cache_holds_exactly_one_reference() {
    let (cache, _) = cache(10);
    let s = session(b"a", NOW, 100);
    assert_eq!(cache.add(&s), Ok(Added::New));
    assert_eq!(s.ref_count(), 2);
    assert!(cache.remove(&s));
    assert_eq!(s.ref_count(), 1);
    check_consistent(&cache);
}

#[test]
fn a_different_session_under_the_same_key_replaces_the_old_one() {
    let (cache, _) = cache(10);
    let removals = record_removals(&cache);
    let old = session(b"a", NOW, 100);
    let new = session(b"a", NOW, 100);
    cache.add(&old).unwrap();
    assert_eq!(cache.add(&new), Ok(Added::Replaced));
    assert!(Added::Replaced.is_added());
    assert_eq!(cache.len(), 1);
    assert_eq!(old.ref_count(), 1, "the cache let go of the old session");
    assert!(cache.contains(&new) && !cache.contains(&old));
    assert!(
        removals.lock().unwrap().is_empty(),
        "OpenSSL runs no callback here"
    );
    check_consistent(&cache);
}

#[test]
fn update_time_refreshes_a_session_added_again() {
    let (cache, clock) = cache(10);
    cache.set_mode(CacheMode::SERVER | CacheMode::UPDATE_TIME);
    let s = session(b"a", NOW, 100);
    cache.add(&s).unwrap();
    let cached = cache.get(ProtocolVersion::TLS1_2, b"a").unwrap();
    assert!(cached.ptr_eq(&s), "time already current: no copy");
    clock.advance(60);
    assert_eq!(cache.add(&s), Ok(Added::AlreadyCached));
    assert_eq!(
        cache.get(ProtocolVersion::TLS1_2, b"a").unwrap().time(),
        NOW + 60
    );
    check_consistent(&cache);
}

/// OpenSSL changes a cached session's time in place, so adding the same session again
/// finds it (returns 0) whatever renewals happened; here renewals are copies, which share
/// their original's origin.
#[test]
fn re_adding_a_session_whose_renewed_copy_is_cached_is_not_added() {
    let (cache, clock) = cache(10);
    let s = session(b"a", NOW - 50, 100);
    cache.set_mode(CacheMode::SERVER | CacheMode::UPDATE_TIME);
    assert_eq!(cache.add(&s), Ok(Added::New));
    let copy = cache.get(ProtocolVersion::TLS1_2, b"a").unwrap();
    assert!(!copy.ptr_eq(&s) && copy.time() == NOW);
    let renewed = cache.set_session_timeout(&copy, 500).unwrap();
    clock.advance(30);
    assert_eq!(cache.add(&s), Ok(Added::AlreadyCached), "OpenSSL returns 0");
    let cached = cache.get(ProtocolVersion::TLS1_2, b"a").unwrap();
    assert_eq!((cached.time(), cached.timeout()), (NOW + 30, 500));
    assert!(cached.same_origin(&s));
    // Without UPDATE_TIME, nothing changes at all.
    cache.set_mode(CacheMode::SERVER);
    clock.advance(30);
    assert_eq!(cache.add(&s), Ok(Added::AlreadyCached));
    assert_eq!(
        cache.add(&renewed),
        Ok(Added::AlreadyCached),
        "an older copy of the same session"
    );
    // A different session under the key still replaces it.
    assert_eq!(cache.add(&session(b"a", NOW, 100)), Ok(Added::Replaced));
    assert_eq!(cache.len(), 1);
    check_consistent(&cache);
}

#[test]
fn take_hands_over_the_cache_reference() {
    let (cache, _) = cache(10);
    let removals = record_removals(&cache);
    let s = session(b"t", NOW, 100);
    cache.add(&s).unwrap();
    let taken = cache.take(ProtocolVersion::TLS1_2, b"t").unwrap();
    assert!(taken.ptr_eq(&s));
    assert!(!s.is_resumable(), "taken out of the cache: used up");
    assert_eq!(s.ref_count(), 2);
    assert!(
        cache.take(ProtocolVersion::TLS1_2, b"t").is_none(),
        "only once"
    );
    assert_eq!(
        *removals.lock().unwrap(),
        [(b"t".to_vec(), RemovalCause::Taken)]
    );
    check_consistent(&cache);
}

#[test]
fn lookup_take_uses_a_session_up_once_and_counts_like_lookup() {
    let (cache, clock) = cache(10);
    let removals = record_removals(&cache);
    cache.add(&session(b"t", NOW, 10)).unwrap();
    assert!(matches!(cache.lookup_take(&request(b"t")), Lookup::Hit(_)));
    assert!(
        matches!(
            cache.lookup_take(&request(b"t")),
            Lookup::Miss(Miss::UnknownId)
        ),
        "single use"
    );
    cache.add(&session(b"x", NOW, 10)).unwrap();
    let mut other_ctx = request(b"x");
    other_ctx.sid_ctx = SidCtx::new(b"other").unwrap();
    assert!(matches!(
        cache.lookup_take(&other_ctx),
        Lookup::Miss(Miss::OtherContext)
    ));
    assert_eq!(cache.len(), 1, "a refused session stays");
    clock.set(NOW + 11);
    assert!(matches!(cache.lookup_take(&request(b"x")), Lookup::Timeout));
    assert!(cache.is_empty());
    let stats = cache.stats();
    // The second take of "t" is a miss; the refused "x" counts nothing.
    assert_eq!((stats.hits, stats.misses, stats.timeouts), (1, 1, 1));
    assert_eq!(
        *removals.lock().unwrap(),
        [
            (b"t".to_vec(), RemovalCause::Taken),
            (b"x".to_vec(), RemovalCause::Expired)
        ]
    );
    check_consistent(&cache);
}

#[test]
fn flush_removes_exactly_what_expired_at_the_given_time() {
    let (cache, _) = cache(10);
    let removals = record_removals(&cache);
    let a = session(b"a", NOW - 10, 10); // expires at NOW
    let b = session(b"b", NOW, 10); // NOW + 10
    let c = session(b"c", NOW + 10, 10); // NOW + 20
    for s in [&c, &a, &b] {
        cache.add(s).unwrap();
    }
    assert_eq!(
        cache.flush_expired(NOW),
        0,
        "at exactly the expiry second: live"
    );
    assert_eq!(cache.flush_expired(NOW + 9), 1);
    assert!(!cache.contains(&a) && !a.is_resumable());
    assert_eq!(cache.flush_expired(NOW + 11), 1);
    assert!(!cache.contains(&b));
    assert_eq!(cache.flush_expired(NOW + 21), 1);
    assert!(cache.is_empty());
    let causes: Vec<_> = removals.lock().unwrap().iter().map(|r| r.1).collect();
    assert_eq!(causes, [RemovalCause::Flushed; 3]);
    check_consistent(&cache);
}

#[test]
fn a_large_flush_goes_in_batches_and_misses_nothing() {
    let (cache, _) = cache(0);
    for i in 0..2_000u32 {
        let expiry_offset = u64::from(i % 2) * 1_000;
        cache
            .add(&session(&i.to_be_bytes(), NOW + expiry_offset, 10))
            .unwrap();
    }
    assert_eq!(cache.flush_expired(NOW + 11), 1_000);
    assert_eq!(cache.len(), 1_000);
    check_consistent(&cache);
}

#[test]
fn eviction_takes_the_soonest_to_expire_then_the_oldest() {
    let (cache, _) = cache(3);
    let late = session(b"late", NOW, 300);
    let soon = session(b"soon", NOW, 100);
    let tie_old = session(b"tie1", NOW, 200);
    cache.add(&late).unwrap();
    cache.add(&soon).unwrap();
    cache.add(&tie_old).unwrap();
    // Looking a session up does not protect it: this is not LRU.
    assert!(matches!(cache.lookup(&request(b"soon")), Lookup::Hit(_)));
    cache.add(&session(b"tie2", NOW, 200)).unwrap();
    assert!(!cache.contains(&soon));
    // Now tie1 and tie2 expire together: the older goes first.
    cache.add(&session(b"new", NOW, 1_000)).unwrap();
    assert!(!cache.contains(&tie_old));
    assert!(cache.contains(&late));
    assert_eq!(cache.len(), 3);
    assert_eq!(cache.stats().cache_full, 2);
    check_consistent(&cache);
}

#[test]
fn adds_ordered_across_threads_are_evicted_in_that_order() {
    // Equal expiries, so only the order of the adds decides. Two threads take turns, each
    // adding after it hears that the other has added, so every add happens after the one
    // before it, whichever thread and shard it was in.
    let n = 64;
    let (cache, _) = cache(n);
    let added: Vec<Session> = (0..n)
        .map(|i| session(format!("first {i}").as_bytes(), NOW, 100))
        .collect();
    let (to_odd, odd_turn) = mpsc::channel::<()>();
    let (to_even, even_turn) = mpsc::channel::<()>();
    std::thread::scope(|s| {
        let (cache, added) = (&cache, &added);
        s.spawn(move || {
            for i in (0..n).step_by(2) {
                if i > 0 {
                    even_turn.recv().unwrap();
                }
                cache.add(&added[i]).unwrap();
                to_odd.send(()).unwrap();
            }
        });
        s.spawn(move || {
            for i in (1..n).step_by(2) {
                odd_turn.recv().unwrap();
                cache.add(&added[i]).unwrap();
                // The last send has no one to hear it.
                let _ = to_even.send(());
            }
        });
    });
    for (i, gone) in added.iter().enumerate() {
        cache
            .add(&session(format!("second {i}").as_bytes(), NOW, 100))
            .unwrap();
        assert!(!cache.contains(gone), "add {i} should be evicted now");
        assert!(added[i + 1..].iter().all(|s| cache.contains(s)));
    }
    check_consistent(&cache);
}

#[test]
fn lowering_the_size_evicts_at_once() {
    let (cache, _) = cache(10);
    for i in 0..10u64 {
        cache.add(&session(&i.to_be_bytes(), NOW, 100 + i)).unwrap();
    }
    assert_eq!(cache.set_size(4), 10);
    assert_eq!(cache.len(), 4);
    assert_eq!(cache.stats().cache_full, 6);
    let mut left: Vec<u64> = cache.sessions().iter().map(|s| s.timeout()).collect();
    left.sort_unstable();
    assert_eq!(left, [106, 107, 108, 109], "the longest-lived stay");
    check_consistent(&cache);
}

#[test]
fn changing_a_cached_timeout_repositions_it() {
    let (cache, _) = cache(2);
    let a = session(b"a", NOW, 100);
    let b = session(b"b", NOW, 200);
    cache.add(&a).unwrap();
    cache.add(&b).unwrap();
    let renewed = cache.set_session_timeout(&a, 1_000).unwrap();
    assert_eq!(renewed.timeout(), 1_000);
    assert_eq!(a.timeout(), 100, "the shared session is unchanged");
    assert!(cache.contains(&renewed) && !cache.contains(&a));
    cache.add(&session(b"c", NOW, 500)).unwrap();
    assert!(!cache.contains(&b), "b now expires first");
    assert!(cache.contains(&renewed));
    let moved = cache.set_session_time(&renewed, NOW - 2_000).unwrap();
    assert_eq!(cache.flush_expired(NOW), 1);
    assert!(!cache.contains(&moved));
    assert!(
        cache.set_session_timeout(&a, 5).is_none(),
        "a is not cached any more"
    );
    check_consistent(&cache);
}
