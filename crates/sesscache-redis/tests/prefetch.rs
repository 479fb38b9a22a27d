//! The asynchronous path of the fleet tier, against a real `redis-server`: a prefetch on the
//! runtime fetches (or, for a TLS 1.3 ticket, claims) what a handshake will look up, so that
//! the handshake's synchronous lookup answers from memory; concurrent prefetches of one key
//! share one store call; a store that cannot answer costs the prefetch its budget and the
//! lookup nothing.

mod common;

use std::time::{Duration, Instant};

use session_cache::{ExtendedMasterSecret, LookupRequest};
use session_core::{Session, SidCtx};
use test_support::redis_server::RedisServer;

use common::{config, key_line, ring, Client, Server, V12, V13};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The store commands that were not `server`'s writes (the new sessions it issued): its
/// lookups, and `others`' commands.
fn lookups(redis: &RedisServer, server: &Server) -> u64 {
    server.written();
    redis.session_commands() - server.stats().writes
}

/// The lookup the server's handshake will make for `session`.
fn request(session: &Session) -> LookupRequest<'_> {
    LookupRequest::new(
        session.version(),
        session.id().as_bytes(),
        SidCtx::new(b"fleet").unwrap(),
        ExtendedMasterSecret::NotOffered,
    )
}

#[test]
fn a_prefetched_session_resumes_with_no_store_call_in_the_handshake() {
    let redis = RedisServer::start();
    let keys = key_line();
    for version in [V12, V13] {
        let a = Server::new(vec![redis.url()], ring(&[&keys]), version, b"fleet");
        let b = Server::new(vec![redis.url()], ring(&[&keys]), version, b"fleet");
        let (mut client, session) = a.issue();
        let before = lookups(&redis, &b);
        runtime().block_on(b.context.cache().prefetch(&request(&session)));
        let fetched = lookups(&redis, &b);
        assert_eq!(
            fetched,
            before + 1,
            "{version:?}: one store call, in the prefetch"
        );
        assert!(
            client.connect_offering(&b, Some(&session)),
            "{version:?}: resumed on B"
        );
        assert_eq!(
            lookups(&redis, &b),
            fetched,
            "{version:?}: the handshake asked the store nothing"
        );
        // The prefetch's answer served its lookup and is gone: a later handshake that finds
        // nothing here asks the store again (a session removed from the fleet meanwhile is
        // not resumed from an old answer).
        if version == V12 {
            b.context.cache().flush_all();
            assert!(client.connect_offering(&b, Some(&session)));
            assert_eq!(lookups(&redis, &b), fetched + 1, "asked again");
        }
        // A TLS 1.3 ticket was claimed by the prefetch: used up, fleet-wide.
        if version == V13 {
            assert!(
                !client.connect_offering(&a, Some(&session)),
                "not again on A"
            );
            assert!(!client.connect_offering(&b, Some(&session)), "nor on B");
        }
        let remote_hits = if version == V12 { 2 } else { 1 };
        assert_eq!(
            b.stats().remote_hits,
            remote_hits,
            "{version:?}: {:?}",
            b.stats()
        );
    }
}

#[test]
fn concurrent_prefetches_of_one_key_share_one_store_call_and_one_ticket_resumes_once() {
    let redis = RedisServer::start();
    let keys = key_line();
    let a = Server::new(vec![redis.url()], ring(&[&keys]), V13, b"fleet");
    let b = Server::new(vec![redis.url()], ring(&[&keys]), V13, b"fleet");
    let (_, ticket) = a.issue();
    let before = lookups(&redis, &b);
    let rt = runtime();
    rt.block_on(async {
        let cache = b.context.cache();
        let all: Vec<_> = (0..50).map(|_| cache.prefetch(&request(&ticket))).collect();
        for fetch in all {
            fetch.await;
        }
    });
    assert_eq!(
        redis.session_commands(),
        before + 1,
        "one claim for 50 offers"
    );
    let resumed = (0..5)
        .filter(|_| Client::new(V13).connect_offering(&b, Some(&ticket)))
        .count();
    assert_eq!(resumed, 1, "the ticket resumes once");
    assert_eq!(
        lookups(&redis, &b),
        before + 1,
        "and the handshakes asked nothing"
    );
}

#[test]
fn a_hung_store_costs_the_prefetch_its_budget_and_the_handshake_nothing() {
    let redis = RedisServer::start();
    let keys = key_line();
    let a = Server::new(vec![redis.url()], ring(&[&keys]), V12, b"fleet");
    let mut hung = config(vec![redis.url()], ring(&[&keys]));
    let budget = Duration::from_millis(100);
    hung.budget = budget;
    let b = Server::with(hung, V12, b"fleet");
    let (_, session) = a.issue();
    redis.hang();
    let began = Instant::now();
    runtime().block_on(b.context.cache().prefetch(&request(&session)));
    let waited = began.elapsed();
    let timeouts = b.stats().timeouts;
    let resumed = Client::new(V12).connect_offering(&b, Some(&session));
    redis.resume();
    assert!(!resumed, "a full handshake");
    assert!(
        waited < budget + Duration::from_secs(1),
        "prefetch: {waited:?}"
    );
    assert_eq!(
        b.stats().timeouts,
        timeouts,
        "the handshake's lookup did not wait on the store again"
    );
}
