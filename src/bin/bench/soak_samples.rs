//! The soak's samples over time (the operator's memory, descriptors, threads and Tokio tasks;
//! the Losant calls per sweep; the fleet's size; the machine's load), the flatness verdict made
//! from them, and the files a soak writes: `samples.json`, `samples.csv` and `summary.md`.

use std::fmt::Write as _;
use std::time::Instant;

use serde::Serialize;

use crate::observe::{memory, sample};
use crate::soak::{SoakArgs, SoakOutcome};
use crate::soak_churn::Churn;
use crate::soak_emulator::SoakEmulator;

/// One sample.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Sample {
    /// Since the churn started.
    pub seconds: f64,
    /// Taken while the churn ran (else while the end state settled).
    pub churning: bool,
    /// The emulator was in a faulty phase.
    pub faulty: bool,
    pub rss_mib: f64,
    pub heap_in_use_mib: f64,
    pub heap_free_mib: f64,
    pub fds: u64,
    pub threads: u64,
    pub tokio_tasks: f64,
    /// Sweeps finished so far (the operator's count).
    pub sweeps: f64,
    /// The operator's Losant requests so far (the emulator's count, less the soak's own), and
    /// of those the lists (each sweep's pages and the name look-ups before creates).
    pub losant_calls: u64,
    pub losant_lists: u64,
    pub rate_limited: u64,
    /// Since the previous sample, per sweep finished meanwhile (0 when none finished).
    pub calls_per_sweep: f64,
    pub lists_per_sweep: f64,
    pub live: usize,
    pub deleted: usize,
    /// The machine's one-minute load average.
    pub load1: f64,
}

/// Takes samples of the operator `pid`, whose metrics are on `metrics_port`.
pub struct Sampler {
    pid: u32,
    metrics: String,
    http: reqwest::Client,
    started: Instant,
    pub samples: Vec<Sample>,
}

impl Sampler {
    pub fn new(pid: u32, metrics_port: u16) -> Sampler {
        Sampler {
            pid,
            metrics: format!("http://127.0.0.1:{metrics_port}/metrics"),
            http: reqwest::Client::new(),
            started: Instant::now(),
            samples: Vec::new(),
        }
    }

    /// Takes one sample. What cannot be read (the emulator restarting, the metrics not
    /// answering) reads as the previous sample's value, or 0.
    pub async fn take(&mut self, emulator: &SoakEmulator, churn: &Churn, churning: bool) {
        let previous = self.samples.last().cloned().unwrap_or_default();
        let text = match self.http.get(&self.metrics).send().await {
            Ok(response) => response.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        let mib = |state: &str| {
            let name = format!("losant_operator_heap_bytes{{state=\"{state}\"}}");
            sample(&text, &name) / (1024.0 * 1024.0)
        };
        let sweeps = sample(&text, "losant_operator_sweeps_total{result=\"ok\"}")
            + sample(&text, "losant_operator_sweeps_total{result=\"partial\"}");
        let (own_calls, own_lists) = emulator.own_calls();
        let (calls, lists, rate_limited) = match emulator.calls() {
            Ok(calls) => (
                calls.total().saturating_sub(own_calls),
                calls.kind("list").saturating_sub(own_lists),
                calls.rate_limited,
            ),
            Err(_) => (
                previous.losant_calls,
                previous.losant_lists,
                previous.rate_limited,
            ),
        };
        let swept = sweeps - previous.sweeps;
        let per_sweep = |now: u64, before: u64| {
            if swept > 0.0 {
                now.saturating_sub(before) as f64 / swept
            } else {
                0.0
            }
        };
        self.samples.push(Sample {
            seconds: self.started.elapsed().as_secs_f64(),
            churning,
            faulty: emulator.faulty(),
            rss_mib: memory(self.pid).resident,
            heap_in_use_mib: mib("in_use"),
            heap_free_mib: mib("free"),
            fds: entries(&format!("/proc/{}/fd", self.pid)),
            threads: entries(&format!("/proc/{}/task", self.pid)),
            tokio_tasks: sample(&text, "losant_operator_runtime_tasks"),
            sweeps,
            losant_calls: calls,
            losant_lists: lists,
            rate_limited,
            calls_per_sweep: per_sweep(calls, previous.losant_calls),
            lists_per_sweep: per_sweep(lists, previous.losant_lists),
            live: churn.live_count(),
            deleted: churn.deleted_count(),
            load1: load1(),
        });
    }

    /// The last sample in a few words, for the progress line.
    pub fn brief(&self) -> String {
        self.samples.last().map_or_else(String::new, |s| {
            format!(
                "RSS {:.1} MiB, heap {:.1} MiB, {} fds, {} threads, {} tasks, {:.1} calls/sweep, {} live, load {:.2}",
                s.rss_mib,
                s.heap_in_use_mib,
                s.fds,
                s.threads,
                s.tokio_tasks,
                s.calls_per_sweep,
                s.live,
                s.load1
            )
        })
    }
}

/// How many entries a /proc directory has (0 when it cannot be read).
fn entries(dir: &str) -> u64 {
    std::fs::read_dir(dir).map_or(0, |d| d.count() as u64)
}

fn load1() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// Whether one series stayed flat: the median of the churn's last third against that of its
/// second third (the first third is warm-up), within a tolerance; and the slope over those two
/// thirds, per hour.
#[derive(Clone, Debug, Serialize)]
pub struct Trend {
    pub series: &'static str,
    pub unit: &'static str,
    pub second_third_median: f64,
    pub last_third_median: f64,
    pub growth: f64,
    pub tolerance: f64,
    pub slope_per_hour: f64,
    pub flat: bool,
}

/// A series judged, with its tolerance: an absolute floor and a fraction of the second third's
/// median, whichever is larger.
#[derive(Clone, Copy)]
struct Judged {
    series: &'static str,
    unit: &'static str,
    value: fn(&Sample) -> f64,
    floor: f64,
    fraction: f64,
}

const SERIES: [Judged; 5] = [
    Judged {
        series: "RSS",
        unit: "MiB",
        value: |s| s.rss_mib,
        floor: 2.0,
        fraction: 0.05,
    },
    Judged {
        series: "heap in use",
        unit: "MiB",
        value: |s| s.heap_in_use_mib,
        floor: 1.0,
        fraction: 0.10,
    },
    Judged {
        series: "open file descriptors",
        unit: "",
        value: |s| s.fds as f64,
        floor: 5.0,
        fraction: 0.0,
    },
    Judged {
        series: "threads",
        unit: "",
        value: |s| s.threads as f64,
        floor: 2.0,
        fraction: 0.0,
    },
    Judged {
        series: "Tokio tasks",
        unit: "",
        value: |s| s.tokio_tasks,
        floor: 20.0,
        fraction: 0.10,
    },
];

/// The trend of every judged series over the churn's samples.
pub fn trends(samples: &[Sample]) -> Vec<Trend> {
    let churning: Vec<&Sample> = samples.iter().filter(|s| s.churning).collect();
    let third = churning.len() / 3;
    let second = &churning[third..(2 * third).min(churning.len())];
    let last = &churning[(2 * third).min(churning.len())..];
    SERIES
        .iter()
        .map(|judged| {
            let Judged {
                series,
                unit,
                value,
                floor,
                fraction,
            } = *judged;
            let second_third_median = median(second.iter().map(|s| value(s)).collect());
            let last_third_median = median(last.iter().map(|s| value(s)).collect());
            let growth = last_third_median - second_third_median;
            let tolerance = floor.max(fraction * second_third_median);
            let points: Vec<(f64, f64)> = churning[third..]
                .iter()
                .map(|s| (s.seconds, value(s)))
                .collect();
            Trend {
                series,
                unit,
                second_third_median,
                last_third_median,
                growth,
                tolerance,
                slope_per_hour: slope(&points) * 3600.0,
                flat: growth <= tolerance,
            }
        })
        .collect()
}

/// The median (0 for none).
pub fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// The least-squares slope of y over x (0 for fewer than two distinct x).
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if points.len() < 2 {
        return 0.0;
    }
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let covariance: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    let variance: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    if variance > 0.0 {
        covariance / variance
    } else {
        0.0
    }
}

/// Writes `samples.json`, `samples.csv` and `summary.md` into `args.out`.
pub fn write_outputs(
    args: &SoakArgs,
    sampler: &Sampler,
    outcome: &SoakOutcome,
) -> anyhow::Result<()> {
    let trends = trends(&sampler.samples);
    let document = serde_json::json!({
        "settings": format!("{args:?}"),
        "outcome": outcome,
        "trends": trends,
        "samples": sampler.samples,
    });
    std::fs::write(
        args.out.join("samples.json"),
        serde_json::to_string_pretty(&document)?,
    )?;
    std::fs::write(args.out.join("samples.csv"), csv(&sampler.samples))?;
    let summary = crate::soak_summary::summary(args, &sampler.samples, &trends, outcome);
    std::fs::write(args.out.join("summary.md"), summary)?;
    Ok(())
}

/// The samples as CSV, a header line first.
fn csv(samples: &[Sample]) -> String {
    let mut text = String::from(
        "seconds,churning,faulty,rss_mib,heap_in_use_mib,heap_free_mib,fds,threads,tokio_tasks,sweeps,losant_calls,losant_lists,rate_limited,calls_per_sweep,lists_per_sweep,live,deleted,load1\n",
    );
    for s in samples {
        // Writing to a String cannot fail.
        let _ = writeln!(
            text,
            "{:.1},{},{},{:.2},{:.2},{:.2},{},{},{},{},{},{},{},{:.2},{:.2},{},{},{:.2}",
            s.seconds,
            u8::from(s.churning),
            u8::from(s.faulty),
            s.rss_mib,
            s.heap_in_use_mib,
            s.heap_free_mib,
            s.fds,
            s.threads,
            s.tokio_tasks,
            s.sweeps,
            s.losant_calls,
            s.losant_lists,
            s.rate_limited,
            s.calls_per_sweep,
            s.lists_per_sweep,
            s.live,
            s.deleted,
            s.load1
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(values: &[f64]) -> Vec<Sample> {
        values
            .iter()
            .enumerate()
            .map(|(i, &v)| Sample {
                seconds: i as f64 * 60.0,
                churning: true,
                rss_mib: v,
                heap_in_use_mib: v,
                ..Sample::default()
            })
            .collect()
    }

    #[test]
    fn a_level_series_is_flat_and_a_climbing_one_is_not() {
        let level = trends(&samples(&[
            30.0, 40.0, 41.0, 40.5, 41.0, 40.0, 40.8, 41.0, 40.2,
        ]));
        assert!(level.iter().all(|t| t.flat), "{level:?}");
        let climbing: Vec<f64> = (0..30).map(|i| 40.0 + f64::from(i)).collect();
        let climbing = trends(&samples(&climbing));
        assert!(!climbing[0].flat, "{:?}", climbing[0]);
        // One MiB a minute.
        assert!((climbing[0].slope_per_hour - 60.0).abs() < 1e-6);
    }

    #[test]
    fn medians_and_slopes() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(Vec::new()), 0.0);
        assert_eq!(slope(&[(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]), 2.0);
        assert_eq!(slope(&[(1.0, 1.0)]), 0.0);
    }
}
