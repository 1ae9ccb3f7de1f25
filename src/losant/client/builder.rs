//! [`ClientBuilder`]: a client's URL, token, timeouts, trust, retries and limits, checked once.

use std::sync::Arc;
use std::time::Duration;

use http::header::HeaderValue;
use url::Url;

use super::{Client, DEFAULT_ACCEPT_VERSION, DEFAULT_API_URL, Inner};
use crate::losant::error::Error;
use crate::losant::limiter::{Limiter, LimiterRegistry, RateLimits};
use crate::losant::observe::RequestObserver;
use crate::losant::retry::RetryPolicy;
use crate::losant::secret::SecretString;

/// Builds a [`Client`].
#[derive(Clone, Debug)]
pub struct ClientBuilder {
    api_url: String,
    token: SecretString,
    accept_version: Option<String>,
    connect_timeout: Duration,
    request_timeout: Duration,
    extra_ca_pem: Option<Vec<u8>>,
    retry: RetryPolicy,
    limits: RateLimits,
    registry: Option<LimiterRegistry>,
    own_limits: Option<RateLimits>,
    observer: Option<Arc<dyn RequestObserver>>,
}

impl ClientBuilder {
    /// A builder for `token` against the public API, with default timeouts, retries and limits.
    pub fn new(token: SecretString) -> Self {
        Self {
            api_url: DEFAULT_API_URL.to_owned(),
            token,
            accept_version: Some(DEFAULT_ACCEPT_VERSION.to_owned()),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            extra_ca_pem: None,
            retry: RetryPolicy::default(),
            limits: RateLimits::default(),
            registry: None,
            own_limits: None,
            observer: None,
        }
    }

    /// A second, lower budget of this client's own, applied on top of the shared one: a
    /// request waits for both. (It can only lower what the shared limiter allows.)
    pub fn own_limits(mut self, limits: RateLimits) -> Self {
        self.own_limits = Some(limits);
        self
    }

    /// The API base URL (private installs have their own).
    pub fn api_url(mut self, url: impl Into<String>) -> Self {
        self.api_url = url.into();
        self
    }

    /// The `Accept-Version` header; `None` leaves it out.
    pub fn accept_version(mut self, version: Option<String>) -> Self {
        self.accept_version = version;
        self
    }

    /// How long to wait for a connection.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long a whole request may take, answer included.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Extra CA certificates (PEM bundle) trusted besides the system's.
    pub fn extra_ca_pem(mut self, pem: Vec<u8>) -> Self {
        self.extra_ca_pem = Some(pem);
        self
    }

    /// How idempotent calls retry.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Rate and concurrency limits (used when this client makes the limiter).
    pub fn limits(mut self, limits: RateLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Share limiters with every client built from the same registry, URL and token.
    pub fn registry(mut self, registry: LimiterRegistry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Reports every attempt (including retries) to `observer`, e.g. for metrics.
    pub fn observer(mut self, observer: Arc<dyn RequestObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    /// [`Error::Config`] for a URL that is not http(s), limits that make no sense, a bad CA
    /// bundle or a token that cannot be a header value.
    pub fn build(self) -> Result<Client, Error> {
        let config_error = |reason: &str| Error::Config {
            reason: reason.to_owned(),
        };
        let base = Url::parse(&self.api_url)
            .map_err(|_| config_error("the API URL is not a valid URL"))?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            return Err(config_error("the API URL must be http(s)://host"));
        }
        if base.query().is_some()
            || base.fragment().is_some()
            || !base.username().is_empty()
            || base.password().is_some()
        {
            return Err(config_error(
                "the API URL must not carry credentials, a query or a fragment",
            ));
        }
        self.limits
            .validate()
            .map_err(|reason| config_error(&reason))?;
        let mut authorization = HeaderValue::from_str(&format!("Bearer {}", self.token.expose()))
            .map_err(|_| {
            config_error("the API token contains characters not allowed in a header")
        })?;
        authorization.set_sensitive(true);
        let accept_version = match &self.accept_version {
            Some(version) => Some(
                HeaderValue::from_str(version)
                    .map_err(|_| config_error("the Accept-Version is not a valid header value"))?,
            ),
            None => None,
        };
        // reqwest is built without a default crypto provider and panics without one; install ring
        // unless the process already chose a provider.
        rustls::crypto::ring::default_provider()
            .install_default()
            .ok();
        let mut http = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .timeout(self.request_timeout)
            .redirect(reqwest::redirect::Policy::none());
        if let Some(pem) = &self.extra_ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|_| config_error("the CA bundle is not valid PEM"))?;
            if certs.is_empty() {
                return Err(config_error("the CA bundle holds no certificate"));
            }
            http = http.tls_certs_merge(certs);
        }
        let http = http
            .build()
            .map_err(|_| config_error("the HTTP client could not be set up (TLS)"))?;
        let limiter = match &self.registry {
            Some(registry) => registry.limiter_for(base.as_str(), &self.token, self.limits),
            None => Arc::new(Limiter::new(self.limits)),
        };
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base,
                token: self.token,
                authorization,
                accept_version,
                retry: self.retry,
                limiter,
                own_limiter: self.own_limits.map(|limits| Arc::new(Limiter::new(limits))),
                observer: self.observer,
            }),
        })
    }
}
