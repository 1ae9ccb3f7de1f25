//! Table and property tests of the pure reconcile logic, by step; this module holds what they
//! share: specs, Secret values and a fake Losant server that stores, echoes and fills defaults.

mod convergence;
mod desired;
mod locate;
mod plan;

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::desired::{Desired, SecretValues, desired};
use super::plan::{LastApplied, Plan, applied_fields, plan};
use crate::crd::{IntegrationSpec, SecretKeyRef};
use crate::losant::{Integration, IntegrationPatch, IntegrationPost, SecretString, type_facts};

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

/// The names of every secret field, in config objects and in their lists' items.
fn secret_fields() -> Vec<&'static str> {
    type_facts::ALL
        .iter()
        .flat_map(|facts| {
            let items = facts.list_item_secrets.iter().map(|secret| &secret.field);
            facts.secret_fields.iter().chain(items)
        })
        .map(|field| field.name)
        .collect()
}

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
    for facts in type_facts::ALL {
        if let Some(Value::Object(config)) = object.get_mut(facts.config_field) {
            for default in facts.server_defaults {
                config
                    .entry(default.field)
                    .or_insert_with(|| default.value.to_json());
            }
        }
    }
}

fn read(mut stored: Value, echo: Echo) -> Integration {
    fn shape(value: &mut Value, echo: Echo) {
        match value {
            Value::Object(map) => {
                for field in secret_fields() {
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
