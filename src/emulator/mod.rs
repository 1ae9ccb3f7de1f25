//! Losant API emulator: an axum server that behaves like the Losant REST API for
//! `/applications/{applicationId}/integrations[/{integrationId}]`, with realism knobs
//! (latency, rate limits, injected faults, list lag, secret echo modes, server defaults),
//! simulated connection state (each integration's `status`) and request statistics. The `losant-emulator` binary and in-process tests both start it via
//! [`spawn`], over plain HTTP or, with [`EmulatorConfig::tls`], over HTTPS.

mod auth;
mod body;
pub mod cli;
pub mod config;
pub mod connection;
pub mod error;
mod faults;
mod handlers;
pub mod list;
mod persist;
mod shape;
pub mod stats;
mod store;
mod tls;
pub mod validate;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{get, post, put};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use config::{EmulatorConfig, RetryAfterForm, SECRET_MASK, SecretEcho, TlsFiles, TokenSpec};
pub use connection::{ConnectionConfig, ConnectionFailure, ConnectionOverride};
pub use stats::{RequestCount, StatsSnapshot, WriteRecord};

use handlers::Shared;

/// Templated route of the integrations collection (as reported in stats).
pub const COLLECTION_ROUTE: &str = "/applications/{applicationId}/integrations";
/// Templated route of one integration (as reported in stats).
pub const ITEM_ROUTE: &str = "/applications/{applicationId}/integrations/{integrationId}";
/// Admin route driving one integration's simulated connection (PUT an override, DELETE it).
pub const CONNECTION_ROUTE: &str = "/_emulator/integrations/{integrationId}/connection";

/// How long [`RunningEmulator::shutdown`] waits for open connections before aborting.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Failures starting or stopping the emulator.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    #[error("cannot bind {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("cannot read state file {path}: {source}")]
    StateFileRead { path: PathBuf, source: io::Error },
    #[error("state file {path} does not hold emulator state: {source}")]
    StateFileParse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot read TLS file {path}: {source}")]
    TlsFile { path: PathBuf, source: io::Error },
    #[error("invalid TLS setup: {0}")]
    Tls(String),
    #[error("server failed: {0}")]
    Server(io::Error),
}

fn build_shared(config: &EmulatorConfig) -> Result<Arc<Shared>, EmulatorError> {
    config.validate()?;
    let seed = config.seed.unwrap_or_else(rand::random);
    let persister = config
        .state_file
        .clone()
        .map(|path| Arc::new(persist::Persister::new(path)));
    // Ids and faults get separate streams so one kind of traffic cannot shift the other.
    let store = store::Store::open(
        &config.applications,
        persister,
        seed,
        config.list_lag,
        config.connection.clone(),
    )?;
    Ok(Arc::new(Shared {
        tokens: auth::Tokens::new(&config.tokens),
        store,
        faults: faults::Faults::new(config, seed ^ 0x9E37_79B9_7F4A_7C15),
        stats: Arc::default(),
        secret_echo: config.secret_echo,
        server_defaults: config.server_defaults,
        max_body_bytes: config.max_body_bytes,
        max_per_page: config.max_per_page,
    }))
}

fn routes(shared: Arc<Shared>, latency: Duration) -> Router {
    let stats = shared.stats.clone();
    Router::new()
        .route(COLLECTION_ROUTE, get(handlers::list).post(handlers::create))
        .route(
            ITEM_ROUTE,
            get(handlers::get_item)
                .patch(handlers::patch)
                .delete(handlers::delete),
        )
        .route("/_emulator/stats", get(handlers::stats))
        .route("/_emulator/reset-stats", post(handlers::reset_stats))
        .route(
            CONNECTION_ROUTE,
            put(handlers::put_connection).delete(handlers::delete_connection),
        )
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .with_state(shared)
        .layer(from_fn_with_state(latency, handlers::delay))
        .layer(from_fn_with_state(stats, stats::track))
        .layer(from_fn(error::normalize_errors))
}

/// Builds the emulator's router (loading the state file, if configured) without binding.
pub fn router(config: &EmulatorConfig) -> Result<Router, EmulatorError> {
    Ok(routes(build_shared(config)?, config.latency))
}

/// Binds `config.listen` and serves in a background task until shut down: HTTPS when
/// `config.tls` is set (the certificate and key are read before binding), else plain HTTP.
pub async fn spawn(config: EmulatorConfig) -> Result<RunningEmulator, EmulatorError> {
    let tls = config.tls.as_ref().map(tls::server_config).transpose()?;
    let shared = build_shared(&config)?;
    let listener =
        TcpListener::bind(config.listen)
            .await
            .map_err(|source| EmulatorError::Bind {
                addr: config.listen,
                source,
            })?;
    let addr = listener
        .local_addr()
        .map_err(|source| EmulatorError::Bind {
            addr: config.listen,
            source,
        })?;
    let (stop, stopped) = oneshot::channel::<()>();
    let app = routes(shared.clone(), config.latency);
    // Stop on the signal, or when the sender is dropped with the handle.
    let stopped = async move {
        stopped.await.ok();
    };
    let https = tls.is_some();
    let task = match tls {
        None => tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stopped)
                .await
        }),
        Some(tls) => {
            let listener =
                tls::TlsListener::new(listener, tls).map_err(|source| EmulatorError::Bind {
                    addr: config.listen,
                    source,
                })?;
            tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(stopped)
                    .await
            })
        }
    };
    Ok(RunningEmulator {
        addr,
        https,
        stop: Some(stop),
        task: Some(task),
        shared,
    })
}

/// A running emulator. Dropping it also stops the server (without waiting).
pub struct RunningEmulator {
    addr: SocketAddr,
    https: bool,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
    shared: Arc<Shared>,
}

impl RunningEmulator {
    /// The bound address (with the real port when `:0` was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://IP:PORT`, or `https://IP:PORT` when serving TLS, without a trailing slash.
    pub fn base_url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Current request statistics (same document as `GET /_emulator/stats`).
    pub fn stats(&self) -> StatsSnapshot {
        self.shared.stats.snapshot()
    }

    /// Zeroes the request statistics.
    pub fn reset_stats(&self) {
        self.shared.stats.reset();
    }

    /// Every stored integration of an application, unredacted, sorted by id, ignoring list
    /// lag; `None` for an unknown application. Lets tests see the truth behind lost responses.
    pub fn integrations(&self, application_id: &str) -> Option<Vec<Value>> {
        self.shared.store.all(&application_id.to_ascii_lowercase())
    }

    /// Same as the admin endpoint [`CONNECTION_ROUTE`]: overrides the simulated connection of
    /// integration `id` (any application) and returns its `status` as of now.
    pub async fn set_connection(
        &self,
        id: &str,
        wanted: ConnectionOverride,
    ) -> Result<Value, error::ApiError> {
        let id = id.to_ascii_lowercase();
        self.shared.store.override_connection(&id, wanted).await
    }

    /// Stops accepting connections, lets open ones finish (up to a grace period) and waits.
    pub async fn shutdown(mut self) -> Result<(), EmulatorError> {
        if let Some(stop) = self.stop.take() {
            // The server may have stopped on its own already: nothing left to tell.
            stop.send(()).ok();
        }
        let Some(mut task) = self.task.take() else {
            return Ok(());
        };
        match tokio::time::timeout(SHUTDOWN_GRACE, &mut task).await {
            Ok(Ok(result)) => result.map_err(EmulatorError::Server),
            Ok(Err(join)) => Err(EmulatorError::Server(io::Error::other(join))),
            Err(_) => {
                task.abort();
                Ok(())
            }
        }
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            // The server may have stopped on its own already: nothing left to tell.
            stop.send(()).ok();
        }
    }
}
