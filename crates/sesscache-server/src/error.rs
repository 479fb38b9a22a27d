//! The crate's one error type.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The certificate file could not be read, or holds something that is not PEM.
    #[error("cannot read certificates from {}", .path.display())]
    ReadCertificates {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// The certificate file holds no certificate.
    #[error("{} holds no certificate", .path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The key file could not be read, or holds no private key.
    #[error("cannot read a private key from {}", .path.display())]
    ReadKey {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// The self-signed certificate could not be made.
    #[error("cannot make a self-signed certificate")]
    SelfSigned(#[source] rcgen::Error),
    /// The certificate and the key do not go together, or the stack refuses them.
    #[error("the certificate and key do not make a usable pair")]
    Unusable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// rustls refused the configuration.
    #[error("cannot configure rustls")]
    Rustls(#[source] rustls::Error),
    /// OpenSSL refused the configuration.
    #[error("cannot configure OpenSSL")]
    Openssl(#[source] openssl::error::ErrorStack),
    /// A limit that cannot be: no connection at all held at once, or no worker.
    #[error("{0}")]
    Config(&'static str),
    /// The trace could not be created.
    #[error(transparent)]
    Trace(#[from] sesscache_workload::Error),
    /// The runtime could not be started.
    #[error("cannot start the server's runtime")]
    Runtime(#[source] io::Error),
    /// The address could not be listened on.
    #[error("cannot listen on {addr}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: io::Error,
    },
}

impl From<rustls::Error> for Error {
    fn from(err: rustls::Error) -> Self {
        Error::Rustls(err)
    }
}

impl From<openssl::error::ErrorStack> for Error {
    fn from(err: openssl::error::ErrorStack) -> Self {
        Error::Openssl(err)
    }
}
