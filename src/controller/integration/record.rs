//! Where the operator records what it created, beyond status: annotations on the object.
//!
//! Status alone is lost by backup/restore and cluster moves, so the remote id is also kept in
//! annotations. Before every POST a create-pending marker is written: a name match found while it
//! is set is the operator's own creation (never an adoption), and while it is set and no match is
//! visible yet, the operator waits a grace period before posting again — a lost answer, a crash or
//! a list that lags behind creates never leads to a second integration.

use jiff::Timestamp;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Map, Value};

use super::super::error::Error;
use super::super::status::FIELD_MANAGER;
use crate::crd::{Integration, IntegrationStatus, Origin};
pub use crate::sync::decide::Pending;
pub use crate::sync::record::{
    APPLICATION_ID, CREATE_PENDING, INTEGRATION_ID, ORIGIN, SECRETS_MATCH_REMOTE, create_pending,
    recorded,
};

fn annotation<'a>(obj: &'a Integration, key: &str) -> Option<&'a str> {
    obj.metadata
        .annotations
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

/// Whether the annotations record a remote id that status does not (yet) show.
pub fn status_lags_annotations(obj: &Integration) -> bool {
    let status_id = obj
        .status
        .as_ref()
        .and_then(|s| s.integration_id.as_deref());
    annotation(obj, INTEGRATION_ID).is_some_and(|id| status_id != Some(id))
}

/// Whether the annotations already record exactly this remote and no pending create.
pub fn records(obj: &Integration, id: &str, application_id: &str, origin: Origin) -> bool {
    annotation(obj, INTEGRATION_ID) == Some(id)
        && annotation(obj, APPLICATION_ID) == Some(application_id)
        && annotation(obj, ORIGIN) == Some(origin_text(origin))
        && annotation(obj, CREATE_PENDING).is_none()
}

fn origin_text(origin: Origin) -> &'static str {
    match origin {
        Origin::Created => "Created",
        Origin::Adopted => "Adopted",
    }
}

/// Merge-patches annotations (`None` removes one). Only these keys are touched.
async fn annotate(
    api: &Api<Integration>,
    name: &str,
    changes: &[(&str, Option<String>)],
) -> Result<(), Error> {
    let annotations: Map<String, Value> = changes
        .iter()
        .map(|(key, value)| {
            (
                (*key).to_owned(),
                value.clone().map_or(Value::Null, Value::String),
            )
        })
        .collect();
    let patch = serde_json::json!({"metadata": {"annotations": annotations}});
    api.patch(
        name,
        &PatchParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        },
        &Patch::Merge(&patch),
    )
    .await
    .map_err(Error::kube("record the remote integration in annotations"))?;
    Ok(())
}

/// Marks a create as pending, just before the POST: when, where and under which name, and adds
/// `finalizer` if given. The patch carries the object's `resourceVersion`, so a decision taken on
/// a stale cached copy (one that may not show an earlier marker) fails with a conflict instead of
/// leading to a POST; that same precondition makes it safe to send the whole finalizer list.
pub async fn mark_create_pending(
    api: &Api<Integration>,
    obj: &Integration,
    now: Timestamp,
    application_id: &str,
    name: &str,
    finalizer: Option<&str>,
) -> Result<(), Error> {
    let marker =
        serde_json::json!({"at": now.to_string(), "applicationId": application_id, "name": name});
    let mut patch = serde_json::json!({"metadata": {
        "resourceVersion": obj.metadata.resource_version,
        "annotations": {CREATE_PENDING: marker.to_string()},
    }});
    if let Some(finalizer) = finalizer {
        let mut finalizers = obj.metadata.finalizers.clone().unwrap_or_default();
        finalizers.push(finalizer.to_owned());
        patch["metadata"]["finalizers"] = serde_json::json!(finalizers);
    }
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    };
    api.patch(
        &kube::ResourceExt::name_any(obj),
        &params,
        &Patch::Merge(&patch),
    )
    .await
    .map_err(Error::kube("mark a create as pending"))?;
    Ok(())
}

/// Clears the marker after a POST that certainly created nothing.
pub async fn clear_create_pending(api: &Api<Integration>, name: &str) -> Result<(), Error> {
    annotate(api, name, &[(CREATE_PENDING, None)]).await
}

/// Records the managed remote and clears any pending marker.
pub async fn record(
    api: &Api<Integration>,
    name: &str,
    id: &str,
    application_id: &str,
    origin: Origin,
) -> Result<(), Error> {
    annotate(
        api,
        name,
        &[
            (INTEGRATION_ID, Some(id.to_owned())),
            (APPLICATION_ID, Some(application_id.to_owned())),
            (ORIGIN, Some(origin_text(origin).to_owned())),
            (CREATE_PENDING, None),
        ],
    )
    .await
}

/// A digest of what a status says was last applied (the generation, the place, the Secrets'
/// versions): kept for the status this process last wrote, so a cached object whose status
/// differs is known to lag behind that write (see `integration::latest`).
pub fn applied_mark(status: Option<&IntegrationStatus>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    if let Some(status) = status {
        status.observed_generation.hash(&mut hasher);
        status.application_id.as_deref().hash(&mut hasher);
        status.api_url.as_deref().hash(&mut hasher);
        for (name, version) in status.applied_secret_versions.iter() {
            (name, version).hash(&mut hasher);
        }
    }
    hasher.finish()
}
