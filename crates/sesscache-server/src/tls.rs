//! The server side of each TLS stack, made once from the configuration and shared by every
//! connection: rustls's `ServerConfig` with the cache as its store, or an OpenSSL acceptor
//! with the cache as its external cache.

use std::sync::Arc;

use ctx::Context;
use openssl::ssl::{SslAcceptor, SslMethod, SslSessionCacheMode};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sesscache_rustls::ServerSessions;

use crate::config::{Backend, Identity, ServerConfig};
use crate::Error;

/// What a handshake on either stack needs besides its connection.
pub(crate) struct Side<A> {
    /// The stack's acceptor.
    pub(crate) acceptor: A,
    /// The context whose cache resumes sessions.
    pub(crate) context: Context,
}

impl<A> Side<A> {
    fn new(acceptor: A, context: &Context) -> Self {
        Self {
            acceptor,
            context: context.clone(),
        }
    }
}

/// The server side of the TLS stack.
pub(crate) enum Tls {
    Rustls(Side<tokio_rustls::TlsAcceptor>),
    Openssl(Side<SslAcceptor>),
}

impl Tls {
    pub(crate) fn new(config: &ServerConfig, context: &Context) -> Result<Self, Error> {
        let (chain, key) = identity(&config.identity)?;
        match config.backend {
            Backend::Rustls => {
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                let mut tls = rustls::ServerConfig::builder_with_provider(provider)
                    .with_protocol_versions(rustls::ALL_VERSIONS)?
                    .with_no_client_auth()
                    .with_single_cert(chain, key)
                    .map_err(|e| Error::Unusable(e.into()))?;
                if config.tickets {
                    tls.ticketer = rustls::crypto::ring::Ticketer::new()?;
                    tls.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
                } else {
                    tls.session_storage = ServerSessions::new(context);
                }
                Ok(Self::Rustls(Side::new(
                    tokio_rustls::TlsAcceptor::from(Arc::new(tls)),
                    context,
                )))
            }
            Backend::Openssl => {
                let mut builder = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
                // A flight's records in one read, not two reads a record.
                builder.set_read_ahead(true);
                let mut certs = chain.iter();
                let leaf = certs.next().ok_or(Error::Config("no certificate"))?;
                let leaf = openssl::x509::X509::from_der(leaf)?;
                builder.set_certificate(&leaf)?;
                for cert in certs {
                    builder.add_extra_chain_cert(openssl::x509::X509::from_der(cert)?)?;
                }
                let key = openssl::pkey::PKey::private_key_from_der(key.secret_der())?;
                builder.set_private_key(&key)?;
                builder
                    .check_private_key()
                    .map_err(|e| Error::Unusable(e.into()))?;
                if config.tickets {
                    // OpenSSL's own stateless tickets, and no session cache; the handshakes
                    // still count in the context's statistics.
                    builder.set_session_cache_mode(SslSessionCacheMode::OFF);
                    sesscache_openssl::count_handshakes(&mut builder, context);
                } else {
                    sesscache_openssl::install_server(&mut builder, context)?;
                }
                Ok(Self::Openssl(Side::new(builder.build(), context)))
            }
        }
    }
}

/// The certificate chain and key: read from PEM files, or made at start.
fn identity(
    identity: &Identity,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), Error> {
    match identity {
        Identity::Files { cert, key } => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|source| Error::ReadCertificates {
                    path: cert.clone(),
                    source,
                })?;
            if chain.is_empty() {
                return Err(Error::NoCertificate { path: cert.clone() });
            }
            let key = PrivateKeyDer::from_pem_file(key).map_err(|source| Error::ReadKey {
                path: key.clone(),
                source,
            })?;
            Ok((chain, key))
        }
        Identity::SelfSigned => {
            let made = rcgen::generate_simple_self_signed(vec![
                "localhost".to_owned(),
                "127.0.0.1".to_owned(),
            ])
            .map_err(Error::SelfSigned)?;
            let key = PrivateKeyDer::Pkcs8(made.signing_key.serialize_der().into());
            Ok((vec![made.cert.der().clone()], key))
        }
    }
}
