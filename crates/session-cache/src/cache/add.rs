//! Adding a session: linking it under its key, replacing another session cached under that
//! key or renewing the one already there, and evicting the session that expires soonest
//! when the cache is full.

use session_core::{Session, UnixTime};
use tracing::trace;

use crate::callbacks::{in_remove_callback, RemovalCause};
use crate::map::{Found, Guard, ShardWriter, Soonest};
use crate::sync::{yield_now, Ordering};
use crate::timing::Operation;
use crate::{CacheMode, Error};

use super::{key_of, SessionCache};

/// What becomes of an unlinked entry's slot of the size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Slot {
    /// Given back: the cache holds one session fewer.
    Release,
    /// Kept by the caller, which links a session in its place.
    Keep,
}

/// What [`SessionCache::add`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Added {
    /// The session was not cached under its key; now it is.
    New,
    /// Another session was cached under the same key; this one replaced it. Counts as added.
    Replaced,
    /// This very session was already cached: nothing was added (with `UPDATE_TIME`, its time
    /// was refreshed).
    AlreadyCached,
}

impl Added {
    /// `SSL_CTX_add_session`'s return value: whether the session counts as added.
    pub fn is_added(self) -> bool {
        matches!(self, Self::New | Self::Replaced)
    }
}

impl SessionCache {
    /// Adds a session; the cache takes a reference of its own.
    ///
    /// A different session under the same (version, id) is replaced, and the new one counts
    /// as added; the very same session again is not added. When the cache is full, the
    /// session that expires soonest is evicted first (never the one being added). With
    /// [`CacheMode::UPDATE_TIME`] the cache stores a copy whose time is now (shared sessions
    /// are immutable); [`get`](Self::get) returns it. The mode bits do not otherwise matter.
    #[doc(alias = "SSL_CTX_add_session")]
    pub fn add(&self, session: &Session) -> Result<Added, Error> {
        self.timing.time(Operation::Add, || self.add_inner(session))
    }

    fn add_inner(&self, session: &Session) -> Result<Added, Error> {
        if session.id().is_empty() {
            return Err(Error::EmptySessionId);
        }
        // Only UPDATE_TIME needs the clock; a plain add does not read it.
        let update_time = self
            .mode()
            .contains(CacheMode::UPDATE_TIME)
            .then(|| self.now());
        let candidate = match update_time.filter(|&now| now != session.time()) {
            Some(now) => session.with_time(now),
            None => session.clone(),
        };
        let (added, evicted) = self.link(session, candidate, update_time)?;
        // Its callback runs once the new session is linked and nothing is held: no lock, no
        // slot of the size limit, no epoch pin. (A callback set meanwhile may see it here.)
        if let Some(evicted) = evicted {
            self.report(std::slice::from_ref(&evicted), RemovalCause::Evicted);
        }
        Ok(added)
    }

    /// `add`'s work: links `candidate` (the cache's reference to `session` or to its renewed
    /// copy), evicting at most one session to make room, whose slot it takes over; returns
    /// that session, whose callback is still to run. Inside a remove callback it does not
    /// evict: a full cache refuses the add. `update_time` is now, under `UPDATE_TIME`.
    fn link(
        &self,
        session: &Session,
        candidate: Session,
        update_time: Option<UnixTime>,
    ) -> Result<(Added, Option<Session>), Error> {
        let (version, id) = key_of(session);
        let hash = self.map.hash(version, id);
        // One pin for the whole add (no lock is held here), which the lookup and the writers
        // below share. Let go of before any callback runs.
        let pinned = self.map.pin();
        // An add to a full cache goes through a chain of cache misses (the key's slot, the
        // evicting shard's lock, the evicted entry's slot and its count), many of them on
        // lines another core wrote last. Each is started as soon as its address is known, so
        // that they overlap instead of following one another.
        self.map.prefetch_slot_in(&pinned, hash);
        let mut evicted = None;
        loop {
            // Take a slot before the entry's shard lock, so that a full cache evicts without
            // taking that lock twice. Only a new key needs a slot: when none is free and the
            // key is already cached, go on without one (OpenSSL evicts only for new keys).
            let mut reserved = false;
            loop {
                if self.capacity.try_reserve() {
                    reserved = true;
                    break;
                }
                // Full: find the shard to evict from, and start fetching what the eviction
                // needs before the lookup.
                let soonest = self.map.soonest_shards();
                if let Some(soonest) = soonest {
                    self.map.prefetch_eviction_in(&pinned, soonest.first);
                }
                if self.map.get_in(&pinned, hash, version, id).is_some() {
                    break;
                }
                if in_remove_callback() {
                    return Err(Error::FullInRemoveCallback);
                }
                // The evicted entry's slot becomes ours: the count of slots never moves, so a
                // full cache's adders do not write the shared counter at all, and an add
                // evicts at most once, whatever the remove callback (which runs after the
                // link, holding nothing) does.
                match self.evict_one(&pinned, Slot::Keep, soonest) {
                    Some(session) => {
                        evicted = Some(session);
                        reserved = true;
                        break;
                    }
                    // Every slot is reserved by an add linking its entry right now.
                    None => yield_now(),
                }
            }
            let mut writer = self.map.write_in(&pinned, hash);
            match writer.find(hash, version, id) {
                Some(found) => {
                    if reserved {
                        self.capacity.release();
                    }
                    // The very session, or a renewed copy of it: OpenSSL's add of a session
                    // already cached, which returns 0 and under UPDATE_TIME makes its time now.
                    let same = found.holds(session)
                        || writer.with_session(&found, |cached| cached.same_origin(session));
                    // What the lock leaves behind is dropped after it: the reference the
                    // entry held, and the candidate if it was not linked.
                    let (old, unused) = if !same {
                        (Some(self.relink(&mut writer, &found, candidate)), None)
                    } else if let Some(now) = update_time {
                        if found.holds(session) {
                            // `candidate` already is `session` renewed to now (or `session`
                            // itself, when its time is now).
                            if candidate.ptr_eq(session) {
                                (None, Some(candidate))
                            } else {
                                (Some(self.relink(&mut writer, &found, candidate)), None)
                            }
                        } else {
                            // A renewed copy is cached (it may carry a renewed timeout): renew
                            // it, not `session`.
                            let renewed = writer.with_session(&found, |cached| {
                                (cached.time() != now).then(|| cached.with_time(now))
                            });
                            let old =
                                renewed.map(|renewed| self.relink(&mut writer, &found, renewed));
                            (old, Some(candidate))
                        }
                    } else {
                        (None, Some(candidate))
                    };
                    drop(writer);
                    drop(old);
                    drop(unused);
                    trace!(version, same, "session re-added");
                    let added = if same {
                        Added::AlreadyCached
                    } else {
                        Added::Replaced
                    };
                    return Ok((added, evicted));
                }
                // The key went away since we looked: start over and take a slot.
                None if !reserved => continue,
                None => {
                    writer.insert(hash, candidate, self.take_seq());
                    drop(writer);
                    trace!(version, "session added");
                    return Ok((Added::New, evicted));
                }
            }
        }
    }

    /// Puts `with` in place of the session a found entry holds, at a new place in expiry
    /// order; returns the old reference, for the caller to drop after unlocking.
    pub(super) fn relink(
        &self,
        writer: &mut ShardWriter<'_>,
        found: &Found,
        with: Session,
    ) -> Session {
        writer.replace(found, with, self.take_seq())
    }

    /// A new entry's sequence number: entries of equal expiry go in this order.
    fn take_seq(&self) -> u64 {
        self.seq.get(0).fetch_add(1, Ordering::Relaxed)
    }

    /// Evicts the session that expires soonest, returning it. With [`Slot::Keep`] the
    /// caller takes over the evicted entry's slot of the size limit. `soonest` is the soonest
    /// shard if the caller has just looked it up.
    pub(super) fn evict_one(
        &self,
        guard: &Guard,
        slot: Slot,
        mut soonest: Option<Soonest>,
    ) -> Option<Session> {
        loop {
            let shards = soonest.take().or_else(|| self.map.soonest_shards())?;
            let mut writer = self.map.write_soonest_in(guard, shards);
            // `None`: emptied by another thread since its first stamp was read; look again.
            if let Some(evicted) = writer.pop_first() {
                drop(writer);
                if slot == Slot::Release {
                    self.capacity.release();
                }
                // As OpenSSL's `remove_session_lock` does for every session it unlinks.
                evicted.mark_not_resumable();
                self.counters.cache_full.inc();
                return Some(evicted);
            }
        }
    }
}
