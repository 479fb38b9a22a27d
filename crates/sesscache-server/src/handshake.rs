//! The handshakes: one `async fn` per stack that takes an accepted TCP stream, the
//! handshake's deadline and the stack's side, and returns the established stream with what
//! the cache's handshake driver saw ([`HandshakeRecord`]). Both go through the adapters'
//! asynchronous path: the session a ClientHello offers is fetched from the fleet's store on
//! the runtime before the TLS stack looks it up, so no worker waits on the store.

use std::io::{self, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use openssl::ssl::{self, ErrorCode, ShutdownState, Ssl};
use session_cache::HandshakeRecord;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

use crate::tls::Side;

/// Why a handshake did not complete.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failed {
    /// The deadline passed first.
    #[error("no handshake within {} s", .0.as_secs())]
    TimedOut(Duration),
    /// The connection or the TLS stack failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

// ---- The seam: rustls -------------------------------------------------------------------

/// The rustls handshake on `tcp`, within `deadline` all told, through
/// `sesscache_rustls::accept`: counted in the cache's statistics (`accept`, `accept_good`,
/// the resumption outcome). Its record comes back with the connection.
pub(crate) async fn rustls(
    tcp: TcpStream,
    deadline: Instant,
    side: &Side<tokio_rustls::TlsAcceptor>,
) -> Result<(RustlsStream, HandshakeRecord), Failed> {
    let limit = deadline.saturating_duration_since(Instant::now());
    let tcp = LateReadError { tcp, error: None };
    let accept = sesscache_rustls::accept(&side.context, side.acceptor.config().clone(), tcp);
    let (stream, record) = timeout_at(deadline, accept)
        .await
        .map_err(|_| Failed::TimedOut(limit))??;
    Ok((stream, record))
}

/// A rustls connection whose handshake succeeded.
pub(crate) type RustlsStream = tokio_rustls::server::TlsStream<LateReadError>;

/// The TCP stream under tokio-rustls: a read that fails is pending once (its task woken at
/// once), and its error is the next read's.
///
/// tokio-rustls's handshake reads on while rustls wants to read, also after the message that
/// completed the handshake, within the same poll: a client that resets its connection right
/// after its Finished (`openssl s_time` does) would fail a handshake that had succeeded. With
/// the error one read late, the handshake ends first, and the error fails the established
/// stream's first read instead; within a handshake, it fails the next poll.
pub(crate) struct LateReadError {
    tcp: TcpStream,
    error: Option<io::Error>,
}

impl AsyncRead for LateReadError {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(error) = this.error.take() {
            return Poll::Ready(Err(error));
        }
        match Pin::new(&mut this.tcp).poll_read(cx, buf) {
            Poll::Ready(Err(error)) => {
                this.error = Some(error);
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            read => read,
        }
    }
}

impl AsyncWrite for LateReadError {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

// ---- The seam: OpenSSL ------------------------------------------------------------------

/// The OpenSSL handshake on `tcp`, within `deadline` all told. The adapter's callbacks count
/// it by themselves (`sesscache_openssl::install_server`); its record comes back with the
/// connection.
pub(crate) async fn openssl(
    tcp: TcpStream,
    deadline: Instant,
    side: &Side<ssl::SslAcceptor>,
) -> Result<(OpensslStream, HandshakeRecord), Failed> {
    let limit = deadline.saturating_duration_since(Instant::now());
    let mut ssl = Ssl::new(side.acceptor.context()).map_err(io::Error::other)?;
    // The ClientHello callback suspends the handshake once, with what to fetch.
    sesscache_openssl::enable_prefetch(&mut ssl, &side.context);
    let mut stream = ssl::SslStream::new(ssl, Nonblocking(tcp)).map_err(io::Error::other)?;
    let accept = async {
        loop {
            match drive_until(&mut stream, |s| s.accept()).await {
                Err(Stop::ClientHello) => {
                    sesscache_openssl::prefetch(&side.context, stream.ssl()).await;
                }
                Err(Stop::Failed(err)) => return Err(err),
                Ok(()) => return Ok(()),
            }
        }
    };
    timeout_at(deadline, accept)
        .await
        .map_err(|_| Failed::TimedOut(limit))??;
    let record = sesscache_openssl::handshake_record(stream.ssl()).unwrap_or_default();
    Ok((OpensslStream(stream), record))
}

/// An OpenSSL connection whose handshake succeeded.
///
/// OpenSSL removes the session of a connection freed without a shutdown sent
/// (`SSL_free` calls `SSL_CTX_remove_session` unless `SSL_get_shutdown` has
/// `SSL_SENT_SHUTDOWN`), a rule TLS 1.1 and later no longer require: a client that hangs up
/// first would lose its session. As nginx and `s_server` do, dropping the stream marks the
/// shutdown as done (`SSL_set_shutdown(SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN)`) before
/// OpenSSL frees it, whether or not close_notify went out. (Marked at once, the flags would
/// stop the answer: OpenSSL neither writes after a shutdown sent nor reads after one
/// received.)
pub(crate) struct OpensslStream(ssl::SslStream<Nonblocking>);

impl Drop for OpensslStream {
    fn drop(&mut self) {
        self.0
            .set_shutdown(ShutdownState::SENT | ShutdownState::RECEIVED);
    }
}

impl OpensslStream {
    pub(crate) fn ssl(&self) -> &ssl::SslRef {
        self.0.ssl()
    }

    /// Reads what the connection holds (at most `buf.len()` bytes); 0 at its end, with or
    /// without close_notify.
    pub(crate) async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match drive(&mut self.0, |s| s.ssl_read(buf)).await {
            Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
            read => read,
        }
    }

    pub(crate) async fn write_all(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let n = drive(&mut self.0, |s| s.ssl_write(bytes)).await?;
            bytes = &bytes[n..];
        }
        Ok(())
    }

    /// Sends close_notify.
    pub(crate) async fn close(&mut self) -> io::Result<()> {
        drive(&mut self.0, |s| s.shutdown()).await.map(|_| ())
    }
}

/// A tokio TCP stream as the blocking stream OpenSSL's BIO reads and writes: every call is
/// tokio's non-blocking `try_read` or `try_write`, and `WouldBlock` becomes OpenSSL's
/// `WANT_READ` or `WANT_WRITE`, which [`drive`] waits out on the stream's readiness.
pub(crate) struct Nonblocking(TcpStream);

impl Read for Nonblocking {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
}

impl Write for Nonblocking {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Why [`drive_until`] stopped before `op` was done.
enum Stop {
    /// The ClientHello callback suspended the handshake (`SSL_ERROR_WANT_CLIENT_HELLO_CB`).
    ClientHello,
    /// The connection or OpenSSL failed; a clean end (close_notify) and an end without one
    /// are `UnexpectedEof`.
    Failed(io::Error),
}

/// Calls `op` on `stream` until it is done, waiting for the socket's readiness whenever
/// OpenSSL wants to read or write. A clean end (close_notify) and an end without one are
/// `UnexpectedEof`.
async fn drive<T>(
    stream: &mut ssl::SslStream<Nonblocking>,
    op: impl FnMut(&mut ssl::SslStream<Nonblocking>) -> Result<T, ssl::Error>,
) -> io::Result<T> {
    match drive_until(stream, op).await {
        Ok(done) => Ok(done),
        Err(Stop::Failed(err)) => Err(err),
        Err(Stop::ClientHello) => Err(io::Error::other("the handshake was suspended")),
    }
}

/// [`drive`], stopping also when the ClientHello callback suspends the handshake.
async fn drive_until<T>(
    stream: &mut ssl::SslStream<Nonblocking>,
    mut op: impl FnMut(&mut ssl::SslStream<Nonblocking>) -> Result<T, ssl::Error>,
) -> Result<T, Stop> {
    loop {
        let err = match op(stream) {
            Ok(done) => return Ok(done),
            Err(err) => err,
        };
        let ready = match err.code() {
            ErrorCode::WANT_CLIENT_HELLO_CB => return Err(Stop::ClientHello),
            ErrorCode::WANT_READ => stream.get_ref().0.readable().await,
            ErrorCode::WANT_WRITE => stream.get_ref().0.writable().await,
            ErrorCode::ZERO_RETURN => Err(io::ErrorKind::UnexpectedEof.into()),
            ErrorCode::SYSCALL if err.io_error().is_none() && err.ssl_error().is_none() => {
                Err(io::ErrorKind::UnexpectedEof.into())
            }
            _ => Err(err
                .into_io_error()
                .unwrap_or_else(|err| io::Error::other(err.to_string()))),
        };
        ready.map_err(Stop::Failed)?;
    }
}
