//! Step 1: spec + Secret values → the desired integration.

use std::collections::BTreeMap;

use serde_json::json;

use super::{Echo, PASSWORD, created, in_sync, mqtt_desired, mqtt_spec, read, secret_ref, spec};
use crate::crd::IntegrationSpec;
use crate::losant::type_facts::{self, TypeFacts};
use crate::losant::{SecretField, SecretString};
use crate::sync::desired::{SecretValues, SpecError, desired, secret_refs};
use crate::sync::plan::{Plan, create_body};

#[test]
fn desired_resolves_secrets_and_records_their_paths() {
    let desired = mqtt_desired();
    assert_eq!(desired.name, "broker-in");
    assert!(desired.enabled, "enabled defaults to true");
    assert_eq!(desired.secret_paths, ["mqttConfig.password"]);
    let body = serde_json::to_value(create_body(&desired)).unwrap();
    assert_eq!(body["mqttConfig"]["password"], PASSWORD);
    assert_eq!(body["mqttConfig"]["port"], 8883);
    assert_eq!(secret_refs(&mqtt_spec()), [&secret_ref("mqtt", "password")]);
}

#[test]
fn desired_reports_missing_and_bad_secrets_without_values() {
    let missing = desired(&mqtt_spec(), "n", &SecretValues::new()).unwrap_err();
    assert_eq!(
        missing,
        SpecError::SecretValueMissing {
            secret: "mqtt".into(),
            key: "password".into()
        }
    );
    let long = "x".repeat(1025);
    let too_long = BTreeMap::from([(
        secret_ref("mqtt", "password"),
        SecretString::new(long.clone()),
    )]);
    let error = desired(&mqtt_spec(), "n", &too_long).unwrap_err();
    let text = error.to_string();
    assert!(text.contains("mqtt") && text.contains("1–1024"), "{text}");
    assert!(!text.contains(&long));
}

#[test]
fn desired_rejects_blocks_that_do_not_match_the_type() {
    let stray = spec(
        json!({"integrationType": "sqs", "sqsConfig": {"queueUrl": "u"},
        "mqttConfig": {"host": "h", "port": 1, "protocol": "mqtt"}}),
    );
    assert!(matches!(
        desired(&stray, "n", &SecretValues::new()),
        Err(SpecError::ConfigForOtherType {
            field: "mqttConfig",
            ..
        })
    ));
    let missing = spec(json!({"integrationType": "particle"}));
    assert!(matches!(
        desired(&missing, "n", &SecretValues::new()),
        Err(SpecError::ConfigMissing { .. })
    ));
    let pubsub = spec(json!({"integrationType": "googlePubSub", "credentialName": "gcp"}));
    assert_eq!(
        desired(&pubsub, "n", &SecretValues::new()).unwrap().config,
        None,
        "googlePubSub needs no block"
    );
    let azure_both = spec(
        json!({"integrationType": "azureEventHub", "azureEventHubConfig": {
        "hubName": "h", "consumerGroup": "g", "hostName": "x", "connectionStringSecretRef": {"name": "a", "key": "b"}}}),
    );
    assert!(matches!(
        desired(&azure_both, "n", &SecretValues::new()),
        Err(SpecError::Invalid { .. })
    ));
}

#[test]
fn websocket_headers_mix_inline_and_secret_values() {
    let ws = spec(
        json!({"integrationType": "websocket", "websocketConfig": {"url": "wss://x", "headers": [
        {"headerKey": "X-Plain", "headerValue": "visible"},
        {"headerKey": "Authorization", "headerValueSecretRef": {"name": "ws", "key": "auth"}}]}}),
    );
    let values = BTreeMap::from([(secret_ref("ws", "auth"), SecretString::new("Bearer t"))]);
    let desired = desired(&ws, "n", &values).unwrap();
    assert_eq!(
        desired.secret_paths,
        ["websocketConfig.headers.1.headerValue"]
    );
    // An inline value Losant echoes differently is drift; a masked one is not.
    let (stored, remote) = created(&desired, Echo::Clear, false);
    assert_eq!(in_sync(&desired, &remote), Plan::InSync);
    let mut changed = stored.clone();
    changed["websocketConfig"]["headers"][0]["headerValue"] = json!("edited in Losant");
    assert!(matches!(
        in_sync(&desired, &read(changed, Echo::Clear)),
        Plan::Patch(_)
    ));
    assert_eq!(in_sync(&desired, &read(stored, Echo::Mask)), Plan::InSync);
}

/// A block of each type that sets every secret field, each from Secret `s`, key = field name.
fn every_secret_spec(facts: &TypeFacts) -> IntegrationSpec {
    let mut block = match facts.integration_type.as_str() {
        "azureEventHub" => json!({"hubName": "h", "consumerGroup": "g"}),
        "mqtt" => json!({"host": "h", "port": 1, "protocol": "mqtt"}),
        "sqs" => json!({"queueUrl": "q"}),
        "websocket" => json!({"url": "wss://x"}),
        _ => json!({}),
    };
    for field in facts.secret_fields {
        block[format!("{}SecretRef", field.name)] = json!({"name": "s", "key": field.name});
    }
    for secret in facts.list_item_secrets {
        let reference = json!({"name": "s", "key": secret.field.name});
        block[secret.list] = json!([{"headerKey": "k",
            format!("{}SecretRef", secret.field.name): reference}]);
    }
    spec(json!({"integrationType": facts.integration_type.as_str(), facts.config_field: block}))
}

fn every_secret_value(facts: &TypeFacts, chars: impl Fn(&SecretField) -> usize) -> SecretValues {
    let items = facts.list_item_secrets.iter().map(|secret| &secret.field);
    facts
        .secret_fields
        .iter()
        .chain(items)
        .map(|field| {
            (
                secret_ref("s", field.name),
                SecretString::new("x".repeat(chars(field))),
            )
        })
        .collect()
}

#[test]
fn every_secret_field_of_every_type_has_the_tables_path_and_limits() {
    for facts in type_facts::ALL {
        let spec = every_secret_spec(facts);
        let fitting = every_secret_value(facts, |field| field.min_chars);
        let built = desired(&spec, "n", &fitting).unwrap();
        // The config object's paths sorted, then those of list items in order.
        let mut paths: Vec<String> = facts
            .secret_fields
            .iter()
            .map(|field| facts.secret_path(field))
            .collect();
        paths.sort();
        let items = facts.list_item_secrets.iter();
        paths.extend(items.map(|secret| facts.list_item_secret_path(secret, Some(0))));
        assert_eq!(built.secret_paths, paths, "{}", facts.config_field);
        for (too, chars) in [("short", 0), ("long", 1)] {
            let values = every_secret_value(facts, |field| {
                if chars == 0 {
                    field.min_chars - 1
                } else {
                    field.max_chars + 1
                }
            });
            let error = desired(&spec, "n", &values).unwrap_err();
            let SpecError::SecretValueLength {
                field, min, max, ..
            } = &error
            else {
                panic!(
                    "{}: a {too} value is refused: {error:?}",
                    facts.config_field
                );
            };
            let limits = facts
                .secret_fields
                .iter()
                .chain(facts.list_item_secrets.iter().map(|secret| &secret.field))
                .find(|f| field.ends_with(f.name))
                .unwrap();
            assert!(field.starts_with(facts.config_field), "{field}");
            assert_eq!(
                (*min, *max),
                (limits.min_chars, limits.max_chars),
                "{field}"
            );
        }
    }
}
