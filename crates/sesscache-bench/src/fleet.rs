//! A fleet tier on a loopback `redis-server` for the measurements: the store, a tier, and a
//! cache behind it holding known sessions.

use std::sync::Arc;
use std::time::Duration;

use sesscache_redis::{KeyRing, Tier, TierConfig};
use session_cache::ExtendedMasterSecret;
use session_cache::{CacheConfig, CacheMode, Handshake, LookupRequest, SessionCache};
use session_core::{ManualClock, Session, SidCtx};
use test_support::redis_server::RedisServer;

/// The time the bench's clock shows.
pub const NOW: u64 = 1_700_000_000;

/// A store, a tier over it and a cache with the tier attached.
pub struct Fleet {
    /// The store (killed when this is dropped).
    pub redis: RedisServer,
    /// The tier.
    pub tier: Tier,
    /// The cache, with the tier's hooks.
    pub cache: SessionCache,
    /// Sessions written to the store (not in `cache`).
    pub remote: Vec<Session>,
    /// Sessions in `cache` (and in the store).
    pub local: Vec<Session>,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet").field("tier", &self.tier).finish()
    }
}

/// A lookup request for a session of the fleet.
pub fn request(session: &Session) -> LookupRequest<'_> {
    LookupRequest::new(
        session.version(),
        session.id().as_bytes(),
        SidCtx::empty(),
        ExtendedMasterSecret::NotOffered,
    )
}

impl Fleet {
    /// Starts a store and writes `n` sessions to it through a first cache (then dropped), and
    /// `n` more through the returned cache (which keeps them). The returned cache does not
    /// store what the store gives it (`NO_INTERNAL_STORE`), so a remote hit stays remote.
    pub fn start(n: usize, budget: Duration, breaker_failures: u32) -> Self {
        let redis = RedisServer::start();
        let keys = KeyRing::parse(&KeyRing::generate_line().expect("a key")).expect("a key line");
        let mut config = TierConfig::new(vec![redis.url()], keys);
        config.budget = budget;
        config.breaker_failures = breaker_failures;
        let tier = Tier::new(config).expect("a tier");
        assert!(tier.ping(Duration::from_secs(5)), "the store answers");
        let clock = Arc::new(ManualClock::new(NOW));
        let cache = SessionCache::new(CacheConfig {
            size: 0,
            clock: clock.clone(),
            ..CacheConfig::default()
        });
        tier.attach(&cache);
        let make = |i: usize| {
            let id = format!("fleet-session-{i:012}");
            test_support::session(id.as_bytes(), NOW, 3_600)
        };
        // Each session issued by a handshake: the first n go only to the store.
        let issue = |s: &Session| Handshake::accept(&cache).issued(&cache, s);
        cache.set_mode(CacheMode::SERVER | CacheMode::NO_INTERNAL_STORE);
        let remote: Vec<Session> = (0..n).map(make).collect();
        remote.iter().for_each(|s| assert!(issue(s)));
        cache.set_mode(CacheMode::SERVER);
        let local: Vec<Session> = (n..2 * n).map(make).collect();
        local.iter().for_each(|s| assert!(issue(s)));
        assert!(tier.flush_writes(Duration::from_secs(30)), "written");
        cache.set_mode(CacheMode::SERVER | CacheMode::NO_INTERNAL_STORE);
        Self {
            redis,
            tier,
            cache,
            remote,
            local,
        }
    }

    /// The store's names of the remote sessions, in order.
    pub fn remote_names(&self) -> Vec<Vec<u8>> {
        self.remote
            .iter()
            .map(|s| {
                self.tier
                    .name_of(s.version(), s.sid_ctx(), s.id().as_bytes())
            })
            .collect()
    }

    /// A plain blocking connection to the store (the redis crate's own, no runtime): the
    /// round trip's floor.
    pub fn blocking_connection(&self) -> redis::Connection {
        redis::Client::open(self.redis.url())
            .and_then(|c| c.get_connection())
            .expect("a blocking connection")
    }

    /// An id no session has.
    pub fn absent(i: usize) -> Session {
        let id = format!("absent-session-{i:012}");
        test_support::session(id.as_bytes(), NOW, 3_600)
    }
}

/// One `GET` on a blocking connection; the value must be there.
pub fn blocking_get(conn: &mut redis::Connection, name: &[u8]) -> Vec<u8> {
    let value: Option<Vec<u8>> = redis::cmd("GET").arg(name).query(conn).expect("a reply");
    value.expect("a value")
}
