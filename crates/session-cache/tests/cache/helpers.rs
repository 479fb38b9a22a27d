//! The helpers the cache's tests share: those through the public API (`tests/cache/`) and
//! the unit tests that look inside (`src/cache/tests.rs`, which includes this file). Each
//! includer imports the cache's names, from `session_cache` or from `crate`.

#![allow(dead_code)] // each includer uses its own part

use super::{
    Arc, CacheConfig, ExtendedMasterSecret, LookupRequest, ManualClock, Mutex, ProtocolVersion,
    RemovalCause, Session, SessionCache, SidCtx,
};

pub(crate) const NOW: u64 = 1_000_000;

pub(crate) fn cache(size: usize) -> (SessionCache, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(NOW));
    let cache = SessionCache::new(CacheConfig {
        size,
        clock: clock.clone(),
        ..CacheConfig::default()
    });
    (cache, clock)
}

pub(crate) fn request(id: &[u8]) -> LookupRequest<'_> {
    LookupRequest::new(
        ProtocolVersion::TLS1_2,
        id,
        SidCtx::empty(),
        ExtendedMasterSecret::NotOffered,
    )
}

pub(crate) type Removals = Arc<Mutex<Vec<(Vec<u8>, RemovalCause)>>>;

/// Records every remove callback as (id, cause).
pub(crate) fn record_removals(cache: &SessionCache) -> Removals {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    cache.set_remove_session_callback(Some(Arc::new(
        move |_: &SessionCache, s: &Session, cause| {
            sink.lock()
                .unwrap()
                .push((s.id().as_bytes().to_vec(), cause));
        },
    )));
    seen
}
