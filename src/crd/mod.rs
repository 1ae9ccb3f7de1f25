//! The Kubernetes API of the operator: group `losant.io`, version `v1alpha1`, kinds
//! [`LosantApplication`] and [`Integration`], and the CRDs generated from them.
//!
//! Rules the derived schema cannot express (the config block must match `integrationType`, Azure's
//! connection string xor host name, a header value inline xor from a Secret) are added here as
//! structural `allOf`/`anyOf`/`oneOf`/`not` rules, which every supported API server enforces. No
//! CEL: servers before 1.25 refuse CRDs that carry it.

mod application;
mod common;
mod config;
mod integration;

pub use application::{
    ApplicationRateLimit, DEFAULT_API_URL, LosantApplication, LosantApplicationSpec,
    LosantApplicationStatus,
};
pub use common::{Condition, LocalObjectRef, SecretKeyRef, Word};
pub use config::{
    AzureEventHubSpec, GooglePubSubSpec, MqttProtocolSpec, MqttProtocolVersionSpec, MqttSpec,
    ParticleSpec, SqsSpec, WebsocketHeaderSpec, WebsocketSpec,
};
pub use integration::{
    AdoptionPolicy, ConnectionStatus, DeletionPolicy, Integration, IntegrationSpec,
    IntegrationStatus, IntegrationTypeSpec, ManagementPolicy, Origin, SecretVersions,
};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use serde_json::{Value, json};

/// The version of the CRD schemas this binary was built with, stamped on each CRD as the
/// annotation `losant.io/schema-version`. Bump it whenever a schema changes, so an operator never
/// writes through an older installed CRD that would prune what it writes.
pub const SCHEMA_VERSION: u32 = 2;

/// The annotation that carries [`SCHEMA_VERSION`] on each CRD.
pub const SCHEMA_VERSION_ANNOTATION: &str = "losant.io/schema-version";

/// The CRDs of this operator, as they are installed.
pub fn crds() -> Result<Vec<CustomResourceDefinition>, serde_json::Error> {
    let mut integration = serde_json::to_value(Integration::crd())?;
    if let Some(spec) =
        integration.pointer_mut("/spec/versions/0/schema/openAPIV3Schema/properties/spec")
    {
        add_integration_rules(spec);
    }
    let mut application = serde_json::to_value(LosantApplication::crd())?;
    strip_nullable(&mut integration);
    strip_nullable(&mut application);
    for crd in [&mut integration, &mut application] {
        crd["metadata"]["annotations"][SCHEMA_VERSION_ANNOTATION] =
            json!(SCHEMA_VERSION.to_string());
    }
    Ok(vec![
        serde_json::from_value(application)?,
        serde_json::from_value(integration)?,
    ])
}

/// The CRDs as one multi-document YAML stream (what `losant-operator crds` prints and `crds/` holds).
pub fn crds_yaml() -> Result<String, CrdError> {
    let mut out = String::new();
    for crd in crds().map_err(CrdError::Json)? {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&crd).map_err(|e| CrdError::Yaml(e.to_string()))?);
    }
    Ok(out)
}

/// Failure to render the CRDs.
#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    /// The CRD did not convert to JSON.
    #[error("failed to convert the CRD")]
    Json(#[source] serde_json::Error),
    /// The CRD did not render as YAML.
    #[error("failed to render the CRD as YAML: {0}")]
    Yaml(String),
}

/// Adds the cross-field rules to the `Integration` spec schema. Each rule is an `anyOf` whose
/// first branch is the one a valid spec usually fails, because a 1.20 API server reports only the
/// first branch's error: this way the message names the config block.
fn add_integration_rules(spec: &mut Value) {
    let type_is =
        |t: IntegrationTypeSpec| json!({"properties": {"integrationType": {"enum": [t.as_str()]}}});
    let mut rules = Vec::new();
    for t in IntegrationTypeSpec::ALL {
        let field = t.config_field();
        // A config block may only appear with its own type…
        rules.push(json!({"anyOf": [{"properties": {field: {"not": {}}}}, type_is(t)]}));
        // …and must appear when its Losant object has required fields.
        if t.config_required() {
            rules.push(json!({"anyOf": [{"required": [field]}, {"not": type_is(t)}]}));
        }
    }
    spec["allOf"] = Value::Array(rules);
    if let Some(azure) = spec.pointer_mut("/properties/azureEventHubConfig") {
        azure["oneOf"] =
            json!([{"required": ["connectionStringSecretRef"]}, {"required": ["hostName"]}]);
    }
    if let Some(header) = spec.pointer_mut("/properties/websocketConfig/properties/headers/items") {
        header["oneOf"] =
            json!([{"required": ["headerValue"]}, {"required": ["headerValueSecretRef"]}]);
    }
}

/// Removes `nullable: true` everywhere. A 1.20 API server publishes nullable fields in its
/// OpenAPI v2 document without their type and properties, so `kubectl explain` shows nothing
/// inside them and kubectl cannot flag unknown fields there (an inline `password` would be
/// silently dropped instead of refused). Optional fields are simply left out instead of null.
fn strip_nullable(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            if map.get("nullable") == Some(&Value::Bool(true)) {
                map.remove("nullable");
            }
            map.values_mut().for_each(strip_nullable);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nullable),
        _ => {}
    }
}
