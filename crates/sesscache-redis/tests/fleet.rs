//! The tier against a real `redis-server` (started by each test on a free loopback port):
//! servers of one fleet are contexts with a tier each, over simulated connections.

use std::time::{Duration, Instant};

use ctx::Role;
use sesscache_redis::{BreakerState, TierConfig, TierStats};
use session_core::{Session, SidCtx};
use test_support::redis_server::{RedisCluster, RedisServer};

mod common;

use common::{key_line, offers, ring, Client, Server, V12, V13};

#[test]
fn a_tls12_session_resumes_on_another_server() {
    let redis = RedisServer::start();
    let keys = key_line();
    let a = Server::new(vec![redis.url()], ring(&[&keys]), V12, b"fleet");
    let b = Server::new(vec![redis.url()], ring(&[&keys]), V12, b"fleet");
    let mut client = Client::new(V12);
    assert!(!client.connect(&a), "a full handshake on A");
    a.written();
    assert_eq!(a.stats().writes, 1);
    assert!(client.connect(&b), "resumed on B, from the store");
    let stats = b.stats();
    assert_eq!(
        (stats.remote_hits, stats.remote_misses),
        (1, 0),
        "{stats:?}"
    );
    assert_eq!(b.context.cache().stats().cb_hits, 1);
    assert_eq!(
        b.context.cache().len(),
        1,
        "the remote hit filled B's cache"
    );
    assert!(client.connect(&b), "and again, from B's own cache");
    assert_eq!(b.stats().remote_hits, 1);

    // An unclean end on B removes the session from B's cache and from the store.
    let offer = client.session.clone();
    let mut c = client.context.new_connection(Role::Client);
    let mut s = b.context.new_connection(Role::Server);
    c.set_session(offer.as_ref());
    c.connect(&mut s).unwrap();
    drop(s); // no shutdown
    b.written();
    assert_eq!(b.stats().deletes, 1);
    assert!(b.context.cache().is_empty());
    let c = Server::new(vec![redis.url()], ring(&[&keys]), V12, b"fleet");
    assert!(
        !client.connect_offering(&c, offer.as_ref()),
        "gone from the store"
    );
    assert_eq!(c.stats().remote_misses, 1, "{:?}", c.stats());
}

#[test]
fn a_tls13_ticket_resumes_once_in_the_whole_fleet() {
    let redis = RedisServer::start();
    let keys = key_line();
    let a = Server::new(vec![redis.url()], ring(&[&keys]), V13, b"fleet");
    let b = Server::new(vec![redis.url()], ring(&[&keys]), V13, b"fleet");
    let mut client = Client::new(V13);
    assert!(!client.connect(&a));
    a.written();
    let ticket = client.keep();
    assert!(
        client.connect_offering(&b, Some(&ticket)),
        "B claims it from the store"
    );
    assert_eq!(b.stats().remote_hits, 1);
    assert_eq!(a.context.cache().len(), 1, "A still caches its copy");
    assert!(
        !client.connect_offering(&a, Some(&ticket)),
        "used on B: refused on A, which issued it"
    );
    assert_eq!(a.stats().already_used, 1);
    assert!(
        !client.connect_offering(&b, Some(&ticket)),
        "and on B again"
    );
    assert_eq!(b.stats().already_used, 1);
    // Each server counts why: a used ticket is "already used", not an unknown one.
    let reasons = |server: &Server| server.context.cache().stats().resumptions;
    assert_eq!((reasons(&a).already_used, reasons(&a).not_offered), (1, 1));
    assert_eq!((reasons(&b).resumed, reasons(&b).already_used), (1, 1));

    // A ticket used on the server that issued it is claimed there too.
    b.written();
    let fresh = client.keep();
    assert!(
        client.connect_offering(&b, Some(&fresh)),
        "B's own ticket, locally"
    );
    assert!(
        !client.connect_offering(&a, Some(&fresh)),
        "then nowhere else"
    );

    // A ticket used before its write reached the store: the tombstone wins over the write.
    let mut quick = Client::new(V13);
    assert!(!quick.connect(&a));
    let early = quick.keep();
    assert!(quick.connect_offering(&a, Some(&early)));
    a.written();
    assert!(!quick.connect_offering(&b, Some(&early)));
}

#[test]
fn the_store_holds_neither_secrets_nor_session_ids() {
    let redis = RedisServer::start();
    let keys = key_line();
    let secret_hex = keys.split_whitespace().nth(2).unwrap().to_owned();
    let a = Server::new(vec![redis.url()], ring(&[&keys]), V12, b"fleet");
    let mut sessions = Vec::new();
    for _ in 0..10 {
        let mut client = Client::new(V12);
        client.connect(&a);
        sessions.push(client.session.unwrap());
    }
    a.written();
    let names = redis.cli(&["--scan", "--pattern", "*"]);
    let names: Vec<&[u8]> = names
        .split(|&b| b == b'\n')
        .filter(|n| !n.is_empty())
        .collect();
    assert_eq!(names.len(), 10);
    let mut everything = Vec::new();
    for name in &names {
        everything.extend_from_slice(name);
        let value = redis.cli(&["--no-raw", "GET", std::str::from_utf8(name).unwrap()]);
        everything.extend_from_slice(&redis.cli(&["GET", std::str::from_utf8(name).unwrap()]));
        everything.extend_from_slice(&value);
    }
    let contains = |needle: &[u8]| everything.windows(needle.len()).any(|w| w == needle);
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    assert!(!contains(secret_hex.as_bytes()), "the key file's secret");
    for s in &sessions {
        for form in [
            s.id().as_bytes().to_vec(),
            hex(s.id().as_bytes()).into_bytes(),
        ] {
            assert!(!contains(&form), "a session id");
        }
        for form in [s.master_key().to_vec(), hex(s.master_key()).into_bytes()] {
            assert!(!contains(&form), "a master key");
        }
    }
}

#[test]
fn values_that_do_not_open_are_counted_misses() {
    let redis = RedisServer::start();
    let (k1, k2) = (key_line(), key_line());
    let a = Server::new(vec![redis.url()], ring(&[&k1]), V12, b"fleet");
    let mut client = Client::new(V12);
    client.connect(&a);
    a.written();
    let session = client.keep();
    let name = String::from_utf8(
        a.tier
            .name_of(V12, session.sid_ctx(), session.id().as_bytes()),
    )
    .unwrap();

    // Another context with the same keys names another value: it finds nothing. Moved
    // under that name, the value does not open there (the context is bound in it too).
    let other = Server::new(vec![redis.url()], ring(&[&k1]), V12, b"another");
    assert!(!client.connect_offering(&other, Some(&session)));
    assert_eq!(
        (other.stats().remote_misses, other.stats().open_failures),
        (1, 0)
    );
    let elsewhere = SidCtx::new(b"another").unwrap();
    let theirs = other.tier.name_of(V12, &elsewhere, session.id().as_bytes());
    let copied = redis.cli(&["COPY", &name, std::str::from_utf8(&theirs).unwrap()]);
    assert_eq!(copied, b"1\n");
    assert!(!client.connect_offering(&other, Some(&session)));
    assert_eq!(other.stats().open_failures, 1);

    // A server whose key file lacks the sealing key: the value, put where it looks.
    let stranger = Server::new(vec![redis.url()], ring(&[&k2]), V12, b"fleet");
    let theirs = String::from_utf8(stranger.tier.name_of(
        V12,
        session.sid_ctx(),
        session.id().as_bytes(),
    ))
    .unwrap();
    let moved = redis.cli(&["COPY", &name, &theirs]);
    assert_eq!(moved, b"1\n");
    assert!(!client.connect_offering(&stranger, Some(&session)));
    assert_eq!(
        stranger.stats().open_failures,
        1,
        "sealed under an unknown key"
    );

    // A corrupted value.
    redis.cli(&["SETRANGE", &name, "20", "garbage"]);
    let b = Server::new(vec![redis.url()], ring(&[&k1]), V12, b"fleet");
    assert!(!client.connect_offering(&b, Some(&session)));
    assert_eq!(b.stats().open_failures, 1, "corrupted");
    assert_eq!(b.stats().errors, 0);
}

#[test]
fn key_rotation_opens_with_older_keys_until_they_are_dropped() {
    let redis = RedisServer::start();
    let (old, new) = (key_line(), key_line());
    let before = Server::new(vec![redis.url()], ring(&[&old]), V12, b"fleet");
    let mut client = Client::new(V12);
    client.connect(&before);
    before.written();
    let session = client.keep();

    let rotated = Server::new(vec![redis.url()], ring(&[&new, &old]), V12, b"fleet");
    assert!(
        client.connect_offering(&rotated, Some(&session)),
        "sealed under the previous key: resumes"
    );
    // What the rotated server makes is sealed under the new key, and opens after the old
    // key is dropped.
    let mut fresh = Client::new(V12);
    fresh.connect(&rotated);
    rotated.written();
    let dropped = Server::new(vec![redis.url()], ring(&[&new]), V12, b"fleet");
    assert!(
        !client.connect_offering(&dropped, Some(&session)),
        "the previous key is gone: no resumption"
    );
    assert!(fresh.connect(&dropped), "the new key's session resumes");
}

/// Runs handshakes on `server` offering sessions it does not hold locally (so each asks the
/// store) and returns the slowest.
fn slowest_handshake(server: &Server, offers: &[Session]) -> Duration {
    let mut client = Client::new(offers[0].version());
    offers
        .iter()
        .map(|offer| {
            let began = Instant::now();
            client.connect_offering(server, Some(offer));
            began.elapsed()
        })
        .max()
        .unwrap()
}

#[test]
fn a_hung_or_dead_store_costs_at_most_the_budget_and_the_tier_recovers() {
    let mut redis = RedisServer::start();
    let keys = key_line();
    let mut config = TierConfig::new(vec![redis.url()], ring(&[&keys]));
    config.budget = Duration::from_millis(5);
    config.probe_interval = Duration::from_millis(100);
    let issuer = Server::new(vec![redis.url()], ring(&[&keys]), V12, b"fleet");
    let b = Server::with(config, V12, b"fleet");
    let margin = Duration::from_millis(100);
    let budget = Duration::from_millis(5);

    let sessions = offers(&issuer, 40);
    issuer.written();

    // Hung: every call times out until the breaker opens, then none is made.
    redis.hang();
    let slowest = slowest_handshake(&b, &sessions[..20]);
    assert!(slowest < budget + margin, "hung store: {slowest:?}");
    let stats = b.stats();
    assert!(stats.timeouts >= 1, "{stats:?}");
    assert_eq!(stats.breaker, BreakerState::Open, "{stats:?}");
    assert_eq!(stats.breaker_opens, 1, "{stats:?}");
    assert!(stats.skipped >= 1, "{stats:?}");
    assert_eq!(stats.remote_hits, 0);
    let reasons = b.context.cache().stats().resumptions;
    assert_eq!(
        reasons.store_unavailable, 20,
        "every offer missed for want of the store: {reasons:?}"
    );
    redis.resume();
    let deadline = Instant::now() + Duration::from_secs(10);
    while b.stats().breaker == BreakerState::Open {
        assert!(Instant::now() < deadline, "the breaker closes by itself");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut client = Client::new(V12);
    assert!(
        client.connect_offering(&b, Some(&sessions[20])),
        "back: resumes"
    );

    // Dead: errors, then the breaker; a restarted (empty) store is used again.
    redis.kill();
    let slowest = slowest_handshake(&b, &sessions[21..40]);
    assert!(slowest < budget + margin, "dead store: {slowest:?}");
    let stats = b.stats();
    assert!(stats.errors + stats.timeouts >= 1, "{stats:?}");
    redis.restart_after(Duration::from_millis(200));
    let deadline = Instant::now() + Duration::from_secs(15);
    while b.stats().breaker == BreakerState::Open {
        assert!(
            Instant::now() < deadline,
            "the breaker closes after the restart"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The restarted store is empty: a new session goes in and resumes elsewhere.
    let mut fresh = Client::new(V12);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        fresh.connect(&b);
        b.written();
        if fresh.connect(&issuer) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the tier writes again after the restart"
        );
        fresh.session = None;
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sessions_spread_over_a_cluster_resume_through_any_server() {
    let cluster = RedisCluster::start();
    let keys = key_line();
    let servers: Vec<Server> = (0..3)
        .map(|_| Server::new(cluster.urls(), ring(&[&keys]), V12, b"fleet"))
        .collect();
    for s in &servers {
        assert!(s.tier.ping(Duration::from_secs(20)), "the cluster answers");
    }
    let mut clients: Vec<Client> = (0..30).map(|_| Client::new(V12)).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        assert!(!c.connect(&servers[i % 3]));
    }
    for s in &servers {
        s.written();
        assert_eq!(s.stats().writes, 10, "{:?}", s.stats());
    }
    let per_node: Vec<u64> = cluster
        .nodes()
        .iter()
        .map(|n| {
            String::from_utf8(n.cli(&["DBSIZE"]))
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        })
        .collect();
    let stored: u64 = per_node.iter().sum();
    assert!(stored > 0, "{per_node:?}");
    assert!(
        per_node.iter().filter(|&&n| n > 0).count() >= 2,
        "spread over the nodes: {per_node:?}"
    );
    assert_eq!(stored, 30);
    let mut resumed = 0;
    for (i, c) in clients.iter_mut().enumerate() {
        if c.connect(&servers[(i + 1) % 3]) {
            resumed += 1;
        }
    }
    let stats: Vec<TierStats> = servers.iter().map(Server::stats).collect();
    assert_eq!(
        resumed, 30,
        "every session resumed on another server: {stats:?}"
    );
}
