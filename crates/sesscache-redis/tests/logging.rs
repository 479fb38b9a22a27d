//! The tier's tracing events, from the handshake's thread and from its own runtime's, carry
//! no session id, no secret and no key. One test in this binary: it installs the global
//! subscriber (the writer and the prober log from threads of their own).

use std::time::{Duration, Instant};

use sesscache_redis::{BreakerState, KeyRing, Tier, TierConfig};
use session_cache::ExtendedMasterSecret;
use session_cache::{CacheConfig, CacheMode, Handshake, LookupRequest, SessionCache};
use session_core::{MasterKey, ProtocolVersion, SessionBuilder, SessionId, SidCtx};
use test_support::captured_log::Captured;
use test_support::redis_server::RedisServer;

#[test]
fn the_tier_logs_what_happens_and_nothing_secret() {
    let captured = Captured::default();
    tracing::subscriber::set_global_default(captured.subscriber()).unwrap();

    let redis = RedisServer::start();
    let line = KeyRing::generate_line().unwrap();
    let secret = line.split_whitespace().nth(2).unwrap().to_owned();
    let mut config = TierConfig::new(vec![redis.url()], KeyRing::parse(&line).unwrap());
    config.probe_interval = Duration::from_millis(50);
    // A budget a loaded machine keeps for a healthy lookup; six hung ones cost 1.5 s.
    config.budget = Duration::from_millis(250);
    let tier = Tier::new(config).unwrap();
    assert!(tier.ping(Duration::from_secs(10)));
    let cache = SessionCache::new(CacheConfig::default());
    tier.attach(&cache);
    let session = SessionBuilder::new(ProtocolVersion::TLS1_2, cache.now())
        .id(SessionId::new(&[0xAB; 32]).unwrap())
        .master_key(MasterKey::new(&[0xCD; 48]).unwrap())
        .timeout(300)
        .build();
    // Issued by a handshake, to the store only: the lookup below is a remote hit.
    cache.set_mode(CacheMode::SERVER | CacheMode::NO_INTERNAL_STORE);
    assert!(Handshake::accept(&cache).issued(&cache, &session));
    cache.set_mode(CacheMode::SERVER);
    assert!(tier.flush_writes(Duration::from_secs(5)));
    let request = LookupRequest::new(
        ProtocolVersion::TLS1_2,
        &[0xAB; 32],
        SidCtx::empty(),
        ExtendedMasterSecret::NotOffered,
    );
    assert!(matches!(
        cache.lookup(&request),
        session_cache::Lookup::Hit(_)
    ));
    cache.remove(&session);
    assert!(tier.flush_writes(Duration::from_secs(5)));
    let other = LookupRequest::new(
        ProtocolVersion::TLS1_2,
        &[0xAE; 32],
        SidCtx::empty(),
        ExtendedMasterSecret::NotOffered,
    );
    redis.hang();
    for _ in 0..6 {
        cache.lookup(&other);
    }
    assert_eq!(tier.stats().breaker, BreakerState::Open);
    redis.resume();
    let deadline = Instant::now() + Duration::from_secs(10);
    while tier.stats().breaker == BreakerState::Open {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(10));
    }
    cache.lookup(&other);

    let text = captured.text();
    for expected in [
        "remote hit",
        "remote miss",
        "breaker open",
        "breaker closed",
    ] {
        assert!(text.contains(expected), "no {expected:?} in:\n{text}");
    }
    for fill in ["ab", "AB", "cd", "CD", "ae", "AE"] {
        assert!(!text.contains(&fill.repeat(8)), "{fill} bytes in:\n{text}");
    }
    assert!(
        !text.contains("171, 171, 171"),
        "id bytes as a list in:\n{text}"
    );
    assert!(!text.contains(&secret), "the key's secret in:\n{text}");
}
