//! The CRD schema version check: the operator refuses to write while an installed CRD is older
//! than the schema it was built with.
//!
//! Why: Helm never upgrades CRDs it installed from `crds/`, and an API server prunes every field
//! its (old) CRD schema does not know. An operator newer than its CRDs would write status or
//! spec fields that silently vanish, and could then act on what it believes it recorded (a
//! remote id, a create-pending marker). So each generated CRD carries the annotation
//! [`SCHEMA_VERSION_ANNOTATION`], and before any controller starts the operator reads it from the
//! API server (apiextensions, `get` on the two CRDs by name) and waits, logging why, until every
//! CRD is at least as new as the binary expects.
//!
//! A CRD *newer* than the binary is accepted: schema changes are additive within an API version,
//! and that is the normal state during a rolling upgrade (CRDs first, then the Deployment).

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;

use super::shutdown::Shutdown;

/// The annotation carrying a CRD's schema version, a decimal integer.
pub const SCHEMA_VERSION_ANNOTATION: &str = "losant.io/schema-version";
/// The CRDs the operator needs.
pub const CRD_NAMES: [&str; 2] = ["integrations.losant.io", "losantapplications.losant.io"];
/// How often an outdated CRD is read again.
const RECHECK: Duration = Duration::from_secs(15);

/// How an installed CRD compares with what the binary expects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Same version, or newer.
    Usable,
    /// Older than expected (an unstamped CRD counts as version 0).
    Outdated {
        /// The version found, if the annotation was there and readable.
        installed: Option<u32>,
    },
}

/// Compares the `annotation` value of an installed CRD with `expected` (pure).
pub fn compare(annotation: Option<&str>, expected: u32) -> Verdict {
    let installed = annotation.and_then(|v| v.trim().parse::<u32>().ok());
    match installed {
        Some(version) if version >= expected => Verdict::Usable,
        _ => Verdict::Outdated { installed },
    }
}

/// Failure to read the CRDs.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// A CRD could not be read (missing, or no `get` permission on customresourcedefinitions).
    #[error("failed to read CustomResourceDefinition {name}")]
    Read {
        /// The CRD.
        name: &'static str,
        /// Why.
        #[source]
        source: kube::Error,
    },
}

/// The CRDs that are older than `expected`, with the version found.
pub async fn outdated(
    kube: &kube::Client,
    expected: u32,
) -> Result<Vec<(&'static str, Option<u32>)>, SchemaError> {
    let api: Api<CustomResourceDefinition> = Api::all(kube.clone());
    let mut old = Vec::new();
    for name in CRD_NAMES {
        let crd = api
            .get(name)
            .await
            .map_err(|source| SchemaError::Read { name, source })?;
        let annotation = crd
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(SCHEMA_VERSION_ANNOTATION))
            .map(String::as_str);
        if let Verdict::Outdated { installed } = compare(annotation, expected) {
            old.push((name, installed));
        }
    }
    Ok(old)
}

/// Returns once every CRD is at least version `expected`, or when shutdown is requested (then
/// `Ok(false)`). Until then it writes nothing and logs, every 15 s, which CRD is old and how to
/// upgrade it.
pub async fn wait_until_current(
    kube: &kube::Client,
    expected: u32,
    shutdown: &Shutdown,
) -> Result<bool, SchemaError> {
    loop {
        let old = outdated(kube, expected).await?;
        if old.is_empty() {
            return Ok(true);
        }
        for (name, installed) in &old {
            tracing::error!(
                crd = name,
                installed = installed.map_or_else(|| "none".to_owned(), |v| v.to_string()),
                expected,
                "refusing to write: the installed CRD is older than this operator's schema, and the API server would drop fields it writes; upgrade the CRDs with `kubectl apply --server-side -f crds/` (or `losant-operator crds | kubectl apply --server-side -f -`)"
            );
        }
        tokio::select! {
            () = tokio::time::sleep(RECHECK) => {}
            () = shutdown.requested() => return Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::extract::Path;
    use axum::routing::get;
    use serde_json::{Value, json};

    /// A stand-in API server that serves the two CRDs with the given schema annotations.
    async fn api_server(integrations: Option<&str>, applications: Option<&str>) -> kube::Client {
        let versions = [
            ("integrations.losant.io", integrations.map(str::to_owned)),
            (
                "losantapplications.losant.io",
                applications.map(str::to_owned),
            ),
        ];
        let app = Router::new().route(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}",
            get(move |Path(name): Path<String>| {
                let version = versions
                    .iter()
                    .find(|(n, _)| *n == name)
                    .and_then(|(_, v)| v.clone());
                async move { axum::Json(crd(&name, version.as_deref())) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        let url = format!("http://{addr}").parse().expect("url");
        kube::Client::try_from(kube::Config::new(url)).expect("client")
    }

    fn crd(name: &str, version: Option<&str>) -> Value {
        let mut metadata = json!({"name": name});
        if let Some(version) = version {
            metadata["annotations"] = json!({SCHEMA_VERSION_ANNOTATION: version});
        }
        json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": metadata,
            "spec": {
                "group": "losant.io",
                "names": {"kind": "X", "plural": "xs"},
                "scope": "Namespaced",
                "versions": [],
            },
        })
    }

    #[tokio::test]
    async fn older_and_unstamped_crds_are_reported() {
        let kube = api_server(Some("1"), None).await;
        assert_eq!(
            outdated(&kube, 2).await.expect("reads"),
            [
                ("integrations.losant.io", Some(1)),
                ("losantapplications.losant.io", None)
            ]
        );
        let kube = api_server(Some("2"), Some("3")).await;
        assert!(outdated(&kube, 2).await.expect("reads").is_empty());
    }

    #[tokio::test]
    async fn an_outdated_crd_holds_the_operator_until_shutdown() {
        let kube = api_server(Some("0"), Some("0")).await;
        let shutdown = Shutdown::new();
        shutdown.request();
        let waited = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            wait_until_current(&kube, 1, &shutdown),
        )
        .await
        .expect("returns once shutdown is requested");
        assert!(!waited.expect("reads"), "never reports the CRDs usable");

        let kube = api_server(Some("1"), Some("1")).await;
        assert!(
            wait_until_current(&kube, 1, &Shutdown::new())
                .await
                .expect("reads")
        );
    }

    #[test]
    fn versions_compare() {
        assert_eq!(compare(Some("3"), 3), Verdict::Usable);
        assert_eq!(
            compare(Some("4"), 3),
            Verdict::Usable,
            "newer CRDs are fine"
        );
        assert_eq!(
            compare(Some("2"), 3),
            Verdict::Outdated { installed: Some(2) }
        );
        assert_eq!(
            compare(None, 1),
            Verdict::Outdated { installed: None },
            "an unstamped CRD predates stamping"
        );
        assert_eq!(
            compare(Some("v3"), 3),
            Verdict::Outdated { installed: None }
        );
    }
}
