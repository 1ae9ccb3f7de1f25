//! Surviving the environment, end to end on the real API server: an object this version of the
//! operator cannot decode (stored while the schema was looser) never stops the others.

use std::time::Duration;

use losant_operator::testkit::*;
use serde_json::{Value, json};

const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Loosens the installed Integration CRD as an older (or newer) schema might have been:
/// `integrationType` takes any string. `apply_crds` puts the real one back.
fn loosen_integration_type() {
    let patch = json!([{
        "op": "remove",
        "path": "/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/integrationType/enum"
    }]);
    kubectl_ok(&[
        "patch",
        "crd",
        "integrations.losant.io",
        "--type",
        "json",
        "-p",
        &patch.to_string(),
    ]);
}

fn sqs_spec(queue: &str) -> Value {
    json!({
        "applicationRef": {"name": "app"}, "integrationType": "sqs",
        "sqsConfig": {"queueUrl": format!("https://sqs.us-east-1.amazonaws.com/1/{queue}"),
            "region": "us-east-1"}
    })
}

/// Runs alone (`.config/nextest.toml`): the CRD is loosened for a moment, which other tests
/// that expect rejections must not see.
#[test]
fn exclusive_one_undecodable_object_never_stops_the_others() {
    require_cluster!();
    install_crds();
    let ns = TestNamespace::new("undecodable");
    let emulator = EmulatorProcess::start(&[]);
    ns.register_log("emulator", emulator.log_path());
    ns.install_application(&emulator, "app");
    // The bad object alone uses `app2`: its in-use finalizer shows the stand-in still counts.
    ns.install_application(&emulator, "app2");
    loosen_integration_type();
    let pigeon = json!({"applicationRef": {"name": "app2"}, "integrationType": "carrierPigeon"});
    let stored = wait_for(Duration::from_secs(20), "the loosened schema", || {
        ns.apply(&integration_manifest("pigeon", &pigeon)).ok()
    });
    assert!(stored.contains("pigeon"), "{stored}");
    // The real CRD back at once (`install_crds` applies once per process, and the other tests
    // of this binary may share the process).
    apply_crds().expect("the real CRDs applied again");
    ns.apply_ok(&integration_manifest("before", &sqs_spec("before")));

    let operator = OperatorProcess::start(ns.name(), &[]);
    wait_for_condition(
        ns.name(),
        "integration/before",
        "Ready",
        "True",
        READY_TIMEOUT,
    );
    ns.apply_ok(&integration_manifest("after", &sqs_spec("after")));
    wait_for_condition(
        ns.name(),
        "integration/after",
        "Ready",
        "True",
        READY_TIMEOUT,
    );

    let events = wait_for(READY_TIMEOUT, "a Warning Event on the bad object", || {
        let list = kubectl_json(&["get", "events.events.k8s.io", "-n", ns.name(), "-o", "json"]);
        let found: Vec<Value> = list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["reason"] == "Undecodable" && e["regarding"]["name"] == "pigeon")
            .cloned()
            .collect();
        (!found.is_empty()).then_some(found)
    });
    assert_eq!(events[0]["type"], "Warning");
    let note = events[0]["note"].as_str().unwrap();
    assert!(note.contains("carrierPigeon"), "{note}");
    let logs = operator.logs();
    assert!(
        logs.lines()
            .any(|l| l.contains("cannot decode this object") && l.contains("pigeon")),
        "a log line names it"
    );
    let metrics = operator_metrics(&logs);
    assert!(
        metrics.contains(r#"losant_operator_objects{kind="Integration",reason="Undecodable"} 1"#),
        "{metrics}"
    );
    let bad = get_object(ns.name(), "integration/pigeon").unwrap();
    assert!(bad["status"].is_null(), "no status written to it: {bad}");
    assert!(
        bad["metadata"]["finalizers"].is_null(),
        "no finalizer added: {bad}"
    );

    // It still uses its application: its remote may need deleting with that token.
    let in_use = |name: &str| {
        get_object(ns.name(), &format!("losantapplication/{name}")).is_some_and(|app| {
            app["metadata"]["finalizers"]
                .as_array()
                .is_some_and(|f| f.iter().any(|f| f == "losant.io/in-use"))
        })
    };
    wait_until(
        READY_TIMEOUT,
        "app2 in use by the undecodable object",
        || in_use("app2"),
    );

    // Fixed (and moved to `app`), it is picked up at once, like any object.
    let fix = json!({"spec": sqs_spec("pigeon")});
    kubectl_ok(&[
        "patch",
        "integration/pigeon",
        "-n",
        ns.name(),
        "--type",
        "merge",
        "-p",
        &fix.to_string(),
    ]);
    wait_for_condition(
        ns.name(),
        "integration/pigeon",
        "Ready",
        "True",
        READY_TIMEOUT,
    );
    let metrics = operator_metrics(&operator.logs());
    assert!(
        metrics.contains(r#"losant_operator_objects{kind="Integration",reason="Undecodable"} 0"#),
        "{metrics}"
    );
    assert_eq!(emulator.list_integrations().len(), 3);
    wait_until(READY_TIMEOUT, "app2 no longer in use", || !in_use("app2"));
}

/// The operator's `/metrics`, at the address its log names.
pub(crate) fn operator_metrics(log: &str) -> String {
    let addr = log
        .lines()
        .find_map(|line| {
            let rest = line.split("metrics server listening on ").nth(1)?;
            let addr: String = rest
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != '"')
                .collect();
            (!addr.is_empty()).then_some(addr)
        })
        .expect("the metrics address in the log");
    let url = format!("http://{addr}/metrics");
    let output = std::process::Command::new("curl")
        .args(["-sf", &url])
        .output()
        .expect("curl runs");
    String::from_utf8_lossy(&output.stdout).into_owned()
}
