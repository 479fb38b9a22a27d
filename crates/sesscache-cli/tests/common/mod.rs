//! What the tests that run `sesscache serve` share: the server process, `openssl s_client`,
//! and reading the statistics the server prints.

#![allow(dead_code)] // each test binary uses its own part of this

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use prometheus_parse::{Scrape, Value};

/// The TLS stacks `serve` runs on: every test below runs against each.
pub(crate) const BACKENDS: [&str; 2] = ["rustls", "openssl"];

/// A running `sesscache serve`, killed when dropped.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) stdout: BufReader<ChildStdout>,
    pub(crate) port: u16,
}

impl Server {
    pub(crate) fn start(backend: &str, extra: &[&str]) -> Self {
        Self::start_with(backend, extra, |_| {})
    }

    /// [`start`](Self::start), with the command changed by `configure` before it runs (its
    /// environment, where its stderr goes).
    pub(crate) fn start_with(
        backend: &str,
        extra: &[&str],
        configure: impl FnOnce(&mut Command),
    ) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sesscache"));
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--backend", backend])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        configure(&mut command);
        let mut child = command.spawn().unwrap();
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

    /// The address `serve --metrics` printed it serves metrics on (the line after the first).
    pub(crate) fn metrics_addr(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        line.split("http://")
            .nth(1)
            .and_then(|rest| rest.strip_suffix("/metrics\n"))
            .unwrap_or_else(|| panic!("no metrics address in {line:?}"))
            .to_owned()
    }

    pub(crate) fn connect(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Ctrl-C, then everything it printed after the first line.
    pub(crate) fn interrupt(mut self) -> String {
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

/// A client that connects and sends one byte a second, never finishing a request, until the
/// peer closes the connection or `limit` has passed.
pub(crate) struct Trickler {
    thread: std::thread::JoinHandle<Option<Duration>>,
}

impl Trickler {
    /// Connects to `addr` (connected when this returns) and starts sending `head`, then `x`s,
    /// one byte a second.
    pub(crate) fn start(addr: &str, head: &'static [u8], limit: Duration) -> Self {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(1)))
            .unwrap();
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let mut bytes = head.iter().copied().chain(std::iter::repeat(b'x'));
            while started.elapsed() < limit {
                let byte = bytes.next().unwrap();
                if stream.write_all(&[byte]).is_err() {
                    return Some(started.elapsed());
                }
                // Waits about a second for anything the peer says, or its closing.
                let mut buf = [0u8; 256];
                match stream.read(&mut buf) {
                    Ok(0) => return Some(started.elapsed()),
                    Ok(_) => {}
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    Err(_) => return Some(started.elapsed()),
                }
            }
            None
        });
        Self { thread }
    }

    /// How long after it connected the peer closed the connection; `None` if it kept it open
    /// for the whole limit.
    pub(crate) fn closed_after(self) -> Option<Duration> {
        self.thread.join().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How long one `s_client` may take before the test fails instead of hanging.
pub(crate) const S_CLIENT_LIMIT: Duration = Duration::from_secs(30);

/// `openssl s_client` with `input` on its stdin (then end of input); its stdout. It must
/// finish within `S_CLIENT_LIMIT`.
pub(crate) fn s_client(args: &[&str], input: &[u8]) -> String {
    let mut child = Command::new("openssl")
        .arg("s_client")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the `openssl` command must be installed (.ci/run installs it)");
    child.stdin.take().unwrap().write_all(input).unwrap();
    output_within(child, "s_client")
}

/// The stdout of `child` (an `openssl` command, `what`), which must finish within
/// `S_CLIENT_LIMIT` (killed, and the test fails, if not).
pub(crate) fn output_within(mut child: Child, what: &str) -> String {
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
            panic!("{what} did not finish within {S_CLIENT_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    reader.join().unwrap()
}

/// The number on the statistics line that starts with `label`.
pub(crate) fn stat(report: &str, label: &str) -> u64 {
    report
        .lines()
        .find(|l| l.trim_start().starts_with(label))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {label:?} in {report}"))
}

/// An `s_client` of `version` (`-tls1_2`, `-tls1_3`) that sends an HTTP request (so it waits
/// for the answer, by which time the tickets are in) and saves its session to `file`
/// (`-sess_out`) or offers the session in it (`-sess_in`); its stdout.
pub(crate) fn request_with(server: &Server, version: &str, session: &str, file: &str) -> String {
    s_client(
        &[
            "-connect",
            &server.connect(),
            version,
            "-ign_eof",
            session,
            file,
        ],
        b"GET / HTTP/1.0\r\n\r\n",
    )
}

/// [`request_with`], which the server must answer; whether it said it resumed.
pub(crate) fn request(server: &Server, version: &str, session: &str, file: &str) -> bool {
    let out = request_with(server, version, session, file);
    assert!(out.contains("sesscache serve:"), "no answer: {out}");
    out.contains("resumed: yes")
}

/// [`request_with`] in TLS 1.3.
pub(crate) fn tls13_request(server: &Server, session: &str, file: &str) -> String {
    request_with(server, "-tls1_3", session, file)
}

/// An HTTP/1.1 request to `addr`; the status line and the body.
pub(crate) fn http(addr: &str, request: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

pub(crate) fn scrape(addr: &str) -> Scrape {
    let (status, body) = http(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK");
    Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).expect("valid Prometheus text")
}

#[track_caller]
pub(crate) fn metric(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> u64 {
    let found: Vec<f64> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
            _ => panic!("{name} is not a number"),
        })
        .collect();
    assert_eq!(found.len(), 1, "{name} {labels:?}");
    found[0] as u64
}

/// `sesscache` with `args`; its output.
pub(crate) fn sesscache(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sesscache"))
        .args(args)
        .output()
        .unwrap()
}

/// A new key file in `dir` (`sesscache keygen -o`); its path.
pub(crate) fn key_file(dir: &std::path::Path) -> String {
    let path = dir.join("keys");
    let out = sesscache(&["keygen", "-o", path.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    path.to_str().unwrap().to_owned()
}

/// A TLS 1.2 `s_client` without tickets, saving (`-sess_out`) or offering (`-sess_in`) the
/// session in `file`; its stdout.
pub(crate) fn tls12(server: &Server, session: &str, file: &str) -> String {
    s_client(
        &[
            "-connect",
            &server.connect(),
            "-tls1_2",
            "-no_ticket",
            session,
            file,
        ],
        b"",
    )
}

/// The value of `Label: HEX` in `s_client`'s (or `sess_id -text`'s) session printout.
pub(crate) fn printed_hex(out: &str, label: &str) -> Vec<u8> {
    let hex = out
        .lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label} in {out}"))
        .trim()
        .to_owned();
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}
