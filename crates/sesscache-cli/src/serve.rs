//! `sesscache serve`: a small TLS server (rustls) that resumes sessions through a context's
//! cache, answers each connection with a line saying whether it was resumed, and prints the
//! cache's statistics when stopped.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};
use ctx::{Context, ContextConfig};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{HandshakeKind, ServerConfig, ServerConnection};
use sesscache_rustls::ServerSessions;
use session_cache::{CacheConfig, Handshake};
use tracing::{info, warn};

/// The options of `sesscache serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
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
    /// Resume with stateless tickets (rustls's ticketer) instead of the session cache, for
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
}

/// Connections that get no request line within this time get the plain-text answer.
const REQUEST_WAIT: Duration = Duration::from_millis(200);
/// A peer that stalls a handshake longer than this is dropped.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) fn run(args: &Args) -> Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
    let context = Context::new(ContextConfig {
        cache: CacheConfig {
            size: args.cache_size,
            timeout: args.timeout,
            ..CacheConfig::default()
        },
        ..ContextConfig::default()
    });
    let config = Arc::new(server_config(args, &context)?);
    let listener = TcpListener::bind(args.listen)
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let resumption = if args.tickets {
        "stateless tickets"
    } else {
        "the session cache"
    };
    println!(
        "sesscache serve: listening on {addr} (resumption through {resumption}); Ctrl-C stops"
    );
    std::io::stdout().flush()?;

    let (stop, stopped) = mpsc::channel::<()>();
    let on_signal = stop.clone();
    ctrlc::set_handler(move || {
        let _ = on_signal.send(());
    })
    .context("cannot install the Ctrl-C handler")?;

    let counts = Arc::new(Counts::default());
    let accept_counts = counts.clone();
    let stats_context = context.clone();
    let max = args.max_connections;
    std::thread::spawn(move || {
        let mut accepted = 0u64;
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let (config, context, counts) =
                (config.clone(), context.clone(), accept_counts.clone());
            let last = max.is_some_and(|max| accepted + 1 >= max);
            let handle = std::thread::spawn(move || serve_one(stream, &config, &context, &counts));
            accepted += 1;
            if last {
                let _ = handle.join();
                let _ = stop.send(());
                return;
            }
        }
    });
    stopped
        .recv()
        .map_err(|_| anyhow!("the server stopped unexpectedly"))?;
    print_stats(&counts, &stats_context, args);
    Ok(())
}

#[derive(Default)]
struct Counts {
    connections: AtomicU64,
    resumed: AtomicU64,
    failed: AtomicU64,
}

fn server_config(args: &Args, context: &Context) -> Result<ServerConfig> {
    let (chain, key) = match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| anyhow!("cannot read certificates from {}: {e}", cert.display()))?;
            if chain.is_empty() {
                return Err(anyhow!("{} holds no certificate", cert.display()));
            }
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| anyhow!("cannot read a private key from {}: {e}", key.display()))?;
            (chain, key)
        }
        _ => {
            let made = rcgen::generate_simple_self_signed(vec![
                "localhost".to_owned(),
                "127.0.0.1".to_owned(),
            ])?;
            let key = PrivateKeyDer::Pkcs8(made.signing_key.serialize_der().into());
            (vec![made.cert.der().clone()], key)
        }
    };
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
    Ok(config)
}

fn serve_one(mut tcp: TcpStream, config: &Arc<ServerConfig>, context: &Context, counts: &Counts) {
    let peer = tcp
        .peer_addr()
        .map_or_else(|_| "?".to_owned(), |a| a.to_string());
    counts.connections.fetch_add(1, Ordering::Relaxed);
    context.cache().record(Handshake::Accept);
    let mut conn = match handshake(&mut tcp, config) {
        Ok(conn) => conn,
        Err(err) => {
            counts.failed.fetch_add(1, Ordering::Relaxed);
            warn!(%peer, error = %err, "handshake failed");
            return;
        }
    };
    context.cache().record(Handshake::AcceptGood);
    let resumed = conn.handshake_kind() == Some(HandshakeKind::Resumed);
    if resumed {
        counts.resumed.fetch_add(1, Ordering::Relaxed);
    }
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
        _ => "unknown",
    };
    let cipher = conn
        .negotiated_cipher_suite()
        .map_or_else(|| "unknown".to_owned(), |s| format!("{:?}", s.suite()));
    let line = format!(
        "sesscache serve: {version}, {cipher}, resumed: {}\n",
        if resumed { "yes" } else { "no" }
    );
    // A client that only wanted the handshake (`s_client -reconnect`) may be gone already.
    match answer(&mut tcp, &mut conn, &line) {
        Ok(()) => info!(%peer, version, resumed, "connection"),
        Err(err) => {
            info!(%peer, version, resumed, error = %err, "connection closed before the answer")
        }
    }
}

fn handshake(tcp: &mut TcpStream, config: &Arc<ServerConfig>) -> Result<ServerConnection> {
    tcp.set_read_timeout(Some(IO_TIMEOUT))?;
    tcp.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut conn = ServerConnection::new(config.clone())?;
    while conn.is_handshaking() {
        conn.complete_io(tcp)?;
    }
    // Tickets (TLS 1.3) go out now, before waiting for a request.
    while conn.wants_write() {
        conn.write_tls(tcp)?;
    }
    Ok(conn)
}

/// An HTTP/1.0 response to a request line; else the line alone.
fn answer(tcp: &mut TcpStream, conn: &mut ServerConnection, line: &str) -> Result<()> {
    tcp.set_read_timeout(Some(REQUEST_WAIT))?;
    let mut request = Vec::new();
    let mut buf = [0u8; 2048];
    let mut tls = rustls::Stream::new(conn, tcp);
    while !request.contains(&b'\n') && request.len() < 8192 {
        match tls.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => request.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(e) => return Err(e.into()),
        }
    }
    tls.sock.set_read_timeout(Some(IO_TIMEOUT))?;
    let first = request.split(|&b| b == b'\n').next().unwrap_or_default();
    let is_http = first.windows(6).any(|w| w == b" HTTP/")
        && [&b"GET "[..], b"HEAD ", b"POST "]
            .iter()
            .any(|m| first.starts_with(m));
    if is_http {
        write!(
            tls,
            "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{line}",
            line.len()
        )?;
    } else {
        tls.write_all(line.as_bytes())?;
    }
    tls.conn.send_close_notify();
    tls.flush()?;
    while tls.conn.wants_write() {
        tls.conn.write_tls(tls.sock)?;
    }
    Ok(())
}

fn print_stats(counts: &Counts, context: &Context, args: &Args) {
    let connections = counts.connections.load(Ordering::Relaxed);
    let resumed = counts.resumed.load(Ordering::Relaxed);
    println!();
    println!("  connections              {connections:>10}");
    println!("    resumed                {resumed:>10}");
    println!(
        "    failed                 {:>10}",
        counts.failed.load(Ordering::Relaxed)
    );
    let s = context.cache().stats();
    let mode = if args.tickets {
        " (stateless tickets: unused)"
    } else {
        ""
    };
    println!("  cache{mode}");
    println!("    sessions cached        {:>10}", s.number);
    println!("    hits                   {:>10}", s.hits);
    println!("    misses                 {:>10}", s.misses);
    println!("    timeouts               {:>10}", s.timeouts);
    println!("    evictions (cache full) {:>10}", s.cache_full);
    println!(
        "    accept / accept_good   {:>10} / {}",
        s.accept, s.accept_good
    );
}
