//! The scale benchmark: one run converges N Integrations over several Losant applications that
//! share one token, against the real local API server, the emulator and the operator as
//! processes, and measures what the operator spent. `scripts/bench.sh` drives it (fresh control
//! plane per run, both strategies, several runs) and `bench summarize` turns the runs into
//! `bench/results.json` and `bench/table.md`.
//!
//! It is a benchmark, not a test: it reports figures next to their targets and fails only when
//! the system did not converge or ended up wrong (a missing or duplicated remote).
//!
//! `bench soak` is the long churn (`soak.rs`, `scripts/soak.sh`).
//!
//! This file is the command line only: `run.rs` is one run, `report.rs` the summary. Starting
//! the processes, the CRDs, the namespace and the manifests are the test kit's
//! (`losant_operator::testkit`, the cargo feature `testkit` this binary requires).

mod figures;
mod fleet;
mod observe;
mod processes;
mod report;
mod result;
mod run;
mod soak;
mod soak_churn;
mod soak_emulator;
mod soak_samples;
mod soak_summary;
mod soak_verify;
mod steady;
mod verify;

use std::path::PathBuf;

use anyhow::bail;
use clap::{Parser, Subcommand};

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
    /// The soak: a long churn of a fleet, sampled over time, with a hard end check
    /// (`scripts/soak.sh`).
    Soak(soak::SoakArgs),
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
    /// Where losant-operator and losant-emulator are (default: beside this program).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
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
    /// Delete the objects afterwards (the script instead throws the whole control plane away);
    /// one kubectl call per object, for small runs (the smoke).
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

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Run(args) => {
            let runtime = tokio::runtime::Runtime::new()?;
            let result = runtime.block_on(run::run(args.clone()))?;
            if let Some(parent) = args.out.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&args.out, serde_json::to_string_pretty(&result)?)?;
            report::print_run(&result);
            if !result.verified {
                bail!("the run did not end in the expected state");
            }
            Ok(())
        }
        Cmd::Summarize(args) => report::summarize(&args.runs, &args.out, args.table.as_deref()),
        Cmd::Soak(args) => {
            let runtime = tokio::runtime::Runtime::new()?;
            let outcome = runtime.block_on(soak::soak(args.clone()))?;
            let summary = std::fs::read_to_string(args.out.join("summary.md"))?;
            println!("{summary}");
            if !outcome.verified {
                bail!("the soak did not end in the expected state");
            }
            let missing = outcome.counts.missing_kinds();
            if args.require_every_kind && !missing.is_empty() {
                bail!("the soak never did: {}", missing.join(", "));
            }
            Ok(())
        }
    }
}
