//! What every reconcile shares: the Kubernetes client, the Losant clients, the event recorder,
//! settings, per-object backoff, and the per-application list snapshots.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

use super::clients::LosantClients;
use super::snapshot::Snapshots;
use crate::losant::RateLimits;
use crate::ops::Metrics;
use crate::sync::conditions::truncate;

/// Tunables of the controllers.
#[derive(Clone, Debug)]
pub struct Settings {
    /// How often each object is reconciled against Losant when nothing changes.
    pub resync_interval: Duration,
    /// How often a `LosantApplication`'s token is re-checked.
    pub application_recheck_interval: Duration,
    /// How soon a permanently failing object is tried again anyway.
    pub stalled_retry_interval: Duration,
    /// First backoff after a transient failure; it doubles up to `max_backoff`.
    pub initial_backoff: Duration,
    /// Longest backoff.
    pub max_backoff: Duration,
    /// How long a create whose outcome is unknown is waited for (to show in lists) before the
    /// operator creates again.
    pub create_grace_period: Duration,
    /// Reconciles in flight per controller.
    pub concurrency: u16,
    /// Limits for requests to each Losant API URL and token.
    pub losant_limits: RateLimits,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            resync_interval: Duration::from_secs(60),
            application_recheck_interval: Duration::from_secs(300),
            stalled_retry_interval: Duration::from_secs(300),
            initial_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(300),
            create_grace_period: Duration::from_secs(30),
            concurrency: 8,
            losant_limits: RateLimits::default(),
        }
    }
}

/// Shared state of the controllers.
pub struct Context {
    /// Kubernetes API client.
    pub kube: kube::Client,
    /// Losant clients by API URL and token.
    pub losant: LosantClients,
    /// Per-application list snapshots for periodic drift checks.
    pub snapshots: Snapshots,
    /// Settings.
    pub settings: Settings,
    /// Prometheus metrics: `metrics.drift_corrected()` after reverting a change made in Losant.
    pub metrics: Metrics,
    recorder: Recorder,
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    /// A context for `kube` with `settings`, with metrics of its own.
    pub fn new(kube: kube::Client, settings: Settings) -> Self {
        Self::with_metrics(kube, settings, Metrics::new())
    }

    /// A context for `kube` with `settings`, recording into `metrics`.
    pub fn with_metrics(kube: kube::Client, settings: Settings, metrics: Metrics) -> Self {
        let reporter = Reporter {
            controller: "losant-operator".into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            recorder: Recorder::new(kube.clone(), reporter),
            losant: LosantClients::new(settings.losant_limits),
            snapshots: Snapshots::default(),
            kube,
            settings,
            metrics,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Publishes an event; a failure to publish is logged, never fatal.
    pub async fn event(
        &self,
        regarding: &ObjectReference,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(truncate(&note, 1000)),
            action: action.to_owned(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&event, regarding).await {
            tracing::warn!(reason, error = %error, "failed to publish event");
        }
    }

    /// The next backoff for `key` after a transient failure (and counts the failure).
    pub fn backoff(&self, key: &str, at_least: Option<Duration>) -> Duration {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = failures.entry(key.to_owned()).or_insert(0);
        let step = self
            .settings
            .initial_backoff
            .saturating_mul(2u32.saturating_pow((*count).min(16)))
            .min(self.settings.max_backoff);
        *count = count.saturating_add(1);
        let jittered = step.mul_f64(0.8 + 0.4 * rand::random::<f64>());
        jittered
            .max(at_least.unwrap_or_default())
            .min(self.settings.max_backoff.max(at_least.unwrap_or_default()))
    }

    /// Forgets the failures of `key` after a success.
    pub fn reset_backoff(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(key);
    }

    /// The resync interval with ±10% jitter, so objects created together spread out.
    pub fn resync(&self) -> Duration {
        self.settings
            .resync_interval
            .mul_f64(0.9 + 0.2 * rand::random::<f64>())
    }
}
