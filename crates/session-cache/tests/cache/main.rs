//! The cache's behaviour through its public API, one file per part of `src/cache/`: adding
//! and eviction, lookups, removal and flushes, the callbacks, and what the cache reports.
//! One test binary, so that the files share these helpers and are linked once.

use std::sync::{Arc, Mutex};

use session_cache::{CacheConfig, ExtendedMasterSecret, LookupRequest, RemovalCause, SessionCache};
use session_core::{ManualClock, ProtocolVersion, Session, SidCtx};

mod add;
mod callbacks;
mod flush;
mod lookup;
mod statistics;

const NOW: u64 = 1_000_000;

fn cache(size: usize) -> (SessionCache, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(NOW));
    let cache = SessionCache::new(CacheConfig {
        size,
        clock: clock.clone(),
        ..CacheConfig::default()
    });
    (cache, clock)
}

fn request(id: &[u8]) -> LookupRequest<'_> {
    LookupRequest::new(
        ProtocolVersion::TLS1_2,
        id,
        SidCtx::empty(),
        ExtendedMasterSecret::NotOffered,
    )
}

type Removals = Arc<Mutex<Vec<(Vec<u8>, RemovalCause)>>>;

/// Records every remove callback as (id, cause).
fn record_removals(cache: &SessionCache) -> Removals {
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
