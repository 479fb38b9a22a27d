//! `sesscache serve`: its options, and the report it prints when stopped. The server itself
//! (both TLS stacks, the runtime, the connections, the counters) is `sesscache-server`; this
//! builds the context it resumes through (with the fleet tier, if asked), the metrics
//! endpoint, and the Ctrl-C handler that stops it.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};
use clap::ValueEnum;
use ctx::{Context, ContextConfig};
use sesscache_server::{CountsNow, Identity, Server, ServerConfig};
use session_cache::{CacheConfig, Stats};
use session_core::SidCtx;
use tracing::warn;

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

impl From<Backend> for sesscache_server::Backend {
    fn from(backend: Backend) -> Self {
        match backend {
            Backend::Rustls => Self::Rustls,
            Backend::Openssl => Self::Openssl,
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
    /// The threads that run the connections' handshakes and answers (default: one per CPU).
    /// A connection waiting for its client holds no thread; --max-pending bounds how many
    /// are held.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    workers: Option<u16>,
    /// The most connections held at once, in their handshake or their answer: more are
    /// closed as they arrive, and counted (refused). Each costs some memory and a file
    /// descriptor, no thread; keep it below the file descriptor limit (ulimit -n).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    max_pending: u32,
    /// The most a handshake may take, in seconds, all told: a client that connects and
    /// stalls (or sends nothing) is dropped then and counted as failed.
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

impl Args {
    /// The server these options describe.
    fn config(&self) -> ServerConfig {
        let mut config = ServerConfig::default();
        config.backend = self.backend.into();
        config.listen = self.listen;
        config.identity = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => Identity::Files {
                cert: cert.clone(),
                key: key.clone(),
            },
            _ => Identity::SelfSigned,
        };
        config.tickets = self.tickets;
        config.workers = self.workers.map(usize::from);
        config.max_pending = self.max_pending as usize;
        config.max_connections = self.max_connections;
        config.handshake_timeout = Duration::from_secs(self.handshake_timeout);
        config.flush_interval =
            (self.flush_interval > 0).then(|| Duration::from_secs(self.flush_interval));
        config.trace.clone_from(&self.trace);
        config
    }
}

pub(crate) fn run(args: &Args) -> Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
    let backend = sesscache_server::Backend::from(args.backend);
    let context = Context::new(ContextConfig {
        sid_ctx: SidCtx::new(backend.sid_ctx()).expect("a short constant"),
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
    let server = Server::bind(args.config(), &context)?;
    let counters = server.counters();
    let metrics = match args.metrics {
        Some(addr) => {
            let (context, tier, counters) = (context.clone(), tier.clone(), counters.clone());
            Some(crate::metrics::Endpoint::start(addr, move || {
                let mut metrics = sesscache_metrics::Metrics::new();
                metrics.cache(context.cache());
                if let Some(tier) = &tier {
                    metrics.tier(&tier.stats());
                }
                metrics
                    .snapshot("sesscache_serve_", &counters.snapshot())
                    .encode()
            })?)
        }
        None => None,
    };
    // Before the address is printed: whoever reads it may press Ctrl-C at once.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    ctrlc::set_handler(move || {
        let _ = stop.send(true);
    })
    .context("cannot install the Ctrl-C handler")?;
    let resumption = if args.tickets {
        "stateless tickets"
    } else {
        "the session cache"
    };
    let shared = if tier.is_some() {
        ", shared through the store"
    } else {
        ""
    };
    println!(
        "sesscache serve: listening on {} ({}, resumption through {resumption}{shared}); Ctrl-C stops",
        server.local_addr(),
        backend.name()
    );
    if let Some(endpoint) = &metrics {
        println!(
            "sesscache serve: metrics at http://{}/metrics",
            endpoint.addr()
        );
    }
    std::io::stdout().flush()?;

    let mut stopped = stopped;
    let served = server.run(async move {
        let _ = stopped.wait_for(|&stop| stop).await;
    });
    drop(metrics);
    print!(
        "{}",
        report(
            &served.counts,
            served.workers,
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

/// What the server did, as printed when it stops: its counters, then its cache's, then the
/// handshakes' outcomes.
fn report(counts: &CountsNow, workers: usize, stats: &Stats, tickets: bool) -> String {
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
    if counts.refused > 0 {
        row(&mut out, 4, served.row("refused"));
    }
    row(&mut out, 4, ("workers", workers as u64));
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

    /// Counters with a trace (its fields present) and these figures.
    fn with_trace(connections: u64, resumed: u64) -> CountsNow {
        CountsNow {
            connections,
            resumed,
            trace_dropped: Some(0),
            trace_write_errors: Some(0),
            ..CountsNow::default()
        }
    }

    #[test]
    fn every_counter_is_described() {
        let counts = with_trace(0, 0);
        assert_eq!(
            sesscache_metrics::undescribed(&counts),
            Vec::<String>::new()
        );
    }

    #[test]
    fn the_report_shows_every_figure_under_its_label() {
        let counts = with_trace(3, 1);
        let context = Context::new(ContextConfig::default());
        let text = report(&counts, 64, &context.cache().stats(), false);
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
        let without_trace = CountsNow {
            refused: 2,
            ..CountsNow::default()
        };
        let without_trace = report(&without_trace, 64, &context.cache().stats(), true);
        assert!(!without_trace.contains("trace"));
        assert!(without_trace.contains("  cache (stateless tickets: unused)\n"));
        assert!(
            without_trace.contains("\n    failed                          0\n    refused (too many)              2\n    workers"),
            "refused connections are shown, once there are some: {without_trace}"
        );
    }
}
