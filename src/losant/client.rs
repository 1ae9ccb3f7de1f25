//! The Losant REST client for an application's integrations.
//!
//! # Guarantees
//! - GET, PATCH and DELETE retry transient failures ([`RetryPolicy`]); POST is sent exactly once.
//! - Every request waits for the shared [`Limiter`] of its API URL and token.
//! - Every request has a connect timeout and a total timeout; TLS is always verified.
//! - Requests carry `_links=false&_embedded=false&_actions=false`; no request ever carries
//!   `includeWorkflows`, so deleting an integration never deletes a workflow.
//! - No secret (the token, or any secret in a body) reaches a log line, an error or `Debug` output.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER, USER_AGENT};
use http::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use super::encode;
use super::enums::{FilterField, SortDirection, SortField};
use super::error::{Error, scrub};
use super::limiter::{Limiter, LimiterRegistry, RateLimits};
use super::model::{
    Integration, IntegrationPage, IntegrationPatch, IntegrationPost, ListQuery, RawPage,
};
use super::observe::RequestObserver;
use super::retry::{self, RetryPolicy, parse_retry_after};
use super::secret::SecretString;

/// Losant's public API.
pub const DEFAULT_API_URL: &str = "https://api.losant.com";
/// The API version range this client is written against.
pub const DEFAULT_ACCEPT_VERSION: &str = "^1.30.0";
/// The largest page Losant's own CLI asks for; servers may clamp it further.
pub const MAX_PER_PAGE: u64 = 1000;
/// Longest success body read, so a broken server cannot exhaust memory.
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
/// Longest error body read.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;
/// Query parameters sent with every request, for plain bodies without HAL extras.
const PLAIN_BODY_PARAMS: [(&str, &str); 3] = [
    ("_links", "false"),
    ("_embedded", "false"),
    ("_actions", "false"),
];
/// How often a list that changes while it is paged is read again before giving up.
const LIST_RESTARTS: u32 = 3;

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
        let _ = rustls::crypto::ring::default_provider().install_default();
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

/// All integrations of an application, as one paged read found them.
#[derive(Clone, Debug, Default)]
pub struct Listing {
    /// The items that could be read.
    pub items: Vec<Integration>,
    /// The names (when readable) of the items that could not be read.
    pub unreadable_names: Vec<Option<String>>,
}

/// A client for one API URL and token. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: Url,
    token: SecretString,
    authorization: HeaderValue,
    accept_version: Option<HeaderValue>,
    retry: RetryPolicy,
    limiter: Arc<Limiter>,
    /// This client's own lower budget, if any (waited for before the shared one).
    own_limiter: Option<Arc<Limiter>>,
    observer: Option<Arc<dyn RequestObserver>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("api_url", &self.inner.base.as_str())
            .field("token", &self.inner.token)
            .finish_non_exhaustive()
    }
}

/// One request: what it is, where it goes, and the secrets its body holds.
struct Call<'a> {
    /// `list`, `create`, `get`, `patch` or `delete`, for the observer.
    operation: &'static str,
    method: Method,
    /// The route template, for logs.
    route: &'static str,
    /// Path segments below the base URL, not yet encoded.
    segments: Vec<&'a str>,
    query: Vec<(&'static str, String)>,
    body: Option<Vec<u8>>,
    secrets: Vec<&'a str>,
}

impl Client {
    /// The API base URL.
    pub fn api_url(&self) -> &str {
        self.inner.base.as_str()
    }

    /// One page of the application's integrations.
    pub async fn list(
        &self,
        application_id: &str,
        query: &ListQuery,
    ) -> Result<IntegrationPage, Error> {
        check_id("application id", application_id)?;
        let call = Call {
            operation: "list",
            method: Method::GET,
            route: "/applications/{applicationId}/integrations",
            segments: vec!["applications", application_id, "integrations"],
            query: query.pairs(),
            body: None,
            secrets: vec![],
        };
        // Items are read from the body in place: a full page is large (see `RawPage`).
        let (status, body) = self.send_for_body(call).await?;
        let raw: RawPage<'_> = decode(status, &body)?;
        Ok(raw.into_page())
    }

    /// Creates an integration. Sent exactly once: if the answer is lost
    /// ([`Error::write_outcome_unknown`]), the integration may exist; look it up before posting again.
    pub async fn create(
        &self,
        application_id: &str,
        body: &IntegrationPost,
    ) -> Result<Integration, Error> {
        check_id("application id", application_id)?;
        let call = Call {
            operation: "create",
            method: Method::POST,
            route: "/applications/{applicationId}/integrations",
            segments: vec!["applications", application_id, "integrations"],
            query: vec![],
            body: Some(to_json(body)?),
            secrets: body
                .secret_values()
                .into_iter()
                .map(SecretString::expose)
                .collect(),
        };
        self.send(call).await
    }

    /// Reads one integration.
    pub async fn get(
        &self,
        application_id: &str,
        integration_id: &str,
    ) -> Result<Integration, Error> {
        self.send(item_call(Method::GET, application_id, integration_id)?)
            .await
    }

    /// Updates an integration and returns it as stored.
    pub async fn patch(
        &self,
        application_id: &str,
        integration_id: &str,
        body: &IntegrationPatch,
    ) -> Result<Integration, Error> {
        let mut call = item_call(Method::PATCH, application_id, integration_id)?;
        call.body = Some(to_json(body)?);
        call.secrets = body
            .secret_values()
            .into_iter()
            .map(SecretString::expose)
            .collect();
        self.send(call).await
    }

    /// Deletes an integration (and never the workflows that use it).
    pub async fn delete(&self, application_id: &str, integration_id: &str) -> Result<(), Error> {
        let _: serde::de::IgnoredAny = self
            .send(item_call(Method::DELETE, application_id, integration_id)?)
            .await?;
        Ok(())
    }

    /// Every integration named exactly `name` (byte-equal), across all pages.
    ///
    /// The server-side filter is a glob, so it is built to match a superset (see
    /// [`encode::name_filter`]) and exact matches are kept here.
    ///
    /// # Errors
    /// Besides request errors, [`Error::Decode`] when an item that could be this name cannot be
    /// read: treating it as absent could lead to a duplicate.
    pub async fn find_by_name(
        &self,
        application_id: &str,
        name: &str,
    ) -> Result<Vec<Integration>, Error> {
        let query = ListQuery {
            filter_field: Some(FilterField::Name),
            filter: Some(encode::name_filter(name)),
            ..ListQuery::default()
        };
        let pages = self.all_pages(application_id, query).await?;
        let mut found = Vec::new();
        for page in pages {
            // An item that may carry this name but cannot be read could be the one looked for.
            let unreadable = page
                .unreadable
                .iter()
                .filter(|item| item.name.as_deref().is_none_or(|n| n == name))
                .count();
            if unreadable > 0 {
                return Err(Error::Decode {
                    status: 200,
                    reason: format!(
                        "{unreadable} listed item(s) that may have this name could not be read"
                    ),
                });
            }
            found.extend(page.items.into_iter().filter(|item| item.name == name));
        }
        Ok(found)
    }

    /// Every integration of the application, across all pages. Items that cannot be identified
    /// are left out and logged.
    pub async fn list_all(&self, application_id: &str) -> Result<Vec<Integration>, Error> {
        Ok(self.list_everything(application_id).await?.items)
    }

    /// Every integration of the application (all pages), with the names of the items that
    /// could not be read (logged and left out of `items`), so a lookup by name can tell that an
    /// unreadable item might be the one it looks for.
    pub async fn list_everything(&self, application_id: &str) -> Result<Listing, Error> {
        let pages = self.all_pages(application_id, ListQuery::default()).await?;
        let mut all = Listing::default();
        for page in pages {
            for unreadable in &page.unreadable {
                tracing::warn!(
                    application_id,
                    page = page.page,
                    index = unreadable.index,
                    reason = unreadable.reason,
                    "skipping unreadable integration in list"
                );
                all.unreadable_names.push(unreadable.name.clone());
            }
            all.items.extend(page.items);
        }
        Ok(all)
    }

    /// Reads every page of `query`, driven by the server's own `count`, `perPage` and
    /// `totalCount` (it may clamp the page size). Pages are sorted by id so items created meanwhile
    /// land at the end; if the total changes mid-way an item may have shifted between pages, so
    /// the read starts over.
    async fn all_pages(
        &self,
        application_id: &str,
        mut query: ListQuery,
    ) -> Result<Vec<IntegrationPage>, Error> {
        query.sort_field = Some(SortField::Id);
        query.sort_direction = Some(SortDirection::Asc);
        query.per_page = Some(MAX_PER_PAGE);
        'restart: for _ in 0..LIST_RESTARTS {
            let mut pages: Vec<IntegrationPage> = Vec::new();
            let mut seen = 0u64;
            loop {
                query.page = Some(pages.len() as u64);
                let page = self.list(application_id, &query).await?;
                if pages
                    .first()
                    .is_some_and(|first| first.total_count != page.total_count)
                {
                    continue 'restart;
                }
                seen += page.count;
                let last =
                    page.count == 0 || page.count < page.per_page || seen >= page.total_count;
                pages.push(page);
                if last {
                    return Ok(pages);
                }
            }
        }
        Err(Error::UnstableList)
    }

    /// Sends `call` (retrying if idempotent) and reads the answer as `T`.
    async fn send<T: DeserializeOwned>(&self, call: Call<'_>) -> Result<T, Error> {
        let (status, body) = self.send_for_body(call).await?;
        decode(status, &body)
    }

    /// Sends `call` (retrying if idempotent) and returns the status and body of the success.
    async fn send_for_body(&self, call: Call<'_>) -> Result<(StatusCode, bytes::Bytes), Error> {
        let idempotent = call.method != Method::POST;
        let url = self.url(&call);
        retry::run(&self.inner.retry, idempotent, |attempt| {
            self.attempt(&call, &url, attempt)
        })
        .await
    }

    /// One try: waits for the limiter, sends, and returns the status and body of a success.
    async fn attempt(
        &self,
        call: &Call<'_>,
        url: &Url,
        attempt: u32,
    ) -> Result<(StatusCode, bytes::Bytes), Error> {
        let _own_permit = match &self.inner.own_limiter {
            Some(own) => Some(own.acquire().await),
            None => None,
        };
        let _permit = self.inner.limiter.acquire().await;
        let mut request = self
            .inner
            .http
            .request(call.method.clone(), url.clone())
            .header(AUTHORIZATION, self.inner.authorization.clone())
            .header(ACCEPT, "application/json")
            .header(
                USER_AGENT,
                concat!("losant-operator/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(version) = &self.inner.accept_version {
            request = request.header("Accept-Version", version.clone());
        }
        if let Some(body) = &call.body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        let started = tokio::time::Instant::now();
        let observe = |status: Option<u16>| {
            if let Some(observer) = &self.inner.observer {
                observer.observe(call.operation, status, attempt > 0);
            }
        };
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => {
                observe(None);
                return Err(transport_error(error));
            }
        };
        let status = response.status();
        observe(Some(status.as_u16()));
        tracing::debug!(method = %call.method, route = call.route, status = status.as_u16(), attempt, elapsed_ms = started.elapsed().as_millis() as u64, "losant request");
        if status.is_success() {
            let body = read_capped(response, MAX_BODY_BYTES).await?;
            return Ok((status, body));
        }
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| {
                parse_retry_after(value, SystemTime::now(), self.inner.retry.max_retry_after)
            });
        let body = read_capped(response, MAX_ERROR_BODY_BYTES)
            .await
            .unwrap_or_default();
        let mut secrets = call.secrets.clone();
        secrets.push(self.inner.token.expose());
        Err(api_error(status, &body, retry_after, &secrets))
    }

    fn url(&self, call: &Call<'_>) -> Url {
        let mut url = self.inner.base.clone();
        let mut path = url.path().trim_end_matches('/').to_owned();
        for segment in &call.segments {
            path.push('/');
            path.push_str(&encode::component(segment));
        }
        url.set_path(&path);
        let pairs = PLAIN_BODY_PARAMS
            .into_iter()
            .chain(call.query.iter().map(|(k, v)| (*k, v.as_str())));
        url.set_query(Some(&encode::query(pairs)));
        url
    }
}

fn item_call<'a>(
    method: Method,
    application_id: &'a str,
    integration_id: &'a str,
) -> Result<Call<'a>, Error> {
    check_id("application id", application_id)?;
    check_id("integration id", integration_id)?;
    let operation = match method {
        Method::GET => "get",
        Method::PATCH => "patch",
        _ => "delete",
    };
    Ok(Call {
        operation,
        method,
        route: "/applications/{applicationId}/integrations/{integrationId}",
        segments: vec![
            "applications",
            application_id,
            "integrations",
            integration_id,
        ],
        query: vec![],
        body: None,
        secrets: vec![],
    })
}

fn check_id(what: &str, id: &str) -> Result<(), Error> {
    if encode::is_losant_id(id) {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            reason: format!("the {what} must be 24 hexadecimal characters"),
        })
    }
}

fn to_json(body: &impl Serialize) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(body).map_err(|_| Error::InvalidArgument {
        reason: "the request body could not be serialized".into(),
    })
}

fn transport_error(source: reqwest::Error) -> Error {
    if source.is_timeout() {
        Error::Timeout { source }
    } else if source.is_connect() {
        Error::Connect { source }
    } else {
        Error::Transport { source }
    }
}

/// Reads at most `limit` bytes of a body; a longer body is an error, not a truncation.
async fn read_capped(mut response: reqwest::Response, limit: usize) -> Result<bytes::Bytes, Error> {
    let status = response.status().as_u16();
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
        if body.len() + chunk.len() > limit {
            return Err(Error::Decode {
                status,
                reason: format!("the body is larger than {limit} bytes"),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Builds the error for a non-success answer from Losant's `{type, message}`; any other body is
/// never quoted.
fn api_error(
    status: StatusCode,
    body: &[u8],
    retry_after: Option<Duration>,
    secrets: &[&str],
) -> Error {
    #[derive(serde::Deserialize)]
    struct LosantError {
        #[serde(rename = "type")]
        kind: Option<String>,
        message: Option<String>,
    }
    let parsed = serde_json::from_slice::<LosantError>(body).ok();
    let kind = parsed
        .as_ref()
        .and_then(|e| e.kind.as_deref())
        .unwrap_or("Unknown");
    let message = parsed
        .as_ref()
        .and_then(|e| e.message.as_deref())
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("no details"));
    Error::Api {
        status: status.as_u16(),
        kind: scrub(kind, secrets).chars().take(64).collect(),
        message: scrub(message, secrets),
        retry_after,
    }
}

/// Reads a success's body as `T`.
fn decode<'a, T: serde::Deserialize<'a>>(status: StatusCode, body: &'a [u8]) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|error| Error::Decode {
        status: status.as_u16(),
        reason: format!(
            "the body is not the expected JSON ({:?} error at line {}, column {})",
            error.classify(),
            error.line(),
            error.column()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(url: &str) -> Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        ClientBuilder::new("token-value".into())
            .api_url(url)
            .build()
            .unwrap()
    }

    #[test]
    fn urls_keep_a_base_path_and_encode_everything() {
        let client = client("https://losant.internal/api/");
        let call = Call {
            operation: "list",
            method: Method::GET,
            route: "",
            segments: vec!["applications", "575ec8687ae143cd83dc4a97", "integrations"],
            query: vec![("filter", "a+b c".into())],
            body: None,
            secrets: vec![],
        };
        assert_eq!(
            client.url(&call).as_str(),
            "https://losant.internal/api/applications/575ec8687ae143cd83dc4a97/integrations?_links=false&_embedded=false&_actions=false&filter=a%2Bb%20c"
        );
    }

    #[test]
    fn bad_configuration_is_refused() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        for url in [
            "ftp://x",
            "not a url",
            "https://user:pw@host",
            "https://host/?q=1",
        ] {
            let built = ClientBuilder::new("t".into()).api_url(url).build();
            assert!(matches!(built, Err(Error::Config { .. })), "{url}");
        }
        let bad_token = ClientBuilder::new("line\nbreak".into()).build();
        assert!(matches!(bad_token, Err(Error::Config { .. })));
        let bad_ca = ClientBuilder::new("t".into())
            .extra_ca_pem(b"nope".to_vec())
            .build();
        assert!(matches!(bad_ca, Err(Error::Config { .. })));
    }

    #[test]
    fn debug_shows_no_token() {
        let shown = format!("{:?}", client("https://api.losant.com"));
        assert!(!shown.contains("token-value"), "{shown}");
        assert!(shown.contains("api.losant.com"));
    }

    #[test]
    fn api_errors_quote_only_losants_fields() {
        let body = br#"{"type":"Validation","message":"password sekrit is too short","extra":"x"}"#;
        let error = api_error(StatusCode::BAD_REQUEST, body, None, &["sekrit"]);
        assert_eq!(
            error.to_string(),
            "losant answered 400 Validation: password <redacted> is too short"
        );
        let html = api_error(StatusCode::BAD_GATEWAY, b"<html>sekrit</html>", None, &[]);
        assert_eq!(html.to_string(), "losant answered 502 Unknown: Bad Gateway");
    }

    #[tokio::test]
    async fn malformed_ids_never_reach_the_network() {
        let client = client("http://127.0.0.1:9");
        let error = client
            .get("575ec8687ae143cd83dc4a97", "../../x")
            .await
            .unwrap_err();
        assert!(matches!(error, Error::InvalidArgument { .. }));
        assert!(!error.is_transient());
    }
}
