//! The metrics as a `prometheus` [`Collector`](prometheus::core::Collector), for a server
//! that keeps its own [`Registry`](prometheus::Registry).

use std::collections::HashMap;
use std::fmt;

use ctx::Context;
use prometheus::core::Desc;
use prometheus::proto::MetricFamily;
use serde::Serialize;
use session_cache::metrics::Describe;

use crate::Metrics;

/// A context's cache statistics and operation latencies, and optionally the fleet tier's
/// counters, as a `prometheus` 0.14 collector: each scrape of the registry it is registered
/// in reads them anew, as the same metric families (names, help, types, labels) that
/// [`Metrics::cache`] and [`Metrics::tier`] write.
///
/// It holds a handle to the context, so the cache lives at least as long as the registry
/// keeps the collector. The latency histograms (`sesscache_operation_duration_seconds`)
/// count only what a cache times: turn on [`CacheConfig::timing`](session_cache::CacheConfig)
/// in the context's config for them. Its metrics' names are fixed, so a registry takes one
/// such collector; another context's goes in a registry of its own (or one made with
/// `Registry::new_custom` and a label that tells them apart).
///
/// ```
/// use ctx::{Context, ContextConfig};
/// use prometheus::{Encoder, Registry, TextEncoder};
/// use session_cache::CacheConfig;
/// use sesscache_metrics::Collector;
///
/// let cache = CacheConfig { timing: true, ..CacheConfig::default() };
/// let context = Context::new(ContextConfig { cache, ..ContextConfig::default() });
/// let registry = Registry::new();
/// // With the fleet tier: `Collector::new(&context).tier(move || tier.stats())`.
/// registry.register(Box::new(Collector::new(&context))).unwrap();
///
/// let mut text = Vec::new();
/// TextEncoder::new().encode(&registry.gather(), &mut text).unwrap();
/// assert!(String::from_utf8(text).unwrap().contains("sesscache_hits_total 0"));
/// ```
pub struct Collector {
    context: Context,
    tier: Option<AddTier>,
    descs: Vec<Desc>,
}

/// Adds the tier's snapshot of the moment to a scrape's metrics.
type AddTier = Box<dyn Fn(&mut Metrics) + Send + Sync>;

impl Collector {
    /// A collector of `context`'s cache (it keeps a handle to the context).
    pub fn new(context: &Context) -> Self {
        let mut collector = Self {
            context: context.clone(),
            tier: None,
            descs: Vec::new(),
        };
        collector.descs = describe(&collector.gather());
        collector
    }

    /// The fleet tier's counters too (`sesscache_tier_*`), read from `stats` at each scrape:
    /// `move || tier.stats()` with a clone of the `sesscache_redis::Tier` attached to the
    /// context's cache.
    #[must_use]
    pub fn tier<S, F>(mut self, stats: F) -> Self
    where
        F: Fn() -> S + Send + Sync + 'static,
        S: Describe + Serialize,
    {
        self.tier = Some(Box::new(move |metrics: &mut Metrics| {
            metrics.tier(&stats());
        }));
        self.descs = describe(&self.gather());
        self
    }

    fn gather(&self) -> Vec<MetricFamily> {
        let mut metrics = Metrics::new();
        metrics.cache(self.context.cache());
        if let Some(tier) = &self.tier {
            tier(&mut metrics);
        }
        metrics.families
    }
}

/// One description per family: its name, help and label names. Every snapshot serializes
/// the same fields at every scrape, so the families a first gathering finds are those of
/// every later one.
fn describe(families: &[MetricFamily]) -> Vec<Desc> {
    families
        .iter()
        .filter_map(|family| {
            let labels = family
                .get_metric()
                .first()
                .map(|metric| {
                    metric
                        .get_label()
                        .iter()
                        .map(|label| label.name().to_owned())
                        .collect()
                })
                .unwrap_or_default();
            // Only a family without help or with an invalid name fails here; every
            // description has help (its type's tests check) and a valid name.
            Desc::new(
                family.name().to_owned(),
                family.help().to_owned(),
                labels,
                HashMap::new(),
            )
            .ok()
        })
        .collect()
}

impl prometheus::core::Collector for Collector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.gather()
    }
}

impl fmt::Debug for Collector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Collector")
            .field("tier", &self.tier.is_some())
            .field("metrics", &self.descs.len())
            .finish_non_exhaustive()
    }
}
