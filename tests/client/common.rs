//! Shared fixtures for the client tests: an in-process emulator and one integration of each type.

use std::time::Duration;

use losant_operator::emulator::{self, EmulatorConfig, RunningEmulator, TokenSpec};
use losant_operator::losant::{
    AzureEventHubAuth, AzureEventHubConfig, Client, ClientBuilder, GooglePubSubConfig,
    IntegrationConfig, IntegrationPost, MqttConfig, MqttProtocol, MqttProtocolVersion,
    ParticleConfig, RetryPolicy, SecretString, SqsConfig, WebsocketConfig, WebsocketHeader,
};

pub const APP: &str = "575ec8687ae143cd83dc4a97";
pub const OTHER_APP: &str = "5a0b1c2d3e4f5a6b7c8d9e0f";
pub const TOKEN: &str = "test-token-5f1c";

pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// An emulator with one full-access token and two applications, shaped by `adjust`.
pub async fn emulator(adjust: impl FnOnce(&mut EmulatorConfig)) -> RunningEmulator {
    let mut config = EmulatorConfig {
        tokens: vec![TokenSpec::full(TOKEN)],
        applications: vec![APP.into(), OTHER_APP.into()],
        seed: Some(7),
        ..EmulatorConfig::default()
    };
    adjust(&mut config);
    emulator::spawn(config).await.expect("emulator starts")
}

/// Fast retries so fault tests stay quick; timing itself is tested with a paused clock.
pub fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        initial_backoff: Duration::from_millis(2),
        max_backoff: Duration::from_millis(10),
        max_retry_after: Duration::from_secs(5),
    }
}

pub fn builder(emulator: &RunningEmulator) -> ClientBuilder {
    install_crypto();
    ClientBuilder::new(SecretString::new(TOKEN))
        .api_url(emulator.base_url())
        .retry(quick_retries())
}

pub fn client(emulator: &RunningEmulator) -> Client {
    builder(emulator).build().expect("client builds")
}

/// Secret values used by [`every_type`]; no test output may ever contain one.
pub const SECRETS: [&str; 9] = [
    "mqtt-pw-8c1e7",
    "-----BEGIN PRIVATE KEY----- mqtt-key-44d0",
    "{\"type\":\"service_account\",\"k\":\"gcp-key-91aa\"}",
    "aws-secret-3b77",
    "Endpoint=sb://ns/;SharedAccessKey=azure-cs-0e5f",
    "particle-tok-6d2c",
    "ws-pw-a190",
    "-----BEGIN PRIVATE KEY----- ws-key-7f3e",
    "Bearer ws-header-c4b8",
];

/// One create body per integration type, every field set, secrets from [`SECRETS`].
pub fn every_type(prefix: &str) -> Vec<IntegrationPost> {
    let secret = |i: usize| SecretString::new(SECRETS[i]);
    let mqtt = MqttConfig {
        host: "broker.example.com".into(),
        port: 8883,
        protocol: MqttProtocol::Mqtts,
        client_id: Some("client-1".into()),
        username: Some("user".into()),
        password: Some(secret(0)),
        clean: Some(false),
        private_key: Some(secret(1)),
        certificate: Some("-----BEGIN CERTIFICATE----- c".into()),
        ca_certificate: Some("-----BEGIN CERTIFICATE----- ca".into()),
        disable_ssl_verification: Some(false),
        protocol_version: Some(MqttProtocolVersion::V5),
    };
    let configs = [
        IntegrationConfig::Mqtt(mqtt),
        IntegrationConfig::GooglePubSub(GooglePubSubConfig {
            project_id: Some("project-1".into()),
            key_json: Some(secret(2)),
        }),
        IntegrationConfig::Sqs(SqsConfig {
            queue_url: "https://sqs.us-east-1.amazonaws.com/1/q".into(),
            access_key_id: Some("AKIAEXAMPLE".into()),
            secret_access_key: Some(secret(3)),
            region: Some("us-east-1".into()),
        }),
        IntegrationConfig::AzureEventHub(AzureEventHubConfig {
            hub_name: "hub".into(),
            consumer_group: "$Default".into(),
            auth: AzureEventHubAuth::ConnectionString {
                connection_string: secret(4),
            },
        }),
        IntegrationConfig::Particle(ParticleConfig {
            access_token: secret(5),
            product_slug_or_id: Some("product".into()),
            org_slug_or_id: Some("org".into()),
            device_name_or_id: Some("device".into()),
        }),
        IntegrationConfig::Websocket(WebsocketConfig {
            url: "wss://stream.example.com/feed".into(),
            disable_ssl_verification: Some(true),
            username: Some("ws-user".into()),
            password: Some(secret(6)),
            private_key: Some(secret(7)),
            certificate: Some("-----BEGIN CERTIFICATE----- wc".into()),
            ca_certificate: Some("-----BEGIN CERTIFICATE----- wca".into()),
            headers: Some(vec![WebsocketHeader {
                header_key: "Authorization".into(),
                header_value: secret(8),
            }]),
        }),
    ];
    configs
        .into_iter()
        .map(|config| {
            let name = format!("{prefix}-{}", config.integration_type());
            let mut post = IntegrationPost::new(name, config);
            post.enabled = Some(true);
            post.topics = Some(vec!["a/#".into(), "b/+".into()]);
            post
        })
        .collect()
}
