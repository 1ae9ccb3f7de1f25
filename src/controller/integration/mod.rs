//! The `Integration` reconciler. An apply is a pipeline, one step per module:
//!
//! ```text
//! resolve (I/O: read) ─► decide (pure, sync::decide) ─► execute (I/O: write) ─► report (pure)
//!   Resolved{Facts}          Decision                       Synced                 Report
//! ```
//!
//! Only `resolve` reads, only `execute` writes to Losant, and the decision and the report are
//! plain functions of what was read and what was applied. `apply` then publishes the report's
//! Events and writes its status. The clock is read here, at the edges, and passed in: status
//! times, the refusal re-check and a pending create's grace period count to the reconcile's start
//! ([`Clock`](super::clock::Clock), injectable). Deletion, and leaving an application the spec
//! moved away from, are in `cleanup`.
//!
//! Before any of it, two holds: an object this version could not decode is only reported
//! ([`super::undecodable`]), and a paused one (`losant.io/paused`) is only told so (`paused`).
//! `managementPolicy: ObserveOnly` goes through the same pipeline: `decide` then observes
//! instead of writing, and `execute` writes nothing. A new `losant.io/reconcile-requested-at`
//! value makes `resolve` read Losant afresh.
//!
//! # Guarantees
//! - The finalizer is in place before anything is created in Losant.
//! - Status is written only when it changes, by server-side apply; spec is never written.
//! - Absence from a list snapshot never leads to a POST; a recorded id that Losant no longer has
//!   is re-created only after the application itself is confirmed to exist.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use kube::api::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::{Api, Resource};

mod cleanup;
mod execute;
mod paused;
mod record;
mod report;
mod resolve;

use super::context::Context;
use super::error::Error;
use super::outcome::{Failure, RequeueChoice};
use super::status;
use crate::crd::{Integration, IntegrationStatus, ManagementPolicy};
use crate::sync::conditions;
use crate::sync::decide;
use crate::sync::reason::{ConditionStatus, ConditionType};
use execute::Synced;
use report::{Next, Note, Report};

/// The finalizer that keeps an `Integration` until its remote is deleted (or orphaned).
pub const FINALIZER: &str = "losant.io/integration";

pub use paused::{PAUSED, is_paused};
pub use record::{APPLICATION_ID, INTEGRATION_ID, ORIGIN, SECRETS_MATCH_REMOTE};

/// The annotation whose changed value asks for a reconcile against a fresh read from Losant;
/// status `lastHandledReconcileAt` says which value was handled.
pub const RECONCILE_REQUESTED_AT: &str = "losant.io/reconcile-requested-at";

/// The refusal still in force at `now` when the last reconcile of this generation stalled on
/// Losant refusing a write (bad token, missing scope, rejected body) less than `recheck` ago.
fn refused_recently(
    obj: &Integration,
    previous: &IntegrationStatus,
    now: Timestamp,
    recheck: Duration,
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
    let age = now
        .duration_since(stalled.last_transition_time.0)
        .unsigned_abs();
    (age < recheck).then(|| Failure::permanent(reason, stalled.message.clone()))
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
    if let Some(why) = crate::ops::lean::undecodable(&*obj) {
        return Ok(super::undecodable::report(&*obj, why, &ctx).await);
    }
    if paused::holds(&obj, &ctx) {
        return paused::hold(&obj, &api, &ctx).await;
    }
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

/// An apply: resolve → decide → execute ([`sync`]), then report.
async fn apply(
    cached: &Integration,
    api: &Api<Integration>,
    namespace: &str,
    ctx: &Context,
) -> Result<Action, Error> {
    let obj = &*latest(cached, api, ctx).await?;
    let previous = obj.status.clone().unwrap_or_default();
    // One reading of the clock: status times, the refusal's re-check and a pending create's
    // grace period all count to the reconcile's start.
    let now = ctx.clock.now();
    let requested = obj
        .annotations()
        .get(RECONCILE_REQUESTED_AT)
        .map(String::as_str);
    // A new request is answered from Losant itself, not from what this process saw lately.
    let fresh = requested.is_some() && requested != previous.last_handled_reconcile_at.as_deref();
    // Held until the id is recorded, so another object with this name sees it.
    let _name_lock = ctx.owners.lock_name(obj.remote_name()).await;
    let outcome = match sync(obj, api, &previous, namespace, ctx, (now, fresh)).await {
        Ok(synced) => Ok(synced),
        Err(Stop::Failed(failure)) => Err(failure),
        Err(Stop::Kube(error)) => return Err(error),
    };
    let report = report::report(obj.metadata.generation, &previous, &outcome, now, requested);
    publish(obj, api, report, ctx).await
}

/// The object to apply: the cached one, unless it is behind this process's own writes, then
/// read afresh. The id is recorded in annotations just before status: a cached object caught
/// between the two writes would look like one whose status was lost. And a cached status older
/// than the one last written would send again what was already applied (a rotated Secret's
/// values: they cannot be compared with Losant's, so only status says they were sent).
async fn latest<'a>(
    cached: &'a Integration,
    api: &Api<Integration>,
    ctx: &Context,
) -> Result<Cow<'a, Integration>, Error> {
    let uid = cached.uid().unwrap_or_default();
    let behind_own_write =
        ctx.status_lags_write(&uid, record::applied_mark(cached.status.as_ref()));
    if !record::status_lags_annotations(cached) && !behind_own_write {
        return Ok(Cow::Borrowed(cached));
    }
    let latest = api
        .get(&cached.name_any())
        .await
        .map_err(Error::kube("read the Integration"))?;
    Ok(Cow::Owned(latest))
}

/// Steps 1 to 3: resolve, decide, execute.
async fn sync(
    obj: &Integration,
    api: &Api<Integration>,
    previous: &IntegrationStatus,
    namespace: &str,
    ctx: &Context,
    (now, fresh): (Timestamp, bool),
) -> Result<Synced, Stop> {
    // A create Losant refused for good is not tried again before the stalled re-check, even
    // though the operator's own writes (status, the create-pending marker) wake this reconciler;
    // a requested reconcile is tried at once.
    let recheck = ctx.settings.stalled_retry_interval;
    if let Some(failure) = refused_recently(obj, previous, now, recheck).filter(|_| !fresh) {
        return Err(failure.into());
    }
    let place = resolve::place(obj, namespace, ctx).await?;
    let full = obj.spec.management_policy == ManagementPolicy::Full;
    if let Some(old_id) = place.left_behind(previous).filter(|_| full) {
        cleanup::leave_old_application(obj, previous, old_id, namespace, ctx).await?;
    }
    let resolved = resolve::remote(obj, previous, place, ctx, (now, fresh)).await?;
    let grace = ctx.settings.create_grace_period;
    let decision = decide::decide(&resolved.facts, now, grace);
    execute::execute(obj, api, ctx, resolved, decision).await
}

/// Step 4's I/O: the requeue (and backoff) chosen, the Events published, then the status
/// written if it changed.
async fn publish(
    obj: &Integration,
    api: &Api<Integration>,
    report: Report,
    ctx: &Context,
) -> Result<Action, Error> {
    let action = match report.next {
        Next::Resync => {
            ctx.reset_backoff(&key(obj));
            ctx.resync()
        }
        Next::Retry(choice) => Action::requeue(match choice {
            RequeueChoice::After(wait) => wait,
            RequeueChoice::Backoff(retry_after) => ctx.backoff(&key(obj), retry_after),
            RequeueChoice::StalledRecheck => ctx.settings.stalled_retry_interval,
        }),
    };
    if report.drift_corrected {
        ctx.metrics.drift_corrected();
    }
    for note in report.events {
        announce(obj, note, ctx).await;
    }
    if status::apply_if_changed(api, &obj.name_any(), obj.status.as_ref(), &report.status).await? {
        ctx.metrics.status_written();
    }
    // The status now is `report.status` (written, or already so).
    let uid = obj.uid().unwrap_or_default();
    ctx.remember_written(&uid, record::applied_mark(Some(&report.status)));
    Ok(action)
}

/// Publishes an Event about `obj`.
async fn announce(obj: &Integration, note: Note, ctx: &Context) {
    let Note {
        type_,
        reason,
        action,
        note,
    } = note;
    ctx.event(&obj.object_ref(&()), type_, reason, action, note)
        .await;
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;

    use super::*;
    use crate::sync::conditions::Health;
    use crate::sync::reason::Reason;

    const RECHECK: Duration = Duration::from_secs(300);

    fn now() -> Timestamp {
        Timestamp::from_second(1_800_000_000).unwrap()
    }

    fn object(generation: i64) -> Integration {
        let spec = serde_json::from_value(serde_json::json!({
            "applicationRef": {"name": "app"},
            "integrationType": "sqs",
            "sqsConfig": {"queueUrl": "u"},
        }))
        .unwrap();
        let mut obj = Integration::new("queue", spec);
        obj.metadata.generation = Some(generation);
        obj
    }

    /// Stalled on `reason` since `seconds` ago, for generation 1.
    fn stalled(reason: Reason, seconds: i64) -> IntegrationStatus {
        let health = Health::Stalled {
            reason,
            message: "the API token may not create the integration".into(),
        };
        let since = now() - SignedDuration::from_secs(seconds);
        IntegrationStatus {
            observed_generation: Some(1),
            conditions: conditions::conditions(&health, Some(1), &[], since),
            ..IntegrationStatus::default()
        }
    }

    #[test]
    fn a_refusal_holds_until_the_recheck_or_a_new_generation() {
        let refused = |generation, status: &IntegrationStatus| {
            refused_recently(&object(generation), status, now(), RECHECK)
        };
        assert_eq!(
            refused(1, &stalled(Reason::InsufficientScope, 10)),
            Some(Failure::permanent(
                Reason::InsufficientScope,
                "the API token may not create the integration"
            ))
        );
        assert_eq!(refused(1, &stalled(Reason::InsufficientScope, 300)), None);
        assert_eq!(refused(2, &stalled(Reason::Unauthorized, 10)), None);
        assert_eq!(refused(1, &stalled(Reason::AmbiguousName, 10)), None);
        assert_eq!(refused(1, &IntegrationStatus::default()), None);
    }
}
