// A shared session is immutable: there is no setter on it, only on a builder for a copy.
use sesscache::core::{ProtocolVersion, SessionBuilder};

fn main() {
    let owned = SessionBuilder::new(ProtocolVersion::TLS1_2, 0).build();
    let other = owned.clone();
    owned.timeout(5);
    drop(other);
}
