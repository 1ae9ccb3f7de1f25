//! The operations HTTP server: `/metrics`, `/healthz` and `/readyz` on `--metrics-addr`.
//!
//! - `/healthz` answers 200 while the process serves HTTP at all: a liveness probe restarts only a
//!   process that is wedged, never one that is merely waiting (for the lease, the CRDs or the API
//!   server).
//! - `/readyz` answers 200 once every watch cache the controllers registered has finished its
//!   initial list, on every replica, leader or not: a standby with warm caches is ready to take
//!   over, and that is what a rollout should wait for.
//! - `/metrics` answers the OpenMetrics text of [`Metrics`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use kube::runtime::reflector::Store;
use tokio::net::TcpListener;

use super::metrics::Metrics;

/// The OpenMetrics content type Prometheus negotiates for.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Whether the watch caches have synced: ready once as many caches as were expected report
/// their initial list done.
#[derive(Clone, Debug, Default)]
pub struct Readiness {
    inner: Arc<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    expected: AtomicUsize,
    synced: AtomicUsize,
}

impl Readiness {
    /// Announces `caches` more caches to wait for. Call it before the caches start, so `/readyz`
    /// cannot turn true while some are not registered yet.
    pub fn expect(&self, caches: usize) {
        self.inner.expected.fetch_add(caches, Ordering::SeqCst);
    }

    /// Marks one announced cache synced.
    pub fn cache_synced(&self) {
        self.inner.synced.fetch_add(1, Ordering::SeqCst);
    }

    /// Marks one announced cache synced once `store` has its initial list (in the background).
    pub fn track<K>(&self, what: String, store: Store<K>)
    where
        K: kube::Resource + Clone + Send + Sync + 'static,
        K::DynamicType: Eq + std::hash::Hash + Clone + Send + Sync,
    {
        let readiness = self.clone();
        tokio::spawn(async move {
            // The writer is dropped only when the controller stops; nothing to mark then.
            if store.wait_until_ready().await.is_ok() {
                tracing::info!(cache = %what, "watch cache synced");
                readiness.cache_synced();
            }
        });
    }

    /// True once at least one cache was expected and all expected caches synced.
    pub fn is_ready(&self) -> bool {
        let expected = self.inner.expected.load(Ordering::SeqCst);
        expected > 0 && self.inner.synced.load(Ordering::SeqCst) >= expected
    }
}

#[derive(Clone)]
struct AppState {
    metrics: Metrics,
    readiness: Readiness,
}

/// The router of the operations endpoints.
pub fn router(metrics: Metrics, readiness: Readiness) -> Router {
    Router::new()
        .route("/metrics", get(serve_metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(serve_readyz))
        .with_state(AppState { metrics, readiness })
}

async fn serve_metrics(State(state): State<AppState>) -> Response {
    // Encoding walks the cache stores; keep it off the async workers.
    let metrics = state.metrics.clone();
    match tokio::task::spawn_blocking(move || metrics.encode()).await {
        Ok(Ok(text)) => ([(header::CONTENT_TYPE, OPENMETRICS)], text).into_response(),
        Ok(Err(_)) | Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "failed to encode metrics\n",
        )
            .into_response(),
    }
}

async fn serve_readyz(State(state): State<AppState>) -> Response {
    if state.readiness.is_ready() {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "watch caches not synced yet\n",
        )
            .into_response()
    }
}

/// Failure to start the operations server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address could not be bound (in use, or not allowed).
    #[error("failed to listen on {addr} for /metrics, /healthz and /readyz")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Binds `addr` and serves [`router`] in the background; returns the bound address (which tells
/// the port when `addr` asked for port 0).
pub async fn serve(
    addr: SocketAddr,
    metrics: Metrics,
    readiness: Readiness,
) -> Result<SocketAddr, ServeError> {
    let bind_error = |source| ServeError::Bind { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let bound = listener.local_addr().map_err(bind_error)?;
    let app = router(metrics, readiness);
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "the metrics server stopped");
        }
    });
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_after_every_expected_cache() {
        let readiness = Readiness::default();
        assert!(!readiness.is_ready(), "nothing registered is not ready");
        readiness.expect(2);
        readiness.cache_synced();
        assert!(!readiness.is_ready());
        readiness.cache_synced();
        assert!(readiness.is_ready());
    }

    #[tokio::test]
    async fn endpoints_answer() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let readiness = Readiness::default();
        let metrics = Metrics::new();
        let addr = serve(
            "127.0.0.1:0".parse().expect("addr"),
            metrics,
            readiness.clone(),
        )
        .await
        .expect("binds");
        let client = reqwest::Client::new();
        let get = |path: &'static str| {
            let client = client.clone();
            async move {
                let response = client
                    .get(format!("http://{addr}{path}"))
                    .send()
                    .await
                    .expect("answers");
                let status = response.status().as_u16();
                let content_type = response
                    .headers()
                    .get("content-type")
                    .map(|v| v.to_str().unwrap_or_default().to_owned());
                (status, content_type, response.text().await.expect("body"))
            }
        };
        assert_eq!(get("/healthz").await.0, 200);
        assert_eq!(get("/readyz").await.0, 503);
        readiness.expect(1);
        readiness.cache_synced();
        assert_eq!(get("/readyz").await.0, 200);
        let (status, content_type, body) = get("/metrics").await;
        assert_eq!(status, 200);
        assert!(
            content_type.is_some_and(|t| t.starts_with("application/openmetrics-text")),
            "OpenMetrics content type"
        );
        assert!(
            body.contains("losant_operator_drift_corrections_total 0"),
            "{body}"
        );
    }
}
