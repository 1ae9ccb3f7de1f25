//! Wire models of the integrations resource: the Post and Patch bodies, the Integration as read
//! back, and the list query and page.
//!
//! Reading is tolerant: unknown fields are ignored, unknown enum values are kept, and a list item
//! whose optional fields do not parse is kept with those fields dropped (and named), so one odd item
//! never fails a whole page — a missed item would make a name lookup miss and cause a duplicate.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use super::config::IntegrationConfig;
use super::enums::{FilterField, IntegrationType, SortDirection, SortField};
use super::remote_config::{
    RemoteAzureEventHubConfig, RemoteGooglePubSubConfig, RemoteMqttConfig, RemoteParticleConfig,
    RemoteSqsConfig, RemoteWebsocketConfig,
};
use super::secret::SecretString;

/// The body of a create (`POST …/integrations`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationPost {
    /// Name (1–255 characters). Names are not unique in Losant.
    pub name: String,
    /// The type; cannot be changed later.
    pub integration_type: IntegrationType,
    /// Whether the integration runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Name of a stored Losant credential to use instead of inline secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_name: Option<String>,
    /// Topics, subscriptions or event prefixes, depending on the type. Unique items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topics: Option<Vec<String>>,
    /// The config object of the type.
    #[serde(default, flatten, skip_serializing_if = "Option::is_none")]
    pub config: Option<IntegrationConfig>,
}

impl IntegrationPost {
    /// A body for `name` whose type follows from `config`, so the two cannot disagree.
    pub fn new(name: impl Into<String>, config: IntegrationConfig) -> Self {
        Self {
            name: name.into(),
            integration_type: config.integration_type(),
            enabled: None,
            credential_name: None,
            topics: None,
            config: Some(config),
        }
    }

    /// Every secret value in the body.
    pub fn secret_values(&self) -> Vec<&SecretString> {
        self.config
            .as_ref()
            .map(IntegrationConfig::secret_values)
            .unwrap_or_default()
    }
}

/// A field of a Patch body that can be set or cleared (sent as `null`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldPatch<T> {
    /// Set the field to this value.
    Set(T),
    /// Clear the field (`null` on the wire).
    Clear,
}

impl<T: Serialize> Serialize for FieldPatch<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            FieldPatch::Set(value) => value.serialize(serializer),
            FieldPatch::Clear => serializer.serialize_none(),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for FieldPatch<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match Option::<T>::deserialize(deserializer)? {
            Some(value) => FieldPatch::Set(value),
            None => FieldPatch::Clear,
        })
    }
}

/// The body of an update (`PATCH …/integrations/{id}`): top-level fields are merged, a config
/// object replaces the stored one whole. `integrationType` cannot be patched.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationPatch {
    /// New name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// New enabled flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// New credential name, or [`FieldPatch::Clear`] to remove it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_name: Option<FieldPatch<String>>,
    /// New topics (replaces the list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topics: Option<Vec<String>>,
    /// New config object (replaces the stored one whole).
    #[serde(default, flatten, skip_serializing_if = "Option::is_none")]
    pub config: Option<IntegrationConfig>,
}

impl IntegrationPatch {
    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// Every secret value in the body.
    pub fn secret_values(&self) -> Vec<&SecretString> {
        self.config
            .as_ref()
            .map(IntegrationConfig::secret_values)
            .unwrap_or_default()
    }
}

/// An integration as read back from Losant (GET, list items, and the answers to POST and PATCH).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Integration {
    /// The integration's id (24 hex).
    pub id: String,
    /// The same id again, as Losant also sends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration_id: Option<String>,
    /// The application it belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_id: Option<String>,
    /// Name.
    pub name: String,
    /// Type; `Unknown` for types this client does not know.
    pub integration_type: IntegrationType,
    /// Enabled flag, when the server reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Credential name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_name: Option<String>,
    /// Topics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topics: Option<Vec<String>>,
    /// Creation time, ISO-8601.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_date: Option<String>,
    /// Last update time, ISO-8601.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<String>,
    /// `azureEventHubConfig`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure_event_hub_config: Option<Box<RemoteAzureEventHubConfig>>,
    /// `googlePubSubConfig`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub google_pub_sub_config: Option<Box<RemoteGooglePubSubConfig>>,
    /// `mqttConfig`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mqtt_config: Option<Box<RemoteMqttConfig>>,
    /// `particleConfig`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub particle_config: Option<Box<RemoteParticleConfig>>,
    /// `sqsConfig`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sqs_config: Option<Box<RemoteSqsConfig>>,
    /// `websocketConfig`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub websocket_config: Option<Box<RemoteWebsocketConfig>>,
    /// Runtime connection state (read-only; never sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<super::RemoteStatus>,
    /// Top-level fields that were present but could not be read (names only, never values).
    #[serde(skip)]
    pub unreadable_fields: Vec<String>,
}

/// Why a list item could not be kept at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnreadableItem {
    /// Position on its page.
    pub index: usize,
    /// Which required field was missing or malformed.
    pub reason: &'static str,
    /// The item's name, when it has a readable one.
    pub name: Option<String>,
}

impl Integration {
    /// Reads one integration, dropping (and naming) optional fields that do not parse.
    ///
    /// # Errors
    /// When `id`, `name` or `integrationType` is missing or not a string: without them the item
    /// cannot be identified.
    pub fn from_value_lenient(value: Value) -> Result<Self, &'static str> {
        let Value::Object(object) = value else {
            return Err("item is not an object");
        };
        for required in ["id", "name", "integrationType"] {
            if !object.get(required).is_some_and(Value::is_string) {
                return Err(match required {
                    "id" => "id missing or not a string",
                    "name" => "name missing or not a string",
                    _ => "integrationType missing or not a string",
                });
            }
        }
        match serde_json::from_value::<Integration>(Value::Object(object.clone())) {
            Ok(item) => Ok(item),
            Err(_) => Self::salvage(object),
        }
    }

    /// Keeps every field that parses on its own; `from_value_lenient` checked the required ones.
    fn salvage(object: Map<String, Value>) -> Result<Self, &'static str> {
        let required: Map<String, Value> = ["id", "name", "integrationType"]
            .iter()
            .filter_map(|key| Some((key.to_string(), object.get(*key)?.clone())))
            .collect();
        let mut kept = required.clone();
        let mut unreadable = Vec::new();
        for (key, field) in object {
            if required.contains_key(&key) {
                continue;
            }
            let mut probe = required.clone();
            probe.insert(key.clone(), field.clone());
            if serde_json::from_value::<Integration>(Value::Object(probe)).is_ok() {
                kept.insert(key, field);
            } else {
                unreadable.push(key);
            }
        }
        // Each kept field parsed next to the required ones, so together they parse as well.
        let mut item: Integration = serde_json::from_value(Value::Object(kept))
            .map_err(|_| "fields readable one by one did not read together")?;
        item.unreadable_fields = unreadable;
        Ok(item)
    }
}

/// Parameters of a list call. Unset fields take the server's defaults.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ListQuery {
    /// Sort field (server default `name`).
    pub sort_field: Option<SortField>,
    /// Sort direction (server default `asc`).
    pub sort_direction: Option<SortDirection>,
    /// Zero-based page (server default 0).
    pub page: Option<u64>,
    /// Items per page (server default 100; servers may clamp it).
    pub per_page: Option<u64>,
    /// Field the filter applies to.
    pub filter_field: Option<FilterField>,
    /// Glob pattern (`*` matches any run of characters).
    pub filter: Option<String>,
}

impl ListQuery {
    /// The query parameters, in a stable order, values not yet encoded.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        if let Some(field) = &self.sort_field {
            pairs.push(("sortField", field.as_str().to_owned()));
        }
        if let Some(direction) = &self.sort_direction {
            pairs.push(("sortDirection", direction.as_str().to_owned()));
        }
        if let Some(page) = self.page {
            pairs.push(("page", page.to_string()));
        }
        if let Some(per_page) = self.per_page {
            pairs.push(("perPage", per_page.to_string()));
        }
        if let Some(field) = &self.filter_field {
            pairs.push(("filterField", field.as_str().to_owned()));
        }
        if let Some(filter) = &self.filter {
            pairs.push(("filter", filter.clone()));
        }
        pairs
    }
}

/// One page of a list.
#[derive(Clone, Debug, PartialEq)]
pub struct IntegrationPage {
    /// The items that could be read.
    pub items: Vec<Integration>,
    /// Items the server put on this page (including unreadable ones).
    pub count: u64,
    /// Items matching the query across all pages.
    pub total_count: u64,
    /// The page size the server applied (it may clamp what was asked).
    pub per_page: u64,
    /// The zero-based page number.
    pub page: u64,
    /// Items that could not be identified and were left out.
    pub unreadable: Vec<UnreadableItem>,
}

/// The list envelope as sent; items stay raw so each is read on its own.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawPage<'a> {
    /// Kept as raw JSON until each is read: most read straight into [`Integration`], and only
    /// one that does not is taken apart field by field (a whole page as [`Value`] trees would be
    /// several times its size in memory).
    #[serde(default, borrow)]
    pub items: Vec<&'a serde_json::value::RawValue>,
    #[serde(default, deserialize_with = "lenient_count")]
    pub count: Option<u64>,
    #[serde(default, deserialize_with = "lenient_count")]
    pub total_count: Option<u64>,
    #[serde(default, deserialize_with = "lenient_count")]
    pub per_page: Option<u64>,
    #[serde(default, deserialize_with = "lenient_count")]
    pub page: Option<u64>,
}

impl RawPage<'_> {
    /// Reads the items one by one; counts the server left out are taken from the items.
    pub(crate) fn into_page(self) -> IntegrationPage {
        let on_page = self.items.len() as u64;
        let mut items = Vec::with_capacity(self.items.len());
        let mut unreadable = Vec::new();
        for (index, raw) in self.items.into_iter().enumerate() {
            // Reading typed succeeds only if id, name and integrationType are strings, which is
            // all that from_value_lenient checks before doing the same.
            if let Ok(item) = serde_json::from_str::<Integration>(raw.get()) {
                items.push(item);
                continue;
            }
            let raw: Value = serde_json::from_str(raw.get()).unwrap_or(Value::Null);
            let name = raw.get("name").and_then(Value::as_str).map(str::to_owned);
            match Integration::from_value_lenient(raw) {
                Ok(item) => items.push(item),
                Err(reason) => unreadable.push(UnreadableItem {
                    index,
                    reason,
                    name,
                }),
            }
        }
        IntegrationPage {
            items,
            count: self.count.unwrap_or(on_page),
            total_count: self.total_count.unwrap_or(on_page),
            per_page: self.per_page.unwrap_or(on_page),
            page: self.page.unwrap_or(0),
            unreadable,
        }
    }
}

/// Reads a count sent as any non-negative integral JSON number (`100` or `100.0`) or numeric string.
fn lenient_count<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    Ok(match Option::<Value>::deserialize(deserializer)? {
        Some(Value::Number(n)) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 9.0e15)
                .map(|f| f as u64)
        }),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::losant::config::SqsConfig;
    use serde_json::json;

    #[test]
    fn post_flattens_the_config_object() {
        let post = IntegrationPost::new(
            "queue",
            IntegrationConfig::Sqs(SqsConfig {
                queue_url: "https://sqs/q".into(),
                access_key_id: None,
                secret_access_key: None,
                region: Some("us-east-1".into()),
            }),
        );
        assert_eq!(
            serde_json::to_value(&post).unwrap(),
            json!({"name": "queue", "integrationType": "sqs",
                   "sqsConfig": {"queueUrl": "https://sqs/q", "region": "us-east-1"}})
        );
    }

    #[test]
    fn patch_sends_null_to_clear_and_omits_unset_fields() {
        let patch = IntegrationPatch {
            credential_name: Some(FieldPatch::Clear),
            topics: Some(vec!["a".into()]),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&patch).unwrap(),
            json!({"credentialName": null, "topics": ["a"]})
        );
        assert!(IntegrationPatch::default().is_empty());
        assert_eq!(
            serde_json::to_value(IntegrationPatch::default()).unwrap(),
            json!({})
        );
    }

    #[test]
    fn the_documented_example_reads() {
        let item = json!({
            "applicationId": "575ec8687ae143cd83dc4a97", "creationDate": "2016-06-13T04:00:00.000Z",
            "enabled": true, "id": "58ec07f20c747f65243d0d76", "integrationId": "58ec07f20c747f65243d0d76",
            "integrationType": "mqtt", "lastUpdated": "2016-06-13T04:00:00.000Z",
            "mqttConfig": {"clientId": "exampleClientId", "host": "broker.example.com",
                "password": "examplePassword", "port": 8883, "protocol": "mqtts", "username": "exampleUsername"},
            "name": "Example Integrations",
            "status": {"connectInfo": {"ts": 1490629589313u64}, "lastKeepAlive": 1491863679994u64},
            "topics": ["myTopic"], "_type": "integration", "_links": {"self": {"href": "/x"}}
        });
        let read = Integration::from_value_lenient(item).unwrap();
        assert_eq!(read.id, "58ec07f20c747f65243d0d76");
        assert_eq!(read.mqtt_config.unwrap().port, Some(8883));
        assert!(read.unreadable_fields.is_empty());
    }

    #[test]
    fn a_malformed_optional_field_is_dropped_and_named() {
        let item = json!({"id": "a", "name": "n", "integrationType": "mqtt",
            "mqttConfig": {"port": "not-a-number"}, "topics": ["t"]});
        let read = Integration::from_value_lenient(item).unwrap();
        assert_eq!(read.unreadable_fields, ["mqttConfig"]);
        assert_eq!(read.topics, Some(vec!["t".to_string()]));
    }

    #[test]
    fn unknown_types_are_kept_and_unidentifiable_items_are_reported() {
        let body = json!({
            "items": [
                {"id": "a", "name": "old", "integrationType": "meridian", "meridianConfig": {}},
                {"name": "no id", "integrationType": "mqtt"},
                {"id": "b", "name": "odd port", "integrationType": "mqtt",
                    "mqttConfig": {"port": "not-a-number"}},
            ],
            "count": 3, "totalCount": 3.0, "perPage": "100", "page": 0
        })
        .to_string();
        let page: RawPage<'_> = serde_json::from_str(&body).unwrap();
        let page = page.into_page();
        assert_eq!(page.items.len(), 2);
        assert_eq!(page.items[1].unreadable_fields, ["mqttConfig"]);
        assert_eq!(
            page.items[0].integration_type,
            IntegrationType::Unknown("meridian".into())
        );
        assert_eq!(
            page.unreadable,
            [UnreadableItem {
                index: 1,
                reason: "id missing or not a string",
                name: Some("no id".into())
            }]
        );
        assert_eq!((page.count, page.total_count, page.per_page), (3, 3, 100));
    }

    #[test]
    fn list_query_pairs_are_in_a_stable_order() {
        let query = ListQuery {
            sort_field: Some(SortField::Id),
            page: Some(2),
            per_page: Some(1000),
            filter_field: Some(FilterField::Name),
            filter: Some("a+b".into()),
            ..Default::default()
        };
        let keys: Vec<_> = query.pairs().into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            ["sortField", "page", "perPage", "filterField", "filter"]
        );
    }
}
