//! End-to-end tests of the operator: the real API server, the `losant-operator` binary as a
//! process, the `losant-emulator` binary as Losant, all driven by `kubectl`. One namespace,
//! emulator and operator per test.

use std::time::Duration;

use losant_operator::testkit::*;
use serde_json::{Value, json};

const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A namespace with an emulator (started with `emulator_args`), a verified `LosantApplication`
/// named `app`, and an operator watching the namespace.
struct World {
    ns: TestNamespace,
    emulator: EmulatorProcess,
    operator: OperatorProcess,
}

impl World {
    fn new(prefix: &str, emulator_args: &[&str]) -> World {
        install_crds();
        let ns = TestNamespace::new(prefix);
        let emulator = EmulatorProcess::start(emulator_args);
        ns.register_log("emulator", emulator.log_path());
        ns.install_application(&emulator, "app");
        let operator = OperatorProcess::start(ns.name(), &[]);
        wait_for_condition(
            ns.name(),
            "losantapplication/app",
            "Ready",
            "True",
            READY_TIMEOUT,
        );
        World {
            ns,
            emulator,
            operator,
        }
    }

    fn name(&self) -> &str {
        self.ns.name()
    }

    fn apply_integration(&self, name: &str, spec: Value) {
        self.ns.apply_ok(&integration_manifest(name, &spec));
    }

    fn ready(&self, name: &str) -> Value {
        wait_for_condition(
            self.name(),
            &format!("integration/{name}"),
            "Ready",
            "True",
            READY_TIMEOUT,
        )
    }

    fn remote_id(&self, name: &str) -> String {
        let object = self.ready(name);
        object["status"]["integrationId"]
            .as_str()
            .expect("status.integrationId")
            .to_owned()
    }

    fn remote(&self, id: &str) -> Option<Value> {
        let (status, body) = self.emulator.get(&format!(
            "{}?_links=false",
            self.emulator.integration_path(id)
        ));
        (status.as_u16() == 200).then_some(body)
    }

    fn remotes_named(&self, name: &str) -> Vec<Value> {
        self.emulator
            .list_integrations()
            .into_iter()
            .filter(|i| i["name"] == name)
            .collect()
    }

    fn count(&self, method: &str, item: bool) -> u64 {
        let route = if item {
            "/applications/{applicationId}/integrations/{integrationId}"
        } else {
            "/applications/{applicationId}/integrations"
        };
        self.emulator.stats()["requests"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["method"] == method && r["route"] == route)
            .map(|r| r["count"].as_u64().unwrap_or(0))
            .sum()
    }

    fn events(&self, reason: &str) -> Vec<Value> {
        let list = kubectl_json(&[
            "get",
            "events.events.k8s.io",
            "-n",
            self.name(),
            "-o",
            "json",
        ]);
        list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["reason"] == reason)
            .cloned()
            .collect()
    }

    fn condition(&self, kind_name: &str, type_: &str) -> Value {
        let object = get_object(self.name(), kind_name).expect("object exists");
        find_condition(&object, type_)
            .cloned()
            .unwrap_or(Value::Null)
    }
}

fn mqtt_spec(host: &str) -> Value {
    json!({
        "applicationRef": {"name": "app"},
        "integrationType": "mqtt",
        "topics": ["plant/+/telemetry"],
        "mqttConfig": {
            "host": host, "port": 8883, "protocol": "mqtts", "clientId": "e2e",
            "passwordSecretRef": {"name": "mqtt", "key": "password"}
        }
    })
}

fn with_mqtt_secret(world: &World, password: &str) {
    world.ns.apply_secret("mqtt", &[("password", password)]);
}

#[test]
fn examples_converge_and_reach_losant_with_their_secrets() {
    require_cluster!();
    let world = World::new("examples", &[]);
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut files: Vec<_> = std::fs::read_dir(&examples)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for file in files {
        // The examples target the emulator on 127.0.0.1:8787 with a fixed app and token; point
        // them at this test's emulator instead.
        let text = std::fs::read_to_string(&file)
            .unwrap()
            .replace("http://127.0.0.1:8787", world.emulator.base_url())
            .replace("575ec8687ae143cd83dc4a97", world.emulator.application_id())
            .replace(
                "token: demo-token",
                &format!("token: {}", world.emulator.token()),
            );
        world.ns.apply_ok(&text);
    }
    wait_for_condition(
        world.name(),
        "losantapplication/example-app",
        "Ready",
        "True",
        READY_TIMEOUT,
    );
    let expected = [
        (
            "factory-broker",
            "factory-broker",
            "mqtt",
            "mqttConfig",
            "password",
            "example-mqtt-password",
        ),
        (
            "fleet-pubsub",
            "fleet-pubsub",
            "googlePubSub",
            "googlePubSubConfig",
            "keyJson",
            "{\"type\":\"service_account\",\"project_id\":\"example-project\"}",
        ),
        (
            "orders-queue",
            "orders-queue",
            "sqs",
            "sqsConfig",
            "secretAccessKey",
            "example-aws-secret-access-key",
        ),
        (
            "telemetry-hub",
            "telemetry-hub",
            "azureEventHub",
            "azureEventHubConfig",
            "connectionString",
            "Endpoint=sb://example.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey=example",
        ),
        (
            "particle-product",
            "particle-product",
            "particle",
            "particleConfig",
            "accessToken",
            "example-particle-access-token",
        ),
        (
            "market-feed",
            "Market feed (prod)",
            "websocket",
            "websocketConfig",
            "",
            "",
        ),
    ];
    for (object, remote_name, type_, config, secret_field, secret_value) in expected {
        let id = world.remote_id(object);
        let remote = world.remote(&id).expect("the remote exists");
        assert_eq!(remote["name"], remote_name);
        assert_eq!(remote["integrationType"], type_);
        assert_eq!(remote["enabled"], true);
        if !secret_field.is_empty() {
            assert_eq!(
                remote[config][secret_field], secret_value,
                "{object}: the secret reached Losant"
            );
        }
    }
    let feed = world.remote(&world.remote_id("market-feed")).unwrap();
    assert_eq!(
        feed["websocketConfig"]["headers"],
        json!([{"headerKey": "X-Client", "headerValue": "losant"},
               {"headerKey": "Authorization", "headerValue": "Bearer example-websocket-token"}])
    );
    let mqtt = world.remote(&world.remote_id("factory-broker")).unwrap();
    assert_eq!(
        mqtt["topics"],
        json!(["factory/+/telemetry", "factory/alerts/#"])
    );
    assert_eq!(mqtt["mqttConfig"]["port"], 8883);
    assert_eq!(world.emulator.list_integrations().len(), 6);
    assert_eq!(world.count("POST", false), 6, "one create each");
}

/// Drift made in Losant is reverted within a resync, with exactly one PATCH, and a steady state
/// sends no PATCH at all.
fn drift_is_reverted_without_churn(echo: &str, server_defaults: bool) {
    let mut args = vec!["--secret-echo", echo];
    if server_defaults {
        args.push("--server-defaults");
    }
    let world = World::new(&format!("drift-{echo}"), &args);
    with_mqtt_secret(&world, "pw-1");
    world.apply_integration("broker", mqtt_spec("broker.example.com"));
    let id = world.remote_id("broker");
    // Several resyncs (3 s each) of a steady state: no writes.
    std::thread::sleep(Duration::from_secs(8));
    assert_eq!(world.count("PATCH", true), 0, "steady state sends no PATCH");

    let (status, _) = world.emulator.patch(
        &world.emulator.integration_path(&id),
        &json!({"mqttConfig": {"host": "rogue.example.com", "port": 1883, "protocol": "mqtt"}, "enabled": false}),
    );
    assert_eq!(status.as_u16(), 200);
    wait_until(Duration::from_secs(20), "the drift to be reverted", || {
        world.remote(&id).is_some_and(|r| {
            r["mqttConfig"]["host"] == "broker.example.com" && r["enabled"] == true
        })
    });
    let reverted = world.remote(&id).unwrap();
    assert_eq!(reverted["mqttConfig"]["port"], 8883);
    // Losant's view of the secret comes back too (stored in clear in the emulator's truth).
    assert_eq!(
        world.count("PATCH", true),
        2,
        "our drift PATCH and exactly one correction"
    );
    std::thread::sleep(Duration::from_secs(7));
    assert_eq!(
        world.count("PATCH", true),
        2,
        "no PATCH after the correction"
    );
    assert_eq!(world.events("DriftCorrected").len(), 1);
}

#[test]
fn drift_is_reverted_with_secrets_echoed_in_clear() {
    require_cluster!();
    drift_is_reverted_without_churn("clear", false);
}

#[test]
fn drift_is_reverted_with_secrets_omitted() {
    require_cluster!();
    drift_is_reverted_without_churn("omit", false);
}

#[test]
fn drift_is_reverted_with_secrets_masked_and_server_defaults() {
    require_cluster!();
    drift_is_reverted_without_churn("mask", true);
}

#[test]
fn drift_is_reverted_with_server_defaults() {
    require_cluster!();
    drift_is_reverted_without_churn("clear", true);
}

#[test]
fn spec_edits_and_secret_rotations_patch_and_a_deleted_remote_is_recreated() {
    require_cluster!();
    let world = World::new("edits", &[]);
    with_mqtt_secret(&world, "pw-1");
    world.apply_integration("broker", mqtt_spec("broker.example.com"));
    let id = world.remote_id("broker");

    let mut edited = mqtt_spec("broker2.example.com");
    edited["topics"] = json!(["plant/+/telemetry", "plant/alerts"]);
    world.apply_integration("broker", edited);
    wait_until(
        Duration::from_secs(20),
        "the spec edit to reach Losant",
        || {
            world.remote(&id).is_some_and(|r| {
                r["mqttConfig"]["host"] == "broker2.example.com"
                    && r["topics"].as_array().is_some_and(|t| t.len() == 2)
            })
        },
    );
    assert_eq!(world.count("PATCH", true), 1);
    assert_eq!(world.events("Updated").len(), 1);

    assert_eq!(world.remote(&id).unwrap()["mqttConfig"]["password"], "pw-1");
    with_mqtt_secret(&world, "pw-2");
    wait_until(
        Duration::from_secs(20),
        "the rotated secret to reach Losant",
        || {
            world
                .remote(&id)
                .is_some_and(|r| r["mqttConfig"]["password"] == "pw-2")
        },
    );
    assert_eq!(world.count("PATCH", true), 2, "one PATCH for the rotation");
    let status = get_object(world.name(), "integration/broker").unwrap()["status"].clone();
    assert!(
        status["appliedSecretVersions"]["mqtt"].is_string(),
        "{status}"
    );

    let (code, _) = world.emulator.delete(&world.emulator.integration_path(&id));
    assert_eq!(code.as_u16(), 200);
    let new_id = wait_for(
        Duration::from_secs(20),
        "the integration to be re-created",
        || {
            let object = get_object(world.name(), "integration/broker")?;
            let current = object["status"]["integrationId"].as_str()?.to_owned();
            (current != id).then_some(current)
        },
    );
    assert!(world.remote(&new_id).is_some());
    assert_eq!(world.remotes_named("broker").len(), 1);
    let recreated = world.events("Recreated");
    assert_eq!(recreated.len(), 1);
    let note = recreated[0]["note"].as_str().unwrap_or_default();
    assert!(note.contains(&id) && note.contains(&new_id), "{note}");
}

#[test]
fn deletion_follows_the_deletion_policy() {
    require_cluster!();
    let world = World::new("delete", &[]);
    with_mqtt_secret(&world, "pw");
    world.apply_integration("doomed", mqtt_spec("a.example.com"));
    let mut kept_spec = mqtt_spec("b.example.com");
    kept_spec["deletionPolicy"] = json!("Orphan");
    world.apply_integration("kept", kept_spec);
    let doomed = world.remote_id("doomed");
    let kept = world.remote_id("kept");
    kubectl_ok(&[
        "delete",
        "integration",
        "doomed",
        "kept",
        "-n",
        world.name(),
        "--timeout=60s",
    ]);
    assert!(world.remote(&doomed).is_none(), "Delete removes the remote");
    assert!(world.remote(&kept).is_some(), "Orphan keeps it");
    assert_eq!(world.emulator.stats()["includeWorkflowsTrue"], 0);
}

#[test]
fn an_existing_remote_is_adopted_and_orphaned_by_default() {
    require_cluster!();
    let world = World::new("adopt", &[]);
    with_mqtt_secret(&world, "pw");
    let existing = world.emulator.create_integration(&json!({
        "name": "legacy", "integrationType": "mqtt",
        "mqttConfig": {"host": "old.example.com", "port": 1883, "protocol": "mqtt"}
    }));
    let id = existing["id"].as_str().unwrap().to_owned();
    world.apply_integration("legacy", mqtt_spec("new.example.com"));
    let object = world.ready("legacy");
    assert_eq!(object["status"]["integrationId"], id.as_str());
    assert_eq!(object["status"]["origin"], "Adopted");
    assert_eq!(
        world.remote(&id).unwrap()["mqttConfig"]["host"],
        "new.example.com"
    );
    assert_eq!(world.count("POST", false), 1, "only the test's own create");
    assert_eq!(world.events("Adopted").len(), 1);
    kubectl_ok(&[
        "delete",
        "integration",
        "legacy",
        "-n",
        world.name(),
        "--timeout=60s",
    ]);
    assert!(
        world.remote(&id).is_some(),
        "an adopted integration is orphaned by default"
    );
}

#[test]
fn adoption_policy_never_and_ambiguous_names_write_nothing() {
    require_cluster!();
    let world = World::new("conflicts", &[]);
    with_mqtt_secret(&world, "pw");
    let body = json!({"name": "taken", "integrationType": "mqtt",
        "mqttConfig": {"host": "old.example.com", "port": 1883, "protocol": "mqtt"}});
    world.emulator.create_integration(&body);
    let mut never = mqtt_spec("new.example.com");
    never["name"] = json!("taken");
    never["adoptionPolicy"] = json!("Never");
    world.apply_integration("never", never);
    let object = wait_for_condition(
        world.name(),
        "integration/never",
        "Stalled",
        "True",
        READY_TIMEOUT,
    );
    assert_eq!(
        find_condition(&object, "Ready").unwrap()["reason"],
        "AlreadyExists"
    );

    let mut twin = body.clone();
    twin["name"] = json!("twice");
    world.emulator.create_integration(&twin);
    world.emulator.create_integration(&twin);
    let mut ambiguous = mqtt_spec("new.example.com");
    ambiguous["name"] = json!("twice");
    world.apply_integration("ambiguous", ambiguous);
    let object = wait_for_condition(
        world.name(),
        "integration/ambiguous",
        "Stalled",
        "True",
        READY_TIMEOUT,
    );
    assert_eq!(
        find_condition(&object, "Ready").unwrap()["reason"],
        "AmbiguousName"
    );
    assert_eq!(world.count("PATCH", true), 0);
    assert_eq!(world.count("POST", false), 3, "only the test's own creates");
    assert!(
        world
            .remotes_named("twice")
            .iter()
            .all(|r| r["mqttConfig"]["host"] == "old.example.com")
    );
}

#[test]
fn a_missing_secret_is_reported_and_recovers() {
    require_cluster!();
    let world = World::new("secrets", &[]);
    world.apply_integration("broker", mqtt_spec("broker.example.com"));
    let object = wait_for_condition(
        world.name(),
        "integration/broker",
        "Stalled",
        "True",
        READY_TIMEOUT,
    );
    let ready = find_condition(&object, "Ready").unwrap();
    assert_eq!(ready["reason"], "SecretNotFound");
    assert!(ready["message"].as_str().unwrap().contains("\"mqtt\""));

    world.ns.apply_secret("mqtt", &[("wrong-key", "x")]);
    wait_until(READY_TIMEOUT, "SecretKeyNotFound", || {
        world.condition("integration/broker", "Ready")["reason"] == "SecretKeyNotFound"
    });
    with_mqtt_secret(&world, "finally");
    world.ready("broker");
    assert_eq!(world.remotes_named("broker").len(), 1);
    assert!(
        world.events("SecretNotFound").len() == 1,
        "one warning event per transition"
    );
}

#[test]
fn a_wrong_token_makes_the_application_not_ready() {
    require_cluster!();
    install_crds();
    let ns = TestNamespace::new("token");
    let emulator = EmulatorProcess::start(&[]);
    ns.register_log("emulator", emulator.log_path());
    ns.create_secret("bad-token", &[("token", "not-the-token")]);
    ns.apply_ok(&losant_application_manifest(
        "app",
        emulator.application_id(),
        emulator.base_url(),
        "bad-token",
        "token",
    ));
    let _operator = OperatorProcess::start(ns.name(), &[]);
    let app = wait_for_condition(
        ns.name(),
        "losantapplication/app",
        "Stalled",
        "True",
        READY_TIMEOUT,
    );
    let ready = find_condition(&app, "Ready").unwrap();
    assert_eq!(ready["status"], "False");
    assert_eq!(ready["reason"], "Unauthorized");
    assert!(!ready["message"].as_str().unwrap().contains("not-the-token"));

    ns.create_secret("mqtt", &[("password", "pw")]);
    ns.apply_ok(&integration_manifest(
        "broker",
        &mqtt_spec("broker.example.com"),
    ));
    let object = wait_for_condition(
        ns.name(),
        "integration/broker",
        "Stalled",
        "True",
        READY_TIMEOUT,
    );
    assert_eq!(
        find_condition(&object, "Ready").unwrap()["reason"],
        "ApplicationNotReady"
    );
    let posts = emulator.stats()["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == "POST")
        .count();
    assert_eq!(
        posts, 0,
        "integrations do not call Losant while the token is bad"
    );

    ns.apply_secret("bad-token", &[("token", emulator.token())]);
    wait_for_condition(
        ns.name(),
        "integration/broker",
        "Ready",
        "True",
        READY_TIMEOUT,
    );
}

#[test]
fn a_steady_state_writes_no_status_and_no_events() {
    require_cluster!();
    let world = World::new("steady", &["--secret-echo", "mask", "--server-defaults"]);
    with_mqtt_secret(&world, "pw");
    world.apply_integration("broker", mqtt_spec("broker.example.com"));
    world.ready("broker");
    // Let the initial burst settle, then watch three resyncs.
    std::thread::sleep(Duration::from_secs(4));
    let before = get_object(world.name(), "integration/broker").unwrap();
    let events_before = kubectl_json(&[
        "get",
        "events.events.k8s.io",
        "-n",
        world.name(),
        "-o",
        "json",
    ])["items"]
        .as_array()
        .unwrap()
        .len();
    let app_before = get_object(world.name(), "losantapplication/app").unwrap();
    std::thread::sleep(Duration::from_secs(10));
    let after = get_object(world.name(), "integration/broker").unwrap();
    let events_after = kubectl_json(&[
        "get",
        "events.events.k8s.io",
        "-n",
        world.name(),
        "-o",
        "json",
    ])["items"]
        .as_array()
        .unwrap()
        .len();
    let app_after = get_object(world.name(), "losantapplication/app").unwrap();
    assert_eq!(
        before["metadata"]["resourceVersion"], after["metadata"]["resourceVersion"],
        "no status write"
    );
    assert_eq!(
        app_before["metadata"]["resourceVersion"],
        app_after["metadata"]["resourceVersion"]
    );
    assert_eq!(events_before, events_after, "no events");
    assert_eq!(world.count("PATCH", true), 0);
    assert!(
        world.operator.logs().contains("reconciled"),
        "the operator did resync meanwhile"
    );
}
