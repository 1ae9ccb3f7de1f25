//! Step 3 of an Integration's apply: the only code that writes to Losant for it. It carries out
//! a [`Decision`] and records what it did, and returns [`Synced`], which only it builds.
//!
//! # Guarantees
//! - The crash-safe order: the finalizer and the create-pending marker (one patch, guarded by
//!   the object's `resourceVersion`) → POST → the id recorded in annotations → (status, written
//!   by the caller). A crash anywhere in between never leads to a second integration.
//! - The finalizer is in place before anything remote is created, changed or taken over.
//! - Only an answer that proves nothing was created clears the create-pending marker.

use std::collections::BTreeMap;

use kube::Api;
use kube::api::ResourceExt;

use super::super::context::Context;
use super::super::error::Error;
use super::super::outcome::{Failure, LosantCall};
use super::super::owners;
use super::resolve::Resolved;
use super::{FINALIZER, Stop, has_finalizer, record};
use crate::crd::{Integration, Origin, Word};
use crate::losant::{self, IntegrationPatch, IntegrationPost};
use crate::sync::connection::{self, Connection};
use crate::sync::decide::Decision;
use crate::sync::desired::Desired;
use crate::sync::plan;

/// What a write to Losant did.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Wrote {
    Created,
    Recreated {
        old_id: String,
    },
    Adopted {
        patched: Vec<&'static str>,
    },
    Patched {
        spec_changed: bool,
        fields: Vec<&'static str>,
    },
}

/// A successful sync: the remote as Losant last answered, recorded in annotations.
pub(super) struct Synced {
    pub remote: losant::Integration,
    /// How the operator came to manage it; for an observed remote, what was recorded, if anything.
    pub origin: Option<Origin>,
    pub application_id: String,
    pub api_url: String,
    pub wrote: Option<Wrote>,
    pub applied_fields: Vec<Word>,
    pub secret_versions: BTreeMap<String, String>,
    /// `ObserveOnly`: the fields that differ from the spec (nothing was written).
    pub drift: Option<Vec<&'static str>>,
    /// The remote's connection, as Losant reports it.
    pub connection: Connection,
    /// Only [`execute`] builds one: status is reported from what was applied, not planned.
    _applied: (),
}

#[cfg(test)]
impl Synced {
    /// A sync of `remote` into `application_id` as [`execute`] reports it, for report tests.
    pub(super) fn for_test(
        remote: losant::Integration,
        origin: Origin,
        application_id: &str,
        wrote: Option<Wrote>,
    ) -> Self {
        let connection = connection::assess(remote.status.as_ref(), true, &[]);
        Synced {
            remote,
            origin: Some(origin),
            application_id: application_id.into(),
            api_url: "https://api.losant.com".into(),
            wrote,
            applied_fields: vec!["enabled".into(), "name".into()],
            secret_versions: BTreeMap::from([("mqtt".into(), "7".into())]),
            drift: None,
            connection,
            _applied: (),
        }
    }
}

/// Where writes go.
struct Target<'a> {
    ctx: &'a Context,
    client: &'a losant::Client,
    application_id: &'a str,
    api: &'a Api<Integration>,
    obj: &'a Integration,
}

/// Carries out `decision`, then records the remote (annotations, the owner index).
pub(super) async fn execute(
    obj: &Integration,
    api: &Api<Integration>,
    ctx: &Context,
    resolved: Resolved,
    decision: Decision,
) -> Result<Synced, Stop> {
    let Resolved {
        facts,
        client,
        api_url,
        secret_versions,
    } = resolved;
    let target = Target {
        ctx,
        client: &client,
        application_id: &facts.application_id,
        api,
        obj,
    };
    if let Decision::Observe { remote, drift } = decision {
        // Nothing is written, not even the finalizer or the annotations: status reports it.
        return Ok(Synced {
            connection: connection_of(&remote, &facts.desired),
            remote: *remote,
            origin: facts.recorded.and_then(|r| r.origin),
            application_id: facts.application_id,
            api_url,
            wrote: None,
            applied_fields: Vec::new(),
            secret_versions,
            drift: Some(drift),
            _applied: (),
        });
    }
    let (remote, origin, wrote) = write(&target, decision).await?;
    let synced = Synced {
        connection: connection_of(&remote, &facts.desired),
        remote,
        origin: Some(origin),
        application_id: facts.application_id,
        api_url,
        wrote,
        applied_fields: plan::applied_fields(&facts.desired),
        secret_versions,
        drift: None,
        _applied: (),
    };
    record_remote(obj, api, ctx, &synced).await?;
    Ok(synced)
}

/// The write `decision` asks for; a refusal or a wait is a [`Failure`].
async fn write(
    target: &Target<'_>,
    decision: Decision,
) -> Result<(losant::Integration, Origin, Option<Wrote>), Stop> {
    let Target { api, obj, .. } = *target;
    // The finalizer goes on before anything remote is changed or taken over; a create carries
    // it in the marker's patch.
    if matches!(
        decision,
        Decision::Adopt { .. } | Decision::Patch { .. } | Decision::InSync { .. }
    ) && !has_finalizer(obj)
    {
        add_finalizer(api, obj).await?;
    }
    match decision {
        Decision::Create { post, recreates } => {
            let created = create(target, &post).await?;
            let wrote = match recreates {
                Some(old_id) => Wrote::Recreated { old_id },
                None => Wrote::Created,
            };
            Ok((created, Origin::Created, Some(wrote)))
        }
        Decision::Adopt { remote, patch } => {
            let (remote, patched) = match patch {
                Some(patch) => (
                    send(target, &remote, &patch).await?,
                    plan::patched_fields(&patch),
                ),
                None => (*remote, Vec::new()),
            };
            Ok((remote, Origin::Adopted, Some(Wrote::Adopted { patched })))
        }
        Decision::Patch {
            remote,
            origin,
            patch,
            spec_changed,
        } => {
            let patched = send(target, &remote, &patch).await?;
            let fields = plan::patched_fields(&patch);
            let wrote = Wrote::Patched {
                spec_changed,
                fields,
            };
            Ok((patched, origin, Some(wrote)))
        }
        Decision::InSync { remote, origin } => Ok((*remote, origin, None)),
        // Handled by `execute` before any write; kept total rather than panicking.
        Decision::Observe { remote, .. } => Ok((*remote, Origin::Adopted, None)),
        Decision::Wait(wait) => Err(Failure::Transient {
            reason: wait.reason(),
            message: wait.message(),
            retry_after: Some(wait.retry_after),
        }
        .into()),
        Decision::Refuse(refusal) => {
            Err(Failure::permanent(refusal.reason(), refusal.to_string()).into())
        }
    }
}

/// Marks the create as pending (adding the finalizer if missing), then POSTs.
async fn create(target: &Target<'_>, post: &IntegrationPost) -> Result<losant::Integration, Stop> {
    let Target {
        ctx,
        client,
        application_id,
        api,
        obj,
    } = *target;
    let finalizer = (!has_finalizer(obj)).then_some(FINALIZER);
    // The marker says when the POST was sent: the clock is read at the moment of sending.
    let sent_at = ctx.clock.now();
    record::mark_create_pending(api, obj, sent_at, application_id, &post.name, finalizer).await?;
    let created = match client.create(application_id, post).await {
        Ok(created) => created,
        Err(error) => {
            // Only an answer that proves nothing was created may clear the marker.
            if !error.write_outcome_unknown() {
                record::clear_create_pending(api, &obj.name_any()).await?;
            }
            return Err(Failure::losant(LosantCall::Create, &error).into());
        }
    };
    crate::failpoint::hit("after-post");
    ctx.snapshots.note_write(
        client.api_url(),
        application_id,
        &created.id,
        Some(&created),
    );
    Ok(created)
}

/// PATCHes exactly `patch` onto `remote`.
async fn send(
    target: &Target<'_>,
    remote: &losant::Integration,
    patch: &IntegrationPatch,
) -> Result<losant::Integration, Stop> {
    let Target {
        ctx,
        client,
        application_id,
        ..
    } = *target;
    let patched = client
        .patch(application_id, &remote.id, patch)
        .await
        .map_err(|e| Failure::losant(LosantCall::Patch, &e))?;
    ctx.snapshots
        .note_write(client.api_url(), application_id, &remote.id, Some(&patched));
    Ok(patched)
}

/// Records the remote in annotations (before status: see [`record`](mod@record)) and claims
/// it in the owner index.
async fn record_remote(
    obj: &Integration,
    api: &Api<Integration>,
    ctx: &Context,
    synced: &Synced,
) -> Result<(), Error> {
    let (id, app) = (&synced.remote.id, &synced.application_id);
    // A managed remote always has its origin; Adopted is the safe reading (it orphans).
    let origin = synced.origin.unwrap_or(Origin::Adopted);
    if !record::records(obj, id, app, origin) {
        record::record(api, &obj.name_any(), id, app, origin).await?;
    }
    let claims = owners::claims(&synced.api_url, app, &synced.remote.name, Some(id));
    ctx.owners.claim(&ctx.kube, obj, claims).await?;
    if synced.wrote.is_some() {
        crate::failpoint::hit("before-status");
    }
    Ok(())
}

/// The connection of `remote`, its error text masked of the secret values `desired` carries.
fn connection_of(remote: &losant::Integration, desired: &Desired) -> Connection {
    let enabled = remote.enabled.unwrap_or(desired.enabled);
    let secrets = connection::secret_values(desired);
    connection::assess(remote.status.as_ref(), enabled, &secrets)
}

/// Adds [`FINALIZER`], guarded by the object's `resourceVersion` (a concurrent change makes it
/// a conflict, retried), and returns the object as written.
async fn add_finalizer(api: &Api<Integration>, obj: &Integration) -> Result<Integration, Error> {
    let version = obj.metadata.resource_version.clone().unwrap_or_default();
    let add = if obj.metadata.finalizers.is_none() {
        serde_json::json!({"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]})
    } else {
        serde_json::json!({"op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER})
    };
    let patch: json_patch::Patch = serde_json::from_value(serde_json::json!([
        {"op": "test", "path": "/metadata/resourceVersion", "value": version},
        add,
    ]))
    .map_err(|_| Error::InvalidPatch)?;
    api.patch(
        &obj.name_any(),
        &kube::api::PatchParams::default(),
        &kube::api::Patch::<()>::Json(patch),
    )
    .await
    .map_err(Error::kube("add the finalizer"))
}
