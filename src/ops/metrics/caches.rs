//! Counts taken from the watch caches on every scrape: objects by the reason of their `Ready`
//! condition (bounded per kind) and Integrations by the status of their `Connected` condition.

use std::collections::BTreeMap;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::{Metrics, registered};

/// Distinct condition reasons tracked per kind; more fold into [`OTHER`] so a misbehaving writer
/// of status cannot create series without end.
pub(super) const MAX_REASONS_PER_KIND: usize = 32;
/// The label value for anything outside the bounded set.
const OTHER: &str = "Other";
/// The label value for an object with no `Ready` condition yet.
pub const NO_CONDITION: &str = "None";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ObjectLabels {
    kind: String,
    reason: String,
}

/// The `state` label values of `losant_operator_integration_connections`: the `Connected`
/// condition's status `True`, `False`, `Unknown`, or no such condition.
pub const CONNECTION_STATES: [&str; 4] = ["connected", "disconnected", "unknown", "none"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct StateLabels {
    state: &'static str,
}

/// Counts Integrations by connection state (indexes into [`CONNECTION_STATES`]), run on every
/// scrape.
pub(super) type ConnectionSource = Box<dyn Fn() -> [i64; 4] + Send + Sync>;

/// Counts objects of one kind by `Ready` reason, run on every scrape.
pub(super) type ConditionSource = (String, Box<dyn Fn() -> BTreeMap<String, i64> + Send + Sync>);

/// Whether `reason` may be a label value as it is: a condition reason is a short CamelCase word
/// by the Kubernetes API conventions; anything else folds into [`OTHER`].
fn is_plain_reason(reason: &str) -> bool {
    !reason.is_empty() && reason.len() <= 64 && reason.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Registers the families counted from the caches: objects by `Ready` reason, then Integrations
/// by connection state.
pub(super) fn register(
    registry: &mut Registry,
) -> (Family<ObjectLabels, Gauge>, Family<StateLabels, Gauge>) {
    let objects = registered(
        registry,
        "objects",
        "Objects in the watch caches, by kind and the reason of their Ready condition",
        Family::default(),
    );
    let connections = registered(
        registry,
        "integration_connections",
        "Integrations in the watch caches by the status of their Connected condition",
        Family::default(),
    );
    (objects, connections)
}

impl Metrics {
    /// Sets how many objects of `kind` have a `Ready` condition with `reason` (use
    /// [`NO_CONDITION`] for objects without one). Reasons that are not plain CamelCase words,
    /// and reasons beyond the first 32 of a kind, are counted under `Other`.
    pub fn set_condition(&self, kind: &str, reason: &str, count: i64) {
        let reason = self.admit_reason(kind, reason);
        let labels = ObjectLabels {
            kind: kind.to_owned(),
            reason,
        };
        self.inner.objects.get_or_create(&labels).set(count);
    }

    /// Replaces every count of `kind` at once: reasons absent from `counts` read 0.
    pub fn set_conditions(&self, kind: &str, counts: &BTreeMap<String, i64>) {
        let mut folded: BTreeMap<String, i64> = BTreeMap::new();
        for (reason, count) in counts {
            *folded.entry(self.admit_reason(kind, reason)).or_default() += count;
        }
        let known = self.lock_reasons().get(kind).cloned().unwrap_or_default();
        for reason in known {
            let count = folded.get(&reason).copied().unwrap_or(0);
            let labels = ObjectLabels {
                kind: kind.to_owned(),
                reason,
            };
            self.inner.objects.get_or_create(&labels).set(count);
        }
    }

    /// The label for `reason` of `kind`, remembering it (within the per-kind bound).
    fn admit_reason(&self, kind: &str, reason: &str) -> String {
        let mut reasons = self.lock_reasons();
        let known = reasons.entry(kind.to_owned()).or_default();
        let label = if !is_plain_reason(reason) {
            OTHER
        } else if known.iter().any(|r| r == reason) {
            return reason.to_owned();
        } else if known.len() < MAX_REASONS_PER_KIND - 1 {
            // One slot stays free for `Other`.
            reason
        } else {
            OTHER
        };
        if !known.iter().any(|r| r == label) {
            known.push(label.to_owned());
        }
        label.to_owned()
    }

    fn lock_reasons(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<String>>> {
        self.inner
            .reasons
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds a source of `losant_operator_objects` for `kind`: on every scrape, `count` gives
    /// the number of objects by `Ready` reason (e.g. from a watch cache), and the counts of all
    /// sources of a kind are summed (one source per watched namespace).
    pub fn count_conditions(
        &self,
        kind: &str,
        count: impl Fn() -> BTreeMap<String, i64> + Send + Sync + 'static,
    ) {
        self.inner
            .sources
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push((kind.to_owned(), Box::new(count)));
    }

    /// Adds a source of `losant_operator_integration_connections`: on every scrape, `count` gives
    /// the number of Integrations in each of [`CONNECTION_STATES`]; sources are summed.
    pub fn count_connections(&self, count: impl Fn() -> [i64; 4] + Send + Sync + 'static) {
        self.inner
            .connection_sources
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(Box::new(count));
    }

    /// Sets the object gauges from the sums of every source.
    pub(super) fn count_from_caches(&self) {
        let mut totals: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
        {
            let sources = self
                .inner
                .sources
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            for (kind, count) in sources.iter() {
                let total = totals.entry(kind.clone()).or_default();
                for (reason, n) in count() {
                    *total.entry(reason).or_default() += n;
                }
            }
        }
        for (kind, counts) in &totals {
            self.set_conditions(kind, counts);
        }
        self.set_connections();
    }

    fn set_connections(&self) {
        let mut total = [0i64; 4];
        let sources = self
            .inner
            .connection_sources
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for count in sources.iter() {
            for (sum, n) in total.iter_mut().zip(count()) {
                *sum += n;
            }
        }
        if sources.is_empty() {
            return;
        }
        for (state, n) in CONNECTION_STATES.into_iter().zip(total) {
            self.inner
                .connections
                .get_or_create(&StateLabels { state })
                .set(n);
        }
    }
}
