//! The map's key: the cached session itself, hashed and compared by (protocol version,
//! session id). The id is read through the session, so the table holds one pointer per entry
//! and no copy of any id; a lookup borrows a [`Probe`] of the same shape.

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};

use session_core::Session;

/// Anything with a cache key's shape.
pub(crate) trait KeyView {
    fn version(&self) -> u16;
    fn id(&self) -> &[u8];
}

impl Hash for dyn KeyView + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u16(self.version());
        state.write(self.id());
    }
}

impl PartialEq for dyn KeyView + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.version() == other.version() && self.id() == other.id()
    }
}

impl Eq for dyn KeyView + '_ {}

/// The cache's own reference to a session, as the map's key.
pub(crate) struct Cached(pub(crate) Session);

impl KeyView for Cached {
    fn version(&self) -> u16 {
        self.0.version().wire()
    }
    fn id(&self) -> &[u8] {
        self.0.id().as_bytes()
    }
}

impl Hash for Cached {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self as &dyn KeyView).hash(state);
    }
}

impl PartialEq for Cached {
    fn eq(&self, other: &Self) -> bool {
        (self as &dyn KeyView) == (other as &dyn KeyView)
    }
}

impl Eq for Cached {}

impl<'a> Borrow<dyn KeyView + 'a> for Cached {
    fn borrow(&self) -> &(dyn KeyView + 'a) {
        self
    }
}

/// A key to look for: a version and an id from the network.
pub(crate) struct Probe<'a> {
    pub(crate) version: u16,
    pub(crate) id: &'a [u8],
}

impl KeyView for Probe<'_> {
    fn version(&self) -> u16 {
        self.version
    }
    fn id(&self) -> &[u8] {
        self.id
    }
}

impl<'a> Probe<'a> {
    pub(crate) fn of(session: &'a Session) -> Self {
        Probe {
            version: session.version().wire(),
            id: session.id().as_bytes(),
        }
    }
}
