//! The handshake driver's rules, through the public API: what each step counts, caches and
//! flushes.

use std::sync::{Arc, Mutex};

use session_cache::{
    CacheConfig, CacheMode, ExtendedMasterSecret, Handshake, Lookup, LookupRequest, Miss,
    Resumption, SessionCache,
};
use session_core::{
    ManualClock, MasterKey, ProtocolVersion, Session, SessionBuilder, SessionId, SidCtx,
};

const NOW: u64 = 1_000;

fn cache(mode: CacheMode) -> (SessionCache, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(NOW));
    let cache = SessionCache::new(CacheConfig {
        mode,
        clock: clock.clone(),
        ..CacheConfig::default()
    });
    (cache, clock)
}

fn session(version: ProtocolVersion, id: &[u8], time: u64, timeout: u64) -> Session {
    SessionBuilder::new(version, time)
        .id(SessionId::new(id).unwrap())
        .master_key(MasterKey::new(&[9; 48]).unwrap())
        .timeout(timeout)
        .build()
}

fn offer(version: ProtocolVersion, id: &[u8]) -> LookupRequest<'_> {
    LookupRequest::new(
        version,
        id,
        SidCtx::empty(),
        ExtendedMasterSecret::NotOffered,
    )
}

/// A full server handshake that issues `s` and succeeds.
fn full(cache: &SessionCache, s: &Session) {
    let mut h = Handshake::accept(cache);
    h.issued(cache, s);
    assert_eq!(h.finish(cache, false), Some(Resumption::NotOffered));
}

#[test]
fn a_handshake_counts_its_start_its_end_and_one_outcome() {
    let (cache, _) = cache(CacheMode::SERVER);
    let v12 = ProtocolVersion::TLS1_2;
    full(&cache, &session(v12, b"a", NOW, 300));
    let mut resumed = Handshake::accept(&cache);
    assert!(matches!(
        resumed.offer(&cache, offer(v12, b"a")),
        Lookup::Hit(_)
    ));
    assert_eq!(resumed.finish(&cache, true), Some(Resumption::Resumed));
    assert_eq!(
        resumed.finish(&cache, true),
        Some(Resumption::Resumed),
        "again: the same outcome, counted once"
    );
    let mut missed = Handshake::accept(&cache);
    assert!(matches!(
        missed.offer(&cache, offer(v12, b"zz")),
        Lookup::Miss(Miss::UnknownId)
    ));
    missed.finish(&cache, false);
    // A handshake that broke off counts its start only.
    let mut broken = Handshake::accept(&cache);
    broken.offer(&cache, offer(v12, b"a"));
    drop(broken);
    // The stack refused what the cache found.
    let mut refused = Handshake::accept(&cache);
    assert!(matches!(
        refused.offer(&cache, offer(v12, b"a")),
        Lookup::Hit(_)
    ));
    assert_eq!(
        refused.finish(&cache, false),
        Some(Resumption::RefusedByStack)
    );
    let stats = cache.stats();
    assert_eq!((stats.accept, stats.accept_good), (5, 4));
    assert_eq!((stats.hits, stats.misses), (3, 1));
    let r = stats.resumptions;
    assert_eq!(
        (r.resumed, r.not_offered, r.unknown_id, r.refused_by_stack),
        (1, 1, 1, 1)
    );
    assert_eq!(r.handshakes(), stats.accept_good);
}

#[test]
fn tls13_offers_are_taken_and_only_the_first_asks_the_external_cache() {
    let (cache, _) = cache(CacheMode::SERVER);
    let v13 = ProtocolVersion::TLS1_3;
    full(&cache, &session(v13, b"t1", NOW, 300));
    let asked = Arc::new(Mutex::new(Vec::new()));
    let sink = asked.clone();
    cache.set_take_session_callback(Some(Arc::new(
        move |_: &SessionCache, request: &LookupRequest<'_>, local: Option<Session>| {
            sink.lock().unwrap().push(request.first_offer);
            local.ok_or(Miss::UnknownId)
        },
    )));
    let mut h = Handshake::accept(&cache);
    // Even a caller that says otherwise: the handshake knows which offer is its first.
    let mut second = offer(v13, b"t1");
    second.first_offer = false;
    assert!(matches!(
        h.offer(&cache, offer(v13, b"nope")),
        Lookup::Miss(_)
    ));
    assert!(matches!(h.offer(&cache, second), Lookup::Hit(_)));
    assert_eq!(*asked.lock().unwrap(), [true, false]);
    assert_eq!(h.finish(&cache, true), Some(Resumption::Resumed));
    let mut again = Handshake::accept(&cache);
    assert!(
        matches!(again.offer(&cache, offer(v13, b"t1")), Lookup::Miss(_)),
        "a ticket resumes once"
    );
}

#[test]
fn issued_sessions_are_cached_as_the_mode_says_then_the_callback_runs() {
    for (mode, cached, called) in [
        (CacheMode::SERVER, true, true),
        (
            CacheMode::SERVER | CacheMode::NO_INTERNAL_STORE,
            false,
            true,
        ),
        (CacheMode::CLIENT, false, false),
        (CacheMode::OFF, false, false),
    ] {
        let (cache, _) = cache(mode);
        let seen = Arc::new(Mutex::new(0));
        let sink = seen.clone();
        cache.set_new_session_callback(Some(Arc::new(move |_: &SessionCache, _: &Session| {
            *sink.lock().unwrap() += 1;
        })));
        let s = session(ProtocolVersion::TLS1_2, b"n", NOW, 300);
        let mut h = Handshake::accept(&cache);
        assert_eq!(h.issued(&cache, &s), cached || called, "{mode:?}");
        assert_eq!(cache.contains(&s), cached, "{mode:?}");
        assert_eq!(*seen.lock().unwrap(), usize::from(called), "{mode:?}");
        assert_eq!(
            h.record().issued_ids().len(),
            usize::from(called),
            "{mode:?}"
        );
    }
}

#[test]
fn every_255th_good_handshake_flushes_expired_sessions_unless_no_auto_clear() {
    for (mode, flushes) in [
        (CacheMode::SERVER, true),
        (CacheMode::SERVER | CacheMode::NO_AUTO_CLEAR, false),
    ] {
        let (cache, clock) = cache(mode);
        let old = session(ProtocolVersion::TLS1_2, b"old", NOW, 10);
        full(&cache, &old);
        clock.advance(100);
        for i in 0..253u32 {
            full(
                &cache,
                &session(ProtocolVersion::TLS1_2, &i.to_be_bytes(), NOW + 100, 300),
            );
        }
        assert!(cache.contains(&old), "254 good handshakes: no flush yet");
        full(
            &cache,
            &session(ProtocolVersion::TLS1_2, b"last", NOW + 100, 300),
        );
        assert_eq!(!cache.contains(&old), flushes, "{mode:?}: the 255th");
        assert_eq!(cache.len(), if flushes { 254 } else { 255 });
    }
}

#[test]
fn a_client_handshake_counts_connects_and_flushes_in_client_mode() {
    let (cache, clock) = cache(CacheMode::CLIENT);
    let old = session(ProtocolVersion::TLS1_2, b"old", NOW, 10);
    let mut first = Handshake::connect(&cache);
    assert!(first.issued(&cache, &old));
    assert_eq!(
        first.finish(&cache, false),
        None,
        "a client counts no outcome"
    );
    clock.advance(100);
    for i in 0..254u32 {
        let mut h = Handshake::connect(&cache);
        h.issued(
            &cache,
            &session(ProtocolVersion::TLS1_2, &i.to_be_bytes(), NOW + 100, 300),
        );
        h.finish(&cache, false);
    }
    assert!(!cache.contains(&old));
    let stats = cache.stats();
    assert_eq!(
        (stats.connect, stats.connect_good, stats.accept),
        (255, 255, 0)
    );
    assert_eq!(stats.resumptions.handshakes(), 0);
}

#[test]
fn untracked_handshakes_count_nothing_and_their_sessions_drive_the_flush() {
    let (cache, clock) = cache(CacheMode::SERVER);
    let old = session(ProtocolVersion::TLS1_2, b"old", NOW, 10);
    Handshake::untracked_server().issued(&cache, &old);
    clock.advance(100);
    for i in 0..253u32 {
        let mut h = Handshake::untracked_server();
        h.issued(
            &cache,
            &session(ProtocolVersion::TLS1_2, &i.to_be_bytes(), NOW + 100, 300),
        );
        assert_eq!(h.finish(&cache, false), None);
    }
    assert!(cache.contains(&old), "254 sessions: no flush yet");
    Handshake::untracked_server().issued(
        &cache,
        &session(ProtocolVersion::TLS1_2, b"last", NOW + 100, 300),
    );
    assert!(!cache.contains(&old), "the 255th session flushed it");
    let stats = cache.stats();
    assert_eq!((stats.accept, stats.accept_good), (0, 0));
    assert_eq!(stats.resumptions.handshakes(), 0);
}
