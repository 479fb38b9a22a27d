//! Real rustls handshakes, in memory (no sockets), resuming through a sesscache context.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ctx::{Context, ContextConfig};
use rustls::client::{ClientSessionStore, Resumption};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::StoresServerSessions;
use rustls::{
    ClientConfig, ClientConnection, HandshakeKind, NamedGroup, ServerConfig, ServerConnection,
    SupportedProtocolVersion,
};
use sesscache_rustls::{ClientSessions, ServerHandshake, ServerSessions};
use session_cache::{CacheConfig, CacheMode, HandshakeRecord, LookupRequest, Miss, SessionCache};
use session_core::{ManualClock, Session};

const NOW: u64 = 1_800_000_000;
const TIMEOUT: u64 = 300;

struct Pki {
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
}

fn pki() -> Pki {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    Pki {
        cert: certified.cert.der().clone(),
        key: PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into()),
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn server_context(clock: &Arc<ManualClock>) -> Context {
    Context::new(ContextConfig {
        cache: CacheConfig {
            timeout: TIMEOUT,
            clock: clock.clone(),
            ..CacheConfig::default()
        },
        ..ContextConfig::default()
    })
}

fn client_context(clock: &Arc<ManualClock>) -> Context {
    Context::new(ContextConfig {
        cache: CacheConfig {
            mode: CacheMode::CLIENT,
            timeout: 100_000,
            clock: clock.clone(),
            ..CacheConfig::default()
        },
        ..ContextConfig::default()
    })
}

fn server_config(
    pki: &Pki,
    version: &'static SupportedProtocolVersion,
    ctx: &Context,
) -> Arc<ServerConfig> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[version])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![pki.cert.clone()], pki.key.clone_key())
        .unwrap();
    config.session_storage = ServerSessions::new(ctx);
    Arc::new(config)
}

fn client_config(pki: &Pki, store: Arc<dyn ClientSessionStore>) -> Arc<ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.cert.clone()).unwrap();
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.resumption = Resumption::store(store);
    Arc::new(config)
}

/// Runs one connection to the end of the handshake (and the tickets after it); returns
/// whether the server resumed it.
fn connect(client: &Arc<ClientConfig>, server: &Arc<ServerConfig>) -> bool {
    run(client, server, None).0
}

/// [`connect`], the server driving a [`ServerHandshake`] on `ctx` as the README says (each
/// call that processes packets observed, finished at the end); also returns its record.
fn connect_observed(
    client: &Arc<ClientConfig>,
    server: &Arc<ServerConfig>,
    ctx: &Context,
) -> (bool, HandshakeRecord) {
    let (resumed, record) = run(client, server, Some(ctx));
    (resumed, record.unwrap())
}

fn run(
    client: &Arc<ClientConfig>,
    server: &Arc<ServerConfig>,
    ctx: Option<&Context>,
) -> (bool, Option<HandshakeRecord>) {
    let mut handshake = ctx.map(ServerHandshake::new);
    let name = ServerName::try_from("localhost").unwrap();
    let mut c = ClientConnection::new(client.clone(), name).unwrap();
    let mut s = ServerConnection::new(server.clone()).unwrap();
    let mut buf = Vec::new();
    for _ in 0..20 {
        buf.clear();
        while c.wants_write() {
            c.write_tls(&mut buf).unwrap();
        }
        let mut rd = &buf[..];
        while !rd.is_empty() {
            s.read_tls(&mut rd).unwrap();
            match handshake.as_mut() {
                Some(h) => h.observe(|| s.process_new_packets()).unwrap(),
                None => s.process_new_packets().unwrap(),
            };
        }
        buf.clear();
        while s.wants_write() {
            s.write_tls(&mut buf).unwrap();
        }
        let mut rd = &buf[..];
        while !rd.is_empty() {
            c.read_tls(&mut rd).unwrap();
            c.process_new_packets().unwrap();
        }
        if !c.is_handshaking() && !s.is_handshaking() && !c.wants_write() && !s.wants_write() {
            let resumed = s.handshake_kind() == Some(HandshakeKind::Resumed);
            assert_eq!(resumed, c.handshake_kind() == Some(HandshakeKind::Resumed));
            let record = handshake.as_mut().map(|h| h.finish(&s).clone());
            return (resumed, record);
        }
    }
    panic!("the handshake did not finish");
}

fn both_versions() -> [&'static SupportedProtocolVersion; 2] {
    [&rustls::version::TLS12, &rustls::version::TLS13]
}

#[test]
fn the_second_connection_resumes_and_the_counters_agree() {
    let pki = pki();
    for version in both_versions() {
        let clock = Arc::new(ManualClock::new(NOW));
        let ctx = server_context(&clock);
        let server = server_config(&pki, version, &ctx);
        let client = client_config(&pki, ClientSessions::new(&client_context(&clock)));
        assert!(
            !connect(&client, &server),
            "{version:?}: the first is a full handshake"
        );
        assert!(connect(&client, &server), "{version:?}: the second resumes");
        assert!(connect(&client, &server), "{version:?}: and the third");
        let stats = ctx.cache().stats();
        assert_eq!(stats.hits, 2, "{version:?}: {stats:?}");
        // The first connection offers an id too: a client that can speak TLS 1.3 sends a
        // random legacy session id, which a TLS 1.2 server looks up and misses.
        let first_offer_misses = u64::from(version == &rustls::version::TLS12);
        assert_eq!(stats.misses, first_offer_misses, "{version:?}: {stats:?}");
        assert_eq!(stats.timeouts, 0, "{version:?}: {stats:?}");
        assert!(!ctx.cache().is_empty());
        // Each session is cached under the version it was made with (read from rustls's
        // value), whatever the context's: a TLS 1.2 session id is never found as a ticket.
        let made = if version == &rustls::version::TLS12 {
            session_core::ProtocolVersion::TLS1_2
        } else {
            session_core::ProtocolVersion::TLS1_3
        };
        for session in ctx.cache().sessions() {
            assert_eq!(session.version(), made, "{version:?}");
        }
    }
}

#[test]
fn an_expired_offer_is_a_timeout_and_a_full_handshake() {
    let pki = pki();
    for version in both_versions() {
        let clock = Arc::new(ManualClock::new(NOW));
        let ctx = server_context(&clock);
        let server = server_config(&pki, version, &ctx);
        let client = client_config(&pki, ClientSessions::new(&client_context(&clock)));
        assert!(!connect(&client, &server));
        clock.set(NOW + TIMEOUT + 1);
        assert!(
            !connect(&client, &server),
            "{version:?}: expired in the server's cache"
        );
        let stats = ctx.cache().stats();
        assert_eq!(
            (stats.hits, stats.timeouts),
            (0, 1),
            "{version:?}: {stats:?}"
        );
        assert!(
            connect(&client, &server),
            "{version:?}: the new session resumes"
        );
    }
}

#[test]
fn the_cache_survives_rebuilding_the_server_config() {
    let pki = pki();
    let clock = Arc::new(ManualClock::new(NOW));
    let ctx = server_context(&clock);
    let client = client_config(&pki, ClientSessions::new(&client_context(&clock)));
    let before = server_config(&pki, &rustls::version::TLS12, &ctx);
    assert!(!connect(&client, &before));
    drop(before);
    // A certificate reload builds a new config; the context, and its cache, stay.
    let reloaded = server_config(&pki, &rustls::version::TLS12, &ctx);
    assert!(connect(&client, &reloaded), "resumed across the reload");

    // rustls's own memory cache lives in the config and goes with it.
    let mut own = (*reloaded).clone();
    own.session_storage = rustls::server::ServerSessionMemoryCache::new(256);
    let own = Arc::new(own);
    assert!(
        !connect(&client, &own),
        "a config with its own cache knows no session"
    );
}

/// A server store that remembers the keys rustls asked it to take.
#[derive(Debug)]
struct Recording {
    inner: Arc<ServerSessions>,
    taken: Mutex<Vec<Vec<u8>>>,
}

impl StoresServerSessions for Recording {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        self.inner.put(key, value)
    }
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.inner.get(key)
    }
    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.taken.lock().unwrap().push(key.to_vec());
        self.inner.take(key)
    }
    fn can_cache(&self) -> bool {
        self.inner.can_cache()
    }
}

#[test]
fn a_tls13_ticket_resumes_at_most_once() {
    let pki = pki();
    let clock = Arc::new(ManualClock::new(NOW));
    let ctx = server_context(&clock);
    let recording = Arc::new(Recording {
        inner: ServerSessions::new(&ctx),
        taken: Mutex::new(Vec::new()),
    });
    let mut config = (*server_config(&pki, &rustls::version::TLS13, &ctx)).clone();
    config.session_storage = recording.clone();
    let server = Arc::new(config);
    let client = client_config(&pki, ClientSessions::new(&client_context(&clock)));
    assert!(!connect(&client, &server));
    assert!(connect(&client, &server), "the ticket resumes once");
    let used = recording.taken.lock().unwrap().clone();
    assert_eq!(used.len(), 1);
    assert_eq!(
        recording.inner.take(&used[0]),
        None,
        "a replayed ticket finds nothing"
    );
    let stats = ctx.cache().stats();
    assert_eq!((stats.hits, stats.misses), (1, 1), "{stats:?}");
}

#[test]
fn client_sessions_are_kept_per_server_and_expire() {
    let clock = Arc::new(ManualClock::new(NOW));
    let ctx = client_context(&clock);
    let store = ClientSessions::new(&ctx);
    let a = ServerName::try_from("a.example").unwrap();
    let b = ServerName::try_from("b.example").unwrap();
    store.set_kx_hint(a.clone(), NamedGroup::X25519);
    assert_eq!(store.kx_hint(&a), Some(NamedGroup::X25519));
    assert_eq!(store.kx_hint(&b), None);
    clock.set(NOW + 100_001);
    assert_eq!(store.kx_hint(&a), None, "expired with the cache's timeout");
    assert!(ctx.cache().is_empty(), "and removed");

    // Not in CLIENT mode: nothing is kept.
    let server_mode = server_context(&clock);
    let store = ClientSessions::new(&server_mode);
    store.set_kx_hint(a.clone(), NamedGroup::X25519);
    assert_eq!(store.kx_hint(&a), None);
}

/// A shared store behind the hooks, as a fleet tier is: what one server's new-session
/// callback saves, another's get and take callbacks find; a take claims it for good.
fn share(ctx: &Context, store: &Arc<Mutex<HashMap<Vec<u8>, Session>>>) {
    let cache = ctx.cache();
    let saved = store.clone();
    cache.set_new_session_callback(Some(Arc::new(move |_: &SessionCache, s: &Session| {
        saved
            .lock()
            .unwrap()
            .insert(s.id().as_bytes().to_vec(), s.dup());
    })));
    let found = store.clone();
    cache.set_get_session_callback(Some(Arc::new(
        move |_: &SessionCache, r: &LookupRequest<'_>| {
            let found = found.lock().unwrap().get(r.id).map(Session::dup);
            found.ok_or(Miss::UnknownId)
        },
    )));
    let claimed = store.clone();
    cache.set_take_session_callback(Some(Arc::new(
        move |_: &SessionCache, r: &LookupRequest<'_>, _local: Option<Session>| {
            let claimed = claimed.lock().unwrap().remove(r.id);
            claimed.ok_or(Miss::AlreadyUsed)
        },
    )));
}

#[test]
fn servers_sharing_a_store_through_the_hooks_resume_each_others_sessions() {
    let pki = pki();
    for version in both_versions() {
        let clock = Arc::new(ManualClock::new(NOW));
        let store = Arc::new(Mutex::new(HashMap::new()));
        let (a, b) = (server_context(&clock), server_context(&clock));
        share(&a, &store);
        share(&b, &store);
        let (server_a, server_b) = (
            server_config(&pki, version, &a),
            server_config(&pki, version, &b),
        );
        let client_ctx = client_context(&clock);
        let client = client_config(&pki, ClientSessions::new(&client_ctx));
        assert!(
            !connect(&client, &server_a),
            "{version:?}: full handshake on A"
        );
        let issued = a.cache().len();
        assert!(issued >= 1);
        assert_eq!(
            store.lock().unwrap().len(),
            issued,
            "{version:?}: the new-session callback saw each"
        );
        assert!(
            connect(&client, &server_b),
            "{version:?}: resumed on B from the store"
        );
        assert_eq!(b.cache().stats().cb_hits, 1, "{version:?}");
        assert!(connect(&client, &server_a), "{version:?}: and back on A");
    }
}

#[test]
fn a_tls13_ticket_used_on_one_server_is_refused_on_another() {
    let pki = pki();
    let clock = Arc::new(ManualClock::new(NOW));
    let store = Arc::new(Mutex::new(HashMap::new()));
    let (a, b) = (server_context(&clock), server_context(&clock));
    share(&a, &store);
    share(&b, &store);
    let version = &rustls::version::TLS13;
    let server_a = server_config(&pki, version, &a);
    let on_b = Arc::new(Recording {
        inner: ServerSessions::new(&b),
        taken: Mutex::new(Vec::new()),
    });
    let mut config = (*server_config(&pki, version, &b)).clone();
    config.session_storage = on_b.clone();
    let server_b = Arc::new(config);
    let client = client_config(&pki, ClientSessions::new(&client_context(&clock)));
    assert!(!connect(&client, &server_a));
    let issued = a.cache().len();
    assert!(issued >= 1, "A keeps its tickets");
    assert!(
        connect(&client, &server_b),
        "B takes the ticket from the store"
    );
    let used = on_b.taken.lock().unwrap().clone();
    assert_eq!(used.len(), 1);
    let on_a = ServerSessions::new(&a);
    assert_eq!(
        on_a.take(&used[0]),
        None,
        "A still cached its copy, but the store says it is used up"
    );
    assert_eq!(a.cache().len(), issued - 1);
    let stats = a.cache().stats();
    assert_eq!((stats.hits, stats.misses), (0, 1), "{stats:?}");
}

/// The README's rustls server: the store over a context, each handshake driven by a
/// [`ServerHandshake`], and no flush of its own. The 255th good handshake flushes what has
/// expired, and the counters say what the handshakes did.
#[test]
fn an_embedding_as_the_readme_says_is_counted_and_flushed_by_the_255th_handshake() {
    let pki = pki();
    for version in both_versions() {
        let clock = Arc::new(ManualClock::new(NOW));
        let ctx = server_context(&clock);
        let server = server_config(&pki, version, &ctx);
        let new_client = || client_config(&pki, ClientSessions::new(&client_context(&clock)));
        let returning = new_client();
        let mut outcomes: HashMap<session_cache::Resumption, u64> = HashMap::new();
        let mut note = |(resumed, record): (bool, HandshakeRecord)| {
            *outcomes.entry(record.outcome().unwrap()).or_default() += 1;
            resumed
        };
        assert!(!note(connect_observed(&returning, &server, &ctx)));
        let first: Vec<Session> = ctx.cache().sessions();
        clock.set(NOW + TIMEOUT + 1);
        // 253 more handshakes of new clients, then one resumption of a fresh session.
        for _ in 0..252 {
            assert!(!note(connect_observed(&new_client(), &server, &ctx)));
        }
        let again = new_client();
        assert!(!note(connect_observed(&again, &server, &ctx)));
        assert!(
            first.iter().all(|s| ctx.cache().contains(s)),
            "{version:?}: 254 good handshakes, nothing flushed yet"
        );
        assert!(note(connect_observed(&again, &server, &ctx)), "{version:?}");
        assert!(
            first.iter().all(|s| !ctx.cache().contains(s)),
            "{version:?}: the 255th flushed the expired sessions"
        );
        let stats = ctx.cache().stats();
        assert_eq!((stats.accept, stats.accept_good), (255, 255), "{version:?}");
        assert_eq!(stats.hits, 1, "{version:?}: {stats:?}");
        let r = stats.resumptions;
        assert_eq!(r.handshakes(), 255, "{version:?}: {r:?}");
        for (outcome, n) in &outcomes {
            assert_eq!(r.count(*outcome), *n, "{version:?}: {outcome}");
        }
        assert_eq!(r.resumed, 1, "{version:?}");
    }
}

/// A server that forgets the [`ServerHandshake`] counts no handshakes, yet its expired
/// sessions are flushed all the same, by the 255th new session.
#[test]
fn an_embedding_that_drives_no_handshake_still_has_expired_sessions_flushed() {
    let pki = pki();
    let clock = Arc::new(ManualClock::new(NOW));
    let ctx = server_context(&clock);
    let server = server_config(&pki, &rustls::version::TLS12, &ctx);
    let new_client = || client_config(&pki, ClientSessions::new(&client_context(&clock)));
    assert!(!connect(&new_client(), &server));
    let first = ctx.cache().sessions();
    assert_eq!(first.len(), 1);
    clock.set(NOW + TIMEOUT + 1);
    for _ in 0..253 {
        connect(&new_client(), &server);
    }
    assert!(
        ctx.cache().contains(&first[0]),
        "254 sessions: no flush yet"
    );
    connect(&new_client(), &server);
    assert!(
        !ctx.cache().contains(&first[0]),
        "the 255th session flushed it"
    );
    let stats = ctx.cache().stats();
    assert_eq!((stats.accept, stats.accept_good), (0, 0));
}
