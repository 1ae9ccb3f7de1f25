//! The converged fleet: what a steady-state sweep spends, how fast a change made in Losant is
//! undone, and how fast spec edits reach Losant.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use kube::Api;
use kube::api::{Patch, PatchParams};
use losant_operator::crd::Integration;
use serde_json::json;

use crate::RunArgs;
use crate::fleet::INITIAL_TOPIC;
use crate::observe::{Observer, cpu_seconds, sample};
use crate::result::RunResult;
use crate::verify::RemoteRef;

/// Spec edits are sent one per this interval (10 a second).
const EDIT_INTERVAL: Duration = Duration::from_millis(100);

/// The operator's sweeps, status writes and Events so far, from its metrics.
fn sweeps_writes_events(metrics: &str) -> (f64, f64, f64) {
    (
        sample(metrics, "losant_operator_sweeps_total{result=\"ok\"}")
            + sample(metrics, "losant_operator_sweeps_total{result=\"partial\"}"),
        sample(metrics, "losant_operator_status_writes_total"),
        sample(metrics, "losant_operator_events_total"),
    )
}

/// Watches `args.sweeps` resync intervals of the operator (`operator_pid`) and records what
/// each sweep spent.
pub async fn steady_state(
    args: &RunArgs,
    observer: &Observer<'_>,
    operator_pid: u32,
    result: &mut RunResult,
) -> anyhow::Result<()> {
    let window = Duration::from_secs(args.resync_seconds * u64::from(args.sweeps));
    let calls_before = observer.calls()?;
    let (sweeps_before, writes_before, events_before) =
        sweeps_writes_events(&observer.metrics_text().await?);
    let cpu_before = cpu_seconds(operator_pid);
    let start = Instant::now();
    tokio::time::sleep(window).await;
    let elapsed = start.elapsed();
    let calls = observer.calls()?.minus(&calls_before);
    let (sweeps_after, writes_after, events_after) =
        sweeps_writes_events(&observer.metrics_text().await?);
    let cpu = cpu_seconds(operator_pid) - cpu_before;
    // Per object there is no sweep to count: every object lists on its own timer.
    let sweeps = if args.strategy == "per-application" {
        sweeps_after - sweeps_before
    } else {
        elapsed.as_secs_f64() / args.resync_seconds as f64
    };
    let per_sweep = |value: f64| if sweeps > 0.0 { value / sweeps } else { value };
    result.steady_sweeps = sweeps;
    result.steady_lists_per_sweep = per_sweep(calls.kind("list") as f64);
    result.steady_other_calls_per_sweep = per_sweep((calls.total() - calls.kind("list")) as f64);
    result.steady_status_writes_per_sweep = per_sweep(writes_after - writes_before);
    result.steady_events_per_sweep = per_sweep(events_after - events_before);
    result.steady_cpu_seconds_per_sweep = per_sweep(cpu);
    Ok(())
}

/// Changes `remote`'s topics in Losant and waits until the operator sets them back: the
/// seconds that took, or `None` (logged) when it did not within three intervals.
pub async fn drift_corrected_after(
    args: &RunArgs,
    observer: &Observer<'_>,
    name: &str,
    remote: &RemoteRef,
) -> anyhow::Result<Option<f64>> {
    let changed = Instant::now();
    observer.patch_remote(
        &remote.app,
        &remote.id,
        &json!({"topics": ["drifted/by/hand"]}),
    )?;
    let limit = Duration::from_secs(args.resync_seconds * 3 + 30);
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = observer.remote(&remote.app, &remote.id)?;
        if now["topics"] == json!([INITIAL_TOPIC]) {
            return Ok(Some(changed.elapsed().as_secs_f64()));
        }
        if changed.elapsed() > limit {
            eprintln!("bench: drift on {name} not corrected within {limit:?}");
            return Ok(None);
        }
    }
}

/// An edit sent and not yet seen in Losant.
struct PendingEdit {
    name: String,
    app: String,
    topic: String,
    applied: jiff::Timestamp,
}

/// Sends `args.edits` spec edits spread over the fleet (deterministically), one at a time, and
/// records how long each took to reach Losant.
pub async fn edit_latencies(
    args: &RunArgs,
    integrations: &Api<Integration>,
    observer: &Observer<'_>,
    remotes: &BTreeMap<String, RemoteRef>,
    result: &mut RunResult,
) -> anyhow::Result<()> {
    let names: Vec<&String> = remotes.keys().collect();
    let count = args.edits.min(names.len());
    if count == 0 {
        return Ok(());
    }
    let step = (names.len() / count).max(1);
    // By remote id.
    let mut pending: BTreeMap<String, PendingEdit> = BTreeMap::new();
    for edit in 0..count {
        let name = names[(edit * step) % names.len()];
        let remote = &remotes[name];
        let topic = format!("bench/edited/{edit}");
        let applied = jiff::Timestamp::now();
        integrations
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"topics": [topic]}})),
            )
            .await?;
        let edit = PendingEdit {
            name: name.clone(),
            app: remote.app.clone(),
            topic,
            applied,
        };
        pending.insert(remote.id.clone(), edit);
        tokio::time::sleep(EDIT_INTERVAL).await;
    }
    let deadline = Instant::now() + Duration::from_secs(args.resync_seconds * 4 + 300);
    result.edit_latencies = await_edits(observer, pending, deadline).await?;
    result.edit_p50_seconds = percentile(&result.edit_latencies, 0.50);
    result.edit_p99_seconds = percentile(&result.edit_latencies, 0.99);
    Ok(())
}

/// Polls Losant until every edit in `pending` shows (or `deadline`); each one's latency.
///
/// A latency runs from just before the patch was sent to the `lastUpdated` Losant stamped on
/// the PATCH that brought the new value (same machine, same clock), so the polling here does
/// not add to it. An edit that never arrives counts until the deadline, and is logged.
async fn await_edits(
    observer: &Observer<'_>,
    mut pending: BTreeMap<String, PendingEdit>,
    deadline: Instant,
) -> anyhow::Result<Vec<f64>> {
    let mut latencies = Vec::new();
    while !pending.is_empty() && Instant::now() < deadline {
        let apps: BTreeSet<String> = pending.values().map(|edit| edit.app.clone()).collect();
        for app in apps {
            for remote in observer.remotes(&app)? {
                let id = remote["id"].as_str().unwrap_or_default();
                let Some(edit) = pending.get(id) else {
                    continue;
                };
                if remote["topics"] != json!([edit.topic]) {
                    continue;
                }
                let updated: Option<jiff::Timestamp> =
                    remote["lastUpdated"].as_str().and_then(|t| t.parse().ok());
                if let Some(updated) = updated {
                    let latency = updated.duration_since(edit.applied).as_secs_f64();
                    latencies.push(latency.max(0.0));
                }
                pending.remove(id);
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for edit in pending.values() {
        eprintln!("bench: the edit of {} never reached Losant", edit.name);
        let waited = jiff::Timestamp::now().duration_since(edit.applied);
        latencies.push(waited.as_secs_f64());
    }
    Ok(latencies)
}

/// The `q` quantile of `values` (nearest rank); 0 for none.
fn percentile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (q * (sorted.len() as f64)).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(percentile(&values, 0.50), 50.0);
        assert_eq!(percentile(&values, 0.99), 99.0);
        assert_eq!(percentile(&[3.0], 0.99), 3.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
