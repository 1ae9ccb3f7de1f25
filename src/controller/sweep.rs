//! The per-application sweep: once per resync interval, list each Losant application once and
//! then reconcile every `Integration` of it against that fresh view.
//!
//! This is what makes steady state cost ceil(integrations / page size) list calls per
//! application per interval, whatever the number of objects, while drift made in Losant is
//! still noticed within one interval: the view is at most one interval old when each object is
//! compared with it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use tokio::sync::mpsc;

use super::context::Context;
use super::{clients, is_ready};
use crate::crd::{Integration, LosantApplication};
use crate::ops::Leadership;

/// Runs sweeps every `ctx.settings.resync_interval` until the trigger's receiver is gone.
/// Sweeps happen only while this replica leads (a standby's calls would spend the budget for
/// nothing).
pub async fn run(
    ctx: Arc<Context>,
    applications: Store<LosantApplication>,
    integrations: Store<Integration>,
    leadership: Leadership,
    trigger: mpsc::Sender<ObjectRef<Integration>>,
) {
    let interval = ctx.settings.resync_interval;
    loop {
        // The start-up (and take-over) reconcile of everything compares each object once; the
        // first sweep comes one interval later.
        tokio::time::sleep(interval).await;
        if trigger.is_closed() {
            return;
        }
        if !leadership.is_leader() {
            continue;
        }
        let started = std::time::Instant::now();
        let swept = sweep_once(&ctx, &applications, &integrations, &trigger).await;
        tracing::debug!(
            applications = swept.applications,
            integrations = swept.integrations,
            failed = swept.failed,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "sweep done"
        );
        ctx.metrics.sweep_done(swept.failed == 0);
    }
}

/// What one sweep did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Losant applications listed.
    pub applications: usize,
    /// Integrations sent to reconcile.
    pub integrations: usize,
    /// Losant applications whose list failed (their objects wait for the next sweep).
    pub failed: usize,
}

/// One sweep: refresh each application's view, then trigger its objects.
pub async fn sweep_once(
    ctx: &Context,
    applications: &Store<LosantApplication>,
    integrations: &Store<Integration>,
    trigger: &mpsc::Sender<ObjectRef<Integration>>,
) -> Swept {
    // The objects of each LosantApplication (by namespace and name).
    let mut by_application: BTreeMap<(String, String), Vec<ObjectRef<Integration>>> =
        BTreeMap::new();
    for integration in integrations.state() {
        let Some(namespace) = integration.namespace() else {
            continue;
        };
        if integration.metadata.deletion_timestamp.is_some() {
            continue;
        }
        by_application
            .entry((namespace, integration.spec.application_ref.name.clone()))
            .or_default()
            .push(ObjectRef::from_obj(integration.as_ref()));
    }
    let mut swept = Swept::default();
    // Several LosantApplications may name the same Losant application: list it once.
    let mut listed: BTreeSet<(String, String)> = BTreeSet::new();
    for ((namespace, name), objects) in by_application {
        let Some(app) = applications.get(&ObjectRef::new(&name).within(&namespace)) else {
            continue;
        };
        if !is_ready(&app) {
            continue;
        }
        let key = (
            app.spec.api_url.trim_end_matches('/').to_owned(),
            app.spec.application_id.to_ascii_lowercase(),
        );
        if !listed.contains(&key) {
            let client = match clients::for_application(&app, &namespace, ctx).await {
                Ok(Ok(client)) => client,
                Ok(Err(failure)) => {
                    tracing::debug!(
                        namespace,
                        application = name,
                        reason = failure.health().reason(),
                        "sweep: no client for the application; its objects wait"
                    );
                    swept.failed += 1;
                    continue;
                }
                Err(error) => {
                    tracing::debug!(namespace, application = name, error = %error, "sweep: reading the application's Secrets failed; its objects wait");
                    swept.failed += 1;
                    continue;
                }
            };
            if let Err(error) = ctx.snapshots.refresh(&client, &key.1).await {
                tracing::info!(namespace, application = name, error = %error, "sweep: listing the application failed; its objects are compared on the next sweep");
                swept.failed += 1;
                continue;
            }
            listed.insert(key);
            swept.applications += 1;
        }
        for object in objects {
            swept.integrations += 1;
            if trigger.send(object).await.is_err() {
                return swept;
            }
        }
    }
    swept
}

/// How long an object waits for its next comparison when nothing changes, under the
/// per-application strategy: the sweep brings it back every interval; this is only a safety net.
pub fn fallback_requeue(resync_interval: Duration) -> Duration {
    resync_interval.saturating_mul(3)
}
