//! Session ids and secrets for simulated handshakes: unique and unpredictable to an observer
//! (a keyed hash of a counter), but not a cryptographic random source: nothing here protects
//! real traffic.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use std::collections::hash_map::RandomState;

#[derive(Debug)]
pub(crate) struct IdSource {
    counter: AtomicU64,
    key: RandomState,
}

impl IdSource {
    pub(crate) fn new() -> Self {
        Self {
            counter: AtomicU64::new(0),
            key: RandomState::new(),
        }
    }

    /// 32 bytes for a session id and 48 for a master secret, fresh on every call.
    pub(crate) fn next(&self) -> ([u8; 32], [u8; 48]) {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut words = [0u8; 80];
        for (i, chunk) in words.chunks_mut(8).enumerate() {
            let mut h = self.key.build_hasher();
            h.write_u64(n);
            h.write_usize(i);
            chunk.copy_from_slice(&h.finish().to_le_bytes());
        }
        let mut id = [0u8; 32];
        let mut secret = [0u8; 48];
        id.copy_from_slice(&words[..32]);
        secret.copy_from_slice(&words[32..]);
        (id, secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_do_not_repeat() {
        let src = IdSource::new();
        let ids: std::collections::HashSet<_> = (0..10_000).map(|_| src.next().0).collect();
        assert_eq!(ids.len(), 10_000);
    }
}
