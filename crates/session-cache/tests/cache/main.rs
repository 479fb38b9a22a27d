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

mod helpers;
use helpers::{cache, record_removals, request, NOW};
