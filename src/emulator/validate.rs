//! Hand-written validation of create (POST) and patch (PATCH) bodies. It mirrors the upstream
//! `integrationPost.json` / `integrationPatch.json` schemas keyword for keyword, so its verdict
//! agrees with a JSON Schema validator; lengths are counted in Unicode code points.

use std::collections::HashSet;

use serde_json::{Map, Value};

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
    Str { min: usize, max: usize },
    NullableStr { min: usize, max: usize },
    Enum(&'static [&'static str]),
    Number { min: f64, max: f64 },
    Bool,
    Topics,
    Headers,
    Config(&'static ObjectSpec),
}

struct Field {
    name: &'static str,
    kind: Kind,
}

/// A closed object: its properties, required names and (for Azure) a `oneOf` of required sets.
struct ObjectSpec {
    fields: &'static [Field],
    required: &'static [&'static str],
    one_of_required: &'static [&'static [&'static str]],
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

/// `sqsConfig` uses `min`/`max`, which JSON Schema ignores: any string length is fine.
const ANY: usize = usize::MAX;
const PEM_MAX: usize = 32767;
const INTEGRATION_TYPES: &[&str] = &[
    "azureEventHub",
    "googlePubSub",
    "mqtt",
    "particle",
    "sqs",
    "websocket",
];

static AZURE: ObjectSpec = ObjectSpec {
    fields: &[
        s("hubName", 1, 256),
        s("hostName", 1, 256),
        s("consumerGroup", 1, 256),
        s("connectionString", 1, 1024),
    ],
    required: &[],
    one_of_required: &[
        &["hubName", "consumerGroup", "connectionString"],
        &["hubName", "consumerGroup", "hostName"],
    ],
};

static GOOGLE: ObjectSpec = ObjectSpec {
    fields: &[s("projectId", 1, 255), s("keyJson", 4, PEM_MAX)],
    required: &[],
    one_of_required: &[],
};

static MQTT: ObjectSpec = ObjectSpec {
    fields: &[
        s("clientId", 1, 1024),
        s("username", 1, 1024),
        s("password", 1, 1024),
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
        s("privateKey", 4, PEM_MAX),
        s("certificate", 4, PEM_MAX),
        s("caCertificate", 4, PEM_MAX),
        f("disableSSLVerification", Kind::Bool),
        f("protocolVersion", Kind::Enum(&["3.1.1", "5"])),
    ],
    required: &["port", "protocol", "host"],
    one_of_required: &[],
};

static PARTICLE: ObjectSpec = ObjectSpec {
    fields: &[
        s("accessToken", 1, 1024),
        s("productSlugOrId", 1, 1024),
        s("orgSlugOrId", 1, 1024),
        s("deviceNameOrId", 1, 1024),
    ],
    required: &["accessToken"],
    one_of_required: &[],
};

static SQS: ObjectSpec = ObjectSpec {
    fields: &[
        s("accessKeyId", 0, ANY),
        s("secretAccessKey", 0, ANY),
        s("region", 0, ANY),
        s("queueUrl", 0, ANY),
    ],
    required: &["queueUrl"],
    one_of_required: &[],
};

static WEBSOCKET: ObjectSpec = ObjectSpec {
    fields: &[
        s("url", 1, 1024),
        f("disableSSLVerification", Kind::Bool),
        s("username", 1, 1024),
        s("password", 1, 1024),
        s("privateKey", 4, PEM_MAX),
        s("certificate", 4, PEM_MAX),
        s("caCertificate", 4, PEM_MAX),
        f("headers", Kind::Headers),
    ],
    required: &["url"],
    one_of_required: &[],
};

static HEADER: ObjectSpec = ObjectSpec {
    fields: &[s("headerKey", 1, 1024), s("headerValue", 1, 1024)],
    required: &["headerKey", "headerValue"],
    one_of_required: &[],
};

/// Maximum number of websocket headers.
const MAX_HEADERS: usize = 50;

static POST: ObjectSpec = ObjectSpec {
    fields: &[
        s("name", 1, 255),
        f("integrationType", Kind::Enum(INTEGRATION_TYPES)),
        f("enabled", Kind::Bool),
        s("credentialName", 1, 255),
        f("topics", Kind::Topics),
        f("azureEventHubConfig", Kind::Config(&AZURE)),
        f("googlePubSubConfig", Kind::Config(&GOOGLE)),
        f("mqttConfig", Kind::Config(&MQTT)),
        f("particleConfig", Kind::Config(&PARTICLE)),
        f("sqsConfig", Kind::Config(&SQS)),
        f("websocketConfig", Kind::Config(&WEBSOCKET)),
    ],
    required: &["name", "integrationType"],
    one_of_required: &[],
};

static PATCH: ObjectSpec = ObjectSpec {
    fields: &[
        s("name", 1, 255),
        f("enabled", Kind::Bool),
        f("topics", Kind::Topics),
        f("credentialName", Kind::NullableStr { min: 1, max: 255 }),
        f("azureEventHubConfig", Kind::Config(&AZURE)),
        f("googlePubSubConfig", Kind::Config(&GOOGLE)),
        f("mqttConfig", Kind::Config(&MQTT)),
        f("particleConfig", Kind::Config(&PARTICLE)),
        f("sqsConfig", Kind::Config(&SQS)),
        f("websocketConfig", Kind::Config(&WEBSOCKET)),
    ],
    required: &[],
    one_of_required: &[],
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
        let field = spec.fields.iter().find(|fd| fd.name == key.as_str());
        let Some(field) = field else {
            return Err(fail(
                path,
                format!("unknown field `{}` is not allowed", short(key)),
            ));
        };
        check_kind(item, &field.kind, &child(path, field.name))?;
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
        Kind::Number { min, max } => check_number(value, *min, *max, path),
        Kind::Bool if value.is_boolean() => Ok(()),
        Kind::Bool => Err(fail(path, "must be a boolean")),
        Kind::Topics => check_topics(value, path),
        Kind::Headers => check_headers(value, path),
        Kind::Config(spec) => check_object(value, spec, path),
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
