//! In-use finalizers: while any `Integration` references a `LosantApplication`, the application
//! and its token Secret carry the `losant.io/in-use` finalizer, so deleting a namespace (or
//! `kubectl delete -f examples/`, or an Argo CD prune) that removes everything at once still lets
//! every Integration delete its remote integration with that token. The finalizers go when the
//! last referencing Integration is gone.

use kube::api::{Patch, PatchParams, ResourceExt};
use kube::runtime::reflector::Store;
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use serde_json::json;

use super::error::Error;
use super::status::FIELD_MANAGER;
use crate::crd::{Integration, LosantApplication};

/// The finalizer on applications and token Secrets in use.
pub const IN_USE_FINALIZER: &str = "losant.io/in-use";

/// How many Integrations (in the caches) reference the application `name` in `namespace`.
pub fn users(stores: &[Store<Integration>], namespace: &str, name: &str) -> usize {
    stores
        .iter()
        .flat_map(Store::state)
        .filter(|i| {
            i.namespace().as_deref() == Some(namespace) && i.spec.application_ref.name == name
        })
        .count()
}

/// Whether the Secret `secret` is needed: some application whose token or CA bundle it holds is
/// in use.
pub fn secret_needed(
    stores: &[Store<Integration>],
    apps: &[LosantApplication],
    namespace: &str,
    secret: &str,
) -> bool {
    apps.iter()
        .filter(|a| {
            a.spec.token_secret_ref.name == secret
                || a.spec
                    .ca_bundle_secret_ref
                    .as_ref()
                    .is_some_and(|r| r.name == secret)
        })
        .any(|a| users(stores, namespace, &a.name_any()) > 0)
}

/// Adds or removes the in-use finalizer with a JSON patch guarded by a test, never rewriting the
/// whole list (other controllers' finalizers stay as they are).
pub async fn set_finalizer<K>(api: &Api<K>, obj: &K, wanted: bool) -> Result<(), Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let finalizers = obj.meta().finalizers.clone().unwrap_or_default();
    let position = finalizers.iter().position(|f| f == IN_USE_FINALIZER);
    let patch = match (wanted, position) {
        (true, Some(_)) | (false, None) => return Ok(()),
        (true, None) if finalizers.is_empty() => json!([
            {"op": "test", "path": "/metadata/resourceVersion", "value": obj.meta().resource_version},
            {"op": "add", "path": "/metadata/finalizers", "value": [IN_USE_FINALIZER]},
        ]),
        (true, None) => json!([
            {"op": "test", "path": "/metadata/resourceVersion", "value": obj.meta().resource_version},
            {"op": "add", "path": "/metadata/finalizers/-", "value": IN_USE_FINALIZER},
        ]),
        (false, Some(index)) => json!([
            {"op": "test", "path": format!("/metadata/finalizers/{index}"), "value": IN_USE_FINALIZER},
            {"op": "remove", "path": format!("/metadata/finalizers/{index}")},
        ]),
    };
    let patch: json_patch::Patch =
        serde_json::from_value(patch).map_err(|_| Error::InvalidPatch)?;
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    };
    api.patch(&obj.name_any(), &params, &Patch::<()>::Json(patch))
        .await
        .map_err(Error::kube("update an in-use finalizer"))?;
    Ok(())
}
