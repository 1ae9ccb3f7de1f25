//! Types shared by the custom resources: references and conditions.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A key of a Secret in the same namespace as the object that refers to it. There is no namespace
/// field on purpose: references cannot cross namespaces.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub struct SecretKeyRef {
    /// Name of the Secret, in this object's namespace.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub name: String,
    /// Key within the Secret's data.
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub key: String,
}

/// A reference by name to an object of a known kind in the same namespace.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct LocalObjectRef {
    /// Name of the object, in this object's namespace.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub name: String,
}

/// A short string that repeats across objects (a condition's type, status and reason, an applied
/// field's path, an API URL): every copy read shares one allocation, instead of a dozen
/// allocations of its own in every cached Integration.
///
/// At most [`Word::SHARED_MAX`] distinct values are shared; past that (only possible with
/// values written by hand into status), each is allocated on its own, so the table cannot grow
/// without bound.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Word(std::sync::Arc<str>);

impl Word {
    /// Distinct values shared at most.
    pub const SHARED_MAX: usize = 4096;

    /// The string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The shared values.
static WORDS: std::sync::LazyLock<
    std::sync::Mutex<std::collections::HashSet<std::sync::Arc<str>>>,
> = std::sync::LazyLock::new(Default::default);

impl From<&str> for Word {
    fn from(text: &str) -> Self {
        let mut words = WORDS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(shared) = words.get(text) {
            return Word(std::sync::Arc::clone(shared));
        }
        let word: std::sync::Arc<str> = text.into();
        if words.len() < Self::SHARED_MAX {
            words.insert(std::sync::Arc::clone(&word));
        }
        Word(word)
    }
}

impl From<String> for Word {
    fn from(text: String) -> Self {
        Word::from(text.as_str())
    }
}

impl Default for Word {
    fn default() -> Self {
        Word::from("")
    }
}

impl std::ops::Deref for Word {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Word {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.0, f)
    }
}

impl std::fmt::Display for Word {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for Word {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&str> for Word {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<String> for Word {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl Serialize for Word {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Word {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Ok(Word::from(text.as_ref()))
    }
}

impl JsonSchema for Word {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        String::schema_name()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        String::json_schema(generator)
    }
}

/// A status condition: Kubernetes' `metav1.Condition` on the wire and in the schema, with its
/// repeating strings shared ([`Word`]). Its type, status and reason are read as typed values
/// with `crate::sync::conditions` (`is`, `reason_is`, `known_reason`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// When the status last changed.
    pub last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
    /// For humans.
    #[serde(default)]
    pub message: String,
    /// The generation the condition was set for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Why (CamelCase).
    #[serde(default)]
    pub reason: Word,
    /// `True`, `False` or `Unknown`.
    #[serde(default)]
    pub status: Word,
    /// Which condition.
    #[serde(default, rename = "type")]
    pub type_: Word,
}

impl JsonSchema for Condition {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        <k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        <k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>::json_schema(generator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_read_alike_share_one_allocation() {
        let a: Word = serde_json::from_str(r#""mqttConfig.host""#).unwrap();
        let b = Word::from(String::from("mqttConfig.host"));
        assert!(std::sync::Arc::ptr_eq(&a.0, &b.0));
        assert_eq!(a, "mqttConfig.host");
        assert_eq!(serde_json::to_string(&b).unwrap(), r#""mqttConfig.host""#);
        assert_eq!(format!("{a:?} {a}"), r#""mqttConfig.host" mqttConfig.host"#);
    }

    #[test]
    fn conditions_read_and_write_as_kubernetes_conditions() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
        for json in [
            r#"{"lastTransitionTime":"2026-11-28T14:26:45Z","message":"m","observedGeneration":3,"reason":"Synced","status":"True","type":"Ready"}"#,
            r#"{"lastTransitionTime":"2026-11-28T14:26:45Z","message":"","reason":"None","status":"False","type":"Stalled"}"#,
            r#"{"lastTransitionTime":"2026-11-28T14:26:45Z"}"#,
        ] {
            let ours: Condition = serde_json::from_str(json).unwrap();
            let theirs: meta::Condition = serde_json::from_str(json).unwrap();
            assert_eq!(
                serde_json::to_value(&ours).unwrap(),
                serde_json::to_value(&theirs).unwrap(),
                "{json}"
            );
        }
        assert!(serde_json::from_str::<Condition>(r#"{"type":"Ready"}"#).is_err());
        let generator = &mut schemars::SchemaGenerator::default();
        assert_eq!(
            Condition::json_schema(generator),
            meta::Condition::json_schema(generator)
        );
    }
}
