//! What every reconcile shares, built once after every watch exists and never changed after:
//! the Kubernetes client, the watch caches, the Losant clients, the clock, settings, metrics, the
//! per-application list snapshots, the owner index, and memos under one bound ([`Bounded`]).

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::Store;

use super::bounded::Bounded;
use super::caches::Caches;
use super::clients::{ApiHostPolicy, LosantClients};
use super::clock::Clock;
use super::owners::Owners;
use super::snapshot::Snapshots;
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
    /// How long one Losant request may take, answer included.
    pub losant_request_timeout: Duration,
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
            losant_request_timeout: Duration::from_secs(30),
            api_hosts: ApiHostPolicy::default(),
            sync_strategy: SyncStrategy::default(),
        }
    }
}

/// How many entries each memo of the [`Context`] keeps (see [`Bounded`]).
const MEMO_CAPACITY: usize = 10_000;

/// Shared state of the controllers.
pub struct Context {
    /// Kubernetes API client.
    pub kube: kube::Client,
    /// The watch caches reconciles read.
    pub caches: Caches,
    /// Losant clients by API URL and token.
    pub losant: LosantClients,
    /// Per-application list snapshots for periodic drift checks.
    pub snapshots: Snapshots,
    /// Which object owns which remote.
    pub owners: Owners,
    /// What time it is.
    pub clock: Clock,
    /// Settings.
    pub settings: Settings,
    /// Prometheus metrics: `metrics.drift_corrected()` after reverting a change made in Losant.
    pub metrics: Metrics,
    reporter: Reporter,
    /// Set once the owner index was seeded from the synced caches.
    owners_loaded: tokio::sync::OnceCell<()>,
    /// When each application (by uid) was last verified, and against what.
    verified: Bounded<String, (Timestamp, String)>,
    /// Clients by application uid, with the versions they were built from.
    application_clients: Bounded<String, (String, crate::losant::Client)>,
    /// Transient failures in a row, by object (see [`super::backoff_key`]).
    failures: Bounded<String, u32>,
    /// By a hash of the object's uid (16 bytes an entry, for every object): a digest of the
    /// last status this process wrote (what it says was applied), so a reconcile of a cached
    /// copy that has not caught up with that write reads the object afresh instead of acting on
    /// the stale status (e.g. sending rotated Secrets twice).
    written: Bounded<u64, u64>,
}

impl Context {
    /// The context of controllers that read `caches`, with `settings`, recording into `metrics`
    /// and reading the time from `clock`.
    pub fn new(
        kube: kube::Client,
        caches: Caches,
        settings: Settings,
        metrics: Metrics,
        clock: Clock,
    ) -> Self {
        let reporter = Reporter {
            controller: "losant-operator".into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            losant: LosantClients::new(settings.losant_limits, settings.api_hosts.clone())
                .with_observer(metrics.losant_observer())
                .with_request_timeout(settings.losant_request_timeout),
            kube,
            caches,
            snapshots: Snapshots::new(clock.clone()),
            owners: Owners::default(),
            clock,
            settings,
            metrics,
            reporter,
            owners_loaded: tokio::sync::OnceCell::new(),
            verified: Bounded::new(MEMO_CAPACITY),
            application_clients: Bounded::new(MEMO_CAPACITY),
            failures: Bounded::new(MEMO_CAPACITY),
            written: Bounded::new(MEMO_CAPACITY),
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
        // to count repeats and scans all of them on each publish, so at scale a shared one makes
        // each publish a scan of thousands. The operator publishes only on transitions, so there
        // are few repeats to count.
        let recorder = Recorder::new(self.kube.clone(), self.reporter.clone());
        match recorder.publish(&event, regarding).await {
            Ok(()) => self.metrics.event_published(),
            Err(error) => tracing::warn!(reason, error = %error, "failed to publish event"),
        }
    }

    /// The next backoff for `key` after a transient failure (and counts the failure).
    pub fn backoff(&self, key: &str, at_least: Option<Duration>) -> Duration {
        let failures = self.failures.update(key.to_owned(), |count| {
            let before = *count;
            *count = count.saturating_add(1);
            before
        });
        let step = self
            .settings
            .initial_backoff
            .saturating_mul(2u32.saturating_pow(failures.min(16)))
            .min(self.settings.max_backoff);
        let jittered = step.mul_f64(0.8 + 0.4 * rand::random::<f64>());
        let at_least = at_least.unwrap_or_default();
        jittered
            .max(at_least)
            .min(self.settings.max_backoff.max(at_least))
    }

    /// Remembers `mark`, the digest of the status just written for the object `uid`.
    pub fn remember_written(&self, uid: &str, mark: u64) {
        self.written.insert(uid_key(uid), mark);
    }

    /// Whether this process wrote a status for `uid` whose digest is not `mark` (the cached
    /// copy's): the cache has not caught up with that write yet.
    pub fn status_lags_write(&self, uid: &str, mark: u64) -> bool {
        self.written
            .get(&uid_key(uid))
            .is_some_and(|written| written != mark)
    }

    /// Forgets the failures of `key` after a success.
    pub fn reset_backoff(&self, key: &str) {
        self.failures.remove(&key.to_owned());
    }

    /// Waits (once per process) until the watch caches have synced and seeds the owner index
    /// from them, so the first reconciles already see every senior claimant.
    pub async fn owners_ready(&self) {
        self.owners_loaded
            .get_or_init(|| async {
                let patience = Duration::from_secs(600);
                let stores = self
                    .caches
                    .synced_integrations(patience)
                    .await
                    .unwrap_or_default();
                let objects: Vec<_> = stores.iter().flat_map(Store::state).collect();
                let apps: Vec<_> = self
                    .caches
                    .applications
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

    /// A client built earlier for this application, if nothing it was built from changed
    /// (`fingerprint`: the application's and its Secrets' versions).
    pub fn application_client(
        &self,
        uid: &str,
        fingerprint: &str,
    ) -> Option<crate::losant::Client> {
        self.application_clients
            .get(&uid.to_owned())
            .filter(|(seen, _)| seen == fingerprint)
            .map(|(_, client)| client)
    }

    /// Remembers the client built for an application.
    pub fn remember_application_client(
        &self,
        uid: &str,
        fingerprint: String,
        client: crate::losant::Client,
    ) {
        self.application_clients
            .insert(uid.to_owned(), (fingerprint, client));
    }

    /// Whether the application `uid` was verified with this `fingerprint` within the re-check
    /// interval before `now`.
    pub fn verified_recently(&self, uid: &str, fingerprint: &str, now: Timestamp) -> bool {
        self.verified
            .get(&uid.to_owned())
            .is_some_and(|(at, seen)| {
                seen == fingerprint
                    && now.duration_since(at).unsigned_abs()
                        < self.settings.application_recheck_interval
            })
    }

    /// Remembers a successful verification at `now`.
    pub fn note_verified(&self, uid: &str, fingerprint: String, now: Timestamp) {
        self.verified.insert(uid.to_owned(), (now, fingerprint));
    }

    /// When an object in sync is looked at again. Per object: after the resync interval with
    /// ±10% jitter, so objects created together spread out. Per application: when the sweep
    /// brings it back (its remote changed, or the periodic full sweep), so no timer per object
    /// is kept (a timer per object of a large fleet costs memory).
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

/// The key of object `uid` in a memo kept for every object. A collision of two uids' hashes
/// would cost one needless fresh read, or miss one: never a wrong decision.
fn uid_key(uid: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    uid.hash(&mut hasher);
    hasher.finish()
}
