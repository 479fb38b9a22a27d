//! What the cache reports: the handshake counters, and `Debug` output without session data.

use std::sync::{Arc, Mutex};

use session_cache::{Handshake, SessionCache};
use session_core::Session;
use test_support::session;

use crate::{cache, NOW};

#[test]
fn handshake_counters_and_the_new_session_callback() {
    let (cache, _) = cache(10);
    assert_eq!(cache.record(Handshake::AcceptGood), 1);
    assert_eq!(cache.record(Handshake::AcceptGood), 2);
    cache.record(Handshake::Connect);
    let stats = cache.stats();
    assert_eq!((stats.accept_good, stats.connect), (2, 1));
    let seen = Arc::new(Mutex::new(0));
    let sink = seen.clone();
    cache.set_new_session_callback(Some(Arc::new(move |_: &SessionCache, _: &Session| {
        *sink.lock().unwrap() += 1;
    })));
    cache.notify_new_session(&session(b"n", NOW, 1));
    assert_eq!(*seen.lock().unwrap(), 1);
}

#[test]
fn debug_output_shows_no_session_data() {
    let (cache, _) = cache(10);
    cache.add(&session(&[0xAB; 32], NOW, 100)).unwrap();
    let text = format!("{cache:?}");
    assert!(text.contains("len: 1"), "{text}");
    assert!(!text.contains("171"), "{text}");
}
