//! `Integration`: one Losant integration of an application, managed declaratively.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{Condition, LocalObjectRef, Word};
use super::config::{
    AzureEventHubSpec, GooglePubSubSpec, MqttSpec, ParticleSpec, SqsSpec, WebsocketSpec,
};
use crate::losant::TypeFacts;
use crate::losant::type_facts;

fn enabled_by_default() -> bool {
    true
}

/// A Losant integration (MQTT broker, Google Pub/Sub, Azure Event Hub, SQS, Particle or WebSocket)
/// of the application named by `applicationRef`. The operator creates it when missing, corrects
/// drift, and deletes it with this object (per `deletionPolicy`).
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "losant.io",
    version = "v1alpha1",
    kind = "Integration",
    namespaced,
    status = "IntegrationStatus",
    shortname = "lsint",
    category = "losant",
    doc = "A Losant integration of the application named by applicationRef, kept in the state this spec declares.",
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.integrationType"),
    printcolumn(name = "Enabled", type_ = "boolean", json_path = ".spec.enabled"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Connected",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Connected\")].status"
    ),
    printcolumn(
        name = "Remote ID",
        type_ = "string",
        json_path = ".status.integrationId"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        priority = 1,
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[allow(clippy::duplicated_attributes)] // several printcolumn(type_ = …) trip this lint
pub struct IntegrationSpec {
    /// The `LosantApplication` (same namespace) this integration belongs to.
    pub application_ref: LocalObjectRef,
    /// Name of the integration in Losant; `metadata.name` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub name: Option<String>,
    /// The integration type. It cannot change: delete and re-create the object instead.
    pub integration_type: IntegrationTypeSpec,
    /// Whether the integration runs.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// MQTT topic filters, Pub/Sub subscriptions or Particle event prefixes, by type. Unique.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256), extend("x-kubernetes-list-type" = "set"), inner(length(min = 1, max = 1024)))]
    pub topics: Option<Vec<String>>,
    /// Name of a Losant credential (GCP, AWS or Azure) used instead of inline keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub credential_name: Option<String>,
    /// Config for `integrationType: mqtt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mqtt_config: Option<Box<MqttSpec>>,
    /// Config for `integrationType: googlePubSub`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub google_pub_sub_config: Option<Box<GooglePubSubSpec>>,
    /// Config for `integrationType: azureEventHub`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure_event_hub_config: Option<Box<AzureEventHubSpec>>,
    /// Config for `integrationType: particle`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub particle_config: Option<Box<ParticleSpec>>,
    /// Config for `integrationType: sqs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sqs_config: Option<Box<SqsSpec>>,
    /// Config for `integrationType: websocket`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub websocket_config: Option<Box<WebsocketSpec>>,
    /// What to do when a remote integration with this name already exists and this object has
    /// not created one: take it over (`IfExactlyOneMatch`) or report `AlreadyExists` (`Never`).
    #[serde(default)]
    pub adoption_policy: AdoptionPolicy,
    /// What deleting this object does to the remote integration. Unset: `Delete` if the operator
    /// created it, `Orphan` if it adopted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,
    /// `Full` (default): the operator creates, updates and deletes the remote integration.
    /// `ObserveOnly`: it only finds it (by recorded id or exact name) and reports it, its
    /// connection and how it differs from this spec; it never writes to Losant.
    #[serde(default, skip_serializing_if = "ManagementPolicy::is_full")]
    pub management_policy: ManagementPolicy,
}

/// How far the operator manages the remote integration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub enum ManagementPolicy {
    /// Create, update and delete it.
    #[default]
    Full,
    /// Find and report it; never write to Losant.
    ObserveOnly,
}

impl ManagementPolicy {
    fn is_full(&self) -> bool {
        *self == ManagementPolicy::Full
    }
}

/// The six Losant integration types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum IntegrationTypeSpec {
    /// Azure Event Hub.
    #[serde(rename = "azureEventHub")]
    AzureEventHub,
    /// Google Pub/Sub.
    #[serde(rename = "googlePubSub")]
    GooglePubSub,
    /// MQTT broker.
    #[serde(rename = "mqtt")]
    Mqtt,
    /// Particle cloud.
    #[serde(rename = "particle")]
    Particle,
    /// Amazon SQS.
    #[serde(rename = "sqs")]
    Sqs,
    /// WebSocket server.
    #[serde(rename = "websocket")]
    Websocket,
}

impl IntegrationTypeSpec {
    /// Every type, in a stable order.
    pub const ALL: [IntegrationTypeSpec; 6] = [
        IntegrationTypeSpec::AzureEventHub,
        IntegrationTypeSpec::GooglePubSub,
        IntegrationTypeSpec::Mqtt,
        IntegrationTypeSpec::Particle,
        IntegrationTypeSpec::Sqs,
        IntegrationTypeSpec::Websocket,
    ];

    /// What this type is on the wire. The CRD's enum is closed (serde and the schema need one
    /// variant per type), so each variant names its row of the table and the lookup cannot fail.
    pub fn facts(self) -> &'static TypeFacts {
        match self {
            IntegrationTypeSpec::AzureEventHub => &type_facts::AZURE_EVENT_HUB,
            IntegrationTypeSpec::GooglePubSub => &type_facts::GOOGLE_PUB_SUB,
            IntegrationTypeSpec::Mqtt => &type_facts::MQTT,
            IntegrationTypeSpec::Particle => &type_facts::PARTICLE,
            IntegrationTypeSpec::Sqs => &type_facts::SQS,
            IntegrationTypeSpec::Websocket => &type_facts::WEBSOCKET,
        }
    }

    /// The wire value, e.g. `azureEventHub`.
    pub fn as_str(self) -> &'static str {
        self.facts().integration_type.as_str()
    }

    /// The spec field of this type's config block, e.g. `mqttConfig`.
    pub fn config_field(self) -> &'static str {
        self.facts().config_field
    }

    /// Whether the config block must be present (its Losant object has required fields).
    pub fn config_required(self) -> bool {
        self.facts().needs_config()
    }
}

/// Whether an existing remote integration with the same name may be taken over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub enum AdoptionPolicy {
    /// Take over the remote integration when exactly one has this name.
    #[default]
    IfExactlyOneMatch,
    /// Never take one over: an existing one is a conflict (`AlreadyExists`).
    Never,
}

/// What deleting the object does to the remote integration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DeletionPolicy {
    /// Delete the remote integration.
    Delete,
    /// Leave the remote integration in Losant.
    Orphan,
}

/// How the operator came to manage the remote integration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Origin {
    /// The operator created it.
    Created,
    /// It existed and the operator took it over.
    Adopted,
}

/// Observed state of an `Integration`.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationStatus {
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Id of the remote integration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration_id: Option<String>,
    /// The Losant application the remote integration lives in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_id: Option<Word>,
    /// The API URL of that application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<Word>,
    /// Whether the operator created the remote integration or adopted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    /// Last successful write to Losant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied_time: Option<Time>,
    /// `resourceVersion` of each referenced Secret (by name) as of the last write. Never values.
    #[serde(default, skip_serializing_if = "SecretVersions::is_empty")]
    pub applied_secret_versions: SecretVersions,
    /// Remote fields the last write set (`credentialName`, `mqttConfig.host`, …): fields the
    /// operator owns, so it can tell a field removed from the spec from one Losant filled in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applied_fields: Vec<Word>,
    /// The remote's connection as Losant last reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<ConnectionStatus>,
    /// The value of the `losant.io/reconcile-requested-at` annotation last handled: set once a
    /// reconcile asked for by it has compared the object with a fresh read from Losant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
    /// `Ready`, plus kstatus's `Reconciling` and `Stalled`, and `Connected`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

/// The remote's connection, as Losant reports it.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionStatus {
    /// `Connected`, `Disconnected`, `Disabled` or `NotReported` (as the `Connected` condition's
    /// reason).
    pub state: Word,
    /// When the current state began, as Losant reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Time>,
    /// `since` in seconds since the epoch, for tools that cannot read times (Argo CD's health
    /// checks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_unix: Option<i64>,
    /// Losant's error text of the last disconnect, sanitized, while disconnected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When Losant tries to connect again, while disconnected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt: Option<Time>,
}

/// Secret name → `resourceVersion`: a map on the wire, a sorted vector in memory. Every cached
/// Integration carries one, usually of a single entry, and a tree's smallest node is over 500
/// bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecretVersions(Vec<(String, String)>);

impl SecretVersions {
    /// Whether no Secret is recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The version recorded for Secret `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(key, _)| key.as_str().cmp(name))
            .ok()
            .map(|at| self.0[at].1.as_str())
    }

    /// `(name, version)`, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .iter()
            .map(|(name, version)| (name.as_str(), version.as_str()))
    }
}

impl FromIterator<(String, String)> for SecretVersions {
    /// Sorted by name; of repeated names the last one counts (as when inserting into a map).
    fn from_iter<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Self {
        let mut pairs: Vec<(String, String)> = pairs.into_iter().collect();
        // Stable: repeated names stay in order, and dedup_by keeps the first of each run,
        // so reversing first keeps the last.
        pairs.reverse();
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        pairs.dedup_by(|later, earlier| later.0 == earlier.0);
        pairs.shrink_to_fit();
        Self(pairs)
    }
}

impl From<&BTreeMap<String, String>> for SecretVersions {
    fn from(map: &BTreeMap<String, String>) -> Self {
        Self(map.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }
}

impl PartialEq<BTreeMap<String, String>> for SecretVersions {
    fn eq(&self, map: &BTreeMap<String, String>) -> bool {
        self.iter()
            .eq(map.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }
}

impl Serialize for SecretVersions {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for SecretVersions {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Pairs;

        impl<'de> serde::de::Visitor<'de> for Pairs {
            type Value = SecretVersions;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map of Secret names to resourceVersions")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(1).min(64));
                while let Some(pair) = map.next_entry()? {
                    pairs.push(pair);
                }
                Ok(pairs.into_iter().collect())
            }
        }

        deserializer.deserialize_map(Pairs)
    }
}

impl JsonSchema for SecretVersions {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        <BTreeMap<String, String>>::schema_name()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        <BTreeMap<String, String>>::json_schema(generator)
    }
}

impl Integration {
    /// The remote name: `spec.name`, or `metadata.name` when unset.
    pub fn remote_name(&self) -> &str {
        self.spec
            .name
            .as_deref()
            .or(self.metadata.name.as_deref())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_type_is_its_row_of_the_table() {
        let rows: Vec<&TypeFacts> = IntegrationTypeSpec::ALL
            .map(IntegrationTypeSpec::facts)
            .into();
        assert_eq!(rows, type_facts::ALL, "ALL is in the table's order");
        for spec_type in IntegrationTypeSpec::ALL {
            let wire = serde_json::to_value(spec_type).unwrap();
            assert_eq!(wire, spec_type.as_str(), "the serde name is the wire value");
        }
    }

    #[test]
    fn secret_versions_are_a_sorted_map_on_the_wire() {
        let read: SecretVersions =
            serde_json::from_str(r#"{"tls": "7", "mqtt": "3", "tls": "9"}"#).unwrap();
        assert_eq!(
            read.get("tls"),
            Some("9"),
            "the last of a repeated name counts"
        );
        assert_eq!(read.get("mqtt"), Some("3"));
        assert_eq!(read.get("other"), None);
        assert_eq!(
            serde_json::to_string(&read).unwrap(),
            r#"{"mqtt":"3","tls":"9"}"#
        );
        let map: BTreeMap<String, String> =
            [("mqtt".into(), "3".into()), ("tls".into(), "9".into())].into();
        assert_eq!(read, map);
        assert_eq!(SecretVersions::from(&map), read);
        let mut changed = map.clone();
        changed.insert("tls".into(), "10".into());
        assert_ne!(read, changed);
        assert!(serde_json::from_str::<SecretVersions>(r#"{"a": 1}"#).is_err());
    }

    #[test]
    fn secret_versions_have_the_schema_of_a_string_map() {
        let generator = &mut schemars::SchemaGenerator::default();
        assert_eq!(
            SecretVersions::json_schema(generator),
            <BTreeMap<String, String>>::json_schema(generator)
        );
    }
}
