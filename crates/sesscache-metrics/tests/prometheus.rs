//! The text a scrape gets, read back by a Prometheus text-format parser (`prometheus-parse`):
//! every number equals the snapshot it came from.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ctx::{Context, ContextConfig, Role};
use prometheus::core::Collector as _;
use prometheus::{Encoder, Registry, TextEncoder};
use prometheus_parse::{Scrape, Value};
use serde::Serialize;
use sesscache_metrics::{undescribed, Collector, Metrics};
use session_cache::metrics::{Describe, Metric};
use session_cache::ExtendedMasterSecret;
use session_cache::{
    CacheConfig, Handshake, LookupRequest, Operation, Resumption, SessionCache, Stats,
};
use session_core::{ManualClock, ProtocolVersion, Session, SessionBuilder, SessionId, SidCtx};

fn parse(text: &str) -> Scrape {
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("valid Prometheus text")
}

/// The value of the sample `name` with `labels`, if there is exactly one.
#[track_caller]
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<_> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .collect();
    assert_eq!(found.len(), 1, "{name} {labels:?} in\n{scrape:#?}");
    match &found[0].value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
        other => panic!("{name} is not a number: {other:?}"),
    }
}

fn busy_cache() -> SessionCache {
    let clock = Arc::new(ManualClock::new(1_000));
    let cache = SessionCache::new(CacheConfig {
        size: 3,
        timing: true,
        clock: clock.clone(),
        ..CacheConfig::default()
    });
    for i in 0..5u8 {
        let s = SessionBuilder::new(ProtocolVersion::TLS1_2, 1_000)
            .id(SessionId::new(&[i; 8]).unwrap())
            .timeout(100)
            .build();
        cache.add(&s).unwrap();
    }
    for i in 0..5u8 {
        let id = [i; 8];
        let mut handshake = Handshake::accept(&cache);
        let lookup = handshake.offer(
            &cache,
            LookupRequest::new(
                ProtocolVersion::TLS1_2,
                &id,
                SidCtx::empty(),
                ExtendedMasterSecret::NotOffered,
            ),
        );
        handshake.finish(&cache, matches!(lookup, session_cache::Lookup::Hit(_)));
    }
    // A handshake that offered nothing.
    Handshake::accept(&cache).finish(&cache, false);
    clock.advance(200);
    cache.flush();
    cache
}

#[test]
fn every_cache_statistic_is_exported_with_its_value() {
    let cache = busy_cache();
    let stats = cache.stats();
    let text = Metrics::new().cache(&cache).encode();
    let scrape = parse(&text);

    let counters: [(&str, u64); 11] = [
        ("connect", stats.connect),
        ("connect_renegotiate", stats.connect_renegotiate),
        ("connect_good", stats.connect_good),
        ("accept", stats.accept),
        ("accept_renegotiate", stats.accept_renegotiate),
        ("accept_good", stats.accept_good),
        ("hits", stats.hits),
        ("cb_hits", stats.cb_hits),
        ("misses", stats.misses),
        ("timeouts", stats.timeouts),
        ("cache_full", stats.cache_full),
    ];
    for (name, expected) in counters {
        let metric = format!("sesscache_{name}_total");
        assert_eq!(value(&scrape, &metric, &[]), expected as f64, "{metric}");
    }
    assert_eq!((stats.hits, stats.misses, stats.cache_full), (3, 2, 2));
    assert_eq!(
        value(&scrape, "sesscache_sessions", &[]),
        stats.number as f64
    );
    assert_eq!(value(&scrape, "sesscache_size_limit", &[]), 3.0);
    for outcome in Resumption::ALL {
        assert_eq!(
            value(
                &scrape,
                "sesscache_resumptions_total",
                &[("outcome", outcome.name())]
            ),
            stats.resumptions.count(outcome) as f64,
            "{outcome}"
        );
    }
    assert_eq!(stats.resumptions.resumed, 3);
    assert_eq!(stats.resumptions.unknown_id, 2);
    assert_eq!(stats.resumptions.not_offered, 1);

    // Every field the snapshot serializes has its metric: nothing is left out.
    let serialized = serde_json::to_value(stats).unwrap();
    let names: Vec<&str> = scrape.samples.iter().map(|s| s.metric.as_str()).collect();
    for key in serialized.as_object().unwrap().keys() {
        assert!(
            names
                .iter()
                .any(|n| n.starts_with(&format!("sesscache_{key}"))
                    || (key == "number" && *n == "sesscache_sessions")
                    || (key == "size" && *n == "sesscache_size_limit")),
            "{key} is not exported"
        );
    }
    assert!(text.contains("# TYPE sesscache_hits_total counter"));
    assert!(text.contains("# TYPE sesscache_sessions gauge"));
}

#[test]
fn operation_latencies_are_histograms_with_the_counts_taken() {
    let cache = busy_cache();
    let text = Metrics::new().cache(&cache).encode();
    let scrape = parse(&text);
    assert!(text.contains("# TYPE sesscache_operation_duration_seconds histogram"));
    for op in Operation::ALL {
        let latency = cache.latency(op);
        let count = value(
            &scrape,
            "sesscache_operation_duration_seconds_count",
            &[("op", op.name())],
        );
        assert_eq!(count, latency.count as f64, "{op:?}");
        let sum = value(
            &scrape,
            "sesscache_operation_duration_seconds_sum",
            &[("op", op.name())],
        );
        assert!((sum - latency.sum_seconds).abs() < 1e-9);
        let buckets = scrape
            .samples
            .iter()
            .find(|s| {
                s.metric == "sesscache_operation_duration_seconds"
                    && s.labels.get("op") == Some(op.name())
            })
            .map(|s| match &s.value {
                Value::Histogram(b) => b.clone(),
                other => panic!("{other:?}"),
            })
            .expect("the buckets");
        assert_eq!(buckets.len(), latency.buckets.len());
        assert_eq!(buckets.last().unwrap().count, latency.count as f64);
        assert!(buckets.windows(2).all(|w| w[0].count <= w[1].count));
    }
    assert_eq!(cache.latency(Operation::Add).count, 5);
    assert_eq!(cache.latency(Operation::Lookup).count, 5);
    assert_eq!(cache.latency(Operation::Flush).count, 1);
}

#[derive(Serialize)]
struct Other {
    served: u64,
    in_flight: u64,
    state: &'static str,
    healthy: bool,
    parts: HashMap<&'static str, u64>,
}

impl Describe for Other {
    const METRICS: &'static [Metric] = &[
        Metric::counter("served", "Connections served."),
        Metric::gauge("in_flight", "Connections being served."),
        Metric::gauge("state", "The state.").labelled("state"),
        Metric::gauge("healthy", "Whether it is healthy."),
        Metric::counter("parts", "Parts.")
            .labelled("part")
            .with_parts(&[Metric::counter("a", "A."), Metric::counter("b", "B.")]),
    ];
}

#[test]
fn any_described_snapshot_is_exported_field_by_field() {
    let other = Other {
        served: 7,
        in_flight: 2,
        state: "open",
        healthy: true,
        parts: HashMap::from([("a", 1), ("b", 2)]),
    };
    let stats = Stats::default();
    let text = Metrics::new()
        .snapshot("x_", &other)
        .snapshot("y_", &stats)
        .encode();
    assert_eq!(undescribed(&other), Vec::<String>::new());
    let scrape = parse(&text);
    assert_eq!(value(&scrape, "x_served_total", &[]), 7.0);
    assert_eq!(value(&scrape, "x_in_flight", &[]), 2.0);
    assert_eq!(value(&scrape, "x_state", &[("state", "open")]), 1.0);
    assert_eq!(value(&scrape, "x_healthy", &[]), 1.0);
    assert_eq!(value(&scrape, "x_parts_total", &[("part", "b")]), 2.0);
    assert!(text.contains("# HELP x_in_flight Connections being served."));
    assert_eq!(value(&scrape, "y_hits_total", &[]), 0.0);
}

fn gathered(registry: &Registry) -> String {
    let mut out = Vec::new();
    TextEncoder::new()
        .encode(&registry.gather(), &mut out)
        .unwrap();
    String::from_utf8(out).unwrap()
}

fn sorted_lines(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_unstable();
    lines
}

/// Client and server handshakes through a context's connections: four new clients, then
/// each offering the session it got, the newest first. The server's cache holds two.
fn busy_context() -> Context {
    let config = |cache| ContextConfig {
        version: ProtocolVersion::TLS1_2,
        cache,
        ..ContextConfig::default()
    };
    let server = Context::new(config(CacheConfig {
        size: 2,
        timing: true,
        ..CacheConfig::default()
    }));
    let client = Context::new(config(CacheConfig::default()));
    let handshake = |offer: Option<&Session>| {
        let mut c = client.new_connection(Role::Client);
        let mut s = server.new_connection(Role::Server);
        c.set_session(offer);
        c.connect(&mut s).unwrap();
        c.shutdown();
        s.shutdown();
        c.session_owned().unwrap()
    };
    let sessions: Vec<Session> = (0..4).map(|_| handshake(None)).collect();
    for session in sessions.iter().rev() {
        handshake(Some(session));
    }
    server
}

/// A described snapshot in place of the fleet tier's (`sesscache-redis` is no dependency here).
fn tier(served: u64) -> Other {
    Other {
        served,
        in_flight: 2,
        state: "open",
        healthy: true,
        parts: HashMap::from([("a", 1), ("b", 2)]),
    }
}

#[test]
fn a_registered_collector_gathers_the_cache_as_metrics_encodes_it() {
    let context = busy_context();
    let served = Arc::new(AtomicU64::new(7));
    let collector = {
        let served = served.clone();
        Collector::new(&context).tier(move || tier(served.load(Ordering::Relaxed)))
    };
    let mut described: Vec<String> = collector.desc().iter().map(|d| d.fq_name.clone()).collect();
    let registry = Registry::new();
    registry.register(Box::new(collector)).unwrap();
    assert!(
        registry
            .register(Box::new(Collector::new(&context)))
            .is_err(),
        "a second collector's names collide"
    );

    let text = gathered(&registry);
    let scrape = parse(&text);
    let stats = context.cache().stats();
    // Four new clients on a cache of two: two sessions evicted, so two of the four
    // returning clients resumed and two found nothing.
    assert_eq!((stats.accept, stats.accept_good), (8, 8));
    assert_eq!((stats.hits, stats.misses), (2, 2));
    assert!(stats.cache_full >= 2);
    for (name, expected) in [
        ("accept", stats.accept),
        ("accept_good", stats.accept_good),
        ("hits", stats.hits),
        ("misses", stats.misses),
        ("cache_full", stats.cache_full),
        ("timeouts", stats.timeouts),
    ] {
        let metric = format!("sesscache_{name}_total");
        assert_eq!(value(&scrape, &metric, &[]), expected as f64, "{metric}");
    }
    assert_eq!(value(&scrape, "sesscache_sessions", &[]), 2.0);
    for outcome in Resumption::ALL {
        let labels = [("outcome", outcome.name())];
        let expected = stats.resumptions.count(outcome) as f64;
        assert_eq!(
            value(&scrape, "sesscache_resumptions_total", &labels),
            expected
        );
    }
    assert_eq!(stats.resumptions.resumed, 2);
    let lookups = value(
        &scrape,
        "sesscache_operation_duration_seconds_count",
        &[("op", "lookup")],
    );
    assert_eq!(
        lookups,
        context.cache().latency(Operation::Lookup).count as f64
    );
    assert_eq!(lookups, 4.0);
    assert_eq!(value(&scrape, "sesscache_tier_served_total", &[]), 7.0);

    // The same families, help, types and samples as `Metrics` writes (in the registry's
    // order: by name, then by label values), each of them described.
    let written = Metrics::new()
        .cache(context.cache())
        .tier(&tier(7))
        .encode();
    assert_eq!(sorted_lines(&text), sorted_lines(&written));
    let mut families: Vec<String> = registry
        .gather()
        .iter()
        .map(|f| f.name().to_owned())
        .collect();
    families.sort();
    described.sort();
    assert_eq!(families, described);

    // Each scrape reads the snapshots anew.
    served.store(9, Ordering::Relaxed);
    assert_eq!(
        value(
            &parse(&gathered(&registry)),
            "sesscache_tier_served_total",
            &[]
        ),
        9.0
    );
}
