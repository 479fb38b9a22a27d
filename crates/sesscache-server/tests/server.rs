//! The server through its public API, without a TLS client: its stop (the shutdown future,
//! `max_connections`), its deadline for a handshake, and its report.

use std::io::Read as _;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use ctx::{Context, ContextConfig};
use sesscache_server::{Backend, Error, Server, ServerConfig};
use session_core::SidCtx;

fn context(backend: Backend) -> Context {
    Context::new(ContextConfig {
        sid_ctx: SidCtx::new(backend.sid_ctx()).unwrap(),
        ..ContextConfig::default()
    })
}

fn config(backend: Backend) -> ServerConfig {
    let mut config = ServerConfig::default();
    config.backend = backend;
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.handshake_timeout = Duration::from_secs(1);
    config.workers = Some(1);
    config
}

#[test]
fn a_silent_connection_fails_at_its_deadline_and_max_connections_stops_the_server() {
    for backend in [Backend::Rustls, Backend::Openssl] {
        let mut config = config(backend);
        config.max_connections = Some(1);
        let server = Server::bind(config, &context(backend)).unwrap();
        let addr = server.local_addr();
        let client = std::thread::spawn(move || {
            let mut silent = TcpStream::connect(addr).unwrap();
            let started = Instant::now();
            let _ = silent.read(&mut [0u8; 16]);
            started.elapsed()
        });
        let report = server.run(std::future::pending());
        let closed_after = client.join().unwrap();
        assert!(
            (Duration::from_millis(900)..Duration::from_secs(5)).contains(&closed_after),
            "{backend:?}: closed after {closed_after:?}"
        );
        assert_eq!(report.workers, 1);
        let counts = report.counts;
        assert_eq!(
            (counts.connections, counts.failed, counts.resumed),
            (1, 1, 0)
        );
        assert_eq!((counts.in_flight, counts.peak_in_flight), (0, 1));
        assert_eq!(counts.trace_dropped, None, "no trace");
    }
}

#[test]
fn the_shutdown_future_stops_the_server() {
    let server = Server::bind(config(Backend::Rustls), &context(Backend::Rustls)).unwrap();
    let counters = server.counters();
    let started = Instant::now();
    // Polled on the server's runtime, where its timer is.
    let report = server.run(async { tokio::time::sleep(Duration::from_millis(100)).await });
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(report.counts, counters.snapshot());
    assert_eq!(report.counts.connections, 0);
}

#[test]
fn limits_that_cannot_be_are_errors() {
    let mut none_held = config(Backend::Rustls);
    none_held.max_pending = 0;
    let mut no_worker = config(Backend::Rustls);
    no_worker.workers = Some(0);
    for config in [none_held, no_worker] {
        let err = Server::bind(config, &context(Backend::Rustls)).unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err}");
    }
    let mut missing = config(Backend::Openssl);
    missing.identity = sesscache_server::Identity::Files {
        cert: "/nonexistent/c.pem".into(),
        key: "/nonexistent/k.pem".into(),
    };
    let err = Server::bind(missing, &context(Backend::Openssl)).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/c.pem"), "{err}");
}
