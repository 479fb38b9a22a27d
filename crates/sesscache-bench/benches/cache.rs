//! Side-by-side benchmarks of the session cache against what servers use today.
//!
//! Groups (cases are threads_cachedSessions): `lookup_hit`, `add_full`, `mixed`, `take`,
//! `flush`. Contenders: `sesscache` (ours), `openssl` (the real libssl through its C API),
//! `rustls` (`ServerSessionMemoryCache`), `moka` (sync cache with per-entry expiry, LRU),
//! `dashmap` (in `lookup_hit` only: the map our own replaces, which it must keep beating) and
//! `ceiling` (an immutable prebuilt `HashMap` of `Arc`s read with no lock: the practical limit
//! of a lookup), and the same map read under an epoch pin (`ceiling_pin`) and also comparing
//! the key on the session after taking the reference (`ceiling_pin_cmp`): the two things
//! sesscache's lookup must do beyond the ceiling, measured on their own. In multi-threaded
//! `add_full` cases, `unshared` is sesscache with a cache of its own per thread: the same adds
//! with nothing shared, the limit of an evicting add. A contender without the operation is
//! left out of that group:
//! - `ceiling` (and its pinned variants) cannot change, so it is only in `lookup_hit`;
//! - OpenSSL has no call that removes a session by id and hands it back, so it is not in `take`;
//! - rustls and moka cannot flush by time, so `flush` is sesscache against OpenSSL.
//!
//! Before each group with two-thread cases, `line_transfer/pingpong/<group>` times one cache
//! line's transfer between the cores, which those cases depend on.
//!
//! Run them all: `cargo bench -p sesscache-bench --bench cache`; print the ratio table:
//! `cargo run --release -p sesscache-bench --bin bench_ratios`. Set `SESSCACHE_BENCH_QUICK=1` to use small
//! caches (CI's smoke run).

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};
use rustls::server::{ServerSessionMemoryCache, StoresServerSessions};
use session_cache::{CacheConfig, SessionCache};
use session_core::{MasterKey, ProtocolVersion, Session, SessionBuilder, SessionId};

type Key = [u8; 32];

/// Far enough in the future that nothing expires during a run.
const LONG: u64 = 1 << 40;
/// The size of a serialized rustls server session value, roughly (TLS 1.3, no client cert).
const RUSTLS_VALUE_LEN: usize = 128;
/// How many operations each thread cycles through per case.
const PLAN: usize = 1 << 16;

fn quick() -> bool {
    std::env::var_os("SESSCACHE_BENCH_QUICK").is_some()
}

/// `n`, or a small stand-in for CI's smoke run.
fn size(n: usize) -> usize {
    if quick() {
        n.min(2_000)
    } else {
        n
    }
}

fn keys(n: usize, seed: u64) -> Vec<Key> {
    let mut rng = SmallRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random()).collect()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn our_session(key: &Key, time: u64, timeout: u64) -> Session {
    SessionBuilder::new(ProtocolVersion::TLS1_2, time)
        .id(SessionId::new(key).unwrap())
        .master_key(MasterKey::new(&[7; 48]).unwrap())
        .timeout(timeout)
        .build()
}

// ---------------------------------------------------------------------------------------------
// The OpenSSL contender: libssl's own cache, through the same C calls a server makes.

use sesscache_bench::openssl_ffi as ossl;

use sesscache_bench::line_transfer;

/// Times one cache line's transfer between the cores (`line_transfer/pingpong/<group>`) just
/// before `group` runs its cases. Two-thread cases swing with that cost on this guest
/// (docs/PERFORMANCE.md, "Two-thread cases"), so `bench_ratios` prints these readings
/// beside each run's ratios: a run read at the slow cost is not comparable with one read at
/// the fast.
fn read_line_transfer(cr: &mut Criterion, group: &str) {
    let mut g = cr.benchmark_group("line_transfer");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(1))
        .warm_up_time(Duration::from_millis(300))
        .throughput(Throughput::Elements(1));
    g.bench_function(BenchmarkId::new("pingpong", group), |b| {
        b.iter_custom(line_transfer::take_turns)
    });
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// The contenders behind one interface: a cache holding keys[0..cached] with a size limit,
// plus a pool of ready-made sessions for every key (made outside the timed part).

trait Contender: Sync + Sized {
    const NAME: &'static str;
    type Local;
    fn build(keys: &[Key], cached: usize, capacity: usize) -> Self;
    fn local(&self) -> Self::Local;
    /// Looks up keys[i], taking a reference where the API gives one; whether it hit.
    fn get(&self, local: &mut Self::Local, i: usize) -> bool;
    /// Adds the pool's session for keys[i].
    fn add(&self, local: &mut Self::Local, i: usize);
    /// Removes keys[i].
    fn remove(&self, local: &mut Self::Local, i: usize);
    /// Removes keys[i] and hands it back, then puts it back; whether it was there.
    fn take_and_return(&self, local: &mut Self::Local, i: usize) -> bool;
}

struct Ours {
    cache: SessionCache,
    keys: Vec<Key>,
    pool: Vec<Session>,
}

impl Contender for Ours {
    const NAME: &'static str = "sesscache";
    type Local = ();
    fn build(keys: &[Key], cached: usize, capacity: usize) -> Self {
        let cache = SessionCache::new(CacheConfig {
            size: capacity,
            ..CacheConfig::default()
        });
        let t = now();
        let pool: Vec<Session> = keys.iter().map(|k| our_session(k, t, LONG)).collect();
        for s in &pool[..cached] {
            cache.add(s).unwrap();
        }
        Self {
            cache,
            keys: keys.to_vec(),
            pool,
        }
    }
    fn local(&self) {}
    fn get(&self, _: &mut (), i: usize) -> bool {
        // The id as a server has it: from the ClientHello, not from the cached session.
        self.cache
            .get(ProtocolVersion::TLS1_2, &self.keys[i])
            .is_some()
    }
    fn add(&self, _: &mut (), i: usize) {
        let _ = self.cache.add(&self.pool[i]);
    }
    fn remove(&self, _: &mut (), i: usize) {
        self.cache.remove(&self.pool[i]);
    }
    fn take_and_return(&self, _: &mut (), i: usize) -> bool {
        match self
            .cache
            .take(ProtocolVersion::TLS1_2, self.pool[i].id().as_bytes())
        {
            Some(s) => {
                let _ = self.cache.add(&s);
                true
            }
            None => false,
        }
    }
}

struct OpenSsl {
    ctx: ossl::Ctx,
    keys: Vec<Key>,
    pool: Vec<ossl::Sess>,
}

impl Contender for OpenSsl {
    const NAME: &'static str = "openssl";
    type Local = ossl::Conn;
    fn build(keys: &[Key], cached: usize, capacity: usize) -> Self {
        let ctx = ossl::Ctx::new(capacity);
        let t = now();
        let pool: Vec<_> = keys.iter().map(|k| ctx.session(k, t, LONG)).collect();
        for s in &pool[..cached] {
            assert!(ctx.add(s));
        }
        Self {
            ctx,
            keys: keys.to_vec(),
            pool,
        }
    }
    fn local(&self) -> ossl::Conn {
        self.ctx.conn()
    }
    fn get(&self, conn: &mut ossl::Conn, i: usize) -> bool {
        self.ctx.has(conn, &self.keys[i])
    }
    fn add(&self, _: &mut ossl::Conn, i: usize) {
        self.ctx.add(&self.pool[i]);
    }
    fn remove(&self, _: &mut ossl::Conn, i: usize) {
        self.ctx.remove(&self.pool[i]);
    }
    fn take_and_return(&self, _: &mut ossl::Conn, _: usize) -> bool {
        unreachable!("OpenSSL has no take: left out of the take group")
    }
}

struct Rustls {
    cache: Arc<ServerSessionMemoryCache>,
    keys: Vec<Vec<u8>>,
    value: Vec<u8>,
}

impl Contender for Rustls {
    const NAME: &'static str = "rustls";
    type Local = ();
    fn build(keys: &[Key], cached: usize, capacity: usize) -> Self {
        let cache =
            ServerSessionMemoryCache::new(if capacity == 0 { keys.len() } else { capacity });
        let keys: Vec<Vec<u8>> = keys.iter().map(|k| k.to_vec()).collect();
        let value = vec![0x5A; RUSTLS_VALUE_LEN];
        for k in &keys[..cached] {
            assert!(cache.put(k.clone(), value.clone()));
        }
        Self { cache, keys, value }
    }
    fn local(&self) {}
    fn get(&self, _: &mut (), i: usize) -> bool {
        self.cache.get(&self.keys[i]).is_some()
    }
    fn add(&self, _: &mut (), i: usize) {
        self.cache.put(self.keys[i].clone(), self.value.clone());
    }
    fn remove(&self, _: &mut (), i: usize) {
        self.cache.take(&self.keys[i]);
    }
    fn take_and_return(&self, _: &mut (), i: usize) -> bool {
        match self.cache.take(&self.keys[i]) {
            Some(v) => {
                self.cache.put(self.keys[i].clone(), v);
                true
            }
            None => false,
        }
    }
}

struct Moka {
    cache: moka::sync::Cache<Key, Session>,
    keys: Vec<Key>,
    pool: Vec<Session>,
}

/// moka's per-entry expiry: each session lives for its own timeout. The cache evicts the least
/// recently used session when full: under moka's default policy (TinyLFU) a full cache turns
/// most new sessions away in favour of ones read before, which is not what a session cache
/// may do: `mixed`'s hit check would fail.
struct SessionExpiry;

impl moka::Expiry<Key, Session> for SessionExpiry {
    fn expire_after_create(&self, _: &Key, s: &Session, _: Instant) -> Option<Duration> {
        Some(Duration::from_secs(s.timeout()))
    }
}

impl Contender for Moka {
    const NAME: &'static str = "moka";
    type Local = ();
    fn build(keys: &[Key], cached: usize, capacity: usize) -> Self {
        let mut builder = moka::sync::Cache::builder()
            .expire_after(SessionExpiry)
            .eviction_policy(moka::policy::EvictionPolicy::lru());
        if capacity > 0 {
            builder = builder.max_capacity(capacity as u64);
        }
        let cache = builder.build();
        let t = now();
        let pool: Vec<Session> = keys.iter().map(|k| our_session(k, t, LONG)).collect();
        for (k, s) in keys.iter().zip(&pool).take(cached) {
            cache.insert(*k, s.clone());
        }
        cache.run_pending_tasks();
        Self {
            cache,
            keys: keys.to_vec(),
            pool,
        }
    }
    fn local(&self) {}
    fn get(&self, _: &mut (), i: usize) -> bool {
        self.cache.get(&self.keys[i]).is_some()
    }
    fn add(&self, _: &mut (), i: usize) {
        self.cache.insert(self.keys[i], self.pool[i].clone());
    }
    fn remove(&self, _: &mut (), i: usize) {
        self.cache.invalidate(&self.keys[i]);
    }
    fn take_and_return(&self, _: &mut (), i: usize) -> bool {
        match self.cache.remove(&self.keys[i]) {
            Some(s) => {
                self.cache.insert(self.keys[i], s);
                true
            }
            None => false,
        }
    }
}

/// dashmap, the concurrent map the design first named: a `DashMap` of the same sessions,
/// keyed as ours (version and id) with the same hasher, a lookup cloning the reference as
/// ours takes one. A map, not a cache (no size limit, no expiry), so only in `lookup_hit`,
/// where it tests whether our own map still earns its place.
struct DashMapContender {
    map: dashmap::DashMap<(u16, Key), Session, ahash::RandomState>,
    keys: Vec<Key>,
    pool: Vec<Session>,
}

impl Contender for DashMapContender {
    const NAME: &'static str = "dashmap";
    type Local = ();
    fn build(keys: &[Key], cached: usize, _capacity: usize) -> Self {
        let t = now();
        let pool: Vec<Session> = keys.iter().map(|k| our_session(k, t, LONG)).collect();
        let map = dashmap::DashMap::with_hasher(ahash::RandomState::new());
        for (k, s) in keys.iter().zip(&pool).take(cached) {
            map.insert((0x0303, *k), s.clone());
        }
        Self {
            map,
            keys: keys.to_vec(),
            pool,
        }
    }
    fn local(&self) {}
    fn get(&self, _: &mut (), i: usize) -> bool {
        self.map
            .get(&(0x0303, self.keys[i]))
            .map(|entry| entry.value().clone())
            .is_some()
    }
    fn add(&self, _: &mut (), i: usize) {
        self.map
            .insert((0x0303, self.keys[i]), self.pool[i].clone());
    }
    fn remove(&self, _: &mut (), i: usize) {
        self.map.remove(&(0x0303, self.keys[i]));
    }
    fn take_and_return(&self, _: &mut (), i: usize) -> bool {
        match self.map.remove(&(0x0303, self.keys[i])) {
            Some((k, s)) => {
                self.map.insert(k, s);
                true
            }
            None => false,
        }
    }
}

/// The limit: an immutable map built once, read with no lock, a reference taken per hit. It
/// hashes with the cache's own hasher, so the difference is the cost of being concurrent.
struct Ceiling {
    map: HashMap<(u16, Key), Session, ahash::RandomState>,
    keys: Vec<Key>,
}

impl Ceiling {
    fn build(keys: &[Key]) -> Self {
        let t = now();
        let map = keys
            .iter()
            .map(|k| ((0x0303, *k), our_session(k, t, LONG)))
            .collect();
        Self {
            map,
            keys: keys.to_vec(),
        }
    }
    /// A new reference to the session under key number `i`.
    fn reference(&self, i: usize) -> Option<Session> {
        self.map.get(&(0x0303, self.keys[i])).cloned()
    }

    fn get(&self, i: usize) -> bool {
        self.reference(i).is_some()
    }

    /// [`get`](Self::get) under an epoch pin: what any map pays whose readers are protected
    /// by crossbeam-epoch from what writers free under them (ours is).
    fn get_pinned(&self, i: usize) -> bool {
        let _guard = crossbeam_epoch::pin();
        self.get(i)
    }

    /// [`get_pinned`](Self::get_pinned), and the key compared again on the session once the
    /// reference is taken: what a map pays whose only copy of the key is in the session, where
    /// it is zeroized when the session drops, so it can be read only through a reference (ours
    /// is such a map, and compares a 32-byte id as an array, as here).
    fn get_pinned_compared(&self, i: usize) -> bool {
        let _guard = crossbeam_epoch::pin();
        self.reference(i).is_some_and(|s| {
            s.version().wire() == 0x0303
                && <&[u8; 32]>::try_from(s.id().as_bytes()).is_ok_and(|id| *id == self.keys[i])
        })
    }
}

/// One way of reading the ceiling's map: whether key number `i` was found.
type CeilingGet = fn(&Ceiling, usize) -> bool;

/// The ceiling and the two floors below it: the ceiling's own map, read as it is, under an
/// epoch pin, and under a pin with the key compared on the reference.
const CEILINGS: [(&str, CeilingGet); 3] = [
    ("ceiling", Ceiling::get),
    ("ceiling_pin", Ceiling::get_pinned),
    ("ceiling_pin_cmp", Ceiling::get_pinned_compared),
];

// ---------------------------------------------------------------------------------------------
// Driving threads.

/// Runs `work(thread, iters)` on `threads` threads released together by a barrier; returns
/// the wall time from release to the last thread's finish.
fn timed<F: Fn(usize, u64) + Sync>(threads: usize, iters: u64, work: F) -> Duration {
    let start_line = Barrier::new(threads + 1);
    let finish_line = Barrier::new(threads + 1);
    std::thread::scope(|s| {
        for t in 0..threads {
            let (start_line, finish_line, work) = (&start_line, &finish_line, &work);
            s.spawn(move || {
                start_line.wait();
                work(t, iters);
                finish_line.wait();
            });
        }
        start_line.wait();
        let began = Instant::now();
        finish_line.wait();
        began.elapsed()
    })
}

/// Per thread, a cycle of `PLAN` key indices in [lo, hi), uniform or Zipf (exponent 1).
fn plans(threads: usize, lo: usize, hi: usize, zipf: bool, seed: u64) -> Vec<Vec<usize>> {
    (0..threads)
        .map(|t| {
            let mut rng = SmallRng::seed_from_u64(seed + t as u64);
            let z = Zipf::new((hi - lo) as f64, 1.0).unwrap();
            (0..PLAN)
                .map(|_| {
                    if zipf {
                        lo + (z.sample(&mut rng) as usize - 1).min(hi - lo - 1)
                    } else {
                        rng.random_range(lo..hi)
                    }
                })
                .collect()
        })
        .collect()
}

fn lookup_case<C: Contender>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    case: &str,
    threads: usize,
    keys: &[Key],
    zipf: bool,
) {
    let n = keys.len();
    let c = C::build(keys, n, 0);
    let plans = plans(threads, 0, n, zipf, 1);
    // Hits must really hit.
    let mut local = c.local();
    assert!(
        plans[0].iter().take(1_000).all(|&i| c.get(&mut local, i)),
        "{} missed",
        C::NAME
    );
    g.bench_function(BenchmarkId::new(C::NAME, case), |b| {
        b.iter_custom(|iters| {
            timed(threads, iters, |t, iters| {
                let mut local = c.local();
                let plan = &plans[t];
                for j in 0..iters as usize {
                    black_box(c.get(&mut local, plan[j % PLAN]));
                }
            })
        })
    });
}

fn lookup_hit(cr: &mut Criterion) {
    read_line_transfer(cr, "lookup_hit");
    let mut g = cr.benchmark_group("lookup_hit");
    g.sample_size(30)
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    for (case, threads, n, zipf) in [
        ("1t_10k", 1, 10_000, false),
        ("2t_10k", 2, 10_000, false),
        ("1t_1m", 1, 1_000_000, false),
        ("2t_1m", 2, 1_000_000, false),
        ("2t_1m_zipf", 2, 1_000_000, true),
    ] {
        let keys = keys(size(n), 42);
        g.throughput(Throughput::Elements(threads as u64));
        lookup_case::<Ours>(&mut g, case, threads, &keys, zipf);
        lookup_case::<OpenSsl>(&mut g, case, threads, &keys, zipf);
        lookup_case::<Rustls>(&mut g, case, threads, &keys, zipf);
        lookup_case::<Moka>(&mut g, case, threads, &keys, zipf);
        lookup_case::<DashMapContender>(&mut g, case, threads, &keys, zipf);
        let ceiling = Ceiling::build(&keys);
        let plans = plans(threads, 0, keys.len(), zipf, 1);
        for (name, get) in CEILINGS {
            assert!(plans[0].iter().take(1_000).all(|&i| get(&ceiling, i)));
            g.bench_function(BenchmarkId::new(name, case), |b| {
                b.iter_custom(|iters| {
                    timed(threads, iters, |t, iters| {
                        let plan = &plans[t];
                        for j in 0..iters as usize {
                            black_box(get(&ceiling, plan[j % PLAN]));
                        }
                    })
                })
            });
        }
    }
    g.finish();
}

/// Times adds to a full cache of `n`: each thread adds from its own ring of 2n ready-made
/// sessions (pool indices `n + t * 2n ..`), going on where the last batch stopped, so every
/// add is of a session not cached and evicts one. Each thread makes its state with `local(t)`
/// and adds pool session `i` with `add(&mut state, i)`.
fn bench_ring_adds<L, M, A>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    id: BenchmarkId,
    threads: usize,
    n: usize,
    local: M,
    add: A,
) where
    M: Fn(usize) -> L + Sync,
    A: Fn(&mut L, usize) + Sync,
{
    let ring = 2 * n;
    g.bench_function(id, |b| {
        let mut next = vec![0usize; threads];
        b.iter_custom(|iters| {
            let starts = next.clone();
            let d = timed(threads, iters, |t, iters| {
                let mut state = local(t);
                let base = n + t * ring;
                for j in 0..iters as usize {
                    add(&mut state, base + (starts[t] + j) % ring);
                }
            });
            for s in next.iter_mut() {
                *s = (*s + iters as usize) % ring;
            }
            d
        })
    });
}

/// The pool `bench_ring_adds` draws from: the cached `n`, then each thread's ring.
fn ring_keys(threads: usize, n: usize) -> Vec<Key> {
    keys(n + threads * 2 * n, 7)
}

fn add_case<C: Contender>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    case: &str,
    threads: usize,
    n: usize,
) {
    let c = C::build(&ring_keys(threads, n), n, n);
    bench_ring_adds(
        g,
        BenchmarkId::new(C::NAME, case),
        threads,
        n,
        |_| c.local(),
        |local, i| c.add(local, i),
    );
}

/// `add_case` for sesscache with nothing shared between the threads: each has a cache of its
/// own, of `n / threads`, and adds the same sessions as in `add_case`. What is left is the
/// work of an evicting add itself; the difference from `sesscache` is what threads pay to
/// share one cache with one expiry order (OpenSSL's: the soonest session anywhere goes first).
fn add_unshared(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    case: &str,
    threads: usize,
    n: usize,
) {
    let t = now();
    let pool: Vec<Session> = ring_keys(threads, n)
        .iter()
        .map(|k| our_session(k, t, LONG))
        .collect();
    let share = n / threads;
    let caches: Vec<SessionCache> = (0..threads)
        .map(|i| {
            let cache = SessionCache::new(CacheConfig {
                size: share,
                ..CacheConfig::default()
            });
            for s in &pool[i * share..(i + 1) * share] {
                cache.add(s).unwrap();
            }
            cache
        })
        .collect();
    bench_ring_adds(
        g,
        BenchmarkId::new("unshared", case),
        threads,
        n,
        |t| &caches[t],
        |cache, i| {
            cache.add(&pool[i]).unwrap();
        },
    );
}

fn add_full(cr: &mut Criterion) {
    read_line_transfer(cr, "add_full");
    let mut g = cr.benchmark_group("add_full");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    for (case, threads) in [("1t_100k", 1), ("2t_100k", 2)] {
        let n = size(100_000);
        g.throughput(Throughput::Elements(threads as u64));
        add_case::<Ours>(&mut g, case, threads, n);
        add_case::<OpenSsl>(&mut g, case, threads, n);
        add_case::<Rustls>(&mut g, case, threads, n);
        add_case::<Moka>(&mut g, case, threads, n);
        if threads > 1 {
            add_unshared(&mut g, case, threads, n);
        }
    }
    g.finish();
}

/// One operation of `mixed`'s plan. A lookup or removal names its key by how far back from
/// the thread's newest add it is.
#[derive(Clone, Copy)]
enum MixedOp {
    Lookup(usize),
    Add,
    Remove(usize),
}

/// 90% lookups, 9% adds, 1% removals on a full cache of `n`, in a steady state that a whole
/// run keeps: every add is of a new session and evicts one, and lookups hit. Each thread adds
/// from its own ring of 2n sessions, going on where the last batch stopped, and looks up and
/// removes among the newest half of its share of the cache (`n / threads` sessions), which
/// stay cached while both threads add at about the same rate. Only a removed session is
/// looked up in vain, until the ring comes round to it again. The share of lookups that hit
/// in the steady state is printed, and checked against `MIXED_MIN_HITS`, before timing.
fn mixed_case<C: Contender>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    case: &str,
    threads: usize,
    n: usize,
) {
    let ring = 2 * n;
    let window = n / threads / 2;
    // Position `p` of thread `t`'s ring is key `(p % ring) * threads + t`, so the cache's
    // first fill (keys 0..n, in order) is every thread's first `n / threads`, interleaved.
    let key = |t: usize, p: usize| (p % ring) * threads + t;
    let keys = keys(threads * ring, 9);
    let c = C::build(&keys, n, n);
    let ops: Vec<Vec<MixedOp>> = (0..threads)
        .map(|t| {
            let mut rng = SmallRng::seed_from_u64(100 + t as u64);
            (0..PLAN)
                .map(|_| match rng.random_range(0..100) {
                    0..90 => MixedOp::Lookup(rng.random_range(0..window)),
                    90..99 => MixedOp::Add,
                    _ => MixedOp::Remove(rng.random_range(0..window)),
                })
                .collect()
        })
        .collect();
    // Each thread's next ring position, kept from batch to batch.
    let next: Vec<AtomicUsize> = (0..threads)
        .map(|_| AtomicUsize::new(n / threads))
        .collect();
    // Runs `iters` operations of thread `t`'s plan; returns how many lookups hit.
    let run = |local: &mut C::Local, t: usize, iters: usize| {
        let mut added = next[t].load(Ordering::Relaxed);
        let mut hits = 0;
        for j in 0..iters {
            match ops[t][j % PLAN] {
                MixedOp::Lookup(back) => {
                    hits += usize::from(black_box(c.get(local, key(t, added - 1 - back))))
                }
                MixedOp::Add => {
                    c.add(local, key(t, added));
                    added += 1;
                }
                MixedOp::Remove(back) => c.remove(local, key(t, added - 1 - back)),
            }
        }
        next[t].store(added, Ordering::Relaxed);
        hits
    };
    // Reach the steady state (each thread has replaced its whole share of the cache), then
    // count one pass's hits: both threads together, untimed.
    let count = |is: fn(&MixedOp) -> bool| ops.iter().flatten().filter(|op| is(op)).count();
    let adds = count(|op| matches!(op, MixedOp::Add));
    let turnover = (n / threads).div_ceil(adds / threads) * PLAN;
    timed(threads, turnover as u64, |t, iters| {
        run(&mut c.local(), t, iters as usize);
    });
    let hits = AtomicUsize::new(0);
    timed(threads, PLAN as u64, |t, iters| {
        hits.fetch_add(run(&mut c.local(), t, iters as usize), Ordering::Relaxed);
    });
    let lookups = count(|op| matches!(op, MixedOp::Lookup(_)));
    let rate = hits.into_inner() as f64 / lookups as f64;
    eprintln!(
        "mixed/{}/{case}: {:.1}% of lookups hit in the steady state",
        C::NAME,
        100.0 * rate
    );
    assert!(
        rate >= MIXED_MIN_HITS,
        "{}: lookups of sessions just added missed",
        C::NAME
    );
    g.bench_function(BenchmarkId::new(C::NAME, case), |b| {
        b.iter_custom(|iters| {
            timed(threads, iters, |t, iters| {
                black_box(run(&mut c.local(), t, iters as usize));
            })
        })
    });
}

/// The share of `mixed`'s lookups that must hit (removals make some miss).
const MIXED_MIN_HITS: f64 = 0.8;

fn mixed(cr: &mut Criterion) {
    read_line_transfer(cr, "mixed");
    let mut g = cr.benchmark_group("mixed");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    // The hit check needs each thread's share of the cache to be several times what one pass
    // of the plan adds (about 5,900 per thread), or a thread that gets ahead for a while
    // evicts the other's newest: so CI's small run uses 20k here, not 2k.
    let n = if quick() { 20_000 } else { 100_000 };
    g.throughput(Throughput::Elements(2));
    mixed_case::<Ours>(&mut g, "2t_100k", 2, n);
    mixed_case::<OpenSsl>(&mut g, "2t_100k", 2, n);
    mixed_case::<Rustls>(&mut g, "2t_100k", 2, n);
    mixed_case::<Moka>(&mut g, "2t_100k", 2, n);
    g.finish();
}

fn take_case<C: Contender>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    case: &str,
    n: usize,
) {
    let keys = keys(n, 11);
    let c = C::build(&keys, n, 0);
    let plan = &plans(1, 0, n, false, 3)[0];
    let mut local = c.local();
    assert!(
        c.take_and_return(&mut local, plan[0]),
        "{}: take missed",
        C::NAME
    );
    g.bench_function(BenchmarkId::new(C::NAME, case), |b| {
        let mut j = 0;
        b.iter(|| {
            j += 1;
            black_box(c.take_and_return(&mut local, plan[j % PLAN]))
        })
    });
}

fn take(cr: &mut Criterion) {
    let mut g = cr.benchmark_group("take");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    g.throughput(Throughput::Elements(1));
    for (case, n) in [("1t_10k", 10_000), ("1t_100k", 100_000)] {
        let n = size(n);
        take_case::<Ours>(&mut g, case, n);
        take_case::<Rustls>(&mut g, case, n);
        take_case::<Moka>(&mut g, case, n);
    }
    g.finish();
}

/// Flushes `k` expired sessions out of `n`. Each iteration first (untimed) adds `k` sessions
/// that expire before the next flush time, with expiries falling so that OpenSSL's list takes
/// each at its tail in O(1); the rest never expire.
fn flush(cr: &mut Criterion) {
    let mut g = cr.benchmark_group("flush");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_millis(500));
    for (case, k, n) in [
        ("1k_of_10k", 1_000, 10_000),
        ("1k_of_1m", 1_000, 1_000_000),
        ("100k_of_1m", 100_000, 1_000_000),
    ] {
        let (k, n) = (size(k).min(size(n) / 2), size(n));
        g.throughput(Throughput::Elements(k as u64));
        let base: u64 = 1_000_000_000;
        let step: u64 = 1_000_000;
        let fresh = |round: u64| -> Vec<Key> { keys(k, 1_000 + round) };

        let permanent = keys(n - k, 5);
        let ours = SessionCache::new(CacheConfig {
            size: 0,
            ..CacheConfig::default()
        });
        for key in &permanent {
            ours.add(&our_session(key, base, LONG)).unwrap();
        }
        let mut round = 0u64;
        g.bench_function(BenchmarkId::new("sesscache", case), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    round += 1;
                    let flush_at = base + round * step;
                    for (j, key) in fresh(round).iter().enumerate() {
                        let expiry = flush_at - 1 - j as u64;
                        ours.add(&our_session(key, expiry, 0)).unwrap();
                    }
                    let began = Instant::now();
                    let removed = ours.flush_expired(flush_at);
                    total += began.elapsed();
                    assert_eq!(removed, k);
                }
                total
            })
        });
        drop(ours);

        let ctx = ossl::Ctx::new(0);
        let held: Vec<_> = permanent
            .iter()
            .map(|key| ctx.session(key, base, LONG))
            .collect();
        for s in &held {
            assert!(ctx.add(s));
        }
        let mut round = 0u64;
        g.bench_function(BenchmarkId::new("openssl", case), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    round += 1;
                    let flush_at = base + round * step;
                    for (j, key) in fresh(round).iter().enumerate() {
                        let expiry = flush_at - 1 - j as u64;
                        let s = ctx.session(key, expiry, 0);
                        assert!(ctx.add(&s));
                    }
                    let before = ctx.number();
                    let began = Instant::now();
                    ctx.flush(flush_at);
                    total += began.elapsed();
                    assert_eq!(before - ctx.number(), k, "OpenSSL flushed the wrong number");
                }
                total
            })
        });
        drop(ctx);
        drop(held);
    }
    g.finish();
}

criterion_group!(benches, lookup_hit, add_full, mixed, take, flush);
criterion_main!(benches);
