//! The per-application sweep: once per resync interval, list each Losant application once and
//! then reconcile every `Integration` of it against that fresh view.
//!
//! This is what makes steady state cost ceil(integrations / page size) list calls per
//! application per interval, whatever the number of objects, while drift made in Losant is
//! still noticed within one interval.
//!
//! Only objects that may be out of sync are reconciled: those whose remote differs from the
//! previous list (changed, created or gone), those not Ready, and those without a recorded
//! remote. An object whose remote did not change since it was last found in sync, and whose
//! own spec and Secrets did not change (the watches would have brought it), is still in sync.
//! Every [`FULL_SWEEP_EVERY`]th sweep reconciles everything anyway, as a safety net.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use tokio::sync::mpsc;

use super::context::Context;
use super::{clients, is_ready};
use crate::crd::{Integration, LosantApplication};
use crate::ops::Leadership;
use crate::sync::conditions;
use crate::sync::reason::{ConditionStatus, ConditionType};

/// Runs [`run`], and runs it again should it ever fail: objects in sync have no timer of their
/// own, so without sweeps nothing would look at them again.
pub async fn supervise(
    ctx: Arc<Context>,
    applications: Store<LosantApplication>,
    integrations: Store<Integration>,
    leadership: Leadership,
    trigger: mpsc::Sender<ObjectRef<Integration>>,
) {
    loop {
        let sweeper = tokio::spawn(run(
            Arc::clone(&ctx),
            applications.clone(),
            integrations.clone(),
            leadership.clone(),
            trigger.clone(),
        ));
        match sweeper.await {
            Ok(()) => return,
            Err(error) => {
                tracing::error!(error = %error, "the sweeper failed; restarting it");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

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
    let mut count: u64 = 0;
    // At a fixed rate (not a pause after each sweep), so a view is never older than one
    // interval plus one sweep's list. The start-up (and take-over) reconcile of everything
    // compares each object once; the first sweep comes one interval later.
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if trigger.is_closed() {
            return;
        }
        if !leadership.is_leader() {
            continue;
        }
        let started = std::time::Instant::now();
        count += 1;
        let everything = count.is_multiple_of(FULL_SWEEP_EVERY);
        let swept = sweep_once(&ctx, &applications, &integrations, &trigger, everything).await;
        tracing::debug!(
            applications = swept.applications,
            integrations = swept.integrations,
            unchanged = swept.unchanged,
            failed = swept.failed,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "sweep done"
        );
        ctx.metrics.sweep_done(swept.failed == 0);
        crate::ops::memory::trim();
    }
}

/// Every how many sweeps every object is reconciled, changed remote or not. Objects in sync keep
/// no timer of their own under this strategy: this is their periodic re-check.
pub const FULL_SWEEP_EVERY: u64 = 10;

/// What one sweep did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Losant applications listed.
    pub applications: usize,
    /// Integrations sent to reconcile.
    pub integrations: usize,
    /// Integrations left alone: in sync, and their remote unchanged.
    pub unchanged: usize,
    /// Losant applications whose list failed (their objects wait for the next sweep).
    pub failed: usize,
}

/// One sweep: refresh each application's view, then trigger its objects.
pub async fn sweep_once(
    ctx: &Context,
    applications: &Store<LosantApplication>,
    integrations: &Store<Integration>,
    trigger: &mpsc::Sender<ObjectRef<Integration>>,
    everything: bool,
) -> Swept {
    // The objects of each LosantApplication (by namespace and name).
    let mut by_application: BTreeMap<(String, String), Vec<Arc<Integration>>> = BTreeMap::new();
    for integration in integrations.state() {
        let Some(namespace) = integration.namespace() else {
            continue;
        };
        // A paused object costs no Losant call, and a stand-in for one that could not be
        // decoded is never reconciled: an application only they use is not listed.
        if integration.metadata.deletion_timestamp.is_some()
            || super::integration::is_paused(&integration)
            || crate::ops::lean::undecodable(&*integration).is_some()
        {
            continue;
        }
        by_application
            .entry((namespace, integration.spec.application_ref.name.clone()))
            .or_default()
            .push(integration);
    }
    let mut swept = Swept::default();
    // Several LosantApplications may name the same Losant application: list it once.
    let mut listed: BTreeMap<(String, String), HashSet<String>> = BTreeMap::new();
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
        if !listed.contains_key(&key) {
            let Some(changed) = refresh(ctx, &app, &namespace, &key.1).await else {
                swept.failed += 1;
                continue;
            };
            listed.insert(key.clone(), changed);
            swept.applications += 1;
        }
        let changed = listed.get(&key);
        for object in objects {
            if !everything && !may_be_out_of_sync(&object, changed) {
                swept.unchanged += 1;
                continue;
            }
            swept.integrations += 1;
            if trigger
                .send(ObjectRef::from_obj(object.as_ref()))
                .await
                .is_err()
            {
                return swept;
            }
        }
    }
    swept
}

/// Lists the application `app` names into its snapshot; the ids whose remote changed since the
/// previous sweep, or `None` when there is no client or the list failed (its objects wait).
async fn refresh(
    ctx: &Context,
    app: &LosantApplication,
    namespace: &str,
    application_id: &str,
) -> Option<HashSet<String>> {
    let name = app.name_any();
    let client = match clients::for_application(app, namespace, ctx).await {
        Ok(Ok(client)) => client,
        Ok(Err(failure)) => {
            tracing::debug!(
                namespace,
                application = name,
                reason = failure.reason().as_str(),
                "sweep: no client for the application; its objects wait"
            );
            return None;
        }
        Err(error) => {
            tracing::debug!(namespace, application = name, error = %error, "sweep: reading the application's Secrets failed; its objects wait");
            return None;
        }
    };
    let changed = match ctx
        .snapshots
        .refresh_for_sweep(&client, application_id)
        .await
    {
        Ok(changed) => changed,
        Err(error) => {
            tracing::info!(namespace, application = name, error = %error, "sweep: listing the application failed; its objects are compared on the next sweep");
            return None;
        }
    };
    // The list just proved that the token works against the application: the
    // LosantApplication's periodic re-check need not spend a call of its own.
    if let (Some(uid), Some(fingerprint)) = (
        app.uid(),
        super::application::cached_fingerprint(app, namespace, ctx),
    ) {
        ctx.note_verified(&uid, fingerprint, ctx.clock.now());
    }
    Some(changed)
}

/// Whether an object needs comparing after a refresh that found `changed` remotes differing.
fn may_be_out_of_sync(object: &Integration, changed: Option<&HashSet<String>>) -> bool {
    let Some(status) = &object.status else {
        return true;
    };
    let ready = conditions::has(
        &status.conditions,
        ConditionType::Ready,
        ConditionStatus::True,
    );
    let current = status.observed_generation == object.metadata.generation;
    match (&status.integration_id, changed) {
        (Some(id), Some(changed)) if ready && current => changed.contains(id),
        _ => true,
    }
}
