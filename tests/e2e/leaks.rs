//! End-to-end leak scan: no Secret value ever shows up outside its Secret.
//!
//! One scenario exercises every secret-bearing field of all six integration types (MQTT password
//! and private key, Pub/Sub key JSON, Azure connection string, SQS secret access key, Particle
//! access token, WebSocket password, private key and a header value from a Secret) and the API
//! tokens, through the happy path (create, a rotated Secret sent by PATCH, delete) and through
//! error paths: a Secret value over Losant's limit, a wrong token, a token whose scopes do not
//! allow creating, a token revoked while in use (its integration then blocked in deletion until
//! orphaned), and an emulator that answers 503 at random and loses answers after committing.
//!
//! Every value carries the same random nonce, which appears nowhere else. Afterwards the test
//! scans everything the run produced — the operator's log (debug level), the emulator's log, the
//! namespace's Events (both APIs), the full YAML of every object in the namespace (status,
//! annotations, conditions) and the operator's `/metrics` — and fails on any trace of the nonce
//! (or of a value in base64, as a Secret's `data` holds it).
//! Secret objects are not scanned: they hold the values by design, and `kubectl apply` copies
//! them into their `last-applied-configuration` annotation. As controls, the test checks that the
//! values did reach Losant (so they did flow through the operator) and that the scan finds the
//! nonce in the Secrets themselves. It also checks that no DELETE asked Losant to delete
//! workflows (`includeWorkflowsTrue == 0`).
//!
//! A second scenario runs `losant-operator export` against remotes whose secret fields carry such
//! values (echoed in clear) and scans its output, files and errors.

use std::io::{Read, Write};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use losant_operator::testkit::*;
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(90);

/// The secret values of one run: every one contains `nonce`.
struct Values {
    nonce: String,
    api_token: String,
    revoked_token: String,
    wrong_token: String,
    scoped_token: String,
    mqtt_password: String,
    mqtt_password_rotated: String,
    mqtt_private_key: String,
    gcp_key_json: String,
    azure_connection_string: String,
    aws_secret_access_key: String,
    particle_access_token: String,
    ws_password: String,
    ws_private_key: String,
    ws_authorization: String,
    too_long: String,
}

impl Values {
    fn new() -> Values {
        let nonce = format!("{:020x}", rand::random::<u128>() >> 48);
        let pem = |kind: &str| {
            format!("-----BEGIN {kind}-----\nMIIB{nonce}{nonce}\n-----END {kind}-----\n")
        };
        let mut too_long = String::new();
        while too_long.len() < 1100 {
            too_long.push_str(&format!("x{nonce}"));
        }
        Values {
            api_token: format!("apitoken-{nonce}"),
            revoked_token: format!("revoked-{nonce}"),
            wrong_token: format!("wrongtoken-{nonce}"),
            scoped_token: format!("scoped-{nonce}"),
            mqtt_password: format!("mqtt-password-{nonce}"),
            mqtt_password_rotated: format!("mqtt-password-rotated-{nonce}"),
            mqtt_private_key: pem("PRIVATE KEY"),
            gcp_key_json: format!(
                r#"{{"type":"service_account","private_key_id":"{nonce}","private_key":"{}"}}"#,
                pem("PRIVATE KEY").replace('\n', "\\n")
            ),
            azure_connection_string: format!(
                "Endpoint=sb://leaks.servicebus.windows.net/;SharedAccessKeyName=listen;\
                 SharedAccessKey={nonce}="
            ),
            aws_secret_access_key: format!("aws/{nonce}+secret"),
            particle_access_token: format!("particle-{nonce}"),
            ws_password: format!("ws-password-{nonce}"),
            ws_private_key: pem("EC PRIVATE KEY"),
            ws_authorization: format!("Bearer ws-{nonce}"),
            too_long,
            nonce,
        }
    }

    /// Every value, labelled.
    fn all(&self) -> Vec<(&'static str, &str)> {
        let mut all = vec![
            ("api token", self.api_token.as_str()),
            ("revoked token", &self.revoked_token),
            ("wrong token", &self.wrong_token),
            ("scoped token", &self.scoped_token),
            ("rotated mqtt password", &self.mqtt_password_rotated),
            ("too-long password", &self.too_long),
        ];
        all.extend(self.credentials());
        all
    }

    /// What the scan looks for: the nonce (in every value), and each value in base64 (as a Secret's
    /// `data` holds it), at each of the three byte alignments it may have inside a longer text.
    fn needles(&self) -> Vec<(String, String)> {
        let mut needles = vec![("nonce".to_owned(), self.nonce.clone())];
        for (label, value) in self.all() {
            for skip in 0..3 {
                let encoded = base64(&value.as_bytes()[skip..]);
                // The first and last characters depend on the bytes around; the middle does not.
                let stable = &encoded[4..encoded.len().saturating_sub(4).max(4)];
                if stable.len() >= 16 {
                    needles.push((format!("base64 (+{skip}) of {label}"), stable.to_owned()));
                }
            }
        }
        needles
    }

    /// The credentials Secret's data: one key per secret-bearing field.
    fn credentials(&self) -> Vec<(&'static str, &str)> {
        vec![
            ("mqtt-password", &self.mqtt_password),
            ("mqtt-private-key", &self.mqtt_private_key),
            ("gcp-key-json", &self.gcp_key_json),
            ("azure-connection-string", &self.azure_connection_string),
            ("aws-secret-access-key", &self.aws_secret_access_key),
            ("particle-access-token", &self.particle_access_token),
            ("ws-password", &self.ws_password),
            ("ws-private-key", &self.ws_private_key),
            ("ws-authorization", &self.ws_authorization),
        ]
    }
}

/// Standard base64 (with padding).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn secret_ref(key: &str) -> Value {
    json!({"name": "credentials", "key": key})
}

/// One Integration of each type, on application `app`, using every secret-bearing field.
fn six_specs() -> Vec<(&'static str, &'static str, &'static str, Value)> {
    let base = |t: &str| json!({"applicationRef": {"name": "app"}, "integrationType": t});
    let mut out = Vec::new();
    let mut mqtt = base("mqtt");
    mqtt["topics"] = json!(["leaks/+/in"]);
    mqtt["mqttConfig"] = json!({
        "host": "broker.example.com", "port": 8883, "protocol": "mqtts", "username": "u",
        "passwordSecretRef": secret_ref("mqtt-password"),
        "privateKeySecretRef": secret_ref("mqtt-private-key"),
    });
    out.push(("broker", "mqttConfig", "password", mqtt));
    let mut pubsub = base("googlePubSub");
    pubsub["googlePubSubConfig"] =
        json!({"projectId": "leaks", "keyJsonSecretRef": secret_ref("gcp-key-json")});
    out.push(("pubsub", "googlePubSubConfig", "keyJson", pubsub));
    let mut azure = base("azureEventHub");
    azure["azureEventHubConfig"] = json!({
        "hubName": "hub", "consumerGroup": "$Default",
        "connectionStringSecretRef": secret_ref("azure-connection-string"),
    });
    out.push(("hub", "azureEventHubConfig", "connectionString", azure));
    let mut sqs = base("sqs");
    sqs["sqsConfig"] = json!({
        "queueUrl": "https://sqs.us-east-1.amazonaws.com/1/leaks", "region": "us-east-1",
        "accessKeyId": "AKIALEAKS", "secretAccessKeySecretRef": secret_ref("aws-secret-access-key"),
    });
    out.push(("queue", "sqsConfig", "secretAccessKey", sqs));
    let mut particle = base("particle");
    particle["particleConfig"] =
        json!({"accessTokenSecretRef": secret_ref("particle-access-token")});
    out.push(("particle", "particleConfig", "accessToken", particle));
    let mut websocket = base("websocket");
    websocket["websocketConfig"] = json!({
        "url": "wss://stream.example.com/leaks", "username": "u",
        "passwordSecretRef": secret_ref("ws-password"),
        "privateKeySecretRef": secret_ref("ws-private-key"),
        "headers": [
            {"headerKey": "X-Client", "headerValue": "losant"},
            {"headerKey": "Authorization", "headerValueSecretRef": secret_ref("ws-authorization")},
        ],
    });
    out.push(("feed", "websocketConfig", "password", websocket));
    out
}

fn sqs_on(app: &str, name: &str) -> Value {
    json!({
        "applicationRef": {"name": app}, "name": name, "integrationType": "sqs",
        "sqsConfig": {"queueUrl": "https://sqs.us-east-1.amazonaws.com/1/other",
                      "secretAccessKeySecretRef": secret_ref("aws-secret-access-key")},
    })
}

/// `GET` through the emulator's faults (it answers 503 at random): retried until it succeeds.
fn get_retrying(emulator: &EmulatorProcess, path: &str) -> (u16, Value) {
    for _ in 0..40 {
        let (status, body) = emulator.get(path);
        if status.as_u16() != 503 && status.as_u16() != 429 {
            return (status.as_u16(), body);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("GET {path}: the emulator kept answering 503");
}

fn remote(emulator: &EmulatorProcess, namespace: &str, object: &str) -> Value {
    let id = get_object(namespace, &format!("integration/{object}"))
        .expect("the Integration exists")["status"]["integrationId"]
        .as_str()
        .expect("a recorded id")
        .to_owned();
    let (status, body) = get_retrying(
        emulator,
        &format!("{}?_links=false", emulator.integration_path(&id)),
    );
    assert_eq!(status, 200, "{object}: {body}");
    body
}

fn ready_reason(namespace: &str, kind_name: &str) -> String {
    get_object(namespace, kind_name)
        .and_then(|o| find_condition(&o, "Ready").map(|c| c["reason"].clone()))
        .and_then(|r| r.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn wait_for_reason(namespace: &str, kind_name: &str, reasons: &[&str]) {
    wait_until(
        TIMEOUT,
        &format!("{kind_name} to report {reasons:?}"),
        || reasons.contains(&ready_reason(namespace, kind_name).as_str()),
    );
}

/// `GET /metrics` from the operator's metrics server (its address is in the log).
fn operator_metrics(operator: &OperatorProcess) -> String {
    let logs = operator.logs();
    let Some(address) = logs
        .lines()
        .filter_map(|l| l.split("metrics server listening on ").nth(1))
        .map(|rest| {
            rest.split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .next_back()
    else {
        return String::new();
    };
    let Ok(mut stream) = std::net::TcpStream::connect(&address) else {
        return String::new();
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = write!(
        stream,
        "GET /metrics HTTP/1.0\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    );
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    text
}

/// Everything in `namespace` except Secrets, as YAML, listed per resource type.
fn all_objects_but_secrets(namespace: &str) -> String {
    let resources = kubectl_ok(&[
        "api-resources",
        "--namespaced=true",
        "--verbs=list",
        "-o",
        "name",
    ]);
    let mut out = String::new();
    for resource in resources.lines().map(str::trim).filter(|r| !r.is_empty()) {
        if resource == "secrets" {
            continue;
        }
        let listed = kubectl(&["get", resource, "-n", namespace, "-o", "yaml"]);
        assert!(
            listed.status.success(),
            "kubectl get {resource} failed: {}",
            String::from_utf8_lossy(&listed.stderr)
        );
        out.push_str(&format!("#### {resource}\n"));
        out.push_str(&String::from_utf8_lossy(&listed.stdout));
    }
    out
}

/// Where `needle` occurs in `text`, with some context (for the failure message).
fn occurrences(text: &str, needle: &str) -> Vec<String> {
    text.match_indices(needle)
        .take(5)
        .map(|(at, _)| {
            let start = text[..at]
                .char_indices()
                .rev()
                .nth(80)
                .map_or(0, |(i, _)| i);
            let end = text[at..]
                .char_indices()
                .nth(needle.len() + 80)
                .map_or(text.len(), |(i, _)| at + i);
            format!("…{}…", &text[start..end])
        })
        .collect()
}

#[test]
fn no_secret_value_leaks_into_logs_events_status_or_metrics() {
    require_cluster!();
    install_crds();
    let values = Values::new();
    let ns = TestNamespace::new("leaks");
    let state_dir = std::env::temp_dir().join(format!("leaks-state-{}", ns.name()));
    std::fs::create_dir_all(&state_dir).expect("a state directory");
    let state_file = state_dir.join("state.json");
    let state_file = state_file.to_str().expect("a UTF-8 path").to_owned();
    let scoped = format!("{}:integrations.get,integration.get", values.scoped_token);
    let faults = [
        "--error-rate",
        "0.1",
        "--fault-after-commit",
        "0.2",
        "--state-file",
        &state_file,
    ];
    let mut emulator_args = vec![
        "--token",
        &values.api_token,
        "--token",
        &values.revoked_token,
        "--token",
        &scoped,
    ];
    emulator_args.extend(faults);
    let mut emulator = EmulatorProcess::start(&emulator_args);
    ns.register_log("emulator", emulator.log_path());
    // The harness logs the operator at debug level; LOSANT_E2E_LEAKS_RUST_LOG=trace (any RUST_LOG
    // filter) scans a more verbose run.
    let log_filter = std::env::var("LOSANT_E2E_LEAKS_RUST_LOG").ok();
    let envs: Vec<(&str, &str)> = log_filter
        .as_deref()
        .map(|filter| ("RUST_LOG", filter))
        .into_iter()
        .collect();
    let operator = OperatorProcess::start_with_env(
        ns.name(),
        &[
            "--application-recheck-interval",
            "3s",
            "--create-grace-period",
            "3s",
        ],
        &envs,
    );

    // Secrets, created with `kubectl create secret` (no last-applied copy).
    ns.create_secret("api-token", &[("token", &values.api_token)]);
    ns.create_secret("revoked-token", &[("token", &values.revoked_token)]);
    ns.create_secret("wrong-token", &[("token", &values.wrong_token)]);
    ns.create_secret("scoped-token", &[("token", &values.scoped_token)]);
    ns.create_secret("credentials", &values.credentials());
    ns.create_secret("too-long", &[("password", &values.too_long)]);
    for (app, secret) in [
        ("app", "api-token"),
        ("app-revoked", "revoked-token"),
        ("app-wrong", "wrong-token"),
        ("app-scoped", "scoped-token"),
    ] {
        ns.apply_ok(&losant_application_manifest(
            app,
            emulator.application_id(),
            emulator.base_url(),
            secret,
            "token",
        ));
    }
    let six = six_specs();
    for (name, _, _, spec) in &six {
        ns.apply_ok(&integration_manifest(name, spec));
    }
    let mut too_long = six[0].3.clone();
    too_long["name"] = json!("too long");
    too_long["mqttConfig"]["passwordSecretRef"] = json!({"name": "too-long", "key": "password"});
    ns.apply_ok(&integration_manifest("too-long", &too_long));
    ns.apply_ok(&integration_manifest(
        "on-revoked",
        &sqs_on("app-revoked", "on revoked"),
    ));
    ns.apply_ok(&integration_manifest(
        "on-wrong",
        &sqs_on("app-wrong", "on wrong"),
    ));
    ns.apply_ok(&integration_manifest(
        "on-scoped",
        &sqs_on("app-scoped", "on scoped"),
    ));

    // Happy paths, then each error path in its expected state.
    for (name, _, _, _) in &six {
        wait_for_condition(
            ns.name(),
            &format!("integration/{name}"),
            "Ready",
            "True",
            TIMEOUT,
        );
    }
    wait_for_condition(
        ns.name(),
        "integration/on-revoked",
        "Ready",
        "True",
        TIMEOUT,
    );
    wait_for_reason(ns.name(), "integration/too-long", &["InvalidSpec"]);
    wait_for_reason(ns.name(), "losantapplication/app-wrong", &["Unauthorized"]);
    wait_for_reason(ns.name(), "integration/on-wrong", &["ApplicationNotReady"]);
    wait_for_reason(
        ns.name(),
        "integration/on-scoped",
        &["InsufficientScope", "Forbidden"],
    );

    // Control: the values did reach Losant, through the operator.
    for (name, config, field, _) in &six {
        let body = remote(&emulator, ns.name(), name);
        assert!(
            body[config][field]
                .as_str()
                .is_some_and(|v| v.contains(&values.nonce)),
            "{name}: {config}.{field} did not reach Losant: {body}"
        );
    }
    let feed = remote(&emulator, ns.name(), "feed");
    assert_eq!(
        feed["websocketConfig"]["headers"][1]["headerValue"],
        values.ws_authorization.as_str()
    );

    // A rotated Secret value goes out in a PATCH.
    let mut rotated = values.credentials();
    rotated[0].1 = &values.mqtt_password_rotated;
    ns.apply_secret("credentials", &rotated);
    wait_until(TIMEOUT, "the rotated password to reach Losant", || {
        remote(&emulator, ns.name(), "broker")["mqttConfig"]["password"]
            == values.mqtt_password_rotated.as_str()
    });
    // A deletion goes out in a DELETE.
    kubectl_ok(&[
        "delete",
        "integration",
        "queue",
        "-n",
        ns.name(),
        "--timeout=90s",
    ]);
    let before_revocation = emulator.stats();

    // Revoke a token in use: the emulator comes back without it (same state, same address).
    let mut revoked_args = vec!["--token", &values.api_token, "--token", &scoped];
    revoked_args.extend(faults);
    emulator.restart_with(&revoked_args);
    wait_for_reason(
        ns.name(),
        "losantapplication/app-revoked",
        &["Unauthorized"],
    );
    wait_until(TIMEOUT, "on-revoked to stop being Ready", || {
        ready_reason(ns.name(), "integration/on-revoked") != "Synced"
    });
    kubectl_ok(&[
        "delete",
        "integration",
        "on-revoked",
        "-n",
        ns.name(),
        "--wait=false",
    ]);
    wait_for_reason(ns.name(), "integration/on-revoked", &["DeletionBlocked"]);
    kubectl_ok(&[
        "patch",
        "integration",
        "on-revoked",
        "-n",
        ns.name(),
        "--type=merge",
        "-p",
        r#"{"spec":{"deletionPolicy":"Orphan"}}"#,
    ]);
    wait_until(TIMEOUT, "on-revoked to be deleted as an orphan", || {
        get_object(ns.name(), "integration/on-revoked").is_none()
    });
    // A few more resyncs and re-checks, each logging at debug level.
    std::thread::sleep(Duration::from_secs(7));
    let after_revocation = emulator.stats();
    assert_eq!(
        before_revocation["includeWorkflowsTrue"], 0,
        "a DELETE asked to delete workflows"
    );
    assert_eq!(
        after_revocation["includeWorkflowsTrue"], 0,
        "a DELETE asked to delete workflows"
    );

    // `plan`, in every format, on the same objects and with a Secret manifest in the input.
    let plan_outputs = plan_outputs(&ns, &values, &six, &too_long);

    // The scan.
    let mut sources: Vec<(String, String)> = vec![
        ("operator log".into(), operator.logs()),
        ("emulator log".into(), emulator.logs()),
        (
            "kubectl get events".into(),
            kubectl_ok(&["get", "events", "-n", ns.name(), "-o", "json"]),
        ),
        (
            "kubectl get events.events.k8s.io".into(),
            kubectl_ok(&["get", "events.events.k8s.io", "-n", ns.name(), "-o", "json"]),
        ),
        (
            "every object but Secrets".into(),
            all_objects_but_secrets(ns.name()),
        ),
        ("operator /metrics".into(), operator_metrics(&operator)),
    ];
    sources.extend(plan_outputs);
    // The scan sees what it must: the log shows the reconciles, the objects show status.
    assert!(
        sources[0].1.contains("DeletionBlocked") || sources[0].1.contains("reconciled"),
        "the operator log is empty"
    );
    assert!(sources[4].1.contains("InvalidSpec"), "no status scanned");
    assert!(
        sources[5].1.contains("# TYPE"),
        "no metrics scanned: {:?}",
        sources[5].1
    );
    let needles = values.needles();
    let leaks: Vec<String> = sources
        .iter()
        .flat_map(|(source, text)| {
            needles.iter().flat_map(move |(label, needle)| {
                occurrences(text, needle)
                    .into_iter()
                    .map(move |context| format!("{source}: {label}: {context}"))
            })
        })
        .collect();
    // Control: the same scan finds the values in the Secrets themselves, base64 and decoded.
    let secrets = kubectl_ok(&["get", "secrets", "-n", ns.name(), "-o", "json"]);
    // (Aligned as a whole value; the mqtt password was rotated away.)
    let whole = needles
        .iter()
        .filter(|(l, _)| l.starts_with("base64 (+0)") && !l.ends_with(" mqtt-password"));
    for (label, needle) in whole {
        assert!(
            secrets.contains(needle.as_str()),
            "control: {label} not found in the Secrets' data"
        );
    }
    let decoded: String = serde_json::from_str::<Value>(&secrets).expect("JSON")["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| serde_json::from_value::<Secret>(item.clone()).ok())
        .flat_map(|secret| secret.data.unwrap_or_default().into_values())
        .map(|bytes| String::from_utf8_lossy(&bytes.0).into_owned())
        .collect();
    assert!(
        decoded.contains(&values.too_long) && decoded.contains(&values.api_token),
        "the control scan of the Secrets found nothing"
    );
    println!(
        "leak scan: {} sources, {} bytes, scanned for the nonce shared by {} secret values and 4 \
         API tokens",
        sources.len(),
        sources.iter().map(|(_, t)| t.len()).sum::<usize>(),
        values.credentials().len() + 2
    );
    assert!(
        leaks.is_empty(),
        "secret values leaked ({} places):\n{}",
        leaks.len(),
        leaks.join("\n")
    );
    let _ = std::fs::remove_dir_all(&state_dir);
}

/// `losant-operator plan` (text and JSON, with `--prune`) on the six objects, the one whose
/// Secret value is too long, one on a wrong token, and a `credentials` Secret manifest whose
/// MQTT password changed: its stdout and stderr per format.
fn plan_outputs(
    ns: &TestNamespace,
    values: &Values,
    six: &[(&'static str, &'static str, &'static str, Value)],
    too_long: &Value,
) -> Vec<(String, String)> {
    let mut docs: Vec<String> = six
        .iter()
        .map(|(name, _, _, spec)| integration_manifest(name, spec))
        .collect();
    docs.push(integration_manifest("too-long", too_long));
    docs.push(integration_manifest(
        "on-wrong",
        &sqs_on("app-wrong", "on wrong"),
    ));
    let mut planned = values.credentials();
    let changed = format!("plan-{}", values.mqtt_password_rotated);
    planned[0].1 = &changed;
    docs.push(secret_manifest("credentials", &planned));
    let input = super::plan::write_input("leaks.yaml", &docs);
    let input = input.to_str().expect("a UTF-8 path");
    let mut outputs = Vec::new();
    for format in ["text", "json"] {
        let args = ["-f", input, "-n", ns.name(), "--prune", "-o", format];
        let (code, stdout, stderr) = super::plan::run_plan(&args, None);
        assert!(
            (0..=2).contains(&code),
            "plan -o {format} crashed ({code}): {stderr}"
        );
        assert!(
            stdout.contains("broker"),
            "plan -o {format} said nothing: {stdout}{stderr}"
        );
        outputs.push((format!("plan -o {format} stdout"), stdout));
        outputs.push((format!("plan -o {format} stderr"), stderr));
    }
    outputs
}

#[test]
fn the_scan_encodes_base64_as_secrets_do() {
    assert_eq!(base64(b""), "");
    assert_eq!(base64(b"f"), "Zg==");
    assert_eq!(base64(b"fo"), "Zm8=");
    assert_eq!(base64(b"foo"), "Zm9v");
    assert_eq!(base64(b"hello world"), "aGVsbG8gd29ybGQ=");
    assert_eq!(base64(&[0xff, 0xfe, 0x00]), "//4A");
}

/// `losant-operator export` with Losant echoing every secret in clear: no value (nor the token)
/// reaches its standard output, its files or its standard error, whether it succeeds (by
/// `--application-ref`, by `--token-file`, to stdout or `--out`) or fails (a wrong token).
#[test]
fn export_never_writes_a_secret_value() {
    require_cluster!();
    install_crds();
    let values = Values::new();
    let ns = TestNamespace::new("leaks-export");
    let emulator = EmulatorProcess::builder()
        .token(values.api_token.clone())
        .start()
        .expect("the emulator starts");
    ns.register_log("emulator", emulator.log_path());
    for body in remote_bodies(&values) {
        emulator.create_integration(&body);
    }
    let stored = serde_json::to_string(&emulator.list_integrations()).expect("JSON");
    assert!(
        stored.contains(&values.nonce),
        "control: Losant echoes the values"
    );
    ns.install_application(&emulator, "app");
    ns.create_secret("wrong", &[("token", &values.wrong_token)]);
    ns.apply_ok(&losant_application_manifest(
        "wrong-token",
        emulator.application_id(),
        emulator.base_url(),
        "wrong",
        "token",
    ));
    let dir = TempDir::new("leaks-export");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, &values.api_token).expect("token file");
    let reference = format!("{}/app", ns.name());
    let out = dir.path().join("out");
    let runs: Vec<(&str, Vec<String>, bool)> = vec![
        (
            "by reference",
            vec!["--application-ref".into(), reference.clone()],
            true,
        ),
        (
            "by reference to a directory",
            vec![
                "--application-ref".into(),
                reference,
                "--out".into(),
                out.display().to_string(),
            ],
            true,
        ),
        (
            "by token file",
            vec![
                "--api-url".into(),
                emulator.base_url().into(),
                "--application-id".into(),
                emulator.application_id().into(),
                "--token-file".into(),
                token_file.display().to_string(),
            ],
            true,
        ),
        (
            "with a wrong token",
            vec![
                "--application-ref".into(),
                format!("{}/wrong-token", ns.name()),
            ],
            false,
        ),
    ];
    let mut sources: Vec<(String, String)> = Vec::new();
    for (label, args, succeeds) in runs {
        let run = std::process::Command::new(operator_binary())
            .arg("export")
            .args(&args)
            .output()
            .expect("run export");
        let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
        assert_eq!(run.status.success(), succeeds, "{label}: {stderr}");
        sources.push((
            format!("{label}: stdout"),
            String::from_utf8_lossy(&run.stdout).into(),
        ));
        sources.push((format!("{label}: stderr"), stderr));
    }
    assert!(
        sources[0].1.contains("kind: Integration"),
        "the scan sees the output"
    );
    for entry in std::fs::read_dir(&out).expect("the output directory") {
        let path = entry.expect("an entry").path();
        let text = std::fs::read_to_string(&path).expect("a file");
        sources.push((path.display().to_string(), text));
    }
    assert!(sources.len() >= 8 + 8, "the files are scanned");
    let needles = values.needles();
    let leaks: Vec<String> = sources
        .iter()
        .flat_map(|(source, text)| {
            needles.iter().flat_map(move |(label, needle)| {
                occurrences(text, needle)
                    .into_iter()
                    .map(move |context| format!("{source}: {label}: {context}"))
            })
        })
        .collect();
    assert!(
        leaks.is_empty(),
        "export wrote secret values ({} places):\n{}",
        leaks.len(),
        leaks.join("\n")
    );
}

/// The six integrations as Losant bodies, every secret field set from `values`.
fn remote_bodies(values: &Values) -> Vec<Value> {
    vec![
        json!({"name": "leak mqtt", "integrationType": "mqtt",
            "mqttConfig": {"host": "broker.example.com", "port": 8883, "protocol": "mqtts",
                "password": values.mqtt_password, "privateKey": values.mqtt_private_key}}),
        json!({"name": "leak pubsub", "integrationType": "googlePubSub",
            "googlePubSubConfig": {"projectId": "p", "keyJson": values.gcp_key_json}}),
        json!({"name": "leak hub", "integrationType": "azureEventHub",
            "azureEventHubConfig": {"hubName": "h", "consumerGroup": "c",
                "connectionString": values.azure_connection_string}}),
        json!({"name": "leak particle", "integrationType": "particle",
            "particleConfig": {"accessToken": values.particle_access_token}}),
        json!({"name": "leak sqs", "integrationType": "sqs",
            "sqsConfig": {"queueUrl": "https://sqs.example.com/q",
                "secretAccessKey": values.aws_secret_access_key}}),
        json!({"name": "leak websocket", "integrationType": "websocket",
            "websocketConfig": {"url": "wss://ws.example.com", "password": values.ws_password,
                "privateKey": values.ws_private_key,
                "headers": [{"headerKey": "Authorization", "headerValue": values.ws_authorization}]}}),
    ]
}
