//! Step 1 of an Integration's apply: all reading, nothing written to Losant. The
//! `LosantApplication` (ready, or why not), the referenced Secrets, the client, the owner
//! index's claim check, the recorded remote and the create-pending marker, the recorded remote
//! as Losant holds it, and a lookup by name when that is needed → [`Resolved`], whose
//! [`Facts`] are what [`crate::sync::decide`] decides on.
//!
//! It is cut in two ([`place`], then [`remote`]) because a spec that moved to another
//! application first lets its old remote go (`cleanup::leave_old_application`), before the new
//! place is claimed.
//!
//! # Guarantees
//! - Losant is read only once the object's claim is checked: an older owner stops the reads.
//! - A recorded remote is read from what this process saw within the resync interval only when
//!   nothing changed locally (spec, Secrets, Ready), and only from a view taken after the last
//!   write (status times have whole seconds).
//! - A recorded remote Losant no longer has is reported gone only after the application itself
//!   is confirmed to exist.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;

use super::super::context::Context;
use super::super::error::Error;
use super::super::outcome::{Failure, LosantCall};
use super::super::snapshot::Seen;
use super::super::{SyncStrategy, clients, owners, secrets};
use super::{Stop, record};
use crate::crd::{Integration, IntegrationStatus, LosantApplication, ManagementPolicy};
use crate::losant::{self, ListQuery};
use crate::sync::conditions;
use crate::sync::decide::{self, Facts, Found, Pending, SecretsSince};
use crate::sync::desired::{self, Desired};
use crate::sync::reason::{ConditionStatus, ConditionType, Reason};
use crate::sync::record as sync_record;

/// Where the spec points and what it asks for: the first half of reading.
pub(super) struct Place {
    /// The integration the spec asks for, Secret values resolved.
    desired: Desired,
    /// The `resourceVersion` of each Secret the values came from.
    secret_versions: BTreeMap<String, String>,
    /// The application (lowercase id).
    application_id: String,
    /// Its API URL, without a trailing slash.
    api_url: String,
    /// A client with the application's token.
    client: losant::Client,
}

impl Place {
    /// Whether status is about this application and API URL.
    fn is_where(&self, previous: &IntegrationStatus) -> bool {
        previous.application_id.as_deref() == Some(self.application_id.as_str())
            && previous.api_url.as_deref() == Some(self.api_url.as_str())
    }

    /// The remote status records in another application (or at another API URL): the spec
    /// moved away from it.
    pub(super) fn left_behind<'a>(&self, previous: &'a IntegrationStatus) -> Option<&'a str> {
        match &previous.integration_id {
            Some(id) if !self.is_where(previous) => Some(id),
            _ => None,
        }
    }
}

/// Everything the reconcile read: the facts to decide on, and what the executor needs.
pub(super) struct Resolved {
    /// What [`decide::decide`] decides on.
    pub facts: Facts,
    /// A client with the application's token.
    pub client: losant::Client,
    /// The API URL, without a trailing slash.
    pub api_url: String,
    /// The `resourceVersion` of each Secret the desired values came from.
    pub secret_versions: BTreeMap<String, String>,
}

/// Reads the `LosantApplication` (it must be Ready), the referenced Secrets, and builds the
/// desired integration and the client.
pub(super) async fn place(
    obj: &Integration,
    namespace: &str,
    ctx: &Context,
) -> Result<Place, Stop> {
    let app = ready_application(obj, namespace, ctx).await?;
    let secret_api: Api<Secret> = Api::namespaced(ctx.kube.clone(), namespace);
    let refs = desired::secret_refs(&obj.spec);
    let resolved = secrets::resolve(&secret_api, &refs).await??;
    let desired = desired::desired(&obj.spec, obj.remote_name(), &resolved.values)
        .map_err(|error| Failure::permanent(Reason::InvalidSpec, error.to_string()))?;
    let api_url = app.spec.api_url.trim_end_matches('/').to_owned();
    let application_id = app.spec.application_id.to_ascii_lowercase();
    let client = clients::for_application(&app, namespace, ctx).await??;
    Ok(Place {
        desired,
        secret_versions: resolved.versions,
        application_id,
        api_url,
        client,
    })
}

/// Checks the object's claim, then reads the recorded remote, or looks the name up when
/// nothing is recorded or Losant no longer has it.
pub(super) async fn remote(
    obj: &Integration,
    previous: &IntegrationStatus,
    place: Place,
    ctx: &Context,
    (now, fresh): (Timestamp, bool),
) -> Result<Resolved, Stop> {
    let secrets = sync_record::secrets_since(
        previous,
        &place.application_id,
        &place.api_url,
        &place.secret_versions,
    );
    let Place {
        desired,
        secret_versions,
        application_id,
        api_url,
        client,
    } = place;
    let recorded = record::recorded(obj, previous, &application_id, &api_url);
    let known_id = recorded.as_ref().map(|r| r.id.as_str());
    // An observer writes nothing, so it neither claims a remote nor yields one to a manager.
    let rival = if obj.spec.management_policy == ManagementPolicy::ObserveOnly {
        ctx.owners.release(obj);
        None
    } else {
        let claims = owners::claims(&api_url, &application_id, &desired.name, known_id);
        ctx.owners.claim(&ctx.kube, obj, claims).await?
    };
    let pending = record::create_pending(obj, now);
    let found = match (rival, known_id) {
        (Some(rival), _) => Found::Claimed(rival),
        (None, known_id) => {
            // The recorded remote if Losant still has it, else a lookup by name.
            let known_remote = match known_id {
                Some(id) => {
                    let known = Known {
                        id,
                        name: &desired.name,
                        unchanged: !fresh
                            && secrets == SecretsSince::Unchanged
                            && obj.metadata.generation == previous.observed_generation
                            && conditions::is_ready(&previous.conditions),
                    };
                    read_known(&client, &application_id, &known, previous, ctx).await?
                }
                None => None,
            };
            match known_remote {
                Some(remote) => Found::Known(Box::new(remote)),
                None => {
                    let pending = pending.as_ref();
                    let lookup = (pending, fresh);
                    by_name(obj, &client, &application_id, lookup, &desired, ctx).await?
                }
            }
        }
    };
    let place = sync_record::Place {
        desired,
        application_id,
        secrets,
        previous,
    };
    let facts = sync_record::facts(obj, place, (recorded, pending), found);
    Ok(Resolved {
        facts,
        client,
        api_url,
        secret_versions,
    })
}

/// Looks the remote up by name. While a create is pending here that lookup uses the name the
/// create was sent with, and a match is the operator's own creation (see [`decide`]).
async fn by_name(
    obj: &Integration,
    client: &losant::Client,
    application_id: &str,
    (pending, fresh): (Option<&Pending>, bool),
    desired: &Desired,
    ctx: &Context,
) -> Result<Found, Stop> {
    let pending = decide::pending_here(pending, application_id);
    let name = decide::lookup_name(pending, desired);
    // A pending create, or a requested reconcile, asks Losant itself.
    let ask_losant = pending.is_some() || fresh;
    let matches = find_by_name(client, application_id, &name, obj, ask_losant, ctx)
        .await
        .map_err(|e| Failure::losant(LosantCall::FindByName, &e))?;
    Ok(Found::Named { name, matches })
}

/// The `LosantApplication`, if it is Ready for the current spec; otherwise why not.
async fn ready_application(
    obj: &Integration,
    namespace: &str,
    ctx: &Context,
) -> Result<LosantApplication, Stop> {
    let name = &obj.spec.application_ref.name;
    let app = match ctx.caches.application(namespace, name) {
        Some(cached) => cached.map(|app| app.as_ref().clone()),
        None => {
            let apps: Api<LosantApplication> = Api::namespaced(ctx.kube.clone(), namespace);
            apps.get_opt(name)
                .await
                .map_err(Error::kube("read the LosantApplication"))?
        }
    };
    let app = app
        // Often just not applied yet (GitOps tools apply in any order): wait for it; the
        // LosantApplication watch brings this object back as soon as it appears.
        .ok_or_else(|| {
            Failure::transient(
                Reason::ApplicationNotFound,
                format!("LosantApplication {name:?} does not exist in this namespace (yet)"),
            )
        })?;
    let status = app.status.clone().unwrap_or_default();
    let checked = status.observed_generation == app.metadata.generation;
    match conditions::ready_condition(&status.conditions) {
        Some(ready) if checked && ready.is(ConditionType::Ready, ConditionStatus::True) => Ok(app),
        Some(ready)
            if checked
                && conditions::has(
                    &status.conditions,
                    ConditionType::Stalled,
                    ConditionStatus::True,
                ) =>
        {
            Err(Failure::permanent(
                Reason::ApplicationNotReady,
                format!(
                    "LosantApplication {name:?} is not ready: {}: {}",
                    ready.reason, ready.message
                ),
            )
            .into())
        }
        _ => Err(Failure::transient(
            Reason::WaitingForApplication,
            format!("waiting for LosantApplication {name:?} to be verified"),
        )
        .into()),
    }
}

/// How fresh a view must be to decide that a name is free (a lookup by name).
const NAME_LOOKUP_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(10);

/// The integrations named `name`. A pending create is looked for with a call of its own (its
/// outcome decides whether to create again); otherwise the per-application strategy answers
/// from the application's view, if that was taken after the object was created (so what was
/// made in Losant before the object was applied is seen and adopted) and recently.
async fn find_by_name(
    client: &losant::Client,
    application_id: &str,
    name: &str,
    obj: &Integration,
    ask_losant: bool,
    ctx: &Context,
) -> Result<Vec<losant::Integration>, losant::Error> {
    if ctx.settings.sync_strategy == SyncStrategy::PerApplication && !ask_losant {
        let max_age = NAME_LOOKUP_MAX_AGE.min(ctx.settings.resync_interval);
        // creationTimestamp has whole seconds: the second after it is surely later.
        let created = obj
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0 + jiff::SignedDuration::from_secs(1));
        return ctx
            .snapshots
            .find_by_name(client, application_id, name, max_age, created)
            .await;
    }
    let matches = client.find_by_name(application_id, name).await?;
    ctx.snapshots
        .note_seen(client.api_url(), application_id, &matches);
    Ok(matches)
}

/// The remote a reconcile knows the id of.
struct Known<'a> {
    id: &'a str,
    /// The name it should have (the per-object strategy looks it up by that name).
    name: &'a str,
    /// Nothing changed locally since the last successful sync (spec, Secrets, Ready).
    unchanged: bool,
}

/// Reads the remote with a known id: when nothing changed locally, from what this process saw
/// within the resync interval (the application's view, refreshed by the sweeper, or the
/// object's own last lookup), else by a call. `None` when Losant no longer has it (and the
/// application does exist).
async fn read_known(
    client: &losant::Client,
    application_id: &str,
    known: &Known<'_>,
    previous: &IntegrationStatus,
    ctx: &Context,
) -> Result<Option<losant::Integration>, Stop> {
    let id = known.id;
    if let Some(remote) = recently_seen(client, application_id, known, previous, ctx).await? {
        return Ok(Some(remote));
    }
    match client.get(application_id, id).await {
        Ok(remote) => {
            ctx.snapshots.note_seen(
                client.api_url(),
                application_id,
                std::slice::from_ref(&remote),
            );
            Ok(Some(remote))
        }
        Err(error) if error.is_not_found() => {
            // Only re-create once sure the application exists: a 404 for the whole application
            // means the integration cannot be re-created there.
            let probe = ListQuery {
                per_page: Some(1),
                ..ListQuery::default()
            };
            match client.list(application_id, &probe).await {
                Ok(_) => Ok(None),
                Err(error) if error.is_not_found() => Err(Failure::permanent(
                    Reason::ApplicationNotFound,
                    format!("Losant says application {application_id} does not exist"),
                )
                .into()),
                Err(error) => Err(Failure::losant(LosantCall::List, &error).into()),
            }
        }
        Err(error) => Err(Failure::losant(LosantCall::Get, &error).into()),
    }
}

/// The remote as this process saw it within the resync interval (the application's view, or the
/// object's own recent lookup), when nothing changed locally; `None` when that cannot say.
async fn recently_seen(
    client: &losant::Client,
    application_id: &str,
    known: &Known<'_>,
    previous: &IntegrationStatus,
    ctx: &Context,
) -> Result<Option<losant::Integration>, Stop> {
    if !known.unchanged {
        return Ok(None);
    }
    let id = known.id;
    // Status times have whole seconds: a view must be taken after the second that follows
    // the last write to be sure it saw that write.
    let written = previous
        .last_applied_time
        .as_ref()
        .map(|t| t.0 + jiff::SignedDuration::from_secs(1));
    let max_age = ctx.settings.resync_interval;
    let seen = match ctx.settings.sync_strategy {
        // The sweeper refreshes the view every interval (and reconciles what changed); a
        // lookup refreshes it only when the sweeper fell behind (allowing it a second interval).
        SyncStrategy::PerApplication => Some(
            ctx.snapshots
                .lookup(client, application_id, id, max_age * 2, written)
                .await
                .map_err(|e| Failure::losant(LosantCall::List, &e))?,
        ),
        SyncStrategy::PerObject => {
            // Only the follow-ups of a write or lookup (moments later) reuse what it saw;
            // the periodic check (an interval later) always lists.
            match ctx
                .snapshots
                .cached(client.api_url(), application_id, id, max_age / 2, written)
            {
                Some(seen) => Some(seen),
                None => {
                    let matches = client
                        .find_by_name(application_id, known.name)
                        .await
                        .map_err(|e| Failure::losant(LosantCall::FindByName, &e))?;
                    ctx.snapshots
                        .note_seen(client.api_url(), application_id, &matches);
                    matches
                        .into_iter()
                        .find(|m| m.id == id)
                        .map(|m| Seen::Found(Box::new(m)))
                }
            }
        }
    };
    match seen {
        Some(Seen::Found(remote)) => Ok(Some(*remote)),
        _ => Ok(None),
    }
}
