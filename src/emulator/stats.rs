//! Request counters by method (non-standard ones as `OTHER`), templated route and status,
//! served at `/_emulator/stats`, plus the request log line (method/route/status only; never
//! bodies or secrets).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::faults::ConnectionDropped;

/// Prefix of the emulator's own (uncounted) endpoints.
pub const ADMIN_PREFIX: &str = "/_emulator/";
/// Route label for requests that matched no route.
pub const UNMATCHED_ROUTE: &str = "<unmatched>";

#[derive(Default)]
struct Counters {
    total: u64,
    by_key: BTreeMap<(String, String, u16), u64>,
    include_workflows_true: u64,
    writes: Vec<WriteRecord>,
}

/// The most writes [`StatsSnapshot::writes`] keeps (the oldest are dropped beyond it).
pub const MAX_WRITE_RECORDS: usize = 10_000;

/// One successful create or patch: which integration and which top-level fields the body set
/// (names only, never values), so a test can compare what was written with what was planned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WriteRecord {
    /// `POST` or `PATCH`.
    pub method: String,
    /// The application.
    pub application_id: String,
    /// The integration created or patched.
    pub integration_id: String,
    /// The body's top-level field names, sorted.
    pub fields: Vec<String>,
}

/// Thread-safe request counters.
#[derive(Default)]
pub struct Stats {
    inner: Mutex<Counters>,
}

/// One counter row. `status` 0 means the connection was deliberately dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestCount {
    pub method: String,
    pub route: String,
    pub status: u16,
    pub count: u64,
}

/// The `/_emulator/stats` document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatsSnapshot {
    pub total: u64,
    pub requests: Vec<RequestCount>,
    /// DELETEs whose query set `includeWorkflows` to true (the operator must never send it).
    pub include_workflows_true: u64,
    /// Successful creates and patches, oldest first (at most [`MAX_WRITE_RECORDS`]).
    #[serde(default)]
    pub writes: Vec<WriteRecord>,
}

impl StatsSnapshot {
    /// The count for one method/route/status triple (0 when absent).
    pub fn count(&self, method: &str, route: &str, status: u16) -> u64 {
        self.requests
            .iter()
            .filter(|r| r.method == method && r.route == route && r.status == status)
            .map(|r| r.count)
            .sum()
    }
}

impl Stats {
    fn lock(&self) -> MutexGuard<'_, Counters> {
        // Counters stay meaningful even if a holder panicked mid-increment.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn record(&self, method: &str, route: &str, status: u16) {
        let mut c = self.lock();
        c.total += 1;
        *c.by_key
            .entry((method.to_owned(), route.to_owned(), status))
            .or_default() += 1;
    }

    /// Notes a successful create or patch and the fields its body set.
    pub fn record_write(&self, write: WriteRecord) {
        let mut c = self.lock();
        if c.writes.len() >= MAX_WRITE_RECORDS {
            c.writes.remove(0);
        }
        c.writes.push(write);
    }

    pub fn record_include_workflows(&self) {
        self.lock().include_workflows_true += 1;
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let c = self.lock();
        let requests = c
            .by_key
            .iter()
            .map(|((method, route, status), count)| RequestCount {
                method: method.clone(),
                route: route.clone(),
                status: *status,
                count: *count,
            })
            .collect();
        StatsSnapshot {
            total: c.total,
            requests,
            include_workflows_true: c.include_workflows_true,
            writes: c.writes.clone(),
        }
    }

    pub fn reset(&self) {
        *self.lock() = Counters::default();
    }
}

/// Label under which requests with a non-standard method are counted.
pub const OTHER_METHOD: &str = "OTHER";

/// The method as counted: standard methods by name, any other token (clients may invent as
/// many as they like) as [`OTHER_METHOD`], so the counters stay bounded.
fn method_label(method: &Method) -> &'static str {
    const STANDARD: [Method; 9] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    STANDARD
        .iter()
        .find(|m| *m == method)
        .map_or(OTHER_METHOD, |m| m.as_str())
}

/// Counts and logs every request outside the admin endpoints.
pub async fn track(State(stats): State<Arc<Stats>>, request: Request, next: Next) -> Response {
    if request.uri().path().starts_with(ADMIN_PREFIX) {
        return next.run(request).await;
    }
    let method = method_label(request.method()).to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED_ROUTE, MatchedPath::as_str)
        .to_owned();
    let response = next.run(request).await;
    let status = if response.extensions().get::<ConnectionDropped>().is_some() {
        0
    } else {
        response.status().as_u16()
    };
    stats.record(&method, &route, status);
    tracing::info!(method = %method, route = %route, status, "request");
    response
}
