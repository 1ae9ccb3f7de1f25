//! Shared helpers for the emulator integration tests: start an in-process emulator on an
//! ephemeral loopback port (plain HTTP, or HTTPS with a generated CA) and talk to it with a
//! reqwest client.
use losant_operator::emulator::{EmulatorConfig, RunningEmulator, TlsFiles, TokenSpec, spawn};
use losant_operator::testkit::TempDir;
use reqwest::{Client, Method, Response, StatusCode};
use serde_json::{Value, json};

pub const APP: &str = "575ec8687ae143cd83dc4a97";
pub const OTHER_APP: &str = "575ec8687ae143cd83dc4a98";
pub const TOKEN: &str = "t";

/// Config with token `t` (full access), applications [`APP`] and [`OTHER_APP`], seed 42.
pub fn config() -> EmulatorConfig {
    EmulatorConfig {
        tokens: vec![TokenSpec::full(TOKEN)],
        applications: vec![APP.into(), OTHER_APP.into()],
        seed: Some(42),
        ..EmulatorConfig::default()
    }
}

pub async fn start(config: EmulatorConfig) -> RunningEmulator {
    spawn(config).await.expect("emulator starts")
}

pub fn client() -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder().build().expect("client builds")
}

/// An emulator serving HTTPS with a certificate from a fresh test CA. Keep it alive while the
/// emulator runs: dropping it removes the certificate files.
pub struct TlsEmulator {
    pub emulator: RunningEmulator,
    pub fixture: crate::test_ca::TlsFixture,
    /// Held, never read: the certificate files live as long as the emulator.
    _dir: TempDir,
}

/// Starts `config` over HTTPS with a new CA and server certificate (for 127.0.0.1/localhost).
pub async fn start_tls(mut config: EmulatorConfig) -> TlsEmulator {
    let dir = TempDir::new("emulator-tls");
    let fixture = crate::test_ca::generate_ca_and_server_cert(dir.path());
    config.tls = Some(TlsFiles {
        cert: fixture.cert_path.clone(),
        key: fixture.key_path.clone(),
    });
    TlsEmulator {
        emulator: start(config).await,
        fixture,
        _dir: dir,
    }
}

/// A reqwest client that trusts `ca_pem` besides the system roots.
pub fn client_trusting(ca_pem: &str) -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certs = reqwest::Certificate::from_pem_bundle(ca_pem.as_bytes()).expect("CA is PEM");
    Client::builder()
        .tls_certs_merge(certs)
        .build()
        .expect("client builds")
}

/// The official `integrationPost` example.
pub fn example_post() -> Value {
    json!({
        "integrationType": "mqtt",
        "mqttConfig": {
            "clientId": "exampleClientId",
            "host": "broker.example.com",
            "password": "examplePassword",
            "port": 8883,
            "protocol": "mqtts",
            "username": "exampleUsername"
        },
        "name": "Example Integrations",
        "topics": ["myTopic"]
    })
}

/// A minimal valid create body with the given name.
pub fn named(name: &str) -> Value {
    json!({ "name": name, "integrationType": "sqs", "sqsConfig": { "queueUrl": "https://q" } })
}

pub fn collection(em: &RunningEmulator, app: &str) -> String {
    format!("{}/applications/{app}/integrations", em.base_url())
}

pub fn item(em: &RunningEmulator, app: &str, id: &str) -> String {
    format!("{}/applications/{app}/integrations/{id}", em.base_url())
}

/// Sends a request with token `t` and an optional JSON body; returns status and JSON body.
pub async fn call(
    c: &Client,
    method: Method,
    url: &str,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let mut req = c.request(method, url).bearer_auth(TOKEN);
    if let Some(b) = body {
        req = req.json(b);
    }
    split(req.send().await.expect("request completes")).await
}

pub async fn split(resp: Response) -> (StatusCode, Value) {
    let status = resp.status();
    let text = resp.text().await.expect("body arrives");
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).expect("JSON body")
    };
    (status, value)
}

/// Creates an integration and returns the stored object.
pub async fn create(c: &Client, em: &RunningEmulator, app: &str, body: &Value) -> Value {
    let (status, created) = call(c, Method::POST, &collection(em, app), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created
}

pub fn id_of(v: &Value) -> String {
    v["id"].as_str().expect("id").to_owned()
}

/// Asserts the `{type, message}` error shape and returns the type.
pub fn error_type(body: &Value) -> &str {
    assert!(body["message"].is_string(), "error message missing: {body}");
    body["type"].as_str().expect("error type")
}

/// Lists with a raw query string; returns the envelope.
pub async fn list(c: &Client, em: &RunningEmulator, query: &str) -> (StatusCode, Value) {
    let url = format!("{}?{query}", collection(em, APP));
    call(c, Method::GET, &url, None).await
}

pub fn names(envelope: &Value) -> Vec<String> {
    envelope["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["name"].as_str().expect("name").to_owned())
        .collect()
}
