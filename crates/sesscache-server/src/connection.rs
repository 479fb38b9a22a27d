//! One connection, from accept to close: its handshake (through the seam in
//! [`handshake`](crate::handshake)), the answer (a line saying whether it resumed, as HTTP if
//! the client asked in HTTP), close_notify, its counts and its log line.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::HandshakeKind;
use sesscache_workload::trace::Recorder;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::{timeout, timeout_at, Instant};
use tracing::{debug, info, warn};

use crate::counts::{Counts, InFlight};
use crate::handshake::{self, OpensslStream, RustlsStream};
use crate::tls::Tls;

/// Connections that send no request line within this time get the plain-text answer.
const REQUEST_WAIT: Duration = Duration::from_millis(200);
/// A peer that does not take the answer (and close_notify) within this time is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest request line read.
const MAX_REQUEST: usize = 8192;

/// What every connection shares.
pub(crate) struct Shared {
    pub(crate) tls: Tls,
    pub(crate) counts: Arc<Counts>,
    pub(crate) trace: Option<Arc<Recorder>>,
    pub(crate) handshake_timeout: Duration,
}

/// Serves one accepted connection to its end.
pub(crate) async fn serve(tcp: TcpStream, peer: SocketAddr, shared: &Shared) {
    let counts = &shared.counts;
    let _held = InFlight::enter(counts);
    // A trace is anonymous; with one, the log names the peer only at debug level.
    let named = shared.trace.is_none();
    Counts::add(&counts.connections, 1);
    let deadline = Instant::now() + shared.handshake_timeout;
    let accepted = match &shared.tls {
        Tls::Rustls(side) => handshake::rustls(tcp, deadline, side)
            .await
            .map(|(stream, record)| (Established::Rustls(Box::new(stream)), record)),
        Tls::Openssl(side) => handshake::openssl(tcp, deadline, side)
            .await
            .map(|(stream, record)| (Established::Openssl(stream), record)),
    };
    let mut conn = match accepted {
        Ok((conn, record)) => {
            if let Some(trace) = &shared.trace {
                trace.record(&record);
            }
            conn
        }
        Err(err) => {
            Counts::add(&counts.failed, 1);
            if named {
                warn!(%peer, error = %err, "handshake failed");
            } else {
                debug!(%peer, error = %err, "handshake failed");
                warn!(error = %err, "handshake failed");
            }
            return;
        }
    };
    let resumed = conn.resumed();
    if resumed {
        Counts::add(&counts.resumed, 1);
    }
    let version = conn.version();
    let line = format!(
        "sesscache serve: {version}, {}, resumed: {}\n",
        conn.cipher(),
        if resumed { "yes" } else { "no" }
    );
    // A client that only wanted the handshake (`s_client -reconnect`) may be gone already.
    let answered = answer(&mut conn, &line).await;
    match (answered, named) {
        (Ok(()), true) => info!(%peer, version, resumed, "connection"),
        (Ok(()), false) => {
            debug!(%peer, version, resumed, "connection");
            info!(version, resumed, "connection");
        }
        (Err(err), true) => {
            info!(%peer, version, resumed, error = %err, "connection closed before the answer")
        }
        (Err(err), false) => {
            debug!(%peer, version, resumed, error = %err, "connection closed before the answer");
            info!(version, resumed, error = %err, "connection closed before the answer");
        }
    }
}

/// An HTTP/1.0 response to a request line that comes within [`REQUEST_WAIT`]; else the line
/// alone. Then close_notify.
async fn answer(conn: &mut Established, line: &str) -> io::Result<()> {
    // The request line's wait is one deadline, however the bytes trickle in.
    let waited = Instant::now() + REQUEST_WAIT;
    let mut request = Vec::new();
    let mut buf = [0u8; 2048];
    while !request.contains(&b'\n') && request.len() < MAX_REQUEST {
        match timeout_at(waited, conn.read(&mut buf)).await {
            Err(_) | Ok(Ok(0)) => break,
            Ok(Ok(n)) => request.extend_from_slice(&buf[..n]),
            Ok(Err(err)) => return Err(err),
        }
    }
    let first = request.split(|&b| b == b'\n').next().unwrap_or_default();
    let is_http = first.windows(6).any(|w| w == b" HTTP/")
        && [&b"GET "[..], b"HEAD ", b"POST "]
            .iter()
            .any(|m| first.starts_with(m));
    let response = if is_http {
        format!(
            "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{line}",
            line.len()
        )
    } else {
        line.to_owned()
    };
    let written = timeout(WRITE_TIMEOUT, async {
        conn.write_all(response.as_bytes()).await?;
        // A client already gone makes this fail; the answer was written either way.
        let _ = conn.close().await;
        Ok(())
    });
    written.await.unwrap_or_else(|_| {
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client did not take the answer",
        ))
    })
}

/// A connection whose handshake is done, on either stack.
enum Established {
    Rustls(Box<RustlsStream>),
    Openssl(OpensslStream),
}

impl Established {
    fn resumed(&self) -> bool {
        match self {
            Self::Rustls(stream) => {
                stream.get_ref().1.handshake_kind() == Some(HandshakeKind::Resumed)
            }
            Self::Openssl(stream) => stream.ssl().session_reused(),
        }
    }

    fn version(&self) -> &'static str {
        match self {
            Self::Rustls(stream) => match stream.get_ref().1.protocol_version() {
                Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
                Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
                _ => "unknown",
            },
            Self::Openssl(stream) => stream.ssl().version_str(),
        }
    }

    fn cipher(&self) -> String {
        match self {
            Self::Rustls(stream) => stream
                .get_ref()
                .1
                .negotiated_cipher_suite()
                .map_or_else(|| "unknown".to_owned(), |s| format!("{:?}", s.suite())),
            Self::Openssl(stream) => stream
                .ssl()
                .current_cipher()
                .map_or_else(|| "unknown".to_owned(), |c| c.name().to_owned()),
        }
    }

    /// Reads what the connection holds (at most `buf.len()` bytes).
    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Rustls(stream) => stream.read(buf).await,
            Self::Openssl(stream) => stream.read(buf).await,
        }
    }

    async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Self::Rustls(stream) => stream.write_all(bytes).await,
            Self::Openssl(stream) => stream.write_all(bytes).await,
        }
    }

    /// Sends close_notify (and, on rustls, ends the TCP stream's sending side).
    async fn close(&mut self) -> io::Result<()> {
        match self {
            Self::Rustls(stream) => stream.shutdown().await,
            Self::Openssl(stream) => stream.close().await,
        }
    }
}
