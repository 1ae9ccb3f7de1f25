//! Table and property tests of the pure reconcile logic.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{Value, json};

use super::desired::{Desired, SecretValues, SpecError, desired, secret_refs};
use super::locate::{Lookup, choose, effective_deletion_policy};
use super::plan::{Conflict, LastApplied, Plan, applied_fields, plan};
use crate::crd::{AdoptionPolicy, DeletionPolicy, IntegrationSpec, Origin, SecretKeyRef};
use crate::losant::{FieldPatch, Integration, IntegrationPatch, IntegrationPost, SecretString};

const PASSWORD: &str = "s3cret-password";

fn secret_ref(name: &str, key: &str) -> SecretKeyRef {
    SecretKeyRef {
        name: name.into(),
        key: key.into(),
    }
}

fn spec(value: Value) -> IntegrationSpec {
    let mut base = json!({"applicationRef": {"name": "app"}});
    base.as_object_mut()
        .unwrap()
        .extend(value.as_object().unwrap().clone());
    serde_json::from_value(base).unwrap()
}

fn mqtt_spec() -> IntegrationSpec {
    spec(json!({
        "integrationType": "mqtt",
        "topics": ["a/#", "b/+"],
        "mqttConfig": {"host": "broker", "port": 8883, "protocol": "mqtts", "clientId": "c1",
            "passwordSecretRef": {"name": "mqtt", "key": "password"}}
    }))
}

fn secrets() -> SecretValues {
    BTreeMap::from([(secret_ref("mqtt", "password"), SecretString::new(PASSWORD))])
}

fn mqtt_desired() -> Desired {
    desired(&mqtt_spec(), "broker-in", &secrets()).unwrap()
}

/// How the server stores and echoes what it was sent.
#[derive(Clone, Copy, Debug)]
enum Echo {
    Clear,
    Omit,
    Mask,
}

const SECRET_FIELDS: [&str; 9] = [
    "password",
    "privateKey",
    "keyJson",
    "secretAccessKey",
    "connectionString",
    "accessToken",
    "password",
    "privateKey",
    "headerValue",
];

/// A server applying a create: what it stores, shaped by its echo mode and defaults.
fn server_create(post: &IntegrationPost, echo: Echo, defaults: bool) -> Integration {
    let mut stored = serde_json::to_value(post).unwrap();
    stored["id"] = json!("0123456789abcdef01234567");
    if defaults {
        fill_defaults(&mut stored);
    }
    read(stored, echo)
}

/// A server applying a patch to what it stored (`stored` holds clear values).
fn server_patch(
    stored: &Value,
    patch: &IntegrationPatch,
    echo: Echo,
    defaults: bool,
) -> (Value, Integration) {
    let mut next = stored.clone();
    for (key, value) in serde_json::to_value(patch).unwrap().as_object().unwrap() {
        if value.is_null() {
            next.as_object_mut().unwrap().remove(key);
        } else {
            next[key] = value.clone();
        }
    }
    if defaults {
        fill_defaults(&mut next);
    }
    let read = read(next.clone(), echo);
    (next, read)
}

fn fill_defaults(stored: &mut Value) {
    let object = stored.as_object_mut().unwrap();
    object.entry("enabled").or_insert(json!(true));
    object.entry("topics").or_insert(json!([]));
    if let Some(Value::Object(mqtt)) = object.get_mut("mqttConfig") {
        mqtt.entry("clean").or_insert(json!(true));
        mqtt.entry("disableSSLVerification").or_insert(json!(false));
        mqtt.entry("protocolVersion").or_insert(json!("3.1.1"));
    }
}

fn read(mut stored: Value, echo: Echo) -> Integration {
    fn shape(value: &mut Value, echo: Echo) {
        match value {
            Value::Object(map) => {
                for field in SECRET_FIELDS {
                    if map.contains_key(field) {
                        match echo {
                            Echo::Clear => {}
                            Echo::Omit => {
                                map.remove(field);
                            }
                            Echo::Mask => {
                                map.insert(field.into(), json!("********"));
                            }
                        }
                    }
                }
                map.values_mut().for_each(|v| shape(v, echo));
            }
            Value::Array(items) => items.iter_mut().for_each(|v| shape(v, echo)),
            _ => {}
        }
    }
    shape(&mut stored, echo);
    Integration::from_value_lenient(stored).unwrap()
}

fn in_sync(desired: &Desired, remote: &Integration) -> Plan {
    let fields = applied_fields(desired);
    plan(
        desired,
        Some(remote),
        &LastApplied {
            fields: &fields,
            secrets_changed: false,
        },
    )
}

fn created(desired: &Desired, echo: Echo, defaults: bool) -> (Value, Integration) {
    let Plan::Create(post) = plan(desired, None, &LastApplied::default()) else {
        panic!("nothing remote means create");
    };
    let mut stored = serde_json::to_value(&post).unwrap();
    stored["id"] = json!("0123456789abcdef01234567");
    if defaults {
        fill_defaults(&mut stored);
    }
    (stored, server_create(&post, echo, defaults))
}

#[test]
fn desired_resolves_secrets_and_records_their_paths() {
    let desired = mqtt_desired();
    assert_eq!(desired.name, "broker-in");
    assert!(desired.enabled, "enabled defaults to true");
    assert_eq!(desired.secret_paths, ["mqttConfig.password"]);
    let body = serde_json::to_value(super::plan::create_body(&desired)).unwrap();
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

#[test]
fn nothing_remote_means_create_with_everything() {
    let desired = mqtt_desired();
    let Plan::Create(post) = plan(&desired, None, &LastApplied::default()) else {
        panic!()
    };
    assert_eq!(post.name, "broker-in");
    assert_eq!(post.enabled, Some(true));
    assert_eq!(
        post.topics,
        Some(vec!["a/#".to_string(), "b/+".to_string()])
    );
}

#[test]
fn what_the_server_echoes_is_in_sync_in_every_mode() {
    let desired = mqtt_desired();
    for echo in [Echo::Clear, Echo::Omit, Echo::Mask] {
        for defaults in [false, true] {
            let (_, remote) = created(&desired, echo, defaults);
            assert_eq!(
                in_sync(&desired, &remote),
                Plan::InSync,
                "{echo:?}, defaults {defaults}"
            );
        }
    }
}

#[test]
fn drift_patches_exactly_the_changed_fields() {
    let desired = mqtt_desired();
    let (stored, _) = created(&desired, Echo::Clear, false);
    let drifted = |edit: &dyn Fn(&mut Value)| {
        let mut value = stored.clone();
        edit(&mut value);
        in_sync(&desired, &read(value, Echo::Clear))
    };
    let patch = |p: IntegrationPatch| Plan::Patch(p);
    assert_eq!(
        drifted(&|v| v["name"] = json!("renamed")),
        patch(IntegrationPatch {
            name: Some("broker-in".into()),
            ..Default::default()
        })
    );
    assert_eq!(
        drifted(&|v| v["enabled"] = json!(false)),
        patch(IntegrationPatch {
            enabled: Some(true),
            ..Default::default()
        })
    );
    assert_eq!(
        drifted(&|v| v["topics"] = json!(["a/#"])),
        patch(IntegrationPatch {
            topics: Some(vec!["a/#".into(), "b/+".into()]),
            ..Default::default()
        })
    );
    assert_eq!(
        drifted(&|v| v["topics"] = json!(["b/+", "a/#"])),
        Plan::InSync,
        "topics are a set"
    );
    let config_patch = patch(IntegrationPatch {
        config: desired.config.clone(),
        ..Default::default()
    });
    assert_eq!(
        drifted(&|v| v["mqttConfig"]["host"] = json!("elsewhere")),
        config_patch
    );
    assert_eq!(
        drifted(&|v| v["mqttConfig"]["port"] = json!(8883.0)),
        Plan::InSync,
        "numbers compare as numbers"
    );
    assert_eq!(
        drifted(&|v| v["mqttConfig"]["port"] = json!(1883)),
        config_patch
    );
    assert_eq!(
        drifted(&|v| {
            v.as_object_mut().unwrap().remove("mqttConfig");
        }),
        config_patch
    );
    assert_eq!(
        drifted(&|v| v["mqttConfig"]["password"] = json!("changed")),
        Plan::InSync,
        "secret values are not compared"
    );
    assert_eq!(
        drifted(&|v| v["mqttConfig"]["username"] = json!("someone")),
        Plan::InSync,
        "not ours: never applied"
    );
    assert_eq!(
        drifted(&|v| v["credentialName"] = json!("aws")),
        Plan::InSync,
        "unmanaged top-level field"
    );
}

#[test]
fn a_field_dropped_from_the_spec_is_removed() {
    let before = mqtt_desired();
    let (stored, _) = created(&before, Echo::Clear, false);
    let fields = applied_fields(&before);
    let mut without_client_id = mqtt_spec();
    without_client_id.mqtt_config.as_mut().unwrap().client_id = None;
    let after = desired(&without_client_id, "broker-in", &secrets()).unwrap();
    let remote = read(stored, Echo::Clear);
    let planned = plan(
        &after,
        Some(&remote),
        &LastApplied {
            fields: &fields,
            secrets_changed: false,
        },
    );
    assert_eq!(
        planned,
        Plan::Patch(IntegrationPatch {
            config: after.config.clone(),
            ..Default::default()
        })
    );
}

#[test]
fn credential_name_is_cleared_only_if_the_operator_set_it() {
    let mut with_credential = mqtt_spec();
    with_credential.credential_name = Some("aws".into());
    let before = desired(&with_credential, "broker-in", &secrets()).unwrap();
    let (stored, remote) = created(&before, Echo::Clear, false);
    assert_eq!(in_sync(&before, &remote), Plan::InSync);
    let after = mqtt_desired();
    let applied = applied_fields(&before);
    let remote = read(stored, Echo::Clear);
    assert_eq!(
        plan(
            &after,
            Some(&remote),
            &LastApplied {
                fields: &applied,
                secrets_changed: false
            }
        ),
        Plan::Patch(IntegrationPatch {
            credential_name: Some(FieldPatch::Clear),
            ..Default::default()
        })
    );
    assert_eq!(
        plan(&after, Some(&remote), &LastApplied::default()),
        Plan::InSync,
        "set by someone else"
    );
}

#[test]
fn a_rotated_secret_resends_the_config() {
    let desired = mqtt_desired();
    let (_, remote) = created(&desired, Echo::Mask, true);
    let fields = applied_fields(&desired);
    assert_eq!(
        plan(
            &desired,
            Some(&remote),
            &LastApplied {
                fields: &fields,
                secrets_changed: true
            }
        ),
        Plan::Patch(IntegrationPatch {
            config: desired.config.clone(),
            ..Default::default()
        })
    );
}

#[test]
fn a_different_type_is_a_conflict() {
    let desired = mqtt_desired();
    let (mut stored, _) = created(&desired, Echo::Clear, false);
    stored["integrationType"] = json!("sqs");
    assert_eq!(
        in_sync(&desired, &read(stored, Echo::Clear)),
        Plan::Conflict(Conflict::ImmutableType {
            remote: "sqs".into(),
            desired: "mqtt".into()
        })
    );
}

#[test]
fn lookups_adopt_create_or_refuse() {
    let one = || {
        read(
            json!({"id": "0123456789abcdef01234567", "name": "n", "integrationType": "mqtt"}),
            Echo::Clear,
        )
    };
    assert_eq!(
        choose(vec![], AdoptionPolicy::IfExactlyOneMatch, false),
        Lookup::Create
    );
    assert!(matches!(
        choose(vec![one()], AdoptionPolicy::IfExactlyOneMatch, false),
        Lookup::Take(_, Origin::Adopted)
    ));
    assert!(matches!(
        choose(vec![one()], AdoptionPolicy::Never, false),
        Lookup::AlreadyExists { .. }
    ));
    assert!(matches!(
        choose(vec![one()], AdoptionPolicy::Never, true),
        Lookup::Take(_, Origin::Created)
    ));
    assert_eq!(
        choose(vec![one(), one()], AdoptionPolicy::IfExactlyOneMatch, true),
        Lookup::Ambiguous { count: 2 }
    );
    assert_eq!(
        effective_deletion_policy(None, Some(Origin::Created)),
        DeletionPolicy::Delete
    );
    assert_eq!(
        effective_deletion_policy(None, Some(Origin::Adopted)),
        DeletionPolicy::Orphan
    );
    assert_eq!(
        effective_deletion_policy(None, None),
        DeletionPolicy::Orphan
    );
    assert_eq!(
        effective_deletion_policy(Some(DeletionPolicy::Delete), Some(Origin::Adopted)),
        DeletionPolicy::Delete
    );
}

fn arbitrary_mqtt_spec() -> impl Strategy<Value = IntegrationSpec> {
    (
        any::<bool>(),
        proptest::option::of(proptest::collection::btree_set("[a-z/#+]{1,8}", 0..4)),
        proptest::option::of("[a-z]{1,8}"),
        1..=65535i32,
        proptest::sample::select(vec!["mqtt", "mqtts", "ws", "wss"]),
        proptest::option::of(any::<bool>()),
        proptest::option::of(proptest::sample::select(vec!["3.1.1", "5"])),
        any::<bool>(),
    )
        .prop_map(
            |(enabled, topics, client_id, port, protocol, clean, version, password)| {
                let mut mqtt = json!({"host": "broker", "port": port, "protocol": protocol});
                if let Some(id) = client_id {
                    mqtt["clientId"] = json!(id);
                }
                if let Some(clean) = clean {
                    mqtt["clean"] = json!(clean);
                }
                if let Some(version) = version {
                    mqtt["protocolVersion"] = json!(version);
                }
                if password {
                    mqtt["passwordSecretRef"] = json!({"name": "mqtt", "key": "password"});
                }
                let mut value =
                    json!({"integrationType": "mqtt", "enabled": enabled, "mqttConfig": mqtt});
                if let Some(topics) = topics {
                    value["topics"] = json!(topics);
                }
                spec(value)
            },
        )
}

fn arbitrary_echo() -> impl Strategy<Value = Echo> {
    proptest::sample::select(vec![Echo::Clear, Echo::Omit, Echo::Mask])
}

proptest! {
    /// Whatever the server echoes and fills in, what was just written is in sync: no write loop.
    #[test]
    fn a_fresh_write_is_in_sync(spec in arbitrary_mqtt_spec(), echo in arbitrary_echo(), defaults in any::<bool>()) {
        let desired = desired(&spec, "n", &secrets()).unwrap();
        let (_, remote) = created(&desired, echo, defaults);
        prop_assert_eq!(in_sync(&desired, &remote), Plan::InSync);
    }

    /// From any earlier spec's remote, one planned patch converges: planning again finds nothing.
    #[test]
    fn one_patch_converges(
        before in arbitrary_mqtt_spec(), after in arbitrary_mqtt_spec(),
        echo in arbitrary_echo(), defaults in any::<bool>(),
    ) {
        let old = desired(&before, "old", &secrets()).unwrap();
        let new = desired(&after, "new", &secrets()).unwrap();
        let (stored, remote) = created(&old, echo, defaults);
        let old_fields = applied_fields(&old);
        let last = LastApplied { fields: &old_fields, secrets_changed: false };
        let patched = match plan(&new, Some(&remote), &last) {
            Plan::Patch(patch) => server_patch(&stored, &patch, echo, defaults).1,
            Plan::InSync => remote,
            other => return Err(TestCaseError::fail(format!("unexpected {other:?}"))),
        };
        let new_fields = applied_fields(&new);
        let again = plan(&new, Some(&patched), &LastApplied { fields: &new_fields, secrets_changed: false });
        prop_assert_eq!(again, Plan::InSync);
    }
}
