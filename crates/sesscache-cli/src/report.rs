//! Reports for people, read through the statistics' own descriptions
//! (`session_cache::metrics`): a figure's label is its field's report label and its value the
//! field's, so that a report and the metrics name the same figure alike, from one place.

use std::any::type_name;
use std::collections::BTreeMap;
use std::marker::PhantomData;

use serde::Serialize;
use session_cache::metrics::{Describe, Metric};

/// The label reports give the field `key` of `T`. A field `T` does not describe, or does not
/// report, is a bug: it panics, which every report's test finds.
pub(crate) fn label<T: Describe>(key: &str) -> &'static str {
    T::metric(key)
        .and_then(Metric::report_label)
        .unwrap_or_else(|| panic!("{} reports no field {key}", type_name::<T>()))
}

/// A snapshot's numbers by field, as it serializes, with its type's description.
pub(crate) struct Figures<T> {
    numbers: BTreeMap<String, u64>,
    described: PhantomData<fn() -> T>,
}

impl<T: Describe + Serialize> Figures<T> {
    pub(crate) fn of(snapshot: &T) -> Self {
        let numbers = match serde_json::to_value(snapshot) {
            Ok(serde_json::Value::Object(fields)) => fields
                .into_iter()
                .filter_map(|(key, value)| Some((key, value.as_u64()?)))
                .collect(),
            _ => BTreeMap::new(),
        };
        Self {
            numbers,
            described: PhantomData,
        }
    }

    /// The number under `key`, if the snapshot has one there.
    pub(crate) fn get(&self, key: &str) -> Option<u64> {
        self.numbers.get(key).copied()
    }

    /// The label and the number of the field `key`; a field that is not a number is a bug
    /// (as in [`label`]).
    pub(crate) fn row(&self, key: &str) -> (&'static str, u64) {
        let value = self
            .get(key)
            .unwrap_or_else(|| panic!("{} has no number {key}", type_name::<T>()));
        (label::<T>(key), value)
    }

    /// The keys of the fields `T` reports, in its description's order.
    pub(crate) fn reported(&self) -> impl Iterator<Item = &'static str> {
        T::METRICS
            .iter()
            .filter(|m| m.report_label().is_some())
            .map(Metric::key)
    }
}

#[cfg(test)]
mod tests {
    use session_cache::{Resumptions, Stats};

    use super::*;

    #[test]
    fn figures_come_with_their_labels_in_the_description_order() {
        let figures = Figures::of(&Stats::default());
        assert_eq!(figures.row("cache_full"), ("evictions (cache full)", 0));
        assert_eq!(figures.get("resumptions"), None, "a struct, not a number");
        let resumptions = Figures::of(&Resumptions::default());
        let rows: Vec<_> = resumptions
            .reported()
            .map(|key| resumptions.row(key))
            .take(3)
            .collect();
        assert_eq!(
            rows,
            [("resumed", 0), ("nothing offered", 0), ("unknown_id", 0)]
        );
    }

    #[test]
    #[should_panic(expected = "reports no field hit")]
    fn a_label_of_no_field_is_a_bug() {
        label::<Stats>("hit");
    }
}
