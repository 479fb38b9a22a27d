//! Removal and flushes: `remove` by key, flushes at a time, by the clock and of everything,
//! and the flush when the cache is dropped.

use session_cache::RemovalCause;
use test_support::session;

use crate::{cache, record_removals, NOW};

#[test]
fn remove_marks_and_calls_back_whether_or_not_cached() {
    let (cache, _) = cache(10);
    let removals = record_removals(&cache);
    let cached = session(b"a", NOW, 100);
    let absent = session(b"b", NOW, 100);
    cache.add(&cached).unwrap();
    assert!(cache.remove(&cached));
    assert!(!cache.remove(&absent));
    assert!(!cached.is_resumable() && !absent.is_resumable());
    assert_eq!(
        *removals.lock().unwrap(),
        [
            (b"a".to_vec(), RemovalCause::Removed),
            (b"b".to_vec(), RemovalCause::Removed)
        ]
    );
}

#[test]
fn remove_with_an_empty_id_does_nothing() {
    let (cache, _) = cache(10);
    let removals = record_removals(&cache);
    let s = session(b"", NOW, 100);
    assert!(!cache.remove(&s));
    assert!(removals.lock().unwrap().is_empty());
    assert!(!s.is_resumable(), "it never was: no id, no ticket");
}

#[test]
fn remove_unlinks_whatever_session_holds_the_key() {
    let (cache, _) = cache(10);
    let cached = session(b"a", NOW, 100);
    let other = session(b"a", NOW, 100);
    cache.add(&cached).unwrap();
    assert!(cache.remove(&other), "OpenSSL removes by key");
    assert!(cache.is_empty());
    assert!(cached.is_resumable() && !other.is_resumable());
}

#[test]
fn flush_all_removes_even_sessions_that_never_expire() {
    let (cache, _) = cache(10);
    let forever = session(b"f", u64::MAX - 1, 100);
    let normal = session(b"n", NOW, 100);
    cache.add(&forever).unwrap();
    cache.add(&normal).unwrap();
    assert_eq!(forever.expiry(), u64::MAX);
    assert_eq!(
        cache.flush_expired(u64::MAX),
        1,
        "an overflowed expiry never expires"
    );
    assert!(cache.contains(&forever));
    assert_eq!(cache.flush_all(), 1);
    assert!(cache.is_empty());
}

#[test]
fn flush_uses_the_clock() {
    let (cache, clock) = cache(10);
    cache.add(&session(b"a", NOW, 5)).unwrap();
    assert_eq!(cache.flush(), 0);
    clock.advance(6);
    assert_eq!(cache.flush(), 1);
}

#[test]
fn dropping_the_cache_flushes_it_but_held_sessions_live_on() {
    let (cache, _) = cache(10);
    let removals = record_removals(&cache);
    let held = session(b"held", NOW, 100);
    cache.add(&held).unwrap();
    cache.add(&session(b"other", NOW, 100)).unwrap();
    drop(cache);
    assert_eq!(removals.lock().unwrap().len(), 2);
    assert_eq!(held.ref_count(), 1);
    assert_eq!(held.master_key(), session(b"held", NOW, 100).master_key());
}
