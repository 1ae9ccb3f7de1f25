//! Step 3: desired vs. what the server holds → create, patch exactly the drift, or a conflict.

use serde_json::{Value, json};

use super::{Echo, created, desired, in_sync, mqtt_desired, mqtt_spec, read, secrets};
use crate::losant::{FieldPatch, IntegrationPatch};
use crate::sync::plan::{Conflict, LastApplied, Plan, applied_fields, plan};

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
