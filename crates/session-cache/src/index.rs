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

use std::collections::BTreeMap;
use std::ops::Bound;

use crossbeam_utils::CachePadded;
use session_core::WeakSession;

use crate::sync::{lock, AtomicU64, Mutex, Ordering};

/// Where an entry sits in expiry order: expiry first, then insertion order, so that among
/// sessions that expire in the same second the oldest goes first, as in OpenSSL's list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Stamp {
    pub(crate) expiry: u64,
    pub(crate) seq: u64,
}

struct Shard {
    entries: Mutex<BTreeMap<Stamp, WeakSession>>,
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

    fn publish_first(&self, entries: &BTreeMap<Stamp, WeakSession>) {
        let (e, s) = entries
            .first_key_value()
            .map_or((u64::MAX, u64::MAX), |(st, _)| (st.expiry, st.seq));
        self.first_expiry.store(e, Ordering::Release);
        self.first_seq.store(s, Ordering::Release);
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

    pub(crate) fn insert(&self, stamp: Stamp, session: WeakSession) {
        let shard = self.shard(stamp.seq);
        let mut entries = lock(&shard.entries);
        entries.insert(stamp, session);
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

    /// The entry that expires soonest, as far as the shards' published hints tell; exact when
    /// no other thread is changing the index.
    pub(crate) fn soonest(&self) -> Option<(Stamp, WeakSession)> {
        let best = self
            .shards
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.hint().map(|h| (h, i)))
            .min()?;
        let entries = lock(&self.shards[best.1].entries);
        entries
            .first_key_value()
            .map(|(stamp, weak)| (*stamp, weak.clone()))
    }

    /// Up to `max` entries of shard `shard` that expired before `at` (expiry < at; every
    /// entry when `at` is `None`) and were inserted before sequence number `seq_limit`,
    /// soonest first.
    pub(crate) fn expired_in(
        &self,
        shard: usize,
        at: Option<u64>,
        seq_limit: u64,
        max: usize,
    ) -> Vec<(Stamp, WeakSession)> {
        let end = at.map_or(Bound::Unbounded, |at| {
            Bound::Excluded(Stamp { expiry: at, seq: 0 })
        });
        let entries = lock(&self.shards[shard].entries);
        entries
            .range((Bound::Unbounded, end))
            .filter(|(stamp, _)| stamp.seq < seq_limit)
            .take(max)
            .map(|(stamp, weak)| (*stamp, weak.clone()))
            .collect()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(&s.entries).len()).sum()
    }
}

#[cfg(all(test, not(sesscache_loom)))]
mod tests {
    use super::*;
    use session_core::{ProtocolVersion, SessionBuilder};

    #[test]
    fn soonest_breaks_ties_by_insertion_order_across_shards() {
        let index = ExpiryIndex::new(4);
        let s = SessionBuilder::new(ProtocolVersion::TLS1_2, 0).build();
        for (expiry, seq) in [(10, 5), (10, 2), (11, 1), (10, 3)] {
            index.insert(Stamp { expiry, seq }, s.downgrade());
        }
        assert_eq!(index.soonest().unwrap().0, Stamp { expiry: 10, seq: 2 });
        assert!(index.remove(Stamp { expiry: 10, seq: 2 }));
        assert!(!index.remove(Stamp { expiry: 10, seq: 2 }));
        assert_eq!(index.soonest().unwrap().0, Stamp { expiry: 10, seq: 3 });
        assert_eq!(index.len(), 3);
    }

    #[test]
    fn expired_in_is_strictly_before_and_bounded() {
        let index = ExpiryIndex::new(1);
        let s = SessionBuilder::new(ProtocolVersion::TLS1_2, 0).build();
        for seq in 0..10 {
            index.insert(Stamp { expiry: seq, seq }, s.downgrade());
        }
        let got: Vec<_> = index
            .expired_in(0, Some(5), u64::MAX, 100)
            .iter()
            .map(|e| e.0.seq)
            .collect();
        assert_eq!(got, [0, 1, 2, 3, 4]);
        assert_eq!(index.expired_in(0, Some(5), u64::MAX, 2).len(), 2);
        assert_eq!(
            index.expired_in(0, Some(5), 3, 100).len(),
            3,
            "later inserts are left alone"
        );
        assert_eq!(index.expired_in(0, None, u64::MAX, 100).len(), 10);
    }
}
