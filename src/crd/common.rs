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

/// Condition types and reasons used in status.
pub mod condition {
    /// The object is in the state its spec asks for.
    pub const READY: &str = "Ready";
    /// Work is in progress (kstatus, abnormal-true).
    pub const RECONCILING: &str = "Reconciling";
    /// Progress is blocked by an error that needs a change to fix (kstatus, abnormal-true).
    pub const STALLED: &str = "Stalled";
}
