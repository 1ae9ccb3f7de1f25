//! The Losant REST client for an application's integrations.
//!
//! # Guarantees
//! - GET, PATCH and DELETE retry transient failures ([`RetryPolicy`]); POST is sent exactly once.
//! - Every request waits for the shared [`Limiter`] of its API URL and token.
//! - Every request has a connect timeout and a total timeout; TLS is always verified.
//! - Requests carry `_links=false&_embedded=false&_actions=false`; no request ever carries
//!   `includeWorkflows`, so deleting an integration never deletes a workflow.
//! - No secret (the token, or any secret in a body) reaches a log line, an error or `Debug` output.
//!
//! Here: the client and its five actions. [`ClientBuilder`] sets one up, `listing` reads across
//! pages, `transport` sends one request.

mod builder;
mod listing;
#[cfg(test)]
mod tests;
mod transport;

use std::sync::Arc;

use http::Method;
use http::header::HeaderValue;
use serde::Serialize;
use url::Url;

pub use builder::ClientBuilder;
pub use listing::{MAX_LIST_PAGES, MAX_LISTED_INTEGRATIONS};

use super::encode;
use super::error::Error;
use super::limiter::Limiter;
use super::model::{
    Integration, IntegrationPage, IntegrationPatch, IntegrationPost, ListQuery, RawPage,
};
use super::observe::RequestObserver;
use super::retry::RetryPolicy;
use super::secret::SecretString;
use transport::decode;

/// Losant's public API.
pub const DEFAULT_API_URL: &str = "https://api.losant.com";
/// The API version range this client is written against.
pub const DEFAULT_ACCEPT_VERSION: &str = "^1.30.0";
/// The largest page Losant's own CLI asks for; servers may clamp it further.
pub const MAX_PER_PAGE: u64 = 1000;

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
