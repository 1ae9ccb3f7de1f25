//! The kube-runtime wiring: watches, the two reconcilers, and their error policy.
//!
//! - `LosantApplication`s are verified ([`application`]); they are re-checked when their token
//!   or CA bundle Secret changes (a metadata-only watch: Secret data is never cached), and woken by the
//!   Integration cache when their first Integration comes or their last one goes
//!   ([`in_use::UsageTracker`]).
//! - `Integration`s are reconciled ([`integration`]) when they change, when their
//!   `LosantApplication` changes, when a Secret they reference changes, and every resync interval.

pub mod application;
pub mod bounded;
pub mod caches;
pub mod clients;
pub mod clock;
pub mod context;
pub mod decode;
pub mod error;
pub mod in_use;
pub mod integration;
pub mod outcome;
pub mod owners;
mod routes;
pub mod secrets;
pub mod snapshot;
pub mod status;
pub mod sweep;
pub mod undecodable;

#[cfg(test)]
mod scenario_tests;
#[cfg(test)]
mod secret_watch_tests;

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::ListParams;
use kube::core::PartialObjectMeta;
use kube::runtime::WatchStreamExt;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, ResourceExt};

pub use caches::Caches;
pub use clock::Clock;
pub use context::{Context, Settings, SyncStrategy};
pub use error::Error;

use crate::crd::{Integration, LosantApplication};
use crate::ops::Operations;
use crate::sync::conditions;
use crate::sync::reason::{ConditionStatus, ConditionType};
use routes::{
    ApplicationsWoken, applications_using, integrations_of, integrations_using, tokio_stream_from,
    unbounded_stream_from, wake_channel,
};

/// Runs the controllers until a termination signal, always reconciling (no leader election)
/// and without an operations server. `namespaces` empty means all namespaces.
pub async fn run(
    kube: kube::Client,
    namespaces: Vec<String>,
    settings: Settings,
) -> anyhow::Result<()> {
    let ops = Operations::standalone();
    ops.shutdown.on_signals()?;
    run_with(kube, namespaces, settings, ops).await
}

/// Runs the controllers with `ops` (metrics, readiness, the leadership gate and the shutdown
/// signal) until shutdown is requested or leadership is lost. `namespaces` empty means all
/// namespaces.
pub async fn run_with(
    kube: kube::Client,
    namespaces: Vec<String>,
    settings: Settings,
    ops: Operations,
) -> anyhow::Result<()> {
    let scopes: Vec<Option<String>> = if namespaces.is_empty() {
        vec![None]
    } else {
        namespaces.into_iter().map(Some).collect()
    };
    ensure_crds_installed(&kube, &scopes).await?;
    // CRDs at least as new as this binary, then the election: see ops::Operations::prepare.
    if !ops.prepare(&kube).await? {
        return Ok(());
    }
    // Four watch caches per scope (Integrations, LosantApplications, and the Integration
    // controller's LosantApplications and Secret metadata); /readyz waits for all of them.
    ops.readiness.expect(4 * scopes.len());
    let concurrency = settings.concurrency;
    let watches: Vec<ScopeWatches> = scopes
        .iter()
        .map(|scope| ScopeWatches::new(&kube, scope.as_deref(), &ops, concurrency))
        .collect();
    // The context is built once every cache exists, and never changes after.
    let caches = Caches {
        synced: ops.readiness.clone(),
        integrations: watches.iter().map(|w| w.integrations.store()).collect(),
        applications: watches
            .iter()
            .map(|w| w.application_cache.clone())
            .collect(),
        secrets: watches.iter().map(|w| w.secret_cache.clone()).collect(),
    };
    let metrics = ops.metrics.clone();
    let ctx = Arc::new(Context::new(
        kube,
        caches,
        settings,
        metrics,
        Clock::system(),
    ));
    let mut controllers = Vec::new();
    for scope in watches {
        controllers.extend(scope.run(&ctx, &ops));
    }
    if let Some(finished) = ops
        .supervise(futures::future::join_all(controllers))
        .await?
    {
        for controller in finished {
            controller?;
        }
    }
    Ok(())
}

fn api<K>(kube: &kube::Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(kube.clone(), ns),
        None => Api::all(kube.clone()),
    }
}

/// Secrets, metadata only: the operator learns that a Secret changed without caching its data.
fn secret_metadata(kube: &kube::Client, namespace: Option<&str>) -> Api<PartialObjectMeta<Secret>> {
    match namespace {
        Some(ns) => Api::namespaced(kube.clone(), ns),
        None => Api::all(kube.clone()),
    }
}

/// Probes the first watched scope only: with namespaced RBAC a list across all namespaces
/// would be forbidden even though the CRDs are there.
async fn ensure_crds_installed(
    kube: &kube::Client,
    scopes: &[Option<String>],
) -> anyhow::Result<()> {
    let probe = ListParams::default().limit(1);
    let scope = scopes.first().and_then(Option::as_deref);
    for result in [
        api::<Integration>(kube, scope)
            .list(&probe)
            .await
            .map(|_| ()),
        api::<LosantApplication>(kube, scope)
            .list(&probe)
            .await
            .map(|_| ()),
    ] {
        if let Err(error) = result {
            anyhow::bail!(
                "the losant.io CRDs are not usable ({error}); install them with `losant-operator crds | kubectl apply --server-side -f -`"
            );
        }
    }
    Ok(())
}

/// One watched scope's two controllers with their watches and caches set up, not yet running:
/// every cache exists before the [`Context`] is built.
struct ScopeWatches {
    applications: Controller<LosantApplication>,
    integrations: Controller<Integration>,
    /// The Integration controller's LosantApplication cache (reconciles read it).
    application_cache: Store<LosantApplication>,
    /// Secret metadata (never data): which version of each Secret exists.
    secret_cache: Store<PartialObjectMeta<Secret>>,
    /// The sweeper's requests to compare objects with a fresh view of their application.
    sweep: (
        tokio::sync::mpsc::Sender<ObjectRef<Integration>>,
        tokio::sync::mpsc::Receiver<ObjectRef<Integration>>,
    ),
}

impl ScopeWatches {
    fn new(
        kube: &kube::Client,
        namespace: Option<&str>,
        ops: &Operations,
        concurrency: u16,
    ) -> Self {
        let config = ControllerConfig::default().concurrency(concurrency);
        let (wake, woken) = wake_channel();
        let integrations = ops
            .controller_with_tap(
                "Integration",
                namespace,
                api::<Integration>(kube, namespace),
                |i| ready_reason(i, i.status.as_ref().map(|s| s.conditions.as_slice())),
                wake.into_tap(),
            )
            .with_config(config.clone());
        let scope = namespace.unwrap_or("all namespaces");
        let (application_cache, application_events) = ops.cache(
            format!("LosantApplication (for Integrations) in {scope}"),
            api::<LosantApplication>(kube, namespace),
            |_| {},
        );
        let (secret_cache, secret_events) = ops.cache(
            format!("Secret metadata in {scope}"),
            secret_metadata(kube, namespace),
            |_| {},
        );
        let counted = integrations.store();
        ops.metrics
            .count_connections(move || connection_states(&counted));
        let (by_app, by_secret) = (integrations.store(), integrations.store());
        let integrations = integrations
            .watches_stream(application_events, move |app| {
                integrations_of(&by_app, &app)
            })
            .watches_stream(secret_events, move |secret| {
                integrations_using(&by_secret, &secret)
            });
        Self {
            applications: applications_controller(kube, namespace, ops, woken).with_config(config),
            integrations,
            application_cache,
            secret_cache,
            sweep: tokio::sync::mpsc::channel(1024),
        }
    }

    /// Starts both controllers (and the sweeper) of the scope.
    fn run(self, ctx: &Arc<Context>, ops: &Operations) -> [tokio::task::JoinHandle<()>; 2] {
        let (sweep_tx, sweep_rx) = self.sweep;
        if ctx.settings.sync_strategy == SyncStrategy::PerApplication {
            tokio::spawn(sweep::supervise(
                Arc::clone(ctx),
                self.application_cache,
                self.integrations.store(),
                ops.leadership.clone(),
                sweep_tx,
            ));
        }
        let (app_ops, int_ops) = (ops.clone(), ops.clone());
        let applications = self
            .applications
            .reconcile_all_on(ops.leadership.gained())
            .graceful_shutdown_on(ops.shutdown.requested())
            .run(
                move |app, ctx| {
                    app_ops.reconcile("LosantApplication", app, ctx, application::reconcile)
                },
                error_policy,
                Arc::clone(ctx),
            )
            .for_each(log_result);
        let integrations = self
            .integrations
            .reconcile_on(tokio_stream_from(sweep_rx))
            .reconcile_all_on(ops.leadership.gained())
            .graceful_shutdown_on(ops.shutdown.requested())
            .run(
                move |i, ctx| int_ops.reconcile("Integration", i, ctx, integration::reconcile),
                error_policy,
                Arc::clone(ctx),
            )
            .for_each(log_result);
        [tokio::spawn(applications), tokio::spawn(integrations)]
    }
}

/// The LosantApplication controller of a scope, re-checking an application when its Secrets
/// change or its use does.
fn applications_controller(
    kube: &kube::Client,
    namespace: Option<&str>,
    ops: &Operations,
    woken: ApplicationsWoken,
) -> Controller<LosantApplication> {
    let apps = api::<LosantApplication>(kube, namespace);
    let controller = ops.controller("LosantApplication", namespace, apps, |app| {
        ready_reason(app, app.status.as_ref().map(|s| s.conditions.as_slice()))
    });
    let store = controller.store();
    let scope = namespace.unwrap_or("all namespaces");
    let secrets = crate::ops::watch(
        format!("Secret metadata (for LosantApplications) in {scope}"),
        secret_metadata(kube, namespace),
    );
    controller
        .watches_stream(secrets.touched_objects(), move |secret| {
            applications_using(&store, &secret)
        })
        // An application's first Integration, or its last going, changes whether it is in use;
        // the Integration controller's cache says when (instead of a second Integration watch).
        .reconcile_on(unbounded_stream_from(woken.one))
        .reconcile_all_on(unbounded_stream_from(woken.all))
}

/// How many cached Integrations are in each of [`crate::ops::metrics::CONNECTION_STATES`].
fn connection_states(store: &Store<Integration>) -> [i64; 4] {
    let mut counts = [0i64; 4];
    for integration in store.state() {
        let connected = integration.status.as_ref().and_then(|s| {
            (s.conditions.iter()).find(|c| c.type_ == ConditionType::Connected.as_str())
        });
        let index = match connected.map(|c| c.status.as_str()) {
            Some("True") => 0,
            Some("False") => 1,
            Some(_) => 2,
            None => 3,
        };
        counts[index] += 1;
    }
    counts
}

/// Whether a `LosantApplication` was verified for its current spec.
pub fn is_ready(app: &LosantApplication) -> bool {
    let Some(status) = &app.status else {
        return false;
    };
    status.observed_generation == app.metadata.generation
        && conditions::has(
            &status.conditions,
            ConditionType::Ready,
            ConditionStatus::True,
        )
}

/// The reason of the `Ready` condition in `list`, for the objects-by-reason gauge; a stand-in
/// for an object that could not be decoded counts as `Undecodable`.
fn ready_reason<K: kube::Resource>(
    object: &K,
    list: Option<&[crate::crd::Condition]>,
) -> Option<String> {
    if crate::ops::lean::undecodable(object).is_some() {
        return Some(crate::sync::reason::Reason::Undecodable.as_str().to_owned());
    }
    conditions::ready_condition(list?).map(|c| c.reason.to_string())
}

/// Kubernetes API failures (and blocked deletions) back off per object; an object that is gone
/// (deleted while a stale cache still held it, as after a watch was cut off) is not retried.
fn error_policy<K>(obj: Arc<K>, error: &Error, ctx: Arc<Context>) -> Action
where
    K: kube::Resource<DynamicType = ()>,
{
    let key = backoff_key(
        K::kind(&()).as_ref(),
        obj.namespace().as_deref(),
        &obj.name_any(),
    );
    if error.is_gone(&K::plural(&()), &obj.name_any()) {
        tracing::debug!(object = %obj.name_any(), namespace = ?obj.namespace(), "the object is gone; nothing left to retry");
        ctx.reset_backoff(&key);
        return Action::await_change();
    }
    let wait = error
        .requested_retry()
        .unwrap_or_else(|| ctx.backoff(&key, None));
    tracing::warn!(object = %obj.name_any(), namespace = ?obj.namespace(), error = %outcome::describe(error), category = error.category(), retry_in_ms = wait.as_millis() as u64, "reconcile failed");
    Action::requeue(wait)
}

/// The key of an object's backoff state, the same for failures and for the reset after success.
pub fn backoff_key(kind: &str, namespace: Option<&str>, name: &str) -> String {
    format!("{kind}/{}/{name}", namespace.unwrap_or_default())
}

fn log_result<K, E>(result: Result<(ObjectRef<K>, Action), E>) -> futures::future::Ready<()>
where
    K: kube::Resource + std::fmt::Debug,
    E: std::error::Error,
{
    match result {
        Ok((object, _)) => tracing::debug!(%object, "reconciled"),
        Err(error) => tracing::debug!(error = %outcome::describe(&error), "controller event"),
    }
    futures::future::ready(())
}
