//! The `Integration` reconciler: resolve → desired → locate → plan → execute → status.
//!
//! # Guarantees
//! - The finalizer is in place before anything is created in Losant.
//! - Status is written only when it changes, by server-side apply; spec is never written.
//! - Absence from a list snapshot never leads to a POST; a recorded id that Losant no longer has
//!   is re-created only after the application itself is confirmed to exist.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::ResourceExt;

use crate::crd::Word;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::{Api, Resource};

mod cleanup;
mod record;

use super::context::Context;
use super::error::Error;
use super::outcome::{self, Failure, LosantCall, RequeueChoice};
use super::snapshot::Seen;
use super::{SyncStrategy, clients, owners, secrets, status};
use crate::crd::{DeletionPolicy, Integration, IntegrationStatus, LosantApplication, Origin};
use crate::losant::{self, ListQuery};
use crate::sync::conditions::{self, Health};
use crate::sync::desired::{self, Desired};
use crate::sync::locate::{self, Lookup};
use crate::sync::plan::{self, LastApplied, Plan};
use crate::sync::reason::{ConditionStatus, ConditionType, Reason};

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

/// What a write to Losant did.
#[derive(Clone, Debug, PartialEq)]
enum Wrote {
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

/// A successful sync.
struct Synced {
    remote: losant::Integration,
    origin: Origin,
    application_id: String,
    api_url: String,
    wrote: Option<Wrote>,
    applied_fields: Vec<Word>,
    secret_versions: BTreeMap<String, String>,
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
            let (id, app) = (&synced.remote.id, &synced.application_id);
            if !record::records(obj, id, app, synced.origin) {
                record::record(api, &obj.name_any(), id, app, synced.origin).await?;
            }
            let claims = owners::claims(&synced.api_url, app, &synced.remote.name, Some(id));
            ctx.owners.claim(&ctx.kube, obj, claims).await?;
            if synced.wrote.is_some() {
                crate::failpoint::hit("before-status");
            }
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

/// Resolves everything, finds the remote, and makes it match.
async fn sync(
    obj: &Integration,
    api: &Api<Integration>,
    previous: &IntegrationStatus,
    namespace: &str,
    ctx: &Context,
) -> Result<Synced, Stop> {
    let app = ready_application(obj, namespace, ctx).await?;
    let secret_api: Api<Secret> = Api::namespaced(ctx.kube.clone(), namespace);
    let refs = desired::secret_refs(&obj.spec);
    let resolved = secrets::resolve(&secret_api, &refs).await??;
    let desired = desired::desired(&obj.spec, obj.remote_name(), &resolved.values)
        .map_err(|error| Failure::permanent(Reason::InvalidSpec, error.to_string()))?;
    let api_url = app.spec.api_url.trim_end_matches('/').to_owned();
    let application_id = app.spec.application_id.to_ascii_lowercase();
    let client = clients::for_application(&app, namespace, ctx).await??;

    let same_place = previous.application_id.as_deref() == Some(application_id.as_str())
        && previous.api_url.as_deref() == Some(api_url.as_str());
    if !same_place && let Some(old_id) = &previous.integration_id {
        leave_old_application(obj, previous, old_id, namespace, ctx).await?;
    }
    let recorded = record::recorded(obj, previous, &application_id, &api_url);
    let known_id = recorded.as_ref().map(|r| r.id.clone());
    let claims = owners::claims(
        &api_url,
        &application_id,
        &desired.name,
        known_id.as_deref(),
    );
    if let Some(rival) = ctx.owners.claim(&ctx.kube, obj, claims).await? {
        return Err(Failure::permanent(
            Reason::ConflictingOwner,
            format!(
                "Integration {} already manages {}; this object writes nothing while it does",
                rival.object, rival.claim
            ),
        )
        .into());
    }
    let secrets_changed = !same_place || previous.applied_secret_versions != resolved.versions;
    let pending = record::create_pending(obj, Timestamp::now());

    // The recorded remote, if Losant still has it.
    let mut found = None;
    if let Some(id) = &known_id {
        let unchanged = !secrets_changed
            && obj.metadata.generation == previous.observed_generation
            && conditions::is_ready(&previous.conditions);
        let known = Known {
            id,
            name: &desired.name,
            unchanged,
        };
        found = read_known(&client, &application_id, &known, previous, ctx).await?;
    }
    let (remote, origin, recreate_of) = match found {
        // Without a recorded origin, Adopted is the safe guess: it orphans on delete.
        Some(remote) => (
            Some(remote),
            recorded.and_then(|r| r.origin).unwrap_or(Origin::Adopted),
            None,
        ),
        // Nothing recorded, or it is gone: look the name up. While a create is pending that
        // lookup uses the name (and application) the create was sent with, and a match is the
        // operator's own creation; nothing matching yet means waiting out the grace period.
        None => {
            let pending_here = pending.as_ref().filter(|p| {
                p.application_id
                    .as_deref()
                    .is_none_or(|a| a == application_id)
            });
            let lookup_name = pending_here
                .and_then(|p| p.name.clone())
                .unwrap_or_else(|| desired.name.clone());
            let matches = find_by_name(
                &client,
                &application_id,
                &lookup_name,
                obj,
                pending_here.is_some(),
                ctx,
            )
            .await
            .map_err(|e| Failure::losant(LosantCall::FindByName, &e))?;
            match locate::choose(matches, obj.spec.adoption_policy, pending_here.is_some()) {
                Lookup::Create => {
                    wait_for_pending_create(pending_here, ctx)?;
                    (None, Origin::Created, known_id.clone())
                }
                Lookup::Take(remote, origin) => (Some(*remote), origin, None),
                Lookup::Ambiguous { count } => {
                    return Err(Failure::permanent(
                        Reason::AmbiguousName,
                        format!("{count} integrations in application {application_id} are named {lookup_name:?}; rename or delete all but one"),
                    )
                    .into());
                }
                Lookup::AlreadyExists { id } => {
                    return Err(Failure::permanent(
                        Reason::AlreadyExists,
                        format!("integration {id} is already named {lookup_name:?} and adoptionPolicy is Never"),
                    )
                    .into());
                }
            }
        }
    };
    let adopted_now = known_id.is_none() && origin == Origin::Adopted && remote.is_some();
    let fields: &[Word] = if known_id.is_some() {
        &previous.applied_fields
    } else {
        &[]
    };
    let last = LastApplied {
        fields,
        secrets_changed,
    };
    let target = Target {
        ctx,
        client: &client,
        application_id: &application_id,
        api,
        obj,
    };
    let (remote, wrote) = execute(&target, &desired, remote, &last, previous, recreate_of).await?;
    let wrote = match (wrote, adopted_now) {
        (None, true) => Some(Wrote::Adopted { patched: vec![] }),
        (Some(Wrote::Patched { fields, .. }), true) => Some(Wrote::Adopted { patched: fields }),
        (wrote, _) => wrote,
    };
    Ok(Synced {
        remote,
        origin,
        application_id,
        api_url,
        wrote,
        applied_fields: plan::applied_fields(&desired),
        secret_versions: resolved.versions,
    })
}

/// The `LosantApplication`, if it is Ready for the current spec; otherwise why not.
async fn ready_application(
    obj: &Integration,
    namespace: &str,
    ctx: &Context,
) -> Result<LosantApplication, Stop> {
    let name = &obj.spec.application_ref.name;
    let app = match ctx.cached_application(namespace, name) {
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
    pending: bool,
    ctx: &Context,
) -> Result<Vec<losant::Integration>, losant::Error> {
    if ctx.settings.sync_strategy == SyncStrategy::PerApplication && !pending {
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

/// Where writes go.
struct Target<'a> {
    ctx: &'a Context,
    client: &'a losant::Client,
    application_id: &'a str,
    api: &'a Api<Integration>,
    obj: &'a Integration,
}

/// Refuses to create again while an earlier create may still be in flight (its answer lost, or
/// lists lagging behind it), until the grace period has passed.
fn wait_for_pending_create(pending: Option<&record::Pending>, ctx: &Context) -> Result<(), Stop> {
    let Some(pending) = pending else {
        return Ok(());
    };
    let grace = ctx.settings.create_grace_period;
    let waited = pending.age(Timestamp::now());
    if waited >= grace {
        return Ok(());
    }
    let remaining = grace - waited;
    Err(Failure::Transient {
        reason: Reason::CreatePending,
        message: format!(
            "a create sent at {} is not visible in Losant's lists yet; waiting for it before creating again",
            pending.at
        ),
        retry_after: Some(remaining.min(std::time::Duration::from_secs(5))),
    }
    .into())
}

async fn execute(
    target: &Target<'_>,
    desired: &Desired,
    remote: Option<losant::Integration>,
    last: &LastApplied<'_>,
    previous: &IntegrationStatus,
    recreate_of: Option<String>,
) -> Result<(losant::Integration, Option<Wrote>), Stop> {
    let Target {
        ctx,
        client,
        application_id,
        api,
        obj,
    } = *target;
    let plan = plan::plan(desired, remote.as_ref(), last);
    // The finalizer goes on before anything remote is written or taken over; a create carries
    // it in the marker's patch.
    if !has_finalizer(obj) && matches!(plan, Plan::Patch(_) | Plan::InSync) {
        add_finalizer(api, obj).await?;
    }
    match plan {
        Plan::Create(post) => {
            let finalizer = (!has_finalizer(obj)).then_some(FINALIZER);
            record::mark_create_pending(
                api,
                obj,
                Timestamp::now(),
                application_id,
                &post.name,
                finalizer,
            )
            .await?;
            let created = match client.create(application_id, &post).await {
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
            let wrote = match recreate_of {
                Some(old_id) => Wrote::Recreated { old_id },
                None => Wrote::Created,
            };
            Ok((created, Some(wrote)))
        }
        Plan::Patch(patch) => {
            let Some(remote) = remote else {
                return Err(Failure::transient(Reason::Retrying, "nothing to patch").into());
            };
            let fields = patched_fields(&patch);
            let patched = client
                .patch(application_id, &remote.id, &patch)
                .await
                .map_err(|e| Failure::losant(LosantCall::Patch, &e))?;
            ctx.snapshots
                .note_write(client.api_url(), application_id, &remote.id, Some(&patched));
            let spec_changed = obj.metadata.generation != previous.observed_generation;
            Ok((
                patched,
                Some(Wrote::Patched {
                    spec_changed,
                    fields,
                }),
            ))
        }
        Plan::InSync => match remote {
            Some(remote) => Ok((remote, None)),
            None => Err(Failure::transient(Reason::Retrying, "nothing remote to compare").into()),
        },
        Plan::Conflict(conflict) => {
            Err(Failure::permanent(Reason::ImmutableField, conflict.to_string()).into())
        }
    }
}

fn patched_fields(patch: &losant::IntegrationPatch) -> Vec<&'static str> {
    let mut fields = Vec::new();
    if patch.name.is_some() {
        fields.push("name");
    }
    if patch.enabled.is_some() {
        fields.push("enabled");
    }
    if patch.topics.is_some() {
        fields.push("topics");
    }
    if patch.credential_name.is_some() {
        fields.push("credentialName");
    }
    if let Some(config) = &patch.config {
        fields.push(config.integration_type().config_field().unwrap_or("config"));
    }
    fields
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
