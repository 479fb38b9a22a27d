//! The one error type of session-core: a field value that breaks its limit.

/// A session field was given a value that OpenSSL would reject or that breaks its limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A protocol version whose major byte is neither 0x03 (TLS) nor 0xFE (DTLS).
    #[error("protocol version {0:#06x} is neither TLS (0x03xx) nor DTLS (0xFExx)")]
    InvalidProtocolVersion(u16),
    /// A session id longer than 32 bytes.
    #[error("session id is {len} bytes long; at most {max} are allowed")]
    SessionIdTooLong {
        /// The length given.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A session id context longer than 32 bytes.
    #[error("session id context is {len} bytes long; at most {max} are allowed")]
    SidCtxTooLong {
        /// The length given.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A master key or resumption secret longer than OpenSSL's buffer.
    #[error("master key is {len} bytes long; at most {max} are allowed")]
    MasterKeyTooLong {
        /// The length given.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An SNI host name that is not a DNS name.
    #[error("invalid SNI host name: {reason}")]
    InvalidHostName {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An ALPN protocol name that is empty or longer than 255 bytes.
    #[error("ALPN protocol is {len} bytes long; it must be 1 to 255 bytes")]
    InvalidAlpn {
        /// The length given.
        len: usize,
    },
    /// A session ticket that is empty or longer than 65535 bytes.
    #[error("session ticket is {len} bytes long; it must be 1 to 65535 bytes")]
    InvalidTicket {
        /// The length given.
        len: usize,
    },
    /// A peer certificate that is not one well-formed DER SEQUENCE.
    #[error("peer certificate {index} is not a DER SEQUENCE: {reason}")]
    InvalidCertificate {
        /// The position of the certificate in the chain.
        index: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
}
