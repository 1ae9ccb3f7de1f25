//! Running the operator in production: metrics, health endpoints, leader election, the CRD
//! schema check and graceful shutdown.
//!
//! Dependencies point one way: `ops` knows kube-runtime and the [`crate::losant::RequestObserver`]
//! hook, never the controllers; `controller/` hands its watch caches and reconcile functions to
//! an [`Operations`] value; `main.rs` builds it with [`start`].
//!
//! # How leadership gates work (and why this way)
//! Every replica runs the full controllers, so its watch caches are warm and `/readyz` means the
//! same on all of them. Only the reconcile *bodies* are gated ([`Operations::reconcile`]): on a
//! standby a reconcile returns at once without a call to Kubernetes or Losant and waits for the
//! next change; when the replica becomes leader, [`Leadership::gained`] makes the controllers
//! reconcile everything in their caches. Starting the controllers only after acquiring the lease
//! would leave a new leader with cold caches (a full list of every watched kind, in every
//! namespace) exactly when it should take over. An in-flight reconcile is abandoned (its future
//! dropped at the next `.await`) the moment leadership is lost, and the process then exits.

pub mod health;
pub mod leader;
pub mod lean;
pub mod memory;
pub mod metrics;
pub mod schema;
pub mod shutdown;
pub mod watch;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::TryStreamExt;
use kube::ResourceExt;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use tracing::Instrument;

pub use health::Readiness;
pub use leader::{ElectorHandle, LeaderConfig, LeaderError, Leadership};
pub use metrics::Metrics;
pub use shutdown::Shutdown;
pub use watch::{Watched, set_watch_page_size, watch, watch_config};

/// How the operations side of the process is set up (from the command line).
#[derive(Clone, Debug)]
pub struct OpsConfig {
    /// Where `/metrics`, `/healthz` and `/readyz` are served; `None` serves nothing.
    pub metrics_addr: Option<SocketAddr>,
    /// Leader election; `None` means this replica always reconciles.
    pub leader: Option<LeaderConfig>,
    /// How long in-flight reconciles may run after a shutdown request.
    pub shutdown_timeout: Duration,
    /// The CRD schema version the binary was built with; `None` skips the check.
    pub expected_schema_version: Option<u32>,
}

/// Errors of the operations side.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The operations server could not start.
    #[error("failed to start the operations server")]
    Serve(#[from] health::ServeError),
    /// Leader election is misconfigured, or the lease was lost.
    #[error(transparent)]
    Leader(#[from] LeaderError),
    /// The signal handlers could not be installed.
    #[error("failed to install the SIGTERM handler")]
    Signals(#[source] std::io::Error),
    /// The installed CRDs could not be read.
    #[error("failed to check the installed CRDs' schema version")]
    Schema(#[from] schema::SchemaError),
    /// This replica was leader and lost the lease.
    #[error("lost the leader lease; exiting so that only the new leader reconciles")]
    LeadershipLost,
}

/// What the controllers use: metrics, readiness, the leadership gate and the shutdown signal.
#[derive(Clone, Debug)]
pub struct Operations {
    /// The metrics registry.
    pub metrics: Metrics,
    /// Whether the watch caches synced.
    pub readiness: Readiness,
    /// Whether this replica may reconcile.
    pub leadership: Leadership,
    /// The shutdown request.
    pub shutdown: Shutdown,
    shutdown_timeout: Duration,
    expected_schema_version: Option<u32>,
    election: Arc<Mutex<Election>>,
}

/// The election of this replica: created at start, joined by [`Operations::prepare`] once the
/// CRDs are usable (a replica that cannot work must not take the lease from one that can), and
/// stepped down from by [`Started::finish`].
#[derive(Default)]
enum Election {
    /// No leader election: always leader.
    #[default]
    Off,
    /// Not joined yet.
    Pending(Box<leader::Elector>),
    /// Running in the background.
    Running(ElectorHandle),
}

impl std::fmt::Debug for Election {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Off => "Off",
            Self::Pending(_) => "Pending",
            Self::Running(_) => "Running",
        })
    }
}

/// The operations side once started; [`Started::finish`] releases the lease at the end.
#[derive(Debug)]
pub struct Started {
    operations: Operations,
    metrics_addr: Option<SocketAddr>,
}

/// Starts the operations side: the signal handler and the HTTP server (logging `metrics server
/// listening on ADDR`, so a caller that asked for port 0 can find it), and prepares the election
/// (joined by [`Operations::prepare`]).
pub async fn start(kube: &kube::Client, config: OpsConfig) -> Result<Started, OpsError> {
    let metrics = Metrics::new();
    let readiness = Readiness::default();
    let shutdown = Shutdown::new();
    shutdown.on_signals().map_err(OpsError::Signals)?;
    tokio::spawn(memory::keep_trimmed());
    if let Some(config) = &config.leader {
        config.validate()?;
    }
    let metrics_addr = match config.metrics_addr {
        Some(addr) => {
            let bound = health::serve(addr, metrics.clone(), readiness.clone()).await?;
            tracing::info!(addr = %bound, "metrics server listening on {bound}");
            Some(bound)
        }
        None => None,
    };
    let (leadership, election) = match config.leader {
        Some(leader_config) => {
            let (elector, leadership) =
                leader::Elector::new(kube.clone(), leader_config, metrics.clone());
            (leadership, Election::Pending(Box::new(elector)))
        }
        None => {
            metrics.set_leader(true);
            (Leadership::always(), Election::Off)
        }
    };
    Ok(Started {
        operations: Operations {
            metrics,
            readiness,
            leadership,
            shutdown,
            shutdown_timeout: config.shutdown_timeout,
            expected_schema_version: config.expected_schema_version,
            election: Arc::new(Mutex::new(election)),
        },
        metrics_addr,
    })
}

impl Started {
    /// The handles the controllers use.
    pub fn operations(&self) -> Operations {
        self.operations.clone()
    }

    /// The address the operations server listens on.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Steps down: stops reconciling and releases the lease if this replica holds it.
    pub async fn finish(self) -> Result<(), OpsError> {
        let election = std::mem::take(&mut *self.operations.lock_election());
        match election {
            Election::Running(elector) => Ok(elector.release().await?),
            Election::Off | Election::Pending(_) => Ok(()),
        }
    }
}

impl Operations {
    /// Operations for a process without a server or election: always leader, shutdown on
    /// SIGTERM/SIGINT only if [`Shutdown::on_signals`] is called on [`Operations::shutdown`].
    pub fn standalone() -> Self {
        let metrics = Metrics::new();
        metrics.set_leader(true);
        Self {
            metrics,
            readiness: Readiness::default(),
            leadership: Leadership::always(),
            shutdown: Shutdown::new(),
            shutdown_timeout: Duration::from_secs(20),
            expected_schema_version: None,
            election: Arc::new(Mutex::new(Election::Off)),
        }
    }

    fn lock_election(&self) -> std::sync::MutexGuard<'_, Election> {
        self.election
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Gets this replica ready to work: waits until the installed CRDs are at least the schema
    /// version this binary expects (see [`schema`]), then joins the leader election. `Ok(false)`
    /// if shutdown was requested meanwhile (nothing was joined).
    pub async fn prepare(&self, kube: &kube::Client) -> Result<bool, OpsError> {
        if let Some(expected) = self.expected_schema_version
            && !schema::wait_until_current(kube, expected, &self.shutdown).await?
        {
            return Ok(false);
        }
        let mut election = self.lock_election();
        if let Election::Pending(_) = &*election
            && let Election::Pending(elector) = std::mem::take(&mut *election)
        {
            *election = Election::Running(elector.spawn());
        }
        Ok(true)
    }

    /// A controller of `kind` over `api` (watched in `scope`, for the log), whose watch cache
    /// feeds `/readyz` (call [`Readiness::expect`] first) and the gauge
    /// `losant_operator_objects{kind}`, which counts cached objects by the reason `ready_reason`
    /// reads from them (`None`: no `Ready` condition yet).
    ///
    /// It watches as every watch of the operator does ([`watch`]);
    /// the stream is tapped to see its first `InitDone`.
    pub fn controller<K>(
        &self,
        kind: &'static str,
        scope: Option<&str>,
        api: kube::Api<K>,
        ready_reason: fn(&K) -> Option<String>,
    ) -> Controller<K>
    where
        K: Watched,
    {
        self.controller_with_tap(kind, scope, api, ready_reason, |_| {})
    }

    /// [`Operations::controller`], with `tap` seeing every watch event once the cache has
    /// applied it: another controller can follow this cache instead of watching the same kind
    /// again.
    pub fn controller_with_tap<K>(
        &self,
        kind: &'static str,
        scope: Option<&str>,
        api: kube::Api<K>,
        ready_reason: fn(&K) -> Option<String>,
        tap: impl FnMut(&watcher::Event<K>) + Send + 'static,
    ) -> Controller<K>
    where
        K: Watched,
    {
        let label = format!("{kind} in {}", scope.unwrap_or("all namespaces"));
        let (store, stream) = self.cache(label, api, tap);
        self.metrics.register_kind(kind);
        let counted = store.clone();
        self.metrics.count_conditions(kind, move || {
            let mut counts = std::collections::BTreeMap::new();
            for object in counted.state() {
                let reason = ready_reason(&object).unwrap_or_else(|| metrics::NO_CONDITION.into());
                *counts.entry(reason).or_insert(0) += 1;
            }
            counts
        });
        Controller::for_stream(stream, store)
    }

    /// A cache of what `api` covers, watched as every watch of the operator is ([`watch`]), and
    /// the stream of the objects it applies. `/readyz` waits for its first sync (named `label`);
    /// `tap` sees every watch event once the cache has applied it.
    pub fn cache<K: Watched>(
        &self,
        label: String,
        api: kube::Api<K>,
        mut tap: impl FnMut(&watcher::Event<K>) + Send + 'static,
    ) -> (
        reflector::Store<K>,
        impl futures::Stream<Item = watcher::Result<K>> + Send + 'static,
    ) {
        let (store, writer) = reflector::store();
        let synced = self.readiness.cache(label.clone());
        let stream = reflector::reflector(writer, watch(label, api))
            .inspect_ok(move |event| {
                tap(event);
                if matches!(event, watcher::Event::InitDone) {
                    synced.mark();
                }
            })
            .applied_objects();
        (store, stream)
    }

    /// Runs `reconcile(obj, ctx)` if this replica is leader: in a span naming the object, counted
    /// and timed in the metrics, and abandoned if leadership is lost meanwhile. On a standby it
    /// returns `Action::await_change()` without calling `reconcile` ([`Leadership::gained`]
    /// catches up when this replica takes over).
    pub fn reconcile<K, Ctx, Fut, E, R>(
        &self,
        kind: &'static str,
        obj: Arc<K>,
        ctx: Arc<Ctx>,
        reconcile: R,
    ) -> impl Future<Output = Result<Action, E>> + Send + 'static + use<K, Ctx, Fut, E, R>
    where
        K: ResourceExt,
        R: FnOnce(Arc<K>, Arc<Ctx>) -> Fut,
        Fut: Future<Output = Result<Action, E>> + Send + 'static,
        E: Send + 'static,
    {
        let span = tracing::info_span!(
            "reconcile",
            kind,
            namespace = obj.namespace().unwrap_or_default(),
            object = obj.name_any()
        );
        let leadership = self.leadership.clone();
        let metrics = self.metrics.clone();
        let work = leadership.is_leader().then(|| reconcile(obj, ctx));
        async move {
            let Some(work) = work else {
                tracing::debug!("not the leader: reconcile skipped");
                return Ok(Action::await_change());
            };
            let started = tokio::time::Instant::now();
            let result = tokio::select! {
                biased;
                () = leadership.lost() => {
                    tracing::warn!("leadership lost: reconcile abandoned");
                    return Ok(Action::await_change());
                }
                result = work => result,
            };
            metrics.reconcile_finished(kind, result.is_ok(), started.elapsed());
            result
        }
        .instrument(span)
    }

    /// Runs the controllers (`work`) until they end (`Some(output)`), shutdown is requested or
    /// leadership is lost. After a shutdown request they get the shutdown timeout to finish
    /// in-flight reconciles (they stop taking new work themselves, through
    /// `graceful_shutdown_on(shutdown.requested())`); `None` if they did not finish in time.
    pub async fn supervise<T>(&self, work: impl Future<Output = T>) -> Result<Option<T>, OpsError> {
        let mut work = std::pin::pin!(work);
        tokio::select! {
            output = &mut work => return Ok(Some(output)),
            () = self.shutdown.requested() => {}
            () = self.leadership.lost() => return Err(OpsError::LeadershipLost),
        }
        let bound = self.shutdown_timeout;
        tokio::select! {
            output = &mut work => {
                tracing::info!("in-flight reconciles finished");
                Ok(Some(output))
            }
            () = tokio::time::sleep(bound) => {
                tracing::warn!(timeout = ?bound, "reconciles still in flight after the shutdown timeout; abandoning them");
                Ok(None)
            }
            () = self.leadership.lost() => Err(OpsError::LeadershipLost),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    fn object() -> Arc<ConfigMap> {
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some("cm".into());
        cm.metadata.namespace = Some("ns".into());
        Arc::new(cm)
    }

    #[tokio::test]
    async fn a_leader_reconciles_and_counts() {
        let ops = Operations::standalone();
        let result: Result<Action, std::io::Error> = ops
            .reconcile("ConfigMap", object(), Arc::new(()), |_, _| async {
                Ok(Action::requeue(Duration::from_secs(1)))
            })
            .await;
        assert_eq!(
            result.expect("reconciled"),
            Action::requeue(Duration::from_secs(1))
        );
        let text = ops.metrics.encode().expect("encodes");
        assert!(
            text.contains(r#"losant_operator_reconciles_total{kind="ConfigMap",result="ok"} 1"#),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_standby_does_not_call_the_reconciler() {
        let metrics = Metrics::new();
        let kube = kube::Client::try_from(kube::Config::new(
            "http://127.0.0.1:9".parse().expect("url"),
        ))
        .expect("client");
        let config = LeaderConfig {
            namespace: "ns".into(),
            name: "lease".into(),
            identity: "me".into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        };
        let (_elector, leadership) = leader::Elector::new(kube, config, metrics.clone());
        let ops = Operations {
            leadership,
            metrics,
            ..Operations::standalone()
        };
        let result: Result<Action, std::io::Error> = ops
            .reconcile("ConfigMap", object(), Arc::new(()), |_, _| async {
                panic!("a standby must not reconcile")
            })
            .await;
        assert_eq!(result.expect("skipped"), Action::await_change());
        let text = ops.metrics.encode().expect("encodes");
        assert!(!text.contains("reconciles_total{"), "{text}");
    }

    #[tokio::test]
    async fn supervise_bounds_the_drain() {
        let ops = Operations {
            shutdown_timeout: Duration::from_millis(50),
            ..Operations::standalone()
        };
        ops.shutdown.request();
        let outcome = tokio::time::timeout(
            Duration::from_secs(5),
            ops.supervise(std::future::pending::<()>()),
        )
        .await;
        assert!(matches!(outcome, Ok(Ok(None))), "{outcome:?}");
    }
}
