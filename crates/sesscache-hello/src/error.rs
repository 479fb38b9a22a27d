//! The one error type: what is wrong with the bytes, named after the field RFC 8446 gives.

/// Why bytes are not a ClientHello (or not the start of one).
///
/// Field and container names are RFC 8446's (`legacy_session_id`, `cipher_suites`,
/// `identities`, ...), so a message can be checked against the RFC's structures.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A record before the ClientHello is complete is not a handshake record (22): an alert,
    /// a `change_cipher_spec`, application data, or not TLS at all (an HTTP request, SSLv2).
    #[error(
        "record of content type {0} before the ClientHello is complete (expected 22, handshake)"
    )]
    ContentType(u8),
    /// A record's version is not `0x03xx`.
    #[error("record version {0:#06x} is not TLS's (0x03xx)")]
    RecordVersion(u16),
    /// A record's length is over [`MAX_RECORD_LEN`](crate::MAX_RECORD_LEN).
    #[error("record of {0} bytes, over the limit of 16640 (2^14 + 256)")]
    RecordTooLong(usize),
    /// A handshake record of zero bytes, which RFC 8446 (5.1) and RFC 5246 (6.2.1) forbid.
    #[error("empty handshake record")]
    EmptyRecord,
    /// The handshake message is of another type than ClientHello (1).
    #[error("handshake message of type {0}, not a ClientHello (1)")]
    NotClientHello(u8),
    /// The ClientHello's body is over [`MAX_CLIENT_HELLO_LEN`](crate::MAX_CLIENT_HELLO_LEN).
    #[error("ClientHello of {0} bytes, over the limit of 65535")]
    TooLong(usize),
    /// The handshake message ends before its length says (only from
    /// [`parse_handshake`](crate::parse_handshake); [`parse_records`](crate::parse_records)
    /// asks for more bytes instead).
    #[error("truncated ClientHello: {have} of {need} bytes")]
    Truncated {
        /// Bytes given.
        have: usize,
        /// Bytes the message's header (or the header itself) needs.
        need: usize,
    },
    /// A field, or the length of a vector, runs past the end of what contains it.
    #[error("{field} runs past the end of {container}")]
    Overrun {
        /// The field.
        field: &'static str,
        /// What contains it: the ClientHello, a vector, an extension's data.
        container: &'static str,
    },
    /// A vector's length is not one its definition allows (empty where it must not be, odd
    /// for a list of 2-byte values, a session id over 32 bytes, a binder under 32).
    #[error("{field} of {len} bytes: {rule}")]
    BadLength {
        /// The vector.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
        /// What its definition allows.
        rule: &'static str,
    },
    /// Bytes left over after the last field of a structure, or after the ClientHello in the
    /// record that ends it (RFC 8446, 5.1: a ClientHello ends at a record boundary).
    #[error("{count} trailing bytes in {container}")]
    TrailingBytes {
        /// The structure.
        container: &'static str,
        /// How many bytes are left over.
        count: usize,
    },
    /// Two extensions of one type (RFC 8446, 4.2).
    #[error("extension {0} appears twice")]
    DuplicateExtension(u16),
    /// An extension after `pre_shared_key` (41), which must be last (RFC 8446, 4.2.11).
    #[error("pre_shared_key (41) is not the last extension")]
    PskNotLast,
    /// `pre_shared_key` has not one binder per identity (RFC 8446, 4.2.11).
    #[error("pre_shared_key has {identities} identities but {binders} binders")]
    PskBinders {
        /// Identities offered.
        identities: usize,
        /// Binders sent.
        binders: usize,
    },
    /// `server_name` lists two host names (RFC 6066, 3).
    #[error("server_name lists more than one host name")]
    DuplicateHostName,
}
