//! The soak's `summary.md`: the setup, the machine's load, what the churn did, the Losant calls
//! per sweep, the flatness verdict per series, and the end check.

use std::fmt::Write as _;

use crate::soak::{SoakArgs, SoakOutcome};
use crate::soak_samples::{Sample, Trend, median};

/// The summary, Markdown.
pub fn summary(
    args: &SoakArgs,
    samples: &[Sample],
    trends: &[Trend],
    outcome: &SoakOutcome,
) -> String {
    let mut md = String::new();
    // Writing to a String cannot fail, so the results of `writeln!` are ignored.
    let _ = writeln!(md, "# Soak: {}\n", verdict_line(trends, outcome));
    setup(&mut md, args, outcome);
    load(&mut md, samples, outcome);
    churn(&mut md, outcome);
    calls(&mut md, args, samples);
    flatness(&mut md, trends);
    end_check(&mut md, outcome);
    md
}

/// The one-line verdict: the end check, then flat or what grows.
pub fn verdict_line(trends: &[Trend], outcome: &SoakOutcome) -> String {
    let end = if outcome.verified {
        "end state verified"
    } else {
        "END STATE WRONG"
    };
    let growing: Vec<String> = trends
        .iter()
        .filter(|t| !t.flat)
        .map(|t| {
            format!(
                "{} grows by {:.1}{} per hour",
                t.series,
                t.slope_per_hour,
                unit(t.unit)
            )
        })
        .collect();
    if growing.is_empty() {
        format!("{end}; RSS, heap, file descriptors, threads and tasks flat")
    } else {
        format!("{end}; {}", growing.join(", "))
    }
}

fn unit(unit: &str) -> String {
    if unit.is_empty() {
        String::new()
    } else {
        format!(" {unit}")
    }
}

fn setup(md: &mut String, args: &SoakArgs, outcome: &SoakOutcome) {
    let _ = writeln!(
        md,
        "## Setup\n\n\
         - {} Integrations kept alive (MQTT, each with a password from one of {} Secrets) over {} \
         Losant applications sharing one token; resync every {} s (per-application sweeps).\n\
         - Churn for {:.0} s (asked: {} s), a round every {} ms: one create, one deletion, two \
         spec edits; every 10th round a Secret rotation; every 3rd round a change made in Losant \
         behind the operator's back (in turn: topics changed, the remote deleted, its connection \
         forced down).\n\
         - The emulator (latency {} ms, {} requests/s per token) alternates clean and faulty \
         phases of {} s, restarted on the same port and state at each switch; faulty: \
         `--error-rate {}` and `--fault-after-commit {}`. The end check runs against a clean \
         emulator.\n\
         - First convergence of the fleet: {:.1} s; the end state settled in {:.1} s.\n",
        args.size,
        args.secrets,
        args.applications,
        args.resync_seconds,
        outcome.churn_seconds,
        args.duration_seconds,
        args.round_ms,
        args.latency_ms,
        args.rate_limit,
        args.phase_seconds,
        args.error_rate,
        args.fault_after_commit,
        outcome.first_convergence_seconds,
        outcome.end_convergence_seconds,
    );
}

fn load(md: &mut String, samples: &[Sample], outcome: &SoakOutcome) {
    let loads: Vec<f64> = samples.iter().map(|s| s.load1).collect();
    let max = loads.iter().copied().fold(0.0, f64::max);
    let _ = writeln!(
        md,
        "## The machine's load\n\n\
         Shared with other work (2 cores); flatness is what counts here, not speed.\n\n\
         - `uptime` at the start: `{}`\n- `uptime` at the end: `{}`\n\
         - one-minute load average over the samples: median {:.2}, max {:.2}\n",
        outcome.uptime_start,
        outcome.uptime_end,
        median(loads),
        max
    );
}

fn churn(md: &mut String, outcome: &SoakOutcome) {
    let c = &outcome.counts;
    let _ = writeln!(
        md,
        "## What the churn did\n\n\
         | rounds | created | deleted | edited | Secret rotations | topics changed in Losant | remotes deleted in Losant | connections forced down | emulator restarts | steps refused |\n\
         |---|---|---|---|---|---|---|---|---|---|\n\
         | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n\n\
         At the end: {} live Integrations, {} deleted ones.\n",
        c.rounds,
        c.created,
        c.deleted,
        c.edited,
        c.secret_rotations,
        c.drift_patched,
        c.drift_deleted,
        c.connection_overrides,
        c.emulator_restarts,
        c.failed_steps,
        outcome.live,
        outcome.deleted
    );
}

fn calls(md: &mut String, args: &SoakArgs, samples: &[Sample]) {
    let churning: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.churning && s.lists_per_sweep > 0.0)
        .collect();
    let lists = median(churning.iter().map(|s| s.lists_per_sweep).collect());
    let all = median(churning.iter().map(|s| s.calls_per_sweep).collect());
    let max = churning
        .iter()
        .map(|s| s.calls_per_sweep)
        .fold(0.0, f64::max);
    let (first, last) = (samples.first(), samples.last());
    let total = last
        .map_or(0, |s| s.losant_calls)
        .saturating_sub(first.map_or(0, |s| s.losant_calls));
    let rate_limited = last.map_or(0, |s| s.rate_limited);
    let _ = writeln!(
        md,
        "## Losant calls per sweep\n\n\
         Between samples, the operator's requests (the emulator's count, less the soak's own) \
         divided by the sweeps finished meanwhile. A sweep lists each application once ({} \
         applications); the other lists are the name look-ups before each create, and every \
         other call is the churn's own work (creates, edits, rotations, deletions, drift \
         corrections) and the faults' retries.\n\n\
         - lists per sweep: median {lists:.2}\n\
         - all calls per sweep: median {all:.1}, max {max:.1}\n\
         - requests during the run: {total}; answered 429 over the whole soak: {rate_limited}\n",
        args.applications
    );
}

fn flatness(md: &mut String, trends: &[Trend]) {
    let _ = writeln!(
        md,
        "## Flatness\n\n\
         The median of the churn's last third against that of its second third (the first is \
         warm-up). A series is flat when it grew by no more than its tolerance (the larger of an \
         absolute floor and a fraction of the second third's median); the slope is a \
         least-squares fit over the last two thirds.\n\n\
         | series | second third (median) | last third (median) | growth | tolerance | slope per hour | verdict |\n\
         |---|---|---|---|---|---|---|"
    );
    for t in trends {
        let u = unit(t.unit);
        let verdict = if t.flat {
            "flat".to_owned()
        } else {
            format!("grows by {:.1}{u} per hour", t.slope_per_hour)
        };
        let _ = writeln!(
            md,
            "| {} | {:.1}{u} | {:.1}{u} | {:+.1}{u} | {:.1}{u} | {:+.1}{u} | {verdict} |",
            t.series,
            t.second_third_median,
            t.last_third_median,
            t.growth,
            t.tolerance,
            t.slope_per_hour
        );
    }
    let _ = writeln!(
        md,
        "\nThe plot: [`soak.png`](soak.png) (`scripts/soak-plot.py samples.csv soak.png`).\n"
    );
}

fn end_check(md: &mut String, outcome: &SoakOutcome) {
    let _ = writeln!(
        md,
        "## End check\n\n\
         Every live Integration Ready for its latest generation; exactly one remote per live \
         Integration, by its recorded id and by its name, in its application, with its latest \
         topic and its Secret's current value; no remote and no object left for a deleted one; \
         nothing else in Losant.\n\n**{}**\n",
        if outcome.verified {
            format!(
                "Verified: {} live Integrations, {} remotes, none for the {} deleted.",
                outcome.live, outcome.live, outcome.deleted
            )
        } else {
            format!("NOT verified: {} problems.", outcome.problems.len())
        }
    );
    for problem in outcome.problems.iter().take(50) {
        let _ = writeln!(md, "- {problem}");
    }
}
