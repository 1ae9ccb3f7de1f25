//! One run, in order: the fleet, the cold start, the end-state check, steady state, drift,
//! edits, and a restart with every object present (start-up time and memory).

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use kube::Api;
use losant_operator::crd::Integration;
use losant_operator::testkit::{
    OperatorProcess, apply_crds, create_namespace, delete_namespace, local_api_server_url,
};

use crate::RunArgs;
use crate::fleet;
use crate::observe::{self, CpuSince, Observer, PER_PAGE, sample};
use crate::processes::{self, OperatorStart};
use crate::result::RunResult;
use crate::steady;
use crate::verify::verify;

/// How long the restarted operator may take to answer ready, and then to compare every object.
const READY_TIMEOUT: Duration = Duration::from_secs(300);
const COMPARED_TIMEOUT: Duration = Duration::from_secs(600);
/// How long the operator may take to shut down gracefully on SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the benchmark once against the control plane in $KUBECONFIG.
pub async fn run(args: RunArgs) -> anyhow::Result<RunResult> {
    std::fs::create_dir_all(&args.log_dir)?;
    // The kit's guard: the run creates (and with --cleanup deletes) a namespace.
    local_api_server_url()?;
    let kube = kube::Client::try_default()
        .await
        .context("no Kubernetes API server (set KUBECONFIG; scripts/bench.sh starts one)")?;
    let ns = args.namespace.as_str();
    let apps = fleet::application_ids(args.applications);
    let mut result = RunResult::of(&args);

    apply_crds()?;
    create_namespace(ns).context("the run's namespace must not exist")?;
    let emulator = processes::start_emulator(&args, &apps)?;
    let metrics_port = processes::free_port()?;
    let observer = Observer::new(&emulator, metrics_port);
    fleet::create_fixtures(ns, &apps, emulator.base_url())?;
    // The Integrations, all new, before the operator starts.
    let integrations: Api<Integration> = Api::namespaced(kube.clone(), ns);
    result.objects_created_seconds =
        fleet::create_integrations(&integrations, args.size, args.applications).await?;
    eprintln!(
        "bench: {} Integrations created in {:.1}s; starting the operator ({})",
        args.size, result.objects_created_seconds, args.strategy
    );
    if args.create_only {
        // The emulator stops as it is dropped.
        return Ok(result);
    }

    let mut operator =
        cold_start(&args, &observer, emulator.pid(), metrics_port, &mut result).await?;
    let (verified, remotes) = verify(&integrations, &observer, &apps, args.size).await?;
    result.verified = verified;

    // Let the start-up burst's follow-ups and the first sweep after it (which compares every
    // object whose remote the list shows differently from the write's answer) pass, then
    // watch whole sweeps.
    tokio::time::sleep(Duration::from_secs(args.resync_seconds + 5)).await;
    steady::steady_state(&args, &observer, running_pid(&operator)?, &mut result).await?;
    if let Some((name, remote)) = remotes.iter().next() {
        result.drift_corrected_seconds =
            steady::drift_corrected_after(&args, &observer, name, remote).await?;
    }
    steady::edit_latencies(&args, &integrations, &observer, &remotes, &mut result).await?;

    stop(&mut operator);
    let mut operator = restart(&args, &observer, metrics_port, &mut result).await?;
    result.rate_limited = observer.calls()?.rate_limited;
    stop(&mut operator);
    if args.cleanup {
        delete_namespace(ns);
    }
    Ok(result)
}

/// SIGTERM (the operator shuts down gracefully), SIGKILL after [`STOP_TIMEOUT`].
fn stop(operator: &mut OperatorProcess) {
    if operator.terminate(STOP_TIMEOUT).is_none() {
        eprintln!("bench: the operator did not stop within {STOP_TIMEOUT:?} of SIGTERM; killed");
    }
}

/// The operator's process id, which its CPU and memory are read by.
fn running_pid(operator: &OperatorProcess) -> anyhow::Result<u32> {
    operator.pid().context("the operator is not running")
}

/// Starts the operator on the new fleet and waits until every object is Synced and every
/// remote was created; records the time, the calls and the CPU that took, and the floor.
async fn cold_start(
    args: &RunArgs,
    observer: &Observer<'_>,
    emulator_pid: u32,
    metrics_port: u16,
    result: &mut RunResult,
) -> anyhow::Result<OperatorProcess> {
    let calls_before = observer.calls()?;
    let mut others = processes::control_plane_pids();
    others.push(("emulator".to_owned(), emulator_pid));
    let cpu = CpuSince::now(&others);
    let (mut operator, started) =
        processes::start_operator(args, metrics_port, OperatorStart::Cold)?;
    let deadline = started + Duration::from_secs(args.timeout_seconds);
    let mut last_report = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if !operator.is_running() {
            bail!(
                "the operator exited during the cold start; see {}",
                operator.log_path().display()
            );
        }
        let calls = observer.calls()?.minus(&calls_before);
        let synced = match observer.metrics_text().await {
            Ok(text) => sample(
                &text,
                "losant_operator_objects{kind=\"Integration\",reason=\"Synced\"}",
            ),
            // Not serving yet.
            Err(_) => 0.0,
        };
        if calls.created >= args.size as u64 && synced as usize >= args.size {
            result.cold_start_seconds = started.elapsed().as_secs_f64();
            result.cold_start_calls = calls.by_kind;
            result.cold_start_cpu_seconds = cpu.spent();
            let operator_cpu = observe::cpu_seconds(running_pid(&operator)?);
            result
                .cold_start_cpu_seconds
                .insert("operator".into(), operator_cpu);
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "no convergence within {}s: {} created, {synced} Synced",
                args.timeout_seconds,
                calls.created
            );
        }
        if last_report.elapsed() > Duration::from_secs(15) {
            let elapsed = started.elapsed().as_secs_f64();
            let (created, total) = (calls.created, calls.total());
            eprintln!(
                "bench: {elapsed:.0}s: {created} created remotely, {synced} Synced, {total} calls"
            );
            last_report = Instant::now();
        }
    }
    result.steady_lists_needed = lists_needed(args.size, args.applications);
    result.cold_start_floor_seconds =
        (args.size as u64 + result.steady_lists_needed) as f64 / args.rate_limit;
    result.rss_converged_mib = observe::memory(running_pid(&operator)?).resident;
    eprintln!(
        "bench: converged in {:.1}s (floor {:.1}s); RSS {:.1} MiB; CPU seconds meanwhile: {:?}",
        result.cold_start_seconds,
        result.cold_start_floor_seconds,
        result.rss_converged_mib,
        result.cold_start_cpu_seconds
    );
    Ok(operator)
}

/// The list calls one sweep needs: a page per `PER_PAGE` integrations of each application (at
/// least one), with `size` spread evenly over `applications`.
fn lists_needed(size: usize, applications: usize) -> u64 {
    (0..applications)
        .map(|a| {
            let in_app = (size + applications - 1 - a) / applications;
            in_app.div_ceil(PER_PAGE).max(1) as u64
        })
        .sum()
}

/// Starts the operator again with every object present: records the time to ready, and its
/// memory once it compared every object.
async fn restart(
    args: &RunArgs,
    observer: &Observer<'_>,
    metrics_port: u16,
    result: &mut RunResult,
) -> anyhow::Result<OperatorProcess> {
    let (operator, started) =
        processes::start_operator(args, metrics_port, OperatorStart::Restart)?;
    while !observer.ready().await {
        if started.elapsed() > READY_TIMEOUT {
            bail!("the restarted operator was not ready within {READY_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    result.startup_seconds = started.elapsed().as_secs_f64();
    // Its start-up pass reconciles every object once; memory is read after that.
    let settle = Instant::now();
    loop {
        // Unanswered reads as none reconciled yet.
        let text = observer.metrics_text().await.unwrap_or_default();
        let reconciled = sample(
            &text,
            "losant_operator_reconciles_total{kind=\"Integration\",result=\"ok\"}",
        );
        if reconciled as usize >= args.size || settle.elapsed() > COMPARED_TIMEOUT {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let memory = observe::memory(running_pid(&operator)?);
    result.rss_restarted_mib = memory.resident;
    result.peak_rss_mib = memory.peak_resident;
    result.rss_restarted_anonymous_mib = memory.anonymous;
    result.rss_restarted_file_mib = memory.file;
    let text = observer.metrics_text().await.unwrap_or_default();
    let heap_mib = |state: &str| {
        let name = format!("losant_operator_heap_bytes{{state=\"{state}\"}}");
        sample(&text, &name) / (1024.0 * 1024.0)
    };
    result.heap_in_use_mib = heap_mib("in_use");
    result.heap_free_mib = heap_mib("free");
    Ok(operator)
}

#[cfg(test)]
mod tests {
    use super::lists_needed;

    #[test]
    fn a_sweep_needs_a_page_per_thousand_integrations_of_each_application() {
        assert_eq!(lists_needed(20, 2), 2);
        assert_eq!(lists_needed(10_000, 10), 10);
        assert_eq!(lists_needed(10_001, 10), 11);
        // An application without Integrations is still listed.
        assert_eq!(lists_needed(3, 10), 10);
    }
}
