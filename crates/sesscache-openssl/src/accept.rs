//! The asynchronous accept path for tokio servers on OpenSSL: the ClientHello callback
//! suspends the handshake (`SSL_CLIENT_HELLO_RETRY`) while the session the client offers is
//! fetched from the fleet's store on the runtime; the handshake then resumes, and the
//! get-session callback answers from memory. No runtime worker waits on a remote store.

use std::pin::Pin;
use std::sync::{Mutex, OnceLock};

use ctx::{Context, WeakContext};
use openssl::ex_data::Index;
use openssl::ssl::{ClientHelloResponse, ErrorCode, Ssl, SslRef};
use session_cache::{ExtendedMasterSecret, HandshakeRecord, LookupRequest};
use session_core::ProtocolVersion;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_openssl::SslStream;

use crate::ffi;

/// Where a connection on the async path is: the ClientHello callback reads it.
enum Prefetch {
    /// Not read yet: the callback suspends the handshake once, with what to fetch into this
    /// context's cache.
    Wanted(WeakContext),
    /// The callback found this to fetch; the accept loop takes it.
    Pending(Offered),
    /// Fetched, or nothing to fetch: the handshake goes on.
    Done,
}

/// A lookup the accept path prefetches.
struct Offered {
    version: ProtocolVersion,
    id: Vec<u8>,
}

/// The index of each async connection's [`Prefetch`] state. Blocking servers' connections
/// have none, so their ClientHello callback never suspends them.
fn prefetch_index() -> Option<Index<Ssl, Mutex<Prefetch>>> {
    static INDEX: OnceLock<Option<Index<Ssl, Mutex<Prefetch>>>> = OnceLock::new();
    *INDEX.get_or_init(|| Ssl::new_ex_index().ok())
}

/// The ClientHello callback [`install_server`](crate::install_server) sets: on a connection
/// of the async path, the first call records what the client offers and suspends the
/// handshake; any other call (a blocking server's, the call after the fetch, a second
/// ClientHello after a HelloRetryRequest) lets it go on.
pub(crate) fn client_hello(ssl: &mut SslRef) -> ClientHelloResponse {
    let Some(index) = prefetch_index() else {
        return ClientHelloResponse::SUCCESS;
    };
    let context = match ssl.ex_data(index).map(|state| match &*lock(state) {
        Prefetch::Wanted(context) => context.upgrade(),
        _ => None,
    }) {
        Some(Some(context)) => context,
        _ => return ClientHelloResponse::SUCCESS,
    };
    // Suspended only if the prefetch may fetch something: not for a session the cache holds,
    // nor for a cache without a fleet tier.
    let offered = offered(ssl).filter(|offered| {
        context.cache().wants_prefetch(&LookupRequest::new(
            offered.version,
            &offered.id,
            context.sid_ctx(),
            ExtendedMasterSecret::CheckedByStack,
        ))
    });
    let Some(state) = ssl.ex_data(index) else {
        return ClientHelloResponse::SUCCESS;
    };
    let mut state = lock(state);
    match offered {
        Some(offered) => {
            *state = Prefetch::Pending(offered);
            ClientHelloResponse::RETRY
        }
        None => {
            *state = Prefetch::Done;
            ClientHelloResponse::SUCCESS
        }
    }
}

fn lock(state: &Mutex<Prefetch>) -> std::sync::MutexGuard<'_, Prefetch> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// What OpenSSL's get-session callback will be asked for this ClientHello: the first PSK
/// identity when TLS 1.3 is negotiated (the only one a shared store is asked about; a TLS 1.3
/// client's legacy session id is random and never fetched), otherwise a non-empty session id
/// (the adapter's servers issue stateful tickets only: `SSL_OP_NO_TICKET`).
fn offered(ssl: &SslRef) -> Option<Offered> {
    let client_tls13 = ffi::client_hello_extension(ssl, sesscache_hello::SUPPORTED_VERSIONS)
        .and_then(|body| sesscache_hello::supported_versions(body).ok())
        .is_some_and(|versions| versions.contains(&0x0304));
    if client_tls13 && ffi::allows_tls13(ssl) {
        let data = ffi::client_hello_extension(ssl, sesscache_hello::PRE_SHARED_KEY)?;
        let first = sesscache_hello::pre_shared_key(data).ok()?.next()?;
        return Some(Offered {
            version: ProtocolVersion::TLS1_3,
            id: first.identity().to_vec(),
        });
    }
    let id = ssl.client_hello_session_id().filter(|id| !id.is_empty())?;
    Some(Offered {
        version: ProtocolVersion::TLS1_2,
        id: id.to_vec(),
    })
}

/// Opts a server connection into the asynchronous path: its ClientHello callback suspends
/// the handshake once (`SSL_get_error` says `SSL_ERROR_WANT_CLIENT_HELLO_CB`) with what the
/// client offers, for [`prefetch`] to fetch before the handshake goes on. For a server that
/// drives OpenSSL's handshake itself; [`accept`] does both for a tokio-openssl stream. The
/// handshake is suspended only when the prefetch may fetch something
/// ([`SessionCache::wants_prefetch`](session_cache::SessionCache::wants_prefetch)).
pub fn enable_prefetch(ssl: &mut SslRef, context: &Context) {
    if let Some(index) = prefetch_index() {
        ssl.set_ex_data(index, Mutex::new(Prefetch::Wanted(context.downgrade())));
    }
}

/// What to do once the handshake on `ssl` stopped with `SSL_ERROR_WANT_CLIENT_HELLO_CB`: the
/// cache's [`prefetch`](session_cache::SessionCache::prefetch) of what the client offers
/// (ready at once if it offers nothing to fetch). Await it, then go on with the handshake.
pub fn prefetch(
    context: &Context,
    ssl: &SslRef,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let pending = prefetch_index()
        .and_then(|index| ssl.ex_data(index))
        .map(|state| std::mem::replace(&mut *lock(state), Prefetch::Done));
    let fetch = match pending {
        Some(Prefetch::Pending(offered)) => {
            let request = LookupRequest::new(
                offered.version,
                &offered.id,
                context.sid_ctx(),
                // OpenSSL checks the extended master secret after the lookup.
                ExtendedMasterSecret::CheckedByStack,
            );
            Some(context.cache().prefetch(&request))
        }
        _ => None,
    };
    async move {
        if let Some(fetch) = fetch {
            fetch.await;
        }
    }
}

/// Accepts a TLS connection on `io` with `ssl` (made from a context that
/// [`install_server`](crate::install_server) set up over `context`), as a tokio server does,
/// without ever blocking the runtime on the fleet's store: the ClientHello callback suspends
/// the handshake, the offered session is fetched by the cache's
/// [`prefetch`](session_cache::SessionCache::prefetch) (the fleet tier's fetch, or its claim
/// of a ticket, on the tier's own threads; concurrent prefetches of one key share one store
/// call; a store that cannot answer makes a full handshake at once), and the handshake
/// resumes. Returns the stream and the handshake's record (the adapter counts the handshake
/// itself). Bound the whole call with one deadline (`tokio::time::timeout`).
///
/// OpenSSL removes the session of a connection freed without a shutdown sent, a rule TLS 1.1
/// and later do not need: a client that hangs up first would lose its session. Shut the
/// stream down, or mark it as nginx and `s_server` do
/// (`set_shutdown(ShutdownState::SENT | ShutdownState::RECEIVED)`) before dropping it.
pub async fn accept<S>(
    context: &Context,
    mut ssl: Ssl,
    io: S,
) -> Result<(SslStream<S>, HandshakeRecord), openssl::ssl::Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    enable_prefetch(&mut ssl, context);
    let mut stream = SslStream::new(ssl, io).map_err(openssl::ssl::Error::from)?;
    loop {
        match Pin::new(&mut stream).accept().await {
            Ok(()) => break,
            Err(err) if err.code() == ErrorCode::WANT_CLIENT_HELLO_CB => {
                prefetch(context, stream.ssl()).await;
            }
            Err(err) => return Err(err),
        }
    }
    let record = crate::handshake_record(stream.ssl()).unwrap_or_default();
    Ok((stream, record))
}
