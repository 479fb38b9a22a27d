//! The cache's side of its callbacks: setting them, running the new-session callback, and
//! `report`, through which every removal reaches the trace and the remove callback.

use session_core::Session;
use tracing::trace;

use crate::callbacks::{
    run_remove_callback, GetSessionCallback, NewSessionCallback, PrefetchCallback, RemovalCause,
    RemoveSessionCallback, TakeSessionCallback,
};
use crate::{CacheMode, LookupRequest};

use super::SessionCache;

impl SessionCache {
    /// Tells the trace and the remove callback that `sessions` left the cache (for
    /// [`RemovalCause::Removed`], the session the caller named). Called with no lock held, so
    /// the callback may call back into the cache; an add it makes does not evict
    /// ([`Error::FullInRemoveCallback`](crate::Error::FullInRemoveCallback)).
    pub(super) fn report(&self, sessions: &[Session], cause: RemovalCause) {
        for s in sessions {
            trace!(
                version = s.version().wire(),
                ?cause,
                "session left the cache"
            );
        }
        if let Some(cb) = self.callbacks.remove_session() {
            run_remove_callback(&cb, self, sessions, cause);
        }
    }

    /// Sets or clears the new-session callback.
    #[doc(alias = "SSL_CTX_sess_set_new_cb")]
    pub fn set_new_session_callback(&self, cb: Option<NewSessionCallback>) {
        self.callbacks.set_new_session(cb);
    }

    /// Sets or clears the prefetch callback: the external cache's asynchronous fetch (see
    /// [`PrefetchCallback`] and [`prefetch`](Self::prefetch)).
    pub fn set_prefetch_callback(&self, cb: Option<PrefetchCallback>) {
        self.callbacks.set_prefetch(cb);
    }

    /// Fetches what the handshake's lookup of `request` will need from the external cache
    /// (the prefetch callback's fetch), so that the lookup, which is synchronous, answers
    /// from memory: an async server awaits this before the TLS stack looks the offer up,
    /// and no runtime worker waits on a remote store. Ready at once when there is nothing to
    /// fetch: no prefetch callback, or a TLS 1.2 session the internal cache holds. The
    /// future owns what it needs; bound it by the handshake's deadline. Counts nothing: the
    /// lookup counts.
    pub fn prefetch(
        &self,
        request: &LookupRequest<'_>,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let held = self.held_for_prefetch(request);
        let fetch = if held.is_some() && !request.version.is_tls13_or_later() {
            None
        } else {
            self.callbacks
                .prefetch()
                .and_then(|cb| cb(self, request, held))
        };
        async move {
            if let Some(fetch) = fetch {
                fetch.await;
            }
        }
    }

    /// Whether [`prefetch`](Self::prefetch) may have anything to fetch for `request`: a
    /// prefetch callback is set, and the internal cache does not hold the TLS 1.2 session
    /// already. A TLS stack that suspends a handshake to prefetch asks this first.
    pub fn wants_prefetch(&self, request: &LookupRequest<'_>) -> bool {
        self.callbacks.prefetch().is_some()
            && (request.version.is_tls13_or_later() || self.held_for_prefetch(request).is_none())
    }

    /// The session the internal cache holds under `request`'s key, unless the mode says
    /// the internal cache is not looked at.
    fn held_for_prefetch(&self, request: &LookupRequest<'_>) -> Option<Session> {
        if self.mode().contains(CacheMode::NO_INTERNAL_LOOKUP) {
            None
        } else {
            self.get(request.version, request.id)
        }
    }

    /// Sets or clears the remove-session callback.
    #[doc(alias = "SSL_CTX_sess_set_remove_cb")]
    pub fn set_remove_session_callback(&self, cb: Option<RemoveSessionCallback>) {
        self.callbacks.set_remove_session(cb);
    }

    /// Sets or clears the get-session callback (the external cache).
    #[doc(alias = "SSL_CTX_sess_set_get_cb")]
    pub fn set_get_session_callback(&self, cb: Option<GetSessionCallback>) {
        self.callbacks.set_get_session(cb);
    }

    /// Sets or clears the take-session callback: the external cache's single-use lookup,
    /// which decides every [`lookup_take`](Self::lookup_take) (see [`TakeSessionCallback`]).
    pub fn set_take_session_callback(&self, cb: Option<TakeSessionCallback>) {
        self.callbacks.set_take_session(cb);
    }

    /// Runs the new-session callback, if one is set: only
    /// [`Handshake::issued`](crate::Handshake::issued) does, after a handshake made `session`.
    pub(crate) fn notify_new_session(&self, session: &Session) {
        if let Some(cb) = self.callbacks.new_session() {
            cb(self, session);
        }
    }
}
