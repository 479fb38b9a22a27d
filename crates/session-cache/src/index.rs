//! One map shard's expiry order: its entries' stamps (expiry, insertion order), sorted, each
//! with the low half of the key's hash (all a slot keeps of it).
//!
//! It answers the two questions a hash table cannot: which entry expires soonest (eviction),
//! and which have expired by a given time (flush), at a cost that follows the answer, not the
//! size of the cache. Each map shard keeps one under its own lock (`map.rs`), so the order
//! and the table always hold the same entries. An entry holds the stamp and the low half of
//! the key's hash, which find the slot: no pointer to the session, and no count on it.

use std::collections::btree_map::Entry as Listed;
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

/// An entry of a shard's ring: 16 bytes.
#[derive(Clone, Copy)]
struct Entry {
    /// The sequence number, with [`GONE`] set once removed.
    seq: u64,
    /// The low half of the key's hash.
    hash: u32,
    /// The expiry, less the ring's `base`.
    expiry: u32,
}

impl Entry {
    fn stamp(&self, base: u64) -> Stamp {
        Stamp {
            expiry: base + u64::from(self.expiry),
            seq: self.seq & !GONE,
        }
    }

    fn is_gone(&self) -> bool {
        self.seq & GONE != 0
    }
}

/// How many sorted rings an order keeps beside its B-tree.
const RINGS: usize = 2;

/// Which ring, and where in it.
type RingAt = (usize, usize);

/// Entries in stamp order, pushed at either end only, with expiries counted from `base`.
#[derive(Default)]
struct Ring {
    entries: VecDeque<Entry>,
    /// What the entries' expiries count from: 2^31 seconds before the expiry of the entry
    /// that found the ring empty, so that later entries fit on either side of it.
    base: u64,
    tombstones: usize,
}

impl Ring {
    /// The entry for `stamp`, if its expiry is within 2^32 seconds from `base`.
    fn entry(&self, stamp: Stamp, hash: u32) -> Option<Entry> {
        let expiry = u32::try_from(stamp.expiry.checked_sub(self.base)?).ok()?;
        Some(Entry {
            seq: stamp.seq,
            hash,
            expiry,
        })
    }

    /// Puts the entry at the back or the front if it belongs there; returns whether it did.
    fn push(&mut self, stamp: Stamp, hash: u32) -> bool {
        if self.entries.is_empty() {
            self.base = stamp.expiry.saturating_sub(1 << 31);
        }
        let Some(e) = self.entry(stamp, hash) else {
            return false;
        };
        let base = self.base;
        // The ends are never tombstones, so they bound every stamp in the ring.
        match (self.entries.front(), self.entries.back()) {
            (_, Some(last)) if last.stamp(base) < stamp => self.entries.push_back(e),
            (Some(first), _) if stamp < first.stamp(base) => self.entries.push_front(e),
            (None, None) => self.entries.push_back(e),
            _ => return false,
        }
        true
    }

    fn pop_front(&mut self) -> Option<(Stamp, u32)> {
        let e = self.entries.pop_front()?;
        self.trim();
        self.compact_if_sparse();
        Some((e.stamp(self.base), e.hash))
    }

    /// Moves entries from the front to `out` while `takes` their stamps, until `out` holds
    /// `max`.
    fn pop_front_while(
        &mut self,
        takes: impl Fn(&Stamp) -> bool,
        max: usize,
        out: &mut Vec<(Stamp, u32)>,
    ) {
        while out.len() < max {
            // The front is never a tombstone.
            match self.entries.front() {
                Some(e) if takes(&e.stamp(self.base)) => {
                    out.push((e.stamp(self.base), e.hash));
                    self.entries.pop_front();
                    self.trim_front();
                }
                _ => break,
            }
        }
        self.trim();
        self.compact_if_sparse();
    }

    /// Removes the entry with this stamp if its hash is `hash`: `None` if the ring never
    /// held the stamp, else whether the entry was there to remove.
    fn remove(&mut self, stamp: Stamp, hash: u32) -> Option<bool> {
        self.entry(stamp, hash)?;
        let base = self.base;
        let i = self
            .entries
            .binary_search_by(|e| e.stamp(base).cmp(&stamp))
            .ok()?;
        // A stamp is never reused, so a tombstone means it is gone.
        let e = &mut self.entries[i];
        if e.is_gone() || e.hash != hash {
            return Some(false);
        }
        e.seq |= GONE;
        self.tombstones += 1;
        self.trim();
        self.compact_if_sparse();
        Some(true)
    }

    /// Drops tombstones from both ends.
    fn trim(&mut self) {
        self.trim_front();
        while self.entries.back().is_some_and(Entry::is_gone) {
            self.entries.pop_back();
            self.tombstones -= 1;
        }
    }

    /// Drops tombstones from the front.
    fn trim_front(&mut self) {
        while self.entries.front().is_some_and(Entry::is_gone) {
            self.entries.pop_front();
            self.tombstones -= 1;
        }
    }

    /// Rebuilds the ring without its tombstones once they are half of it, and gives back
    /// memory a much larger ring once needed: amortized constant time per removal.
    fn compact_if_sparse(&mut self) {
        if self.tombstones >= 32 && self.tombstones * 2 >= self.entries.len() {
            self.entries.retain(|e| !e.is_gone());
            self.tombstones = 0;
        }
        if self.entries.capacity() >= 64 && self.entries.len() * 4 < self.entries.capacity() {
            self.entries.shrink_to(self.entries.len() * 2);
        }
    }

    fn len(&self) -> usize {
        self.entries.len() - self.tombstones
    }
}

/// One shard's entries in stamp order.
///
/// Sessions nearly always arrive in expiry order (one timeout for all, time = now), so most
/// entries go to the back of a sorted ring and leave from its front: no allocation and no
/// tree walk per entry. One that expires before all of a ring goes to its front. A ring's
/// expiries count from a base 2^31 seconds before the entry that found it empty and span 2^32
/// seconds (68 years each way); an entry that fits neither end of the first ring, by its
/// stamp or that span, tries the second, so a second run of sessions (another timeout, or
/// sessions that never expire beside ones that do) keeps to a ring too. The rest go to a
/// B-tree beside them; the soonest entry is the least of the fronts. A removal from the
/// middle of a ring leaves a tombstone (found by binary search); a ring never starts or ends
/// with one, and is compacted once tombstones make up half of it.
#[derive(Default)]
pub(crate) struct ExpiryOrder {
    rings: [Ring; RINGS],
    stragglers: BTreeMap<Stamp, u32>,
    /// The largest sequence number inserted.
    last_seq: u64,
}

impl ExpiryOrder {
    pub(crate) fn insert(&mut self, stamp: Stamp, hash: u32) {
        debug_assert_eq!(stamp.seq & GONE, 0, "sequence numbers stay below 2^63");
        self.last_seq = self.last_seq.max(stamp.seq);
        if !self.rings.iter_mut().any(|ring| ring.push(stamp, hash)) {
            self.stragglers.insert(stamp, hash);
        }
    }

    /// Whether two entries can share a slot's meta: sequence numbers 2^32 apart, so one at
    /// least 2^32.
    pub(crate) fn metas_may_repeat(&self) -> bool {
        self.last_seq >> 32 != 0
    }

    pub(crate) fn first(&self) -> Option<Stamp> {
        self.first_entry().map(|(stamp, _)| stamp)
    }

    /// The soonest entry's stamp and hash.
    pub(crate) fn first_entry(&self) -> Option<(Stamp, u32)> {
        self.soonest().map(|(stamp, hash, _)| (stamp, hash))
    }

    /// The soonest entry's stamp and hash, and where it is: a ring's index, or [`RINGS`] for
    /// the B-tree.
    #[inline]
    fn soonest(&self) -> Option<(Stamp, u32, usize)> {
        self.soonest_besides(None)
    }

    /// [`soonest`](Self::soonest) among the sources other than `skip`.
    #[inline]
    fn soonest_besides(&self, skip: Option<usize>) -> Option<(Stamp, u32, usize)> {
        let mut soonest = self
            .stragglers
            .first_key_value()
            .filter(|_| skip != Some(RINGS))
            .map(|(stamp, hash)| (*stamp, *hash, RINGS));
        for (at, ring) in self.rings.iter().enumerate() {
            if let Some(e) = ring.entries.front().filter(|_| skip != Some(at)) {
                let stamp = e.stamp(ring.base);
                if soonest.is_none_or(|(s, _, _)| stamp < s) {
                    soonest = Some((stamp, e.hash, at));
                }
            }
        }
        soonest
    }

    /// Takes the front entry of a ring, or the B-tree's first for [`RINGS`].
    fn pop_at(&mut self, at: usize) -> Option<(Stamp, u32)> {
        match self.rings.get_mut(at) {
            Some(ring) => ring.pop_front(),
            None => self.stragglers.pop_first(),
        }
    }

    pub(crate) fn pop_first(&mut self) -> Option<(Stamp, u32)> {
        let (_, _, at) = self.soonest()?;
        self.pop_at(at)
    }

    /// Removes the entry of a linked slot, known by its expiry and its slot's meta (the low
    /// halves of its hash and sequence number): the newest entry that has them. Returns
    /// whether there was one.
    pub(crate) fn remove_linked(&mut self, expiry: u64, meta: u64) -> bool {
        let (hash, seq_low) = (meta as u32, meta >> 32);
        // The newest sequence number with those low bits, then each 2^32 before it.
        let Some(mut seq) = self
            .last_seq
            .checked_sub(self.last_seq.wrapping_sub(seq_low) & u64::from(u32::MAX))
        else {
            return false;
        };
        loop {
            if self.remove(Stamp { expiry, seq }, hash) {
                return true;
            }
            match seq.checked_sub(1 << 32) {
                Some(earlier) => seq = earlier,
                None => return false,
            }
        }
    }

    /// Removes the entry with this stamp, if its hash is `hash`; returns whether it was there.
    pub(crate) fn remove(&mut self, stamp: Stamp, hash: u32) -> bool {
        if let Some(removed) = self.rings.iter_mut().find_map(|r| r.remove(stamp, hash)) {
            return removed;
        }
        match self.stragglers.entry(stamp) {
            Listed::Occupied(listed) if *listed.get() == hash => {
                listed.remove();
                true
            }
            _ => false,
        }
    }

    /// Takes up to `max` entries with a stamp before `end` and a sequence number below
    /// `seq_limit`, soonest first, skipping (and keeping) the others.
    pub(crate) fn pop_before(
        &mut self,
        end: Bound<Stamp>,
        seq_limit: u64,
        max: usize,
    ) -> Vec<(Stamp, u32)> {
        let before_end = |s: &Stamp| (Bound::Unbounded, end).contains(s);
        let mut popped = Vec::with_capacity(max.min(self.len()));
        // The common case: the soonest entries all qualify, so pop from the fronts, from one
        // source at a time for as long as its front comes before every other source's.
        while popped.len() < max {
            let Some((soonest, _, at)) = self.soonest() else {
                break;
            };
            if !before_end(&soonest) || soonest.seq >= seq_limit {
                break;
            }
            let elsewhere = self.soonest_besides(Some(at)).map(|(stamp, _, _)| stamp);
            let takes = |s: &Stamp| {
                before_end(s) && s.seq < seq_limit && elsewhere.is_none_or(|next| *s < next)
            };
            match self.rings.get_mut(at) {
                Some(ring) => ring.pop_front_while(takes, max, &mut popped),
                None => popped.extend(self.stragglers.pop_first()),
            }
        }
        if popped.len() < max && self.first().is_some_and(|s| before_end(&s)) {
            // Sessions added since the flush began sit among the expired ones: take what
            // qualifies from each ring and the tree, in stamp order, past them.
            let wanted = max - popped.len();
            let mut found: Vec<(Stamp, u32, Option<RingAt>)> = Vec::new();
            for (r, ring) in self.rings.iter().enumerate() {
                let qualifying = ring
                    .entries
                    .iter()
                    .enumerate()
                    .map(|(i, e)| (i, e, e.stamp(ring.base)))
                    .take_while(|(_, _, s)| before_end(s))
                    .filter(|(_, e, s)| !e.is_gone() && s.seq < seq_limit)
                    .take(wanted)
                    .map(|(i, e, s)| (s, e.hash, Some((r, i))));
                found.extend(qualifying);
            }
            let tree = self
                .stragglers
                .range((Bound::Unbounded, end))
                .filter(|(s, _)| s.seq < seq_limit)
                .take(wanted)
                .map(|(s, h)| (*s, *h, None));
            found.extend(tree);
            found.sort_unstable_by_key(|(s, _, _)| *s);
            found.truncate(wanted);
            for (stamp, hash, at) in found {
                match at {
                    Some((r, i)) => {
                        self.rings[r].entries[i].seq |= GONE;
                        self.rings[r].tombstones += 1;
                    }
                    None => {
                        self.stragglers.remove(&stamp);
                    }
                }
                popped.push((stamp, hash));
            }
        }
        for ring in &mut self.rings {
            ring.trim();
            ring.compact_if_sparse();
        }
        popped
    }

    pub(crate) fn len(&self) -> usize {
        self.rings.iter().map(Ring::len).sum::<usize>() + self.stragglers.len()
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
        let seqs = |v: Vec<(Stamp, u32)>| v.iter().map(|e| e.0.seq).collect::<Vec<_>>();
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
    fn sessions_that_never_expire_and_ones_that_do_each_keep_to_a_ring() {
        let (now, never) = (1_800_000_000, 1_800_000_000 + (1 << 40));
        // Expiries that rise (one timeout, time = now) and that fall (each added with less
        // time left), beside sessions that never expire.
        for falling in [false, true] {
            let mut order = ExpiryOrder::default();
            for seq in 0..100 {
                order.insert(Stamp { expiry: never, seq }, 3);
            }
            for seq in 100..200 {
                let expiry = if falling { now + 300 - seq } else { now + seq };
                order.insert(Stamp { expiry, seq }, 3);
            }
            assert!(
                order.stragglers.is_empty(),
                "B-tree used (falling {falling})"
            );
            let before = Bound::Excluded(Stamp {
                expiry: now + 150,
                seq: 0,
            });
            let flushed = order.pop_before(before, u64::MAX, 1000);
            assert_eq!(flushed.len(), if falling { 49 } else { 50 });
            assert!(
                flushed.windows(2).all(|w| w[0].0 < w[1].0),
                "in stamp order"
            );
            assert!(order.stragglers.is_empty());
            assert_eq!(order.len(), 200 - flushed.len());
        }
    }

    #[test]
    fn removals_from_the_middle_are_compacted_away() {
        let mut entries = ExpiryOrder::default();
        for seq in 0..1000 {
            entries.insert(Stamp { expiry: 5, seq }, seq as u32);
        }
        // Three in four, never the first or the last: tombstones in the middle only.
        for seq in (1..999).filter(|s| s % 4 != 0) {
            assert!(entries.remove(Stamp { expiry: 5, seq }, seq as u32));
        }
        let live = entries.len();
        assert_eq!(live, 251);
        assert!(
            entries.rings[0].entries.len() <= 2 * live,
            "compacted: {} ring entries for {live} live",
            entries.rings[0].entries.len()
        );
        let order: Vec<u64> =
            std::iter::from_fn(|| entries.pop_first().map(|(s, _)| s.seq)).collect();
        let want: Vec<u64> = (0..1000).filter(|s| s % 4 == 0 || *s == 999).collect();
        assert_eq!(order, want);
        assert!(
            entries.rings[0].entries.capacity() < 64,
            "memory given back"
        );
    }

    #[derive(Debug, Clone)]
    enum Op {
        /// Insert with this expiry offset, the sequence number one past the last or, with
        /// `jump`, 2^32 past it (so that low halves repeat, with the same hash).
        Insert {
            offset: i64,
            far: bool,
            jump: bool,
        },
        /// Remove the n-th stamp ever inserted (which may be gone already), as a slot would.
        Remove(usize),
        PopFirst,
        /// Pop before this expiry, below the n-th inserted sequence number, at most this many.
        PopBefore(Option<u64>, usize, usize),
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            // Mostly later, sometimes earlier than all, sometimes beyond 2^32 seconds: the
            // ring's back, its front and the B-tree all get entries.
            6 => (-40i64..40, proptest::bool::weighted(0.05), proptest::bool::weighted(0.2))
                .prop_map(|(offset, far, jump)| Op::Insert { offset, far, jump }),
            3 => any::<usize>().prop_map(Op::Remove),
            1 => Just(Op::PopFirst),
            1 => (proptest::option::of(0u64..40), any::<usize>(), 0usize..8)
                .prop_map(|(at, lim, max)| Op::PopBefore(at, lim, max)),
        ]
    }

    /// The hash an entry with this sequence number gets: the same for numbers 2^32 apart.
    fn hash_of(seq: u64) -> u32 {
        (seq as u32).wrapping_mul(0x9E37_79B9) | 2
    }

    proptest::proptest! {
        /// A shard's ring-plus-tree gives exactly what one sorted map would, whatever the
        /// order of inserts, removals and pops; a removal by a slot's meta takes the newest
        /// entry that matches it.
        #[test]
        fn entries_behave_as_one_sorted_map(
            // Where expiries start: at 0 (a ring's base stays 0), past 2^31 (its base sits
            // below its first entry) or near the top of u64.
            origin in proptest::sample::select(vec![0u64, 1 << 40, u64::MAX - (1 << 34)]),
            ops in proptest::collection::vec(op(), 1..400),
        ) {
            let mut entries = ExpiryOrder::default();
            let mut model: BTreeMap<Stamp, u32> = BTreeMap::new();
            let mut inserted: Vec<Stamp> = Vec::new();
            let mut clock = 0u64;
            for op in ops {
                match op {
                    Op::Insert { offset, far, jump } => {
                        // Expiries creep up with time, some jumping back.
                        clock += 1;
                        let mut expiry = (origin + 100 + clock).saturating_add_signed(offset);
                        if far {
                            expiry += 1 << 33;
                        }
                        let seq = inserted.last().map_or(0, |s| s.seq + if jump { 1 << 32 } else { 1 });
                        let stamp = Stamp { expiry, seq };
                        entries.insert(stamp, hash_of(seq));
                        model.insert(stamp, hash_of(seq));
                        inserted.push(stamp);
                    }
                    Op::Remove(n) if !inserted.is_empty() => {
                        let stamp = inserted[n % inserted.len()];
                        let hash = hash_of(stamp.seq);
                        let newest = model
                            .iter()
                            .filter(|(s, h)| {
                                s.expiry == stamp.expiry && s.seq as u32 == stamp.seq as u32 && **h == hash
                            })
                            .map(|(s, _)| *s)
                            .next_back();
                        if let Some(s) = newest {
                            model.remove(&s);
                        }
                        let meta = (stamp.seq << 32) | u64::from(hash);
                        proptest::prop_assert_eq!(entries.remove_linked(stamp.expiry, meta), newest.is_some());
                    }
                    Op::Remove(_) => {}
                    Op::PopFirst => {
                        proptest::prop_assert_eq!(entries.pop_first(), model.pop_first());
                    }
                    Op::PopBefore(at, lim, max) => {
                        let seq_limit = inserted.get(lim % (inserted.len() + 1)).map_or(u64::MAX, |s| s.seq);
                        let end = at.map_or(Bound::Unbounded, |at| {
                            Bound::Excluded(Stamp { expiry: origin + 60 + clock + at, seq: 0 })
                        });
                        let want: Vec<(Stamp, u32)> = model
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
