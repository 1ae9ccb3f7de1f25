//! The table against the wire enum, and against Losant's published schemas when they are at hand
//! (`$LOSANT_API_SCHEMAS`, default `../shared/losant-api/schemas`; never copied into the repo).

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::Value;

use super::*;

#[test]
fn every_known_type_has_one_row_in_wire_order() {
    let types: Vec<&IntegrationType> = ALL.iter().map(|facts| &facts.integration_type).collect();
    assert_eq!(types, IntegrationType::KNOWN.iter().collect::<Vec<_>>());
    for facts in ALL {
        assert!(std::ptr::eq(of(&facts.integration_type).unwrap(), facts));
        assert!(std::ptr::eq(
            by_config_field(facts.config_field).unwrap(),
            facts
        ));
    }
    assert_eq!(of(&IntegrationType::Unknown("meridian".into())), None);
    assert_eq!(by_config_field("meridianConfig"), None);
}

#[test]
fn only_google_pub_sub_does_without_its_config() {
    let optional: Vec<&str> = ALL
        .iter()
        .filter(|facts| !facts.needs_config())
        .map(|facts| facts.integration_type.as_str())
        .collect();
    assert_eq!(optional, ["googlePubSub"]);
}

#[test]
fn paths_start_at_the_config_object() {
    assert_eq!(MQTT.secret_path(&PASSWORD), "mqttConfig.password");
    assert_eq!(
        WEBSOCKET.list_item_secret_path(&HEADER_VALUE, None),
        "websocketConfig.headers.headerValue"
    );
    assert_eq!(
        WEBSOCKET.list_item_secret_path(&HEADER_VALUE, Some(3)),
        "websocketConfig.headers.3.headerValue"
    );
}

fn schema_dir() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("LOSANT_API_SCHEMAS").map(PathBuf::from),
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/losant-api/schemas")),
        Some(PathBuf::from("/work/shared/losant-api/schemas")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|dir| dir.join("integrationPost.json").is_file())
}

fn load(dir: &std::path::Path, name: &str) -> Value {
    let text = std::fs::read_to_string(dir.join(name)).expect("schema readable");
    serde_json::from_str(&text).expect("schema is JSON")
}

/// The bounds a schema states for a string property: each must be ours.
fn assert_bounds(schema: &Value, field: &SecretField, at: &str) {
    assert_eq!(schema["type"], "string", "{at}");
    if let Some(min) = schema.get("minLength") {
        assert_eq!(min.as_u64(), Some(field.min_chars as u64), "{at} minLength");
    }
    if let Some(max) = schema.get("maxLength") {
        assert_eq!(max.as_u64(), Some(field.max_chars as u64), "{at} maxLength");
    }
}

fn names(list: Option<&Value>) -> Vec<&str> {
    list.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

fn check_config(facts: &TypeFacts, config: &Value, at: &str, write: bool) {
    let properties = &config["properties"];
    assert_eq!(config["type"], "object", "{at}");
    if write {
        assert_eq!(
            names(config.get("required")),
            facts.required,
            "{at} required"
        );
        let one_of: Vec<Vec<&str>> = config
            .get("oneOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|branch| names(branch.get("required")))
            .collect();
        assert_eq!(one_of, facts.one_of_required, "{at} oneOf");
    }
    for field in facts.secret_fields {
        assert_bounds(
            &properties[field.name],
            field,
            &format!("{at}.{}", field.name),
        );
    }
    for secret in facts.list_item_secrets {
        let item = &properties[secret.list]["items"]["properties"][secret.field.name];
        let path = format!("{at}.{}[].{}", secret.list, secret.field.name);
        assert_bounds(item, &secret.field, &path);
    }
    if let Endpoint::ConfigField(field) = facts.endpoint {
        assert_eq!(properties[field]["type"], "string", "{at}.{field}");
    }
    for default in facts.server_defaults {
        let property = &properties[default.field];
        let at = format!("{at}.{}", default.field);
        match default.value {
            DefaultValue::Bool(_) => assert_eq!(property["type"], "boolean", "{at}"),
            DefaultValue::Str(value) => {
                assert_eq!(property["type"], "string", "{at}");
                if let Some(allowed) = property.get("enum") {
                    assert!(names(Some(allowed)).contains(&value), "{at}: {value}");
                }
            }
        }
    }
}

#[test]
fn the_table_agrees_with_the_upstream_schemas() {
    let Some(dir) = schema_dir() else {
        println!(
            "SKIPPED: upstream schemas (../shared/losant-api/schemas) are absent; set LOSANT_API_SCHEMAS"
        );
        return;
    };
    let post = load(&dir, "integrationPost.json");
    let wire: Vec<&str> = ALL.iter().map(|f| f.integration_type.as_str()).collect();
    assert_eq!(
        names(post["properties"]["integrationType"].get("enum")),
        wire
    );
    let documents = [
        ("integrationPost", post, true),
        (
            "integrationPatch",
            load(&dir, "integrationPatch.json"),
            true,
        ),
        ("integration", load(&dir, "integration.json"), false),
    ];
    for (name, schema, write) in &documents {
        let Some(properties) = schema["properties"].as_object() else {
            panic!("{name} has no properties");
        };
        let configs: BTreeSet<&str> = properties
            .keys()
            .map(String::as_str)
            .filter(|key| key.ends_with("Config"))
            .collect();
        let ours: BTreeSet<&str> = ALL.iter().map(|f| f.config_field).collect();
        assert_eq!(configs, ours, "{name}: config objects");
        for facts in ALL {
            let at = format!("{name}.{}", facts.config_field);
            check_config(facts, &properties[facts.config_field], &at, *write);
        }
    }
}
