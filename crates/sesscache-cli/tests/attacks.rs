//! `sesscache serve` with the fleet tier, on both TLS stacks, against ClientHellos that no TLS
//! library sends: hundreds of PSK identities behind a slow store, and a TLS 1.2 session id
//! offered as a TLS 1.3 ticket. A real `redis-server` (behind a proxy that delays its
//! replies), judged by its own command counts and by `openssl s_client`.

use std::process::Command;
use std::time::Duration;

use test_support::client_hello::{random_identities, send, tls13_with_psks};
use test_support::delay_proxy::DelayProxy;
use test_support::redis_server::RedisServer;

mod common;

use common::{key_file, printed_hex, tls12, Server, BACKENDS};

/// The budget `serve` gives the store (its default).
const BUDGET: Duration = Duration::from_millis(5);

#[test]
fn a_clienthello_with_900_identities_asks_the_store_at_most_once() {
    for backend in BACKENDS {
        let redis = RedisServer::start();
        // Every reply of the store 3 ms late: 900 lookups would hold the handshake 2.7 s.
        let proxy = DelayProxy::start(redis.port(), Duration::from_millis(3));
        let dir = tempfile::tempdir().unwrap();
        let keys = key_file(dir.path());
        let server = Server::start(backend, &["--redis", &proxy.url(), "--redis-keys", &keys]);
        let hello = tls13_with_psks(&random_identities(900), &[7; 32]);
        let mut slowest = Duration::ZERO;
        for _ in 0..3 {
            let before = redis.session_commands();
            let (took, answered) = send(&server.connect(), &hello, Duration::from_secs(30));
            let after = redis.session_commands();
            assert!(
                answered > 0,
                "{backend}: the server answers the ClientHello"
            );
            assert!(
                after - before <= 2,
                "{backend}: {} store commands for one ClientHello",
                after - before
            );
            slowest = slowest.max(took);
        }
        assert!(
            slowest < BUDGET + Duration::from_millis(250),
            "{backend}: the ClientHello was answered after {slowest:?}"
        );
    }
}

/// The session id `openssl sess_id` reads in a saved session.
fn session_id(file: &str) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(["sess_id", "-in", file, "-noout", "-text"])
        .output()
        .unwrap();
    printed_hex(&String::from_utf8(out.stdout).unwrap(), "Session-ID:")
}

#[test]
fn a_tls12_session_id_offered_as_a_ticket_burns_nothing() {
    for backend in BACKENDS {
        let redis = RedisServer::start();
        let dir = tempfile::tempdir().unwrap();
        let keys = key_file(dir.path());
        let store = [
            "--redis",
            &redis.url(),
            "--redis-keys",
            &keys,
            "--redis-budget-ms",
            "1000",
        ];
        let (one, two) = (
            Server::start(backend, &store),
            Server::start(backend, &store),
        );
        let file = dir.path().join("s.pem");
        let file = file.to_str().unwrap();
        let first = tls12(&one, "-sess_out", file);
        assert!(first.contains("New, TLSv1.2"), "{backend}: {first}");
        let id = session_id(file);
        assert_eq!(id.len(), 32);
        // Wait for the write.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while redis.cli(&["DBSIZE"]) == b"0\n" {
            assert!(std::time::Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(10));
        }
        // The id as a PSK identity, to the server that holds the session, and to the other.
        for server in [&one, &two] {
            let hello = tls13_with_psks(std::slice::from_ref(&id), &[]);
            let (_, answered) = send(&server.connect(), &hello, Duration::from_secs(30));
            assert!(answered > 0);
        }
        for server in [&one, &two] {
            let again = tls12(server, "-sess_in", file);
            assert!(
                again.contains("Reused, TLSv1.2"),
                "{backend}: the TLS 1.2 session still resumes: {again}"
            );
        }
    }
}
