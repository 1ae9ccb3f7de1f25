//! Remote connection health and per-object modes, end to end on the real API server with the
//! emulator: the `Connected` condition through connect → disconnect → reconnect (Events on the
//! way down, no Losant call beyond the sweep's list), `managementPolicy: ObserveOnly` (zero
//! writes across create, drift and delete), `losant.io/paused` (zero calls; deletion waits or
//! orphans) and `losant.io/reconcile-requested-at` (a fresh read, recorded in status).

use std::time::{Duration, Instant};

use losant_operator::testkit::*;
use reqwest::Method;
use serde_json::{Value, json};

const ITEM: &str = "/applications/{applicationId}/integrations/{integrationId}";
const COLLECTION: &str = "/applications/{applicationId}/integrations";
const PASSWORD: &str = "pw-3f9c-secret";
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A namespace with an emulator, a verified `LosantApplication` `app`, the Secret `mqtt` and an
/// operator watching the namespace.
struct World {
    ns: TestNamespace,
    emulator: EmulatorProcess,
    _operator: OperatorProcess,
}

impl World {
    fn new(prefix: &str, emulator_args: &[&str], operator_args: &[&str]) -> World {
        install_crds();
        let ns = TestNamespace::new(prefix);
        let emulator = EmulatorProcess::start(emulator_args);
        ns.register_log("emulator", emulator.log_path());
        ns.install_application(&emulator, "app");
        ns.apply_secret("mqtt", &[("password", PASSWORD)]);
        let operator = OperatorProcess::start(ns.name(), operator_args);
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
            _operator: operator,
        }
    }

    fn name(&self) -> &str {
        self.ns.name()
    }

    fn apply(&self, name: &str, spec: &Value, annotations: Value) {
        let mut manifest: Value = json!({
            "apiVersion": "losant.io/v1alpha1", "kind": "Integration",
            "metadata": {"name": name, "annotations": annotations}, "spec": spec
        });
        if annotations.is_null() {
            manifest["metadata"]
                .as_object_mut()
                .unwrap()
                .remove("annotations");
        }
        self.ns.apply_ok(&manifest.to_string());
    }

    fn wait(&self, name: &str, type_: &str, status: &str) -> Value {
        let kind_name = format!("integration/{name}");
        wait_for_condition(self.name(), &kind_name, type_, status, READY_TIMEOUT)
    }

    fn object(&self, name: &str) -> Value {
        get_object(self.name(), &format!("integration/{name}")).expect("the object exists")
    }

    fn condition(&self, name: &str, type_: &str) -> Value {
        find_condition(&self.object(name), type_)
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// Requests to the integration routes by method, across everything the emulator served.
    fn count(&self, method: &str, route: &str) -> u64 {
        self.emulator.stats()["requests"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["method"] == method && r["route"] == route)
            .map(|r| r["count"].as_u64().unwrap_or(0))
            .sum()
    }

    /// Writes to Losant: POST, PATCH and DELETE of integrations.
    fn writes(&self) -> u64 {
        self.count("POST", COLLECTION) + self.count("PATCH", ITEM) + self.count("DELETE", ITEM)
    }

    /// Every request to the integration routes.
    fn calls(&self) -> u64 {
        self.writes() + self.count("GET", ITEM) + self.count("GET", COLLECTION)
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

    fn set_connection(&self, id: &str, body: Value) {
        let path = format!("/_emulator/integrations/{id}/connection");
        let (status, answer) = self.emulator.request(Method::PUT, &path, Some(&body));
        assert!(status.is_success(), "{status}: {answer}");
    }

    fn annotate(&self, name: &str, annotation: &str) {
        kubectl_ok(&[
            "annotate",
            "--overwrite",
            "-n",
            self.name(),
            &format!("integration/{name}"),
            annotation,
        ]);
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

fn observe_only(mut spec: Value) -> Value {
    spec["managementPolicy"] = json!("ObserveOnly");
    spec
}

#[test]
fn connection_transitions_are_reported_with_events_and_no_extra_calls() {
    require_cluster!();
    let world = World::new("connected", &["--connect-delay-ms", "300"], &[]);
    world.apply("broker", &mqtt_spec("broker.example.com"), Value::Null);
    let ready = world.wait("broker", "Ready", "True");
    let id = ready["status"]["integrationId"]
        .as_str()
        .unwrap()
        .to_owned();
    let connected = world.wait("broker", "Connected", "True");
    assert_eq!(connected["status"]["connection"]["state"], "Connected");

    // The remote end drops the connection and quotes the password back.
    let calls_before = (world.count("GET", ITEM), world.writes());
    world.set_connection(
        &id,
        json!({"connected": false, "error": format!("Not authorized: bad password {PASSWORD}")}),
    );
    let down = world.wait("broker", "Connected", "False");
    let condition = find_condition(&down, "Connected").unwrap();
    assert_eq!(condition["reason"], "Disconnected");
    let message = condition["message"].as_str().unwrap();
    assert!(message.contains("Not authorized"), "{message}");
    assert!(
        !down.to_string().contains(PASSWORD),
        "no secret in status: {down}"
    );
    assert!(
        down["status"]["connection"]["nextAttempt"].is_string(),
        "{down}"
    );
    assert!(down["status"]["connection"]["sinceUnix"].is_i64(), "{down}");
    assert_eq!(
        find_condition(&down, "Ready").unwrap()["status"],
        "True",
        "Ready holds"
    );
    // Several more sweeps: one Event for the transition, not one per sweep.
    std::thread::sleep(Duration::from_secs(8));
    let events = world.events("Disconnected");
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(!events[0].to_string().contains(PASSWORD));
    assert_eq!(
        (world.count("GET", ITEM), world.writes()),
        calls_before,
        "connection state comes from the sweep's list: no read by id, no write"
    );

    world.set_connection(&id, json!({"connected": true}));
    let up = world.wait("broker", "Connected", "True");
    assert_eq!(up["status"]["connection"]["state"], "Connected");
    assert!(up["status"]["connection"]["lastError"].is_null(), "{up}");
    assert_eq!(world.events("Disconnected").len(), 1);
}

#[test]
fn observe_only_never_writes_and_reports_drift() {
    require_cluster!();
    let world = World::new("observe", &[], &[]);
    let spec = json!({
        "applicationRef": {"name": "app"}, "integrationType": "mqtt",
        "mqttConfig": {"host": "observed.example.com", "port": 8883, "protocol": "mqtts"}
    });
    let remote = world.emulator.create_integration(&json!({
        "name": "observed", "integrationType": "mqtt",
        "mqttConfig": {"host": "observed.example.com", "port": 8883, "protocol": "mqtts"}
    }));
    let id = remote["id"].as_str().unwrap().to_owned();
    let ours = world.writes();
    world.apply("observed", &observe_only(spec.clone()), Value::Null);
    world.apply(
        "missing",
        &observe_only(mqtt_spec("nowhere.example.com")),
        Value::Null,
    );
    let found = world.wait("observed", "Ready", "True");
    assert_eq!(
        find_condition(&found, "Ready").unwrap()["reason"],
        "Observed"
    );
    assert_eq!(found["status"]["integrationId"], id.as_str());
    assert!(found["metadata"]["finalizers"].is_null(), "{found}");
    let missing = world.wait("missing", "Stalled", "True");
    assert_eq!(
        find_condition(&missing, "Stalled").unwrap()["reason"],
        "NotFound"
    );

    // Drift made in Losant is reported, named, and left alone.
    let path = world.emulator.integration_path(&id);
    let (status, _) = world.emulator.patch(
        &path,
        &json!({"mqttConfig": {"host": "moved.example.com", "port": 8883, "protocol": "mqtts"}}),
    );
    assert!(status.is_success());
    let ours = ours + 1;
    let drifted = world.wait("observed", "Stalled", "True");
    let stalled = find_condition(&drifted, "Stalled").unwrap();
    assert_eq!(stalled["reason"], "DriftDetected");
    assert!(
        stalled["message"].as_str().unwrap().contains("mqttConfig"),
        "{stalled}"
    );
    kubectl_ok(&[
        "delete",
        "-n",
        world.name(),
        "integration/observed",
        "integration/missing",
    ]);
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(world.writes(), ours, "ObserveOnly wrote nothing to Losant");
    assert_eq!(
        world.emulator.list_integrations().len(),
        1,
        "nothing created or deleted"
    );

    // Full converges (reverting the drift); back to ObserveOnly stops writes at once.
    world.apply("observed", &spec, Value::Null);
    world.wait("observed", "Ready", "True");
    let host = |world: &World| world.remote_host(&id);
    wait_until(READY_TIMEOUT, "the drift reverted", || {
        host(&world) == "observed.example.com"
    });
    world.apply("observed", &observe_only(spec), Value::Null);
    wait_until(READY_TIMEOUT, "observing again", || {
        world.condition("observed", "Ready")["reason"] == "Observed"
    });
    let settled = world.writes();
    world.emulator.patch(
        &path,
        &json!({"mqttConfig": {"host": "again.example.com", "port": 8883, "protocol": "mqtts"}}),
    );
    world.wait("observed", "Stalled", "True");
    assert_eq!(world.writes(), settled + 1, "only the test's own PATCH");
}

/// An observer writes nothing, so it claims nothing: an older observer of a remote neither
/// blocks a younger object that manages it (no `ConflictingOwner` either way), nor is refused
/// itself, and the manager's writes are the only ones.
#[test]
fn an_observer_never_blocks_the_manager_of_its_remote() {
    require_cluster!();
    let world = World::new("observer", &[], &[]);
    let config = json!({"host": "shared.example.com", "port": 8883, "protocol": "mqtts"});
    let remote = world.emulator.create_integration(&json!({
        "name": "shared", "integrationType": "mqtt", "mqttConfig": config
    }));
    let id = remote["id"].as_str().unwrap().to_owned();
    let observed = json!({
        "applicationRef": {"name": "app"}, "integrationType": "mqtt",
        "name": "shared", "mqttConfig": config
    });
    world.apply("watcher", &observe_only(observed.clone()), Value::Null);
    world.wait("watcher", "Ready", "True");
    let before = world.writes();
    // Younger, and managing the same remote by its name (adopting it).
    let mut managed = observed;
    managed["mqttConfig"]["host"] = json!("managed.example.com");
    world.apply("manager", &managed, Value::Null);
    let manager = world.wait("manager", "Ready", "True");
    assert_eq!(manager["status"]["integrationId"], id.as_str(), "{manager}");
    wait_until(READY_TIMEOUT, "the manager's change in Losant", || {
        world.remote_host(&id) == "managed.example.com"
    });
    assert_eq!(world.writes(), before + 1, "one PATCH, the manager's");
    // The observer sees the manager's change as drift, and is never refused.
    let watcher = world.wait("watcher", "Stalled", "True");
    assert_eq!(
        find_condition(&watcher, "Stalled").unwrap()["reason"],
        "DriftDetected",
        "{watcher}"
    );
    assert_eq!(watcher["status"]["integrationId"], id.as_str());
}

impl World {
    fn remote_host(&self, id: &str) -> String {
        let (_, body) = self.emulator.get(&format!(
            "{}?_links=false",
            self.emulator.integration_path(id)
        ));
        body["mqttConfig"]["host"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

#[test]
fn a_paused_object_makes_no_call_and_deletion_waits_or_orphans() {
    require_cluster!();
    let world = World::new("paused", &[], &[]);
    world.apply("held", &mqtt_spec("held.example.com"), Value::Null);
    world.apply(
        "kept",
        &mqtt_spec("kept.example.com"),
        json!({"losant.io/paused": "true"}),
    );
    let held = world.wait("held", "Ready", "True");
    let held_id = held["status"]["integrationId"].as_str().unwrap().to_owned();
    wait_until(READY_TIMEOUT, "kept says Paused", || {
        world.condition("kept", "Ready")["reason"] == "Paused"
    });
    assert!(world.object("kept")["status"]["integrationId"].is_null());

    world.annotate("held", "losant.io/paused=true");
    wait_until(READY_TIMEOUT, "held says Paused", || {
        world.condition("held", "Ready")["reason"] == "Paused"
    });
    let version = world.object("held")["metadata"]["resourceVersion"].clone();
    let calls = world.calls();
    // An edit while paused: no call, no status churn, across several sweeps.
    world.apply(
        "held",
        &mqtt_spec("edited.example.com"),
        json!({"losant.io/paused": "true"}),
    );
    std::thread::sleep(Duration::from_secs(8));
    assert_eq!(world.calls(), calls, "a paused object costs no Losant call");
    let after = world.object("held");
    assert_eq!(
        after["status"]["observedGeneration"], 1,
        "the edit is not acted on"
    );
    assert_ne!(
        after["metadata"]["resourceVersion"], version,
        "(the edit itself)"
    );
    let paused_events = world.events("Paused");
    assert_eq!(paused_events.len(), 2, "one per object: {paused_events:?}");

    // Deleting a paused object whose remote would be deleted waits, and says so.
    kubectl_ok(&[
        "delete",
        "-n",
        world.name(),
        "integration/held",
        "--wait=false",
    ]);
    wait_until(READY_TIMEOUT, "the deletion waits and says why", || {
        world.condition("held", "Ready")["message"]
            .as_str()
            .is_some_and(|m| m.contains("deletion waits"))
    });
    std::thread::sleep(Duration::from_secs(4));
    assert!(get_object(world.name(), "integration/held").is_some());
    assert_eq!(world.calls(), calls, "still no call");
    // Unpausing lets it finish: the remote goes with it.
    world.annotate("held", "losant.io/paused=false");
    wait_until(READY_TIMEOUT, "held is gone", || {
        get_object(world.name(), "integration/held").is_none()
    });
    let (status, _) = world
        .emulator
        .get(&world.emulator.integration_path(&held_id));
    assert_eq!(status.as_u16(), 404, "deleted in Losant after unpausing");

    // A paused object that would only orphan its remote goes at once, without a call.
    let mut orphan = mqtt_spec("orphan.example.com");
    orphan["deletionPolicy"] = json!("Orphan");
    world.apply("orphan", &orphan, Value::Null);
    let orphan_id = world.wait("orphan", "Ready", "True")["status"]["integrationId"]
        .as_str()
        .unwrap()
        .to_owned();
    world.annotate("orphan", "losant.io/paused=true");
    wait_until(READY_TIMEOUT, "orphan says Paused", || {
        world.condition("orphan", "Ready")["reason"] == "Paused"
    });
    let calls = world.calls();
    kubectl_ok(&["delete", "-n", world.name(), "integration/orphan"]);
    assert_eq!(world.calls(), calls);
    let (status, _) = world
        .emulator
        .get(&world.emulator.integration_path(&orphan_id));
    assert_eq!(status.as_u16(), 200, "orphaned, not deleted");
}

#[test]
fn a_requested_reconcile_reads_losant_afresh_and_is_recorded() {
    require_cluster!();
    // A resync far away: only the request can make the operator look now.
    let world = World::new("requested", &[], &["--resync-interval", "600s"]);
    world.apply("broker", &mqtt_spec("broker.example.com"), Value::Null);
    let id = world.wait("broker", "Ready", "True")["status"]["integrationId"]
        .as_str()
        .unwrap()
        .to_owned();
    std::thread::sleep(Duration::from_secs(2));
    let path = world.emulator.integration_path(&id);
    world.emulator.patch(
        &path,
        &json!({"mqttConfig": {"host": "drifted.example.com"}}),
    );
    let asked = Instant::now();
    world.annotate(
        "broker",
        "losant.io/reconcile-requested-at=2026-12-03T12:00:00Z",
    );
    wait_until(Duration::from_secs(30), "the request handled", || {
        world.object("broker")["status"]["lastHandledReconcileAt"] == "2026-12-03T12:00:00Z"
    });
    let handled_in = asked.elapsed();
    assert_eq!(
        world.remote_host(&id),
        "broker.example.com",
        "the drift was seen and reverted"
    );
    assert!(
        handled_in < Duration::from_secs(2),
        "handled within 2 s at idle (took {handled_in:?})"
    );
    // The same value again is not a new request.
    let version = world.object("broker")["metadata"]["resourceVersion"].clone();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        world.object("broker")["metadata"]["resourceVersion"],
        version
    );
}
