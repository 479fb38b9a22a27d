//! A TLS server on tokio that resumes sessions through sesscache's cache, on rustls
//! (`sesscache-rustls`, through tokio-rustls) or OpenSSL (`sesscache-openssl`): the engine of
//! `sesscache serve`. It answers each connection with one line saying whether its handshake
//! resumed (as an HTTP/1.0 response to a client that sends a request line at once), sends
//! close_notify, and counts what it did.
//!
//! - Configured by a plain struct ([`ServerConfig`]); [`Server::bind`] starts a multi-thread
//!   runtime of [`ServerConfig::workers`] threads and listens; [`Server::run`] serves until a
//!   shutdown future completes or [`ServerConfig::max_connections`] were accepted, lets the
//!   connections held end, and returns a [`Report`].
//! - One task per connection, each with one deadline for its whole handshake, so thousands
//!   of idle connections cost memory, not workers; at most
//!   [`max_pending`](ServerConfig::max_pending) are held at once, and more are closed as they
//!   arrive (counted).
//! - Each handshake is counted in the cache's statistics by the cache's handshake driver
//!   (`accept`, `accept_good`, the resumption outcome), recorded to an optional trace
//!   (`sesscache_workload::trace`), and an OpenSSL connection that ends without a shutdown
//!   keeps its session (see `sesscache_openssl`'s crate documentation).
//! - [`Counters`] reads the server's own counters at any time (a metrics endpoint's).
//!
//! The handshake itself sits behind one `async fn` per stack (the `handshake` module): the
//! rest of the server reaches it only there.
//!
//! Architecture invariant: the library prints nothing (it logs through `tracing`) and
//! parses no command line; `sesscache-cli` does both.

#![forbid(unsafe_code)]

mod config;
mod connection;
mod counts;
mod error;
mod handshake;
mod server;
mod tls;

pub use config::{Backend, Identity, ServerConfig};
pub use counts::{Counters, CountsNow};
pub use error::Error;
pub use server::{Report, Server};
