//! The context (`SSL_CTX`): owns the session cache and the settings its connections share.

use std::fmt;
use std::sync::{Arc, Weak};

use session_cache::{CacheConfig, SessionCache};
use session_core::{
    CipherSuite, MasterKey, ProtocolVersion, Session, SessionBuilder, SessionId, SidCtx,
};

use crate::ids::IdSource;
use crate::{Connection, Role};

/// How a context starts out.
#[derive(Debug, Clone)]
pub struct ContextConfig {
    /// The protocol version its handshakes negotiate (the highest it supports).
    pub version: ProtocolVersion,
    /// The session id context its server connections put in, and require of, sessions.
    pub sid_ctx: SidCtx,
    /// Whether its connections use the extended master secret (RFC 7627).
    pub extended_master_secret: bool,
    /// The cipher suite its handshakes pick.
    pub cipher: CipherSuite,
    /// The session cache.
    pub cache: CacheConfig,
}

impl Default for ContextConfig {
    fn default() -> Self {
        Self {
            version: ProtocolVersion::TLS1_3,
            sid_ctx: SidCtx::empty(),
            extended_master_secret: true,
            cipher: CipherSuite(0x1301),
            cache: CacheConfig::default(),
        }
    }
}

pub(crate) struct Inner {
    pub(crate) cache: SessionCache,
    pub(crate) config: ContextConfig,
    ids: IdSource,
}

/// A context (OpenSSL's `SSL_CTX`). Cloning takes another handle (`SSL_CTX_up_ref`); when the
/// last handle goes, connections included, the cache is flushed (remove callbacks run) and
/// freed. Sessions held elsewhere stay valid.
///
/// The cache owns its callbacks, so a callback must not hold a `Context`: that handle would
/// keep the context alive after every other one is gone, and its cache would never be
/// flushed nor its sessions wiped. Callbacks receive the cache as an argument; one that
/// needs the context holds a [`WeakContext`] ([`Context::downgrade`]).
#[derive(Clone)]
#[doc(alias = "SSL_CTX")]
pub struct Context(pub(crate) Arc<Inner>);

impl Context {
    /// A context with its own empty cache.
    #[doc(alias = "SSL_CTX_new")]
    pub fn new(config: ContextConfig) -> Self {
        Self(Arc::new(Inner {
            cache: SessionCache::new(config.cache.clone()),
            config,
            ids: IdSource::new(),
        }))
    }

    /// Another handle to the same context.
    #[doc(alias = "SSL_CTX_up_ref")]
    #[must_use]
    pub fn up_ref(&self) -> Self {
        self.clone()
    }

    /// The context's session cache: borrowed from the context, so it cannot outlive it.
    pub fn cache(&self) -> &SessionCache {
        &self.0.cache
    }

    /// The protocol version handshakes negotiate.
    pub fn version(&self) -> ProtocolVersion {
        self.0.config.version
    }

    /// The session id context.
    #[doc(alias = "SSL_CTX_set_session_id_context")]
    pub fn sid_ctx(&self) -> SidCtx {
        self.0.config.sid_ctx
    }

    /// A new connection in `role` that holds this context until it is dropped.
    #[doc(alias = "SSL_new")]
    pub fn new_connection(&self, role: Role) -> Connection {
        Connection::new(self.clone(), role)
    }

    /// A handle that does not keep the context alive: what a callback of its cache holds if
    /// it needs the context.
    pub fn downgrade(&self) -> WeakContext {
        WeakContext(Arc::downgrade(&self.0))
    }

    /// How many handles to this context exist (connections included).
    pub fn ref_count(&self) -> usize {
        Arc::strong_count(&self.0)
    }

    /// A fresh session as a full handshake makes one: a new id and secret, the context's
    /// timeout and session id context, made now.
    pub(crate) fn make_session(&self, version: ProtocolVersion, ems: bool) -> Session {
        let (id, secret) = self.0.ids.next();
        let cache = self.cache();
        SessionBuilder::new(version, cache.now())
            .id(SessionId::new(&id).expect("32 bytes is the limit"))
            .master_key(MasterKey::new(&secret).expect("48 bytes fit"))
            .cipher(self.0.config.cipher)
            .sid_ctx(self.0.config.sid_ctx)
            .timeout(cache.timeout())
            .extended_master_secret(ems)
            .build()
    }
}

/// A handle to a context that does not keep it alive ([`Context::downgrade`]).
#[derive(Clone)]
pub struct WeakContext(Weak<Inner>);

impl WeakContext {
    /// A handle to the context, if any other handle still keeps it alive.
    pub fn upgrade(&self) -> Option<Context> {
        self.0.upgrade().map(Context)
    }
}

impl fmt::Debug for WeakContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WeakContext")
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("version", &self.version())
            .field("sid_ctx", &self.sid_ctx())
            .field("cache", self.cache())
            .finish_non_exhaustive()
    }
}
