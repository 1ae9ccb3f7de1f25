//! String enums of the wire format that tolerate values this client does not know.
//!
//! Losant adds and retires values (`meridian` was an integration type until API v1.24.2), so a
//! response carrying an unknown value must not fail a whole page: it is kept as `Unknown(value)`.

use super::type_facts::TypeFacts;

/// Defines a string enum with known variants plus `Unknown(String)`, (de)serialized as its string.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A value this client does not know, kept as sent by the server.
            Unknown(String),
        }

        impl $name {
            /// Every value this client knows, in wire order.
            pub const KNOWN: &'static [$name] = &[$($name::$variant),+];

            /// The value as it appears on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $wire,)+
                    $name::Unknown(other) => other,
                }
            }

            /// Whether this is a value this client knows.
            pub fn is_known(&self) -> bool {
                !matches!(self, $name::Unknown(_))
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                match value {
                    $($wire => $name::$variant,)+
                    other => $name::Unknown(other.to_owned()),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                Ok($name::from(value.as_ref()))
            }
        }
    };
}

wire_enum! {
    /// The kind of an integration (`integrationType`).
    IntegrationType {
        /// Azure Event Hub (`azureEventHubConfig`).
        AzureEventHub => "azureEventHub",
        /// Google Pub/Sub (`googlePubSubConfig`).
        GooglePubSub => "googlePubSub",
        /// An MQTT broker (`mqttConfig`).
        Mqtt => "mqtt",
        /// Particle cloud (`particleConfig`).
        Particle => "particle",
        /// Amazon SQS (`sqsConfig`).
        Sqs => "sqs",
        /// A WebSocket server (`websocketConfig`).
        Websocket => "websocket",
    }
}

impl IntegrationType {
    /// What this type is on the wire; `None` for a type this client does not know.
    pub fn facts(&self) -> Option<&'static TypeFacts> {
        super::type_facts::of(self)
    }

    /// The name of the config object that belongs to this type, e.g. `mqttConfig`.
    pub fn config_field(&self) -> Option<&'static str> {
        self.facts().map(|facts| facts.config_field)
    }
}

wire_enum! {
    /// The transport of an MQTT integration (`mqttConfig.protocol`).
    MqttProtocol {
        /// Plain MQTT over TCP.
        Mqtt => "mqtt",
        /// MQTT over TLS.
        Mqtts => "mqtts",
        /// MQTT over WebSocket.
        Ws => "ws",
        /// MQTT over secure WebSocket.
        Wss => "wss",
    }
}

wire_enum! {
    /// The MQTT protocol version (`mqttConfig.protocolVersion`); a string on the wire.
    MqttProtocolVersion {
        /// MQTT 3.1.1.
        V3_1_1 => "3.1.1",
        /// MQTT 5.
        V5 => "5",
    }
}

wire_enum! {
    /// The field a list is sorted by (`sortField`).
    SortField {
        /// By name (the server's default).
        Name => "name",
        /// By id: stable while items are being created, so the right order for paging.
        Id => "id",
        /// By creation date.
        CreationDate => "creationDate",
        /// By integration type.
        IntegrationType => "integrationType",
        /// By last update.
        LastUpdated => "lastUpdated",
    }
}

wire_enum! {
    /// The direction of a list's sort (`sortDirection`).
    SortDirection {
        /// Ascending (the server's default).
        Asc => "asc",
        /// Descending.
        Desc => "desc",
    }
}

wire_enum! {
    /// The field a list filter applies to (`filterField`).
    FilterField {
        /// Filter on the name.
        Name => "name",
        /// Filter on the integration type.
        IntegrationType => "integrationType",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_round_trip() {
        for value in IntegrationType::KNOWN {
            let json = serde_json::to_string(value).unwrap();
            let back: IntegrationType = serde_json::from_str(&json).unwrap();
            assert_eq!(&back, value);
            assert!(back.is_known());
        }
    }

    #[test]
    fn unknown_values_are_kept() {
        let retired: IntegrationType = serde_json::from_str("\"meridian\"").unwrap();
        assert_eq!(retired, IntegrationType::Unknown("meridian".into()));
        assert_eq!(serde_json::to_string(&retired).unwrap(), "\"meridian\"");
        assert_eq!(retired.config_field(), None);
    }

    #[test]
    fn protocol_version_is_a_string_on_the_wire() {
        assert_eq!(
            serde_json::to_string(&MqttProtocolVersion::V3_1_1).unwrap(),
            "\"3.1.1\""
        );
    }
}
