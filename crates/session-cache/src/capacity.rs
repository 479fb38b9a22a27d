//! The size bound: slots are reserved before an entry is linked, so the cache never holds more
//! than its limit, however many threads add at once.

use crate::sync::{AtomicU64, AtomicUsize, Ordering};

/// The low bits of `state`: how many slots are taken.
const USED: u64 = (1 << 48) - 1;
/// One step of the limit's generation, in the high bits of `state`.
const GENERATION: u64 = 1 << 48;

/// Counts the entries in the cache (plus those being linked right now) against the limit.
///
/// The count shares one word with a generation number that every change of the limit bumps,
/// so that a reservation made against a limit read before the change fails its
/// compare-and-swap and reads the limit again: once [`set_limit`](Self::set_limit) has
/// returned, no slot is taken against the old limit.
#[derive(Debug)]
pub(crate) struct Capacity {
    /// Taken slots (low 48 bits) and the limit's generation (high 16 bits, wrapping).
    state: AtomicU64,
    /// 0 means unlimited.
    limit: AtomicUsize,
}

impl Capacity {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            state: AtomicU64::new(0),
            limit: AtomicUsize::new(limit),
        }
    }

    /// Takes a slot if one is free. A caller that fails evicts one entry and takes over its
    /// slot (the count does not move).
    pub(crate) fn try_reserve(&self) -> bool {
        let mut state = self.state.load(Ordering::Acquire);
        loop {
            // Read after `state`: a state from after a limit change comes with that limit
            // (the change bumps the generation after storing the limit).
            let limit = self.limit.load(Ordering::Acquire);
            let used = state & USED;
            if limit != 0 && used >= limit as u64 {
                return false;
            }
            match self.state.compare_exchange_weak(
                state,
                state + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(now) => state = now,
            }
        }
    }

    /// Gives a slot back: its entry was unlinked, or was never linked.
    pub(crate) fn release(&self) {
        self.release_many(1);
    }

    /// Gives back the slots of `n` unlinked entries.
    pub(crate) fn release_many(&self, n: usize) {
        if n > 0 {
            self.state.fetch_sub(n as u64, Ordering::AcqRel);
        }
    }

    pub(crate) fn used(&self) -> usize {
        (self.state.load(Ordering::Acquire) & USED) as usize
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit.load(Ordering::Acquire)
    }

    /// Sets the limit and returns the old one. Every reservation that read the old limit
    /// and has not completed by now fails and reads the new one.
    pub(crate) fn set_limit(&self, limit: usize) -> usize {
        let old = self.limit.swap(limit, Ordering::AcqRel);
        // The generation wraps in the high bits; the count below never carries into them.
        self.state.fetch_add(GENERATION, Ordering::AcqRel);
        old
    }

    /// Whether more entries are linked than the limit allows (after the limit was lowered).
    pub(crate) fn over_limit(&self) -> bool {
        let limit = self.limit();
        limit != 0 && self.used() > limit
    }
}

#[cfg(all(test, not(sesscache_loom)))]
mod tests {
    use super::*;

    #[test]
    fn reserve_up_to_the_limit_then_refuse() {
        let c = Capacity::new(2);
        assert!(c.try_reserve());
        assert!(c.try_reserve());
        assert!(!c.try_reserve());
        c.release();
        assert!(c.try_reserve());
        assert_eq!(c.set_limit(1), 2);
        assert!(c.over_limit());
    }

    #[test]
    fn zero_is_unlimited() {
        let c = Capacity::new(0);
        for _ in 0..10_000 {
            assert!(c.try_reserve());
        }
        assert!(!c.over_limit());
    }
}

/// Model-checks the size bound's protocol on `Capacity` itself: run with
/// `RUSTFLAGS="--cfg sesscache_loom --cfg crossbeam_loom" cargo test -p session-cache --lib
/// model`.
#[cfg(all(test, sesscache_loom))]
mod model {
    use super::*;
    use crate::sync::{lock, Mutex};
    use ::loom::sync::Arc;

    /// Two threads each add one entry to a cache of size 1 that already holds one, using the
    /// cache's protocol: reserve a slot, or evict the soonest entry and take over its slot
    /// (linking in its place without touching the count). In every interleaving the number
    /// of linked entries never exceeds the limit, both adds finish, and the count of slots
    /// equals the entries linked.
    #[test]
    fn adders_and_evictions_never_exceed_the_limit() {
        ::loom::model(|| {
            let cap = Arc::new(Capacity::new(1));
            let linked = Arc::new(Mutex::new(vec![0u32]));
            assert!(cap.try_reserve());
            let link = |linked: &Mutex<Vec<u32>>, me: u32| {
                let mut l = lock(linked);
                l.push(me);
                assert!(l.len() <= 1, "over the limit: {l:?}");
            };
            let threads: Vec<_> = (1..=2u32)
                .map(|me| {
                    let cap = cap.clone();
                    let linked = linked.clone();
                    ::loom::thread::spawn(move || loop {
                        if cap.try_reserve() {
                            return link(&linked, me);
                        }
                        let evicted = lock(&linked).pop();
                        if evicted.is_some() {
                            return link(&linked, me);
                        }
                        ::loom::thread::yield_now();
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
            let l = lock(&linked);
            assert_eq!(l.len(), 1);
            assert_eq!(cap.used(), 1);
        });
    }

    /// A limit lowered while another thread reserves a slot against the limit it read
    /// before: once `set_limit` and the eviction loop after it (as `SessionCache::set_size`
    /// runs them) have returned, the slots taken never exceed the new limit.
    #[test]
    fn no_slot_is_taken_against_a_limit_set_before() {
        ::loom::model(|| {
            let cap = Arc::new(Capacity::new(0));
            let linked = Arc::new(Mutex::new(1usize));
            assert!(cap.try_reserve());
            let adder = {
                let (cap, linked) = (cap.clone(), linked.clone());
                ::loom::thread::spawn(move || {
                    if cap.try_reserve() {
                        *lock(&linked) += 1;
                    }
                })
            };
            cap.set_limit(1);
            while cap.over_limit() {
                let mut l = lock(&linked);
                if *l > 0 {
                    *l -= 1;
                    drop(l);
                    cap.release();
                } else {
                    drop(l);
                    ::loom::thread::yield_now();
                }
            }
            // `set_size` has returned: from here on the bound holds.
            assert!(cap.used() <= 1, "{} slots after set_size(1)", cap.used());
            adder.join().unwrap();
            assert!(cap.used() <= 1, "{} slots after set_size(1)", cap.used());
            assert_eq!(cap.used(), *lock(&linked));
        });
    }
}
