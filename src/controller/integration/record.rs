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

/// Set (to the time) just before a POST; removed once the id is recorded.
pub const CREATE_PENDING: &str = "losant.io/create-pending";
/// The remote integration's id.
pub const INTEGRATION_ID: &str = "losant.io/integration-id";
/// The application the remote integration lives in.
pub const APPLICATION_ID: &str = "losant.io/application-id";
/// `Created` or `Adopted`.
pub const ORIGIN: &str = "losant.io/origin";

/// The remote the object is known to manage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    /// Remote id.
    pub id: String,
    /// How the operator came to manage it, if known.
    pub origin: Option<Origin>,
}

fn annotation<'a>(obj: &'a Integration, key: &str) -> Option<&'a str> {
    obj.metadata
        .annotations
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

/// The remote recorded for `application_id` at `api_url`: from status, else from the annotations
/// (which survive a restore that loses status).
pub fn recorded(
    obj: &Integration,
    status: &IntegrationStatus,
    application_id: &str,
    api_url: &str,
) -> Option<Recorded> {
    let status_here = status.application_id.as_deref() == Some(application_id)
        && status.api_url.as_deref() == Some(api_url);
    if status_here && let Some(id) = &status.integration_id {
        return Some(Recorded {
            id: id.clone(),
            origin: status.origin,
        });
    }
    let id = annotation(obj, INTEGRATION_ID)?;
    if annotation(obj, APPLICATION_ID) != Some(application_id) {
        return None;
    }
    let origin = match annotation(obj, ORIGIN) {
        Some("Created") => Some(Origin::Created),
        Some("Adopted") => Some(Origin::Adopted),
        _ => None,
    };
    Some(Recorded {
        id: id.to_owned(),
        origin,
    })
}

/// Whether the annotations record a remote id that status does not (yet) show.
pub fn status_lags_annotations(obj: &Integration) -> bool {
    let status_id = obj
        .status
        .as_ref()
        .and_then(|s| s.integration_id.as_deref());
    annotation(obj, INTEGRATION_ID).is_some_and(|id| status_id != Some(id))
}

/// When the pending create started, if one is pending.
pub fn create_pending(obj: &Integration) -> Option<Timestamp> {
    annotation(obj, CREATE_PENDING).map(|value| value.parse().unwrap_or(Timestamp::UNIX_EPOCH))
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

/// Marks a create as pending, just before the POST.
pub async fn mark_create_pending(
    api: &Api<Integration>,
    name: &str,
    now: Timestamp,
) -> Result<(), Error> {
    annotate(api, name, &[(CREATE_PENDING, Some(now.to_string()))]).await
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
