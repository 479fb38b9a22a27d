//! The tier's promises under faults and attack, against real `redis-server` processes: a store
//! that forgets (restart, FLUSHALL, eviction), one slower than the budget, a hung cluster
//! node, offers that belong to another context or kind, ClientHellos with many offers, and
//! the ACL docs/OPERATING.md gives.

use std::time::{Duration, Instant};

use sesscache_redis::{BreakerState, TierConfig, TierStats};
use session_cache::ExtendedMasterSecret;
use session_cache::{Lookup, LookupRequest, Miss};
use session_core::{ProtocolVersion, Session, SidCtx};
use test_support::delay_proxy::DelayProxy;
use test_support::redis_server::{RedisCluster, RedisServer};

mod common;

use common::{config, key_line, offers, ring, Client, Server, V12, V13};

/// How a store loses what it held.
#[derive(Debug, Clone, Copy)]
enum Forget {
    /// Restarted without persistence, as docs/OPERATING.md advises running it.
    Restart,
    /// `FLUSHALL`.
    Flush,
    /// Evicted under memory pressure (`allkeys-lru`).
    Evict,
}

/// Fills the store until `name` is evicted.
fn evict(redis: &RedisServer, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    for round in 0.. {
        if redis.cli(&["EXISTS", name]) == b"0\n" {
            return;
        }
        assert!(Instant::now() < deadline, "{name} was never evicted");
        // A few hundred kilobytes per round, from a server-side loop.
        redis.cli(&[
            "EVAL",
            "for i=1,200 do redis.call('SET', 'junk:'..ARGV[1]..':'..i, string.rep('x', 2000)) end",
            "0",
            &round.to_string(),
        ]);
    }
}

fn forgets(how: Forget) {
    let mut redis = match how {
        Forget::Evict => {
            RedisServer::start_with(&["--maxmemory", "4mb", "--maxmemory-policy", "allkeys-lru"])
        }
        _ => RedisServer::start(),
    };
    let keys = key_line();
    let a = Server::new(vec![redis.url()], ring(&[&keys]), V13, b"fleet");
    let b = Server::new(vec![redis.url()], ring(&[&keys]), V13, b"fleet");
    let (mut client, ticket) = a.issue();
    assert!(
        client.connect_offering(&b, Some(&ticket)),
        "{how:?}: resumed on B"
    );
    assert!(!client.connect_offering(&b, Some(&ticket)), "{how:?}: once");
    let name = a
        .tier
        .name_of(V13, ticket.sid_ctx(), ticket.id().as_bytes());
    let name = String::from_utf8(name).unwrap();
    assert_eq!(redis.cli(&["EXISTS", &name]), b"1\n", "the tombstone");

    match how {
        Forget::Restart => redis.restart_after(Duration::from_millis(100)),
        Forget::Flush => {
            redis.cli(&["FLUSHALL"]);
        }
        Forget::Evict => evict(&redis, &name),
    }
    assert_eq!(redis.cli(&["EXISTS", &name]), b"0\n", "{how:?}: forgotten");

    // A reaches the store again: two fresh handshakes, written.
    let writes = a.stats().writes;
    let deadline = Instant::now() + Duration::from_secs(15);
    while a.stats().writes < writes + 2 {
        assert!(Instant::now() < deadline, "{how:?}: A writes again");
        let mut fresh = Client::new(V13);
        fresh.connect(&a);
        a.written();
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !client.connect_offering(&a, Some(&ticket)),
        "{how:?}: the used ticket does not resume on the server that issued it"
    );
    assert_eq!(a.stats().lost_tickets, 1, "{how:?}: {:?}", a.stats());
    assert!(
        !client.connect_offering(&b, Some(&ticket)),
        "{how:?}: nor on another"
    );
}

#[test]
fn a_used_ticket_stays_used_when_the_store_restarts() {
    forgets(Forget::Restart);
}

#[test]
fn a_used_ticket_stays_used_when_the_store_is_flushed() {
    forgets(Forget::Flush);
}

#[test]
fn a_used_ticket_stays_used_when_the_store_evicts_its_tombstone() {
    forgets(Forget::Evict);
}

#[test]
fn a_ticket_whose_write_never_left_is_claimed_without_the_store() {
    let redis = RedisServer::start();
    let keys = key_line();
    let mut config = config(vec![redis.url()], ring(&[&keys]));
    config.probe_interval = Duration::from_secs(60);
    let a = Server::with(config, V13, b"fleet");
    let b = Server::new(vec![redis.url()], ring(&[&keys]), V13, b"fleet");
    // The store hangs: A's first write times out (it may have reached the store: such
    // tickets are refused once the store forgets), and then A's writes stop.
    redis.hang();
    let mut clients: Vec<Client> = (0..12).map(|_| Client::new(V13)).collect();
    for c in &mut clients {
        assert!(!c.connect(&a));
        a.tier.flush_writes(Duration::from_secs(2));
    }
    let stats = a.stats();
    assert!(stats.dropped_writes >= 1, "{stats:?}");
    redis.resume();
    // The tickets A never sent resume on A, once, with no store call.
    let before = redis.session_commands();
    let mut resumed = 0;
    for c in &mut clients {
        let ticket = c.keep();
        if c.connect_offering(&a, Some(&ticket)) {
            resumed += 1;
            assert!(!c.connect_offering(&a, Some(&ticket)), "once");
            assert!(!c.connect_offering(&b, Some(&ticket)), "and nowhere else");
        }
    }
    let stats = a.stats();
    // Every ticket resumes once: those whose write timed out (it reached the store once the
    // store went on) through the store, the others without it.
    assert_eq!(resumed, 12, "{stats:?}");
    assert!(stats.local_claims >= 1, "{stats:?}");
    a.written();
    b.written();
    let after = redis.session_commands();
    // Per resumed ticket: the new ticket's write, A's and B's claims of the used one; and a
    // claim in the store for each ticket that was written. A claimed the others without it.
    assert!(
        after - before <= 4 * resumed - stats.local_claims,
        "{before} -> {after}: {stats:?}"
    );
}

#[test]
fn a_tombstone_outlives_its_ticket_by_the_margin() {
    let redis = RedisServer::start();
    let keys = key_line();
    let a = Server::new(vec![redis.url()], ring(&[&keys]), V13, b"fleet");
    let b = Server::new(vec![redis.url()], ring(&[&keys]), V13, b"fleet");
    let (mut client, ticket) = a.issue();
    let name = a
        .tier
        .name_of(V13, ticket.sid_ctx(), ticket.id().as_bytes());
    let name = String::from_utf8(name).unwrap();
    assert!(client.connect_offering(&b, Some(&ticket)));
    let ttl: u64 = String::from_utf8(redis.cli(&["TTL", &name]))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The ticket lives 300 s (the servers' timeout); the default margin is 300 s more.
    assert!(
        (590..=600).contains(&ttl),
        "the tombstone lives {ttl} s: the ticket's 300 s and the margin"
    );
}

#[test]
fn offers_from_another_context_or_of_another_kind_burn_nothing() {
    let redis = RedisServer::start();
    let keys = key_line();
    let issuer = Server::new(vec![redis.url()], ring(&[&keys]), V13, b"stack-a");
    let other = Server::new(vec![redis.url()], ring(&[&keys]), V13, b"stack-b");
    let peer = Server::new(vec![redis.url()], ring(&[&keys]), V13, b"stack-a");
    let (mut client, ticket) = issuer.issue();
    assert!(!client.connect_offering(&other, Some(&ticket)));
    assert!(
        client.connect_offering(&peer, Some(&ticket)),
        "a ticket offered to another stack's server is not burnt there"
    );

    // A TLS 1.2 session id offered as a TLS 1.3 ticket (a PSK identity) names another value.
    let old = Server::new(vec![redis.url()], ring(&[&keys]), V12, b"stack-a");
    let (mut c12, session) = old.issue();
    let cache = peer.context.cache();
    let as_ticket = offer(
        V13,
        session.id().as_bytes(),
        SidCtx::new(b"stack-a").unwrap(),
        true,
    );
    assert!(matches!(cache.lookup_take(&as_ticket), Lookup::Miss(_)));
    let again = Server::new(vec![redis.url()], ring(&[&keys]), V12, b"stack-a");
    assert!(
        c12.connect_offering(&again, Some(&session)),
        "the TLS 1.2 session still resumes"
    );
}

/// An offer as a TLS stack that checks the extended master secret itself makes it.
fn offer(version: ProtocolVersion, id: &[u8], sid_ctx: SidCtx, first: bool) -> LookupRequest<'_> {
    LookupRequest {
        first_offer: first,
        ..LookupRequest::new(version, id, sid_ctx, ExtendedMasterSecret::CheckedByStack)
    }
}

#[test]
fn only_a_handshakes_first_offer_asks_the_store() {
    let redis = RedisServer::start();
    let keys = key_line();
    let issuer = Server::new(vec![redis.url()], ring(&[&keys]), V13, b"fleet");
    let other = Server::new(vec![redis.url()], ring(&[&keys]), V13, b"fleet");
    let (_, ticket) = issuer.issue();
    let ctx = SidCtx::new(b"fleet").unwrap();
    let cache = other.context.cache();
    let before = redis.session_commands();
    for _ in 0..100 {
        let later = offer(V13, ticket.id().as_bytes(), ctx, false);
        assert!(matches!(
            cache.lookup_take(&later),
            Lookup::Miss(Miss::UnknownId)
        ));
        let later = offer(V12, ticket.id().as_bytes(), ctx, false);
        assert!(matches!(cache.lookup(&later), Lookup::Miss(_)));
    }
    assert_eq!(redis.session_commands(), before, "no store command");
    assert_eq!(other.stats().later_offers, 200);
    let first = offer(V13, ticket.id().as_bytes(), ctx, true);
    assert!(matches!(cache.lookup_take(&first), Lookup::Hit(_)));
    assert_eq!(redis.session_commands(), before + 1, "one claim");
}

#[test]
fn lookups_slower_than_the_budget_open_the_breaker_whatever_the_writes_do() {
    let redis = RedisServer::start();
    let proxy = DelayProxy::start(redis.port(), Duration::from_millis(50));
    let keys = key_line();
    let mut config = TierConfig::new(vec![proxy.url()], ring(&[&keys]));
    config.probe_interval = Duration::from_millis(100);
    let a = Server::with(config, V13, b"fleet");
    let issuer = Server::new(vec![redis.url()], ring(&[&keys]), V13, b"fleet");
    // Tickets A does not hold: each offer is a claim in the store, and times out; between
    // them A's own writes succeed, within their longer budget.
    let foreign: Vec<Session> = (0..12)
        .map(|_| {
            let mut c = Client::new(V13);
            c.connect(&issuer);
            c.keep()
        })
        .collect();
    issuer.written();
    for ticket in &foreign {
        let mut c = Client::new(V13);
        assert!(!c.connect(&a));
        assert!(a.tier.flush_writes(Duration::from_secs(5)));
        let began = Instant::now();
        assert!(!c.connect_offering(&a, Some(ticket)));
        assert!(began.elapsed() < Duration::from_millis(100));
    }
    let stats = a.stats();
    assert!(stats.writes >= 1, "writes succeed: {stats:?}");
    assert_eq!(stats.breaker, BreakerState::Open, "{stats:?}");
    assert!(stats.timeouts >= 5 && stats.skipped >= 1, "{stats:?}");
    // The prober measures the store's round trip, and says it is above the budget.
    let deadline = Instant::now() + Duration::from_secs(5);
    while a.stats().round_trip_us < 50_000 {
        assert!(Instant::now() < deadline, "{:?}", a.stats());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(a.stats().breaker, BreakerState::Open, "stays open");
    // Meanwhile A resumes the tickets it issues itself.
    let mut resumed = 0;
    for _ in 0..10 {
        let mut c = Client::new(V13);
        c.connect(&a);
        a.tier.flush_writes(Duration::from_secs(5));
        if c.connect(&a) {
            resumed += 1;
        }
    }
    assert_eq!(resumed, 10, "{:?}", a.stats());
}

/// Resident memory of this process, in kilobytes.
fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[test]
fn a_hung_cluster_node_costs_only_its_own_keys_and_nothing_piles_up() {
    // A primary without a replica that stops answering: the other primaries keep serving
    // their slots (the cluster does not require full coverage).
    let cluster = RedisCluster::start_with(&["--cluster-require-full-coverage", "no"]);
    let keys = key_line();
    let issuer = Server::new(cluster.urls(), ring(&[&keys]), V12, b"fleet");
    let mut config = TierConfig::new(cluster.urls(), ring(&[&keys]));
    config.probe_interval = Duration::from_millis(100);
    // A budget that a loaded two-core machine keeps for every healthy lookup: what is
    // measured is which keys resume, not how fast.
    let budget = Duration::from_millis(50);
    config.budget = budget;
    let looker = Server::with(config, V12, b"fleet");
    for s in [&issuer, &looker] {
        assert!(s.tier.ping(Duration::from_secs(20)));
    }
    let sessions = offers(&issuer, 60);
    issuer.written();
    let hung = &cluster.nodes()[0];
    let on_hung: Vec<bool> = sessions
        .iter()
        .map(|s| {
            let name = issuer.tier.name_of(V12, s.sid_ctx(), s.id().as_bytes());
            hung.cli(&["EXISTS", std::str::from_utf8(&name).unwrap()]) == b"1\n"
        })
        .collect();
    // Each round offers the hung node's keys first, in a row: a breaker for the whole
    // cluster would open on them and then skip the healthy nodes' keys too.
    let (sessions, on_hung): (Vec<Session>, Vec<bool>) = {
        let mut pairs: Vec<(Session, bool)> = sessions.into_iter().zip(on_hung).collect();
        pairs.sort_by_key(|(_, hung)| !*hung);
        pairs.into_iter().unzip()
    };
    let hung_count = on_hung.iter().filter(|&&h| h).count();
    assert!((5..60).contains(&hung_count), "{hung_count} on node 0");
    // Let the looker learn the slot map.
    std::thread::sleep(Duration::from_millis(500));

    hung.hang();
    let began = Instant::now();
    let hang_for = Duration::from_secs(30);
    let (mut max_in_flight, mut slowest) = (0, Duration::ZERO);
    let mut rss_after_warmup = None;
    let mut rounds = 0u64;
    let mut healthy_misses_after_first_round = 0;
    while began.elapsed() < hang_for {
        looker.context.cache().flush_all();
        let mut client = Client::new(V12);
        for (s, &on_hung) in sessions.iter().zip(&on_hung) {
            let at = Instant::now();
            let resumed = client.connect_offering(&looker, Some(s));
            slowest = slowest.max(at.elapsed());
            if !on_hung && !resumed && rounds > 0 {
                healthy_misses_after_first_round += 1;
            }
        }
        max_in_flight = max_in_flight.max(looker.stats().in_flight);
        rounds += 1;
        if rss_after_warmup.is_none() && began.elapsed() > Duration::from_secs(5) {
            rss_after_warmup = Some(rss_kb());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let stats = looker.stats();
    let rss_end = rss_kb();
    hung.resume();
    assert_eq!(
        healthy_misses_after_first_round, 0,
        "keys on the healthy primaries resume throughout: {stats:?}"
    );
    assert!(stats.nodes_open >= 1 && stats.skipped > 0, "{stats:?}");
    assert!(
        slowest < budget + Duration::from_millis(100),
        "slowest handshake {slowest:?}"
    );
    assert!(
        max_in_flight <= 16,
        "in flight at most {max_in_flight}: {stats:?}"
    );
    let warm = rss_after_warmup.unwrap();
    assert!(
        rss_end <= warm + warm / 10 + 4096,
        "memory {warm} kB -> {rss_end} kB over {rounds} rounds"
    );
    // Back: the node's keys resume again.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut client = Client::new(V12);
    let on_node: Vec<&Session> = sessions
        .iter()
        .zip(&on_hung)
        .filter(|(_, &h)| h)
        .map(|(s, _)| s)
        .collect();
    loop {
        looker.context.cache().flush_all();
        if client.connect_offering(&looker, Some(on_node[0])) {
            break;
        }
        assert!(Instant::now() < deadline, "{:?}", looker.stats());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The node of `cluster` that holds (or would hold) `name`: found by writing it through a
/// cluster-aware client, then deleted.
fn node_of(cluster: &RedisCluster, name: &[u8]) -> usize {
    let name = std::str::from_utf8(name).unwrap();
    let nodes = cluster.nodes();
    let present = |n: &RedisServer| n.cli(&["EXISTS", name]) == b"1\n";
    if let Some(i) = nodes.iter().position(present) {
        return i;
    }
    nodes[0].cli(&["-c", "SET", name, "probe"]);
    let i = nodes.iter().position(present).expect("written somewhere");
    nodes[0].cli(&["-c", "DEL", name]);
    i
}

#[test]
fn during_a_key_rotation_a_hung_node_costs_only_the_names_it_holds() {
    let cluster = RedisCluster::start_with(&["--cluster-require-full-coverage", "no"]);
    let (old, new) = (key_line(), key_line());
    let issuer = Server::new(cluster.urls(), ring(&[&old]), V12, b"fleet");
    let mut config = TierConfig::new(cluster.urls(), ring(&[&new, &old]));
    config.probe_interval = Duration::from_millis(100);
    config.budget = Duration::from_millis(50);
    let looker = Server::with(config, V12, b"fleet");
    for s in [&issuer, &looker] {
        assert!(s.tier.ping(Duration::from_secs(20)));
    }
    let sessions = offers(&issuer, 60);
    issuer.written();
    // Sessions whose value (under the old key's name) is on a healthy node while the name
    // the looker tries first (the new key's) is on the node that hangs.
    let hung = 0;
    let chosen: Vec<&Session> = sessions
        .iter()
        .filter(|s| {
            let (ctx, id) = (s.sid_ctx(), s.id().as_bytes());
            node_of(&cluster, &looker.tier.name_of(V12, ctx, id)) == hung
                && node_of(&cluster, &issuer.tier.name_of(V12, ctx, id)) != hung
        })
        .collect();
    assert!(chosen.len() >= 3, "{} sessions to offer", chosen.len());
    std::thread::sleep(Duration::from_millis(500)); // the looker learns the slot map
    cluster.nodes()[hung].hang();
    let began = Instant::now();
    let mut misses = 0;
    let mut rounds = 0;
    while began.elapsed() < Duration::from_secs(8) {
        looker.context.cache().flush_all();
        let mut client = Client::new(V12);
        for s in &chosen {
            if !client.connect_offering(&looker, Some(s)) {
                misses += 1;
            }
        }
        rounds += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    let stats = looker.stats();
    cluster.nodes()[hung].resume();
    assert_eq!(
        misses,
        0,
        "{rounds} rounds of {} offers: {stats:?}",
        chosen.len()
    );
    assert!(stats.nodes_open >= 1, "{stats:?}");
}

/// The ACL lines docs/OPERATING.md gives for the tier's user, with `PASSWORD` as given.
fn documented_acl(password: &str) -> Vec<String> {
    let readme = include_str!("../../../docs/OPERATING.md");
    let line = readme
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("user sesscache on"))
        .expect("docs/OPERATING.md gives the tier's ACL as a `user sesscache on ...` line");
    line.trim_end_matches('`')
        .split_whitespace()
        .skip(1)
        .map(|w| w.replace("PASSWORD", password))
        .collect()
}

fn set_acl(node: &RedisServer, words: &[String]) {
    let mut args = vec!["ACL", "SETUSER"];
    args.extend(words.iter().map(String::as_str));
    assert_eq!(node.cli(&args), b"OK\n", "{words:?}");
}

fn with_user(urls: Vec<String>, password: &str) -> TierConfig {
    let urls = urls
        .into_iter()
        .map(|u| u.replace("redis://", "redis://sesscache@"))
        .collect();
    let mut config = config(urls, ring(&[&key_line()]));
    config.password = Some(password.to_owned().into());
    config
}

fn shares_through(urls: Vec<String>, password: &str) -> (TierStats, bool) {
    let keys = key_line();
    let config = |urls: Vec<String>| {
        let mut c = with_user(urls, password);
        c.keys = ring(&[&keys]);
        c
    };
    let a = Server::with(config(urls.clone()), V12, b"fleet");
    let b = Server::with(config(urls), V12, b"fleet");
    let mut client = Client::new(V12);
    client.connect(&a);
    a.written();
    let resumed = client.connect(&b);
    let stats = a.stats().merged(&b.stats());
    (stats, resumed)
}

#[test]
fn the_documented_acl_lets_the_tier_in_on_a_server_and_a_cluster() {
    let password = "correct-horse";
    let redis = RedisServer::start();
    set_acl(&redis, &documented_acl(password));
    let (stats, resumed) = shares_through(vec![redis.url()], password);
    assert!(resumed, "single server: {stats:?}");
    assert_eq!(stats.refused, 0, "{stats:?}");

    let cluster = RedisCluster::start();
    for node in cluster.nodes() {
        set_acl(node, &documented_acl(password));
    }
    let (stats, resumed) = shares_through(cluster.urls(), password);
    assert!(resumed, "cluster: {stats:?}");
    assert_eq!(stats.refused, 0, "{stats:?}");
}

#[test]
fn a_store_that_keeps_refusing_the_tier_is_counted_every_time() {
    let redis = RedisServer::start();
    // A user that may not SET: every write is refused.
    let words: Vec<String> = "sesscache on >pw ~sesscache:* +get +ping"
        .split(' ')
        .map(str::to_owned)
        .collect();
    set_acl(&redis, &words);
    let a = Server::with(with_user(vec![redis.url()], "pw"), V12, b"fleet");
    for _ in 0..3 {
        let mut c = Client::new(V12);
        c.connect(&a);
        a.written();
    }
    let stats = a.stats();
    assert!(stats.refused >= 3, "{stats:?}");
    assert_eq!(stats.writes, 0);
}

#[test]
fn a_cluster_that_refuses_the_tier_is_counted_and_logged_until_it_lets_it_in() {
    // Without `+cluster|slots` the cluster client cannot read the slot map: every attempt
    // to connect is refused.
    let cluster = RedisCluster::start();
    let words: Vec<String> = "sesscache on >pw ~sesscache:* +get +set +del +ping"
        .split(' ')
        .map(str::to_owned)
        .collect();
    for node in cluster.nodes() {
        set_acl(node, &words);
    }
    let a = Server::with(with_user(cluster.urls(), "pw"), V12, b"fleet");
    let deadline = Instant::now() + Duration::from_secs(10);
    while a.stats().refused < 2 {
        assert!(Instant::now() < deadline, "{:?}", a.stats());
        std::thread::sleep(Duration::from_millis(50));
    }
    // The documented lines let it in: it connects by itself.
    for node in cluster.nodes() {
        set_acl(node, &documented_acl("pw"));
    }
    assert!(a.tier.ping(Duration::from_secs(15)), "{:?}", a.stats());
}
