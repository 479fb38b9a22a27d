//! Lookups through the fleet tier on a loopback `redis-server` (started by the bench): a hit
//! in the server's own cache (`local_hit`), a hit in the store (`remote_hit`: one `GET` round
//! trip, the value opened and decoded), an id the store lacks (`remote_miss`), and beside
//! them the floor: the same `GET` through the redis crate's plain blocking connection
//! (`redis_get`), with no budget, no runtime and nothing to open. Then what a hung store
//! costs once the breaker has opened (`breaker_open`).
//!
//! Group `tier_lookup`. `cargo bench -p sesscache-bench --bench fleet`; percentiles come from
//! `cargo run --release -p sesscache-bench --bin tier_latency`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use sesscache_bench::fleet::{blocking_get, request, Fleet};
use session_cache::{Lookup, Miss};

const SESSIONS: usize = 1_000;

fn bench(c: &mut Criterion) {
    let fleet = Fleet::start(SESSIONS, Duration::from_millis(5), 5);
    let mut group = c.benchmark_group("tier_lookup");
    let mut i = 0usize;
    // Every path answers as its name says (a call past the budget is a miss, which the
    // timing then includes; `tier_latency` counts them).
    assert!(matches!(
        fleet.cache.lookup(&request(&fleet.local[0])),
        Lookup::Hit(_)
    ));
    assert!(matches!(
        fleet.cache.lookup(&request(&fleet.remote[0])),
        Lookup::Hit(_)
    ));
    assert!(matches!(
        fleet.cache.lookup(&request(&Fleet::absent(0))),
        Lookup::Miss(Miss::UnknownId)
    ));
    group.bench_function("local_hit", |b| {
        b.iter(|| {
            i = (i + 1) % SESSIONS;
            black_box(fleet.cache.lookup(&request(&fleet.local[i])))
        })
    });
    group.bench_function("remote_hit", |b| {
        b.iter(|| {
            i = (i + 1) % SESSIONS;
            black_box(fleet.cache.lookup(&request(&fleet.remote[i])))
        })
    });
    let absent = Fleet::absent(0);
    group.bench_function("remote_miss", |b| {
        b.iter(|| black_box(fleet.cache.lookup(&request(&absent))))
    });
    let names = fleet.remote_names();
    let mut conn = fleet.blocking_connection();
    group.bench_function("redis_get", |b| {
        b.iter(|| {
            i = (i + 1) % SESSIONS;
            black_box(blocking_get(&mut conn, &names[i]))
        })
    });

    // The store hangs: the breaker opens after five timeouts, and lookups skip the store.
    fleet.redis.hang();
    for s in &fleet.remote[..5] {
        black_box(fleet.cache.lookup(&request(s)));
    }
    assert_eq!(
        fleet.tier.stats().breaker,
        sesscache_redis::BreakerState::Open
    );
    group.bench_function("breaker_open", |b| {
        b.iter(|| {
            i = (i + 1) % SESSIONS;
            black_box(fleet.cache.lookup(&request(&fleet.remote[i])))
        })
    });
    group.finish();
    fleet.redis.resume();
}

criterion_group!(benches, bench);
criterion_main!(benches);
