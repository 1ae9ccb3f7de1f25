//! The `losant-operator` command line: `run` the controllers, print the `crds`, or `export` an
//! application's integrations as manifests.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, Subcommand};
use losant_operator::controller::clients::ApiHostPolicy;
use losant_operator::controller::{self, Settings, SyncStrategy};
use losant_operator::flags::parse_duration;
use losant_operator::losant::RateLimits;
use losant_operator::ops::{self, LeaderConfig, OpsConfig, leader};
use losant_operator::telemetry::{self, LogFormat};

#[derive(Parser)]
#[command(version, about = "Manages Losant integrations from Kubernetes objects")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controllers (the default).
    Run(Box<RunArgs>),
    /// Print the CustomResourceDefinitions (YAML) to install.
    Crds,
    /// Show what the operator would do in Losant if these manifests were applied (read-only).
    Plan(Box<losant_operator::gitops::plan::PlanArgs>),
    /// Write manifests (Integrations pinned to their remotes, a LosantApplication, Secrets to
    /// fill) for the integrations an application already has in Losant. Read-only.
    Export(Box<losant_operator::gitops::export::ExportArgs>),
}

#[derive(clap::Args)]
struct RunArgs {
    /// Namespace to watch (repeatable). Default: all namespaces.
    #[arg(
        long = "namespace",
        value_name = "NS",
        env = "LOSANT_OPERATOR_NAMESPACES",
        value_delimiter = ','
    )]
    namespaces: Vec<String>,
    /// How often every object is compared with Losant when nothing changes (e.g. 60s, 5m).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    resync_interval: Duration,
    /// How often each LosantApplication's token is re-checked.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    application_recheck_interval: Duration,
    /// How long a create whose answer was lost is waited for (to show in Losant's lists) before
    /// creating again. Keep it above how far Losant's lists may lag behind creates.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    create_grace_period: Duration,
    /// API hosts LosantApplications may point at, over https (comma-separated; `*.example.com`
    /// matches subdomains). Anything else is refused before a request is sent.
    #[arg(
        long,
        env = "LOSANT_OPERATOR_ALLOWED_API_HOSTS",
        value_delimiter = ',',
        default_value = "api.losant.com"
    )]
    allowed_api_hosts: Vec<String>,
    /// Hosts also allowed over plain http (e.g. a local emulator on 127.0.0.1). Empty by default.
    #[arg(
        long,
        env = "LOSANT_OPERATOR_ALLOWED_HTTP_HOSTS",
        value_delimiter = ','
    )]
    allowed_http_hosts: Vec<String>,
    /// How the periodic comparison with Losant is paid for: `per-application` lists each
    /// application once per resync interval and compares all its Integrations with that list;
    /// `per-object` spends one name-filtered list per Integration per interval (the baseline).
    #[arg(long, value_enum, default_value = "per-application")]
    sync_strategy: SyncStrategy,
    /// Reconciles in flight per controller. Reconciles mostly wait on the Kubernetes API (the
    /// Losant API has its own limits below), so this is about Kubernetes write throughput.
    #[arg(long, default_value_t = 16)]
    concurrency: u16,
    /// Objects per page of the watches' initial lists (read from etcd, page by page). 0 lists
    /// everything at once from the API server's watch cache, as client-go's informers do:
    /// ready sooner with a large fleet, but the whole list's body is held at once while it is
    /// decoded (bench/README.md compares the two).
    #[arg(long, default_value_t = 500)]
    watch_page_size: u32,
    /// Requests per second to each Losant API URL and token.
    #[arg(long, default_value_t = 10.0)]
    losant_rate_limit: f64,
    /// Requests that may burst above the rate after a quiet period.
    #[arg(long, default_value_t = 20)]
    losant_burst: u32,
    /// How long one Losant request may take, answer included: a server that answers slowly or
    /// drips its answer is given up on after this (and retried with backoff).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    losant_request_timeout: Duration,
    /// Requests in flight to each Losant API URL and token.
    #[arg(long, default_value_t = 8)]
    losant_max_concurrent: usize,
    /// Log line format.
    #[arg(long, value_enum, default_value = "json")]
    log_format: LogFormat,
    /// Log filter when RUST_LOG is unset (e.g. info, losant_operator=debug).
    #[arg(long, default_value = "info")]
    log_level: String,
    /// Address of /metrics, /healthz and /readyz (port 0: any free port; the bound address is
    /// logged as `metrics server listening on ADDR`). An IPv6 address may be given without
    /// brackets (`fd00::1:8080`), as a pod IP substituted into `$(POD_IP):8080` is.
    #[arg(
        long,
        default_value = "0.0.0.0:8080",
        env = "LOSANT_OPERATOR_METRICS_ADDR",
        value_parser = parse_listen_addr
    )]
    metrics_addr: SocketAddr,
    /// Elect a leader among replicas with a coordination.k8s.io Lease; only the leader
    /// reconciles, the others keep warm caches and take over when it goes.
    #[arg(long)]
    leader_elect: bool,
    /// Namespace of the leader Lease (the operator's own).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    leader_election_namespace: String,
    /// How long a leader's claim lasts without renewal, as observed by the other replicas.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    lease_duration: Duration,
    /// How long a leader keeps failing to renew before it stops reconciling (and exits).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    renew_deadline: Duration,
    /// How often replicas try to acquire or renew the lease.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    retry_period: Duration,
    /// How long reconciles in flight at SIGTERM may take to finish before the process exits.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    shutdown_timeout: Duration,
}

impl Default for RunArgs {
    fn default() -> Self {
        // Same defaults as the flags, for `losant-operator` with no subcommand.
        let parsed = Cli::parse_from(["losant-operator", "run"]);
        match parsed.command {
            Some(Command::Run(args)) => *args,
            _ => unreachable!("`run` parses as Run"),
        }
    }
}

/// `IP:PORT`, `[IPv6]:PORT`, or an unbracketed IPv6 address whose last `:` starts the port.
fn parse_listen_addr(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    let invalid = || format!("{text:?} is not an address like 0.0.0.0:8080 or [::]:8080");
    let (ip, port) = text.rsplit_once(':').ok_or_else(invalid)?;
    let ip: std::net::Ipv6Addr = ip.parse().map_err(|_| invalid())?;
    let port: u16 = port.parse().map_err(|_| invalid())?;
    Ok(SocketAddr::from((ip, port)))
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Crds) => {
            print!("{}", losant_operator::crd::crds_yaml()?);
            Ok(())
        }
        Some(Command::Plan(args)) => std::process::exit(losant_operator::gitops::plan::main(*args)),
        Some(Command::Run(args)) => run(*args),
        Some(Command::Export(args)) => Ok(losant_operator::gitops::export::run(*args)?),
        None => run(RunArgs::default()),
    }
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    ops::memory::tune_allocator();
    telemetry::init(args.log_format, &args.log_level)?;
    // reqwest is built without a default rustls provider; pick ring before any client exists
    // (an error only says that one was installed already).
    rustls::crypto::ring::default_provider()
        .install_default()
        .ok();
    let limits = RateLimits {
        requests_per_second: args.losant_rate_limit,
        burst: args.losant_burst,
        max_concurrent: args.losant_max_concurrent,
    };
    limits
        .validate()
        .map_err(|reason| anyhow::anyhow!("invalid Losant limits: {reason}"))?;
    losant_operator::ops::set_watch_page_size(args.watch_page_size);
    let settings = Settings {
        resync_interval: args.resync_interval,
        application_recheck_interval: args.application_recheck_interval,
        create_grace_period: args.create_grace_period,
        concurrency: args.concurrency,
        losant_limits: limits,
        losant_request_timeout: args.losant_request_timeout,
        sync_strategy: args.sync_strategy,
        api_hosts: ApiHostPolicy {
            allowed: args.allowed_api_hosts.clone(),
            allowed_http: args.allowed_http_hosts.clone(),
        },
        ..Settings::default()
    };
    let runtime = tokio::runtime::Runtime::new()?;
    let ops_config = ops_config(&args);
    runtime.block_on(async move {
        let kube = kube::Client::try_default().await?;
        tracing::info!(namespaces = ?args.namespaces, resync = ?settings.resync_interval, "losant-operator starting");
        let started = ops::start(&kube, ops_config).await?;
        let result =
            controller::run_with(kube, args.namespaces, settings, started.operations()).await;
        // Release the lease even after a failure, unless leadership was what failed.
        let finished = started.finish().await;
        result?;
        finished?;
        tracing::info!("losant-operator stopped");
        Ok(())
    })
}

fn ops_config(args: &RunArgs) -> OpsConfig {
    OpsConfig {
        metrics_addr: Some(args.metrics_addr),
        leader: args.leader_elect.then(|| LeaderConfig {
            namespace: args.leader_election_namespace.clone(),
            name: leader::LEASE_NAME.to_owned(),
            identity: leader::default_identity(),
            lease_duration: args.lease_duration,
            renew_deadline: args.renew_deadline,
            retry_period: args.retry_period,
        }),
        shutdown_timeout: args.shutdown_timeout,
        expected_schema_version: Some(losant_operator::crd::SCHEMA_VERSION),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5d").is_err());
    }

    #[test]
    fn listen_addresses_parse_with_or_without_brackets() {
        let v4: SocketAddr = "127.0.0.2:8080".parse().unwrap();
        assert_eq!(parse_listen_addr("127.0.0.2:8080"), Ok(v4));
        let v6: SocketAddr = "[fd00::1]:8080".parse().unwrap();
        assert_eq!(parse_listen_addr("[fd00::1]:8080"), Ok(v6));
        assert_eq!(parse_listen_addr("fd00::1:8080"), Ok(v6));
        assert!(parse_listen_addr(":8080").is_err());
        assert!(parse_listen_addr("127.0.0.2").is_err());
        assert!(parse_listen_addr("fd00::1:99999").is_err());
    }

    #[test]
    fn run_is_the_default() {
        let args = RunArgs::default();
        assert_eq!(args.resync_interval, Duration::from_secs(60));
        assert!(args.namespaces.is_empty());
    }
}
