//! OpenSSL's own session-cache test scenarios (test/sslapitest.c), ported to our API and run
//! through a context and its connections.

use std::collections::HashMap;
use std::sync::{Arc, Barrier, Mutex};

use ctx::{Context, ContextConfig, Role};
use session_cache::{
    Added, CacheConfig, CacheMode, LookupRequest, Miss, RemovalCause, SessionCache,
};
use session_core::{ManualClock, ProtocolVersion, Session};

const NOW: u64 = 1_700_000_000;

fn context(version: ProtocolVersion, size: usize, mode: CacheMode) -> (Context, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(NOW));
    let ctx = Context::new(ContextConfig {
        version,
        cache: CacheConfig {
            size,
            mode,
            clock: clock.clone(),
            ..CacheConfig::default()
        },
        ..ContextConfig::default()
    });
    (ctx, clock)
}

use test_support::session;

/// A clean client/server handshake; returns whether it resumed and the client's session.
fn handshake(client: &Context, server: &Context, offer: Option<&Session>) -> (bool, Session) {
    let mut c = client.new_connection(Role::Client);
    let mut s = server.new_connection(Role::Server);
    c.set_session(offer);
    c.connect(&mut s).unwrap();
    c.shutdown();
    s.shutdown();
    (c.session_reused(), c.session_owned().unwrap())
}

#[test]
fn expiry_ordering_and_flush_at_successive_times() {
    let (ctx, _) = context(ProtocolVersion::TLS1_2, 0, CacheMode::SERVER);
    let cache = ctx.cache();
    let early = session(b"early", NOW - 10, 10);
    let middle = session(b"middle", NOW, 10);
    let late = session(b"late", NOW + 10, 10);
    let forever = session(b"forever", NOW, 100_000);
    for s in [&late, &early, &forever, &middle] {
        assert_eq!(cache.add(s), Ok(Added::New));
    }
    assert_eq!(cache.flush_expired(NOW + 9), 1);
    assert!(!cache.contains(&early) && cache.contains(&middle));
    assert_eq!(cache.flush_expired(NOW + 11), 1);
    assert!(!cache.contains(&middle) && cache.contains(&late));
    assert_eq!(cache.flush_expired(NOW + 21), 1);
    assert!(!cache.contains(&late));
    assert_eq!(cache.len(), 1);
    assert_eq!(cache.flush_all(), 1, "flush with time 0 removes the rest");
    assert!(cache.is_empty());
    assert!(!early.is_resumable() && !middle.is_resumable() && !late.is_resumable());
}

#[test]
fn update_time_on_add() {
    let (ctx, clock) = context(
        ProtocolVersion::TLS1_2,
        0,
        CacheMode::SERVER | CacheMode::UPDATE_TIME,
    );
    let cache = ctx.cache();
    let s = session(b"s", NOW - 100, 10);
    assert_eq!(cache.add(&s), Ok(Added::New));
    let cached = cache.get(ProtocolVersion::TLS1_2, b"s").unwrap();
    assert_eq!(cached.time(), NOW, "the time was refreshed on add");
    assert_eq!(cache.flush_expired(NOW + 5), 0, "so it has not expired");
    clock.advance(7);
    assert_eq!(cache.add(&cached), Ok(Added::AlreadyCached));
    assert_eq!(
        cache.get(ProtocolVersion::TLS1_2, b"s").unwrap().time(),
        NOW + 7
    );
}

#[test]
fn a_cache_of_size_one_overflows_and_the_external_cache_still_resumes() {
    let (server, _) = context(ProtocolVersion::TLS1_2, 1, CacheMode::SERVER);
    let (client, _) = context(ProtocolVersion::TLS1_2, 0, CacheMode::OFF);
    let external: Arc<Mutex<HashMap<Vec<u8>, Session>>> = Arc::default();
    let store = external.clone();
    // An external cache keeps a copy of its own (OpenSSL's serialize the session): the very
    // object the internal cache holds is marked not resumable when it is evicted, and OpenSSL
    // refuses a not-resumable session from the get callback.
    server.cache().set_new_session_callback(Some(Arc::new(
        move |_: &SessionCache, s: &Session| {
            store
                .lock()
                .unwrap()
                .insert(s.id().as_bytes().to_vec(), s.dup());
        },
    )));
    let source = external.clone();
    server.cache().set_get_session_callback(Some(Arc::new(
        move |_: &SessionCache, r: &LookupRequest<'_>| {
            source
                .lock()
                .unwrap()
                .get(r.id)
                .cloned()
                .ok_or(Miss::UnknownId)
        },
    )));

    let (_, a) = handshake(&client, &server, None);
    let (_, b) = handshake(&client, &server, None);
    assert_eq!(server.cache().len(), 1);
    assert_eq!(server.cache().stats().cache_full, 1, "a was evicted for b");
    let evicted = external.lock().unwrap()[a.id().as_bytes()].clone();
    assert!(
        evicted.is_resumable(),
        "the external copy is not the evicted object"
    );
    let (resumed, _) = handshake(&client, &server, Some(&a));
    assert!(resumed, "the external cache answered the internal miss");
    let stats = server.cache().stats();
    assert_eq!((stats.misses, stats.cb_hits, stats.hits), (1, 1, 1));
    let (resumed, _) = handshake(&client, &server, Some(&b));
    assert!(resumed);
    assert!(server.cache().len() <= 1);
}

#[test]
fn adding_a_cached_session_again_is_not_added() {
    let (ctx, _) = context(ProtocolVersion::TLS1_2, 10, CacheMode::SERVER);
    let s = session(b"s", NOW, 100);
    assert!(ctx.cache().add(&s).unwrap().is_added());
    assert!(!ctx.cache().add(&s).unwrap().is_added());
    assert_eq!(ctx.cache().len(), 1);
}

#[test]
fn removing_an_absent_session_is_not_found_but_calls_back() {
    let (ctx, _) = context(ProtocolVersion::TLS1_2, 10, CacheMode::SERVER);
    let calls = Arc::new(Mutex::new(Vec::new()));
    let sink = calls.clone();
    ctx.cache().set_remove_session_callback(Some(Arc::new(
        move |_: &SessionCache, s: &Session, cause| {
            sink.lock()
                .unwrap()
                .push((s.id().as_bytes().to_vec(), cause));
        },
    )));
    let absent = session(b"absent", NOW, 100);
    assert!(!ctx.cache().remove(&absent));
    assert_eq!(
        *calls.lock().unwrap(),
        [(b"absent".to_vec(), RemovalCause::Removed)]
    );
    assert!(!absent.is_resumable());
}

#[test]
fn dup_yields_a_session_in_no_cache() {
    let (server, _) = context(ProtocolVersion::TLS1_2, 10, CacheMode::SERVER);
    let (client, _) = context(ProtocolVersion::TLS1_2, 0, CacheMode::OFF);
    let mut s = server.new_connection(Role::Server);
    let mut c = client.new_connection(Role::Client);
    c.connect(&mut s).unwrap();
    let cached = s.session_owned().unwrap();
    let copy = cached.dup();
    assert!(server.cache().contains(&cached));
    assert!(!server.cache().contains(&copy));
    assert_eq!(copy.ref_count(), 1);
    assert!(copy.is_resumable());
    // Removing the copy from the cache removes by key, as OpenSSL does; freeing it touches
    // nothing in the cache.
    drop(copy);
    assert!(server.cache().contains(&cached));
    s.shutdown();
    c.shutdown();
}

#[test]
fn many_connections_resuming_at_once_never_exceed_a_cache_of_five() {
    let (server, _) = context(ProtocolVersion::TLS1_2, 5, CacheMode::SERVER);
    let (client, _) = context(ProtocolVersion::TLS1_2, 0, CacheMode::OFF);
    let seeds: Vec<Session> = (0..5)
        .map(|_| handshake(&client, &server, None).1)
        .collect();
    let threads = 4;
    let barrier = Arc::new(Barrier::new(threads));
    std::thread::scope(|scope| {
        for t in 0..threads {
            let (server, client, seeds, barrier) = (&server, &client, &seeds, barrier.clone());
            scope.spawn(move || {
                barrier.wait();
                for i in 0..500 {
                    let offer = &seeds[(t + i) % seeds.len()];
                    handshake(client, server, Some(offer));
                    assert!(server.cache().len() <= 5, "size {}", server.cache().len());
                }
            });
        }
    });
    let stats = server.cache().stats();
    assert!(stats.number <= 5);
    assert_eq!(stats.accept, 5 + 2_000);
    assert_eq!(
        stats.hits + stats.misses + stats.timeouts,
        2_000,
        "{stats:?}"
    );
}
