//! What one run measured: the run file `bench run` writes and `bench summarize` reads (its field
//! names are the format of `bench/results.json`'s raw runs, so they do not change).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::RunArgs;

/// Everything one run measured.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RunResult {
    pub size: usize,
    pub strategy: String,
    pub applications: usize,
    pub resync_seconds: u64,
    pub rate_limit: f64,
    pub latency_ms: u64,
    /// Objects created in the API server before the operator started (not a target).
    pub objects_created_seconds: f64,
    /// From operator start until every object is Ready and every remote exists.
    pub cold_start_seconds: f64,
    /// (creates + list calls needed) / rate limit.
    pub cold_start_floor_seconds: f64,
    /// Requests to Losant during the cold start, by kind.
    pub cold_start_calls: BTreeMap<String, u64>,
    /// CPU seconds each process spent during the cold start (where the time goes): the
    /// operator, the emulator, and the control plane's kube-apiserver and etcd when
    /// scripts/control-plane.sh started the one in $KUBECONFIG.
    #[serde(default)]
    pub cold_start_cpu_seconds: BTreeMap<String, f64>,
    /// Answers 429 received by the operator, over the whole run.
    pub rate_limited: u64,
    /// Sweeps observed in steady state (per-application: the operator's count; per-object: the
    /// window divided by the interval).
    pub steady_sweeps: f64,
    /// List calls per sweep in steady state.
    pub steady_lists_per_sweep: f64,
    /// Other calls per sweep in steady state.
    pub steady_other_calls_per_sweep: f64,
    /// ceil(integrations / page) summed over the applications.
    pub steady_lists_needed: u64,
    /// Status writes and Events per sweep in steady state.
    pub steady_status_writes_per_sweep: f64,
    pub steady_events_per_sweep: f64,
    /// CPU seconds the operator spent per steady-state sweep.
    pub steady_cpu_seconds_per_sweep: f64,
    /// From a change made in Losant until the operator reverted it.
    pub drift_corrected_seconds: Option<f64>,
    /// Spec edit → remote PATCH visible, seconds.
    pub edit_latencies: Vec<f64>,
    pub edit_p50_seconds: f64,
    pub edit_p99_seconds: f64,
    /// Operator RSS after convergence and after a restart with every object present.
    pub rss_converged_mib: f64,
    pub rss_restarted_mib: f64,
    /// Of that: heap and other anonymous memory, and mapped files (the binary itself).
    #[serde(default)]
    pub rss_restarted_anonymous_mib: f64,
    #[serde(default)]
    pub rss_restarted_file_mib: f64,
    /// The heap as the allocator sees it (the operator's `heap_bytes` metric): live
    /// allocations, and freed memory it still holds.
    #[serde(default)]
    pub heap_in_use_mib: f64,
    #[serde(default)]
    pub heap_free_mib: f64,
    pub peak_rss_mib: f64,
    /// Restart with N objects present: process start → /readyz 200.
    pub startup_seconds: f64,
    /// Every object Ready, each remote present exactly once.
    pub verified: bool,
}

impl RunResult {
    /// A run of `args` that has measured nothing yet.
    pub fn of(args: &RunArgs) -> RunResult {
        RunResult {
            size: args.size,
            strategy: args.strategy.clone(),
            applications: args.applications,
            resync_seconds: args.resync_seconds,
            rate_limit: args.rate_limit,
            latency_ms: args.latency_ms,
            ..RunResult::default()
        }
    }

    /// CPU seconds `process` spent during the cold start (0 when it was not measured).
    pub fn cold_start_cpu(&self, process: &str) -> f64 {
        self.cold_start_cpu_seconds
            .get(process)
            .copied()
            .unwrap_or(0.0)
    }
}
