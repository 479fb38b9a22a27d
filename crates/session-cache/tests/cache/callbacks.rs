//! Callbacks that call back into the cache.

use std::sync::{mpsc, Arc};
use std::time::Duration;

use session_cache::{LookupRequest, Miss, RemovalCause, SessionCache};
use session_core::{ProtocolVersion, Session};
use test_support::session;

use crate::{cache, request, NOW};

/// A callback that calls back into the cache must not deadlock (OpenSSL issue 31540).
/// The work runs on another thread so that a deadlock fails the test instead of hanging it.
#[test]
fn callbacks_may_reenter_the_cache() {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (cache, clock) = cache(2);
        // The callbacks reach the cache through their argument, holding no handle to it.
        cache.set_remove_session_callback(Some(Arc::new(
            move |cache: &SessionCache, s: &Session, cause| {
                // Every kind of call, from inside the callback.
                let _ = cache.lookup(&request(b"zzz"));
                let _ = cache.stats();
                let _ = cache.flush_expired(0);
                if cause == RemovalCause::Evicted {
                    let again = s.dup();
                    let _ = cache.add(&again);
                    cache.remove(&again);
                }
            },
        )));
        cache.set_get_session_callback(Some(Arc::new(
            move |cache: &SessionCache, r: &LookupRequest<'_>| {
                cache.get(ProtocolVersion::TLS1_2, r.id);
                cache.set_size(2);
                Err(Miss::UnknownId)
            },
        )));
        for i in 0..20u32 {
            cache
                .add(&session(&i.to_be_bytes(), NOW, 10 + u64::from(i)))
                .unwrap();
        }
        let _ = cache.lookup(&request(b"missing"));
        clock.advance(100);
        cache.flush();
        cache.remove(&session(b"x", NOW, 1));
        tx.send(cache.len()).unwrap();
    });
    let len = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("a callback that re-entered the cache deadlocked it");
    assert_eq!(len, 0);
}
