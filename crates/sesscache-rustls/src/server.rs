//! The server side: rustls's `StoresServerSessions` over a context's cache.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;

use ctx::Context;
use rustls::server::StoresServerSessions;
use rustls::{HandshakeKind, ServerConnection};
use session_cache::{CacheMode, HandshakeRecord, Lookup, LookupRequest};
use session_core::{AppBytes, ProtocolVersion, SessionBuilder, SessionData, SessionId};
use zeroize::Zeroizing;

thread_local! {
    /// The record of the handshake this thread is processing packets for, inside
    /// [`ServerHandshake::observe`]: rustls calls the store from within that call, on the same
    /// thread, with no word of which connection it is for.
    static OBSERVED: RefCell<Option<HandshakeRecord>> = const { RefCell::new(None) };
}

/// Notes something in the record of the handshake being observed on this thread, if any.
fn note(f: impl FnOnce(&mut HandshakeRecord)) {
    OBSERVED.with(|slot| {
        if let Some(record) = slot.borrow_mut().as_mut() {
            f(record);
        }
    });
}

/// One rustls server connection's handshake as the cache saw it, so that it counts in the
/// cache's [`Resumptions`](session_cache::Resumptions): resumed, or why not.
///
/// rustls does not tell the store which connection a lookup is for, so the application
/// wraps each call that processes the connection's packets during the handshake
/// (`complete_io`, `process_new_packets`) in [`observe`](Self::observe), and calls
/// [`finish`](Self::finish) once the handshake is done. An async server can do the same: the
/// store is called synchronously inside the wrapped call, on the thread that runs it.
///
/// ```no_run
/// # fn serve(config: std::sync::Arc<rustls::ServerConfig>, context: &ctx::Context, mut tcp: std::net::TcpStream) -> std::io::Result<()> {
/// let mut conn = rustls::ServerConnection::new(config).unwrap();
/// let mut handshake = sesscache_rustls::ServerHandshake::new();
/// while conn.is_handshaking() {
///     handshake.observe(|| conn.complete_io(&mut tcp))?;
/// }
/// let outcome = handshake.finish(context, &conn); // counted once
/// # Ok(()) }
/// ```
#[derive(Debug, Default)]
pub struct ServerHandshake {
    record: HandshakeRecord,
}

impl ServerHandshake {
    /// A handshake with nothing seen yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `f` (a call that processes this connection's packets), noting the store's
    /// lookups and new sessions made meanwhile on this thread as this handshake's.
    pub fn observe<T>(&mut self, f: impl FnOnce() -> T) -> T {
        /// Puts the record back (and what was observed before it) even if `f` panics.
        struct Restore<'a> {
            record: &'a mut HandshakeRecord,
            outer: Option<HandshakeRecord>,
        }
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                let outer = self.outer.take();
                let ours = OBSERVED.with(|slot| slot.replace(outer));
                *self.record = ours.unwrap_or_default();
            }
        }
        let ours = std::mem::take(&mut self.record);
        let outer = OBSERVED.with(|slot| slot.replace(Some(ours)));
        let _restore = Restore {
            record: &mut self.record,
            outer,
        };
        f()
    }

    /// Counts the finished handshake in the context's cache (once, however often it is
    /// called) and returns what was seen: the outcome, the offered id and the sessions
    /// issued, for an application's own records.
    pub fn finish(&mut self, context: &Context, conn: &ServerConnection) -> &HandshakeRecord {
        let resumed = conn.handshake_kind() == Some(HandshakeKind::Resumed);
        let version = match conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_2) => Some(ProtocolVersion::TLS1_2),
            Some(rustls::ProtocolVersion::TLSv1_3) => Some(ProtocolVersion::TLS1_3),
            _ => None,
        };
        if let Some(version) = version {
            self.record.set_version(version);
        }
        self.record.finish(context.cache(), resumed);
        &self.record
    }

    /// What was seen so far.
    pub fn record(&self) -> &HandshakeRecord {
        &self.record
    }
}

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
        note(|record| record.issued(&session));
        stored
    }

    /// A TLS 1.2 client offered a session id: a lookup, counted as OpenSSL counts it.
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let found = self.context.cache().lookup(&self.request(key));
        note(|record| record.looked_up(self.context.version(), key, &found));
        match found {
            Lookup::Hit(session) => Self::value(&session),
            _ => None, // a miss, a timeout or an abort: a full handshake
        }
    }

    /// A TLS 1.3 client offered a stateful ticket: found, it is removed, so it resumes once.
    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        let found = self.context.cache().lookup_take(&self.request(key));
        note(|record| record.looked_up(self.context.version(), key, &found));
        match found {
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
