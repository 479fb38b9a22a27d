//! A fleet's shared second tier: the sessions of every server behind a load balancer, in one
//! Redis or Valkey (a single server or a Redis Cluster), sealed, behind the cache's own hooks.
//!
//! ```no_run
//! use std::path::Path;
//! use ctx::{Context, ContextConfig};
//! use sesscache_redis::{KeyRing, Tier, TierConfig};
//!
//! let keys = KeyRing::load(Path::new("/etc/sesscache/keys"))?;
//! let tier = Tier::new(TierConfig::new(vec!["redis://10.0.0.5:6379".into()], keys))?;
//! let context = Context::new(ContextConfig::default());
//! tier.attach(context.cache());
//! // Every adapter over `context` (rustls, OpenSSL, simulated connections) now shares
//! // sessions with the other servers attached to the same store.
//! # Ok::<(), sesscache_redis::Error>(())
//! ```
//!
//! - **Through the hooks.** [`Tier::attach`] sets the cache's new-session, get-session,
//!   take-session and remove-session callbacks, as an OpenSSL server attaches an external
//!   cache; nothing adapter-specific.
//! - **Off the handshake's path.** New sessions and removals go to a bounded queue; a
//!   background writer seals and pipelines them. A full queue drops the write and counts it.
//! - **Bounded.** A lookup waits at most the budget ([`TierConfig::budget`], 5 ms by
//!   default); a store that is slow, down, or answers garbage makes a miss, counted. After
//!   repeated failures a breaker skips the store until a background ping gets an answer.
//! - **Single use.** A TLS 1.3 ticket is claimed in the store atomically (`SET … GET`, which
//!   leaves a tombstone until the ticket would expire): it resumes once in the whole fleet,
//!   also on the server that issued it. A store that cannot answer cannot vouch for a ticket,
//!   so that handshake is a full one.
//! - **Sealed.** Each value is sealed with ChaCha20-Poly1305 under a subkey of its own,
//!   derived (HKDF-SHA256) from a key of the key file ([`KeyRing`], never from the store) and
//!   a random 256-bit salt the value carries, so a key seals any number of values with no
//!   nonce to repeat, and without XChaCha20's longer nonces. The value's name is a keyed hash
//!   of the version and the session id; the session id context is bound as associated data.
//!   The format is described in [`value`] and versioned by its first byte; values of the
//!   previous format (a random nonce under the key itself) still open.

#![forbid(unsafe_code)]

mod error;
mod keys;
mod stats;
mod store;
mod tier;
pub mod value;

pub use error::Error;
pub use keys::{KeyRing, KEY_LINE_TAG};
pub use stats::{BreakerState, TierStats};
pub use tier::{Tier, TierConfig, DEFAULT_BUDGET};
