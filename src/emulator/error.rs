//! API error responses: the `{type, message}` JSON shape, and a layer that converts any
//! non-JSON error (e.g. axum's plain-text rejections) into that shape.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Every failure the API reports to a client. Messages never contain submitted values.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Validation(String),
    #[error("Authorization token is missing or not recognised")]
    Unauthorized,
    #[error("Token does not have a scope that allows this action")]
    Forbidden,
    #[error("{0}")]
    NotFound(&'static str),
    #[error("Method not allowed")]
    MethodNotAllowed,
    #[error("Request entity too large")]
    RequestEntityTooLarge,
    #[error("Too many requests; retry later")]
    TooManyRequests { retry_after: HeaderValue },
    #[error("Service temporarily unavailable")]
    ServiceUnavailable,
    #[error("Internal error")]
    Internal,
}

/// Message for an unknown application.
pub const APPLICATION_NOT_FOUND: &str = "Application was not found";
/// Message for an unknown integration.
pub const INTEGRATION_NOT_FOUND: &str = "Integration was not found";

impl ApiError {
    /// The status code this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Validation(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::RequestEntityTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `type` field of the error body.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Validation(_) => "Validation",
            Self::Unauthorized => "Unauthorized",
            Self::Forbidden => "Forbidden",
            Self::NotFound(_) => "NotFound",
            Self::MethodNotAllowed => "MethodNotAllowed",
            Self::RequestEntityTooLarge => "RequestEntityTooLarge",
            Self::TooManyRequests { .. } => "TooManyRequests",
            Self::ServiceUnavailable => "ServiceUnavailable",
            Self::Internal => "InternalError",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = error_response(self.status(), self.type_name(), &self.to_string());
        if let Self::TooManyRequests { retry_after } = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, retry_after);
        }
        response
    }
}

fn error_response(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = json!({ "type": kind, "message": message }).to_string();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

/// Turns any error response that is not already JSON into the API error shape, keeping its
/// status and headers (e.g. `Allow`), so clients never see axum's plain-text rejections.
pub async fn normalize_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(&response) {
        return response;
    }
    let (parts, _) = response.into_parts();
    let (kind, message) = describe(parts.status);
    let mut fresh = error_response(parts.status, kind, message);
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            fresh.headers_mut().insert(name, value.clone());
        }
    }
    fresh
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/json"))
}

fn describe(status: StatusCode) -> (&'static str, &'static str) {
    match status {
        StatusCode::NOT_FOUND => ("NotFound", "Resource not found"),
        StatusCode::METHOD_NOT_ALLOWED => ("MethodNotAllowed", "Method not allowed"),
        StatusCode::PAYLOAD_TOO_LARGE => ("RequestEntityTooLarge", "Request entity too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("Validation", "Unsupported content type"),
        StatusCode::TOO_MANY_REQUESTS => ("TooManyRequests", "Too many requests"),
        StatusCode::SERVICE_UNAVAILABLE => ("ServiceUnavailable", "Service unavailable"),
        s if s.is_client_error() => ("Validation", "Malformed request"),
        _ => ("InternalError", "Internal error"),
    }
}

/// Fallback for unknown routes.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("Resource not found")
}

/// Fallback for a known path used with the wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
