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
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::metrics::Metrics;

/// The OpenMetrics content type Prometheus negotiates for.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Whether the watch caches have synced: ready once as many caches as were expected report
/// their initial list done. Any number of tasks may wait for it ([`Readiness::wait`]).
///
/// Why not `Store::wait_until_ready`: in kube-runtime 5.0 a store's readiness is a oneshot
/// receiver that keeps only the *last* waiter's waker, and the controller's own runner already
/// waits on it; a second waiter can leave the runner (or itself) asleep forever. Readiness here
/// is fed from the watch stream instead ([`super::Operations::controller`]).
#[derive(Clone, Debug)]
pub struct Readiness {
    tx: Arc<watch::Sender<Counts>>,
}

#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    expected: usize,
    synced: usize,
}

impl Counts {
    fn ready(self) -> bool {
        self.expected > 0 && self.synced >= self.expected
    }
}

impl Default for Readiness {
    fn default() -> Self {
        Self {
            tx: Arc::new(watch::Sender::new(Counts::default())),
        }
    }
}

/// Marks one announced cache synced, once, however often its watch re-lists.
#[derive(Debug)]
pub struct CacheSynced {
    readiness: Readiness,
    what: String,
    done: AtomicBool,
}

impl CacheSynced {
    /// Marks the cache synced (only the first call counts).
    pub fn mark(&self) {
        if !self.done.swap(true, Ordering::SeqCst) {
            tracing::info!(cache = %self.what, "watch cache synced");
            self.readiness.tx.send_modify(|c| c.synced += 1);
        }
    }
}

impl Readiness {
    /// Announces `caches` more caches to wait for. Call it before the caches start, so `/readyz`
    /// cannot turn true while some are not registered yet.
    pub fn expect(&self, caches: usize) {
        self.tx.send_modify(|c| c.expected += caches);
    }

    /// A marker for one announced cache, described as `what` in the log.
    pub fn cache(&self, what: String) -> CacheSynced {
        CacheSynced {
            readiness: self.clone(),
            what,
            done: AtomicBool::new(false),
        }
    }

    /// True once at least one cache was expected and all expected caches synced.
    pub fn is_ready(&self) -> bool {
        self.tx.borrow().ready()
    }

    /// Resolves once [`Readiness::is_ready`] (at once if it already is).
    pub async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        rx.wait_for(|c| c.ready()).await.ok();
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

    fn tokio_test_wait(readiness: &Readiness) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            tokio::time::timeout(std::time::Duration::from_secs(5), readiness.wait())
                .await
                .expect("wait resolves once ready");
        });
    }

    #[test]
    fn ready_only_after_every_expected_cache() {
        let readiness = Readiness::default();
        assert!(!readiness.is_ready(), "nothing registered is not ready");
        readiness.expect(2);
        let first = readiness.cache("first".into());
        first.mark();
        first.mark();
        assert!(
            !readiness.is_ready(),
            "a cache counts once, however often it re-lists"
        );
        readiness.cache("second".into()).mark();
        assert!(readiness.is_ready());
        tokio_test_wait(&readiness);
    }

    #[tokio::test]
    async fn endpoints_answer() {
        // Another test may have installed it already.
        rustls::crypto::ring::default_provider()
            .install_default()
            .ok();
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
        readiness.cache("only".into()).mark();
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
