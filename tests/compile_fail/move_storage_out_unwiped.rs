// A session's storage cannot be moved out of its allocation, which would free the allocation
// without the wipe: the shared form the cache's map uses is pinned, and the storage is
// `!Unpin`.
use std::pin::Pin;
use std::sync::Arc;

use sesscache::core::{ProtocolVersion, SessionBuilder};

fn main() {
    let session = SessionBuilder::new(ProtocolVersion::TLS1_2, 0).build();
    let shared = Pin::into_inner(session.into_shared());
    let _storage = Arc::try_unwrap(shared);
}
