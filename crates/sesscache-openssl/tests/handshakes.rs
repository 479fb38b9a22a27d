//! Real OpenSSL handshakes (the `openssl` crate over a socket pair, no network) resuming
//! through the adapter: TLS 1.2 session ids, TLS 1.3 stateful tickets that resume once, also
//! when offered by many connections at once, expired offers, another session id context, the
//! client side, the counters against what OpenSSL reports for each connection, and
//! application callbacks that panic inside OpenSSL's.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Barrier};

use ctx::{Context, ContextConfig};
use openssl::pkey::PKey;
use openssl::ssl::{
    Ssl, SslContext, SslContextBuilder, SslMethod, SslSession, SslVerifyMode, SslVersion,
};
use openssl::x509::X509;
use session_cache::{CacheConfig, CacheMode, LookupRequest, Miss, RemovalCause, SessionCache};
use session_core::{Clock, ManualClock, Session, SidCtx, SystemClock};

/// A server context on OpenSSL with the adapter installed, at most `version`.
fn server(context: &Context, version: SslVersion) -> SslContext {
    server_builder(context, version).build()
}

/// [`server`], not built yet.
fn server_builder(context: &Context, version: SslVersion) -> SslContextBuilder {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let mut b = SslContextBuilder::new(SslMethod::tls_server()).unwrap();
    b.set_certificate(&X509::from_der(made.cert.der()).unwrap())
        .unwrap();
    b.set_private_key(&PKey::private_key_from_der(&made.signing_key.serialize_der()).unwrap())
        .unwrap();
    b.set_max_proto_version(Some(version)).unwrap();
    sesscache_openssl::install_server(&mut b, context).unwrap();
    b
}

fn client(version: SslVersion) -> SslContext {
    let mut b = SslContextBuilder::new(SslMethod::tls_client()).unwrap();
    b.set_verify(SslVerifyMode::NONE);
    b.set_max_proto_version(Some(version)).unwrap();
    b.build()
}

fn context(sid_ctx: &[u8], clock: Arc<dyn Clock>) -> Context {
    Context::new(ContextConfig {
        sid_ctx: SidCtx::new(sid_ctx).unwrap(),
        cache: CacheConfig {
            clock,
            ..CacheConfig::default()
        },
        ..ContextConfig::default()
    })
}

/// One connection offering `offer`: whether each end says it resumed, and the client's
/// session afterwards (with its tickets, which arrive with the server's one byte of data).
fn connect(
    server: &SslContext,
    client: &SslContext,
    offer: Option<&SslSession>,
) -> (bool, bool, SslSession) {
    let (server_says, client_says, session, _) = connect_seen(server, client, offer);
    (server_says, client_says, session)
}

/// [`connect`], and the session the server's connection used.
fn connect_seen(
    server: &SslContext,
    client: &SslContext,
    offer: Option<&SslSession>,
) -> (bool, bool, SslSession, SslSession) {
    let (a, b) = UnixStream::pair().unwrap();
    let server = server.clone();
    let accepting = std::thread::spawn(move || {
        let mut tls = Ssl::new(&server).unwrap().accept(a).unwrap();
        tls.write_all(b"x").unwrap();
        let reused = tls.ssl().session_reused();
        let used = tls.ssl().session().unwrap().to_owned();
        let _ = tls.shutdown();
        (reused, used)
    });
    let mut ssl = Ssl::new(client).unwrap();
    ssl.set_hostname("localhost").unwrap();
    if let Some(offer) = offer {
        // SAFETY: the session came from a connection of this same client context.
        unsafe { ssl.set_session(offer).unwrap() };
    }
    let mut tls = ssl.connect(b).unwrap();
    let mut byte = [0u8; 1];
    tls.read_exact(&mut byte).unwrap();
    let client_reused = tls.ssl().session_reused();
    let session = tls.ssl().session().unwrap().to_owned();
    let _ = tls.shutdown();
    let (server_reused, used) = accepting.join().unwrap();
    (server_reused, client_reused, session, used)
}

#[test]
fn tls12_session_ids_resume_through_the_cache() {
    let context = context(b"app", Arc::new(SystemClock));
    let server = server(&context, SslVersion::TLS1_2);
    let client = client(SslVersion::TLS1_2);
    let (reused, _, first) = connect(&server, &client, None);
    assert!(!reused);
    assert_eq!(context.cache().len(), 1, "the new session is in our cache");
    for _ in 0..3 {
        let (server_says, client_says, _) = connect(&server, &client, Some(&first));
        assert!(server_says && client_says);
    }
    let stats = context.cache().stats();
    assert_eq!((stats.hits, stats.misses, stats.number), (3, 0, 1));
}

#[test]
fn a_hit_hands_openssl_its_own_session_and_one_from_elsewhere_is_decoded_once() {
    let home = context(b"app", Arc::new(SystemClock));
    let here = server(&home, SslVersion::TLS1_2);
    let client = client(SslVersion::TLS1_2);
    let (_, _, first, made) = connect_seen(&here, &client, None);
    for _ in 0..2 {
        let (reused, _, _, used) = connect_seen(&here, &client, Some(&first));
        assert!(reused);
        assert_eq!(
            address(&used),
            address(&made),
            "a resumption shares the session OpenSSL made, as OpenSSL's own cache does"
        );
    }

    // The same session as the fleet's store would bring it: a copy with no OpenSSL session
    // beside it, on another server.
    let cached = home
        .cache()
        .get(session_core::ProtocolVersion::TLS1_2, first.id())
        .unwrap();
    assert!(cached.native().is_some());
    let elsewhere = context(b"app", Arc::new(SystemClock));
    let copy = cached.to_builder().build();
    assert!(copy.native().is_none(), "a copy starts without one");
    elsewhere.cache().add(&copy).unwrap();
    let other = server(&elsewhere, SslVersion::TLS1_2);
    let (reused, _, _, decoded) = connect_seen(&other, &client, Some(&first));
    assert!(
        reused,
        "a session from elsewhere resumes, decoded from its serialized form"
    );
    assert_ne!(address(&decoded), address(&made));
    let (reused, _, _, again) = connect_seen(&other, &client, Some(&first));
    assert!(reused);
    assert_eq!(
        address(&again),
        address(&decoded),
        "and is kept beside it from then on"
    );
}

#[test]
fn an_object_that_is_not_the_sessions_is_never_handed_to_openssl() {
    let home = context(b"app", Arc::new(SystemClock));
    let here = server(&home, SslVersion::TLS1_2);
    let client = client(SslVersion::TLS1_2);
    let (_, _, first, _) = connect_seen(&here, &client, None);
    let (_, _, _, other) = connect_seen(&here, &client, None);
    let cached = home
        .cache()
        .get(session_core::ProtocolVersion::TLS1_2, first.id())
        .unwrap();
    // Another server's cache holds a copy to which someone attached another session's
    // OpenSSL object (another id and secret).
    let elsewhere = context(b"app", Arc::new(SystemClock));
    let copy = cached.to_builder().build();
    copy.attach_native(Box::new(other.clone())).unwrap();
    elsewhere.cache().add(&copy).unwrap();
    let there = server(&elsewhere, SslVersion::TLS1_2);
    let (reused, client_says, _, used) = connect_seen(&there, &client, Some(&first));
    assert!(
        reused && client_says,
        "it resumes with the session's own secret"
    );
    assert_ne!(address(&used), address(&other));
    assert_eq!(used.id(), first.id());
}

#[test]
fn a_context_whose_internal_store_is_back_on_shares_nothing() {
    let home = context(b"app", Arc::new(SystemClock));
    let mut b = server_builder(&home, SslVersion::TLS1_2);
    // The application turns OpenSSL's internal store back on (lookups still through the
    // get callback): OpenSSL then links each new session, and each one the get callback
    // returns, into its own cache.
    b.set_session_cache_mode(
        openssl::ssl::SslSessionCacheMode::SERVER
            | openssl::ssl::SslSessionCacheMode::NO_INTERNAL_LOOKUP,
    );
    let here = b.build();
    let client = client(SslVersion::TLS1_2);
    let (_, _, first, made) = connect_seen(&here, &client, None);
    let cached = home
        .cache()
        .get(session_core::ProtocolVersion::TLS1_2, first.id())
        .unwrap();
    assert!(
        cached.native().is_none(),
        "not kept: OpenSSL's cache holds it"
    );
    for _ in 0..2 {
        let (reused, _, _, used) = connect_seen(&here, &client, Some(&first));
        assert!(reused);
        assert_ne!(address(&used), address(&made));
    }
}

/// The address of OpenSSL's session object: equal for two references to the same one.
fn address(session: &SslSession) -> *const openssl::ssl::SslSessionRef {
    &**session
}

#[test]
fn a_tls13_ticket_resumes_once() {
    let context = context(b"app", Arc::new(SystemClock));
    let server = server(&context, SslVersion::TLS1_3);
    let client = client(SslVersion::TLS1_3);
    let (_, _, ticket) = connect(&server, &client, None);
    let cached = context.cache().len();
    assert!(cached >= 1, "stateful tickets are cached");
    let (reused, _, _) = connect(&server, &client, Some(&ticket));
    assert!(reused, "the ticket resumes");
    let (again, client_says, _) = connect(&server, &client, Some(&ticket));
    assert!(!again && !client_says, "and not twice");
    let stats = context.cache().stats();
    assert_eq!((stats.hits, stats.misses), (1, 1), "{stats:?}");
}

#[test]
fn a_tls13_ticket_offered_by_many_at_once_resumes_once() {
    const RACERS: usize = 6;
    let context = context(b"app", Arc::new(SystemClock));
    let server = server(&context, SslVersion::TLS1_3);
    let client = client(SslVersion::TLS1_3);
    for _ in 0..10 {
        let (_, _, ticket) = connect(&server, &client, None);
        let barrier = Barrier::new(RACERS);
        let resumed: usize = std::thread::scope(|scope| {
            let racers: Vec<_> = (0..RACERS)
                .map(|_| {
                    scope.spawn(|| {
                        barrier.wait();
                        let (server_says, client_says, _) =
                            connect(&server, &client, Some(&ticket));
                        assert_eq!(server_says, client_says);
                        usize::from(server_says)
                    })
                })
                .collect();
            racers.into_iter().map(|r| r.join().unwrap()).sum()
        });
        assert_eq!(resumed, 1);
    }
    assert_eq!(context.cache().stats().hits, 10);
}

#[test]
fn an_expired_offer_is_a_timeout_and_a_full_handshake() {
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let context = context(b"app", clock.clone());
    let server = server(&context, SslVersion::TLS1_2);
    let client = client(SslVersion::TLS1_2);
    let (_, _, first) = connect(&server, &client, None);
    clock.advance(first.timeout() as u64 + 1);
    let (reused, _, _) = connect(&server, &client, Some(&first));
    assert!(!reused);
    let stats = context.cache().stats();
    assert_eq!((stats.hits, stats.timeouts), (0, 1));
}

#[test]
fn a_session_of_another_session_id_context_is_not_resumed() {
    let a = context(b"a", Arc::new(SystemClock));
    let b = context(b"b", Arc::new(SystemClock));
    let (server_a, server_b) = (
        server(&a, SslVersion::TLS1_2),
        server(&b, SslVersion::TLS1_2),
    );
    let client = client(SslVersion::TLS1_2);
    let (_, _, first) = connect(&server_a, &client, None);
    // Even when B's cache holds it, B does not resume a session made for A.
    for s in a.cache().sessions() {
        b.cache().add(&s).unwrap();
    }
    let (reused, _, _) = connect(&server_b, &client, Some(&first));
    assert!(!reused);
    assert_eq!(b.cache().stats().hits, 0);
    let (reused, _, _) = connect(&server_a, &client, Some(&first));
    assert!(reused, "A still resumes it");
}

#[test]
fn a_client_keeps_sessions_by_server_name_and_resumes_with_them() {
    let server_side = context(b"app", Arc::new(SystemClock));
    let client_side = Context::new(ContextConfig {
        cache: CacheConfig {
            mode: CacheMode::CLIENT,
            ..CacheConfig::default()
        },
        ..ContextConfig::default()
    });
    for version in [SslVersion::TLS1_2, SslVersion::TLS1_3] {
        let server = server(&server_side, version);
        let mut b = SslContextBuilder::new(SslMethod::tls_client()).unwrap();
        b.set_verify(SslVerifyMode::NONE);
        b.set_max_proto_version(Some(version)).unwrap();
        sesscache_openssl::install_client(&mut b, &client_side);
        let client = b.build();
        let resumed_with_cache = |resume: bool| {
            let (a, s) = UnixStream::pair().unwrap();
            let server = server.clone();
            let accepting = std::thread::spawn(move || {
                let mut tls = Ssl::new(&server).unwrap().accept(a).unwrap();
                tls.write_all(b"x").unwrap();
                let _ = tls.shutdown();
            });
            let mut ssl = Ssl::new(&client).unwrap();
            ssl.set_hostname("localhost").unwrap();
            let offered = resume && sesscache_openssl::resume(&mut ssl, &client_side, "localhost");
            let mut tls = ssl.connect(s).unwrap();
            let mut byte = [0u8; 1];
            tls.read_exact(&mut byte).unwrap();
            let reused = tls.ssl().session_reused();
            let _ = tls.shutdown();
            accepting.join().unwrap();
            (offered, reused)
        };
        assert_eq!(resumed_with_cache(false), (false, false));
        assert_eq!(resumed_with_cache(true), (true, true), "{version:?}");
        assert!(
            !sesscache_openssl::resume(
                &mut Ssl::new(&client).unwrap(),
                &client_side,
                "other.example"
            ),
            "nothing kept for another server"
        );
    }
}

#[test]
fn a_panicking_get_session_callback_is_a_full_handshake() {
    let context = context(b"app", Arc::new(SystemClock));
    let server = server(&context, SslVersion::TLS1_2);
    let client = client(SslVersion::TLS1_2);
    let (_, _, first) = connect(&server, &client, None);
    // Gone from the cache, so that the offer reaches the application's get callback.
    assert_eq!(context.cache().flush_all(), 1);
    context.cache().set_get_session_callback(Some(Arc::new(
        |_: &SessionCache, _: &LookupRequest<'_>| -> Result<Session, Miss> {
            panic!("the application's get-session callback fails")
        },
    )));
    let before = sesscache_openssl::callback_panics();
    let (server_says, client_says, _) = connect(&server, &client, Some(&first));
    assert!(!server_says && !client_says, "a full handshake");
    assert!(
        sesscache_openssl::callback_panics() > before,
        "the panic is counted"
    );
    let stats = context.cache().stats();
    assert_eq!((stats.hits, stats.cb_hits), (0, 0), "{stats:?}");
    assert_eq!(
        context.cache().len(),
        1,
        "the full handshake's session is cached"
    );

    // The cache serves on as before the panic.
    context.cache().set_get_session_callback(None);
    let (_, _, second) = connect(&server, &client, None);
    let (server_says, client_says, _) = connect(&server, &client, Some(&second));
    assert!(server_says && client_says, "resumes after the panic");
    assert_eq!(context.cache().stats().hits, 1);
}

#[test]
fn a_panicking_new_session_callback_keeps_nothing_and_the_handshake_completes() {
    let context = context(b"app", Arc::new(SystemClock));
    let server = server(&context, SslVersion::TLS1_2);
    let client = client(SslVersion::TLS1_2);
    context
        .cache()
        .set_new_session_callback(Some(Arc::new(|_: &SessionCache, _: &Session| {
            panic!("the application's new-session callback fails")
        })));
    let before = sesscache_openssl::callback_panics();
    let (reused, _, first) = connect(&server, &client, None);
    assert!(!reused);
    assert!(
        sesscache_openssl::callback_panics() > before,
        "the panic is counted"
    );
    assert_eq!(context.cache().len(), 0, "nothing kept");
    let (server_says, client_says, _) = connect(&server, &client, Some(&first));
    assert!(!server_says && !client_says, "nothing to resume");

    // The cache serves on as before the panic.
    context.cache().set_new_session_callback(None);
    let (_, _, second) = connect(&server, &client, None);
    assert_eq!(context.cache().len(), 1);
    let (server_says, client_says, _) = connect(&server, &client, Some(&second));
    assert!(server_says && client_says, "resumes after the panic");
}

#[test]
fn a_panicking_take_session_callback_is_a_full_tls13_handshake() {
    let context = context(b"app", Arc::new(SystemClock));
    let server = server(&context, SslVersion::TLS1_3);
    let client = client(SslVersion::TLS1_3);
    let (_, _, ticket) = connect(&server, &client, None);
    context.cache().set_take_session_callback(Some(Arc::new(
        |_: &SessionCache, _: &LookupRequest<'_>, _: Option<Session>| -> Result<Session, Miss> {
            panic!("the application's take-session callback fails")
        },
    )));
    let before = sesscache_openssl::callback_panics();
    let (server_says, client_says, _) = connect(&server, &client, Some(&ticket));
    assert!(!server_says && !client_says, "a full handshake");
    assert!(
        sesscache_openssl::callback_panics() > before,
        "the panic is counted"
    );
    assert_eq!(context.cache().stats().hits, 0);
}

#[test]
fn a_panicking_remove_session_callback_run_by_an_eviction_is_caught() {
    let context = Context::new(ContextConfig {
        sid_ctx: SidCtx::new(b"app").unwrap(),
        cache: CacheConfig {
            size: 1,
            ..CacheConfig::default()
        },
        ..ContextConfig::default()
    });
    let server = server(&context, SslVersion::TLS1_2);
    let client = client(SslVersion::TLS1_2);
    let (_, _, first) = connect(&server, &client, None);
    context.cache().set_remove_session_callback(Some(Arc::new(
        |_: &SessionCache, _: &Session, _: RemovalCause| {
            panic!("the application's remove-session callback fails")
        },
    )));
    let before = sesscache_openssl::callback_panics();
    // The new session evicts the first, inside OpenSSL's new-session callback.
    let (reused, _, second) = connect(&server, &client, None);
    assert!(!reused);
    assert!(
        sesscache_openssl::callback_panics() > before,
        "the panic is counted"
    );
    assert_eq!(context.cache().stats().cache_full, 1);
    assert_eq!(context.cache().len(), 1, "the size bound holds");

    context.cache().set_remove_session_callback(None);
    let (server_says, client_says, _) = connect(&server, &client, Some(&second));
    assert!(server_says && client_says, "resumes after the panic");
    let (server_says, _, _) = connect(&server, &client, Some(&first));
    assert!(!server_says, "the evicted session is gone");
}

/// One connection as [`connect`] makes it, returning the server's handshake record too.
fn connect_recorded(
    server: &SslContext,
    client: &SslContext,
    offer: Option<&SslSession>,
) -> (bool, SslSession, session_cache::HandshakeRecord) {
    let (a, b) = UnixStream::pair().unwrap();
    let server = server.clone();
    let accepting = std::thread::spawn(move || {
        let mut tls = Ssl::new(&server).unwrap().accept(a).unwrap();
        tls.write_all(b"x").unwrap();
        let record = sesscache_openssl::handshake_record(tls.ssl()).unwrap();
        let _ = tls.shutdown();
        record
    });
    let mut ssl = Ssl::new(client).unwrap();
    if let Some(offer) = offer {
        // SAFETY: the session came from a connection of this same client context.
        unsafe { ssl.set_session(offer).unwrap() };
    }
    let mut tls = ssl.connect(b).unwrap();
    let mut byte = [0u8; 1];
    tls.read_exact(&mut byte).unwrap();
    let reused = tls.ssl().session_reused();
    let session = tls.ssl().session().unwrap().to_owned();
    let _ = tls.shutdown();
    (reused, session, accepting.join().unwrap())
}

/// The README's OpenSSL server: `install_server` and nothing else, no flush of its own. The
/// 255th good handshake flushes what has expired, and the counters say what the handshakes
/// did, each counted once in the outcome its record tells.
#[test]
fn an_embedding_as_the_readme_says_is_counted_and_flushed_by_the_255th_handshake() {
    for version in [SslVersion::TLS1_2, SslVersion::TLS1_3] {
        let context = context(b"app", Arc::new(SystemClock));
        let cache = context.cache();
        let stale = session_core::SessionBuilder::new(
            session_core::ProtocolVersion::TLS1_2,
            cache.now() - 10_000,
        )
        .id(session_core::SessionId::new(b"stale").unwrap())
        .sid_ctx(SidCtx::new(b"app").unwrap())
        .timeout(100)
        .build();
        cache.add(&stale).unwrap();
        let server = server(&context, version);
        let client = client(version);
        let mut outcomes = std::collections::HashMap::new();
        let mut offer: Option<SslSession> = None;
        let mut resumed = 0;
        for i in 0..255 {
            if i == 254 {
                assert!(
                    cache.contains(&stale),
                    "{version:?}: 254 handshakes, no flush"
                );
            }
            // Every third connection offers the session of the one before.
            let offered = if i % 3 == 2 { offer.as_ref() } else { None };
            let (reused, session, record) = connect_recorded(&server, &client, offered);
            resumed += u64::from(reused);
            *outcomes.entry(record.outcome().unwrap()).or_insert(0u64) += 1;
            offer = Some(session);
        }
        assert!(!cache.contains(&stale), "{version:?}: the 255th flushed it");
        let stats = cache.stats();
        assert_eq!((stats.accept, stats.accept_good), (255, 255), "{version:?}");
        assert_eq!(stats.hits, resumed, "{version:?}: {stats:?}");
        assert!(resumed >= 80, "{version:?}: {resumed}");
        let r = stats.resumptions;
        assert_eq!(r.handshakes(), 255, "{version:?}: {r:?}");
        assert_eq!(r.resumed, resumed, "{version:?}: {r:?}");
        for (outcome, n) in &outcomes {
            assert_eq!(r.count(*outcome), *n, "{version:?}: {outcome}");
        }
    }
}
