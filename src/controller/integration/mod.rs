//! The `Integration` reconciler: resolve → desired → locate → plan → execute → status.
//!
//! # Guarantees
//! - The finalizer is in place before anything is created in Losant.
//! - Status is written only when it changes, by server-side apply; spec is never written.
//! - Absence from a list snapshot never leads to a POST; a recorded id that Losant no longer has
//!   is re-created only after the application itself is confirmed to exist.

use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::{Api, Resource};

mod cleanup;
mod execute;
mod record;
mod resolve;

use super::context::Context;
use super::error::Error;
use super::outcome::{self, Failure, RequeueChoice};
use super::status;
use crate::crd::{DeletionPolicy, Integration, IntegrationStatus};
use crate::sync::conditions::{self, Health};
use crate::sync::decide;
use crate::sync::locate;
use crate::sync::reason::{ConditionStatus, ConditionType, Reason};
use execute::{Synced, Wrote};

/// The finalizer that keeps an `Integration` until its remote is deleted (or orphaned).
pub const FINALIZER: &str = "losant.io/integration";

/// The refusal still in force when the last reconcile of this generation stalled on Losant
/// refusing a write (bad token, missing scope, rejected body) less than the stalled re-check
/// interval ago.
fn refused_recently(
    obj: &Integration,
    previous: &IntegrationStatus,
    ctx: &Context,
) -> Option<Failure> {
    if previous.observed_generation != obj.metadata.generation {
        return None;
    }
    let stalled = conditions::find(
        &previous.conditions,
        ConditionType::Stalled,
        ConditionStatus::True,
    )?;
    let reason = stalled.known_reason().filter(|r| r.is_refusal())?;
    let age = Timestamp::now()
        .duration_since(stalled.last_transition_time.0)
        .unsigned_abs();
    (age < ctx.settings.stalled_retry_interval)
        .then(|| Failure::permanent(reason, stalled.message.clone()))
}

/// Why a reconcile stopped short: a condition to report, or a Kubernetes API failure.
enum Stop {
    Failed(Failure),
    Kube(Error),
}

impl From<Failure> for Stop {
    fn from(failure: Failure) -> Self {
        Stop::Failed(failure)
    }
}

impl From<Error> for Stop {
    fn from(error: Error) -> Self {
        Stop::Kube(error)
    }
}

/// The controller's entry point for an `Integration`.
pub async fn reconcile(obj: Arc<Integration>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = obj.namespace().ok_or(Error::MissingNamespace)?;
    let api: Api<Integration> = Api::namespaced(ctx.kube.clone(), &namespace);
    ctx.owners_ready().await;
    // Without the finalizer nothing remote was made or taken over yet: it goes on with the first
    // write that needs it (in the same patch as the create-pending marker, or just before
    // adopting), not in a write and a watch round trip of its own, which for thousands of new
    // objects would queue every create behind every finalizer.
    if obj.metadata.deletion_timestamp.is_none() && !has_finalizer(&obj) {
        return apply(&obj, &api, &namespace, &ctx).await;
    }
    finalizer(&api, FINALIZER, obj, |event| async {
        match event {
            FinalizerEvent::Apply(obj) => apply(&obj, &api, &namespace, &ctx).await,
            FinalizerEvent::Cleanup(obj) => cleanup::cleanup(&obj, &api, &namespace, &ctx).await,
        }
    })
    .await
    .map_err(|error| Error::Finalizer(Box::new(error)))
}

fn has_finalizer(obj: &Integration) -> bool {
    obj.finalizers().iter().any(|f| f == FINALIZER)
}

fn key(obj: &Integration) -> String {
    super::backoff_key("Integration", obj.namespace().as_deref(), &obj.name_any())
}

async fn apply(
    cached: &Integration,
    api: &Api<Integration>,
    namespace: &str,
    ctx: &Context,
) -> Result<Action, Error> {
    // The id is recorded in annotations just before status: a cached object caught between the
    // two writes would look like one whose status was lost. Read the latest instead.
    let latest;
    let obj = if record::status_lags_annotations(cached) {
        latest = api
            .get(&cached.name_any())
            .await
            .map_err(Error::kube("read the Integration"))?;
        &latest
    } else {
        cached
    };
    let previous = obj.status.clone().unwrap_or_default();
    let now = Time(Timestamp::now());
    // Held until the id is recorded, so another object with this name sees it.
    let _name_lock = ctx.owners.lock_name(obj.remote_name()).await;
    // A create Losant refused for good is not tried again before the stalled re-check, even
    // though the operator's own writes (status, the create-pending marker) wake this reconciler.
    let result = match refused_recently(obj, &previous, ctx) {
        Some(failure) => Err(Stop::Failed(failure)),
        None => sync(obj, api, &previous, namespace, ctx).await,
    };
    let (next, health, action) = match result {
        Ok(synced) => {
            ctx.reset_backoff(&key(obj));
            let health = Health::Ready {
                reason: Reason::Synced,
                message: format!("integration {} matches the spec", synced.remote.id),
            };
            announce_write(obj, &synced, ctx).await;
            (
                succeeded_status(obj, &previous, &synced, &now),
                health,
                ctx.resync(),
            )
        }
        Err(Stop::Failed(failure)) => {
            let action = Action::requeue(match outcome::requeue(&failure) {
                RequeueChoice::After(wait) => wait,
                RequeueChoice::Backoff(retry_after) => ctx.backoff(&key(obj), retry_after),
                RequeueChoice::StalledRecheck => ctx.settings.stalled_retry_interval,
            });
            (previous.clone(), failure.health(), action)
        }
        Err(Stop::Kube(error)) => return Err(error),
    };
    let mut next = next;
    next.observed_generation = obj.metadata.generation;
    next.conditions = conditions::conditions(
        &health,
        obj.metadata.generation,
        &previous.conditions,
        now.0,
    );
    announce_failure(obj, &previous, &health, ctx).await;
    if status::apply_if_changed(api, &obj.name_any(), obj.status.as_ref(), &next).await? {
        ctx.metrics.status_written();
    }
    Ok(action)
}

fn succeeded_status(
    obj: &Integration,
    previous: &IntegrationStatus,
    synced: &Synced,
    now: &Time,
) -> IntegrationStatus {
    let _ = obj;
    IntegrationStatus {
        observed_generation: previous.observed_generation,
        integration_id: Some(synced.remote.id.clone()),
        application_id: Some(synced.application_id.as_str().into()),
        api_url: Some(synced.api_url.as_str().into()),
        origin: Some(synced.origin),
        last_applied_time: if synced.wrote.is_some() {
            Some(now.clone())
        } else {
            previous.last_applied_time.clone()
        },
        applied_secret_versions: (&synced.secret_versions).into(),
        applied_fields: synced.applied_fields.clone(),
        conditions: previous.conditions.clone(),
    }
}

/// Reads, decides, and makes the remote match.
async fn sync(
    obj: &Integration,
    api: &Api<Integration>,
    previous: &IntegrationStatus,
    namespace: &str,
    ctx: &Context,
) -> Result<Synced, Stop> {
    let place = resolve::place(obj, namespace, ctx).await?;
    if let Some(old_id) = place.left_behind(previous) {
        leave_old_application(obj, previous, old_id, namespace, ctx).await?;
    }
    let resolved = resolve::remote(obj, previous, place, ctx).await?;
    // The clock is read when deciding: a pending create's grace period counts to this moment.
    let grace = ctx.settings.create_grace_period;
    let decision = decide::decide(&resolved.facts, Timestamp::now(), grace);
    execute::execute(obj, api, ctx, resolved, decision).await
}

/// The spec moved to another application: the old remote follows the deletion policy, deleted
/// with a token of the old application (a `LosantApplication` of this namespace that names it).
/// A transient failure holds the move until it can be done; a permanent one leaves the old
/// remote in place and says so.
async fn leave_old_application(
    obj: &Integration,
    previous: &IntegrationStatus,
    old_id: &str,
    namespace: &str,
    ctx: &Context,
) -> Result<(), Stop> {
    let old_app = previous.application_id.clone().unwrap_or_default();
    let policy = locate::effective_deletion_policy(obj.spec.deletion_policy, previous.origin);
    let note = match policy {
        DeletionPolicy::Orphan => {
            format!("integration {old_id} is left in application {old_app} (deletionPolicy Orphan)")
        }
        DeletionPolicy::Delete => {
            match cleanup::delete_one(obj, previous, old_id, &old_app, namespace, ctx).await {
                Ok(true) => format!(
                    "deleted integration {old_id} from application {old_app} after the move"
                ),
                // Already gone, or another object owns it: nothing to say again on every retry.
                Ok(false) => return Ok(()),
                Err(Stop::Failed(Failure::Permanent { message, .. })) => {
                    format!("integration {old_id} is left in application {old_app}: {message}")
                }
                Err(other) => return Err(other),
            }
        }
    };
    ctx.event(
        &obj.object_ref(&()),
        EventType::Normal,
        "Moved",
        "Move",
        note,
    )
    .await;
    Ok(())
}

/// Normal events for writes.
async fn announce_write(obj: &Integration, synced: &Synced, ctx: &Context) {
    let id = &synced.remote.id;
    let app = &synced.application_id;
    let (type_, reason, note) = match &synced.wrote {
        None => return,
        Some(Wrote::Created) => (
            EventType::Normal,
            "Created",
            format!("created integration {id} in application {app}"),
        ),
        Some(Wrote::Recreated { old_id }) => (
            EventType::Warning,
            "Recreated",
            format!("integration {old_id} was deleted outside Kubernetes; re-created it as {id}"),
        ),
        Some(Wrote::Adopted { patched }) if patched.is_empty() => (
            EventType::Normal,
            "Adopted",
            format!("took over existing integration {id} in application {app}"),
        ),
        Some(Wrote::Adopted { patched }) => (
            EventType::Normal,
            "Adopted",
            format!(
                "took over existing integration {id} in application {app} and updated {}",
                patched.join(", ")
            ),
        ),
        Some(Wrote::Patched {
            spec_changed: true,
            fields,
        }) => (
            EventType::Normal,
            "Updated",
            format!("updated {} of integration {id}", fields.join(", ")),
        ),
        Some(Wrote::Patched {
            spec_changed: false,
            fields,
        }) => {
            ctx.metrics.drift_corrected();
            (
                EventType::Normal,
                "DriftCorrected",
                format!(
                    "reverted changes to {} of integration {id} made outside Kubernetes",
                    fields.join(", ")
                ),
            )
        }
    };
    ctx.event(&obj.object_ref(&()), type_, reason, "Sync", note)
        .await;
}

/// A warning event when the object enters a failing state (not on every retry).
async fn announce_failure(
    obj: &Integration,
    previous: &IntegrationStatus,
    health: &Health,
    ctx: &Context,
) {
    // Waiting for the application to be verified is normal, not a failure worth an event.
    if matches!(health, Health::Ready { .. }) || health.reason() == Reason::WaitingForApplication {
        return;
    }
    let before = conditions::ready_condition(&previous.conditions);
    if before.is_some_and(|c| c.reason_is(health.reason())) {
        return;
    }
    ctx.event(
        &obj.object_ref(&()),
        EventType::Warning,
        health.reason().as_str(),
        "Sync",
        health.message().to_owned(),
    )
    .await;
}
