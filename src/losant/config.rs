//! The config objects of the six integration types as written (Post and Patch bodies, where the
//! schema's required fields are required); `remote_config` holds them as read back.
//!
//! Secret-bearing fields are [`SecretString`]s, so `Debug` never shows them.

use serde::{Deserialize, Serialize};

use super::enums::{IntegrationType, MqttProtocol, MqttProtocolVersion};
use super::secret::SecretString;
use super::type_facts::{
    ACCESS_TOKEN, CONNECTION_STRING, KEY_JSON, PASSWORD, PRIVATE_KEY, SECRET_ACCESS_KEY,
    SecretField,
};

/// `mqttConfig` as sent: a broker connection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MqttConfig {
    /// Broker host name.
    pub host: String,
    /// Broker port (1–65535).
    pub port: u16,
    /// Transport.
    pub protocol: MqttProtocol,
    /// MQTT client id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// User name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Password (secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretString>,
    /// Clean session flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clean: Option<bool>,
    /// Client private key, PEM (secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<SecretString>,
    /// Client certificate, PEM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    /// CA certificate, PEM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificate: Option<String>,
    /// Skip TLS verification of the broker.
    #[serde(
        default,
        rename = "disableSSLVerification",
        skip_serializing_if = "Option::is_none"
    )]
    pub disable_ssl_verification: Option<bool>,
    /// Protocol version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<MqttProtocolVersion>,
}

/// `googlePubSubConfig` as sent. Newer setups use `credentialName` and `topics` instead.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GooglePubSubConfig {
    /// GCP project id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    /// Service-account key JSON, as a string (secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_json: Option<SecretString>,
}

/// `azureEventHubConfig` as sent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AzureEventHubConfig {
    /// Event hub name.
    pub hub_name: String,
    /// Consumer group.
    pub consumer_group: String,
    /// How Losant connects: exactly one of connection string and host name.
    #[serde(flatten)]
    pub auth: AzureEventHubAuth,
}

/// The two mutually exclusive ways an Azure Event Hub integration authenticates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AzureEventHubAuth {
    /// A connection string (secret).
    ConnectionString {
        /// The connection string.
        #[serde(rename = "connectionString")]
        connection_string: SecretString,
    },
    /// A host name, with the integration's `credentialName` naming an Azure credential.
    HostName {
        /// The host name.
        #[serde(rename = "hostName")]
        host_name: String,
    },
}

/// `particleConfig` as sent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParticleConfig {
    /// Particle access token (secret).
    pub access_token: SecretString,
    /// Product slug or id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_slug_or_id: Option<String>,
    /// Organization slug or id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_slug_or_id: Option<String>,
    /// Device name or id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_name_or_id: Option<String>,
}

/// `sqsConfig` as sent. With `credentialName` naming an AWS credential, the keys may be left out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SqsConfig {
    /// Queue URL (may be a template over application globals).
    pub queue_url: String,
    /// AWS access key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    /// AWS secret access key (secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<SecretString>,
    /// AWS region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// `websocketConfig` as sent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebsocketConfig {
    /// Server URL.
    pub url: String,
    /// Skip TLS verification of the server.
    #[serde(
        default,
        rename = "disableSSLVerification",
        skip_serializing_if = "Option::is_none"
    )]
    pub disable_ssl_verification: Option<bool>,
    /// User name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Password (secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretString>,
    /// Client private key, PEM (secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<SecretString>,
    /// Client certificate, PEM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    /// CA certificate, PEM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificate: Option<String>,
    /// Extra request headers (at most 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<Vec<WebsocketHeader>>,
}

/// One extra WebSocket header. Its value is treated as a secret (it often carries `Authorization`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebsocketHeader {
    /// Header name.
    pub header_key: String,
    /// Header value (secret).
    pub header_value: SecretString,
}

/// The config object of an integration, keyed on the wire by its type's field name.
///
/// Flattened into Post and Patch bodies, a variant serializes as e.g. `"mqttConfig": {…}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum IntegrationConfig {
    /// `azureEventHubConfig`.
    #[serde(rename = "azureEventHubConfig")]
    AzureEventHub(AzureEventHubConfig),
    /// `googlePubSubConfig`.
    #[serde(rename = "googlePubSubConfig")]
    GooglePubSub(GooglePubSubConfig),
    /// `mqttConfig`.
    #[serde(rename = "mqttConfig")]
    Mqtt(MqttConfig),
    /// `particleConfig`.
    #[serde(rename = "particleConfig")]
    Particle(ParticleConfig),
    /// `sqsConfig`.
    #[serde(rename = "sqsConfig")]
    Sqs(SqsConfig),
    /// `websocketConfig`.
    #[serde(rename = "websocketConfig")]
    Websocket(WebsocketConfig),
}

impl IntegrationConfig {
    /// The integration type this config object belongs to. (Serde needs a variant per config
    /// object; this names each variant's type.)
    pub fn integration_type(&self) -> IntegrationType {
        match self {
            IntegrationConfig::AzureEventHub(_) => IntegrationType::AzureEventHub,
            IntegrationConfig::GooglePubSub(_) => IntegrationType::GooglePubSub,
            IntegrationConfig::Mqtt(_) => IntegrationType::Mqtt,
            IntegrationConfig::Particle(_) => IntegrationType::Particle,
            IntegrationConfig::Sqs(_) => IntegrationType::Sqs,
            IntegrationConfig::Websocket(_) => IntegrationType::Websocket,
        }
    }

    /// The secret fields of the config object that are set, each with its value (list items'
    /// secrets, such as WebSocket header values, excepted). A match on the variant: each config is
    /// its own typed struct; the fields' names and limits are the table's.
    pub fn set_secret_fields(&self) -> Vec<(&'static SecretField, &SecretString)> {
        let fields: Vec<(&'static SecretField, Option<&SecretString>)> = match self {
            IntegrationConfig::AzureEventHub(c) => {
                let connection_string = match &c.auth {
                    AzureEventHubAuth::ConnectionString { connection_string } => {
                        Some(connection_string)
                    }
                    AzureEventHubAuth::HostName { .. } => None,
                };
                vec![(&CONNECTION_STRING, connection_string)]
            }
            IntegrationConfig::GooglePubSub(c) => vec![(&KEY_JSON, c.key_json.as_ref())],
            IntegrationConfig::Mqtt(c) => vec![
                (&PASSWORD, c.password.as_ref()),
                (&PRIVATE_KEY, c.private_key.as_ref()),
            ],
            IntegrationConfig::Particle(c) => vec![(&ACCESS_TOKEN, Some(&c.access_token))],
            IntegrationConfig::Sqs(c) => {
                vec![(&SECRET_ACCESS_KEY, c.secret_access_key.as_ref())]
            }
            IntegrationConfig::Websocket(c) => vec![
                (&PASSWORD, c.password.as_ref()),
                (&PRIVATE_KEY, c.private_key.as_ref()),
            ],
        };
        fields
            .into_iter()
            .filter_map(|(field, value)| Some((field, value?)))
            .collect()
    }

    /// Every secret value in this config, so error text can be scrubbed of them.
    pub fn secret_values(&self) -> Vec<&SecretString> {
        let header_values = match self {
            IntegrationConfig::Websocket(c) => c.headers.as_deref().unwrap_or_default(),
            _ => &[],
        };
        self.set_secret_fields()
            .into_iter()
            .map(|(_, value)| value)
            .chain(header_values.iter().map(|header| &header.header_value))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mqtt() -> MqttConfig {
        MqttConfig {
            host: "broker.example.com".into(),
            port: 8883,
            protocol: MqttProtocol::Mqtts,
            client_id: Some("client".into()),
            username: None,
            password: Some("pw-value".into()),
            clean: None,
            private_key: None,
            certificate: None,
            ca_certificate: None,
            disable_ssl_verification: None,
            protocol_version: Some(MqttProtocolVersion::V5),
        }
    }

    #[test]
    fn config_serializes_under_its_type_field() {
        let value = serde_json::to_value(IntegrationConfig::Mqtt(mqtt())).unwrap();
        assert_eq!(
            value,
            json!({"mqttConfig": {"host": "broker.example.com", "port": 8883, "protocol": "mqtts",
                "clientId": "client", "password": "pw-value", "protocolVersion": "5"}})
        );
    }

    #[test]
    fn azure_auth_is_one_of_two_fields() {
        let with_host = AzureEventHubConfig {
            hub_name: "hub".into(),
            consumer_group: "$Default".into(),
            auth: AzureEventHubAuth::HostName {
                host_name: "ns.servicebus.windows.net".into(),
            },
        };
        assert_eq!(
            serde_json::to_value(&with_host).unwrap(),
            json!({"hubName": "hub", "consumerGroup": "$Default", "hostName": "ns.servicebus.windows.net"})
        );
        let back: AzureEventHubConfig = serde_json::from_value(
            json!({"hubName": "h", "consumerGroup": "g", "connectionString": "Endpoint=sb://x"}),
        )
        .unwrap();
        assert!(matches!(
            back.auth,
            AzureEventHubAuth::ConnectionString { .. }
        ));
    }

    #[test]
    fn secret_values_cover_every_secret_field() {
        let ws = WebsocketConfig {
            url: "wss://x".into(),
            disable_ssl_verification: None,
            username: None,
            password: Some("a".into()),
            private_key: Some("b".into()),
            certificate: None,
            ca_certificate: None,
            headers: Some(vec![WebsocketHeader {
                header_key: "Authorization".into(),
                header_value: "c".into(),
            }]),
        };
        let config = IntegrationConfig::Websocket(ws);
        let values: Vec<&str> = config
            .secret_values()
            .into_iter()
            .map(SecretString::expose)
            .collect();
        assert_eq!(values, ["a", "b", "c"]);
        let config = IntegrationConfig::Mqtt(mqtt());
        assert_eq!(config.secret_values().len(), 1);
    }

    /// One config of each type with every secret set.
    fn every_secret_set() -> Vec<IntegrationConfig> {
        let secret = || SecretString::new("s");
        vec![
            IntegrationConfig::AzureEventHub(AzureEventHubConfig {
                hub_name: "h".into(),
                consumer_group: "g".into(),
                auth: AzureEventHubAuth::ConnectionString {
                    connection_string: secret(),
                },
            }),
            IntegrationConfig::GooglePubSub(GooglePubSubConfig {
                project_id: None,
                key_json: Some(secret()),
            }),
            IntegrationConfig::Mqtt(MqttConfig {
                password: Some(secret()),
                private_key: Some(secret()),
                ..mqtt()
            }),
            IntegrationConfig::Particle(ParticleConfig {
                access_token: secret(),
                product_slug_or_id: None,
                org_slug_or_id: None,
                device_name_or_id: None,
            }),
            IntegrationConfig::Sqs(SqsConfig {
                queue_url: "q".into(),
                access_key_id: None,
                secret_access_key: Some(secret()),
                region: None,
            }),
            IntegrationConfig::Websocket(WebsocketConfig {
                url: "wss://x".into(),
                disable_ssl_verification: None,
                username: None,
                password: Some(secret()),
                private_key: Some(secret()),
                certificate: None,
                ca_certificate: None,
                headers: None,
            }),
        ]
    }

    #[test]
    fn set_secret_fields_are_the_tables_and_serialize_under_their_names() {
        let configs = every_secret_set();
        assert_eq!(configs.len(), IntegrationType::KNOWN.len());
        for config in configs {
            let facts = config.integration_type().facts().unwrap();
            let set: Vec<&SecretField> = config
                .set_secret_fields()
                .into_iter()
                .map(|(field, _)| field)
                .collect();
            assert_eq!(set, facts.secret_fields.iter().collect::<Vec<_>>());
            let wire = serde_json::to_value(&config).unwrap();
            for field in set {
                assert_eq!(wire[facts.config_field][field.name], "s", "{}", field.name);
            }
        }
    }
}
