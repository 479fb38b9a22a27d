// A `&Session` is borrowed too: giving up a reference needs the reference itself.
use sesscache::core::{ProtocolVersion, Session, SessionBuilder};

fn release(session: &Session) {
    session.free();
}

fn main() {
    let owned = SessionBuilder::new(ProtocolVersion::TLS1_2, 0).build();
    release(&owned);
}
