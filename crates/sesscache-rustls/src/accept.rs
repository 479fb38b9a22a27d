//! The asynchronous accept path for tokio servers: read the ClientHello first, fetch the
//! session it offers from the fleet's store on the runtime, then let rustls's synchronous
//! store answer from memory. No runtime worker waits on a remote store.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use ctx::Context;
use rustls::server::Acceptor;
use rustls::ServerConfig;
use sesscache_hello::{Offer, ServerPolicy};
use session_cache::{ExtendedMasterSecret, HandshakeRecord, LookupRequest};
use session_core::ProtocolVersion;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::server::TlsStream;
use tokio_rustls::{LazyConfigAcceptor, StartHandshake};

use crate::ServerHandshake;

/// The most of the first flight kept to read the ClientHello from (rustls refuses a larger
/// ClientHello anyway).
const FIRST_FLIGHT_LIMIT: usize = 1 << 16;

/// Accepts a TLS connection on `io` with `config` (whose `session_storage` is a
/// [`ServerSessions`](crate::ServerSessions) over `context`), as a tokio server does, without
/// ever blocking the runtime on the fleet's store:
///
/// 1. reads the client's first flight with rustls's [`Acceptor`] (tokio-rustls's
///    `LazyConfigAcceptor`), keeping a copy of the bytes it read;
/// 2. reads the offered session from them (`sesscache-hello`) and decides what rustls will
///    look up: a TLS 1.3 ticket (the first PSK identity) when TLS 1.3 is negotiated and the
///    config has no stateless ticketer, otherwise a TLS 1.2 session id;
/// 3. awaits the cache's [`prefetch`](session_cache::SessionCache::prefetch) of it (the
///    fleet tier's fetch, or its claim of a ticket, on the tier's own threads; concurrent
///    prefetches of one key share one store call; a store that cannot answer makes a full
///    handshake at once);
/// 4. completes the handshake as a [`ServerHandshake`]: counted, and its record returned.
///
/// Bound the whole call with one deadline (`tokio::time::timeout`). A handshake that fails
/// counts its start only.
///
/// rustls does not say which versions a config enables, so TLS 1.3 counts as enabled when
/// the config's crypto provider has a TLS 1.3 suite; a server whose config enables TLS 1.2
/// only says so with [`accept_with`].
pub async fn accept<IO>(
    context: &Context,
    config: Arc<ServerConfig>,
    io: IO,
) -> io::Result<(TlsStream<IO>, HandshakeRecord)>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let policy = ServerPolicy {
        tls13: config
            .crypto_provider()
            .cipher_suites
            .iter()
            .any(|suite| suite.version() == &rustls::version::TLS13),
        stateless_tickets: config.ticketer.enabled(),
    };
    accept_with(context, config, policy, io).await
}

/// [`accept`], told what the server negotiates (`policy.tls13`: whether `config` enables
/// TLS 1.3; `policy.stateless_tickets`: whether it has a ticketer), which decides what the
/// ClientHello's offer is.
pub async fn accept_with<IO>(
    context: &Context,
    config: Arc<ServerConfig>,
    policy: ServerPolicy,
    io: IO,
) -> io::Result<(TlsStream<IO>, HandshakeRecord)>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let mut handshake = ServerHandshake::new(context);
    // rustls's Acceptor reads only what it needs; the copy is of exactly those bytes.
    let tee = Tee {
        inner: io,
        copy: Some(Vec::new()),
    };
    let start = LazyConfigAcceptor::new(Acceptor::default(), tee).await?;
    let StartHandshake {
        accepted,
        io: Tee {
            inner: io,
            copy: first_flight,
        },
        ..
    } = start;
    if let Some(request) = first_flight
        .as_deref()
        .and_then(|bytes| offered(bytes, policy, context))
    {
        context.cache().prefetch(&request.as_request()).await;
    }
    // rustls looks the offer up as soon as the connection is made from the ClientHello, so
    // that call is observed too.
    let start = StartHandshake::from_parts(accepted, io);
    let accept = handshake.observe(|| start.into_stream(config));
    let stream = Observed {
        handshake: &mut handshake,
        inner: accept,
    }
    .await?;
    let record = handshake.finish(stream.get_ref().1).clone();
    Ok((stream, record))
}

/// What rustls will look up for the ClientHello in `first_flight`, if anything.
fn offered(first_flight: &[u8], policy: ServerPolicy, context: &Context) -> Option<Offered> {
    let hello = sesscache_hello::parse_records(first_flight).ok()??;
    match hello.offer(policy) {
        Offer::Ticket(id) => Some(Offered::new(ProtocolVersion::TLS1_3, id, context)),
        Offer::SessionId(id) => Some(Offered::new(ProtocolVersion::TLS1_2, id, context)),
        _ => None,
    }
}

/// A lookup the accept path prefetches.
struct Offered {
    version: ProtocolVersion,
    id: Vec<u8>,
    sid_ctx: session_core::SidCtx,
}

impl Offered {
    fn new(version: ProtocolVersion, id: &[u8], context: &Context) -> Self {
        Self {
            version,
            id: id.to_vec(),
            sid_ctx: context.sid_ctx(),
        }
    }

    fn as_request(&self) -> LookupRequest<'_> {
        // rustls checks the extended master secret on the session it is handed.
        LookupRequest::new(
            self.version,
            &self.id,
            self.sid_ctx,
            ExtendedMasterSecret::CheckedByStack,
        )
    }
}

/// A future polled inside [`ServerHandshake::observe`], so that the store's calls made while
/// it runs count as that handshake's.
struct Observed<'h, F> {
    handshake: &'h mut ServerHandshake,
    inner: F,
}

impl<F: Future + Unpin> Future for Observed<'_, F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        let inner = &mut this.inner;
        this.handshake.observe(|| Pin::new(inner).poll(cx))
    }
}

/// The connection while rustls reads the ClientHello: what it reads is also copied (up to
/// [`FIRST_FLIGHT_LIMIT`]), for our own parser.
struct Tee<IO> {
    inner: IO,
    copy: Option<Vec<u8>>,
}

impl<IO: AsyncRead + Unpin> AsyncRead for Tee<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let read = Pin::new(&mut this.inner).poll_read(cx, buf);
        let new = &buf.filled()[before..];
        if let Some(copy) = &mut this.copy {
            if copy.len() + new.len() <= FIRST_FLIGHT_LIMIT {
                copy.extend_from_slice(new);
            } else {
                // Longer than any ClientHello rustls takes: nothing to read it from.
                this.copy = None;
            }
        }
        read
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Tee<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
