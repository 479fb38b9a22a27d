//! An HTTPS server on axum whose TLS sessions live in sesscache's cache: `/` says whether the
//! connection resumed, `/metrics` serves the cache's (and the fleet tier's) metrics.
//!
//! ```sh
//! cargo run --features rustls,redis,metrics --example axum_server &
//! # TLS 1.2: with TLS 1.3, s_client reconnects before its ticket arrives
//! openssl s_client -connect 127.0.0.1:8443 -tls1_2 -reconnect </dev/null | grep -E '^(New|Re)'
//! curl -k https://127.0.0.1:8443/metrics
//! ```
//!
//! Set `SESSCACHE_LISTEN` for another address, `SESSCACHE_CERT` and `SESSCACHE_KEY` (PEM
//! files) for a certificate (else a self-signed one for localhost), and `SESSCACHE_REDIS` (a
//! URL) with `SESSCACHE_REDIS_KEYS` (a file from `sesscache keygen`) to share sessions with a
//! fleet through Redis or Valkey.

use std::{env::var, sync::Arc, time::Duration};

use axum::{extract::State, http::header, routing::get, Router};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use prometheus::{Encoder, Registry, TextEncoder};
use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
use sesscache::cache::Resumption;
use sesscache::ctx::{Context, ContextConfig};
use sesscache::{metrics::Collector, redis, rustls::ServerSessions};
use tokio::time::{sleep, timeout};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The context owns the cache (keep it); timing fills the metrics' latency histograms.
    let mut settings = ContextConfig::default();
    settings.cache.timing = true;
    let context = Context::new(settings);
    let mut collector = Collector::new(&context);
    if let (Ok(url), Ok(keys)) = (var("SESSCACHE_REDIS"), var("SESSCACHE_REDIS_KEYS")) {
        let keys = redis::KeyRing::load(keys.as_ref())?;
        let tier = redis::Tier::new(redis::TierConfig::new(vec![url], keys))?;
        tier.attach(context.cache());
        collector = collector.tier(move || tier.stats());
    }
    let registry = Registry::new();
    registry.register(Box::new(collector))?;

    let (certs, key) = match (var("SESSCACHE_CERT"), var("SESSCACHE_KEY")) {
        (Ok(certs), Ok(key)) => (
            CertificateDer::pem_file_iter(certs)?.collect::<Result<_, _>>()?,
            PrivateKeyDer::from_pem_file(key)?,
        ),
        _ => {
            let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
            let key = PrivateKeyDer::Pkcs8(made.signing_key.serialize_der().into());
            (vec![made.cert.der().clone()], key)
        }
    };
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.session_storage = ServerSessions::new(&context);
    // Every TLS 1.3 ticket is a session stored (and with the fleet tier, written to Redis)
    // that resumes once. rustls sends two per handshake so that a client may open two
    // connections at once; one halves the writes, and a client that resumes gets a new one.
    config.send_tls13_tickets = 1;
    let config = Arc::new(config);

    // `/`: the connection's outcome, `resumed` or why not (`not_offered`, `unknown_id`, ...).
    let index = |State(outcome): State<Option<Resumption>>| async move {
        format!("{}\n", outcome.map_or("-", Resumption::name))
    };
    let metrics = move || {
        let mut text = Vec::new();
        let _ = TextEncoder::new().encode(&registry.gather(), &mut text);
        async { ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], text) }
    };
    let app = Router::new()
        .route("/", get(index))
        .route("/metrics", get(metrics));

    let addr = var("SESSCACHE_LISTEN").unwrap_or_else(|_| "127.0.0.1:8443".to_owned());
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on https://{}", listener.local_addr()?);
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            sleep(Duration::from_millis(100)).await; // out of file descriptors
            continue;
        };
        let (context, config, app) = (context.clone(), config.clone(), app.clone());
        tokio::spawn(async move {
            // The handshake (the fleet store's fetch included) within one deadline, counted
            // in the cache's statistics with why it did not resume.
            let handshake = sesscache::rustls::accept(&context, config, tcp);
            if let Ok(Ok((tls, record))) = timeout(Duration::from_secs(10), handshake).await {
                let service = TowerToHyperService::new(app.with_state(record.outcome()));
                let mut http = http1::Builder::new();
                http.timer(TokioTimer::new()); // each request's headers within 30 s, or closed
                let _ = http.serve_connection(TokioIo::new(tls), service).await;
            }
        });
    }
}
