//! Stress with real threads: adders, lookers-up, removers and holders race one cache while
//! another thread moves the clock, flushes and changes the size limit. Bounded in count and in
//! time. Checked: no held session is ever freed or zeroized while held, every session is freed
//! exactly once after its last holder, the size bound holds, and the counters add up.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, OnceLock};
use std::time::{Duration, Instant};

use session_cache::ExtendedMasterSecret;
use session_cache::{CacheConfig, Lookup, LookupRequest, SessionCache};
use session_core::{
    Clock, ManualClock, MasterKey, ProtocolVersion, Session, SessionBuilder, SessionId, SidCtx,
};

const WORKERS: u64 = 4;
const OPS_PER_WORKER: u64 = 40_000;
const MAX_SIZE: usize = 64;
const DEADLINE: Duration = Duration::from_secs(20);

/// One flag per session ever made: set when the session is freed.
fn freed_flags() -> &'static Vec<AtomicBool> {
    static FLAGS: OnceLock<Vec<AtomicBool>> = OnceLock::new();
    FLAGS.get_or_init(|| {
        (0..WORKERS * OPS_PER_WORKER)
            .map(|_| AtomicBool::new(false))
            .collect()
    })
}

static FREED: AtomicU64 = AtomicU64::new(0);

/// Rides in each session's application data; dropped exactly when the session is freed.
struct Token(u64);

impl Drop for Token {
    fn drop(&mut self) {
        assert!(
            !freed_flags()[self.0 as usize].swap(true, Ordering::SeqCst),
            "session {} freed twice",
            self.0
        );
        FREED.fetch_add(1, Ordering::SeqCst);
    }
}

fn secret(n: u64) -> [u8; 48] {
    let mut key = [0u8; 48];
    for chunk in key.chunks_mut(8) {
        chunk.copy_from_slice(&n.to_le_bytes());
    }
    key[0] |= 1; // never all zeros, even for n = 0
    key
}

fn make(n: u64, now: u64) -> Session {
    SessionBuilder::new(ProtocolVersion::TLS1_2, now)
        .id(SessionId::new(&n.to_be_bytes()).unwrap())
        .master_key(MasterKey::new(&secret(n)).unwrap())
        .timeout(5 + n % 20)
        .app_data(Some(Arc::new(Token(n))))
        .build()
}

/// The session is intact: not freed (its token is there) and not zeroized.
#[track_caller]
fn check_held(s: &Session) {
    let token = s
        .app_data()
        .and_then(|d| d.downcast_ref::<Token>())
        .expect("token");
    assert!(
        !freed_flags()[token.0 as usize].load(Ordering::SeqCst),
        "held session freed"
    );
    assert_eq!(s.master_key(), secret(token.0), "held session zeroized");
    assert_eq!(s.id().as_bytes(), token.0.to_be_bytes());
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn concurrent_churn_keeps_every_invariant() {
    let clock = Arc::new(ManualClock::new(1_000_000));
    let cache = Arc::new(SessionCache::new(CacheConfig {
        size: MAX_SIZE,
        clock: clock.clone(),
        ..CacheConfig::default()
    }));
    let next_id = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let barrier = Arc::new(Barrier::new(WORKERS as usize + 1));
    let started = Instant::now();

    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (cache, clock, next_id, barrier) = (
                cache.clone(),
                clock.clone(),
                next_id.clone(),
                barrier.clone(),
            );
            std::thread::spawn(move || {
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (w + 1));
                let mut held: Vec<Session> = Vec::new();
                let mut lookups = 0u64;
                barrier.wait();
                for _ in 0..OPS_PER_WORKER {
                    if started.elapsed() > DEADLINE {
                        break;
                    }
                    match rng.next() % 10 {
                        0..=2 => {
                            let n = next_id.fetch_add(1, Ordering::SeqCst);
                            if n >= WORKERS * OPS_PER_WORKER {
                                break;
                            }
                            let s = make(n, clock.now());
                            cache.add(&s).unwrap();
                            held.push(s);
                        }
                        3..=6 => {
                            let top = next_id.load(Ordering::SeqCst).max(1);
                            let n = top - 1 - rng.next() % top.min(2 * MAX_SIZE as u64);
                            let id = n.to_be_bytes();
                            let req = LookupRequest::new(
                                ProtocolVersion::TLS1_2,
                                &id,
                                SidCtx::empty(),
                                ExtendedMasterSecret::NotOffered,
                            );
                            lookups += 1;
                            if let Lookup::Hit(s) = cache.lookup(&req) {
                                check_held(&s);
                                held.push(s);
                            }
                        }
                        7 => {
                            if let Some(s) = held.pop() {
                                cache.remove(&s);
                                check_held(&s);
                            }
                        }
                        8 => {
                            if let Some(s) = held.first() {
                                if let Some(t) =
                                    cache.take(ProtocolVersion::TLS1_2, s.id().as_bytes())
                                {
                                    check_held(&t);
                                }
                            }
                        }
                        _ => {
                            // Let go of some references, checking them on the way out.
                            let keep = held.len() / 2;
                            for s in held.drain(keep..) {
                                check_held(&s);
                            }
                        }
                    }
                    assert!(
                        cache.len() <= MAX_SIZE,
                        "size bound broken: {}",
                        cache.len()
                    );
                    if let Some(s) = held.last() {
                        check_held(s);
                    }
                }
                for s in &held {
                    check_held(s);
                }
                lookups
            })
        })
        .collect();

    let housekeeper = {
        let (cache, clock, done) = (cache.clone(), clock.clone(), done.clone());
        std::thread::spawn(move || {
            let mut rounds = 0u64;
            barrier.wait();
            while !done.load(Ordering::SeqCst) && started.elapsed() < DEADLINE {
                clock.advance(1);
                cache.flush();
                if rounds.is_multiple_of(50) {
                    cache.set_size(if rounds.is_multiple_of(100) {
                        MAX_SIZE / 2
                    } else {
                        MAX_SIZE
                    });
                }
                if rounds % 500 == 499 {
                    cache.flush_all();
                }
                assert!(cache.len() <= MAX_SIZE);
                rounds += 1;
                std::thread::yield_now();
            }
            rounds
        })
    };

    let lookups: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    done.store(true, Ordering::SeqCst);
    let rounds = housekeeper.join().unwrap();
    assert!(rounds > 0 && lookups > 0);

    let stats = cache.stats();
    assert_eq!(
        stats.hits + stats.misses + stats.timeouts,
        lookups,
        "{stats:?}"
    );
    assert_eq!(stats.number, cache.sessions().len());
    assert!(stats.number <= MAX_SIZE);
    // The churn really raced the paths it is meant to: resumptions and evictions happened.
    assert!(stats.hits > 0 && stats.cache_full > 0, "{stats:?}");

    let made = next_id.load(Ordering::SeqCst).min(WORKERS * OPS_PER_WORKER);
    drop(cache); // flushes: the cache's own references go
    assert_eq!(
        FREED.load(Ordering::SeqCst),
        made,
        "every session freed once, none leaked"
    );
    for (n, flag) in freed_flags().iter().enumerate().take(made as usize) {
        assert!(flag.load(Ordering::SeqCst), "session {n} never freed");
    }
}
