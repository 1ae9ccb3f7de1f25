//! The config objects as read back (GET and list): every field may be absent, since servers may
//! omit or mask secrets, and fields a server adds are ignored. Secrets stay [`SecretString`]s.

use serde::{Deserialize, Deserializer, Serialize};

use super::enums::{MqttProtocol, MqttProtocolVersion};
use super::secret::SecretString;

/// `mqttConfig` as read back.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RemoteMqttConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(
        deserialize_with = "lenient_port",
        skip_serializing_if = "Option::is_none"
    )]
    pub port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<MqttProtocol>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clean: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_key: Option<SecretString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_certificate: Option<String>,
    #[serde(
        rename = "disableSSLVerification",
        skip_serializing_if = "Option::is_none"
    )]
    pub disable_ssl_verification: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<MqttProtocolVersion>,
}

/// `googlePubSubConfig` as read back.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RemoteGooglePubSubConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_json: Option<SecretString>,
}

/// `azureEventHubConfig` as read back.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RemoteAzureEventHubConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hub_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer_group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_string: Option<SecretString>,
}

/// `particleConfig` as read back.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RemoteParticleConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token: Option<SecretString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_slug_or_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org_slug_or_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_name_or_id: Option<String>,
}

/// `sqsConfig` as read back.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RemoteSqsConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<SecretString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// `websocketConfig` as read back.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RemoteWebsocketConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(
        rename = "disableSSLVerification",
        skip_serializing_if = "Option::is_none"
    )]
    pub disable_ssl_verification: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_key: Option<SecretString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_certificate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<Vec<RemoteWebsocketHeader>>,
}

/// One WebSocket header as read back.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RemoteWebsocketHeader {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header_value: Option<SecretString>,
}

/// Reads a port sent as any JSON number with an integral value in 1..=65535 (`8883` or `8883.0`):
/// the schema types it `number`, so a server may store and return it either way.
fn lenient_port<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u16>, D::Error> {
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    let as_float = number.as_f64().unwrap_or(f64::NAN);
    if as_float.fract() == 0.0 && (1.0..=65535.0).contains(&as_float) {
        // Exact: the value is integral and in range.
        Ok(Some(as_float as u16))
    } else {
        Err(serde::de::Error::custom(
            "port is not an integer in 1..=65535",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn remote_port_accepts_integral_floats_only() {
        let ok: RemoteMqttConfig = serde_json::from_value(json!({"port": 8883.0})).unwrap();
        assert_eq!(ok.port, Some(8883));
        assert!(serde_json::from_value::<RemoteMqttConfig>(json!({"port": 1.5})).is_err());
        assert!(serde_json::from_value::<RemoteMqttConfig>(json!({"port": 70000})).is_err());
        let absent: RemoteMqttConfig = serde_json::from_value(json!({})).unwrap();
        assert_eq!(absent.port, None);
    }

    #[test]
    fn remote_shapes_ignore_unknown_fields() {
        let remote: RemoteSqsConfig =
            serde_json::from_value(json!({"queueUrl": "u", "futureField": 1})).unwrap();
        assert_eq!(remote.queue_url.as_deref(), Some("u"));
    }
}
