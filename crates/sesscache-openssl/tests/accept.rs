//! The asynchronous accept path on tokio: real OpenSSL handshakes (a tokio-openssl client,
//! the server through `sesscache_openssl::accept`) over in-memory pipes, two servers
//! sharing a real `redis-server` behind a proxy that delays every reply. A session made on
//! one resumes on the other (TLS 1.2 and 1.3), and while the store is slow the runtime's
//! one worker keeps running other tasks: the ClientHello callback suspends the handshake
//! and the store is never waited on inside it.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ctx::{Context, ContextConfig};
use openssl::pkey::PKey;
use openssl::ssl::{
    Ssl, SslContext, SslContextBuilder, SslMethod, SslSession, SslVerifyMode, SslVersion,
};
use openssl::x509::X509;
use sesscache_redis::{KeyRing, Tier, TierConfig};
use session_cache::Resumption;
use session_core::SidCtx;
use test_support::delay_proxy::DelayProxy;
use test_support::redis_server::RedisServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_openssl::SslStream;

/// A server of the fleet: a context with a tier on the store at `url`, and its OpenSSL
/// context with the adapter installed.
fn server(
    made: &rcgen::CertifiedKey<rcgen::KeyPair>,
    version: SslVersion,
    url: &str,
    keys: &str,
) -> (Context, Tier, SslContext) {
    let context = Context::new(ContextConfig {
        sid_ctx: SidCtx::new(b"fleet").unwrap(),
        ..ContextConfig::default()
    });
    let mut config = TierConfig::new(vec![url.to_owned()], KeyRing::parse(keys).unwrap());
    config.budget = Duration::from_secs(2);
    let tier = Tier::new(config).unwrap();
    tier.attach(context.cache());
    assert!(tier.ping(Duration::from_secs(10)));
    let mut b = SslContextBuilder::new(SslMethod::tls_server()).unwrap();
    b.set_certificate(&X509::from_der(made.cert.der()).unwrap())
        .unwrap();
    b.set_private_key(&PKey::private_key_from_der(&made.signing_key.serialize_der()).unwrap())
        .unwrap();
    b.set_max_proto_version(Some(version)).unwrap();
    b.set_num_tickets(1).unwrap();
    sesscache_openssl::install_server(&mut b, &context).unwrap();
    (context, tier, b.build())
}

/// One connection offering `offer`: the server's outcome, and the client's session after it.
async fn connect(
    client: &SslContext,
    context: &Context,
    server: &SslContext,
    offer: Option<&SslSession>,
) -> (Resumption, SslSession) {
    let (near, far) = tokio::io::duplex(64 * 1024);
    let mut ssl = Ssl::new(client).unwrap();
    if let Some(offer) = offer {
        // SAFETY: the session came from a connection of this same client context.
        unsafe { ssl.set_session(offer).unwrap() };
    }
    let client_side = async move {
        let mut tls = SslStream::new(ssl, near).unwrap();
        Pin::new(&mut tls).connect().await.unwrap();
        let mut byte = [0u8; 1];
        tls.read_exact(&mut byte).await.unwrap();
        let _ = tls.shutdown().await;
        tls.ssl().session().unwrap().to_owned()
    };
    let server_side = async {
        let ssl = Ssl::new(server).unwrap();
        let (mut tls, record) = sesscache_openssl::accept(context, ssl, far).await.unwrap();
        tls.write_all(b"x").await.unwrap();
        // A clean shutdown: OpenSSL removes the session of a connection without one.
        tls.shutdown().await.unwrap();
        record.outcome().unwrap()
    };
    let (session, outcome) = tokio::join!(client_side, server_side);
    (outcome, session)
}

#[test]
fn sessions_resume_across_the_fleet_without_blocking_the_runtime() {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let redis = RedisServer::start();
    let delay = Duration::from_millis(300);
    let proxy = DelayProxy::start(redis.port(), delay);
    let keys = KeyRing::generate_line().unwrap().to_string();
    // One worker: a store call waited on inside a handshake would stall every other task.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for version in [SslVersion::TLS1_2, SslVersion::TLS1_3] {
        let (a, _ta, a_ssl) = server(&made, version, &redis.url(), &keys);
        let (b, tb, b_ssl) = server(&made, version, &proxy.url(), &keys);
        let mut client = SslContextBuilder::new(SslMethod::tls_client()).unwrap();
        client.set_verify(SslVerifyMode::NONE);
        client.set_max_proto_version(Some(version)).unwrap();
        let client = client.build();
        runtime.block_on(async {
            let (outcome, session) = connect(&client, &a, &a_ssl, None).await;
            assert_eq!(outcome, Resumption::NotOffered, "{version:?}");
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
            let (outcome, _) = connect(&client, &b, &b_ssl, Some(&session)).await;
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
