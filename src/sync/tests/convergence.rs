//! Property tests: whatever the server echoes and fills in, writes converge.

use proptest::prelude::*;
use serde_json::json;

use super::{Echo, created, in_sync, secrets, server_patch, spec};
use crate::crd::IntegrationSpec;
use crate::sync::desired::desired;
use crate::sync::plan::{LastApplied, Plan, applied_fields, plan};

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
