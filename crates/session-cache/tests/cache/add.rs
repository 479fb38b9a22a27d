//! Adding sessions: what counts as added, the key, `UPDATE_TIME`, and eviction by the size limit.

use session_cache::{Added, CacheMode, Error, RemovalCause};
use session_core::ProtocolVersion;
use test_support::session;

use crate::{cache, record_removals, NOW};

#[test]
fn adding_the_same_session_again_is_not_added() {
    let (cache, _) = cache(10);
    let s = session(b"a", NOW, 100);
    assert!(cache.add(&s).unwrap().is_added());
    assert_eq!(cache.add(&s), Ok(Added::AlreadyCached));
    assert!(!Added::AlreadyCached.is_added());
    assert_eq!(cache.len(), 1);
    assert_eq!(s.ref_count(), 2);
}

#[test]
fn the_key_includes_the_protocol_version() {
    let (cache, _) = cache(10);
    let tls12 = session(b"a", NOW, 100);
    let tls13 = tls12.to_builder().version(ProtocolVersion::TLS1_3).build();
    assert_eq!(cache.add(&tls12), Ok(Added::New));
    assert_eq!(cache.add(&tls13), Ok(Added::New));
    assert_eq!(cache.len(), 2);
}

#[test]
fn empty_ids_are_refused() {
    let (cache, _) = cache(10);
    let s = session(b"", NOW, 100);
    assert_eq!(cache.add(&s), Err(Error::EmptySessionId));
    assert!(cache.is_empty());
}

#[test]
fn update_time_stores_a_renewed_copy() {
    let (cache, _) = cache(10);
    cache.set_mode(CacheMode::SERVER | CacheMode::UPDATE_TIME);
    let s = session(b"a", NOW - 50, 100);
    assert_eq!(cache.add(&s), Ok(Added::New));
    let cached = cache.get(ProtocolVersion::TLS1_2, b"a").unwrap();
    assert_eq!(cached.time(), NOW);
    assert_eq!(s.time(), NOW - 50, "the shared session did not change");
    assert_eq!(cached.master_key(), s.master_key());
    assert_eq!(cache.add(&cached), Ok(Added::AlreadyCached));
}

#[test]
fn size_zero_is_unlimited() {
    let (cache, _) = cache(0);
    for i in 0..100u32 {
        cache.add(&session(&i.to_be_bytes(), NOW, 100)).unwrap();
    }
    assert_eq!(cache.len(), 100);
    assert_eq!(cache.stats().cache_full, 0);
}

#[test]
fn size_one_evicts_the_old_session_for_the_new() {
    let (cache, _) = cache(1);
    let removals = record_removals(&cache);
    let a = session(b"a", NOW, 100);
    let b = session(b"b", NOW, 100);
    cache.add(&a).unwrap();
    assert_eq!(cache.add(&b), Ok(Added::New));
    assert!(!cache.contains(&a) && cache.contains(&b));
    assert_eq!(cache.stats().cache_full, 1);
    assert_eq!(a.ref_count(), 1);
    assert!(
        !a.is_resumable(),
        "evicted: marked as remove_session_lock marks"
    );
    assert!(b.is_resumable());
    assert_eq!(
        *removals.lock().unwrap(),
        [(b"a".to_vec(), RemovalCause::Evicted)]
    );
}

#[test]
fn the_session_being_added_is_never_the_one_evicted() {
    let (cache, _) = cache(1);
    let long = session(b"long", NOW, 1_000);
    let short = session(b"short", NOW, 1);
    cache.add(&long).unwrap();
    cache.add(&short).unwrap();
    assert!(
        cache.contains(&short),
        "the new session is linked after the eviction"
    );
}
