//! Resumptions through the fleet's store on a tokio server: the asynchronous accept path
//! (`sesscache_rustls::accept`, `sesscache_openssl::accept`: the session is fetched on the
//! runtime before the handshake looks it up) against the blocking one (tokio-rustls and
//! tokio-openssl as they are: the lookup waits on the store on a runtime worker).
//!
//! A real `redis-server` behind a proxy that delays every reply by 2 ms; the server's cache
//! keeps nothing itself (`NO_INTERNAL_STORE`), so every resumption is a remote hit; a server
//! runtime of 2 workers; 200 clients at once, each resuming its own TLS 1.2 session again and
//! again over in-memory pipes for the given seconds. Then the store hangs, and a client that
//! offers nothing (a handshake that needs no store) measures how long it waits meanwhile.
//! Last, the floor under that figure: the store answers again, the 200 clients make full
//! handshakes (as they do once their lookups time out while it hangs), and the same client
//! measures how long its handshake waits for the CPU alone.
//!
//! `cargo run --release -p sesscache-bench --bin async_fleet [-- SECONDS]` (default 5).

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ctx::{Context, ContextConfig};
use hdrhistogram::Histogram;
use openssl::ssl::{Ssl, SslContext, SslContextBuilder, SslMethod, SslSession, SslVerifyMode};
use rustls::pki_types::{PrivateKeyDer, ServerName};
use sesscache_redis::{KeyRing, Tier, TierConfig};
use sesscache_rustls::ServerPolicy;
use session_cache::{CacheConfig, CacheMode};
use test_support::delay_proxy::DelayProxy;
use test_support::redis_server::RedisServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;

const CLIENTS: usize = 200;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stack {
    Rustls,
    Openssl,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Path {
    Async,
    Blocking,
}

/// What the server side needs: its context, and each stack's config.
struct Server {
    context: Context,
    _tier: Tier,
    rustls: Arc<rustls::ServerConfig>,
    openssl: SslContext,
}

fn server(url: &str, keys: &str, made: &rcgen::CertifiedKey<rcgen::KeyPair>) -> Server {
    let context = Context::new(ContextConfig {
        cache: CacheConfig {
            mode: CacheMode::SERVER | CacheMode::NO_INTERNAL_STORE,
            ..CacheConfig::default()
        },
        ..ContextConfig::default()
    });
    let mut config = TierConfig::new(vec![url.to_owned()], KeyRing::parse(keys).expect("keys"));
    config.budget = Duration::from_millis(100);
    let tier = Tier::new(config).expect("a tier");
    tier.attach(context.cache());
    assert!(tier.ping(Duration::from_secs(10)), "the store answers");
    let key = PrivateKeyDer::Pkcs8(made.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut rustls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12])
        .expect("TLS 1.2")
        .with_no_client_auth()
        .with_single_cert(vec![made.cert.der().clone()], key)
        .expect("a certificate");
    rustls.session_storage = sesscache_rustls::ServerSessions::new(&context);
    let mut b = SslContextBuilder::new(SslMethod::tls_server()).expect("a context");
    b.set_certificate(&openssl::x509::X509::from_der(made.cert.der()).expect("x509"))
        .expect("certificate");
    b.set_private_key(
        &openssl::pkey::PKey::private_key_from_der(&made.signing_key.serialize_der()).expect("key"),
    )
    .expect("key");
    b.set_max_proto_version(Some(openssl::ssl::SslVersion::TLS1_2))
        .expect("TLS 1.2");
    sesscache_openssl::install_server(&mut b, &context).expect("install");
    Server {
        context,
        _tier: tier,
        rustls: Arc::new(rustls),
        openssl: b.build(),
    }
}

/// Serves each pipe sent on `incoming` in a task of its own: a handshake on `stack` through
/// `path`, then one byte.
async fn serve(
    server: Arc<Server>,
    stack: Stack,
    path: Path,
    mut incoming: mpsc::Receiver<DuplexStream>,
) {
    while let Some(io) = incoming.recv().await {
        let server = server.clone();
        tokio::spawn(async move {
            let policy = ServerPolicy {
                tls13: false,
                stateless_tickets: false,
            };
            match (stack, path) {
                (Stack::Rustls, Path::Async) => {
                    let accepted = sesscache_rustls::accept_with(
                        &server.context,
                        server.rustls.clone(),
                        policy,
                        io,
                    )
                    .await;
                    if let Ok((mut tls, _)) = accepted {
                        let _ = tls.write_all(b"x").await;
                        let _ = tls.shutdown().await;
                    }
                }
                (Stack::Rustls, Path::Blocking) => {
                    let acceptor = tokio_rustls::TlsAcceptor::from(server.rustls.clone());
                    if let Ok(mut tls) = acceptor.accept(io).await {
                        let _ = tls.write_all(b"x").await;
                        let _ = tls.shutdown().await;
                    }
                }
                (Stack::Openssl, path) => {
                    let ssl = Ssl::new(&server.openssl).expect("an SSL");
                    let tls = match path {
                        Path::Async => sesscache_openssl::accept(&server.context, ssl, io)
                            .await
                            .map(|(tls, _)| tls)
                            .ok(),
                        Path::Blocking => {
                            let mut tls = tokio_openssl::SslStream::new(ssl, io).expect("a stream");
                            Pin::new(&mut tls).accept().await.ok().map(|()| tls)
                        }
                    };
                    if let Some(mut tls) = tls {
                        let _ = tls.write_all(b"x").await;
                        let _ = tls.shutdown().await;
                    }
                }
            }
        });
    }
}

/// One client's connection: a handshake offering what it holds, then the server's byte.
/// Returns whether it resumed.
async fn connect(
    stack: Stack,
    to: &mpsc::Sender<DuplexStream>,
    rustls: &Arc<rustls::ClientConfig>,
    openssl: &SslContext,
    held: &Mutex<Option<SslSession>>,
) -> Option<bool> {
    let (near, far) = tokio::io::duplex(64 * 1024);
    to.send(far).await.ok()?;
    let mut byte = [0u8; 1];
    match stack {
        Stack::Rustls => {
            let connector = tokio_rustls::TlsConnector::from(rustls.clone());
            let name = ServerName::try_from("localhost").ok()?;
            let mut tls = connector.connect(name, near).await.ok()?;
            tls.read_exact(&mut byte).await.ok()?;
            Some(tls.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed))
        }
        Stack::Openssl => {
            let mut ssl = Ssl::new(openssl).ok()?;
            if let Some(session) = held.lock().ok()?.as_ref() {
                // SAFETY: the session came from a connection of this same client context.
                unsafe { ssl.set_session(session).ok()? };
            }
            let mut tls = tokio_openssl::SslStream::new(ssl, near).ok()?;
            Pin::new(&mut tls).connect().await.ok()?;
            tls.read_exact(&mut byte).await.ok()?;
            let resumed = tls.ssl().session_reused();
            *held.lock().ok()? = tls.ssl().session().map(|s| s.to_owned());
            let _ = tls.shutdown().await;
            Some(resumed)
        }
    }
}

fn client_configs(
    made: &rcgen::CertifiedKey<rcgen::KeyPair>,
) -> (Arc<rustls::ClientConfig>, SslContext) {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(made.cert.der().clone()).expect("a root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12])
        .expect("TLS 1.2")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::in_memory_sessions(4);
    let mut b = SslContextBuilder::new(SslMethod::tls_client()).expect("a context");
    b.set_verify(SslVerifyMode::NONE);
    // TLS 1.2 only, like the rustls clients: a client that could speak TLS 1.3 sends a random
    // legacy session id when it has nothing to offer, which a TLS 1.2 server cannot tell from
    // a session's and must look up.
    b.set_max_proto_version(Some(openssl::ssl::SslVersion::TLS1_2))
        .expect("TLS 1.2");
    (Arc::new(config), b.build())
}

struct Run {
    handshakes: u64,
    resumed: u64,
    latency: Histogram<u64>,
    /// A client offering nothing, while the store hangs: its handshakes' latency.
    fresh_while_hung: Histogram<u64>,
    /// The same client while the store answers and the others make full handshakes.
    fresh_beside_full: Histogram<u64>,
}

fn run(stack: Stack, path: Path, seconds: u64, made: &rcgen::CertifiedKey<rcgen::KeyPair>) -> Run {
    let redis = RedisServer::start();
    let proxy = DelayProxy::start(redis.port(), Duration::from_millis(2));
    let keys = KeyRing::generate_line().expect("a key").to_string();
    let server = Arc::new(server(&proxy.url(), &keys, made));
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    let (to, incoming) = mpsc::channel(1024);
    server_rt.spawn(serve(server.clone(), stack, path, incoming));
    let latency = Arc::new(Mutex::new(
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("a histogram"),
    ));
    let fresh = Arc::new(Mutex::new(
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("a histogram"),
    ));
    let mut beside_full = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("a histogram");
    // Clients make full handshakes (offer nothing) while this is set.
    let full = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(Mutex::new((0u64, 0u64)));
    let stop = Arc::new(AtomicBool::new(false));
    let (rustls, openssl) = client_configs(made);
    client_rt.block_on(async {
        // Each client's first, full handshake writes its session to the store.
        let mut clients = Vec::new();
        for _ in 0..CLIENTS {
            let (rustls, held) = (
                {
                    let mut c = (*rustls).clone();
                    c.resumption = rustls::client::Resumption::in_memory_sessions(4);
                    Arc::new(c)
                },
                Arc::new(Mutex::new(None)),
            );
            connect(stack, &to, &rustls, &openssl, &held).await;
            clients.push((rustls, held));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut tasks = Vec::new();
        let no_resumption = {
            let mut c = (*rustls).clone();
            c.resumption = rustls::client::Resumption::disabled();
            Arc::new(c)
        };
        for (rustls, held) in clients {
            let (to, openssl, latency, counts, stop, full, no_resumption) = (
                to.clone(),
                openssl.clone(),
                latency.clone(),
                counts.clone(),
                stop.clone(),
                full.clone(),
                no_resumption.clone(),
            );
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    if full.load(Ordering::Relaxed) {
                        let none = Mutex::new(None);
                        connect(stack, &to, &no_resumption, &openssl, &none).await;
                        continue;
                    }
                    let began = Instant::now();
                    let Some(resumed) = connect(stack, &to, &rustls, &openssl, &held).await else {
                        continue;
                    };
                    let took = began.elapsed().as_micros().max(1) as u64;
                    latency.lock().expect("histogram").saturating_record(took);
                    let mut c = counts.lock().expect("counts");
                    c.0 += 1;
                    c.1 += u64::from(resumed);
                }
            }));
        }
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        // The store hangs: a client with nothing to offer, meanwhile.
        redis.hang();
        let fresh_handshakes = || async {
            let mut took = Vec::new();
            for _ in 0..20 {
                let began = Instant::now();
                let none = Mutex::new(None);
                connect(stack, &to, &no_resumption, &openssl, &none).await;
                took.push(began.elapsed().as_micros().max(1) as u64);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            took
        };
        for took in fresh_handshakes().await {
            fresh.lock().expect("histogram").saturating_record(took);
        }
        // The floor: the store answers, the others make full handshakes.
        redis.resume();
        full.store(true, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(500)).await;
        for took in fresh_handshakes().await {
            beside_full.saturating_record(took);
        }
        stop.store(true, Ordering::Relaxed);
        for task in tasks {
            let _ = task.await;
        }
    });
    let (handshakes, resumed) = *counts.lock().expect("counts");
    let latency = latency.lock().expect("histogram").clone();
    let fresh_while_hung = fresh.lock().expect("histogram").clone();
    Run {
        handshakes,
        resumed,
        latency,
        fresh_while_hung,
        fresh_beside_full: beside_full,
    }
}

fn main() {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("a cert");
    println!(
        "{CLIENTS} clients resuming TLS 1.2 sessions held only in the store (2 ms behind a proxy), \
         a server runtime of 2 workers, {seconds} s each"
    );
    println!(
        "{:<8} {:<9} {:>12} {:>9} {:>10} {:>10} {:>22} {:>22}",
        "stack",
        "path",
        "handshakes/s",
        "resumed",
        "p50 ms",
        "p99 ms",
        "no-store p99 (hung) ms",
        "floor: beside full ms"
    );
    for stack in [Stack::Rustls, Stack::Openssl] {
        let mut per_second = Vec::new();
        for path in [Path::Async, Path::Blocking] {
            let r = run(stack, path, seconds, &made);
            let rate = r.handshakes as f64 / seconds as f64;
            per_second.push(rate);
            let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1_000.0;
            println!(
                "{:<8} {:<9} {:>12.0} {:>8.1}% {:>10.1} {:>10.1} {:>22.1} {:>22.1}",
                format!("{stack:?}").to_lowercase(),
                format!("{path:?}").to_lowercase(),
                rate,
                100.0 * r.resumed as f64 / r.handshakes.max(1) as f64,
                ms(&r.latency, 0.5),
                ms(&r.latency, 0.99),
                ms(&r.fresh_while_hung, 0.99),
                ms(&r.fresh_beside_full, 0.99),
            );
        }
        println!(
            "{:<8} async / blocking: {:.2}x",
            format!("{stack:?}").to_lowercase(),
            per_second[0] / per_second[1].max(f64::MIN_POSITIVE)
        );
    }
}
