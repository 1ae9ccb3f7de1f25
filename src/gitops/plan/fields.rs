//! Field by field, pure: what a create, a patch or a drift changes, old → new, with every
//! secret value replaced by where it comes from. A value from a Secret is never put in a
//! [`FieldChange`]; neither is any value Losant holds in a secret field (it may echo them).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::crd::{IntegrationSpec, SecretKeyRef, Word};
use crate::losant::{
    FieldPatch, Integration, IntegrationConfig, IntegrationPatch, IntegrationPost,
};
use crate::sync::desired::Desired;

/// Shown instead of any value Losant holds in a secret field.
pub const HIDDEN: &str = "(hidden)";

/// One field a write would change.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldChange {
    /// `name`, `enabled`, `topics`, `credentialName`, or `<config>.<key>`.
    pub field: String,
    /// The value Losant holds now (absent for a create; `null` when Losant has none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<Value>,
    /// The value it would hold (`null`: cleared). Absent for a secret field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<Value>,
    /// For a value from a Secret: which, and whether it changed since the last write.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretSource>,
}

/// Where a secret value comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SecretSource {
    /// The Secret.
    pub name: String,
    /// Its key.
    pub key: String,
    /// Whether the value is sent because it changed (or was never sent to this remote).
    pub changed: bool,
}

impl std::fmt::Display for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = if self.changed { "changed" } else { "unchanged" };
        write!(f, "(secret from {}/{}: {state})", self.name, self.key)
    }
}

/// The Secret behind each secret path of the config (`mqttConfig.password`,
/// `websocketConfig.headers.0.headerValue`).
#[derive(Clone, Debug, Default)]
pub struct SecretLabels {
    by_path: BTreeMap<String, SecretSource>,
}

impl SecretLabels {
    /// From the spec's `…SecretRef` fields; `changed(name)` says whether Secret `name` changed
    /// since the last write.
    pub fn new(spec: &IntegrationSpec, changed: &dyn Fn(&str) -> bool) -> Self {
        let field = spec.integration_type.config_field();
        let block = serde_json::to_value(spec)
            .ok()
            .and_then(|v| v.get(field).cloned())
            .unwrap_or(Value::Null);
        let mut by_path = BTreeMap::new();
        let mut label = |path: String, reference: &Value| {
            if let Ok(reference) = serde_json::from_value::<SecretKeyRef>(reference.clone()) {
                let changed = changed(&reference.name);
                let source = SecretSource {
                    name: reference.name,
                    key: reference.key,
                    changed,
                };
                by_path.insert(path, source);
            }
        };
        for (key, value) in block.as_object().into_iter().flatten() {
            if let Some(plain) = key.strip_suffix("SecretRef") {
                label(format!("{field}.{plain}"), value);
            }
        }
        let headers = block.get("headers").and_then(Value::as_array);
        for (index, header) in headers.into_iter().flatten().enumerate() {
            if let Some(reference) = header.get("headerValueSecretRef") {
                label(format!("{field}.headers.{index}.headerValue"), reference);
            }
        }
        Self { by_path }
    }

    fn get(&self, path: &str) -> Option<&SecretSource> {
        self.by_path.get(path)
    }

    /// Every secret field, as rows.
    fn rows(&self) -> impl Iterator<Item = FieldChange> + '_ {
        self.by_path.iter().map(|(path, source)| FieldChange {
            field: path.clone(),
            old: None,
            new: None,
            secret: Some(source.clone()),
        })
    }
}

fn change(field: &str, old: Option<Value>, new: Value) -> FieldChange {
    FieldChange {
        field: field.to_owned(),
        old,
        new: Some(new),
        secret: None,
    }
}

fn json<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// The config as `(field, object)`, e.g. `("mqttConfig", {...})`.
fn config_object(value: Value) -> Option<(String, Map<String, Value>)> {
    match value {
        Value::Object(outer) => outer.into_iter().find_map(|(field, inner)| match inner {
            Value::Object(object) => Some((field, object)),
            _ => None,
        }),
        _ => None,
    }
}

/// What a create sends.
pub fn create(post: &IntegrationPost, labels: &SecretLabels) -> Vec<FieldChange> {
    let mut rows = vec![
        change("name", None, json(&post.name)),
        change("integrationType", None, json(&post.integration_type)),
    ];
    if let Some(enabled) = post.enabled {
        rows.push(change("enabled", None, json(&enabled)));
    }
    if let Some(topics) = &post.topics {
        rows.push(change("topics", None, json(topics)));
    }
    if let Some(credential) = &post.credential_name {
        rows.push(change("credentialName", None, json(credential)));
    }
    if let Some(config) = &post.config {
        rows.extend(config_rows(config, None, labels, &[]));
    }
    rows
}

/// What a patch sends, against what `remote` holds.
pub fn patch(
    patch: &IntegrationPatch,
    remote: &Integration,
    labels: &SecretLabels,
    applied: &[Word],
) -> Vec<FieldChange> {
    let mut rows = Vec::new();
    if let Some(name) = &patch.name {
        rows.push(change("name", Some(json(&remote.name)), json(name)));
    }
    if let Some(enabled) = patch.enabled {
        let old = Some(json(&remote.enabled.unwrap_or(true)));
        rows.push(change("enabled", old, json(&enabled)));
    }
    if let Some(topics) = &patch.topics {
        rows.push(change("topics", Some(json(&remote.topics)), json(topics)));
    }
    if let Some(credential) = &patch.credential_name {
        let new = match credential {
            FieldPatch::Set(name) => json(name),
            FieldPatch::Clear => Value::Null,
        };
        rows.push(change(
            "credentialName",
            Some(json(&remote.credential_name)),
            new,
        ));
    }
    if let Some(config) = &patch.config {
        rows.extend(config_rows(config, Some(remote), labels, applied));
    }
    rows
}

/// The fields `ObserveOnly` found drifted (`drift` from the decision), old → as the spec says.
pub fn drift(drift: &[&str], desired: &Desired, remote: &Integration) -> Vec<FieldChange> {
    let whole = IntegrationPatch {
        name: Some(desired.name.clone()),
        enabled: Some(desired.enabled),
        credential_name: desired.credential_name.clone().map(FieldPatch::Set),
        topics: desired.topics.clone(),
        config: desired.config.clone(),
    };
    let config_field = desired.integration_type.config_field().unwrap_or("config");
    // Secret values are never compared under ObserveOnly: no secret rows.
    patch(&whole, remote, &SecretLabels::default(), &[])
        .into_iter()
        .filter(|row| {
            let top = row.field.split('.').next().unwrap_or_default();
            drift.contains(&top) || (top == config_field && drift.contains(&config_field))
        })
        .map(|mut row| {
            // Without labels, a header value from a Secret would show: hide them all.
            if row.field.ends_with(".headers") {
                row.new = row.new.as_ref().map(hide_header_values);
            }
            row
        })
        .collect()
}

/// The config keys a write sends that differ from `remote` (all of them for a create), keys
/// the last write set that the spec dropped, and one row per secret field.
fn config_rows(
    config: &IntegrationConfig,
    remote: Option<&Integration>,
    labels: &SecretLabels,
    applied: &[Word],
) -> Vec<FieldChange> {
    let Some((field, want)) = config_object(json(config)) else {
        return Vec::new();
    };
    let have: Map<String, Value> = remote
        .and_then(|r| json(r).get(&field).and_then(Value::as_object).cloned())
        .unwrap_or_default();
    let secret_names = secret_field_names(config);
    let shown = |key: &str, value: &Value| match secret_names.contains(&key) {
        true => Value::String(HIDDEN.into()),
        false if key == "headers" => hide_header_values(value),
        false => value.clone(),
    };
    let mut rows = Vec::new();
    for (key, wanted) in &want {
        let path = format!("{field}.{key}");
        if labels.get(&path).is_some() || secret_names.contains(&key.as_str()) {
            continue;
        }
        let old = have.get(key);
        let same = match (key.as_str(), old) {
            ("headers", Some(old)) => headers_same(&field, wanted, old, labels),
            (_, old) => old == Some(wanted),
        };
        let wanted = if key == "headers" {
            labelled_headers(&field, wanted, labels)
        } else {
            wanted.clone()
        };
        if remote.is_none() || !same {
            let old = remote.map(|_| old.map_or(Value::Null, |v| shown(key, v)));
            rows.push(change(&path, old, wanted));
        }
    }
    for (key, old) in have.iter().filter(|(key, _)| !want.contains_key(*key)) {
        let path = format!("{field}.{key}");
        if applied.iter().any(|f| *f == path) {
            rows.push(change(&path, Some(shown(key, old)), Value::Null));
        }
    }
    rows.extend(labels.rows());
    rows
}

/// The names of the config object's secret fields (`password`, `keyJson`, …).
fn secret_field_names(config: &IntegrationConfig) -> Vec<&'static str> {
    crate::losant::type_facts::of(&config.integration_type())
        .map(|facts| facts.secret_fields.iter().map(|f| f.name).collect())
        .unwrap_or_default()
}

/// Whether the headers match, exactly as the planner compares them (`sync::plan::headers_match`):
/// a value from a Secret, or one Losant masks or omits, cannot be compared.
fn headers_same(field: &str, wanted: &Value, had: &Value, labels: &SecretLabels) -> bool {
    let (Some(wanted), Some(had)) = (wanted.as_array(), had.as_array()) else {
        return false;
    };
    let from_secret = |path: &str| labels.get(path).is_some();
    crate::sync::plan::headers_match(&format!("{field}.headers"), wanted, had, &from_secret)
}

/// Headers with every value hidden: Losant may echo a value that came from a Secret.
fn hide_header_values(headers: &Value) -> Value {
    let mut headers = headers.clone();
    for header in headers.as_array_mut().into_iter().flatten() {
        if let Some(value) = header.get_mut("headerValue") {
            *value = Value::String(HIDDEN.into());
        }
    }
    headers
}

/// Headers as the spec sends them, a value from a Secret replaced by where it comes from.
fn labelled_headers(field: &str, headers: &Value, labels: &SecretLabels) -> Value {
    let mut headers = headers.clone();
    for (index, header) in headers.as_array_mut().into_iter().flatten().enumerate() {
        let path = format!("{field}.headers.{index}.headerValue");
        if let (Some(source), Some(value)) = (labels.get(&path), header.get_mut("headerValue")) {
            *value = Value::String(source.to_string());
        }
    }
    headers
}

#[cfg(test)]
mod tests;
