//! rustls's session stores backed by a sesscache [`Context`](ctx::Context).
//!
//! - [`ServerSessions`] implements rustls's `StoresServerSessions`: TLS 1.2 session ids
//!   (`get`) and TLS 1.3 stateful tickets (`take`, which uses a ticket up: it resumes at most
//!   once, however many connections offer it at the same time).
//! - [`ClientSessions`] implements rustls's `ClientSessionStore`.
//! - [`accept`] is the tokio server's accept: it reads the ClientHello, fetches the offered
//!   session from the fleet's store on the runtime, then completes the handshake, which the
//!   store answers from memory. No runtime worker waits on the store.
//! - Each server handshake drives the cache's handshake rules
//!   ([`session_cache::Handshake`]): [`complete_handshake`] for a blocking stream, or
//!   [`ServerHandshake`] around the calls that process a connection's packets. That is what
//!   counts `accept`, `accept_good` and why a handshake did not resume, and runs OpenSSL's
//!   automatic flush after every 255th good handshake; a server that does neither still has
//!   its expired sessions flushed after every 255th new session.
//!
//! What a server gets beyond rustls's own `ServerSessionMemoryCache`: sessions expire after
//! the context's timeout (rustls's stay until pushed out); the size bound evicts the session
//! that expires soonest; flush, statistics and callbacks are the cache's; the stored secrets
//! are zeroized when the last reference goes; and the cache lives in a context that any
//! number of `ServerConfig`s share, so it survives rebuilding the config (a certificate
//! reload).
//!
//! Counters follow real handshakes: a resumed connection is a hit, a full handshake after an
//! offered id or ticket is a miss, an expired offer is a timeout.
//!
//! Pinned to rustls 0.23 (the `ring` provider in this workspace).

#![forbid(unsafe_code)]

mod accept;
mod client;
mod server;

/// The rustls this crate implements the traits of (0.23).
pub use rustls;

pub use accept::{accept, accept_with};
pub use client::ClientSessions;
pub use server::{complete_handshake, ServerHandshake, ServerSessions};
pub use sesscache_hello::ServerPolicy;
