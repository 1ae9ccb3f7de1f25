//! What every reconcile shares: the Kubernetes client, the Losant clients, the event recorder,
//! settings, per-object backoff, and the per-application list snapshots.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ObjectReference, Secret};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

use super::clients::{ApiHostPolicy, LosantClients};
use kube::runtime::reflector::Store;

use super::owners::Owners;
use super::snapshot::Snapshots;
use crate::crd::{Integration, LosantApplication};
use crate::losant::RateLimits;
use crate::ops::Metrics;
use crate::sync::conditions::truncate;

/// How the periodic comparison with Losant is paid for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum SyncStrategy {
    /// One paged list of each application per resync interval, shared by all of its
    /// Integrations (plus each write's own answer): ceil(integrations / 1000) calls per
    /// application per sweep.
    #[default]
    PerApplication,
    /// One name-filtered list per Integration per resync interval (what a literal reading of
    /// "list with a name filter" costs); kept as the benchmark's baseline.
    PerObject,
}

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
    /// Which API hosts `LosantApplication`s may point at.
    pub api_hosts: ApiHostPolicy,
    /// How the periodic comparison with Losant is paid for.
    pub sync_strategy: SyncStrategy,
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
            concurrency: 16,
            losant_limits: RateLimits::default(),
            api_hosts: ApiHostPolicy::default(),
            sync_strategy: SyncStrategy::default(),
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
    /// Which object owns which remote.
    pub owners: Owners,
    /// Tells when every watch cache has synced (for in-use accounting).
    pub caches_synced: Option<crate::ops::Readiness>,
    /// When each application (by uid) was last verified, and against what.
    verified: Mutex<HashMap<String, (std::time::Instant, String)>>,
    /// The Integration caches of every controller, for in-use accounting.
    integration_stores: Mutex<Vec<Store<Integration>>>,
    /// The LosantApplication caches of the Integration controllers (one per watched scope).
    application_stores: Mutex<Vec<Store<LosantApplication>>>,
    /// Secret metadata caches (never data) of the Integration controllers: which version of
    /// each Secret exists, so an unchanged object needs no Secret read.
    secret_stores: Mutex<Vec<Store<PartialObjectMeta<Secret>>>>,
    /// Set once the owner index was seeded from the synced caches.
    owners_loaded: tokio::sync::OnceCell<()>,
    /// Clients by application uid, with the versions they were built from.
    application_clients: Mutex<HashMap<String, (String, crate::losant::Client)>>,
    /// How many Integration caches there will be (one per watched scope).
    expected_integration_stores: std::sync::atomic::AtomicUsize,
    /// Settings.
    pub settings: Settings,
    /// Prometheus metrics: `metrics.drift_corrected()` after reverting a change made in Losant.
    pub metrics: Metrics,
    reporter: Reporter,
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
            reporter,
            losant: LosantClients::new(settings.losant_limits, settings.api_hosts.clone())
                .with_observer(metrics.losant_observer()),
            snapshots: Snapshots::default(),
            owners: Owners::default(),
            caches_synced: None,
            verified: Mutex::new(HashMap::new()),
            integration_stores: Mutex::new(Vec::new()),
            application_stores: Mutex::new(Vec::new()),
            secret_stores: Mutex::new(Vec::new()),
            owners_loaded: tokio::sync::OnceCell::new(),
            application_clients: Mutex::new(HashMap::new()),
            expected_integration_stores: std::sync::atomic::AtomicUsize::new(0),
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
        // A recorder per Event: kube's recorder keeps every Event it published for six minutes
        // to count repeats, and scans all of them on each publish. The operator publishes only
        // on transitions, so there are few repeats to count, and after creating 10,000 objects
        // that cache held 10,000 Events and made each publish a scan of them.
        let recorder = Recorder::new(self.kube.clone(), self.reporter.clone());
        match recorder.publish(&event, regarding).await {
            Ok(()) => self.metrics.event_published(),
            Err(error) => tracing::warn!(reason, error = %error, "failed to publish event"),
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

    /// Adds a controller's Integration cache to the ones in-use accounting reads.
    pub fn register_integration_store(&self, store: Store<Integration>) {
        self.integration_stores
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(store);
    }

    /// Adds a LosantApplication cache that [`Context::cached_application`] reads.
    pub fn register_application_store(&self, store: Store<LosantApplication>) {
        self.application_stores
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(store);
    }

    /// The cached `LosantApplication` `namespace/name`: `Some(None)` when a synced cache of that
    /// namespace does not hold it, `None` when no cache can answer (read the API server).
    pub fn cached_application(
        &self,
        namespace: &str,
        name: &str,
    ) -> Option<Option<std::sync::Arc<LosantApplication>>> {
        self.find_cached(&self.application_stores, namespace, name)
    }

    /// Waits (once per process) until the watch caches have synced and seeds the owner index
    /// from them, so the first reconciles already see every senior claimant.
    pub async fn owners_ready(&self) {
        self.owners_loaded
            .get_or_init(|| async {
                let stores = self
                    .integration_stores(Duration::from_secs(600))
                    .await
                    .unwrap_or_default();
                let objects: Vec<_> = stores.iter().flat_map(Store::state).collect();
                let apps: Vec<_> = self
                    .application_stores
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .iter()
                    .flat_map(Store::state)
                    .collect();
                self.owners.load(&objects, &apps);
                tracing::debug!(
                    objects = objects.len(),
                    "owner index seeded from the caches"
                );
                // The initial lists are done: give back what decoding them left free.
                crate::ops::memory::trim();
            })
            .await;
    }

    /// Adds a Secret metadata cache that [`Context::secret_version`] reads.
    pub fn register_secret_store(&self, store: Store<PartialObjectMeta<Secret>>) {
        self.secret_stores
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(store);
    }

    /// The `resourceVersion` of Secret `namespace/name` as cached: `Some(None)` when a synced
    /// cache says it does not exist, `None` when no cache can answer.
    pub fn secret_version(&self, namespace: &str, name: &str) -> Option<Option<String>> {
        self.find_cached(&self.secret_stores, namespace, name)
            .map(|secret| secret.and_then(|s| s.metadata.resource_version.clone()))
    }

    /// `namespace/name` in `stores`: `Some(None)` when synced caches do not hold it, `None` when
    /// no cache can answer (not synced yet, or none registered).
    fn find_cached<K>(
        &self,
        stores: &Mutex<Vec<Store<K>>>,
        namespace: &str,
        name: &str,
    ) -> Option<Option<std::sync::Arc<K>>>
    where
        K: kube::Resource<DynamicType = ()> + Clone + 'static,
    {
        let synced = self
            .caches_synced
            .as_ref()
            .is_some_and(crate::ops::Readiness::is_ready);
        let stores = stores
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        if !synced || stores.is_empty() {
            return None;
        }
        let reference = kube::runtime::reflector::ObjectRef::new(name).within(namespace);
        // With one cache per watched namespace, a miss in all of them means it does not exist.
        Some(stores.iter().find_map(|store| store.get(&reference)))
    }

    /// A client built earlier for this application, if nothing it was built from changed
    /// (`fingerprint`: the application's and its Secrets' versions).
    pub fn application_client(
        &self,
        uid: &str,
        fingerprint: &str,
    ) -> Option<crate::losant::Client> {
        let clients = self
            .application_clients
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        clients
            .get(uid)
            .filter(|(seen, _)| seen == fingerprint)
            .map(|(_, client)| client.clone())
    }

    /// Remembers the client built for an application.
    pub fn remember_application_client(
        &self,
        uid: &str,
        fingerprint: String,
        client: crate::losant::Client,
    ) {
        let mut clients = self
            .application_clients
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if clients.len() > 10_000 {
            clients.clear();
        }
        clients.insert(uid.to_owned(), (fingerprint, client));
    }

    /// Says how many Integration caches will be registered.
    pub fn expect_integration_stores(&self, count: usize) {
        self.expected_integration_stores
            .store(count, std::sync::atomic::Ordering::SeqCst);
    }

    /// Every Integration cache, if all of them exist and have synced within `patience` (a
    /// missing or unsynced cache would make an application look unused).
    pub async fn integration_stores(&self, patience: Duration) -> Option<Vec<Store<Integration>>> {
        let expected = self
            .expected_integration_stores
            .load(std::sync::atomic::Ordering::SeqCst);
        // Not `Store::wait_until_ready`: in kube-runtime 5.0 a second waiter on a store can leave
        // the controller's own runner asleep. The readiness fed from the watch streams is safe
        // to wait on from anywhere.
        let all_synced = async {
            loop {
                let stores = self
                    .integration_stores
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .clone();
                if stores.len() >= expected {
                    if let Some(readiness) = &self.caches_synced {
                        readiness.wait().await;
                    }
                    return stores;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        tokio::time::timeout(patience, all_synced).await.ok()
    }

    /// Whether the application `uid` was verified with this `fingerprint` within the re-check
    /// interval.
    pub fn verified_recently(&self, uid: &str, fingerprint: &str) -> bool {
        let verified = self
            .verified
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        verified.get(uid).is_some_and(|(at, seen)| {
            seen == fingerprint && at.elapsed() < self.settings.application_recheck_interval
        })
    }

    /// Remembers a successful verification.
    pub fn note_verified(&self, uid: &str, fingerprint: String) {
        let mut verified = self
            .verified
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if verified.len() > 10_000 {
            verified.clear();
        }
        verified.insert(uid.to_owned(), (std::time::Instant::now(), fingerprint));
    }

    /// Forgets the failures of `key` after a success.
    pub fn reset_backoff(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(key);
    }

    /// When an object in sync is looked at again. Per object: after the resync interval with
    /// ±10% jitter, so objects created together spread out. Per application: when the sweep
    /// brings it back (its remote changed, or the periodic full sweep), so no timer per object
    /// is kept (at 10,000 objects those timers held about 7 MiB).
    pub fn resync(&self) -> Action {
        match self.settings.sync_strategy {
            super::SyncStrategy::PerObject => Action::requeue(
                self.settings
                    .resync_interval
                    .mul_f64(0.9 + 0.2 * rand::random::<f64>()),
            ),
            super::SyncStrategy::PerApplication => Action::await_change(),
        }
    }
}
