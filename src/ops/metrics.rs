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
use prometheus_client::registry::Registry;

use crate::losant::RequestObserver;

/// Prefix of every metric name.
const PREFIX: &str = "losant_operator";
/// Distinct condition reasons tracked per kind; more fold into [`OTHER`] so a misbehaving writer
/// of status cannot create series without end.
const MAX_REASONS_PER_KIND: usize = 32;
/// The label value for anything outside the bounded set.
const OTHER: &str = "Other";
/// The label value for an object with no `Ready` condition yet.
pub const NO_CONDITION: &str = "None";

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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    operation: &'static str,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ObjectLabels {
    kind: String,
    reason: String,
}

/// The `state` label values of `losant_operator_integration_connections`: the `Connected`
/// condition's status `True`, `False`, `Unknown`, or no such condition.
pub const CONNECTION_STATES: [&str; 4] = ["connected", "disconnected", "unknown", "none"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

/// Counts Integrations by connection state (indexes into [`CONNECTION_STATES`]), run on every
/// scrape.
type ConnectionSource = Box<dyn Fn() -> [i64; 4] + Send + Sync>;

/// Counts objects of one kind by `Ready` reason, run on every scrape.
type ConditionSource = (String, Box<dyn Fn() -> BTreeMap<String, i64> + Send + Sync>);

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

/// Metrics of requests to Losant; the [`RequestObserver`] given to Losant clients.
#[derive(Debug, Default)]
pub struct LosantRequestMetrics {
    requests: Family<RequestLabels, Counter>,
    rate_limited: Family<OperationLabels, Counter>,
    retries: Family<OperationLabels, Counter>,
}

impl RequestObserver for LosantRequestMetrics {
    fn observe(&self, operation: &'static str, status: Option<u16>, retried: bool) {
        let operation = bounded_operation(operation);
        let labels = RequestLabels {
            operation,
            status: status_label(status),
        };
        self.requests.get_or_create(&labels).inc();
        let by_operation = OperationLabels { operation };
        if status == Some(429) {
            self.rate_limited.get_or_create(&by_operation).inc();
        }
        if retried {
            self.retries.get_or_create(&by_operation).inc();
        }
    }
}

/// The operation names the client promises; anything else is counted as `other`.
fn bounded_operation(operation: &'static str) -> &'static str {
    match operation {
        "list" | "create" | "get" | "patch" | "delete" => operation,
        _ => "other",
    }
}

/// A status code as a label: `0` when there was no answer, the code when it is a valid HTTP
/// status, `other` for anything a broken server might send.
fn status_label(status: Option<u16>) -> String {
    match status {
        None => "0".to_owned(),
        Some(code @ 100..=599) => code.to_string(),
        Some(_) => "other".to_owned(),
    }
}

/// Whether `reason` may be a label value as it is: a condition reason is a short CamelCase word
/// by the Kubernetes API conventions; anything else folds into [`OTHER`].
fn is_plain_reason(reason: &str) -> bool {
    !reason.is_empty() && reason.len() <= 64 && reason.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl Metrics {
    /// A fresh registry with every metric at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix(PREFIX);
        let reconciles = Family::<ReconcileLabels, Counter>::default();
        registry.register(
            "reconciles",
            "Reconciles finished, by kind and result",
            reconciles.clone(),
        );
        let reconcile_duration =
            Family::<KindLabels, Histogram>::new_with_constructor(duration_histogram as fn() -> _);
        registry.register(
            "reconcile_duration_seconds",
            "How long reconciles took, by kind",
            reconcile_duration.clone(),
        );
        let requests = Arc::new(LosantRequestMetrics::default());
        registry.register(
            "losant_requests",
            "HTTP requests to Losant (each attempt), by operation and status code (0: no answer)",
            requests.requests.clone(),
        );
        registry.register(
            "losant_rate_limited",
            "Answers 429 (rate limited) from Losant, by operation",
            requests.rate_limited.clone(),
        );
        registry.register(
            "losant_retries",
            "Retried requests to Losant, by operation",
            requests.retries.clone(),
        );
        let drift_corrections = Counter::default();
        registry.register(
            "drift_corrections",
            "Changes made in Losant that the operator reverted",
            drift_corrections.clone(),
        );
        let objects = Family::<ObjectLabels, Gauge>::default();
        registry.register(
            "objects",
            "Objects in the watch caches, by kind and the reason of their Ready condition",
            objects.clone(),
        );
        let connections = Family::<StateLabels, Gauge>::default();
        registry.register(
            "integration_connections",
            "Integrations in the watch caches by the status of their Connected condition",
            connections.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica holds the leader lease (always 1 without leader election)",
            leader.clone(),
        );
        let sweeps = Family::<SweepLabels, Counter>::default();
        registry.register(
            "sweeps",
            "Per-application sweeps (one list of each application, then a comparison of each object), by result",
            sweeps.clone(),
        );
        for result in ["ok", "partial"] {
            drop(sweeps.get_or_create(&SweepLabels { result }));
        }
        let status_writes = Counter::default();
        registry.register(
            "status_writes",
            "Status writes to the Kubernetes API (only changed statuses are written)",
            status_writes.clone(),
        );
        let events = Counter::default();
        registry.register("events", "Events published", events.clone());
        let heap = Family::<HeapLabels, Gauge>::default();
        registry.register(
            "heap_bytes",
            "Heap bytes by state: in_use (live allocations) and free (held by the allocator); read on each scrape, absent where the allocator cannot tell",
            heap.clone(),
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

    /// Sets the leader gauge.
    pub fn set_leader(&self, leader: bool) {
        self.inner.leader.set(i64::from(leader));
    }

    /// The observer to hand to every Losant client, so their requests are counted here.
    pub fn losant_observer(&self) -> Arc<dyn RequestObserver> {
        Arc::clone(&self.inner.requests) as Arc<dyn RequestObserver>
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

    /// The OpenMetrics text exposition of every metric, with the object gauges freshly counted.
    pub fn encode(&self) -> Result<String, fmt::Error> {
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
        if let Some(heap) = super::memory::heap() {
            for (state, bytes) in [("in_use", heap.in_use), ("free", heap.free)] {
                self.inner
                    .heap
                    .get_or_create(&HeapLabels { state })
                    .set(i64::try_from(bytes).unwrap_or(i64::MAX));
            }
        }
        let mut text = String::new();
        encode(&mut text, &self.inner.registry)?;
        Ok(text)
    }
}

/// Reconcile durations from 5 ms to about 80 s: a reconcile is a few HTTP calls, but a
/// rate-limited or retried one can wait for tens of seconds.
fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
    }

    #[test]
    fn reconciles_are_counted_by_kind_and_result() {
        let metrics = Metrics::new();
        metrics.reconcile_finished("Integration", true, Duration::from_millis(20));
        metrics.reconcile_finished("Integration", true, Duration::from_millis(20));
        metrics.reconcile_finished("Integration", false, Duration::from_millis(20));
        let text = metrics.encode().expect("encodes");
        assert_eq!(
            sample(
                &text,
                r#"losant_operator_reconciles_total{kind="Integration",result="ok"}"#
            ),
            Some(2.0)
        );
        assert_eq!(
            sample(
                &text,
                r#"losant_operator_reconciles_total{kind="Integration",result="error"}"#
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                r#"losant_operator_reconcile_duration_seconds_count{kind="Integration"}"#
            ),
            Some(3.0)
        );
        assert!(text.ends_with("# EOF\n"), "OpenMetrics ends with EOF");
    }

    #[test]
    fn requests_count_statuses_429s_and_retries() {
        let metrics = Metrics::new();
        let observer = metrics.losant_observer();
        observer.observe("get", Some(200), false);
        observer.observe("get", Some(429), false);
        observer.observe("get", Some(429), true);
        observer.observe("patch", None, true);
        observer.observe("made-up", Some(9999), false);
        let text = metrics.encode().expect("encodes");
        let get = |s: &str| sample(&text, s);
        assert_eq!(
            get(r#"losant_operator_losant_requests_total{operation="get",status="429"}"#),
            Some(2.0)
        );
        assert_eq!(
            get(r#"losant_operator_losant_requests_total{operation="patch",status="0"}"#),
            Some(1.0)
        );
        assert_eq!(
            get(r#"losant_operator_losant_requests_total{operation="other",status="other"}"#),
            Some(1.0)
        );
        assert_eq!(
            get(r#"losant_operator_losant_rate_limited_total{operation="get"}"#),
            Some(2.0)
        );
        assert_eq!(
            get(r#"losant_operator_losant_retries_total{operation="get"}"#),
            Some(1.0)
        );
        assert_eq!(
            get(r#"losant_operator_losant_retries_total{operation="patch"}"#),
            Some(1.0)
        );
    }

    #[test]
    fn condition_reasons_are_bounded_and_zeroed_when_gone() {
        let metrics = Metrics::new();
        let mut counts = BTreeMap::new();
        counts.insert("Synced".to_owned(), 3);
        counts.insert("name with spaces: secret".to_owned(), 1);
        metrics.set_conditions("Integration", &counts);
        let text = metrics.encode().expect("encodes");
        assert_eq!(
            sample(
                &text,
                r#"losant_operator_objects{kind="Integration",reason="Synced"}"#
            ),
            Some(3.0)
        );
        assert_eq!(
            sample(
                &text,
                r#"losant_operator_objects{kind="Integration",reason="Other"}"#
            ),
            Some(1.0)
        );
        assert!(!text.contains("secret"), "free text never becomes a label");

        metrics.set_conditions("Integration", &BTreeMap::new());
        let text = metrics.encode().expect("encodes");
        assert_eq!(
            sample(
                &text,
                r#"losant_operator_objects{kind="Integration",reason="Synced"}"#
            ),
            Some(0.0)
        );

        for i in 0..100 {
            metrics.set_condition("Integration", &format!("Reason{i}"), 1);
        }
        let series = metrics
            .encode()
            .expect("encodes")
            .lines()
            .filter(|l| l.starts_with("losant_operator_objects{kind=\"Integration\""))
            .count();
        assert!(series <= MAX_REASONS_PER_KIND, "{series} series");
    }

    #[test]
    fn condition_sources_are_summed_on_every_scrape() {
        let metrics = Metrics::new();
        for n in [3, 4] {
            metrics.count_conditions("LosantApplication", move || {
                BTreeMap::from([("Verified".to_owned(), n)])
            });
        }
        let text = metrics.encode().expect("encodes");
        assert_eq!(
            sample(
                &text,
                r#"losant_operator_objects{kind="LosantApplication",reason="Verified"}"#
            ),
            Some(7.0)
        );
    }

    #[test]
    fn registered_kinds_start_at_zero() {
        let metrics = Metrics::new();
        metrics.register_kind("Integration");
        let text = metrics.encode().expect("encodes");
        assert_eq!(
            sample(
                &text,
                r#"losant_operator_reconciles_total{kind="Integration",result="error"}"#
            ),
            Some(0.0)
        );
    }

    #[test]
    fn drift_and_leader() {
        let metrics = Metrics::new();
        metrics.drift_corrected();
        metrics.set_leader(true);
        let text = metrics.encode().expect("encodes");
        assert_eq!(
            sample(&text, "losant_operator_drift_corrections_total"),
            Some(1.0)
        );
        assert_eq!(sample(&text, "losant_operator_leader"), Some(1.0));
    }

    #[test]
    fn connections_are_counted_by_state_from_every_source() {
        let metrics = Metrics::new();
        let text = metrics.encode().expect("encodes");
        assert!(
            !text.contains("integration_connections{"),
            "no source, no series: {text}"
        );
        metrics.count_connections(|| [2, 1, 0, 3]);
        metrics.count_connections(|| [1, 0, 0, 0]);
        let text = metrics.encode().expect("encodes");
        for (state, expected) in [
            ("connected", 3.0),
            ("disconnected", 1.0),
            ("unknown", 0.0),
            ("none", 3.0),
        ] {
            let series = format!("losant_operator_integration_connections{{state=\"{state}\"}}");
            assert_eq!(sample(&text, &series), Some(expected), "{state}: {text}");
        }
    }
}
