//! Every cache operation leaves a tracing event, and no event carries a session id or a
//! secret. All events at TRACE level are captured as text and searched.

use std::sync::Arc;

use session_cache::ExtendedMasterSecret;
use session_cache::{CacheConfig, CacheMode, LookupRequest, SessionCache};
use session_core::{ManualClock, MasterKey, ProtocolVersion, SessionBuilder, SessionId, SidCtx};
use test_support::captured_log::Captured;

#[test]
fn every_operation_is_logged_and_no_secret_is() {
    let captured = Captured::default();
    tracing::subscriber::with_default(captured.subscriber(), || {
        let clock = Arc::new(ManualClock::new(1_000));
        let cache = SessionCache::new(CacheConfig {
            size: 2,
            clock: clock.clone(),
            ..CacheConfig::default()
        });
        cache.set_mode(CacheMode::SERVER | CacheMode::UPDATE_TIME);
        let make = |fill: u8, timeout| {
            SessionBuilder::new(ProtocolVersion::TLS1_2, 1_000)
                .id(SessionId::new(&[fill; 32]).unwrap())
                .master_key(MasterKey::new(&[0xCD; 48]).unwrap())
                .timeout(timeout)
                .build()
        };
        let (a, b, c) = (make(0xAB, 10), make(0xAC, 100), make(0xAD, 100));
        cache.add(&a).unwrap();
        cache.add(&b).unwrap();
        clock.advance(1);
        cache.add(&b).unwrap(); // UPDATE_TIME renews it in place
        cache.add(&c).unwrap(); // evicts a
        clock.advance(101);
        let _ = cache.lookup(&LookupRequest::new(
            ProtocolVersion::TLS1_2,
            &[0xAC; 32],
            SidCtx::empty(),
            ExtendedMasterSecret::NotOffered,
        ));
        cache.remove(&c);
        cache.add(&make(0xAE, 1)).unwrap();
        clock.advance(5);
        cache.flush();
    });
    let text = captured.text();
    for event in [
        "session added",
        "session re-added",
        "cause=Evicted",
        "session expired at lookup",
        "session removed",
        "cause=Flushed",
        "cache flushed",
    ] {
        assert!(text.contains(event), "no `{event}` event in:\n{text}");
    }
    let lower = text.to_lowercase();
    for secret in [
        "abab", "acac", "adad", "aeae", "cdcd", "171, 171", "205, 205", "[171", "[205",
    ] {
        assert!(
            !lower.contains(secret),
            "`{secret}` leaked into the log:\n{text}"
        );
    }
}
