use serde_json::json;

use super::*;
use crate::sync::desired::{self, SecretValues};
use crate::sync::plan::create_body;

const PASSWORD: &str = "s3cret-password-value";
const HEADER: &str = "Bearer header-secret-value";

fn spec() -> IntegrationSpec {
    serde_json::from_value(json!({
        "applicationRef": {"name": "app"},
        "integrationType": "websocket",
        "websocketConfig": {
            "url": "wss://example.test/feed",
            "username": "bot",
            "passwordSecretRef": {"name": "ws", "key": "password"},
            "headers": [
                {"headerKey": "X-Plain", "headerValue": "plain"},
                {"headerKey": "Authorization", "headerValueSecretRef": {"name": "hdr", "key": "auth"}}
            ]
        }
    }))
    .unwrap()
}

fn desired() -> Desired {
    let mut values = SecretValues::new();
    values.insert(
        SecretKeyRef {
            name: "ws".into(),
            key: "password".into(),
        },
        PASSWORD.into(),
    );
    values.insert(
        SecretKeyRef {
            name: "hdr".into(),
            key: "auth".into(),
        },
        HEADER.into(),
    );
    desired::desired(&spec(), "feed", &values).unwrap()
}

fn labels() -> SecretLabels {
    SecretLabels::new(&spec(), &|name| name == "ws")
}

fn remote(config: serde_json::Value) -> Integration {
    serde_json::from_value(json!({
        "id": "0123456789abcdef01234567",
        "name": "old-feed",
        "integrationType": "websocket",
        "enabled": true,
        "websocketConfig": config,
    }))
    .unwrap()
}

fn no_secret_values(rows: &[FieldChange]) {
    let text = serde_json::to_string(rows).unwrap();
    assert!(!text.contains(PASSWORD) && !text.contains(HEADER), "{text}");
}

#[test]
fn a_create_lists_every_field_and_labels_secrets() {
    let rows = create(&create_body(&desired()), &labels());
    no_secret_values(&rows);
    let field = |name: &str| rows.iter().find(|r| r.field == name).cloned();
    assert_eq!(field("name").unwrap().new, Some(json!("feed")));
    assert_eq!(
        field("websocketConfig.url").unwrap().new,
        Some(json!("wss://example.test/feed"))
    );
    let password = field("websocketConfig.password").unwrap().secret.unwrap();
    assert_eq!(password.to_string(), "(secret from ws/password: changed)");
    let header = field("websocketConfig.headers.1.headerValue")
        .unwrap()
        .secret
        .unwrap();
    assert_eq!(header.to_string(), "(secret from hdr/auth: unchanged)");
    let headers = field("websocketConfig.headers").unwrap().new.unwrap();
    assert_eq!(
        headers[0]["headerValue"], "plain",
        "an inline value is no secret"
    );
    assert_eq!(
        headers[1]["headerValue"],
        "(secret from hdr/auth: unchanged)"
    );
}

#[test]
fn a_patch_shows_old_and_new_and_hides_what_losant_echoes() {
    let echoed = remote(json!({
        "url": "wss://old.test/feed",
        "username": "bot",
        "password": PASSWORD,
        "certificate": "left-by-the-last-write",
        "headers": [
            {"headerKey": "X-Plain", "headerValue": "plain"},
            {"headerKey": "Authorization", "headerValue": HEADER}
        ]
    }));
    let desired = desired();
    let patch_body = IntegrationPatch {
        name: Some("feed".into()),
        config: desired.config.clone(),
        ..IntegrationPatch::default()
    };
    let applied: Vec<Word> = vec!["websocketConfig.certificate".into()];
    let rows = patch(&patch_body, &echoed, &labels(), &applied);
    no_secret_values(&rows);
    let fields: Vec<&str> = rows.iter().map(|r| r.field.as_str()).collect();
    assert_eq!(
        fields,
        vec![
            "name",
            "websocketConfig.url",
            "websocketConfig.certificate",
            "websocketConfig.headers.1.headerValue",
            "websocketConfig.password",
        ],
        "unchanged username and headers are not listed"
    );
    assert_eq!(rows[0].old, Some(json!("old-feed")));
    assert_eq!(rows[1].old, Some(json!("wss://old.test/feed")));
    assert_eq!(
        rows[2].new,
        Some(serde_json::Value::Null),
        "dropped from the spec: cleared"
    );
}

#[test]
fn drift_lists_only_the_drifted_fields_and_no_secret() {
    let echoed =
        remote(json!({"url": "wss://old.test/feed", "username": "bot", "password": PASSWORD}));
    let rows = drift(&["name", "websocketConfig"], &desired(), &echoed);
    no_secret_values(&rows);
    assert!(rows.iter().all(|r| r.secret.is_none()));
    assert!(rows.iter().any(|r| r.field == "name"));
    assert!(rows.iter().any(|r| r.field == "websocketConfig.url"));
    assert!(drift(&[], &desired(), &echoed).is_empty());
}

#[test]
fn an_inline_header_value_that_changed_shows_the_headers() {
    let echoed = remote(json!({
        "url": "wss://example.test/feed",
        "username": "bot",
        "headers": [
            {"headerKey": "X-Plain", "headerValue": "stale"},
            {"headerKey": "Authorization", "headerValue": HEADER}
        ]
    }));
    let patch_body = IntegrationPatch {
        config: desired().config,
        ..IntegrationPatch::default()
    };
    let rows = patch(&patch_body, &echoed, &labels(), &[]);
    no_secret_values(&rows);
    let headers = rows
        .iter()
        .find(|r| r.field == "websocketConfig.headers")
        .expect("the headers changed");
    assert_eq!(headers.new.as_ref().unwrap()[0]["headerValue"], "plain");
    assert_eq!(headers.old.as_ref().unwrap()[0]["headerValue"], HIDDEN);
}
