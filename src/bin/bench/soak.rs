//! The soak: several hundred Integrations churned for a long time (creates, edits, Secret
//! rotations, deletions, changes made in Losant behind the operator's back, and an emulator that
//! alternates between clean and faulty phases, restarted at each switch) with a fast resync. It
//! samples the operator's memory, file descriptors, threads and Tokio tasks over time, and the
//! Losant calls per sweep, and ends with the hard check: exactly one remote per live
//! Integration, by id and by name, with its latest spec and Secret, and none for deleted ones.
//!
//! `scripts/soak.sh` drives it (release binaries, a control plane of its own) and plots the
//! samples; `bench/README.md` explains the figures. Here: the command line and the run's steps;
//! `soak_churn.rs` the churn, `soak_samples.rs` the samples and the verdict, `soak_verify.rs`
//! the end state.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use losant_operator::testkit::{
    OperatorProcess, apply_crds, create_namespace, delete_namespace, local_api_server_url,
};

use crate::observe::{Observer, sample};
use crate::processes::free_port;
use crate::soak_churn::Churn;
use crate::soak_emulator::SoakEmulator;
use crate::soak_samples::{Sampler, write_outputs};
use crate::soak_verify::verify_end_state;

#[derive(clap::Args, Clone, Debug)]
pub struct SoakArgs {
    /// Integrations kept alive (each churn round deletes one and creates one).
    #[arg(long, default_value_t = 400)]
    pub size: usize,
    /// Losant applications the Integrations are spread over (one shared token).
    #[arg(long, default_value_t = 4)]
    pub applications: usize,
    /// Password Secrets the Integrations share (a rotation changes one of them).
    #[arg(long, default_value_t = 8)]
    pub secrets: usize,
    /// How long to churn, in seconds (after the first convergence).
    #[arg(long, default_value_t = 1800)]
    pub duration_seconds: u64,
    /// The operator's resync interval, in seconds.
    #[arg(long, default_value_t = 5)]
    pub resync_seconds: u64,
    /// Seconds between samples.
    #[arg(long, default_value_t = 10)]
    pub sample_seconds: u64,
    /// Milliseconds between churn rounds (a round: one create, one delete, two edits; every
    /// few rounds a Secret rotation or a change in Losant).
    #[arg(long, default_value_t = 1000)]
    pub round_ms: u64,
    /// Seconds of each emulator phase; phases alternate clean and faulty, and the emulator is
    /// restarted (on the same port and state) at each switch.
    #[arg(long, default_value_t = 300)]
    pub phase_seconds: u64,
    /// In faulty phases: the fraction of requests answered 503 (`--error-rate`).
    #[arg(long, default_value_t = 0.05)]
    pub error_rate: f64,
    /// In faulty phases: the fraction of writes that take effect and then answer 503 or lose
    /// the answer (`--fault-after-commit`).
    #[arg(long, default_value_t = 0.05)]
    pub fault_after_commit: f64,
    /// The emulator's requests per second per token (and the operator's own limit).
    #[arg(long, default_value_t = 50.0)]
    pub rate_limit: f64,
    /// The emulator's added latency per request, in milliseconds.
    #[arg(long, default_value_t = 5)]
    pub latency_ms: u64,
    /// Where losant-operator and losant-emulator are (default: beside this program).
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// Namespace to create the objects in (must not exist).
    #[arg(long, default_value = "soak")]
    pub namespace: String,
    /// How long the first convergence and the end state may take, in seconds.
    #[arg(long, default_value_t = 600)]
    pub converge_timeout_seconds: u64,
    /// Directory for the samples (JSON, CSV) and the summary (Markdown).
    #[arg(long)]
    pub out: PathBuf,
    /// Directory for the processes' logs and the emulator's state file.
    #[arg(long, default_value = "target/soak-logs")]
    pub log_dir: PathBuf,
    /// Delete the namespace afterwards (a throwaway control plane need not).
    #[arg(long)]
    pub cleanup: bool,
    /// Fail unless every kind of churn happened at least once (the smoke's check that it
    /// exercised them all).
    #[arg(long)]
    pub require_every_kind: bool,
}

/// What a soak did and found, beside its samples.
#[derive(Debug, Default, serde::Serialize)]
pub struct SoakOutcome {
    pub churn_seconds: f64,
    pub first_convergence_seconds: f64,
    pub end_convergence_seconds: f64,
    pub counts: crate::soak_churn::ChurnCounts,
    pub live: usize,
    pub deleted: usize,
    pub verified: bool,
    /// What the end check found wrong (object names only; never a value).
    pub problems: Vec<String>,
    /// `uptime` at the start and at the end.
    pub uptime_start: String,
    pub uptime_end: String,
}

/// Runs the soak against the control plane in $KUBECONFIG; writes its outputs to `args.out`.
pub async fn soak(args: SoakArgs) -> anyhow::Result<SoakOutcome> {
    std::fs::create_dir_all(&args.log_dir)?;
    std::fs::create_dir_all(&args.out)?;
    local_api_server_url()?;
    let kube = kube::Client::try_default()
        .await
        .context("no Kubernetes API server (set KUBECONFIG; scripts/soak.sh starts one)")?;
    let mut outcome = SoakOutcome {
        uptime_start: uptime(),
        ..SoakOutcome::default()
    };
    apply_crds()?;
    create_namespace(&args.namespace).context("the soak's namespace must not exist")?;
    let mut emulator = SoakEmulator::start(&args)?;
    let mut churn = Churn::new(&args, kube);
    churn.create_fixtures(emulator.base_url())?;
    churn.create_initial().await?;
    let metrics_port = free_port()?;
    let mut operator = start_operator(&args, metrics_port)?;
    let started = Instant::now();
    await_synced(&args, &emulator, metrics_port, &mut operator).await?;
    outcome.first_convergence_seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "soak: {} Integrations converged in {:.1}s; churning for {}s",
        args.size, outcome.first_convergence_seconds, args.duration_seconds
    );

    let pid = operator.pid().context("the operator is not running")?;
    let mut sampler = Sampler::new(pid, metrics_port);
    let churn_started = Instant::now();
    churn_for(
        &args,
        &mut churn,
        &mut emulator,
        &mut sampler,
        &mut operator,
    )
    .await?;
    outcome.churn_seconds = churn_started.elapsed().as_secs_f64();

    // The end state is checked against a clean emulator.
    emulator.set_faulty(&args, false)?;
    churn.restore_connections(&emulator);
    let settle = Instant::now();
    let (verified, problems) = loop {
        let problems = verify_end_state(&churn, &emulator).await?;
        let timed_out = settle.elapsed() > Duration::from_secs(args.converge_timeout_seconds);
        if problems.is_empty() || timed_out || !operator.is_running() {
            break (problems.is_empty(), problems);
        }
        sampler.take(&emulator, &churn, false).await;
        tokio::time::sleep(Duration::from_secs(3)).await;
    };
    outcome.end_convergence_seconds = settle.elapsed().as_secs_f64();
    sampler.take(&emulator, &churn, false).await;
    outcome.verified = verified && operator.is_running();
    outcome.problems = problems;
    if !operator.is_running() {
        outcome.problems.insert(0, "the operator exited".to_owned());
    }
    outcome.counts = churn.counts.clone();
    outcome.live = churn.live_count();
    outcome.deleted = churn.deleted_count();
    outcome.uptime_end = uptime();
    if operator.terminate(Duration::from_secs(10)).is_none() {
        eprintln!("soak: the operator did not stop within 10s of SIGTERM; killed");
    }
    write_outputs(&args, &sampler, &outcome)?;
    if args.cleanup {
        delete_namespace(&args.namespace);
    }
    Ok(outcome)
}

/// The churn rounds for `args.duration_seconds`, with a sample every `args.sample_seconds` and
/// an emulator phase switch every `args.phase_seconds`.
async fn churn_for(
    args: &SoakArgs,
    churn: &mut Churn,
    emulator: &mut SoakEmulator,
    sampler: &mut Sampler,
    operator: &mut OperatorProcess,
) -> anyhow::Result<()> {
    let start = Instant::now();
    let duration = Duration::from_secs(args.duration_seconds);
    let mut rounds = tokio::time::interval(Duration::from_millis(args.round_ms));
    rounds.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_sample = Duration::ZERO;
    let mut next_phase = Duration::from_secs(args.phase_seconds);
    let mut last_report = Instant::now();
    while start.elapsed() < duration {
        rounds.tick().await;
        if !operator.is_running() {
            bail!(
                "the operator exited during the soak; see {}",
                operator.log_path().display()
            );
        }
        churn.round(emulator).await?;
        if start.elapsed() >= next_phase {
            let faulty = !emulator.faulty();
            emulator.set_faulty(args, faulty)?;
            churn.counts.emulator_restarts += 1;
            next_phase += Duration::from_secs(args.phase_seconds);
        }
        if start.elapsed() >= next_sample {
            sampler.take(emulator, churn, true).await;
            next_sample += Duration::from_secs(args.sample_seconds);
        }
        if last_report.elapsed() > Duration::from_secs(60) {
            eprintln!(
                "soak: {:.0}s: {}",
                start.elapsed().as_secs_f64(),
                sampler.brief()
            );
            last_report = Instant::now();
        }
    }
    Ok(())
}

/// Starts the operator on the soak's namespace with the fast resync.
fn start_operator(args: &SoakArgs, metrics_port: u16) -> anyhow::Result<OperatorProcess> {
    let binary = args
        .bin_dir
        .clone()
        .unwrap_or_else(losant_operator::testkit::profile_dir)
        .join("losant-operator");
    OperatorProcess::builder(&args.namespace)
        .binary(binary)
        .args(["--sync-strategy", "per-application"])
        .args([
            "--resync-interval".to_owned(),
            format!("{}s", args.resync_seconds),
        ])
        .args([
            "--losant-rate-limit".to_owned(),
            args.rate_limit.to_string(),
        ])
        .args([
            "--metrics-addr".to_owned(),
            format!("127.0.0.1:{metrics_port}"),
        ])
        .args(["--log-level", "warn"])
        .log_path(args.log_dir.join("operator.log"))
        .start()
}

/// Waits until the operator reports every Integration Synced.
async fn await_synced(
    args: &SoakArgs,
    emulator: &SoakEmulator,
    metrics_port: u16,
    operator: &mut OperatorProcess,
) -> anyhow::Result<()> {
    let observer = Observer::new(emulator.process(), metrics_port);
    let deadline = Instant::now() + Duration::from_secs(args.converge_timeout_seconds);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if !operator.is_running() {
            bail!("the operator exited; see {}", operator.log_path().display());
        }
        let text = observer.metrics_text().await.unwrap_or_default();
        let synced = sample(
            &text,
            "losant_operator_objects{kind=\"Integration\",reason=\"Synced\"}",
        );
        if synced as usize >= args.size {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("only {synced} of {} Integrations Synced in time", args.size);
        }
    }
}

/// The output of `uptime` (load averages), or why there is none.
pub fn uptime() -> String {
    std::process::Command::new("uptime")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .unwrap_or_else(|e| format!("(uptime: {e})"))
}
