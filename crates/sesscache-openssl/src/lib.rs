//! The session cache as the external session cache of an OpenSSL server or client built with
//! the `openssl` crate, the way nginx, Apache and HAProxy replace OpenSSL's internal cache.
//!
//! - [`install_server`] turns OpenSSL's internal store and lookup off and sets the
//!   new-session, get-session and remove-session callbacks and the session id context, so that
//!   sessions live in a [`Context`]'s cache. TLS 1.2 session ids and TLS 1.3 stateful tickets
//!   (OpenSSL issues those with [`SslOptions::NO_TICKET`], which it sets) both resume; a TLS 1.3
//!   ticket resumes at most once, as OpenSSL's own cache would have it.
//! - Each server handshake drives the cache's handshake rules ([`session_cache::Handshake`])
//!   by itself: OpenSSL's info callback starts it (`accept`) and ends it (`accept_good`, the
//!   resumption outcome, the automatic flush after every 255th good handshake), and the
//!   get- and new-session callbacks make its offers and issue its sessions. The application
//!   calls nothing per handshake; [`handshake_record`] tells what one saw.
//! - [`install_client`] keeps a client's sessions in a CLIENT-mode cache, keyed by server name,
//!   and [`resume`] sets the one for a server on the next connection.
//!
//! The cache keeps, beside each session it holds, the `SSL_SESSION` OpenSSL made for it (a
//! reference taken in the new-session callback, [`Session::attach_native`]), and the
//! get-session callback hands OpenSSL a new reference to that object on a hit (`copy = 0`:
//! the reference becomes OpenSSL's), as OpenSSL's own cache shares its sessions between
//! connections. The cache's reference goes when the cache's session does (removed, taken,
//! expired or evicted, and the last handle dropped). A session the cache holds without one
//! (fetched from the fleet's store, added by the application, a renewed copy) crosses as
//! OpenSSL's serialized form (`i2d_SSL_SESSION`, encoded by `session-der`) on its first hit,
//! and the session OpenSSL decodes is kept beside it from then on; a fetch that the cache
//! does not keep (`NO_INTERNAL_STORE`) crosses on every hit. The object handed out must
//! carry the session's version, id and secret, and none is shared with a context whose
//! internal store an application turned back on. The new-session callback's own reference
//! is OpenSSL's to drop (the `openssl` crate drops it when the callback returns), so every
//! reference has one owner, and nothing is freed twice or leaks.
//!
//! The callbacks hold a [`WeakContext`](ctx::WeakContext): the OpenSSL context never keeps the
//! cache alive, and once the [`Context`] is gone they behave as an empty cache.
//!
//! A server that embeds the adapter marks each connection's shutdown as done before it frees
//! the connection, once the handshake has succeeded, as nginx and `s_server` do:
//! `SslStream::set_shutdown(ShutdownState::SENT | ShutdownState::RECEIVED)`
//! (`SSL_set_shutdown`). OpenSSL removes the session of a connection freed before it sent a
//! close_notify (`SSL_free` calls `SSL_CTX_remove_session` unless `SSL_get_shutdown` has
//! `SSL_SENT_SHUTDOWN`), a rule TLS 1.1 and later no longer require, and the remove callback
//! then takes it out of the cache: without the mark, a client that hangs up first (`openssl
//! s_time`, a browser, a timeout) loses its session and its next connection is a full
//! handshake. OpenSSL neither writes after a shutdown sent nor reads after one received, so
//! the mark goes on when the connection ends (after the answer, whether or not close_notify
//! went out), not right after the handshake. `sesscache serve --backend openssl` does this.
//!
//! No panic unwinds into OpenSSL (which would abort the process): each callback the adapter
//! installs catches a panic of its own code or of the application's callbacks on the cache
//! that it runs (get-, take-, new- and remove-session), counts it in [`callback_panics`], logs
//! an error naming the callback (never a session id or secret), and carries on as a miss or a
//! no-op: the get-session callback returns no session, so the handshake is a full one, and the
//! new-session callback keeps nothing. The ex_data the adapter gives OpenSSL to free (its
//! callbacks' weak handles, each connection's handshake) drops nothing that can panic.
//!
//! Architecture invariant: the adapter reaches the cache only through its public API; its one
//! `unsafe` is in `ffi.rs`.

// `unsafe` only in `ffi`: one call that the `openssl` crate does not wrap, and the get-session
// callback's setter, which it marks unsafe.
#![deny(unsafe_code)]

mod accept;
#[allow(unsafe_code)] // each block with its reason
mod ffi;

pub use accept::{accept, enable_prefetch, prefetch};

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use ctx::{Context, WeakContext};
use openssl::ex_data::Index;
use openssl::ssl::{
    Ssl, SslContext, SslContextBuilder, SslOptions, SslRef, SslSession, SslSessionCacheMode,
    SslSessionRef, SslVersion,
};
use session_cache::{
    CacheMode, ExtendedMasterSecret, Handshake, HandshakeRecord, Lookup, LookupRequest, Miss,
};
use session_core::{ProtocolVersion, Session, SessionBuilder, SessionId};
use tracing::{debug, error, warn};

/// Installs `context`'s cache as the external session cache of a server context: OpenSSL's
/// internal cache off (`SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_INTERNAL`), stateful
/// TLS 1.3 tickets (`SSL_OP_NO_TICKET`), the context's session id context and default
/// session timeout (`SSL_CTX_set_timeout`, so that the sessions OpenSSL makes carry the cache's
/// timeout), the new-session, get-session and remove-session callbacks, and the info
/// callback (`SSL_CTX_set_info_callback`) that starts and ends each handshake's count, and
/// the ClientHello callback that lets [`accept`] fetch an offered session before the lookup.
///
/// It replaces an info callback set on the context before; each connection also gets the
/// adapter's as its own when its handshake starts, so a server-name callback that switches
/// it to another `SSL_CTX` leaves the count whole. An application that sets an info callback
/// of its own afterwards replaces the adapter's: its handshakes are then not counted (their
/// offers and sessions still follow the cache's rules, and every 255th new session flushes
/// expired ones). A renegotiation counts once it completes (a Finished of its own); one
/// OpenSSL refuses, or a HelloRequest the server sends, counts nothing. One that sets its
/// own ClientHello callback replaces the one [`accept`] needs.
#[doc(alias = "SSL_CTX_sess_set_get_cb")]
pub fn install_server(
    builder: &mut SslContextBuilder,
    context: &Context,
) -> Result<(), openssl::error::ErrorStack> {
    builder.set_session_cache_mode(SslSessionCacheMode::SERVER | SslSessionCacheMode::NO_INTERNAL);
    builder.set_options(SslOptions::NO_TICKET);
    builder.set_session_id_context(context.sid_ctx().as_bytes())?;
    ffi::set_timeout(builder, context.cache().timeout());
    count_handshakes(builder, context);
    let weak = context.downgrade();
    builder.set_new_session_callback(move |ssl: &mut SslRef, session: SslSession| {
        guarded(Callback::ServerNew, || {
            if let Some(context) = weak.upgrade() {
                store(&context, ssl, &session);
            }
        })
        .unwrap_or(())
    });
    let weak = context.downgrade();
    builder.set_remove_session_callback(move |_, session: &SslSessionRef| {
        guarded(Callback::ServerRemove, || {
            if let Some(context) = weak.upgrade() {
                forget(&context, session);
            }
        })
        .unwrap_or(())
    });
    let weak = context.downgrade();
    ffi::set_get_session_callback(builder, move |ssl: &mut SslRef, id: &[u8]| {
        guarded(Callback::ServerGet, || look_up(&weak, ssl, id)).flatten()
    });
    // Suspends the ClientHello of a connection on the async path ([`accept`]) while its
    // offer is fetched; any other connection goes on at once.
    builder.set_client_hello_callback(|ssl: &mut SslRef, _alert| {
        Ok(guarded(Callback::ClientHello, || accept::client_hello(ssl))
            .unwrap_or(openssl::ssl::ClientHelloResponse::SUCCESS))
    });
    Ok(())
}

/// Counts the handshakes of a server context in `context`'s statistics (`accept`,
/// `accept_good`, the resumption outcomes) and runs the cache's automatic flush after every
/// 255th good handshake, through OpenSSL's info callback, without installing the cache as
/// the session cache: for a server that resumes with OpenSSL's stateless tickets and still
/// exports the counts. [`install_server`] does this too.
pub fn count_handshakes(builder: &mut SslContextBuilder, context: &Context) {
    if let Some(index) = context_index() {
        builder.set_ex_data(index, context.downgrade());
        ffi::set_info_callback(builder);
    }
}

/// Panics caught at the boundary of the adapter's OpenSSL callbacks, in the whole process.
static CALLBACK_PANICS: AtomicU64 = AtomicU64::new(0);

/// How many panics the adapter's OpenSSL callbacks have caught in this process: panics of the
/// adapter's own code or of the application's callbacks on the [`Context`]'s cache, which run
/// inside OpenSSL's. Each one made that callback a miss or a no-op instead of unwinding into C
/// (which aborts the process).
pub fn callback_panics() -> u64 {
    CALLBACK_PANICS.load(Ordering::Relaxed)
}

/// One of the callbacks the adapter gives OpenSSL, as a caught panic's event names it.
#[derive(Debug, Clone, Copy)]
enum Callback {
    ServerNew,
    ServerGet,
    ServerRemove,
    ClientNew,
    Info,
    ClientHello,
}

impl Callback {
    fn name(self) -> &'static str {
        match self {
            Self::ServerNew => "server new-session",
            Self::ServerGet => "server get-session",
            Self::ServerRemove => "server remove-session",
            Self::ClientNew => "client new-session",
            Self::Info => "info",
            Self::ClientHello => "client hello",
        }
    }
}

/// Runs `f` inside the OpenSSL callback `callback`, which C calls and which must not unwind:
/// `f`'s value, or `None` if it panicked (counted in [`callback_panics`] and logged with the
/// callback's name only; the panic's message may carry anything the panicking code held, so
/// it is not logged).
///
/// `AssertUnwindSafe` is sound here: a panic stops `f` partway, and what it may leave
/// half-done is the cache's state, which is consistent between the cache's operations (its
/// callbacks run with no lock and no pin held; its locks carry on through poisoning), the
/// handshake record, which only counts, and OpenSSL's objects, which `f` changes only through
/// whole OpenSSL calls, none of which unwinds. The caller then treats the callback as a miss
/// or a no-op.
fn guarded<T>(callback: Callback, f: impl FnOnce() -> T) -> Option<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => Some(value),
        Err(payload) => {
            CALLBACK_PANICS.fetch_add(1, Ordering::Relaxed);
            error!(
                callback = callback.name(),
                "a panic in an OpenSSL callback was caught: treated as a miss or a no-op"
            );
            drop_payload(payload);
            None
        }
    }
}

/// Drops a caught panic's payload, whose own `Drop` may panic as well: that second payload
/// is leaked, so that nothing unwinds out of the callback.
fn drop_payload(payload: Box<dyn Any + Send>) {
    if let Err(again) = catch_unwind(AssertUnwindSafe(|| drop(payload))) {
        std::mem::forget(again);
    }
}

/// What the adapter saw of the handshake on `ssl`: its offers and what the cache made of
/// them, the sessions it issued and, once it has finished, its outcome (counted in the
/// context's [`Resumptions`](session_cache::Resumptions) by then). `None` for a connection
/// the adapter's callbacks never saw.
pub fn handshake_record(ssl: &SslRef) -> Option<HandshakeRecord> {
    let index = connection_index()?;
    ssl.ex_data(index)
        .map(|connection| connection.handshake.record().clone())
}

/// What each server connection carries (`SSL_get_ex_data`): its handshake, and the context
/// it began on (the connection's `SSL_CTX` may change during the handshake, as a server-name
/// callback switches it). OpenSSL's ex_data free function drops it; a handshake holds only
/// ids and counts, so that drop cannot panic.
struct Connection {
    context: WeakContext,
    handshake: Handshake,
    /// The server's Finished message of the last handshake counted on this connection:
    /// OpenSSL reports a handshake's end also for a renegotiation it refused or for a
    /// HelloRequest it sent, and only a new Finished means a handshake completed.
    completed: Option<Vec<u8>>,
}

/// The index of what each server connection carries.
fn connection_index() -> Option<Index<Ssl, Connection>> {
    static INDEX: OnceLock<Option<Index<Ssl, Connection>>> = OnceLock::new();
    *INDEX.get_or_init(|| Ssl::new_ex_index().ok())
}

/// The index of the context a server `SSL_CTX` belongs to, for the info callback.
fn context_index() -> Option<Index<SslContext, WeakContext>> {
    static INDEX: OnceLock<Option<Index<SslContext, WeakContext>>> = OnceLock::new();
    *INDEX.get_or_init(|| SslContext::new_ex_index().ok())
}

/// Runs `f` on the handshake of `ssl`, making an untracked one if the info callback did not
/// start one (an application replaced it).
fn with_handshake<T>(
    ssl: &mut SslRef,
    context: &Context,
    f: impl FnOnce(&mut Handshake) -> T,
) -> Option<T> {
    let index = connection_index()?;
    if ssl.ex_data(index).is_none() {
        ssl.set_ex_data(
            index,
            Connection {
                context: context.downgrade(),
                handshake: Handshake::untracked_server(),
                completed: None,
            },
        );
    }
    ssl.ex_data_mut(index).map(|c| f(&mut c.handshake))
}

/// OpenSSL's info callback said a server handshake started or ended (called through
/// `ffi.rs`).
fn handshake_event(ssl: &mut SslRef, event: ffi::HandshakeEvent) {
    if !ssl.is_server() {
        return;
    }
    guarded(Callback::Info, || match event {
        ffi::HandshakeEvent::Start => start(ssl),
        ffi::HandshakeEvent::Done => done(ssl),
    });
}

/// A handshake starts on `ssl`: counted as `accept`, or `accept_renegotiate` on a connection
/// that has completed one before. The connection gets the info callback of its own, so that
/// its end is reported even if a server-name callback switches it to an `SSL_CTX` without
/// the adapter.
fn start(ssl: &mut SslRef) {
    let (Some(index), Some(contexts)) = (connection_index(), context_index()) else {
        return;
    };
    let Some(context) = ssl
        .ssl_context()
        .ex_data(contexts)
        .and_then(WeakContext::upgrade)
    else {
        return;
    };
    let cache = context.cache();
    let completed = ssl.ex_data(index).and_then(|c| c.completed.clone());
    let handshake = if completed.is_some() {
        Handshake::accept_renegotiation(cache)
    } else {
        Handshake::accept(cache)
    };
    ssl.set_ex_data(
        index,
        Connection {
            context: context.downgrade(),
            handshake,
            completed,
        },
    );
    ffi::set_connection_info_callback(ssl);
}

/// The handshake on `ssl` succeeded: counted, with its outcome, in the context it began on,
/// if it completed (a Finished message of its own: not a refused renegotiation, not the
/// server's HelloRequest).
fn done(ssl: &mut SslRef) {
    let resumed = ssl.session_reused();
    let version = ssl.version2().and_then(wire_version);
    let mut finished = [0u8; 64];
    let n = ssl.finished(&mut finished).min(finished.len());
    let Some(index) = connection_index() else {
        return;
    };
    let Some(connection) = ssl.ex_data_mut(index) else {
        return;
    };
    if n == 0 || connection.completed.as_deref() == Some(&finished[..n]) {
        return;
    }
    connection.completed = Some(finished[..n].to_vec());
    let Some(context) = connection.context.upgrade() else {
        return;
    };
    if let Some(version) = version {
        connection.handshake.set_version(version);
    }
    connection.handshake.finish(context.cache(), resumed);
}

/// A new session OpenSSL established, unless OpenSSL marked it not resumable: issued by the
/// handshake (cached as the context's mode says, then the cache's new-session callback).
fn store(context: &Context, ssl: &mut SslRef, session: &SslSessionRef) {
    let cache = context.cache();
    if !cache.mode().contains(CacheMode::SERVER) || !ffi::is_resumable(session) {
        return;
    }
    let Some(ours) = decode(session) else { return };
    // The cache's own reference to OpenSSL's session, handed out again on each hit; not
    // from a context whose internal cache holds it too.
    if !ffi::keeps_internal_store(ssl) {
        let _ = ours.attach_native(Box::new(session.to_owned()));
    }
    let callback_panicked = with_handshake(ssl, context, |h| {
        let before = h.record().issued_count();
        // The handshake notes the session after the add and before the new-session
        // callback: a panic after the note is the callback's, one before it the add's (an
        // evicted session's remove callback), which leaves the new session cached and sound.
        guarded(Callback::ServerNew, || h.issued(cache, &ours)).is_none()
            && h.record().issued_count() > before
    });
    if callback_panicked == Some(true) {
        // The application's new-session callback panicked: the session is not kept, here or
        // wherever that callback had begun to keep it (a removal reaches every tier).
        if cache.contains(&ours) {
            cache.remove(&ours);
        }
    }
}

/// OpenSSL removed a session (a connection broke off, or it found the session expired):
/// remove what the cache holds under its key.
fn forget(context: &Context, session: &SslSessionRef) {
    let Some(version) = wire_version(session.protocol_version()) else {
        return;
    };
    let cache = context.cache();
    if let Some(cached) = cache.get(version, session.id()) {
        cache.remove(&cached);
    }
}

/// The get-session callback: the handshake's offer (a lookup, or for a TLS 1.3 ticket a
/// single-use take, so that it resumes once however many connections offer it at once).
fn look_up(weak: &WeakContext, ssl: &mut SslRef, id: &[u8]) -> Option<SslSession> {
    let context = weak.upgrade()?;
    let version = ssl.version2().and_then(wire_version)?;
    let cache = context.cache();
    let outcome = with_handshake(ssl, &context, |h| {
        // OpenSSL calls back once for every PSK identity of a TLS 1.3 ClientHello; the
        // handshake tells the first from the rest.
        let request = LookupRequest {
            first_offer: h.record().offers() == 0,
            // OpenSSL checks the client's extended-master-secret flag against the session's
            // after this callback returns (`ssl_get_prev_session`).
            ..LookupRequest::new(
                version,
                id,
                context.sid_ctx(),
                ExtendedMasterSecret::CheckedByStack,
            )
        };
        // A panic in the application's get- or take-session callback: the external cache
        // could not answer, so the handshake is a full one.
        guarded(Callback::ServerGet, || h.offer(cache, request)).unwrap_or_else(|| {
            h.offer_unanswered(&request);
            Lookup::Miss(Miss::StoreUnavailable)
        })
    })?;
    let Lookup::Hit(session) = outcome else {
        return None;
    };
    if ffi::keeps_internal_store(ssl) {
        // OpenSSL links what this callback returns into its internal cache: a fresh copy.
        return encode(&session);
    }
    shared(&session)
}

/// A new reference to OpenSSL's session for the cache's `session`: the one kept beside it,
/// or, for a session kept without one (from the fleet's store, or added by the
/// application, a renewed copy), a fresh one decoded from its serialized form, kept beside it
/// from then on.
fn shared(session: &Session) -> Option<SslSession> {
    if let Some(kept) = session
        .native()
        .and_then(|native| native.downcast_ref::<SslSession>())
        .filter(|kept| describes(kept, session))
    {
        return Some(kept.clone());
    }
    let fresh = encode(session)?;
    let _ = session.attach_native(Box::new(fresh.clone()));
    Some(fresh)
}

/// Whether OpenSSL's `kept` carries `session`'s key material: its version, id and secret.
/// Anyone who holds a session may attach an object to it ([`Session::attach_native`]); the
/// one handed to OpenSSL must be the session the cache checked.
fn describes(kept: &SslSessionRef, session: &Session) -> bool {
    let mut key = zeroize::Zeroizing::new([0u8; 64]);
    let n = kept.master_key(&mut key[..]);
    wire_version(kept.protocol_version()) == Some(session.version())
        && kept.id() == session.id().as_bytes()
        && kept.master_key_len() == n
        && key[..n] == *session.master_key()
}

/// Installs `context`'s cache as a client's session cache: OpenSSL's internal cache off, and
/// a new-session callback that keeps each session under its server's name (the SNI the
/// connection sent). [`resume`] offers it on the next connection to that server.
pub fn install_client(builder: &mut SslContextBuilder, context: &Context) {
    builder.set_session_cache_mode(SslSessionCacheMode::CLIENT | SslSessionCacheMode::NO_INTERNAL);
    let weak = context.downgrade();
    builder.set_new_session_callback(move |ssl: &mut SslRef, session: SslSession| {
        guarded(Callback::ClientNew, || {
            let Some(context) = weak.upgrade() else {
                return;
            };
            let Some(name) = ssl.servername(openssl::ssl::NameType::HOST_NAME) else {
                debug!("a client session without a server name is not cached");
                return;
            };
            if ffi::is_resumable(&session) {
                keep_for(&context, name, &session);
            }
        })
        .unwrap_or(())
    });
}

/// The key a client's session for `server` is kept under.
fn client_key(server: &str) -> SessionId {
    ctx::client_session_id(b"openssl", server)
}

/// Keeps `session` as the one to offer `server` next: a carrier session under the server's
/// key, with OpenSSL's encoding of the session as its application data.
fn keep_for(context: &Context, server: &str, session: &SslSessionRef) {
    let Some(ours) = decode(session) else { return };
    let Ok(der) = session_der::to_der(&ours) else {
        return;
    };
    let carrier = SessionBuilder::new(ProtocolVersion::TLS1_3, ours.time())
        .id(client_key(server))
        .timeout(ours.timeout())
        .app_data(Some(std::sync::Arc::new(ClientEntry {
            server: server.to_owned(),
            der,
        })))
        .build();
    let _ = context.cache().add(&carrier);
}

/// What a client keeps for one server.
struct ClientEntry {
    server: String,
    der: zeroize::Zeroizing<Vec<u8>>,
}

/// Sets the session kept for `server` on `ssl` (`SSL_set_session`), so that the connection
/// offers it, if one is kept and has not expired; whether one was set. A TLS 1.3 session is
/// handed out once (a ticket resumes once); a TLS 1.2 one stays for further connections.
#[doc(alias = "SSL_set_session")]
pub fn resume(ssl: &mut SslRef, context: &Context, server: &str) -> bool {
    let cache = context.cache();
    let key = client_key(server);
    let Some(carrier) = cache.get(ProtocolVersion::TLS1_3, key.as_bytes()) else {
        return false;
    };
    if carrier.is_expired_at(cache.now()) {
        cache.remove(&carrier);
        return false;
    }
    let Some(entry) = carrier
        .app_data()
        .and_then(|data| data.downcast_ref::<ClientEntry>())
        .filter(|entry| entry.server == server)
    else {
        return false;
    };
    let Ok(session) = SslSession::from_der(&entry.der) else {
        return false;
    };
    if session.protocol_version() == SslVersion::TLS1_3 {
        cache.remove(&carrier);
    }
    ffi::set_session(ssl, &session)
}

/// OpenSSL's session, decoded into the cache's form.
fn decode(session: &SslSessionRef) -> Option<Session> {
    let der = zeroize::Zeroizing::new(session.to_der().ok()?);
    match session_der::from_der(&der) {
        Ok(ours) => Some(ours),
        Err(err) => {
            warn!(error = %err, "OpenSSL's session could not be decoded; not cached");
            None
        }
    }
}

/// The cache's session, encoded as OpenSSL reads it, as a fresh OpenSSL session that belongs
/// to no context.
fn encode(session: &Session) -> Option<SslSession> {
    let der = session_der::to_der(session).ok()?;
    SslSession::from_der(&der).ok()
}

/// OpenSSL's protocol version as the cache spells it.
fn wire_version(version: SslVersion) -> Option<ProtocolVersion> {
    let wire = [
        (SslVersion::TLS1, 0x0301),
        (SslVersion::TLS1_1, 0x0302),
        (SslVersion::TLS1_2, 0x0303),
        (SslVersion::TLS1_3, 0x0304),
    ]
    .into_iter()
    .find(|(v, _)| *v == version)?
    .1;
    ProtocolVersion::new(wire).ok()
}
