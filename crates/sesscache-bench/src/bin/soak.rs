//! The fleet tier under faults, end to end: four `sesscache serve` processes (two on rustls,
//! two on OpenSSL) sharing sessions through a three-node Redis Cluster, real TLS clients at a
//! fixed rate, one primary hung (SIGSTOP) and later killed and restarted on its port, and a
//! report of what the clients saw: failures, the slowest handshake, the resumption ratio in
//! each phase, how soon resumption comes back after the restart, and each server's memory.
//!
//! ```sh
//! cargo build --release -p sesscache-cli
//! cargo run --release -p sesscache-bench --bin soak -- [--duration 60] [--rate 100] [--json] [--check]
//! ```
//!
//! The clients are rustls clients in this process ([`sesscache_bench::serve_fleet`]), half of
//! them on each TLS version, half on each stack; each connects to a random server of its
//! stack, offers the session it holds, sends a request and reads the answer (`serve` says
//! whether it resumed).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use sesscache_bench::serve_fleet::{
    check_sesscache, default_sesscache, keygen, Certificate, Client, Record, Serve, Stage, BACKENDS,
};
use test_support::redis_server::RedisCluster;

const USAGE: &str = "usage: soak [--duration SECONDS] [--rate PER_SECOND] [--clients N] \
[--budget-ms MS] [--sesscache PATH] [--json] [--check]

  --duration   how long the clients run, in seconds (default 60, at least 10); the faults
               are placed in proportion: a primary hung from 1/3 to 1/2 of it, killed at 2/3
  --rate       handshakes per second, all clients together (default 100)
  --clients    how many clients share that rate (default: as many as the rate, so each
               connects about once a second)
  --budget-ms  the servers' --redis-budget-ms (default 5)
  --cache-size the servers' --cache-size (default: serve's own, 20480)
  --workers    the servers' --workers (default: serve's own, 64)
  --sesscache  the sesscache binary (default target/release/sesscache in the workspace;
               build it with `cargo build --release -p sesscache-cli`)
  --json       the report as JSON instead of tables
  --check      exit 1 when a target fails (without it, any completed run exits 0)";

/// Servers per stack.
const SERVERS_PER_BACKEND: usize = 2;
/// How long the killed primary stays down before it is started again.
const DOWN: Duration = Duration::from_secs(1);
/// What the slowest handshake may take beyond the store's budget.
const SLOWEST_SLACK_MS: f64 = 50.0;
/// How soon after the restart resumption must be back.
const RECOVERY_TARGET_S: f64 = 5.0;
/// "Back": a one-second window after the restart resumes at least this share of what the
/// clients resumed before the faults.
const RECOVERED_SHARE: f64 = 0.9;
/// The most a server's memory may grow between the end of the warm-up and the end.
const MEMORY_GROWTH_TARGET: f64 = 0.10;
/// The tier's counters the report splits by phase (`sesscache_tier_<name>_total`).
const COUNTERS: [&str; 10] = [
    "timeouts",
    "skipped",
    "errors",
    "lost_tickets",
    "remote_hits",
    "remote_misses",
    "local_claims",
    "dropped_writes",
    "write_errors",
    "breaker_opens",
];
/// The tier's gauges, read every half second; the report gives each phase's highest.
const GAUGES: [&str; 2] = ["nodes_open", "in_flight"];

#[derive(Debug)]
struct Args {
    sesscache: PathBuf,
    duration: u64,
    rate: u32,
    clients: Option<usize>,
    budget_ms: u64,
    cache_size: Option<u64>,
    workers: Option<u64>,
    json: bool,
    check: bool,
}

fn usage(problem: &str) -> ! {
    eprintln!("soak: {problem}\n{USAGE}");
    std::process::exit(2);
}

fn number<T: std::str::FromStr>(name: &str, text: String) -> T {
    text.parse()
        .unwrap_or_else(|_| usage(&format!("{name} takes a number, not {text:?}")))
}

fn args() -> Args {
    let mut args = Args {
        sesscache: default_sesscache(),
        duration: 60,
        rate: 100,
        clients: None,
        budget_ms: 5,
        cache_size: None,
        workers: None,
        json: false,
        check: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .unwrap_or_else(|| usage(&format!("{name} needs a value")))
        };
        match arg.as_str() {
            "--duration" => args.duration = number("--duration", value("--duration")),
            "--rate" => args.rate = number("--rate", value("--rate")),
            "--clients" => args.clients = Some(number("--clients", value("--clients"))),
            "--budget-ms" => args.budget_ms = number("--budget-ms", value("--budget-ms")),
            "--cache-size" => args.cache_size = Some(number("--cache-size", value("--cache-size"))),
            "--workers" => args.workers = Some(number("--workers", value("--workers"))),
            "--sesscache" => args.sesscache = PathBuf::from(value("--sesscache")),
            "--json" => args.json = true,
            "--check" => args.check = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    if args.duration < 10 {
        usage("--duration must be at least 10 (the faults need room)");
    }
    if args.rate == 0 || args.clients == Some(0) || args.budget_ms == 0 {
        usage("--rate, --clients and --budget-ms must be above 0");
    }
    args
}

/// The phases, in order, each named by when it starts.
const PHASES: [&str; 6] = ["warm-up", "before", "hang", "between", "down", "after"];

/// When each phase started, in seconds since the clients started (`PHASES` order), and when
/// the clients stopped.
#[derive(Debug, Default, Clone)]
struct Timeline {
    starts: [f64; 6],
    end: f64,
}

impl Timeline {
    fn phase(&self, at: f64) -> usize {
        self.starts.iter().rposition(|&s| at >= s).unwrap_or(0)
    }
    fn range(&self, phase: usize) -> (f64, f64) {
        let end = self.starts.get(phase + 1).copied().unwrap_or(self.end);
        (self.starts[phase], end)
    }
}

/// Every server's samples at one moment.
type Scrape = Vec<BTreeMap<String, f64>>;

fn scrape_all(servers: &[Serve]) -> Scrape {
    servers.iter().map(Serve::scrape).collect()
}

/// A counter's sum over the servers.
fn total(scrape: &Scrape, counter: &str) -> f64 {
    let name = format!("sesscache_tier_{counter}_total");
    scrape.iter().filter_map(|s| s.get(&name)).sum()
}

/// A gauge's sum over the servers.
fn gauge(scrape: &Scrape, name: &str) -> f64 {
    let name = format!("sesscache_tier_{name}");
    scrape.iter().filter_map(|s| s.get(&name)).sum()
}

/// The counters whose course the report follows after the restart.
const COURSE: [&str; 3] = ["timeouts", "write_errors", "errors"];

/// What the servers' metrics showed every half second: each phase's highest gauges, and the
/// course of the [`COURSE`] counters.
#[derive(Debug)]
struct Watch {
    t0: Instant,
    highest: [[f64; GAUGES.len()]; PHASES.len()],
    /// (seconds since t0, each `COURSE` counter summed over the servers).
    course: Vec<(f64, [f64; COURSE.len()])>,
    /// Each server's VmRSS (KiB) at the last reading of each phase.
    rss: [Vec<Option<u64>>; PHASES.len()],
}

impl Watch {
    /// Sleeps until `at`, reading the servers' metrics every half second.
    fn until(&mut self, at: Instant, servers: &[Serve], phase: usize) {
        loop {
            let scrape = scrape_all(servers);
            for (h, name) in self.highest[phase].iter_mut().zip(GAUGES) {
                *h = h.max(gauge(&scrape, name));
            }
            self.rss[phase] = servers.iter().map(Serve::rss_kib).collect();
            let now = Instant::now();
            self.course.push((
                now.duration_since(self.t0).as_secs_f64(),
                COURSE.map(|name| total(&scrape, name)),
            ));
            if now >= at {
                return;
            }
            std::thread::sleep((at - now).min(Duration::from_millis(500)));
        }
    }

    /// For each `COURSE` counter, when (seconds after `from`) it last rose, if it rose after
    /// `from`.
    fn last_rise_after(&self, from: f64) -> [Option<f64>; COURSE.len()] {
        std::array::from_fn(|i| {
            self.course
                .windows(2)
                .filter(|w| w[1].0 > from && w[1].1[i] > w[0].1[i])
                .map(|w| w[1].0 - from)
                .next_back()
        })
    }
}

/// What one phase's connections came to.
#[derive(Debug, Default)]
struct PhaseFigures {
    connections: u64,
    failed_store: u64,
    failed_other: u64,
    resumed: u64,
    /// Successful connections and resumed ones per TLS version ([1.2, 1.3]).
    done_by_version: [u64; 2],
    resumed_by_version: [u64; 2],
    handshakes_us: Option<Histogram<u64>>,
}

impl PhaseFigures {
    fn add(&mut self, r: &Record) {
        self.connections += 1;
        let h = self
            .handshakes_us
            .get_or_insert_with(|| Histogram::new_with_bounds(1, 600_000_000, 3).expect("bounds"));
        if r.handshake_us > 0 {
            h.saturating_record(r.handshake_us);
        }
        let v = usize::from(r.tls13);
        match r.outcome {
            Ok(resumed) => {
                self.done_by_version[v] += 1;
                if resumed {
                    self.resumed += 1;
                    self.resumed_by_version[v] += 1;
                }
            }
            Err(_) if r.store_failure() => self.failed_store += 1,
            Err(_) => self.failed_other += 1,
        }
    }
    fn done(&self) -> u64 {
        self.done_by_version.iter().sum()
    }
    fn ratio(&self) -> f64 {
        ratio(self.resumed, self.done())
    }
    fn ms(&self, q: f64) -> f64 {
        self.handshakes_us.as_ref().map_or(0.0, |h| {
            if q >= 1.0 {
                h.max() as f64 / 1_000.0
            } else {
                h.value_at_quantile(q) as f64 / 1_000.0
            }
        })
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn main() {
    let args = args();
    match run(&args) {
        Ok(passed) => {
            if args.check && !passed {
                std::process::exit(1);
            }
        }
        Err(problem) => {
            eprintln!("soak: {problem}");
            std::process::exit(2);
        }
    }
}

/// Runs the soak and prints the report; whether every target passed.
fn run(args: &Args) -> Result<bool, String> {
    check_sesscache(&args.sesscache)?;
    let clients_n = args.clients.unwrap_or(args.rate as usize).max(4);
    let dir = tempfile::tempdir().map_err(|e| format!("a temporary directory: {e}"))?;
    let keys = dir.path().join("fleet.keys");
    keygen(&args.sesscache, &keys)?;
    let certificate = Certificate::make(dir.path())?;

    eprintln!("soak: starting a three-node Redis Cluster");
    let mut cluster = RedisCluster::start_with(&["--cluster-require-full-coverage", "no"]);
    let mut extra: Vec<String> = Vec::new();
    for url in cluster.urls() {
        extra.extend(["--redis".to_owned(), url]);
    }
    extra.extend(["--redis-keys".to_owned(), keys.display().to_string()]);
    extra.extend(["--redis-budget-ms".to_owned(), args.budget_ms.to_string()]);
    if let Some(size) = args.cache_size {
        extra.extend(["--cache-size".to_owned(), size.to_string()]);
    }
    if let Some(workers) = args.workers {
        extra.extend(["--workers".to_owned(), workers.to_string()]);
    }
    extra.extend(certificate.args());
    let mut servers = Vec::new();
    for (backend, name) in BACKENDS.iter().enumerate() {
        for i in 0..SERVERS_PER_BACKEND {
            let log = dir.path().join(format!("serve-{name}-{i}.log"));
            servers.push(Serve::start(&args.sesscache, backend, &extra, log)?);
        }
    }

    // Half on each stack, and within each, half on each TLS version.
    let clients: Arc<Vec<Client>> = Arc::new(
        (0..clients_n)
            .map(|i| Client::new(i % 2, (i / 2) % 2 == 1, &certificate.roots))
            .collect(),
    );
    let addrs: Vec<(usize, SocketAddr)> = servers.iter().map(|s| (s.backend, s.addr)).collect();

    // The clients: a scheduler at the fixed rate, a pool of threads that connect.
    let duration = Duration::from_secs(args.duration);
    let total_connections = u64::from(args.rate) * args.duration;
    let (jobs_tx, jobs_rx) = mpsc::channel::<(usize, SocketAddr)>();
    let jobs_rx = Arc::new(Mutex::new(jobs_rx));
    let (records_tx, records_rx) = mpsc::channel::<Record>();
    let load_start = loadavg();
    let t0 = Instant::now();
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let (jobs, records, clients) = (jobs_rx.clone(), records_tx.clone(), clients.clone());
            std::thread::spawn(move || {
                let mut busy = 0u64;
                loop {
                    let next = jobs.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    let Ok((c, addr)) = next else { return busy };
                    // A client still waiting on its last connection skips this one.
                    match clients[c].connect(addr, t0) {
                        Some(record) => {
                            let _ = records.send(record);
                        }
                        None => busy += 1,
                    }
                }
            })
        })
        .collect();
    drop(records_tx);
    let scheduler = {
        let (clients_n, rate) = (clients_n, f64::from(args.rate));
        std::thread::spawn(move || {
            let mut rng = SmallRng::seed_from_u64(0x50a4);
            let mut late = Duration::ZERO;
            for i in 0..total_connections {
                let due = t0 + Duration::from_secs_f64(i as f64 / rate);
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                } else {
                    late = late.max(now - due);
                }
                let c = (i as usize) % clients_n;
                let backend = c % 2;
                let choices: Vec<SocketAddr> = addrs
                    .iter()
                    .filter(|(b, _)| *b == backend)
                    .map(|&(_, a)| a)
                    .collect();
                let addr = choices[rng.random_range(0..choices.len())];
                if jobs_tx.send((c, addr)).is_err() {
                    break;
                }
            }
            late
        })
    };

    // The faults, at fixed shares of the duration.
    let d = args.duration as f64;
    let at = |share: f64| t0 + Duration::from_secs_f64(d * share);
    let mut timeline = Timeline::default();
    let mut snapshots: Vec<Scrape> = Vec::new();
    let mut watch = Watch {
        t0,
        highest: [[0.0; GAUGES.len()]; PHASES.len()],
        course: Vec::new(),
        rss: Default::default(),
    };
    let mut rss_start = Vec::new();
    let hung_port = cluster.nodes()[0].port();
    let since = |i: Instant| i.duration_since(t0).as_secs_f64();
    snapshots.push(scrape_all(&servers));
    eprintln!("soak: clients running for {} s", args.duration);

    watch.until(at(1.0 / 12.0), &servers, 0);
    timeline.starts[1] = since(Instant::now());
    snapshots.push(scrape_all(&servers));
    rss_start.extend(servers.iter().map(Serve::rss_kib));

    watch.until(at(1.0 / 3.0), &servers, 1);
    eprintln!("soak: hanging the primary on port {hung_port} (SIGSTOP)");
    snapshots.push(scrape_all(&servers));
    cluster.nodes()[0].hang();
    timeline.starts[2] = since(Instant::now());

    watch.until(at(0.5), &servers, 2);
    snapshots.push(scrape_all(&servers));
    cluster.nodes()[0].resume();
    timeline.starts[3] = since(Instant::now());
    eprintln!("soak: primary resumed (SIGCONT)");

    watch.until(at(2.0 / 3.0), &servers, 3);
    eprintln!("soak: killing the primary on port {hung_port}, restarting it on its port");
    snapshots.push(scrape_all(&servers));
    cluster.nodes_mut()[0].kill();
    timeline.starts[4] = since(Instant::now());
    watch.until(Instant::now() + DOWN, &servers, 4);
    cluster.nodes_mut()[0].restart_in_place(Duration::ZERO);
    timeline.starts[5] = since(Instant::now());
    snapshots.push(scrape_all(&servers));

    watch.until(t0 + duration, &servers, 5);
    let late = scheduler.join().map_err(|_| "the scheduler panicked")?;
    let mut skipped_busy = 0;
    for worker in workers {
        skipped_busy += worker.join().map_err(|_| "a client thread panicked")?;
    }
    timeline.end = since(Instant::now());
    snapshots.push(scrape_all(&servers));
    let rss_end: Vec<Option<u64>> = servers.iter().map(Serve::rss_kib).collect();
    let cluster_state: Vec<bool> = cluster
        .nodes()
        .iter()
        .map(|n| {
            n.command(&["CLUSTER", "INFO"])
                .is_some_and(|r| r.contains("cluster_state:ok"))
        })
        .collect();
    let failed_logged: Vec<usize> = servers.iter().map(Serve::failed_in_log).collect();
    for server in &mut servers {
        server.stop();
    }
    drop(cluster);

    let records: Vec<Record> = records_rx.into_iter().collect();
    let last_rise = watch.last_rise_after(timeline.starts[5]);
    let rss_by_phase = watch.rss.clone();
    let report = Report {
        args,
        clients: clients_n,
        timeline,
        records,
        snapshots,
        highest: watch.highest,
        last_rise,
        rss_by_phase,
        rss_start,
        rss_end,
        servers: servers.iter().map(|s| (s.backend, s.pid())).collect(),
        failed_logged,
        skipped_busy,
        late,
        hung_port,
        cluster_ok_at_end: cluster_state.iter().all(|&ok| ok),
        load: (load_start, loadavg()),
    };
    let targets = report.targets();
    if args.json {
        println!("{:#}", report.json(&targets));
    } else {
        print!("{}", report.text(&targets));
    }
    Ok(targets.iter().all(|t| t.passed))
}

/// The first three fields of /proc/loadavg.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A target: what it asks, what was measured, whether it holds.
#[derive(Debug)]
struct Target {
    name: &'static str,
    measured: String,
    passed: bool,
}

struct Report<'a> {
    args: &'a Args,
    clients: usize,
    timeline: Timeline,
    records: Vec<Record>,
    /// At the start, then at the start of each phase after the warm-up (before the fault
    /// that opens it), after the restart, and at the end.
    snapshots: Vec<Scrape>,
    highest: [[f64; GAUGES.len()]; PHASES.len()],
    /// When each `COURSE` counter last rose after the restart, in seconds after it.
    last_rise: [Option<f64>; COURSE.len()],
    rss_start: Vec<Option<u64>>,
    rss_end: Vec<Option<u64>>,
    /// Each server's VmRSS (KiB) at the end of each phase.
    rss_by_phase: [Vec<Option<u64>>; PHASES.len()],
    servers: Vec<(usize, u32)>,
    failed_logged: Vec<usize>,
    skipped_busy: u64,
    late: Duration,
    hung_port: u16,
    cluster_ok_at_end: bool,
    /// The machine's load averages (/proc/loadavg) when the clients started and at the end.
    load: (String, String),
}

impl Report<'_> {
    fn phases(&self) -> Vec<PhaseFigures> {
        let mut phases: Vec<PhaseFigures> =
            (0..PHASES.len()).map(|_| PhaseFigures::default()).collect();
        for r in &self.records {
            phases[self.timeline.phase(r.at)].add(r);
        }
        phases
    }

    fn all(&self) -> PhaseFigures {
        let mut all = PhaseFigures::default();
        for r in &self.records {
            all.add(r);
        }
        all
    }

    /// The counters' increase over each phase, summed over the servers (`COUNTERS` order).
    fn counter_deltas(&self) -> Vec<[f64; COUNTERS.len()]> {
        // snapshots: [start, warm, hang, cont, kill, restarted, end]; phase p runs from
        // snapshot p to snapshot p + 1.
        (0..PHASES.len())
            .map(|p| {
                let mut row = [0.0; COUNTERS.len()];
                for (v, name) in row.iter_mut().zip(COUNTERS) {
                    *v = total(&self.snapshots[p + 1], name) - total(&self.snapshots[p], name);
                }
                row
            })
            .collect()
    }

    /// The sessions server `i` cached at snapshot `at`.
    fn cached(&self, at: usize, i: usize) -> u64 {
        self.snapshots[at][i]
            .get("sesscache_sessions")
            .copied()
            .unwrap_or(0.0) as u64
    }

    /// The resumption ratio of each second after the restart.
    fn recovery(&self) -> Vec<f64> {
        let from = self.timeline.starts[5];
        let seconds = (self.timeline.end - from).floor().max(0.0) as usize;
        let mut done = vec![0u64; seconds];
        let mut resumed = vec![0u64; seconds];
        for r in &self.records {
            if r.at < from {
                continue;
            }
            let s = (r.at - from) as usize;
            if let (Some(d), Ok(res)) = (done.get_mut(s), &r.outcome) {
                *d += 1;
                resumed[s] += u64::from(*res);
            }
        }
        done.iter()
            .zip(&resumed)
            .map(|(&d, &r)| ratio(r, d))
            .collect()
    }

    fn targets(&self) -> Vec<Target> {
        let all = self.all();
        let phases = self.phases();
        let store_failures = all.failed_store;
        let budget = self.args.budget_ms as f64;
        let slowest = all.ms(1.0);
        let before = phases[1].ratio();
        let recovery = self.recovery();
        let threshold = RECOVERED_SHARE * before;
        // Back: the first second after the restart from which every second resumes at least
        // the threshold.
        let back = recovery
            .iter()
            .rposition(|&r| r < threshold)
            .map_or(0, |last_low| last_low + 1);
        let back = (back < recovery.len()).then_some(back + 1);
        let growth: Vec<f64> = self
            .rss_start
            .iter()
            .zip(&self.rss_end)
            .filter_map(|(s, e)| Some((*e)? as f64 / (*s)? as f64 - 1.0))
            .collect();
        let worst_growth = growth.iter().copied().fold(f64::MIN, f64::max);
        vec![
            Target {
                name: "no failed handshake caused by the store",
                measured: format!(
                    "{store_failures} failed with a session offered, {} other failures",
                    all.failed_other
                ),
                passed: store_failures == 0,
            },
            Target {
                name: "slowest handshake within the budget + 50 ms",
                measured: format!(
                    "{slowest:.1} ms (limit {:.1} ms)",
                    budget + SLOWEST_SLACK_MS
                ),
                passed: slowest <= budget + SLOWEST_SLACK_MS,
            },
            Target {
                name: "resumption back within 5 s of the restart",
                measured: match back {
                    Some(s) => format!(
                        "from {} s after it on, every second resumes at least {threshold:.3} (0.9 x {before:.3}, the ratio before the faults)",
                        s - 1
                    ),
                    None => format!(
                        "not back in the {} s measured (threshold {threshold:.3}, 0.9 x {before:.3} before the faults)",
                        recovery.len()
                    ),
                },
                passed: back.is_some_and(|s| (s - 1) as f64 <= RECOVERY_TARGET_S),
            },
            Target {
                name: "each server's memory grows under 10%",
                measured: if growth.len() == self.servers.len() {
                    format!("highest growth {:+.1}%", worst_growth * 100.0)
                } else {
                    "a server's VmRSS could not be read".to_owned()
                },
                passed: growth.len() == self.servers.len() && worst_growth < MEMORY_GROWTH_TARGET,
            },
        ]
    }

    /// The failures, grouped by kind and message, most frequent first.
    fn failure_kinds(&self) -> Vec<(String, u64)> {
        let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
        for r in &self.records {
            if let Err((stage, error)) = &r.outcome {
                let kind = format!(
                    "{} {} {}{}: {error}",
                    if r.store_failure() { "store" } else { "other" },
                    BACKENDS[r.backend],
                    if r.tls13 { "TLS1.3" } else { "TLS1.2" },
                    match stage {
                        Stage::Connect => " at connect",
                        Stage::Handshake if r.offered => " in a handshake with an offer",
                        Stage::Handshake => " in a full handshake",
                        Stage::Answer => " after the handshake",
                    }
                );
                *kinds.entry(kind).or_default() += 1;
            }
        }
        let mut kinds: Vec<_> = kinds.into_iter().collect();
        kinds.sort_by_key(|kind| std::cmp::Reverse(kind.1));
        kinds
    }

    fn text(&self, targets: &[Target]) -> String {
        let mut out = String::new();
        let t = &self.timeline;
        let _ = writeln!(
            out,
            "soak: {} s at {} handshakes/s from {} clients (half TLS 1.2, half TLS 1.3), {} servers (2 rustls, 2 OpenSSL), a 3-node Redis Cluster, budget {} ms",
            self.args.duration,
            self.args.rate,
            self.clients,
            self.servers.len(),
            self.args.budget_ms
        );
        let _ = writeln!(
            out,
            "faults: the primary on port {} hung {:.1}-{:.1} s, killed at {:.1} s, answering again at {:.1} s; cluster_state ok on every node at the end: {}",
            self.hung_port,
            t.starts[2],
            t.starts[3],
            t.starts[4],
            t.starts[5],
            if self.cluster_ok_at_end { "yes" } else { "no" }
        );
        let _ = writeln!(
            out,
            "load average (1, 5, 15 min): {} at the start, {} at the end",
            self.load.0, self.load.1
        );
        let _ = writeln!(
            out,
            "\n{:<8} {:>13} {:>8} {:>12} {:>8} {:>7} {:>7} {:>8} {:>8} {:>8}",
            "phase",
            "seconds",
            "conns",
            "failed s/o",
            "resumed",
            "TLS1.2",
            "TLS1.3",
            "p50 ms",
            "p99 ms",
            "max ms"
        );
        let phases = self.phases();
        let all = self.all();
        let mut row = |name: &str, range: String, f: &PhaseFigures| {
            let _ = writeln!(
                out,
                "{name:<8} {range:>13} {:>8} {:>12} {:>8.3} {:>7.3} {:>7.3} {:>8.2} {:>8.2} {:>8.2}",
                f.connections,
                format!("{}/{}", f.failed_store, f.failed_other),
                f.ratio(),
                ratio(f.resumed_by_version[0], f.done_by_version[0]),
                ratio(f.resumed_by_version[1], f.done_by_version[1]),
                f.ms(0.5),
                f.ms(0.99),
                f.ms(1.0),
            );
        };
        for (p, f) in phases.iter().enumerate() {
            let (from, to) = t.range(p);
            row(PHASES[p], format!("{from:.1}-{to:.1}"), f);
        }
        row("all", format!("0.0-{:.1}", t.end), &all);
        let _ = writeln!(
            out,
            "(failed s/o: failed with a session offered in the handshake, the store's share / every other failure; resumed: of the connections that got an answer; handshake times include the TCP connect)"
        );

        let _ = writeln!(out, "\nthe tier's counters per phase, all four servers:");
        let _ = write!(out, "{:<8}", "phase");
        for name in COUNTERS.iter().chain(&GAUGES) {
            let _ = write!(
                out,
                " {:>14}",
                if GAUGES.contains(name) {
                    format!("{name} max")
                } else {
                    (*name).to_owned()
                }
            );
        }
        let _ = writeln!(out);
        for (p, deltas) in self.counter_deltas().iter().enumerate() {
            let _ = write!(out, "{:<8}", PHASES[p]);
            for v in deltas.iter().chain(&self.highest[p]) {
                let _ = write!(out, " {v:>14}");
            }
            let _ = writeln!(out);
        }

        let recovery = self.recovery();
        let _ = writeln!(
            out,
            "\nresumption in each second after the restart: {}",
            recovery
                .iter()
                .map(|r| format!("{r:.2}"))
                .collect::<Vec<_>>()
                .join(" ")
        );

        let _ = writeln!(
            out,
            "after the restart, the counters last rose (read every 0.5 s): {}",
            COURSE
                .iter()
                .zip(self.last_rise)
                .map(|(name, at)| match at {
                    Some(at) => format!("{name} at +{at:.1} s"),
                    None => format!("{name} never"),
                })
                .collect::<Vec<_>>()
                .join(", ")
        );

        let kinds = self.failure_kinds();
        if !kinds.is_empty() {
            let _ = writeln!(out, "\nfailures:");
            for (kind, n) in kinds.iter().take(12) {
                let _ = writeln!(out, "  {n:>6}  {kind}");
            }
        }
        let _ = writeln!(
            out,
            "handshakes the servers logged as failed: {}; connections skipped (the client still busy): {}; the scheduler's worst lateness: {:.1} ms",
            self.failed_logged.iter().sum::<usize>(),
            self.skipped_busy,
            self.late.as_secs_f64() * 1_000.0
        );

        let _ = writeln!(
            out,
            "\nmemory (VmRSS, KiB; start = the end of the warm-up) and the sessions each server caches:"
        );
        for (i, (backend, pid)) in self.servers.iter().enumerate() {
            let (s, e) = (self.rss_start[i], self.rss_end[i]);
            let growth = match (s, e) {
                (Some(s), Some(e)) => format!("{:+.1}%", (e as f64 / s as f64 - 1.0) * 100.0),
                _ => "?".to_owned(),
            };
            let show = |v: Option<u64>| v.map_or_else(|| "?".to_owned(), |v| v.to_string());
            let (cached_start, cached_end) = (self.cached(1, i), self.cached(6, i));
            let per_session = match (s, e) {
                (Some(s), Some(e)) if cached_end > cached_start => format!(
                    "{:.0} B of RSS per session added",
                    (e as f64 - s as f64) * 1024.0 / (cached_end - cached_start) as f64
                ),
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "  serve {:<7} pid {pid:>7}  start {:>8}  end {:>8}  {growth:>7}   sessions {cached_start:>6} -> {cached_end:>6}  {per_session}",
                BACKENDS[*backend],
                show(s),
                show(e)
            );
        }

        let _ = write!(out, "VmRSS (KiB) at the end of each phase:\n  {:<21}", "");
        for phase in PHASES {
            let _ = write!(out, " {phase:>8}");
        }
        let _ = writeln!(out);
        for (i, (backend, pid)) in self.servers.iter().enumerate() {
            let _ = write!(out, "  serve {:<7} pid {pid:>7}", BACKENDS[*backend]);
            for phase in &self.rss_by_phase {
                let v = phase.get(i).copied().flatten();
                let _ = write!(
                    out,
                    " {:>8}",
                    v.map_or_else(|| "?".to_owned(), |v| v.to_string())
                );
            }
            let _ = writeln!(out);
        }

        let _ = writeln!(out, "\ntargets:");
        for target in targets {
            let _ = writeln!(
                out,
                "  {}  {}: {}",
                if target.passed { "PASS" } else { "FAIL" },
                target.name,
                target.measured
            );
        }
        out
    }

    fn json(&self, targets: &[Target]) -> serde_json::Value {
        let t = &self.timeline;
        let deltas = self.counter_deltas();
        let phases: Vec<_> = self
            .phases()
            .iter()
            .enumerate()
            .map(|(p, f)| {
                let (from, to) = t.range(p);
                let counters: serde_json::Map<_, _> = COUNTERS
                    .iter()
                    .zip(deltas[p])
                    .map(|(name, v)| ((*name).to_owned(), json!(v)))
                    .chain(
                        GAUGES
                            .iter()
                            .zip(self.highest[p])
                            .map(|(name, v)| (format!("{name}_max"), json!(v))),
                    )
                    .collect();
                json!({
                    "phase": PHASES[p],
                    "from_s": from,
                    "to_s": to,
                    "connections": f.connections,
                    "failed_store": f.failed_store,
                    "failed_other": f.failed_other,
                    "resumed_ratio": f.ratio(),
                    "resumed_ratio_tls12": ratio(f.resumed_by_version[0], f.done_by_version[0]),
                    "resumed_ratio_tls13": ratio(f.resumed_by_version[1], f.done_by_version[1]),
                    "handshake_ms": {"p50": f.ms(0.5), "p99": f.ms(0.99), "max": f.ms(1.0)},
                    "tier": counters,
                })
            })
            .collect();
        let all = self.all();
        json!({
            "duration_s": self.args.duration,
            "rate": self.args.rate,
            "clients": self.clients,
            "budget_ms": self.args.budget_ms,
            "hung_port": self.hung_port,
            "cluster_ok_at_end": self.cluster_ok_at_end,
            "loadavg_start": self.load.0,
            "loadavg_end": self.load.1,
            "connections": all.connections,
            "failed_store": all.failed_store,
            "failed_other": all.failed_other,
            "slowest_handshake_ms": all.ms(1.0),
            "phases": phases,
            "recovery_ratio_per_second": self.recovery(),
            "after_restart_last_rise_s": COURSE.iter().zip(self.last_rise).map(|(name, at)| ((*name).to_owned(), json!(at))).collect::<serde_json::Map<_, _>>(),
            "failures": self.failure_kinds().iter().map(|(k, n)| json!({"kind": k, "count": n})).collect::<Vec<_>>(),
            "failed_logged_by_servers": self.failed_logged.iter().sum::<usize>(),
            "skipped_busy": self.skipped_busy,
            "scheduler_late_ms": self.late.as_secs_f64() * 1_000.0,
            "servers": self.servers.iter().enumerate().map(|(i, (b, pid))| json!({
                "backend": BACKENDS[*b], "pid": pid,
                "rss_kib_start": self.rss_start[i], "rss_kib_end": self.rss_end[i],
                "sessions_start": self.cached(1, i), "sessions_end": self.cached(6, i),
                "rss_kib_by_phase_end": self.rss_by_phase.iter().map(|p| p.get(i).copied().flatten()).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "targets": targets.iter().map(|t| json!({"target": t.name, "measured": t.measured, "pass": t.passed})).collect::<Vec<_>>(),
        })
    }
}
