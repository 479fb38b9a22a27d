//! A shard's open-addressing table: 16-byte slots of (hash and sequence number, raw session
//! handle), probed linearly. Readers probe without a lock; writers change slots under the
//! shard lock.

use crate::sync::{AtomicPtr, AtomicU64, Ordering};

use super::prefetch::prefetch;

/// A slot never used in this table: a probe stops here.
pub(super) const EMPTY: u64 = 0;
/// A slot whose entry was unlinked: a probe goes on past it; an insert may reuse it.
pub(super) const TOMBSTONE: u64 = 1;
/// The smallest table; a shard never has fewer slots.
#[cfg(not(sesscache_loom))]
pub(super) const MIN_SLOTS: usize = 16;
/// Under the model checker, small tables, so that a model grows and shrinks them in a few
/// steps.
#[cfg(sesscache_loom)]
pub(super) const MIN_SLOTS: usize = 4;

/// A key's hash as the map uses it: its low half, which slots keep, is never one of the two
/// markers (its top bits pick the shard and are left alone).
#[inline]
pub(super) fn tag(hash: u64) -> u64 {
    if (hash as u32) <= TOMBSTONE as u32 {
        hash | 2
    } else {
        hash
    }
}

/// What a slot's `meta` holds for an entry: the low half of its hash (which picks the slot a
/// probe starts from and which readers compare), and the low half of its sequence number
/// (which ties the slot to its entry in the shard's expiry order). Never a marker: the hash's
/// half is at least 2.
#[inline]
pub(super) fn meta(hash: u64, seq: u64) -> u64 {
    (seq << 32) | u64::from(hash as u32)
}

pub(super) struct Slot {
    /// `EMPTY`, `TOMBSTONE` or the entry's [`meta`].
    pub(super) meta: AtomicU64,
    /// The entry's raw handle, as `RawHandle::as_ptr` gives it (null when not in use).
    pub(super) session: AtomicPtr<()>,
}

/// A shard's slots. A table owns no references and releases none when freed: its handles
/// belong to the map, which moves them to the next table or releases them itself.
pub(super) struct Table {
    pub(super) slots: Box<[Slot]>,
}

impl Table {
    pub(super) fn new(len: usize) -> Self {
        debug_assert!(len.is_power_of_two());
        Self {
            slots: (0..len)
                .map(|_| Slot {
                    meta: AtomicU64::new(EMPTY),
                    session: AtomicPtr::new(std::ptr::null_mut()),
                })
                .collect(),
        }
    }

    /// The slots that hold an entry, with its meta. Under the shard lock (or with the table
    /// owned) these are exactly the linked entries.
    pub(super) fn linked(&self) -> impl Iterator<Item = (u64, &Slot)> + '_ {
        self.slots
            .iter()
            .map(|slot| (slot.meta.load(Ordering::Relaxed), slot))
            .filter(|&(meta, _)| meta > TOMBSTONE)
    }

    #[inline]
    pub(super) fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// Starts fetching the slot where a probe for `hash` begins.
    #[inline]
    pub(super) fn prefetch_home(&self, hash: u64) {
        let home = &self.slots[hash as usize & self.mask()];
        prefetch::<false>((home as *const Slot).cast::<u8>());
    }

    /// The slots a probe for `hash` visits, in order, up to and excluding the first empty
    /// one: only those whose entry's hash has the same low half, with their meta.
    #[inline]
    pub(super) fn probe(&self, hash: u64) -> impl Iterator<Item = (usize, &Slot, u64)> + '_ {
        let mask = self.mask();
        let start = hash as usize & mask;
        (0..self.slots.len())
            .map(move |step| (start + step) & mask)
            .map(|i| {
                (
                    i,
                    &self.slots[i],
                    self.slots[i].meta.load(Ordering::Acquire),
                )
            })
            .take_while(|&(_, _, m)| m != EMPTY)
            .filter(move |&(_, _, m)| m as u32 == hash as u32)
    }
}
