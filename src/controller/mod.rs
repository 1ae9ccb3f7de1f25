//! The kube-runtime wiring: watches, the two reconcilers, and their error policy.
//!
//! - `LosantApplication`s are verified ([`application`]); they are re-checked when their token
//!   or CA bundle Secret changes (a metadata-only watch: Secret data is never cached), and woken by the
//!   Integration cache when their first Integration comes or their last one goes
//!   ([`in_use::UsageTracker`]).
//! - `Integration`s are reconciled ([`integration`]) when they change, when their
//!   `LosantApplication` changes, when a Secret they reference changes, and every resync interval.

pub mod application;
pub mod clients;
pub mod context;
pub mod error;
pub mod in_use;
pub mod integration;
pub mod outcome;
pub mod owners;
pub mod secrets;
pub mod snapshot;
pub mod status;
pub mod sweep;

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::ListParams;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Config as ControllerConfig};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};

pub use context::{Context, Settings, SyncStrategy};
pub use error::Error;

use crate::crd::{Integration, LosantApplication};
use crate::ops::Operations;
use crate::ops::lean::SpecAndStatus;
use crate::sync::conditions;
use crate::sync::desired::secret_refs;
use crate::sync::reason::{ConditionStatus, ConditionType};

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
    let mut ctx = Context::with_metrics(kube.clone(), settings, ops.metrics.clone());
    ctx.caches_synced = Some(ops.readiness.clone());
    let ctx = Arc::new(ctx);
    // Four watch caches per scope (Integrations, LosantApplications, and the Integration
    // controller's LosantApplications and Secret metadata); /readyz waits for all of them.
    ops.readiness.expect(4 * scopes.len());
    let mut controllers = Vec::new();
    ctx.expect_integration_stores(scopes.len());
    for scope in scopes {
        let (wake, woken) = wake_channel();
        controllers.push(tokio::spawn(run_applications(
            kube.clone(),
            scope.clone(),
            Arc::clone(&ctx),
            ops.clone(),
            woken,
        )));
        controllers.push(tokio::spawn(run_integrations(
            kube.clone(),
            scope,
            Arc::clone(&ctx),
            ops.clone(),
            wake,
        )));
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

// The CRDs are cached decoded lean: metadata without managedFields or the last-applied copy.
impl crate::ops::lean::DecodeLean for Integration {
    fn decode_lean<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use crate::crd::{IntegrationSpec, IntegrationStatus};
        let wire: SpecAndStatus<IntegrationSpec, IntegrationStatus> =
            serde::Deserialize::deserialize(deserializer)?;
        Ok(Integration {
            metadata: wire.metadata.into(),
            spec: wire.spec,
            status: wire.status,
        })
    }
}

impl crate::ops::lean::DecodeLean for LosantApplication {
    fn decode_lean<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use crate::crd::{LosantApplicationSpec, LosantApplicationStatus};
        let wire: SpecAndStatus<LosantApplicationSpec, LosantApplicationStatus> =
            serde::Deserialize::deserialize(deserializer)?;
        Ok(LosantApplication {
            metadata: wire.metadata.into(),
            spec: wire.spec,
            status: wire.status,
        })
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

fn controller_config(ctx: &Context) -> ControllerConfig {
    ControllerConfig::default().concurrency(ctx.settings.concurrency)
}

/// How the Integration controller's cache wakes the LosantApplication controller of its scope
/// (see [`in_use::UsageTracker`]): one application, or all of them after a (re)list.
struct WakeApplications {
    one: tokio::sync::mpsc::UnboundedSender<ObjectRef<LosantApplication>>,
    all: tokio::sync::mpsc::UnboundedSender<()>,
}

/// The receiving ends of [`WakeApplications`].
struct ApplicationsWoken {
    one: tokio::sync::mpsc::UnboundedReceiver<ObjectRef<LosantApplication>>,
    all: tokio::sync::mpsc::UnboundedReceiver<()>,
}

fn wake_channel() -> (WakeApplications, ApplicationsWoken) {
    let (one, one_rx) = tokio::sync::mpsc::unbounded_channel();
    let (all, all_rx) = tokio::sync::mpsc::unbounded_channel();
    (
        WakeApplications { one, all },
        ApplicationsWoken {
            one: one_rx,
            all: all_rx,
        },
    )
}

impl WakeApplications {
    /// A watch-event tap that follows usage and wakes applications whose use may have changed.
    /// A closed channel means the other controller stopped, as at shutdown: nothing to do.
    fn into_tap(self) -> impl FnMut(&watcher::Event<Integration>) + Send + 'static {
        let mut tracker = in_use::UsageTracker::default();
        move |event| match tracker.observe(event) {
            in_use::Wake::Nothing => {}
            in_use::Wake::Applications(apps) => {
                for app in apps {
                    let _ = self.one.send(app);
                }
            }
            in_use::Wake::Everything => {
                let _ = self.all.send(());
            }
        }
    }
}

async fn run_applications(
    kube: kube::Client,
    namespace: Option<String>,
    ctx: Arc<Context>,
    ops: Operations,
    woken: ApplicationsWoken,
) {
    let apps = api::<LosantApplication>(&kube, namespace.as_deref());
    let controller = ops
        .controller("LosantApplication", namespace.as_deref(), apps, |app| {
            ready_reason(app.status.as_ref().map(|s| s.conditions.as_slice()))
        })
        .with_config(controller_config(&ctx));
    let store = controller.store();
    controller
        .watches(
            secret_metadata(&kube, namespace.as_deref()),
            crate::ops::watch_config(),
            move |secret| applications_using(&store, &secret),
        )
        // An application's first Integration, or its last going, changes whether it is in use;
        // the Integration controller's cache says when (instead of a second Integration watch).
        .reconcile_on(unbounded_stream_from(woken.one))
        .reconcile_all_on(unbounded_stream_from(woken.all))
        .reconcile_all_on(ops.leadership.gained())
        .graceful_shutdown_on(ops.shutdown.requested())
        .run(
            move |app, ctx| ops.reconcile("LosantApplication", app, ctx, application::reconcile),
            error_policy,
            ctx,
        )
        .for_each(log_result)
        .await;
}

async fn run_integrations(
    kube: kube::Client,
    namespace: Option<String>,
    ctx: Arc<Context>,
    ops: Operations,
    wake_applications: WakeApplications,
) {
    let integrations = api::<Integration>(&kube, namespace.as_deref());
    let controller = ops
        .controller_with_tap(
            "Integration",
            namespace.as_deref(),
            integrations,
            |i| ready_reason(i.status.as_ref().map(|s| s.conditions.as_slice())),
            wake_applications.into_tap(),
        )
        .with_config(controller_config(&ctx));
    let by_app = controller.store();
    let by_secret = controller.store();
    ctx.register_integration_store(controller.store());
    // The LosantApplications, cached: reconciles read them from here instead of the API server.
    let scope = namespace.as_deref().unwrap_or("all namespaces");
    let (applications, application_events) = ops.cache(
        format!("LosantApplication (for Integrations) in {scope}"),
        api::<LosantApplication>(&kube, namespace.as_deref()),
        |_| {},
    );
    ctx.register_application_store(applications.clone());
    // Secret metadata (never data), cached: which version of each Secret exists.
    let (secrets, secret_events) = ops.cache(
        format!("Secret metadata in {scope}"),
        secret_metadata(&kube, namespace.as_deref()),
        |_| {},
    );
    ctx.register_secret_store(secrets);
    // The sweeper's requests to compare objects with a fresh view of their application.
    let (sweep_tx, sweep_rx) = tokio::sync::mpsc::channel(1024);
    if ctx.settings.sync_strategy == SyncStrategy::PerApplication {
        tokio::spawn(sweep::supervise(
            Arc::clone(&ctx),
            applications,
            controller.store(),
            ops.leadership.clone(),
            sweep_tx,
        ));
    }
    controller
        .reconcile_on(tokio_stream_from(sweep_rx))
        .watches_stream(application_events, move |app| {
            integrations_of(&by_app, &app)
        })
        .watches_stream(secret_events, move |secret| {
            integrations_using(&by_secret, &secret)
        })
        .reconcile_all_on(ops.leadership.gained())
        .graceful_shutdown_on(ops.shutdown.requested())
        .run(
            move |i, ctx| ops.reconcile("Integration", i, ctx, integration::reconcile),
            error_policy,
            ctx,
        )
        .for_each(log_result)
        .await;
}

/// The receiving end of an unbounded channel as a stream.
fn unbounded_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// The receiving end of a channel as a stream.
fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
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

/// The reason of the `Ready` condition in `list`, for the objects-by-reason gauge.
fn ready_reason(list: Option<&[crate::crd::Condition]>) -> Option<String> {
    conditions::ready_condition(list?).map(|c| c.reason.to_string())
}

/// The applications whose token or CA bundle is the Secret `secret`.
fn applications_using<S: ResourceExt>(
    store: &Store<LosantApplication>,
    secret: &S,
) -> Vec<ObjectRef<LosantApplication>> {
    let (namespace, name) = (secret.namespace(), secret.name_any());
    store
        .state()
        .iter()
        .filter(|app| {
            app.namespace() == namespace
                && (app.spec.token_secret_ref.name == name
                    || app
                        .spec
                        .ca_bundle_secret_ref
                        .as_ref()
                        .is_some_and(|r| r.name == name))
        })
        .map(|app| ObjectRef::from_obj(app.as_ref()))
        .collect()
}

fn integrations_of(
    store: &Store<Integration>,
    app: &LosantApplication,
) -> Vec<ObjectRef<Integration>> {
    let (namespace, name) = (app.namespace(), app.name_any());
    store
        .state()
        .iter()
        .filter(|i| i.namespace() == namespace && i.spec.application_ref.name == name)
        .map(|i| ObjectRef::from_obj(i.as_ref()))
        .collect()
}

fn integrations_using<S: ResourceExt>(
    store: &Store<Integration>,
    secret: &S,
) -> Vec<ObjectRef<Integration>> {
    let (namespace, name) = (secret.namespace(), secret.name_any());
    store
        .state()
        .iter()
        .filter(|i| {
            i.namespace() == namespace && secret_refs(&i.spec).iter().any(|r| r.name == name)
        })
        .map(|i| ObjectRef::from_obj(i.as_ref()))
        .collect()
}

/// Kubernetes API failures (and blocked deletions) back off per object.
fn error_policy<K>(obj: Arc<K>, error: &Error, ctx: Arc<Context>) -> Action
where
    K: kube::Resource<DynamicType = ()>,
{
    let key = backoff_key(
        K::kind(&()).as_ref(),
        obj.namespace().as_deref(),
        &obj.name_any(),
    );
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::lean::{Lean, strip};

    #[test]
    fn integrations_decoded_lean_equal_decoded_in_full_and_stripped() {
        let json = serde_json::json!({
            "apiVersion": "losant.io/v1alpha1", "kind": "Integration",
            "metadata": {
                "name": "broker", "namespace": "dev", "uid": "u", "resourceVersion": "9",
                "generation": 2, "creationTimestamp": "2026-11-28T14:26:45Z",
                "finalizers": ["losant.io/integration"],
                "annotations": {
                    "kubectl.kubernetes.io/last-applied-configuration": "{\"spec\": {}}",
                    "losant.io/integration-id": "6b0ae4a51337747874000002"
                },
                "managedFields": [{"manager": "kubectl", "operation": "Update",
                    "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:name": {}}}}]
            },
            "spec": {"applicationRef": {"name": "app"}, "integrationType": "mqtt",
                "mqttConfig": {"host": "h", "port": 8883, "protocol": "mqtts"}},
            "status": {"integrationId": "6b0ae4a51337747874000002", "apiUrl": "https://a",
                "appliedFields": ["mqttConfig.host", "name"],
                "appliedSecretVersions": {"mqtt": "3"},
                "conditions": [{"type": "Ready", "status": "True", "reason": "Synced",
                    "message": "m", "lastTransitionTime": "2026-11-28T14:26:45Z"}]}
        })
        .to_string();
        let Lean(lean): Lean<Integration> = serde_json::from_str(&json).unwrap();
        let mut full: Integration = serde_json::from_str(&json).unwrap();
        assert!(full.metadata.managed_fields.is_some());
        strip(&mut full);
        let value = |object: &Integration| serde_json::to_value(object).unwrap();
        assert_eq!(value(&lean), value(&full));
        assert_eq!(lean.annotations().len(), 1);

        let app = serde_json::json!({
            "metadata": {"name": "app", "namespace": "dev",
                "managedFields": [{"manager": "m", "operation": "Apply"}]},
            "spec": {"applicationId": "000000000000000000be0003",
                "tokenSecretRef": {"name": "t", "key": "token"}}
        })
        .to_string();
        let Lean(lean): Lean<LosantApplication> = serde_json::from_str(&app).unwrap();
        let mut full: LosantApplication = serde_json::from_str(&app).unwrap();
        strip(&mut full);
        assert_eq!(
            serde_json::to_value(&lean).unwrap(),
            serde_json::to_value(&full).unwrap()
        );
    }
}
