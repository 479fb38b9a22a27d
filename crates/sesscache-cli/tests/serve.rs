//! `sesscache serve` against the real `openssl s_client`, on loopback only: TLS 1.2 session
//! ids resume with `-reconnect`, a TLS 1.3 session saved with `-sess_out` resumes with
//! `-sess_in`, HTTP gets an HTTP answer, Ctrl-C prints the cache's statistics once the
//! connections in flight have ended, a silent client holds a worker only until the handshake
//! deadline, and a timer flushes expired sessions. Every process started here is killed when
//! its guard drops.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The TLS stacks `serve` runs on: every test below runs against each.
const BACKENDS: [&str; 2] = ["rustls", "openssl"];

/// A running `sesscache serve`, killed when dropped.
struct Server {
    child: Child,
    stdout: BufReader<ChildStdout>,
    port: u16,
}

impl Server {
    fn start(backend: &str, extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sesscache"))
            .args(["serve", "--listen", "127.0.0.1:0", "--backend", backend])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let port = first
            .split("127.0.0.1:")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no address in {first:?}"));
        Self {
            child,
            stdout,
            port,
        }
    }

    fn connect(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Ctrl-C, then everything it printed after the first line.
    fn interrupt(mut self) -> String {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest).unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "Ctrl-C is a clean stop: {status:?}");
        rest
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How long one `s_client` may take before the test fails instead of hanging.
const S_CLIENT_LIMIT: Duration = Duration::from_secs(30);

/// `openssl s_client` with `input` on its stdin (then end of input); its stdout. It must
/// finish within `S_CLIENT_LIMIT`.
fn s_client(args: &[&str], input: &[u8]) -> String {
    let mut child = Command::new("openssl")
        .arg("s_client")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the `openssl` command must be installed (.ci/run installs it)");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        out
    });
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > S_CLIENT_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("s_client did not finish within {S_CLIENT_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    reader.join().unwrap()
}

/// The number on the statistics line that starts with `label`.
fn stat(report: &str, label: &str) -> u64 {
    report
        .lines()
        .find(|l| l.trim_start().starts_with(label))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {label:?} in {report}"))
}

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

/// A TLS 1.3 `s_client` that sends an HTTP request (so it waits for the answer, by which
/// time the tickets are in) and saves its session to `file` (`-sess_out`) or offers the
/// session in it (`-sess_in`); its stdout.
fn tls13_request(server: &Server, session: &str, file: &str) -> String {
    s_client(
        &[
            "-connect",
            &server.connect(),
            "-tls1_3",
            "-ign_eof",
            session,
            file,
        ],
        b"GET / HTTP/1.0\r\n\r\n",
    )
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
