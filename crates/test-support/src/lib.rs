//! Helpers shared by the workspace's tests and measurements: the sessions they cache, a
//! global allocator that counts live heap bytes, tracing output captured as text, real
//! `redis-server` processes, a proxy that slows a store down, and hand-built ClientHellos.

// `unsafe` only in `counting_alloc`: a global allocator's trait is unsafe to implement.
#![deny(unsafe_code)]

pub mod captured_log;
pub mod client_hello;
#[allow(unsafe_code)] // `GlobalAlloc` forwarded to `System`, each block with its reason
pub mod counting_alloc;
pub mod delay_proxy;
pub mod redis_server;

use session_core::{MasterKey, ProtocolVersion, Session, SessionBuilder, SessionId};

/// A TLS 1.2 session with id `id`, made at `time`, expiring `timeout` seconds later, with a
/// 48-byte secret derived from the id (never all zeros).
pub fn session(id: &[u8], time: u64, timeout: u64) -> Session {
    builder(id, time).timeout(timeout).build()
}

/// [`session`]'s builder, for tests that set more fields.
pub fn builder(id: &[u8], time: u64) -> SessionBuilder {
    let mut secret = [1u8; 48];
    for (i, b) in id.iter().enumerate() {
        secret[i % 48] ^= b.wrapping_add(1);
    }
    SessionBuilder::new(ProtocolVersion::TLS1_2, time)
        .id(SessionId::new(id).expect("a test id of at most 32 bytes"))
        .master_key(MasterKey::new(&secret).expect("48 bytes fit"))
}
