//! The server side: rustls's `StoresServerSessions` over a context's cache.

use std::fmt;
use std::sync::Arc;

use ctx::Context;
use rustls::server::StoresServerSessions;
use session_cache::{CacheMode, Lookup, LookupRequest};
use session_core::{AppBytes, SessionBuilder, SessionData, SessionId};
use zeroize::Zeroizing;

/// A rustls server's session store (set it as `ServerConfig::session_storage`) that keeps
/// sessions in a context's cache.
///
/// rustls hands the store an opaque key (a 32-byte session id or ticket) and an opaque value
/// (its own encoding of the session, secret included). Each becomes a cached session under
/// (the context's protocol version, key): rustls does not say which version a key belongs to,
/// and its value carries the version, which rustls checks on resumption. The session's time
/// is the cache clock's now and its timeout the cache's, so the cache expires it. rustls's
/// value is the session's application data, as [`AppBytes`] (wiped with the session, and
/// carried by the fleet tier).
///
/// The store goes through the cache's hooks as an OpenSSL server does: the mode decides what
/// is cached (`SERVER`, `NO_INTERNAL_STORE`), the new-session callback sees every session
/// rustls makes, and lookups ask the get-session and take-session callbacks.
#[derive(Clone)]
pub struct ServerSessions {
    context: Context,
}

impl ServerSessions {
    /// A store over `context`'s cache. The store holds a handle to the context: configs
    /// rebuilt with a store over the same context share one cache.
    pub fn new(context: &Context) -> Arc<Self> {
        Arc::new(Self {
            context: context.clone(),
        })
    }

    /// The context whose cache this is.
    pub fn context(&self) -> &Context {
        &self.context
    }

    fn request<'k>(&self, key: &'k [u8]) -> LookupRequest<'k> {
        LookupRequest::new(self.context.version(), key, self.context.sid_ctx())
    }

    fn value(session: &SessionData) -> Option<Vec<u8>> {
        let stored = session.app_data()?.downcast_ref::<AppBytes>()?;
        Some(stored.as_bytes().to_vec())
    }
}

impl StoresServerSessions for ServerSessions {
    /// Caches a session rustls made: a new session id (TLS 1.2) or stateful ticket (TLS 1.3),
    /// in the internal cache unless the mode says `NO_INTERNAL_STORE`, then runs the
    /// new-session callback (OpenSSL's `ssl_update_cache`).
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        // The key is the session id: wiped when dropped. The value moves into the session.
        let key = Zeroizing::new(key);
        let cache = self.context.cache();
        if !self.can_cache() {
            return false;
        }
        let Ok(id) = SessionId::new(&key) else {
            return false; // longer than any id OpenSSL keeps: rustls's keys are 32 bytes
        };
        let session = SessionBuilder::new(self.context.version(), cache.now())
            .id(id)
            .sid_ctx(self.context.sid_ctx())
            .timeout(cache.timeout())
            .app_data(Some(Arc::new(AppBytes::new(value))))
            .build();
        let stored =
            cache.mode().contains(CacheMode::NO_INTERNAL_STORE) || cache.add(&session).is_ok();
        cache.notify_new_session(&session);
        stored
    }

    /// A TLS 1.2 client offered a session id: a lookup, counted as OpenSSL counts it.
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        match self.context.cache().lookup(&self.request(key)) {
            Lookup::Hit(session) => Self::value(&session),
            _ => None, // a miss, a timeout or an abort: a full handshake
        }
    }

    /// A TLS 1.3 client offered a stateful ticket: found, it is removed, so it resumes once.
    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        match self.context.cache().lookup_take(&self.request(key)) {
            Lookup::Hit(session) => Self::value(&session),
            _ => None, // a miss, a timeout or an abort: a full handshake
        }
    }

    /// Whether the cache's mode stores server sessions.
    fn can_cache(&self) -> bool {
        self.context.cache().mode().contains(CacheMode::SERVER)
    }
}

impl fmt::Debug for ServerSessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerSessions")
            .field("cached", &self.context.cache().len())
            .finish_non_exhaustive()
    }
}
