//! The one error type of ctx: why a simulated handshake failed.

/// Why a simulated handshake failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A client connection was asked to accept, or a server connection to connect.
    #[error("a {actual} connection cannot {wanted}")]
    WrongRole {
        /// The connection's role.
        actual: &'static str,
        /// What it was asked to do.
        wanted: &'static str,
    },
    /// The connection has already completed its handshake.
    #[error("the connection has already completed its handshake")]
    AlreadyEstablished,
    /// The offered session used the extended master secret and the ClientHello does not:
    /// RFC 7627 requires the handshake to be aborted.
    #[error("the resumed session used the extended master secret and this handshake does not")]
    ExtendedMasterSecretDowngrade,
}
