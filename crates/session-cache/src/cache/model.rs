//! Model checks of the whole cache's add path with loom (see `map::model` for how to run
//! them): reservation, eviction and linking across shards, under every interleaving up to the
//! preemption bound.

use std::sync::Arc;

use session_core::{ManualClock, ProtocolVersion, Session, SidCtx};

use crate::{CacheConfig, ExtendedMasterSecret, Lookup, LookupRequest, Miss, SessionCache};

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
