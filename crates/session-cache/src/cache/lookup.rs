//! Looking sessions up: a server's lookup of an offered id (`lookup`, with the get
//! callback as the external cache behind the internal one), the single-use forms (`take`,
//! `lookup_take` with the take callback), and the plain `get` and `contains`.

use session_core::{ProtocolVersion, Session, SidCtx};
use tracing::trace;

use crate::callbacks::RemovalCause;
use crate::resumption::Miss;
use crate::timing::Operation;
use crate::CacheMode;

use super::{key_of, SessionCache};

/// What a server looks for when a ClientHello offers a session id.
#[derive(Debug, Clone, Copy)]
pub struct LookupRequest<'a> {
    /// The protocol version being negotiated.
    pub version: ProtocolVersion,
    /// The offered session id, as it came from the network.
    pub id: &'a [u8],
    /// The server's session id context.
    pub sid_ctx: SidCtx,
    /// Whether the ClientHello carries the extended master secret extension, or that the
    /// TLS stack checks it itself.
    pub extended_master_secret: ExtendedMasterSecret,
    /// Whether this is the handshake's first offer. A TLS 1.3 ClientHello may offer many
    /// tickets and the TLS stack looks each one up; an external cache backed by a remote
    /// store asks the store for the first only (the one early data may use), so that a
    /// ClientHello stuffed with identities costs at most one round trip. The callbacks see
    /// the flag; the internal cache answers every offer.
    pub first_offer: bool,
}

impl<'a> LookupRequest<'a> {
    /// A lookup of `id`, a handshake's first offer ([`Handshake::offer`](crate::Handshake::offer)
    /// sets [`first_offer`](Self::first_offer) for the offers after it).
    pub fn new(
        version: ProtocolVersion,
        id: &'a [u8],
        sid_ctx: SidCtx,
        extended_master_secret: ExtendedMasterSecret,
    ) -> Self {
        Self {
            version,
            id,
            sid_ctx,
            extended_master_secret,
            first_offer: true,
        }
    }
}

/// What a lookup knows of the extended master secret (RFC 7627): a session made with it
/// resumes only in a handshake that uses it, and the other way round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExtendedMasterSecret {
    /// The ClientHello carries the extension: the cache refuses a session made without it.
    Offered,
    /// The ClientHello does not carry it: the cache aborts on a session made with it
    /// ([`Lookup::Abort`]).
    NotOffered,
    /// The TLS stack checks it itself after the lookup (OpenSSL after its get callback
    /// returns, rustls on the session it is handed), so the cache does not.
    CheckedByStack,
}

impl ExtendedMasterSecret {
    /// [`Offered`](Self::Offered) or [`NotOffered`](Self::NotOffered).
    pub fn from_offered(offered: bool) -> Self {
        if offered {
            Self::Offered
        } else {
            Self::NotOffered
        }
    }

    /// Whether the client offered it, if the cache checks it.
    pub fn offered(self) -> Option<bool> {
        match self {
            Self::Offered => Some(true),
            Self::NotOffered => Some(false),
            Self::CheckedByStack => None,
        }
    }
}

/// The outcome of a [`SessionCache::lookup`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Lookup {
    /// A session to resume, with a reference of the caller's own.
    Hit(Session),
    /// Nothing to resume, and why.
    Miss(Miss),
    /// The session had expired; it was removed.
    Timeout,
    /// The session used the extended master secret and this handshake does not: RFC 7627
    /// says the handshake must be aborted.
    Abort,
}

/// Why a single-use lookup may not hand `session` out, if it may not: another session id
/// context, or another extended-master-secret use (unless the TLS stack checks that itself).
fn refuses(request: &LookupRequest<'_>, session: &Session) -> Option<Miss> {
    if *session.sid_ctx() != request.sid_ctx {
        return Some(Miss::OtherContext);
    }
    let ems = request.extended_master_secret.offered();
    ems.is_some_and(|ems| session.extended_master_secret() != ems)
        .then_some(Miss::Refused)
}

impl SessionCache {
    /// Removes the session cached under (version, id) and hands the cache's reference to the
    /// caller: a single-use ticket's lookup (rustls's `take`). Like every removal it marks
    /// the session not resumable, and the remove callback runs.
    pub fn take(&self, version: ProtocolVersion, id: &[u8]) -> Option<Session> {
        let taken = self.unlink_if(version.wire(), id, |_| true)?;
        taken.mark_not_resumable();
        self.report(std::slice::from_ref(&taken), RemovalCause::Taken);
        Some(taken)
    }

    /// The single-use form of [`lookup`](Self::lookup), for TLS 1.3 stateful tickets
    /// (rustls's `take`): a session that passes the version, session id context and
    /// extended-master-secret checks is removed and handed to exactly one caller, however many
    /// threads offer the same id at once.
    ///
    /// Counting, as [`lookup`](Self::lookup) counts: the one caller that removes a live
    /// session counts a hit (its remove callback says [`RemovalCause::Taken`]); a session
    /// found expired is removed and counts a timeout; a session refused by the checks stays
    /// cached and counts nothing; an absent one (or one taken by another thread first) is a
    /// miss. With [`CacheMode::NO_INTERNAL_LOOKUP`] the internal cache is not looked at.
    ///
    /// With a take-session callback set
    /// ([`TakeSessionCallback`](crate::TakeSessionCallback)), the callback decides: it is
    /// given the live ticket the internal cache gave up (or `None` after a miss) and returns
    /// the session to resume. A ticket it refuses counts a miss; one it finds after an
    /// internal miss counts in `cb_hits` and is checked like any other, and is not stored.
    /// The get callback is never asked: a ticket it returned could not be used up.
    pub fn lookup_take(&self, request: &LookupRequest<'_>) -> Lookup {
        self.timing
            .time(Operation::Lookup, || self.lookup_take_inner(request))
    }

    fn lookup_take_inner(&self, request: &LookupRequest<'_>) -> Lookup {
        let external = self.callbacks.take_session();
        let mut local = None;
        if !self.mode().contains(CacheMode::NO_INTERNAL_LOOKUP) {
            let mut refused = None;
            let taken = self.unlink_if(request.version.wire(), request.id, |s| {
                refused = refuses(request, s);
                refused.is_none()
            });
            match taken {
                Some(session) => {
                    session.mark_not_resumable();
                    if session.is_expired_at(self.now()) {
                        self.counters.timeouts.inc();
                        trace!(
                            version = session.version().wire(),
                            "session expired at take"
                        );
                        self.report(std::slice::from_ref(&session), RemovalCause::Expired);
                        return Lookup::Timeout;
                    }
                    self.report(std::slice::from_ref(&session), RemovalCause::Taken);
                    local = Some(session);
                }
                None => match refused {
                    Some(why) => return Lookup::Miss(why),
                    None => self.counters.misses.inc(),
                },
            }
        }
        let Some(cb) = external else {
            return match local {
                Some(session) => {
                    self.counters.hits.inc();
                    trace!(version = session.version().wire(), "session taken");
                    Lookup::Hit(session)
                }
                None => Lookup::Miss(Miss::UnknownId),
            };
        };
        let from_internal = local.is_some();
        let session = match cb(self, request, local) {
            Ok(session) => session,
            Err(why) => {
                if from_internal {
                    // Taken here, refused by the shared store: used up elsewhere.
                    self.counters.misses.inc();
                }
                return Lookup::Miss(why);
            }
        };
        if !from_internal {
            if !session.is_resumable() {
                return Lookup::Miss(Miss::Refused);
            }
            self.counters.cb_hits.inc();
            if session.version() != request.version {
                return Lookup::Miss(Miss::OtherContext);
            }
            if let Some(why) = refuses(request, &session) {
                return Lookup::Miss(why);
            }
            if session.is_expired_at(self.now()) {
                self.counters.timeouts.inc();
                return Lookup::Timeout;
            }
        }
        self.counters.hits.inc();
        trace!(version = session.version().wire(), "session taken");
        Lookup::Hit(session)
    }

    /// The session cached under (version, id), if any: no statistics, no expiry check, no
    /// callback.
    #[inline]
    pub fn get(&self, version: ProtocolVersion, id: &[u8]) -> Option<Session> {
        let version = version.wire();
        self.map.get(self.map.hash(version, id), version, id)
    }

    /// Whether this very session is in the cache.
    pub fn contains(&self, session: &Session) -> bool {
        let (version, id) = key_of(session);
        self.map.holds(self.map.hash(version, id), session)
    }

    /// A server's lookup of an offered session id, as OpenSSL's handshake does it: the
    /// internal cache (unless [`CacheMode::NO_INTERNAL_LOOKUP`]), then on a miss the get
    /// callback (whose session is stored unless [`CacheMode::NO_INTERNAL_STORE`]); then the
    /// version, session id context, expiry and extended-master-secret checks.
    ///
    /// Counting follows OpenSSL's `ssl_get_prev_session`: an internal miss counts in
    /// `misses`, a session from the get callback in `cb_hits`, an expired one in `timeouts`
    /// (and it is removed), a resumable one in `hits`. A session found but refused by the
    /// version, session id context or extended-master-secret check counts nothing more.
    pub fn lookup(&self, request: &LookupRequest<'_>) -> Lookup {
        self.timing
            .time(Operation::Lookup, || self.lookup_inner(request))
    }

    fn lookup_inner(&self, request: &LookupRequest<'_>) -> Lookup {
        let mode = self.mode();
        let mut internal = None;
        if !mode.contains(CacheMode::NO_INTERNAL_LOOKUP) {
            internal = self.get(request.version, request.id);
            if internal.is_none() {
                self.counters.misses.inc();
            }
        }
        let session = match internal {
            Some(s) => s,
            None => match self.external_lookup(request, mode) {
                Ok(s) => s,
                Err(why) => return Lookup::Miss(why),
            },
        };
        if session.version() != request.version || *session.sid_ctx() != request.sid_ctx {
            return Lookup::Miss(Miss::OtherContext);
        }
        if session.is_expired_at(self.now()) {
            self.counters.timeouts.inc();
            let (version, id) = key_of(&session);
            let unlinked = self.unlink_if(version, id, |s| s.ptr_eq(&session));
            session.mark_not_resumable();
            trace!(
                version = session.version().wire(),
                "session expired at lookup"
            );
            self.report(std::slice::from_ref(&session), RemovalCause::Expired);
            drop(unlinked);
            return Lookup::Timeout;
        }
        match (
            session.extended_master_secret(),
            request.extended_master_secret.offered(),
        ) {
            (true, Some(false)) => return Lookup::Abort,
            (false, Some(true)) => return Lookup::Miss(Miss::Refused),
            _ => {}
        }
        self.counters.hits.inc();
        Lookup::Hit(session)
    }

    fn external_lookup(
        &self,
        request: &LookupRequest<'_>,
        mode: CacheMode,
    ) -> Result<Session, Miss> {
        let Some(cb) = self.callbacks.get_session() else {
            return Err(Miss::UnknownId);
        };
        let session = cb(self, request)?;
        if !session.is_resumable() {
            return Err(Miss::Refused);
        }
        self.counters.cb_hits.inc();
        if !mode.contains(CacheMode::NO_INTERNAL_STORE) {
            // An empty id from the callback cannot be stored; it can still be resumed.
            let _ = self.add(&session);
        }
        Ok(session)
    }
}
