//! sesscache: a TLS session cache that models OpenSSL's `SSL_SESSION` and per-context cache,
//! with the reference-counting hazards of the C API ruled out by the type system.
//!
//! This umbrella crate re-exports the workspace's libraries; see `docs/ARCHITECTURE.md`.

#![forbid(unsafe_code)]

pub use ctx;
pub use session_cache as cache;
pub use session_core as core;
pub use session_der as der;

/// The README's examples, compiled and run as doctests so that they stay true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// docs/USAGE.md's examples, compiled and run as doctests too.
#[doc = include_str!("../docs/USAGE.md")]
#[cfg(doctest)]
pub struct UsageDoctests;
