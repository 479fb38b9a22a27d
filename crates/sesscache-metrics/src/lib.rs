//! sesscache's numbers as Prometheus metrics: a cache's statistics (OpenSSL's
//! `SSL_CTX_sess_*` counters, the number of sessions and the size limit, why handshakes did
//! not resume), how long its operations took, and any other counters that implement
//! `serde::Serialize` (the fleet tier's, a server's own), in the Prometheus text format.
//!
//! The values come from serializing the statistics, so every field a snapshot has is
//! exported: the [`Field`] tables give the known ones their names, types and help, and a
//! field without an entry still goes out (as a counter named after it). The text is written
//! by the `prometheus` crate's encoder.
//!
//! ```
//! use session_cache::{CacheConfig, SessionCache};
//!
//! let cache = SessionCache::new(CacheConfig { timing: true, ..Default::default() });
//! let text = sesscache_metrics::Metrics::new().cache(&cache).encode();
//! assert!(text.contains("sesscache_hits_total 0"));
//! ```

use prometheus::proto::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType,
};
use prometheus::{Encoder, TextEncoder};
use serde::Serialize;
use serde_json::Value;
use session_cache::{Operation, SessionCache};

/// The content type of [`Metrics::encode`]'s text (the Prometheus text format, 0.0.4).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What kind of metric a field is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// Only goes up (its name gets `_total`).
    Counter,
    /// A level that goes up and down.
    Gauge,
}

/// How a field of a serialized snapshot is exported.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    key: &'static str,
    name: Option<&'static str>,
    kind: Kind,
    help: &'static str,
    label: &'static str,
}

impl Field {
    /// A counter field: exported as `<prefix><key>_total`.
    pub const fn counter(key: &'static str, help: &'static str) -> Self {
        Self {
            key,
            name: None,
            kind: Kind::Counter,
            help,
            label: "kind",
        }
    }

    /// A gauge field: exported as `<prefix><key>`.
    pub const fn gauge(key: &'static str, help: &'static str) -> Self {
        Self {
            key,
            name: None,
            kind: Kind::Gauge,
            help,
            label: "kind",
        }
    }

    /// Exported under `name` instead of the field's key (prefix and `_total` still added).
    pub const fn named(mut self, name: &'static str) -> Self {
        self.name = Some(name);
        self
    }

    /// For a field that is a struct of numbers, or a string: the label its parts' names (or
    /// the string) go in. `kind` unless set.
    pub const fn labelled(mut self, label: &'static str) -> Self {
        self.label = label;
        self
    }
}

/// A cache's [`Stats`](session_cache::Stats), field by field.
pub const CACHE_FIELDS: &[Field] = &[
    Field::gauge("number", "Sessions in the cache (SSL_CTX_sess_number).").named("sessions"),
    Field::gauge(
        "size",
        "The cache's size limit, 0 for none (SSL_CTX_sess_get_cache_size).",
    )
    .named("size_limit"),
    Field::counter(
        "connect",
        "Client handshakes started (SSL_CTX_sess_connect).",
    ),
    Field::counter(
        "connect_renegotiate",
        "Client renegotiations started (SSL_CTX_sess_connect_renegotiate).",
    ),
    Field::counter(
        "connect_good",
        "Client handshakes finished (SSL_CTX_sess_connect_good).",
    ),
    Field::counter("accept", "Server handshakes started (SSL_CTX_sess_accept)."),
    Field::counter(
        "accept_renegotiate",
        "Server renegotiations started (SSL_CTX_sess_accept_renegotiate).",
    ),
    Field::counter(
        "accept_good",
        "Server handshakes finished (SSL_CTX_sess_accept_good).",
    ),
    Field::counter(
        "hits",
        "Lookups that found a session to resume (SSL_CTX_sess_hits).",
    ),
    Field::counter(
        "cb_hits",
        "Sessions the get-session callback (the fleet tier) supplied (SSL_CTX_sess_cb_hits).",
    ),
    Field::counter(
        "misses",
        "Lookups the internal cache could not answer (SSL_CTX_sess_misses).",
    ),
    Field::counter(
        "timeouts",
        "Sessions found expired at lookup (SSL_CTX_sess_timeouts).",
    ),
    Field::counter(
        "cache_full",
        "Sessions evicted because the cache was full (SSL_CTX_sess_cache_full).",
    ),
    Field::counter(
        "resumptions",
        "Finished server handshakes by outcome: resumed, or why not.",
    )
    .labelled("outcome"),
];

/// The fleet tier's counters (`sesscache_redis::TierStats`), field by field.
pub const TIER_FIELDS: &[Field] = &[
    Field::counter(
        "remote_hits",
        "Sessions the shared store supplied after an internal miss.",
    ),
    Field::counter(
        "remote_misses",
        "Store lookups that found nothing under the name.",
    ),
    Field::counter(
        "already_used",
        "TLS 1.3 tickets refused because the store says they were used.",
    ),
    Field::counter(
        "open_failures",
        "Values that did not open (damaged, unknown key, other context).",
    ),
    Field::counter("errors", "Store calls that failed."),
    Field::counter("timeouts", "Lookups not answered within the budget."),
    Field::gauge(
        "recent_timeout_percent",
        "Of the last 64 lookups that asked the store, the percentage that timed out (above 50: the budget is below the store's round trip).",
    ),
    Field::gauge(
        "round_trip_us",
        "The slowest store node's answer to the last ping, in microseconds (above the budget, lookups time out).",
    ),
    Field::counter(
        "refused",
        "Store calls the store refused (NOPERM, WRONGPASS, NOAUTH): check its ACL and the password.",
    ),
    Field::counter(
        "skipped",
        "Lookups that did not ask the store because the breaker was open.",
    ),
    Field::counter(
        "later_offers",
        "Offers after a handshake's first, answered without the store.",
    ),
    Field::counter(
        "local_claims",
        "TLS 1.3 tickets claimed without the store, their write never having left this server.",
    ),
    Field::counter(
        "lost_tickets",
        "TLS 1.3 tickets refused because the store lost their value (restart, flush, eviction, failover).",
    ),
    Field::counter("breaker_opens", "How often a node's breaker opened."),
    Field::gauge(
        "breaker",
        "The breaker's state now (1 for the current one): open when any node's lookups are skipped.",
    )
    .labelled("state"),
    Field::gauge("nodes_open", "Store nodes whose lookups are skipped now."),
    Field::gauge(
        "in_flight",
        "Store calls started and not yet finished or dropped.",
    ),
    Field::counter("writes", "Sessions written to the store."),
    Field::counter(
        "dropped_writes",
        "Writes given up: the queue was full or the breaker open.",
    ),
    Field::counter(
        "write_errors",
        "Writes and deletes the store failed or did not answer in time.",
    ),
    Field::counter("deletes", "Sessions deleted from the store."),
    Field::counter(
        "dropped_deletes",
        "Deletes given up (queue full or breaker open): removal is best effort.",
    ),
    Field::gauge("queued", "Writes and deletes waiting in the queue."),
];

/// The metrics of one scrape, gathered from snapshots and encoded as text.
#[derive(Debug, Default, Clone)]
pub struct Metrics {
    families: Vec<MetricFamily>,
}

impl Metrics {
    /// No metrics yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A cache's statistics (`sesscache_*`, [`CACHE_FIELDS`]) and the latency of its
    /// operations (`sesscache_operation_duration_seconds{op=...}`, a histogram per
    /// operation; empty unless the cache times them).
    pub fn cache(&mut self, cache: &SessionCache) -> &mut Self {
        self.snapshot("sesscache_", CACHE_FIELDS, &cache.stats());
        let mut family = family(
            "sesscache_operation_duration_seconds",
            "How long cache operations took (lookups include the shared store's round trip).",
            MetricType::HISTOGRAM,
        );
        for op in Operation::ALL {
            let latency = cache.latency(op);
            let mut histogram = Histogram::default();
            histogram.set_sample_count(latency.count);
            histogram.set_sample_sum(latency.sum_seconds);
            histogram.set_bucket(
                latency
                    .buckets
                    .iter()
                    .map(|&(bound, count)| {
                        let mut bucket = Bucket::default();
                        bucket.set_upper_bound(bound);
                        bucket.set_cumulative_count(count);
                        bucket
                    })
                    .collect(),
            );
            let mut metric = Metric::from_label(vec![label("op", op.name())]);
            metric.set_histogram(histogram);
            family.mut_metric().push(metric);
        }
        self.families.push(family);
        self
    }

    /// The fleet tier's counters (`sesscache_tier_*`, [`TIER_FIELDS`]).
    pub fn tier(&mut self, stats: &impl Serialize) -> &mut Self {
        self.snapshot("sesscache_tier_", TIER_FIELDS, stats)
    }

    /// Any snapshot that serializes as a struct: each field becomes a metric named
    /// `<prefix><key or name>` (`_total` added for counters). A number is the metric's value;
    /// a struct of numbers is one metric with a series per part, labelled by the field's
    /// label; a string is a gauge of 1 labelled with it; a boolean is a gauge of 0 or 1.
    /// Fields not in `fields` are exported as counters named after their key. A snapshot
    /// that does not serialize as a struct adds nothing.
    pub fn snapshot(
        &mut self,
        prefix: &str,
        fields: &[Field],
        value: &impl Serialize,
    ) -> &mut Self {
        let Ok(Value::Object(map)) = serde_json::to_value(value) else {
            return self;
        };
        for (key, value) in &map {
            let field = fields.iter().find(|f| f.key == key.as_str());
            let kind = field.map_or(Kind::Counter, |f| f.kind);
            let base = field.and_then(|f| f.name).unwrap_or(key);
            let name = match kind {
                Kind::Counter => format!("{prefix}{base}_total"),
                Kind::Gauge => format!("{prefix}{base}"),
            };
            let help = field.map_or(key.as_str(), |f| f.help);
            let label_name = field.map_or("kind", |f| f.label);
            let mut out = family(&name, help, metric_type(kind));
            match value {
                Value::Object(parts) => {
                    for (part, value) in parts {
                        if let Some(v) = number(value) {
                            out.mut_metric()
                                .push(sample(kind, vec![label(label_name, part)], v));
                        }
                    }
                }
                Value::String(state) => {
                    out.set_field_type(MetricType::GAUGE);
                    out.mut_metric()
                        .push(sample(Kind::Gauge, vec![label(label_name, state)], 1.0));
                }
                other => {
                    if let Some(v) = number(other) {
                        out.mut_metric().push(sample(kind, Vec::new(), v));
                    }
                }
            }
            if !out.get_metric().is_empty() {
                self.families.push(out);
            }
        }
        self
    }

    /// The metric families gathered, in the order they were added.
    pub fn families(&self) -> &[MetricFamily] {
        &self.families
    }

    /// The metrics in the Prometheus text format ([`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let mut out = Vec::new();
        // Every family built here has a name and at least one metric, the encoder's only
        // conditions; writing to a Vec cannot fail.
        match TextEncoder::new().encode(&self.families, &mut out) {
            Ok(()) => String::from_utf8(out).unwrap_or_default(),
            Err(_) => String::new(),
        }
    }
}

fn family(name: &str, help: &str, kind: MetricType) -> MetricFamily {
    let mut family = MetricFamily::default();
    family.set_name(name.to_owned());
    family.set_help(help.to_owned());
    family.set_field_type(kind);
    family
}

fn metric_type(kind: Kind) -> MetricType {
    match kind {
        Kind::Counter => MetricType::COUNTER,
        Kind::Gauge => MetricType::GAUGE,
    }
}

fn label(name: &str, value: &str) -> LabelPair {
    let mut pair = LabelPair::default();
    pair.set_name(name.to_owned());
    pair.set_value(value.to_owned());
    pair
}

fn sample(kind: Kind, labels: Vec<LabelPair>, value: f64) -> Metric {
    let mut metric = Metric::from_label(labels);
    match kind {
        Kind::Counter => {
            let mut c = Counter::default();
            c.set_value(value);
            metric.set_counter(c);
        }
        Kind::Gauge => {
            let mut g = Gauge::default();
            g.set_value(value);
            metric.set_gauge(g);
        }
    }
    metric
}

/// A JSON number or boolean as a sample value.
fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    }
}
