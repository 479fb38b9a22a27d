// Freeing a session you only borrowed (OpenSSL's SSL_get_session + SSL_SESSION_free).
use sesscache::core::{ProtocolVersion, SessionBuilder};

fn main() {
    let owned = SessionBuilder::new(ProtocolVersion::TLS1_2, 0).build();
    let borrowed = owned.borrowed();
    borrowed.free();
}
