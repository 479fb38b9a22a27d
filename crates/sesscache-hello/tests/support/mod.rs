//! What the tests in `tests/` share: a ClientHello builder and the invariants of a parse.

pub(crate) mod hello;
pub(crate) mod invariants;
