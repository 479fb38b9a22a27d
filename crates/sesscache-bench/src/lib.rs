//! What the benchmarks and the measurement tools share: OpenSSL's own cache as a contender,
//! through its C API, the probe that times one cache line's trip between two cores, and a
//! fleet tier on a loopback Redis, and real `sesscache serve` processes with real TLS clients,
//! and the median and range of repeated runs ([`spread`]).
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

/// The median of a non-empty list (the mean of the two middle values for an even count), and
/// its lowest and highest values: how the tools report repeated runs.
pub fn spread(values: &[f64]) -> (f64, f64, f64) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let median = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    };
    (median, sorted[0], sorted[n - 1])
}
