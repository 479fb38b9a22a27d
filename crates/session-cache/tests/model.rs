//! Model-based test: random sequences of operations run against the cache and against a plain,
//! single-threaded reference model of OpenSSL's rules (a list ordered by expiry, evicting from
//! the soonest end). After every step the contents, the return values and the counters must
//! agree.

use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;
use session_cache::ExtendedMasterSecret;
use session_cache::{Added, CacheConfig, CacheMode, Lookup, LookupRequest, SessionCache};
use session_core::{
    ManualClock, MasterKey, ProtocolVersion, Session, SessionBuilder, SessionId, SidCtx,
};

const NOW: u64 = 1_000_000;
const POOL: usize = 10;

#[derive(Debug, Clone)]
enum Op {
    Add(usize),
    Lookup(usize),
    Remove(usize),
    Flush(u64),
    FlushAll,
    SetTimeout(usize, u64),
    SetSize(usize),
    Advance(u64),
    ToggleUpdateTime,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..POOL).prop_map(Op::Add),
        3 => (0..POOL).prop_map(Op::Lookup),
        1 => (0..POOL).prop_map(Op::Remove),
        1 => (0..60u64).prop_map(Op::Flush),
        1 => Just(Op::FlushAll),
        1 => (0..POOL, prop_oneof![0..50u64, Just(u64::MAX)]).prop_map(|(p, t)| Op::SetTimeout(p, t)),
        1 => (0..6usize).prop_map(Op::SetSize),
        2 => (0..25u64).prop_map(Op::Advance),
        1 => Just(Op::ToggleUpdateTime),
    ]
}

/// The pool: ids "k0".."k3" under TLS 1.2 twice each (two different sessions per key), and
/// "k0", "k1" again under TLS 1.3 (other keys). The master key's first byte names the pool
/// slot, so a renewed copy can be told apart from the original by identity only.
fn pool() -> Vec<Session> {
    (0..POOL)
        .map(|i| {
            let (version, id) = match i {
                0..=7 => (ProtocolVersion::TLS1_2, format!("k{}", i % 4)),
                _ => (ProtocolVersion::TLS1_3, format!("k{}", i % 2)),
            };
            let timeouts = [5, 30, 60, 10, u64::MAX, 20, 0, 45, 15, 25];
            SessionBuilder::new(version, NOW - 20 + 7 * i as u64)
                .id(SessionId::new(id.as_bytes()).unwrap())
                .sid_ctx(if i == 3 {
                    SidCtx::new(b"other").unwrap()
                } else {
                    SidCtx::empty()
                })
                .master_key(MasterKey::new(&[i as u8; 48]).unwrap())
                .timeout(timeouts[i])
                .build()
        })
        .collect()
}

type Key = (u16, Vec<u8>);

fn key(s: &Session) -> Key {
    (s.version().wire(), s.id().as_bytes().to_vec())
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    origin: usize,
    /// Whether the cache holds the pool's own session (not a renewed copy).
    original: bool,
    time: u64,
    timeout: u64,
    seq: u64,
}

impl Entry {
    fn expiry(&self) -> u64 {
        self.time.saturating_add(self.timeout)
    }
}

#[derive(Debug, Default)]
struct Model {
    entries: BTreeMap<Key, Entry>,
    size: usize,
    now: u64,
    update_time: bool,
    seq: u64,
    hits: u64,
    misses: u64,
    timeouts: u64,
    cache_full: u64,
    /// Pool sessions marked not resumable: every path that takes a session out of the cache
    /// marks it, as `remove_session_lock` does (and `remove` marks the session it is given).
    marked: [bool; POOL],
}

impl Model {
    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn evict_soonest(&mut self) {
        let victim = self
            .entries
            .iter()
            .min_by_key(|(_, e)| (e.expiry(), e.seq))
            .map(|(k, _)| k.clone())
            .expect("evicting from an empty cache");
        self.unlink(&victim);
        self.cache_full += 1;
    }

    /// Takes an entry out, marking the session it held.
    fn unlink(&mut self, k: &Key) -> Option<Entry> {
        let e = self.entries.remove(k)?;
        self.mark(&e);
        Some(e)
    }

    fn mark(&mut self, e: &Entry) {
        if e.original {
            self.marked[e.origin] = true;
        }
    }

    fn add(&mut self, pool: &[Session], p: usize) -> Added {
        let s = &pool[p];
        let renew = self.update_time && s.time() != self.now;
        let time = if renew { self.now } else { s.time() };
        let k = key(s);
        let seq = self.next_seq();
        let fresh = Entry {
            origin: p,
            original: !renew,
            time,
            timeout: s.timeout(),
            seq,
        };
        match self.entries.get_mut(&k) {
            // The same session (OpenSSL changes it in place; here the cache may hold a renewed
            // copy of it): not added; under UPDATE_TIME its time becomes now, its timeout stays.
            Some(e) if e.origin == p => {
                if self.update_time && e.time != self.now {
                    e.time = self.now;
                    e.original = false;
                    e.seq = seq;
                }
                Added::AlreadyCached
            }
            Some(e) => {
                *e = fresh;
                Added::Replaced
            }
            None => {
                if self.size > 0 && self.entries.len() >= self.size {
                    self.evict_soonest();
                }
                self.entries.insert(k, fresh);
                Added::New
            }
        }
    }

    /// The pool slot of the session a lookup resumes, or "miss"/"timeout".
    fn lookup(&mut self, pool: &[Session], p: usize) -> String {
        let k = key(&pool[p]);
        let Some(e) = self.entries.get(&k) else {
            self.misses += 1;
            return "miss".into();
        };
        if pool[e.origin].sid_ctx().as_bytes() != b"" {
            // Found but refused: ssl_get_prev_session counts nothing.
            return "miss".into();
        }
        if self.now > e.expiry() {
            self.timeouts += 1;
            self.unlink(&k);
            return "timeout".into();
        }
        self.hits += 1;
        format!("hit {}", e.origin)
    }

    fn flush(&mut self, at: Option<u64>) -> usize {
        let gone: Vec<Key> = self
            .entries
            .iter()
            .filter(|(_, e)| at.is_none_or(|at| e.expiry() < at))
            .map(|(k, _)| k.clone())
            .collect();
        for k in &gone {
            self.unlink(k);
        }
        gone.len()
    }

    fn set_size(&mut self, size: usize) {
        self.size = size;
        while size > 0 && self.entries.len() > size {
            self.evict_soonest();
        }
    }
}

fn describe(outcome: Lookup) -> String {
    match outcome {
        Lookup::Hit(s) => format!("hit {}", s.master_key()[0]),
        Lookup::Miss(_) => "miss".into(),
        Lookup::Timeout => "timeout".into(),
        other => format!("{other:?}"),
    }
}

fn contents(cache: &SessionCache, pool: &[Session]) -> BTreeMap<Key, (usize, bool, u64, u64)> {
    cache
        .sessions()
        .iter()
        .map(|s| {
            let origin = usize::from(s.master_key()[0]);
            (
                key(s),
                (origin, s.ptr_eq(&pool[origin]), s.time(), s.timeout()),
            )
        })
        .collect()
}

fn run(ops: &[Op]) {
    let pool = pool();
    let clock = Arc::new(ManualClock::new(NOW));
    let cache = SessionCache::new(CacheConfig {
        size: 3,
        clock: clock.clone(),
        shards: 4,
        ..CacheConfig::default()
    });
    let mut model = Model {
        size: 3,
        now: NOW,
        ..Model::default()
    };
    for (step, op) in ops.iter().enumerate() {
        match *op {
            Op::Add(p) => assert_eq!(
                cache.add(&pool[p]).unwrap(),
                model.add(&pool, p),
                "step {step}: {op:?}"
            ),
            Op::Lookup(p) => {
                let s = &pool[p];
                let req = LookupRequest::new(
                    s.version(),
                    s.id().as_bytes(),
                    SidCtx::empty(),
                    ExtendedMasterSecret::NotOffered,
                );
                assert_eq!(
                    describe(cache.lookup(&req)),
                    model.lookup(&pool, p),
                    "step {step}: {op:?}"
                );
            }
            Op::Remove(p) => {
                // Removed by key, whatever session holds it; the session named is marked.
                let found = model.entries.remove(&key(&pool[p])).is_some();
                model.marked[p] = true;
                assert_eq!(cache.remove(&pool[p]), found, "step {step}: {op:?}");
            }
            Op::Flush(dt) => {
                let at = model.now + dt - 30;
                assert_eq!(
                    cache.flush_expired(at),
                    model.flush(Some(at)),
                    "step {step}: {op:?}"
                );
            }
            Op::FlushAll => assert_eq!(cache.flush_all(), model.flush(None), "step {step}"),
            Op::SetTimeout(p, t) => {
                let (v, id) = key(&pool[p]);
                let cached = cache.get(ProtocolVersion::new(v).unwrap(), &id);
                assert_eq!(
                    cached.is_some(),
                    model.entries.contains_key(&(v, id.clone()))
                );
                if let Some(cached) = cached {
                    let renewed = cache.set_session_timeout(&cached, t).unwrap();
                    assert_eq!(renewed.timeout(), t);
                    let seq = model.next_seq();
                    let e = model.entries.get_mut(&(v, id)).unwrap();
                    e.timeout = t;
                    e.original = false;
                    e.seq = seq;
                }
            }
            Op::SetSize(n) => {
                cache.set_size(n);
                model.set_size(n);
            }
            Op::Advance(dt) => {
                model.now = clock.advance(dt);
            }
            Op::ToggleUpdateTime => {
                model.update_time = !model.update_time;
                cache.set_mode(if model.update_time {
                    CacheMode::SERVER | CacheMode::UPDATE_TIME
                } else {
                    CacheMode::SERVER
                });
            }
        }
        let expected: BTreeMap<_, _> = model
            .entries
            .iter()
            .map(|(k, e)| (k.clone(), (e.origin, e.original, e.time, e.timeout)))
            .collect();
        assert_eq!(
            contents(&cache, &pool),
            expected,
            "contents after step {step}: {op:?}"
        );
        let resumable: Vec<bool> = pool.iter().map(|s| s.is_resumable()).collect();
        let expected: Vec<bool> = model.marked.iter().map(|m| !m).collect();
        assert_eq!(resumable, expected, "resumable after step {step}: {op:?}");
        let stats = cache.stats();
        assert_eq!(
            (
                stats.number,
                stats.hits,
                stats.misses,
                stats.timeouts,
                stats.cache_full
            ),
            (
                model.entries.len(),
                model.hits,
                model.misses,
                model.timeouts,
                model.cache_full
            ),
            "counters after step {step}: {op:?}"
        );
        if model.size > 0 {
            assert!(cache.len() <= model.size);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_cache_follows_openssls_rules(ops in prop::collection::vec(op(), 1..80)) {
        run(&ops);
    }
}

/// The scenario from OpenSSL's own test suite, as a fixed case of the same model.
#[test]
fn expiry_ordering_and_flush_at_successive_times() {
    run(&[
        Op::SetSize(0),
        Op::Add(0),
        Op::Add(1),
        Op::Add(2),
        Op::Add(4),
        Op::Flush(35),
        Op::Flush(59),
        Op::Advance(20),
        Op::Flush(59),
        Op::FlushAll,
    ]);
}
