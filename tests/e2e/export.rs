//! `losant-operator export`, end to end: the real binary against the emulator and the real API
//! server. Each integration type is exported, filled, applied and adopted by the operator with
//! no write to Losant (the round trip); lists past 1,000 remotes are paged; `--filter`,
//! `--type` and `--out` select and place the output; the application is named both ways; a
//! missing application or Secret is a clear error.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use losant_operator::testkit::*;
use serde_json::{Value, json};

const READY_TIMEOUT: Duration = Duration::from_secs(90);
const ITEM: &str = "/applications/{applicationId}/integrations/{integrationId}";
const COLLECTION: &str = "/applications/{applicationId}/integrations";

/// Runs `losant-operator export ARGS` with the test's kubeconfig.
fn export(args: &[&str]) -> Output {
    Command::new(operator_binary())
        .arg("export")
        .args(args)
        .output()
        .expect("run losant-operator export")
}

/// Runs it and expects success; returns standard output.
fn export_ok(args: &[&str]) -> String {
    let out = export(args);
    assert!(
        out.status.success(),
        "export {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn documents(yaml: &str) -> Vec<Value> {
    serde_saphyr::from_multiple(yaml).expect("export writes YAML")
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

fn spec_names(docs: &[Value]) -> Vec<String> {
    let mut names: Vec<String> = of_kind(docs, "Integration")
        .iter()
        .map(|d| d["spec"]["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    names.sort();
    names
}

/// One integration of each type, every secret field set (each value contains `tag`).
fn six_bodies(tag: &str) -> Vec<Value> {
    let pem = format!("-----BEGIN PRIVATE KEY-----\nMIIB{tag}\n-----END PRIVATE KEY-----\n");
    vec![
        json!({"name": "Plant broker", "integrationType": "mqtt", "topics": ["plant/#"],
            "mqttConfig": {"host": "broker.example.com", "port": 8883, "protocol": "mqtts",
                "username": "plant", "password": format!("mqtt-pw-{tag}"), "privateKey": pem,
                "clean": true}}),
        json!({"name": "pubsub", "integrationType": "googlePubSub", "topics": ["sub-a"],
            "googlePubSubConfig": {"projectId": "proj",
                "keyJson": format!(r#"{{"type":"service_account","id":"{tag}"}}"#)}}),
        json!({"name": "hub", "integrationType": "azureEventHub", "enabled": false,
            "azureEventHubConfig": {"hubName": "h", "consumerGroup": "$Default",
                "connectionString": format!("Endpoint=sb://x/;SharedAccessKey={tag}=")}}),
        json!({"name": "particle", "integrationType": "particle", "topics": ["temp*"],
            "particleConfig": {"accessToken": format!("particle-{tag}"), "productSlugOrId": "p"}}),
        json!({"name": "queue", "integrationType": "sqs",
            "sqsConfig": {"queueUrl": "https://sqs.example.com/q", "accessKeyId": "AKIA",
                "secretAccessKey": format!("aws/{tag}"), "region": "us-east-1"}}),
        json!({"name": "feed", "integrationType": "websocket",
            "websocketConfig": {"url": "wss://feed.example.com", "username": "u",
                "password": format!("ws-pw-{tag}"),
                "headers": [{"headerKey": "Authorization", "headerValue": format!("Bearer {tag}")}]}}),
    ]
}

/// Requests by method and route template, over everything the emulator served.
fn requests(emulator: &EmulatorProcess, method: &str, route: &str) -> u64 {
    emulator.stats()["requests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["method"] == method && r["route"] == route)
        .map(|r| r["count"].as_u64().unwrap_or(0))
        .sum()
}

/// POSTs and PATCHes of integrations.
fn writes(emulator: &EmulatorProcess) -> (u64, u64) {
    (
        requests(emulator, "POST", COLLECTION),
        requests(emulator, "PATCH", ITEM),
    )
}

/// The value at `path` (`mqttConfig.password`, `websocketConfig.headers.0.headerValue`) of an
/// integration as Losant holds it.
fn stored_value(remote: &Value, path: &str) -> String {
    let mut at = remote;
    for part in path.split('.') {
        at = match part.parse::<usize>() {
            Ok(index) => &at[index],
            Err(_) => &at[part],
        };
    }
    at.as_str()
        .unwrap_or_else(|| panic!("no {path} in {remote}"))
        .to_owned()
}

/// An exported directory: what `export --out` wrote. It is kept for the whole test, so further
/// checks of the exported files (e.g. `plan` on it) can be added next to the round trip.
struct ExportedDir {
    dir: TempDir,
}

impl ExportedDir {
    fn path(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.path().join(file)).expect("exported file")
    }

    fn docs(&self) -> Vec<Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.path())
            .expect("the directory")
            .map(|e| e.expect("an entry").path())
            .collect();
        files.sort();
        files
            .iter()
            .flat_map(|f| documents(&std::fs::read_to_string(f).expect("a file")))
            .collect()
    }

    /// Fills `_secrets.yaml` in place as a user would: the token, and each integration's keys
    /// with the values Losant holds for the fields they name.
    fn fill_secrets(&self, token: &str, remotes: &[Value]) {
        let docs = self.docs();
        let mut secrets: Vec<Value> = documents(&self.read("_secrets.yaml"));
        for secret in &mut secrets {
            let name = secret["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let keys: Vec<String> = secret["stringData"]
                .as_object()
                .map(|data| data.keys().cloned().collect())
                .unwrap_or_default();
            for key in keys {
                let value = match secret_user(&docs, &name) {
                    None => token.to_owned(),
                    Some(integration) => {
                        let id =
                            &integration["metadata"]["annotations"]["losant.io/integration-id"];
                        let remote = remotes
                            .iter()
                            .find(|r| r["id"] == *id)
                            .expect("exported remote");
                        let config = integration_config_field(integration);
                        stored_value(remote, &format!("{config}.{key}"))
                    }
                };
                secret["stringData"][&key] = json!(value);
            }
        }
        let filled: Vec<String> = secrets
            .iter()
            .map(|secret| serde_saphyr::to_string(secret).expect("YAML"))
            .collect();
        std::fs::write(self.path().join("_secrets.yaml"), filled.join("---\n"))
            .expect("write the filled Secrets");
    }
}

/// The Integration whose references point at Secret `name`, if any (else it is the token's).
fn secret_user<'a>(docs: &'a [Value], name: &str) -> Option<&'a Value> {
    of_kind(docs, "Integration").into_iter().find(|d| {
        d["spec"]
            .to_string()
            .contains(&format!("\"name\":\"{name}\""))
    })
}

fn integration_config_field(integration: &Value) -> String {
    let kind = integration["spec"]["integrationType"]
        .as_str()
        .unwrap_or_default();
    format!("{kind}Config")
}

/// Exports the emulator's application by URL, id and token file into a new directory.
fn export_direct(emulator: &EmulatorProcess, namespace: &str, extra: &[&str]) -> ExportedDir {
    let dir = TempDir::new("export");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{}\n", emulator.token())).expect("token file");
    let out = dir.path().join("out");
    let mut args = vec![
        "--api-url",
        emulator.base_url(),
        "--application-id",
        emulator.application_id(),
        "--token-file",
        token_file.to_str().expect("UTF-8 path"),
        "--namespace",
        namespace,
        "--out",
        out.to_str().expect("UTF-8 path"),
    ];
    args.extend_from_slice(extra);
    let stdout = export_ok(&args);
    assert!(
        stdout.is_empty(),
        "--out writes nothing to stdout: {stdout}"
    );
    ExportedDir { dir }
}

fn apply_dir(namespace: &str, dir: &Path) {
    kubectl_ok(&[
        "apply",
        "-n",
        namespace,
        "-f",
        dir.to_str().expect("UTF-8 path"),
    ]);
}

/// THE round trip: export every type → fill the Secrets → apply → the operator adopts each
/// integration by id (Ready, pinned to the remote, origin Adopted) with zero creates and zero
/// PATCHes. A Secret changed afterwards is then sent as usual. Losant echoes secrets in clear.
#[test]
fn exported_integrations_are_adopted_without_a_write() {
    require_cluster!();
    round_trip("export-rt", &[]);
}

/// The same with a Losant that masks secrets and fills server defaults.
#[test]
fn exported_integrations_are_adopted_without_a_write_when_losant_masks_secrets() {
    require_cluster!();
    round_trip(
        "export-rtm",
        &["--secret-echo", "mask", "--server-defaults"],
    );
}

/// The round trip against an emulator started with `emulator_args`; returns the exported
/// directory (kept until the caller drops it) for further checks of the files.
fn round_trip(prefix: &str, emulator_args: &[&str]) -> ExportedDir {
    install_crds();
    let ns = TestNamespace::new(prefix);
    let emulator = EmulatorProcess::start(emulator_args);
    ns.register_log("emulator", emulator.log_path());
    // What Losant holds, secrets included, whatever it echoes: the bodies sent, with their ids.
    let remotes: Vec<Value> = six_bodies("rt")
        .into_iter()
        .map(|mut body| {
            body["id"] = emulator.create_integration(&body)["id"].clone();
            body
        })
        .collect();
    let exported = export_direct(&emulator, ns.name(), &[]);
    let docs = exported.docs();
    assert_eq!(of_kind(&docs, "Integration").len(), 6);
    exported.fill_secrets(emulator.token(), &remotes);
    // `plan` on the exported files, before they are applied: every one unchanged, exit 0.
    let written = writes(&emulator);
    plan_says_unchanged(ns.name(), &exported.path(), docs.len());
    assert_eq!(writes(&emulator), written, "plan wrote nothing");
    apply_dir(ns.name(), &exported.path());
    let before = writes(&emulator);
    let operator = OperatorProcess::start(ns.name(), &[]);
    ns.register_log("operator", operator.log_path());
    for doc in of_kind(&docs, "Integration") {
        let name = doc["metadata"]["name"].as_str().expect("a name");
        let id = doc["metadata"]["annotations"]["losant.io/integration-id"].clone();
        let object = wait_for_condition(
            ns.name(),
            &format!("integration/{name}"),
            "Ready",
            "True",
            READY_TIMEOUT,
        );
        assert_eq!(object["status"]["integrationId"], id, "{name} is pinned");
        assert_eq!(object["status"]["origin"], "Adopted", "{name}");
    }
    assert_eq!(
        writes(&emulator),
        before,
        "adoption wrote nothing to Losant"
    );
    // Nor do the periodic comparisons that follow (two more sweeps of the application).
    let sweeps = |operator: &OperatorProcess| operator.logs().matches("sweep done").count();
    let swept = sweeps(&operator);
    wait_until(READY_TIMEOUT, "two more sweeps", || {
        sweeps(&operator) >= swept + 2
    });
    assert_eq!(
        writes(&emulator),
        before,
        "the sweeps wrote nothing to Losant"
    );
    assert_eq!(emulator.list_integrations().len(), 6, "nothing created");
    // And once adopted, from the objects' own records.
    plan_says_unchanged(ns.name(), &exported.path(), docs.len());
    rotate_broker_password(&ns, &docs, &remotes);
    wait_until(READY_TIMEOUT, "the rotated password is sent", || {
        writes(&emulator).1 == before.1 + 1
    });
    assert_eq!(writes(&emulator).0, before.0, "still no create");
    drop(operator);
    exported
}

/// `losant-operator plan` on the exported directory says `unchanged` for each of the six
/// Integrations (and exits 0: no changes).
fn plan_says_unchanged(namespace: &str, dir: &Path, documents: usize) {
    let dir = dir.to_str().expect("a UTF-8 path");
    let (code, out, stderr) =
        super::plan::run_plan(&["-f", dir, "-n", namespace, "-o", "json"], None);
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{stderr}"));
    let items = report["items"].as_array().expect("items");
    assert_eq!(
        items.len(),
        6,
        "one per Integration of {documents} documents: {out}"
    );
    for item in items {
        assert_eq!(item["action"], "unchanged", "{item:#}");
    }
    assert_eq!(code, 0, "no changes: {out}{stderr}");
}

/// Changes the MQTT broker's password in its Secret (keeping its private key).
fn rotate_broker_password(ns: &TestNamespace, docs: &[Value], remotes: &[Value]) {
    let broker = of_kind(docs, "Integration")
        .into_iter()
        .find(|d| d["spec"]["name"] == "Plant broker")
        .expect("the broker");
    let secret = broker["spec"]["mqttConfig"]["passwordSecretRef"]["name"]
        .as_str()
        .expect("a password reference");
    let stored = remotes
        .iter()
        .find(|r| r["name"] == "Plant broker")
        .expect("stored");
    let private_key = stored_value(stored, "mqttConfig.privateKey");
    ns.apply_secret(
        secret,
        &[
            ("password", "rotated-password"),
            ("privateKey", &private_key),
        ],
    );
}

/// The list is paged (1,000 a page): 1,003 remotes are all exported, each once.
#[test]
fn export_pages_past_a_thousand_remotes() {
    require_cluster!();
    let emulator = EmulatorProcess::start(&[]);
    for index in 0..1003 {
        emulator.create_integration(&json!({
            "name": format!("queue {index:04}"), "integrationType": "sqs",
            "sqsConfig": {"queueUrl": format!("https://sqs.example.com/{index}")}
        }));
    }
    let lists_before = requests(&emulator, "GET", COLLECTION);
    let dir = TempDir::new("export-pages");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, emulator.token()).expect("token file");
    let stdout = export_ok(&[
        "--api-url",
        emulator.base_url(),
        "--application-id",
        emulator.application_id(),
        "--token-file",
        token_file.to_str().expect("UTF-8 path"),
        "--namespace",
        "onboarding",
    ]);
    let docs = documents(&stdout);
    let integrations = of_kind(&docs, "Integration");
    assert_eq!(integrations.len(), 1003);
    let ids: std::collections::BTreeSet<String> = integrations
        .iter()
        .map(|d| d["metadata"]["annotations"]["losant.io/integration-id"].to_string())
        .collect();
    assert_eq!(ids.len(), 1003, "each remote once");
    let names: std::collections::BTreeSet<String> = integrations
        .iter()
        .map(|d| d["metadata"]["name"].to_string())
        .collect();
    assert_eq!(names.len(), 1003, "object names are unique");
    assert!(
        integrations
            .iter()
            .all(|d| d["metadata"]["namespace"] == "onboarding")
    );
    assert_eq!(
        requests(&emulator, "GET", COLLECTION) - lists_before,
        2,
        "two pages"
    );
    assert_eq!(writes(&emulator).1, 0, "export writes nothing");
}

/// A namespace with the six integrations and a `LosantApplication` `app` for them.
fn application_in_cluster(prefix: &str) -> (TestNamespace, EmulatorProcess) {
    install_crds();
    let ns = TestNamespace::new(prefix);
    let emulator = EmulatorProcess::start(&[]);
    ns.register_log("emulator", emulator.log_path());
    for body in six_bodies("sel") {
        emulator.create_integration(&body);
    }
    ns.install_application(&emulator, "app");
    (ns, emulator)
}

/// `--application-ref` reads the application and its token from the cluster; `--filter` and
/// `--type` select; `--out` writes one file per integration plus the application and Secrets.
#[test]
fn export_by_application_ref_selects_with_filter_and_type() {
    require_cluster!();
    let (ns, emulator) = application_in_cluster("export-sel");
    let reference = format!("{}/app", ns.name());
    let all = documents(&export_ok(&["--application-ref", &reference]));
    assert_eq!(spec_names(&all).len(), 6);
    let app = of_kind(&all, "LosantApplication")[0];
    assert_eq!(app["metadata"]["name"], "app");
    assert_eq!(
        app["metadata"]["namespace"],
        ns.name(),
        "the application's namespace"
    );
    assert_eq!(app["spec"]["tokenSecretRef"]["name"], "app-token");
    assert!(
        of_kind(&all, "Integration")
            .iter()
            .all(|d| d["spec"]["applicationRef"]["name"] == "app"
                && d["spec"]["deletionPolicy"] == "Orphan")
    );
    let filtered = documents(&export_ok(&[
        "--application-ref",
        &reference,
        "--filter",
        "p*",
        "--namespace",
        "elsewhere",
    ]));
    assert_eq!(spec_names(&filtered), ["particle", "pubsub"]);
    assert!(
        filtered
            .iter()
            .all(|d| d["metadata"]["namespace"] == "elsewhere")
    );
    let typed = documents(&export_ok(&[
        "--application-ref",
        &reference,
        "--type",
        "sqs,mqtt",
    ]));
    assert_eq!(spec_names(&typed), ["Plant broker", "queue"]);
    let repeated = documents(&export_ok(&[
        "--application-ref",
        &reference,
        "--type",
        "sqs",
        "--type",
        "websocket",
        "--filter",
        "*e*",
    ]));
    assert_eq!(spec_names(&repeated), ["feed", "queue"]);
    let dir = TempDir::new("export-out");
    let out = dir.path().join("out");
    let out_arg = out.to_str().expect("UTF-8 path");
    export_ok(&["--application-ref", &reference, "--out", out_arg]);
    let mut files: Vec<String> = std::fs::read_dir(&out)
        .expect("the directory")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    files.sort();
    assert_eq!(
        files,
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
    let broker = documents(&std::fs::read_to_string(out.join("plant-broker.yaml")).expect("file"));
    assert_eq!(broker[0]["spec"]["name"], "Plant broker");
    // Every file is a valid object for the API server (strict field validation).
    kubectl_ok(&[
        "apply",
        "--dry-run=server",
        "--validate=strict",
        "-n",
        ns.name(),
        "-f",
        out_arg,
    ]);
    // An existing, non-empty directory is refused.
    let again = export(&["--application-ref", &reference, "--out", out_arg]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));
    assert_eq!(writes(&emulator).1, 0, "export writes nothing");
}

/// A missing application, token Secret or key, or token file, is named in a clear error, and
/// nothing is written.
#[test]
fn a_missing_application_or_secret_is_a_clear_error() {
    require_cluster!();
    let (ns, emulator) = application_in_cluster("export-err");
    let failing = |args: &[&str], expected: &str| {
        let out = export(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} must fail");
        assert!(out.stdout.is_empty(), "{args:?} writes nothing");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    };
    let missing_app = format!("{}/nope", ns.name());
    failing(
        &["--application-ref", &missing_app],
        &format!("LosantApplication {missing_app} not found"),
    );
    ns.apply_ok(&losant_application_manifest(
        "orphan",
        emulator.application_id(),
        emulator.base_url(),
        "no-such-secret",
        "token",
    ));
    failing(
        &["--application-ref", &format!("{}/orphan", ns.name())],
        &format!("Secret {}/no-such-secret: not found", ns.name()),
    );
    ns.apply_ok(&losant_application_manifest(
        "wrong-key",
        emulator.application_id(),
        emulator.base_url(),
        "app-token",
        "nokey",
    ));
    failing(
        &["--application-ref", &format!("{}/wrong-key", ns.name())],
        "has no key \"nokey\"",
    );
    failing(&["--application-ref", "no-slash"], "is not NAMESPACE/NAME");
    failing(
        &[
            "--application-id",
            emulator.application_id(),
            "--token-file",
            "/nonexistent/token",
            "--api-url",
            emulator.base_url(),
        ],
        "/nonexistent/token",
    );
    failing(&[], "--application-ref");
}
