//! `sesscache serve`: a small TLS server (rustls, or OpenSSL through `sesscache-openssl`)
//! that resumes sessions through a context's cache, answers each connection with a line saying
//! whether it was resumed, and prints the cache's statistics when stopped.
//!
//! A fixed number of workers serve connections, taken from a queue of the same length that
//! the accept loop fills (and waits on when it is full). Each handshake has a deadline, so a
//! client that connects and sends nothing holds a worker for that long at most. A timer
//! flushes expired sessions. On Ctrl-C (or after --max-connections) the accept loop stops,
//! the workers finish what was accepted, and only then are the statistics printed.

use std::fmt::Write as _;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _, Result};
use clap::ValueEnum;
use ctx::{Context, ContextConfig};
use openssl::ssl::{HandshakeError, SslAcceptor, SslMethod, SslSessionCacheMode, SslStream};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{HandshakeKind, ServerConfig, ServerConnection};
use serde::Serialize;
use sesscache_rustls::{ServerHandshake, ServerSessions};
use sesscache_workload::trace::{Losses, Recorder};
use session_cache::metrics::{Describe, Metric};
use session_cache::{CacheConfig, HandshakeRecord, Stats};
use session_core::SidCtx;
use tracing::{debug, info, warn};

use crate::report::{self, Figures};

/// The TLS stack the server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Backend {
    /// rustls, with the cache as its session store (`sesscache-rustls`).
    Rustls,
    /// OpenSSL (the `openssl` crate), with the cache as its external session cache
    /// (`sesscache-openssl`).
    Openssl,
}

impl Backend {
    /// The session id context of a server on this stack.
    fn sid_ctx(self) -> &'static [u8] {
        match self {
            Backend::Rustls => b"sesscache serve rustls",
            Backend::Openssl => b"sesscache serve openssl",
        }
    }
}

/// The options of `sesscache serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The TLS stack.
    #[arg(long, value_enum, default_value_t = Backend::Rustls)]
    backend: Backend,
    /// The address to listen on. Loopback by default; give another address to serve beyond
    /// this machine. Port 0 picks a free port (printed at start).
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// The certificate chain, PEM (leaf first). Without --cert and --key, a self-signed
    /// certificate for localhost and 127.0.0.1 is made at start.
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// The private key of --cert, PEM (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// Resume with the TLS stack's stateless tickets instead of the session cache, for
    /// comparison: the cache then stays empty.
    #[arg(long)]
    tickets: bool,
    /// The session timeout, in seconds.
    #[arg(long, default_value_t = 7200)]
    timeout: u64,
    /// The cache's size limit (0 = unlimited).
    #[arg(long, default_value_t = 20_480)]
    cache_size: usize,
    /// Stop after this many connections (default: run until Ctrl-C).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    max_connections: Option<u64>,
    /// How many connections are served at once; as many more wait in a queue, and the rest
    /// wait to be accepted.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=4096))]
    workers: u16,
    /// The most a handshake may take, in seconds: a client that connects and stalls (or
    /// sends nothing) is dropped then and counted as failed.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    handshake_timeout: u64,
    /// Also flush expired sessions every this many seconds, for a server that is idle (0 =
    /// never: only the automatic flush after every 255th good handshake, and the cache's
    /// removals at lookup and eviction).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(0..=86_400))]
    flush_interval: u64,
    /// The fleet tier: sessions shared with every server on the same store.
    #[command(flatten)]
    store: crate::fleet::StoreArgs,
    /// Serve Prometheus metrics at http://ADDR/metrics: the cache's statistics, why
    /// handshakes did not resume, the latency of cache operations, the fleet tier's and the
    /// server's counters. ADDR is HOST:PORT or a port (on 127.0.0.1); without one,
    /// 127.0.0.1:9464. Port 0 picks a free port (printed at start).
    #[arg(long, value_name = "ADDR", num_args = 0..=1,
          default_missing_value = crate::metrics::DEFAULT_ADDR,
          value_parser = crate::metrics::parse_addr)]
    metrics: Option<SocketAddr>,
    /// Record every finished handshake to FILE, one anonymous line each (a keyed hash
    /// standing for the client, whether it offered a session, the time, the outcome), for
    /// `sesscache simulate --replay`. FILE is made owner-only (a regular file there is
    /// truncated and made owner-only); a symlink is refused. Lines are written off the
    /// handshakes' path: those that find the writer behind are dropped and counted. With a
    /// trace, the log names no client address (only at debug level).
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
}

/// Connections that get no request line within this time get the plain-text answer.
const REQUEST_WAIT: Duration = Duration::from_millis(200);
/// A peer that does not take the answer within this time is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the accept loop looks for Ctrl-C while no client connects.
const ACCEPT_POLL: Duration = Duration::from_millis(20);

pub(crate) fn run(args: &Args) -> Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
    let context = Context::new(ContextConfig {
        // One per TLS stack: each stack's sessions are its own (rustls's carry rustls's
        // encoding), so a server on the other stack sharing the store refuses them.
        sid_ctx: SidCtx::new(args.backend.sid_ctx()).expect("a short constant"),
        cache: CacheConfig {
            size: args.cache_size,
            timeout: args.timeout,
            timing: args.metrics.is_some(),
            ..CacheConfig::default()
        },
        ..ContextConfig::default()
    });
    let tier = args.store.tier()?;
    if let Some(tier) = &tier {
        if args.tickets {
            return Err(anyhow!(
                "--tickets leaves the cache (and so the fleet tier) unused; drop one of them"
            ));
        }
        tier.attach(context.cache());
        if !tier.ping(Duration::from_secs(1)) {
            warn!("the store does not answer yet: handshakes miss it until it does");
        }
    }
    let tls = Tls::new(args, &context)?;
    let trace = match &args.trace {
        Some(path) => Some(Arc::new(Recorder::create(path)?)),
        None => None,
    };
    let counts = Arc::new(Counts::default());
    let losses = trace.as_ref().map(|trace| trace.losses());
    let metrics = match args.metrics {
        Some(addr) => {
            let (context, tier, counts, losses) = (
                context.clone(),
                tier.clone(),
                counts.clone(),
                losses.clone(),
            );
            Some(crate::metrics::Endpoint::start(addr, move || {
                let mut metrics = sesscache_metrics::Metrics::new();
                metrics.cache(context.cache());
                if let Some(tier) = &tier {
                    metrics.tier(&tier.stats());
                }
                metrics
                    .snapshot("sesscache_serve_", &counts.snapshot(losses.as_deref()))
                    .encode()
            })?)
        }
        None => None,
    };
    let listener = TcpListener::bind(args.listen)
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    // Before the address is printed: whoever reads it may press Ctrl-C at once.
    let (stop, stopped) = mpsc::channel::<()>();
    ctrlc::set_handler(move || {
        let _ = stop.send(());
    })
    .context("cannot install the Ctrl-C handler")?;
    let resumption = if args.tickets {
        "stateless tickets"
    } else {
        "the session cache"
    };
    let stack = match args.backend {
        Backend::Rustls => "rustls",
        Backend::Openssl => "OpenSSL",
    };
    let shared = if tier.is_some() {
        ", shared through the store"
    } else {
        ""
    };
    println!(
        "sesscache serve: listening on {addr} ({stack}, resumption through {resumption}{shared}); Ctrl-C stops"
    );
    if let Some(endpoint) = &metrics {
        println!(
            "sesscache serve: metrics at http://{}/metrics",
            endpoint.addr()
        );
    }
    std::io::stdout().flush()?;

    listener
        .set_nonblocking(true)
        .context("cannot make the listener non-blocking")?;

    let workers = usize::from(args.workers);
    let (queue, jobs) = mpsc::sync_channel::<TcpStream>(workers);
    let jobs = Arc::new(Mutex::new(jobs));
    let limits = Limits {
        handshake: Duration::from_secs(args.handshake_timeout),
    };
    let pool: Vec<_> = (0..workers)
        .map(|_| {
            let (jobs, tls, context, counts, trace) = (
                jobs.clone(),
                tls.clone(),
                context.clone(),
                counts.clone(),
                trace.clone(),
            );
            std::thread::spawn(move || loop {
                let next = jobs.lock().unwrap_or_else(|e| e.into_inner()).recv();
                let Ok(stream) = next else { return };
                let in_flight = counts.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
                counts
                    .peak_in_flight
                    .fetch_max(in_flight, Ordering::Relaxed);
                serve_one(stream, &tls, &context, &counts, trace.as_deref(), limits);
                counts.in_flight.fetch_sub(1, Ordering::Relaxed);
            })
        })
        .collect();
    let flusher = Flusher::start(&context, args.flush_interval, counts.clone());

    let mut accepted = 0u64;
    while stopped.try_recv().is_err() {
        match listener.accept() {
            Ok((stream, _)) => {
                if let Err(err) = stream.set_nonblocking(false) {
                    warn!(error = %err, "cannot serve a connection");
                    continue;
                }
                // Waits while every worker is busy and the queue is full.
                if queue.send(stream).is_err() {
                    break;
                }
                accepted += 1;
                if args.max_connections.is_some_and(|max| accepted >= max) {
                    break;
                }
            }
            Err(err) if err.kind() == ErrorKind::WouldBlock => std::thread::sleep(ACCEPT_POLL),
            Err(err) => {
                warn!(error = %err, "accept failed");
                std::thread::sleep(ACCEPT_POLL);
            }
        }
    }
    // No more connections: the workers finish those accepted, each within its deadlines.
    drop(queue);
    for worker in pool {
        worker
            .join()
            .map_err(|_| anyhow!("a worker thread panicked"))?;
    }
    flusher.stop();
    drop(metrics);
    // The workers' references are gone: this writes what is queued and waits for the writer.
    drop(trace);
    print!(
        "{}",
        report(
            &counts.snapshot(losses.as_deref()),
            args.workers,
            &context.cache().stats(),
            args.tickets
        )
    );
    if let Some(tier) = &tier {
        // What is queued goes out before the process does.
        tier.flush_writes(Duration::from_secs(1));
        println!("  fleet tier");
        print!("{}", crate::fleet::report(&tier.stats()));
    }
    Ok(())
}

/// How long a connection may take.
#[derive(Debug, Clone, Copy)]
struct Limits {
    handshake: Duration,
}

/// Flushes the cache's expired sessions every interval, until stopped.
struct Flusher {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Flusher {
    fn start(context: &Context, interval: u64, counts: Arc<Counts>) -> Self {
        if interval == 0 {
            return Self {
                stop: None,
                thread: None,
            };
        }
        let (stop, stopped) = mpsc::channel::<()>();
        let context = context.clone();
        let interval = Duration::from_secs(interval);
        let thread = std::thread::spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                let flushed = context.cache().flush();
                counts.flushes.fetch_add(1, Ordering::Relaxed);
                counts.flushed.fetch_add(flushed as u64, Ordering::Relaxed);
                debug!(flushed, "timed flush");
            }
        });
        Self {
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn stop(mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[derive(Default)]
struct Counts {
    connections: AtomicU64,
    resumed: AtomicU64,
    failed: AtomicU64,
    in_flight: AtomicU64,
    peak_in_flight: AtomicU64,
    flushes: AtomicU64,
    flushed: AtomicU64,
}

/// The server's own counters, as the metrics export them.
#[derive(Serialize)]
struct CountsNow {
    connections: u64,
    resumed: u64,
    failed: u64,
    in_flight: u64,
    peak_in_flight: u64,
    flushes: u64,
    flushed: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace_dropped: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace_write_errors: Option<u64>,
}

impl Counts {
    /// The counters now, with the trace's losses if there is a trace.
    fn snapshot(&self, trace: Option<&Losses>) -> CountsNow {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CountsNow {
            connections: get(&self.connections),
            resumed: get(&self.resumed),
            failed: get(&self.failed),
            in_flight: get(&self.in_flight),
            peak_in_flight: get(&self.peak_in_flight),
            flushes: get(&self.flushes),
            flushed: get(&self.flushed),
            trace_dropped: trace.map(Losses::dropped),
            trace_write_errors: trace.map(Losses::write_errors),
        }
    }
}

/// The server's counters, in the order of its report.
impl Describe for CountsNow {
    const METRICS: &'static [Metric] = &[
        Metric::counter("connections", "Connections accepted.").reported("connections"),
        Metric::counter("resumed", "Connections whose handshake resumed a session.")
            .reported("resumed"),
        Metric::counter("failed", "Connections whose handshake failed or timed out.")
            .reported("failed"),
        Metric::counter(
            "trace_dropped",
            "Trace lines dropped because the trace's writer was behind (serve --trace).",
        )
        .reported("trace lines dropped"),
        Metric::counter(
            "trace_write_errors",
            "Trace lines lost because writing them failed (serve --trace).",
        )
        .reported("trace write errors"),
        Metric::gauge("peak_in_flight", "The most connections served at once.")
            .reported("most at once"),
        Metric::gauge("in_flight", "Connections being served now."),
        Metric::counter("flushes", "Timed flushes of expired sessions.").reported("timed flushes"),
        Metric::counter("flushed", "Sessions the timed flushes removed.")
            .reported("sessions they removed"),
    ];
}

/// The server's certificate chain and key: from --cert and --key, or made at start.
fn identity(args: &Args) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| anyhow!("cannot read certificates from {}: {e}", cert.display()))?;
            if chain.is_empty() {
                return Err(anyhow!("{} holds no certificate", cert.display()));
            }
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| anyhow!("cannot read a private key from {}: {e}", key.display()))?;
            Ok((chain, key))
        }
        _ => {
            let made = rcgen::generate_simple_self_signed(vec![
                "localhost".to_owned(),
                "127.0.0.1".to_owned(),
            ])?;
            let key = PrivateKeyDer::Pkcs8(made.signing_key.serialize_der().into());
            Ok((vec![made.cert.der().clone()], key))
        }
    }
}

/// The server side of the TLS stack, shared by the workers.
#[derive(Clone)]
enum Tls {
    Rustls(Arc<ServerConfig>),
    Openssl(Arc<SslAcceptor>),
}

impl Tls {
    fn new(args: &Args, context: &Context) -> Result<Self> {
        let (chain, key) = identity(args)?;
        match args.backend {
            Backend::Rustls => {
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                let mut config = ServerConfig::builder_with_provider(provider)
                    .with_protocol_versions(rustls::ALL_VERSIONS)?
                    .with_no_client_auth()
                    .with_single_cert(chain, key)
                    .context("the certificate and key do not make a usable pair")?;
                if args.tickets {
                    config.ticketer = rustls::crypto::ring::Ticketer::new()?;
                    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
                } else {
                    config.session_storage = ServerSessions::new(context);
                }
                Ok(Self::Rustls(Arc::new(config)))
            }
            Backend::Openssl => {
                let mut builder = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
                let mut certs = chain.iter();
                let leaf = certs.next().ok_or_else(|| anyhow!("no certificate"))?;
                let leaf = openssl::x509::X509::from_der(leaf)?;
                builder.set_certificate(&leaf)?;
                for cert in certs {
                    builder.add_extra_chain_cert(openssl::x509::X509::from_der(cert)?)?;
                }
                let key = openssl::pkey::PKey::private_key_from_der(key.secret_der())?;
                builder.set_private_key(&key)?;
                builder
                    .check_private_key()
                    .context("the certificate and key do not make a usable pair")?;
                if args.tickets {
                    // OpenSSL's own stateless tickets, and no session cache.
                    builder.set_session_cache_mode(SslSessionCacheMode::OFF);
                } else {
                    sesscache_openssl::install_server(&mut builder, context)?;
                }
                Ok(Self::Openssl(Arc::new(builder.build())))
            }
        }
    }

    /// The server side of the handshake, within `limit` all told: every read and write waits
    /// at most for what is left of it, so a client that trickles bytes cannot stretch it.
    /// A finished handshake is counted in the cache's resumption outcomes; its record comes
    /// back with the connection.
    fn accept(
        &self,
        tcp: TcpStream,
        limit: Duration,
        context: &Context,
    ) -> Result<(Box<dyn Established>, HandshakeRecord)> {
        let deadline = Instant::now() + limit;
        let left = || {
            deadline
                .checked_duration_since(Instant::now())
                .filter(|left| !left.is_zero())
                .ok_or_else(|| anyhow!("no handshake within {} s", limit.as_secs()))
        };
        let timeouts = |tcp: &TcpStream, left: Duration| -> Result<()> {
            tcp.set_read_timeout(Some(left))?;
            tcp.set_write_timeout(Some(left))?;
            Ok(())
        };
        match self {
            Self::Rustls(config) => {
                let mut tcp = tcp;
                let mut conn = ServerConnection::new(config.clone())?;
                let mut handshake = ServerHandshake::new(context);
                while conn.is_handshaking() {
                    timeouts(&tcp, left()?)?;
                    handshake.observe(|| conn.complete_io(&mut tcp))?;
                }
                let record = handshake.finish(&conn).clone();
                // Tickets (TLS 1.3) go out now, before waiting for a request.
                while conn.wants_write() {
                    conn.write_tls(&mut tcp)?;
                }
                Ok((Box::new(RustlsConnection { tcp, conn }), record))
            }
            Self::Openssl(acceptor) => {
                timeouts(&tcp, left()?)?;
                let mut result = acceptor.accept(tcp);
                loop {
                    match result {
                        Ok(stream) => {
                            // The adapter's callbacks counted the handshake; its record says
                            // how it went.
                            let record = sesscache_openssl::handshake_record(stream.ssl())
                                .unwrap_or_default();
                            return Ok((Box::new(OpensslConnection(stream)), record));
                        }
                        Err(HandshakeError::WouldBlock(mid)) => {
                            timeouts(mid.get_ref(), left()?)?;
                            result = mid.handshake();
                        }
                        Err(err) => return Err(anyhow!("{err}")),
                    }
                }
            }
        }
    }
}

/// A connection whose handshake is done, on either stack.
trait Established {
    fn resumed(&self) -> bool;
    fn version(&self) -> &'static str;
    fn cipher(&self) -> String;
    fn tcp(&self) -> &TcpStream;
    /// Reads what the TLS stream holds (at most `buf.len()` bytes).
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize>;
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()>;
    /// Sends close_notify and flushes.
    fn close(&mut self) -> Result<()>;
}

struct RustlsConnection {
    tcp: TcpStream,
    conn: ServerConnection,
}

impl Established for RustlsConnection {
    fn resumed(&self) -> bool {
        self.conn.handshake_kind() == Some(HandshakeKind::Resumed)
    }
    fn version(&self) -> &'static str {
        match self.conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
            _ => "unknown",
        }
    }
    fn cipher(&self) -> String {
        self.conn
            .negotiated_cipher_suite()
            .map_or_else(|| "unknown".to_owned(), |s| format!("{:?}", s.suite()))
    }
    fn tcp(&self) -> &TcpStream {
        &self.tcp
    }
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        rustls::Stream::new(&mut self.conn, &mut self.tcp).read(buf)
    }
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        rustls::Stream::new(&mut self.conn, &mut self.tcp).write_all(bytes)
    }
    fn close(&mut self) -> Result<()> {
        self.conn.send_close_notify();
        while self.conn.wants_write() {
            self.conn.write_tls(&mut self.tcp)?;
        }
        Ok(())
    }
}

struct OpensslConnection(SslStream<TcpStream>);

impl Established for OpensslConnection {
    fn resumed(&self) -> bool {
        self.0.ssl().session_reused()
    }
    fn version(&self) -> &'static str {
        self.0.ssl().version_str()
    }
    fn cipher(&self) -> String {
        self.0
            .ssl()
            .current_cipher()
            .map_or_else(|| "unknown".to_owned(), |c| c.name().to_owned())
    }
    fn tcp(&self) -> &TcpStream {
        self.0.get_ref()
    }
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.0.write_all(bytes)
    }
    fn close(&mut self) -> Result<()> {
        // A client already gone makes this fail; the answer was written either way.
        let _ = self.0.shutdown();
        Ok(())
    }
}

fn serve_one(
    tcp: TcpStream,
    tls: &Tls,
    context: &Context,
    counts: &Counts,
    trace: Option<&Recorder>,
    limits: Limits,
) {
    let peer = tcp
        .peer_addr()
        .map_or_else(|_| "?".to_owned(), |a| a.to_string());
    // A trace is anonymous; with one, the log names the peer only at debug level.
    let named = trace.is_none();
    counts.connections.fetch_add(1, Ordering::Relaxed);
    let mut conn = match tls.accept(tcp, limits.handshake, context) {
        Ok((conn, record)) => {
            if let Some(trace) = trace {
                trace.record(&record);
            }
            conn
        }
        Err(err) => {
            counts.failed.fetch_add(1, Ordering::Relaxed);
            if named {
                warn!(%peer, error = %err, "handshake failed");
            } else {
                debug!(%peer, error = %err, "handshake failed");
                warn!(error = %err, "handshake failed");
            }
            return;
        }
    };
    let resumed = conn.resumed();
    if resumed {
        counts.resumed.fetch_add(1, Ordering::Relaxed);
    }
    let version = conn.version();
    let line = format!(
        "sesscache serve: {version}, {}, resumed: {}\n",
        conn.cipher(),
        if resumed { "yes" } else { "no" }
    );
    // A client that only wanted the handshake (`s_client -reconnect`) may be gone already.
    let answered = answer(conn.as_mut(), &line);
    match (answered, named) {
        (Ok(()), true) => info!(%peer, version, resumed, "connection"),
        (Ok(()), false) => {
            debug!(%peer, version, resumed, "connection");
            info!(version, resumed, "connection");
        }
        (Err(err), true) => {
            info!(%peer, version, resumed, error = %err, "connection closed before the answer")
        }
        (Err(err), false) => {
            debug!(%peer, version, resumed, error = %err, "connection closed before the answer");
            info!(version, resumed, error = %err, "connection closed before the answer");
        }
    }
}

/// An HTTP/1.0 response to a request line; else the line alone.
fn answer(conn: &mut dyn Established, line: &str) -> Result<()> {
    conn.tcp().set_write_timeout(Some(WRITE_TIMEOUT))?;
    let waited = Instant::now() + REQUEST_WAIT;
    let mut request = Vec::new();
    let mut buf = [0u8; 2048];
    while !request.contains(&b'\n') && request.len() < 8192 {
        // The request line's wait is one deadline too, however the bytes trickle in.
        let Some(left) = waited
            .checked_duration_since(Instant::now())
            .filter(|left| !left.is_zero())
        else {
            break;
        };
        conn.tcp().set_read_timeout(Some(left))?;
        match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => request.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(e) => return Err(e.into()),
        }
    }
    let first = request.split(|&b| b == b'\n').next().unwrap_or_default();
    let is_http = first.windows(6).any(|w| w == b" HTTP/")
        && [&b"GET "[..], b"HEAD ", b"POST "]
            .iter()
            .any(|m| first.starts_with(m));
    if is_http {
        let response = format!(
            "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{line}",
            line.len()
        );
        conn.write_all(response.as_bytes())?;
    } else {
        conn.write_all(line.as_bytes())?;
    }
    conn.close()
}

/// What the server did, as printed when it stops: its counters, then its cache's, then the
/// handshakes' outcomes.
fn report(counts: &CountsNow, workers: u16, stats: &Stats, tickets: bool) -> String {
    /// A figure's line: its label after `indent` spaces, its value in one column.
    fn row(out: &mut String, indent: usize, (label, value): (&str, u64)) {
        let width = 26 - indent;
        let _ = writeln!(out, "{:indent$}{label:<width$} {value:>10}", "");
    }
    let mut out = String::from("\n");
    let served = Figures::of(counts);
    row(&mut out, 2, served.row("connections"));
    row(&mut out, 4, served.row("resumed"));
    row(&mut out, 4, served.row("failed"));
    row(&mut out, 4, ("workers", u64::from(workers)));
    for key in ["trace_dropped", "trace_write_errors"] {
        if served.get(key).is_some() {
            row(&mut out, 4, served.row(key));
        }
    }
    row(&mut out, 4, served.row("peak_in_flight"));
    let mode = if tickets {
        " (stateless tickets: unused)"
    } else {
        ""
    };
    let _ = writeln!(out, "  cache{mode}");
    let cache = Figures::of(stats);
    for key in ["number", "hits", "misses", "timeouts", "cache_full"] {
        row(&mut out, 4, cache.row(key));
    }
    let (accept, accepted) = cache.row("accept");
    let (accept_good, good) = cache.row("accept_good");
    let both = format!("{accept} / {accept_good}");
    let _ = writeln!(out, "    {both:<22} {accepted:>10} / {good}");
    row(&mut out, 4, served.row("flushes"));
    row(&mut out, 4, served.row("flushed"));
    let _ = writeln!(out, "  {}", report::label::<Stats>("resumptions"));
    let resumptions = Figures::of(&stats.resumptions);
    for key in resumptions.reported() {
        row(&mut out, 4, resumptions.row(key));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_counter_is_described() {
        let counts = Counts::default().snapshot(Some(&Losses::default()));
        assert_eq!(
            sesscache_metrics::undescribed(&counts),
            Vec::<String>::new()
        );
    }

    #[test]
    fn the_report_shows_every_figure_under_its_label() {
        let counts = Counts::default();
        counts.connections.fetch_add(3, Ordering::Relaxed);
        counts.resumed.fetch_add(1, Ordering::Relaxed);
        let context = Context::new(ContextConfig::default());
        let text = report(
            &counts.snapshot(Some(&Losses::default())),
            64,
            &context.cache().stats(),
            false,
        );
        let expected = [
            "",
            "  connections                       3",
            "    resumed                         1",
            "    failed                          0",
            "    workers                        64",
            "    trace lines dropped             0",
            "    trace write errors              0",
            "    most at once                    0",
            "  cache",
            "    sessions cached                 0",
            "    hits                            0",
            "    misses                          0",
            "    timeouts                        0",
            "    evictions (cache full)          0",
            "    accept / accept_good            0 / 0",
            "    timed flushes                   0",
            "    sessions they removed           0",
            "  resumption",
            "    resumed                         0",
            "    nothing offered                 0",
            "    unknown_id                      0",
            "    expired                         0",
            "    other_context                   0",
            "    already_used                    0",
            "    refused_by_stack                0",
            "    store_unavailable               0",
        ];
        assert_eq!(text.lines().collect::<Vec<_>>(), expected);
        let without_trace = report(&counts.snapshot(None), 64, &context.cache().stats(), true);
        assert!(!without_trace.contains("trace"));
        assert!(without_trace.contains("  cache (stateless tickets: unused)\n"));
    }
}
