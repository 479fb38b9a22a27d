//! Real `sesscache serve` processes and real TLS clients, for the tools that measure a fleet
//! end to end (`soak`, `store_capacity`).
//!
//! The clients are rustls clients in this process, each holding one session (the last TLS 1.2
//! session, or the newest TLS 1.3 ticket). OpenSSL's servers meet rustls clients too: the
//! `openssl` crate offers a saved session to a server only through an `unsafe` call.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rustls::client::{
    ClientSessionStore, Resumption, Tls12ClientSessionValue, Tls13ClientSessionValue,
};
use rustls::pki_types::ServerName;
use rustls::{
    ClientConfig, ClientConnection, HandshakeKind, NamedGroup, RootCertStore,
    SupportedProtocolVersion,
};

/// The TLS stacks `serve` runs on (`--backend`).
pub const BACKENDS: [&str; 2] = ["rustls", "openssl"];

/// How long a client gives a connection (connect, handshake, answer) before failing it.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// `target/release/sesscache` in this workspace.
pub fn default_sesscache() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/release/sesscache")
}

/// Fails with a clear message when `bin` is not there.
pub fn check_sesscache(bin: &Path) -> Result<(), String> {
    if bin.is_file() {
        Ok(())
    } else {
        Err(format!(
            "no sesscache binary at {} (build it with `cargo build --release -p sesscache-cli`, or give --sesscache PATH)",
            bin.display()
        ))
    }
}

/// Makes a key file with `sesscache keygen -o path`.
pub fn keygen(bin: &Path, path: &Path) -> Result<(), String> {
    let out = Command::new(bin)
        .args(["keygen", "-o"])
        .arg(path)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "sesscache keygen failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// One certificate for `localhost`, for every server, and the roots that trust it: the
/// clients verify the servers as they would a real fleet's.
#[derive(Debug)]
pub struct Certificate {
    /// The certificate, PEM (`serve --cert`).
    pub cert: PathBuf,
    /// Its private key, PEM (`serve --key`).
    pub key: PathBuf,
    /// Roots holding the certificate.
    pub roots: RootCertStore,
}

impl Certificate {
    /// Makes a self-signed certificate and writes it and its key into `dir`.
    pub fn make(dir: &Path) -> Result<Self, String> {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .map_err(|e| format!("a certificate: {e}"))?;
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, made.cert.pem()).map_err(|e| format!("{}: {e}", cert.display()))?;
        std::fs::write(&key, made.signing_key.serialize_pem())
            .map_err(|e| format!("{}: {e}", key.display()))?;
        let mut roots = RootCertStore::empty();
        roots
            .add(made.cert.der().clone())
            .map_err(|e| format!("the certificate as a root: {e}"))?;
        Ok(Self { cert, key, roots })
    }

    /// `--cert FILE --key FILE`.
    pub fn args(&self) -> Vec<String> {
        vec![
            "--cert".to_owned(),
            self.cert.display().to_string(),
            "--key".to_owned(),
            self.key.display().to_string(),
        ]
    }
}

/// A `sesscache serve` process, killed when dropped.
#[derive(Debug)]
pub struct Serve {
    /// Its stack, an index into [`BACKENDS`].
    pub backend: usize,
    /// Where it serves TLS.
    pub addr: SocketAddr,
    /// Where it serves its metrics.
    pub metrics: SocketAddr,
    child: Child,
    log: PathBuf,
    _stdout: BufReader<ChildStdout>,
}

/// What follows `prefix` on `line`, up to the next space (or the end).
fn after<'a>(line: &'a str, prefix: &str) -> Option<&'a str> {
    line.split(prefix).nth(1)?.split([' ', '\n']).next()
}

impl Serve {
    /// Starts `bin serve --backend BACKENDS[backend]` on a free loopback port, with metrics on
    /// another, `extra` arguments, and its log (stderr) in `log`.
    pub fn start(
        bin: &Path,
        backend: usize,
        extra: &[String],
        log: PathBuf,
    ) -> Result<Self, String> {
        let log_file =
            std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let mut child = Command::new(bin)
            .args(["serve", "--backend", BACKENDS[backend]])
            .args(["--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
        let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
        // The address on the first line, the metrics' on the second.
        let (mut first, mut second) = (String::new(), String::new());
        let _ = stdout.read_line(&mut first);
        let _ = stdout.read_line(&mut second);
        let addr = after(&first, "listening on ").and_then(|a| a.parse().ok());
        let metrics = after(&second, "metrics at http://")
            .and_then(|a| a.strip_suffix("/metrics"))
            .and_then(|a| a.parse().ok());
        let (Some(addr), Some(metrics)) = (addr, metrics) else {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(format!(
                "sesscache serve --backend {} did not start: {first:?} {second:?} {log}",
                BACKENDS[backend]
            ));
        };
        Ok(Self {
            backend,
            addr,
            metrics,
            child,
            log,
            _stdout: stdout,
        })
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its resident memory (VmRSS in /proc/PID/status), in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// Its `sesscache_tier_*` and `sesscache_serve_*` samples and `sesscache_sessions` (name
    /// with labels, value); empty if the endpoint did not answer within two seconds.
    pub fn scrape(&self) -> BTreeMap<String, f64> {
        let mut samples = BTreeMap::new();
        let Ok(mut tcp) = TcpStream::connect_timeout(&self.metrics, Duration::from_secs(2)) else {
            return samples;
        };
        let _ = tcp.set_read_timeout(Some(Duration::from_secs(2)));
        let request = "GET /metrics HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n";
        let mut text = String::new();
        if tcp.write_all(request.as_bytes()).is_err() || tcp.read_to_string(&mut text).is_err() {
            return samples;
        }
        for line in text.lines() {
            if !(line.starts_with("sesscache_tier_")
                || line.starts_with("sesscache_serve_")
                || line.starts_with("sesscache_sessions "))
            {
                continue;
            }
            if let Some((name, value)) = line.rsplit_once(' ') {
                if let Ok(value) = value.parse() {
                    samples.insert(name.to_owned(), value);
                }
            }
        }
        samples
    }

    /// The handshakes it logged as failed.
    pub fn failed_in_log(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("handshake failed"))
            .count()
    }

    /// Ctrl-C, and the wait for it to finish (at most ten seconds, then SIGKILL).
    pub fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.pid().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One client's session store: the last TLS 1.2 session and the newest TLS 1.3 ticket, for
/// every server (they all are `localhost`, and share the fleet's sessions).
#[derive(Default)]
struct OneSession {
    held: Mutex<Held>,
}

#[derive(Default)]
struct Held {
    tls12: Option<Tls12ClientSessionValue>,
    tls13: Option<Tls13ClientSessionValue>,
    kx: Option<NamedGroup>,
}

impl OneSession {
    fn held(&self) -> MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl std::fmt::Debug for OneSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OneSession").finish_non_exhaustive()
    }
}

impl ClientSessionStore for OneSession {
    fn set_kx_hint(&self, _: ServerName<'static>, group: NamedGroup) {
        self.held().kx = Some(group);
    }
    fn kx_hint(&self, _: &ServerName<'_>) -> Option<NamedGroup> {
        self.held().kx
    }
    fn set_tls12_session(&self, _: ServerName<'static>, value: Tls12ClientSessionValue) {
        self.held().tls12 = Some(value);
    }
    fn tls12_session(&self, _: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        self.held().tls12.clone()
    }
    fn remove_tls12_session(&self, _: &ServerName<'static>) {
        self.held().tls12 = None;
    }
    fn insert_tls13_ticket(&self, _: ServerName<'static>, value: Tls13ClientSessionValue) {
        // The newest ticket replaces the one before: a client offers what it got last.
        self.held().tls13 = Some(value);
    }
    fn take_tls13_ticket(&self, _: &ServerName<'static>) -> Option<Tls13ClientSessionValue> {
        self.held().tls13.take()
    }
}

/// A TLS client of one version for the servers of one stack, holding one session.
#[derive(Debug)]
pub struct Client {
    /// The stack of the servers it connects to, an index into [`BACKENDS`].
    pub backend: usize,
    /// TLS 1.3 (else TLS 1.2).
    pub tls13: bool,
    config: Arc<ClientConfig>,
    store: Arc<OneSession>,
    /// Held while it connects: a client makes one connection at a time.
    busy: Mutex<()>,
}

impl Client {
    /// A client with nothing to offer yet, trusting `roots`.
    pub fn new(backend: usize, tls13: bool, roots: &RootCertStore) -> Self {
        let version: &'static SupportedProtocolVersion = if tls13 {
            &rustls::version::TLS13
        } else {
            &rustls::version::TLS12
        };
        let store = Arc::new(OneSession::default());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[version])
            .expect("ring supports both versions")
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
        config.resumption = Resumption::store(store.clone());
        Self {
            backend,
            tls13,
            config: Arc::new(config),
            store,
            busy: Mutex::new(()),
        }
    }

    /// Whether it holds a session to offer.
    pub fn holds(&self) -> bool {
        let held = self.store.held();
        if self.tls13 {
            held.tls13.is_some()
        } else {
            held.tls12.is_some()
        }
    }

    /// Forgets its session: its next connection is a full handshake.
    pub fn forget(&self) {
        let mut held = self.store.held();
        held.tls12 = None;
        held.tls13 = None;
    }

    /// Connects to `addr`, offers its session, sends a request and reads the answer; `None`
    /// if it is still busy with another connection. `t0` is the time [`Record::at`] counts
    /// from.
    pub fn connect(&self, addr: SocketAddr, t0: Instant) -> Option<Record> {
        let _busy = self.busy.try_lock().ok()?;
        Some(self.connect_now(addr, t0))
    }

    fn connect_now(&self, addr: SocketAddr, t0: Instant) -> Record {
        let started = Instant::now();
        let mut record = Record {
            at: started.duration_since(t0).as_secs_f64(),
            backend: self.backend,
            tls13: self.tls13,
            offered: self.holds(),
            handshake_us: 0,
            outcome: Ok(false),
        };
        let fail = |stage: Stage, error: String| Err((stage, error));
        let mut tcp = match TcpStream::connect_timeout(&addr, CLIENT_TIMEOUT) {
            Ok(tcp) => tcp,
            Err(e) => {
                record.outcome = fail(Stage::Connect, e.to_string());
                return record;
            }
        };
        let deadline = started + CLIENT_TIMEOUT;
        let _ = tcp.set_nodelay(true);
        let _ = tcp.set_write_timeout(Some(CLIENT_TIMEOUT));
        let _ = tcp.set_read_timeout(Some(CLIENT_TIMEOUT));
        let name = ServerName::try_from("localhost").expect("a valid name");
        let mut conn = match ClientConnection::new(self.config.clone(), name) {
            Ok(conn) => conn,
            Err(e) => {
                record.outcome = fail(Stage::Connect, e.to_string());
                return record;
            }
        };
        while conn.is_handshaking() {
            if let Err(e) = conn.complete_io(&mut tcp) {
                record.handshake_us = started.elapsed().as_micros() as u64;
                record.outcome = fail(Stage::Handshake, e.to_string());
                return record;
            }
            if Instant::now() > deadline {
                record.handshake_us = started.elapsed().as_micros() as u64;
                record.outcome = fail(Stage::Handshake, "no handshake within 5 s".to_owned());
                return record;
            }
        }
        record.handshake_us = started.elapsed().as_micros() as u64;
        let resumed = conn.handshake_kind() == Some(HandshakeKind::Resumed);
        let mut stream = rustls::Stream::new(&mut conn, &mut tcp);
        if let Err(e) = stream.write_all(b"GET / HTTP/1.0\r\n\r\n") {
            record.outcome = fail(Stage::Answer, e.to_string());
            return record;
        }
        // The answer, then close_notify (rustls) or the connection's end (OpenSSL): the answer
        // is what counts. The TLS 1.3 tickets arrive meanwhile and go to the client's store.
        let mut answer = Vec::new();
        let read = stream.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer);
        record.outcome = if !answer.contains("sesscache serve:") {
            fail(
                Stage::Answer,
                match read {
                    Err(e) => e.to_string(),
                    Ok(_) => "no answer".to_owned(),
                },
            )
        } else if answer.contains("resumed: yes") != resumed {
            fail(
                Stage::Answer,
                "the server and the client disagree on resumption".to_owned(),
            )
        } else {
            Ok(resumed)
        };
        record
    }
}

/// Where a connection failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Before the TLS handshake: the TCP connect.
    Connect,
    /// In the TLS handshake.
    Handshake,
    /// After it: the request or the answer.
    Answer,
}

/// One connection, as the client saw it.
#[derive(Debug)]
pub struct Record {
    /// When it started, in seconds since the `t0` given to [`Client::connect`].
    pub at: f64,
    /// The client's stack, an index into [`BACKENDS`].
    pub backend: usize,
    /// TLS 1.3 (else TLS 1.2).
    pub tls13: bool,
    /// Whether the client offered a session (so the server may have asked the store).
    pub offered: bool,
    /// The TCP connect and the TLS handshake, in microseconds.
    pub handshake_us: u64,
    /// Whether it resumed, or where and why it failed.
    pub outcome: Result<bool, (Stage, String)>,
}

impl Record {
    /// A failure the store can have caused: the client offered a session and the handshake
    /// (in which the server looks the offer up) failed. Failures to connect, failures without
    /// an offer and failures after the handshake are the other kind.
    pub fn store_failure(&self) -> bool {
        matches!(self.outcome, Err((Stage::Handshake, _))) && self.offered
    }
}
