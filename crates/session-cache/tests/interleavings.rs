//! Behaviours a TLS server relies on under any interleaving, with real threads: a session
//! cached throughout is never missed while it is replaced, an add into a full cache returns
//! even when the remove callback adds, and the size bound holds once `set_size` returns.
//! Every test is bounded in count and time, with a watchdog where a hang is possible.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use session_cache::ExtendedMasterSecret;
use session_cache::{
    CacheConfig, CacheMode, Error, Lookup, LookupRequest, Miss, RemovalCause, SessionCache,
};
use session_core::{ManualClock, ProtocolVersion, Session, SidCtx};

const NOW: u64 = 1_700_000_000;
const DEADLINE: Duration = Duration::from_secs(20);

/// A session with id `id`, cached for an hour.
fn session(id: &[u8], time: u64) -> Session {
    test_support::session(id, time, 3_600)
}

fn cache(size: usize, shards: usize, clock: &Arc<ManualClock>) -> SessionCache {
    SessionCache::new(CacheConfig {
        size,
        shards,
        clock: clock.clone(),
        ..CacheConfig::default()
    })
}

/// Runs `f` on a thread of its own and fails the test if it has not returned within
/// `limit`: for calls that hang when the behaviour is wrong.
#[track_caller]
fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(value) => value,
        Err(_) => panic!("{what} did not return within {limit:?}"),
    }
}

/// How the writer puts a new session where the cached one was.
#[derive(Debug, Clone, Copy)]
enum Replace {
    /// A different session under the same id (`add`).
    Different,
    /// The same session added again under `UPDATE_TIME` as the clock moves: a renewed copy.
    UpdateTime,
    /// `set_session_timeout` on the cached session: a renewed copy.
    Renew,
}

/// One key stays cached throughout while a writer replaces its session as fast as it can, and
/// other keys in the same shards come and go so that the shard tables grow and shrink under
/// the readers. Two readers look the key up without pause: every lookup must find it.
fn never_missed(how: Replace) {
    let clock = Arc::new(ManualClock::new(NOW));
    // Two shards: the churn below rebuilds the key's table often.
    let cache = Arc::new(cache(0, 2, &clock));
    if let Replace::UpdateTime = how {
        cache.set_mode(CacheMode::SERVER | CacheMode::UPDATE_TIME);
    }
    let key = [0xAB; 32];
    let first = session(&key, NOW);
    cache.add(&first).unwrap();
    drop(first);
    let stop = Arc::new(AtomicBool::new(false));
    let lookups = Arc::new(AtomicU64::new(0));
    let barrier = Arc::new(Barrier::new(3));
    let started = Instant::now();

    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (cache, stop, lookups, barrier) = (
                cache.clone(),
                stop.clone(),
                lookups.clone(),
                barrier.clone(),
            );
            std::thread::spawn(move || {
                let request = LookupRequest::new(
                    ProtocolVersion::TLS1_2,
                    &key,
                    SidCtx::empty(),
                    ExtendedMasterSecret::NotOffered,
                );
                let mut misses = 0u64;
                barrier.wait();
                while !stop.load(Ordering::Relaxed) {
                    match cache.lookup(&request) {
                        Lookup::Hit(s) => assert_eq!(s.id().as_bytes(), key),
                        other => {
                            misses += 1;
                            assert!(matches!(other, Lookup::Miss(Miss::UnknownId)), "{other:?}");
                        }
                    }
                    if cache.get(ProtocolVersion::TLS1_2, &key).is_none() {
                        misses += 1;
                    }
                    lookups.fetch_add(2, Ordering::Relaxed);
                }
                misses
            })
        })
        .collect();

    barrier.wait();
    let mut churn = 0u32;
    let mut round = 0u64;
    while (lookups.load(Ordering::Relaxed) < 400_000 || round < 2_000)
        && started.elapsed() < DEADLINE
    {
        match how {
            Replace::Different => {
                // The writer keeps no reference: the old session is freed as it is replaced.
                cache.add(&session(&key, NOW)).unwrap();
            }
            Replace::UpdateTime => {
                clock.advance(1);
                let cached = cache.get(ProtocolVersion::TLS1_2, &key).unwrap();
                cache.add(&cached).unwrap();
            }
            Replace::Renew => {
                let cached = cache.get(ProtocolVersion::TLS1_2, &key).unwrap();
                cache
                    .set_session_timeout(&cached, 3_600 + round % 7)
                    .expect("the writer is the only one who changes the key");
            }
        }
        // Grow and shrink the shards' tables: 200 other keys in, then out.
        for n in 0..8 {
            let id = (churn * 8 + n).to_le_bytes();
            cache.add(&session(&id, NOW)).unwrap();
        }
        if churn % 25 == 24 {
            for n in 0..200 {
                let id = ((churn - 24) * 8 + n).to_le_bytes();
                cache.remove(&session(&id, NOW));
            }
        }
        churn += 1;
        round += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let misses: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    let total = lookups.load(Ordering::Relaxed);
    assert!(round >= 2_000, "the writer replaced only {round} times");
    assert!(total >= 400_000, "only {total} lookups");
    assert_eq!(
        misses, 0,
        "{misses} of {total} lookups missed a cached session ({how:?})"
    );
    assert_eq!(cache.stats().misses, 0);
}

#[test]
fn a_session_replaced_by_another_is_never_missed() {
    never_missed(Replace::Different);
}

#[test]
fn a_session_re_added_under_update_time_is_never_missed() {
    never_missed(Replace::UpdateTime);
}

#[test]
fn a_session_renewed_by_set_session_timeout_is_never_missed() {
    never_missed(Replace::Renew);
}

/// A remove callback that adds one session to the same cache for every session evicted: an
/// add into the full cache still returns, the bound holds, and every session added either
/// stays cached or was reported to the callback.
#[test]
fn a_remove_callback_that_adds_does_not_make_add_loop() {
    let (added, removed, cache) = within(DEADLINE, "add into a full cache", || {
        let clock = Arc::new(ManualClock::new(NOW));
        let cache = Arc::new(cache(8, 2, &clock));
        let next = Arc::new(AtomicU64::new(1_000));
        let removed = Arc::new(AtomicUsize::new(0));
        let readded = Arc::new(AtomicUsize::new(0));
        let refused = Arc::new(AtomicUsize::new(0));
        {
            let (next, removed, readded, refused) = (
                next.clone(),
                removed.clone(),
                readded.clone(),
                refused.clone(),
            );
            cache.set_remove_session_callback(Some(Arc::new(
                move |cache: &SessionCache, _: &Session, cause| {
                    removed.fetch_add(1, Ordering::SeqCst);
                    if cause == RemovalCause::Evicted {
                        let n = next.fetch_add(1, Ordering::SeqCst);
                        match cache.add(&session(&n.to_le_bytes(), NOW)) {
                            Ok(a) if a.is_added() => {
                                readded.fetch_add(1, Ordering::SeqCst);
                            }
                            Err(Error::FullInRemoveCallback) => {
                                refused.fetch_add(1, Ordering::SeqCst);
                            }
                            other => panic!("{other:?}"),
                        }
                        assert!(cache.len() <= 8, "over the bound inside the callback");
                    }
                },
            )));
        }
        let mut added = 0;
        for n in 0..100u64 {
            assert!(cache
                .add(&session(&n.to_le_bytes(), NOW))
                .unwrap()
                .is_added());
            added += 1;
            assert!(cache.len() <= 8);
        }
        let added = added + readded.load(Ordering::SeqCst);
        // The adder kept the slot it evicted for, so the callback found the cache full.
        assert_eq!(
            refused.load(Ordering::SeqCst),
            92,
            "one refusal per eviction"
        );
        (added, removed.load(Ordering::SeqCst), cache)
    });
    assert_eq!(cache.len(), 8);
    assert_eq!(
        added,
        cache.len() + removed,
        "every added session is cached or was reported"
    );
    cache.set_remove_session_callback(None);
}

/// After `set_size(n)` returns, the cache never holds more than n sessions, while other
/// threads keep adding at full speed.
#[test]
fn the_bound_holds_once_set_size_returns() {
    let clock = Arc::new(ManualClock::new(NOW));
    let cache = Arc::new(cache(0, 4, &clock));
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(0));
    let barrier = Arc::new(Barrier::new(4));
    let started = Instant::now();
    let adders: Vec<_> = (0..3)
        .map(|_| {
            let (cache, stop, next, barrier) =
                (cache.clone(), stop.clone(), next.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                while !stop.load(Ordering::Relaxed) {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    cache.add(&session(&n.to_le_bytes(), NOW)).unwrap();
                }
            })
        })
        .collect();
    barrier.wait();
    let mut over = Vec::new();
    let mut rounds = 0;
    while rounds < 200_000 && started.elapsed() < Duration::from_secs(3) {
        // Unlimited for a moment, so that the adders fill past the next limit, then a limit.
        cache.set_size(0);
        std::thread::yield_now();
        let limit = 16 + rounds % 48;
        cache.set_size(limit);
        for _ in 0..20 {
            let len = cache.len();
            if len > limit {
                over.push((limit, len));
            }
        }
        rounds += 1;
    }
    stop.store(true, Ordering::Relaxed);
    for a in adders {
        a.join().unwrap();
    }
    assert!(rounds > 100, "only {rounds} rounds");
    assert!(
        over.is_empty(),
        "over the limit after set_size returned: {:?}",
        &over[..over.len().min(10)]
    );
    assert!(cache.len() <= cache.size());
}
