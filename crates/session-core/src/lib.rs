//! A TLS session, modelled on OpenSSL's `SSL_SESSION`, and its reference-counted handle.
//!
//! - [`Session`] is an owned reference: [`Session::up_ref`] (or `clone`) takes another,
//!   [`Session::free`] (or `drop`) gives one back, and the last one zeroizes the secrets.
//! - [`SessionRef`] is a borrowed session (OpenSSL's `get0`): it has no `free`, and it cannot
//!   outlive what it was borrowed from, so the C API's "freed a borrowed pointer" bug does not
//!   compile.
//! - A shared session is immutable. Changing one means [`Session::to_builder`] (a deep copy),
//!   change, build, and put the new session back where the old one was.
//! - Every field is a newtype that checks its limits once, at construction.
//!
//! Architecture invariant: this crate takes no locks, does no I/O and reads no clock except
//! through [`Clock`].

// `unsafe` only in `storage`: the wipe of a freed session's storage.
#![deny(unsafe_code)]

mod app_bytes;
mod data;
mod error;
mod extras;
mod fields;
mod session;
#[allow(unsafe_code)] // the crate's one home of `unsafe`, each block with its reason
mod storage;
mod time;

pub use app_bytes::AppBytes;
pub use data::SessionData;
pub use error::Error;
pub use extras::OpensslExtras;
pub use fields::{
    AlpnProtocol, CertificateDer, CipherSuite, HostName, MasterKey, ProtocolVersion, SessionId,
    SidCtx, Ticket,
};
pub use session::{Session, SessionBuilder, SessionRef, WeakSession, DEFAULT_SESSION_TIMEOUT};
#[doc(hidden)]
pub use storage::Wiped;
pub use time::{Clock, ManualClock, SystemClock, UnixTime};
