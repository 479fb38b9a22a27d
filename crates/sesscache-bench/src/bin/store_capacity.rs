//! What the fleet tier asks of its store, measured on real handshakes, and what that comes to
//! for a fleet: the bytes a session value and a used ticket's tombstone take in Redis
//! (`MEMORY USAGE`), the store commands of a full and of a resumed handshake
//! (`INFO commandstats`), and from those the memory and the commands per second a store node
//! needs at a given handshake rate.
//!
//! ```sh
//! cargo build --release -p sesscache-cli
//! cargo run --release -p sesscache-bench --bin store_capacity -- [--samples 20] [--sesscache PATH]
//! ```
//!
//! Two `sesscache serve` per stack (rustls, OpenSSL) share one `redis-server` on loopback.
//! For each stack and TLS version, `--samples` clients ([`sesscache_bench::serve_fleet`]) each
//! make a full handshake on the first server, then resume on it, then resume on the second.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use sesscache_bench::serve_fleet::{
    check_sesscache, default_sesscache, keygen, Certificate, Client, Serve, BACKENDS,
};
use test_support::redis_server::RedisServer;

const USAGE: &str = "usage: store_capacity [--samples N] [--sesscache PATH]

  --samples    clients per stack and TLS version (default 20)
  --sesscache  the sesscache binary (default target/release/sesscache in the workspace;
               build it with `cargo build --release -p sesscache-cli`)";

/// The session timeouts the table is made for, in seconds.
const TIMEOUTS: [u64; 2] = [300, 7200];
/// How long past its session a value (or a tombstone) stays in the store: the tier's
/// `tombstone_margin`.
const MARGIN: u64 = 300;
/// Handshake rates the table is made for, per second, the whole fleet.
const RATES: [u64; 3] = [1_000, 10_000, 50_000];
/// The share of handshakes that resume.
const RESUMED: f64 = 0.5;
/// Cluster sizes the table splits the load over.
const NODES: [u64; 2] = [3, 6];

fn usage(problem: &str) -> ! {
    eprintln!("store_capacity: {problem}\n{USAGE}");
    std::process::exit(2);
}

/// The store's session commands so far: (GET, SET, DEL).
fn commands(redis: &RedisServer) -> [u64; 3] {
    let calls: BTreeMap<String, u64> = redis.command_calls().into_iter().collect();
    ["get", "set", "del"].map(|c| calls.get(c).copied().unwrap_or(0))
}

/// Waits until the store's session commands stop changing for 300 ms (the servers' writes
/// are in the background), at most ten seconds; the counts then.
fn settle(redis: &RedisServer) -> [u64; 3] {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = commands(redis);
    let mut still_since = Instant::now();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        let now = commands(redis);
        if now != last {
            last = now;
            still_since = Instant::now();
        } else if still_since.elapsed() >= Duration::from_millis(300) {
            break;
        }
    }
    last
}

/// Every key in the store.
fn keys(redis: &RedisServer) -> BTreeSet<String> {
    String::from_utf8_lossy(&redis.cli(&["--scan"]))
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A RESP integer reply's value.
fn integer(redis: &RedisServer, args: &[&str]) -> u64 {
    redis
        .command(args)
        .and_then(|r| r.strip_prefix(':')?.trim_end().parse().ok())
        .unwrap_or_else(|| panic!("{args:?} did not answer with a number"))
}

/// What one stack and TLS version cost the store.
#[derive(Debug, Default)]
struct Measured {
    backend: usize,
    tls13: bool,
    samples: u64,
    /// Values written per full handshake, and their mean `MEMORY USAGE` in bytes.
    values_per_full: f64,
    value_bytes: f64,
    /// Values written per resumed handshake (TLS 1.3: its new tickets).
    values_per_resumed: f64,
    /// Tombstones left per resumed handshake, and their mean `MEMORY USAGE`.
    tombstones_per_resumed: f64,
    tombstone_bytes: f64,
    /// (GET, SET, DEL) per handshake: full, resumed on the server that made the session,
    /// resumed on another.
    full: [f64; 3],
    resumed_same: [f64; 3],
    resumed_other: [f64; 3],
    /// How many of the resumptions asked for did resume (same server, other server).
    resumed_ok: (u64, u64),
}

/// The delta of two command counts, per handshake.
fn per(before: [u64; 3], after: [u64; 3], n: u64) -> [f64; 3] {
    [0, 1, 2].map(|i| (after[i] - before[i]) as f64 / n as f64)
}

fn measure(
    redis: &RedisServer,
    servers: &[&Serve; 2],
    certificate: &Certificate,
    backend: usize,
    tls13: bool,
    samples: u64,
) -> Result<Measured, String> {
    let t0 = Instant::now();
    let clients: Vec<Client> = (0..samples)
        .map(|_| Client::new(backend, tls13, &certificate.roots))
        .collect();
    let mut m = Measured {
        backend,
        tls13,
        samples,
        ..Measured::default()
    };
    let round = |server: &Serve| -> Result<u64, String> {
        let mut resumed = 0;
        for client in &clients {
            let record = client
                .connect(server.addr, t0)
                .ok_or("a client busy with no other connection")?;
            match record.outcome {
                Ok(r) => resumed += u64::from(r),
                Err((stage, e)) => return Err(format!("a connection failed ({stage:?}): {e}")),
            }
        }
        Ok(resumed)
    };
    let memory = |keys: &BTreeSet<String>| -> f64 {
        let total: u64 = keys
            .iter()
            .map(|k| integer(redis, &["MEMORY", "USAGE", k, "SAMPLES", "0"]))
            .sum();
        total as f64 / keys.len().max(1) as f64
    };

    // Full handshakes: each client has nothing to offer.
    let (c0, k0) = (settle(redis), keys(redis));
    if round(servers[0])? != 0 {
        return Err("a first handshake resumed".to_owned());
    }
    let (c1, k1) = (settle(redis), keys(redis));
    let written: BTreeSet<String> = k1.difference(&k0).cloned().collect();
    m.full = per(c0, c1, samples);
    m.values_per_full = written.len() as f64 / samples as f64;
    m.value_bytes = memory(&written);

    // Resumed on the server that made the session.
    m.resumed_ok.0 = round(servers[0])?;
    let c2 = settle(redis);
    m.resumed_same = per(c1, c2, samples);
    // Resumed on the other server: through the store.
    m.resumed_ok.1 = round(servers[1])?;
    let (c3, k3) = (settle(redis), keys(redis));
    m.resumed_other = per(c2, c3, samples);

    let new_in_resumptions = k3.difference(&k1).count();
    // A tombstone is the one byte 0x00.
    let tombstones: BTreeSet<String> = k3
        .difference(&k0)
        .filter(|k| integer(redis, &["STRLEN", k]) == 1)
        .cloned()
        .collect();
    m.values_per_resumed = new_in_resumptions as f64 / (2 * samples) as f64;
    m.tombstones_per_resumed = tombstones.len() as f64 / (2 * samples) as f64;
    m.tombstone_bytes = memory(&tombstones);
    Ok(m)
}

fn main() {
    let mut samples = 20u64;
    let mut sesscache = default_sesscache();
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--samples" => {
                samples = it
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|&n| n > 0)
                    .unwrap_or_else(|| usage("--samples takes a number above 0"))
            }
            "--sesscache" => {
                sesscache = PathBuf::from(
                    it.next()
                        .unwrap_or_else(|| usage("--sesscache needs a path")),
                )
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return;
            }
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    if let Err(problem) = run(&sesscache, samples) {
        eprintln!("store_capacity: {problem}");
        std::process::exit(2);
    }
}

fn run(sesscache: &std::path::Path, samples: u64) -> Result<(), String> {
    check_sesscache(sesscache)?;
    let dir = tempfile::tempdir().map_err(|e| format!("a temporary directory: {e}"))?;
    let keys_file = dir.path().join("fleet.keys");
    keygen(sesscache, &keys_file)?;
    let certificate = Certificate::make(dir.path())?;
    let redis = RedisServer::start();
    let mut extra = vec![
        "--redis".to_owned(),
        redis.url(),
        "--redis-keys".to_owned(),
        keys_file.display().to_string(),
    ];
    extra.extend(certificate.args());
    let mut servers = Vec::new();
    for (backend, name) in BACKENDS.iter().enumerate() {
        for i in 0..2 {
            let log = dir.path().join(format!("serve-{name}-{i}.log"));
            servers.push(Serve::start(sesscache, backend, &extra, log)?);
        }
    }
    let mut measured = Vec::new();
    for backend in 0..BACKENDS.len() {
        let pair = [&servers[2 * backend], &servers[2 * backend + 1]];
        for tls13 in [false, true] {
            measured.push(measure(
                &redis,
                &pair,
                &certificate,
                backend,
                tls13,
                samples,
            )?);
        }
    }
    for server in &mut servers {
        server.stop();
    }
    drop(redis);
    print!("{}", report(&measured, samples));
    Ok(())
}

fn version(tls13: bool) -> &'static str {
    if tls13 {
        "TLS 1.3"
    } else {
        "TLS 1.2"
    }
}

fn report(measured: &[Measured], samples: u64) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "measured: {samples} clients per stack and version; a full handshake on server A, a resumption on A, one on B (redis-server {}, MEMORY USAGE ... SAMPLES 0)\n",
        redis_version()
    );
    let _ = writeln!(
        out,
        "{:<8} {:<8} {:>11} {:>8} {:>12} {:>12} {:>9} {:>17} {:>17} {:>17} {:>9}",
        "stack",
        "TLS",
        "values/full",
        "value B",
        "values/resum",
        "tombst/resum",
        "tombst B",
        "full get/set/del",
        "resumed on A",
        "resumed on B",
        "resumed"
    );
    let trio = |c: [f64; 3]| format!("{:.2}/{:.2}/{:.2}", c[0], c[1], c[2]);
    for m in measured {
        let _ = writeln!(
            out,
            "{:<8} {:<8} {:>11.2} {:>8.0} {:>12.2} {:>12.2} {:>9} {:>17} {:>17} {:>17} {:>9}",
            BACKENDS[m.backend],
            version(m.tls13),
            m.values_per_full,
            m.value_bytes,
            m.values_per_resumed,
            m.tombstones_per_resumed,
            if m.tombstones_per_resumed > 0.0 {
                format!("{:.0}", m.tombstone_bytes)
            } else {
                "-".to_owned()
            },
            trio(m.full),
            trio(m.resumed_same),
            trio(m.resumed_other),
            format!("{}+{}/{}", m.resumed_ok.0, m.resumed_ok.1, 2 * m.samples),
        );
    }

    // For each version, the costlier stack's figures.
    let worst = |tls13: bool| -> Cost {
        measured
            .iter()
            .filter(|m| m.tls13 == tls13)
            .map(Cost::of)
            .fold(Cost::default(), Cost::max)
    };
    let _ = writeln!(
        out,
        "\nassumptions: {:.0}% of handshakes resume, each on another server than the one that made its session (the store is asked); every value and tombstone stays for the session timeout T plus the tier's {MARGIN} s margin (entries alive = entries written per second x (T + {MARGIN} s)); per TLS version the costlier stack's figures; memory is MEMORY USAGE's sum (the keys, values and Redis's per-key overhead), without the allocator's fragmentation or replicas; a cluster spreads keys and commands evenly over its primaries.",
        RESUMED * 100.0
    );
    let _ = writeln!(
        out,
        "\n{:<8} {:>8} {:>7} {:>14} {:>12} {:>12} {:>20} {:>20}",
        "TLS",
        "rate/s",
        "T s",
        "entries alive",
        "memory MiB",
        "commands/s",
        "3 nodes: MiB, cmd/s",
        "6 nodes: MiB, cmd/s"
    );
    for tls13 in [false, true] {
        let cost = worst(tls13);
        for t in TIMEOUTS {
            for rate in RATES {
                let r = rate as f64;
                let entries_per_s = r * (1.0 - RESUMED) * cost.values_per_full
                    + r * RESUMED * (cost.values_per_resumed + cost.tombstones_per_resumed);
                let bytes_per_s = r * (1.0 - RESUMED) * cost.values_per_full * cost.value_bytes
                    + r * RESUMED
                        * (cost.values_per_resumed * cost.value_bytes
                            + cost.tombstones_per_resumed * cost.tombstone_bytes);
                let alive = entries_per_s * (t + MARGIN) as f64;
                let mib = bytes_per_s * (t + MARGIN) as f64 / (1024.0 * 1024.0);
                let cmds =
                    r * (1.0 - RESUMED) * cost.commands_full + r * RESUMED * cost.commands_resumed;
                let split = |n: u64| format!("{:.0}, {:.0}", mib / n as f64, cmds / n as f64);
                let _ = writeln!(
                    out,
                    "{:<8} {:>8} {:>7} {:>14.0} {:>12.0} {:>12.0} {:>20} {:>20}",
                    version(tls13),
                    rate,
                    t,
                    alive,
                    mib,
                    cmds,
                    split(NODES[0]),
                    split(NODES[1])
                );
            }
        }
    }
    out
}

/// One stack's and version's cost per handshake, as the table uses it.
#[derive(Debug, Default, Clone, Copy)]
struct Cost {
    values_per_full: f64,
    value_bytes: f64,
    values_per_resumed: f64,
    tombstones_per_resumed: f64,
    tombstone_bytes: f64,
    commands_full: f64,
    commands_resumed: f64,
}

impl Cost {
    fn of(m: &Measured) -> Self {
        // A resumption on another server; the figures of the two resumption rounds are
        // averaged for what they leave in the store.
        Self {
            values_per_full: m.values_per_full,
            value_bytes: m.value_bytes,
            values_per_resumed: m.values_per_resumed,
            tombstones_per_resumed: m.tombstones_per_resumed,
            tombstone_bytes: m.tombstone_bytes,
            commands_full: m.full.iter().sum(),
            commands_resumed: m.resumed_other.iter().sum(),
        }
    }

    fn max(self, other: Self) -> Self {
        Self {
            values_per_full: self.values_per_full.max(other.values_per_full),
            value_bytes: self.value_bytes.max(other.value_bytes),
            values_per_resumed: self.values_per_resumed.max(other.values_per_resumed),
            tombstones_per_resumed: self
                .tombstones_per_resumed
                .max(other.tombstones_per_resumed),
            tombstone_bytes: self.tombstone_bytes.max(other.tombstone_bytes),
            commands_full: self.commands_full.max(other.commands_full),
            commands_resumed: self.commands_resumed.max(other.commands_resumed),
        }
    }
}

/// `redis-server --version`'s version, for the record.
fn redis_version() -> String {
    std::process::Command::new("redis-server")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .find_map(|w| w.strip_prefix("v=").map(str::to_owned))
        })
        .unwrap_or_else(|| "?".to_owned())
}
