//! `plan`'s reading, the only I/O: the cluster (read-only, current kubeconfig) and Losant (one
//! paged list per application, with the operator's own client, rate limits and host policy).
//! Nothing is ever written to either.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{ListParams, ResourceExt};

use super::PlanError;
use super::input::Inputs;
use super::world::{Key, NEW_SECRET_VERSION, Place, SecretData, World};
use crate::controller::clients::{LosantClients, own_limits};
use crate::controller::outcome::{Failure, LosantCall};
use crate::crd::{Integration, LosantApplication, SecretKeyRef};
use crate::sync::desired;

/// Reads what `plan` needs into `world`: the cluster's Integrations (every namespace the
/// credentials may list: any of them may hold a rival claim), the `LosantApplication`s they and
/// the input refer to, and — only for the applications the input's objects (and, for
/// `--prune`, the cluster's objects in `namespaces`) use — their Secrets and one listing each.
pub async fn read(
    kube: Option<&kube::Client>,
    inputs: &Inputs,
    namespaces: &BTreeSet<String>,
    default_namespace: &str,
    clients: &LosantClients,
    world: &mut World,
) -> Result<(), PlanError> {
    if let Some(kube) = kube {
        world.cluster = cluster_integrations(kube, namespaces).await?;
    }
    let applications = applications(kube, inputs, world, default_namespace).await?;
    let planned = planned_applications(inputs, world, namespaces, default_namespace);
    let mut wanted: BTreeSet<Key> = BTreeSet::new();
    for ((namespace, name), app) in &applications {
        // Other namespaces' applications only tell whose claims they are: their tokens are
        // never read, and Losant is not asked about them.
        if !planned.contains(&(namespace.clone(), name.clone())) {
            continue;
        }
        wanted.insert((namespace.clone(), app.spec.token_secret_ref.name.clone()));
        if let Some(ca) = &app.spec.ca_bundle_secret_ref {
            wanted.insert((namespace.clone(), ca.name.clone()));
        }
    }
    for sourced in &inputs.integrations {
        let namespace = namespace_of(&sourced.object, default_namespace);
        for reference in desired::secret_refs(&sourced.object.spec) {
            wanted.insert((namespace.clone(), reference.name.clone()));
        }
    }
    world.secrets = secrets(kube, inputs, &wanted, default_namespace).await?;
    for (key, app) in &applications {
        let place = Place {
            api_url: app.spec.api_url.trim_end_matches('/').to_owned(),
            application_id: app.spec.application_id.to_ascii_lowercase(),
            refused: clients
                .policy()
                .refuse(app.spec.api_url.trim_end_matches('/')),
        };
        if planned.contains(key)
            && place.refused.is_none()
            && !world.listings.contains_key(&place.key())
        {
            let listing = list(app, &key.0, world, clients).await;
            world.listings.insert(place.key(), listing);
        }
        world.places.insert(key.clone(), place);
    }
    Ok(())
}

/// The applications a verdict depends on: those the input's Integrations use, and those of the
/// cluster's Integrations in the input's `namespaces` (what `--prune` reports on).
fn planned_applications(
    inputs: &Inputs,
    world: &World,
    namespaces: &BTreeSet<String>,
    default_namespace: &str,
) -> BTreeSet<Key> {
    let from_input = inputs.integrations.iter().map(|s| {
        let namespace = namespace_of(&s.object, default_namespace);
        (namespace, s.object.spec.application_ref.name.clone())
    });
    let from_cluster = world.cluster.iter().filter_map(|o| {
        let namespace = o.namespace().filter(|ns| namespaces.contains(ns))?;
        Some((namespace, o.spec.application_ref.name.clone()))
    });
    from_input.chain(from_cluster).collect()
}

fn namespace_of<K: ResourceExt>(obj: &K, default_namespace: &str) -> String {
    obj.namespace()
        .unwrap_or_else(|| default_namespace.to_owned())
}

/// Every Integration the current credentials may list: all namespaces, else each of
/// `namespaces`.
async fn cluster_integrations(
    kube: &kube::Client,
    namespaces: &BTreeSet<String>,
) -> Result<Vec<Integration>, PlanError> {
    let all: Api<Integration> = Api::all(kube.clone());
    if let Ok(list) = all.list(&ListParams::default()).await {
        return Ok(list.items);
    }
    let mut found = Vec::new();
    for namespace in namespaces {
        let api: Api<Integration> = Api::namespaced(kube.clone(), namespace);
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|e| PlanError::kube("list Integrations", e))?;
        found.extend(list.items);
    }
    Ok(found)
}

/// The `LosantApplication`s referred to: from the input, else from the cluster.
async fn applications(
    kube: Option<&kube::Client>,
    inputs: &Inputs,
    world: &World,
    default_namespace: &str,
) -> Result<BTreeMap<Key, LosantApplication>, PlanError> {
    let mut found: BTreeMap<Key, LosantApplication> = BTreeMap::new();
    for sourced in &inputs.applications {
        let namespace = namespace_of(&sourced.object, default_namespace);
        found.insert(
            (namespace, sourced.object.name_any()),
            sourced.object.clone(),
        );
    }
    let mut wanted: BTreeSet<Key> = inputs
        .integrations
        .iter()
        .map(|s| {
            let namespace = namespace_of(&s.object, default_namespace);
            (namespace, s.object.spec.application_ref.name.clone())
        })
        .collect();
    // The cluster's objects may claim remotes too (owner checks, --prune).
    wanted.extend(world.cluster.iter().map(|o| {
        let namespace = o.namespace().unwrap_or_default();
        (namespace, o.spec.application_ref.name.clone())
    }));
    let Some(kube) = kube else {
        return Ok(found);
    };
    for (namespace, name) in wanted {
        if found.contains_key(&(namespace.clone(), name.clone())) {
            continue;
        }
        let api: Api<LosantApplication> = Api::namespaced(kube.clone(), &namespace);
        let app = api
            .get_opt(&name)
            .await
            .map_err(|e| PlanError::kube("read a LosantApplication", e))?;
        if let Some(app) = app {
            found.insert((namespace, name), app);
        }
    }
    Ok(found)
}

/// A Secret's data, `stringData` merged over `data` as the API server does.
fn secret_data(secret: &Secret, version: String) -> SecretData {
    let mut data: BTreeMap<String, Vec<u8>> = secret
        .data
        .iter()
        .flatten()
        .map(|(key, bytes)| (key.clone(), bytes.0.clone()))
        .collect();
    for (key, text) in secret.string_data.iter().flatten() {
        data.insert(key.clone(), text.clone().into_bytes());
    }
    SecretData { data, version }
}

/// The wanted Secrets: from the input (keeping the cluster's version when applying would not
/// change the data), else from the cluster.
async fn secrets(
    kube: Option<&kube::Client>,
    inputs: &Inputs,
    wanted: &BTreeSet<Key>,
    default_namespace: &str,
) -> Result<BTreeMap<Key, SecretData>, PlanError> {
    let mut found = BTreeMap::new();
    let from_input: BTreeMap<Key, &Secret> = inputs
        .secrets
        .iter()
        .map(|s| {
            (
                (
                    namespace_of(&s.object, default_namespace),
                    s.object.name_any(),
                ),
                &s.object,
            )
        })
        .collect();
    for key in wanted.iter().chain(from_input.keys()) {
        if found.contains_key(key) {
            continue;
        }
        let live = match kube {
            Some(kube) => Api::<Secret>::namespaced(kube.clone(), &key.0)
                .get_opt(&key.1)
                .await
                .map_err(|e| PlanError::kube("read a Secret", e))?,
            None => None,
        };
        let live = live.map(|s| {
            let version = s.metadata.resource_version.clone().unwrap_or_default();
            secret_data(&s, version)
        });
        let data = match (from_input.get(key), live) {
            (Some(input), Some(live)) => {
                let input = secret_data(input, NEW_SECRET_VERSION.to_owned());
                let version = if input.data == live.data {
                    live.version
                } else {
                    input.version
                };
                SecretData {
                    data: input.data,
                    version,
                }
            }
            (Some(input), None) => secret_data(input, NEW_SECRET_VERSION.to_owned()),
            (None, Some(live)) => live,
            (None, None) => continue,
        };
        found.insert(key.clone(), data);
    }
    Ok(found)
}

/// The value of one key, as text.
fn secret_text(
    world: &World,
    namespace: &str,
    reference: &SecretKeyRef,
) -> Result<crate::losant::SecretString, String> {
    let secret = world.secret(namespace, &reference.name).ok_or_else(|| {
        format!(
            "Secret {:?} does not exist in namespace {namespace}",
            reference.name
        )
    })?;
    let bytes = secret
        .data
        .get(&reference.key)
        .ok_or_else(|| format!("Secret {:?} has no key {:?}", reference.name, reference.key))?;
    String::from_utf8(bytes.clone())
        .map(crate::losant::SecretString::new)
        .map_err(|_| {
            format!(
                "key {:?} of Secret {:?} is not UTF-8 text",
                reference.key, reference.name
            )
        })
}

/// One paged list of the application's integrations, with its token.
async fn list(
    app: &LosantApplication,
    namespace: &str,
    world: &World,
    clients: &LosantClients,
) -> Result<crate::losant::Listing, String> {
    let token = secret_text(world, namespace, &app.spec.token_secret_ref)?;
    let ca = match &app.spec.ca_bundle_secret_ref {
        Some(reference) => Some(secret_text(world, namespace, reference)?),
        None => None,
    };
    let uid = app.metadata.uid.clone().unwrap_or_default();
    let own = own_limits(app, clients.limits).map(|limits| (uid.as_str(), limits));
    let api_url = app.spec.api_url.trim_end_matches('/');
    let client = clients
        .get(
            api_url,
            &token,
            ca.as_ref().map(|pem| pem.expose().as_bytes()),
            own,
        )
        .map_err(|failure| describe(&failure))?;
    let application_id = app.spec.application_id.to_ascii_lowercase();
    client
        .list_everything(&application_id)
        .await
        .map_err(|e| describe(&Failure::losant(LosantCall::List, &e)))
}

/// `Reason: message` (never a secret value: see [`Failure`]).
fn describe(failure: &Failure) -> String {
    match failure {
        Failure::Transient {
            reason, message, ..
        }
        | Failure::Permanent { reason, message } => format!("{reason}: {message}"),
    }
}
