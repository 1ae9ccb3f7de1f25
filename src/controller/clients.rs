//! Losant clients for `LosantApplication`s: which API hosts may be reached at all, the token and
//! extra CA from Secrets, and one pooled client per API URL, token and CA, all drawing from shared
//! rate limiters.
//!
//! # Guarantees
//! - A `LosantApplication` pointing at a host not on `--allowed-api-hosts` (or at plain `http`
//!   on a host not on `--allowed-http-hosts`) is refused before any request is sent, so a tenant
//!   cannot turn the operator against other hosts.
//! - TLS is always verified; a private install's CA is added to the system's roots, never instead
//!   of verification.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use sha2::{Digest, Sha256};

use super::bounded::Bounded;
use super::error::Error;
use super::outcome::{Failure, LosantCall};
use super::secrets;
use crate::crd::LosantApplication;
use crate::losant::{
    self, ClientBuilder, LimiterRegistry, RateLimits, RequestObserver, SecretString,
};
use crate::sync::reason::Reason;

/// Which API hosts the operator may talk to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiHostPolicy {
    /// Hosts reachable over https (`*.example.com` matches subdomains).
    pub allowed: Vec<String>,
    /// Hosts also reachable over plain http (e.g. a local emulator on 127.0.0.1).
    pub allowed_http: Vec<String>,
}

impl Default for ApiHostPolicy {
    fn default() -> Self {
        Self {
            allowed: vec!["api.losant.com".into()],
            allowed_http: Vec::new(),
        }
    }
}

fn host_matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern.trim().to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(domain) => host.len() > domain.len() + 1 && host.ends_with(&format!(".{domain}")),
        None => pattern == host,
    }
}

impl ApiHostPolicy {
    /// Why `api_url` may not be used, if it may not.
    pub fn refuse(&self, api_url: &str) -> Option<String> {
        let Ok(url) = url::Url::parse(api_url) else {
            return Some(format!("apiUrl {api_url:?} is not a valid URL"));
        };
        let host = url
            .host_str()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let http_allowed = self.allowed_http.iter().any(|p| host_matches(p, &host));
        let https_allowed = http_allowed || self.allowed.iter().any(|p| host_matches(p, &host));
        match url.scheme() {
            "https" if https_allowed => None,
            "http" if http_allowed => None,
            "http" if https_allowed => Some(format!(
                "apiUrl {api_url:?} uses plain http; use https, or allow the host with --allowed-http-hosts"
            )),
            "http" | "https" => Some(format!(
                "host {host:?} of apiUrl is not allowed; the operator may reach only {} (--allowed-api-hosts)",
                self.allowed.join(", ")
            )),
            other => Some(format!(
                "apiUrl scheme {other:?} is not supported; use https"
            )),
        }
    }
}

/// API URL, SHA-256 of the token, SHA-256 of the extra CA bundle.
/// API URL, token digest, CA digest, and the application's own lower budget (uid, rate bits,
/// burst) if it has one.
type ClientKey = (String, [u8; 32], [u8; 32], Option<(String, u64, u32)>);

/// How many Losant clients are kept (rotated tokens leave clients nobody asks for again).
const CLIENT_CAPACITY: usize = 1024;

/// A cache of Losant clients keyed by API URL, the SHA-256 of the token and of the extra CA.
#[derive(Debug)]
pub struct LosantClients {
    /// The operator's budget per API URL and token.
    pub limits: RateLimits,
    policy: ApiHostPolicy,
    registry: LimiterRegistry,
    observer: Option<Arc<dyn RequestObserver>>,
    /// How long one request may take, answer included (a dripping answer ends here).
    request_timeout: Option<Duration>,
    clients: Bounded<ClientKey, losant::Client>,
}

impl LosantClients {
    /// An empty cache; clients it builds use `limits` and obey `policy`.
    pub fn new(limits: RateLimits, policy: ApiHostPolicy) -> Self {
        Self {
            limits,
            policy,
            registry: LimiterRegistry::new(),
            observer: None,
            request_timeout: None,
            clients: Bounded::new(CLIENT_CAPACITY),
        }
    }

    /// The API host policy the clients obey.
    pub fn policy(&self) -> &ApiHostPolicy {
        &self.policy
    }

    /// Clients built from now on give up on a request after `timeout` (the client's default
    /// otherwise).
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = Some(timeout);
        self
    }

    /// Reports every request of every client built from now on to `observer` (metrics).
    pub fn with_observer(mut self, observer: Arc<dyn RequestObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The client for `api_url`, `token` and an optional extra CA bundle (PEM).
    pub fn get(
        &self,
        api_url: &str,
        token: &SecretString,
        extra_ca: Option<&[u8]>,
        own: Option<(&str, RateLimits)>,
    ) -> Result<losant::Client, Failure> {
        if let Some(reason) = self.policy.refuse(api_url) {
            return Err(Failure::permanent(Reason::ApiHostNotAllowed, reason));
        }
        let ca_digest: [u8; 32] = Sha256::digest(extra_ca.unwrap_or_default()).into();
        let key = (
            api_url.to_owned(),
            Sha256::digest(token.expose()).into(),
            ca_digest,
            own.map(|(owner, limits)| {
                (
                    owner.to_owned(),
                    limits.requests_per_second.to_bits(),
                    limits.burst,
                )
            }),
        );
        if let Some(client) = self.clients.get(&key) {
            return Ok(client);
        }
        let mut builder = ClientBuilder::new(token.clone())
            .api_url(api_url)
            .limits(self.limits)
            .registry(self.registry.clone());
        if let Some(pem) = extra_ca {
            builder = builder.extra_ca_pem(pem.to_vec());
        }
        if let Some((_, limits)) = own {
            builder = builder.own_limits(limits);
        }
        if let Some(observer) = &self.observer {
            builder = builder.observer(Arc::clone(observer));
        }
        if let Some(timeout) = self.request_timeout {
            builder = builder.request_timeout(timeout);
        }
        let client = builder.build().map_err(|e| match e {
            losant::Error::Config { reason } => {
                Failure::permanent(Reason::InvalidClientConfig, reason)
            }
            other => Failure::losant(LosantCall::SetUp, &other),
        })?;
        self.clients.insert(key, client.clone());
        Ok(client)
    }
}

/// The client for an application: its token and CA bundle read from Secrets, its URL checked
/// against the host policy.
pub async fn for_application(
    app: &LosantApplication,
    namespace: &str,
    ctx: &super::Context,
) -> Result<Result<losant::Client, Failure>, Error> {
    // The same application (same spec) with the same Secret versions gets the same client
    // without reading the Secrets again.
    let fingerprint = client_fingerprint(app, namespace, ctx);
    let uid = app.metadata.uid.clone().unwrap_or_default();
    if let Some(fingerprint) = &fingerprint
        && let Some(client) = ctx.application_client(&uid, fingerprint)
    {
        return Ok(Ok(client));
    }
    let built = build_for_application(app, namespace, ctx).await?;
    if let (Some(fingerprint), Ok(client)) = (fingerprint, &built) {
        ctx.remember_application_client(&uid, fingerprint, client.clone());
    }
    Ok(built)
}

/// What a client for `app` is built from, as versions: the application's generation (its spec) and the
/// cached versions of its token and CA Secrets. `None` when the caches cannot tell.
fn client_fingerprint(
    app: &LosantApplication,
    namespace: &str,
    ctx: &super::Context,
) -> Option<String> {
    let token = ctx
        .caches
        .secret_version(namespace, &app.spec.token_secret_ref.name)??;
    let ca = match &app.spec.ca_bundle_secret_ref {
        Some(reference) => ctx.caches.secret_version(namespace, &reference.name)??,
        None => String::new(),
    };
    Some(format!(
        "{}/{token}/{ca}",
        app.metadata.generation.unwrap_or_default()
    ))
}

async fn build_for_application(
    app: &LosantApplication,
    namespace: &str,
    ctx: &super::Context,
) -> Result<Result<losant::Client, Failure>, Error> {
    let secret_api: Api<Secret> = Api::namespaced(ctx.kube.clone(), namespace);
    let api_url = app.spec.api_url.trim_end_matches('/');
    // Refuse before reading anything: a disallowed host gets nothing, not even a lookup.
    if let Some(reason) = ctx.losant.policy.refuse(api_url) {
        return Ok(Err(Failure::permanent(Reason::ApiHostNotAllowed, reason)));
    }
    let token = match secrets::resolve_one(&secret_api, &app.spec.token_secret_ref).await? {
        Ok((token, _)) => token,
        Err(failure) => return Ok(Err(failure)),
    };
    let ca = match &app.spec.ca_bundle_secret_ref {
        Some(reference) => match secrets::resolve_one(&secret_api, reference).await? {
            Ok((pem, _)) => Some(pem),
            Err(failure) => return Ok(Err(failure)),
        },
        None => None,
    };
    let uid = app.metadata.uid.clone().unwrap_or_default();
    let own = own_limits(app, ctx.losant.limits).map(|limits| (uid.as_str(), limits));
    Ok(ctx.losant.get(
        api_url,
        &token,
        ca.as_ref().map(|pem| pem.expose().as_bytes()),
        own,
    ))
}

/// The application's own budget, when its `rateLimit` is below the operator's: only ever lower.
pub fn own_limits(app: &LosantApplication, operator: RateLimits) -> Option<RateLimits> {
    let wanted = app.spec.rate_limit.as_ref()?;
    let rate = wanted.requests_per_second;
    if !(rate.is_finite() && rate > 0.0) || rate >= operator.requests_per_second {
        return None;
    }
    // Default burst: one second's worth, at least 1; never above the operator's.
    let burst = wanted
        .burst
        .unwrap_or_else(|| (rate.ceil() as u32).max(1))
        .clamp(1, operator.burst.max(1));
    Some(RateLimits {
        requests_per_second: rate,
        burst,
        max_concurrent: operator.max_concurrent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> ApiHostPolicy {
        ApiHostPolicy {
            allowed: vec!["api.losant.com".into(), "*.corp.example".into()],
            allowed_http: vec!["127.0.0.1".into()],
        }
    }

    #[test]
    fn only_allowed_hosts_pass() {
        let policy = policy();
        assert_eq!(policy.refuse("https://api.losant.com"), None);
        assert_eq!(policy.refuse("https://API.Losant.com/"), None);
        assert_eq!(policy.refuse("https://losant.corp.example/api"), None);
        assert!(
            policy.refuse("https://corp.example").is_some(),
            "the wildcard needs a subdomain"
        );
        assert!(
            policy
                .refuse("https://evil.example")
                .unwrap()
                .contains("not allowed")
        );
        assert!(
            policy
                .refuse("https://api.losant.com.evil.example")
                .is_some()
        );
        assert!(
            policy
                .refuse("https://169.254.169.254/latest/meta-data")
                .is_some()
        );
    }

    #[test]
    fn plain_http_needs_its_own_allowance() {
        let policy = policy();
        assert_eq!(policy.refuse("http://127.0.0.1:8787"), None);
        assert_eq!(policy.refuse("https://127.0.0.1:8787"), None);
        assert!(
            policy
                .refuse("http://api.losant.com")
                .unwrap()
                .contains("plain http")
        );
        assert!(
            policy
                .refuse("ftp://api.losant.com")
                .unwrap()
                .contains("scheme")
        );
        assert!(policy.refuse("not a url").is_some());
    }

    fn app_with(rate_limit: Option<crate::crd::ApplicationRateLimit>) -> LosantApplication {
        let mut app = LosantApplication::new(
            "app",
            crate::crd::LosantApplicationSpec {
                application_id: "0123456789abcdef01234567".into(),
                api_url: "https://api.losant.com".into(),
                token_secret_ref: crate::crd::SecretKeyRef {
                    name: "token".into(),
                    key: "token".into(),
                },
                ca_bundle_secret_ref: None,
                rate_limit: None,
            },
        );
        app.spec.rate_limit = rate_limit;
        app
    }

    #[test]
    fn an_application_can_only_lower_the_budget() {
        let operator = RateLimits {
            requests_per_second: 50.0,
            burst: 20,
            max_concurrent: 8,
        };
        let limit = |rps: f64, burst: Option<u32>| {
            own_limits(
                &app_with(Some(crate::crd::ApplicationRateLimit {
                    requests_per_second: rps,
                    burst,
                })),
                operator,
            )
        };
        assert_eq!(own_limits(&app_with(None), operator), None);
        assert_eq!(limit(100.0, None), None, "a higher rate does not raise it");
        assert_eq!(limit(50.0, None), None, "the same rate adds nothing");
        let lower = limit(5.0, None).expect("a lower rate applies");
        assert_eq!(lower.requests_per_second, 5.0);
        assert_eq!(lower.burst, 5, "one second's worth by default");
        assert_eq!(limit(5.0, Some(500)).map(|l| l.burst), Some(20), "capped");
        assert_eq!(limit(0.5, None).map(|l| l.burst), Some(1));
        assert_eq!(limit(f64::NAN, None), None);
        assert_eq!(limit(-1.0, None), None);
    }

    #[test]
    fn the_default_allows_only_losant_over_https() {
        let policy = ApiHostPolicy::default();
        assert_eq!(policy.refuse("https://api.losant.com"), None);
        assert!(policy.refuse("http://127.0.0.1:8787").is_some());
    }
}
