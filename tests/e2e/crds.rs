//! The CRDs on a real API server (the local v1.20 control plane of `scripts/control-plane.sh`):
//! they install and become Established, kubectl's explain, short names, category and printer
//! columns work, valid manifests of every integration type are accepted (and defaulted), and an
//! inline password never reaches the spec. What must be rejected at apply time, and the message
//! saying why, is the table in `hostile.rs`.
//!
//! Needs no operator. Skipped unless `LOSANT_E2E=1` (see `losant_operator::testkit`).

use losant_operator::testkit::{
    TestNamespace, get_object, install_crds, kubectl, kubectl_apply_yaml_with,
    kubectl_dry_run_yaml, kubectl_json, kubectl_ok, require_cluster,
};
use serde_json::Value;

/// A fresh namespace with the CRDs installed.
fn setup(prefix: &str) -> TestNamespace {
    install_crds();
    TestNamespace::new(prefix)
}

/// Where two JSON documents differ (served vs. local), or `None`. Numbers compare by value:
/// the server stores `65535` where the CRD type holds the float `65535.0`.
fn first_difference(served: &Value, local: &Value, path: &str) -> Option<String> {
    match (served, local) {
        (Value::Number(a), Value::Number(b)) => {
            (a.as_f64() != b.as_f64()).then(|| format!("{path}: {a} vs {b}"))
        }
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            keys.into_iter().find_map(|k| match (a.get(k), b.get(k)) {
                (Some(x), Some(y)) => first_difference(x, y, &format!("{path}/{k}")),
                (Some(_), None) => Some(format!("{path}/{k}: only on the server")),
                (None, _) => Some(format!("{path}/{k}: dropped by the server")),
            })
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (x, y))| first_difference(x, y, &format!("{path}/{i}"))),
        _ => (served != local).then(|| format!("{path}: {served} vs {local}")),
    }
}

/// An `Integration` manifest named `name` whose spec is the YAML block `spec` (written flush
/// left in the tests).
fn integration(name: &str, spec: &str) -> String {
    document("Integration", name, spec)
}

fn application(name: &str, spec: &str) -> String {
    document("LosantApplication", name, spec)
}

fn document(kind: &str, name: &str, spec: &str) -> String {
    let mut out =
        format!("apiVersion: losant.io/v1alpha1\nkind: {kind}\nmetadata:\n  name: {name}\nspec:\n");
    for line in spec.trim_matches('\n').lines() {
        out.push_str("  ");
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Valid specs, one per integration type (and both Azure forms).
const VALID_INTEGRATIONS: [(&str, &str); 8] = [
    (
        "mqtt-full",
        r#"
applicationRef: {name: app}
integrationType: mqtt
name: Broker bridge
enabled: false
topics: ["sensors/+/temp", "alerts/#"]
adoptionPolicy: Never
deletionPolicy: Orphan
mqttConfig:
  host: broker.example.com
  port: 8883
  protocol: mqtts
  clientId: losant-bridge
  username: bridge
  passwordSecretRef: {name: mqtt-creds, key: password}
  clean: true
  privateKeySecretRef: {name: mqtt-creds, key: tls.key}
  certificate: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"
  caCertificate: "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----"
  disableSSLVerification: false
  protocolVersion: "5"
"#,
    ),
    (
        "mqtt-minimal",
        r#"
applicationRef: {name: app}
integrationType: mqtt
mqttConfig: {host: 10.0.0.1, port: 1883, protocol: mqtt}
"#,
    ),
    (
        "pubsub",
        r#"
applicationRef: {name: app}
integrationType: googlePubSub
credentialName: gcp-prod
topics: [projects/p/subscriptions/s]
googlePubSubConfig:
  projectId: my-project
  keyJsonSecretRef: {name: gcp, key: key.json}
"#,
    ),
    (
        "azure-connection-string",
        r#"
applicationRef: {name: app}
integrationType: azureEventHub
azureEventHubConfig:
  hubName: telemetry
  consumerGroup: $Default
  connectionStringSecretRef: {name: azure, key: connectionString}
"#,
    ),
    (
        "azure-host-name",
        r#"
applicationRef: {name: app}
integrationType: azureEventHub
credentialName: azure-prod
azureEventHubConfig:
  hubName: telemetry
  consumerGroup: losant
  hostName: example.servicebus.windows.net
"#,
    ),
    (
        "particle",
        r#"
applicationRef: {name: app}
integrationType: particle
topics: [temp]
particleConfig:
  accessTokenSecretRef: {name: particle, key: token}
  productSlugOrId: my-product
  orgSlugOrId: my-org
  deviceNameOrId: dev-1
"#,
    ),
    (
        "sqs",
        r#"
applicationRef: {name: app}
integrationType: sqs
sqsConfig:
  queueUrl: https://sqs.us-east-1.amazonaws.com/123456789012/queue
  accessKeyId: AKIAEXAMPLE
  secretAccessKeySecretRef: {name: aws, key: secretAccessKey}
  region: us-east-1
"#,
    ),
    (
        "websocket",
        r#"
applicationRef: {name: app}
integrationType: websocket
websocketConfig:
  url: wss://stream.example.com/feed
  disableSSLVerification: true
  username: ws-user
  passwordSecretRef: {name: ws, key: password}
  privateKeySecretRef: {name: ws, key: tls.key}
  headers:
  - {headerKey: X-Plain, headerValue: "1"}
  - headerKey: Authorization
    headerValueSecretRef: {name: ws, key: authorization}
"#,
    ),
];

const VALID_APPLICATION: &str = r#"
applicationId: 575ec8687ae143cd83dc4a97
apiUrl: http://127.0.0.1:8787
tokenSecretRef: {name: losant-token, key: token}
"#;

/// An application lowering its share of the rate limit (zero is refused: `hostile.rs`).
const RATE_LIMITED_APPLICATION: &str = r#"
applicationId: 575ec8687ae143cd83dc4abc
tokenSecretRef: {name: t, key: token}
rateLimit: {requestsPerSecond: 2.5, burst: 3}
"#;

const MQTT_SPEC: &str = r#"
applicationRef: {name: app}
integrationType: mqtt
mqttConfig: {host: broker.example.com, port: 8883, protocol: mqtts}
"#;

#[test]
fn crds_install_established_with_the_schema_unchanged() {
    require_cluster!();
    install_crds();
    let local = losant_operator::crd::crds().expect("CRDs build");
    for crd in local {
        let local = serde_json::to_value(&crd).expect("CRD serializes");
        let name = local["metadata"]["name"].as_str().expect("name").to_owned();
        let served = kubectl_json(&["get", "crd", &name]);
        let conditions = served["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let status_of = |t: &str| {
            conditions
                .iter()
                .find(|c| c["type"] == t)
                .map(|c| c["status"].clone())
        };
        assert_eq!(
            status_of("Established"),
            Some("True".into()),
            "{conditions:#?}"
        );
        assert_eq!(
            status_of("NamesAccepted"),
            Some("True".into()),
            "{conditions:#?}"
        );
        // The server flags (but still serves) non-structural schemas with this condition.
        assert_eq!(status_of("NonStructuralSchema"), None, "{conditions:#?}");
        // A 1.20 server silently drops schema keywords it does not know; the stored schema must
        // be exactly ours, or a rule we rely on is not being enforced.
        if let Some(difference) = first_difference(
            &served["spec"]["versions"][0]["schema"],
            &local["spec"]["versions"][0]["schema"],
            "",
        ) {
            panic!(
                "{name}: the API server stored a different schema than the one applied: {difference}"
            );
        }
        // The server adds `listKind`; everything we set must come back as set.
        for (key, value) in local["spec"]["names"].as_object().expect("names") {
            assert_eq!(&served["spec"]["names"][key], value, "{name}: names.{key}");
        }
    }
}

#[test]
fn explain_describes_the_spec_fields() {
    require_cluster!();
    install_crds();
    let spec = kubectl_ok(&["explain", "integration.spec"]);
    for needle in [
        "FIELDS",
        "applicationRef",
        "The `LosantApplication` (same namespace) this integration belongs to.",
        "integrationType",
        "mqttConfig",
        "Config for `integrationType: mqtt`.",
        "deletionPolicy",
    ] {
        assert!(spec.contains(needle), "missing {needle:?} in:\n{spec}");
    }
    let mqtt = kubectl_ok(&["explain", "integration.spec.mqttConfig"]);
    assert!(
        mqtt.contains("Config for `integrationType: mqtt`."),
        "{mqtt}"
    );
    let app_id = kubectl_ok(&["explain", "losantapplication.spec.applicationId"]);
    assert!(
        app_id.contains("The Losant application id (24 hexadecimal characters)."),
        "{app_id}"
    );
}

/// kubectl (against a server without OpenAPI v3, such as 1.20) explains from the OpenAPI v2
/// document, and the API server publishes every `nullable: true` field there without its type
/// and properties. All optional config blocks are nullable in the generated CRD, so
/// `kubectl explain integration.spec.mqttConfig` lists no fields and `.port` just repeats the
/// block's description. Dropping `nullable: true` from the CRD (an explicit null is then pruned,
/// which is harmless) makes this pass; verified by hand on the local 1.20 server.
#[test]
fn explain_describes_nested_config_fields() {
    require_cluster!();
    install_crds();
    let mqtt = kubectl_ok(&["explain", "integration.spec.mqttConfig"]);
    for needle in ["FIELDS", "host", "Broker host name.", "port", "protocol"] {
        assert!(mqtt.contains(needle), "missing {needle:?} in:\n{mqtt}");
    }
    let port = kubectl_ok(&["explain", "integration.spec.mqttConfig.port"]);
    assert!(
        port.contains("port") && port.contains("<integer>"),
        "{port}"
    );
    assert!(port.contains("Broker port."), "{port}");
}

#[test]
fn short_names_and_the_losant_category_list_objects() {
    require_cluster!();
    let ns = setup("crd-names");
    ns.apply_ok(&application("app", VALID_APPLICATION));
    ns.apply_ok(&integration("bridge", MQTT_SPEC));
    let names = |resource: &str| kubectl_ok(&["get", resource, "-n", ns.name(), "-o", "name"]);
    assert_eq!(names("lsint").trim(), "integration.losant.io/bridge");
    assert_eq!(names("lsapp").trim(), "losantapplication.losant.io/app");
    let both = names("losant");
    assert!(
        both.contains("integration.losant.io/bridge")
            && both.contains("losantapplication.losant.io/app"),
        "{both}"
    );
}

#[test]
fn printer_columns_show_type_enabled_ready_connected_remote_id_and_age() {
    require_cluster!();
    let ns = setup("crd-columns");
    ns.apply_ok(&integration("bridge", MQTT_SPEC));
    // Play the operator: report the object Ready with a remote id.
    let status = r#"{"status":{"integrationId":"5f0000000000000000000abc","conditions":[
        {"type":"Ready","status":"True","reason":"Synced","message":"",
         "lastTransitionTime":"2026-01-01T00:00:00Z"},
        {"type":"Connected","status":"False","reason":"Disconnected","message":"",
         "lastTransitionTime":"2026-01-01T00:00:00Z"}]}}"#;
    kubectl_ok(&[
        "patch",
        "integration/bridge",
        "-n",
        ns.name(),
        "--subresource=status",
        "--type=merge",
        "-p",
        status,
    ]);

    let table = kubectl_ok(&["get", "integrations", "-n", ns.name()]);
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().expect("header").split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "TYPE",
            "ENABLED",
            "READY",
            "CONNECTED",
            "REMOTE",
            "ID",
            "AGE"
        ],
        "{table}"
    );
    let row: Vec<&str> = lines.next().expect("one row").split_whitespace().collect();
    assert_eq!(
        row[..6],
        [
            "bridge",
            "mqtt",
            "true",
            "True",
            "False",
            "5f0000000000000000000abc"
        ],
        "{table}"
    );
    // Reason has priority 1: only in the wide view.
    let wide = kubectl_ok(&["get", "integrations", "-n", ns.name(), "-o", "wide"]);
    assert!(!table.contains("REASON"), "{table}");
    assert!(wide.contains("REASON") && wide.contains("Synced"), "{wide}");
}

#[test]
fn valid_manifests_of_every_type_pass_server_validation() {
    require_cluster!();
    let ns = setup("crd-valid");
    let mut failures = Vec::new();
    let docs = VALID_INTEGRATIONS
        .iter()
        .map(|(name, spec)| (*name, integration(name, spec)))
        .chain([
            ("app", application("app", VALID_APPLICATION)),
            (
                "rate-limited",
                application("rate-limited", RATE_LIMITED_APPLICATION),
            ),
        ]);
    for (name, doc) in docs {
        match kubectl_dry_run_yaml(ns.name(), &doc) {
            Ok(out) if out.contains("(server dry run)") => {}
            Ok(out) => failures.push(format!("{name}: unexpected output {out}")),
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "valid manifests were refused:\n{}",
        failures.join("\n")
    );
}

#[test]
fn the_server_fills_in_defaults() {
    require_cluster!();
    let ns = setup("crd-defaults");
    ns.apply_ok(&integration(
        "pubsub",
        "applicationRef: {name: app}\nintegrationType: googlePubSub\n",
    ));
    ns.apply_ok(&application(
        "app",
        "applicationId: 575ec8687ae143cd83dc4a97\ntokenSecretRef: {name: t, key: token}\n",
    ));
    let pubsub = get_object(ns.name(), "integration/pubsub").expect("created");
    assert_eq!(pubsub["spec"]["enabled"], true, "{pubsub}");
    assert_eq!(
        pubsub["spec"]["adoptionPolicy"], "IfExactlyOneMatch",
        "{pubsub}"
    );
    assert!(pubsub["spec"].get("deletionPolicy").is_none(), "{pubsub}");
    let app = get_object(ns.name(), "losantapplication/app").expect("created");
    assert_eq!(app["spec"]["apiUrl"], "https://api.losant.com", "{app}");
}

/// An inline `password` in `mqttConfig` (the field is `passwordSecretRef`) never reaches the
/// spec the operator reads.
///
/// What a 1.20 server with the current CRD does (checked with kubectl 1.32):
/// - `kubectl apply` (client-side) **accepts** it and the server prunes the unknown field from the
///   spec: kubectl validates against OpenAPI v2, where the nullable `mqttConfig` is published
///   without its properties, so it cannot tell the field is unknown, and v1 CRDs prune unknown
///   fields silently. (With `nullable` dropped from the CRD, kubectl refuses it instead:
///   `unknown field "password" in io.losant.v1alpha1.Integration.spec.mqttConfig`; this test
///   allows both.)
/// - **But the plaintext stays in etcd**: client-side apply copies the whole manifest into the
///   `kubectl.kubernetes.io/last-applied-configuration` annotation, pruned field included. Only
///   refusing the manifest avoids that.
/// - `kubectl apply --validate=false` is accepted, pruned and annotated the same way.
/// - `kubectl apply --server-side` is **refused**: `failed to create typed patch object:
///   .spec.mqttConfig.password: field not declared in schema`.
#[test]
fn an_inline_password_is_pruned_from_the_spec_or_refused() {
    require_cluster!();
    let ns = setup("crd-inline-pw");
    let doc = |name: &str| {
        integration(
            name,
            r#"
applicationRef: {name: app}
integrationType: mqtt
mqttConfig:
  host: broker.example.com
  port: 8883
  protocol: mqtts
  password: hunter2
"#,
        )
    };
    let assert_pruned = |name: &str| {
        let stored = get_object(ns.name(), &format!("integration/{name}")).expect("stored");
        let mqtt = &stored["spec"]["mqttConfig"];
        assert_eq!(mqtt["host"], "broker.example.com", "{stored}");
        assert!(mqtt.get("password").is_none(), "password in spec: {stored}");
        assert!(!stored["spec"].to_string().contains("hunter2"), "{stored}");
        // Documented above: kubectl's last-applied annotation keeps what the user wrote.
        let annotation =
            stored["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
                .as_str()
                .unwrap_or_default();
        assert!(annotation.contains("hunter2"), "{stored}");
    };

    match kubectl_apply_yaml_with(ns.name(), &doc("client-side"), &[]) {
        Ok(_) => {
            eprintln!("kubectl apply accepted the unknown field; the server pruned it");
            assert_pruned("client-side");
        }
        Err(stderr) => {
            eprintln!("kubectl apply refused the unknown field");
            assert!(stderr.contains("unknown field \"password\""), "{stderr}");
        }
    }

    kubectl_apply_yaml_with(ns.name(), &doc("unvalidated"), &["--validate=false"])
        .expect("the API server prunes unknown fields of v1 CRDs rather than refusing them");
    assert_pruned("unvalidated");

    let stderr = kubectl_apply_yaml_with(ns.name(), &doc("server-side"), &["--server-side"])
        .expect_err("server-side apply refuses fields outside the schema");
    // kubectl's own schema check (which now sees the config blocks' fields) or the server's
    // refuses it, depending on which runs first.
    assert!(
        stderr.contains(".spec.mqttConfig.password: field not declared in schema")
            || stderr.contains("unknown field \"password\""),
        "{stderr}"
    );
    assert!(get_object(ns.name(), "integration/server-side").is_none());
}

/// `kubectl` must be able to reach the server at all; a clearer failure than every test above
/// timing out when the control plane died.
#[test]
fn the_api_server_answers() {
    require_cluster!();
    let out = kubectl(&["get", "--raw", "/readyz"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let version: Value =
        serde_json::from_str(&kubectl_ok(&["get", "--raw", "/version"])).expect("version JSON");
    assert!(version["gitVersion"].is_string(), "{version}");
}
