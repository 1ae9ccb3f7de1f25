//! Step 3 of a reconcile, pure: the desired integration vs. the remote one → a [`Plan`].
//!
//! What the operator owns on the remote:
//! - `name`, `enabled` and the config object of the type, always; `topics` and `credentialName`
//!   when the spec sets them. Other top-level fields are left as they are, except a
//!   `credentialName` the operator applied and the spec no longer sets: that is cleared (`null`).
//! - The config object is compared whole and sent whole. Values from Secrets are never compared
//!   (Losant may mask or omit them): a changed Secret `resourceVersion` is their drift. Fields the
//!   remote has and the spec does not are ignored — Losant fills defaults — unless the last write
//!   set them, which means the spec dropped them.
//! - `topics` compare as sets; numbers compare as numbers (the typed models normalise them).

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::desired::Desired;
use crate::crd::Word;
use crate::losant::{
    FieldPatch, Integration, IntegrationConfig, IntegrationPatch, IntegrationPost,
};

/// What the last successful write left, as recorded in status.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LastApplied<'a> {
    /// The fields the last write set (see [`applied_fields`]).
    pub fields: &'a [Word],
    /// Whether the Secret values must be sent: a referenced Secret changed since the last write,
    /// or they were never sent to this place (see [`super::decide::SecretsSince`]).
    pub secrets_changed: bool,
}

/// What to do about the remote integration.
#[derive(Clone, Debug, PartialEq)]
pub enum Plan {
    /// It does not exist: create it.
    Create(IntegrationPost),
    /// It drifted: send exactly these fields.
    Patch(IntegrationPatch),
    /// It matches.
    InSync,
    /// It cannot be made to match without a human decision.
    Conflict(Conflict),
}

/// Why the remote integration cannot be made to match.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    /// The type differs; Losant cannot change the type of an integration.
    #[error(
        "the remote integration is of type {remote}, the spec says {desired}; integrationType cannot change: delete and re-create the object"
    )]
    ImmutableType {
        /// The remote type.
        remote: String,
        /// The spec's type.
        desired: String,
    },
}

/// Plans the writes that make `remote` match `desired`.
pub fn plan(desired: &Desired, remote: Option<&Integration>, last: &LastApplied<'_>) -> Plan {
    let Some(remote) = remote else {
        return Plan::Create(create_body(desired));
    };
    if remote.integration_type != desired.integration_type {
        return Plan::Conflict(Conflict::ImmutableType {
            remote: remote.integration_type.to_string(),
            desired: desired.integration_type.to_string(),
        });
    }
    let mut patch = IntegrationPatch::default();
    if remote.name != desired.name {
        patch.name = Some(desired.name.clone());
    }
    if remote.enabled.unwrap_or(true) != desired.enabled {
        patch.enabled = Some(desired.enabled);
    }
    if let Some(topics) = &desired.topics {
        let have: BTreeSet<&String> = remote.topics.iter().flatten().collect();
        if have != topics.iter().collect() {
            patch.topics = Some(topics.clone());
        }
    }
    match (&desired.credential_name, &remote.credential_name) {
        (Some(want), have) if have.as_ref() != Some(want) => {
            patch.credential_name = Some(FieldPatch::Set(want.clone()))
        }
        (None, Some(_)) if last.fields.iter().any(|f| f == "credentialName") => {
            patch.credential_name = Some(FieldPatch::Clear);
        }
        _ => {}
    }
    if let Some(config) = &desired.config
        && (last.secrets_changed || config_drifted(config, remote, desired, last.fields))
    {
        patch.config = Some(config.clone());
    }
    if patch.is_empty() {
        Plan::InSync
    } else {
        Plan::Patch(patch)
    }
}

/// The create body for `desired`.
pub fn create_body(desired: &Desired) -> IntegrationPost {
    IntegrationPost {
        name: desired.name.clone(),
        integration_type: desired.integration_type.clone(),
        enabled: Some(desired.enabled),
        credential_name: desired.credential_name.clone(),
        topics: desired.topics.clone(),
        config: desired.config.clone(),
    }
}

/// The fields a full write of `desired` sets, for status (`name`, `enabled`, `topics`,
/// `credentialName`, and `<config>.<field>` for each config field).
pub fn applied_fields(desired: &Desired) -> Vec<Word> {
    let mut fields: Vec<Word> = vec!["name".into(), "enabled".into()];
    if desired.topics.is_some() {
        fields.push("topics".into());
    }
    if desired.credential_name.is_some() {
        fields.push("credentialName".into());
    }
    if let Some((field, object)) = desired.config.as_ref().and_then(config_object) {
        fields.extend(object.keys().map(|key| format!("{field}.{key}").into()));
    }
    fields.sort();
    fields
}

/// The config as `(field, object)`, e.g. `("mqttConfig", {...})`.
fn config_object(config: &IntegrationConfig) -> Option<(String, Map<String, Value>)> {
    match serde_json::to_value(config).ok()? {
        Value::Object(outer) => outer.into_iter().find_map(|(field, inner)| match inner {
            Value::Object(object) => Some((field, object)),
            _ => None,
        }),
        _ => None,
    }
}

fn config_drifted(
    config: &IntegrationConfig,
    remote: &Integration,
    desired: &Desired,
    last_fields: &[Word],
) -> bool {
    let Some((field, want)) = config_object(config) else {
        return true;
    };
    let remote_value = serde_json::to_value(remote).unwrap_or(Value::Null);
    let Some(have) = remote_value.get(&field).and_then(Value::as_object) else {
        return true;
    };
    let opaque = |path: &str| desired.secret_paths.iter().any(|p| p == path);
    for (key, wanted) in &want {
        let path = format!("{field}.{key}");
        if opaque(&path) {
            continue;
        }
        let matches = match (key.as_str(), wanted, have.get(key)) {
            ("headers", Value::Array(wanted), Some(Value::Array(had))) => {
                headers_match(&path, wanted, had, &opaque)
            }
            (_, wanted, had) => had == Some(wanted),
        };
        if !matches {
            return true;
        }
    }
    // A remote field the spec lacks drifted only if the operator set it before.
    have.keys()
        .filter(|key| !want.contains_key(*key))
        .any(|key| last_fields.iter().any(|f| *f == format!("{field}.{key}")))
}

/// Headers match when the keys match in order and every comparable value matches. A value that
/// comes back absent or as a mask (`****`) cannot be compared.
pub fn headers_match(
    path: &str,
    wanted: &[Value],
    had: &[Value],
    opaque: &dyn Fn(&str) -> bool,
) -> bool {
    wanted.len() == had.len()
        && wanted
            .iter()
            .zip(had)
            .enumerate()
            .all(|(index, (want, have))| {
                let value_path = format!("{path}.{index}.headerValue");
                want.get("headerKey") == have.get("headerKey")
                    && (opaque(&value_path)
                        || match have.get("headerValue").and_then(Value::as_str) {
                            None => true,
                            Some(value) if looks_masked(value) => true,
                            Some(value) => {
                                want.get("headerValue").and_then(Value::as_str) == Some(value)
                            }
                        })
            })
}

/// Whether a value is a mask rather than data: only asterisks or bullets.
fn looks_masked(value: &str) -> bool {
    !value.is_empty() && value.chars().all(|c| c == '*' || c == '•')
}

/// The fields a patch sends, for events.
pub fn patched_fields(patch: &IntegrationPatch) -> Vec<&'static str> {
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
