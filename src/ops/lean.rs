//! Decoding watched objects without what the operator never reads.
//!
//! managedFields and kubectl's last-applied copy of the whole object are most of a typical
//! object's JSON. Decoding them only to drop them afterwards costs CPU, and, worse, leaves the
//! heap full of holes between the objects that stay cached: after a large initial list, that
//! fragmentation can outweigh the cache itself. [`Lean`] decodes an object with both skipped in
//! the parser (no allocation at all), so what is decoded is what is kept.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use kube::core::PartialObjectMeta;
use serde::de::{DeserializeOwned, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

/// kubectl's client-side apply annotation.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Where a stand-in for an object the operator cannot decode says why: an annotation key with a
/// space in it, which the API server never stores, so it exists only in the operator's memory.
pub const UNDECODABLE: &str = "losant.io/undecodable object";

/// The longest decoding error kept on a stand-in.
const MAX_DECODE_ERROR: usize = 300;

/// A kind whose objects can be decoded lean: with metadata read through [`LeanMeta`].
pub trait DecodeLean: Sized {
    /// Decodes one object, skipping managedFields and the last-applied annotation.
    fn decode_lean<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error>;

    /// A stand-in for an object whose metadata reads but whose spec or status does not (stored
    /// before a schema tightened, or by a newer version): `metadata` (carrying [`UNDECODABLE`])
    /// and placeholders, or what can still be read from the object's JSON, `raw`. `None`: the
    /// kind has none, and the decoding error stands.
    fn undecodable(_metadata: ObjectMeta, _raw: &str) -> Option<Self> {
        None
    }
}

/// `K`, decoded lean: the type the operator's watches list and watch, unwrapped before caching.
///
/// One object that cannot be decoded must not fail a whole list (kube-runtime would then retry
/// the list forever and nothing would reconcile): it becomes [`DecodeLean::undecodable`]'s
/// stand-in, which the controllers report and otherwise leave alone.
#[derive(Clone, Debug, Serialize)]
#[serde(transparent)]
pub struct Lean<K>(pub K);

impl<'de, K: DecodeLean> Deserialize<'de> for Lean<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        // The object's text is kept (one copy, dropped at once) so a failed decode can be
        // followed by a metadata-only one.
        let raw = Box::<serde_json::value::RawValue>::deserialize(deserializer)?;
        let error = match K::decode_lean(&mut serde_json::Deserializer::from_str(raw.get())) {
            Ok(object) => return Ok(Lean(object)),
            Err(error) => error,
        };
        let mut metadata = PartialObjectMeta::<()>::decode_lean(
            &mut serde_json::Deserializer::from_str(raw.get()),
        )
        .map_err(|_| D::Error::custom(&error))?
        .metadata;
        let why: String = error.to_string().chars().take(MAX_DECODE_ERROR).collect();
        metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(UNDECODABLE.to_owned(), why);
        K::undecodable(metadata, raw.get())
            .map(Lean)
            .ok_or_else(|| D::Error::custom(error))
    }
}

/// Why `object` is a stand-in for one the operator could not decode, if it is one.
pub fn undecodable<K: kube::Resource>(object: &K) -> Option<&str> {
    object
        .meta()
        .annotations
        .as_ref()?
        .get(UNDECODABLE)
        .map(String::as_str)
}

impl<K: kube::Resource> kube::Resource for Lean<K> {
    type DynamicType = K::DynamicType;
    type Scope = K::Scope;

    fn kind(dt: &Self::DynamicType) -> std::borrow::Cow<'_, str> {
        K::kind(dt)
    }
    fn group(dt: &Self::DynamicType) -> std::borrow::Cow<'_, str> {
        K::group(dt)
    }
    fn version(dt: &Self::DynamicType) -> std::borrow::Cow<'_, str> {
        K::version(dt)
    }
    fn api_version(dt: &Self::DynamicType) -> std::borrow::Cow<'_, str> {
        K::api_version(dt)
    }
    fn plural(dt: &Self::DynamicType) -> std::borrow::Cow<'_, str> {
        K::plural(dt)
    }
    fn metadata_api() -> bool {
        K::metadata_api()
    }
    fn url_path(dt: &Self::DynamicType, namespace: Option<&str>) -> String {
        K::url_path(dt, namespace)
    }
    fn meta(&self) -> &ObjectMeta {
        self.0.meta()
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        self.0.meta_mut()
    }
}

/// The wire shape of a kind with a spec and a status, metadata read lean.
#[derive(Deserialize)]
#[serde(bound(deserialize = "Spec: DeserializeOwned, Status: DeserializeOwned"))]
pub struct SpecAndStatus<Spec, Status> {
    pub metadata: LeanMeta,
    pub spec: Spec,
    #[serde(default)]
    pub status: Option<Status>,
}

/// Metadata only (a metadata watch).
impl<K> DecodeLean for PartialObjectMeta<K> {
    fn decode_lean<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct MetadataOnly {
            #[serde(default)]
            metadata: LeanMeta,
        }
        let object = MetadataOnly::deserialize(deserializer)?;
        Ok(PartialObjectMeta {
            types: None,
            metadata: object.metadata.into(),
            _phantom: PhantomData,
        })
    }
}

/// [`ObjectMeta`] as decoded lean: every field but managedFields (left to the parser to skip,
/// as any unknown field) and selfLink, with annotations read by [`lean_annotations`].
#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LeanMeta {
    #[serde(deserialize_with = "lean_annotations")]
    annotations: Option<BTreeMap<String, String>>,
    creation_timestamp: Option<Time>,
    deletion_grace_period_seconds: Option<i64>,
    deletion_timestamp: Option<Time>,
    finalizers: Option<Vec<String>>,
    generate_name: Option<String>,
    generation: Option<i64>,
    labels: Option<BTreeMap<String, String>>,
    name: Option<String>,
    namespace: Option<String>,
    owner_references: Option<Vec<OwnerReference>>,
    resource_version: Option<String>,
    uid: Option<String>,
}

impl From<LeanMeta> for ObjectMeta {
    fn from(meta: LeanMeta) -> Self {
        ObjectMeta {
            annotations: meta.annotations,
            creation_timestamp: meta.creation_timestamp,
            deletion_grace_period_seconds: meta.deletion_grace_period_seconds,
            deletion_timestamp: meta.deletion_timestamp,
            finalizers: meta.finalizers,
            generate_name: meta.generate_name,
            generation: meta.generation,
            labels: meta.labels,
            managed_fields: None,
            name: meta.name,
            namespace: meta.namespace,
            owner_references: meta.owner_references,
            resource_version: meta.resource_version,
            self_link: None,
            uid: meta.uid,
        }
    }
}

/// Annotations without [`LAST_APPLIED`] (its value is skipped unread); `None` when nothing is
/// left.
fn lean_annotations<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<BTreeMap<String, String>>, D::Error> {
    struct Annotations;

    impl<'de> Visitor<'de> for Annotations {
        type Value = BTreeMap<String, String>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map of annotations")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut annotations = BTreeMap::new();
            while let Some(key) = map.next_key::<String>()? {
                if key == LAST_APPLIED {
                    map.next_value::<IgnoredAny>()?;
                } else {
                    annotations.insert(key, map.next_value()?);
                }
            }
            Ok(annotations)
        }
    }

    struct Optional;

    impl<'de> Visitor<'de> for Optional {
        type Value = Option<BTreeMap<String, String>>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map of annotations or null")
        }

        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            let annotations = d.deserialize_map(Annotations)?;
            Ok((!annotations.is_empty()).then_some(annotations))
        }
    }

    deserializer.deserialize_option(Optional)
}

/// What [`Lean`] does, done to an object decoded in full: the tests' reference.
#[cfg(test)]
pub(crate) fn strip<K: kube::Resource>(object: &mut K) {
    let meta = object.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
        if annotations.is_empty() {
            meta.annotations = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Secret;

    const OBJECT: &str = r#"{
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {
            "name": "s", "namespace": "ns", "uid": "u-1", "resourceVersion": "42",
            "generation": 3, "creationTimestamp": "2026-11-28T14:26:45Z",
            "labels": {"app": "x"},
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": "{\"big\": [1, 2, 3]}",
                "losant.io/origin": "Created"
            },
            "finalizers": ["losant.io/in-use"],
            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": "u-2"}],
            "managedFields": [{"manager": "kubectl", "operation": "Update",
                "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:password": {}}}}],
            "selfLink": "/api/v1/namespaces/ns/secrets/s"
        }
    }"#;

    #[test]
    fn lean_decoding_equals_full_decoding_then_stripping() {
        let lean: Lean<PartialObjectMeta<Secret>> = serde_json::from_str(OBJECT).unwrap();
        let mut full: PartialObjectMeta<Secret> = serde_json::from_str(OBJECT).unwrap();
        assert!(full.metadata.managed_fields.is_some());
        strip(&mut full);
        full.metadata.self_link = None;
        assert_eq!(lean.0.metadata, full.metadata);
        assert_eq!(
            lean.0
                .metadata
                .annotations
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            ["losant.io/origin"]
        );
    }

    #[test]
    fn annotations_that_were_only_last_applied_or_null_are_none() {
        for annotations in [
            r#"{"kubectl.kubernetes.io/last-applied-configuration": "{}"}"#,
            "null",
            "{}",
        ] {
            let json = format!(r#"{{"metadata": {{"name": "a", "annotations": {annotations}}}}}"#);
            let lean: Lean<PartialObjectMeta<Secret>> = serde_json::from_str(&json).unwrap();
            assert_eq!(lean.0.metadata.annotations, None, "{annotations}");
            assert_eq!(lean.0.metadata.name.as_deref(), Some("a"));
        }
    }

    #[test]
    fn malformed_metadata_is_an_error_not_a_default() {
        let error = serde_json::from_str::<Lean<PartialObjectMeta<Secret>>>(
            r#"{"metadata": {"annotations": {"a": 1}}}"#,
        );
        assert!(error.is_err());
    }
}
