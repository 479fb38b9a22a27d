//! `sesscache simulate`: its options, a synthetic run (`sesscache-workload`) or several, and
//! their report as a table or JSON. `--replay` is `replay.rs`'s.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use clap::ValueEnum;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use sesscache_workload::simulate::{self as engine, Distribution, Pace, Stop, Workload};

use crate::report::Figures;
use session_cache::{CacheMode, Resumption, Stats};
use session_core::ProtocolVersion;

/// How clients are picked for each connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum KeyDistribution {
    /// Every client equally often.
    Uniform,
    /// A few clients much more often than the rest (Zipf, see --zipf-exponent).
    Zipf,
}

/// The TLS version the simulated handshakes negotiate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum TlsVersion {
    /// TLS 1.2: sessions are resumed by id and stay cached.
    #[value(name = "1.2")]
    Tls12,
    /// TLS 1.3: every resumption uses up its ticket and gets a new one.
    #[value(name = "1.3")]
    Tls13,
}

/// One bit of the cache mode, as OpenSSL names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ModeBit {
    /// No automatic caching.
    Off,
    /// Cache client sessions.
    Client,
    /// Cache server sessions.
    Server,
    /// Client and server.
    Both,
    /// No automatic flush every 255 handshakes.
    NoAutoClear,
    /// Do not look up the internal cache.
    NoInternalLookup,
    /// Do not store in the internal cache.
    NoInternalStore,
    /// Refresh a session's time when it is added.
    UpdateTime,
}

impl ModeBit {
    fn bits(self) -> CacheMode {
        match self {
            ModeBit::Off => CacheMode::OFF,
            ModeBit::Client => CacheMode::CLIENT,
            ModeBit::Server => CacheMode::SERVER,
            ModeBit::Both => CacheMode::BOTH,
            ModeBit::NoAutoClear => CacheMode::NO_AUTO_CLEAR,
            ModeBit::NoInternalLookup => CacheMode::NO_INTERNAL_LOOKUP,
            ModeBit::NoInternalStore => CacheMode::NO_INTERNAL_STORE,
            ModeBit::UpdateTime => CacheMode::UPDATE_TIME,
        }
    }
}

fn ratio(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is not between 0 and 1"))
    }
}

fn positive(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(format!("{v} must be a positive number"))
    }
}

/// The longest run, in real seconds (about 11.6 days).
const MAX_DURATION: f64 = 1e6;
/// The fastest simulated clock, in simulated seconds per real second.
const MAX_TIME_SCALE: f64 = 1e9;
/// The longest flush interval, in simulated seconds: as long as the longest run at the
/// fastest clock, so that any longer one would simply never flush.
const MAX_FLUSH_INTERVAL: u64 = (MAX_DURATION * MAX_TIME_SCALE) as u64;

/// A positive number of at most `max`.
fn positive_up_to(s: &str, max: f64) -> Result<f64, String> {
    let v = positive(s)?;
    if v <= max {
        Ok(v)
    } else {
        Err(format!("{v} is more than the most this takes, {max}"))
    }
}

/// A cache size: a whole number, with `k` (thousands) or `m` (millions) after it if wanted.
fn cache_size(s: &str) -> Result<usize, String> {
    let t = s.trim().to_ascii_lowercase();
    let (digits, unit) = match t.strip_suffix('k') {
        Some(d) => (d, 1_000),
        None => match t.strip_suffix('m') {
            Some(d) => (d, 1_000_000),
            None => (t.as_str(), 1),
        },
    };
    digits
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .filter(|&n| n <= 1 << 32)
        .ok_or_else(|| format!("`{s}` is not a cache size (a number, or 20k, 1m)"))
}

fn duration(s: &str) -> Result<f64, String> {
    positive_up_to(s, MAX_DURATION)
}

fn time_scale(s: &str) -> Result<f64, String> {
    positive_up_to(s, MAX_TIME_SCALE)
}

/// The options of `sesscache simulate`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Threads running connections (default: one per core).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1024))]
    threads: Option<u64>,
    /// How long to run, in real seconds, at most 1000000 (ignored if --connections is given).
    #[arg(long, default_value_t = 10.0, value_parser = duration)]
    duration: f64,
    /// Stop after this many connections instead of after --duration.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    connections: Option<u64>,
    /// Distinct clients; each keeps the last session it got.
    #[arg(long, default_value_t = 50_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    clients: u64,
    /// How often a client that holds a session offers it (0 to 1).
    #[arg(long, default_value_t = 0.8, value_parser = ratio)]
    resumption_ratio: f64,
    /// How often a connection ends without a clean shutdown, which removes its session (0 to 1).
    #[arg(long, default_value_t = 0.01, value_parser = ratio)]
    unclean_ratio: f64,
    /// How clients are picked.
    #[arg(long, value_enum, default_value_t = KeyDistribution::Zipf)]
    distribution: KeyDistribution,
    /// The Zipf exponent, with --distribution zipf.
    #[arg(long, default_value_t = 1.0, value_parser = positive)]
    zipf_exponent: f64,
    /// The session timeout, in simulated seconds (default 300; with --replay, 7200, a
    /// server's default).
    #[arg(long)]
    pub(crate) timeout: Option<u64>,
    /// The cache's size limit (0 = unlimited).
    #[arg(long, default_value_t = 20_480, conflicts_with = "cache_sizes")]
    pub(crate) cache_size: usize,
    /// Run the same workload at each of these cache sizes (comma-separated; `k` and `m` for
    /// thousands and millions: 1k,5k,20k,100k) and print the hit ratio for each. Without
    /// --connections, each run makes 100000 connections (the same seed, and the clock driven
    /// by the connections), so that every size sees the same traffic.
    #[arg(long, value_delimiter = ',', value_parser = cache_size)]
    pub(crate) cache_sizes: Option<Vec<usize>>,
    /// Replay a trace recorded by `sesscache serve --trace` instead of synthetic clients: its
    /// handshakes in order, on its own clock, against a cache of --cache-size (or each of
    /// --cache-sizes) and --timeout.
    #[arg(long, value_name = "FILE", conflicts_with_all = [
        "servers", "clients", "resumption_ratio", "unclean_ratio", "distribution",
        "zipf_exponent", "tls", "time_scale", "rate", "connections", "duration", "threads",
        "mode",
    ])]
    pub(crate) replay: Option<PathBuf>,
    /// Draw the hit ratio to this SVG file: against the cache size with --cache-sizes, else
    /// against time.
    #[arg(long, value_name = "FILE.svg")]
    pub(crate) plot: Option<PathBuf>,
    /// Flush expired sessions every this many simulated seconds, at most 10^15 (0 = never;
    /// the automatic flush every 255 handshakes still runs unless the mode says
    /// no-auto-clear).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(0..=MAX_FLUSH_INTERVAL))]
    pub(crate) flush_interval: u64,
    /// The server's cache mode, as a comma-separated list of OpenSSL's bits.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "server")]
    mode: Vec<ModeBit>,
    /// The TLS version handshakes negotiate.
    #[arg(long = "tls", value_enum, default_value_t = TlsVersion::Tls13)]
    tls: TlsVersion,
    /// Simulated seconds per real second (default 6000 for one server). The default makes 10
    /// real seconds about 16.7 hours of traffic; at about a million handshakes a second (2
    /// cores), that is where the default cache both fills up (and evicts) and sees sessions
    /// expire (timeouts, flushes that find work). A faster machine needs more (sessions are
    /// evicted before they can expire), a slower one less (the cache never fills).
    /// At most 10^9.
    #[arg(long, value_parser = time_scale, conflicts_with = "rate")]
    time_scale: Option<f64>,
    /// Drive the simulated clock by the connections instead: this many connections per
    /// simulated second, however fast the machine runs them (the default with --servers, so
    /// that runs with and without the fleet tier see the same traffic in simulated time).
    #[arg(long, value_parser = positive)]
    rate: Option<f64>,
    /// Server contexts behind a load balancer that picks one at random for each connection,
    /// each with its own cache (of --cache-size). With --redis they share the fleet tier.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=64))]
    servers: Option<u64>,
    /// The fleet tier the servers share.
    #[command(flatten)]
    store: crate::fleet::StoreArgs,
    /// Seed for the client choices (runs with the same seed and one thread make the same
    /// choices).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Connections per simulated second by default with --servers.
const DEFAULT_RATE: f64 = 200.0;

/// The report, as printed or as JSON.
#[derive(Debug, Serialize)]
struct Summary {
    threads: u64,
    servers: u64,
    clock: String,
    elapsed_seconds: f64,
    simulated_seconds: u64,
    connections: u64,
    full_handshakes: u64,
    resumed_handshakes: u64,
    offers: u64,
    hit_ratio: f64,
    hits: u64,
    local_hits: u64,
    remote_hits: u64,
    local_hit_ratio: f64,
    remote_hit_ratio: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    tier: Option<sesscache_redis::TierStats>,
    misses: u64,
    timeouts: u64,
    evictions: u64,
    /// Every server handshake's outcome: resumed, or why not.
    resumptions: session_cache::Resumptions,
    flushes: u64,
    flushed_sessions: u64,
    unclean_drops: u64,
    peak_cache_size: usize,
    final_cache_size: usize,
    cache_size_limit: usize,
    handshakes_per_second: f64,
    latency_us: LatencyUs,
}

/// Latency of the cache work of one handshake (both ends), in microseconds.
#[derive(Debug, Serialize)]
struct LatencyUs {
    p50: f64,
    p90: f64,
    p99: f64,
    p999: f64,
    max: f64,
}

/// Connections per run with --cache-sizes and no --connections.
const SIZES_CONNECTIONS: u64 = 100_000;

/// The session timeout of synthetic runs without --timeout, in simulated seconds.
const DEFAULT_SYNTHETIC_TIMEOUT: u64 = 300;

/// One run's settings beyond the options.
#[derive(Debug, Clone, Copy)]
struct Plan {
    size: usize,
    connections: Option<u64>,
    /// Drive the clock by connections unless --time-scale says otherwise.
    by_connections: bool,
    /// Keep hits and offers per simulated second, for a plot over time.
    timeline: bool,
    quiet: bool,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    if let Some(path) = &args.replay {
        return crate::replay::run(args, path);
    }
    let Some(sizes) = &args.cache_sizes else {
        let run = run_synthetic(
            args,
            Plan {
                size: args.cache_size,
                connections: args.connections,
                by_connections: false,
                timeline: args.plot.is_some(),
                quiet: args.json,
            },
        )?;
        let summary = summary(&run);
        if args.json {
            println!("{}", serde_json::to_string_pretty(&summary)?);
        } else {
            print!("{}", table(&summary, &run.stats));
        }
        if let Some(path) = &args.plot {
            let title = format!("hit ratio over time, cache size {}", args.cache_size);
            let points =
                crate::plot::draw(path, &title, crate::plot::Chart::OverTime(&run.timeline))?;
            plotted(args, path, points);
        }
        return Ok(());
    };
    let mut rows = Vec::new();
    for &size in sizes {
        let run = run_synthetic(
            args,
            Plan {
                size,
                connections: Some(args.connections.unwrap_or(SIZES_CONNECTIONS)),
                by_connections: true,
                timeline: false,
                quiet: true,
            },
        )?;
        rows.push(SizeRow {
            cache_size: size,
            offers: run.offers,
            hits: run.stats.hits,
            hit_ratio: run.hit_ratio(),
            evictions: run.stats.cache_full,
            resumptions: run.stats.resumptions,
        });
    }
    print_sizes(args, &rows, None)?;
    plot_sizes(args, &rows)
}

/// One cache size's result.
#[derive(Debug, Serialize)]
pub(crate) struct SizeRow {
    pub(crate) cache_size: usize,
    pub(crate) offers: u64,
    pub(crate) hits: u64,
    pub(crate) hit_ratio: f64,
    pub(crate) evictions: u64,
    pub(crate) resumptions: session_cache::Resumptions,
}

pub(crate) fn print_sizes(
    args: &Args,
    rows: &[SizeRow],
    recorded: Option<u64>,
) -> anyhow::Result<()> {
    if args.json {
        #[derive(Serialize)]
        struct Sizes<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            recorded_hits: Option<u64>,
            runs: &'a [SizeRow],
        }
        let out = Sizes {
            recorded_hits: recorded,
            runs: rows,
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    if let Some(hits) = recorded {
        println!("  the trace records {hits} resumed handshakes");
    }
    println!(
        "  {:>12} {:>10} {:>10} {:>10} {:>11}",
        "cache size", "offers", "hits", "hit ratio", "evictions"
    );
    for row in rows {
        println!(
            "  {:>12} {:>10} {:>10} {:>9.1}% {:>11}",
            row.cache_size,
            row.offers,
            row.hits,
            row.hit_ratio * 100.0,
            row.evictions
        );
    }
    Ok(())
}

pub(crate) fn plot_sizes(args: &Args, rows: &[SizeRow]) -> anyhow::Result<()> {
    let Some(path) = &args.plot else {
        return Ok(());
    };
    let points: Vec<(usize, f64)> = rows.iter().map(|r| (r.cache_size, r.hit_ratio)).collect();
    let drawn = crate::plot::draw(
        path,
        "hit ratio by cache size",
        crate::plot::Chart::BySize(&points),
    )?;
    plotted(args, path, drawn);
    Ok(())
}

pub(crate) fn plotted(args: &Args, path: &std::path::Path, points: usize) {
    let line = format!("plot: {points} points in {}", path.display());
    if args.json {
        eprintln!("{line}");
    } else {
        println!("{line}");
    }
}

fn run_synthetic(args: &Args, plan: Plan) -> anyhow::Result<engine::Report> {
    let servers = args.servers.unwrap_or(1) as usize;
    let workload = Workload {
        threads: args.threads.map_or_else(
            || std::thread::available_parallelism().map_or(1, |n| n.get()),
            |n| n as usize,
        ),
        servers,
        clients: args.clients,
        resumption_ratio: args.resumption_ratio,
        unclean_ratio: args.unclean_ratio,
        distribution: match args.distribution {
            KeyDistribution::Zipf => Distribution::Zipf {
                exponent: args.zipf_exponent,
            },
            KeyDistribution::Uniform => Distribution::Uniform,
        },
        version: match args.tls {
            TlsVersion::Tls12 => ProtocolVersion::TLS1_2,
            TlsVersion::Tls13 => ProtocolVersion::TLS1_3,
        },
        mode: args.mode.iter().fold(CacheMode::OFF, |m, b| m | b.bits()),
        timeout: args.timeout.unwrap_or(DEFAULT_SYNTHETIC_TIMEOUT),
        cache_size: plan.size,
        flush_interval: args.flush_interval,
        pace: match (args.time_scale, args.rate) {
            (Some(scale), _) => Pace::Scale(scale),
            (None, Some(rate)) => Pace::Rate(rate),
            (None, None) if args.servers.is_some() || plan.by_connections => {
                Pace::Rate(DEFAULT_RATE)
            }
            (None, None) => Pace::Scale(6_000.0),
        },
        stop: match plan.connections {
            Some(n) => Stop::Connections(n),
            None => Stop::After(Duration::from_secs_f64(args.duration)),
        },
        seed: args.seed,
        timeline: plan.timeline,
    };
    // Each server has a tier of its own (its own connections), as each host of a fleet does.
    let mut tiers = Vec::new();
    for _ in 0..servers {
        let Some(tier) = args.store.tier()? else {
            break;
        };
        if !tier.ping(Duration::from_secs(2)) {
            bail!("the store does not answer: check --redis");
        }
        tiers.push(tier);
    }
    let progress = progress_bar(args, plan);
    let report = engine::run(&workload, &tiers, |now| match plan.connections {
        Some(_) => progress.set_position(now.connections),
        None => progress.set_position(now.elapsed.as_millis() as u64),
    })?;
    progress.finish_and_clear();
    Ok(report)
}

/// A run's report, as printed or as JSON.
fn summary(r: &engine::Report) -> Summary {
    let us = |d: Duration| d.as_nanos() as f64 / 1_000.0;
    Summary {
        threads: r.threads as u64,
        servers: r.servers as u64,
        clock: r.pace.to_string(),
        elapsed_seconds: r.elapsed.as_secs_f64(),
        simulated_seconds: r.simulated_seconds,
        connections: r.connections,
        full_handshakes: r.full_handshakes(),
        resumed_handshakes: r.resumed,
        offers: r.offers,
        hit_ratio: r.hit_ratio(),
        hits: r.stats.hits,
        local_hits: r.local_hits(),
        remote_hits: r.remote_hits(),
        local_hit_ratio: r.share_of_offers(r.local_hits()),
        remote_hit_ratio: r.share_of_offers(r.remote_hits()),
        tier: r.tier.clone(),
        misses: r.stats.misses,
        timeouts: r.stats.timeouts,
        evictions: r.stats.cache_full,
        resumptions: r.stats.resumptions,
        flushes: r.flushes,
        flushed_sessions: r.flushed_sessions,
        unclean_drops: r.unclean_drops,
        peak_cache_size: r.peak_cache_size,
        final_cache_size: r.stats.number,
        cache_size_limit: r.cache_size_limit,
        handshakes_per_second: r.handshakes_per_second(),
        latency_us: LatencyUs {
            p50: us(r.latency.p50),
            p90: us(r.latency.p90),
            p99: us(r.latency.p99),
            p999: us(r.latency.p999),
            max: us(r.latency.max),
        },
    }
}

fn progress_bar(args: &Args, plan: Plan) -> ProgressBar {
    let bar = match plan.connections {
        Some(n) => ProgressBar::new(n).with_style(
            ProgressStyle::with_template("{spinner} {pos}/{len} connections {wide_bar} {eta}")
                .expect("a valid template"),
        ),
        None => ProgressBar::new((args.duration * 1_000.0) as u64).with_style(
            ProgressStyle::with_template("{spinner} simulating {wide_bar} {elapsed}/{duration}")
                .expect("a valid template"),
        ),
    };
    if plan.quiet {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar
}

fn table(r: &Summary, stats: &Stats) -> String {
    let mut out = format!("  clock: {}\n", r.clock);
    let mut row = |name: &str, value: String| {
        let _ = writeln!(out, "  {name:<28} {value:>16}");
    };
    row("threads", r.threads.to_string());
    row("servers", r.servers.to_string());
    row("elapsed (s)", format!("{:.2}", r.elapsed_seconds));
    row("simulated time (s)", r.simulated_seconds.to_string());
    row("connections", r.connections.to_string());
    row("  full handshakes", r.full_handshakes.to_string());
    row("  resumed handshakes", r.resumed_handshakes.to_string());
    row("sessions offered", r.offers.to_string());
    row(
        "hit ratio (hits / offers)",
        format!("{:.1}%", r.hit_ratio * 100.0),
    );
    let cache = Figures::of(stats);
    let (hits, value) = cache.row("hits");
    row(hits, value.to_string());
    row(
        "  from a server's own cache",
        format!("{} ({:.1}%)", r.local_hits, r.local_hit_ratio * 100.0),
    );
    row(
        "  from the fleet tier",
        format!("{} ({:.1}%)", r.remote_hits, r.remote_hit_ratio * 100.0),
    );
    for key in ["misses", "timeouts", "cache_full"] {
        let (label, value) = cache.row(key);
        row(label, value.to_string());
    }
    let resumptions = Figures::of(&stats.resumptions);
    for outcome in Resumption::MISSED {
        let (label, count) = resumptions.row(outcome.name());
        if count > 0 {
            row(&format!("  offers {label}"), count.to_string());
        }
    }
    row(
        "flushes",
        format!("{} ({} sessions)", r.flushes, r.flushed_sessions),
    );
    row("unclean drops", r.unclean_drops.to_string());
    row(
        "peak cache size",
        format!("{} / {}", r.peak_cache_size, r.cache_size_limit),
    );
    row("final cache size", stats.number.to_string());
    row(
        "throughput (handshakes/s)",
        format!("{:.0}", r.handshakes_per_second),
    );
    row(
        "cache work per handshake",
        format!("p50 {:.1} us", r.latency_us.p50),
    );
    row("", format!("p90 {:.1} us", r.latency_us.p90));
    row("", format!("p99 {:.1} us", r.latency_us.p99));
    row("", format!("p99.9 {:.1} us", r.latency_us.p999));
    row("", format!("max {:.1} us", r.latency_us.max));
    if let Some(tier) = &r.tier {
        let _ = writeln!(out, "  fleet tier (all servers)");
        out.push_str(&crate::fleet::report(tier));
    }
    out
}
