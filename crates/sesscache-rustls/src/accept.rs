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
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_rustls::server::TlsStream;
use tokio_rustls::StartHandshake;

use crate::ServerHandshake;

/// The most of the first flight kept to read the ClientHello from (rustls refuses a larger
/// ClientHello anyway).
const FIRST_FLIGHT_LIMIT: usize = 1 << 16;

/// Accepts a TLS connection on `io` with `config` (whose `session_storage` is a
/// [`ServerSessions`](crate::ServerSessions) over `context`), as a tokio server does, without
/// ever blocking the runtime on the fleet's store:
///
/// 1. reads the client's first flight with rustls's [`Acceptor`], keeping a copy of the bytes;
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
    mut io: IO,
) -> io::Result<(TlsStream<IO>, HandshakeRecord)>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let mut handshake = ServerHandshake::new(context);
    let mut acceptor = Acceptor::default();
    let mut first_flight = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let accepted = loop {
        let n = io.read(&mut buf).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if first_flight.len() + n <= FIRST_FLIGHT_LIMIT {
            first_flight.extend_from_slice(&buf[..n]);
        }
        let mut rest = &buf[..n];
        while !rest.is_empty() {
            if acceptor.read_tls(&mut rest)? == 0 {
                break;
            }
        }
        match acceptor.accept() {
            Ok(Some(accepted)) => break accepted,
            Ok(None) => {}
            Err((err, mut alert)) => {
                let mut out = Vec::new();
                let _ = alert.write_all(&mut out);
                let _ = io.write_all(&out).await;
                return Err(io::Error::new(io::ErrorKind::InvalidData, err));
            }
        }
    };
    if let Some(request) = offered(&first_flight, policy, context) {
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
