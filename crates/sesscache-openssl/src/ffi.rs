//! The adapter's `unsafe`: the OpenSSL calls the `openssl` crate does not wrap (the info
//! callback among them), and two it marks unsafe, each for a reason that holds here.

use std::os::raw::{c_int, c_long};

use foreign_types::ForeignTypeRef;
use openssl::ssl::{SslContextBuilder, SslRef, SslSession, SslSessionRef};

/// The info callback's signature (`SSL_CTX_set_info_callback`).
type InfoCallback = unsafe extern "C" fn(ssl: *const openssl_sys::SSL, kind: c_int, value: c_int);

extern "C" {
    /// OpenSSL 1.1.1 and later; libssl is linked through `openssl-sys`.
    fn SSL_SESSION_is_resumable(session: *const openssl_sys::SSL_SESSION) -> c_int;
    fn SSL_CTX_set_timeout(ctx: *mut openssl_sys::SSL_CTX, seconds: c_long) -> c_long;
    fn SSL_CTX_set_info_callback(ctx: *mut openssl_sys::SSL_CTX, callback: Option<InfoCallback>);
    fn SSL_set_info_callback(ssl: *mut openssl_sys::SSL, callback: Option<InfoCallback>);
    /// A function in OpenSSL 1.1.1 and later (`unsigned long` there, `uint64_t` in 3.x: 64
    /// bits on the targets this builds for).
    fn SSL_get_options(ssl: *const openssl_sys::SSL) -> u64;
}

/// `SSL_CB_HANDSHAKE_START`: a handshake (or a TLS 1.2 renegotiation) starts.
const SSL_CB_HANDSHAKE_START: c_int = 0x10;
/// `SSL_CB_HANDSHAKE_DONE`: a handshake has succeeded.
const SSL_CB_HANDSHAKE_DONE: c_int = 0x20;

/// What the info callback reports that the adapter acts on.
#[derive(Debug, Clone, Copy)]
pub(crate) enum HandshakeEvent {
    Start,
    Done,
}

/// `SSL_CTX_set_info_callback`: every connection of the context reports its handshakes'
/// start and end to [`crate::handshake_event`].
pub(crate) fn set_info_callback(builder: &mut SslContextBuilder) {
    // SAFETY: `builder` owns a live SSL_CTX, borrowed mutably for this call; the callback is
    // a plain function that lives for the whole program.
    unsafe { SSL_CTX_set_info_callback(builder.as_ptr(), Some(info_callback)) };
}

/// `SSL_set_info_callback`: the connection reports its handshakes to
/// [`crate::handshake_event`] whatever `SSL_CTX` it is switched to.
pub(crate) fn set_connection_info_callback(ssl: &mut SslRef) {
    // SAFETY: `ssl` is a live connection, borrowed mutably for this call; the callback is a
    // plain function that lives for the whole program.
    unsafe { SSL_set_info_callback(ssl.as_ptr(), Some(info_callback)) };
}

/// The info callback. OpenSSL calls it on the thread running a handshake step, with the
/// connection that runs it.
unsafe extern "C" fn info_callback(ssl: *const openssl_sys::SSL, kind: c_int, _value: c_int) {
    let event = match kind {
        SSL_CB_HANDSHAKE_START => HandshakeEvent::Start,
        SSL_CB_HANDSHAKE_DONE => HandshakeEvent::Done,
        _ => return,
    };
    if ssl.is_null() {
        return;
    }
    // SAFETY: OpenSSL passes the live connection whose handshake step is running, on this
    // thread, inside that step (`SSL_do_handshake` and its callers hold it mutably); the
    // prototype's `const` is OpenSSL's API only, and OpenSSL's own callbacks change the
    // connection's ex_data in the same place. Nothing else reaches the connection until this
    // returns, so the exclusive borrow holds for the call.
    let ssl = unsafe { SslRef::from_ptr_mut(ssl.cast_mut()) };
    crate::handshake_event(ssl, event);
}

/// `SSL_CTX_set_timeout`: the timeout of the sessions the context makes, in seconds (at most
/// `c_long::MAX`).
pub(crate) fn set_timeout(builder: &mut SslContextBuilder, seconds: u64) {
    let seconds = c_long::try_from(seconds).unwrap_or(c_long::MAX);
    // SAFETY: `builder` owns a live SSL_CTX, borrowed mutably for this call.
    unsafe { SSL_CTX_set_timeout(builder.as_ptr(), seconds) };
}

/// `SSL_SESSION_is_resumable`: not marked not resumable, and with an id or a ticket.
pub(crate) fn is_resumable(session: &SslSessionRef) -> bool {
    // SAFETY: `session` is a live session (borrowed for this call), and the call only reads it.
    unsafe { SSL_SESSION_is_resumable(session.as_ptr()) == 1 }
}

/// `SSL_CTX_sess_set_get_cb` through the `openssl` crate, whose one requirement is that a
/// returned session belong to no other context.
pub(crate) fn set_get_session_callback<F>(builder: &mut SslContextBuilder, callback: F)
where
    F: Fn(&mut SslRef, &[u8]) -> Option<SslSession> + 'static + Sync + Send,
{
    // SAFETY: the callback returns either a session it has just decoded from DER
    // (`SslSession::from_der`), which belongs to no context, or the session a connection
    // made that the new-session callback kept, which it keeps only from a context whose
    // internal store is off (`keeps_internal_store`), and hands out only to a connection
    // whose context's is off too: OpenSSL links neither into any context's cache.
    unsafe { builder.set_get_session_callback(callback) }
}

/// Whether the connection's context stores sessions in OpenSSL's internal cache
/// (`SSL_CTX_get_session_cache_mode` without `SSL_SESS_CACHE_NO_INTERNAL_STORE`): an
/// application changed the mode [`install_server`](crate::install_server) set.
pub(crate) fn keeps_internal_store(ssl: &SslRef) -> bool {
    const SSL_CTRL_GET_SESS_CACHE_MODE: c_int = 45;
    const SSL_SESS_CACHE_NO_INTERNAL_STORE: c_long = 0x0200;
    // SAFETY: a read-only control call on the connection's live context.
    let mode = unsafe {
        openssl_sys::SSL_CTX_ctrl(
            ssl.ssl_context().as_ptr(),
            SSL_CTRL_GET_SESS_CACHE_MODE,
            0,
            std::ptr::null_mut(),
        )
    };
    mode & SSL_SESS_CACHE_NO_INTERNAL_STORE == 0
}

/// `SSL_set_session`: the connection takes its own reference to `session`; whether it did.
pub(crate) fn set_session(ssl: &mut SslRef, session: &SslSessionRef) -> bool {
    // SAFETY: the crate's requirement is that the session belong to no other context; this
    // one was decoded from DER for this call.
    unsafe { ssl.set_session(session) }.is_ok()
}

/// The body of extension `kind` in the ClientHello being processed (inside the ClientHello
/// callback), if the client sent it.
pub(crate) fn client_hello_extension(ssl: &SslRef, kind: u16) -> Option<&[u8]> {
    let mut out: *const std::os::raw::c_uchar = std::ptr::null();
    let mut len: usize = 0;
    // SAFETY: `ssl` is the live connection whose ClientHello callback is running (the only
    // place OpenSSL has a ClientHello to read); on success OpenSSL points `out` at `len`
    // bytes inside that ClientHello, which it keeps until the handshake moves on, and the
    // returned slice borrows `ssl`, which cannot move on while it is borrowed.
    let found = unsafe {
        openssl_sys::SSL_client_hello_get0_ext(
            ssl.as_ptr(),
            std::os::raw::c_uint::from(kind),
            &mut out,
            &mut len,
        )
    };
    if found != 1 || out.is_null() {
        return None;
    }
    // SAFETY: see above: `out..out + len` is the extension's body, alive while `ssl` is
    // borrowed.
    Some(unsafe { std::slice::from_raw_parts(out, len) })
}

/// Whether the connection may negotiate TLS 1.3: its highest version is TLS 1.3 (or, as 0,
/// the highest OpenSSL has) and `SSL_OP_NO_TLSv1_3` is off.
pub(crate) fn allows_tls13(ssl: &SslRef) -> bool {
    // SAFETY: reads of the live connection's settings, borrowed for the calls.
    let (max, options) = unsafe {
        (
            openssl_sys::SSL_get_max_proto_version(ssl.as_ptr()),
            SSL_get_options(ssl.as_ptr()),
        )
    };
    (max == 0 || max >= openssl_sys::TLS1_3_VERSION)
        && options & openssl_sys::SSL_OP_NO_TLSv1_3 == 0
}
