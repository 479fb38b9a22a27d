//! Many threads run simulated connections against one server context (full handshakes,
//! resumptions, connections dropped without shutdown) while another thread moves the clock,
//! flushes, changes the default timeout and renews cached sessions. Bounded in count and time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use ctx::{Context, ContextConfig, Role};
use session_cache::{CacheConfig, CacheMode};
use session_core::{ManualClock, ProtocolVersion, Session};

const THREADS: usize = 4;
const CONNECTIONS: usize = 3_000;
const SIZE: usize = 100;
const DEADLINE: Duration = Duration::from_secs(20);

/// A session a client holds must be whole: a 32-byte id and a 48-byte secret, not zeros.
#[track_caller]
fn check_intact(s: &Session) {
    assert_eq!(s.id().as_bytes().len(), 32);
    assert_eq!(s.master_key().len(), 48);
    assert!(
        s.master_key().iter().any(|&b| b != 0),
        "a held session was zeroized"
    );
}

fn run(version: ProtocolVersion) {
    let clock = Arc::new(ManualClock::new(1_700_000_000));
    let server = Context::new(ContextConfig {
        version,
        cache: CacheConfig {
            size: SIZE,
            timeout: 60,
            clock: clock.clone(),
            ..CacheConfig::default()
        },
        ..ContextConfig::default()
    });
    let client = Context::new(ContextConfig {
        version,
        cache: CacheConfig {
            mode: CacheMode::OFF,
            clock: clock.clone(),
            ..CacheConfig::default()
        },
        ..ContextConfig::default()
    });
    let done = AtomicBool::new(false);
    let barrier = Barrier::new(THREADS + 1);
    let started = Instant::now();

    let (offers, resumed) = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let (server, client, barrier) = (&server, &client, &barrier);
                scope.spawn(move || {
                    let mut held: Vec<Session> = Vec::new();
                    let (mut offers, mut resumed) = (0u64, 0u64);
                    barrier.wait();
                    for i in 0..CONNECTIONS {
                        if started.elapsed() > DEADLINE {
                            break;
                        }
                        let mut c = client.new_connection(Role::Client);
                        let mut s = server.new_connection(Role::Server);
                        let offer = (i % 4 != 0)
                            .then(|| held.get((i * 7 + t) % held.len().max(1)))
                            .flatten();
                        c.set_session(offer);
                        let sent = c.connect(&mut s).unwrap();
                        offers += u64::from(!sent.session_id.is_empty());
                        resumed += u64::from(s.session_reused());
                        let session = c.session_owned().unwrap();
                        check_intact(&session);
                        if i % 10 == 0 {
                            // Both ends break off: the server forgets the session.
                            drop(s);
                            assert!(server
                                .cache()
                                .get(session.version(), session.id().as_bytes())
                                .is_none());
                        } else {
                            s.shutdown();
                        }
                        c.shutdown();
                        held.push(session);
                        if held.len() > 64 {
                            held.remove(0);
                        }
                        assert!(server.cache().len() <= SIZE);
                        for h in held.iter().rev().take(3) {
                            check_intact(h);
                        }
                    }
                    (offers, resumed)
                })
            })
            .collect();

        scope.spawn(|| {
            barrier.wait();
            let mut round = 0u64;
            while !done.load(Ordering::SeqCst) && started.elapsed() < DEADLINE {
                clock.advance(1);
                server.cache().flush();
                if round.is_multiple_of(7) {
                    server.cache().set_timeout(30 + round % 60);
                }
                if let Some(s) = server.cache().sessions().first() {
                    server.cache().set_session_timeout(s, 10 + round % 50);
                }
                assert!(server.cache().len() <= SIZE);
                round += 1;
                std::thread::yield_now();
            }
        });

        let totals = workers
            .into_iter()
            .map(|w| w.join().unwrap())
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        done.store(true, Ordering::SeqCst);
        totals
    });

    let stats = server.cache().stats();
    assert_eq!(
        stats.hits + stats.misses + stats.timeouts,
        offers,
        "{stats:?}"
    );
    assert_eq!(stats.accept, stats.accept_good);
    assert!(stats.number <= SIZE);
    assert!(
        resumed > 0 && stats.hits > 0,
        "no resumption happened: {stats:?}"
    );
    // TLS 1.3 too: a ticket is looked up and taken in one step, so a hit is a resumption.
    assert_eq!(stats.hits, resumed);
}

#[test]
fn concurrent_tls12_connections_keep_the_invariants() {
    run(ProtocolVersion::TLS1_2);
}

#[test]
fn concurrent_tls13_connections_keep_the_invariants() {
    run(ProtocolVersion::TLS1_3);
}
