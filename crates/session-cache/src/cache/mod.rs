//! The cache itself: the `SessionCache` struct and its `CacheConfig`, the constructor, and
//! the small getters and setters (size limit, count, mode, default timeout, clock); `Debug`,
//! and the flush on drop. What the cache does is in the files beside this one: adding and
//! eviction (`add.rs`), lookups (`lookup.rs`), removal, flushes and renewal (`flush.rs`), the
//! callbacks (`callbacks.rs`) and what the cache reports about itself (`statistics.rs`).

use std::fmt;
use std::sync::Arc;

use session_core::{Clock, Session, SystemClock, UnixTime};

use crate::callbacks::{Callbacks, RemovalCause};
use crate::capacity::Capacity;
use crate::map::SessionMap;
use crate::resumption::ResumptionCounters;
use crate::spread::Spread;
use crate::stats::Counters;
use crate::sync::{yield_now, AtomicU32, AtomicU64, Ordering};
use crate::timing::Timing;
use crate::CacheMode;

mod add;
mod callbacks;
mod flush;
mod lookup;
mod statistics;

#[cfg(all(test, sesscache_loom))]
mod model;
#[cfg(all(test, not(sesscache_loom)))]
mod tests;

pub use add::Added;
pub use lookup::{ExtendedMasterSecret, Lookup, LookupRequest};

use add::Slot;

/// A session's cache key: (protocol version on the wire, session id).
fn key_of(session: &Session) -> (u16, &[u8]) {
    (session.version().wire(), session.id().as_bytes())
}

/// OpenSSL's default cache size (`SSL_SESSION_CACHE_MAX_SIZE_DEFAULT`).
pub const DEFAULT_CACHE_SIZE: usize = 20_480;

/// OpenSSL's default session timeout for a TLS context, in seconds.
pub const DEFAULT_TIMEOUT: u64 = 7_200;

/// How a cache starts out.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// The most sessions the cache holds; 0 means no limit.
    pub size: usize,
    /// The mode bits.
    pub mode: CacheMode,
    /// The context's default session timeout in seconds (`SSL_CTX_set_timeout`).
    pub timeout: u64,
    /// Where the cache reads the time.
    pub clock: Arc<dyn Clock>,
    /// How many shards the map has (rounded up to a power of two).
    pub shards: usize,
    /// Whether operations are timed for [`SessionCache::latency`]: two clock reads each,
    /// for a server that exports metrics. Off by default.
    pub timing: bool,
}

impl Default for CacheConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            size: DEFAULT_CACHE_SIZE,
            mode: CacheMode::default(),
            timeout: DEFAULT_TIMEOUT,
            clock: Arc::new(SystemClock),
            shards: (cores * 8).next_power_of_two().max(16),
            timing: false,
        }
    }
}

/// A per-context session cache (the cache inside OpenSSL's `SSL_CTX`).
///
/// Every method takes `&self` and may be called from any number of threads at once.
/// Dropping the cache flushes it: the remove callback sees every session that was in it,
/// and sessions held elsewhere stay valid.
pub struct SessionCache {
    map: SessionMap,
    capacity: Capacity,
    /// The next entry's sequence number (the one counter, see [`Self::take_seq`]): written by
    /// every add, so on a line of its own, away from what every operation reads.
    seq: Spread,
    mode: AtomicU32,
    timeout: AtomicU64,
    clock: Arc<dyn Clock>,
    counters: Counters,
    resumptions: ResumptionCounters,
    timing: Timing,
    callbacks: Callbacks,
}

impl SessionCache {
    /// An empty cache.
    pub fn new(config: CacheConfig) -> Self {
        let shards = config.shards.max(2).next_power_of_two();
        Self {
            map: SessionMap::new(shards),
            capacity: Capacity::new(config.size),
            seq: Spread::new(1),
            mode: AtomicU32::new(config.mode.bits()),
            timeout: AtomicU64::new(config.timeout),
            clock: config.clock,
            counters: Counters::new(),
            resumptions: ResumptionCounters::new(),
            timing: Timing::new(config.timing),
            callbacks: Callbacks::new(),
        }
    }

    /// The time now, by the cache's clock.
    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }

    /// The cache's clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The size limit (0 = none).
    #[doc(alias = "SSL_CTX_sess_get_cache_size")]
    pub fn size(&self) -> usize {
        self.capacity.limit()
    }

    /// Sets the size limit (0 = none), evicting soonest-to-expire sessions at once until the
    /// cache fits, and returns the old limit. From its return on, the cache holds at most
    /// `size` sessions, whatever other threads are adding.
    #[doc(alias = "SSL_CTX_sess_set_cache_size")]
    pub fn set_size(&self, size: usize) -> usize {
        // From here on no add takes a slot against the old limit (see `Capacity`); what
        // is over the new one is linked, or about to be by an add that reserved before.
        let old = self.capacity.set_limit(size);
        while self.capacity.over_limit() {
            // The pin ends with this statement: the callback below runs with nothing held.
            let evicted = self.evict_one(&self.map.pin(), Slot::Release, None);
            match evicted {
                Some(evicted) => self.report(std::slice::from_ref(&evicted), RemovalCause::Evicted),
                // The excess is reserved by adds that are linking right now: wait for them.
                None => yield_now(),
            }
        }
        old
    }

    /// How many sessions are cached (`SSL_CTX_sess_number`).
    #[doc(alias = "SSL_CTX_sess_number")]
    pub fn len(&self) -> usize {
        self.capacity.used()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The mode bits.
    #[doc(alias = "SSL_CTX_get_session_cache_mode")]
    pub fn mode(&self) -> CacheMode {
        CacheMode::from_bits_retain(self.mode.load(Ordering::Relaxed))
    }

    /// Sets the mode bits, returning the old ones.
    #[doc(alias = "SSL_CTX_set_session_cache_mode")]
    pub fn set_mode(&self, mode: CacheMode) -> CacheMode {
        CacheMode::from_bits_retain(self.mode.swap(mode.bits(), Ordering::Relaxed))
    }

    /// The context's default session timeout, in seconds.
    #[doc(alias = "SSL_CTX_get_timeout")]
    pub fn timeout(&self) -> u64 {
        self.timeout.load(Ordering::Relaxed)
    }

    /// Sets the context's default session timeout, returning the old one. Sessions already
    /// made keep theirs.
    #[doc(alias = "SSL_CTX_set_timeout")]
    pub fn set_timeout(&self, timeout: u64) -> u64 {
        self.timeout.swap(timeout, Ordering::Relaxed)
    }
}

impl Drop for SessionCache {
    fn drop(&mut self) {
        self.flush_all();
    }
}

impl fmt::Debug for SessionCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionCache")
            .field("len", &self.len())
            .field("size", &self.size())
            .field("mode", &self.mode())
            .field("timeout", &self.timeout())
            .field("stats", &self.counters)
            .field("callbacks", &self.callbacks)
            .finish_non_exhaustive()
    }
}
