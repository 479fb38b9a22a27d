//! The adapter's `unsafe`: one OpenSSL call the `openssl` crate does not wrap, and two it marks
//! unsafe, each for a reason that holds here.

use std::os::raw::{c_int, c_long};

use foreign_types::ForeignTypeRef;
use openssl::ssl::{SslContextBuilder, SslRef, SslSession, SslSessionRef};

extern "C" {
    /// OpenSSL 1.1.1 and later; libssl is linked through `openssl-sys`.
    fn SSL_SESSION_is_resumable(session: *const openssl_sys::SSL_SESSION) -> c_int;
    fn SSL_CTX_set_timeout(ctx: *mut openssl_sys::SSL_CTX, seconds: c_long) -> c_long;
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
    // SAFETY: the callback returns only sessions it has just decoded from DER
    // (`SslSession::from_der`), which belong to no context at all.
    unsafe { builder.set_get_session_callback(callback) }
}

/// `SSL_set_session`: the connection takes its own reference to `session`; whether it did.
pub(crate) fn set_session(ssl: &mut SslRef, session: &SslSessionRef) -> bool {
    // SAFETY: the crate's requirement is that the session belong to no other context; this
    // one was decoded from DER for this call.
    unsafe { ssl.set_session(session) }.is_ok()
}
