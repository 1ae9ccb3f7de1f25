//! End-to-end: bad input, measured. A corpus of invalid and hostile specs (every type's required
//! fields missing, wrong enums and JSON types, out-of-range numbers, over-long strings, duplicate
//! and too many topics, mismatched or missing config blocks, unknown fields, references to missing
//! Secrets and keys, Secret values outside Losant's limits, broken `LosantApplication`s) plus names
//! full of special characters, all applied to one namespace watched by one operator against one
//! emulator.
//!
//! Every entry has an expected outcome, checked one by one:
//! - `Rejected`: `kubectl apply` refuses it and its stderr names the offending field; the API
//!   server refuses it too, naming the field (kubectl's own schema validation catches some
//!   entries before they reach the server: those are sent again with `--validate=false
//!   --dry-run=server`). Where the wording matters (the bad value, the bound, the schema rule
//!   that failed), both refusals must also say it, and the server's alone its own wording. This
//!   is the one table of manifests the API server must refuse; `crds.rs` checks what it must
//!   accept.
//! - `RejectedByKubectl`: unknown fields. kubectl's validation refuses them (naming the field); an
//!   API server of 1.20 on its own prunes them instead, so the check is that the field is gone from
//!   what the server would store.
//! - `Reported`: accepted by the API server, then `Ready=False` with that reason (`Stalled` or
//!   `Reconciling` saying the same) and a message naming the problem (and never a Secret value).
//! - `RoundTrip`: a name full of special characters is valid, becomes `Ready`, and exists in Losant
//!   exactly once, byte for byte.
//!
//! For the whole corpus: Losant sees one POST per valid name and no other write (no PATCH, no
//! DELETE), nothing else exists remotely, and the operator is still running, without a panic.
//! A summary line gives the counts.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use losant_operator::testkit::*;
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(90);
/// Concurrent `kubectl apply` calls while feeding the corpus in.
const APPLY_THREADS: usize = 8;

/// What must happen to one corpus entry.
#[derive(Clone, Debug)]
enum Expect {
    /// Refused at `kubectl apply`, and by the API server alone, both naming `field` (a path such
    /// as `spec.mqttConfig.port`; see [`names_field`]) and saying every one of `mentions`; the
    /// API server alone also says every one of `server_mentions` (its wording, where kubectl's
    /// own validation words it differently).
    Rejected {
        field: &'static str,
        mentions: &'static [&'static str],
        server_mentions: &'static [&'static str],
    },
    /// An unknown field: refused by kubectl's validation, naming `field`; the API server alone
    /// prunes it from what it would store (the JSON pointer `pruned`) instead.
    RejectedByKubectl {
        field: &'static str,
        pruned: &'static str,
    },
    /// Stored, then reported as `Ready=False` with `reason` (and, as kstatus has it, `Stalled` —
    /// blocked until something changes — or `Reconciling` with the same reason); the message
    /// contains every string of `mentions`.
    Reported {
        reason: &'static str,
        mentions: &'static [&'static str],
    },
    /// Stored and synced: Losant holds exactly one integration named `name`.
    RoundTrip { name: String },
}

/// Whether an error output names the field at `path`: the API server writes the whole path
/// (`spec.mqttConfig.port: Invalid value`, `"spec.sqsConfig" must not validate`); kubectl's own
/// validation writes it too (`ValidationError(Integration.spec.mqttConfig.port)`), except for a
/// missing or unknown field, which it names after its parent's path (`missing required field
/// "host" in io.losant.v1alpha1.Integration.spec.mqttConfig`).
fn names_field(output: &str, path: &str) -> bool {
    if output.contains(path) {
        return true;
    }
    path.rsplit_once('.').is_some_and(|(parent, last)| {
        output.contains(&format!("\"{last}\" in ")) && output.contains(parent)
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Integration,
    Application,
}

/// One corpus entry: a short id (also the object's name, prefixed), the kind and spec, and the
/// expected outcome. A spec of `Value::Null` means "no spec at all".
#[derive(Clone, Debug)]
struct Case {
    id: &'static str,
    kind: Kind,
    spec: Value,
    expect: Expect,
}

impl Case {
    fn object_name(&self) -> String {
        let prefix = match self.kind {
            Kind::Integration => "i",
            Kind::Application => "a",
        };
        format!("{prefix}-{}", self.id)
    }

    fn kind_name(&self) -> String {
        match self.kind {
            Kind::Integration => format!("integration/{}", self.object_name()),
            Kind::Application => format!("losantapplication/{}", self.object_name()),
        }
    }

    fn manifest(&self) -> String {
        let kind = match self.kind {
            Kind::Integration => "Integration",
            Kind::Application => "LosantApplication",
        };
        let mut object = json!({
            "apiVersion": "losant.io/v1alpha1",
            "kind": kind,
            "metadata": {"name": self.object_name()},
        });
        if !self.spec.is_null() {
            object["spec"] = self.spec.clone();
        }
        object.to_string()
    }
}

fn rejected(id: &'static str, spec: Value, field: &'static str) -> Case {
    Case {
        id,
        kind: Kind::Integration,
        spec,
        expect: Expect::Rejected {
            field,
            mentions: &[],
            server_mentions: &[],
        },
    }
}

/// A `LosantApplication` the API server must refuse, naming `field`.
fn app_rejected(id: &'static str, spec: Value, field: &'static str) -> Case {
    Case {
        kind: Kind::Application,
        ..rejected(id, spec, field)
    }
}

impl Case {
    /// A rejected entry whose refusals (kubectl's and the API server's alone) must also say
    /// every one of `mentions`.
    fn saying(mut self, mentions: &'static [&'static str]) -> Case {
        match &mut self.expect {
            Expect::Rejected { mentions: m, .. } => *m = mentions,
            other => panic!(
                "{}: only a rejected entry says something, not {other:?}",
                self.id
            ),
        }
        self
    }

    /// A rejected entry whose refusal by the API server alone must also say every one of
    /// `mentions`.
    fn server_saying(mut self, mentions: &'static [&'static str]) -> Case {
        match &mut self.expect {
            Expect::Rejected {
                server_mentions, ..
            } => *server_mentions = mentions,
            other => panic!(
                "{}: only a rejected entry says something, not {other:?}",
                self.id
            ),
        }
        self
    }
}

fn reported(
    id: &'static str,
    spec: Value,
    reason: &'static str,
    mentions: &'static [&'static str],
) -> Case {
    Case {
        id,
        kind: Kind::Integration,
        spec,
        expect: Expect::Reported { reason, mentions },
    }
}

fn app_case(id: &'static str, spec: Value, expect: Expect) -> Case {
    Case {
        id,
        kind: Kind::Application,
        spec,
        expect,
    }
}

/// `{"name": secret, "key": key}`.
fn secret_ref(secret: &str, key: &str) -> Value {
    json!({"name": secret, "key": key})
}

/// A valid spec of `integration_type` (config block included), for entries that break one thing.
fn valid(integration_type: &str) -> Value {
    let mut spec = json!({"applicationRef": {"name": "app"}, "integrationType": integration_type});
    let (field, config) = match integration_type {
        "mqtt" => (
            "mqttConfig",
            json!({"host": "broker.example.com", "port": 8883, "protocol": "mqtts",
                   "passwordSecretRef": secret_ref("creds", "mqtt-password")}),
        ),
        "googlePubSub" => (
            "googlePubSubConfig",
            json!({"projectId": "p", "keyJsonSecretRef": secret_ref("creds", "gcp-key-json")}),
        ),
        "azureEventHub" => (
            "azureEventHubConfig",
            json!({"hubName": "hub", "consumerGroup": "$Default",
                   "connectionStringSecretRef": secret_ref("creds", "azure-connection-string")}),
        ),
        "particle" => (
            "particleConfig",
            json!({"accessTokenSecretRef": secret_ref("creds", "particle-access-token")}),
        ),
        "sqs" => (
            "sqsConfig",
            json!({"queueUrl": "https://sqs.us-east-1.amazonaws.com/1/q", "region": "us-east-1",
                   "secretAccessKeySecretRef": secret_ref("creds", "aws-secret-access-key")}),
        ),
        "websocket" => (
            "websocketConfig",
            json!({"url": "wss://stream.example.com/feed",
                   "headers": [{"headerKey": "X-Client", "headerValue": "losant"}]}),
        ),
        other => panic!("no such type {other}"),
    };
    spec[field] = config;
    spec
}

/// `valid(t)` with the value at `pointer` (e.g. `/mqttConfig/port`) replaced.
fn with(integration_type: &str, pointer: &str, value: Value) -> Value {
    let mut spec = valid(integration_type);
    *spec
        .pointer_mut(pointer)
        .unwrap_or_else(|| panic!("{pointer} is not in a valid {integration_type} spec")) = value;
    spec
}

/// `valid(t)` with `pointer`'s parent gaining (or replacing) the member `key`.
fn with_member(integration_type: &str, parent: &str, key: &str, value: Value) -> Value {
    let mut spec = valid(integration_type);
    let object = if parent.is_empty() {
        &mut spec
    } else {
        spec.pointer_mut(parent).expect("parent exists")
    };
    object[key] = value;
    spec
}

/// `valid(t)` without the member at `pointer`.
fn without(integration_type: &str, pointer: &str) -> Value {
    let mut spec = valid(integration_type);
    let (parent, key) = pointer.rsplit_once('/').expect("a pointer");
    let object = if parent.is_empty() {
        &mut spec
    } else {
        spec.pointer_mut(parent).expect("parent exists")
    };
    assert!(
        object.as_object_mut().unwrap().remove(key).is_some(),
        "{pointer} was in a valid {integration_type} spec"
    );
    spec
}

/// A distinctive string of exactly `len` characters starting with `tag`.
fn long(tag: &str, len: usize) -> String {
    let mut text = tag.to_owned();
    while text.chars().count() < len {
        text.push(char::from(b'a' + (text.len() % 26) as u8));
    }
    text.chars().take(len).collect()
}

/// Values of the Secret `limits`: each breaks one of Losant's length limits for the field it
/// feeds (checked by the operator, since the schema cannot see into Secrets).
fn limit_values() -> Vec<(&'static str, String)> {
    vec![
        ("mqtt-password-1025", long("LIMIT-mqttpw-", 1025)),
        ("mqtt-private-key-3", "LK3".to_owned()),
        ("ws-private-key-32768", long("LIMIT-wspk-", 32768)),
        ("gcp-key-json-3", "{x}".to_owned()),
        ("azure-connection-1025", long("LIMIT-azure-", 1025)),
        ("particle-token-empty", String::new()),
        ("aws-secret-1025", long("LIMIT-aws-", 1025)),
        ("ws-header-1025", long("LIMIT-wshdr-", 1025)),
        ("ws-password-1025", long("LIMIT-wspw-", 1025)),
    ]
}

/// Values of the Secret `creds`, all within Losant's limits.
const CREDS: [(&str, &str); 6] = [
    ("mqtt-password", "hostile-mqtt-password"),
    ("gcp-key-json", r#"{"type":"service_account"}"#),
    (
        "azure-connection-string",
        "Endpoint=sb://x/;SharedAccessKey=hostile",
    ),
    ("particle-access-token", "hostile-particle-token"),
    ("aws-secret-access-key", "hostile-aws-secret"),
    ("ws-password", "hostile-ws-password"),
];

/// Names full of characters that mean something in URLs, globs, shells, YAML, HTML or terminals.
/// None may be refused, and each must reach Losant exactly as written.
fn special_names() -> Vec<(&'static str, String)> {
    let all_of_them = "*+&#%?[] ";
    let mut long_name = String::new();
    while long_name.chars().count() < 255 {
        long_name.push_str(all_of_them);
    }
    let long_name: String = long_name.chars().take(255).collect();
    vec![
        ("name-star", "glob * star".to_owned()),
        ("name-plus", "plus + sign".to_owned()),
        ("name-amp", "amp & and = eq".to_owned()),
        ("name-hash", "hash # fragment".to_owned()),
        ("name-percent", "percent % and %2B %00 encoded".to_owned()),
        ("name-question", "question ? mark".to_owned()),
        ("name-brackets", "brackets [a-z] [!x] {a,b}".to_owned()),
        ("name-spaces", "  spaces  around  ".to_owned()),
        ("name-single-space", " ".to_owned()),
        ("name-unicode", "ünïcødé 日本語 🚀 ʕ•ᴥ•ʔ".to_owned()),
        ("name-emoji-zwj-rtl", "👍🏽 👨‍👩‍👧 \u{202e}desrever".to_owned()),
        (
            "name-control",
            "ctl \u{1}\u{7}\t\n\r\u{1b}[31m\u{7f} end".to_owned(),
        ),
        ("name-quotes", r#"quotes " ' ` and \ backslash"#.to_owned()),
        ("name-slash", "slash / ../../ path".to_owned()),
        (
            "name-query",
            "q?filterField=id&filter=*&perPage=1".to_owned(),
        ),
        ("name-html", "<script>alert(1)</script>".to_owned()),
        (
            "name-yaml",
            "yaml: {a: b} - [c] !tag &anchor *alias".to_owned(),
        ),
        ("name-all", format!("all {all_of_them} at once")),
        ("name-case-upper", "Case Sensitive".to_owned()),
        ("name-case-lower", "case sensitive".to_owned()),
        // "wild*" as a glob would also match "wild-card": exact matches only.
        ("name-wild-star", "wild*".to_owned()),
        ("name-wild-card", "wild-card".to_owned()),
        ("name-255", long_name),
    ]
}

/// The corpus. Every `Rejected` mention is (part of) the offending field's path or name.
fn corpus() -> Vec<Case> {
    let many_topics: Vec<String> = (0..257).map(|i| format!("t/{i}")).collect();
    let many_headers: Vec<Value> = (0..51)
        .map(|i| json!({"headerKey": format!("X-{i}"), "headerValue": "v"}))
        .collect();
    let mut cases = vec![
        // ---- required fields missing, each type
        rejected("no-spec", Value::Null, "spec"),
        rejected(
            "no-application-ref",
            without("mqtt", "/applicationRef"),
            "spec.applicationRef",
        ),
        rejected(
            "no-integration-type",
            without("sqs", "/integrationType"),
            "spec.integrationType",
        ),
        rejected(
            "mqtt-no-host",
            without("mqtt", "/mqttConfig/host"),
            "spec.mqttConfig.host",
        )
        .server_saying(&["spec.mqttConfig.host: Required value"]),
        rejected(
            "mqtt-no-port",
            without("mqtt", "/mqttConfig/port"),
            "spec.mqttConfig.port",
        ),
        rejected(
            "mqtt-no-protocol",
            without("mqtt", "/mqttConfig/protocol"),
            "spec.mqttConfig.protocol",
        ),
        rejected(
            "azure-no-hub-name",
            without("azureEventHub", "/azureEventHubConfig/hubName"),
            "spec.azureEventHubConfig.hubName",
        ),
        rejected(
            "azure-no-consumer-group",
            without("azureEventHub", "/azureEventHubConfig/consumerGroup"),
            "spec.azureEventHubConfig.consumerGroup",
        ),
        rejected(
            "azure-no-auth",
            without(
                "azureEventHub",
                "/azureEventHubConfig/connectionStringSecretRef",
            ),
            "spec.azureEventHubConfig",
        )
        .saying(&["oneOf", "Found none"]),
        rejected(
            "azure-both-auths",
            with_member(
                "azureEventHub",
                "/azureEventHubConfig",
                "hostName",
                json!("ns.servicebus.windows.net"),
            ),
            "spec.azureEventHubConfig",
        )
        .saying(&["oneOf", "Found 2"]),
        rejected(
            "particle-no-token",
            without("particle", "/particleConfig/accessTokenSecretRef"),
            "spec.particleConfig.accessTokenSecretRef",
        ),
        rejected(
            "sqs-no-queue-url",
            without("sqs", "/sqsConfig/queueUrl"),
            "spec.sqsConfig.queueUrl",
        ),
        rejected(
            "websocket-no-url",
            without("websocket", "/websocketConfig/url"),
            "spec.websocketConfig.url",
        ),
        rejected(
            "pubsub-ref-no-key",
            without("googlePubSub", "/googlePubSubConfig/keyJsonSecretRef/key"),
            "spec.googlePubSubConfig.keyJsonSecretRef.key",
        ),
        rejected(
            "websocket-header-no-key",
            with(
                "websocket",
                "/websocketConfig/headers",
                json!([{"headerValue": "v"}]),
            ),
            "spec.websocketConfig.headers.headerKey",
        ),
        rejected(
            "websocket-header-both-values",
            with(
                "websocket",
                "/websocketConfig/headers",
                json!([{"headerKey": "A", "headerValue": "v",
                        "headerValueSecretRef": secret_ref("creds", "ws-password")}]),
            ),
            "spec.websocketConfig.headers",
        )
        .saying(&["oneOf"]),
        rejected(
            "websocket-header-no-value",
            with(
                "websocket",
                "/websocketConfig/headers",
                json!([{"headerKey": "A"}]),
            ),
            "spec.websocketConfig.headers",
        ),
        // ---- wrong enums
        rejected(
            "type-unknown",
            with("mqtt", "/integrationType", json!("http")),
            "spec.integrationType",
        )
        .saying(&["\"http\""]),
        rejected(
            "type-wrong-case",
            with("mqtt", "/integrationType", json!("MQTT")),
            "spec.integrationType",
        ),
        rejected(
            "mqtt-protocol-tcp",
            with("mqtt", "/mqttConfig/protocol", json!("tcp")),
            "spec.mqttConfig.protocol",
        )
        .saying(&["tcp"]),
        rejected(
            "mqtt-protocol-version-4",
            with_member("mqtt", "/mqttConfig", "protocolVersion", json!("4")),
            "spec.mqttConfig.protocolVersion",
        ),
        rejected(
            "adoption-policy-always",
            with_member("sqs", "", "adoptionPolicy", json!("Always")),
            "spec.adoptionPolicy",
        ),
        rejected(
            "deletion-policy-keep",
            with_member("sqs", "", "deletionPolicy", json!("Keep")),
            "spec.deletionPolicy",
        )
        .saying(&["Keep"]),
        // ---- wrong JSON types
        rejected(
            "port-string",
            with("mqtt", "/mqttConfig/port", json!("8883")),
            "spec.mqttConfig.port",
        ),
        rejected(
            "port-float",
            with("mqtt", "/mqttConfig/port", json!(1.5)),
            "spec.mqttConfig.port",
        ),
        rejected(
            "protocol-version-number",
            with_member("mqtt", "/mqttConfig", "protocolVersion", json!(5)),
            "spec.mqttConfig.protocolVersion",
        ),
        rejected(
            "name-boolean",
            with_member("sqs", "", "name", json!(true)),
            "spec.name",
        ),
        rejected(
            "name-number",
            with_member("sqs", "", "name", json!(12345)),
            "spec.name",
        ),
        rejected(
            "topics-object",
            with_member("mqtt", "", "topics", json!({"a": "b"})),
            "spec.topics",
        ),
        rejected(
            "topics-string",
            with_member("mqtt", "", "topics", json!("a/b")),
            "spec.topics",
        ),
        rejected(
            "topic-number",
            with_member("mqtt", "", "topics", json!([42])),
            "spec.topics",
        ),
        rejected(
            "enabled-string",
            with_member("sqs", "", "enabled", json!("yes")),
            "spec.enabled",
        ),
        rejected(
            "clean-string",
            with_member("mqtt", "/mqttConfig", "clean", json!("true")),
            "spec.mqttConfig.clean",
        ),
        rejected(
            "config-string",
            with("mqtt", "/mqttConfig", json!("host=broker")),
            "spec.mqttConfig",
        ),
        rejected(
            "secret-ref-string",
            with(
                "mqtt",
                "/mqttConfig/passwordSecretRef",
                json!("creds/mqtt-password"),
            ),
            "spec.mqttConfig.passwordSecretRef",
        ),
        rejected(
            "headers-object",
            with("websocket", "/websocketConfig/headers", json!({"X-A": "v"})),
            "spec.websocketConfig.headers",
        ),
        // ---- out-of-range numbers
        rejected(
            "port-zero",
            with("mqtt", "/mqttConfig/port", json!(0)),
            "spec.mqttConfig.port",
        )
        .saying(&["greater than or equal to 1"]),
        rejected(
            "port-negative",
            with("mqtt", "/mqttConfig/port", json!(-1)),
            "spec.mqttConfig.port",
        ),
        rejected(
            "port-65536",
            with("mqtt", "/mqttConfig/port", json!(65536)),
            "spec.mqttConfig.port",
        )
        .saying(&["less than or equal to 65535"]),
        rejected(
            "port-huge",
            with("mqtt", "/mqttConfig/port", json!(4_294_967_297_i64)),
            "spec.mqttConfig.port",
        ),
        // ---- over-long and empty strings
        rejected(
            "name-256",
            with_member("sqs", "", "name", json!(long("n", 256))),
            "spec.name",
        )
        .saying(&["at most 255"]),
        rejected(
            "name-empty",
            with_member("sqs", "", "name", json!("")),
            "spec.name",
        ),
        rejected(
            "host-1025",
            with("mqtt", "/mqttConfig/host", json!(long("h", 1025))),
            "spec.mqttConfig.host",
        ),
        rejected(
            "certificate-32768",
            with_member(
                "mqtt",
                "/mqttConfig",
                "certificate",
                json!(long("-----BEGIN", 32768)),
            ),
            "spec.mqttConfig.certificate",
        ),
        rejected(
            "ca-certificate-3",
            with_member(
                "websocket",
                "/websocketConfig",
                "caCertificate",
                json!("PEM"),
            ),
            "spec.websocketConfig.caCertificate",
        ),
        rejected(
            "credential-name-256",
            with_member("googlePubSub", "", "credentialName", json!(long("c", 256))),
            "spec.credentialName",
        ),
        rejected(
            "azure-hub-name-257",
            with(
                "azureEventHub",
                "/azureEventHubConfig/hubName",
                json!(long("h", 257)),
            ),
            "spec.azureEventHubConfig.hubName",
        ),
        rejected(
            "sqs-access-key-id-129",
            with_member("sqs", "/sqsConfig", "accessKeyId", json!(long("AKIA", 129))),
            "spec.sqsConfig.accessKeyId",
        ),
        rejected(
            "topic-1025",
            with_member("mqtt", "", "topics", json!([long("t/", 1025)])),
            "spec.topics",
        ),
        rejected(
            "topic-empty",
            with_member("mqtt", "", "topics", json!([""])),
            "spec.topics",
        ),
        // ---- topics and lists
        rejected(
            "topics-duplicate",
            with_member("mqtt", "", "topics", json!(["a/#", "b", "a/#"])),
            "spec.topics",
        )
        .saying(&["spec.topics[2]", "Duplicate value"]),
        rejected(
            "topics-257",
            with_member("mqtt", "", "topics", json!(many_topics)),
            "spec.topics",
        ),
        rejected(
            "headers-51",
            with("websocket", "/websocketConfig/headers", json!(many_headers)),
            "spec.websocketConfig.headers",
        ),
        // ---- config blocks. A 1.20 server reports the errors of one `anyOf` branch only, so
        // the branch order decides what the user reads: the "block required" rule is written
        // `anyOf: [{required: [mqttConfig]}, {not: <type is mqtt>}]`, giving
        // `spec.mqttConfig: Required value`, and the "block only with its type" rule
        // `anyOf: [{properties: {mqttConfig: {not: {}}}}, <type is mqtt>]`, giving
        // `"spec.mqttConfig" must not validate the schema (not)`.
        rejected(
            "config-missing-mqtt",
            without("mqtt", "/mqttConfig"),
            "spec.mqttConfig",
        )
        .saying(&["\"spec\"", "anyOf"]),
        rejected(
            "config-missing-sqs",
            without("sqs", "/sqsConfig"),
            "spec.sqsConfig",
        ),
        rejected(
            "config-mismatched",
            {
                let mut spec = without("mqtt", "/mqttConfig");
                spec["sqsConfig"] = valid("sqs")["sqsConfig"].clone();
                spec
            },
            "spec.sqsConfig",
        ),
        rejected(
            "config-extra-block",
            with_member(
                "mqtt",
                "",
                "websocketConfig",
                valid("websocket")["websocketConfig"].clone(),
            ),
            "spec.websocketConfig",
        )
        .saying(&["anyOf"]),
        // ---- references that are not names
        rejected(
            "secret-ref-bad-name",
            with(
                "mqtt",
                "/mqttConfig/passwordSecretRef/name",
                json!("Creds_Upper"),
            ),
            "spec.mqttConfig.passwordSecretRef.name",
        ),
        rejected(
            "secret-ref-other-namespace",
            with(
                "mqtt",
                "/mqttConfig/passwordSecretRef/name",
                json!("kube-system/creds"),
            ),
            "spec.mqttConfig.passwordSecretRef.name",
        ),
        rejected(
            "secret-ref-bad-key",
            with(
                "mqtt",
                "/mqttConfig/passwordSecretRef/key",
                json!("../etc/passwd"),
            ),
            "spec.mqttConfig.passwordSecretRef.key",
        ),
        rejected(
            "application-ref-bad-name",
            with("sqs", "/applicationRef/name", json!("App!")),
            "spec.applicationRef.name",
        ),
        // ---- unknown fields
        Case {
            id: "inline-password",
            kind: Kind::Integration,
            spec: with_member("mqtt", "/mqttConfig", "password", json!("inline-secret")),
            expect: Expect::RejectedByKubectl {
                field: "spec.mqttConfig.password",
                pruned: "/spec/mqttConfig/password",
            },
        },
        Case {
            id: "secret-ref-namespace-field",
            kind: Kind::Integration,
            spec: with_member(
                "mqtt",
                "/mqttConfig/passwordSecretRef",
                "namespace",
                json!("kube-system"),
            ),
            expect: Expect::RejectedByKubectl {
                field: "spec.mqttConfig.passwordSecretRef.namespace",
                pruned: "/spec/mqttConfig/passwordSecretRef/namespace",
            },
        },
        Case {
            id: "unknown-top-level",
            kind: Kind::Integration,
            spec: with_member("sqs", "", "includeWorkflows", json!(true)),
            expect: Expect::RejectedByKubectl {
                field: "spec.includeWorkflows",
                pruned: "/spec/includeWorkflows",
            },
        },
        // ---- Secrets: missing, missing keys, values Losant would refuse
        reported(
            "secret-missing",
            with(
                "mqtt",
                "/mqttConfig/passwordSecretRef/name",
                json!("no-such-secret"),
            ),
            "SecretNotFound",
            &["no-such-secret"],
        ),
        reported(
            "secret-missing-particle",
            with(
                "particle",
                "/particleConfig/accessTokenSecretRef",
                secret_ref("gone", "token"),
            ),
            "SecretNotFound",
            &["\"gone\""],
        ),
        reported(
            "secret-key-missing",
            with(
                "mqtt",
                "/mqttConfig/passwordSecretRef/key",
                json!("no-such-key"),
            ),
            "SecretKeyNotFound",
            &["creds", "no-such-key"],
        ),
        reported(
            "secret-key-missing-pubsub",
            with(
                "googlePubSub",
                "/googlePubSubConfig/keyJsonSecretRef/key",
                json!("nope"),
            ),
            "SecretKeyNotFound",
            &["creds", "nope"],
        ),
        reported(
            "secret-not-utf8",
            with(
                "sqs",
                "/sqsConfig/secretAccessKeySecretRef",
                secret_ref("binary", "raw"),
            ),
            "SecretKeyInvalid",
            &["binary", "raw"],
        ),
        reported(
            "mqtt-password-1025",
            with(
                "mqtt",
                "/mqttConfig/passwordSecretRef",
                secret_ref("limits", "mqtt-password-1025"),
            ),
            "InvalidSpec",
            &["mqttConfig.password", "mqtt-password-1025", "1024"],
        ),
        reported(
            "mqtt-private-key-3",
            with_member(
                "mqtt",
                "/mqttConfig",
                "privateKeySecretRef",
                secret_ref("limits", "mqtt-private-key-3"),
            ),
            "InvalidSpec",
            &["mqttConfig.privateKey", "mqtt-private-key-3"],
        ),
        reported(
            "ws-private-key-32768",
            with_member(
                "websocket",
                "/websocketConfig",
                "privateKeySecretRef",
                secret_ref("limits", "ws-private-key-32768"),
            ),
            "InvalidSpec",
            &[
                "websocketConfig.privateKey",
                "ws-private-key-32768",
                "32767",
            ],
        ),
        reported(
            "ws-password-1025",
            with_member(
                "websocket",
                "/websocketConfig",
                "passwordSecretRef",
                secret_ref("limits", "ws-password-1025"),
            ),
            "InvalidSpec",
            &["websocketConfig.password", "ws-password-1025"],
        ),
        reported(
            "ws-header-1025",
            with(
                "websocket",
                "/websocketConfig/headers",
                json!([{"headerKey": "Authorization",
                        "headerValueSecretRef": secret_ref("limits", "ws-header-1025")}]),
            ),
            "InvalidSpec",
            &["websocketConfig.headers", "ws-header-1025"],
        ),
        reported(
            "gcp-key-json-3",
            with(
                "googlePubSub",
                "/googlePubSubConfig/keyJsonSecretRef",
                secret_ref("limits", "gcp-key-json-3"),
            ),
            "InvalidSpec",
            &["googlePubSubConfig.keyJson", "gcp-key-json-3"],
        ),
        reported(
            "azure-connection-1025",
            with(
                "azureEventHub",
                "/azureEventHubConfig/connectionStringSecretRef",
                secret_ref("limits", "azure-connection-1025"),
            ),
            "InvalidSpec",
            &[
                "azureEventHubConfig.connectionString",
                "azure-connection-1025",
            ],
        ),
        reported(
            "particle-token-empty",
            with(
                "particle",
                "/particleConfig/accessTokenSecretRef",
                secret_ref("limits", "particle-token-empty"),
            ),
            "InvalidSpec",
            &["particleConfig.accessToken", "particle-token-empty"],
        ),
        reported(
            "aws-secret-1025",
            with(
                "sqs",
                "/sqsConfig/secretAccessKeySecretRef",
                secret_ref("limits", "aws-secret-1025"),
            ),
            "InvalidSpec",
            &["sqsConfig.secretAccessKey", "aws-secret-1025"],
        ),
        // ---- applications that are missing or not usable
        reported(
            "application-missing",
            with("sqs", "/applicationRef/name", json!("ghost-app")),
            "ApplicationNotFound",
            &["ghost-app"],
        ),
        reported(
            "application-bad-token",
            with("sqs", "/applicationRef/name", json!("a-wrong-token")),
            "ApplicationNotReady",
            &["a-wrong-token", "Unauthorized"],
        ),
        reported(
            "application-no-token-secret",
            with(
                "sqs",
                "/applicationRef/name",
                json!("a-token-secret-missing"),
            ),
            "ApplicationNotReady",
            &["a-token-secret-missing", "SecretNotFound"],
        ),
    ];
    cases.extend(application_cases());
    for (id, name) in special_names() {
        let mut spec = valid("sqs");
        spec["name"] = json!(name);
        cases.push(Case {
            id,
            kind: Kind::Integration,
            spec,
            expect: Expect::RoundTrip { name },
        });
    }
    cases
}

/// Broken `LosantApplication`s. Their `apiUrl` and ids are filled in by [`bind_applications`].
fn application_cases() -> Vec<Case> {
    let spec = |id: &str, url: &str, token: Value| json!({"applicationId": id, "apiUrl": url, "tokenSecretRef": token});
    let ok_token = || secret_ref("app-token", "token");
    vec![
        app_rejected(
            "id-not-hex",
            spec("zzzzzzzzzzzzzzzzzzzzzzzz", "@URL", ok_token()),
            "spec.applicationId",
        )
        .saying(&["should match"]),
        app_rejected(
            "id-too-short",
            spec("575ec8687ae143cd83dc4a9", "@URL", ok_token()),
            "spec.applicationId",
        ),
        app_rejected(
            "api-url-ftp",
            spec("@APP", "ftp://127.0.0.1/losant", ok_token()),
            "spec.apiUrl",
        ),
        app_rejected(
            "api-url-no-scheme",
            spec("@APP", "api.losant.com", ok_token()),
            "spec.apiUrl",
        ),
        app_rejected(
            "api-url-space",
            spec("@APP", "https://api.losant.com/ x", ok_token()),
            "spec.apiUrl",
        ),
        app_rejected(
            "no-token-ref",
            json!({"applicationId": "@APP", "apiUrl": "@URL"}),
            "spec.tokenSecretRef",
        ),
        app_rejected(
            "token-ref-other-namespace",
            spec("@APP", "@URL", secret_ref("kube-system/token", "token")),
            "spec.tokenSecretRef.name",
        ),
        app_rejected(
            "rate-limit-zero",
            with_rate_limit(
                spec("@APP", "@URL", ok_token()),
                json!({"requestsPerSecond": 0}),
            ),
            "spec.rateLimit.requestsPerSecond",
        ),
        app_rejected(
            "rate-limit-no-burst",
            with_rate_limit(
                spec("@APP", "@URL", ok_token()),
                json!({"requestsPerSecond": 2, "burst": 0}),
            ),
            "spec.rateLimit.burst",
        ),
        app_case(
            "token-secret-missing",
            spec("@APP", "@URL", secret_ref("no-token-here", "token")),
            Expect::Reported {
                reason: "SecretNotFound",
                mentions: &["no-token-here"],
            },
        ),
        app_case(
            "token-key-missing",
            spec("@APP", "@URL", secret_ref("app-token", "no-such-token-key")),
            Expect::Reported {
                reason: "SecretKeyNotFound",
                mentions: &["app-token", "no-such-token-key"],
            },
        ),
        app_case(
            "wrong-token",
            spec("@APP", "@URL", secret_ref("wrong-token", "token")),
            Expect::Reported {
                reason: "Unauthorized",
                mentions: &["401"],
            },
        ),
        app_case(
            "unknown-application",
            spec("@OTHER_APP", "@URL", ok_token()),
            Expect::Reported {
                reason: "ApplicationNotFound",
                mentions: &["@OTHER_APP"],
            },
        ),
    ]
}

/// An application `spec` with `rateLimit`.
fn with_rate_limit(mut spec: Value, rate_limit: Value) -> Value {
    spec["rateLimit"] = rate_limit;
    spec
}

/// Replaces the `@URL`, `@APP` and `@OTHER_APP` placeholders of application cases.
fn bind(value: &mut Value, emulator: &EmulatorProcess, other_app: &str) {
    match value {
        Value::String(text) => {
            *text = text
                .replace("@URL", emulator.base_url())
                .replace("@OTHER_APP", other_app)
                .replace("@APP", emulator.application_id());
        }
        Value::Array(items) => items.iter_mut().for_each(|v| bind(v, emulator, other_app)),
        Value::Object(map) => map.values_mut().for_each(|v| bind(v, emulator, other_app)),
        _ => {}
    }
}

/// What happened to one entry when it was applied.
struct Applied {
    case: Case,
    result: Result<String, String>,
    /// For rejected entries: what the API server alone said (`--validate=false`, dry run).
    server_alone: Option<Result<String, String>>,
}

fn apply_all(ns: &str, cases: Vec<Case>) -> Vec<Applied> {
    let chunks: Vec<Vec<Case>> = {
        let mut chunks: Vec<Vec<Case>> = vec![Vec::new(); APPLY_THREADS];
        for (i, case) in cases.into_iter().enumerate() {
            chunks[i % APPLY_THREADS].push(case);
        }
        chunks
    };
    std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .into_iter()
                        .map(|case| {
                            let manifest = case.manifest();
                            let result = kubectl_apply_yaml(ns, &manifest);
                            // kubectl validates against the published schema first; what it
                            // lets through, the API server answers. Only what kubectl refused
                            // itself is sent to the API server alone (a dry run).
                            let by_kubectl = matches!(
                                &result,
                                Err(stderr) if stderr.contains("error validating data")
                            );
                            let server_alone = match case.expect {
                                Expect::Rejected { .. } if !by_kubectl => Some(result.clone()),
                                Expect::Rejected { .. } | Expect::RejectedByKubectl { .. } => {
                                    Some(kubectl_apply_yaml_with(
                                        ns,
                                        &manifest,
                                        &["--validate=false", "--dry-run=server", "-o", "json"],
                                    ))
                                }
                                _ => None,
                            };
                            Applied {
                                case,
                                result,
                                server_alone,
                            }
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("apply thread"))
            .collect()
    })
}

fn write_counts(emulator: &EmulatorProcess) -> BTreeMap<(String, u64), u64> {
    let mut counts = BTreeMap::new();
    for row in emulator.stats()["requests"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let method = row["method"].as_str().unwrap_or_default().to_owned();
        if method == "GET" {
            continue;
        }
        *counts
            .entry((method, row["status"].as_u64().unwrap_or(0)))
            .or_insert(0) += row["count"].as_u64().unwrap_or(0);
    }
    counts
}

/// What is wrong with how a rejected entry was refused: by kubectl (`result`) and by the API
/// server alone (`server_alone`).
fn check_rejected(
    case: &Case,
    result: &Result<String, String>,
    server_alone: Result<String, String>,
) -> Vec<String> {
    let id = case.id;
    let (field, mentions, server_mentions) = match &case.expect {
        Expect::Rejected {
            field,
            mentions,
            server_mentions,
        } => (*field, *mentions, *server_mentions),
        Expect::RejectedByKubectl { field, .. } => (*field, &[][..], &[][..]),
        other => panic!("{id}: not a rejected entry: {other:?}"),
    };
    let unsaid = |output: &str, wanted: &[&str]| -> Vec<String> {
        wanted
            .iter()
            .filter(|m| !output.contains(*m))
            .map(|m| format!("{m:?}"))
            .collect()
    };
    let mut failures = Vec::new();
    match result {
        Ok(out) => failures.push(format!("{id}: expected a rejection, got {out:?}")),
        Err(stderr) if !names_field(stderr, field) => failures.push(format!(
            "{id}: kubectl's refusal does not name {field}: {stderr}"
        )),
        Err(stderr) => {
            let missing = unsaid(stderr, mentions);
            if !missing.is_empty() {
                failures.push(format!(
                    "{id}: kubectl's refusal does not say {}: {stderr}",
                    missing.join(", ")
                ));
            }
        }
    }
    match (&case.expect, server_alone) {
        (Expect::Rejected { .. }, Err(stderr)) => {
            let mut missing = unsaid(&stderr, &[field]);
            missing.extend(unsaid(&stderr, mentions));
            missing.extend(unsaid(&stderr, server_mentions));
            if !missing.is_empty() {
                failures.push(format!(
                    "{id}: the API server's refusal does not say {}: {stderr}",
                    missing.join(", ")
                ));
            }
        }
        (Expect::Rejected { .. }, Ok(out)) => failures.push(format!(
            "{id}: the API server alone accepts it (only kubectl refuses): {out}"
        )),
        (Expect::RejectedByKubectl { pruned, .. }, Ok(out)) => {
            let object: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
            if object.is_null() || object.pointer(pruned).is_some() {
                failures.push(format!(
                    "{id}: the API server alone keeps {pruned} instead of pruning it: {out}"
                ));
            }
        }
        (Expect::RejectedByKubectl { .. }, Err(stderr)) => failures.push(format!(
            "{id}: expected the API server alone to prune the unknown field, it refused: {stderr}"
        )),
        (other, _) => panic!("{id}: not a rejected entry: {other:?}"),
    }
    failures
}

/// Checks an object against a `Reported` expectation; `Err` says what is still missing.
fn check_reported(object: &Value, reason: &str, mentions: &[String]) -> Result<(), String> {
    let ready = find_condition(object, "Ready").ok_or("no Ready condition yet")?;
    let stalled = find_condition(object, "Stalled").ok_or("no Stalled condition yet")?;
    let reconciling = find_condition(object, "Reconciling").ok_or("no Reconciling condition")?;
    let observed = &object["status"]["observedGeneration"];
    if ready["status"] != "False" || ready["reason"] != reason {
        return Err(format!(
            "Ready={} ({}); expected Ready=False ({reason}): {}",
            ready["status"], ready["reason"], ready["message"]
        ));
    }
    // kstatus: blocked until something changes (Stalled), or still trying (Reconciling).
    let blocked = stalled["status"] == "True";
    if blocked == (reconciling["status"] == "True") {
        return Err(format!(
            "Stalled={} and Reconciling={}: exactly one must be True",
            stalled["status"], reconciling["status"]
        ));
    }
    let kind_reason = if blocked {
        &stalled["reason"]
    } else {
        &reconciling["reason"]
    };
    if kind_reason != reason {
        return Err(format!(
            "Ready says {reason}, Stalled/Reconciling say {kind_reason}"
        ));
    }
    if *observed != object["metadata"]["generation"] {
        return Err(format!("status is for generation {observed}"));
    }
    let message = ready["message"].as_str().unwrap_or_default();
    let missing: Vec<&String> = mentions
        .iter()
        .filter(|m| !message.contains(m.as_str()))
        .collect();
    if !missing.is_empty() {
        return Err(format!("message {message:?} does not mention {missing:?}"));
    }
    Ok(())
}

#[test]
fn a_hostile_corpus_is_rejected_or_reported_with_no_remote_writes() {
    require_cluster!();
    let started = Instant::now();
    install_crds();
    let ns = TestNamespace::new("hostile");
    let emulator = EmulatorProcess::start(&[]);
    ns.register_log("emulator", emulator.log_path());
    let other_app = random_object_id();

    // Fixtures: the working application, Secrets with good, bad and binary values.
    ns.install_application(&emulator, "app");
    ns.create_secret("wrong-token", &[("token", "not-a-token-emulator-knows")]);
    let creds: Vec<(&str, &str)> = CREDS.to_vec();
    ns.apply_secret("creds", &creds);
    let limits = limit_values();
    let limits_ref: Vec<(&str, &str)> = limits.iter().map(|(k, v)| (*k, v.as_str())).collect();
    ns.apply_secret("limits", &limits_ref);
    let binary = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "binary"},
                        "type": "Opaque", "data": {"raw": "/w4A"}});
    ns.apply_ok(&binary.to_string());
    let mut operator = OperatorProcess::start(ns.name(), &[]);
    wait_for_condition(ns.name(), "losantapplication/app", "Ready", "True", TIMEOUT);

    let mut cases = corpus();
    for case in &mut cases {
        if case.kind == Kind::Application {
            bind(&mut case.spec, &emulator, &other_app);
        }
    }
    let total = cases.len();
    assert!(total >= 50, "the corpus has {total} entries, fewer than 50");
    let mut ids: Vec<&str> = cases.iter().map(|c| c.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), total, "corpus ids are unique");

    let applied = apply_all(ns.name(), cases);
    let show = std::env::var("LOSANT_E2E_SHOW_CORPUS").as_deref() == Ok("1");
    if show {
        for entry in &applied {
            eprintln!(
                "---- {} ({:?})\nkubectl: {:?}\nserver alone: {:?}",
                entry.case.id,
                entry.case.expect,
                entry.result,
                entry
                    .server_alone
                    .as_ref()
                    .map(|r| r.as_ref().map(|out| out.len()))
            );
        }
    }
    let applied_at = started.elapsed();
    let mut failures: Vec<String> = Vec::new();
    let (mut rejected_count, mut reported_count, mut valid_count) = (0, 0, 0);
    // Entries whose outcome shows up later, in status.
    let mut pending: Vec<(Case, Vec<String>)> = Vec::new();
    for Applied {
        case,
        result,
        server_alone,
    } in applied
    {
        let id = case.id;
        match &case.expect {
            Expect::Rejected { .. } | Expect::RejectedByKubectl { .. } => {
                rejected_count += 1;
                let server_alone = server_alone.expect("rejected entries are dry-run too");
                failures.extend(check_rejected(&case, &result, server_alone));
                if get_object(ns.name(), &case.kind_name()).is_some() {
                    failures.push(format!("{id}: the refused object exists anyway"));
                }
            }
            Expect::Reported { mentions, .. } => {
                reported_count += 1;
                if let Err(stderr) = &result {
                    failures.push(format!("{id}: expected it to be stored, refused: {stderr}"));
                    continue;
                }
                let mut mentions: Vec<String> = mentions.iter().map(|m| (*m).to_owned()).collect();
                for m in &mut mentions {
                    *m = m.replace("@OTHER_APP", &other_app);
                }
                pending.push((case, mentions));
            }
            Expect::RoundTrip { .. } => {
                valid_count += 1;
                if let Err(stderr) = &result {
                    failures.push(format!("{id}: a valid name was refused: {stderr}"));
                    continue;
                }
                pending.push((case, Vec::new()));
            }
        }
    }

    // Wait for every stored entry to reach its outcome (one list per poll).
    let deadline = Instant::now() + TIMEOUT;
    let mut last_problems: BTreeMap<&str, String>;
    loop {
        let objects = kubectl_json(&["get", "integrations,losantapplications", "-n", ns.name()]);
        let by_name: BTreeMap<String, Value> = objects["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|o| {
                let kind = if o["kind"] == "Integration" {
                    "integration"
                } else {
                    "losantapplication"
                };
                (
                    format!(
                        "{kind}/{}",
                        o["metadata"]["name"].as_str().unwrap_or_default()
                    ),
                    o.clone(),
                )
            })
            .collect();
        last_problems = BTreeMap::new();
        for (case, mentions) in &pending {
            let Some(object) = by_name.get(&case.kind_name()) else {
                last_problems.insert(case.id, "the object is gone".into());
                continue;
            };
            let outcome = match &case.expect {
                Expect::Reported { reason, .. } => check_reported(object, reason, mentions),
                Expect::RoundTrip { .. } => match find_condition(object, "Ready") {
                    Some(ready) if ready["status"] == "True" => Ok(()),
                    Some(ready) => Err(format!(
                        "Ready={} {}: {}",
                        ready["status"], ready["reason"], ready["message"]
                    )),
                    None => Err("no Ready condition yet".into()),
                },
                _ => unreachable!(),
            };
            if let Err(problem) = outcome {
                last_problems.insert(case.id, problem);
            }
        }
        if last_problems.is_empty() || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let settled_at = started.elapsed();
    let (mut stalled_count, mut reconciling_count) = (0, 0);
    for (case, _) in &pending {
        let object = get_object(ns.name(), &case.kind_name()).unwrap_or(Value::Null);
        if matches!(case.expect, Expect::Reported { .. }) {
            if find_condition(&object, "Stalled").is_some_and(|c| c["status"] == "True") {
                stalled_count += 1;
            } else if find_condition(&object, "Reconciling").is_some_and(|c| c["status"] == "True")
            {
                reconciling_count += 1;
            }
        }
        if show {
            eprintln!(
                "---- {}: Ready {}",
                case.id,
                find_condition(&object, "Ready").unwrap_or(&Value::Null)
            );
        }
    }
    for (id, problem) in &last_problems {
        failures.push(format!("{id}: after {TIMEOUT:?}: {problem}"));
    }

    // A few resyncs (3 s each) of the settled corpus: no second thoughts, no write loops — the
    // objects themselves (status, annotations) do not change any more.
    let versions = |ns: &str| -> BTreeMap<String, Value> {
        kubectl_json(&["get", "integrations,losantapplications", "-n", ns])["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|o| {
                (
                    format!("{}/{}", o["kind"], o["metadata"]["name"]),
                    o["metadata"]["resourceVersion"].clone(),
                )
            })
            .collect()
    };
    // First the follow-ups of the last writes (in-use finalizers, re-checks, a retry after a
    // conflict): wait until nothing changed for 3 s, for at most 30 s; a write loop faster than
    // that never gets there and fails below.
    let quiet_deadline = Instant::now() + Duration::from_secs(30);
    let mut settled_versions = versions(ns.name());
    loop {
        std::thread::sleep(Duration::from_secs(3));
        let now = versions(ns.name());
        if now == settled_versions || Instant::now() >= quiet_deadline {
            settled_versions = now;
            break;
        }
        settled_versions = now;
    }
    std::thread::sleep(Duration::from_secs(7));
    let later_versions = versions(ns.name());
    for (object, version) in &settled_versions {
        if later_versions.get(object) != Some(version) {
            failures.push(format!(
                "{object} kept changing after it settled (resourceVersion {version} → {:?})",
                later_versions.get(object)
            ));
        }
    }

    // The valid names: each in Losant exactly once, byte for byte, under the recorded id.
    let remotes = emulator.list_integrations();
    for (case, _) in &pending {
        let Expect::RoundTrip { name } = &case.expect else {
            continue;
        };
        let matching: Vec<&Value> = remotes
            .iter()
            .filter(|r| r["name"] == name.as_str())
            .collect();
        let object = get_object(ns.name(), &case.kind_name()).unwrap_or(Value::Null);
        let recorded = object["status"]["integrationId"]
            .as_str()
            .unwrap_or_default();
        match matching.as_slice() {
            [one] if one["id"] == recorded => {}
            [one] => failures.push(format!(
                "{}: Losant has {name:?} as {}, the status records {recorded:?}",
                case.id, one["id"]
            )),
            other => failures.push(format!(
                "{}: Losant has {} integrations named {name:?}",
                case.id,
                other.len()
            )),
        }
        if object["spec"]["name"] != name.as_str() {
            failures.push(format!(
                "{}: the API server changed the name to {}",
                case.id, object["spec"]["name"]
            ));
        }
    }
    if remotes.len() != valid_count {
        let names: Vec<&Value> = remotes.iter().map(|r| &r["name"]).collect();
        failures.push(format!(
            "Losant holds {} integrations, expected exactly the {valid_count} valid names: {names:?}",
            remotes.len()
        ));
    }

    // No remote writes but the valid entries' creates.
    let writes = write_counts(&emulator);
    let expected_writes = BTreeMap::from([(("POST".to_owned(), 201), valid_count as u64)]);
    if writes != expected_writes {
        failures.push(format!(
            "remote writes {writes:?}, expected only {expected_writes:?} (one create per valid name)"
        ));
    }

    // No status, annotation or condition message carries a Secret value (strings compared
    // unescaped).
    fn strings(value: &Value, out: &mut String) {
        match value {
            Value::String(text) => {
                out.push_str(text);
                out.push('\n');
            }
            Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
            Value::Object(map) => map.iter().for_each(|(k, v)| {
                out.push_str(k);
                out.push('\n');
                strings(v, out);
            }),
            _ => {}
        }
    }
    let mut everything = String::new();
    strings(
        &kubectl_json(&["get", "integrations,losantapplications", "-n", ns.name()]),
        &mut everything,
    );
    for value in limits
        .iter()
        .map(|(_, v)| v.as_str())
        .chain(CREDS.iter().map(|(_, v)| *v))
    {
        if value.len() >= 4 && everything.contains(value) {
            failures.push(format!(
                "a Secret value of {} characters appears in an object",
                value.len()
            ));
        }
    }

    if !operator.is_running() {
        failures.push("the operator exited".into());
    }
    let logs = operator.logs();
    if logs.contains("panicked") {
        failures.push("the operator log shows a panic".into());
    }

    println!(
        "corpus: {total} specs, {rejected_count} rejected at apply, {reported_count} reported \
         with a reason, {valid_count} valid round-trips ({:.0?}: applied in {applied_at:.0?}, \
         settled in {settled_at:.0?})",
        started.elapsed()
    );
    println!(
        "reported: {stalled_count} Stalled (blocked until something changes), {reconciling_count} \
         Reconciling (retried)"
    );
    assert_eq!(rejected_count + reported_count + valid_count, total);
    assert!(
        failures.is_empty(),
        "{} of the corpus' checks failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
