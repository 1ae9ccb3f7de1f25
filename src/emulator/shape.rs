//! Response shaping and server-side defaults: secret echo modes, HAL-style `_type`/`_links`
//! extras, and the defaults filled in under `--server-defaults`.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::config::{SECRET_MASK, SecretEcho};
use crate::losant::type_facts;

/// True unless the query says `_links=false` (or `0`).
pub fn links_wanted(params: &HashMap<String, String>) -> bool {
    !params
        .get("_links")
        .is_some_and(|v| v.eq_ignore_ascii_case("false") || v == "0")
}

/// Applies the secret echo mode to a copy of a stored integration.
pub fn redact(doc: &mut Map<String, Value>, mode: SecretEcho) {
    if mode == SecretEcho::Clear {
        return;
    }
    for facts in type_facts::ALL {
        let Some(Value::Object(config)) = doc.get_mut(facts.config_field) else {
            continue;
        };
        for field in facts.secret_fields {
            hide(config, field.name, mode);
        }
        for secret in facts.list_item_secrets {
            let items = config.get_mut(secret.list).and_then(Value::as_array_mut);
            for item in items.into_iter().flatten() {
                if let Value::Object(item) = item {
                    hide(item, secret.field.name, mode);
                }
            }
        }
    }
}

fn hide(obj: &mut Map<String, Value>, field: &str, mode: SecretEcho) {
    match mode {
        SecretEcho::Clear => {}
        SecretEcho::Omit => {
            obj.remove(field);
        }
        SecretEcho::Mask => {
            if let Some(v) = obj.get_mut(field) {
                *v = Value::String(SECRET_MASK.to_owned());
            }
        }
    }
}

fn href(path: String) -> Value {
    json!({ "href": path })
}

/// Adds `_type: "integration"` and its `_links` to one rendered integration.
pub fn add_item_links(doc: &mut Map<String, Value>, application_id: &str) {
    let id = doc
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let app = format!("/applications/{application_id}");
    let links = json!({
        "self": href(format!("{app}/integrations/{id}")),
        "integrations": href(format!("{app}/integrations")),
        "application": href(app),
    });
    doc.insert("_type".into(), json!("integration"));
    doc.insert("_links".into(), links);
}

/// Adds `_type: "integrations"` and its `_links` to a list envelope.
pub fn add_list_links(envelope: &mut Map<String, Value>, application_id: &str) {
    let app = format!("/applications/{application_id}");
    let links = json!({
        "self": href(format!("{app}/integrations")),
        "application": href(app),
    });
    envelope.insert("_type".into(), json!("integrations"));
    envelope.insert("_links".into(), links);
}

/// Renders a stored integration for a response.
pub fn render(doc: &Map<String, Value>, mode: SecretEcho, links: bool) -> Value {
    let mut out = doc.clone();
    redact(&mut out, mode);
    if links {
        let app = doc
            .get("applicationId")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        add_item_links(&mut out, &app);
    }
    Value::Object(out)
}

/// Fills the create-time defaults: top-level ones plus those of any config object sent.
pub fn fill_create_defaults(body: &mut Map<String, Value>) {
    body.entry("enabled").or_insert(Value::Bool(true));
    body.entry("topics").or_insert(Value::Array(Vec::new()));
    fill_config_defaults(body);
}

/// Fills defaults inside the config objects present in `body` (a create or patch body).
pub fn fill_config_defaults(body: &mut Map<String, Value>) {
    for facts in type_facts::ALL {
        if let Some(Value::Object(config)) = body.get_mut(facts.config_field) {
            for default in facts.server_defaults {
                config
                    .entry(default.field)
                    .or_insert_with(|| default.value.to_json());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_only_what_is_missing() {
        let body = json!({"mqttConfig": {"clean": false}, "websocketConfig": {},
            "sqsConfig": {"queueUrl": "q"}});
        let Value::Object(mut body) = body else {
            panic!()
        };
        fill_config_defaults(&mut body);
        assert_eq!(
            Value::Object(body),
            json!({"mqttConfig": {"clean": false, "disableSSLVerification": false,
                    "protocolVersion": "3.1.1"},
                "websocketConfig": {"disableSSLVerification": false},
                "sqsConfig": {"queueUrl": "q"}})
        );
    }

    #[test]
    fn mask_and_omit() {
        let doc = json!({"mqttConfig": {"host": "h", "password": "p"},
            "websocketConfig": {"url": "u", "headers": [{"headerKey": "k", "headerValue": "v"}]}});
        let Value::Object(doc) = doc else { panic!() };
        let masked = render(&doc, SecretEcho::Mask, false);
        assert_eq!(masked["mqttConfig"]["password"], SECRET_MASK);
        assert_eq!(
            masked["websocketConfig"]["headers"][0]["headerValue"],
            SECRET_MASK
        );
        assert_eq!(masked["mqttConfig"]["host"], "h");
        let omitted = render(&doc, SecretEcho::Omit, false);
        assert!(omitted["mqttConfig"].get("password").is_none());
        assert!(
            omitted["websocketConfig"]["headers"][0]
                .get("headerValue")
                .is_none()
        );
    }
}
