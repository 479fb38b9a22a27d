//! What the benchmarks and the measurement tools share: OpenSSL's own cache as a contender,
//! through its C API, the probe that times one cache line's trip between two cores, and a
//! fleet tier on a loopback Redis, and real `sesscache serve` processes with real TLS clients.
//!
//! The benchmarks are in `benches/` (`cargo bench -p sesscache-bench`); the tools that read
//! and explain them are binaries (`src/bin/`). docs/PERFORMANCE.md says how to run each.

// `unsafe` only in `openssl_ffi`: calling libssl's C API.
#![deny(unsafe_code)]

pub mod fleet;
pub mod line_transfer;
#[allow(unsafe_code)] // libssl's C API, each block with its reason
pub mod openssl_ffi;
pub mod serve_fleet;
