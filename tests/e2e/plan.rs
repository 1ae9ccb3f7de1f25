//! `losant-operator plan`, end to end on the real API server with the emulator over HTTP:
//! - plan equals controller: for a corpus of every verdict kind (create for each of the six
//!   types, update of several fields, a rotated Secret, adopt with and without a patch,
//!   unchanged, each refusal, a pending create, ObserveOnly with and without a remote, paused),
//!   `plan -o json` is taken, then the manifests are applied and the operator started, and what
//!   it did — each create and patch with the fields its body set (the emulator's write log),
//!   and each object's condition — is exactly what the plan said;
//! - read-only: the plan makes no write to Losant (no POST, PATCH or DELETE), one list per
//!   application page, and changes no object in the cluster (resourceVersions unchanged; the
//!   API server's audit log shows only get, list and watch in the namespace meanwhile);
//! - `--prune`: what deleting objects gone from the input would do (delete or orphan);
//! - paging past 1,000 remotes;
//! - bad input files: exit 2 and an error naming the file and the document.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use losant_operator::testkit::*;
use reqwest::Method;
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(90);
const COLLECTION: &str = "/applications/{applicationId}/integrations";
const ITEM: &str = "/applications/{applicationId}/integrations/{integrationId}";
/// Secret values (found nowhere else, so any output holding one is a leak).
pub const PASSWORD: &str = "plan-pw-7c1e9a-secret";
const ROTATED: &str = "plan-pw-rotated-55d0b-secret";

/// Runs `losant-operator plan ARGS` (http to 127.0.0.1 allowed) with `stdin`:
/// `(exit code, stdout, stderr)`.
pub fn run_plan(args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut child = Command::new(operator_binary())
        .arg("plan")
        .args(args)
        .args(["--allowed-http-hosts", "127.0.0.1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("losant-operator plan starts");
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.unwrap_or_default().as_bytes())
        .expect("stdin written");
    drop(input);
    let out = child.wait_with_output().expect("plan finishes");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Writes `documents` as one multi-document YAML file (JSON documents are YAML).
pub fn write_input(name: &str, documents: &[String]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("plan-e2e-{}", rand::random::<u32>()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let path = dir.join(name);
    // As YAML (kubectl reads a file that starts with `{` as one JSON object).
    let yaml: Vec<String> = documents
        .iter()
        .map(|doc| match serde_json::from_str::<Value>(doc) {
            Ok(value) => serde_saphyr::to_string(&value).expect("YAML"),
            Err(_) => doc.clone(),
        })
        .collect();
    std::fs::write(&path, yaml.join("---\n")).expect("input written");
    path
}

fn object(name: &str, spec: &Value, annotations: Value) -> String {
    let mut manifest = json!({
        "apiVersion": "losant.io/v1alpha1", "kind": "Integration",
        "metadata": {"name": name}, "spec": spec,
    });
    if !annotations.is_null() {
        manifest["metadata"]["annotations"] = annotations;
    }
    manifest.to_string()
}

fn sqs(queue: &str) -> Value {
    json!({"applicationRef": {"name": "app"}, "integrationType": "sqs",
           "sqsConfig": {"queueUrl": queue}})
}

fn mqtt(host: &str, secret: &str) -> Value {
    json!({"applicationRef": {"name": "app"}, "integrationType": "mqtt",
           "topics": ["plant/+/in"],
           "mqttConfig": {"host": host, "port": 8883, "protocol": "mqtts", "username": "u",
                          "passwordSecretRef": {"name": secret, "key": "password"}}})
}

/// One spec of each of the six types, with Secret-bearing fields where the type has them.
fn six_types() -> Vec<(&'static str, Value)> {
    let base = |t: &str| json!({"applicationRef": {"name": "app"}, "integrationType": t});
    let reference = |key: &str| json!({"name": "creds", "key": key});
    let mut pubsub = base("googlePubSub");
    pubsub["googlePubSubConfig"] =
        json!({"projectId": "p", "keyJsonSecretRef": reference("key-json")});
    let mut azure = base("azureEventHub");
    azure["azureEventHubConfig"] = json!({"hubName": "hub", "consumerGroup": "$Default",
        "connectionStringSecretRef": reference("connection-string")});
    let mut particle = base("particle");
    particle["particleConfig"] = json!({"accessTokenSecretRef": reference("access-token")});
    let mut websocket = base("websocket");
    websocket["websocketConfig"] = json!({"url": "wss://stream.example.com/x",
        "passwordSecretRef": reference("password"),
        "headers": [{"headerKey": "Authorization", "headerValueSecretRef": reference("password")}]});
    let mut queue = sqs("https://sqs.us-east-1.amazonaws.com/1/type");
    queue["sqsConfig"]["secretAccessKeySecretRef"] = reference("password");
    vec![
        ("type-mqtt", mqtt("broker.example.com", "creds")),
        ("type-pubsub", pubsub),
        ("type-azure", azure),
        ("type-sqs", queue),
        ("type-particle", particle),
        ("type-websocket", websocket),
    ]
}

/// Requests to `route` by `method`.
fn count(stats: &Value, method: &str, route: &str) -> u64 {
    stats["requests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["method"] == method && r["route"] == route)
        .map(|r| r["count"].as_u64().unwrap_or(0))
        .sum()
}

fn writes(stats: &Value) -> u64 {
    count(stats, "POST", COLLECTION) + count(stats, "PATCH", ITEM) + count(stats, "DELETE", ITEM)
}

fn reset_stats(emulator: &EmulatorProcess) {
    let (status, body) = emulator.request(Method::POST, "/_emulator/reset-stats", None);
    assert!(status.is_success(), "{status}: {body}");
}

/// `namespace/kind/name → resourceVersion` of everything plan may read.
fn resource_versions(namespace: &str) -> BTreeMap<String, String> {
    let list = kubectl_json(&[
        "get",
        "integrations,losantapplications,secrets",
        "-n",
        namespace,
        "-o",
        "json",
    ]);
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| {
            let key = format!(
                "{}/{}",
                o["kind"].as_str().unwrap_or(""),
                o["metadata"]["name"]
            );
            (key, o["metadata"]["resourceVersion"].to_string())
        })
        .collect()
}

/// The plan's items by object name.
fn items(report: &Value) -> BTreeMap<String, Value> {
    report["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| (i["name"].as_str().expect("a name").to_owned(), i.clone()))
        .collect()
}

fn sorted(values: &Value) -> Vec<String> {
    let mut out: Vec<String> = values
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    out.sort();
    out
}

/// Waits until the object shows what the operator does for `verdict`: its generation observed
/// (and Ready for writes), or the refusal's reason.
fn wait_settled(namespace: &str, name: &str, verdict: &Value) {
    let kind_name = format!("integration/{name}");
    let action = verdict["action"].as_str().unwrap_or_default().to_owned();
    wait_until(TIMEOUT, &format!("{name} to settle as {action}"), || {
        let Some(obj) = get_object(namespace, &kind_name) else {
            return false;
        };
        let ready = find_condition(&obj, "Ready")
            .cloned()
            .unwrap_or(Value::Null);
        let observed = obj["status"]["observedGeneration"] == obj["metadata"]["generation"];
        match action.as_str() {
            "create" | "update" | "adopt" | "unchanged" => observed && ready["status"] == "True",
            "observe" => observed,
            _ => ready["reason"] == verdict["reason"],
        }
    });
}

/// What the planned verdicts must be, by object.
fn expected() -> Vec<(&'static str, &'static str, Option<&'static str>)> {
    let mut out = vec![
        ("managed-update", "update", None),
        ("managed-same", "unchanged", None),
        ("managed-secret", "update", None),
        ("owner-a", "unchanged", None),
        ("owner-b", "refuse", Some("ConflictingOwner")),
        ("adopt-same", "adopt", None),
        ("adopt-patch", "adopt", None),
        ("ambiguous", "refuse", Some("AmbiguousName")),
        ("exists-never", "refuse", Some("AlreadyExists")),
        ("immutable", "refuse", Some("ImmutableField")),
        ("observe-drift", "observe", None),
        ("observe-missing", "refuse", Some("NotFound")),
        ("observe-shared", "observe", None),
        ("invalid", "refuse", Some("InvalidSpec")),
        ("pending", "wait", Some("CreatePending")),
        ("paused", "paused", Some("Paused")),
    ];
    out.extend(
        six_types()
            .into_iter()
            .map(|(name, _)| (name, "create", None)),
    );
    out
}

/// Secrets, the application, the remotes found by name, and the objects the operator manages
/// before the plan (then stopped).
fn corpus_world(ns: &TestNamespace, emulator: &EmulatorProcess) {
    ns.install_application(emulator, "app");
    let pem = "-----BEGIN PRIVATE KEY-----\nMIIBplan\n-----END PRIVATE KEY-----\n";
    ns.create_secret(
        "creds",
        &[
            ("password", PASSWORD),
            ("short", "ab"),
            ("key-json", r#"{"type":"service_account"}"#),
            (
                "connection-string",
                "Endpoint=sb://x.servicebus.windows.net/;SharedAccessKey=k",
            ),
            ("access-token", PASSWORD),
            ("private-key", pem),
        ],
    );
    ns.apply_secret("rotating", &[("password", PASSWORD)]);
    let remote = |name: &str, queue: &str| {
        emulator.create_integration(&json!({"name": name, "integrationType": "sqs",
            "enabled": true, "sqsConfig": {"queueUrl": queue}}));
    };
    // Adopting sends the config (values never sent to this place) unless there is none: a
    // Pub/Sub integration needs no config block.
    emulator.create_integration(
        &json!({"name": "adopt-same", "integrationType": "googlePubSub",
        "enabled": true, "topics": ["plant-events"]}),
    );
    remote("adopt-patch", "https://q/old");
    remote("ambiguous", "https://q/a1");
    remote("ambiguous", "https://q/a2");
    remote("exists-never", "https://q/never");
    remote("observe-drift", "https://q/old");
    emulator.create_integration(&json!({"name": "immutable", "integrationType": "mqtt",
        "enabled": true, "mqttConfig": {"host": "h.example.com", "port": 1883, "protocol": "mqtt"}}));
    ns.apply_ok(&object(
        "managed-update",
        &mqtt("old.example.com", "creds"),
        Value::Null,
    ));
    ns.apply_ok(&object(
        "managed-same",
        &sqs("https://q/same-managed"),
        Value::Null,
    ));
    ns.apply_ok(&object(
        "managed-secret",
        &mqtt("s.example.com", "rotating"),
        Value::Null,
    ));
    let mut shared = sqs("https://q/shared");
    shared["name"] = json!("shared");
    ns.apply_ok(&object("owner-a", &shared, Value::Null));
    let operator = OperatorProcess::start(ns.name(), &["--create-grace-period", "10m"]);
    ns.register_log("operator (before the plan)", operator.log_path());
    for name in [
        "managed-update",
        "managed-same",
        "managed-secret",
        "owner-a",
    ] {
        let kind_name = format!("integration/{name}");
        wait_for_condition(ns.name(), &kind_name, "Ready", "True", TIMEOUT);
    }
    drop(operator);
    ns.apply_secret("rotating", &[("password", ROTATED)]);
}

/// The manifests planned, then applied.
fn corpus_input(emulator: &EmulatorProcess) -> Vec<String> {
    let mut update = mqtt("new.example.com", "creds");
    update["enabled"] = json!(false);
    update["topics"] = json!(["plant/+/out", "plant/+/in"]);
    let mut shared = sqs("https://q/shared");
    shared["name"] = json!("shared");
    let pubsub = json!({"applicationRef": {"name": "app"}, "integrationType": "googlePubSub",
                        "topics": ["plant-events"]});
    let mut never = sqs("https://q/never");
    never["adoptionPolicy"] = json!("Never");
    let observe = |queue: &str| {
        let mut spec = sqs(queue);
        spec["managementPolicy"] = json!("ObserveOnly");
        spec
    };
    // Observes owner-a's remote: an observer claims nothing, so no ConflictingOwner.
    let mut observe_shared = observe("https://q/shared");
    observe_shared["name"] = json!("shared");
    let mut invalid = mqtt("i.example.com", "creds");
    invalid["mqttConfig"]["privateKeySecretRef"] = json!({"name": "creds", "key": "short"});
    let marker = json!({"at": jiff::Timestamp::now().to_string(),
        "applicationId": emulator.application_id(), "name": "pending"});
    let mut docs = vec![
        object("managed-update", &update, Value::Null),
        object("managed-same", &sqs("https://q/same-managed"), Value::Null),
        object(
            "managed-secret",
            &mqtt("s.example.com", "rotating"),
            Value::Null,
        ),
        object("owner-a", &shared, Value::Null),
        object("owner-b", &shared, Value::Null),
        object("adopt-same", &pubsub, Value::Null),
        object("adopt-patch", &sqs("https://q/new"), Value::Null),
        object("ambiguous", &sqs("https://q/a3"), Value::Null),
        object("exists-never", &never, Value::Null),
        object("immutable", &sqs("https://q/immutable"), Value::Null),
        object("observe-drift", &observe("https://q/new"), Value::Null),
        object(
            "observe-missing",
            &observe("https://q/missing"),
            Value::Null,
        ),
        object("observe-shared", &observe_shared, Value::Null),
        object("invalid", &invalid, Value::Null),
        object(
            "pending",
            &sqs("https://q/pending"),
            json!({"losant.io/create-pending": marker.to_string()}),
        ),
        object(
            "paused",
            &sqs("https://q/paused"),
            json!({"losant.io/paused": "true"}),
        ),
    ];
    docs.extend(
        six_types()
            .iter()
            .map(|(name, spec)| object(name, spec, Value::Null)),
    );
    docs
}

/// The plan says what was expected of each case, field by field where it matters.
fn check_verdicts(report: &Value) {
    let items = items(report);
    for (name, action, reason) in expected() {
        let item = &items[name];
        assert_eq!(item["action"], action, "{name}: {item:#}");
        if let Some(reason) = reason {
            assert_eq!(item["reason"], reason, "{name}: {item:#}");
        }
    }
    assert_eq!(
        sorted(&items["managed-update"]["sends"]),
        ["enabled", "mqttConfig", "topics"]
    );
    let fields: BTreeMap<String, Value> = items["managed-update"]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| {
            (
                f["field"].as_str().unwrap_or_default().to_owned(),
                f.clone(),
            )
        })
        .collect();
    assert_eq!(fields["enabled"]["old"], true);
    assert_eq!(fields["enabled"]["new"], false);
    assert_eq!(fields["mqttConfig.host"]["old"], "old.example.com");
    assert_eq!(fields["mqttConfig.host"]["new"], "new.example.com");
    let secret = |name: &str| {
        items[name]["fields"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|f| f["field"] == "mqttConfig.password")
            .map(|f| f["secret"].clone())
    };
    assert_eq!(
        secret("managed-update"),
        Some(json!({"name": "creds", "key": "password", "changed": false}))
    );
    assert_eq!(
        secret("managed-secret"),
        Some(json!({"name": "rotating", "key": "password", "changed": true}))
    );
    assert_eq!(sorted(&items["managed-secret"]["sends"]), ["mqttConfig"]);
    assert!(
        items["adopt-same"]["sends"].is_null(),
        "adopting an equal remote sends nothing"
    );
    assert_eq!(sorted(&items["adopt-patch"]["sends"]), ["sqsConfig"]);
    assert_eq!(
        items["observe-drift"]["fields"][0]["field"],
        "sqsConfig.queueUrl"
    );
    assert_eq!(report["changes"], true);
}

#[test]
fn plan_equals_what_the_operator_then_does() {
    require_cluster!();
    install_crds();
    let ns = TestNamespace::new("plan");
    let emulator = EmulatorProcess::start(&[]);
    ns.register_log("emulator", emulator.log_path());
    corpus_world(&ns, &emulator);
    let input = write_input("corpus.yaml", &corpus_input(&emulator));
    let input = input.to_str().expect("a UTF-8 path");
    let before = resource_versions(ns.name());
    reset_stats(&emulator);
    let started = jiff::Timestamp::now();

    let args = ["-f", input, "-n", ns.name(), "--create-grace-period", "10m"];
    let (code, json_out, stderr) = run_plan(&[&args[..], &["-o", "json"]].concat(), None);
    assert_eq!(code, 1, "changes: exit 1; stderr: {stderr}");
    let (text_code, text, _) = run_plan(&args, None);
    assert_eq!(text_code, 1);
    let stats = emulator.stats();
    assert_eq!(writes(&stats), 0, "plan wrote to Losant: {stats:#}");
    assert_eq!(
        count(&stats, "GET", COLLECTION),
        2,
        "one list per run (two runs): {stats:#}"
    );
    assert_eq!(count(&stats, "GET", ITEM), 0, "{stats:#}");
    assert_eq!(
        resource_versions(ns.name()),
        before,
        "plan changed the cluster"
    );
    // The API server's own record: every request in the namespace meanwhile only read.
    let requests = audit_events_since(started, &[ns.name()]);
    assert!(!requests.is_empty(), "the audit log shows plan's reads");
    let writes: Vec<&Value> = requests
        .iter()
        .filter(|e| !matches!(e["verb"].as_str(), Some("get" | "list" | "watch")))
        .collect();
    assert!(
        writes.is_empty(),
        "plan wrote to the API server: {writes:#?}"
    );
    for output in [&json_out, &text, &stderr] {
        assert!(
            !output.contains(PASSWORD) && !output.contains(ROTATED),
            "a secret leaked:\n{output}"
        );
    }
    assert!(
        text.contains("~ mqttConfig.password: (secret from rotating/password: changed)"),
        "{text}"
    );
    assert!(text.contains("~ enabled: true → false"), "{text}");
    let report: Value = serde_json::from_str(&json_out).expect("JSON");
    check_verdicts(&report);

    // Now the operator: it must do exactly what the plan said.
    reset_stats(&emulator);
    kubectl_ok(&["apply", "-n", ns.name(), "-f", input]);
    let operator = OperatorProcess::start(ns.name(), &["--create-grace-period", "10m"]);
    ns.register_log("operator", operator.log_path());
    let planned = items(&report);
    for (name, verdict) in &planned {
        wait_settled(ns.name(), name, verdict);
    }
    // A few resyncs more: a write the plan did not foresee would show up now.
    std::thread::sleep(Duration::from_secs(7));
    compare_with_operator(ns.name(), &planned, &emulator.stats());
    prune(ns.name(), input);
}

/// Every create and patch the operator sent is one the plan said, with the same fields, and
/// every object ended as the plan said.
fn compare_with_operator(namespace: &str, planned: &BTreeMap<String, Value>, stats: &Value) {
    let log = stats["writes"].as_array().expect("the write log").clone();
    let mut expected_posts = 0;
    let mut expected_patches = 0;
    let mut patches_planned: Vec<(usize, String)> = Vec::new();
    for (name, verdict) in planned {
        let obj = get_object(namespace, &format!("integration/{name}")).expect("the object");
        let id = obj["status"]["integrationId"].as_str().map(str::to_owned);
        let sent: Vec<&Value> = log
            .iter()
            .filter(|w| id.as_deref().is_some_and(|id| w["integrationId"] == id))
            .collect();
        let fields: Vec<Vec<String>> = sent.iter().map(|w| sorted(&w["fields"])).collect();
        let sends = sorted(&verdict["sends"]);
        match verdict["action"].as_str().unwrap_or_default() {
            "create" => {
                expected_posts += 1;
                assert_eq!(sent.len(), 1, "{name}: one write, the create: {sent:?}");
                assert_eq!(sent[0]["method"], "POST", "{name}");
                assert_eq!(fields[0], sends, "{name}: the POST's fields");
            }
            "update" | "adopt" if !sends.is_empty() => {
                expected_patches += 1;
                assert_eq!(
                    id.as_ref(),
                    verdict["remoteId"].as_str().map(str::to_owned).as_ref(),
                    "{name}"
                );
                // Exactly once, a rotated Secret too: a second reconcile on a cached copy that
                // does not show the first PATCH's status yet reads the object afresh.
                assert_eq!(sent.len(), 1, "{name}: one PATCH: {sent:?}");
                patches_planned.push((sent.len(), name.clone()));
                for (write, fields) in sent.iter().zip(&fields) {
                    assert_eq!(write["method"], "PATCH", "{name}");
                    assert_eq!(fields, &sends, "{name}: the PATCH's fields");
                }
            }
            "update" | "adopt" | "unchanged" | "observe" => {
                assert_eq!(
                    id.as_deref(),
                    verdict["remoteId"].as_str(),
                    "{name}: the same remote"
                );
                assert!(sent.is_empty(), "{name}: no write was planned: {sent:?}");
            }
            _ => assert!(
                sent.is_empty(),
                "{name}: refused, waiting or paused: {sent:?}"
            ),
        }
    }
    let posts = log.iter().filter(|w| w["method"] == "POST").count();
    let patches = log.iter().filter(|w| w["method"] == "PATCH").count();
    let patches_sent: usize = patches_planned.iter().map(|(n, _)| n).sum();
    assert_eq!(patches_planned.len(), expected_patches);
    assert_eq!(
        (posts, patches),
        (expected_posts, patches_sent),
        "every write is one the plan said: {log:#?}"
    );
    assert_eq!(count(stats, "DELETE", ITEM), 0);
}

/// `--prune` with two objects gone from the input: the created one would be deleted in
/// Losant, the adopted one orphaned.
fn prune(namespace: &str, input: &str) {
    let text = std::fs::read_to_string(input).expect("the input");
    let kept: Vec<String> = text
        .split("---\n")
        .filter(|doc| {
            !doc.contains("name: managed-update\n") && !doc.contains("name: adopt-same\n")
        })
        .map(str::to_owned)
        .collect();
    let pruned = write_input("pruned.yaml", &kept);
    let args = [
        "-f",
        pruned.to_str().expect("a path"),
        "-n",
        namespace,
        "--prune",
        "-o",
        "json",
    ];
    let (code, out, stderr) = run_plan(
        &[&args[..], &["--create-grace-period", "10m"]].concat(),
        None,
    );
    assert_eq!(code, 1, "{stderr}");
    let report: Value = serde_json::from_str(&out).expect("JSON");
    let items = items(&report);
    assert_eq!(items["managed-update"]["action"], "delete", "{out}");
    assert_eq!(items["adopt-same"]["action"], "orphan", "{out}");
    assert!(items["managed-update"]["source"].is_null());
    assert_eq!(report["summary"]["delete"], 1);
    assert_eq!(report["summary"]["orphan"], 1);
}

/// A plan of one namespace asks Losant only about the applications its objects use: another
/// namespace's application (with an Integration that Losant holds) is neither listed nor is its
/// token read, even with `--prune`.
#[test]
fn plan_asks_losant_only_about_the_planned_applications() {
    require_cluster!();
    install_crds();
    let ours = TestNamespace::new("plan-ours");
    let theirs = TestNamespace::new("plan-theirs");
    let (our_losant, their_losant) = (EmulatorProcess::start(&[]), EmulatorProcess::start(&[]));
    ours.register_log("emulator", our_losant.log_path());
    theirs.register_log("emulator", their_losant.log_path());
    ours.install_application(&our_losant, "app");
    theirs.install_application(&their_losant, "app");
    theirs.apply_ok(&object("theirs", &sqs("https://q/theirs"), Value::Null));
    reset_stats(&their_losant);
    let input = write_input(
        "ours.yaml",
        &[object("ours", &sqs("https://q/ours"), Value::Null)],
    );
    let input = input.to_str().expect("a path");
    for extra in [&[][..], &["--prune"][..]] {
        let args = [&["-f", input, "-n", ours.name(), "-o", "json"][..], extra].concat();
        let (code, out, stderr) = run_plan(&args, None);
        assert_eq!(code, 1, "a create: {out} {stderr}");
        assert_eq!(
            items(&serde_json::from_str(&out).expect("JSON"))["ours"]["action"],
            "create"
        );
    }
    assert_eq!(
        count(&our_losant.stats(), "GET", COLLECTION),
        2,
        "ours listed once per run"
    );
    let stats = their_losant.stats();
    assert_eq!(
        stats["total"], 0,
        "another namespace's Losant is never asked: {stats:#}"
    );
}

#[test]
fn plan_reads_past_1000_remotes_one_list_per_page() {
    require_cluster!();
    install_crds();
    let ns = TestNamespace::new("plan-pages");
    let emulator = EmulatorProcess::start(&[]);
    ns.register_log("emulator", emulator.log_path());
    ns.install_application(&emulator, "app");
    for index in 0..1005 {
        emulator.create_integration(&json!({"name": format!("seed-{index:04}"),
            "integrationType": "sqs", "enabled": true,
            "sqsConfig": {"queueUrl": format!("https://q/{index}")}}));
    }
    reset_stats(&emulator);
    let docs = vec![
        object(
            "last",
            &{
                let mut s = sqs("https://q/1004");
                s["name"] = json!("seed-1004");
                s
            },
            Value::Null,
        ),
        object(
            "first",
            &{
                let mut s = sqs("https://q/changed");
                s["name"] = json!("seed-0000");
                s
            },
            Value::Null,
        ),
        object("fresh", &sqs("https://q/fresh"), Value::Null),
    ];
    let input = write_input("pages.yaml", &docs);
    let (code, out, stderr) = run_plan(
        &[
            "-f",
            input.to_str().expect("a path"),
            "-n",
            ns.name(),
            "-o",
            "json",
        ],
        None,
    );
    assert_eq!(code, 1, "{stderr}");
    let report: Value = serde_json::from_str(&out).expect("JSON");
    let items = items(&report);
    assert_eq!(
        items["last"]["action"], "adopt",
        "on the second page: {out}"
    );
    // Nothing differs and no value comes from a Secret: adopting writes nothing.
    assert!(sorted(&items["last"]["sends"]).is_empty(), "{out}");
    assert!(items["last"]["fields"].is_null(), "no field differs: {out}");
    assert_eq!(items["first"]["action"], "adopt");
    assert_eq!(sorted(&items["first"]["sends"]), ["sqsConfig"]);
    assert_eq!(items["fresh"]["action"], "create");
    let stats = emulator.stats();
    assert_eq!(
        count(&stats, "GET", COLLECTION),
        2,
        "two pages of 1,000, read once: {stats:#}"
    );
    assert_eq!(writes(&stats), 0);
}

#[test]
fn plan_names_the_bad_file_and_document() {
    require_cluster!();
    let good = object("good", &sqs("https://q/good"), Value::Null);
    let broken = object(
        "broken",
        &json!({"applicationRef": {"name": "app"}, "integrationType": "telegraph"}),
        Value::Null,
    );
    let input = write_input("bad.yaml", &[good.clone(), broken]);
    let path = input.to_str().expect("a path");
    let (code, out, stderr) = run_plan(&["-f", path], None);
    assert_eq!(code, 2, "{out}{stderr}");
    assert!(out.is_empty(), "no report for bad input: {out}");
    assert!(
        stderr.contains(&format!("{path}: document 2 (Integration/broken): ")),
        "{stderr}"
    );
    let (code, _, stderr) = run_plan(&["-f", "-"], Some(&format!("{good}\n---\nkind: [\n")));
    assert_eq!(code, 2);
    assert!(stderr.contains("-: document 2: not valid YAML"), "{stderr}");
    let (code, _, stderr) = run_plan(&["-f", "/nonexistent/plan.yaml"], None);
    assert_eq!(code, 2);
    assert!(stderr.contains("/nonexistent/plan.yaml"), "{stderr}");
}
