// A borrowed session is not an owned one: it cannot be passed where a reference is given up.
use sesscache::core::{ProtocolVersion, Session, SessionBuilder};

fn main() {
    let owned = SessionBuilder::new(ProtocolVersion::TLS1_2, 0).build();
    Session::free(owned.borrowed());
}
