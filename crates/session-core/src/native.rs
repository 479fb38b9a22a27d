//! [`Native`]: the TLS stack's own object for a session, kept beside it.

use std::any::Any;
use std::sync::OnceLock;

/// The TLS stack's own object for a session (an OpenSSL adapter keeps OpenSSL's
/// `SSL_SESSION` here), attached at most once, so that a cache hit hands the stack a new
/// reference to it instead of a copy decoded again from the session's bytes.
///
/// It describes exactly the session it is attached to: a copy of the session
/// ([`Session::to_builder`](crate::Session::to_builder), [`dup`](crate::Session::dup), a
/// renewal) starts without one, since the copy's fields may differ. It is never serialized,
/// compared or printed, and it is dropped with the session's storage.
#[derive(Default)]
pub(crate) struct Native(OnceLock<Box<dyn Any + Send + Sync>>);

impl Native {
    pub(crate) fn get(&self) -> Option<&(dyn Any + Send + Sync)> {
        self.0.get().map(|object| &**object)
    }

    pub(crate) fn set(
        &self,
        object: Box<dyn Any + Send + Sync>,
    ) -> Result<(), Box<dyn Any + Send + Sync>> {
        self.0.set(object)
    }
}

impl Clone for Native {
    fn clone(&self) -> Self {
        Self::default()
    }
}
