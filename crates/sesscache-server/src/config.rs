//! What a server is, as plain data: the TLS stack, the address, the certificate, the limits.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The TLS stack a server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backend {
    /// rustls (through tokio-rustls, on ring), with the cache as its session store
    /// (`sesscache-rustls`).
    Rustls,
    /// OpenSSL (the `openssl` crate), with the cache as its external session cache
    /// (`sesscache-openssl`).
    Openssl,
}

impl Backend {
    /// The session id context for a server on this stack, one per stack: each stack's
    /// sessions are its own (rustls's carry rustls's encoding), so that a server on the other
    /// stack sharing a fleet's store refuses them. Give it to the [`Context`](ctx::Context)
    /// the server resumes through.
    pub fn sid_ctx(self) -> &'static [u8] {
        match self {
            Backend::Rustls => b"sesscache serve rustls",
            Backend::Openssl => b"sesscache serve openssl",
        }
    }

    /// The stack's name, for people.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Rustls => "rustls",
            Backend::Openssl => "OpenSSL",
        }
    }
}

/// Where the server's certificate chain and private key come from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Identity {
    /// PEM files: the chain (leaf first), and its private key (PKCS#8, PKCS#1 or SEC1).
    Files {
        /// The certificate chain.
        cert: PathBuf,
        /// The private key.
        key: PathBuf,
    },
    /// A self-signed certificate for `localhost` and `127.0.0.1`, made at start.
    SelfSigned,
}

/// What a server is: plain data, checked by [`Server::bind`](crate::Server::bind).
///
/// ```
/// let mut config = sesscache_server::ServerConfig::default();
/// config.listen = "127.0.0.1:0".parse().unwrap();
/// config.max_connections = Some(100);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// The TLS stack.
    pub backend: Backend,
    /// The address to listen on; port 0 picks a free port
    /// ([`Server::local_addr`](crate::Server::local_addr) tells which).
    pub listen: SocketAddr,
    /// The certificate and key.
    pub identity: Identity,
    /// Resume with the stack's stateless tickets instead of the session cache, for
    /// comparison: the cache then stays empty.
    pub tickets: bool,
    /// The runtime's worker threads, which run every connection's handshake and answer;
    /// `None`: one per CPU. Connections are not bound to workers: a connection waiting for
    /// its client costs memory and a file descriptor, not a thread.
    pub workers: Option<usize>,
    /// The most connections held at once (in their handshake or their answer). One more is
    /// closed as soon as it is accepted, and counted (`refused`).
    pub max_pending: usize,
    /// Stop after this many connections (those refused are not counted); `None`: run until
    /// the shutdown future given to [`Server::run`](crate::Server::run) completes.
    pub max_connections: Option<u64>,
    /// The most a handshake may take, all told (one deadline, however its client trickles):
    /// a client that connects and stalls is dropped then and counted as failed.
    pub handshake_timeout: Duration,
    /// Also flush the cache's expired sessions this often, for a server that is idle
    /// (`None`: only the automatic flush after every 255th good handshake, and the cache's
    /// removals at lookup and eviction).
    pub flush_interval: Option<Duration>,
    /// Record every finished handshake to this file, one anonymous line each
    /// (`sesscache_workload::trace::Recorder`).
    pub trace: Option<PathBuf>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            backend: Backend::Rustls,
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            identity: Identity::SelfSigned,
            tickets: false,
            workers: None,
            max_pending: 10_000,
            max_connections: None,
            handshake_timeout: Duration::from_secs(10),
            flush_interval: Some(Duration::from_secs(60)),
            trace: None,
        }
    }
}
