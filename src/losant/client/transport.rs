//! One request on the wire: the URL, headers and limiter permits of each attempt, retries, capped
//! body reads, and errors that quote only Losant's own fields with every secret scrubbed.

use std::time::{Duration, SystemTime};

use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, LOCATION, RETRY_AFTER, USER_AGENT};
use http::{Method, StatusCode};
use serde::de::DeserializeOwned;
use url::Url;

use super::{Call, Client};
use crate::losant::encode;
use crate::losant::error::{Error, scrub};
use crate::losant::retry::{self, parse_retry_after};

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

impl Client {
    /// Sends `call` (retrying if idempotent) and reads the answer as `T`.
    pub(super) async fn send<T: DeserializeOwned>(&self, call: Call<'_>) -> Result<T, Error> {
        let (status, body) = self.send_for_body(call).await?;
        decode(status, &body)
    }

    /// Sends `call` (retrying if idempotent) and returns the status and body of the success.
    pub(super) async fn send_for_body(
        &self,
        call: Call<'_>,
    ) -> Result<(StatusCode, bytes::Bytes), Error> {
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
        if status.is_redirection() {
            return Err(redirect_error(status, &response, url, &self.secrets(call)));
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
        let secrets = self.secrets(call);
        Err(api_error(status, &body, retry_after, &secrets))
    }

    /// Every secret `call` carries, the token included, for scrubbing.
    fn secrets<'a>(&'a self, call: &Call<'a>) -> Vec<&'a str> {
        let mut secrets = call.secrets.clone();
        secrets.push(self.inner.token.expose());
        secrets
    }

    pub(super) fn url(&self, call: &Call<'_>) -> Url {
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

fn transport_error(source: reqwest::Error) -> Error {
    if source.is_timeout() {
        Error::Timeout { source }
    } else if source.is_connect() {
        Error::Connect { source }
    } else {
        Error::Transport { source }
    }
}

/// Reads at most `limit` bytes of a body; a longer body is an error, not a truncation. A body
/// announced as longer is not read at all.
async fn read_capped(mut response: reqwest::Response, limit: usize) -> Result<bytes::Bytes, Error> {
    let status = response.status().as_u16();
    let too_large = || Error::Decode {
        status,
        reason: format!("the body is larger than {limit} bytes"),
    };
    if response
        .content_length()
        .is_some_and(|length| length > limit as u64)
    {
        return Err(too_large());
    }
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Builds the error for a 3xx: where it pointed (this host or another, never the whole
/// `Location`, which may carry anything), without following it.
fn redirect_error(
    status: StatusCode,
    response: &reqwest::Response,
    url: &Url,
    secrets: &[&str],
) -> Error {
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| url.join(value).ok());
    let target = match location {
        None => "nowhere usable".to_owned(),
        Some(to) if to.origin() == url.origin() => "the same host".to_owned(),
        Some(to) => {
            let host = to.host_str().unwrap_or("?");
            let host = scrub(host, secrets).chars().take(64).collect::<String>();
            match to.port() {
                Some(port) => format!("another host ({host}:{port})"),
                None => format!("another host ({host})"),
            }
        }
    };
    Error::Redirect {
        status: status.as_u16(),
        target,
    }
}

/// Builds the error for a non-success answer from Losant's `{type, message}`; any other body is
/// never quoted.
pub(super) fn api_error(
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
pub(super) fn decode<'a, T: serde::Deserialize<'a>>(
    status: StatusCode,
    body: &'a [u8],
) -> Result<T, Error> {
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
