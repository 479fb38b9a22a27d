//! The server side: rustls's `StoresServerSessions` over a context's cache.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ctx::Context;
use rustls::server::StoresServerSessions;
use rustls::{HandshakeKind, ServerConnection};
use session_cache::{
    CacheMode, ExtendedMasterSecret, Handshake, HandshakeRecord, Lookup, LookupRequest,
};
use session_core::{AppBytes, ProtocolVersion, SessionBuilder, SessionData, SessionId};
use zeroize::Zeroizing;

thread_local! {
    /// The handshake this thread is processing packets for, inside
    /// [`ServerHandshake::observe`]: rustls calls the store from within that call, on the same
    /// thread, with no word of which connection it is for.
    static OBSERVED: RefCell<Option<Handshake>> = const { RefCell::new(None) };
}

/// Runs `f` on the handshake being observed on this thread or, outside
/// [`ServerHandshake::observe`], on an untracked one (its sessions drive the automatic flush;
/// it counts nothing).
fn with_handshake<T>(f: impl FnOnce(&mut Handshake) -> T) -> T {
    let mut f = Some(f);
    let observed = OBSERVED.with(|slot| {
        slot.borrow_mut()
            .as_mut()
            .map(|handshake| (f.take().expect("called once"))(handshake))
    });
    match observed {
        Some(value) => value,
        None => (f.take().expect("called once"))(&mut Handshake::untracked_server()),
    }
}

thread_local! {
    /// When this thread's last lookup outside [`ServerHandshake::observe`] ended.
    static LAST_UNOBSERVED: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Lookups on one thread that follow each other closer than this, outside
/// [`ServerHandshake::observe`], are taken as one ClientHello's offers: rustls looks up every
/// PSK identity in a row, while two handshakes on one thread are at least a key exchange
/// apart.
const SAME_HELLO: Duration = Duration::from_micros(20);

/// Whether the lookup about to run is its handshake's first offer: told by the observed
/// record, or outside [`ServerHandshake::observe`] guessed from the time since this thread's
/// previous lookup.
fn first_offer() -> bool {
    first_offer_at(Instant::now())
}

fn first_offer_at(now: Instant) -> bool {
    LAST_UNOBSERVED
        .with(Cell::get)
        .is_none_or(|last| now.saturating_duration_since(last) > SAME_HELLO)
}

/// Marks the end of a lookup made outside [`ServerHandshake::observe`].
fn lookup_ended() {
    if OBSERVED.with(|slot| slot.borrow().is_none()) {
        LAST_UNOBSERVED.with(|last| last.set(Some(Instant::now())));
    }
}

/// The protocol version of a session rustls encoded (its `ServerSessionValue`: an optional
/// server name, then the version), or `None` if the value does not start that way.
fn value_version(value: &[u8]) -> Option<ProtocolVersion> {
    let at = match value.first()? {
        0 => 1,
        1 => 2 + usize::from(*value.get(1)?),
        _ => return None,
    };
    match u16::from_be_bytes([*value.get(at)?, *value.get(at + 1)?]) {
        0x0303 => Some(ProtocolVersion::TLS1_2),
        0x0304 => Some(ProtocolVersion::TLS1_3),
        _ => None,
    }
}

/// One rustls server connection's handshake, driving the context's cache's handshake rules
/// ([`session_cache::Handshake`]): `accept` counted when it is made, each offer and new
/// session noted, and at [`finish`](Self::finish) `accept_good`, the resumption outcome and
/// the automatic flush after every 255th good handshake.
///
/// rustls does not tell the store which connection a lookup is for, so the application
/// wraps each call that processes the connection's packets during the handshake
/// (`complete_io`, `process_new_packets`) in [`observe`](Self::observe), and calls
/// [`finish`](Self::finish) once the handshake is done; [`complete_handshake`] does all of
/// it for a blocking stream. The store is called synchronously inside the wrapped call, on
/// the thread that runs it, so an async server can do the same.
///
/// ```no_run
/// # fn serve(config: std::sync::Arc<rustls::ServerConfig>, context: &ctx::Context, mut tcp: std::net::TcpStream) -> std::io::Result<()> {
/// let mut conn = rustls::ServerConnection::new(config).unwrap();
/// let mut handshake = sesscache_rustls::ServerHandshake::new(context);
/// while conn.is_handshaking() {
///     handshake.observe(|| conn.complete_io(&mut tcp))?;
/// }
/// let outcome = handshake.finish(&conn).outcome(); // counted once
/// # Ok(()) }
/// ```
///
/// A server that does neither still has its offers and sessions follow the cache's rules,
/// and its expired sessions flushed (after every 255th new session), but counts no
/// handshakes and no outcomes.
pub struct ServerHandshake {
    context: Context,
    handshake: Handshake,
}

impl ServerHandshake {
    /// A handshake on a new connection of a server whose store is over `context`: counts
    /// `accept`.
    pub fn new(context: &Context) -> Self {
        Self {
            context: context.clone(),
            handshake: Handshake::accept(context.cache()),
        }
    }

    /// Runs `f` (a call that processes this connection's packets), noting the store's
    /// lookups and new sessions made meanwhile on this thread as this handshake's.
    pub fn observe<T>(&mut self, f: impl FnOnce() -> T) -> T {
        /// Puts the handshake back (and what was observed before it) even if `f` panics.
        struct Restore<'a> {
            handshake: &'a mut Handshake,
            outer: Option<Handshake>,
        }
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                let outer = self.outer.take();
                if let Some(ours) = OBSERVED.with(|slot| slot.replace(outer)) {
                    *self.handshake = ours;
                }
            }
        }
        let ours = std::mem::replace(&mut self.handshake, Handshake::untracked_server());
        let outer = OBSERVED.with(|slot| slot.replace(Some(ours)));
        let _restore = Restore {
            handshake: &mut self.handshake,
            outer,
        };
        f()
    }

    /// The handshake on `conn` succeeded: counts it in the context's cache (once, however
    /// often it is called) and returns what was seen: the outcome, the offered id and the
    /// sessions issued, for an application's own records.
    pub fn finish(&mut self, conn: &ServerConnection) -> &HandshakeRecord {
        let resumed = conn.handshake_kind() == Some(HandshakeKind::Resumed);
        match conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_2) => {
                self.handshake.set_version(ProtocolVersion::TLS1_2)
            }
            Some(rustls::ProtocolVersion::TLSv1_3) => {
                self.handshake.set_version(ProtocolVersion::TLS1_3)
            }
            _ => {}
        }
        self.handshake.finish(self.context.cache(), resumed);
        self.handshake.record()
    }

    /// What was seen so far.
    pub fn record(&self) -> &HandshakeRecord {
        self.handshake.record()
    }
}

impl fmt::Debug for ServerHandshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerHandshake")
            .field("handshake", &self.handshake)
            .finish_non_exhaustive()
    }
}

/// Completes the handshake of `conn` over the blocking stream `io` (rustls's `complete_io`
/// until it is done) as a [`ServerHandshake`] on `context`, whose store `conn`'s config
/// uses: counted, and its outcome returned. The one line a blocking rustls server adds.
pub fn complete_handshake<T: Read + Write>(
    context: &Context,
    conn: &mut ServerConnection,
    io: &mut T,
) -> std::io::Result<HandshakeRecord> {
    let mut handshake = ServerHandshake::new(context);
    while conn.is_handshaking() {
        handshake.observe(|| conn.complete_io(io))?;
    }
    Ok(handshake.finish(conn).clone())
}

/// A rustls server's session store (set it as `ServerConfig::session_storage`) that keeps
/// sessions in a context's cache.
///
/// rustls hands the store an opaque key (a 32-byte session id or ticket) and an opaque value
/// (its own encoding of the session, secret included). Each becomes a cached session under
/// (protocol version, key), the version read from rustls's value (rustls asks `get` for a
/// TLS 1.2 session id and `take` for a TLS 1.3 ticket, so each finds only its own kind; a
/// value of another shape is cached under the context's version). The session's time
/// is the cache clock's now and its timeout the cache's, so the cache expires it. rustls's
/// value is the session's application data, as [`AppBytes`] (wiped with the session, and
/// carried by the fleet tier).
///
/// The store goes through the cache's hooks as an OpenSSL server does: the mode decides what
/// is cached (`SERVER`, `NO_INTERNAL_STORE`), the new-session callback sees every session
/// rustls makes, and lookups ask the get-session and take-session callbacks.
///
/// The store drives the cache's handshake rules ([`session_cache::Handshake`]): that of the
/// [`ServerHandshake`] observed on the calling thread or, outside one, an untracked one.
/// rustls looks up every PSK identity of a ClientHello; only the first is the handshake's
/// [first offer](session_cache::LookupRequest::first_offer), the one a shared store is asked
/// about. Inside [`ServerHandshake::observe`] the handshake counts them; outside it, lookups
/// that follow each other on one thread within microseconds count as one ClientHello's.
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

    /// The lookup of `key`, offered as a session of `version` (rustls asks `get` for TLS 1.2
    /// session ids and `take` for TLS 1.3 tickets).
    fn find(&self, version: ProtocolVersion, key: &[u8]) -> Option<Vec<u8>> {
        let request = LookupRequest {
            first_offer: first_offer(),
            // rustls checks the extended master secret on the session it is handed.
            ..LookupRequest::new(
                version,
                key,
                self.context.sid_ctx(),
                ExtendedMasterSecret::CheckedByStack,
            )
        };
        let found = with_handshake(|h| h.offer(self.context.cache(), request));
        lookup_ended();
        match found {
            Lookup::Hit(session) => Self::value(&session),
            _ => None, // a miss, a timeout or an abort: a full handshake
        }
    }

    fn value(session: &SessionData) -> Option<Vec<u8>> {
        let stored = session.app_data()?.downcast_ref::<AppBytes>()?;
        Some(stored.as_bytes().to_vec())
    }
}

impl StoresServerSessions for ServerSessions {
    /// A session rustls made (a new session id in TLS 1.2, a stateful ticket in TLS 1.3),
    /// issued by the handshake: cached as the mode says, then the new-session callback.
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
        // The version rustls wrote into its value: TLS 1.2 session ids and TLS 1.3 tickets
        // are cached (and named in a shared store) apart, so that one is never taken for the
        // other.
        let version = value_version(&value).unwrap_or(self.context.version());
        let session = SessionBuilder::new(version, cache.now())
            .id(id)
            .sid_ctx(self.context.sid_ctx())
            .timeout(cache.timeout())
            .app_data(Some(Arc::new(AppBytes::new(value))))
            .build();
        with_handshake(|h| h.issued(cache, &session))
    }

    /// A TLS 1.2 client offered a session id: a lookup, counted as OpenSSL counts it.
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.find(ProtocolVersion::TLS1_2, key)
    }

    /// A TLS 1.3 client offered a stateful ticket: found, it is removed, so it resumes once.
    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.find(ProtocolVersion::TLS1_3, key)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_microseconds_apart_outside_observe_are_one_hellos_offers() {
        LAST_UNOBSERVED.with(|last| last.set(None));
        assert!(first_offer(), "the thread's first lookup");
        lookup_ended();
        let ended = LAST_UNOBSERVED.with(Cell::get).unwrap();
        assert!(
            !first_offer_at(ended + Duration::from_micros(5)),
            "the next identity, right after"
        );
        assert!(
            first_offer_at(ended + Duration::from_millis(1)),
            "a later handshake on the same thread"
        );
    }

    #[test]
    fn the_version_comes_from_rustls_s_value() {
        assert_eq!(
            value_version(&[0, 3, 3, 0x13, 1]),
            Some(ProtocolVersion::TLS1_2)
        );
        assert_eq!(value_version(&[0, 3, 4]), Some(ProtocolVersion::TLS1_3));
        assert_eq!(
            value_version(&[1, 3, b'a', b'.', b'b', 3, 4]),
            Some(ProtocolVersion::TLS1_3)
        );
        for junk in [
            &[][..],
            &[2, 3, 4],
            &[0, 3],
            &[1, 9, b'a'],
            &[0, 0x7f, 0x17],
        ] {
            assert_eq!(value_version(junk), None, "{junk:?}");
        }
    }
}
