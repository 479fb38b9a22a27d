//! Synthetic workloads: clients that connect again and again, through simulated `ctx`
//! connections, to one server context or to several behind a load balancer, on a simulated
//! clock.
//!
//! Worker threads each run client/server connection pairs; a client that holds a session
//! offers it (as often as [`Workload::resumption_ratio`] says), and the server resumes it if
//! its cache (or the fleet tier behind it) still has it. Client sessions live in one slot per
//! client. The calling thread is the control thread: it moves the clock (with
//! [`Pace::Scale`]), flushes on the interval, reports [`Progress`] and stops the run.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use ctx::{Context, ContextConfig, Role};
use hdrhistogram::Histogram;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution as _, Zipf};
use sesscache_redis::{Tier, TierStats};
use session_cache::{CacheConfig, CacheMode, Stats};
use session_core::{Clock, ManualClock, ProtocolVersion, Session};

use crate::timeline::{self, Seconds};
use crate::Error;

/// How clients are picked for each connection.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Distribution {
    /// Every client equally often.
    Uniform,
    /// A few clients much more often than the rest: Zipf's law with this exponent.
    Zipf {
        /// The exponent (positive; 1 is the classic law).
        exponent: f64,
    },
}

/// How the simulated clock moves.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Pace {
    /// Simulated seconds per real second.
    Scale(f64),
    /// Connections per simulated second, however fast the machine runs them.
    Rate(f64),
}

impl fmt::Display for Pace {
    /// The pace in words: `6000 simulated seconds per real second`, `200 connections per
    /// simulated second`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Scale(scale) => write!(f, "{scale} simulated seconds per real second"),
            Self::Rate(rate) => write!(f, "{rate} connections per simulated second"),
        }
    }
}

/// When a run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stop {
    /// After this much real time.
    After(Duration),
    /// After this many connections.
    Connections(u64),
}

/// The simulated clock's time at the start of a run, in Unix seconds.
const START_TIME: u64 = 1_700_000_000;

/// A synthetic workload: who connects, how often they offer a session, and the servers'
/// caches.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    /// Threads running connections (at least 1).
    pub threads: usize,
    /// Server contexts behind a load balancer that picks one at random for each connection,
    /// each with its own cache (at least 1).
    pub servers: usize,
    /// Distinct clients; each keeps the last session it got (at least 1).
    pub clients: u64,
    /// How often a client that holds a session offers it (0 to 1).
    pub resumption_ratio: f64,
    /// How often a connection ends without a clean shutdown, which removes its session (0
    /// to 1).
    pub unclean_ratio: f64,
    /// How clients are picked.
    pub distribution: Distribution,
    /// The TLS version handshakes negotiate.
    pub version: ProtocolVersion,
    /// The servers' cache mode.
    pub mode: CacheMode,
    /// The session timeout, in simulated seconds.
    pub timeout: u64,
    /// Each server cache's size limit (0 for none).
    pub cache_size: usize,
    /// Flush expired sessions every this many simulated seconds (0: never; the automatic
    /// flush every 255 handshakes still runs unless the mode says otherwise).
    pub flush_interval: u64,
    /// How the simulated clock moves.
    pub pace: Pace,
    /// When the run ends.
    pub stop: Stop,
    /// Seed of the client choices: runs with the same seed and one thread make the same
    /// choices.
    pub seed: u64,
    /// Count offers and hits per simulated second, for [`Report::timeline`].
    pub timeline: bool,
}

impl Default for Workload {
    /// One server, one thread per core, 50000 clients picked by Zipf's law, 80% of sessions
    /// offered, TLS 1.3, a cache of 20480 sessions for 300 s, a flush a minute, 6000
    /// simulated seconds per real second, for 10 s.
    fn default() -> Self {
        Self {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            servers: 1,
            clients: 50_000,
            resumption_ratio: 0.8,
            unclean_ratio: 0.01,
            distribution: Distribution::Zipf { exponent: 1.0 },
            version: ProtocolVersion::TLS1_3,
            mode: CacheMode::SERVER,
            timeout: 300,
            cache_size: 20_480,
            flush_interval: 60,
            pace: Pace::Scale(6_000.0),
            stop: Stop::After(Duration::from_secs(10)),
            seed: 1,
            timeline: false,
        }
    }
}

impl Workload {
    /// Why this workload cannot run, if it cannot.
    fn check(&self, tiers: usize) -> Result<(), String> {
        let ratio = |name: &str, v: f64| {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(format!("{name} {v} is not between 0 and 1"))
            }
        };
        ratio("the resumption ratio", self.resumption_ratio)?;
        ratio("the unclean ratio", self.unclean_ratio)?;
        if self.threads == 0 || self.servers == 0 || self.clients == 0 {
            return Err("a workload needs a thread, a server and a client at least".to_owned());
        }
        let (Pace::Scale(pace) | Pace::Rate(pace)) = self.pace;
        if !(pace.is_finite() && pace > 0.0) {
            return Err(format!("the pace {pace} is not a positive number"));
        }
        if tiers != 0 && tiers != self.servers {
            return Err(format!(
                "{tiers} fleet tiers for {} servers: give one per server, or none",
                self.servers
            ));
        }
        Ok(())
    }
}

/// How far a run is, as the control thread reports it every 10 ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// Connections started so far (with [`Stop::Connections`], at most that many).
    pub connections: u64,
    /// Real time since the run started (with [`Stop::After`], at most that long).
    pub elapsed: Duration,
}

/// The cache work of one handshake (both ends), as percentiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Latency {
    /// The median.
    pub p50: Duration,
    /// The 90th percentile.
    pub p90: Duration,
    /// The 99th percentile.
    pub p99: Duration,
    /// The 99.9th percentile.
    pub p999: Duration,
    /// The slowest.
    pub max: Duration,
}

/// What a run did.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Report {
    /// Threads that ran connections.
    pub threads: usize,
    /// Server contexts.
    pub servers: usize,
    /// How the simulated clock moved.
    pub pace: Pace,
    /// Real time the run took.
    pub elapsed: Duration,
    /// Simulated time the run took, in seconds.
    pub simulated_seconds: u64,
    /// Connections made.
    pub connections: u64,
    /// Connections that resumed a session.
    pub resumed: u64,
    /// Connections whose client offered a session.
    pub offers: u64,
    /// The servers' caches' statistics, added up.
    pub stats: Stats,
    /// The servers' fleet tiers' counters, added up, if they had tiers.
    pub tier: Option<TierStats>,
    /// Timed flushes (each of every server's cache).
    pub flushes: u64,
    /// Sessions the timed flushes removed.
    pub flushed_sessions: u64,
    /// Connections that ended without a clean shutdown.
    pub unclean_drops: u64,
    /// The most sessions one server's cache held, as seen after each connection.
    pub peak_cache_size: usize,
    /// Each server cache's size limit.
    pub cache_size_limit: usize,
    /// The cache work of one handshake.
    pub latency: Latency,
    /// (simulated seconds since the start to the window's middle, hit ratio) per window of
    /// time with an offer, at most 50 windows; empty unless [`Workload::timeline`].
    pub timeline: Vec<(f64, f64)>,
}

impl Report {
    /// Connections that did not resume.
    pub fn full_handshakes(&self) -> u64 {
        self.connections - self.resumed
    }

    /// Hits on a session the server's own cache did not hold: the fleet tier's.
    pub fn remote_hits(&self) -> u64 {
        self.stats.cb_hits.min(self.stats.hits)
    }

    /// Hits the server's own cache answered.
    pub fn local_hits(&self) -> u64 {
        self.stats.hits - self.remote_hits()
    }

    /// `hits` over the offers (0 without an offer).
    pub fn share_of_offers(&self, hits: u64) -> f64 {
        if self.offers == 0 {
            0.0
        } else {
            hits as f64 / self.offers as f64
        }
    }

    /// All hits over the offers.
    pub fn hit_ratio(&self) -> f64 {
        self.share_of_offers(self.stats.hits)
    }

    /// Connections per real second.
    pub fn handshakes_per_second(&self) -> f64 {
        self.connections as f64 / self.elapsed.as_secs_f64()
    }
}

/// The counts the workers keep.
#[derive(Default)]
struct Totals {
    connections: AtomicU64,
    resumed: AtomicU64,
    offers: AtomicU64,
    unclean: AtomicU64,
    peak: AtomicUsize,
}

fn context(
    version: ProtocolVersion,
    mode: CacheMode,
    size: usize,
    timeout: u64,
    clock: Arc<ManualClock>,
) -> Context {
    Context::new(ContextConfig {
        version,
        cache: CacheConfig {
            size,
            mode,
            timeout,
            clock,
            ..CacheConfig::default()
        },
        ..ContextConfig::default()
    })
}

fn latency_histogram() -> Result<Histogram<u64>, Error> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3)
        .map_err(|e| Error::Inconsistent(format!("making a latency histogram: {e}")))
}

/// Runs `workload`, calling `progress` on this thread every 10 ms until it ends. `tiers` are
/// the servers' fleet tiers, one per server (attached to its cache here), or none.
pub fn run(
    workload: &Workload,
    tiers: &[Tier],
    mut progress: impl FnMut(Progress),
) -> Result<Report, Error> {
    workload.check(tiers.len()).map_err(Error::Workload)?;
    let w = workload;
    let zipf = match w.distribution {
        Distribution::Zipf { exponent } => Some(
            Zipf::new(w.clients as f64, exponent)
                .map_err(|e| Error::Workload(format!("bad Zipf parameters: {e}")))?,
        ),
        Distribution::Uniform => None,
    };
    let limit = match w.stop {
        Stop::Connections(n) => Some(n),
        Stop::After(_) => None,
    };
    let clock = Arc::new(ManualClock::new(START_TIME));
    let servers: Vec<Context> = (0..w.servers)
        .map(|_| context(w.version, w.mode, w.cache_size, w.timeout, clock.clone()))
        .collect();
    for (tier, server) in tiers.iter().zip(&servers) {
        tier.attach(server.cache());
    }
    let client = context(w.version, CacheMode::OFF, 0, w.timeout, clock.clone());
    let slots: Vec<Mutex<Option<Session>>> = (0..w.clients).map(|_| Mutex::new(None)).collect();

    let totals = Totals::default();
    let stop = AtomicBool::new(false);
    let mut flushes = 0u64;
    let mut flushed = 0u64;
    let barrier = Barrier::new(w.threads + 1);

    let (elapsed, latency, seconds) = std::thread::scope(|scope| -> Result<_, Error> {
        let workers: Vec<_> = (0..w.threads as u64)
            .map(|t| {
                let (servers, client, slots, totals, stop, barrier, zipf, clock) = (
                    &servers, &client, &slots, &totals, &stop, &barrier, &zipf, &clock,
                );
                scope.spawn(move || -> Result<(Histogram<u64>, Seconds), Error> {
                    let mut rng = SmallRng::seed_from_u64(w.seed.wrapping_add(t));
                    let mut seconds = Seconds::new();
                    // Made before the barrier, so that a failure here cannot leave the
                    // control thread waiting for this worker.
                    let hist = latency_histogram();
                    barrier.wait();
                    let mut hist = hist?;
                    while !stop.load(Ordering::Relaxed) {
                        let n = totals.connections.fetch_add(1, Ordering::Relaxed);
                        if limit.is_some_and(|limit| n >= limit) {
                            break;
                        }
                        if let Pace::Rate(rate) = w.pace {
                            clock.advance_to(START_TIME + (n as f64 / rate) as u64);
                        }
                        let k = match zipf {
                            Some(z) => (z.sample(&mut rng) as u64).clamp(1, w.clients) - 1,
                            None => rng.random_range(0..w.clients),
                        };
                        // The load balancer: any server, at random.
                        let server = &servers[rng.random_range(0..servers.len())];
                        let slot = &slots[k as usize];
                        let held = slot.lock().unwrap_or_else(|e| e.into_inner()).clone();
                        let offer = held.filter(|_| rng.random_bool(w.resumption_ratio));
                        let mut c = client.new_connection(Role::Client);
                        let mut s = server.new_connection(Role::Server);
                        c.set_session(offer.as_ref());
                        let began = Instant::now();
                        let sent = c.connect(&mut s).map_err(|source| Error::Handshake {
                            replayed: false,
                            source,
                        })?;
                        let took = began.elapsed().as_nanos() as u64;
                        if !sent.session_id.is_empty() {
                            totals.offers.fetch_add(1, Ordering::Relaxed);
                        }
                        hist.saturating_record(took.max(1));
                        if s.session_reused() {
                            totals.resumed.fetch_add(1, Ordering::Relaxed);
                        }
                        if w.timeline && !sent.session_id.is_empty() {
                            let second = clock.now() - START_TIME;
                            timeline::count_offer(&mut seconds, second, s.session_reused());
                        }
                        *slot.lock().unwrap_or_else(|e| e.into_inner()) = c.session_owned();
                        if rng.random_bool(w.unclean_ratio) {
                            totals.unclean.fetch_add(1, Ordering::Relaxed);
                        } else {
                            s.shutdown();
                        }
                        c.shutdown();
                        drop(s);
                        totals
                            .peak
                            .fetch_max(server.cache().len(), Ordering::Relaxed);
                    }
                    Ok((hist, seconds))
                })
            })
            .collect();

        barrier.wait();
        let began = Instant::now();
        let mut last_flush = START_TIME;
        let mut done_workers = false;
        while !done_workers {
            std::thread::sleep(Duration::from_millis(10));
            let real = began.elapsed();
            if let Pace::Scale(scale) = w.pace {
                clock.set(START_TIME + (real.as_secs_f64() * scale) as u64);
            }
            let now = clock.now();
            if w.flush_interval > 0 && now - last_flush >= w.flush_interval {
                last_flush = now;
                flushes += 1;
                for server in &servers {
                    flushed += server.cache().flush() as u64;
                }
            }
            let connections = totals.connections.load(Ordering::Relaxed);
            progress(match w.stop {
                Stop::Connections(limit) => Progress {
                    connections: connections.min(limit),
                    elapsed: real,
                },
                Stop::After(deadline) => Progress {
                    connections,
                    elapsed: real.min(deadline),
                },
            });
            if matches!(w.stop, Stop::After(deadline) if real >= deadline) {
                stop.store(true, Ordering::Relaxed);
            }
            done_workers = workers.iter().all(|w| w.is_finished());
        }
        let elapsed = began.elapsed();
        let mut merged = latency_histogram()?;
        let mut seconds = Seconds::new();
        for worker in workers {
            let (hist, theirs) = worker.join().map_err(|_| Error::WorkerPanicked)??;
            merged
                .add(&hist)
                .map_err(|e| Error::Inconsistent(format!("merging latencies: {e}")))?;
            for (second, counts) in theirs {
                timeline::add(&mut seconds, second, counts);
            }
        }
        Ok((elapsed, merged, seconds))
    })?;

    let stats = servers
        .iter()
        .map(|s| s.cache().stats())
        .reduce(|a, b| a + b)
        .expect("at least one server");
    let connections = totals
        .connections
        .load(Ordering::Relaxed)
        .min(limit.unwrap_or(u64::MAX));
    if stats.accept_good != connections {
        return Err(Error::Inconsistent(format!(
            "{connections} connections but {} good handshakes",
            stats.accept_good
        )));
    }
    let at = |q: f64| Duration::from_nanos(latency.value_at_quantile(q));
    Ok(Report {
        threads: w.threads,
        servers: servers.len(),
        pace: w.pace,
        elapsed,
        simulated_seconds: clock.now() - START_TIME,
        connections,
        resumed: totals.resumed.load(Ordering::Relaxed),
        offers: totals.offers.load(Ordering::Relaxed),
        stats,
        tier: tiers.iter().map(Tier::stats).reduce(|a, b| a.merged(&b)),
        flushes,
        flushed_sessions: flushed,
        unclean_drops: totals.unclean.load(Ordering::Relaxed),
        peak_cache_size: totals.peak.load(Ordering::Relaxed),
        cache_size_limit: w.cache_size,
        latency: Latency {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            p999: at(0.999),
            max: Duration::from_nanos(latency.max()),
        },
        timeline: timeline::over_time(&seconds),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Workload {
        Workload {
            threads: 1,
            clients: 200,
            cache_size: 100,
            pace: Pace::Rate(100.0),
            stop: Stop::Connections(3_000),
            ..Workload::default()
        }
    }

    #[test]
    fn one_thread_and_one_seed_make_the_same_run() {
        let a = run(&small(), &[], |_| {}).unwrap();
        let b = run(&small(), &[], |_| {}).unwrap();
        assert_eq!(a.connections, 3_000);
        assert_eq!(
            (a.resumed, a.offers, a.stats),
            (b.resumed, b.offers, b.stats)
        );
        assert_eq!(a.simulated_seconds, 29, "3000 connections at 100 a second");
    }

    #[test]
    fn every_figure_adds_up() {
        let r = run(&small(), &[], |_| {}).unwrap();
        assert_eq!(r.full_handshakes() + r.resumed, r.connections);
        assert_eq!(r.stats.hits, r.resumed, "a resumption is a hit");
        assert_eq!(r.stats.hits + r.stats.misses + r.stats.timeouts, r.offers);
        assert_eq!((r.remote_hits(), r.local_hits()), (0, r.stats.hits));
        assert!(r.peak_cache_size <= 100 && r.stats.number <= 100);
        assert!(r.stats.cache_full > 0, "200 clients, room for 100");
        assert!(r.latency.p50 <= r.latency.p99 && r.latency.p99 <= r.latency.max);
        assert!(r.timeline.is_empty(), "not asked for");
    }

    #[test]
    fn progress_is_reported_up_to_the_limit() {
        let mut seen = Vec::new();
        let r = run(&small(), &[], |p| seen.push(p)).unwrap();
        assert!(!seen.is_empty(), "at least once, however short the run");
        assert!(seen
            .windows(2)
            .all(|w| w[0].connections <= w[1].connections));
        assert!(seen
            .iter()
            .all(|p| p.connections <= 3_000 && p.elapsed <= r.elapsed));
    }

    #[test]
    fn workloads_that_cannot_run_say_why() {
        let cases = [
            (
                Workload {
                    resumption_ratio: 1.5,
                    ..small()
                },
                "between 0 and 1",
            ),
            (
                Workload {
                    threads: 0,
                    ..small()
                },
                "a thread",
            ),
            (
                Workload {
                    pace: Pace::Scale(f64::NAN),
                    ..small()
                },
                "positive",
            ),
        ];
        for (workload, says) in cases {
            let err = run(&workload, &[], |_| {}).unwrap_err();
            assert!(err.to_string().contains(says), "{err}");
        }
    }
}
