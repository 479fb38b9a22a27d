//! The cache itself: a sharded map from (version, session id) to the cache's reference, kept
//! in expiry order per shard, the size bound, the mode, the callbacks and the statistics.

use std::fmt;
use std::sync::Arc;

use session_core::{Clock, ProtocolVersion, Session, SidCtx, SystemClock, UnixTime};
use tracing::{debug, trace};

use crate::callbacks::{
    in_remove_callback, run_remove_callback, Callbacks, GetSessionCallback, NewSessionCallback,
    RemovalCause, RemoveSessionCallback, TakeSessionCallback,
};
use crate::capacity::Capacity;
use crate::map::{Found, Guard, SessionMap, ShardWriter, Soonest};
use crate::resumption::{Miss, Resumption, ResumptionCounters};
use crate::spread::Spread;
use crate::stats::{Counters, Event, Stats};
use crate::sync::{yield_now, AtomicU32, AtomicU64, Ordering};
use crate::timing::{Latency, Operation, Timing};
use crate::{CacheMode, Error};

/// A session's cache key: (protocol version on the wire, session id).
fn key_of(session: &Session) -> (u16, &[u8]) {
    (session.version().wire(), session.id().as_bytes())
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

/// OpenSSL's default cache size (`SSL_SESSION_CACHE_MAX_SIZE_DEFAULT`).
pub const DEFAULT_CACHE_SIZE: usize = 20_480;

/// OpenSSL's default session timeout for a TLS context, in seconds.
pub const DEFAULT_TIMEOUT: u64 = 7_200;

/// How many expired entries a flush unlinks under one shard lock, so that no lock is held for
/// long and remove callbacks run as the flush goes.
const FLUSH_BATCH: usize = 256;

/// How a cache starts out.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// The most sessions the cache holds; 0 means no limit.
    pub size: usize,
    /// The mode bits.
    pub mode: CacheMode,
    /// The context's default session timeout in seconds (`SSL_CTX_set_timeout`).
    pub timeout: u64,
    /// Where the cache reads the time.
    pub clock: Arc<dyn Clock>,
    /// How many shards the map has (rounded up to a power of two).
    pub shards: usize,
    /// Whether operations are timed for [`SessionCache::latency`]: two clock reads each,
    /// for a server that exports metrics. Off by default.
    pub timing: bool,
}

impl Default for CacheConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            size: DEFAULT_CACHE_SIZE,
            mode: CacheMode::default(),
            timeout: DEFAULT_TIMEOUT,
            clock: Arc::new(SystemClock),
            shards: (cores * 8).next_power_of_two().max(16),
            timing: false,
        }
    }
}

/// What becomes of an unlinked entry's slot of the size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
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

/// A per-context session cache (the cache inside OpenSSL's `SSL_CTX`).
///
/// Every method takes `&self` and may be called from any number of threads at once.
/// Dropping the cache flushes it: the remove callback sees every session that was in it,
/// and sessions held elsewhere stay valid.
pub struct SessionCache {
    map: SessionMap,
    capacity: Capacity,
    /// The next entry's sequence number (the one counter, see [`Self::take_seq`]): written by
    /// every add, so on a line of its own, away from what every operation reads.
    seq: Spread,
    mode: AtomicU32,
    timeout: AtomicU64,
    clock: Arc<dyn Clock>,
    counters: Counters,
    resumptions: ResumptionCounters,
    timing: Timing,
    callbacks: Callbacks,
}

impl SessionCache {
    /// An empty cache.
    pub fn new(config: CacheConfig) -> Self {
        let shards = config.shards.max(2).next_power_of_two();
        Self {
            map: SessionMap::new(shards),
            capacity: Capacity::new(config.size),
            seq: Spread::new(1),
            mode: AtomicU32::new(config.mode.bits()),
            timeout: AtomicU64::new(config.timeout),
            clock: config.clock,
            counters: Counters::new(),
            resumptions: ResumptionCounters::new(),
            timing: Timing::new(config.timing),
            callbacks: Callbacks::new(),
        }
    }

    /// The time now, by the cache's clock.
    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }

    /// The cache's clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

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
    fn relink(&self, writer: &mut ShardWriter<'_>, found: &Found, with: Session) -> Session {
        writer.replace(found, with, self.take_seq())
    }

    /// A new entry's sequence number: entries of equal expiry go in this order.
    fn take_seq(&self) -> u64 {
        self.seq.get(0).fetch_add(1, Ordering::Relaxed)
    }

    /// Unlinks the entry under (version, id) if `unlink` says so, returning the cache's
    /// reference.
    fn unlink_if(
        &self,
        version: u16,
        id: &[u8],
        unlink: impl FnOnce(&Session, u64) -> bool,
    ) -> Option<Session> {
        let hash = self.map.hash(version, id);
        let mut writer = self.map.write(hash);
        let found = writer.find(hash, version, id)?;
        if !writer.with_session(&found, |s| unlink(s, found.seq)) {
            return None;
        }
        let unlinked = writer.remove(&found);
        drop(writer);
        self.capacity.release();
        Some(unlinked)
    }

    /// Evicts the session that expires soonest, returning it. With [`Slot::Keep`] the
    /// caller takes over the evicted entry's slot of the size limit. `soonest` is the soonest
    /// shard if the caller has just looked it up.
    fn evict_one(
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

    /// Tells the trace and the remove callback that `sessions` left the cache (for
    /// [`RemovalCause::Removed`], the session the caller named). Called with no lock held, so
    /// the callback may call back into the cache; an add it makes does not evict
    /// ([`Error::FullInRemoveCallback`]).
    fn report(&self, sessions: &[Session], cause: RemovalCause) {
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
        let unlinked = self.unlink_if(version, id, |_, _| true);
        session.mark_not_resumable();
        trace!(
            version = session.version().wire(),
            found = unlinked.is_some(),
            "session removed"
        );
        self.report(std::slice::from_ref(session), RemovalCause::Removed);
        unlinked.is_some()
    }

    /// Removes the session cached under (version, id) and hands the cache's reference to the
    /// caller: a single-use ticket's lookup (rustls's `take`). Like every removal it marks
    /// the session not resumable, and the remove callback runs.
    pub fn take(&self, version: ProtocolVersion, id: &[u8]) -> Option<Session> {
        let taken = self.unlink_if(version.wire(), id, |_, _| true)?;
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
    /// With a take-session callback set ([`TakeSessionCallback`]), the callback decides: it
    /// is given the live ticket the internal cache gave up (or `None` after a miss) and
    /// returns the session to resume. A ticket it refuses counts a miss; one it finds after
    /// an internal miss counts in `cb_hits` and is checked like any other, and is not stored.
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
            let taken = self.unlink_if(request.version.wire(), request.id, |s, _| {
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
            let unlinked = self.unlink_if(version, id, |s, _| s.ptr_eq(&session));
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

    /// The size limit (0 = none).
    #[doc(alias = "SSL_CTX_sess_get_cache_size")]
    pub fn size(&self) -> usize {
        self.capacity.limit()
    }

    /// Sets the size limit (0 = none), evicting soonest-to-expire sessions at once until the
    /// cache fits, and returns the old limit. From its return on, the cache holds at most
    /// `size` sessions, whatever other threads are adding.
    #[doc(alias = "SSL_CTX_sess_set_cache_size")]
    pub fn set_size(&self, size: usize) -> usize {
        // From here on no add takes a slot against the old limit (see `Capacity`); what
        // is over the new one is linked, or about to be by an add that reserved before.
        let old = self.capacity.set_limit(size);
        while self.capacity.over_limit() {
            // The pin ends with this statement: the callback below runs with nothing held.
            let evicted = self.evict_one(&self.map.pin(), Slot::Release, None);
            match evicted {
                Some(evicted) => self.report(std::slice::from_ref(&evicted), RemovalCause::Evicted),
                // The excess is reserved by adds that are linking right now: wait for them.
                None => yield_now(),
            }
        }
        old
    }

    /// How many sessions are cached (`SSL_CTX_sess_number`).
    #[doc(alias = "SSL_CTX_sess_number")]
    pub fn len(&self) -> usize {
        self.capacity.used()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The mode bits.
    #[doc(alias = "SSL_CTX_get_session_cache_mode")]
    pub fn mode(&self) -> CacheMode {
        CacheMode::from_bits_retain(self.mode.load(Ordering::Relaxed))
    }

    /// Sets the mode bits, returning the old ones.
    #[doc(alias = "SSL_CTX_set_session_cache_mode")]
    pub fn set_mode(&self, mode: CacheMode) -> CacheMode {
        CacheMode::from_bits_retain(self.mode.swap(mode.bits(), Ordering::Relaxed))
    }

    /// The context's default session timeout, in seconds.
    #[doc(alias = "SSL_CTX_get_timeout")]
    pub fn timeout(&self) -> u64 {
        self.timeout.load(Ordering::Relaxed)
    }

    /// Sets the context's default session timeout, returning the old one. Sessions already
    /// made keep theirs.
    #[doc(alias = "SSL_CTX_set_timeout")]
    pub fn set_timeout(&self, timeout: u64) -> u64 {
        self.timeout.swap(timeout, Ordering::Relaxed)
    }

    /// A snapshot of the statistics.
    pub fn stats(&self) -> Stats {
        self.counters
            .snapshot(self.len(), self.size(), self.resumptions.snapshot())
    }

    /// Counts a handshake event; returns the counter's new value. Only a
    /// [`Handshake`](crate::Handshake) counts.
    pub(crate) fn count(&self, event: Event) -> u64 {
        self.counters.count(event)
    }

    /// Counts one finished server handshake's outcome in [`Stats::resumptions`]: only
    /// [`Handshake::finish`](crate::Handshake::finish) does, once per handshake.
    pub(crate) fn count_resumption(&self, outcome: Resumption) {
        self.resumptions.record(outcome);
    }

    /// Turns the timing of operations on or off (off by default: see
    /// [`CacheConfig::timing`]).
    pub fn set_timing(&self, on: bool) {
        self.timing.set(on);
    }

    /// Whether operations are timed.
    pub fn is_timing(&self) -> bool {
        self.timing.is_on()
    }

    /// How long `op` has taken, over the operations timed while timing was on.
    pub fn latency(&self, op: Operation) -> Latency {
        self.timing.snapshot(op)
    }

    /// References to every cached session, in no particular order.
    pub fn sessions(&self) -> Vec<Session> {
        self.map.sessions()
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

impl Drop for SessionCache {
    fn drop(&mut self) {
        self.flush_all();
    }
}

impl fmt::Debug for SessionCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionCache")
            .field("len", &self.len())
            .field("size", &self.size())
            .field("mode", &self.mode())
            .field("timeout", &self.timeout())
            .field("stats", &self.counters)
            .field("callbacks", &self.callbacks)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(sesscache_loom)))]
mod tests {
    use std::sync::mpsc;
    use std::sync::Mutex;
    use std::time::Duration;

    use session_core::ManualClock;

    use super::*;

    const NOW: u64 = 1_000_000;

    fn cache(size: usize) -> (SessionCache, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(NOW));
        let cache = SessionCache::new(CacheConfig {
            size,
            clock: clock.clone(),
            ..CacheConfig::default()
        });
        (cache, clock)
    }

    use test_support::session;

    fn request(id: &[u8]) -> LookupRequest<'_> {
        LookupRequest::new(
            ProtocolVersion::TLS1_2,
            id,
            SidCtx::empty(),
            ExtendedMasterSecret::NotOffered,
        )
    }

    type Removals = Arc<Mutex<Vec<(Vec<u8>, RemovalCause)>>>;

    /// Records every remove callback as (id, cause).
    fn record_removals(cache: &SessionCache) -> Removals {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        cache.set_remove_session_callback(Some(Arc::new(
            move |_: &SessionCache, s: &Session, cause| {
                sink.lock()
                    .unwrap()
                    .push((s.id().as_bytes().to_vec(), cause));
            },
        )));
        seen
    }

    #[track_caller]
    fn check_consistent(cache: &SessionCache) {
        assert_eq!(cache.len(), cache.map.len(), "count vs map");
        assert_eq!(
            cache.map.order_len(),
            cache.map.len(),
            "expiry order vs map"
        );
    }

    #[test]
    fn the_cache_holds_exactly_one_reference() {
        let (cache, _) = cache(10);
        let s = session(b"a", NOW, 100);
        assert_eq!(cache.add(&s), Ok(Added::New));
        assert_eq!(s.ref_count(), 2);
        assert!(cache.remove(&s));
        assert_eq!(s.ref_count(), 1);
        check_consistent(&cache);
    }

    #[test]
    fn adding_the_same_session_again_is_not_added() {
        let (cache, _) = cache(10);
        let s = session(b"a", NOW, 100);
        assert!(cache.add(&s).unwrap().is_added());
        assert_eq!(cache.add(&s), Ok(Added::AlreadyCached));
        assert!(!Added::AlreadyCached.is_added());
        assert_eq!(cache.len(), 1);
        assert_eq!(s.ref_count(), 2);
    }

    #[test]
    fn a_different_session_under_the_same_key_replaces_the_old_one() {
        let (cache, _) = cache(10);
        let removals = record_removals(&cache);
        let old = session(b"a", NOW, 100);
        let new = session(b"a", NOW, 100);
        cache.add(&old).unwrap();
        assert_eq!(cache.add(&new), Ok(Added::Replaced));
        assert!(Added::Replaced.is_added());
        assert_eq!(cache.len(), 1);
        assert_eq!(old.ref_count(), 1, "the cache let go of the old session");
        assert!(cache.contains(&new) && !cache.contains(&old));
        assert!(
            removals.lock().unwrap().is_empty(),
            "OpenSSL runs no callback here"
        );
        check_consistent(&cache);
    }

    #[test]
    fn the_key_includes_the_protocol_version() {
        let (cache, _) = cache(10);
        let tls12 = session(b"a", NOW, 100);
        let tls13 = tls12.to_builder().version(ProtocolVersion::TLS1_3).build();
        assert_eq!(cache.add(&tls12), Ok(Added::New));
        assert_eq!(cache.add(&tls13), Ok(Added::New));
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn empty_ids_are_refused() {
        let (cache, _) = cache(10);
        let s = session(b"", NOW, 100);
        assert_eq!(cache.add(&s), Err(Error::EmptySessionId));
        assert!(cache.is_empty());
    }

    #[test]
    fn ids_of_up_to_32_bytes_work() {
        let (cache, _) = cache(10);
        let s = session(&[0xEE; 32], NOW, 100);
        cache.add(&s).unwrap();
        assert!(matches!(cache.lookup(&request(&[0xEE; 32])), Lookup::Hit(h) if h.ptr_eq(&s)));
        assert!(matches!(
            cache.lookup(&request(&[0xEE; 33])),
            Lookup::Miss(Miss::UnknownId)
        ));
        assert!(matches!(
            cache.lookup(&request(&[0xEE; 31])),
            Lookup::Miss(Miss::UnknownId)
        ));
        assert_eq!(cache.stats().misses, 2);
    }

    #[test]
    fn update_time_stores_a_renewed_copy() {
        let (cache, _) = cache(10);
        cache.set_mode(CacheMode::SERVER | CacheMode::UPDATE_TIME);
        let s = session(b"a", NOW - 50, 100);
        assert_eq!(cache.add(&s), Ok(Added::New));
        let cached = cache.get(ProtocolVersion::TLS1_2, b"a").unwrap();
        assert_eq!(cached.time(), NOW);
        assert_eq!(s.time(), NOW - 50, "the shared session did not change");
        assert_eq!(cached.master_key(), s.master_key());
        assert_eq!(cache.add(&cached), Ok(Added::AlreadyCached));
    }

    #[test]
    fn update_time_refreshes_a_session_added_again() {
        let (cache, clock) = cache(10);
        cache.set_mode(CacheMode::SERVER | CacheMode::UPDATE_TIME);
        let s = session(b"a", NOW, 100);
        cache.add(&s).unwrap();
        let cached = cache.get(ProtocolVersion::TLS1_2, b"a").unwrap();
        assert!(cached.ptr_eq(&s), "time already current: no copy");
        clock.advance(60);
        assert_eq!(cache.add(&s), Ok(Added::AlreadyCached));
        assert_eq!(
            cache.get(ProtocolVersion::TLS1_2, b"a").unwrap().time(),
            NOW + 60
        );
        check_consistent(&cache);
    }

    /// OpenSSL changes a cached session's time in place, so adding the same session again
    /// finds it (returns 0) whatever renewals happened; here renewals are copies, which share
    /// their original's origin.
    #[test]
    fn re_adding_a_session_whose_renewed_copy_is_cached_is_not_added() {
        let (cache, clock) = cache(10);
        let s = session(b"a", NOW - 50, 100);
        cache.set_mode(CacheMode::SERVER | CacheMode::UPDATE_TIME);
        assert_eq!(cache.add(&s), Ok(Added::New));
        let copy = cache.get(ProtocolVersion::TLS1_2, b"a").unwrap();
        assert!(!copy.ptr_eq(&s) && copy.time() == NOW);
        let renewed = cache.set_session_timeout(&copy, 500).unwrap();
        clock.advance(30);
        assert_eq!(cache.add(&s), Ok(Added::AlreadyCached), "OpenSSL returns 0");
        let cached = cache.get(ProtocolVersion::TLS1_2, b"a").unwrap();
        assert_eq!((cached.time(), cached.timeout()), (NOW + 30, 500));
        assert!(cached.same_origin(&s));
        // Without UPDATE_TIME, nothing changes at all.
        cache.set_mode(CacheMode::SERVER);
        clock.advance(30);
        assert_eq!(cache.add(&s), Ok(Added::AlreadyCached));
        assert_eq!(
            cache.add(&renewed),
            Ok(Added::AlreadyCached),
            "an older copy of the same session"
        );
        // A different session under the key still replaces it.
        assert_eq!(cache.add(&session(b"a", NOW, 100)), Ok(Added::Replaced));
        assert_eq!(cache.len(), 1);
        check_consistent(&cache);
    }

    #[test]
    fn remove_marks_and_calls_back_whether_or_not_cached() {
        let (cache, _) = cache(10);
        let removals = record_removals(&cache);
        let cached = session(b"a", NOW, 100);
        let absent = session(b"b", NOW, 100);
        cache.add(&cached).unwrap();
        assert!(cache.remove(&cached));
        assert!(!cache.remove(&absent));
        assert!(!cached.is_resumable() && !absent.is_resumable());
        assert_eq!(
            *removals.lock().unwrap(),
            [
                (b"a".to_vec(), RemovalCause::Removed),
                (b"b".to_vec(), RemovalCause::Removed)
            ]
        );
    }

    #[test]
    fn remove_with_an_empty_id_does_nothing() {
        let (cache, _) = cache(10);
        let removals = record_removals(&cache);
        let s = session(b"", NOW, 100);
        assert!(!cache.remove(&s));
        assert!(removals.lock().unwrap().is_empty());
        assert!(!s.is_resumable(), "it never was: no id, no ticket");
    }

    #[test]
    fn remove_unlinks_whatever_session_holds_the_key() {
        let (cache, _) = cache(10);
        let cached = session(b"a", NOW, 100);
        let other = session(b"a", NOW, 100);
        cache.add(&cached).unwrap();
        assert!(cache.remove(&other), "OpenSSL removes by key");
        assert!(cache.is_empty());
        assert!(cached.is_resumable() && !other.is_resumable());
    }

    #[test]
    fn take_hands_over_the_cache_reference() {
        let (cache, _) = cache(10);
        let removals = record_removals(&cache);
        let s = session(b"t", NOW, 100);
        cache.add(&s).unwrap();
        let taken = cache.take(ProtocolVersion::TLS1_2, b"t").unwrap();
        assert!(taken.ptr_eq(&s));
        assert!(!s.is_resumable(), "taken out of the cache: used up");
        assert_eq!(s.ref_count(), 2);
        assert!(
            cache.take(ProtocolVersion::TLS1_2, b"t").is_none(),
            "only once"
        );
        assert_eq!(
            *removals.lock().unwrap(),
            [(b"t".to_vec(), RemovalCause::Taken)]
        );
        check_consistent(&cache);
    }

    #[test]
    fn lookup_take_uses_a_session_up_once_and_counts_like_lookup() {
        let (cache, clock) = cache(10);
        let removals = record_removals(&cache);
        cache.add(&session(b"t", NOW, 10)).unwrap();
        assert!(matches!(cache.lookup_take(&request(b"t")), Lookup::Hit(_)));
        assert!(
            matches!(
                cache.lookup_take(&request(b"t")),
                Lookup::Miss(Miss::UnknownId)
            ),
            "single use"
        );
        cache.add(&session(b"x", NOW, 10)).unwrap();
        let mut other_ctx = request(b"x");
        other_ctx.sid_ctx = SidCtx::new(b"other").unwrap();
        assert!(matches!(
            cache.lookup_take(&other_ctx),
            Lookup::Miss(Miss::OtherContext)
        ));
        assert_eq!(cache.len(), 1, "a refused session stays");
        clock.set(NOW + 11);
        assert!(matches!(cache.lookup_take(&request(b"x")), Lookup::Timeout));
        assert!(cache.is_empty());
        let stats = cache.stats();
        // The second take of "t" is a miss; the refused "x" counts nothing.
        assert_eq!((stats.hits, stats.misses, stats.timeouts), (1, 1, 1));
        assert_eq!(
            *removals.lock().unwrap(),
            [
                (b"t".to_vec(), RemovalCause::Taken),
                (b"x".to_vec(), RemovalCause::Expired)
            ]
        );
        check_consistent(&cache);
    }

    #[test]
    fn concurrent_takes_of_one_ticket_hit_exactly_once() {
        for _ in 0..50 {
            let (cache, _) = cache(10);
            cache.add(&session(b"t", NOW, 100)).unwrap();
            let barrier = std::sync::Barrier::new(4);
            let hits: usize = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..4)
                    .map(|_| {
                        scope.spawn(|| {
                            barrier.wait();
                            usize::from(matches!(cache.lookup_take(&request(b"t")), Lookup::Hit(_)))
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).sum()
            });
            assert_eq!(hits, 1);
            let stats = cache.stats();
            assert_eq!((stats.hits, stats.misses), (1, 3));
        }
    }

    #[test]
    fn lookup_checks_sid_ctx_and_counts_nothing_for_a_refusal() {
        let (cache, _) = cache(10);
        let s = session(b"a", NOW, 100)
            .to_builder()
            .sid_ctx(SidCtx::new(b"app").unwrap())
            .build();
        cache.add(&s).unwrap();
        assert!(matches!(
            cache.lookup(&request(b"a")),
            Lookup::Miss(Miss::OtherContext)
        ));
        let mut right = request(b"a");
        right.sid_ctx = SidCtx::new(b"app").unwrap();
        assert!(matches!(cache.lookup(&right), Lookup::Hit(_)));
        let stats = cache.stats();
        // Found but refused: neither a hit nor a miss, as in OpenSSL's ssl_get_prev_session.
        assert_eq!((stats.hits, stats.misses, stats.timeouts), (1, 0, 0));
    }

    #[test]
    fn expired_hits_are_removed_and_counted_as_timeouts() {
        let (cache, clock) = cache(10);
        let removals = record_removals(&cache);
        let s = session(b"a", NOW, 10);
        cache.add(&s).unwrap();
        clock.set(NOW + 10);
        assert!(
            matches!(cache.lookup(&request(b"a")), Lookup::Hit(_)),
            "live at expiry"
        );
        clock.set(NOW + 11);
        assert!(matches!(cache.lookup(&request(b"a")), Lookup::Timeout));
        assert!(cache.is_empty());
        assert!(!s.is_resumable());
        assert_eq!(
            *removals.lock().unwrap(),
            [(b"a".to_vec(), RemovalCause::Expired)]
        );
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses, stats.timeouts), (1, 0, 1));
        assert!(matches!(
            cache.lookup(&request(b"a")),
            Lookup::Miss(Miss::UnknownId)
        ));
    }

    #[test]
    fn extended_master_secret_must_agree() {
        let (cache, _) = cache(10);
        let ems = session(b"e", NOW, 100)
            .to_builder()
            .extended_master_secret(true)
            .build();
        let plain = session(b"p", NOW, 100);
        cache.add(&ems).unwrap();
        cache.add(&plain).unwrap();
        assert!(matches!(cache.lookup(&request(b"e")), Lookup::Abort));
        let mut with_ems = request(b"p");
        with_ems.extended_master_secret = ExtendedMasterSecret::Offered;
        assert!(matches!(
            cache.lookup(&with_ems),
            Lookup::Miss(Miss::Refused)
        ));
        with_ems.id = b"e";
        assert!(matches!(cache.lookup(&with_ems), Lookup::Hit(_)));
        let stats = cache.stats();
        // The abort and the refusal count nothing, as in OpenSSL.
        assert_eq!((stats.hits, stats.misses), (1, 0));
    }

    #[test]
    fn the_get_callback_answers_misses_and_fills_the_cache() {
        let (cache, _) = cache(10);
        let external = session(b"x", NOW, 100);
        let served = external.clone();
        cache.set_get_session_callback(Some(Arc::new(
            move |_: &SessionCache, r: &LookupRequest<'_>| {
                (r.id == b"x")
                    .then(|| served.clone())
                    .ok_or(Miss::UnknownId)
            },
        )));
        assert!(matches!(cache.lookup(&request(b"x")), Lookup::Hit(s) if s.ptr_eq(&external)));
        assert!(cache.contains(&external), "stored in the internal cache");
        assert!(matches!(
            cache.lookup(&request(b"y")),
            Lookup::Miss(Miss::UnknownId)
        ));
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.cb_hits, stats.misses), (1, 1, 2));
        // The next lookup is answered internally.
        assert!(matches!(cache.lookup(&request(b"x")), Lookup::Hit(_)));
        assert_eq!(cache.stats().cb_hits, 1);
    }

    #[test]
    fn the_take_callback_decides_every_single_use_lookup() {
        let (cache, clock) = cache(10);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let remote = session(b"r", NOW, 100);
        let (log, served) = (seen.clone(), remote.clone());
        cache.set_take_session_callback(Some(Arc::new(
            move |_: &SessionCache, r: &LookupRequest<'_>, local: Option<Session>| {
                log.lock().unwrap().push((r.id.to_vec(), local.is_some()));
                match (r.id, local) {
                    (b"kept", Some(local)) => Ok(local), // the store confirms the local ticket
                    (b"used", _) => Err(Miss::AlreadyUsed), // used up on another server
                    (b"r", None) => Ok(served.clone()),
                    _ => Err(Miss::UnknownId),
                }
            },
        )));
        for id in [&b"kept"[..], b"used"] {
            cache.add(&session(id, NOW, 100)).unwrap();
        }
        assert!(matches!(
            cache.lookup_take(&request(b"kept")),
            Lookup::Hit(_)
        ));
        assert!(matches!(
            cache.lookup_take(&request(b"used")),
            Lookup::Miss(Miss::AlreadyUsed)
        ));
        assert!(cache.is_empty(), "both left the internal cache");
        assert!(matches!(cache.lookup_take(&request(b"r")), Lookup::Hit(s) if s.ptr_eq(&remote)));
        assert!(cache.is_empty(), "a ticket from the store is not stored");
        assert!(matches!(
            cache.lookup_take(&request(b"none")),
            Lookup::Miss(Miss::UnknownId)
        ));
        let stats = cache.stats();
        assert_eq!(
            (stats.hits, stats.cb_hits, stats.misses, stats.timeouts),
            (2, 1, 3, 0)
        );
        assert_eq!(
            *seen.lock().unwrap(),
            [
                (b"kept".to_vec(), true),
                (b"used".to_vec(), true),
                (b"r".to_vec(), false),
                (b"none".to_vec(), false)
            ]
        );

        // A session from the store gets the checks the internal cache's get.
        clock.advance(200);
        assert!(matches!(cache.lookup_take(&request(b"r")), Lookup::Timeout));
        let mut other = request(b"r");
        other.sid_ctx = SidCtx::new(b"other").unwrap();
        assert!(matches!(
            cache.lookup_take(&other),
            Lookup::Miss(Miss::OtherContext)
        ));
        // An expired internal ticket never reaches the callback.
        cache.add(&session(b"old", NOW, 1)).unwrap();
        seen.lock().unwrap().clear();
        assert!(matches!(
            cache.lookup_take(&request(b"old")),
            Lookup::Timeout
        ));
        assert_eq!(seen.lock().unwrap().len(), 0);
    }

    #[test]
    fn no_internal_store_and_lookup_are_honoured() {
        let (cache, _) = cache(10);
        cache.set_mode(CacheMode::SERVER | CacheMode::NO_INTERNAL_STORE);
        let external = session(b"x", NOW, 100);
        let served = external.clone();
        cache.set_get_session_callback(Some(Arc::new(
            move |_: &SessionCache, _: &LookupRequest<'_>| Ok(served.clone()),
        )));
        assert!(matches!(cache.lookup(&request(b"x")), Lookup::Hit(_)));
        assert!(cache.is_empty());

        cache.set_mode(CacheMode::SERVER | CacheMode::NO_INTERNAL_LOOKUP);
        let internal = session(b"i", NOW, 100);
        cache.add(&internal).unwrap();
        cache.set_get_session_callback(None);
        assert!(matches!(
            cache.lookup(&request(b"i")),
            Lookup::Miss(Miss::UnknownId)
        ));
        assert_eq!(
            cache.stats().misses,
            1,
            "only the first lookup missed internally"
        );
    }

    #[test]
    fn a_callback_session_that_is_not_resumable_is_refused() {
        let (cache, _) = cache(10);
        let dead = session(b"x", NOW, 100);
        dead.mark_not_resumable();
        cache.set_get_session_callback(Some(Arc::new(
            move |_: &SessionCache, _: &LookupRequest<'_>| Ok(dead.clone()),
        )));
        assert!(matches!(
            cache.lookup(&request(b"x")),
            Lookup::Miss(Miss::Refused)
        ));
        let stats = cache.stats();
        // As lookup_sess_in_cache: the internal miss counts, the refused session nothing.
        assert_eq!((stats.cb_hits, stats.misses, stats.hits), (0, 1, 0));
        assert!(cache.is_empty(), "not stored either");
    }

    #[test]
    fn flush_removes_exactly_what_expired_at_the_given_time() {
        let (cache, _) = cache(10);
        let removals = record_removals(&cache);
        let a = session(b"a", NOW - 10, 10); // expires at NOW
        let b = session(b"b", NOW, 10); // NOW + 10
        let c = session(b"c", NOW + 10, 10); // NOW + 20
        for s in [&c, &a, &b] {
            cache.add(s).unwrap();
        }
        assert_eq!(
            cache.flush_expired(NOW),
            0,
            "at exactly the expiry second: live"
        );
        assert_eq!(cache.flush_expired(NOW + 9), 1);
        assert!(!cache.contains(&a) && !a.is_resumable());
        assert_eq!(cache.flush_expired(NOW + 11), 1);
        assert!(!cache.contains(&b));
        assert_eq!(cache.flush_expired(NOW + 21), 1);
        assert!(cache.is_empty());
        let causes: Vec<_> = removals.lock().unwrap().iter().map(|r| r.1).collect();
        assert_eq!(causes, [RemovalCause::Flushed; 3]);
        check_consistent(&cache);
    }

    #[test]
    fn flush_all_removes_even_sessions_that_never_expire() {
        let (cache, _) = cache(10);
        let forever = session(b"f", u64::MAX - 1, 100);
        let normal = session(b"n", NOW, 100);
        cache.add(&forever).unwrap();
        cache.add(&normal).unwrap();
        assert_eq!(forever.expiry(), u64::MAX);
        assert_eq!(
            cache.flush_expired(u64::MAX),
            1,
            "an overflowed expiry never expires"
        );
        assert!(cache.contains(&forever));
        assert_eq!(cache.flush_all(), 1);
        assert!(cache.is_empty());
    }

    #[test]
    fn flush_uses_the_clock() {
        let (cache, clock) = cache(10);
        cache.add(&session(b"a", NOW, 5)).unwrap();
        assert_eq!(cache.flush(), 0);
        clock.advance(6);
        assert_eq!(cache.flush(), 1);
    }

    #[test]
    fn a_large_flush_goes_in_batches_and_misses_nothing() {
        let (cache, _) = cache(0);
        for i in 0..2_000u32 {
            let expiry_offset = u64::from(i % 2) * 1_000;
            cache
                .add(&session(&i.to_be_bytes(), NOW + expiry_offset, 10))
                .unwrap();
        }
        assert_eq!(cache.flush_expired(NOW + 11), 1_000);
        assert_eq!(cache.len(), 1_000);
        check_consistent(&cache);
    }

    #[test]
    fn size_zero_is_unlimited() {
        let (cache, _) = cache(0);
        for i in 0..100u32 {
            cache.add(&session(&i.to_be_bytes(), NOW, 100)).unwrap();
        }
        assert_eq!(cache.len(), 100);
        assert_eq!(cache.stats().cache_full, 0);
    }

    #[test]
    fn size_one_evicts_the_old_session_for_the_new() {
        let (cache, _) = cache(1);
        let removals = record_removals(&cache);
        let a = session(b"a", NOW, 100);
        let b = session(b"b", NOW, 100);
        cache.add(&a).unwrap();
        assert_eq!(cache.add(&b), Ok(Added::New));
        assert!(!cache.contains(&a) && cache.contains(&b));
        assert_eq!(cache.stats().cache_full, 1);
        assert_eq!(a.ref_count(), 1);
        assert!(
            !a.is_resumable(),
            "evicted: marked as remove_session_lock marks"
        );
        assert!(b.is_resumable());
        assert_eq!(
            *removals.lock().unwrap(),
            [(b"a".to_vec(), RemovalCause::Evicted)]
        );
    }

    #[test]
    fn eviction_takes_the_soonest_to_expire_then_the_oldest() {
        let (cache, _) = cache(3);
        let late = session(b"late", NOW, 300);
        let soon = session(b"soon", NOW, 100);
        let tie_old = session(b"tie1", NOW, 200);
        cache.add(&late).unwrap();
        cache.add(&soon).unwrap();
        cache.add(&tie_old).unwrap();
        // Looking a session up does not protect it: this is not LRU.
        assert!(matches!(cache.lookup(&request(b"soon")), Lookup::Hit(_)));
        cache.add(&session(b"tie2", NOW, 200)).unwrap();
        assert!(!cache.contains(&soon));
        // Now tie1 and tie2 expire together: the older goes first.
        cache.add(&session(b"new", NOW, 1_000)).unwrap();
        assert!(!cache.contains(&tie_old));
        assert!(cache.contains(&late));
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.stats().cache_full, 2);
        check_consistent(&cache);
    }

    #[test]
    fn adds_ordered_across_threads_are_evicted_in_that_order() {
        // Equal expiries, so only the order of the adds decides. Two threads take turns, each
        // adding after it hears that the other has added, so every add happens after the one
        // before it, whichever thread and shard it was in.
        let n = 64;
        let (cache, _) = cache(n);
        let added: Vec<Session> = (0..n)
            .map(|i| session(format!("first {i}").as_bytes(), NOW, 100))
            .collect();
        let (to_odd, odd_turn) = mpsc::channel::<()>();
        let (to_even, even_turn) = mpsc::channel::<()>();
        std::thread::scope(|s| {
            let (cache, added) = (&cache, &added);
            s.spawn(move || {
                for i in (0..n).step_by(2) {
                    if i > 0 {
                        even_turn.recv().unwrap();
                    }
                    cache.add(&added[i]).unwrap();
                    to_odd.send(()).unwrap();
                }
            });
            s.spawn(move || {
                for i in (1..n).step_by(2) {
                    odd_turn.recv().unwrap();
                    cache.add(&added[i]).unwrap();
                    // The last send has no one to hear it.
                    let _ = to_even.send(());
                }
            });
        });
        for (i, gone) in added.iter().enumerate() {
            cache
                .add(&session(format!("second {i}").as_bytes(), NOW, 100))
                .unwrap();
            assert!(!cache.contains(gone), "add {i} should be evicted now");
            assert!(added[i + 1..].iter().all(|s| cache.contains(s)));
        }
        check_consistent(&cache);
    }

    #[test]
    fn the_session_being_added_is_never_the_one_evicted() {
        let (cache, _) = cache(1);
        let long = session(b"long", NOW, 1_000);
        let short = session(b"short", NOW, 1);
        cache.add(&long).unwrap();
        cache.add(&short).unwrap();
        assert!(
            cache.contains(&short),
            "the new session is linked after the eviction"
        );
    }

    #[test]
    fn lowering_the_size_evicts_at_once() {
        let (cache, _) = cache(10);
        for i in 0..10u64 {
            cache.add(&session(&i.to_be_bytes(), NOW, 100 + i)).unwrap();
        }
        assert_eq!(cache.set_size(4), 10);
        assert_eq!(cache.len(), 4);
        assert_eq!(cache.stats().cache_full, 6);
        let mut left: Vec<u64> = cache.sessions().iter().map(|s| s.timeout()).collect();
        left.sort_unstable();
        assert_eq!(left, [106, 107, 108, 109], "the longest-lived stay");
        check_consistent(&cache);
    }

    #[test]
    fn changing_a_cached_timeout_repositions_it() {
        let (cache, _) = cache(2);
        let a = session(b"a", NOW, 100);
        let b = session(b"b", NOW, 200);
        cache.add(&a).unwrap();
        cache.add(&b).unwrap();
        let renewed = cache.set_session_timeout(&a, 1_000).unwrap();
        assert_eq!(renewed.timeout(), 1_000);
        assert_eq!(a.timeout(), 100, "the shared session is unchanged");
        assert!(cache.contains(&renewed) && !cache.contains(&a));
        cache.add(&session(b"c", NOW, 500)).unwrap();
        assert!(!cache.contains(&b), "b now expires first");
        assert!(cache.contains(&renewed));
        let moved = cache.set_session_time(&renewed, NOW - 2_000).unwrap();
        assert_eq!(cache.flush_expired(NOW), 1);
        assert!(!cache.contains(&moved));
        assert!(
            cache.set_session_timeout(&a, 5).is_none(),
            "a is not cached any more"
        );
        check_consistent(&cache);
    }

    #[test]
    fn timeout_overflow_never_expires() {
        let (cache, clock) = cache(10);
        let s = session(b"a", NOW, u64::MAX);
        cache.add(&s).unwrap();
        clock.set(u64::MAX);
        assert!(matches!(cache.lookup(&request(b"a")), Lookup::Hit(_)));
        assert_eq!(cache.flush(), 0);
    }

    /// A callback that calls back into the cache must not deadlock (OpenSSL issue 31540).
    /// The work runs on another thread so that a deadlock fails the test instead of hanging it.
    #[test]
    fn callbacks_may_reenter_the_cache() {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let (cache, clock) = cache(2);
            // The callbacks reach the cache through their argument, holding no handle to it.
            cache.set_remove_session_callback(Some(Arc::new(
                move |cache: &SessionCache, s: &Session, cause| {
                    // Every kind of call, from inside the callback.
                    let _ = cache.lookup(&request(b"zzz"));
                    let _ = cache.stats();
                    let _ = cache.flush_expired(0);
                    if cause == RemovalCause::Evicted {
                        let again = s.dup();
                        let _ = cache.add(&again);
                        cache.remove(&again);
                    }
                },
            )));
            cache.set_get_session_callback(Some(Arc::new(
                move |cache: &SessionCache, r: &LookupRequest<'_>| {
                    cache.get(ProtocolVersion::TLS1_2, r.id);
                    cache.set_size(2);
                    Err(Miss::UnknownId)
                },
            )));
            for i in 0..20u32 {
                cache
                    .add(&session(&i.to_be_bytes(), NOW, 10 + u64::from(i)))
                    .unwrap();
            }
            let _ = cache.lookup(&request(b"missing"));
            clock.advance(100);
            cache.flush();
            cache.remove(&session(b"x", NOW, 1));
            tx.send(cache.len()).unwrap();
        });
        let len = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("a callback that re-entered the cache deadlocked it");
        assert_eq!(len, 0);
    }

    #[test]
    fn dropping_the_cache_flushes_it_but_held_sessions_live_on() {
        let (cache, _) = cache(10);
        let removals = record_removals(&cache);
        let held = session(b"held", NOW, 100);
        cache.add(&held).unwrap();
        cache.add(&session(b"other", NOW, 100)).unwrap();
        drop(cache);
        assert_eq!(removals.lock().unwrap().len(), 2);
        assert_eq!(held.ref_count(), 1);
        assert_eq!(held.master_key(), session(b"held", NOW, 100).master_key());
    }

    #[test]
    fn debug_output_shows_no_session_data() {
        let (cache, _) = cache(10);
        cache.add(&session(&[0xAB; 32], NOW, 100)).unwrap();
        let text = format!("{cache:?}");
        assert!(text.contains("len: 1"), "{text}");
        assert!(!text.contains("171"), "{text}");
    }
}

/// Model checks of the whole cache's add path with loom (see `map::model` for how to run
/// them): reservation, eviction and linking across shards, under every interleaving up to the
/// preemption bound.
#[cfg(all(test, sesscache_loom))]
mod model {
    use std::sync::Arc;

    use session_core::ManualClock;

    use super::*;

    fn session(id: &[u8], time: u64) -> Session {
        test_support::session(id, time, 100)
    }

    /// An add into a full cache of one, racing a lookup of the cached session and a remove
    /// of it: the add returns having evicted at most once, the bound holds throughout, and
    /// the lookup finds the session or misses cleanly.
    #[test]
    fn an_evicting_add_races_a_lookup_and_a_remove() {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(2);
        builder.check(|| {
            let cache = Arc::new(SessionCache::new(CacheConfig {
                size: 1,
                shards: 2,
                clock: Arc::new(ManualClock::new(10)),
                ..CacheConfig::default()
            }));
            let first = session(b"a", 1);
            cache.add(&first).unwrap();
            let adder = {
                let cache = cache.clone();
                loom::thread::spawn(move || {
                    assert!(cache.add(&session(b"b", 2)).unwrap().is_added());
                    assert!(cache.len() <= 1);
                })
            };
            let request = LookupRequest::new(
                ProtocolVersion::TLS1_2,
                b"a",
                SidCtx::empty(),
                ExtendedMasterSecret::NotOffered,
            );
            match cache.lookup(&request) {
                Lookup::Hit(s) => assert!(s.ptr_eq(&first)),
                other => assert!(matches!(other, Lookup::Miss(Miss::UnknownId)), "{other:?}"),
            }
            let removed = cache.remove(&first);
            adder.join().unwrap();
            assert_eq!(cache.len(), 1);
            assert_eq!(cache.stats().cache_full, u64::from(!removed));
            assert!(!first.is_resumable(), "evicted or removed, so marked");
        });
    }
}
