//! The config blocks of an `Integration` spec, one per integration type. Field names and types are
//! Losant's; every secret-bearing field is a reference to a Secret key (`<field>SecretRef`), never
//! an inline value.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::SecretKeyRef;

/// MQTT broker connection (`mqttConfig`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MqttSpec {
    /// Broker host name.
    #[schemars(length(min = 1, max = 1024))]
    pub host: String,
    /// Broker port.
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// Transport: mqtt, mqtts, ws or wss.
    pub protocol: MqttProtocolSpec,
    /// MQTT client id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub client_id: Option<String>,
    /// User name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub username: Option<String>,
    /// Secret key holding the password (1–1024 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret_ref: Option<SecretKeyRef>,
    /// Clean session flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clean: Option<bool>,
    /// Secret key holding the client private key, PEM (4–32767 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key_secret_ref: Option<SecretKeyRef>,
    /// Client certificate, PEM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 4, max = 32767))]
    pub certificate: Option<String>,
    /// CA certificate, PEM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 4, max = 32767))]
    pub ca_certificate: Option<String>,
    /// Skip verifying the broker's TLS certificate.
    #[serde(
        default,
        rename = "disableSSLVerification",
        skip_serializing_if = "Option::is_none"
    )]
    pub disable_ssl_verification: Option<bool>,
    /// MQTT protocol version: "3.1.1" or "5".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<MqttProtocolVersionSpec>,
}

/// MQTT transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MqttProtocolSpec {
    /// Plain MQTT over TCP.
    Mqtt,
    /// MQTT over TLS.
    Mqtts,
    /// MQTT over WebSocket.
    Ws,
    /// MQTT over secure WebSocket.
    Wss,
}

/// MQTT protocol version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum MqttProtocolVersionSpec {
    /// MQTT 3.1.1.
    #[serde(rename = "3.1.1")]
    V3_1_1,
    /// MQTT 5.
    #[serde(rename = "5")]
    V5,
}

/// Google Pub/Sub (`googlePubSubConfig`). Newer setups name a GCP credential in `credentialName`
/// and list subscriptions in `topics` instead.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GooglePubSubSpec {
    /// GCP project id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub project_id: Option<String>,
    /// Secret key holding the service-account key JSON (4–32767 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_json_secret_ref: Option<SecretKeyRef>,
}

/// Azure Event Hub (`azureEventHubConfig`): exactly one of `connectionStringSecretRef` and
/// `hostName` (the latter with `credentialName` naming an Azure credential).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AzureEventHubSpec {
    /// Event hub name.
    #[schemars(length(min = 1, max = 256))]
    pub hub_name: String,
    /// Consumer group.
    #[schemars(length(min = 1, max = 256))]
    pub consumer_group: String,
    /// Event Hubs namespace host name (with `credentialName`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub host_name: Option<String>,
    /// Secret key holding the connection string (1–1024 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_string_secret_ref: Option<SecretKeyRef>,
}

/// Particle cloud (`particleConfig`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ParticleSpec {
    /// Secret key holding the Particle access token (1–1024 characters).
    pub access_token_secret_ref: SecretKeyRef,
    /// Product slug or id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub product_slug_or_id: Option<String>,
    /// Organization slug or id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub org_slug_or_id: Option<String>,
    /// Device name or id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub device_name_or_id: Option<String>,
}

/// Amazon SQS (`sqsConfig`). With `credentialName` naming an AWS credential, the keys may be left
/// out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SqsSpec {
    /// Queue URL (may be a template over application globals).
    #[schemars(length(min = 1, max = 1024))]
    pub queue_url: String,
    /// AWS access key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub access_key_id: Option<String>,
    /// Secret key holding the AWS secret access key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key_secret_ref: Option<SecretKeyRef>,
    /// AWS region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub region: Option<String>,
}

/// WebSocket server (`websocketConfig`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebsocketSpec {
    /// Server URL.
    #[schemars(length(min = 1, max = 1024))]
    pub url: String,
    /// Skip verifying the server's TLS certificate.
    #[serde(
        default,
        rename = "disableSSLVerification",
        skip_serializing_if = "Option::is_none"
    )]
    pub disable_ssl_verification: Option<bool>,
    /// User name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub username: Option<String>,
    /// Secret key holding the password (1–1024 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret_ref: Option<SecretKeyRef>,
    /// Secret key holding the client private key, PEM (4–32767 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key_secret_ref: Option<SecretKeyRef>,
    /// Client certificate, PEM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 4, max = 32767))]
    pub certificate: Option<String>,
    /// CA certificate, PEM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 4, max = 32767))]
    pub ca_certificate: Option<String>,
    /// Extra request headers (at most 50); each value inline or from a Secret key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 50))]
    pub headers: Option<Vec<WebsocketHeaderSpec>>,
}

/// One WebSocket header: exactly one of `headerValue` and `headerValueSecretRef`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebsocketHeaderSpec {
    /// Header name.
    #[schemars(length(min = 1, max = 1024))]
    pub header_key: String,
    /// Header value, inline (for values that are not secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub header_value: Option<String>,
    /// Secret key holding the header value (1–1024 characters), e.g. for `Authorization`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_value_secret_ref: Option<SecretKeyRef>,
}
