//! The cache's side of its callbacks: setting them, running the new-session callback, and
//! `report`, through which every removal reaches the trace and the remove callback.

use session_core::Session;
use tracing::trace;

use crate::callbacks::{
    run_remove_callback, GetSessionCallback, NewSessionCallback, RemovalCause,
    RemoveSessionCallback, TakeSessionCallback,
};

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
