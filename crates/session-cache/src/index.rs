//! One map shard's expiry order: its entries' stamps (expiry, insertion order), sorted, each
//! with the key's hash.
//!
//! It answers the two questions a hash table cannot: which entry expires soonest (eviction),
//! and which have expired by a given time (flush), at a cost that follows the answer, not the
//! size of the cache. Each map shard keeps one under its own lock (`map.rs`), so the order
//! and the table always hold the same entries. An entry holds the stamp and the key's hash,
//! which finds the slot: no pointer to the session, and no count on it.

use std::collections::{BTreeMap, VecDeque};
use std::ops::{Bound, RangeBounds};

/// Where an entry sits in expiry order: expiry first, then insertion order, so that among
/// sessions that expire in the same second the oldest goes first, as in OpenSSL's list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Stamp {
    pub(crate) expiry: u64,
    pub(crate) seq: u64,
}

/// Marks a ring entry whose session was removed: the top bit of its sequence number, which
/// real sequence numbers never reach. The entry keeps its place, so the ring stays sorted.
const GONE: u64 = 1 << 63;

/// An entry of a shard's ring.
#[derive(Clone, Copy)]
struct Entry {
    expiry: u64,
    /// The sequence number, with [`GONE`] set once removed.
    seq: u64,
    hash: u64,
}

impl Entry {
    fn stamp(&self) -> Stamp {
        Stamp {
            expiry: self.expiry,
            seq: self.seq & !GONE,
        }
    }

    fn is_gone(&self) -> bool {
        self.seq & GONE != 0
    }
}

/// One shard's entries in stamp order.
///
/// Sessions nearly always arrive in expiry order (one timeout for all, time = now), so most
/// entries go to the back of a sorted ring and leave from its front: no allocation and no
/// tree walk per entry. One that expires before all of the ring goes to its front. An entry
/// that would land in the middle goes to a B-tree beside the ring instead; the soonest entry is the lesser of the two fronts. A removal from the middle
/// of the ring leaves a tombstone (found by binary search); the ring never starts or ends
/// with one, and is compacted once tombstones make up half of it.
#[derive(Default)]
pub(crate) struct ExpiryOrder {
    ring: VecDeque<Entry>,
    tombstones: usize,
    stragglers: BTreeMap<Stamp, u64>,
}

impl ExpiryOrder {
    pub(crate) fn insert(&mut self, stamp: Stamp, hash: u64) {
        debug_assert_eq!(stamp.seq & GONE, 0, "sequence numbers stay below 2^63");
        let entry = Entry {
            expiry: stamp.expiry,
            seq: stamp.seq,
            hash,
        };
        // The ring's ends are never tombstones, so they bound every stamp in it.
        match (self.ring.front(), self.ring.back()) {
            (_, Some(last)) if last.stamp() < stamp => self.ring.push_back(entry),
            (Some(first), _) if stamp < first.stamp() => self.ring.push_front(entry),
            (None, None) => self.ring.push_back(entry),
            _ => {
                self.stragglers.insert(stamp, hash);
            }
        }
    }

    pub(crate) fn first(&self) -> Option<Stamp> {
        self.first_entry().map(|(stamp, _)| stamp)
    }

    /// The soonest entry's stamp and hash.
    pub(crate) fn first_entry(&self) -> Option<(Stamp, u64)> {
        let ring = self.ring.front().map(|e| (e.stamp(), e.hash));
        let tree = self.stragglers.first_key_value().map(|(s, h)| (*s, *h));
        match (ring, tree) {
            (Some(r), Some(t)) => Some(if r.0 < t.0 { r } else { t }),
            (r, t) => r.or(t),
        }
    }

    pub(crate) fn pop_first(&mut self) -> Option<(Stamp, u64)> {
        let from_ring = match (self.ring.front(), self.stragglers.first_key_value()) {
            (Some(r), Some((t, _))) => r.stamp() < *t,
            (r, _) => r.is_some(),
        };
        if from_ring {
            let e = self.ring.pop_front()?;
            self.trim();
            self.compact_if_sparse();
            Some((e.stamp(), e.hash))
        } else {
            self.stragglers.pop_first()
        }
    }

    /// Removes an entry; returns whether it was there.
    pub(crate) fn remove(&mut self, stamp: Stamp) -> bool {
        match self.ring.binary_search_by(|e| e.stamp().cmp(&stamp)) {
            // A stamp is never reused, so a tombstone means it is gone from both.
            Ok(i) => {
                let e = &mut self.ring[i];
                if e.is_gone() {
                    return false;
                }
                e.seq |= GONE;
                self.tombstones += 1;
                self.trim();
                self.compact_if_sparse();
                true
            }
            Err(_) => self.stragglers.remove(&stamp).is_some(),
        }
    }

    /// Drops tombstones from both ends of the ring.
    fn trim(&mut self) {
        while self.ring.front().is_some_and(Entry::is_gone) {
            self.ring.pop_front();
            self.tombstones -= 1;
        }
        while self.ring.back().is_some_and(Entry::is_gone) {
            self.ring.pop_back();
            self.tombstones -= 1;
        }
    }

    /// Rebuilds the ring without its tombstones once they are half of it, and gives back
    /// memory a much larger ring once needed: amortized constant time per removal.
    fn compact_if_sparse(&mut self) {
        if self.tombstones >= 32 && self.tombstones * 2 >= self.ring.len() {
            self.ring.retain(|e| !e.is_gone());
            self.tombstones = 0;
        }
        if self.ring.capacity() >= 64 && self.ring.len() * 4 < self.ring.capacity() {
            self.ring.shrink_to(self.ring.len() * 2);
        }
    }

    /// Takes up to `max` entries with a stamp before `end` and a sequence number below
    /// `seq_limit`, soonest first, skipping (and keeping) the others.
    pub(crate) fn pop_before(
        &mut self,
        end: Bound<Stamp>,
        seq_limit: u64,
        max: usize,
    ) -> Vec<(Stamp, u64)> {
        let before_end = |s: &Stamp| (Bound::Unbounded, end).contains(s);
        let mut popped = Vec::with_capacity(max.min(self.len()));
        // The common case: the soonest entries all qualify, so pop from the front.
        while popped.len() < max {
            match self.first() {
                Some(s) if before_end(&s) && s.seq < seq_limit => popped.extend(self.pop_first()),
                _ => break,
            }
        }
        if popped.len() == max || !self.first().is_some_and(|s| before_end(&s)) {
            self.compact_if_sparse();
            return popped;
        }
        // Sessions added since the flush began sit among the expired ones: walk both in
        // stamp order past them.
        let mut ring_at = 0;
        let mut tree = self
            .stragglers
            .range((Bound::Unbounded, end))
            .filter(|(s, _)| s.seq < seq_limit)
            .map(|(s, h)| (*s, *h))
            .peekable();
        let mut from_tree = Vec::new();
        while popped.len() < max {
            while self
                .ring
                .get(ring_at)
                .is_some_and(|e| before_end(&e.stamp()) && (e.is_gone() || e.seq >= seq_limit))
            {
                ring_at += 1;
            }
            let ring_next = self
                .ring
                .get(ring_at)
                .filter(|e| before_end(&e.stamp()))
                .copied();
            match (ring_next, tree.peek()) {
                (Some(r), Some((t, _))) if *t < r.stamp() => {
                    let (s, h) = tree.next().expect("peeked");
                    from_tree.push(s);
                    popped.push((s, h));
                }
                (Some(r), _) => {
                    popped.push((r.stamp(), r.hash));
                    self.ring[ring_at].seq |= GONE;
                    self.tombstones += 1;
                    ring_at += 1;
                }
                (None, Some(_)) => {
                    let (s, h) = tree.next().expect("peeked");
                    from_tree.push(s);
                    popped.push((s, h));
                }
                (None, None) => break,
            }
        }
        drop(tree);
        for stamp in &from_tree {
            self.stragglers.remove(stamp);
        }
        popped.sort_unstable_by_key(|(s, _)| *s);
        self.trim();
        self.compact_if_sparse();
        popped
    }

    pub(crate) fn len(&self) -> usize {
        self.ring.len() - self.tombstones + self.stragglers.len()
    }
}

#[cfg(all(test, not(sesscache_loom)))]
mod tests {
    use super::*;

    #[test]
    fn pop_before_is_strictly_before_bounded_and_skips_later_inserts() {
        let mut order = ExpiryOrder::default();
        for seq in 0..10 {
            order.insert(Stamp { expiry: seq, seq }, 0xABC);
        }
        let before = |at| Bound::Excluded(Stamp { expiry: at, seq: 0 });
        let seqs = |v: Vec<(Stamp, u64)>| v.iter().map(|e| e.0.seq).collect::<Vec<_>>();
        assert_eq!(seqs(order.pop_before(before(3), u64::MAX, 100)), [0, 1, 2]);
        assert_eq!(order.pop_before(before(9), u64::MAX, 2).len(), 2, "bounded");
        // Inserted after the flush began (seq 99 > limit 10), with an early expiry.
        order.insert(Stamp { expiry: 0, seq: 99 }, 0xABC);
        assert_eq!(
            seqs(order.pop_before(before(7), 10, 100)),
            [5, 6],
            "later inserts stay"
        );
        assert_eq!(order.pop_before(Bound::Unbounded, u64::MAX, 100).len(), 4);
        assert_eq!(order.len(), 0);
    }

    #[test]
    fn removals_from_the_middle_are_compacted_away() {
        let mut entries = ExpiryOrder::default();
        for seq in 0..1000 {
            entries.insert(Stamp { expiry: 5, seq }, seq);
        }
        // Three in four, never the first or the last: tombstones in the middle only.
        for seq in (1..999).filter(|s| s % 4 != 0) {
            assert!(entries.remove(Stamp { expiry: 5, seq }));
        }
        let live = entries.len();
        assert_eq!(live, 251);
        assert!(
            entries.ring.len() <= 2 * live,
            "compacted: {} ring entries for {live} live",
            entries.ring.len()
        );
        let order: Vec<u64> =
            std::iter::from_fn(|| entries.pop_first().map(|(s, _)| s.seq)).collect();
        let want: Vec<u64> = (0..1000).filter(|s| s % 4 == 0 || *s == 999).collect();
        assert_eq!(order, want);
        assert!(entries.ring.capacity() < 64, "memory given back");
    }

    #[derive(Debug, Clone)]
    enum Op {
        /// Insert with this expiry offset (sequence numbers come in order, as from the counter).
        Insert(i64),
        /// Remove the n-th stamp ever inserted (which may be gone already).
        Remove(usize),
        PopFirst,
        /// Pop before this expiry, below this many inserts so far, at most this many.
        PopBefore(Option<u64>, usize, usize),
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            // Mostly later, sometimes earlier than all: the ring's back, its front and the
            // B-tree all get entries.
            6 => (-40i64..40).prop_map(Op::Insert),
            3 => any::<usize>().prop_map(Op::Remove),
            1 => Just(Op::PopFirst),
            1 => (proptest::option::of(0u64..40), any::<usize>(), 0usize..8)
                .prop_map(|(at, lim, max)| Op::PopBefore(at, lim, max)),
        ]
    }

    proptest::proptest! {
        /// A shard's ring-plus-tree gives exactly what one sorted map would, whatever the
        /// order of inserts, removals and pops.
        #[test]
        fn entries_behave_as_one_sorted_map(ops in proptest::collection::vec(op(), 1..400)) {
            let mut entries = ExpiryOrder::default();
            let mut model = BTreeMap::new();
            let mut inserted = Vec::new();
            let mut clock = 0u64;
            for op in ops {
                match op {
                    Op::Insert(offset) => {
                        // Expiries creep up with time, some jumping back.
                        clock += 1;
                        let expiry = (100 + clock).saturating_add_signed(offset);
                        let stamp = Stamp { expiry, seq: inserted.len() as u64 };
                        let hash = stamp.seq.wrapping_mul(0x9E37_79B9_7F4A_7C15);
                        entries.insert(stamp, hash);
                        model.insert(stamp, hash);
                        inserted.push(stamp);
                    }
                    Op::Remove(n) if !inserted.is_empty() => {
                        let stamp = inserted[n % inserted.len()];
                        proptest::prop_assert_eq!(entries.remove(stamp), model.remove(&stamp).is_some());
                    }
                    Op::Remove(_) => {}
                    Op::PopFirst => {
                        proptest::prop_assert_eq!(entries.pop_first(), model.pop_first());
                    }
                    Op::PopBefore(at, lim, max) => {
                        let seq_limit = (lim % (inserted.len() + 1)) as u64;
                        let end = at.map_or(Bound::Unbounded, |at| {
                            Bound::Excluded(Stamp { expiry: 60 + clock + at, seq: 0 })
                        });
                        let want: Vec<(Stamp, u64)> = model
                            .range((Bound::Unbounded, end))
                            .filter(|(s, _)| s.seq < seq_limit)
                            .take(max)
                            .map(|(s, h)| (*s, *h))
                            .collect();
                        for (s, _) in &want {
                            model.remove(s);
                        }
                        proptest::prop_assert_eq!(entries.pop_before(end, seq_limit, max), want);
                    }
                }
                proptest::prop_assert_eq!(entries.len(), model.len());
                proptest::prop_assert_eq!(entries.first(), model.first_key_value().map(|(s, _)| *s));
            }
        }
    }
}
