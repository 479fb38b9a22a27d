//! What the cache reports: `Debug` output without session data. (The handshake counters
//! are the handshake driver's: tests/handshake.rs.)

use test_support::session;

use crate::{cache, NOW};

#[test]
fn debug_output_shows_no_session_data() {
    let (cache, _) = cache(10);
    cache.add(&session(&[0xAB; 32], NOW, 100)).unwrap();
    let text = format!("{cache:?}");
    assert!(text.contains("len: 1"), "{text}");
    assert!(!text.contains("171"), "{text}");
}
