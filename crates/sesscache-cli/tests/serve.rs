//! `sesscache serve` against the real `openssl s_client`, on loopback only: TLS 1.2 session
//! ids resume with `-reconnect`, a TLS 1.3 session saved with `-sess_out` resumes with
//! `-sess_in`, HTTP gets an HTTP answer, Ctrl-C prints the cache's statistics once the
//! connections in flight have ended, a silent client holds a worker only until the handshake
//! deadline, and a timer flushes expired sessions. Every process started here is killed when
//! its guard drops.

use std::io::Read;
use std::net::TcpStream;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

mod common;

use common::{s_client, stat, tls13_request, Server, BACKENDS};

#[test]
fn tls12_session_ids_resume_with_reconnect() {
    for backend in BACKENDS {
        let server = Server::start(backend, &[]);
        let out = s_client(
            &[
                "-connect",
                &server.connect(),
                "-tls1_2",
                "-no_ticket",
                "-reconnect",
            ],
            b"",
        );
        assert_eq!(out.matches("New, TLSv1.2").count(), 1, "{out}");
        assert_eq!(out.matches("Reused, TLSv1.2").count(), 5, "{out}");
        let report = server.interrupt();
        assert_eq!(stat(&report, "hits"), 5, "{report}");
        assert_eq!(stat(&report, "resumed"), 5, "{report}");
        assert_eq!(stat(&report, "connections"), 6, "{report}");
        assert_eq!(stat(&report, "sessions cached"), 1, "{report}");
    }
}

#[test]
fn a_tls13_session_saved_with_sess_out_resumes_with_sess_in() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.pem");
        let file = file.to_str().unwrap();
        let server = Server::start(backend, &[]);
        let first = tls13_request(&server, "-sess_out", file);
        assert!(first.contains("New, TLSv1.3"), "{first}");
        assert!(first.contains("HTTP/1.0 200 OK"), "{first}");
        assert!(first.contains("resumed: no"), "{first}");
        let second = tls13_request(&server, "-sess_in", file);
        assert!(second.contains("Reused, TLSv1.3"), "{second}");
        assert!(second.contains("resumed: yes"), "{second}");
        // The ticket was used up: offering it again is a full handshake.
        let third = tls13_request(&server, "-sess_in", file);
        assert!(third.contains("resumed: no"), "{third}");
        let report = server.interrupt();
        assert_eq!(stat(&report, "hits"), 1, "{report}");
        assert_eq!(stat(&report, "misses"), 1, "{report}");
    }
}

#[test]
fn stateless_tickets_leave_the_cache_empty() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.pem");
        let file = file.to_str().unwrap();
        let server = Server::start(backend, &["--tickets"]);
        tls13_request(&server, "-sess_out", file);
        let again = tls13_request(&server, "-sess_in", file);
        assert!(again.contains("resumed: yes"), "{again}");
        let report = server.interrupt();
        assert_eq!(stat(&report, "resumed"), 1, "{report}");
        assert_eq!(stat(&report, "sessions cached"), 0, "{report}");
    }
}

#[test]
fn max_connections_stops_the_server_by_itself() {
    for backend in BACKENDS {
        let mut server = Server::start(backend, &["--max-connections", "1"]);
        let out = s_client(&["-connect", &server.connect(), "-ign_eof"], b"hello\n");
        assert!(out.contains("resumed: no"), "{out}");
        let mut rest = String::new();
        server.stdout.read_to_string(&mut rest).unwrap();
        assert!(server.child.wait().unwrap().success());
        assert_eq!(stat(&rest, "connections"), 1, "{rest}");
    }
}

#[test]
fn bad_arguments_are_exit_code_2() {
    let run = |args: &[&str]| -> Output {
        Command::new(env!("CARGO_BIN_EXE_sesscache"))
            .arg("serve")
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["--cert", "c.pem"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--key"));
    let out = run(&[
        "--cert",
        "/nonexistent/c.pem",
        "--key",
        "/nonexistent/k.pem",
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/c.pem"));
    let out = run(&["--listen", "not-an-address"]);
    assert_eq!(out.status.code(), Some(2));
}

/// A client that connects and sends nothing holds the one worker only until the handshake
/// deadline; the next client is then served.
#[test]
fn a_silent_client_does_not_hold_a_worker_forever() {
    for backend in BACKENDS {
        let server = Server::start(backend, &["--workers", "1", "--handshake-timeout", "1"]);
        let silent = TcpStream::connect(server.connect()).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let out = s_client(
            &["-connect", &server.connect(), "-tls1_2", "-no_ticket"],
            b"",
        );
        assert!(out.contains("New, TLSv1.2"), "{out}");
        drop(silent);
        let report = server.interrupt();
        assert_eq!(stat(&report, "connections"), 2, "{report}");
        assert_eq!(stat(&report, "failed"), 1, "{report}");
        assert_eq!(stat(&report, "most at once"), 1, "{report}");
    }
}

/// Ctrl-C while connections are in flight: the statistics come after they have ended, and
/// count them. At most --workers connections are served at once.
#[test]
fn statistics_wait_for_connections_in_flight_and_workers_bound_them() {
    for backend in BACKENDS {
        let server = Server::start(backend, &["--workers", "2", "--handshake-timeout", "1"]);
        let silent: Vec<_> = (0..5)
            .map(|_| TcpStream::connect(server.connect()).unwrap())
            .collect();
        // Let the accept loop take all five (two served, three queued).
        std::thread::sleep(Duration::from_millis(300));
        let started = Instant::now();
        let report = server.interrupt();
        assert!(
            started.elapsed() >= Duration::from_millis(1_500),
            "the report came before the connections in flight ended"
        );
        assert_eq!(stat(&report, "connections"), 5, "{report}");
        assert_eq!(stat(&report, "failed"), 5, "{report}");
        assert_eq!(stat(&report, "most at once"), 2, "{report}");
        drop(silent);
    }
}

/// The timer flushes expired sessions: a session with a one-second timeout is gone a few
/// seconds later without any other connection.
#[test]
fn a_timer_flushes_expired_sessions() {
    for backend in BACKENDS {
        let server = Server::start(backend, &["--flush-interval", "1", "--timeout", "1"]);
        let out = s_client(
            &["-connect", &server.connect(), "-tls1_2", "-no_ticket"],
            b"",
        );
        assert!(out.contains("New, TLSv1.2"), "{out}");
        std::thread::sleep(Duration::from_millis(3_500));
        let report = server.interrupt();
        assert_eq!(stat(&report, "sessions cached"), 0, "{report}");
        assert_eq!(stat(&report, "sessions they removed"), 1, "{report}");
        assert!(stat(&report, "timed flushes") >= 2, "{report}");
    }
}

#[test]
fn bad_serve_limits_are_exit_code_2() {
    for args in [
        &["--workers", "0"][..],
        &["--workers", "100000"],
        &["--handshake-timeout", "0"],
        &["--flush-interval", "18446744073709551615"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_sesscache"))
            .arg("serve")
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(args[0]),
            "{args:?}"
        );
    }
}
