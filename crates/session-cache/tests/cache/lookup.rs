//! Lookups: the checks a found session must pass and how each outcome counts, the
//! single-use forms, and the get and take callbacks as the external cache.

use std::sync::{Arc, Mutex};

use session_cache::{
    CacheMode, ExtendedMasterSecret, Lookup, LookupRequest, Miss, RemovalCause, SessionCache,
};
use session_core::{Session, SidCtx};
use test_support::session;

use crate::{cache, record_removals, request, NOW};

#[test]
fn ids_of_up_to_32_bytes_work() {
    let (cache, _) = cache(10);
    let s = session(&[0xEE; 32], NOW, 100);
    cache.add(&s).unwrap();
    assert!(matches!(cache.lookup(&request(&[0xEE; 32])), Lookup::Hit(h) if h.ptr_eq(&s)));
    assert!(matches!(
        cache.lookup(&request(&[0xEE; 33])),
        Lookup::Miss(Miss::UnknownId)
    ));
    assert!(matches!(
        cache.lookup(&request(&[0xEE; 31])),
        Lookup::Miss(Miss::UnknownId)
    ));
    assert_eq!(cache.stats().misses, 2);
}

#[test]
fn concurrent_takes_of_one_ticket_hit_exactly_once() {
    for _ in 0..50 {
        let (cache, _) = cache(10);
        cache.add(&session(b"t", NOW, 100)).unwrap();
        let barrier = std::sync::Barrier::new(4);
        let hits: usize = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        barrier.wait();
                        usize::from(matches!(cache.lookup_take(&request(b"t")), Lookup::Hit(_)))
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(hits, 1);
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses), (1, 3));
    }
}

#[test]
fn lookup_checks_sid_ctx_and_counts_nothing_for_a_refusal() {
    let (cache, _) = cache(10);
    let s = session(b"a", NOW, 100)
        .to_builder()
        .sid_ctx(SidCtx::new(b"app").unwrap())
        .build();
    cache.add(&s).unwrap();
    assert!(matches!(
        cache.lookup(&request(b"a")),
        Lookup::Miss(Miss::OtherContext)
    ));
    let mut right = request(b"a");
    right.sid_ctx = SidCtx::new(b"app").unwrap();
    assert!(matches!(cache.lookup(&right), Lookup::Hit(_)));
    let stats = cache.stats();
    // Found but refused: neither a hit nor a miss, as in OpenSSL's ssl_get_prev_session.
    assert_eq!((stats.hits, stats.misses, stats.timeouts), (1, 0, 0));
}

#[test]
fn expired_hits_are_removed_and_counted_as_timeouts() {
    let (cache, clock) = cache(10);
    let removals = record_removals(&cache);
    let s = session(b"a", NOW, 10);
    cache.add(&s).unwrap();
    clock.set(NOW + 10);
    assert!(
        matches!(cache.lookup(&request(b"a")), Lookup::Hit(_)),
        "live at expiry"
    );
    clock.set(NOW + 11);
    assert!(matches!(cache.lookup(&request(b"a")), Lookup::Timeout));
    assert!(cache.is_empty());
    assert!(!s.is_resumable());
    assert_eq!(
        *removals.lock().unwrap(),
        [(b"a".to_vec(), RemovalCause::Expired)]
    );
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses, stats.timeouts), (1, 0, 1));
    assert!(matches!(
        cache.lookup(&request(b"a")),
        Lookup::Miss(Miss::UnknownId)
    ));
}

#[test]
fn extended_master_secret_must_agree() {
    let (cache, _) = cache(10);
    let ems = session(b"e", NOW, 100)
        .to_builder()
        .extended_master_secret(true)
        .build();
    let plain = session(b"p", NOW, 100);
    cache.add(&ems).unwrap();
    cache.add(&plain).unwrap();
    assert!(matches!(cache.lookup(&request(b"e")), Lookup::Abort));
    let mut with_ems = request(b"p");
    with_ems.extended_master_secret = ExtendedMasterSecret::Offered;
    assert!(matches!(
        cache.lookup(&with_ems),
        Lookup::Miss(Miss::Refused)
    ));
    with_ems.id = b"e";
    assert!(matches!(cache.lookup(&with_ems), Lookup::Hit(_)));
    let stats = cache.stats();
    // The abort and the refusal count nothing, as in OpenSSL.
    assert_eq!((stats.hits, stats.misses), (1, 0));
}

#[test]
fn the_get_callback_answers_misses_and_fills_the_cache() {
    let (cache, _) = cache(10);
    let external = session(b"x", NOW, 100);
    let served = external.clone();
    cache.set_get_session_callback(Some(Arc::new(
        move |_: &SessionCache, r: &LookupRequest<'_>| {
            (r.id == b"x")
                .then(|| served.clone())
                .ok_or(Miss::UnknownId)
        },
    )));
    assert!(matches!(cache.lookup(&request(b"x")), Lookup::Hit(s) if s.ptr_eq(&external)));
    assert!(cache.contains(&external), "stored in the internal cache");
    assert!(matches!(
        cache.lookup(&request(b"y")),
        Lookup::Miss(Miss::UnknownId)
    ));
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.cb_hits, stats.misses), (1, 1, 2));
    // The next lookup is answered internally.
    assert!(matches!(cache.lookup(&request(b"x")), Lookup::Hit(_)));
    assert_eq!(cache.stats().cb_hits, 1);
}

#[test]
fn the_take_callback_decides_every_single_use_lookup() {
    let (cache, clock) = cache(10);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let remote = session(b"r", NOW, 100);
    let (log, served) = (seen.clone(), remote.clone());
    cache.set_take_session_callback(Some(Arc::new(
        move |_: &SessionCache, r: &LookupRequest<'_>, local: Option<Session>| {
            log.lock().unwrap().push((r.id.to_vec(), local.is_some()));
            match (r.id, local) {
                (b"kept", Some(local)) => Ok(local), // the store confirms the local ticket
                (b"used", _) => Err(Miss::AlreadyUsed), // used up on another server
                (b"r", None) => Ok(served.clone()),
                _ => Err(Miss::UnknownId),
            }
        },
    )));
    for id in [&b"kept"[..], b"used"] {
        cache.add(&session(id, NOW, 100)).unwrap();
    }
    assert!(matches!(
        cache.lookup_take(&request(b"kept")),
        Lookup::Hit(_)
    ));
    assert!(matches!(
        cache.lookup_take(&request(b"used")),
        Lookup::Miss(Miss::AlreadyUsed)
    ));
    assert!(cache.is_empty(), "both left the internal cache");
    assert!(matches!(cache.lookup_take(&request(b"r")), Lookup::Hit(s) if s.ptr_eq(&remote)));
    assert!(cache.is_empty(), "a ticket from the store is not stored");
    assert!(matches!(
        cache.lookup_take(&request(b"none")),
        Lookup::Miss(Miss::UnknownId)
    ));
    let stats = cache.stats();
    assert_eq!(
        (stats.hits, stats.cb_hits, stats.misses, stats.timeouts),
        (2, 1, 3, 0)
    );
    assert_eq!(
        *seen.lock().unwrap(),
        [
            (b"kept".to_vec(), true),
            (b"used".to_vec(), true),
            (b"r".to_vec(), false),
            (b"none".to_vec(), false)
        ]
    );

    // A session from the store gets the checks the internal cache's get.
    clock.advance(200);
    assert!(matches!(cache.lookup_take(&request(b"r")), Lookup::Timeout));
    let mut other = request(b"r");
    other.sid_ctx = SidCtx::new(b"other").unwrap();
    assert!(matches!(
        cache.lookup_take(&other),
        Lookup::Miss(Miss::OtherContext)
    ));
    // An expired internal ticket never reaches the callback.
    cache.add(&session(b"old", NOW, 1)).unwrap();
    seen.lock().unwrap().clear();
    assert!(matches!(
        cache.lookup_take(&request(b"old")),
        Lookup::Timeout
    ));
    assert_eq!(seen.lock().unwrap().len(), 0);
}

#[test]
fn no_internal_store_and_lookup_are_honoured() {
    let (cache, _) = cache(10);
    cache.set_mode(CacheMode::SERVER | CacheMode::NO_INTERNAL_STORE);
    let external = session(b"x", NOW, 100);
    let served = external.clone();
    cache.set_get_session_callback(Some(Arc::new(
        move |_: &SessionCache, _: &LookupRequest<'_>| Ok(served.clone()),
    )));
    assert!(matches!(cache.lookup(&request(b"x")), Lookup::Hit(_)));
    assert!(cache.is_empty());

    cache.set_mode(CacheMode::SERVER | CacheMode::NO_INTERNAL_LOOKUP);
    let internal = session(b"i", NOW, 100);
    cache.add(&internal).unwrap();
    cache.set_get_session_callback(None);
    assert!(matches!(
        cache.lookup(&request(b"i")),
        Lookup::Miss(Miss::UnknownId)
    ));
    assert_eq!(
        cache.stats().misses,
        1,
        "only the first lookup missed internally"
    );
}

#[test]
fn a_callback_session_that_is_not_resumable_is_refused() {
    let (cache, _) = cache(10);
    let dead = session(b"x", NOW, 100);
    dead.mark_not_resumable();
    cache.set_get_session_callback(Some(Arc::new(
        move |_: &SessionCache, _: &LookupRequest<'_>| Ok(dead.clone()),
    )));
    assert!(matches!(
        cache.lookup(&request(b"x")),
        Lookup::Miss(Miss::Refused)
    ));
    let stats = cache.stats();
    // As lookup_sess_in_cache: the internal miss counts, the refused session nothing.
    assert_eq!((stats.cb_hits, stats.misses, stats.hits), (0, 1, 0));
    assert!(cache.is_empty(), "not stored either");
}

#[test]
fn timeout_overflow_never_expires() {
    let (cache, clock) = cache(10);
    let s = session(b"a", NOW, u64::MAX);
    cache.add(&s).unwrap();
    clock.set(u64::MAX);
    assert!(matches!(cache.lookup(&request(b"a")), Lookup::Hit(_)));
    assert_eq!(cache.flush(), 0);
}
