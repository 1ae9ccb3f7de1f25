//! The scale benchmark: one run converges N Integrations over several Losant applications that
//! share one token, against the real local API server, the emulator and the operator as
//! processes, and measures what the operator spent. `scripts/bench.sh` drives it (fresh control
//! plane per run, both strategies, several runs) and `bench summarize` turns the runs into
//! `bench/results.json` and the table in `bench/README.md`.
//!
//! It is a benchmark, not a test: it reports figures next to their targets and fails only when
//! the system did not converge or ended up wrong (a missing or duplicated remote).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use clap::{Parser, Subcommand};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use losant_operator::crd::{Integration, LosantApplication};
use losant_operator::sync::conditions;
use losant_operator::sync::reason::{ConditionStatus, ConditionType};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The token the operator uses (all applications share it, so one rate budget).
const OPERATOR_TOKEN: &str = "bench-operator-token";
/// The benchmark's own token, for its checks: another rate bucket, kept out of the figures.
const BENCH_TOKEN: &str = "bench-observer-token";
/// Losant's largest page, which the client asks for.
const PER_PAGE: usize = 1000;

#[derive(Parser)]
#[command(about = "Scale benchmark of losant-operator (see bench/README.md)")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// One run against the control plane in $KUBECONFIG; writes its figures as JSON.
    Run(RunArgs),
    /// Aggregates run files into results (median, min, max) and prints the table.
    Summarize(SummarizeArgs),
}

#[derive(clap::Args, Clone)]
struct RunArgs {
    /// Integrations to create.
    #[arg(long)]
    size: usize,
    /// `per-application` or `per-object`.
    #[arg(long, default_value = "per-application")]
    strategy: String,
    /// Losant applications the Integrations are spread over (one shared token).
    #[arg(long, default_value_t = 10)]
    applications: usize,
    /// The operator's resync interval, in seconds.
    #[arg(long, default_value_t = 30)]
    resync_seconds: u64,
    /// Sweeps to watch in steady state.
    #[arg(long, default_value_t = 2)]
    sweeps: u32,
    /// Spec edits whose latency is measured.
    #[arg(long, default_value_t = 100)]
    edits: usize,
    /// The emulator's requests per second per token (the fleet's whole budget).
    #[arg(long, default_value_t = 50.0)]
    rate_limit: f64,
    /// The emulator's added latency per request, in milliseconds.
    #[arg(long, default_value_t = 20)]
    latency_ms: u64,
    /// Where losant-operator and losant-emulator are.
    #[arg(long, default_value = "target/release")]
    bin_dir: PathBuf,
    /// Namespace to create the objects in (must not exist).
    #[arg(long, default_value = "bench")]
    namespace: String,
    /// Give up on convergence after this many seconds.
    #[arg(long, default_value_t = 1800)]
    timeout_seconds: u64,
    /// Where to write this run's figures.
    #[arg(long)]
    out: PathBuf,
    /// Directory for the processes' logs.
    #[arg(long, default_value = "target/bench-logs")]
    log_dir: PathBuf,
    /// Delete the objects afterwards (the script instead throws the whole control plane away).
    #[arg(long)]
    cleanup: bool,
    /// Only create the objects (for profiling the operator by hand), then stop.
    #[arg(long)]
    create_only: bool,
    /// The operator's log level (`info` or `debug` show where start-up time goes).
    #[arg(long, default_value = "warn")]
    operator_log_level: String,
    /// A program that starts the restarted operator, given its path and arguments (e.g. a
    /// script that runs it under a heap profiler); its figures then describe the profiled run.
    #[arg(long)]
    restart_wrapper: Option<PathBuf>,
}

#[derive(clap::Args)]
struct SummarizeArgs {
    /// Run files (JSON) to aggregate.
    runs: Vec<PathBuf>,
    /// Where to write the aggregate.
    #[arg(long, default_value = "bench/results.json")]
    out: PathBuf,
    /// Also write the Markdown table here.
    #[arg(long)]
    table: Option<PathBuf>,
}

/// Everything one run measured.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct RunResult {
    size: usize,
    strategy: String,
    applications: usize,
    resync_seconds: u64,
    rate_limit: f64,
    latency_ms: u64,
    /// Objects created in the API server before the operator started (not a target).
    objects_created_seconds: f64,
    /// From operator start until every object is Ready and every remote exists.
    cold_start_seconds: f64,
    /// (creates + list calls needed) / rate limit.
    cold_start_floor_seconds: f64,
    /// Requests to Losant during the cold start, by kind.
    cold_start_calls: BTreeMap<String, u64>,
    /// CPU seconds each process spent during the cold start (where the time goes): the
    /// operator, the emulator, and the control plane's kube-apiserver and etcd when their pid
    /// files are found under $LOSANT_CP_DIR.
    #[serde(default)]
    cold_start_cpu_seconds: BTreeMap<String, f64>,
    /// Answers 429 received by the operator, over the whole run.
    rate_limited: u64,
    /// Sweeps observed in steady state (per-application: the operator's count; per-object: the
    /// window divided by the interval).
    steady_sweeps: f64,
    /// List calls per sweep in steady state.
    steady_lists_per_sweep: f64,
    /// Other calls per sweep in steady state.
    steady_other_calls_per_sweep: f64,
    /// ceil(integrations / page) summed over the applications.
    steady_lists_needed: u64,
    /// Status writes and Events per sweep in steady state.
    steady_status_writes_per_sweep: f64,
    steady_events_per_sweep: f64,
    /// CPU seconds the operator spent per steady-state sweep.
    steady_cpu_seconds_per_sweep: f64,
    /// From a change made in Losant until the operator reverted it.
    drift_corrected_seconds: Option<f64>,
    /// Spec edit → remote PATCH visible, seconds.
    edit_latencies: Vec<f64>,
    edit_p50_seconds: f64,
    edit_p99_seconds: f64,
    /// Operator RSS after convergence and after a restart with every object present.
    rss_converged_mib: f64,
    rss_restarted_mib: f64,
    /// Of that: heap and other anonymous memory, and mapped files (the binary itself).
    #[serde(default)]
    rss_restarted_anonymous_mib: f64,
    #[serde(default)]
    rss_restarted_file_mib: f64,
    /// The heap as the allocator sees it (the operator's `heap_bytes` metric): live
    /// allocations, and freed memory it still holds.
    #[serde(default)]
    heap_in_use_mib: f64,
    #[serde(default)]
    heap_free_mib: f64,
    peak_rss_mib: f64,
    /// Restart with N objects present: process start → /readyz 200.
    startup_seconds: f64,
    /// Every object Ready, each remote present exactly once.
    verified: bool,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Run(args) => {
            let runtime = tokio::runtime::Runtime::new()?;
            let result = runtime.block_on(run(args.clone()))?;
            if let Some(parent) = args.out.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&args.out, serde_json::to_string_pretty(&result)?)?;
            print_run(&result);
            if !result.verified {
                bail!("the run did not end in the expected state");
            }
            Ok(())
        }
        Cmd::Summarize(args) => summarize(&args),
    }
}

// ---------------------------------------------------------------------------------------------
// Processes

struct Process {
    child: Child,
    name: &'static str,
}

impl Process {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn terminate(&mut self) {
        // SIGTERM first (the operator shuts down gracefully), then make sure.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        eprintln!("bench: {} did not stop on SIGTERM; killed", self.name);
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// kube-apiserver and etcd of the control plane scripts/control-plane.sh started, by the pid
/// files in $LOSANT_CP_DIR (empty when there are none).
fn control_plane_pids() -> Vec<(String, u32)> {
    let Ok(dir) = std::env::var("LOSANT_CP_DIR") else {
        return Vec::new();
    };
    ["apiserver", "etcd"]
        .into_iter()
        .filter_map(|name| {
            let pid = std::fs::read_to_string(Path::new(&dir).join(format!("{name}.pid")))
                .ok()?
                .trim()
                .parse()
                .ok()?;
            Some((name.to_owned(), pid))
        })
        .collect()
}

fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

fn start_emulator(args: &RunArgs, apps: &[String]) -> anyhow::Result<(Process, String)> {
    let mut command = Command::new(args.bin_dir.join("losant-emulator"));
    command.args([
        "--listen",
        "127.0.0.1:0",
        "--token",
        OPERATOR_TOKEN,
        "--token",
        BENCH_TOKEN,
        "--latency-ms",
        &args.latency_ms.to_string(),
        "--rate-limit",
        &args.rate_limit.to_string(),
    ]);
    for app in apps {
        command.args(["--application", app]);
    }
    let log = std::fs::File::create(args.log_dir.join("emulator.log"))?;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .context("starting losant-emulator (build it with cargo build --release --bins)")?;
    let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let address = line
        .trim()
        .rsplit(' ')
        .next()
        .ok_or_else(|| anyhow!("unexpected emulator output {line:?}"))?
        .to_owned();
    let url = if address.starts_with("http") {
        address
    } else {
        format!("http://{address}")
    };
    Ok((
        Process {
            child,
            name: "losant-emulator",
        },
        url,
    ))
}

fn start_operator(
    args: &RunArgs,
    metrics_port: u16,
    log_name: &str,
) -> anyhow::Result<(Process, Instant)> {
    let log = std::fs::File::create(args.log_dir.join(log_name))?;
    let started = Instant::now();
    let binary = args.bin_dir.join("losant-operator");
    let mut command = match (&args.restart_wrapper, log_name) {
        (Some(wrapper), "operator-restart.log") => {
            let mut command = Command::new(wrapper);
            command.arg(&binary);
            command
        }
        _ => Command::new(&binary),
    };
    let child = command
        .args([
            "run",
            "--namespace",
            &args.namespace,
            "--sync-strategy",
            &args.strategy,
            "--resync-interval",
            &format!("{}s", args.resync_seconds),
            "--losant-rate-limit",
            &args.rate_limit.to_string(),
            "--allowed-http-hosts",
            "127.0.0.1",
            "--metrics-addr",
            &format!("127.0.0.1:{metrics_port}"),
            "--log-format",
            "text",
            "--log-level",
            &args.operator_log_level,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log))
        .spawn()
        .context("starting losant-operator")?;
    Ok((
        Process {
            child,
            name: "losant-operator",
        },
        started,
    ))
}

/// (resident, peak resident) in MiB, from /proc.
fn rss_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kib| kib.parse::<f64>().ok())
            .map_or(0.0, |kib| kib / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// CPU seconds (user + system) the process has used.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) end with ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let hz = 100.0; // USER_HZ on Linux
    (ticks(11) + ticks(12)) / hz
}

// ---------------------------------------------------------------------------------------------
// Reading the operator and the emulator

struct Observer {
    http: reqwest::Client,
    emulator: String,
    metrics: String,
}

impl Observer {
    async fn emulator_stats(&self) -> anyhow::Result<Value> {
        Ok(self
            .http
            .get(format!("{}/_emulator/stats", self.emulator))
            .send()
            .await?
            .json()
            .await?)
    }

    /// Requests by (method, status) plus `429`, from the emulator's stats.
    async fn calls(&self) -> anyhow::Result<Calls> {
        let stats = self.emulator_stats().await?;
        let mut calls = Calls::default();
        for entry in stats["requests"].as_array().into_iter().flatten() {
            let method = entry["method"].as_str().unwrap_or_default();
            let route = entry["route"].as_str().unwrap_or_default();
            let status = entry["status"].as_u64().unwrap_or_default();
            let count = entry["count"].as_u64().unwrap_or_default();
            if route.starts_with("/_emulator") {
                continue;
            }
            let kind = match (method, route.ends_with("/integrations")) {
                ("GET", true) => "list",
                ("GET", false) => "get",
                ("POST", _) => "create",
                ("PATCH", _) => "patch",
                ("DELETE", _) => "delete",
                _ => "other",
            };
            *calls.by_kind.entry(kind.to_owned()).or_default() += count;
            if status == 429 {
                calls.rate_limited += count;
            }
            if kind == "create" && status == 201 {
                calls.created += count;
            }
        }
        Ok(calls)
    }

    async fn metrics_text(&self) -> anyhow::Result<String> {
        Ok(self
            .http
            .get(format!("{}/metrics", self.metrics))
            .send()
            .await?
            .text()
            .await?)
    }

    async fn ready(&self) -> bool {
        matches!(
            self.http.get(format!("{}/readyz", self.metrics)).send().await,
            Ok(response) if response.status().is_success()
        )
    }

    /// The integration `id` of `app`, read with the benchmark's own token.
    async fn remote(&self, app: &str, id: &str) -> anyhow::Result<Value> {
        Ok(self
            .http
            .get(format!(
                "{}/applications/{app}/integrations/{id}",
                self.emulator
            ))
            .bearer_auth(BENCH_TOKEN)
            .send()
            .await?
            .json()
            .await?)
    }

    async fn patch_remote(&self, app: &str, id: &str, body: &Value) -> anyhow::Result<()> {
        let response = self
            .http
            .patch(format!(
                "{}/applications/{app}/integrations/{id}",
                self.emulator
            ))
            .bearer_auth(BENCH_TOKEN)
            .json(body)
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("PATCH answered {}", response.status());
        }
        Ok(())
    }

    /// Every remote integration of `app` (all pages).
    async fn remotes(&self, app: &str) -> anyhow::Result<Vec<Value>> {
        let mut all = Vec::new();
        for page in 0.. {
            let body: Value = self
                .http
                .get(format!(
                    "{}/applications/{app}/integrations?perPage={PER_PAGE}&page={page}&sortField=id&_links=false&_embedded=false&_actions=false",
                    self.emulator
                ))
                .bearer_auth(BENCH_TOKEN)
                .send()
                .await?
                .json()
                .await?;
            let items = body["items"].as_array().cloned().unwrap_or_default();
            let done = items.len() < PER_PAGE;
            all.extend(items);
            if done {
                break;
            }
        }
        Ok(all)
    }
}

#[derive(Clone, Debug, Default)]
struct Calls {
    by_kind: BTreeMap<String, u64>,
    rate_limited: u64,
    created: u64,
}

impl Calls {
    fn minus(&self, earlier: &Calls) -> Calls {
        let mut by_kind = BTreeMap::new();
        for (kind, count) in &self.by_kind {
            let before = earlier.by_kind.get(kind).copied().unwrap_or(0);
            by_kind.insert(kind.clone(), count.saturating_sub(before));
        }
        Calls {
            by_kind,
            rate_limited: self.rate_limited.saturating_sub(earlier.rate_limited),
            created: self.created.saturating_sub(earlier.created),
        }
    }

    fn kind(&self, kind: &str) -> u64 {
        self.by_kind.get(kind).copied().unwrap_or(0)
    }

    fn total(&self) -> u64 {
        self.by_kind.values().sum()
    }
}

/// The value of a sample in OpenMetrics text (`name{labels} value`); 0 when absent.
fn sample(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find(|line| {
            line.strip_prefix(name_and_labels)
                .is_some_and(|rest| rest.starts_with(' '))
        })
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

// ---------------------------------------------------------------------------------------------
// The run

fn application_ids(count: usize) -> Vec<String> {
    (0..count)
        .map(|i| format!("{:024x}", 0xbe_0000 + i))
        .collect()
}

fn integration_name(index: usize) -> String {
    format!("int-{index:05}")
}

fn integration(index: usize, applications: usize, topic: &str) -> anyhow::Result<Integration> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "losant.io/v1alpha1",
        "kind": "Integration",
        "metadata": {"name": integration_name(index)},
        "spec": {
            "applicationRef": {"name": format!("app-{}", index % applications)},
            "integrationType": "mqtt",
            "topics": [topic],
            "mqttConfig": {
                "host": format!("broker-{index}.example.com"),
                "port": 8883,
                "protocol": "mqtts",
                "clientId": format!("losant-{index}"),
                "username": "losant",
                "passwordSecretRef": {"name": "mqtt-credentials", "key": "password"}
            }
        }
    }))?)
}

async fn run(args: RunArgs) -> anyhow::Result<RunResult> {
    std::fs::create_dir_all(&args.log_dir)?;
    let kube = kube::Client::try_default()
        .await
        .context("no Kubernetes API server (set KUBECONFIG; scripts/bench.sh starts one)")?;
    let ns = args.namespace.as_str();
    let apps = application_ids(args.applications);
    let mut result = RunResult {
        size: args.size,
        strategy: args.strategy.clone(),
        applications: args.applications,
        resync_seconds: args.resync_seconds,
        rate_limit: args.rate_limit,
        latency_ms: args.latency_ms,
        ..RunResult::default()
    };

    install_crds(&args.bin_dir)?;
    let namespaces: Api<Namespace> = Api::all(kube.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}}))?,
        )
        .await
        .context("creating the namespace (it must not exist)")?;
    let (mut emulator, emulator_url) = start_emulator(&args, &apps)?;
    let metrics_port = free_port()?;
    let observer = Observer {
        http: reqwest::Client::new(),
        emulator: emulator_url.clone(),
        metrics: format!("http://127.0.0.1:{metrics_port}"),
    };

    // Fixtures: the token, the MQTT password, the applications.
    let secrets: Api<Secret> = Api::namespaced(kube.clone(), ns);
    for (name, key, value) in [
        ("losant-token", "token", OPERATOR_TOKEN),
        ("mqtt-credentials", "password", "bench-mqtt-password"),
    ] {
        secrets
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({
                    "metadata": {"name": name},
                    "stringData": {key: value}
                }))?,
            )
            .await?;
    }
    let applications: Api<LosantApplication> = Api::namespaced(kube.clone(), ns);
    for (i, app) in apps.iter().enumerate() {
        let object: LosantApplication = serde_json::from_value(json!({
            "apiVersion": "losant.io/v1alpha1",
            "kind": "LosantApplication",
            "metadata": {"name": format!("app-{i}")},
            "spec": {
                "applicationId": app,
                "apiUrl": emulator_url,
                "tokenSecretRef": {"name": "losant-token", "key": "token"}
            }
        }))?;
        applications.create(&PostParams::default(), &object).await?;
    }

    // The Integrations, all new, before the operator starts.
    let integrations: Api<Integration> = Api::namespaced(kube.clone(), ns);
    let created = Instant::now();
    let objects: Vec<Integration> = (0..args.size)
        .map(|i| integration(i, args.applications, "bench/initial"))
        .collect::<anyhow::Result<_>>()?;
    let api = Arc::new(integrations.clone());
    let failures: Vec<String> = futures::stream::iter(objects)
        .map(|object| {
            let api = Arc::clone(&api);
            async move {
                api.create(&PostParams::default(), &object)
                    .await
                    .err()
                    .map(|e| e.to_string())
            }
        })
        .buffer_unordered(32)
        .filter_map(|failure| async move { failure })
        .collect()
        .await;
    if let Some(first) = failures.first() {
        bail!("{} creates failed, first: {first}", failures.len());
    }
    result.objects_created_seconds = created.elapsed().as_secs_f64();
    eprintln!(
        "bench: {} Integrations created in {:.1}s; starting the operator ({})",
        args.size, result.objects_created_seconds, args.strategy
    );
    if args.create_only {
        emulator.terminate();
        return Ok(result);
    }

    // Cold start.
    let calls_before = observer.calls().await?;
    let control_plane = control_plane_pids();
    let cpu_before: Vec<(String, u32, f64)> = control_plane
        .iter()
        .chain(std::iter::once(&("emulator".to_owned(), emulator.pid())))
        .map(|(name, pid)| (name.clone(), *pid, cpu_seconds(*pid)))
        .collect();
    let (mut operator, started) = start_operator(&args, metrics_port, "operator.log")?;
    let deadline = started + Duration::from_secs(args.timeout_seconds);
    let mut last_report = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if let Ok(Some(status)) = operator.child.try_wait() {
            bail!("the operator exited during the cold start ({status}); see its log");
        }
        let calls = observer.calls().await?.minus(&calls_before);
        let synced = match observer.metrics_text().await {
            Ok(text) => sample(
                &text,
                "losant_operator_objects{kind=\"Integration\",reason=\"Synced\"}",
            ),
            Err(_) => 0.0,
        };
        if calls.created >= args.size as u64 && synced as usize >= args.size {
            result.cold_start_seconds = started.elapsed().as_secs_f64();
            result.cold_start_calls = calls.by_kind.clone();
            for (name, pid, before) in &cpu_before {
                result
                    .cold_start_cpu_seconds
                    .insert(name.clone(), cpu_seconds(*pid) - before);
            }
            result
                .cold_start_cpu_seconds
                .insert("operator".into(), cpu_seconds(operator.pid()));
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
            eprintln!(
                "bench: {:.0}s: {} created remotely, {synced} Synced, {} calls",
                started.elapsed().as_secs_f64(),
                calls.created,
                calls.total()
            );
            last_report = Instant::now();
        }
    }
    let lists_needed: u64 = (0..args.applications)
        .map(|a| {
            let in_app = (args.size + args.applications - 1 - a) / args.applications;
            in_app.div_ceil(PER_PAGE).max(1) as u64
        })
        .sum();
    result.steady_lists_needed = lists_needed;
    result.cold_start_floor_seconds = (args.size as u64 + lists_needed) as f64 / args.rate_limit;
    (result.rss_converged_mib, _) = rss_mib(operator.pid());
    eprintln!(
        "bench: converged in {:.1}s (floor {:.1}s); RSS {:.1} MiB; CPU seconds meanwhile: {:?}",
        result.cold_start_seconds,
        result.cold_start_floor_seconds,
        result.rss_converged_mib,
        result.cold_start_cpu_seconds
    );

    // Verify: every object Ready and recorded, each remote present exactly once.
    let ids = verify(&integrations, &observer, &apps, args.size, &mut result).await?;

    // Steady state: let the start-up burst's follow-ups and the first sweep after it (which
    // compares every object whose remote the list shows differently from the write's answer)
    // pass, then watch whole sweeps.
    tokio::time::sleep(Duration::from_secs(args.resync_seconds + 5)).await;
    steady_state(&args, &observer, &operator, &mut result).await?;

    // Drift made in Losant is reverted.
    if let Some((name, (app, id))) = ids.iter().next() {
        let changed = Instant::now();
        observer
            .patch_remote(app, id, &json!({"topics": ["drifted/by/hand"]}))
            .await?;
        let limit = Duration::from_secs(args.resync_seconds * 3 + 30);
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let remote = observer.remote(app, id).await?;
            if remote["topics"] == json!(["bench/initial"]) {
                result.drift_corrected_seconds = Some(changed.elapsed().as_secs_f64());
                break;
            }
            if changed.elapsed() > limit {
                eprintln!("bench: drift on {name} not corrected within {limit:?}");
                break;
            }
        }
    }

    // Edits: one at a time, apply → the remote shows it.
    edit_latencies(&args, &integrations, &observer, &ids, &mut result).await?;

    // Restart with every object present: time to ready, and memory once it has compared them.
    operator.terminate();
    let (restarted, restarted_at) = start_operator(&args, metrics_port, "operator-restart.log")?;
    operator = restarted;
    loop {
        if observer.ready().await {
            result.startup_seconds = restarted_at.elapsed().as_secs_f64();
            break;
        }
        if restarted_at.elapsed() > Duration::from_secs(300) {
            bail!("the restarted operator was not ready within 300s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Wait until it reconciled everything once (its start-up pass), then read its memory.
    let settle = Instant::now();
    loop {
        let text = observer.metrics_text().await.unwrap_or_default();
        let reconciled = sample(
            &text,
            "losant_operator_reconciles_total{kind=\"Integration\",result=\"ok\"}",
        );
        if reconciled as usize >= args.size || settle.elapsed() > Duration::from_secs(600) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss, peak) = rss_mib(operator.pid());
    result.rss_restarted_mib = rss;
    result.peak_rss_mib = peak;
    let rollup = std::fs::read_to_string(format!("/proc/{}/smaps_rollup", operator.pid()))
        .unwrap_or_default();
    let field = |name: &str| {
        rollup
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kib| kib.parse::<f64>().ok())
            .map_or(0.0, |kib| kib / 1024.0)
    };
    result.rss_restarted_anonymous_mib = field("Anonymous:");
    result.rss_restarted_file_mib = (field("Rss:") - field("Anonymous:")).max(0.0);
    let text = observer.metrics_text().await.unwrap_or_default();
    let mib = |state: &str| {
        sample(
            &text,
            &format!("losant_operator_heap_bytes{{state=\"{state}\"}}"),
        ) / (1024.0 * 1024.0)
    };
    result.heap_in_use_mib = mib("in_use");
    result.heap_free_mib = mib("free");
    let all = observer.calls().await?;
    result.rate_limited = all.rate_limited;
    operator.terminate();
    emulator.terminate();

    if args.cleanup {
        cleanup(&kube, ns).await;
    }
    Ok(result)
}

fn install_crds(bin_dir: &Path) -> anyhow::Result<()> {
    let crds = Command::new(bin_dir.join("losant-operator"))
        .arg("crds")
        .output()?;
    if !crds.status.success() {
        bail!("losant-operator crds failed");
    }
    let mut apply = Command::new("kubectl")
        .args(["apply", "--server-side", "--force-conflicts", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()?;
    {
        use std::io::Write;
        let mut stdin = apply.stdin.take().ok_or_else(|| anyhow!("no stdin"))?;
        stdin.write_all(&crds.stdout)?;
    }
    if !apply.wait()?.success() {
        bail!("kubectl apply of the CRDs failed");
    }
    let status = Command::new("kubectl")
        .args([
            "wait",
            "--for=condition=Established",
            "crd/integrations.losant.io",
            "crd/losantapplications.losant.io",
            "--timeout=60s",
        ])
        .stdout(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("the CRDs were not established");
    }
    Ok(())
}

/// Checks the end state; returns each object's (application, remote id) by name.
async fn verify(
    integrations: &Api<Integration>,
    observer: &Observer,
    apps: &[String],
    size: usize,
    result: &mut RunResult,
) -> anyhow::Result<BTreeMap<String, (String, String)>> {
    let mut ids = BTreeMap::new();
    let mut not_ready = 0;
    let mut params = ListParams::default().limit(500);
    loop {
        let page = integrations.list(&params).await?;
        for object in &page.items {
            let status = object.status.clone().unwrap_or_default();
            let ready = conditions::has(
                &status.conditions,
                ConditionType::Ready,
                ConditionStatus::True,
            );
            match (ready, status.application_id, status.integration_id) {
                (true, Some(app), Some(id)) => {
                    ids.insert(
                        object.metadata.name.clone().unwrap_or_default(),
                        (app.to_string(), id),
                    );
                }
                _ => not_ready += 1,
            }
        }
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => break,
        }
    }
    let mut remote_ids = BTreeSet::new();
    let mut remote_count = 0;
    for app in apps {
        for remote in observer.remotes(app).await? {
            remote_count += 1;
            remote_ids.insert(remote["id"].as_str().unwrap_or_default().to_owned());
        }
    }
    let recorded: BTreeSet<&String> = ids.values().map(|(_, id)| id).collect();
    let all_present = recorded.iter().all(|id| remote_ids.contains(*id));
    result.verified = not_ready == 0 && ids.len() == size && remote_count == size && all_present;
    if !result.verified {
        eprintln!(
            "bench: NOT VERIFIED: {not_ready} not Ready, {} recorded, {remote_count} remotes, all recorded present: {all_present}",
            ids.len()
        );
    }
    Ok(ids)
}

async fn steady_state(
    args: &RunArgs,
    observer: &Observer,
    operator: &Process,
    result: &mut RunResult,
) -> anyhow::Result<()> {
    let read = |text: &str| {
        (
            sample(text, "losant_operator_sweeps_total{result=\"ok\"}")
                + sample(text, "losant_operator_sweeps_total{result=\"partial\"}"),
            sample(text, "losant_operator_status_writes_total"),
            sample(text, "losant_operator_events_total"),
        )
    };
    let window = Duration::from_secs(args.resync_seconds * u64::from(args.sweeps));
    let before_calls = observer.calls().await?;
    let (sweeps_before, status_before, events_before) = read(&observer.metrics_text().await?);
    let cpu_before = cpu_seconds(operator.pid());
    let start = Instant::now();
    tokio::time::sleep(window).await;
    let elapsed = start.elapsed();
    let calls = observer.calls().await?.minus(&before_calls);
    let (sweeps_after, status_after, events_after) = read(&observer.metrics_text().await?);
    let cpu = cpu_seconds(operator.pid()) - cpu_before;
    let sweeps = if args.strategy == "per-application" {
        sweeps_after - sweeps_before
    } else {
        elapsed.as_secs_f64() / args.resync_seconds as f64
    };
    let per = |value: f64| if sweeps > 0.0 { value / sweeps } else { value };
    result.steady_sweeps = sweeps;
    result.steady_lists_per_sweep = per(calls.kind("list") as f64);
    result.steady_other_calls_per_sweep = per((calls.total() - calls.kind("list")) as f64);
    result.steady_status_writes_per_sweep = per(status_after - status_before);
    result.steady_events_per_sweep = per(events_after - events_before);
    result.steady_cpu_seconds_per_sweep = per(cpu);
    Ok(())
}

async fn edit_latencies(
    args: &RunArgs,
    integrations: &Api<Integration>,
    observer: &Observer,
    ids: &BTreeMap<String, (String, String)>,
    result: &mut RunResult,
) -> anyhow::Result<()> {
    let names: Vec<&String> = ids.keys().collect();
    let count = args.edits.min(names.len());
    if count == 0 {
        return Ok(());
    }
    // Edits arrive at 10 per second, spread over the fleet (deterministic). Each one's latency
    // is from just before its patch was sent to the `lastUpdated` Losant stamps on the PATCH
    // that brought the new value (same machine, same clock), so the benchmark's own polling
    // does not add to it.
    let step = (names.len() / count).max(1);
    let mut pending: BTreeMap<String, (String, String, String, jiff::Timestamp)> = BTreeMap::new();
    for edit in 0..count {
        let name = names[(edit * step) % names.len()];
        let (app, id) = &ids[name];
        let topic = format!("bench/edited/{edit}");
        let applied = jiff::Timestamp::now();
        integrations
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"topics": [topic]}})),
            )
            .await?;
        pending.insert(id.clone(), (name.clone(), app.clone(), topic, applied));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(args.resync_seconds * 4 + 300);
    while !pending.is_empty() && Instant::now() < deadline {
        let apps: BTreeSet<String> = pending.values().map(|(_, app, _, _)| app.clone()).collect();
        for app in apps {
            for remote in observer.remotes(&app).await? {
                let id = remote["id"].as_str().unwrap_or_default().to_owned();
                let Some((_, _, topic, applied)) = pending.get(&id) else {
                    continue;
                };
                if remote["topics"] != json!([topic]) {
                    continue;
                }
                let updated: Option<jiff::Timestamp> =
                    remote["lastUpdated"].as_str().and_then(|t| t.parse().ok());
                if let Some(updated) = updated {
                    let latency = updated.duration_since(*applied).as_secs_f64().max(0.0);
                    result.edit_latencies.push(latency);
                }
                pending.remove(&id);
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for (name, _, _, applied) in pending.values() {
        eprintln!("bench: the edit of {name} never reached Losant");
        result.edit_latencies.push(
            jiff::Timestamp::now()
                .duration_since(*applied)
                .as_secs_f64(),
        );
    }
    result.edit_p50_seconds = percentile(&result.edit_latencies, 0.50);
    result.edit_p99_seconds = percentile(&result.edit_latencies, 0.99);
    Ok(())
}

fn percentile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (q * (sorted.len() as f64)).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn cleanup(kube: &kube::Client, ns: &str) {
    let integrations: Api<Integration> = Api::namespaced(kube.clone(), ns);
    let applications: Api<LosantApplication> = Api::namespaced(kube.clone(), ns);
    let namespaces: Api<Namespace> = Api::all(kube.clone());
    let _ = namespaces.delete(ns, &Default::default()).await;
    let strip = Patch::Merge(json!({"metadata": {"finalizers": null}}));
    if let Ok(list) = integrations.list(&ListParams::default()).await {
        for object in list.items {
            let name = object.metadata.name.unwrap_or_default();
            let _ = integrations
                .patch(&name, &PatchParams::default(), &strip)
                .await;
        }
    }
    if let Ok(list) = applications.list(&ListParams::default()).await {
        for object in list.items {
            let name = object.metadata.name.unwrap_or_default();
            let _ = applications
                .patch(&name, &PatchParams::default(), &strip)
                .await;
        }
    }
    let secrets: Api<Secret> = Api::namespaced(kube.clone(), ns);
    if let Ok(list) = secrets.list(&ListParams::default()).await {
        for object in list.items {
            let name = object.metadata.name.unwrap_or_default();
            let _ = secrets.patch(&name, &PatchParams::default(), &strip).await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reporting

fn print_run(r: &RunResult) {
    println!(
        "{} × {} ({} apps): cold start {:.1}s (floor {:.1}s, ratio {:.2}), 429s {}, lists/sweep {:.1} (needed {}), other calls/sweep {:.1}, status writes/sweep {:.1}, events/sweep {:.1}, CPU s/sweep {:.2}, drift fixed in {}, edits p50 {:.2}s p99 {:.2}s, RSS {:.1} MiB converged / {:.1} MiB restarted (peak {:.1}), startup {:.2}s, verified {}",
        r.strategy,
        r.size,
        r.applications,
        r.cold_start_seconds,
        r.cold_start_floor_seconds,
        r.cold_start_seconds / r.cold_start_floor_seconds.max(f64::MIN_POSITIVE),
        r.rate_limited,
        r.steady_lists_per_sweep,
        r.steady_lists_needed,
        r.steady_other_calls_per_sweep,
        r.steady_status_writes_per_sweep,
        r.steady_events_per_sweep,
        r.steady_cpu_seconds_per_sweep,
        r.drift_corrected_seconds
            .map_or("never".to_owned(), |s| format!("{s:.1}s")),
        r.edit_p50_seconds,
        r.edit_p99_seconds,
        r.rss_converged_mib,
        r.rss_restarted_mib,
        r.peak_rss_mib,
        r.startup_seconds,
        r.verified
    );
}

/// Median, min and max of one figure over runs.
#[derive(Debug, Serialize)]
struct Spread {
    median: f64,
    min: f64,
    max: f64,
}

fn spread(values: &[f64]) -> Spread {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let median = if sorted.is_empty() {
        0.0
    } else if sorted.len() % 2 == 1 {
        sorted[sorted.len() / 2]
    } else {
        (sorted[sorted.len() / 2 - 1] + sorted[sorted.len() / 2]) / 2.0
    };
    Spread {
        median,
        min: sorted.first().copied().unwrap_or(0.0),
        max: sorted.last().copied().unwrap_or(0.0),
    }
}

/// One figure's aggregate with its target.
#[derive(Debug, Serialize)]
struct Figure {
    name: &'static str,
    unit: &'static str,
    #[serde(flatten)]
    spread: Spread,
    /// The target, when the figure has one.
    target: Option<f64>,
    /// `median / target` (≤ 1 meets a "no more than" target).
    ratio: Option<f64>,
    met: Option<bool>,
}

fn figure(name: &'static str, unit: &'static str, values: &[f64], target: Option<f64>) -> Figure {
    let spread = spread(values);
    let ratio = target.map(|t| {
        if t == 0.0 {
            if spread.median == 0.0 {
                0.0
            } else {
                f64::INFINITY
            }
        } else {
            spread.median / t
        }
    });
    let met = target.map(|t| spread.max <= t);
    Figure {
        name,
        unit,
        spread,
        target,
        ratio,
        met,
    }
}

fn summarize(args: &SummarizeArgs) -> anyhow::Result<()> {
    let mut runs: Vec<RunResult> = Vec::new();
    for path in &args.runs {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        runs.push(serde_json::from_str(&text)?);
    }
    let mut groups: BTreeMap<(usize, String), Vec<&RunResult>> = BTreeMap::new();
    for run in &runs {
        groups
            .entry((run.size, run.strategy.clone()))
            .or_default()
            .push(run);
    }
    let mut out = Vec::new();
    let mut table = String::from(
        "| size | strategy | figure | median | min | max | target | median/target | met (max) |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for ((size, strategy), group) in &groups {
        let values = |f: &dyn Fn(&RunResult) -> f64| group.iter().map(|r| f(r)).collect::<Vec<_>>();
        let floor = spread(&values(&|r| r.cold_start_floor_seconds)).median;
        let lists_needed = group.first().map_or(0, |r| r.steady_lists_needed) as f64;
        let big = *size >= 10_000;
        let mut figures = vec![
            figure(
                "cold start",
                "s",
                &values(&|r| r.cold_start_seconds),
                Some(1.2 * floor),
            ),
            figure(
                "429s received",
                "",
                &values(&|r| r.rate_limited as f64),
                Some(0.0),
            ),
            figure(
                "list calls per sweep",
                "",
                &values(&|r| r.steady_lists_per_sweep),
                Some(lists_needed),
            ),
            figure(
                "other calls per sweep",
                "",
                &values(&|r| r.steady_other_calls_per_sweep),
                None,
            ),
            figure(
                "status writes per sweep",
                "",
                &values(&|r| r.steady_status_writes_per_sweep),
                Some(0.0),
            ),
            figure(
                "events per sweep",
                "",
                &values(&|r| r.steady_events_per_sweep),
                Some(0.0),
            ),
            figure(
                "CPU per idle sweep",
                "s",
                &values(&|r| r.steady_cpu_seconds_per_sweep),
                None,
            ),
            figure(
                "drift corrected after",
                "s",
                &values(&|r| r.drift_corrected_seconds.unwrap_or(f64::INFINITY)),
                Some(group.first().map_or(0, |r| r.resync_seconds) as f64),
            ),
            figure(
                "edit latency p50",
                "s",
                &values(&|r| r.edit_p50_seconds),
                Some(2.0),
            ),
            figure(
                "edit latency p99",
                "s",
                &values(&|r| r.edit_p99_seconds),
                Some(5.0),
            ),
            figure(
                "RSS (restarted, all objects compared)",
                "MiB",
                &values(&|r| r.rss_restarted_mib),
                big.then_some(64.0),
            ),
            figure(
                "KiB per Integration (RSS / size)",
                "KiB",
                &values(&|r| r.rss_restarted_mib * 1024.0 / r.size.max(1) as f64),
                None,
            ),
            figure(
                "RSS: anonymous (heap)",
                "MiB",
                &values(&|r| r.rss_restarted_anonymous_mib),
                None,
            ),
            figure(
                "RSS: mapped files (binary)",
                "MiB",
                &values(&|r| r.rss_restarted_file_mib),
                None,
            ),
            figure(
                "heap: live allocations",
                "MiB",
                &values(&|r| r.heap_in_use_mib),
                None,
            ),
            figure(
                "heap: freed, held by the allocator",
                "MiB",
                &values(&|r| r.heap_free_mib),
                None,
            ),
            figure("peak RSS", "MiB", &values(&|r| r.peak_rss_mib), None),
            figure(
                "cold start CPU: operator",
                "s",
                &values(&|r| {
                    r.cold_start_cpu_seconds
                        .get("operator")
                        .copied()
                        .unwrap_or(0.0)
                }),
                None,
            ),
            figure(
                "cold start CPU: kube-apiserver",
                "s",
                &values(&|r| {
                    r.cold_start_cpu_seconds
                        .get("apiserver")
                        .copied()
                        .unwrap_or(0.0)
                }),
                None,
            ),
            figure(
                "cold start CPU: etcd",
                "s",
                &values(&|r| r.cold_start_cpu_seconds.get("etcd").copied().unwrap_or(0.0)),
                None,
            ),
            figure(
                "cold start CPU: emulator",
                "s",
                &values(&|r| {
                    r.cold_start_cpu_seconds
                        .get("emulator")
                        .copied()
                        .unwrap_or(0.0)
                }),
                None,
            ),
            figure(
                "startup to ready",
                "s",
                &values(&|r| r.startup_seconds),
                big.then_some(5.0),
            ),
        ];
        figures.retain(|f| f.spread.max.is_finite() || f.target.is_some());
        for f in &figures {
            table.push_str(&format!(
                "| {size} | {strategy} | {}{} | {:.2} | {:.2} | {:.2} | {} | {} | {} |\n",
                f.name,
                if f.unit.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", f.unit)
                },
                f.spread.median,
                f.spread.min,
                f.spread.max,
                f.target.map_or("—".into(), |t| format!("{t:.2}")),
                f.ratio.map_or("—".into(), |r| format!("{r:.2}")),
                f.met.map_or("—", |m| if m { "yes" } else { "**no**" }),
            ));
        }
        out.push(json!({
            "size": size,
            "strategy": strategy,
            "runs": group.len(),
            "verified": group.iter().all(|r| r.verified),
            "cold_start_floor_seconds": floor,
            "figures": figures,
            "raw": group,
        }));
    }
    // The two strategies side by side: calls per sweep and cold start.
    let mut comparison = Vec::new();
    let sizes: BTreeSet<usize> = groups.keys().map(|(size, _)| *size).collect();
    for size in sizes {
        let median = |strategy: &str, f: &dyn Fn(&RunResult) -> f64| {
            groups
                .get(&(size, strategy.to_owned()))
                .map(|g| spread(&g.iter().map(|r| f(r)).collect::<Vec<_>>()).median)
        };
        let lists = |r: &RunResult| r.steady_lists_per_sweep;
        let cold = |r: &RunResult| r.cold_start_seconds;
        if let (Some(a), Some(b)) = (
            median("per-application", &lists),
            median("per-object", &lists),
        ) {
            let cold_a = median("per-application", &cold).unwrap_or(0.0);
            let cold_b = median("per-object", &cold).unwrap_or(0.0);
            table.push_str(&format!(
                "\nAt {size}: per-object spends {:.0}× the list calls per sweep of per-application ({b:.0} vs {a:.1}); cold start {cold_b:.0}s vs {cold_a:.0}s.\n",
                b / a.max(f64::MIN_POSITIVE)
            ));
            comparison.push(json!({
                "size": size,
                "lists_per_sweep": {"per-application": a, "per-object": b, "ratio": b / a.max(f64::MIN_POSITIVE)},
                "cold_start_seconds": {"per-application": cold_a, "per-object": cold_b},
            }));
        }
    }
    let document = json!({
        "generated": jiff::Timestamp::now().to_string(),
        "machine": machine(),
        "groups": out,
        "comparison": comparison,
    });
    if let Some(parent) = args.out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&args.out, serde_json::to_string_pretty(&document)? + "\n")?;
    if let Some(path) = &args.table {
        std::fs::write(path, &table)?;
    }
    print!("{table}");
    Ok(())
}

fn machine() -> Value {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_default();
    json!({"cpus": cpus, "cpu_model": model})
}
