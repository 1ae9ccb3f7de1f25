//! Letting a remote go: on deletion of an `Integration` (the remote follows the deletion policy,
//! then the finalizer goes), and when its spec moves to another application (the old remote
//! follows the deletion policy before the new place is claimed).
//!
//! # Guarantees
//! - The finalizer is removed only once the remote is confirmed deleted (a 404 counts: the
//!   integration, or its whole application, is gone), or the policy is `Orphan`.
//! - A create that was pending when the object was deleted is found by name and deleted too, so
//!   a crash between POST and recording the id leaks nothing.
//! - While deletion is impossible (revoked token, no application object left), the object says
//!   `DeletionBlocked` and why; switching `deletionPolicy` to `Orphan` lets it finish.

use jiff::Timestamp;
use kube::Api;
use kube::api::{ListParams, ResourceExt};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;

use super::super::context::Context;
use super::super::error::Error;
use super::super::outcome::{Failure, LosantCall};
use super::super::{owners, status};
use super::report::{self, Note};
use super::{Stop, announce, key, record};
use crate::crd::{DeletionPolicy, Integration, IntegrationStatus, LosantApplication};
use crate::losant;
use crate::sync::conditions::{self, Health};
use crate::sync::locate;
use crate::sync::reason::Reason;

/// The spec moved to another application: the old remote follows the deletion policy, deleted
/// with a token of the old application (a `LosantApplication` of this namespace that names it).
/// A transient failure holds the move until it can be done; a permanent one leaves the old
/// remote in place and says so.
pub(super) async fn leave_old_application(
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
            match delete_one(obj, previous, old_id, &old_app, namespace, ctx).await {
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
    let moved = Note {
        type_: EventType::Normal,
        reason: "Moved",
        action: "Move",
        note,
    };
    announce(obj, moved, ctx).await;
    Ok(())
}

/// Deletes (or orphans) the remote, then lets the finalizer go.
pub async fn cleanup(
    obj: &Integration,
    api: &Api<Integration>,
    namespace: &str,
    ctx: &Context,
) -> Result<Action, Error> {
    let previous = obj.status.clone().unwrap_or_default();
    let now = ctx.clock.now();
    match delete(obj, &previous, namespace, ctx, now).await {
        Ok(note) => {
            ctx.reset_backoff(&key(obj));
            ctx.owners.release(obj);
            if let Some((reason, note)) = note {
                let type_ = EventType::Normal;
                let action = "Delete";
                announce(
                    obj,
                    Note {
                        type_,
                        reason,
                        action,
                        note,
                    },
                    ctx,
                )
                .await;
            }
            crate::failpoint::hit("after-delete");
            Ok(Action::await_change())
        }
        Err(Stop::Kube(error)) => Err(error),
        Err(Stop::Failed(failure)) => {
            // Keep the finalizer: say why, and fail so the controller retries: with backoff (or
            // Losant's Retry-After) when transient, slowly when it needs a change.
            let retry_in = match &failure {
                Failure::Permanent { .. } => ctx.settings.stalled_retry_interval,
                Failure::Transient { retry_after, .. } => ctx.backoff(&key(obj), *retry_after),
            };
            let health = match failure {
                Failure::Permanent { message, .. } => Health::Stalled {
                    reason: Reason::DeletionBlocked,
                    message,
                },
                Failure::Transient { message, .. } => Health::Progressing {
                    reason: Reason::Deleting,
                    message,
                },
            };
            let mut next = previous.clone();
            next.conditions =
                conditions::conditions(&health, obj.metadata.generation, &previous.conditions, now);
            if let Some(note) = report::failure_event(&previous, &health) {
                announce(obj, note, ctx).await;
            }
            if status::apply_if_changed(api, &obj.name_any(), obj.status.as_ref(), &next).await? {
                ctx.metrics.status_written();
            }
            Err(Error::DeletionBlocked { retry_in })
        }
    }
}

/// What deleting `obj` does to its remote: its `deletionPolicy`, else `Delete` for what the
/// operator created (a pending create counts) and `Orphan` for what it adopted. Under
/// `ObserveOnly` the remote is never deleted. Orphaning calls no Losant API.
pub(super) fn deletion_policy(
    obj: &Integration,
    previous: &IntegrationStatus,
    now: Timestamp,
) -> DeletionPolicy {
    crate::sync::record::deletion_policy(obj, previous, now)
}

/// Does the deletion; returns the event to publish, if any.
async fn delete(
    obj: &Integration,
    previous: &IntegrationStatus,
    namespace: &str,
    ctx: &Context,
    now: Timestamp,
) -> Result<Option<(&'static str, String)>, Stop> {
    let pending = record::create_pending(obj, now);
    let recorded = recorded(obj, previous);
    if deletion_policy(obj, previous, now) == DeletionPolicy::Orphan {
        return Ok(recorded.map(|r| {
            (
                "Orphaned",
                format!(
                    "left integration {} in application {} (deletionPolicy Orphan)",
                    r.id, r.application_id
                ),
            )
        }));
    }
    let mut doomed: Vec<Doomed> = recorded.into_iter().collect();
    // A create still pending (its answer lost, or a crash before recording it) may have made
    // another integration, under the name and application it was sent with.
    if let Some(pending) = &pending
        && let Some(made) = find_pending(obj, namespace, ctx, pending, now).await?
        && !doomed.iter().any(|d| d.id == made.id)
    {
        doomed.push(made);
    }
    let mut deleted = Vec::new();
    for target in doomed {
        let client = client_for(
            obj,
            &target.application_id,
            previous.api_url.as_deref(),
            namespace,
            ctx,
        )
        .await?;
        // An older object that manages the same remote (this one may be a copy) keeps it.
        let api_url = client.api_url().trim_end_matches('/');
        let claim = owners::claims(
            api_url,
            &target.application_id,
            obj.remote_name(),
            Some(&target.id),
        );
        let by_id = claim.into_iter().skip(1).collect();
        if let Some(rival) = ctx.owners.claim(&ctx.kube, obj, by_id).await? {
            return Ok(Some((
                "NotOwner",
                format!(
                    "integration {} is managed by Integration {}; left in place",
                    target.id, rival.object
                ),
            )));
        }
        match client.delete(&target.application_id, &target.id).await {
            Ok(()) => {}
            // The integration, or its whole application, is gone: nothing left to delete.
            Err(error) if error.is_not_found() => {}
            Err(error) => return Err(Failure::losant(LosantCall::Delete, &error).into()),
        }
        ctx.snapshots
            .note_write(client.api_url(), &target.application_id, &target.id, None);
        deleted.push(format!(
            "integration {} from application {}",
            target.id, target.application_id
        ));
    }
    Ok((!deleted.is_empty()).then(|| ("Deleted", format!("deleted {}", deleted.join(" and ")))))
}

struct Doomed {
    id: String,
    application_id: String,
}

/// The remote recorded, whatever its application (see [`crate::sync::record::managed`]).
fn recorded(obj: &Integration, previous: &IntegrationStatus) -> Option<Doomed> {
    crate::sync::record::managed(obj, previous).map(|managed| Doomed {
        id: managed.id,
        application_id: managed.application_id,
    })
}

/// The integration a pending create made, found by the name and in the application it was sent
/// with. `None` when nothing was created (once the grace period is over).
async fn find_pending(
    obj: &Integration,
    namespace: &str,
    ctx: &Context,
    pending: &record::Pending,
    now: Timestamp,
) -> Result<Option<Doomed>, Stop> {
    let application_id = match &pending.application_id {
        Some(id) => id.clone(),
        None => {
            let apps: Api<LosantApplication> = Api::namespaced(ctx.kube.clone(), namespace);
            let Some(app) = apps
                .get_opt(&obj.spec.application_ref.name)
                .await
                .map_err(Error::kube("read the LosantApplication"))?
            else {
                return Err(Failure::permanent(
                    Reason::DeletionBlocked,
                    "a create was pending, and the LosantApplication to look for it with is gone; set deletionPolicy: Orphan to let go",
                )
                .into());
            };
            app.spec.application_id.to_ascii_lowercase()
        }
    };
    let client = client_for(obj, &application_id, None, namespace, ctx).await?;
    let name = pending
        .name
        .clone()
        .unwrap_or_else(|| obj.remote_name().to_owned());
    let matches = client
        .find_by_name(&application_id, &name)
        .await
        .map_err(|e| Failure::losant(LosantCall::FindByName, &e))?;
    match matches.as_slice() {
        [one] => Ok(Some(Doomed { id: one.id.clone(), application_id })),
        [] if pending.age(now) < ctx.settings.create_grace_period => {
            Err(Failure::transient(Reason::Deleting, "a create may still show up in Losant's lists; waiting for it before letting go").into())
        }
        [] => Ok(None),
        many => Err(Failure::permanent(
            Reason::DeletionBlocked,
            format!("a create was pending and {} integrations are named {name:?}; delete the right one in Losant, then set deletionPolicy: Orphan", many.len()),
        )
        .into()),
    }
}

/// A client for the application, with the token of a `LosantApplication` of this namespace that
/// names it (the spec's first, if it still does).
async fn client_for(
    obj: &Integration,
    application_id: &str,
    api_url: Option<&str>,
    namespace: &str,
    ctx: &Context,
) -> Result<losant::Client, Stop> {
    let apps: Api<LosantApplication> = Api::namespaced(ctx.kube.clone(), namespace);
    let candidates = apps
        .list(&ListParams::default())
        .await
        .map_err(Error::kube("list LosantApplications"))?;
    let app = candidates
        .items
        .into_iter()
        .filter(|a| a.spec.application_id.eq_ignore_ascii_case(application_id))
        .filter(|a| api_url.is_none_or(|url| a.spec.api_url.trim_end_matches('/') == url))
        .min_by_key(|a| a.name_any() != obj.spec.application_ref.name)
        .ok_or_else(|| {
            Failure::permanent(
                Reason::DeletionBlocked,
                format!("no LosantApplication for application {application_id} is left in this namespace to delete the integration with; set deletionPolicy: Orphan to let go"),
            )
        })?;
    Ok(super::super::clients::for_application(&app, namespace, ctx).await??)
}

/// Deletes one remote integration with a token of its application, unless an older object owns
/// it. Returns whether it deleted something (a 404 or an owner elsewhere: false).
pub(super) async fn delete_one(
    obj: &Integration,
    previous: &IntegrationStatus,
    id: &str,
    application_id: &str,
    namespace: &str,
    ctx: &Context,
) -> Result<bool, Stop> {
    let client = client_for(
        obj,
        application_id,
        previous.api_url.as_deref(),
        namespace,
        ctx,
    )
    .await?;
    let api_url = client.api_url().trim_end_matches('/');
    let claim = owners::claims(api_url, application_id, obj.remote_name(), Some(id));
    if ctx
        .owners
        .claim(&ctx.kube, obj, claim.into_iter().skip(1).collect())
        .await?
        .is_some()
    {
        return Ok(false);
    }
    let deleted = match client.delete(application_id, id).await {
        Ok(()) => true,
        Err(error) if error.is_not_found() => false,
        Err(error) => return Err(Failure::losant(LosantCall::Delete, &error).into()),
    };
    ctx.snapshots
        .note_write(client.api_url(), application_id, id, None);
    Ok(deleted)
}
