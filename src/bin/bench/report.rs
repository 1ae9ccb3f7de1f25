//! Showing the figures: one run's printout, and `bench summarize`, which groups run files by
//! size and strategy into `results.json` (median, min and max of each figure, and the raw runs)
//! and the Markdown table.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde_json::{Value, json};

use crate::figures::{Figure, Spread, cold_start_floor, figures};
use crate::result::RunResult;

const TABLE_HEADER: &str = "| size | strategy | figure | median | min | max | target | median/target | met (max) |\n|---|---|---|---|---|---|---|---|---|\n";

/// Runs of one size and strategy, by (size, strategy).
type Groups<'a> = BTreeMap<(usize, String), Vec<&'a RunResult>>;

/// Prints one run's figures with their targets.
pub fn print_run(run: &RunResult) {
    println!(
        "{} × {} ({} apps): verified {}; cold start floor {:.1}s, {} list calls needed per sweep, RSS {:.1} MiB converged",
        run.strategy,
        run.size,
        run.applications,
        run.verified,
        run.cold_start_floor_seconds,
        run.steady_lists_needed,
        run.rss_converged_mib
    );
    for figure in figures(&[run]) {
        let target = match (figure.target, figure.met) {
            (Some(target), Some(true)) => format!(" (target {target:.2}: met)"),
            (Some(target), _) => format!(" (target {target:.2}: not met)"),
            (None, _) => String::new(),
        };
        println!("  {}: {:.2}{target}", figure.label(), figure.spread.median);
    }
}

/// Aggregates the run files `runs` into `out` (JSON) and the table (printed, and written to
/// `table` when given).
pub fn summarize(runs: &[PathBuf], out: &Path, table: Option<&Path>) -> anyhow::Result<()> {
    let runs = read_runs(runs)?;
    let mut groups: Groups = BTreeMap::new();
    for run in &runs {
        let key = (run.size, run.strategy.clone());
        groups.entry(key).or_default().push(run);
    }
    let mut markdown = String::from(TABLE_HEADER);
    let mut aggregates = Vec::new();
    for ((size, strategy), group) in &groups {
        let figures = figures(group);
        for figure in &figures {
            markdown.push_str(&table_row(*size, strategy, figure));
        }
        aggregates.push(json!({
            "size": size,
            "strategy": strategy,
            "runs": group.len(),
            "verified": group.iter().all(|r| r.verified),
            "cold_start_floor_seconds": cold_start_floor(group),
            "figures": figures,
            "raw": group,
        }));
    }
    let comparison = compare_strategies(&groups, &mut markdown);
    let document = json!({
        "generated": jiff::Timestamp::now().to_string(),
        "machine": machine(),
        "groups": aggregates,
        "comparison": comparison,
    });
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(out, serde_json::to_string_pretty(&document)? + "\n")?;
    if let Some(path) = table {
        std::fs::write(path, &markdown)?;
    }
    print!("{markdown}");
    Ok(())
}

fn read_runs(paths: &[PathBuf]) -> anyhow::Result<Vec<RunResult>> {
    paths
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))
        })
        .collect()
}

fn table_row(size: usize, strategy: &str, figure: &Figure) -> String {
    let Spread { median, min, max } = figure.spread;
    let target = figure.target.map_or("—".into(), |t| format!("{t:.2}"));
    let ratio = figure.ratio.map_or("—".into(), |r| format!("{r:.2}"));
    let met = figure.met.map_or("—", |m| if m { "yes" } else { "**no**" });
    let label = figure.label();
    format!(
        "| {size} | {strategy} | {label} | {median:.2} | {min:.2} | {max:.2} | {target} | {ratio} | {met} |\n"
    )
}

/// Where both strategies ran at a size: their list calls per sweep and cold starts side by
/// side, as a line under the table and as JSON.
fn compare_strategies(groups: &Groups, markdown: &mut String) -> Vec<Value> {
    let median = |size: usize, strategy: &str, read: fn(&RunResult) -> f64| {
        let group = groups.get(&(size, strategy.to_owned()))?;
        let values: Vec<f64> = group.iter().map(|r| read(r)).collect();
        Some(Spread::of(&values).median)
    };
    let lists = |r: &RunResult| r.steady_lists_per_sweep;
    let cold = |r: &RunResult| r.cold_start_seconds;
    let sizes: BTreeSet<usize> = groups.keys().map(|(size, _)| *size).collect();
    let mut comparison = Vec::new();
    for size in sizes {
        let (Some(a), Some(b)) = (
            median(size, "per-application", lists),
            median(size, "per-object", lists),
        ) else {
            continue;
        };
        let cold_a = median(size, "per-application", cold).unwrap_or(0.0);
        let cold_b = median(size, "per-object", cold).unwrap_or(0.0);
        let ratio = b / a.max(f64::MIN_POSITIVE);
        markdown.push_str(&format!(
            "\nAt {size}: per-object spends {ratio:.0}× the list calls per sweep of per-application ({b:.0} vs {a:.1}); cold start {cold_b:.0}s vs {cold_a:.0}s.\n"
        ));
        comparison.push(json!({
            "size": size,
            "lists_per_sweep": {"per-application": a, "per-object": b, "ratio": ratio},
            "cold_start_seconds": {"per-application": cold_a, "per-object": cold_b},
        }));
    }
    comparison
}

/// The machine the summary was made on.
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
