//! Leader election on a `coordination.k8s.io/v1` Lease, so that of several replicas exactly one
//! reconciles while the others keep warm caches and wait.
//!
//! The loop here does the I/O (read the Lease, write it with optimistic concurrency); every
//! decision is made by the pure [`decide`] module. Its outcome is published as a
//! [`Leadership`], which the reconcile wrapper consults before and during every reconcile.
//!
//! # Guarantees
//! - Only a replica that wrote the Lease as its holder reports itself leader.
//! - A leader that cannot renew within `renew_deadline`, or that sees another holder, reports
//!   itself not leader at once and [`Elector::run`] returns [`LeaderError::Lost`]; the process is
//!   expected to exit (a fresh start rejoins as a standby with clean state).
//! - [`ElectorHandle::release`] stops reporting leadership first, then writes an empty holder,
//!   so a standby takes over within a retry period instead of a lease duration.
//!
//! # Assumptions
//! - Every replica uses the same Lease name and namespace and distinct identities.
//! - `retry_period < renew_deadline` and `renew_deadline + 2 × retry_period < lease_duration`
//!   (checked by [`LeaderConfig::validate`]).

pub mod decide;

use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use self::decide::{Decision, LeaseRecord, Observer};
use super::metrics::Metrics;

/// The Lease name every replica competes for.
pub const LEASE_NAME: &str = "losant-operator";
/// How long a release may take before the process exits anyway.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);

/// Settings of the election.
#[derive(Clone, Debug)]
pub struct LeaderConfig {
    /// Namespace of the Lease (the operator's own).
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
    /// This replica's identity (unique among replicas).
    pub identity: String,
    /// How long a claim lasts without renewal, by a standby's observation.
    pub lease_duration: Duration,
    /// How long a leader keeps trying to renew before it gives up leadership.
    pub renew_deadline: Duration,
    /// How often to try to acquire or renew.
    pub retry_period: Duration,
}

/// Errors of the election.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    /// The durations cannot guarantee a single leader.
    #[error(
        "leader election needs retry period ({retry_period:?}) < renew deadline ({renew_deadline:?}) and renew deadline + 2 × retry period < lease duration ({lease_duration:?})"
    )]
    InvalidDurations {
        /// `--lease-duration`.
        lease_duration: Duration,
        /// `--renew-deadline`.
        renew_deadline: Duration,
        /// `--retry-period`.
        retry_period: Duration,
    },
    /// This replica was the leader and no longer is.
    #[error("lost the leader lease {namespace}/{name}: {why}")]
    Lost {
        /// Lease namespace.
        namespace: String,
        /// Lease name.
        name: String,
        /// What happened.
        why: String,
    },
}

impl LeaderConfig {
    /// How late a standby may see a renew: it polls every retry period, and a read takes time
    /// (a second retry period is margin for a slow API server).
    pub fn observation_allowance(&self) -> Duration {
        self.retry_period.saturating_mul(2)
    }

    /// Checks the ordering of the durations: a leader must stop (at its renew deadline) before
    /// a standby may take over (a lease duration less the observation allowance).
    pub fn validate(&self) -> Result<(), LeaderError> {
        if self.retry_period < self.renew_deadline
            && self.renew_deadline + self.observation_allowance() < self.lease_duration
        {
            Ok(())
        } else {
            Err(LeaderError::InvalidDurations {
                lease_duration: self.lease_duration,
                renew_deadline: self.renew_deadline,
                retry_period: self.retry_period,
            })
        }
    }
}

/// This replica's identity: `POD_NAME` when set (unique per pod and readable in the Lease),
/// else the host name plus a random suffix (two processes on one host stay distinct).
pub fn default_identity() -> String {
    if let Ok(pod) = std::env::var("POD_NAME")
        && !pod.is_empty()
    {
        return pod;
    }
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "losant-operator".to_owned());
    format!("{host}-{:06x}", rand::random::<u32>() & 0x00ff_ffff)
}

/// Whether this replica may reconcile now, and notifications when that changes.
#[derive(Clone, Debug)]
pub struct Leadership {
    rx: watch::Receiver<bool>,
    elected: bool,
}

impl Leadership {
    /// Leadership that is always held: no election (a single replica).
    pub fn always() -> Self {
        let (tx, rx) = watch::channel(true);
        // Dropping the sender freezes the value at true; receivers still read it.
        drop(tx);
        Self { rx, elected: false }
    }

    /// Whether this replica holds the lease now.
    pub fn is_leader(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves once this replica, having been leader, is no longer; never resolves otherwise.
    pub async fn lost(&self) {
        let mut rx = self.rx.clone();
        if rx.wait_for(|leader| *leader).await.is_err() {
            return std::future::pending().await;
        }
        if rx.wait_for(|leader| !*leader).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Yields once each time this replica becomes leader by election (including at once, if it
    /// is), so the controllers reconcile everything their caches hold when they take over:
    /// while standing by, reconciles of those objects were skipped. Empty without election,
    /// where the initial list already reconciles everything.
    pub fn gained(&self) -> BoxStream<'static, ()> {
        if !self.elected {
            return futures::stream::empty().boxed();
        }
        futures::stream::unfold((self.rx.clone(), true), |(mut rx, first)| async move {
            // One item per rising edge: after the first, wait to fall before rising again.
            if !first {
                rx.wait_for(|leader| !*leader).await.ok()?;
            }
            rx.wait_for(|leader| *leader).await.ok()?;
            Some(((), (rx, false)))
        })
        .boxed()
    }
}

/// Runs the election of one replica.
pub struct Elector {
    api: Api<Lease>,
    config: LeaderConfig,
    observer: Observer,
    tx: watch::Sender<bool>,
    metrics: Metrics,
}

/// Controls a running [`Elector`].
#[derive(Debug)]
pub struct ElectorHandle {
    release: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), LeaderError>>,
}

/// Outcome of one attempt to acquire or renew.
enum Attempt {
    /// We hold the lease (just written).
    Held,
    /// Another replica holds a live claim, until `expires_in` unless it renews.
    HeldByOther {
        holder: String,
        expires_in: Duration,
    },
    /// Lost a race with another writer; read again next time.
    Conflict,
}

impl Elector {
    /// An elector for `config`, and the [`Leadership`] it publishes (initially not leader).
    pub fn new(kube: kube::Client, config: LeaderConfig, metrics: Metrics) -> (Self, Leadership) {
        let (tx, rx) = watch::channel(false);
        metrics.set_leader(false);
        let elector = Self {
            api: Api::namespaced(kube, &config.namespace),
            observer: Observer::with_allowance(config.observation_allowance()),
            config,
            tx,
            metrics,
        };
        (elector, Leadership { rx, elected: true })
    }

    /// Runs the election in the background until [`ElectorHandle::release`] or loss of the lease.
    pub fn spawn(self) -> ElectorHandle {
        let (release, released) = oneshot::channel();
        ElectorHandle {
            release,
            task: tokio::spawn(self.run(released)),
        }
    }

    /// Tries to acquire, then renews, every retry period, until `release` fires (then steps
    /// down and returns `Ok`) or leadership is lost (returns [`LeaderError::Lost`]).
    pub async fn run(mut self, mut release: oneshot::Receiver<()>) -> Result<(), LeaderError> {
        let LeaderConfig {
            renew_deadline,
            retry_period,
            ..
        } = self.config;
        tracing::info!(identity = %self.config.identity, lease = %self.lease_ref(), "leader election: standing by for the lease");
        let mut last_renew: Option<Instant> = None;
        loop {
            // Until another replica's claim expires, by our observation (standbys only).
            let mut claim_expires_in: Option<Duration> = None;
            let started = Instant::now();
            // A leader's attempt must end by its deadline; a standby's within the same bound.
            let budget = last_renew.map_or(renew_deadline, |renewed| {
                (renewed + renew_deadline).saturating_duration_since(started)
            });
            let attempt = tokio::time::timeout(budget, self.try_acquire_or_renew()).await;
            let leader = last_renew.is_some();
            match attempt {
                Ok(Ok(Attempt::Held)) => {
                    last_renew = Some(started);
                    if !leader {
                        self.became_leader();
                    }
                }
                Ok(Ok(Attempt::HeldByOther { holder, expires_in })) => {
                    if leader {
                        return Err(self.lose(format!("{holder} holds it now")));
                    }
                    claim_expires_in = Some(expires_in);
                }
                Ok(Ok(Attempt::Conflict)) => {
                    tracing::debug!(lease = %self.lease_ref(), "lease changed while writing it; reading it again");
                }
                Ok(Err(error)) => {
                    tracing::warn!(lease = %self.lease_ref(), error = %error, "leader election: reading or writing the lease failed");
                }
                Err(_) => {
                    tracing::warn!(lease = %self.lease_ref(), "leader election: the API server did not answer in time");
                }
            }
            if let Some(renewed) = last_renew
                && decide::renew_deadline_passed(renewed, Instant::now(), renew_deadline)
            {
                return Err(self.lose(format!(
                    "not renewed within the renew deadline ({renew_deadline:?})"
                )));
            }
            // Standbys spread their attempts (as client-go's jitter does, but early rather than
            // late: a late poll would see a renew later than the allowance assumes) and try
            // again the moment a claim expires; leaders keep time.
            let wait = if last_renew.is_some() {
                retry_period
            } else {
                let poll = retry_period.mul_f64(0.8 + 0.2 * rand::random::<f64>());
                claim_expires_in.map_or(poll, |expires_in| poll.min(expires_in))
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = &mut release => {
                    self.step_down().await;
                    return Ok(());
                }
            }
        }
    }

    fn lease_ref(&self) -> String {
        format!("{}/{}", self.config.namespace, self.config.name)
    }

    fn became_leader(&self) {
        tracing::info!(identity = %self.config.identity, lease = %self.lease_ref(), "leader election: acquired the lease; this replica reconciles now");
        self.metrics.set_leader(true);
        self.tx.send_replace(true);
    }

    /// Stops reconciling (first) and builds the error that ends the process.
    fn lose(&self, why: String) -> LeaderError {
        self.tx.send_replace(false);
        self.metrics.set_leader(false);
        tracing::error!(identity = %self.config.identity, lease = %self.lease_ref(), %why, "leader election: lost the lease; stopped reconciling and exiting");
        LeaderError::Lost {
            namespace: self.config.namespace.clone(),
            name: self.config.name.clone(),
            why,
        }
    }

    async fn try_acquire_or_renew(&mut self) -> Result<Attempt, kube::Error> {
        let me = self.config.identity.clone();
        let Some(mut lease) = self.api.get_opt(&self.config.name).await? else {
            return self.create(&me).await;
        };
        self.observer.observe(record_of(&lease), Instant::now());
        let decision = self.observer.decide(&me, Instant::now());
        if let Decision::StandBy { holder, expires_in } = decision {
            tracing::trace!(%holder, ?expires_in, "leader election: lease held by another replica");
            return Ok(Attempt::HeldByOther { holder, expires_in });
        }
        let next = decide::next_record(
            self.observer.record(),
            &me,
            &decision,
            Timestamp::now(),
            self.config.lease_duration,
        );
        if decision == Decision::Acquire {
            tracing::info!(previous = ?self.observer.record().and_then(LeaseRecord::holder), "leader election: the lease is free or expired; taking it");
        }
        // Replace keeps metadata.resourceVersion: a concurrent writer makes this a 409.
        lease.spec = Some(spec_of(&next));
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(written) => {
                self.observer.observe(record_of(&written), Instant::now());
                Ok(Attempt::Held)
            }
            Err(kube::Error::Api(status)) if status.is_conflict() => Ok(Attempt::Conflict),
            Err(error) => Err(error),
        }
    }

    async fn create(&mut self, me: &str) -> Result<Attempt, kube::Error> {
        let record = decide::next_record(
            None,
            me,
            &Decision::Acquire,
            Timestamp::now(),
            self.config.lease_duration,
        );
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.config.name.clone()),
                namespace: Some(self.config.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(spec_of(&record)),
        };
        match self.api.create(&PostParams::default(), &lease).await {
            Ok(created) => {
                self.observer.observe(record_of(&created), Instant::now());
                Ok(Attempt::Held)
            }
            Err(kube::Error::Api(status)) if status.is_already_exists() => Ok(Attempt::Conflict),
            Err(error) => Err(error),
        }
    }

    /// Stops reconciling, then hands the lease back if we still hold it.
    async fn step_down(&mut self) {
        let was_leader = *self.tx.borrow();
        self.tx.send_replace(false);
        self.metrics.set_leader(false);
        if !was_leader {
            return;
        }
        match tokio::time::timeout(RELEASE_TIMEOUT, self.release_lease()).await {
            Ok(Ok(true)) => {
                tracing::info!(lease = %self.lease_ref(), "leader election: released the lease")
            }
            Ok(Ok(false)) => {
                tracing::info!(lease = %self.lease_ref(), "leader election: the lease was no longer ours to release")
            }
            Ok(Err(error)) => {
                tracing::warn!(lease = %self.lease_ref(), error = %error, "leader election: releasing the lease failed; a standby takes over when it expires")
            }
            Err(_) => {
                tracing::warn!(lease = %self.lease_ref(), "leader election: releasing the lease timed out; a standby takes over when it expires")
            }
        }
    }

    async fn release_lease(&self) -> Result<bool, kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.config.name).await? else {
            return Ok(false);
        };
        let record = record_of(&lease);
        if record.holder() != Some(self.config.identity.as_str()) {
            return Ok(false);
        }
        lease.spec = Some(spec_of(&decide::released(&record, Timestamp::now())));
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.is_conflict() => Ok(false),
            Err(error) => Err(error),
        }
    }
}

impl ElectorHandle {
    /// Steps down (if leader) and waits for the election loop to end.
    pub async fn release(self) -> Result<(), LeaderError> {
        // The loop may have ended already (the lease was lost): then there is no one to tell.
        self.release.send(()).ok();
        match self.task.await {
            Ok(result) => result,
            // The loop panicked or was cancelled: nothing left to release.
            Err(_) => Ok(()),
        }
    }
}

/// The record a Lease carries (a missing duration reads as zero: already expired).
fn record_of(lease: &Lease) -> LeaseRecord {
    let spec = lease.spec.clone().unwrap_or_default();
    LeaseRecord {
        holder: spec.holder_identity,
        lease_duration: Duration::from_secs(
            u64::try_from(spec.lease_duration_seconds.unwrap_or(0)).unwrap_or(0),
        ),
        acquire_time: spec.acquire_time.map(|t| t.0),
        renew_time: spec.renew_time.map(|t| t.0),
        transitions: spec.lease_transitions.unwrap_or(0),
    }
}

/// The Lease spec for `record`.
fn spec_of(record: &LeaseRecord) -> LeaseSpec {
    LeaseSpec {
        holder_identity: record.holder.clone(),
        lease_duration_seconds: Some(
            i32::try_from(record.lease_duration.as_secs().max(1)).unwrap_or(i32::MAX),
        ),
        acquire_time: record.acquire_time.map(MicroTime),
        renew_time: record.renew_time.map(MicroTime),
        lease_transitions: Some(record.transitions),
        ..LeaseSpec::default()
    }
}
