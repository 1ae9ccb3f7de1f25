//! The facts of each integration type, stated once: its config object's name, the fields that
//! object requires, its secret fields with their length limits, the defaults a server fills in,
//! and what an integration connects to. The CRD, the reconcile logic and the emulator look them up
//! here instead of each matching on the type; a test checks the table against Losant's published
//! schemas.

use serde_json::Value;

use super::enums::IntegrationType;

/// A config field whose value is a secret, with the lengths (in code points) Losant accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SecretField {
    /// The field's name inside its object, e.g. `password`.
    pub name: &'static str,
    /// Fewest characters.
    pub min_chars: usize,
    /// Most characters.
    pub max_chars: usize,
}

/// A secret field of the items of a list in a config object, e.g. `headers[].headerValue`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListItemSecret {
    /// The list's name inside the config object, e.g. `headers`.
    pub list: &'static str,
    /// The secret field of each item.
    pub field: SecretField,
}

/// A value a server stores for a config field the body left out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultValue {
    /// A boolean.
    Bool(bool),
    /// A string.
    Str(&'static str),
}

impl DefaultValue {
    /// The value as JSON.
    pub fn to_json(self) -> Value {
        match self {
            DefaultValue::Bool(value) => Value::Bool(value),
            DefaultValue::Str(value) => Value::String(value.to_owned()),
        }
    }
}

/// A default a server fills into a config object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerDefault {
    /// The field's name inside the config object.
    pub field: &'static str,
    /// What the server stores.
    pub value: DefaultValue,
}

/// What an integration connects to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// The value of this field of its config object, e.g. `host` of `mqttConfig`.
    ConfigField(&'static str),
    /// Always this host.
    Fixed(&'static str),
}

/// What one integration type is on the wire.
#[derive(Debug, PartialEq, Eq)]
pub struct TypeFacts {
    /// The type (`integrationType`).
    pub integration_type: IntegrationType,
    /// The name of its config object, e.g. `mqttConfig`.
    pub config_field: &'static str,
    /// Fields the config object must have (the schema's `required`).
    pub required: &'static [&'static str],
    /// Sets of fields of which exactly one must be present in full (the schema's `oneOf`).
    pub one_of_required: &'static [&'static [&'static str]],
    /// The config object's secret fields.
    pub secret_fields: &'static [SecretField],
    /// Secret fields inside the items of the config object's lists.
    pub list_item_secrets: &'static [ListItemSecret],
    /// What a server fills in when a create or patch leaves these fields out.
    pub server_defaults: &'static [ServerDefault],
    /// What an integration of this type connects to.
    pub endpoint: Endpoint,
}

impl TypeFacts {
    /// Whether an integration of this type needs its config object: the object has required
    /// fields. (Google Pub/Sub can do without: a credential and topics are enough.)
    pub fn needs_config(&self) -> bool {
        !self.required.is_empty() || !self.one_of_required.is_empty()
    }

    /// The dotted path of a secret field of the config object, e.g. `mqttConfig.password`.
    pub fn secret_path(&self, field: &SecretField) -> String {
        format!("{}.{}", self.config_field, field.name)
    }

    /// The dotted path of a list item's secret: `websocketConfig.headers.headerValue`, or with
    /// an index `websocketConfig.headers.1.headerValue`.
    pub fn list_item_secret_path(&self, secret: &ListItemSecret, index: Option<usize>) -> String {
        let (config, list, field) = (self.config_field, secret.list, secret.field.name);
        match index {
            Some(index) => format!("{config}.{list}.{index}.{field}"),
            None => format!("{config}.{list}.{field}"),
        }
    }
}

/// Largest PEM text Losant accepts.
const PEM_MAX_CHARS: usize = 32767;

/// A password (MQTT and WebSocket).
pub const PASSWORD: SecretField = SecretField {
    name: "password",
    min_chars: 1,
    max_chars: 1024,
};

/// A client private key, PEM (MQTT and WebSocket).
pub const PRIVATE_KEY: SecretField = SecretField {
    name: "privateKey",
    min_chars: 4,
    max_chars: PEM_MAX_CHARS,
};

/// A Google service-account key, JSON text.
pub const KEY_JSON: SecretField = SecretField {
    name: "keyJson",
    min_chars: 4,
    max_chars: PEM_MAX_CHARS,
};

/// An Azure Event Hub connection string.
pub const CONNECTION_STRING: SecretField = SecretField {
    name: "connectionString",
    min_chars: 1,
    max_chars: 1024,
};

/// A Particle access token.
pub const ACCESS_TOKEN: SecretField = SecretField {
    name: "accessToken",
    min_chars: 1,
    max_chars: 1024,
};

/// An AWS secret access key. The schema bounds it with `min`/`max`, which are not JSON Schema
/// keywords, so Losant checks no length; 1–1024 is the operator's own bound, as for the other keys.
pub const SECRET_ACCESS_KEY: SecretField = SecretField {
    name: "secretAccessKey",
    min_chars: 1,
    max_chars: 1024,
};

/// A WebSocket header's value: treated as a secret, as it often carries `Authorization`.
pub const HEADER_VALUE: ListItemSecret = ListItemSecret {
    list: "headers",
    field: SecretField {
        name: "headerValue",
        min_chars: 1,
        max_chars: 1024,
    },
};

/// Where every Particle integration connects: Particle's cloud.
pub const PARTICLE_ENDPOINT: &str = "api.particle.io";

/// Skipping TLS verification is off unless asked for.
const SSL_VERIFIED: ServerDefault = ServerDefault {
    field: "disableSSLVerification",
    value: DefaultValue::Bool(false),
};

/// Azure Event Hub: a hub and consumer group, reached by connection string or by host name (with
/// an Azure credential).
pub static AZURE_EVENT_HUB: TypeFacts = TypeFacts {
    integration_type: IntegrationType::AzureEventHub,
    config_field: "azureEventHubConfig",
    required: &[],
    one_of_required: &[
        &["hubName", "consumerGroup", "connectionString"],
        &["hubName", "consumerGroup", "hostName"],
    ],
    secret_fields: &[CONNECTION_STRING],
    list_item_secrets: &[],
    server_defaults: &[],
    endpoint: Endpoint::ConfigField("hubName"),
};

/// Google Pub/Sub.
pub static GOOGLE_PUB_SUB: TypeFacts = TypeFacts {
    integration_type: IntegrationType::GooglePubSub,
    config_field: "googlePubSubConfig",
    required: &[],
    one_of_required: &[],
    secret_fields: &[KEY_JSON],
    list_item_secrets: &[],
    server_defaults: &[],
    endpoint: Endpoint::ConfigField("projectId"),
};

/// An MQTT broker.
pub static MQTT: TypeFacts = TypeFacts {
    integration_type: IntegrationType::Mqtt,
    config_field: "mqttConfig",
    required: &["port", "protocol", "host"],
    one_of_required: &[],
    secret_fields: &[PASSWORD, PRIVATE_KEY],
    list_item_secrets: &[],
    server_defaults: &[
        ServerDefault {
            field: "clean",
            value: DefaultValue::Bool(true),
        },
        SSL_VERIFIED,
        ServerDefault {
            field: "protocolVersion",
            value: DefaultValue::Str("3.1.1"),
        },
    ],
    endpoint: Endpoint::ConfigField("host"),
};

/// Particle cloud.
pub static PARTICLE: TypeFacts = TypeFacts {
    integration_type: IntegrationType::Particle,
    config_field: "particleConfig",
    required: &["accessToken"],
    one_of_required: &[],
    secret_fields: &[ACCESS_TOKEN],
    list_item_secrets: &[],
    server_defaults: &[],
    endpoint: Endpoint::Fixed(PARTICLE_ENDPOINT),
};

/// Amazon SQS.
pub static SQS: TypeFacts = TypeFacts {
    integration_type: IntegrationType::Sqs,
    config_field: "sqsConfig",
    required: &["queueUrl"],
    one_of_required: &[],
    secret_fields: &[SECRET_ACCESS_KEY],
    list_item_secrets: &[],
    server_defaults: &[],
    endpoint: Endpoint::ConfigField("queueUrl"),
};

/// A WebSocket server.
pub static WEBSOCKET: TypeFacts = TypeFacts {
    integration_type: IntegrationType::Websocket,
    config_field: "websocketConfig",
    required: &["url"],
    one_of_required: &[],
    secret_fields: &[PASSWORD, PRIVATE_KEY],
    list_item_secrets: &[HEADER_VALUE],
    server_defaults: &[SSL_VERIFIED],
    endpoint: Endpoint::ConfigField("url"),
};

/// Every type, in wire order (as [`IntegrationType::KNOWN`]).
pub static ALL: [&TypeFacts; 6] = [
    &AZURE_EVENT_HUB,
    &GOOGLE_PUB_SUB,
    &MQTT,
    &PARTICLE,
    &SQS,
    &WEBSOCKET,
];

/// The facts of `integration_type`; `None` for a type this client does not know.
pub fn of(integration_type: &IntegrationType) -> Option<&'static TypeFacts> {
    ALL.iter()
        .copied()
        .find(|facts| facts.integration_type == *integration_type)
}

/// The facts of the type whose config object is `config_field`.
pub fn by_config_field(config_field: &str) -> Option<&'static TypeFacts> {
    ALL.iter()
        .copied()
        .find(|facts| facts.config_field == config_field)
}

#[cfg(test)]
mod tests;
