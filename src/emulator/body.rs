//! Reading request bodies: the size cap (413), the JSON content-type check and JSON parsing,
//! done inside handlers so authentication always comes first.

use axum::body::Body;
use axum::http::{HeaderMap, header};
use futures::StreamExt;
use serde_json::Value;

use super::error::ApiError;

/// Over-limit bodies are still read (and discarded) up to this many times the limit, so the
/// client can finish sending and actually receive the 413 instead of a reset connection.
const DRAIN_FACTOR: usize = 64;

/// Reads the whole body, failing with 413 once it exceeds `limit` bytes.
pub async fn read_limited(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Vec<u8>, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let drain_cap = limit.saturating_mul(DRAIN_FACTOR);
    if declared.is_some_and(|n| n > drain_cap) {
        return Err(ApiError::RequestEntityTooLarge);
    }
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|_| ApiError::Validation("request body could not be read".into()))?;
        seen = seen.saturating_add(chunk.len());
        if seen > drain_cap {
            break;
        }
        if seen <= limit {
            buf.extend_from_slice(&chunk);
        }
    }
    if seen > limit {
        return Err(ApiError::RequestEntityTooLarge);
    }
    Ok(buf)
}

/// True for `application/json` and `application/*+json`, parameters ignored.
fn is_json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Reads and parses a JSON request body (POST/PATCH).
pub async fn read_json(headers: &HeaderMap, body: Body, limit: usize) -> Result<Value, ApiError> {
    if !is_json_content_type(headers) {
        return Err(ApiError::Validation(
            "body: request body must be JSON sent with Content-Type: application/json".into(),
        ));
    }
    let bytes = read_limited(headers, body, limit).await?;
    // serde_json syntax errors carry only positions, but build our own message anyway so
    // nothing from the body can leak into it.
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::Validation(format!(
            "body: not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        ))
    })
}
