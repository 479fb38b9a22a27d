//! sesscache: a TLS session cache that models OpenSSL's `SSL_SESSION` and per-context cache,
//! with the reference-counting hazards of the C API ruled out by the type system.
//!
//! The one crate an application adds. It re-exports the session ([`core`]), the cache
//! ([`cache`]), the context that owns it ([`ctx`]) and OpenSSL's serialized forms ([`der`]),
//! and behind a feature of the same name each adapter: [`rustls`](crate::rustls) (the cache
//! as a rustls session store), `openssl` (an OpenSSL server's external cache), `redis` (the
//! fleet's shared tier) and `metrics` (the Prometheus text format). See
//! `docs/ARCHITECTURE.md`.

#![forbid(unsafe_code)]

pub use ctx;
pub use session_cache as cache;
pub use session_core as core;
pub use session_der as der;

/// The cache as a rustls server's and client's session store (`sesscache-rustls`).
#[cfg(feature = "rustls")]
pub use sesscache_rustls as rustls;

/// The cache as an OpenSSL server's external session cache (`sesscache-openssl`).
#[cfg(feature = "openssl")]
pub use sesscache_openssl as openssl;

/// The fleet's shared second tier on Redis or Valkey (`sesscache-redis`).
#[cfg(feature = "redis")]
pub use sesscache_redis as redis;

/// The statistics in the Prometheus text format (`sesscache-metrics`).
#[cfg(feature = "metrics")]
pub use sesscache_metrics as metrics;

/// The README's examples, compiled and run as doctests so that they stay true. They use
/// every adapter, so they run with all features (`cargo test --all-features`).
#[doc = include_str!("../README.md")]
#[cfg(all(doctest, feature = "rustls", feature = "openssl", feature = "redis"))]
pub struct ReadmeDoctests;

/// docs/USAGE.md's examples, compiled and run as doctests too.
#[doc = include_str!("../docs/USAGE.md")]
#[cfg(doctest)]
pub struct UsageDoctests;
