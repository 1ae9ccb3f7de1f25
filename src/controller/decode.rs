//! How the CRDs are decoded from the watches: lean (metadata without managedFields or the
//! last-applied copy), and, for an object this version cannot read, as a stand-in with
//! placeholders that the reconcilers report and leave alone (see [`super::undecodable`]).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::crd::{Integration, LosantApplication};
use crate::ops::lean::SpecAndStatus;

impl crate::ops::lean::DecodeLean for Integration {
    fn decode_lean<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use crate::crd::{IntegrationSpec, IntegrationStatus};
        let wire: SpecAndStatus<IntegrationSpec, IntegrationStatus> =
            serde::Deserialize::deserialize(deserializer)?;
        Ok(Integration {
            metadata: wire.metadata.into(),
            spec: wire.spec,
            status: wire.status,
        })
    }

    fn undecodable(metadata: ObjectMeta, raw: &str) -> Option<Self> {
        // Placeholders: a stand-in is reported and never reconciled (see `undecodable`). Only
        // the application it names is kept when it still reads, so the application and its
        // token Secret stay in use (their in-use finalizers hold) until the object is fixed or
        // gone: its remote may still need deleting with that token.
        let spec = serde_json::json!({
            "applicationRef": {"name": application_named(raw)},
            "integrationType": "mqtt"
        });
        Some(Integration {
            metadata,
            spec: serde_json::from_value(spec).ok()?,
            status: None,
        })
    }
}

/// `spec.applicationRef.name` of an Integration's JSON, however the rest reads ("" if it does
/// not).
fn application_named(raw: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Object {
        spec: Spec,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Spec {
        application_ref: Ref,
    }
    #[derive(serde::Deserialize)]
    struct Ref {
        name: String,
    }
    serde_json::from_str::<Object>(raw)
        .map(|object| object.spec.application_ref.name)
        .unwrap_or_default()
}

impl crate::ops::lean::DecodeLean for LosantApplication {
    fn decode_lean<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use crate::crd::{LosantApplicationSpec, LosantApplicationStatus};
        let wire: SpecAndStatus<LosantApplicationSpec, LosantApplicationStatus> =
            serde::Deserialize::deserialize(deserializer)?;
        Ok(LosantApplication {
            metadata: wire.metadata.into(),
            spec: wire.spec,
            status: wire.status,
        })
    }

    fn undecodable(metadata: ObjectMeta, _raw: &str) -> Option<Self> {
        let spec =
            serde_json::json!({"applicationId": "", "tokenSecretRef": {"name": "", "key": ""}});
        Some(LosantApplication {
            metadata,
            spec: serde_json::from_value(spec).ok()?,
            status: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::ready_reason;
    use crate::ops::lean::{Lean, strip};
    use kube::ResourceExt;

    #[test]
    fn integrations_decoded_lean_equal_decoded_in_full_and_stripped() {
        let json = serde_json::json!({
            "apiVersion": "losant.io/v1alpha1", "kind": "Integration",
            "metadata": {
                "name": "broker", "namespace": "dev", "uid": "u", "resourceVersion": "9",
                "generation": 2, "creationTimestamp": "2026-11-28T14:26:45Z",
                "finalizers": ["losant.io/integration"],
                "annotations": {
                    "kubectl.kubernetes.io/last-applied-configuration": "{\"spec\": {}}",
                    "losant.io/integration-id": "6b0ae4a51337747874000002"
                },
                "managedFields": [{"manager": "kubectl", "operation": "Update",
                    "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:name": {}}}}]
            },
            "spec": {"applicationRef": {"name": "app"}, "integrationType": "mqtt",
                "mqttConfig": {"host": "h", "port": 8883, "protocol": "mqtts"}},
            "status": {"integrationId": "6b0ae4a51337747874000002", "apiUrl": "https://a",
                "appliedFields": ["mqttConfig.host", "name"],
                "appliedSecretVersions": {"mqtt": "3"},
                "conditions": [{"type": "Ready", "status": "True", "reason": "Synced",
                    "message": "m", "lastTransitionTime": "2026-11-28T14:26:45Z"}]}
        })
        .to_string();
        let Lean(lean): Lean<Integration> = serde_json::from_str(&json).unwrap();
        let mut full: Integration = serde_json::from_str(&json).unwrap();
        assert!(full.metadata.managed_fields.is_some());
        strip(&mut full);
        let value = |object: &Integration| serde_json::to_value(object).unwrap();
        assert_eq!(value(&lean), value(&full));
        assert_eq!(lean.annotations().len(), 1);

        let app = serde_json::json!({
            "metadata": {"name": "app", "namespace": "dev",
                "managedFields": [{"manager": "m", "operation": "Apply"}]},
            "spec": {"applicationId": "000000000000000000be0003",
                "tokenSecretRef": {"name": "t", "key": "token"}}
        })
        .to_string();
        let Lean(lean): Lean<LosantApplication> = serde_json::from_str(&app).unwrap();
        let mut full: LosantApplication = serde_json::from_str(&app).unwrap();
        strip(&mut full);
        assert_eq!(
            serde_json::to_value(&lean).unwrap(),
            serde_json::to_value(&full).unwrap()
        );
    }

    /// One object this version cannot read must not fail the list it comes in: it becomes a
    /// stand-in that carries its metadata and why; the others decode as ever.
    #[test]
    fn an_undecodable_object_becomes_a_stand_in_and_the_list_still_reads() {
        use kube::core::ObjectList;
        let list = serde_json::json!({
            "apiVersion": "losant.io/v1alpha1", "kind": "IntegrationList", "metadata": {},
            "items": [
                {"metadata": {"name": "good", "namespace": "dev", "uid": "u1"},
                 "spec": {"applicationRef": {"name": "app"}, "integrationType": "sqs",
                          "sqsConfig": {"queueUrl": "https://sqs.example.com/q"}}},
                {"metadata": {"name": "bad", "namespace": "dev", "uid": "u2",
                              "annotations": {"losant.io/integration-id": "6b0ae4a51337747874000002"},
                              "finalizers": ["losant.io/integration"]},
                 "spec": {"applicationRef": {"name": "app"}, "integrationType": "carrierPigeon"}},
                {"metadata": {"name": "app", "namespace": "dev"},
                 "spec": {"applicationId": 7, "tokenSecretRef": {"name": "t", "key": "k"}}}
            ]
        })
        .to_string();
        let integrations: ObjectList<Lean<Integration>> = serde_json::from_str(&list).unwrap();
        let [good, bad, _] = &integrations.items[..] else {
            panic!("three items")
        };
        assert_eq!(crate::ops::lean::undecodable(&good.0), None);
        let why = crate::ops::lean::undecodable(&bad.0).expect("a stand-in");
        assert!(why.contains("carrierPigeon"), "{why}");
        assert_eq!(bad.0.name_any(), "bad");
        assert_eq!(
            bad.0
                .annotations()
                .get("losant.io/integration-id")
                .map(String::as_str),
            Some("6b0ae4a51337747874000002"),
            "its metadata is kept"
        );
        assert_eq!(bad.0.finalizers(), ["losant.io/integration"]);
        assert_eq!(
            bad.0.spec.application_ref.name, "app",
            "the application it names is kept, so it stays in use"
        );
        assert_eq!(
            ready_reason(&bad.0, None).as_deref(),
            Some("Undecodable"),
            "counted in the objects gauge"
        );

        let apps: ObjectList<Lean<LosantApplication>> = serde_json::from_str(&list).unwrap();
        let stand_ins = apps
            .items
            .iter()
            .filter(|a| crate::ops::lean::undecodable(&a.0).is_some())
            .count();
        assert_eq!(
            stand_ins, 3,
            "not one of them is a LosantApplication this version reads"
        );

        let broken_metadata = r#"{"metadata": {"name": 5}, "spec": {}}"#;
        assert!(serde_json::from_str::<Lean<Integration>>(broken_metadata).is_err());
    }

    /// Watch events carry objects the same way: a stand-in arrives as an event like any other.
    #[test]
    fn watch_events_decode_lean_and_tolerate_an_undecodable_object() {
        use kube::core::WatchEvent;
        let good = r#"{"type":"ADDED","object":{"apiVersion":"losant.io/v1alpha1","kind":"Integration",
            "metadata":{"name":"good","namespace":"dev"},
            "spec":{"applicationRef":{"name":"app"},"integrationType":"sqs","sqsConfig":{"queueUrl":"u"}}}}"#;
        let bad = r#"{"type":"MODIFIED","object":{"metadata":{"name":"bad","namespace":"dev"},
            "spec":{"applicationRef":{"name":"app"},"integrationType":"carrierPigeon"}}}"#;
        let good: WatchEvent<Lean<Integration>> = serde_json::from_str(good).unwrap();
        let WatchEvent::Added(Lean(good)) = good else {
            panic!("added")
        };
        assert_eq!(crate::ops::lean::undecodable(&good), None);
        let bad: WatchEvent<Lean<Integration>> = serde_json::from_str(bad).unwrap();
        let WatchEvent::Modified(Lean(bad)) = bad else {
            panic!("modified")
        };
        assert!(crate::ops::lean::undecodable(&bad).is_some());
    }
}
