//! Removal and expiry: `remove`, the flushes of expired sessions (or of all), and the
//! renewal of a cached session's time or timeout, which moves it in expiry order.

use session_core::{Session, UnixTime};
use tracing::{debug, trace};

use crate::callbacks::RemovalCause;
use crate::sync::Ordering;
use crate::timing::Operation;

use super::{key_of, SessionCache};

/// How many expired entries a flush unlinks under one shard lock, so that no lock is held for
/// long and remove callbacks run as the flush goes.
const FLUSH_BATCH: usize = 256;

impl SessionCache {
    /// Unlinks the entry under (version, id) if `unlink` says so, returning the cache's
    /// reference.
    pub(super) fn unlink_if(
        &self,
        version: u16,
        id: &[u8],
        unlink: impl FnOnce(&Session) -> bool,
    ) -> Option<Session> {
        let hash = self.map.hash(version, id);
        let mut writer = self.map.write(hash);
        let found = writer.find(hash, version, id)?;
        if !writer.with_session(&found, unlink) {
            return None;
        }
        let unlinked = writer.remove(&found);
        drop(writer);
        self.capacity.release();
        Some(unlinked)
    }

    /// Removes whatever session is cached under `session`'s (version, id), marks `session`
    /// not resumable, and runs the remove callback with it, whether or not anything was
    /// cached, as OpenSSL does. Returns whether an entry was found. A session with an empty id
    /// is left alone and gives `false`.
    #[doc(alias = "SSL_CTX_remove_session")]
    pub fn remove(&self, session: &Session) -> bool {
        self.timing
            .time(Operation::Remove, || self.remove_inner(session))
    }

    fn remove_inner(&self, session: &Session) -> bool {
        if session.id().is_empty() {
            return false;
        }
        let (version, id) = key_of(session);
        let unlinked = self.unlink_if(version, id, |_| true);
        session.mark_not_resumable();
        trace!(
            version = session.version().wire(),
            found = unlinked.is_some(),
            "session removed"
        );
        self.report(std::slice::from_ref(session), RemovalCause::Removed);
        unlinked.is_some()
    }

    /// Removes exactly the sessions that have expired at `at` (expiry < `at`), marking each
    /// not resumable and running the remove callback for it. Returns how many it removed.
    ///
    /// The cost follows the number of expired sessions, not the size of the cache, and no
    /// lock is held for more than a small batch. Sessions added while the flush runs are left
    /// for the next one.
    #[doc(alias = "SSL_CTX_flush_sessions_ex")]
    pub fn flush_expired(&self, at: UnixTime) -> usize {
        self.flush_before(Some(at))
    }

    /// Removes every session (OpenSSL's flush with time 0).
    pub fn flush_all(&self) -> usize {
        self.flush_before(None)
    }

    /// Removes the sessions expired now, by the cache's clock.
    #[doc(alias = "SSL_CTX_flush_sessions")]
    pub fn flush(&self) -> usize {
        self.flush_expired(self.now())
    }

    fn flush_before(&self, at: Option<UnixTime>) -> usize {
        self.timing
            .time(Operation::Flush, || self.flush_before_inner(at))
    }

    fn flush_before_inner(&self, at: Option<UnixTime>) -> usize {
        let seq_limit = self.seq.get(0).load(Ordering::Acquire);
        let mut total = 0;
        for shard in 0..self.map.shard_count() {
            loop {
                let mut writer = self.map.write_shard(shard);
                let removed = writer.pop_expired(at, seq_limit, FLUSH_BATCH);
                drop(writer);
                if removed.is_empty() {
                    break;
                }
                self.capacity.release_many(removed.len());
                for s in &removed {
                    s.mark_not_resumable();
                }
                total += removed.len();
                self.report(&removed, RemovalCause::Flushed);
                drop(removed);
                self.map.free_unlinked(false);
            }
        }
        self.map.free_unlinked(true);
        debug!(?at, removed = total, "cache flushed");
        total
    }

    /// Gives a cached session a new timeout: a renewed copy takes its place, at its new place
    /// in expiry order, and is returned. `None` if this very session is not cached (then use
    /// [`Session::with_timeout`]).
    #[doc(alias = "SSL_SESSION_set_timeout")]
    pub fn set_session_timeout(&self, session: &Session, timeout: u64) -> Option<Session> {
        self.renew(session, session.with_timeout(timeout))
    }

    /// Gives a cached session a new time, as [`set_session_timeout`](Self::set_session_timeout)
    /// does its timeout.
    #[doc(alias = "SSL_SESSION_set_time")]
    pub fn set_session_time(&self, session: &Session, time: UnixTime) -> Option<Session> {
        self.renew(session, session.with_time(time))
    }

    fn renew(&self, session: &Session, renewed: Session) -> Option<Session> {
        let (version, id) = key_of(session);
        let hash = self.map.hash(version, id);
        let mut writer = self.map.write(hash);
        let found = writer
            .find(hash, version, id)
            .filter(|found| found.holds(session))?;
        let old = self.relink(&mut writer, &found, renewed.clone());
        drop(writer);
        drop(old);
        Some(renewed)
    }
}
