//! What the tier's tests share: servers of one fleet (contexts with a tier each, over
//! simulated connections) and their clients.

#![allow(dead_code)] // each test binary uses its own part of this

use std::time::Duration;

use ctx::{Connection, Context, ContextConfig, Role};
use sesscache_redis::{KeyRing, Tier, TierConfig, TierStats};
use session_cache::CacheConfig;
use session_core::{ProtocolVersion, Session, SidCtx};

pub(crate) fn key_line() -> String {
    KeyRing::generate_line().unwrap().to_string()
}

pub(crate) fn ring(lines: &[&str]) -> KeyRing {
    KeyRing::parse(&lines.concat()).unwrap()
}

/// A tier's configuration for tests of what the fleet shares: a lookup budget that a
/// loaded two-core machine keeps for every healthy lookup. Tests of the budget itself set
/// their own.
pub(crate) fn config(urls: Vec<String>, keys: KeyRing) -> TierConfig {
    let mut config = TierConfig::new(urls, keys);
    config.budget = Duration::from_secs(1);
    config
}

/// One server of the fleet: a context with a tier attached.
pub(crate) struct Server {
    pub(crate) context: Context,
    pub(crate) tier: Tier,
}

impl Server {
    pub(crate) fn new(
        urls: Vec<String>,
        keys: KeyRing,
        version: ProtocolVersion,
        sid_ctx: &[u8],
    ) -> Self {
        Self::with(config(urls, keys), version, sid_ctx)
    }

    pub(crate) fn with(config: TierConfig, version: ProtocolVersion, sid_ctx: &[u8]) -> Self {
        let context = Context::new(ContextConfig {
            version,
            sid_ctx: SidCtx::new(sid_ctx).unwrap(),
            cache: CacheConfig {
                timeout: 300,
                ..CacheConfig::default()
            },
            ..ContextConfig::default()
        });
        let tier = Tier::new(config).unwrap();
        tier.attach(context.cache());
        // Connected before the first handshake, as `serve` waits for it: the first
        // lookup's budget is not spent on connecting.
        tier.ping(Duration::from_secs(10));
        Self { context, tier }
    }

    pub(crate) fn stats(&self) -> TierStats {
        self.tier.stats()
    }

    /// A new client's full handshake on this server, written to the store: the client, and
    /// a copy of the session it holds (to offer, again and again).
    pub(crate) fn issue(&self) -> (Client, Session) {
        let mut client = Client::new(self.context.version());
        client.connect(self);
        self.written();
        let session = client.keep();
        (client, session)
    }

    /// Waits until the writer has written what this server made.
    pub(crate) fn written(&self) {
        assert!(self.tier.flush_writes(Duration::from_secs(5)));
    }
}

/// A client: a context of its own, and the session it holds.
pub(crate) struct Client {
    pub(crate) context: Context,
    pub(crate) session: Option<Session>,
}

impl Client {
    pub(crate) fn new(version: ProtocolVersion) -> Self {
        Self {
            context: Context::new(ContextConfig {
                version,
                ..ContextConfig::default()
            }),
            session: None,
        }
    }

    /// Connects to `server`, offering `offer` (a copy of a session this client held), and
    /// returns whether it resumed. Keeps the session the server gave.
    pub(crate) fn connect_offering(&mut self, server: &Server, offer: Option<&Session>) -> bool {
        let mut c = self.context.new_connection(Role::Client);
        let mut s: Connection = server.context.new_connection(Role::Server);
        // A copy: a client marks what it resumed with not resumable, and a replay offers it
        // again all the same.
        let offer = offer.map(|o| o.to_builder().build());
        c.set_session(offer.as_ref());
        c.connect(&mut s).unwrap();
        let resumed = s.session_reused();
        self.session = c.session_owned();
        c.shutdown();
        s.shutdown();
        resumed
    }

    pub(crate) fn connect(&mut self, server: &Server) -> bool {
        let offer = self.session.clone();
        self.connect_offering(server, offer.as_ref())
    }

    /// A copy of the session held now, to offer again later (a replay).
    pub(crate) fn keep(&self) -> Session {
        self.session.as_ref().unwrap().to_builder().build()
    }
}

pub(crate) const V12: ProtocolVersion = ProtocolVersion::TLS1_2;
pub(crate) const V13: ProtocolVersion = ProtocolVersion::TLS1_3;

/// Sessions `server` issued to `n` new clients (copies, to offer), not yet written.
pub(crate) fn offers(server: &Server, n: usize) -> Vec<Session> {
    (0..n)
        .map(|_| {
            let mut c = Client::new(server.context.version());
            c.connect(server);
            c.keep()
        })
        .collect()
}
