//! The processes a run starts, through the test kit's builders with the benchmark's settings
//! (the emulator, the operator), and the control plane's own, found through the kit.

use std::path::PathBuf;
use std::time::Instant;

use losant_operator::testkit::{
    Component, ControlPlane, EmulatorProcess, OperatorProcess, profile_dir,
};

use crate::RunArgs;
use crate::fleet::OPERATOR_TOKEN;
use crate::observe::BENCH_TOKEN;

/// The binary `name` in `--bin-dir`, or beside the running benchmark.
fn binary(args: &RunArgs, name: &str) -> PathBuf {
    args.bin_dir.clone().unwrap_or_else(profile_dir).join(name)
}

/// Starts the emulator serving `apps` with the run's latency and rate limit. The benchmark's
/// token comes first, so the kit's requests (the observer's) use it, in a bucket of their own.
pub fn start_emulator(args: &RunArgs, apps: &[String]) -> anyhow::Result<EmulatorProcess> {
    let mut builder = EmulatorProcess::builder()
        .binary(binary(args, "losant-emulator"))
        .token(BENCH_TOKEN)
        .args(["--token", OPERATOR_TOKEN])
        .args(["--latency-ms".to_owned(), args.latency_ms.to_string()])
        .args(["--rate-limit".to_owned(), args.rate_limit.to_string()])
        .log_path(args.log_dir.join("emulator.log"));
    if let Some((first, others)) = apps.split_first() {
        builder = builder.application(first.as_str());
        for app in others {
            builder = builder.args(["--application", app.as_str()]);
        }
    }
    builder.start()
}

/// Which start of the operator: its log file, and whether `--restart-wrapper` applies.
#[derive(Clone, Copy)]
pub enum OperatorStart {
    /// With every object new.
    Cold,
    /// With every object present and converged.
    Restart,
}

/// Starts the operator on the run's namespace, serving metrics on `metrics_port`; returns it
/// with the moment it was started.
pub fn start_operator(
    args: &RunArgs,
    metrics_port: u16,
    start: OperatorStart,
) -> anyhow::Result<(OperatorProcess, Instant)> {
    let log_name = match start {
        OperatorStart::Cold => "operator.log",
        OperatorStart::Restart => "operator-restart.log",
    };
    let mut builder = OperatorProcess::builder(&args.namespace)
        .binary(binary(args, "losant-operator"))
        .args(["--sync-strategy", args.strategy.as_str()])
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
        .args(["--log-level", args.operator_log_level.as_str()])
        .log_path(args.log_dir.join(log_name));
    if let (Some(wrapper), OperatorStart::Restart) = (&args.restart_wrapper, start) {
        builder = builder.wrapper(wrapper);
    }
    let started = Instant::now();
    Ok((builder.start()?, started))
}

/// A loopback port free at the moment of asking.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// kube-apiserver and etcd of the control plane in $KUBECONFIG, by the pid files of
/// scripts/control-plane.sh (none when it did not start that control plane).
pub fn control_plane_pids() -> Vec<(String, u32)> {
    let Ok(control_plane) = ControlPlane::current() else {
        return Vec::new();
    };
    [Component::ApiServer, Component::Etcd]
        .into_iter()
        .filter_map(|component| {
            let pid = control_plane.pid(component)?;
            Some((component.script_name().to_owned(), pid))
        })
        .collect()
}
