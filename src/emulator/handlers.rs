//! HTTP handlers for the five integration actions and the emulator's admin endpoints (stats,
//! connection overrides).
//! Each action runs: auth → rate limit → injected fault → ids → body → store → response.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::auth::{Action, Tokens};
use super::body::{read_json, read_limited};
use super::config::{SecretEcho, is_object_id};
use super::connection::ConnectionOverride;
use super::error::ApiError;
use super::faults::{CommitFault, Faults, dropped_connection};
use super::list::{envelope, parse_list_query, query_map, select};
use super::shape::{
    add_list_links, fill_config_defaults, fill_create_defaults, links_wanted, render,
};
use super::stats::{ADMIN_PREFIX, Stats, StatsSnapshot, WriteRecord};
use super::store::Store;
use super::validate::{ValidationError, validate_patch, validate_post};

/// Everything the handlers share.
pub struct Shared {
    pub tokens: Tokens,
    pub store: Store,
    pub faults: Faults,
    pub stats: Arc<Stats>,
    pub secret_echo: SecretEcho,
    pub server_defaults: bool,
    pub max_body_bytes: usize,
    pub max_per_page: u64,
}

type ApiResult = Result<Response, ApiError>;
type AppPath = Result<Path<String>, PathRejection>;
type ItemPath = Result<Path<(String, String)>, PathRejection>;
/// An integration id alone (admin routes: ids are unique across applications).
type IntegrationPath = Result<Path<String>, PathRejection>;

impl Shared {
    /// Checks run before anything else: token and scope, rate limit, injected outage.
    fn gate(&self, headers: &HeaderMap, action: Action) -> Result<(), ApiError> {
        let token = self.tokens.authorize(headers, action)?;
        self.faults.rate_limit(token)?;
        self.faults.injected_error()
    }

    fn render(&self, doc: &Map<String, Value>, links: bool) -> Value {
        render(doc, self.secret_echo, links)
    }

    /// Answers a committed mutation, unless `--fault-after-commit` loses the response.
    fn committed(&self, status: StatusCode, body: Value) -> Response {
        match self.faults.after_commit() {
            CommitFault::None => (status, Json(body)).into_response(),
            CommitFault::Unavailable => ApiError::ServiceUnavailable.into_response(),
            CommitFault::Drop => dropped_connection(),
        }
    }
}

fn checked_id(raw: String, what: &str) -> Result<String, ApiError> {
    if is_object_id(&raw) {
        // Ids are hex, so case carries no meaning; store and compare them lowercased.
        Ok(raw.to_ascii_lowercase())
    } else {
        Err(ApiError::Validation(format!(
            "{what}: must be 24 hexadecimal characters"
        )))
    }
}

fn app_id(path: AppPath) -> Result<String, ApiError> {
    let Path(app) = path.map_err(|_| ApiError::Validation("applicationId: malformed".into()))?;
    checked_id(app, "applicationId")
}

fn item_ids(path: ItemPath) -> Result<(String, String), ApiError> {
    let Path((app, id)) = path.map_err(|_| ApiError::Validation("path: malformed ids".into()))?;
    Ok((
        checked_id(app, "applicationId")?,
        checked_id(id, "integrationId")?,
    ))
}

fn invalid(e: ValidationError) -> ApiError {
    ApiError::Validation(e.to_string())
}

/// A body's top-level field names, sorted.
fn field_names(fields: &Map<String, Value>) -> Vec<String> {
    let mut names: Vec<String> = fields.keys().cloned().collect();
    names.sort();
    names
}

fn write_record(
    method: &str,
    app: &str,
    doc: &Map<String, Value>,
    fields: Vec<String>,
) -> WriteRecord {
    WriteRecord {
        method: method.to_owned(),
        application_id: app.to_owned(),
        integration_id: doc
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        fields,
    }
}

fn into_object(value: Value) -> Result<Map<String, Value>, ApiError> {
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::Validation("body: must be an object".into())),
    }
}

pub async fn list(
    State(s): State<Arc<Shared>>,
    path: AppPath,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> ApiResult {
    s.gate(&headers, Action::List)?;
    let app = app_id(path)?;
    let params = query_map(q.as_deref());
    let query = parse_list_query(&params, s.max_per_page)?;
    let page = select(&query, s.store.listable(&app)?);
    let links = links_wanted(&params);
    let items = page.items.iter().map(|d| s.render(d, links)).collect();
    let mut out = envelope(&query, &app, items, page.total);
    if links {
        add_list_links(&mut out, &app);
    }
    Ok(Json(Value::Object(out)).into_response())
}

pub async fn create(
    State(s): State<Arc<Shared>>,
    path: AppPath,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    s.gate(&headers, Action::Create)?;
    let app = app_id(path)?;
    let value = read_json(&headers, body, s.max_body_bytes).await?;
    validate_post(&value).map_err(invalid)?;
    let mut fields = into_object(value)?;
    let sent = field_names(&fields);
    if s.server_defaults {
        fill_create_defaults(&mut fields);
    }
    let doc = s.store.create(&app, fields).await?;
    s.stats.record_write(write_record("POST", &app, &doc, sent));
    let links = links_wanted(&query_map(q.as_deref()));
    Ok(s.committed(StatusCode::CREATED, s.render(&doc, links)))
}

pub async fn get_item(
    State(s): State<Arc<Shared>>,
    path: ItemPath,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> ApiResult {
    s.gate(&headers, Action::Get)?;
    let (app, id) = item_ids(path)?;
    let doc = s.store.get(&app, &id)?;
    let links = links_wanted(&query_map(q.as_deref()));
    Ok(Json(s.render(&doc, links)).into_response())
}

pub async fn patch(
    State(s): State<Arc<Shared>>,
    path: ItemPath,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    s.gate(&headers, Action::Patch)?;
    let (app, id) = item_ids(path)?;
    let value = read_json(&headers, body, s.max_body_bytes).await?;
    validate_patch(&value).map_err(invalid)?;
    let mut fields = into_object(value)?;
    let sent = field_names(&fields);
    if s.server_defaults {
        fill_config_defaults(&mut fields);
    }
    let doc = s.store.patch(&app, &id, fields).await?;
    s.stats
        .record_write(write_record("PATCH", &app, &doc, sent));
    let links = links_wanted(&query_map(q.as_deref()));
    Ok(s.committed(StatusCode::OK, s.render(&doc, links)))
}

pub async fn delete(
    State(s): State<Arc<Shared>>,
    path: ItemPath,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let params = query_map(q.as_deref());
    // Counted before auth: the point is to catch any caller that sends it at all.
    if params
        .get("includeWorkflows")
        .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
    {
        s.stats.record_include_workflows();
    }
    s.gate(&headers, Action::Delete)?;
    let (app, id) = item_ids(path)?;
    // The body (often `{}` from JS clients) is read and ignored.
    read_limited(&headers, body, s.max_body_bytes).await?;
    s.store.delete(&app, &id).await?;
    Ok(s.committed(StatusCode::OK, json!({ "success": true })))
}

pub async fn stats(State(s): State<Arc<Shared>>) -> Json<StatsSnapshot> {
    Json(s.stats.snapshot())
}

pub async fn reset_stats(State(s): State<Arc<Shared>>) -> Json<Value> {
    s.stats.reset();
    Json(json!({ "success": true }))
}

fn connection_id(path: IntegrationPath) -> Result<String, ApiError> {
    let Path(id) = path.map_err(|_| ApiError::Validation("integrationId: malformed".into()))?;
    checked_id(id, "integrationId")
}

/// `PUT /_emulator/integrations/{integrationId}/connection`: connect or disconnect now; answers
/// the integration's `status`.
pub async fn put_connection(
    State(s): State<Arc<Shared>>,
    path: IntegrationPath,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let id = connection_id(path)?;
    let value = read_json(&headers, body, s.max_body_bytes).await?;
    let wanted = ConnectionOverride::from_body(value).map_err(ApiError::Validation)?;
    let status = s.store.override_connection(&id, wanted).await?;
    Ok(Json(status).into_response())
}

/// `DELETE` of the same path: back to the automatic behaviour; answers the `status`.
pub async fn delete_connection(State(s): State<Arc<Shared>>, path: IntegrationPath) -> ApiResult {
    let id = connection_id(path)?;
    let status = s
        .store
        .override_connection(&id, ConnectionOverride::Automatic)
        .await?;
    Ok(Json(status).into_response())
}

/// Delays every API response by `--latency-ms` (admin endpoints are exempt).
pub async fn delay(State(latency): State<Duration>, request: Request, next: Next) -> Response {
    if !latency.is_zero() && !request.uri().path().starts_with(ADMIN_PREFIX) {
        tokio::time::sleep(latency).await;
    }
    next.run(request).await
}
