//! Hand-written validation of create (POST) and patch (PATCH) bodies. It mirrors the upstream
//! `integrationPost.json` / `integrationPatch.json` schemas keyword for keyword, so its verdict
//! agrees with a JSON Schema validator; lengths are counted in Unicode code points.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::losant::type_facts::{self, HEADER_VALUE, KEY_JSON, PRIVATE_KEY, TypeFacts};
use crate::losant::{IntegrationType, SecretField};

/// Why a body was rejected. Names the field path, never the submitted value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct ValidationError {
    /// Dotted path of the offending field (`body` for the whole document).
    pub path: String,
    /// What is wrong with it.
    pub problem: String,
}

/// The shape one property must have.
enum Kind {
    Str {
        min: usize,
        max: usize,
    },
    NullableStr {
        min: usize,
        max: usize,
    },
    Enum(&'static [&'static str]),
    /// One of the integration types of the table.
    IntegrationType,
    Number {
        min: f64,
        max: f64,
    },
    Bool,
    Topics,
    Headers,
}

struct Field {
    name: &'static str,
    kind: Kind,
}

/// A closed object: its properties, required names and (for Azure) a `oneOf` of required sets.
/// With `configs`, it also holds the config object of every type in the table.
struct ObjectSpec {
    fields: &'static [Field],
    required: &'static [&'static str],
    one_of_required: &'static [&'static [&'static str]],
    configs: bool,
}

/// A config object's spec: its fields; what it requires is the table's.
const fn config(facts: &'static TypeFacts, fields: &'static [Field]) -> ObjectSpec {
    ObjectSpec {
        fields,
        required: facts.required,
        one_of_required: facts.one_of_required,
        configs: false,
    }
}

const fn s(name: &'static str, min: usize, max: usize) -> Field {
    Field {
        name,
        kind: Kind::Str { min, max },
    }
}

const fn f(name: &'static str, kind: Kind) -> Field {
    Field { name, kind }
}

/// A secret field, with the table's limits.
const fn secret(field: SecretField) -> Field {
    s(field.name, field.min_chars, field.max_chars)
}

/// `sqsConfig` uses `min`/`max`, which JSON Schema ignores: any string length is fine.
const ANY: usize = usize::MAX;
const PEM_MAX: usize = 32767;

static AZURE: ObjectSpec = config(
    &type_facts::AZURE_EVENT_HUB,
    &[
        s("hubName", 1, 256),
        s("hostName", 1, 256),
        s("consumerGroup", 1, 256),
        secret(type_facts::CONNECTION_STRING),
    ],
);

static GOOGLE: ObjectSpec = config(
    &type_facts::GOOGLE_PUB_SUB,
    &[s("projectId", 1, 255), secret(KEY_JSON)],
);

static MQTT: ObjectSpec = config(
    &type_facts::MQTT,
    &[
        s("clientId", 1, 1024),
        s("username", 1, 1024),
        secret(type_facts::PASSWORD),
        f("clean", Kind::Bool),
        f(
            "port",
            Kind::Number {
                min: 1.0,
                max: 65535.0,
            },
        ),
        f("protocol", Kind::Enum(&["mqtt", "mqtts", "ws", "wss"])),
        s("host", 1, 1024),
        secret(PRIVATE_KEY),
        s("certificate", 4, PEM_MAX),
        s("caCertificate", 4, PEM_MAX),
        f("disableSSLVerification", Kind::Bool),
        f("protocolVersion", Kind::Enum(&["3.1.1", "5"])),
    ],
);

static PARTICLE: ObjectSpec = config(
    &type_facts::PARTICLE,
    &[
        secret(type_facts::ACCESS_TOKEN),
        s("productSlugOrId", 1, 1024),
        s("orgSlugOrId", 1, 1024),
        s("deviceNameOrId", 1, 1024),
    ],
);

/// The secret access key too takes any length here: the operator's own bound (in the table) is
/// not Losant's.
static SQS: ObjectSpec = config(
    &type_facts::SQS,
    &[
        s("accessKeyId", 0, ANY),
        s("secretAccessKey", 0, ANY),
        s("region", 0, ANY),
        s("queueUrl", 0, ANY),
    ],
);

static WEBSOCKET: ObjectSpec = config(
    &type_facts::WEBSOCKET,
    &[
        s("url", 1, 1024),
        f("disableSSLVerification", Kind::Bool),
        s("username", 1, 1024),
        secret(type_facts::PASSWORD),
        secret(PRIVATE_KEY),
        s("certificate", 4, PEM_MAX),
        s("caCertificate", 4, PEM_MAX),
        f(HEADER_VALUE.list, Kind::Headers),
    ],
);

static HEADER: ObjectSpec = ObjectSpec {
    fields: &[s("headerKey", 1, 1024), secret(HEADER_VALUE.field)],
    required: &["headerKey", HEADER_VALUE.field.name],
    one_of_required: &[],
    configs: false,
};

/// Each type's config object, with its row of the table.
static CONFIGS: [(&TypeFacts, &ObjectSpec); 6] = [
    (&type_facts::AZURE_EVENT_HUB, &AZURE),
    (&type_facts::GOOGLE_PUB_SUB, &GOOGLE),
    (&type_facts::MQTT, &MQTT),
    (&type_facts::PARTICLE, &PARTICLE),
    (&type_facts::SQS, &SQS),
    (&type_facts::WEBSOCKET, &WEBSOCKET),
];

/// The spec of the config object named `config_field`.
fn config_spec(config_field: &str) -> Option<&'static ObjectSpec> {
    CONFIGS
        .iter()
        .find(|(facts, _)| facts.config_field == config_field)
        .map(|(_, spec)| *spec)
}

/// Maximum number of websocket headers.
const MAX_HEADERS: usize = 50;

static POST: ObjectSpec = ObjectSpec {
    fields: &[
        s("name", 1, 255),
        f("integrationType", Kind::IntegrationType),
        f("enabled", Kind::Bool),
        s("credentialName", 1, 255),
        f("topics", Kind::Topics),
    ],
    required: &["name", "integrationType"],
    one_of_required: &[],
    configs: true,
};

static PATCH: ObjectSpec = ObjectSpec {
    fields: &[
        s("name", 1, 255),
        f("enabled", Kind::Bool),
        f("topics", Kind::Topics),
        f("credentialName", Kind::NullableStr { min: 1, max: 255 }),
    ],
    required: &[],
    one_of_required: &[],
    configs: true,
};

/// Validates a create body against the `integrationPost` schema.
pub fn validate_post(body: &Value) -> Result<(), ValidationError> {
    check_object(body, &POST, "body")
}

/// Validates a patch body against the `integrationPatch` schema.
pub fn validate_patch(body: &Value) -> Result<(), ValidationError> {
    check_object(body, &PATCH, "body")
}

fn fail(path: &str, problem: impl Into<String>) -> ValidationError {
    ValidationError {
        path: path.to_owned(),
        problem: problem.into(),
    }
}

fn child(parent: &str, name: &str) -> String {
    if parent == "body" {
        name.to_owned()
    } else {
        format!("{parent}.{name}")
    }
}

fn check_object(value: &Value, spec: &ObjectSpec, path: &str) -> Result<(), ValidationError> {
    let Value::Object(map) = value else {
        return Err(fail(path, "must be an object"));
    };
    for (key, item) in map {
        if let Some(field) = spec.fields.iter().find(|fd| fd.name == key.as_str()) {
            check_kind(item, &field.kind, &child(path, field.name))?;
        } else if let Some(config) = config_spec(key).filter(|_| spec.configs) {
            check_object(item, config, &child(path, key))?;
        } else {
            return Err(fail(
                path,
                format!("unknown field `{}` is not allowed", short(key)),
            ));
        }
    }
    if let Some(missing) = spec.required.iter().find(|r| !map.contains_key(**r)) {
        return Err(fail(&child(path, missing), "is required"));
    }
    check_one_of(map, spec, path)
}

/// `oneOf` over required-sets: exactly one set must be fully present.
fn check_one_of(
    map: &Map<String, Value>,
    spec: &ObjectSpec,
    path: &str,
) -> Result<(), ValidationError> {
    if spec.one_of_required.is_empty() {
        return Ok(());
    }
    let matching = spec
        .one_of_required
        .iter()
        .filter(|set| set.iter().all(|k| map.contains_key(*k)))
        .count();
    if matching == 1 {
        return Ok(());
    }
    let sets: Vec<String> = spec
        .one_of_required
        .iter()
        .map(|set| set.join("+"))
        .collect();
    Err(fail(
        path,
        format!(
            "must contain exactly one of the field sets {}",
            sets.join(" or ")
        ),
    ))
}

/// Field names are echoed, but capped so a giant key cannot bloat the message.
fn short(key: &str) -> String {
    const LIMIT: usize = 64;
    if key.chars().count() <= LIMIT {
        key.to_owned()
    } else {
        let head: String = key.chars().take(LIMIT).collect();
        format!("{head}…")
    }
}

fn check_kind(value: &Value, kind: &Kind, path: &str) -> Result<(), ValidationError> {
    match kind {
        Kind::Str { min, max } => check_str(value, *min, *max, path),
        Kind::NullableStr { min, max } if !value.is_null() => check_str(value, *min, *max, path),
        Kind::NullableStr { .. } => Ok(()),
        Kind::Enum(allowed) => match value.as_str() {
            Some(v) if allowed.contains(&v) => Ok(()),
            _ => Err(fail(
                path,
                format!("must be one of: {}", allowed.join(", ")),
            )),
        },
        Kind::IntegrationType => match value.as_str().map(IntegrationType::from) {
            Some(known) if known.is_known() => Ok(()),
            _ => {
                let known: Vec<&str> = IntegrationType::KNOWN.iter().map(|t| t.as_str()).collect();
                Err(fail(path, format!("must be one of: {}", known.join(", "))))
            }
        },
        Kind::Number { min, max } => check_number(value, *min, *max, path),
        Kind::Bool if value.is_boolean() => Ok(()),
        Kind::Bool => Err(fail(path, "must be a boolean")),
        Kind::Topics => check_topics(value, path),
        Kind::Headers => check_headers(value, path),
    }
}

fn check_str(value: &Value, min: usize, max: usize, path: &str) -> Result<(), ValidationError> {
    let Some(text) = value.as_str() else {
        return Err(fail(path, "must be a string"));
    };
    let len = text.chars().count();
    if len < min {
        return Err(fail(
            path,
            format!("must be at least {min} characters long"),
        ));
    }
    if len > max {
        return Err(fail(path, format!("must be at most {max} characters long")));
    }
    Ok(())
}

fn check_number(value: &Value, min: f64, max: f64, path: &str) -> Result<(), ValidationError> {
    match value.as_f64() {
        Some(n) if value.is_number() && (min..=max).contains(&n) => Ok(()),
        Some(_) => Err(fail(path, format!("must be between {min} and {max}"))),
        None => Err(fail(path, "must be a number")),
    }
}

fn check_topics(value: &Value, path: &str) -> Result<(), ValidationError> {
    let Some(items) = value.as_array() else {
        return Err(fail(path, "must be an array"));
    };
    let mut seen = HashSet::new();
    for (i, item) in items.iter().enumerate() {
        let item_path = format!("{path}[{i}]");
        check_str(item, 1, 1024, &item_path)?;
        if !seen.insert(item.as_str()) {
            return Err(fail(path, "must not contain duplicate items"));
        }
    }
    Ok(())
}

fn check_headers(value: &Value, path: &str) -> Result<(), ValidationError> {
    let Some(items) = value.as_array() else {
        return Err(fail(path, "must be an array"));
    };
    if items.len() > MAX_HEADERS {
        return Err(fail(path, format!("must have at most {MAX_HEADERS} items")));
    }
    for (i, item) in items.iter().enumerate() {
        check_object(item, &HEADER, &format!("{path}[{i}]"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_name_the_field_not_the_value() {
        let body = json!({"name": "x", "integrationType": "mqtt",
            "mqttConfig": {"host": "h", "port": 1, "protocol": "mqtt", "password": ""}});
        let err = validate_post(&body).unwrap_err();
        assert_eq!(err.path, "mqttConfig.password");
        let body = json!({"name": "x", "integrationType": "mqtt", "topics": ["s3cr3t", "s3cr3t"]});
        let err = validate_post(&body).unwrap_err();
        assert!(!err.to_string().contains("s3cr3t"), "{err}");
    }

    #[test]
    fn every_type_of_the_table_has_its_config_object() {
        let rows: Vec<&TypeFacts> = CONFIGS.iter().map(|(facts, _)| *facts).collect();
        assert_eq!(rows, type_facts::ALL);
        for facts in type_facts::ALL {
            let body = json!({"name": "x", "integrationType": facts.integration_type.as_str(),
                facts.config_field: {"unknownField": 1}});
            let err = validate_post(&body).unwrap_err();
            assert_eq!(err.path, facts.config_field, "checked as its config object");
        }
        let err = validate_post(&json!({"name": "x", "integrationType": "meridian"})).unwrap_err();
        assert_eq!(
            err.problem,
            "must be one of: azureEventHub, googlePubSub, mqtt, particle, sqs, websocket"
        );
    }

    #[test]
    fn lengths_count_code_points() {
        let name: String = "é".repeat(255);
        assert!(validate_post(&json!({"name": name, "integrationType": "sqs"})).is_ok());
        let name: String = "é".repeat(256);
        assert!(validate_post(&json!({"name": name, "integrationType": "sqs"})).is_err());
    }

    #[test]
    fn patch_credential_name_null() {
        assert!(validate_patch(&json!({"credentialName": null})).is_ok());
        assert!(
            validate_post(&json!({"name": "a", "integrationType": "sqs", "credentialName": null}))
                .is_err()
        );
        assert!(validate_patch(&json!({"integrationType": "mqtt"})).is_err());
    }
}
