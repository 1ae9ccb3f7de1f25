//! Prometheus metrics of the operator, served as OpenMetrics text on `/metrics`.
//!
//! Every label is bounded: kinds, results, Losant operations, HTTP status codes and condition
//! reasons. No label ever carries an object name, a namespace, an error message or a URL, so the
//! number of series does not grow with the number of objects.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `losant_operator_reconciles_total` | counter | `kind`, `result` (`ok`/`error`) |
//! | `losant_operator_reconcile_duration_seconds` | histogram | `kind` |
//! | `losant_operator_losant_requests_total` | counter | `operation`, `status` (`0`: no answer) |
//! | `losant_operator_losant_rate_limited_total` | counter | `operation` (answers 429) |
//! | `losant_operator_losant_retries_total` | counter | `operation` |
//! | `losant_operator_drift_corrections_total` | counter | — |
//! | `losant_operator_objects` | gauge | `kind`, `reason` (the `Ready` condition's reason) |
//! | `losant_operator_integration_connections` | gauge | `state` (`connected`, `disconnected`, `unknown`, `none`: the `Connected` condition) |
//! | `losant_operator_leader` | gauge | — (1 while this replica holds the lease) |
//! | `losant_operator_sweeps_total` | counter | `result` (`ok`/`partial`: some application's list failed) |
//! | `losant_operator_status_writes_total` | counter | — (status writes of either kind) |
//! | `losant_operator_events_total` | counter | — (Events published) |
//! | `losant_operator_heap_bytes` | gauge | `state` (`in_use`: live allocations; `free`: held by the allocator, not returned to the OS) |
//! | `losant_operator_runtime_tasks` | gauge | — (Tokio tasks alive, read on each scrape) |
//!
//! # How to feed it
//! - Reconcile counts and durations: [`Metrics::reconcile_finished`], called by the reconcile
//!   wrapper in `controller/mod.rs`; reconcilers do nothing.
//! - Losant requests: [`Metrics::losant_observer`] gives the [`RequestObserver`] to hand to the
//!   Losant client builder.
//! - Drift: a reconciler calls [`Metrics::drift_corrected`] once per PATCH that reverted a change
//!   made in Losant.
//! - Objects by reason: counted from the watch caches on every scrape (sources registered with
//!   [`Metrics::count_conditions`] by `controller/mod.rs`), so reconcilers need not call
//!   [`Metrics::set_condition`]; it exists for counts kept elsewhere.
//!
//! Here: the registry and the counters fed directly; `requests` counts requests to Losant and
//! `caches` counts objects from the watch caches.

mod caches;
mod requests;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry};

pub use caches::{CONNECTION_STATES, NO_CONDITION};
pub use requests::LosantRequestMetrics;

use crate::losant::RequestObserver;
use caches::{ConditionSource, ConnectionSource, ObjectLabels, StateLabels};

/// Prefix of every metric name.
const PREFIX: &str = "losant_operator";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HeapLabels {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReconcileLabels {
    kind: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SweepLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

/// The operator's metrics: cheap to clone, every clone feeds the same registry.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    reconciles: Family<ReconcileLabels, Counter>,
    reconcile_duration: Family<KindLabels, Histogram>,
    drift_corrections: Counter,
    objects: Family<ObjectLabels, Gauge>,
    leader: Gauge,
    sweeps: Family<SweepLabels, Counter>,
    status_writes: Counter,
    events: Counter,
    heap: Family<HeapLabels, Gauge>,
    runtime_tasks: Gauge,
    requests: Arc<LosantRequestMetrics>,
    sources: Mutex<Vec<ConditionSource>>,
    connections: Family<StateLabels, Gauge>,
    connection_sources: Mutex<Vec<ConnectionSource>>,
    /// Reasons ever reported per kind, so a reason that drops to no objects reads 0 instead of
    /// keeping its last count.
    reasons: Mutex<BTreeMap<String, Vec<String>>>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric at zero. (Registration order is exposition order.)
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix(PREFIX);
        let r = &mut registry;
        let reconciles = registered(
            r,
            "reconciles",
            "Reconciles finished, by kind and result",
            Family::default(),
        );
        let reconcile_duration = registered(
            r,
            "reconcile_duration_seconds",
            "How long reconciles took, by kind",
            Family::new_with_constructor(duration_histogram as fn() -> _),
        );
        let requests = Arc::new(LosantRequestMetrics::default());
        requests.register(r);
        let drift_corrections = registered(
            r,
            "drift_corrections",
            "Changes made in Losant that the operator reverted",
            Counter::default(),
        );
        let (objects, connections) = caches::register(r);
        let leader = registered(
            r,
            "leader",
            "1 while this replica holds the leader lease (always 1 without leader election)",
            Gauge::default(),
        );
        let sweeps = registered(
            r,
            "sweeps",
            "Per-application sweeps (one list of each application, then a comparison of each object), by result",
            Family::<SweepLabels, Counter>::default(),
        );
        for result in ["ok", "partial"] {
            drop(sweeps.get_or_create(&SweepLabels { result }));
        }
        let status_writes = registered(
            r,
            "status_writes",
            "Status writes to the Kubernetes API (only changed statuses are written)",
            Counter::default(),
        );
        let events = registered(r, "events", "Events published", Counter::default());
        let heap = registered(
            r,
            "heap_bytes",
            "Heap bytes by state: in_use (live allocations) and free (held by the allocator); read on each scrape, absent where the allocator cannot tell",
            Family::default(),
        );
        let runtime_tasks = registered(
            r,
            "runtime_tasks",
            "Tokio tasks alive in the operator's runtime; read on each scrape (a leak of tasks shows as growth)",
            Gauge::default(),
        );
        Self {
            inner: Arc::new(Inner {
                registry,
                reconciles,
                reconcile_duration,
                drift_corrections,
                objects,
                connections,
                connection_sources: Mutex::default(),
                leader,
                sweeps,
                status_writes,
                events,
                heap,
                runtime_tasks,
                requests,
                sources: Mutex::new(Vec::new()),
                reasons: Mutex::new(BTreeMap::new()),
            }),
        }
    }

    /// Creates the reconcile series of `kind` at zero, so that `rate()` and alerts see the kind
    /// before its first reconcile (a standby, for one, never reconciles).
    pub fn register_kind(&self, kind: &'static str) {
        for result in ["ok", "error"] {
            let labels = ReconcileLabels {
                kind: kind.to_owned(),
                result,
            };
            drop(self.inner.reconciles.get_or_create(&labels));
        }
        drop(self.inner.reconcile_duration.get_or_create(&KindLabels {
            kind: kind.to_owned(),
        }));
    }

    /// Records a finished reconcile of `kind` (e.g. `Integration`).
    pub fn reconcile_finished(&self, kind: &'static str, ok: bool, took: Duration) {
        let labels = ReconcileLabels {
            kind: kind.to_owned(),
            result: if ok { "ok" } else { "error" },
        };
        self.inner.reconciles.get_or_create(&labels).inc();
        self.inner
            .reconcile_duration
            .get_or_create(&KindLabels {
                kind: kind.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// Counts a finished sweep; `ok` when every application's list succeeded.
    pub fn sweep_done(&self, ok: bool) {
        let result = if ok { "ok" } else { "partial" };
        self.inner
            .sweeps
            .get_or_create(&SweepLabels { result })
            .inc();
    }

    /// Counts a status write.
    pub fn status_written(&self) {
        self.inner.status_writes.inc();
    }

    /// Counts a published Event.
    pub fn event_published(&self) {
        self.inner.events.inc();
    }

    /// Counts one correction of drift: a write to Losant that reverted a change made there.
    /// Call it once per corrected remote object, after the write succeeded.
    pub fn drift_corrected(&self) {
        self.inner.drift_corrections.inc();
    }

    /// Sets the leader gauge.
    pub fn set_leader(&self, leader: bool) {
        self.inner.leader.set(i64::from(leader));
    }

    /// The observer to hand to every Losant client, so their requests are counted here.
    pub fn losant_observer(&self) -> Arc<dyn RequestObserver> {
        Arc::clone(&self.inner.requests) as Arc<dyn RequestObserver>
    }

    /// The OpenMetrics text exposition of every metric, with the object gauges freshly counted.
    pub fn encode(&self) -> Result<String, fmt::Error> {
        self.count_from_caches();
        if let Some(heap) = super::memory::heap() {
            for (state, bytes) in [("in_use", heap.in_use), ("free", heap.free)] {
                self.inner
                    .heap
                    .get_or_create(&HeapLabels { state })
                    .set(i64::try_from(bytes).unwrap_or(i64::MAX));
            }
        }
        // Scraped from the metrics server, inside the runtime; elsewhere (a unit test) left as is.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let tasks = runtime.metrics().num_alive_tasks();
            self.inner
                .runtime_tasks
                .set(i64::try_from(tasks).unwrap_or(i64::MAX));
        }
        let mut text = String::new();
        encode(&mut text, &self.inner.registry)?;
        Ok(text)
    }
}

/// Registers `metric` under `name` and gives it back, so each is made and registered in one step.
fn registered<M: Metric + Clone>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}

/// Reconcile durations from 5 ms to about 80 s: a reconcile is a few HTTP calls, but a
/// rate-limited or retried one can wait for tens of seconds.
fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}
