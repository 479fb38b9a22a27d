//! A TLS ClientHello parser for a server's first flight, read before the handshake
//! proceeds, so that a session cache can fetch the offered session from a remote store
//! while the bytes wait (rustls's `ClientHello` shows neither the legacy session id nor the
//! PSK identities).
//!
//! - [`parse_records`]: the bytes read from a new connection (TLS records), a ClientHello
//!   joined across as many records as it spans; `Ok(None)` until they hold all of it.
//! - [`parse_handshake`]: one handshake message.
//! - [`ClientHello`]: the legacy session id, the `session_ticket` extension, the PSK
//!   identities, the supported versions, the server name.
//! - [`ClientHello::offer`]: the one key to fetch ([`Offer`]), decided as rustls and OpenSSL
//!   servers decide which session to resume.
//!
//! The input is hostile: parsing never panics, allocates only the ClientHello's body (never
//! more than the input's size), and takes time linear in the input; every length is checked
//! against its container and its definition in RFC 8446 or RFC 5246, and a bad one is an
//! [`Error`] that names the field.
//!
//! ```
//! use sesscache_hello::{parse_records, Offer, ServerPolicy};
//!
//! // A TLS 1.2 ClientHello resuming by session id, in one record.
//! let mut body = vec![3, 3]; // legacy_version: TLS 1.2
//! body.extend([7; 32]); // random
//! body.push(32); // legacy_session_id: 32 bytes
//! body.extend([0xab; 32]);
//! body.extend([0, 2, 0xc0, 0x2f]); // cipher_suites: ECDHE-RSA-AES128-GCM-SHA256
//! body.extend([1, 0]); // legacy_compression_methods: null
//! let mut bytes = vec![22, 3, 1, 0, 4 + body.len() as u8]; // record: handshake
//! bytes.extend([1, 0, 0, body.len() as u8]); // handshake message: ClientHello
//! bytes.extend(&body);
//!
//! assert_eq!(parse_records(&bytes[..40])?, None); // more bytes needed
//! let hello = parse_records(&bytes)?.expect("all of it");
//! assert_eq!(hello.session_id(), [0xab; 32]);
//! assert!(!hello.offers_tls13());
//! let server = ServerPolicy::default(); // TLS 1.3 allowed, stateful tickets
//! assert_eq!(hello.offer(server), Offer::SessionId(&[0xab; 32]));
//!
//! let err = parse_records(b"GET / HTTP/1.1\r\n").unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "record of content type 71 before the ClientHello is complete (expected 22, handshake)"
//! );
//! # Ok::<(), sesscache_hello::Error>(())
//! ```

#![forbid(unsafe_code)]

mod error;
mod hello;
mod offer;
mod reader;
mod records;

pub use error::Error;
pub use hello::{pre_shared_key, supported_versions, ClientHello, PskIdentities, PskIdentity};

/// The `pre_shared_key` extension's type (41).
pub const PRE_SHARED_KEY: u16 = hello::PRE_SHARED_KEY;
/// The `supported_versions` extension's type (43).
pub const SUPPORTED_VERSIONS: u16 = hello::SUPPORTED_VERSIONS;
pub use offer::{Offer, ServerPolicy};
pub use records::{parse_handshake, parse_records, MAX_CLIENT_HELLO_LEN, MAX_RECORD_LEN};

#[cfg(test)]
#[path = "../tests/support/hello.rs"]
mod build;
