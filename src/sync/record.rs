//! What an `Integration` object records about its remote (annotations and status), read purely,
//! and the [`Facts`] built from it: shared by the controller (`controller::integration::resolve`)
//! and `losant-operator plan`, so both decide on exactly the same facts.
//!
//! Status alone is lost by backup/restore and cluster moves, so the remote id is also kept in
//! annotations; the controller writes them (`controller::integration::record`), this reads them.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde_json::Value;

use super::decide::{Facts, Found, Pending, Recorded, SecretsSince};
use super::desired::Desired;
use super::locate;
use crate::crd::{DeletionPolicy, Integration, IntegrationStatus, ManagementPolicy, Origin};

/// Set (to the time) just before a POST; removed once the id is recorded.
pub const CREATE_PENDING: &str = "losant.io/create-pending";
/// The remote integration's id.
pub const INTEGRATION_ID: &str = "losant.io/integration-id";
/// The application the remote integration lives in.
pub const APPLICATION_ID: &str = "losant.io/application-id";
/// `Created` or `Adopted`.
pub const ORIGIN: &str = "losant.io/origin";
/// `"true"`: the referenced Secrets hold the values Losant already has for the recorded remote
/// (`losant-operator export` writes it), so adopting that remote sends none of them; see
/// [`SecretsSince`].
pub const SECRETS_MATCH_REMOTE: &str = "losant.io/secrets-match-remote";

fn annotation<'a>(obj: &'a Integration, key: &str) -> Option<&'a str> {
    obj.metadata
        .annotations
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

/// The remote recorded for `application_id`: from the annotations, which are written before
/// status and so are never older than it (and survive a restore that loses status); else from
/// status, when it is about this application and API URL.
pub fn recorded(
    obj: &Integration,
    status: &IntegrationStatus,
    application_id: &str,
    api_url: &str,
) -> Option<Recorded> {
    if let Some(annotated) = annotated(obj)
        && annotated.application_id == application_id
    {
        return Some(Recorded {
            id: annotated.id,
            origin: annotated.origin,
        });
    }
    let status_here = status.application_id.as_deref() == Some(application_id)
        && status.api_url.as_deref() == Some(api_url);
    match &status.integration_id {
        Some(id) if status_here => Some(Recorded {
            id: id.clone(),
            origin: status.origin,
        }),
        _ => None,
    }
}

/// Whether the object says its Secrets hold what Losant already has ([`SECRETS_MATCH_REMOTE`]).
pub fn says_secrets_match_remote(obj: &Integration) -> bool {
    annotation(obj, SECRETS_MATCH_REMOTE) == Some("true")
}

/// What the annotations record, whatever the application.
pub struct Annotated {
    /// Remote id.
    pub id: String,
    /// Its application.
    pub application_id: String,
    /// Created or adopted, if recorded.
    pub origin: Option<Origin>,
}

/// The remote the annotations record, if they record one.
pub fn annotated(obj: &Integration) -> Option<Annotated> {
    let origin = match annotation(obj, ORIGIN) {
        Some("Created") => Some(Origin::Created),
        Some("Adopted") => Some(Origin::Adopted),
        _ => None,
    };
    Some(Annotated {
        id: annotation(obj, INTEGRATION_ID)?.to_owned(),
        application_id: annotation(obj, APPLICATION_ID)?.to_owned(),
        origin,
    })
}

/// The remote the object manages, whatever the application: from the annotations, else status.
pub fn managed(obj: &Integration, previous: &IntegrationStatus) -> Option<Annotated> {
    if let Some(annotated) = annotated(obj) {
        return Some(annotated);
    }
    let (id, application_id) = previous
        .integration_id
        .clone()
        .zip(previous.application_id.clone())?;
    Some(Annotated {
        id,
        application_id: application_id.to_string(),
        origin: previous.origin,
    })
}

/// The pending create, if one is pending. An unreadable marker counts as sent `now`: waiting is
/// the safe reading.
pub fn create_pending(obj: &Integration, now: Timestamp) -> Option<Pending> {
    let value = annotation(obj, CREATE_PENDING)?;
    let parsed: Option<Value> = serde_json::from_str(value).ok();
    let text = |key: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(key))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let at = text("at")
        .unwrap_or_else(|| value.to_owned())
        .parse()
        .unwrap_or(now);
    Some(Pending {
        at,
        application_id: text("applicationId"),
        name: text("name"),
    })
}

/// What deleting `obj` does to its remote: its `deletionPolicy`, else `Delete` for what the
/// operator created (a pending create counts) and `Orphan` for what it adopted. Under
/// `ObserveOnly` the remote is never deleted.
pub fn deletion_policy(
    obj: &Integration,
    previous: &IntegrationStatus,
    now: Timestamp,
) -> DeletionPolicy {
    if obj.spec.management_policy == ManagementPolicy::ObserveOnly {
        return DeletionPolicy::Orphan;
    }
    let pending = create_pending(obj, now);
    let origin = managed(obj, previous)
        .and_then(|r| r.origin)
        .or(pending.map(|_| Origin::Created));
    locate::effective_deletion_policy(obj.spec.deletion_policy, origin)
}

/// The referenced Secrets' versions against those of the last write to this application and
/// API URL (status about another place, or no write, counts as never applied).
pub fn secrets_since(
    previous: &IntegrationStatus,
    application_id: &str,
    api_url: &str,
    secret_versions: &BTreeMap<String, String>,
) -> SecretsSince {
    let is_where = previous.application_id.as_deref() == Some(application_id)
        && previous.api_url.as_deref() == Some(api_url);
    let applied_here = is_where.then_some(&previous.applied_secret_versions);
    SecretsSince::compare(applied_here, secret_versions)
}

/// Where the object's spec points and what it asks for, as resolved.
pub struct Place<'a> {
    /// The integration the spec asks for.
    pub desired: Desired,
    /// The application (lowercase id).
    pub application_id: String,
    /// The Secrets' versions since the last write here ([`secrets_since`]).
    pub secrets: SecretsSince,
    /// The object's previous status.
    pub previous: &'a IntegrationStatus,
}

/// The facts [`super::decide::decide`] decides on, from the object, its status, where it points,
/// what was recorded and pending, and what reading found.
pub fn facts(
    obj: &Integration,
    place: Place<'_>,
    (recorded, pending): (Option<Recorded>, Option<Pending>),
    found: Found,
) -> Facts {
    Facts {
        desired: place.desired,
        adoption_policy: obj.spec.adoption_policy,
        management: obj.spec.management_policy,
        application_id: place.application_id,
        recorded,
        pending,
        found,
        applied_fields: place.previous.applied_fields.clone(),
        secrets: place.secrets,
        secrets_match_remote: says_secrets_match_remote(obj),
        spec_changed: obj.metadata.generation != place.previous.observed_generation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(app: &str, url: &str, versions: &[(&str, &str)]) -> IntegrationStatus {
        IntegrationStatus {
            application_id: Some(app.into()),
            api_url: Some(url.into()),
            applied_secret_versions: versions
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            ..IntegrationStatus::default()
        }
    }

    fn versions(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn secrets_count_as_applied_only_for_a_write_to_the_same_place() {
        let here = status("app", "https://api", &[("creds", "7")]);
        let same = versions(&[("creds", "7")]);
        let since = |status: &IntegrationStatus, app: &str, current: &BTreeMap<String, String>| {
            secrets_since(status, app, "https://api", current)
        };
        assert_eq!(since(&here, "app", &same), SecretsSince::Unchanged);
        assert_eq!(
            since(&here, "app", &versions(&[("creds", "8")])),
            SecretsSince::Changed
        );
        assert_eq!(
            since(&here, "app", &versions(&[])),
            SecretsSince::Changed,
            "one dropped"
        );
        assert_eq!(
            since(&here, "other", &same),
            SecretsSince::NeverApplied,
            "moved"
        );
        let never = IntegrationStatus::default();
        assert_eq!(since(&never, "app", &same), SecretsSince::NeverApplied);
    }
}
