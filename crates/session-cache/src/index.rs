//! The expiry index: every cached session's (expiry, insertion order), sorted, beside the map.
//!
//! It answers the two questions the map cannot: which session expires soonest (eviction), and
//! which sessions have expired by a given time (flush), at a cost that follows the answer, not
//! the size of the cache. It is sharded by insertion sequence number, so concurrent adds land
//! on different shards, and each shard publishes its first entry so that finding the global
//! soonest reads a few atomics instead of taking every lock.
//!
//! Architecture invariant: an index shard lock is only ever taken while holding at most the
//! map shard lock of the same entry, never the other way round, and nothing is called out of
//! the index while its lock is held.
//!
//! Every map entry has exactly one index entry with the same stamp, except for the moment
//! between an eviction or a flush popping an index entry and unlinking its map entry: the
//! popper then unlinks the map entry only if it still holds that stamp (a stale stamp means
//! another thread already replaced or removed the entry, and took care of its index entry).
//! An index entry holds the stamp and the key's hash, which finds the map entry: no pointer
//! to the session, and no count on it.

use std::collections::BTreeMap;
use std::ops::{Bound, RangeBounds};

use crossbeam_utils::CachePadded;

use crate::sync::{lock, AtomicU64, Mutex, Ordering};

/// Where an entry sits in expiry order: expiry first, then insertion order, so that among
/// sessions that expire in the same second the oldest goes first, as in OpenSSL's list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Stamp {
    pub(crate) expiry: u64,
    pub(crate) seq: u64,
}

struct Shard {
    entries: Mutex<BTreeMap<Stamp, u64>>,
    /// The first entry's stamp, or `u64::MAX` twice when empty. Written under the lock, read
    /// without it as a hint.
    first_expiry: AtomicU64,
    first_seq: AtomicU64,
}

impl Shard {
    fn new() -> Self {
        Self {
            entries: Mutex::new(BTreeMap::new()),
            first_expiry: AtomicU64::new(u64::MAX),
            first_seq: AtomicU64::new(u64::MAX),
        }
    }

    fn publish_first(&self, entries: &BTreeMap<Stamp, u64>) {
        let (e, s) = entries
            .first_key_value()
            .map_or((u64::MAX, u64::MAX), |(st, _)| (st.expiry, st.seq));
        // Most changes (an insert at the far end) leave the first entry alone: do not write
        // the hint then, so that evicting threads reading it keep their cached copy.
        if self.first_seq.load(Ordering::Relaxed) != s
            || self.first_expiry.load(Ordering::Relaxed) != e
        {
            self.first_expiry.store(e, Ordering::Release);
            self.first_seq.store(s, Ordering::Release);
        }
    }

    fn hint(&self) -> Option<Stamp> {
        let expiry = self.first_expiry.load(Ordering::Acquire);
        let seq = self.first_seq.load(Ordering::Acquire);
        (seq != u64::MAX).then_some(Stamp { expiry, seq })
    }
}

pub(crate) struct ExpiryIndex {
    shards: Box<[CachePadded<Shard>]>,
    mask: u64,
}

impl ExpiryIndex {
    /// `shards` is rounded up to a power of two.
    pub(crate) fn new(shards: usize) -> Self {
        let n = shards.max(1).next_power_of_two();
        Self {
            shards: (0..n).map(|_| CachePadded::new(Shard::new())).collect(),
            mask: n as u64 - 1,
        }
    }

    pub(crate) fn shard_count(&self) -> usize {
        self.shards.len()
    }

    fn shard(&self, seq: u64) -> &Shard {
        &self.shards[(seq & self.mask) as usize]
    }

    pub(crate) fn insert(&self, stamp: Stamp, hash: u64) {
        let shard = self.shard(stamp.seq);
        let mut entries = lock(&shard.entries);
        entries.insert(stamp, hash);
        shard.publish_first(&entries);
    }

    /// Removes an entry; returns whether it was there.
    pub(crate) fn remove(&self, stamp: Stamp) -> bool {
        let shard = self.shard(stamp.seq);
        let mut entries = lock(&shard.entries);
        let found = entries.remove(&stamp).is_some();
        shard.publish_first(&entries);
        found
    }

    /// Takes the entry that expires soonest out of the index, as far as the shards' published
    /// hints tell; exact when no other thread is changing the index. The caller then unlinks
    /// its map entry, if that entry still holds this stamp.
    pub(crate) fn pop_soonest(&self) -> Option<(Stamp, u64)> {
        loop {
            let (_, best) = self
                .shards
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.hint().map(|h| (h, i)))
                .min()?;
            let shard = &self.shards[best];
            let mut entries = lock(&shard.entries);
            let popped = entries.pop_first();
            shard.publish_first(&entries);
            if popped.is_some() {
                return popped;
            }
            // Emptied by another thread since its hint was read: look again.
        }
    }

    /// Takes up to `max` entries of shard `shard` that expired before `at` (expiry < at; every
    /// entry when `at` is `None`) out of the index, soonest first. The caller then unlinks
    /// their map entries. Entries inserted at or after sequence number `seq_limit` stay, so a
    /// flush does not chase sessions added while it runs.
    pub(crate) fn pop_expired(
        &self,
        shard: usize,
        at: Option<u64>,
        seq_limit: u64,
        max: usize,
    ) -> Vec<(Stamp, u64)> {
        let end = at.map_or(Bound::Unbounded, |at| {
            Bound::Excluded(Stamp { expiry: at, seq: 0 })
        });
        let shard = &self.shards[shard];
        let mut entries = lock(&shard.entries);
        let mut popped = Vec::new();
        // The common case: the soonest entries are all old enough, so pop from the front.
        while popped.len() < max {
            match entries.first_key_value() {
                Some((stamp, _))
                    if (Bound::<Stamp>::Unbounded, end).contains(stamp)
                        && stamp.seq < seq_limit =>
                {
                    popped.extend(entries.pop_first());
                }
                _ => break,
            }
        }
        if popped.len() < max {
            // Sessions added during the flush sit among the expired ones: skip over them.
            let rest: Vec<Stamp> = entries
                .range((Bound::Unbounded, end))
                .filter(|(stamp, _)| stamp.seq < seq_limit)
                .take(max - popped.len())
                .map(|(stamp, _)| *stamp)
                .collect();
            for stamp in rest {
                if let Some(hash) = entries.remove(&stamp) {
                    popped.push((stamp, hash));
                }
            }
        }
        shard.publish_first(&entries);
        popped
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(&s.entries).len()).sum()
    }
}

#[cfg(all(test, not(sesscache_loom)))]
mod tests {
    use super::*;

    #[test]
    fn soonest_breaks_ties_by_insertion_order_across_shards() {
        let index = ExpiryIndex::new(4);
        for (expiry, seq) in [(10, 5), (10, 2), (11, 1), (10, 3)] {
            index.insert(Stamp { expiry, seq }, 0xABC);
        }
        assert_eq!(index.pop_soonest().unwrap().0, Stamp { expiry: 10, seq: 2 });
        assert!(!index.remove(Stamp { expiry: 10, seq: 2 }), "popped");
        assert!(index.remove(Stamp { expiry: 10, seq: 3 }));
        assert_eq!(index.pop_soonest().unwrap().0, Stamp { expiry: 10, seq: 5 });
        assert_eq!(index.len(), 1);
    }

    #[test]
    fn pop_expired_is_strictly_before_and_bounded() {
        let index = ExpiryIndex::new(1);
        for seq in 0..10 {
            index.insert(Stamp { expiry: seq, seq }, 0xABC);
        }
        let seqs = |v: Vec<(Stamp, u64)>| v.iter().map(|e| e.0.seq).collect::<Vec<_>>();
        assert_eq!(
            seqs(index.pop_expired(0, Some(3), u64::MAX, 100)),
            [0, 1, 2]
        );
        assert_eq!(
            index.pop_expired(0, Some(9), u64::MAX, 2).len(),
            2,
            "bounded"
        );
        // Inserted after the flush began (seq 99 > limit 10), with an early expiry.
        index.insert(Stamp { expiry: 0, seq: 99 }, 0xABC);
        assert_eq!(
            seqs(index.pop_expired(0, Some(7), 10, 100)),
            [5, 6],
            "later inserts stay"
        );
        assert_eq!(index.pop_expired(0, None, u64::MAX, 100).len(), 4);
        assert_eq!(index.len(), 0);
    }
}
