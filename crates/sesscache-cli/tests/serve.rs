//! `sesscache serve` against the real `openssl s_client`, on loopback only: TLS 1.2 session
//! ids resume with `-reconnect`, a TLS 1.3 session saved with `-sess_out` resumes with
//! `-sess_in`, HTTP gets an HTTP answer, Ctrl-C prints the cache's statistics once the
//! connections in flight have ended, silent clients hold no worker (2000 of them do not delay
//! a real one) and are dropped at the handshake deadline, clients that hang up without
//! close_notify keep their sessions, and a timer flushes expired sessions. Every process
//! started here is killed when its guard drops.

use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{metric, output_within, s_client, scrape, stat, tls13_request, Server, BACKENDS};

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

/// A client that connects and sends nothing holds no worker: with one worker, the next client
/// is served at once, and the silent one is dropped at its handshake deadline.
#[test]
fn a_silent_client_does_not_hold_a_worker() {
    for backend in BACKENDS {
        let server = Server::start(backend, &["--workers", "1", "--handshake-timeout", "2"]);
        let mut silent = TcpStream::connect(server.connect()).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let started = Instant::now();
        let out = s_client(
            &["-connect", &server.connect(), "-tls1_2", "-no_ticket"],
            b"",
        );
        let took = started.elapsed();
        assert!(out.contains("New, TLSv1.2"), "{out}");
        assert!(
            took < Duration::from_secs(1),
            "{backend}: served after {took:?}, beside a silent client"
        );
        silent
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        assert!(
            closed(&mut silent),
            "{backend}: the silent client is dropped at its deadline"
        );
        let report = server.interrupt();
        assert_eq!(stat(&report, "connections"), 2, "{report}");
        assert_eq!(stat(&report, "failed"), 1, "{report}");
        assert_eq!(stat(&report, "most at once"), 2, "{report}");
    }
}

/// Whether the peer closed `stream` (an end or a reset) before its read timeout.
fn closed(stream: &mut TcpStream) -> bool {
    match stream.read(&mut [0u8; 64]) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
    }
}

/// Ctrl-C while connections are in flight: the statistics come after they have ended, and
/// count them. At most --max-pending connections are held at once; more are closed as they
/// arrive, and counted.
#[test]
fn statistics_wait_for_connections_in_flight_and_max_pending_bounds_them() {
    for backend in BACKENDS {
        let server = Server::start(backend, &["--max-pending", "2", "--handshake-timeout", "2"]);
        let silent: Vec<_> = (0..2)
            .map(|_| TcpStream::connect(server.connect()).unwrap())
            .collect();
        // Let the accept loop take both.
        std::thread::sleep(Duration::from_millis(300));
        for _ in 0..3 {
            let mut more = TcpStream::connect(server.connect()).unwrap();
            more.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
            assert!(closed(&mut more), "{backend}: one more is closed at once");
        }
        let started = Instant::now();
        let report = server.interrupt();
        assert!(
            started.elapsed() >= Duration::from_millis(1_000),
            "the report came before the connections in flight ended"
        );
        assert_eq!(stat(&report, "connections"), 2, "{report}");
        assert_eq!(stat(&report, "failed"), 2, "{report}");
        assert_eq!(stat(&report, "refused (too many)"), 3, "{report}");
        assert_eq!(stat(&report, "most at once"), 2, "{report}");
        drop(silent);
    }
}

/// 2000 connections that send nothing cost the server memory, not workers: a real client
/// completes its handshake within a second while the server holds them, on both stacks.
#[test]
fn two_thousand_idle_connections_do_not_delay_a_real_client() {
    let idle = room_for(2_000);
    for backend in BACKENDS {
        let mut server = Server::start(
            backend,
            &["--metrics", "127.0.0.1:0", "--handshake-timeout", "60"],
        );
        let metrics = server.metrics_addr();
        let held: Vec<_> = (0..idle)
            .map(|_| TcpStream::connect(server.connect()).unwrap())
            .collect();
        let deadline = Instant::now() + Duration::from_secs(20);
        while metric(&scrape(&metrics), "sesscache_serve_in_flight", &[]) < idle {
            assert!(Instant::now() < deadline, "{backend}: not all held");
            std::thread::sleep(Duration::from_millis(20));
        }
        let started = Instant::now();
        let out = s_client(
            &["-connect", &server.connect(), "-tls1_2", "-no_ticket"],
            b"",
        );
        let took = started.elapsed();
        assert!(out.contains("New, TLSv1.2"), "{out}");
        assert!(
            took < Duration::from_secs(1),
            "{backend}: the handshake took {took:?} beside {idle} idle connections"
        );
        drop(held);
        let report = server.interrupt();
        assert_eq!(stat(&report, "connections"), idle + 1, "{report}");
        assert_eq!(stat(&report, "most at once"), idle + 1, "{report}");
    }
}

/// How many idle connections this process may open, at most `want`: its soft limit on open
/// files (which the servers it starts inherit) is raised first, up to the hard limit, to
/// leave room for `want` and a margin.
fn room_for(want: u64) -> u64 {
    const MARGIN: u64 = 256;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the one it is given, which lives meanwhile.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
        0
    );
    if limit.rlim_cur < want + MARGIN {
        limit.rlim_cur = (want + MARGIN).min(limit.rlim_max);
        // SAFETY: setrlimit only reads the rlimit it is given; a soft limit up to the hard
        // one needs no privilege.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
    }
    want.min(limit.rlim_cur.saturating_sub(MARGIN))
}

/// A client that hangs up without close_notify keeps its session: `openssl s_time -reuse`
/// resets each connection right after its handshake, and every connection it times resumes,
/// on both stacks. (OpenSSL removes the session of a connection freed before a shutdown was
/// sent; the server marks the shutdown done.)
#[test]
fn sessions_of_clients_that_hang_up_first_still_resume() {
    for backend in BACKENDS {
        let server = Server::start(backend, &[]);
        let out = s_time(&[
            "-connect",
            &server.connect(),
            "-reuse",
            "-tls1_2",
            "-time",
            "1",
        ]);
        // One character per timed connection: `r` for one that resumed.
        let progress = out
            .split("starting\n")
            .nth(1)
            .and_then(|rest| rest.lines().next())
            .unwrap_or_else(|| panic!("{out}"));
        let timed: u64 = out
            .lines()
            .find(|l| l.contains(" connections in ") && l.contains(" real seconds"))
            .and_then(|l| l.split(' ').next()?.parse().ok())
            .unwrap_or_else(|| panic!("{out}"));
        assert!(timed > 10, "{backend}: {out}");
        assert_eq!(
            progress.matches('r').count() as u64,
            timed,
            "{backend}: every timed connection resumes: {out}"
        );
        let report = server.interrupt();
        assert_eq!(stat(&report, "misses"), 0, "{backend}: {report}");
        assert_eq!(stat(&report, "hits"), timed, "{backend}: {report}");
    }
}

/// `openssl s_time` with `args`; its stdout. It must finish within `S_CLIENT_LIMIT`.
fn s_time(args: &[&str]) -> String {
    let child = Command::new("openssl")
        .arg("s_time")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    output_within(child, "s_time")
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
        &["--max-pending", "0"],
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
