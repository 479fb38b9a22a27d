//! Workloads for sesscache's cache, as data in and data out: synthetic runs of simulated TLS
//! connections ([`simulate`]), the anonymous handshake traces a server records
//! ([`trace`]), and their replay against a cache of any size ([`replay`]). The `sesscache`
//! command prints what these return; a server that embeds the cache records a trace with
//! [`trace::Recorder`].
//!
//! ```
//! use std::time::Duration;
//! use sesscache_workload::simulate::{self, Pace, Stop, Workload};
//!
//! let workload = Workload {
//!     threads: 1,
//!     clients: 100,
//!     pace: Pace::Rate(100.0),
//!     stop: Stop::Connections(1_000),
//!     ..Workload::default()
//! };
//! let report = simulate::run(&workload, &[], |_progress| {})?;
//! assert_eq!(report.connections, 1_000);
//! assert!(report.hit_ratio() > 0.5);
//! # Ok::<(), sesscache_workload::Error>(())
//! ```

#![forbid(unsafe_code)]

mod error;
pub mod replay;
pub mod simulate;
mod timeline;
pub mod trace;

pub use error::Error;
