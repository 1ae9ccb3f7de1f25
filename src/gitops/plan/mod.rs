//! `losant-operator plan`: what the operator would do in Losant if the input manifests were
//! applied, field by field, without writing anything anywhere.
//!
//! ```text
//! input (pure: files → objects) ─► read (I/O: cluster, one Losant list per application)
//!   ─► evaluate (pure: the controller's Facts → sync::decide → Verdict) ─► render (pure)
//! ```
//!
//! The verdict is the controller's own: the facts are built by `sync::record` exactly as
//! `controller::integration::resolve` builds them, and `sync::decide::decide` decides.
//!
//! # Guarantees
//! - Read-only: Kubernetes is only listed and read (GET), Losant only listed, each application
//!   once, through the operator's client, rate limits and API host policy.
//! - No secret value reaches the output, in any format.
//! - Exit codes follow `kubectl diff`: 0 no changes, 1 changes, 2 an error.

mod evaluate;
mod fields;
mod input;
mod prune;
mod read;
mod render;
mod verdict;
mod world;

use std::collections::BTreeSet;
use std::time::Duration;

use kube::api::ResourceExt;

pub use input::{InputError, Inputs, load};
pub use render::Format;
pub use verdict::{Action, REPORT_VERSION, Report, Verdict};

use crate::controller::clients::{ApiHostPolicy, LosantClients};
use crate::flags::parse_duration;
use crate::losant::RateLimits;

/// Why `plan` could not run at all (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A bad input file or document.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The cluster could not be read.
    #[error("could not {what}: {source}")]
    Kube {
        /// What was being read.
        what: &'static str,
        /// The error.
        source: kube::Error,
    },
    /// Something needed to run is missing or invalid.
    #[error("{0}")]
    Setup(String),
}

impl PlanError {
    fn kube(what: &'static str, source: kube::Error) -> Self {
        PlanError::Kube { what, source }
    }
}

/// `losant-operator plan`'s flags.
#[derive(clap::Args, Debug, Clone)]
#[command(
    after_help = "Exit status (as kubectl diff): 0 no changes, 1 changes (or an object \
the operator would refuse or wait on), 2 an error (a bad input file, or the cluster or Losant \
could not be read). Nothing is written to Kubernetes or Losant."
)]
pub struct PlanArgs {
    /// Manifest file, directory (its *.yaml, *.yml, *.json files) or `-` for stdin
    /// (repeatable; multi-document YAML, e.g. `kustomize build | losant-operator plan -f -`).
    #[arg(short = 'f', long = "filename", value_name = "PATH", required = true)]
    pub files: Vec<String>,
    /// Read directories given with -f recursively.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// Namespace of objects that name none. Default: the kubeconfig context's namespace.
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    pub output: Format,
    /// Also list the remotes that Integrations in the cluster (in the input's namespaces)
    /// manage but the input no longer has, and what deleting them would do.
    #[arg(long)]
    pub prune: bool,
    /// The operator's --create-grace-period (how long a pending create is waited for).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub create_grace_period: Duration,
    /// API hosts LosantApplications may point at (as the operator's flag).
    #[arg(
        long,
        env = "LOSANT_OPERATOR_ALLOWED_API_HOSTS",
        value_delimiter = ',',
        default_value = "api.losant.com"
    )]
    pub allowed_api_hosts: Vec<String>,
    /// Hosts also allowed over plain http (as the operator's flag).
    #[arg(
        long,
        env = "LOSANT_OPERATOR_ALLOWED_HTTP_HOSTS",
        value_delimiter = ','
    )]
    pub allowed_http_hosts: Vec<String>,
    /// Requests per second to each Losant API URL and token (the operator's default).
    #[arg(long, default_value_t = 10.0)]
    pub losant_rate_limit: f64,
    /// Requests that may burst above the rate.
    #[arg(long, default_value_t = 20)]
    pub losant_burst: u32,
}

/// Runs `plan`, printing the report to stdout and errors to stderr; returns the exit code.
pub fn main(args: PlanArgs) -> i32 {
    let mut stdin = std::io::stdin();
    match plan(&args, &mut stdin) {
        Ok(report) => {
            print!("{}", render::render(&report, args.output));
            report.exit_code()
        }
        Err(error) => {
            eprintln!("error: {error}");
            2
        }
    }
}

/// Reads the input, the cluster and Losant, and plans.
pub fn plan(args: &PlanArgs, stdin: &mut dyn std::io::Read) -> Result<Report, PlanError> {
    let inputs = load(&args.files, args.recursive, stdin)?;
    // reqwest is built without a default rustls provider (an error only says one was installed).
    if rustls::crypto::ring::default_provider()
        .install_default()
        .is_err()
    {
        tracing::debug!("a rustls provider was installed already");
    }
    let limits = RateLimits {
        requests_per_second: args.losant_rate_limit,
        burst: args.losant_burst,
        ..RateLimits::default()
    };
    limits.validate().map_err(PlanError::Setup)?;
    let policy = ApiHostPolicy {
        allowed: args.allowed_api_hosts.clone(),
        allowed_http: args.allowed_http_hosts.clone(),
    };
    let clients = LosantClients::new(limits, policy);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| PlanError::Setup(format!("could not start a runtime: {e}")))?;
    runtime.block_on(plan_async(args, &inputs, &clients))
}

async fn plan_async(
    args: &PlanArgs,
    inputs: &Inputs,
    clients: &LosantClients,
) -> Result<Report, PlanError> {
    let kube = kube::Client::try_default()
        .await
        .map_err(|e| PlanError::Setup(format!("no usable kubeconfig: {e}")))?;
    let namespace = args
        .namespace
        .clone()
        .unwrap_or_else(|| kube.default_namespace().to_owned());
    let namespaces = input_namespaces(inputs, &namespace);
    let now = jiff::Timestamp::now();
    let mut world = world::World::new(now, args.create_grace_period);
    read::read(
        Some(&kube),
        inputs,
        &namespaces,
        &namespace,
        clients,
        &mut world,
    )
    .await?;
    let mut items = evaluate::evaluate(&world, &inputs.integrations, &namespace);
    if args.prune {
        let kept: BTreeSet<(String, String)> = inputs
            .integrations
            .iter()
            .map(|s| {
                (
                    s.object.namespace().unwrap_or_else(|| namespace.clone()),
                    s.object.name_any(),
                )
            })
            .collect();
        items.extend(prune::prune(&world, &kept, &namespaces));
    }
    Ok(Report::new(items))
}

/// The namespaces the input's objects are in (`namespace` for those that name none).
fn input_namespaces(inputs: &Inputs, namespace: &str) -> BTreeSet<String> {
    let of = |ns: Option<String>| ns.unwrap_or_else(|| namespace.to_owned());
    let mut found: BTreeSet<String> = inputs
        .integrations
        .iter()
        .map(|s| of(s.object.namespace()))
        .collect();
    found.extend(inputs.applications.iter().map(|s| of(s.object.namespace())));
    found.extend(inputs.secrets.iter().map(|s| of(s.object.namespace())));
    if found.is_empty() {
        found.insert(namespace.to_owned());
    }
    found
}
