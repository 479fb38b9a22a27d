//! The asynchronous accept path on tokio: real rustls handshakes (tokio-rustls client, the
//! server through `sesscache_rustls::accept`) over in-memory pipes, two servers sharing a
//! real `redis-server` behind a proxy that delays every reply. A session made on one
//! resumes on the other (TLS 1.2 and 1.3), and while the store is slow the runtime's one
//! worker keeps running other tasks: the store is never waited on inside the handshake.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ctx::{Context, ContextConfig};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ServerConfig, SupportedProtocolVersion};
use sesscache_redis::{KeyRing, Tier, TierConfig};
use sesscache_rustls::{ClientSessions, ServerPolicy, ServerSessions};
use session_cache::{CacheConfig, CacheMode, Resumption};
use session_core::SidCtx;
use test_support::delay_proxy::DelayProxy;
use test_support::redis_server::RedisServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Pki {
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server of the fleet: a context with a tier on the store at `url`, and its config.
fn server(
    pki: &Pki,
    version: &'static SupportedProtocolVersion,
    url: &str,
    keys: &str,
) -> (Context, Tier, Arc<ServerConfig>) {
    let context = Context::new(ContextConfig {
        sid_ctx: SidCtx::new(b"fleet").unwrap(),
        cache: CacheConfig::default(),
        ..ContextConfig::default()
    });
    let mut config = TierConfig::new(vec![url.to_owned()], KeyRing::parse(keys).unwrap());
    config.budget = Duration::from_secs(2);
    let tier = Tier::new(config).unwrap();
    tier.attach(context.cache());
    assert!(tier.ping(Duration::from_secs(10)));
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[version])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![pki.cert.clone()], pki.key.clone_key())
        .unwrap();
    config.session_storage = ServerSessions::new(&context);
    config.send_tls13_tickets = 1;
    (context, tier, Arc::new(config))
}

fn client(pki: &Pki) -> Arc<ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.cert.clone()).unwrap();
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let sessions = Context::new(ContextConfig {
        cache: CacheConfig {
            mode: CacheMode::CLIENT,
            ..CacheConfig::default()
        },
        ..ContextConfig::default()
    });
    config.resumption = rustls::client::Resumption::store(ClientSessions::new(&sessions));
    Arc::new(config)
}

/// One connection: the client over one end of a pipe, the server's async accept over the
/// other; the server's outcome. The client reads one byte, so that a TLS 1.3 ticket has
/// arrived before it goes.
async fn connect(
    client: &Arc<ClientConfig>,
    context: &Context,
    config: &Arc<ServerConfig>,
    tls13: bool,
) -> Resumption {
    let (near, far) = tokio::io::duplex(64 * 1024);
    let connector = tokio_rustls::TlsConnector::from(client.clone());
    let name = ServerName::try_from("localhost").unwrap();
    let client_side = async move {
        let mut tls = connector.connect(name, near).await.unwrap();
        let mut byte = [0u8; 1];
        tls.read_exact(&mut byte).await.unwrap();
    };
    // The server's config enables one version: it says which.
    let policy = ServerPolicy {
        tls13,
        stateless_tickets: false,
    };
    let server_side = async {
        let (mut tls, record) = sesscache_rustls::accept_with(context, config.clone(), policy, far)
            .await
            .unwrap();
        tls.write_all(b"x").await.unwrap();
        tls.flush().await.unwrap();
        record.outcome().unwrap()
    };
    let ((), outcome) = tokio::join!(client_side, server_side);
    outcome
}

#[test]
fn sessions_resume_across_the_fleet_without_blocking_the_runtime() {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let pki = Pki {
        cert: made.cert.der().clone(),
        key: PrivateKeyDer::Pkcs8(made.signing_key.serialize_der().into()),
    };
    let redis = RedisServer::start();
    let delay = Duration::from_millis(300);
    let proxy = DelayProxy::start(redis.port(), delay);
    let keys = KeyRing::generate_line().unwrap().to_string();
    // One worker: a store call waited on inside a handshake would stall every other task.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let (a, _ta, a_config) = server(&pki, version, &redis.url(), &keys);
        let (b, tb, b_config) = server(&pki, version, &proxy.url(), &keys);
        let client = client(&pki);
        runtime.block_on(async {
            let tls13 = version == &rustls::version::TLS13;
            // A client that can speak TLS 1.3 sends a random legacy session id, which a
            // TLS 1.2 server looks up and misses.
            let first = connect(&client, &a, &a_config, tls13).await;
            let fresh = if tls13 {
                Resumption::NotOffered
            } else {
                Resumption::UnknownId
            };
            assert_eq!(first, fresh, "{version:?}");
            // A writes the session to the store (not through the proxy).
            tokio::time::sleep(Duration::from_millis(200)).await;
            let ticks = Arc::new(AtomicU64::new(0));
            let ticking = ticks.clone();
            let ticker = tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    ticking.fetch_add(1, Ordering::Relaxed);
                }
            });
            let began = Instant::now();
            let outcome = connect(&client, &b, &b_config, tls13).await;
            let took = began.elapsed();
            ticker.abort();
            assert_eq!(outcome, Resumption::Resumed, "{version:?}: resumed on B");
            assert!(took >= delay, "{version:?}: the store was asked ({took:?})");
            // The runtime's only worker kept running the ticker while the store answered.
            let ticked = ticks.load(Ordering::Relaxed);
            assert!(
                ticked * 5 * 3 >= (took.as_millis() as u64),
                "{version:?}: {ticked} ticks in {took:?}"
            );
        });
        let stats = tb.stats();
        assert_eq!(stats.remote_hits, 1, "{version:?}: {stats:?}");
        assert_eq!(b.cache().stats().resumptions.resumed, 1, "{version:?}");
    }
}
