//! Where a client keeps its sessions: one key per (kind, server name), so that a client store
//! (rustls's, OpenSSL's) finds the session for the server it connects to.

use session_core::SessionId;

/// The id a client's session of `kind` for `server` is cached under: SHA-256 of the kind, a
/// zero byte and the name, as a session id (names are longer than ids may be). A store checks
/// the name it kept beside the session on every read, so two names whose hashes collide never
/// see each other's session.
pub fn client_session_id(kind: &[u8], server: &str) -> SessionId {
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    digest.update(kind);
    digest.update(&[0]);
    digest.update(server.as_bytes());
    SessionId::new(digest.finish().as_ref()).expect("a SHA-256 digest is 32 bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_and_name_has_its_own_id() {
        let a = client_session_id(b"tls12", "example.com");
        assert_eq!(a, client_session_id(b"tls12", "example.com"));
        assert_ne!(a, client_session_id(b"tls13", "example.com"));
        assert_ne!(a, client_session_id(b"tls12", "example.org"));
        assert_ne!(
            client_session_id(b"a", "bc"),
            client_session_id(b"ab", "c"),
            "the zero byte separates kind and name"
        );
    }
}
