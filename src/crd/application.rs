//! `LosantApplication`: a Losant application and the API token used to manage its integrations.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{Condition, SecretKeyRef};

/// Losant's public API, the default `apiUrl`.
pub const DEFAULT_API_URL: &str = "https://api.losant.com";

fn default_api_url() -> String {
    DEFAULT_API_URL.to_owned()
}

/// A Losant application whose integrations `Integration` objects in this namespace manage.
/// Ready means the token works against the application.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "losant.io",
    version = "v1alpha1",
    kind = "LosantApplication",
    namespaced,
    status = "LosantApplicationStatus",
    shortname = "lsapp",
    category = "losant",
    doc = "A Losant application, and the API token (from a Secret in this namespace) used to manage its integrations.",
    printcolumn(
        name = "Application",
        type_ = "string",
        json_path = ".spec.applicationId"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
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
pub struct LosantApplicationSpec {
    /// The Losant application id (24 hexadecimal characters).
    #[schemars(regex(pattern = r"^[0-9a-fA-F]{24}$"))]
    pub application_id: String,
    /// Base URL of the Losant API; private installs have their own.
    #[serde(default = "default_api_url")]
    #[schemars(
        length(min = 1, max = 2048),
        regex(pattern = r"^https?://[^\s/?#]+(/[^\s?#]*)?$")
    )]
    pub api_url: String,
    /// Secret key (same namespace) holding a Losant API token with access to the application's
    /// integrations.
    pub token_secret_ref: SecretKeyRef,
    /// Secret key (same namespace) holding extra CA certificates (PEM) that sign a private
    /// install's TLS certificate. They are trusted in addition to the system's; TLS is always
    /// verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle_secret_ref: Option<SecretKeyRef>,
    /// Lowers the request budget of this application below the operator's
    /// (`--losant-rate-limit`, shared by every application using the same token); it can never
    /// raise it. Useful to keep one application from spending a shared token's budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<ApplicationRateLimit>,
}

/// A lower request budget for one application.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationRateLimit {
    /// Sustained requests per second to Losant for this application (at most the operator's).
    // Exclusive 0 rather than a small positive minimum: a 1.20 API server compares a whole-number
    // value with a fractional minimum truncated, so `minimum: 0.01` lets `0` through.
    #[schemars(range(min = 0, max = 10000), extend("exclusiveMinimum" = true))]
    pub requests_per_second: f64,
    /// Requests that may go at once after a quiet period (default: one second's worth, at
    /// least 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10000))]
    pub burst: Option<u32>,
}

/// Observed state of a `LosantApplication`.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LosantApplicationStatus {
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` (the token works against the application), `Reconciling` and `Stalled`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}
