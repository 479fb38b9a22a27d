//! The map from (protocol version, session id) to the cache's own reference: sharded, with
//! lookups that take no lock and write nothing shared.
//!
//! Each shard is an open-addressing table (linear probing) of 16-byte slots, each the low
//! halves of its entry's hash and sequence number in one word and a raw session handle in the
//! other, and beside it, under the shard's lock, the same entries in expiry order
//! (`index.rs`), whose first stamp the shard publishes so that eviction finds the soonest
//! shard without taking every lock. Writers lock their shard;
//! readers pin the epoch (crossbeam-epoch, a thread-local operation), probe the table and take
//! a reference with a compare-and-swap on the session's own count that fails once the session
//! is being freed. So a lookup's only shared write is the reference it takes, which the
//! caller wanted. A lookup whose compare-and-swap fails (the session was freed after the
//! lookup loaded its handle: a writer has just replaced or unlinked it) looks again under the
//! shard's lock, which orders it after that writer, so a session linked throughout is never
//! missed.
//!
//! Ownership: a slot's raw handle (`handle.rs`) carries the cache's reference and one weak
//! count. Unlinking takes the reference out at once, so the count is exact the moment the
//! unlinking call returns, as OpenSSL's is; the weak count, which only keeps the memory
//! readable for a reader that found the pointer before it was unlinked, is given back
//! through the epoch. A replaced table is freed the same way.
//!
//! Architecture invariants:
//! - Lock-free readers never read a session's fields before they hold a reference to it: a
//!   slot's half of the hash picks the candidates, and the key is compared on the reference.
//! - An entry of the expiry order finds its slot by the halves of hash and sequence number
//!   the slot keeps, and by its expiry should two slots have those (`find_entry`); a slot
//!   finds its entry by its expiry and the same halves (the newest such entry,
//!   `ExpiryOrder::remove_linked`). Entries that agree on all three (sequence numbers 2^32
//!   apart) are interchangeable to the order: whichever is taken, the order and the table
//!   still hold the same entries.
//! - Within one table a slot goes from empty to used and from used to tombstone (and a
//!   tombstone back to used), never back to empty, and at least a quarter of the slots are
//!   empty; so a probe always ends, and finds every entry that stays linked throughout (in
//!   the table it probes: a replaced table keeps the handles it had).
//! - A shard's table and its expiry order hold the same entries: every change to one changes
//!   the other under the same lock (eviction and flush pop the order, then unlink).
//! - The epoch is pinned before a shard lock is taken, never under one, and at most one
//!   shard lock is held at a time.
//! - This module tree holds the crate's `unsafe` code, each block with its reason.

mod handle;
mod prefetch;
mod reclaim;
mod table;

use std::ops::Bound;
use std::sync::Arc;

/// A pin of the epoch: while one lives, nothing unlinked from the map is freed.
pub(crate) use crossbeam_epoch::Guard;
use crossbeam_epoch::{self as epoch, Atomic, Owned};
use crossbeam_utils::CachePadded;
use session_core::Session;

use crate::index::{ExpiryOrder, Stamp};
use crate::sync::{lock, try_lock, AtomicU64, Mutex, MutexGuard, Ordering};
use handle::RawHandle;
use prefetch::{prefetch, prefetch_counts};
use reclaim::{Reclaim, Unlinked};
use table::{meta, tag, Table, EMPTY, MIN_SLOTS, TOMBSTONE};

/// What a shard's lock guards: its counts and its entries' expiry order. The table pointer
/// changes only under it.
struct State {
    /// Linked entries.
    live: usize,
    /// Slots not empty: linked entries and tombstones.
    used: usize,
    /// Every linked entry's stamp and hash, soonest first: exactly the linked entries, since
    /// both change under this lock.
    order: ExpiryOrder,
}

struct Shard {
    table: Atomic<Table>,
    state: Mutex<State>,
    /// The order's first stamp, or `u64::MAX` twice when empty. Written under the lock when
    /// it changes, read without it by threads looking for the soonest shard.
    first_expiry: AtomicU64,
    first_seq: AtomicU64,
    /// The first entry's hash (published with its stamp), so that an evicting thread can start
    /// fetching the slot it will unlink before it holds the lock.
    first_hash: AtomicU64,
}

impl Shard {
    fn new() -> Self {
        Self {
            table: Atomic::new(Table::new(MIN_SLOTS)),
            state: Mutex::new(State {
                live: 0,
                used: 0,
                order: ExpiryOrder::default(),
            }),
            first_expiry: AtomicU64::new(u64::MAX),
            first_seq: AtomicU64::new(u64::MAX),
            first_hash: AtomicU64::new(EMPTY),
        }
    }

    /// The first stamp as last published, as one number that orders as the stamps do
    /// (`u128::MAX` when empty).
    #[inline]
    fn first_key(&self) -> u128 {
        let expiry = self.first_expiry.load(Ordering::Acquire);
        let seq = self.first_seq.load(Ordering::Acquire);
        u128::from(expiry) << 64 | u128::from(seq)
    }

    /// Publishes the order's first stamp (under the lock). Most changes (an add at the far
    /// end) leave it alone: then nothing is written, so that readers keep their cached copy.
    fn publish_first(&self, order: &ExpiryOrder) {
        let (expiry, seq, hash) = order
            .first_entry()
            .map_or((u64::MAX, u64::MAX, EMPTY), |(s, h)| {
                (s.expiry, s.seq, u64::from(h))
            });
        if self.first_seq.load(Ordering::Relaxed) != seq
            || self.first_expiry.load(Ordering::Relaxed) != expiry
        {
            self.first_expiry.store(expiry, Ordering::Release);
            self.first_seq.store(seq, Ordering::Release);
            self.first_hash.store(hash, Ordering::Relaxed);
        }
    }

    /// The current table, readable for as long as `guard` lives.
    #[inline]
    fn table<'g>(&self, guard: &'g Guard) -> &'g Table {
        // SAFETY: a shard always has a table (it is swapped out only in `SessionMap::drop`),
        // and a replaced one is freed through the epoch, after every guard that could have
        // loaded it, `guard` included, is gone.
        unsafe { self.table.load(Ordering::Acquire, guard).deref() }
    }
}

/// Whether `session` is the one cached under (version, id). A 32-byte id (what servers make)
/// is compared as a fixed-size array, inline, rather than through `memcmp`.
#[inline]
fn same_key(session: &Session, version: u16, id: &[u8]) -> bool {
    let held = session.id().as_bytes();
    session.version().wire() == version
        && match (<&[u8; 32]>::try_from(held), <&[u8; 32]>::try_from(id)) {
            (Ok(held), Ok(id)) => held == id,
            _ => held == id,
        }
}

/// Runs `f` on the session behind a raw handle whose reference the shard lock keeps in place,
/// without taking a reference of its own.
fn with_raw<R>(raw: RawHandle, f: impl FnOnce(&Session) -> R) -> R {
    // SAFETY: callers hold the shard lock, so the slot's reference keeps the session alive,
    // and the view is never dropped (it is not a reference of its own).
    let session = std::mem::ManuallyDrop::new(unsafe { raw.take() });
    f(&session)
}

/// The sharded map. Keys are (version, id), hashed with a per-cache random key.
pub(crate) struct SessionMap {
    shards: Box<[CachePadded<Shard>]>,
    /// `64 - log2(shards)`: a hash's top bits pick its shard, its low bits its slot.
    shift: u32,
    hasher: KeyHasher,
    reclaim: Arc<Reclaim>,
}

/// The hasher the map keys its shards and slots with: keyed with random keys per map
/// (session ids come from the network, so a fixed hash would let a client flood one probe
/// sequence), and fast on 34-byte keys. aHash.
type KeyHasher = ahash::RandomState;

/// The map's hasher: keyed from the OS's random source, or with fixed keys under the model
/// checker, whose runs must repeat exactly.
fn new_hasher() -> KeyHasher {
    #[cfg(not(sesscache_loom))]
    return KeyHasher::new();
    #[cfg(sesscache_loom)]
    return KeyHasher::with_seeds(1, 2, 3, 4);
}

/// How many ready handles an add or a remove gives back: a few more than it unlinks, so the
/// backlog a flush leaves drains as the cache is used, a little at a time.
const FREE_PER_WRITE: usize = 8;

impl SessionMap {
    /// A map with `shards` shards (a power of two).
    pub(crate) fn new(shards: usize) -> Self {
        debug_assert!(shards.is_power_of_two());
        Self {
            shards: (0..shards)
                .map(|_| CachePadded::new(Shard::new()))
                .collect(),
            shift: 64 - shards.trailing_zeros(),
            hasher: new_hasher(),
            reclaim: Arc::new(Reclaim::new()),
        }
    }

    /// The hash of a key, as this map stores it: the version and the length in one word, then
    /// the id zero-padded to 32 bytes as two 128-bit blocks, so that hashing a key takes no
    /// loop and no branch on its length. An id longer than 32 bytes (which matches nothing
    /// cached) is hashed by its length and first 32 bytes.
    #[inline]
    pub(crate) fn hash(&self, version: u16, id: &[u8]) -> u64 {
        use std::hash::{BuildHasher, Hasher};
        let mut padded = [0u8; 32];
        let bytes = match <&[u8; 32]>::try_from(id) {
            Ok(full) => full,
            Err(_) => {
                let n = id.len().min(32);
                padded[..n].copy_from_slice(&id[..n]);
                &padded
            }
        };
        let (halves, _) = bytes.as_chunks::<16>();
        let mut h = self.hasher.build_hasher();
        h.write_u64(u64::from(version) | (id.len() as u64) << 16);
        for half in halves {
            h.write_u128(u128::from_le_bytes(*half));
        }
        tag(h.finish())
    }

    /// Starts fetching the slot where a probe for `hash` begins, so that the probe's miss
    /// overlaps other work.
    #[inline]
    pub(crate) fn prefetch_slot_in(&self, guard: &Guard, hash: u64) {
        self.shard(hash).table(guard).prefetch_home(hash);
    }

    /// Starts fetching what evicting from shard number `shard` touches first: its lock, and
    /// the slot of its first entry as last published (any value is a harmless hint).
    #[inline]
    pub(crate) fn prefetch_eviction_in(&self, guard: &Guard, shard: usize) {
        let shard = &self.shards[shard];
        prefetch::<true>((&shard.state as *const Mutex<State>).cast::<u8>());
        shard
            .table(guard)
            .prefetch_home(shard.first_hash.load(Ordering::Relaxed));
    }

    #[inline]
    fn shard(&self, hash: u64) -> &Shard {
        &self.shards[self.shard_of(hash)]
    }

    /// A new reference to the session cached under the key, taking no lock.
    #[inline]
    pub(crate) fn get(&self, hash: u64, version: u16, id: &[u8]) -> Option<Session> {
        self.get_in(&epoch::pin(), hash, version, id)
    }

    /// [`get`](Self::get) under a pin the caller already holds.
    ///
    /// A session linked throughout is always found, even while writers replace it or
    /// rebuild its table: a reader whose upgrade fails (the session was freed after the
    /// reader loaded its handle, so a writer has just changed this key) looks again under the
    /// shard's lock, which orders it after that writer.
    #[inline]
    pub(crate) fn get_in(
        &self,
        guard: &Guard,
        hash: u64,
        version: u16,
        id: &[u8],
    ) -> Option<Session> {
        for (_, slot, _) in self.shard(hash).table(guard).probe(hash) {
            let raw = slot.session.load(Ordering::Acquire);
            if raw.is_null() {
                continue;
            }
            // SAFETY: the handle's weak count is released through the epoch after the slot
            // lets go of it, so not before our guard is gone.
            match unsafe { RawHandle::from_ptr(raw).upgrade() } {
                Some(session) if same_key(&session, version, id) => return Some(session),
                Some(_) => {}
                None => return self.get_locked(guard, hash, version, id),
            }
        }
        None
    }

    /// The session cached under the key, found under the shard's lock: a lookup's path when
    /// the session it found was being freed.
    #[cold]
    fn get_locked(&self, guard: &Guard, hash: u64, version: u16, id: &[u8]) -> Option<Session> {
        let writer = self.write_pinned(self.shard(hash), WriterPin::Caller(guard));
        let found = writer.find(hash, version, id)?;
        Some(writer.with_session(&found, Session::clone))
    }

    /// Whether this very session is linked, taking no lock and no reference.
    #[inline]
    pub(crate) fn holds(&self, hash: u64, session: &Session) -> bool {
        let guard = epoch::pin();
        let want = session.as_ptr().cast_mut();
        let held = self
            .shard(hash)
            .table(&guard)
            .probe(hash)
            .any(|(_, slot, _)| slot.session.load(Ordering::Acquire) == want);
        held
    }

    /// Pins the epoch (with no lock held), for the `_in` methods: an add does several
    /// lookups and writes under one pin.
    pub(crate) fn pin(&self) -> Guard {
        epoch::pin()
    }

    /// Locks the shard of `hash` for changes. The epoch is pinned first (never under a lock).
    pub(crate) fn write(&self, hash: u64) -> ShardWriter<'_> {
        self.reclaim.free_ready(FREE_PER_WRITE);
        self.write_pinned(self.shard(hash), WriterPin::Own(epoch::pin()))
    }

    /// [`write`](Self::write) under a pin the caller holds (taken with no lock held).
    pub(crate) fn write_in<'a>(&'a self, guard: &'a Guard, hash: u64) -> ShardWriter<'a> {
        self.reclaim.free_ready(FREE_PER_WRITE);
        self.write_pinned(self.shard(hash), WriterPin::Caller(guard))
    }

    /// Locks shard number `shard` for changes.
    pub(crate) fn write_shard(&self, shard: usize) -> ShardWriter<'_> {
        self.reclaim.free_ready(FREE_PER_WRITE);
        self.write_pinned(&self.shards[shard], WriterPin::Own(epoch::pin()))
    }

    /// Gives back every unlinked handle whose grace period is over (a flush does, between
    /// batches). With `hand_over`, first hands this thread's deferred calls to the epoch,
    /// which may end some grace periods: a flush does when it is done, so that the memory of
    /// what it unlinked does not wait for later writes (what is still in its grace period
    /// does).
    pub(crate) fn free_unlinked(&self, hand_over: bool) {
        if hand_over {
            epoch::pin().flush();
        }
        self.reclaim.free_ready(usize::MAX);
    }

    pub(crate) fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The shards whose first entries expire soonest and next soonest, as far as the shards'
    /// published first stamps tell: exact when no other thread is changing the map, a moment
    /// old otherwise (the caller pops under the shard's lock and looks again if it was
    /// emptied).
    pub(crate) fn soonest_shards(&self) -> Option<Soonest> {
        // A plain loop over one 128-bit key per shard (an empty shard's is the largest, which
        // no entry's reaches: sequence numbers stay below 2^63): every add to a full cache
        // runs this.
        let mut first = (u128::MAX, 0);
        let mut second = (u128::MAX, 0);
        for (i, shard) in self.shards.iter().enumerate() {
            let key = shard.first_key();
            if key < first.0 {
                second = first;
                first = (key, i);
            } else if key < second.0 {
                second = (key, i);
            }
        }
        (first.0 != u128::MAX).then_some(Soonest {
            first: first.1,
            runner_up: (second.0 != u128::MAX).then_some(second.1),
        })
    }

    /// Locks the soonest shard for an eviction. If another thread holds its lock at that
    /// moment (most likely evicting that shard's first entry, which is then the one gone),
    /// locks the runner-up's instead of queueing behind it: with two threads evicting, both
    /// find the same soonest shard, whose published stamp is stale until the first one is
    /// done, so waiting would make them take turns on one lock at every add.
    pub(crate) fn write_soonest_in<'a>(
        &'a self,
        guard: &'a Guard,
        soonest: Soonest,
    ) -> ShardWriter<'a> {
        self.reclaim.free_ready(FREE_PER_WRITE);
        let shard = &self.shards[soonest.first];
        match (try_lock(&shard.state), soonest.runner_up) {
            (Some(state), _) => self.writer(shard, state, WriterPin::Caller(guard)),
            (None, Some(runner_up)) => {
                self.write_pinned(&self.shards[runner_up], WriterPin::Caller(guard))
            }
            (None, None) => self.write_pinned(shard, WriterPin::Caller(guard)),
        }
    }

    fn write_pinned<'a>(&'a self, shard: &'a Shard, guard: WriterPin<'a>) -> ShardWriter<'a> {
        self.writer(shard, lock(&shard.state), guard)
    }

    fn writer<'a>(
        &'a self,
        shard: &'a Shard,
        state: MutexGuard<'a, State>,
        guard: WriterPin<'a>,
    ) -> ShardWriter<'a> {
        ShardWriter {
            state: Some(state),
            shard,
            guard,
            reclaim: &self.reclaim,
            unlinked: None,
            retired_table: false,
        }
    }

    /// Which shard a hash is in. With one shard the shift is 64, which `checked_shr` turns
    /// into shard 0.
    #[inline]
    fn shard_of(&self, hash: u64) -> usize {
        hash.checked_shr(self.shift).unwrap_or(0) as usize
    }

    /// New references to every linked session.
    pub(crate) fn sessions(&self) -> Vec<Session> {
        let mut all = Vec::new();
        for shard in self.shards.iter() {
            let w = self.write_pinned(shard, WriterPin::Own(epoch::pin()));
            for (_, slot) in w.table().linked() {
                // SAFETY: a linked slot's reference is held until it is unlinked, which needs
                // the lock we hold.
                all.push(unsafe {
                    RawHandle::from_ptr(slot.session.load(Ordering::Relaxed)).up_ref()
                });
            }
        }
        all
    }

    /// How many entries are linked (by the shards' counts).
    #[cfg(all(test, not(sesscache_loom)))]
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(&s.state).live).sum()
    }

    /// How many entries the shards' expiry orders hold.
    #[cfg(all(test, not(sesscache_loom)))]
    pub(crate) fn order_len(&self) -> usize {
        self.shards.iter().map(|s| lock(&s.state).order.len()).sum()
    }
}

impl Drop for SessionMap {
    fn drop(&mut self) {
        // No other thread can reach the map now: release what is still linked, at once.
        // SAFETY: `&mut self` means no reader is in `get`, so nothing is pinned on our tables.
        let guard = unsafe { epoch::unprotected() };
        for shard in self.shards.iter() {
            let table = shard
                .table
                .swap(epoch::Shared::null(), Ordering::Relaxed, guard);
            if table.is_null() {
                continue;
            }
            // SAFETY: we own the table now (swapped out, no reader left).
            let table = unsafe { table.into_owned() };
            for (_, slot) in table.linked() {
                let raw = RawHandle::from_ptr(slot.session.load(Ordering::Relaxed));
                // SAFETY: a linked slot still holds its reference and its weak count, and
                // nothing can reach the pointer any more.
                unsafe {
                    drop(raw.take());
                    raw.release();
                }
            }
        }
        self.reclaim.close();
    }
}

/// The soonest shard and the runner-up, by their published first stamps.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Soonest {
    pub(crate) first: usize,
    pub(crate) runner_up: Option<usize>,
}

/// A locked shard. Sessions it returns are the cache's references: drop them after the
/// writer (the lock) is gone.
pub(crate) struct ShardWriter<'a> {
    /// The lock; `None` only while the writer is dropped.
    state: Option<MutexGuard<'a, State>>,
    shard: &'a Shard,
    guard: WriterPin<'a>,
    reclaim: &'a Arc<Reclaim>,
    /// Handles unlinked in bulk (by a flush) under this lock, handed to the epoch as one batch
    /// after it; `None` when each unlinked handle goes to the epoch on its own.
    unlinked: Option<Vec<Unlinked>>,
    /// Whether a table was retired: it then waits in this thread's bag of deferred frees,
    /// which is handed to the epoch once the lock is released.
    retired_table: bool,
}

/// A writer's pin of the epoch: its own, or one its caller holds.
enum WriterPin<'a> {
    Own(Guard),
    Caller(&'a Guard),
}

impl std::ops::Deref for WriterPin<'_> {
    type Target = Guard;

    fn deref(&self) -> &Guard {
        match self {
            Self::Own(guard) => guard,
            Self::Caller(guard) => guard,
        }
    }
}

impl Drop for ShardWriter<'_> {
    fn drop(&mut self) {
        if let Some(state) = self.state.take() {
            self.shard.publish_first(&state.order);
        }
        if let Some(batch) = self.unlinked.take().filter(|b| !b.is_empty()) {
            self.reclaim.defer(&self.guard, batch);
        }
        if self.retired_table {
            // A retired table can be megabytes: hand it to the epoch now rather than when
            // this thread next fills its bag, which may be never. This can run deferred
            // destructors, so only now, with the lock released.
            self.guard.flush();
        }
    }
}

/// A linked entry found under the lock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Found {
    index: usize,
    hash: u64,
    raw: RawHandle,
    /// The slot's meta: the low halves of the hash and of the sequence number.
    meta: u64,
}

impl Found {
    /// Whether the entry holds this very session.
    #[inline]
    pub(crate) fn holds(&self, session: &Session) -> bool {
        self.raw.is_for(session)
    }
}

impl ShardWriter<'_> {
    fn state(&self) -> &State {
        self.state.as_ref().expect("locked until dropped")
    }

    fn state_mut(&mut self) -> &mut State {
        self.state.as_mut().expect("locked until dropped")
    }

    fn table(&self) -> &Table {
        self.shard.table(&self.guard)
    }

    /// The entry under the key, if linked.
    pub(crate) fn find(&self, hash: u64, version: u16, id: &[u8]) -> Option<Found> {
        self.find_by(hash, |raw, _| with_raw(raw, |s| same_key(s, version, id)))
    }

    /// The slot of the expiry order's entry `stamp` under `hash`: the one whose meta (the
    /// halves of hash and sequence number) is the entry's. Two slots have the same meta only
    /// if their sequence numbers are 2^32 apart: once the shard has seen such numbers, the
    /// first of them whose session has the entry's expiry.
    pub(crate) fn find_entry(&self, hash: u64, stamp: Stamp) -> Option<Found> {
        let want = meta(hash, stamp.seq);
        let alike = self.state().order.metas_may_repeat();
        let table = self.table();
        let mask = table.mask();
        let mut index = hash as usize & mask;
        // A loop rather than `probe`: this runs for every flushed and evicted session, and
        // compares whole metas, so it needs no filter on the hash's half first.
        for _ in 0..table.slots.len() {
            let slot = &table.slots[index];
            match slot.meta.load(Ordering::Acquire) {
                EMPTY => return None,
                meta if meta == want => {
                    let raw = RawHandle::from_ptr(slot.session.load(Ordering::Relaxed));
                    if !alike || with_raw(raw, |s| s.expiry()) == stamp.expiry {
                        return Some(Found {
                            index,
                            hash,
                            raw,
                            meta,
                        });
                    }
                }
                _ => {}
            }
            index = (index + 1) & mask;
        }
        None
    }

    fn find_by(&self, hash: u64, mut matches: impl FnMut(RawHandle, u64) -> bool) -> Option<Found> {
        self.table().probe(hash).find_map(|(index, slot, meta)| {
            let raw = RawHandle::from_ptr(slot.session.load(Ordering::Relaxed));
            matches(raw, meta).then_some(Found {
                index,
                hash,
                raw,
                meta,
            })
        })
    }

    /// Unlinks the entry that expires soonest in this shard (the oldest among equals);
    /// returns the reference it held.
    pub(crate) fn pop_first(&mut self) -> Option<Session> {
        while let Some((stamp, hash)) = self.state_mut().order.pop_first() {
            if let Some(found) = self.find_entry(u64::from(hash), stamp) {
                return Some(self.unlink(&found));
            }
            debug_assert!(false, "an ordered entry that is not linked");
        }
        None
    }

    /// Unlinks up to `max` entries that expired before `at` (expiry < at; all when `at` is
    /// `None`), soonest first, leaving those with a sequence number at or above `seq_limit`
    /// (added after a flush began); returns the references they held.
    pub(crate) fn pop_expired(
        &mut self,
        at: Option<u64>,
        seq_limit: u64,
        max: usize,
    ) -> Vec<Session> {
        let end = at.map_or(Bound::Unbounded, |at| {
            Bound::Excluded(Stamp { expiry: at, seq: 0 })
        });
        let popped = self.state_mut().order.pop_before(end, seq_limit, max);
        // A batch: its handles go to the epoch together, and come back to writers (`Reclaim`).
        self.unlinked
            .get_or_insert_with(|| Vec::with_capacity(popped.len()));
        let mut unlinked = Vec::with_capacity(popped.len());
        for (stamp, hash) in popped {
            match self.find_entry(u64::from(hash), stamp) {
                Some(found) => unlinked.push(self.unlink(&found)),
                None => debug_assert!(false, "an ordered entry that is not linked"),
            }
        }
        unlinked
    }

    /// Runs `f` on a found entry's session (alive: the lock keeps its reference in place).
    pub(crate) fn with_session<R>(&self, found: &Found, f: impl FnOnce(&Session) -> R) -> R {
        with_raw(found.raw, f)
    }

    /// Links `session` (the map takes this reference) under `hash`, whose key must not be
    /// linked yet, with sequence number `seq` (from the cache's counter, taken under this
    /// lock, so that each shard's entries arrive in order).
    pub(crate) fn insert(&mut self, hash: u64, session: Session, seq: u64) {
        let stamp = Stamp {
            expiry: session.expiry(),
            seq,
        };
        self.state_mut().order.insert(stamp, hash as u32);
        let slots = self.table().slots.len();
        if (self.state().used + 1) * 4 > slots * 3 {
            self.rebuild(((self.state().live + 1) * 2).next_power_of_two());
        }
        let table = self.table();
        let mask = table.mask();
        let mut i = hash as usize & mask;
        // The first tombstone or empty slot on the probe: the key is not linked, so nothing
        // further along can be its entry.
        let reused = loop {
            match table.slots[i].meta.load(Ordering::Relaxed) {
                EMPTY => break false,
                TOMBSTONE => break true,
                _ => i = (i + 1) & mask,
            }
        };
        let slot = &table.slots[i];
        slot.session
            .store(RawHandle::new(session).as_ptr(), Ordering::Relaxed);
        // Publishes the handle: a reader that sees the hash sees the handle.
        slot.meta.store(meta(hash, seq), Ordering::Release);
        self.state_mut().live += 1;
        if !reused {
            self.state_mut().used += 1;
        }
    }

    /// Puts `session` (the map takes this reference) in place of a found entry, with a new
    /// sequence number; returns the reference the entry held.
    pub(crate) fn replace(&mut self, found: &Found, session: Session, seq: u64) -> Session {
        let old_expiry = with_raw(found.raw, |s| s.expiry());
        let new = Stamp {
            expiry: session.expiry(),
            seq,
        };
        let order = &mut self.state_mut().order;
        order.remove_linked(old_expiry, found.meta);
        order.insert(new, found.hash as u32);
        let slot = &self.table().slots[found.index];
        // The hash's half stays as it is, so readers see the same candidate throughout.
        slot.meta.store(meta(found.hash, seq), Ordering::Relaxed);
        slot.session
            .store(RawHandle::new(session).as_ptr(), Ordering::Release);
        self.release(found.raw)
    }

    /// Unlinks a found entry; returns the reference it held.
    pub(crate) fn remove(&mut self, found: &Found) -> Session {
        let expiry = with_raw(found.raw, |s| s.expiry());
        let ordered = self.state_mut().order.remove_linked(expiry, found.meta);
        debug_assert!(ordered, "a linked entry that is not ordered");
        self.unlink(found)
    }

    /// Unlinks a found entry whose stamp is already out of the order.
    fn unlink(&mut self, found: &Found) -> Session {
        // The caller drops the reference soon, after the lock: its count was last written
        // when the session was added, long ago and perhaps by another core, so start fetching
        // it now and let the miss overlap the rest of the unlink and the unlock.
        prefetch_counts(found.raw.as_ptr());
        let slot = &self.table().slots[found.index];
        slot.meta.store(TOMBSTONE, Ordering::Release);
        slot.session.store(std::ptr::null_mut(), Ordering::Release);
        self.state_mut().live -= 1;
        let taken = self.release(found.raw);
        let slots = self.table().slots.len();
        if slots > MIN_SLOTS && self.state().live * 8 < slots {
            self.rebuild((self.state().live * 2).next_power_of_two().max(MIN_SLOTS));
        }
        taken
    }

    /// Takes the reference out of a handle that no slot holds any more; its weak count goes
    /// to the epoch with this writer's batch when the lock is released.
    fn release(&mut self, raw: RawHandle) -> Session {
        // SAFETY: the handle left its slot under our lock, so no one else takes its reference.
        let session = unsafe { raw.take() };
        let unlinked = Unlinked(raw);
        match &mut self.unlinked {
            Some(batch) => batch.push(unlinked),
            // One handle: a deferred call that frees it is cheap enough for whichever thread
            // runs it.
            // SAFETY: the epoch runs this after the grace period.
            None => self.guard.defer(move || unsafe { unlinked.release() }),
        }
        session
    }

    /// Moves every linked entry into a fresh table of `len` slots (no tombstones) and retires
    /// the old one through the epoch.
    fn rebuild(&mut self, len: usize) {
        let len = len.max(MIN_SLOTS);
        let new = Table::new(len);
        let mask = new.mask();
        for (meta, slot) in self.table().linked() {
            // The slot's half of the hash holds every bit a table's mask takes.
            let mut i = meta as u32 as usize & mask;
            while new.slots[i].meta.load(Ordering::Relaxed) != EMPTY {
                i = (i + 1) & mask;
            }
            let to = &new.slots[i];
            to.meta.store(meta, Ordering::Relaxed);
            to.session
                .store(slot.session.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        // The handles moved: the old table is only memory now, freed once no reader sees it.
        let old = self
            .shard
            .table
            .swap(Owned::new(new), Ordering::AcqRel, &self.guard);
        // SAFETY: `old` is unreachable for any thread that pins from now on, and the epoch
        // frees it only after every guard that could have loaded it is gone.
        unsafe { self.guard.defer_destroy(old) };
        let state = self.state_mut();
        state.used = state.live;
        self.retired_table = true;
    }
}

#[cfg(all(test, not(sesscache_loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize};
    use std::sync::Arc;

    use session_core::{ProtocolVersion, SessionBuilder, SessionId};

    fn session(n: u32) -> Session {
        SessionBuilder::new(ProtocolVersion::TLS1_2, 0)
            .id(SessionId::new(&n.to_le_bytes()).unwrap())
            .build()
    }

    fn key(s: &Session) -> (u16, &[u8]) {
        (s.version().wire(), s.id().as_bytes())
    }

    fn insert(map: &SessionMap, s: &Session, seq: u64) {
        let (v, id) = key(s);
        let hash = map.hash(v, id);
        let mut w = map.write(hash);
        assert!(w.find(hash, v, id).is_none());
        w.insert(hash, s.clone(), seq);
    }

    /// Inserts each session with its position as its sequence number.
    fn insert_all(map: &SessionMap, all: &[Session]) {
        for (seq, s) in all.iter().enumerate() {
            insert(map, s, seq as u64);
        }
    }

    fn remove(map: &SessionMap, s: &Session) -> Option<Session> {
        let (v, id) = key(s);
        let hash = map.hash(v, id);
        let mut w = map.write(hash);
        let found = w.find(hash, v, id)?;
        Some(w.remove(&found))
    }

    #[inline]
    fn get(map: &SessionMap, s: &Session) -> Option<Session> {
        let (v, id) = key(s);
        map.get(map.hash(v, id), v, id)
    }

    /// Pops the soonest entry of the whole map, as eviction does.
    fn pop_soonest(map: &SessionMap) -> Option<Session> {
        map.write_shard(map.soonest_shards()?.first).pop_first()
    }

    #[test]
    fn keys_of_every_length_find_only_themselves() {
        // A table of one shard, so every key shares a probe sequence's table.
        let map = SessionMap::new(1);
        let ids: Vec<Vec<u8>> = vec![
            vec![],
            vec![0],
            vec![0, 0],
            b"ab".to_vec(),
            b"ab\0".to_vec(),
            vec![7; 31],
            vec![7; 32],
            [vec![7; 31], vec![8]].concat(),
        ];
        let all: Vec<Session> = ids
            .iter()
            .map(|id| {
                SessionBuilder::new(ProtocolVersion::TLS1_2, 0)
                    .id(SessionId::new(id).unwrap())
                    .build()
            })
            .collect();
        insert_all(&map, &all);
        for (id, s) in ids.iter().zip(&all) {
            let found = map.get(map.hash(0x0303, id), 0x0303, id).unwrap();
            assert!(found.ptr_eq(s), "{id:?}");
            assert!(map.get(map.hash(0x0304, id), 0x0304, id).is_none());
        }
        // Longer than any session id: hashed by its first 32 bytes and its length, and found
        // nowhere (not as the 32-byte id it starts with).
        let long = [vec![7; 32], vec![0]].concat();
        assert!(map.get(map.hash(0x0303, &long), 0x0303, &long).is_none());
        assert_ne!(map.hash(0x0303, &long), map.hash(0x0303, &[7; 32]));
        assert!(map
            .get(map.hash(0x0303, &[9; 32]), 0x0303, &[9; 32])
            .is_none());
    }

    #[test]
    fn the_soonest_across_shards_goes_first_then_the_oldest() {
        let map = SessionMap::new(4);
        let at = |time: u64, n: u32| {
            SessionBuilder::new(ProtocolVersion::TLS1_2, time)
                .id(SessionId::new(&n.to_le_bytes()).unwrap())
                .timeout(10)
                .build()
        };
        // (time, seq): equal expiries go by sequence number, whatever shard they are in.
        let all = [(5, 5), (5, 2), (6, 1), (5, 3), (4, 9)].map(|(t, seq)| (at(t, seq as u32), seq));
        for (s, seq) in &all {
            insert(&map, s, *seq);
        }
        let order: Vec<u64> = std::iter::from_fn(|| pop_soonest(&map))
            .map(|s| all.iter().find(|(a, _)| a.ptr_eq(&s)).unwrap().1)
            .collect();
        assert_eq!(order, [9, 2, 3, 5, 1]);
        assert_eq!((map.len(), map.order_len()), (0, 0));
    }

    #[test]
    fn an_eviction_passes_a_busy_soonest_shard_for_the_runner_up() {
        let map = SessionMap::new(4);
        let all: Vec<Session> = (0..64).map(session).collect();
        insert_all(&map, &all);
        let shard_of = |s: &Session| {
            let (v, id) = key(s);
            map.shard_of(map.hash(v, id))
        };
        let soonest = map.soonest_shards().unwrap();
        let runner_up = soonest
            .runner_up
            .expect("64 sessions fill more than one shard");
        // Sequence numbers follow `all`'s order, so each shard's first is its first in `all`.
        let first_in = |shard| all.iter().find(|s| shard_of(s) == shard).unwrap();
        assert!(all[0].ptr_eq(first_in(soonest.first)));

        // Another writer holds the soonest shard: the eviction takes the runner-up's first,
        // the soonest entry outside that shard, instead of waiting.
        let held = map.write_shard(soonest.first);
        let guard = map.pin();
        let evicted = map.write_soonest_in(&guard, soonest).pop_first().unwrap();
        assert!(evicted.ptr_eq(first_in(runner_up)));
        let outside = all.iter().find(|s| shard_of(s) != soonest.first).unwrap();
        assert!(evicted.ptr_eq(outside));
        drop(held);

        // Free, the soonest shard gives its first: the soonest entry of all.
        let soonest = map.soonest_shards().unwrap();
        let evicted = map.write_soonest_in(&guard, soonest).pop_first().unwrap();
        assert!(evicted.ptr_eq(&all[0]));
        assert_eq!((map.len(), map.order_len()), (62, 62));
    }

    #[test]
    fn removal_and_replacement_keep_the_order_exact() {
        let map = SessionMap::new(2);
        let all: Vec<Session> = (0..100).map(session).collect();
        insert_all(&map, &all);
        for s in all.iter().step_by(3) {
            assert!(remove(&map, s).is_some());
        }
        // Replace every other remaining one: it moves to the back of the order.
        for (seq, s) in (100..).zip(all.iter().skip(1).step_by(6)) {
            let (v, id) = key(s);
            let hash = map.hash(v, id);
            let mut w = map.write(hash);
            let found = w.find(hash, v, id).unwrap();
            drop(w.replace(&found, s.clone(), seq));
        }
        assert_eq!(map.order_len(), map.len());
        let popped: Vec<Session> = std::iter::from_fn(|| pop_soonest(&map)).collect();
        let untouched = (0..100).filter(|i| i % 3 != 0 && i % 6 != 1);
        let replaced = (0..100).filter(|i| i % 6 == 1);
        let want: Vec<usize> = untouched.chain(replaced).collect();
        let got: Vec<usize> = popped
            .iter()
            .map(|p| all.iter().position(|s| s.ptr_eq(p)).unwrap())
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn insert_get_remove_keep_the_count_exact() {
        let map = SessionMap::new(4);
        let s = session(1);
        insert(&map, &s, 7);
        assert_eq!(s.ref_count(), 2, "the map's reference");
        let got = get(&map, &s).unwrap();
        assert!(got.ptr_eq(&s));
        drop(got);
        let (v, id) = key(&s);
        assert!(map.holds(map.hash(v, id), &s));
        let removed = remove(&map, &s).unwrap();
        assert_eq!(s.ref_count(), 2, "handed out, not dropped");
        drop(removed);
        assert_eq!(s.ref_count(), 1, "released at once, not at the next epoch");
        assert!(get(&map, &s).is_none());
        assert!(remove(&map, &s).is_none());
        assert_eq!(map.len(), 0);
    }

    #[test]
    fn grows_shrinks_and_reuses_tombstones() {
        let map = SessionMap::new(2);
        let all: Vec<Session> = (0..5_000).map(session).collect();
        insert_all(&map, &all);
        assert_eq!(map.len(), 5_000);
        assert!(all
            .iter()
            .all(|s| get(&map, s).is_some_and(|g| g.ptr_eq(s))));
        for s in &all[..4_900] {
            assert!(remove(&map, s).is_some());
        }
        assert_eq!(map.len(), 100);
        assert!(all[..4_900].iter().all(|s| get(&map, s).is_none()));
        assert!(all[4_900..].iter().all(|s| get(&map, s).is_some()));
        // Churn on a table full of tombstones: finds stay exact.
        let mut seq = 5_000;
        for _ in 0..20 {
            for s in &all[..1_000] {
                insert(&map, s, seq);
                seq += 1;
            }
            for s in &all[..1_000] {
                assert!(remove(&map, s).is_some());
            }
        }
        assert_eq!(map.len(), 100);
        assert_eq!(map.sessions().len(), 100);
        drop(map);
        assert!(
            all.iter().all(|s| s.ref_count() == 1),
            "the map let go of all"
        );
    }

    #[test]
    fn replace_and_find_entry() {
        let map = SessionMap::new(1);
        let old = session(1);
        let new = session(1);
        insert(&map, &old, 1);
        let (v, id) = key(&old);
        let hash = map.hash(v, id);
        let mut w = map.write(hash);
        let found = w.find(hash, v, id).unwrap();
        assert!(found.holds(&old) && found.meta >> 32 == 1);
        let was = w.replace(&found, new.clone(), 2);
        let stamp = |seq| Stamp {
            expiry: new.expiry(),
            seq,
        };
        assert!(w.find_entry(hash, stamp(1)).is_none());
        assert!(w.find_entry(hash, stamp(2)).is_some_and(|f| f.holds(&new)));
        drop(w);
        assert!(was.ptr_eq(&old));
        drop(was);
        assert_eq!(old.ref_count(), 1);
        assert!(get(&map, &new).is_some_and(|g| g.ptr_eq(&new)));
    }

    /// Two entries whose slots keep the same halves of hash and sequence number (numbers 2^32
    /// apart) but that expire at different times: each entry of the order unlinks its own
    /// session, whichever slot a probe meets first.
    #[test]
    fn slots_alike_but_for_their_expiry_go_in_expiry_order() {
        let map = SessionMap::new(1);
        let timed = |n: u32, time| {
            SessionBuilder::new(ProtocolVersion::TLS1_2, time)
                .id(SessionId::new(&n.to_le_bytes()).unwrap())
                .build()
        };
        let (later, sooner) = (timed(1, 200), timed(2, 100));
        // One hash for both (the map trusts the caller's), the later one first in the probe.
        let hash = map.hash(0x0303, &1u32.to_le_bytes());
        let mut w = map.write(hash);
        w.insert(hash, later.clone(), (1 << 32) + 5);
        w.insert(hash, sooner.clone(), 5);
        let first = w.pop_first().unwrap();
        assert!(first.ptr_eq(&sooner), "the soonest entry's own session");
        let next = w.pop_first().unwrap();
        assert!(next.ptr_eq(&later));
        assert!(w.pop_first().is_none());
        drop(w);
        assert_eq!(map.len(), 0);
    }

    /// Counts live sessions: one per session made, minus one when its last reference goes.
    struct Live(Arc<AtomicUsize>);

    impl Drop for Live {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// A session with id `n`, counted in `live` until its last reference goes.
    fn counted(live: &Arc<AtomicUsize>, n: u32, time: u64) -> Session {
        live.fetch_add(1, Ordering::SeqCst);
        SessionBuilder::new(ProtocolVersion::TLS1_2, time)
            .id(SessionId::new(&n.to_le_bytes()).unwrap())
            .timeout(1)
            .app_data(Some(Arc::new(Live(live.clone()))))
            .build()
    }

    /// Runs `writer` while two threads look up ids `0..keys` without pause, checking that
    /// every hit is whole and has the key asked for; returns how many lookups hit. The
    /// readers stop when `writer` returns or panics (so a failed assertion fails the test
    /// instead of hanging it).
    fn with_racing_readers(map: &SessionMap, keys: u32, writer: impl FnOnce()) -> usize {
        struct StopOnDrop<'a>(&'a AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let hits = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        std::thread::scope(|scope| {
            for r in 0..2u32 {
                let (stop, hits) = (&stop, &hits);
                scope.spawn(move || {
                    let mut n = r;
                    while !stop.load(Ordering::Relaxed) {
                        n = (n + 7) % keys;
                        let id = n.to_le_bytes();
                        if let Some(hit) = map.get(map.hash(0x0303, &id), 0x0303, &id) {
                            assert_eq!(hit.id().as_bytes(), id);
                            assert_eq!(hit.version(), ProtocolVersion::TLS1_2);
                            hits.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
            let _stop = StopOnDrop(&stop);
            writer();
        });
        hits.into_inner()
    }

    /// Readers race a writer that links, replaces and unlinks the same keys, holding no
    /// reference of its own: sessions are freed while readers probe for them, so readers
    /// also take the path where the count already reached zero. Every hit is a session with
    /// the key asked for, and at the end every session made has been freed exactly once.
    #[test]
    fn lock_free_readers_see_only_whole_entries() {
        let map = SessionMap::new(2);
        let live = Arc::new(AtomicUsize::new(0));
        let hits = with_racing_readers(&map, 64, || {
            for round in 0..300u64 {
                for n in 0..64u32 {
                    let id = n.to_le_bytes();
                    let hash = map.hash(0x0303, &id);
                    // A sequence number per change, as the cache's counter gives.
                    let seq = round * 64 + u64::from(n);
                    let mut w = map.write(hash);
                    let old = match w.find(hash, 0x0303, &id) {
                        Some(found) if round % 3 == 0 => Some(w.remove(&found)),
                        Some(found) => Some(w.replace(&found, counted(&live, n, 0), seq)),
                        None => {
                            w.insert(hash, counted(&live, n, 0), seq);
                            None
                        }
                    };
                    drop(w);
                    // Often the last reference: freed here, while readers may be upgrading.
                    drop(old);
                }
            }
        });
        assert!(hits > 0, "the readers found entries");
        for s in map.sessions() {
            drop(remove(&map, &s));
        }
        assert_eq!(map.len(), 0);
        assert_eq!(live.load(Ordering::SeqCst), 0, "every session freed");
    }

    /// The same race with whole flush batches: readers look up while a writer fills the map
    /// and unlinks everything in batches (whose memory comes back through `Reclaim`), round
    /// after round. Every hit is whole and the key asked for; at the end every session made
    /// has been freed exactly once.
    #[test]
    fn lock_free_readers_race_flush_batches() {
        let map = SessionMap::new(4);
        let live = Arc::new(AtomicUsize::new(0));
        let hits = with_racing_readers(&map, 1024, || {
            let mut seq = 0;
            for round in 0..100u64 {
                for n in 0..1024u32 {
                    let id = n.to_le_bytes();
                    let hash = map.hash(0x0303, &id);
                    let mut w = map.write(hash);
                    assert!(w.find(hash, 0x0303, &id).is_none());
                    w.insert(hash, counted(&live, n, round), seq);
                    seq += 1;
                }
                // Everything added this round expires at round + 1, so has expired by round + 2:
                // flush it in batches.
                for shard in 0..map.shard_count() {
                    loop {
                        let mut w = map.write_shard(shard);
                        let batch = w.pop_expired(Some(round + 2), u64::MAX, 100);
                        drop(w);
                        if batch.is_empty() {
                            break;
                        }
                        // Often the last references: wiped here while readers may upgrade.
                        drop(batch);
                        map.free_unlinked(false);
                    }
                }
                assert_eq!(map.len(), 0);
                map.free_unlinked(true);
            }
        });
        assert!(hits > 0, "the readers found entries");
        assert_eq!(live.load(Ordering::SeqCst), 0, "every session freed");
    }
}

/// Model checks of the map's own code with loom: every interleaving of the threads below (up
/// to the preemption bound), over the map's real atomics, locks, tables and epoch
/// reclamation. Run with `RUSTFLAGS="--cfg sesscache_loom --cfg crossbeam_loom" cargo test
/// -p session-cache --lib model`. The sessions' reference counts are std's (`Arc` in
/// session-core): loom switches threads around them but does not explore their weak-memory
/// outcomes.
#[cfg(all(test, sesscache_loom))]
mod model {
    use std::sync::Arc;

    use session_core::{MasterKey, ProtocolVersion, SessionBuilder, SessionId};

    use super::*;

    const KEY: &[u8] = b"k";

    /// A session under id `id`, told apart by the first byte of its secret.
    fn session(id: &[u8], mark: u8) -> Session {
        SessionBuilder::new(ProtocolVersion::TLS1_2, 0)
            .id(SessionId::new(id).unwrap())
            .master_key(MasterKey::new(&[mark; 48]).unwrap())
            .build()
    }

    fn hash(map: &SessionMap, id: &[u8]) -> u64 {
        map.hash(0x0303, id)
    }

    fn insert(map: &SessionMap, s: Session, seq: u64) {
        let hash = hash(map, s.id().as_bytes());
        let mut w = map.write(hash);
        assert!(w.find(hash, 0x0303, s.id().as_bytes()).is_none());
        w.insert(hash, s, seq);
    }

    /// Replaces what is cached under `KEY` with `with`; the old reference is dropped after
    /// the lock, and is the last one, so the old session is freed.
    fn replace(map: &SessionMap, with: Session, seq: u64) {
        let hash = hash(map, KEY);
        let mut w = map.write(hash);
        let found = w.find(hash, 0x0303, KEY).expect("cached throughout");
        let old = w.replace(&found, with, seq);
        drop(w);
        drop(old);
    }

    fn get(map: &SessionMap, id: &[u8]) -> Option<Session> {
        map.get(hash(map, id), 0x0303, id)
    }

    fn check(f: impl Fn() + Sync + Send + 'static) {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(f);
    }

    /// A lookup racing a replace of its key finds the old session or the new one, never
    /// nothing, though the replace frees the old one as the lookup reads it.
    #[test]
    fn a_lookup_racing_a_replace_finds_old_or_new() {
        check(|| {
            let map = Arc::new(SessionMap::new(1));
            insert(&map, session(KEY, 1), 0);
            let writer = {
                let map = map.clone();
                loom::thread::spawn(move || replace(&map, session(KEY, 2), 1))
            };
            let found = get(&map, KEY).expect("a session cached throughout was missed");
            assert!([1, 2].contains(&found.master_key()[0]));
            assert_eq!(found.id().as_bytes(), KEY);
            drop(found);
            writer.join().unwrap();
        });
    }

    /// The same while the table grows under the lookup: the writer's insert rebuilds the
    /// table, then the replace happens in the new table only.
    #[test]
    fn a_lookup_racing_a_rebuild_and_a_replace_finds_old_or_new() {
        check(|| {
            let map = Arc::new(SessionMap::new(1));
            insert(&map, session(KEY, 1), 0);
            insert(&map, session(b"a", 3), 1);
            insert(&map, session(b"b", 3), 2);
            let writer = {
                let map = map.clone();
                loom::thread::spawn(move || {
                    // The fourth entry of four slots: a rebuild into eight.
                    insert(&map, session(b"c", 3), 3);
                    replace(&map, session(KEY, 2), 4);
                })
            };
            let found = get(&map, KEY).expect("a session cached throughout was missed");
            assert!([1, 2].contains(&found.master_key()[0]));
            drop(found);
            writer.join().unwrap();
            assert_eq!(get(&map, KEY).unwrap().master_key()[0], 2);
        });
    }

    /// A lookup racing an unlink, a shrink of the table and the epoch's reclamation finds the
    /// whole session or nothing; the unlinked session is freed exactly when its last
    /// reference goes, and the map gives back everything it held.
    #[test]
    fn a_lookup_racing_an_unlink_and_a_shrink_sees_all_or_nothing() {
        check(|| {
            let map = Arc::new(SessionMap::new(1));
            let kept = session(KEY, 1);
            insert(&map, kept.clone(), 0);
            let writer = {
                let map = map.clone();
                loom::thread::spawn(move || {
                    let hash = hash(&map, KEY);
                    let mut w = map.write(hash);
                    let found = w.find(hash, 0x0303, KEY).unwrap();
                    let taken = w.remove(&found);
                    drop(w);
                    drop(taken);
                    map.free_unlinked(true);
                })
            };
            if let Some(found) = get(&map, KEY) {
                assert!(found.ptr_eq(&kept));
            }
            writer.join().unwrap();
            assert!(get(&map, KEY).is_none());
            assert_eq!(kept.ref_count(), 1, "the map let go of its reference");
        });
    }

    /// A flush batch (unlinked together, given back through `Reclaim`) racing a lookup and
    /// an add in another shard's place: the lookup sees the session whole or not at all.
    #[test]
    fn a_lookup_racing_a_flush_batch_sees_all_or_nothing() {
        check(|| {
            let map = Arc::new(SessionMap::new(1));
            let a = session(KEY, 1);
            insert(&map, a.clone(), 0);
            insert(&map, session(b"b", 2), 1);
            let flusher = {
                let map = map.clone();
                loom::thread::spawn(move || {
                    let mut w = map.write_shard(0);
                    let batch = w.pop_expired(None, u64::MAX, 8);
                    drop(w);
                    assert_eq!(batch.len(), 2);
                    drop(batch);
                    map.free_unlinked(true);
                })
            };
            if let Some(found) = get(&map, KEY) {
                assert!(found.ptr_eq(&a));
            }
            flusher.join().unwrap();
            assert!(get(&map, KEY).is_none() && get(&map, b"b").is_none());
        });
    }
}
