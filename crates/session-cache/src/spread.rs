//! Atomic counters that many threads write, each on cache lines of its own, in memory with no
//! padding in it.
//!
//! `CachePadded` would space them out too, but its padding is uninitialized bytes: a value built
//! on the stack and moved to the heap copies whatever the stack held there into memory that
//! nothing wipes, a leftover copy of a master key included (`tests/zeroize.rs` looks for
//! secrets in every freed block). Here every byte is an initialized word.

use std::sync::atomic::AtomicU64;

/// Words from one counter to the next: 128 bytes, since a core may fetch cache lines in pairs.
const SPACING: usize = 16;

/// `n` counters, all starting at zero.
pub(crate) struct Spread(Box<[AtomicU64]>);

impl Spread {
    pub(crate) fn new(n: usize) -> Self {
        // A spacing's worth of words before the first counter and after the last, so that no
        // other allocation shares their lines either.
        Self((0..(n + 2) * SPACING).map(|_| AtomicU64::new(0)).collect())
    }

    /// Counter number `i` (less than `n`).
    #[inline]
    pub(crate) fn get(&self, i: usize) -> &AtomicU64 {
        &self.0[(i + 1) * SPACING]
    }

    /// Every counter, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &AtomicU64> {
        let n = self.0.len() / SPACING - 2;
        (0..n).map(|i| self.get(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn counters_are_apart_and_independent() {
        let s = Spread::new(3);
        assert_eq!(s.iter().count(), 3);
        for (i, c) in s.iter().enumerate() {
            c.store(i as u64 + 10, Ordering::Relaxed);
        }
        let values: Vec<u64> = s.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        assert_eq!(values, [10, 11, 12]);
        let addr = |i: usize| s.get(i) as *const AtomicU64 as usize;
        assert_eq!(addr(1) - addr(0), 128);
        assert!(addr(0) - s.0.as_ptr() as usize >= 128);
        assert!(s.0.as_ptr() as usize + s.0.len() * 8 - addr(2) >= 128);
    }
}
