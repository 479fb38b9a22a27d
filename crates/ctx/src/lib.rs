//! OpenSSL's `SSL_CTX` and `SSL`, modelled around the session cache.
//!
//! - [`Context`] owns its [`SessionCache`](session_cache::SessionCache): the cache is reached
//!   through the context, and lives exactly as long as the last handle to the context. The
//!   cache's callbacks receive the cache as an argument; one that needs the context itself
//!   holds a [`WeakContext`], since a strong handle in a callback would keep the context (and
//!   its sessions) alive for ever.
//! - [`Connection`] is made from a context and keeps it alive, as an `SSL` holds its
//!   `SSL_CTX`. It holds at most one session and offers OpenSSL's session calls.
//! - The handshakes are simulations (no cryptography) that drive the cache's handshake rules
//!   ([`session_cache::Handshake`], the same that the rustls and OpenSSL adapters drive):
//!   lookups with their checks and counters, caching new sessions by mode, single-use TLS 1.3
//!   tickets, the automatic flush every 255 good handshakes. What is a connection's own stays
//!   here: the session it holds, and the removal of that session when the connection ends
//!   without a clean shutdown.
//! - [`client_session_id`] is the key a client store keeps a server's sessions under.
//!
//! Architecture invariant: nothing here reaches into the cache's internals; every effect on
//! the cache goes through its public API.

#![forbid(unsafe_code)]

mod client;
mod connection;
mod context;
mod error;
mod ids;

pub use client::client_session_id;
pub use connection::{ClientHello, Connection, ServerHello};
pub use context::{Context, ContextConfig, WeakContext};
pub use error::Error;
pub use session_cache::Role;
