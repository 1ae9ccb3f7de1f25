//! A Losant client for one application, outside the controller: from a `LosantApplication` in
//! the cluster and its token (and CA bundle) Secret, read with the current kubeconfig and never
//! written; or from a URL, an application id and a token file.
//!
//! The client is the operator's own ([`losant::Client`]): same retries, same rate limiter
//! (the operator's default budget, lowered by the application's `rateLimit`), TLS always
//! verified. The token goes over https only, or over plain http to a loopback address (a local
//! emulator).

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Secret;
use kube::Api;

use crate::controller::clients::own_limits;
use crate::crd::{LosantApplication, LosantApplicationSpec, SecretKeyRef};
use crate::losant::{self, ClientBuilder, RateLimits, SecretString};

/// Where the application comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A `LosantApplication` in the cluster.
    Cluster {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// Given directly.
    Direct {
        /// The API URL.
        api_url: String,
        /// The application id.
        application_id: String,
        /// A file holding the API token.
        token_file: PathBuf,
        /// A file holding an extra CA bundle (PEM) to trust, for a private install.
        ca_file: Option<PathBuf>,
    },
}

/// Why the application could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum ApplicationError {
    /// No usable kubeconfig, or the API server failed.
    #[error("cannot read from the cluster ({what}): {reason}")]
    Kube {
        /// What was being read.
        what: String,
        /// The client's error.
        reason: String,
    },
    /// The `LosantApplication` does not exist.
    #[error("LosantApplication {namespace}/{name} not found")]
    ApplicationNotFound {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// A referenced Secret, or its key, is missing or unusable.
    #[error("Secret {namespace}/{name}: {reason}")]
    Secret {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// What is wrong (never the value).
        reason: String,
    },
    /// A file could not be read or is unusable.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// What is wrong (never the content).
        reason: String,
    },
    /// The application's settings are unusable.
    #[error("{0}")]
    Invalid(String),
}

impl ApplicationError {
    /// Whether trying again may help (the cluster was unreachable or failed).
    pub fn is_transient(&self) -> bool {
        matches!(self, ApplicationError::Kube { .. })
    }
}

/// An application to read: its client, and what a `LosantApplication` for it says.
#[derive(Debug)]
pub struct Connected {
    /// A client with the application's token.
    pub client: losant::Client,
    /// The object name of its `LosantApplication` (the one read, or one made from the id).
    pub object_name: String,
    /// The namespace it was read from, or the kubeconfig context's.
    pub namespace: Option<String>,
    /// Its spec: the one read, or one made for the flags (token and CA in Secrets to fill).
    pub spec: LosantApplicationSpec,
}

/// Connects to the application `source` names.
///
/// # Errors
/// [`ApplicationError`], naming what is missing; never a secret value.
pub async fn connect(source: &Source) -> Result<Connected, ApplicationError> {
    match source {
        Source::Cluster { namespace, name } => from_cluster(namespace, name).await,
        Source::Direct {
            api_url,
            application_id,
            token_file,
            ca_file,
        } => {
            let token = SecretString::new(read_file(token_file)?.trim().to_owned());
            if token.is_empty() {
                return Err(file_error(token_file, "is empty"));
            }
            let ca = ca_file.as_deref().map(read_file).transpose()?;
            let object_name = format!("losant-{}", application_id.to_ascii_lowercase());
            let spec = LosantApplicationSpec {
                application_id: application_id.to_ascii_lowercase(),
                api_url: api_url.trim_end_matches('/').to_owned(),
                token_secret_ref: SecretKeyRef {
                    name: format!("{object_name}-token"),
                    key: "token".into(),
                },
                ca_bundle_secret_ref: ca.as_ref().map(|_| SecretKeyRef {
                    name: format!("{object_name}-ca"),
                    key: "ca.crt".into(),
                }),
                rate_limit: None,
            };
            let client = client(&spec, token, ca, None)?;
            let namespace = kubeconfig_namespace().await;
            Ok(Connected {
                client,
                object_name,
                namespace,
                spec,
            })
        }
    }
}

async fn from_cluster(namespace: &str, name: &str) -> Result<Connected, ApplicationError> {
    let kube = kube::Client::try_default()
        .await
        .map_err(|e| ApplicationError::Kube {
            what: "the kubeconfig".into(),
            reason: e.to_string(),
        })?;
    let apps: Api<LosantApplication> = Api::namespaced(kube.clone(), namespace);
    let app = apps
        .get_opt(name)
        .await
        .map_err(|e| ApplicationError::Kube {
            what: format!("LosantApplication {namespace}/{name}"),
            reason: e.to_string(),
        })?
        .ok_or_else(|| ApplicationError::ApplicationNotFound {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        })?;
    let secrets: Api<Secret> = Api::namespaced(kube, namespace);
    let token = secret_value(&secrets, namespace, &app.spec.token_secret_ref).await?;
    let token = SecretString::new(token.trim().to_owned());
    let ca = match &app.spec.ca_bundle_secret_ref {
        Some(reference) => Some(secret_value(&secrets, namespace, reference).await?),
        None => None,
    };
    let own = own_limits(&app, RateLimits::default());
    let client = client(&app.spec, token, ca, own)?;
    Ok(Connected {
        client,
        object_name: name.to_owned(),
        namespace: Some(namespace.to_owned()),
        spec: app.spec,
    })
}

/// The value of one Secret key, as text. Errors name the Secret and key, never the value.
async fn secret_value(
    api: &Api<Secret>,
    namespace: &str,
    reference: &SecretKeyRef,
) -> Result<String, ApplicationError> {
    let fail = |reason: String| ApplicationError::Secret {
        namespace: namespace.to_owned(),
        name: reference.name.clone(),
        reason,
    };
    let secret = api
        .get_opt(&reference.name)
        .await
        .map_err(|e| ApplicationError::Kube {
            what: format!("Secret {namespace}/{}", reference.name),
            reason: e.to_string(),
        })?
        .ok_or_else(|| fail("not found".into()))?;
    let bytes = secret
        .data
        .and_then(|mut data| data.remove(&reference.key))
        .ok_or_else(|| fail(format!("has no key {:?}", reference.key)))?;
    let text = String::from_utf8(bytes.0)
        .map_err(|_| fail(format!("key {:?} is not UTF-8 text", reference.key)))?;
    if text.trim().is_empty() {
        return Err(fail(format!("key {:?} is empty", reference.key)));
    }
    Ok(text)
}

/// The operator's client for `spec`'s URL, refusing plain http to anything but loopback.
fn client(
    spec: &LosantApplicationSpec,
    token: SecretString,
    ca: Option<String>,
    own: Option<RateLimits>,
) -> Result<losant::Client, ApplicationError> {
    let api_url = spec.api_url.trim_end_matches('/');
    check_url(api_url).map_err(ApplicationError::Invalid)?;
    if !crate::losant::is_losant_id(&spec.application_id) {
        return Err(ApplicationError::Invalid(format!(
            "application id {:?} is not 24 hexadecimal digits",
            spec.application_id
        )));
    }
    let mut builder = ClientBuilder::new(token).api_url(api_url);
    if let Some(pem) = ca {
        builder = builder.extra_ca_pem(pem.into_bytes());
    }
    if let Some(limits) = own {
        builder = builder.own_limits(limits);
    }
    builder
        .build()
        .map_err(|e| ApplicationError::Invalid(format!("cannot set up the Losant client: {e}")))
}

/// https anywhere; plain http only to a loopback address, so the token never crosses a network
/// in clear.
fn check_url(api_url: &str) -> Result<(), String> {
    let url = url::Url::parse(api_url).map_err(|_| format!("apiUrl {api_url:?} is not a URL"))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err(format!(
            "apiUrl {api_url:?} uses plain http; the token is sent over https only (or to a loopback address)"
        )),
        other => Err(format!(
            "apiUrl scheme {other:?} is not supported; use https"
        )),
    }
}

fn file_error(path: &Path, reason: &str) -> ApplicationError {
    ApplicationError::File {
        path: path.display().to_string(),
        reason: reason.to_owned(),
    }
}

fn read_file(path: &Path) -> Result<String, ApplicationError> {
    // The error names the file and what went wrong, never its content.
    std::fs::read_to_string(path).map_err(|e| file_error(path, &e.to_string()))
}

/// The namespace of the kubeconfig's current context, if a kubeconfig can be read.
pub async fn kubeconfig_namespace() -> Option<String> {
    kube::Config::infer()
        .await
        .ok()
        .map(|c| c.default_namespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_goes_over_https_or_to_loopback_only() {
        for ok in [
            "https://api.losant.com",
            "https://losant.internal:8443/api",
            "http://127.0.0.1:8787",
            "http://127.3.2.1",
            "http://[::1]:8787",
            "http://localhost:8787",
        ] {
            assert_eq!(check_url(ok), Ok(()), "{ok}");
        }
        for (bad, says) in [
            ("http://api.losant.com", "plain http"),
            ("http://10.0.0.1:8787", "plain http"),
            ("ftp://api.losant.com", "not supported"),
            ("api.losant.com", "not a URL"),
        ] {
            let error = check_url(bad).unwrap_err();
            assert!(error.contains(says), "{bad}: {error}");
        }
    }

    #[test]
    fn a_bad_application_id_is_refused_before_any_request() {
        let spec = LosantApplicationSpec {
            application_id: "not-an-id".into(),
            api_url: "https://api.losant.com".into(),
            token_secret_ref: SecretKeyRef {
                name: "t".into(),
                key: "token".into(),
            },
            ca_bundle_secret_ref: None,
            rate_limit: None,
        };
        let error = client(&spec, SecretString::new("secret-token"), None, None).unwrap_err();
        assert!(
            error.to_string().contains("24 hexadecimal digits"),
            "{error}"
        );
        assert!(!format!("{error} {error:?}").contains("secret-token"));
        assert!(!error.is_transient());
    }
}
