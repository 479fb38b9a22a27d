//! A per-context TLS session cache with OpenSSL's semantics (`SSL_CTX_add_session`,
//! `SSL_CTX_remove_session`, lookup during a handshake, `SSL_CTX_flush_sessions`, the size
//! limit, the mode bits, the callbacks and the `SSL_CTX_sess_*` statistics), safe to use from
//! any number of threads at once.
//!
//! The cache holds exactly one reference to every session in it. A caller gets its own
//! references ([`Session`](session_core::Session)) and can never free one of the cache's.
//!
//! ```
//! use std::sync::Arc;
//! use session_cache::{CacheConfig, ExtendedMasterSecret, Lookup, LookupRequest, SessionCache};
//! use session_core::{ManualClock, MasterKey, ProtocolVersion, SessionBuilder, SessionId, SidCtx};
//!
//! let clock = Arc::new(ManualClock::new(1_000));
//! let cache = SessionCache::new(CacheConfig { size: 2, clock: clock.clone(), ..Default::default() });
//! let session = SessionBuilder::new(ProtocolVersion::TLS1_2, 1_000)
//!     .id(SessionId::new(b"abc").unwrap())
//!     .master_key(MasterKey::new(&[7; 48]).unwrap())
//!     .timeout(300)
//!     .build();
//! assert!(cache.add(&session).unwrap().is_added());
//!
//! let request = LookupRequest::new(
//!     ProtocolVersion::TLS1_2,
//!     b"abc",
//!     SidCtx::empty(),
//!     ExtendedMasterSecret::NotOffered,
//! );
//! assert!(matches!(cache.lookup(&request), Lookup::Hit(s) if s.ptr_eq(&session)));
//! clock.advance(301);
//! assert!(matches!(cache.lookup(&request), Lookup::Timeout));
//! assert_eq!(cache.stats().timeouts, 1);
//! ```
//!
//! Architecture invariant: no callback runs while a cache lock is held, and the cache never
//! drops a session reference under a lock (dropping the last one runs the application's
//! data destructor).

// `unsafe` only in `map`, where the lock-free map needs it.
#![deny(unsafe_code)]

mod cache;
mod callbacks;
mod capacity;
mod error;
mod handshake;
mod index;
#[allow(unsafe_code)] // the crate's one home of `unsafe`, each block with its reason
mod map;
pub mod metrics;
mod mode;
mod resumption;
mod spread;
mod stats;
mod sync;
mod timing;

pub use cache::{
    Added, CacheConfig, ExtendedMasterSecret, Lookup, LookupRequest, SessionCache,
    DEFAULT_CACHE_SIZE, DEFAULT_TIMEOUT,
};
pub use callbacks::{
    GetSessionCallback, NewSessionCallback, PrefetchCallback, PrefetchFuture, RemovalCause,
    RemoveSessionCallback, TakeSessionCallback,
};
pub use error::Error;
pub use handshake::{Handshake, Role};
pub use mode::CacheMode;
pub use resumption::{HandshakeRecord, Miss, Resumption, Resumptions};
pub use stats::Stats;
pub use timing::{Latency, Operation};
