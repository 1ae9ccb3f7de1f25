//! The verdict for each input `Integration`, pure: given everything read ([`World`]), each
//! object is merged with its copy in the cluster (as `kubectl apply` would leave it), its
//! [`Facts`] are built exactly as the controller builds them (`sync::record`), and
//! [`decide`](crate::sync::decide::decide) decides.
//!
//! Read before deciding, in the controller's order: the `LosantApplication` (missing →
//! `ApplicationNotFound`), the referenced Secrets (`SecretNotFound`, `SecretKeyNotFound`,
//! `SecretKeyInvalid`), the desired integration (`InvalidSpec`), the owner claims
//! (`ConflictingOwner`), then Losant (one list per application, read before).

use jiff::Timestamp;
use kube::api::ResourceExt;
use std::collections::{BTreeMap, BTreeSet};

use super::fields::SecretLabels;
use super::input::Sourced;
use super::verdict::{self, Action, Subject, Verdict};
use super::world::{Place, World};
use crate::controller::owners::{claims, object_key};
use crate::crd::{Integration, ManagementPolicy, SecretKeyRef};
use crate::losant::{self, SecretString};
use crate::sync::decide::{self, Found};
use crate::sync::desired::{self, SecretValues};
use crate::sync::owners::{OwnerIndex, Seniority};
use crate::sync::reason::Reason;
use crate::sync::record::{self, Place as FactsPlace};

/// The object as it would be once applied: the input's spec and annotations over the cluster
/// copy's annotations (the operator's records), status, generation and creation time.
pub fn effective(
    input: &Integration,
    namespace: &str,
    cluster: Option<&Integration>,
) -> Integration {
    let mut obj = input.clone();
    obj.metadata.namespace = Some(namespace.to_owned());
    obj.status = None;
    obj.metadata.generation = Some(1);
    obj.metadata.creation_timestamp = None;
    if let Some(live) = cluster {
        let mut annotations = live.metadata.annotations.clone().unwrap_or_default();
        annotations.extend(input.metadata.annotations.clone().unwrap_or_default());
        obj.metadata.annotations = Some(annotations);
        obj.status = live.status.clone();
        let generation = live.metadata.generation.unwrap_or(1);
        let bump = i64::from(live.spec != input.spec);
        obj.metadata.generation = Some(generation + bump);
        obj.metadata.creation_timestamp = live.metadata.creation_timestamp.clone();
        obj.metadata.uid = live.metadata.uid.clone();
    }
    obj
}

/// Who is older: the creation time, or `now` for an object the input would create (younger
/// than every object that exists).
pub fn seniority(obj: &Integration, now: Timestamp) -> Seniority {
    let created = obj
        .metadata
        .creation_timestamp
        .as_ref()
        .map_or_else(|| now.to_string(), |t| t.0.to_string());
    (created, object_key(obj))
}

/// The owner index after applying: every cluster object the input does not replace, and every
/// input object, with what it claims (as the controller's `Owners::load`).
pub fn owner_index(world: &World, objects: &[Integration]) -> OwnerIndex {
    let mut index = OwnerIndex::default();
    let replaced: BTreeSet<String> = objects.iter().map(object_key).collect();
    let kept = world
        .cluster
        .iter()
        .filter(|obj| !replaced.contains(&object_key(obj)));
    // Observers claim nothing (as the controller's `Owners::load`).
    let managing = kept
        .chain(objects)
        .filter(|obj| obj.spec.management_policy != ManagementPolicy::ObserveOnly);
    for obj in managing {
        let Some(place) = world.place_of(obj) else {
            continue;
        };
        let status = obj.status.clone().unwrap_or_default();
        let id = status
            .integration_id
            .clone()
            .or_else(|| obj.annotations().get(record::INTEGRATION_ID).cloned());
        let claims = claims(
            &place.api_url,
            &place.application_id,
            obj.remote_name(),
            id.as_deref(),
        );
        index.set(seniority(obj, world.now), claims);
    }
    index
}

/// The verdicts for the input objects, in input order.
pub fn evaluate(world: &World, inputs: &[Sourced<Integration>], namespace: &str) -> Vec<Verdict> {
    let objects: Vec<Integration> = inputs
        .iter()
        .map(|input| {
            let ns = input
                .object
                .namespace()
                .unwrap_or_else(|| namespace.to_owned());
            let live = world.cluster_object(&ns, &input.object.name_any());
            effective(&input.object, &ns, live)
        })
        .collect();
    let mut index = owner_index(world, &objects);
    objects
        .iter()
        .zip(inputs)
        .map(|(obj, input)| one(world, &mut index, obj, &input.source))
        .collect()
}

/// What an object needs before Losant is looked at: its application, listing, Secrets and
/// desired integration.
struct Prepared<'w> {
    place: &'w Place,
    listing: &'w losant::Listing,
    desired: desired::Desired,
    versions: BTreeMap<String, String>,
}

/// The checks before Losant, in the controller's order; a verdict when one stops the object.
fn prepare<'w>(
    world: &'w World,
    obj: &Integration,
    source: &str,
) -> Result<Prepared<'w>, Box<Verdict>> {
    let namespace = obj.namespace().unwrap_or_default();
    let stop = |action, reason: Reason, message: String| {
        Box::new(
            Verdict::new(&namespace, &obj.name_any(), Some(source), action)
                .because(reason.as_str(), message),
        )
    };
    if crate::controller::integration::is_paused(obj) {
        let message = "losant.io/paused is set: the operator makes no Losant call".to_owned();
        return Err(stop(Action::Paused, Reason::Paused, message));
    }
    let app_name = &obj.spec.application_ref.name;
    let Some(place) = world.place_of(obj) else {
        let message = format!("LosantApplication {app_name:?} does not exist in this namespace");
        return Err(stop(Action::Refuse, Reason::ApplicationNotFound, message));
    };
    if let Some(refused) = &place.refused {
        return Err(stop(
            Action::Refuse,
            Reason::ApiHostNotAllowed,
            refused.clone(),
        ));
    }
    let refs = desired::secret_refs(&obj.spec);
    let (values, versions) = resolve_secrets(world, &namespace, &refs)
        .map_err(|(reason, message)| stop(Action::Refuse, reason, message))?;
    let desired = desired::desired(&obj.spec, obj.remote_name(), &values)
        .map_err(|error| stop(Action::Refuse, Reason::InvalidSpec, error.to_string()))?;
    let listing = world
        .listing(place)
        .map_err(|message| stop(Action::Error, Reason::ApplicationNotReady, message))?;
    Ok(Prepared {
        place,
        listing,
        desired,
        versions,
    })
}

/// The verdict for one object: the facts as the controller builds them, then its decision.
fn one(world: &World, index: &mut OwnerIndex, obj: &Integration, source: &str) -> Verdict {
    let Prepared {
        place,
        listing,
        desired,
        versions,
    } = match prepare(world, obj, source) {
        Ok(prepared) => prepared,
        Err(verdict) => return *verdict,
    };
    let (namespace, name) = (obj.namespace().unwrap_or_default(), obj.name_any());
    let previous = obj.status.clone().unwrap_or_default();
    let (app_id, api_url) = (place.application_id.as_str(), place.api_url.as_str());
    let secrets = record::secrets_since(&previous, app_id, api_url, &versions);
    let recorded = record::recorded(obj, &previous, app_id, api_url);
    let pending = record::create_pending(obj, world.now);
    let known_id = recorded.as_ref().map(|r| r.id.clone());
    // An observer writes nothing, so it neither claims a remote nor yields one (as `resolve`).
    let rival = if obj.spec.management_policy == ManagementPolicy::ObserveOnly {
        index.remove(&object_key(obj));
        None
    } else {
        let claims = claims(api_url, app_id, &desired.name, known_id.as_deref());
        let own = seniority(obj, world.now);
        index.set(own.clone(), claims.clone());
        index.senior_rival(&own, &claims)
    };
    let found = match rival {
        Some(rival) => Found::Claimed(rival),
        None => match find(
            listing,
            known_id.as_deref(),
            pending.as_ref(),
            app_id,
            &desired,
        ) {
            Ok(found) => found,
            Err(message) => {
                return Verdict::new(&namespace, &name, Some(source), Action::Error)
                    .because(Reason::ApplicationNotReady.as_str(), message);
            }
        },
    };
    // A Secret is sent as changed when its version differs from the one last applied here.
    let moved = previous.application_id.as_deref() != Some(app_id)
        || previous.api_url.as_deref() != Some(api_url);
    let changed = |secret: &str| {
        moved
            || previous.applied_secret_versions.get(secret)
                != versions.get(secret).map(String::as_str)
    };
    let labels = SecretLabels::new(&obj.spec, &changed);
    let place = FactsPlace {
        desired,
        application_id: app_id.to_owned(),
        secrets,
        previous: &previous,
    };
    let facts = record::facts(obj, place, (recorded, pending), found);
    let decision = decide::decide(&facts, world.now, world.grace);
    let subject = Subject {
        namespace: &namespace,
        name: &name,
        source,
        labels: &labels,
    };
    verdict::from_decision(&subject, &facts, &decision)
}

/// The recorded remote from the listing, or a lookup by name (as `resolve::remote`): a recorded
/// id the listing lacks is taken as gone (the list was read after the application was
/// confirmed to exist, by reading it).
fn find(
    listing: &losant::Listing,
    known_id: Option<&str>,
    pending: Option<&decide::Pending>,
    application_id: &str,
    desired: &desired::Desired,
) -> Result<Found, String> {
    if let Some(id) = known_id
        && let Some(remote) = listing.items.iter().find(|i| i.id == id)
    {
        return Ok(Found::Known(Box::new(remote.clone())));
    }
    let pending = decide::pending_here(pending, application_id);
    let name = decide::lookup_name(pending, desired);
    let unreadable = listing
        .unreadable_names
        .iter()
        .filter(|n| n.as_deref().is_none_or(|n| n == name))
        .count();
    if unreadable > 0 {
        return Err(format!(
            "{unreadable} listed item(s) that may be named {name:?} could not be read"
        ));
    }
    let mut matches: Vec<losant::Integration> = listing
        .items
        .iter()
        .filter(|i| i.name == name)
        .cloned()
        .collect();
    matches.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Found::Named { name, matches })
}

type Resolved = (SecretValues, BTreeMap<String, String>);

/// The referenced keys' values and their Secrets' versions, or the reason the operator would
/// report (the controller's `secrets::resolve`).
pub fn resolve_secrets(
    world: &World,
    namespace: &str,
    refs: &[&SecretKeyRef],
) -> Result<Resolved, (Reason, String)> {
    let mut values = SecretValues::new();
    let mut versions = BTreeMap::new();
    let names: BTreeSet<&str> = refs.iter().map(|r| r.name.as_str()).collect();
    for name in names {
        let Some(secret) = world.secret(namespace, name) else {
            let message = format!("Secret {name:?} does not exist in this namespace");
            return Err((Reason::SecretNotFound, message));
        };
        for reference in refs.iter().filter(|r| r.name == name) {
            let Some(bytes) = secret.data.get(&reference.key) else {
                let message = format!("Secret {name:?} has no key {:?}", reference.key);
                return Err((Reason::SecretKeyNotFound, message));
            };
            let Ok(text) = String::from_utf8(bytes.clone()) else {
                let message = format!(
                    "key {:?} of Secret {name:?} is not UTF-8 text",
                    reference.key
                );
                return Err((Reason::SecretKeyInvalid, message));
            };
            values.insert((*reference).clone(), SecretString::new(text));
        }
        versions.insert(name.to_owned(), secret.version.clone());
    }
    Ok((values, versions))
}

#[cfg(test)]
mod tests;
