//! Unit tests of the pure parts of `export`: remote → manifests for each type, secrets turned
//! into references (and never written, whatever Losant echoes), names, the selection, and the
//! round trip through the planner.

use serde_json::{Value, json};

use super::bundle::{BundleError, bundle};
use super::names::{is_dns_label, object_names};
use super::render::{self, Application, File};
use super::select::{Selection, glob_matches};
use crate::crd::{IntegrationTypeSpec, LosantApplicationSpec, SecretKeyRef};
use crate::losant::{Integration, SecretString};
use crate::sync::desired::{SecretValues, desired, secret_refs};
use crate::sync::plan::{LastApplied, Plan, plan};

const APP: &str = "0123456789abcdef0123456a";
const NONCE: &str = "s3cr3t-9f2e";

fn application() -> Application {
    Application {
        name: "plant".into(),
        namespace: "team-a".into(),
        spec: LosantApplicationSpec {
            application_id: APP.into(),
            api_url: "https://api.losant.com".into(),
            token_secret_ref: SecretKeyRef {
                name: "plant-token".into(),
                key: "token".into(),
            },
            ca_bundle_secret_ref: None,
            rate_limit: None,
        },
    }
}

/// One remote of each type, every secret field set to a value carrying [`NONCE`].
fn six_remotes() -> Vec<Value> {
    let secret = |field: &str| format!("{field}-{NONCE}");
    vec![
        json!({"id": "000000000000000000000001", "name": "Plant broker", "integrationType": "mqtt",
            "enabled": true, "topics": ["plant/#"],
            "mqttConfig": {"host": "broker.example.com", "port": 8883, "protocol": "mqtts",
                "clientId": "c1", "username": "u", "password": secret("password"),
                "privateKey": secret("privateKey"), "clean": true, "disableSSLVerification": false,
                "protocolVersion": "5", "certificate": "-----BEGIN CERT-----"}}),
        json!({"id": "000000000000000000000002", "name": "pubsub", "integrationType": "googlePubSub",
            "enabled": false, "topics": ["sub-a"], "credentialName": "gcp",
            "googlePubSubConfig": {"projectId": "proj", "keyJson": secret("keyJson")}}),
        json!({"id": "000000000000000000000003", "name": "hub", "integrationType": "azureEventHub",
            "azureEventHubConfig": {"hubName": "h", "consumerGroup": "$Default",
                "connectionString": secret("connectionString")}}),
        json!({"id": "000000000000000000000004", "name": "particle", "integrationType": "particle",
            "topics": ["temp*"],
            "particleConfig": {"accessToken": secret("accessToken"), "productSlugOrId": "p"}}),
        json!({"id": "000000000000000000000005", "name": "queue", "integrationType": "sqs",
            "sqsConfig": {"queueUrl": "https://sqs/q", "accessKeyId": "AKIA",
                "secretAccessKey": secret("secretAccessKey"), "region": "us-east-1"}}),
        json!({"id": "000000000000000000000006", "name": "feed", "integrationType": "websocket",
            "websocketConfig": {"url": "wss://feed", "username": "u", "password": secret("password"),
                "headers": [{"headerKey": "Authorization", "headerValue": secret("auth")},
                            {"headerKey": "X-Plain", "headerValue": secret("plain")}]}}),
    ]
}

fn read(values: &[Value]) -> Vec<Integration> {
    values
        .iter()
        .map(|v| Integration::from_value_lenient(v.clone()).unwrap())
        .collect()
}

fn exported(values: &[Value]) -> Vec<File> {
    bundle(&application(), &read(values), &Selection::default()).unwrap()
}

fn documents(files: &[File]) -> Vec<Value> {
    serde_saphyr::from_multiple(&render::stream(files)).unwrap()
}

fn of_kind(files: &[File], kind: &str) -> Vec<Value> {
    documents(files)
        .into_iter()
        .filter(|d| d["kind"] == kind)
        .collect()
}

/// Every remote field the spec holds, in Losant's names; secret fields become references.
#[test]
fn each_type_becomes_a_pinned_spec_with_secret_references() {
    let files = exported(&six_remotes());
    let integrations = of_kind(&files, "Integration");
    assert_eq!(integrations.len(), 6);
    let broker = integrations
        .iter()
        .find(|d| d["metadata"]["name"] == "plant-broker")
        .unwrap();
    assert_eq!(
        broker["metadata"]["annotations"],
        json!({"losant.io/integration-id": "000000000000000000000001",
               "losant.io/application-id": APP, "losant.io/origin": "Adopted",
               "losant.io/secrets-match-remote": "true"})
    );
    assert_eq!(broker["metadata"]["namespace"], "team-a");
    let spec = &broker["spec"];
    assert_eq!(spec["name"], "Plant broker");
    assert_eq!(spec["deletionPolicy"], "Orphan");
    assert_eq!(spec["applicationRef"]["name"], "plant");
    assert_eq!(
        spec["mqttConfig"]["passwordSecretRef"],
        json!({"name": "plant-broker-secrets", "key": "password"})
    );
    assert_eq!(spec["mqttConfig"]["protocolVersion"], "5", "stays a string");
    assert_eq!(spec["mqttConfig"]["port"], 8883);
    let feed = integrations
        .iter()
        .find(|d| d["metadata"]["name"] == "feed")
        .unwrap();
    assert_eq!(
        feed["spec"]["websocketConfig"]["headers"],
        json!([{"headerKey": "Authorization",
                "headerValueSecretRef": {"name": "feed-secrets", "key": "headers.0.headerValue"}},
               {"headerKey": "X-Plain",
                "headerValueSecretRef": {"name": "feed-secrets", "key": "headers.1.headerValue"}}])
    );
    let pubsub = integrations
        .iter()
        .find(|d| d["metadata"]["name"] == "pubsub")
        .unwrap();
    assert_eq!(pubsub["spec"]["enabled"], false);
    assert_eq!(pubsub["spec"]["credentialName"], "gcp");
}

#[test]
fn secrets_are_placeholders_naming_their_fields() {
    let files = exported(&six_remotes());
    let secrets = of_kind(&files, "Secret");
    let keys = |name: &str| -> Value {
        secrets
            .iter()
            .find(|s| s["metadata"]["name"] == name)
            .map(|s| s["stringData"].clone())
            .unwrap_or(Value::Null)
    };
    assert_eq!(keys("plant-token"), json!({"token": ""}));
    assert_eq!(
        keys("plant-broker-secrets"),
        json!({"password": "", "privateKey": ""})
    );
    assert_eq!(
        keys("feed-secrets"),
        json!({"password": "", "headers.0.headerValue": "", "headers.1.headerValue": ""})
    );
    assert_eq!(keys("particle-secrets"), json!({"accessToken": ""}));
    assert_eq!(secrets.len(), 7, "the token's and one per integration");
    let text = &files
        .iter()
        .find(|f| f.name == render::SECRETS_FILE)
        .unwrap()
        .text;
    assert!(
        text.contains("# mqttConfig.password\n  \"password\": \"\""),
        "{text}"
    );
    assert!(
        text.contains("# websocketConfig.headers.1.headerValue\n"),
        "{text}"
    );
}

/// Whether Losant echoes secrets in clear, masks or omits them, none is ever written.
#[test]
fn echoed_secrets_are_never_written() {
    for echo in ["clear", "mask", "omit"] {
        let remotes: Vec<Value> = six_remotes()
            .into_iter()
            .map(|mut remote| {
                shape(&mut remote, echo);
                remote
            })
            .collect();
        let files = exported(&remotes);
        for file in &files {
            assert!(
                !file.text.contains(NONCE),
                "{echo}: {}:\n{}",
                file.name,
                file.text
            );
        }
        let required = of_kind(&files, "Secret")
            .iter()
            .any(|s| s["metadata"]["name"] == "particle-secrets");
        assert!(
            required,
            "{echo}: a required secret gets its key even when omitted"
        );
    }
}

fn shape(remote: &mut Value, echo: &str) {
    for facts in crate::losant::type_facts::ALL {
        let Some(config) = remote.get_mut(facts.config_field) else {
            continue;
        };
        for field in facts.secret_fields {
            if let Some(value) = config.get_mut(field.name) {
                match echo {
                    "mask" => *value = json!("****"),
                    "omit" => {
                        config.as_object_mut().unwrap().remove(field.name);
                    }
                    _ => {}
                }
            }
        }
    }
}

/// The exported spec, with the Secrets filled as Losant holds them, plans nothing against the
/// remote it came from: the operator can adopt it without a write.
#[test]
fn an_exported_spec_filled_with_the_remote_values_is_in_sync() {
    let remotes = six_remotes();
    let files = exported(&remotes);
    let secrets: Vec<Value> = of_kind(&files, "Secret");
    for doc in of_kind(&files, "Integration") {
        let spec: crate::crd::IntegrationSpec =
            serde_json::from_value(doc["spec"].clone()).unwrap();
        let id = doc["metadata"]["annotations"]["losant.io/integration-id"].clone();
        let raw = remotes.iter().find(|r| r["id"] == id).unwrap();
        let remote = Integration::from_value_lenient(raw.clone()).unwrap();
        let mut values = SecretValues::new();
        for reference in secret_refs(&spec) {
            let secret = secrets
                .iter()
                .find(|s| s["metadata"]["name"] == reference.name.as_str())
                .unwrap();
            assert!(secret["stringData"].get(&reference.key).is_some());
            values.insert(
                reference.clone(),
                SecretString::new(format!("filled-{}", reference.key)),
            );
        }
        let wanted = desired(&spec, spec.name.as_deref().unwrap(), &values).unwrap();
        let nothing_applied = LastApplied::default();
        assert_eq!(
            plan(&wanted, Some(&remote), &nothing_applied),
            Plan::InSync,
            "{id}"
        );
    }
}

#[test]
fn the_selection_filters_by_name_glob_and_type() {
    let remotes = read(&six_remotes());
    let names = |selection: Selection| -> Vec<String> {
        let mut names: Vec<String> = remotes
            .iter()
            .filter(|r| selection.includes(r))
            .map(|r| r.name.clone())
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(Selection::default()).len(), 6);
    let glob = |g: &str| Selection {
        name_glob: Some(g.into()),
        types: Vec::new(),
    };
    assert_eq!(names(glob("p*")), ["particle", "pubsub"]);
    assert_eq!(names(glob("*e")), ["particle", "queue"]);
    let types = Selection {
        name_glob: None,
        types: vec![IntegrationTypeSpec::Sqs, IntegrationTypeSpec::Mqtt],
    };
    assert_eq!(names(types), ["Plant broker", "queue"]);
    let both = Selection {
        name_glob: Some("p*".into()),
        types: vec![IntegrationTypeSpec::Particle],
    };
    assert_eq!(names(both), ["particle"]);
}

#[test]
fn globs_match_whole_names() {
    let table = [
        ("*", "", true),
        ("*", "anything", true),
        ("plant-*", "plant-a", true),
        ("plant-*", "a-plant-a", false),
        ("*-in", "broker-in", true),
        ("*-in", "broker-in-2", false),
        ("b?oker", "broker", true),
        ("b?oker", "brroker", false),
        ("a*b*c", "a-x-b-y-c", true),
        ("a*b*c", "a-x-c-y-b", false),
        ("\\*", "*", true),
        ("\\*", "x", false),
        ("Plant*", "plant broker", false),
        ("*é*", "café au lait", true),
        ("", "", true),
        ("", "x", false),
    ];
    for (glob, text, expected) in table {
        assert_eq!(glob_matches(glob, text), expected, "{glob:?} on {text:?}");
    }
}

#[test]
fn object_names_are_dns_labels_deterministic_and_unique() {
    let input = [
        ("000000000000000000000001", "Plant Broker"),
        ("000000000000000000000002", "plant_broker"),
        ("000000000000000000000003", "Feed"),
        ("000000000000000000000004", "日本語"),
        ("000000000000000000000005", "!!!"),
        ("000000000000000000000006", &"long name ".repeat(20)),
        ("000000000000000000000007", "feed"),
        ("000000000000000000000008", "Feed"),
    ];
    let pairs: Vec<(&str, &str)> = input.iter().map(|(id, name)| (*id, *name)).collect();
    let names = object_names(&pairs);
    let unique: std::collections::BTreeSet<&String> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "{names:?}");
    for name in &names {
        assert!(is_dns_label(name), "{name:?}");
        assert!(is_dns_label(&super::names::secret_name(name)), "{name:?}");
    }
    assert!(names[0].starts_with("plant-broker-") && names[1].starts_with("plant-broker-"));
    assert!(names[3].starts_with("integration-") && names[4].starts_with("integration-"));
    assert!(names[5].starts_with("long-name-long-name"));
    assert!(
        ["feed-", "feed-", "feed-"]
            .iter()
            .zip([2, 6, 7])
            .all(|(p, i)| names[i].starts_with(p))
    );
    let mut reversed = pairs.clone();
    reversed.reverse();
    let mut again = object_names(&reversed);
    again.reverse();
    assert_eq!(again, names, "the order of the input does not matter");
    assert_eq!(object_names(&[("a1", "Plant Broker")]), ["plant-broker"]);
    // A name that looks like another's suffixed name still ends up unique.
    let tricky_short = object_names(&[("x1", "a"), ("x2", "a")]);
    let tricky = object_names(&[("x1", "a"), ("x2", "a"), ("x3", &tricky_short[0])]);
    let unique: std::collections::BTreeSet<&String> = tricky.iter().collect();
    assert_eq!(unique.len(), 3, "{tricky:?}");
}

#[test]
fn integrations_that_cannot_be_specs_are_all_named_and_nothing_is_written() {
    let broken = vec![
        json!({"id": "000000000000000000000011", "name": "no host", "integrationType": "mqtt",
            "mqttConfig": {"port": 1883, "protocol": "mqtt"}}),
        json!({"id": "000000000000000000000012", "name": "old", "integrationType": "meridian"}),
        json!({"id": "000000000000000000000013", "name": "both", "integrationType": "azureEventHub",
            "azureEventHubConfig": {"hubName": "h", "consumerGroup": "c", "hostName": "x",
                "connectionString": format!("cs-{NONCE}")}}),
        json!({"id": "000000000000000000000014", "name": "odd", "integrationType": "mqtt",
            "mqttConfig": {"host": "h", "port": 1, "protocol": "quic"}}),
    ];
    let mut all = six_remotes();
    all.extend(broken);
    let error = bundle(&application(), &read(&all), &Selection::default()).unwrap_err();
    let BundleError::Unexportable(failures) = &error else {
        panic!("{error}");
    };
    assert_eq!(failures.len(), 4, "{error}");
    let message = error.to_string();
    for expected in [
        "\"no host\"",
        "Losant returned no mqttConfig.host",
        "unknown type \"meridian\"",
        "both hostName and connectionString",
        "unknown mqttConfig.protocol \"quic\"",
        "--filter or --type",
    ] {
        assert!(message.contains(expected), "{expected}: {message}");
    }
    assert!(!message.contains(NONCE));
    let only_good = Selection {
        name_glob: None,
        types: vec![IntegrationTypeSpec::Sqs],
    };
    assert!(bundle(&application(), &read(&all), &only_good).is_ok());
}

#[test]
fn files_are_named_after_objects_and_the_stream_holds_them_all() {
    let files = exported(&six_remotes());
    let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "_application.yaml",
            "_secrets.yaml",
            "feed.yaml",
            "hub.yaml",
            "particle.yaml",
            "plant-broker.yaml",
            "pubsub.yaml",
            "queue.yaml"
        ]
    );
    let docs = documents(&files);
    assert_eq!(docs.len(), 1 + 7 + 6);
    assert_eq!(docs[0]["kind"], "LosantApplication");
    assert_eq!(docs[0]["spec"]["tokenSecretRef"]["name"], "plant-token");
    let again = exported(&six_remotes());
    assert_eq!(again, files, "deterministic");
}

#[test]
fn a_token_secret_named_like_an_integration_secret_is_refused() {
    let mut app = application();
    app.spec.token_secret_ref.name = "queue-secrets".into();
    let error = bundle(&app, &read(&six_remotes()), &Selection::default()).unwrap_err();
    assert!(matches!(error, BundleError::SecretNameClash(_)), "{error}");
}
