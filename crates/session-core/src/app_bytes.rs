//! [`AppBytes`]: application data made of bytes, the one kind that can leave the process.

use std::fmt;

use zeroize::Zeroizing;

/// Application data that is a byte string, wiped when its last reference goes (it may hold a
/// secret: rustls keeps its whole encoding of a server session, master secret included, as
/// one).
///
/// A session's application data is any type ([`SessionBuilder::app_data`]); this one is also
/// the kind that a serialized copy of the session can carry, since its bytes are all there is
/// to it. The fleet tier (`sesscache-redis`) stores it beside the session's DER form, so a
/// session an adapter made on one server comes back, with its data, on another.
///
/// [`SessionBuilder::app_data`]: crate::SessionBuilder::app_data
#[derive(Clone, PartialEq, Eq)]
pub struct AppBytes(Zeroizing<Vec<u8>>);

impl AppBytes {
    /// Takes the bytes (they are wiped when this is dropped).
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The bytes: handle with care.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for AppBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppBytes")
            .field("len", &self.0.len())
            .finish_non_exhaustive()
    }
}
