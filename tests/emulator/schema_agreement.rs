//! The emulator's hand-written validator must give the same verdict as the `jsonschema` crate
//! on the upstream `integrationPost.json` / `integrationPatch.json`: first over a table of
//! hand-picked bodies, then over randomly mutated valid bodies.

use std::path::PathBuf;
use std::sync::OnceLock;

use jsonschema::Validator;
use losant_operator::emulator::validate::{validate_patch, validate_post};
use proptest::prelude::*;
use serde_json::{Value, json};

fn schema_dir() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("LOSANT_API_SCHEMAS").map(PathBuf::from),
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/losant-api/schemas")),
        Some(PathBuf::from("/work/shared/losant-api/schemas")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|d| d.join("integrationPost.json").is_file())
}

struct Schemas {
    post: Validator,
    patch: Validator,
}

fn schemas() -> Option<&'static Schemas> {
    static SCHEMAS: OnceLock<Option<Schemas>> = OnceLock::new();
    SCHEMAS
        .get_or_init(|| {
            let dir = schema_dir()?;
            let load = |name: &str| {
                let text = std::fs::read_to_string(dir.join(name)).expect("schema readable");
                let schema: Value = serde_json::from_str(&text).expect("schema is JSON");
                jsonschema::validator_for(&schema).expect("schema compiles")
            };
            Some(Schemas {
                post: load("integrationPost.json"),
                patch: load("integrationPatch.json"),
            })
        })
        .as_ref()
}

fn skipped() -> bool {
    if schemas().is_none() {
        println!(
            "SKIPPED: upstream schemas (../shared/losant-api/schemas) are absent; set LOSANT_API_SCHEMAS"
        );
        return true;
    }
    false
}

#[derive(Clone, Copy, Debug)]
enum Which {
    Post,
    Patch,
}

/// Returns (emulator verdict, jsonschema verdict).
fn verdicts(which: Which, body: &Value) -> (bool, bool) {
    let s = schemas().expect("schemas loaded");
    match which {
        Which::Post => (validate_post(body).is_ok(), s.post.is_valid(body)),
        Which::Patch => (validate_patch(body).is_ok(), s.patch.is_valid(body)),
    }
}

#[rustfmt::skip]
fn configs() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        ("azureEventHub", "azureEventHubConfig", json!({"hubName": "h", "consumerGroup": "c", "connectionString": "Endpoint=x"})),
        ("googlePubSub", "googlePubSubConfig", json!({"projectId": "p", "keyJson": "{\"k\":1}"})),
        ("mqtt", "mqttConfig", json!({"host": "broker", "port": 8883, "protocol": "mqtts", "password": "pw",
            "clean": true, "protocolVersion": "5", "disableSSLVerification": false})),
        ("particle", "particleConfig", json!({"accessToken": "tok", "productSlugOrId": "p"})),
        ("sqs", "sqsConfig", json!({"queueUrl": "", "accessKeyId": "a", "secretAccessKey": "s", "region": "r"})),
        ("websocket", "websocketConfig", json!({"url": "wss://x", "headers": [{"headerKey": "Authorization", "headerValue": "Bearer x"}]})),
    ]
}

fn valid_posts() -> Vec<Value> {
    configs()
        .into_iter()
        .map(|(ty, key, cfg)| json!({"name": format!("{ty} one"), "integrationType": ty, key: cfg, "topics": ["a", "b"], "enabled": true}))
        .collect()
}

fn valid_patches() -> Vec<Value> {
    let mut out: Vec<Value> = configs()
        .into_iter()
        .map(|(_, key, cfg)| json!({ key: cfg }))
        .collect();
    out.push(json!({}));
    out.push(json!({"name": "n", "enabled": false, "topics": [], "credentialName": null}));
    out
}

fn with(base: &Value, f: impl FnOnce(&mut Value)) -> Value {
    let mut v = base.clone();
    f(&mut v);
    v
}

fn remove(v: &mut Value, key: &str) {
    v.as_object_mut().expect("object").remove(key);
}

type Case = (String, Which, Value, bool);

fn push(t: &mut Vec<Case>, label: &str, which: Which, body: Value, ok: bool) {
    t.push((label.to_owned(), which, body, ok));
}

/// (label, which, body, expected verdict)
#[rustfmt::skip]
fn table() -> Vec<Case> {
    let mut t: Vec<Case> = Vec::new();
    for body in valid_posts() {
        t.push((format!("valid post {}", body["integrationType"]), Which::Post, body, true));
    }
    for body in valid_patches() {
        t.push((format!("valid patch {body}"), Which::Patch, body, true));
    }
    let mqtt = valid_posts()[2].clone();
    // Required fields.
    push(&mut t, "post without name", Which::Post, with(&mqtt, |v| remove(v, "name")), false);
    push(&mut t, "post without type", Which::Post, with(&mqtt, |v| remove(v, "integrationType")), false);
    for field in ["host", "port", "protocol"] {
        push(&mut t, &format!("mqtt without {field}"), Which::Post, with(&mqtt, |v| remove(&mut v["mqttConfig"], field)), false);
    }
    let particle = valid_posts()[3].clone();
    push(&mut t, "particle without accessToken", Which::Post, with(&particle, |v| remove(&mut v["particleConfig"], "accessToken")), false);
    push(&mut t, "sqs without queueUrl", Which::Post, json!({"name": "s", "integrationType": "sqs", "sqsConfig": {}}), false);
    push(&mut t, "websocket without url", Which::Post, json!({"name": "w", "integrationType": "websocket", "websocketConfig": {}}), false);
    push(&mut t, "google empty config", Which::Post, json!({"name": "g", "integrationType": "googlePubSub", "googlePubSubConfig": {}}), true);
    // Enums.
    push(&mut t, "bad integrationType", Which::Post, with(&mqtt, |v| v["integrationType"] = json!("awsIot")), false);
    push(&mut t, "bad protocol", Which::Post, with(&mqtt, |v| v["mqttConfig"]["protocol"] = json!("http")), false);
    push(&mut t, "bad protocolVersion", Which::Post, with(&mqtt, |v| v["mqttConfig"]["protocolVersion"] = json!("3.1")), false);
    push(&mut t, "numeric protocolVersion", Which::Post, with(&mqtt, |v| v["mqttConfig"]["protocolVersion"] = json!(5)), false);
    // Extra fields, top level and in every config.
    push(&mut t, "extra top-level", Which::Post, with(&mqtt, |v| v["bogus"] = json!(1)), false);
    for (_, key, cfg) in configs() {
        let body = json!({"name": "x", "integrationType": "mqtt", key: with(&cfg, |c| c["bogus"] = json!("y"))});
        push(&mut t, &format!("extra in {key}"), Which::Post, body.clone(), false);
        push(&mut t, &format!("extra in {key} (patch)"), Which::Patch, json!({key: body[key].clone()}), false);
    }
    push(&mut t, "meridianConfig", Which::Post, with(&mqtt, |v| v["meridianConfig"] = json!({})), false);
    // Lengths.
    push(&mut t, "name 255", Which::Post, with(&mqtt, |v| v["name"] = json!("n".repeat(255))), true);
    push(&mut t, "name 256", Which::Post, with(&mqtt, |v| v["name"] = json!("n".repeat(256))), false);
    push(&mut t, "host 1024", Which::Post, with(&mqtt, |v| v["mqttConfig"]["host"] = json!("h".repeat(1024))), true);
    push(&mut t, "host 1025", Which::Post, with(&mqtt, |v| v["mqttConfig"]["host"] = json!("h".repeat(1025))), false);
    push(&mut t, "empty name", Which::Post, with(&mqtt, |v| v["name"] = json!("")), false);
    push(&mut t, "empty name patch", Which::Patch, json!({"name": ""}), false);
    push(&mut t, "keyJson 3", Which::Post, json!({"name": "g", "integrationType": "googlePubSub", "googlePubSubConfig": {"keyJson": "abc"}}), false);
    push(&mut t, "keyJson 4", Which::Post, json!({"name": "g", "integrationType": "googlePubSub", "googlePubSubConfig": {"keyJson": "abcd"}}), true);
    push(&mut t, "name 255 non-ASCII", Which::Post, with(&mqtt, |v| v["name"] = json!("ü🙂".repeat(127) + "ß")), true);
    push(&mut t, "name 256 non-ASCII", Which::Post, with(&mqtt, |v| v["name"] = json!("ü🙂".repeat(128))), false);
    push(&mut t, "sqs long strings", Which::Post, json!({"name": "s", "integrationType": "sqs", "sqsConfig": {"queueUrl": "q".repeat(5000), "region": ""}}), true);
    // Topics.
    push(&mut t, "duplicate topics", Which::Post, with(&mqtt, |v| v["topics"] = json!(["a", "a"])), false);
    push(&mut t, "empty topic", Which::Post, with(&mqtt, |v| v["topics"] = json!([""])), false);
    push(&mut t, "numeric topic", Which::Post, with(&mqtt, |v| v["topics"] = json!([1])), false);
    push(&mut t, "topics not array", Which::Patch, json!({"topics": "a"}), false);
    // Ports.
    for (port, ok) in [(json!(0), false), (json!(65536), false), (json!(1.5), true), (json!("8883"), false),
                       (json!(1), true), (json!(65535), true), (json!(-3), false)] {
        push(&mut t, &format!("port {port}"), Which::Post, with(&mqtt, |v| v["mqttConfig"]["port"] = port.clone()), ok);
    }
    // Azure oneOf.
    let azure = valid_posts()[0].clone();
    push(&mut t, "azure both", Which::Post, with(&azure, |v| v["azureEventHubConfig"]["hostName"] = json!("host")), false);
    push(&mut t, "azure neither", Which::Post, with(&azure, |v| remove(&mut v["azureEventHubConfig"], "connectionString")), false);
    push(&mut t, "azure hostName", Which::Patch, json!({"azureEventHubConfig": {"hubName": "h", "consumerGroup": "c", "hostName": "x"}}), true);
    push(&mut t, "azure no consumerGroup", Which::Patch, json!({"azureEventHubConfig": {"hubName": "h", "hostName": "x"}}), false);
    // Patch specifics.
    push(&mut t, "patch integrationType", Which::Patch, json!({"integrationType": "mqtt"}), false);
    push(&mut t, "patch credentialName null", Which::Patch, json!({"credentialName": null}), true);
    push(&mut t, "patch credentialName empty", Which::Patch, json!({"credentialName": ""}), false);
    push(&mut t, "post credentialName null", Which::Post, with(&mqtt, |v| v["credentialName"] = Value::Null), false);
    push(&mut t, "patch name null", Which::Patch, json!({"name": null}), false);
    push(&mut t, "patch config null", Which::Patch, json!({"mqttConfig": null}), false);
    // Read-only fields.
    for field in ["id", "integrationId", "applicationId", "creationDate", "lastUpdated", "status"] {
        push(&mut t, &format!("post with {field}"), Which::Post, with(&mqtt, |v| v[field] = json!("575ec8687ae143cd83dc4a97")), false);
        push(&mut t, &format!("patch with {field}"), Which::Patch, json!({field: "575ec8687ae143cd83dc4a97"}), false);
    }
    // Websocket headers.
    let header = json!({"headerKey": "k", "headerValue": "v"});
    let ws = |headers: Value| json!({"name": "w", "integrationType": "websocket", "websocketConfig": {"url": "u", "headers": headers}});
    push(&mut t, "50 headers", Which::Post, ws(Value::Array(vec![header.clone(); 50])), true);
    push(&mut t, "51 headers", Which::Post, ws(Value::Array(vec![header.clone(); 51])), false);
    push(&mut t, "header without value", Which::Post, ws(json!([{"headerKey": "k"}])), false);
    push(&mut t, "header extra key", Which::Post, ws(json!([{"headerKey": "k", "headerValue": "v", "x": 1}])), false);
    push(&mut t, "header not object", Which::Post, ws(json!(["k: v"])), false);
    // Other types.
    push(&mut t, "body array", Which::Post, json!([]), false);
    push(&mut t, "body null", Which::Patch, Value::Null, false);
    push(&mut t, "enabled string", Which::Patch, json!({"enabled": "true"}), false);
    push(&mut t, "clean number", Which::Post, with(&mqtt, |v| v["mqttConfig"]["clean"] = json!(1)), false);
    t
}

#[test]
fn table_agrees_with_jsonschema() {
    if skipped() {
        return;
    }
    let cases = table();
    assert!(
        cases.len() > 80,
        "table unexpectedly small: {}",
        cases.len()
    );
    for (label, which, body, expected) in cases {
        let (ours, theirs) = verdicts(which, &body);
        assert_eq!(theirs, expected, "table expectation wrong for {label}");
        assert_eq!(ours, theirs, "verdicts differ for {label}");
    }
}

/// One random edit somewhere in the document.
#[derive(Clone, Debug)]
enum Edit {
    Remove(usize),
    Add(String, Value),
    Replace(Value),
    DuplicateFirst,
}

fn key_pool() -> Vec<&'static str> {
    vec![
        "name",
        "integrationType",
        "enabled",
        "credentialName",
        "topics",
        "mqttConfig",
        "sqsConfig",
        "websocketConfig",
        "azureEventHubConfig",
        "googlePubSubConfig",
        "particleConfig",
        "host",
        "port",
        "protocol",
        "password",
        "protocolVersion",
        "hubName",
        "hostName",
        "consumerGroup",
        "connectionString",
        "keyJson",
        "queueUrl",
        "url",
        "headers",
        "headerKey",
        "headerValue",
        "accessToken",
        "clean",
        "id",
        "status",
        "bogus",
    ]
}

fn random_string() -> impl Strategy<Value = String> {
    let lens = prop::sample::select(vec![0usize, 1, 3, 4, 255, 256, 257, 1024, 1025]);
    let chars = prop::sample::select(vec!['a', 'é', '🙂']);
    (lens, chars).prop_map(|(n, c)| std::iter::repeat_n(c, n).collect())
}

fn random_value() -> impl Strategy<Value = Value> {
    let enums = prop::sample::select(vec![
        "mqtt",
        "mqtts",
        "sqs",
        "5",
        "3.1.1",
        "websocket",
        "wss",
    ]);
    let numbers = prop::sample::select(vec![
        json!(0),
        json!(1),
        json!(1.5),
        json!(8883),
        json!(65535),
        json!(65536),
        json!(-1),
    ]);
    prop_oneof![
        random_string().prop_map(Value::String),
        enums.prop_map(|s| json!(s)),
        numbers,
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
        prop::collection::vec(prop::sample::select(vec!["a", "b", ""]), 0..4)
            .prop_map(|v| json!(v)),
        Just(json!({})),
        Just(json!([{"headerKey": "k", "headerValue": "v"}])),
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        any::<usize>().prop_map(Edit::Remove),
        (prop::sample::select(key_pool()), random_value())
            .prop_map(|(k, v)| Edit::Add(k.to_owned(), v)),
        random_value().prop_map(Edit::Replace),
        Just(Edit::DuplicateFirst),
    ]
}

/// Walks down `path` (indices chosen modulo the container size) and applies `edit` there.
fn apply(node: &mut Value, path: &[usize], edit: Edit) {
    if let Some((step, rest)) = path.split_first() {
        match node {
            Value::Object(m) if !m.is_empty() => {
                let key = m.keys().nth(step % m.len()).cloned().unwrap_or_default();
                if let Some(child) = m.get_mut(&key) {
                    return apply(child, rest, edit);
                }
            }
            Value::Array(a) if !a.is_empty() => {
                let len = a.len();
                return apply(&mut a[step % len], rest, edit);
            }
            _ => {}
        }
    }
    apply_here(node, edit);
}

fn apply_here(node: &mut Value, edit: Edit) {
    match (edit, node) {
        (Edit::Remove(i), Value::Object(m)) if !m.is_empty() => {
            let key = m.keys().nth(i % m.len()).cloned().unwrap_or_default();
            m.remove(&key);
        }
        (Edit::Remove(i), Value::Array(a)) if !a.is_empty() => {
            let len = a.len();
            a.remove(i % len);
        }
        (Edit::Add(k, v), Value::Object(m)) => {
            m.insert(k, v);
        }
        (Edit::Add(_, v), Value::Array(a)) => a.push(v),
        (Edit::DuplicateFirst, Value::Array(a)) if !a.is_empty() => a.push(a[0].clone()),
        (Edit::Replace(v), node) => *node = v,
        _ => {}
    }
}

fn base_body() -> impl Strategy<Value = (Which, Value)> {
    let posts: Vec<(Which, Value)> = valid_posts()
        .into_iter()
        .map(|b| (Which::Post, b))
        .collect();
    let patches = valid_patches().into_iter().map(|b| (Which::Patch, b));
    prop::sample::select(posts.into_iter().chain(patches).collect::<Vec<_>>())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn mutated_bodies_agree(
        (which, mut body) in base_body(),
        edits in prop::collection::vec((prop::collection::vec(any::<usize>(), 0..4), edit()), 1..4),
    ) {
        if skipped() {
            return Ok(());
        }
        for (path, e) in edits {
            apply(&mut body, &path, e);
        }
        let (ours, theirs) = verdicts(which, &body);
        prop_assert_eq!(ours, theirs, "{:?} body {}", which, body);
        // The same body judged by the other schema must agree too.
        let other = match which { Which::Post => Which::Patch, Which::Patch => Which::Post };
        let (ours, theirs) = verdicts(other, &body);
        prop_assert_eq!(ours, theirs, "{:?} body {}", other, body);
    }
}
