//! The rules of one handshake, written once for every TLS stack: what a handshake asks of its
//! context's cache when the client offers a session, when a session is issued, and when the
//! handshake ends (OpenSSL's `ssl_get_prev_session`, `ssl_update_cache` and the counters of
//! `tls_setup_handshake` and `tls_finish_handshake`). `ctx`'s simulated connections, the
//! rustls store and the OpenSSL callbacks all drive a [`Handshake`]; none of them counts or
//! flushes by hand.

use std::fmt;

use session_core::Session;
use tracing::debug;

use crate::resumption::HandshakeRecord;
use crate::stats::Event;
use crate::{CacheMode, Lookup, LookupRequest, Resumption, SessionCache};

/// Which end of a handshake a connection plays (a handshake has two: not `non_exhaustive`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// `SSL_connect`.
    Client,
    /// `SSL_accept`.
    Server,
}

impl Role {
    /// The mode bit that says whether this end's sessions are cached.
    pub fn cache_mode(self) -> CacheMode {
        match self {
            Role::Client => CacheMode::CLIENT,
            Role::Server => CacheMode::SERVER,
        }
    }

    /// `client` or `server`.
    pub fn name(self) -> &'static str {
        match self {
            Role::Client => "client",
            Role::Server => "server",
        }
    }
}

/// Whether a handshake is counted: one the TLS stack reports from start to end, or one it
/// does not (rustls tells a store nothing about a handshake's start or end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tracking {
    /// Counted: `accept` (or `connect`) at the start, the outcome and `accept_good` (or
    /// `connect_good`) at the end, and the automatic flush after every 255th good handshake.
    Counted,
    /// Not counted: its new sessions drive the automatic flush instead (every 255th).
    Untracked,
}

/// One handshake on one connection, as its context's cache sees it. A TLS stack's adapter
/// makes one when the handshake starts and calls it at each step:
///
/// - [`offer`](Self::offer) for every session id or ticket the client offers: the cache's
///   lookup, a single-use take for TLS 1.3 tickets, with only the handshake's first offer
///   asking an external cache;
/// - [`issued`](Self::issued) for every session the handshake makes: cached as the mode
///   says, then the new-session callback;
/// - [`finish`](Self::finish) once it has succeeded: counts the good handshake and its
///   resumption outcome (once, however often it is called) and, after every 255th good
///   handshake, flushes expired sessions unless [`CacheMode::NO_AUTO_CLEAR`].
///
/// A handshake that never finishes (it failed, or the client went away) counts its start and
/// nothing else, as in OpenSSL.
///
/// The cache is passed to each call rather than held, so that a handshake can live where a
/// TLS stack keeps per-connection state (an OpenSSL `SSL`'s ex_data, a thread-local); it must
/// be the same cache throughout.
///
/// ```
/// use session_cache::{
///     CacheConfig, ExtendedMasterSecret, Handshake, Lookup, LookupRequest, Resumption, SessionCache,
/// };
/// use session_core::{MasterKey, ProtocolVersion, SessionBuilder, SessionId, SidCtx};
///
/// let cache = SessionCache::new(CacheConfig::default());
/// let mut first = Handshake::accept(&cache);
/// let session = SessionBuilder::new(ProtocolVersion::TLS1_2, cache.now())
///     .id(SessionId::new(b"abc").unwrap())
///     .master_key(MasterKey::new(&[7; 48]).unwrap())
///     .timeout(300)
///     .build();
/// first.issued(&cache, &session);
/// first.finish(&cache, false);
///
/// let mut second = Handshake::accept(&cache);
/// let offer = LookupRequest::new(
///     ProtocolVersion::TLS1_2,
///     b"abc",
///     SidCtx::empty(),
///     ExtendedMasterSecret::NotOffered,
/// );
/// assert!(matches!(second.offer(&cache, offer), Lookup::Hit(_)));
/// assert_eq!(second.finish(&cache, true), Some(Resumption::Resumed));
/// let stats = cache.stats();
/// assert_eq!((stats.accept, stats.accept_good, stats.hits), (2, 2, 1));
/// assert_eq!((stats.resumptions.not_offered, stats.resumptions.resumed), (1, 1));
/// ```
pub struct Handshake {
    role: Role,
    tracking: Tracking,
    record: HandshakeRecord,
    finished: bool,
    /// The TLS 1.3 ticket this handshake took, offered again by a second ClientHello after a
    /// HelloRetryRequest (OpenSSL looks the identity up in both): the same session again.
    taken: Option<Session>,
}

impl Handshake {
    /// A server handshake starts (`SSL_accept`): counts `accept`.
    #[doc(alias = "SSL_CTX_sess_accept")]
    pub fn accept(cache: &SessionCache) -> Self {
        Self::start(cache, Role::Server, Event::Accept)
    }

    /// A server renegotiation starts: counts `accept_renegotiate`.
    #[doc(alias = "SSL_CTX_sess_accept_renegotiate")]
    pub fn accept_renegotiation(cache: &SessionCache) -> Self {
        Self::start(cache, Role::Server, Event::AcceptRenegotiate)
    }

    /// A client handshake starts (`SSL_connect`): counts `connect`.
    #[doc(alias = "SSL_CTX_sess_connect")]
    pub fn connect(cache: &SessionCache) -> Self {
        Self::start(cache, Role::Client, Event::Connect)
    }

    /// A client renegotiation starts: counts `connect_renegotiate`.
    #[doc(alias = "SSL_CTX_sess_connect_renegotiate")]
    pub fn connect_renegotiation(cache: &SessionCache) -> Self {
        Self::start(cache, Role::Client, Event::ConnectRenegotiate)
    }

    /// A server handshake whose start and end the TLS stack does not report: its offers and
    /// sessions follow the same rules, its [`LookupRequest::first_offer`] is the caller's,
    /// it counts no `accept` and no outcome, and each session it issues counts towards the
    /// automatic flush (every 255th, unless [`CacheMode::NO_AUTO_CLEAR`]), so that a server
    /// that never reports its handshakes still has its expired sessions flushed.
    pub fn untracked_server() -> Self {
        Self {
            role: Role::Server,
            tracking: Tracking::Untracked,
            record: HandshakeRecord::new(),
            finished: false,
            taken: None,
        }
    }

    fn start(cache: &SessionCache, role: Role, event: Event) -> Self {
        cache.count(event);
        Self {
            role,
            tracking: Tracking::Counted,
            record: HandshakeRecord::new(),
            finished: false,
            taken: None,
        }
    }

    /// Which end this is.
    pub fn role(&self) -> Role {
        self.role
    }

    /// What the handshake has seen so far: offers, their lookups, the sessions issued, and
    /// the outcome once finished.
    pub fn record(&self) -> &HandshakeRecord {
        &self.record
    }

    /// Whether [`finish`](Self::finish) has counted this handshake.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The client offered `request.id` (a session id, or one PSK identity of a TLS 1.3
    /// ClientHello): the cache's lookup, as OpenSSL's handshake makes it. TLS 1.3 tickets are
    /// single use, so they are taken ([`SessionCache::lookup_take`]); earlier versions look
    /// up ([`SessionCache::lookup`]). For a counted handshake the first offer is the only
    /// one an external cache is asked about ([`LookupRequest::first_offer`] is set here). A
    /// ticket this handshake has taken, offered again (the second ClientHello after a
    /// HelloRetryRequest), is the same session again, counted once.
    #[doc(alias = "ssl_get_prev_session")]
    pub fn offer(&mut self, cache: &SessionCache, request: LookupRequest<'_>) -> Lookup {
        let request = match self.tracking {
            Tracking::Counted => LookupRequest {
                first_offer: self.record.next_is_first_offer(),
                ..request
            },
            Tracking::Untracked => request,
        };
        let again = self.taken.as_ref().filter(|s| {
            s.version() == request.version
                && s.id().as_bytes() == request.id
                && *s.sid_ctx() == request.sid_ctx
        });
        let found = if let Some(taken) = again {
            Lookup::Hit(taken.clone())
        } else if request.version.is_tls13_or_later() {
            let found = cache.lookup_take(&request);
            if let Lookup::Hit(session) = &found {
                self.taken = Some(session.clone());
            }
            found
        } else {
            cache.lookup(&request)
        };
        self.record.looked_up(request.version, request.id, &found);
        found
    }

    /// Notes an offer the cache could not answer because its lookup broke off (an
    /// adapter that caught a panic of an application's callback): it counts as
    /// [`Miss::StoreUnavailable`](crate::Miss::StoreUnavailable) for the outcome.
    pub fn offer_unanswered(&mut self, request: &LookupRequest<'_>) {
        self.record.looked_up(
            request.version,
            request.id,
            &Lookup::Miss(crate::Miss::StoreUnavailable),
        );
    }

    /// The handshake made `session` (a new TLS 1.2 session, a TLS 1.3 ticket, or a client's
    /// copy of the server's session): if the mode caches this end's sessions, it is added
    /// to the cache (unless [`CacheMode::NO_INTERNAL_STORE`]) and the new-session callback
    /// runs. Returns whether the cache kept it: added, or handed to the callback of a cache
    /// that stores nothing itself.
    #[doc(alias = "ssl_update_cache")]
    pub fn issued(&mut self, cache: &SessionCache, session: &Session) -> bool {
        let mode = cache.mode();
        if !mode.contains(self.role.cache_mode()) {
            return false;
        }
        if self.tracking == Tracking::Untracked {
            // Before the add, so that what the flush's remove callbacks do is over by then.
            let issued = cache.count(Event::UntrackedIssued);
            self.auto_flush(cache, issued);
        }
        let kept = mode.contains(CacheMode::NO_INTERNAL_STORE)
            // A session without an id cannot be cached; the callback still sees it.
            || cache.add(session).is_ok();
        // Noted before the callback runs: an adapter that catches a panic here tells by the
        // count whether the add (an eviction's remove callback) or the new-session callback
        // panicked.
        self.record.issued(session);
        cache.notify_new_session(session);
        kept
    }

    /// The handshake succeeded, and `resumed` says whether it resumed a session. Counts
    /// `accept_good` (or `connect_good`) and, for a server, its one resumption outcome
    /// (resumed, or why not: what its offers found, and whether the TLS stack resumed it);
    /// after every 255th good handshake, flushes the sessions expired by now, unless
    /// [`CacheMode::NO_AUTO_CLEAR`] or the mode does not cache this end's sessions. Counts
    /// once: finishing again returns the same outcome and does nothing. An untracked
    /// handshake counts nothing and returns `None`; so does a client's.
    pub fn finish(&mut self, cache: &SessionCache, resumed: bool) -> Option<Resumption> {
        if self.tracking == Tracking::Untracked || self.is_finished() {
            return self.record.outcome();
        }
        self.finished = true;
        let outcome = match self.role {
            Role::Server => {
                let outcome = self.record.outcome_if(resumed);
                cache.count_resumption(outcome);
                self.record.set_outcome(outcome);
                Some(outcome)
            }
            Role::Client => None,
        };
        let good = cache.count(match self.role {
            Role::Server => Event::AcceptGood,
            Role::Client => Event::ConnectGood,
        });
        self.auto_flush(cache, good);
        outcome
    }

    /// Notes the protocol version the handshake negotiated, for a stack that tells it only
    /// at the end.
    pub fn set_version(&mut self, version: session_core::ProtocolVersion) {
        self.record.set_version(version);
    }

    /// OpenSSL's automatic flush: after every 255th `count`, the sessions expired by now go,
    /// unless the mode says `NO_AUTO_CLEAR` or does not cache this end's sessions.
    fn auto_flush(&self, cache: &SessionCache, count: u64) {
        let mode = cache.mode();
        if count & 0xff == 0xff
            && mode.contains(self.role.cache_mode())
            && !mode.contains(CacheMode::NO_AUTO_CLEAR)
        {
            let flushed = cache.flush();
            debug!(flushed, count, "automatic flush after 255 handshakes");
        }
    }
}

impl fmt::Debug for Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handshake")
            .field("role", &self.role)
            .field("tracking", &self.tracking)
            .field("record", &self.record)
            .field("finished", &self.finished)
            .field("taken", &self.taken.is_some())
            .finish()
    }
}
