//! The session cache as the external session cache of an OpenSSL server or client built with
//! the `openssl` crate, the way nginx, Apache and HAProxy replace OpenSSL's internal cache.
//!
//! - [`install_server`] turns OpenSSL's internal store and lookup off and sets the
//!   new-session, get-session and remove-session callbacks and the session id context, so that
//!   sessions live in a [`Context`]'s cache. TLS 1.2 session ids and TLS 1.3 stateful tickets
//!   (OpenSSL issues those with [`SslOptions::NO_TICKET`], which it sets) both resume; a TLS 1.3
//!   ticket resumes at most once, as OpenSSL's own cache would have it.
//! - [`finish_handshake`], called after each accepted handshake, counts whether it resumed
//!   and why not in the cache's [`Resumptions`](session_cache::Resumptions).
//! - [`install_client`] keeps a client's sessions in a CLIENT-mode cache, keyed by server name,
//!   and [`resume`] sets the one for a server on the next connection.
//!
//! Sessions cross as OpenSSL's own serialized form (`i2d_SSL_SESSION`, decoded and encoded by
//! `session-der`), so the cache never holds an OpenSSL object. The reference counts follow from
//! that: the new-session callback's reference is OpenSSL's to drop (the `openssl` crate drops
//! it when the callback returns), and the get-session callback hands OpenSSL a fresh session
//! decoded from DER whose one reference becomes OpenSSL's (`copy = 0`). Nothing is shared, so
//! nothing can be freed twice or leak.
//!
//! The callbacks hold a [`WeakContext`](ctx::WeakContext): the OpenSSL context never keeps the
//! cache alive, and once the [`Context`] is gone they behave as an empty cache.
//!
//! No panic unwinds into OpenSSL (which would abort the process): each callback the adapter
//! installs catches a panic of its own code or of the application's callbacks on the cache
//! that it runs (get-, take-, new- and remove-session), counts it in [`callback_panics`], logs
//! an error naming the callback (never a session id or secret), and carries on as a miss or a
//! no-op: the get-session callback returns no session, so the handshake is a full one, and the
//! new-session callback keeps nothing. The ex_data the adapter gives OpenSSL to free (its
//! callbacks' weak handles, each connection's handshake record) drops nothing that can panic.
//!
//! Architecture invariant: the adapter reaches the cache only through its public API; its one
//! `unsafe` is in `ffi.rs`.

// `unsafe` only in `ffi`: one call that the `openssl` crate does not wrap, and the get-session
// callback's setter, which it marks unsafe.
#![deny(unsafe_code)]

#[allow(unsafe_code)] // each block with its reason
mod ffi;

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use ctx::{Context, WeakContext};
use openssl::ex_data::Index;
use openssl::ssl::{
    Ssl, SslContextBuilder, SslOptions, SslRef, SslSession, SslSessionCacheMode, SslSessionRef,
    SslVersion,
};
use session_cache::{CacheMode, HandshakeRecord, Lookup, LookupRequest, Miss};
use session_core::{ProtocolVersion, Session, SessionBuilder, SessionId};
use tracing::{debug, error, warn};

/// Installs `context`'s cache as the external session cache of a server context: OpenSSL's
/// internal cache off (`SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_INTERNAL`), stateful
/// TLS 1.3 tickets (`SSL_OP_NO_TICKET`), the context's session id context and default
/// session timeout (`SSL_CTX_set_timeout`, so that the sessions OpenSSL makes carry the cache's
/// timeout), and the new-session, get-session and remove-session callbacks.
#[doc(alias = "SSL_CTX_sess_set_get_cb")]
pub fn install_server(
    builder: &mut SslContextBuilder,
    context: &Context,
) -> Result<(), openssl::error::ErrorStack> {
    builder.set_session_cache_mode(SslSessionCacheMode::SERVER | SslSessionCacheMode::NO_INTERNAL);
    builder.set_options(SslOptions::NO_TICKET);
    builder.set_session_id_context(context.sid_ctx().as_bytes())?;
    ffi::set_timeout(builder, context.cache().timeout());
    let weak = context.downgrade();
    builder.set_new_session_callback(move |ssl: &mut SslRef, session: SslSession| {
        guarded(Callback::ServerNew, || {
            if let Some(context) = weak.upgrade() {
                if let Some(ours) = store(&context, &session) {
                    note(ssl, |record| record.issued(&ours));
                }
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
    Ok(())
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
}

impl Callback {
    fn name(self) -> &'static str {
        match self {
            Self::ServerNew => "server new-session",
            Self::ServerGet => "server get-session",
            Self::ServerRemove => "server remove-session",
            Self::ClientNew => "client new-session",
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

/// Counts the handshake on `ssl`, now finished, in the context's cache's
/// [`Resumptions`](session_cache::Resumptions) (resumed, or why not: what the get-session
/// callback found, and whether OpenSSL resumed it), once however often it is called, and
/// returns what the adapter saw of it: the outcome, the offered id and the sessions issued.
///
/// Call it after each server handshake (`SSL_accept`) that succeeded.
pub fn finish_handshake(ssl: &SslRef, context: &Context) -> HandshakeRecord {
    let resumed = ssl.session_reused();
    let version = ssl.version2().and_then(wire_version);
    let finish = |record: &mut HandshakeRecord| {
        if let Some(version) = version {
            record.set_version(version);
        }
        record.finish(context.cache(), resumed);
        record.clone()
    };
    match record_index().and_then(|index| ssl.ex_data(index)) {
        Some(record) => finish(&mut record.lock().unwrap_or_else(|e| e.into_inner())),
        // Nothing offered and nothing issued: the callbacks never ran. Counted here, once
        // per call: OpenSSL gives no place to keep the record on a connection seen only now.
        None => finish(&mut HandshakeRecord::new()),
    }
}

/// The record each server connection carries (`SSL_get_ex_data`). OpenSSL's ex_data free
/// function drops it; a record holds only ids and counts, so that drop cannot panic.
type Slot = Mutex<HandshakeRecord>;

/// The index of the handshake record each server connection carries.
fn record_index() -> Option<Index<Ssl, Slot>> {
    static INDEX: OnceLock<Option<Index<Ssl, Slot>>> = OnceLock::new();
    *INDEX.get_or_init(|| Ssl::new_ex_index().ok())
}

/// Notes something in the record of the handshake on `ssl`, making the record if it has none.
fn note(ssl: &mut SslRef, f: impl FnOnce(&mut HandshakeRecord)) {
    let Some(index) = record_index() else { return };
    match ssl.ex_data_mut(index) {
        Some(record) => f(record.get_mut().unwrap_or_else(|e| e.into_inner())),
        None => {
            let mut record = HandshakeRecord::new();
            f(&mut record);
            ssl.set_ex_data(index, Mutex::new(record));
        }
    }
}

/// A new session OpenSSL established: cached (as the context's mode says) unless OpenSSL
/// marked it not resumable, then the cache's new-session callback runs. Returns the cache's
/// form of the session, if it kept one.
fn store(context: &Context, session: &SslSessionRef) -> Option<Session> {
    let cache = context.cache();
    let mode = cache.mode();
    if !mode.contains(CacheMode::SERVER) || !ffi::is_resumable(session) {
        return None;
    }
    let ours = decode(session)?;
    if !mode.contains(CacheMode::NO_INTERNAL_STORE) {
        // An OpenSSL session always has an id here (OpenSSL does not call back otherwise).
        let _ = cache.add(&ours);
    }
    if guarded(Callback::ServerNew, || cache.notify_new_session(&ours)).is_none() {
        // The application's new-session callback panicked: the session is not kept, here or
        // wherever that callback had begun to keep it (a removal reaches every tier).
        if cache.contains(&ours) {
            cache.remove(&ours);
        }
        return None;
    }
    Some(ours)
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

/// The get-session callback: the cache's lookup, as OpenSSL's own would count it; a TLS 1.3
/// ticket is taken out in the same step, so it resumes once however many connections offer
/// it at once.
fn look_up(weak: &WeakContext, ssl: &mut SslRef, id: &[u8]) -> Option<SslSession> {
    let context = weak.upgrade()?;
    let version = ssl.version2().and_then(wire_version)?;
    let cache = context.cache();
    // OpenSSL calls back once for every PSK identity of a TLS 1.3 ClientHello; the record
    // on the connection tells the first from the rest.
    let first_offer = record_index()
        .and_then(|index| ssl.ex_data(index))
        .is_none_or(|record| {
            record
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .next_is_first_offer()
        });
    let request = LookupRequest {
        version,
        id,
        sid_ctx: context.sid_ctx(),
        // OpenSSL checks the client's extended-master-secret flag against the session's
        // after this callback returns (`ssl_get_prev_session`).
        extended_master_secret: None,
        first_offer,
    };
    // A panic in the application's get- or take-session callback: the external cache could
    // not answer, so the handshake is a full one.
    let outcome = guarded(Callback::ServerGet, || {
        if version.is_tls13_or_later() {
            cache.lookup_take(&request)
        } else {
            cache.lookup(&request)
        }
    })
    .unwrap_or(Lookup::Miss(Miss::StoreUnavailable));
    note(ssl, |record| record.looked_up(version, id, &outcome));
    let Lookup::Hit(session) = outcome else {
        return None;
    };
    encode(&session)
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

/// The key a client's session for `server` is kept under: a hash of the name, as a session
/// id (names are longer than ids may be).
fn client_key(server: &str) -> SessionId {
    let digest = openssl::sha::sha256(server.as_bytes());
    SessionId::new(&digest).expect("a SHA-256 digest is 32 bytes")
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
