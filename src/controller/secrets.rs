//! Step 1 of a reconcile, the I/O half: reading the Secret keys a spec references.
//!
//! Secrets are read when reconciling (one GET per Secret), never cached cluster-wide; a
//! metadata-only watch tells the controller when they change. Values go straight into
//! [`SecretString`]s; only names, keys and `resourceVersion`s are ever reported.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Secret;
use kube::Api;

use super::error::Error;
use super::outcome::Failure;
use crate::crd::SecretKeyRef;
use crate::losant::SecretString;
use crate::sync::desired::SecretValues;
use crate::sync::reason::Reason;

/// The resolved values and the `resourceVersion` of each Secret they came from.
#[derive(Debug, Default)]
pub struct Resolved {
    /// Values by reference.
    pub values: SecretValues,
    /// `resourceVersion` by Secret name.
    pub versions: BTreeMap<String, String>,
}

/// Reads every referenced key. A missing Secret or key is a permanent failure, named.
pub async fn resolve(
    api: &Api<Secret>,
    refs: &[&SecretKeyRef],
) -> Result<Result<Resolved, Failure>, Error> {
    let mut resolved = Resolved::default();
    let names: BTreeSet<&str> = refs.iter().map(|r| r.name.as_str()).collect();
    for name in names {
        let Some(secret) = api
            .get_opt(name)
            .await
            .map_err(Error::kube("read a referenced Secret"))?
        else {
            return Ok(Err(Failure::permanent(
                Reason::SecretNotFound,
                format!("Secret {name:?} does not exist in this namespace"),
            )));
        };
        let version = secret.metadata.resource_version.clone().unwrap_or_default();
        for reference in refs.iter().filter(|r| r.name == name) {
            let value = secret
                .data
                .as_ref()
                .and_then(|data| data.get(&reference.key))
                .map(|bytes| String::from_utf8(bytes.0.clone()));
            match value {
                Some(Ok(text)) => {
                    resolved
                        .values
                        .insert((*reference).clone(), SecretString::new(text));
                }
                Some(Err(_)) => {
                    return Ok(Err(Failure::permanent(
                        Reason::SecretKeyInvalid,
                        format!(
                            "key {:?} of Secret {name:?} is not UTF-8 text",
                            reference.key
                        ),
                    )));
                }
                None => {
                    return Ok(Err(Failure::permanent(
                        Reason::SecretKeyNotFound,
                        format!("Secret {name:?} has no key {:?}", reference.key),
                    )));
                }
            }
        }
        resolved.versions.insert(name.to_owned(), version);
    }
    Ok(Ok(resolved))
}

/// Reads one key (the API token).
pub async fn resolve_one(
    api: &Api<Secret>,
    reference: &SecretKeyRef,
) -> Result<Result<(SecretString, String), Failure>, Error> {
    Ok(resolve(api, &[reference]).await?.map(|mut resolved| {
        let value = resolved.values.remove(reference).unwrap_or_default();
        let version = resolved
            .versions
            .remove(&reference.name)
            .unwrap_or_default();
        (value, version)
    }))
}
