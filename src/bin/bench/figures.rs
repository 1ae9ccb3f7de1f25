//! The figures the benchmark reports, stated once each as data: a name, a unit, how a run holds
//! it, and its target. The table, `results.json` and a run's printout are all made from
//! [`FIGURES`]; adding a figure is adding a row.

use serde::Serialize;

use crate::result::RunResult;

/// The fleet size the memory and start-up targets are set for; smaller fleets only report them.
const TARGET_SIZE: usize = 10_000;

/// What a figure is held against; the median must not exceed it (`met` checks the maximum).
enum Target {
    /// None: reported only.
    Reported,
    /// A fixed bound.
    AtMost(f64),
    /// A fixed bound from [`TARGET_SIZE`] Integrations on.
    AtMostAtTargetSize(f64),
    /// This multiple of the cold start's floor (the group's median).
    FloorTimes(f64),
    /// The list calls a sweep needs.
    ListsNeeded,
    /// One resync interval.
    ResyncInterval,
}

/// One reported figure.
struct FigureRow {
    name: &'static str,
    unit: &'static str,
    read: fn(&RunResult) -> f64,
    target: Target,
}

/// Every figure, in the table's order.
const FIGURES: &[FigureRow] = &[
    FigureRow {
        name: "cold start",
        unit: "s",
        read: |r| r.cold_start_seconds,
        target: Target::FloorTimes(1.2),
    },
    FigureRow {
        name: "429s received",
        unit: "",
        read: |r| r.rate_limited as f64,
        target: Target::AtMost(0.0),
    },
    FigureRow {
        name: "list calls per sweep",
        unit: "",
        read: |r| r.steady_lists_per_sweep,
        target: Target::ListsNeeded,
    },
    FigureRow {
        name: "other calls per sweep",
        unit: "",
        read: |r| r.steady_other_calls_per_sweep,
        target: Target::Reported,
    },
    FigureRow {
        name: "status writes per sweep",
        unit: "",
        read: |r| r.steady_status_writes_per_sweep,
        target: Target::AtMost(0.0),
    },
    FigureRow {
        name: "events per sweep",
        unit: "",
        read: |r| r.steady_events_per_sweep,
        target: Target::AtMost(0.0),
    },
    FigureRow {
        name: "CPU per idle sweep",
        unit: "s",
        read: |r| r.steady_cpu_seconds_per_sweep,
        target: Target::Reported,
    },
    FigureRow {
        name: "drift corrected after",
        unit: "s",
        // Never corrected counts as forever, so it cannot meet the target.
        read: |r| r.drift_corrected_seconds.unwrap_or(f64::INFINITY),
        target: Target::ResyncInterval,
    },
    FigureRow {
        name: "edit latency p50",
        unit: "s",
        read: |r| r.edit_p50_seconds,
        target: Target::AtMost(2.0),
    },
    FigureRow {
        name: "edit latency p99",
        unit: "s",
        read: |r| r.edit_p99_seconds,
        target: Target::AtMost(5.0),
    },
    FigureRow {
        name: "RSS (restarted, all objects compared)",
        unit: "MiB",
        read: |r| r.rss_restarted_mib,
        target: Target::AtMostAtTargetSize(64.0),
    },
    FigureRow {
        name: "KiB per Integration (RSS / size)",
        unit: "KiB",
        read: |r| r.rss_restarted_mib * 1024.0 / r.size.max(1) as f64,
        target: Target::Reported,
    },
    FigureRow {
        name: "RSS: anonymous (heap)",
        unit: "MiB",
        read: |r| r.rss_restarted_anonymous_mib,
        target: Target::Reported,
    },
    FigureRow {
        name: "RSS: mapped files (binary)",
        unit: "MiB",
        read: |r| r.rss_restarted_file_mib,
        target: Target::Reported,
    },
    FigureRow {
        name: "heap: live allocations",
        unit: "MiB",
        read: |r| r.heap_in_use_mib,
        target: Target::Reported,
    },
    FigureRow {
        name: "heap: freed, held by the allocator",
        unit: "MiB",
        read: |r| r.heap_free_mib,
        target: Target::Reported,
    },
    FigureRow {
        name: "peak RSS",
        unit: "MiB",
        read: |r| r.peak_rss_mib,
        target: Target::Reported,
    },
    FigureRow {
        name: "cold start CPU: operator",
        unit: "s",
        read: |r| r.cold_start_cpu("operator"),
        target: Target::Reported,
    },
    FigureRow {
        name: "cold start CPU: kube-apiserver",
        unit: "s",
        read: |r| r.cold_start_cpu("apiserver"),
        target: Target::Reported,
    },
    FigureRow {
        name: "cold start CPU: etcd",
        unit: "s",
        read: |r| r.cold_start_cpu("etcd"),
        target: Target::Reported,
    },
    FigureRow {
        name: "cold start CPU: emulator",
        unit: "s",
        read: |r| r.cold_start_cpu("emulator"),
        target: Target::Reported,
    },
    FigureRow {
        name: "startup to ready",
        unit: "s",
        read: |r| r.startup_seconds,
        target: Target::AtMostAtTargetSize(5.0),
    },
];

/// Median, min and max of one figure over runs.
#[derive(Debug, Serialize)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(values: &[f64]) -> Spread {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let middle = sorted.len() / 2;
        let median = match sorted.len() {
            0 => 0.0,
            n if n % 2 == 1 => sorted[middle],
            _ => (sorted[middle - 1] + sorted[middle]) / 2.0,
        };
        Spread {
            median,
            min: sorted.first().copied().unwrap_or(0.0),
            max: sorted.last().copied().unwrap_or(0.0),
        }
    }
}

/// One figure's aggregate over a group of runs, with its target (a `results.json` entry).
#[derive(Debug, Serialize)]
pub struct Figure {
    pub name: &'static str,
    pub unit: &'static str,
    #[serde(flatten)]
    pub spread: Spread,
    /// The target, when the figure has one.
    pub target: Option<f64>,
    /// `median / target` (≤ 1 meets a "no more than" target).
    pub ratio: Option<f64>,
    pub met: Option<bool>,
}

impl Figure {
    /// The name with its unit, as the table shows it.
    pub fn label(&self) -> String {
        if self.unit.is_empty() {
            self.name.to_owned()
        } else {
            format!("{} ({})", self.name, self.unit)
        }
    }
}

/// The median of the group's cold-start floors (every run of a group has the same one).
pub fn cold_start_floor(group: &[&RunResult]) -> f64 {
    let floors: Vec<f64> = group.iter().map(|r| r.cold_start_floor_seconds).collect();
    Spread::of(&floors).median
}

/// Every figure of a group of runs of one size and strategy; a figure without a target is left
/// out when it was never measured (infinite).
pub fn figures(group: &[&RunResult]) -> Vec<Figure> {
    FIGURES
        .iter()
        .map(|row| {
            let values: Vec<f64> = group.iter().map(|run| (row.read)(run)).collect();
            let target = target(&row.target, group);
            figure(row, Spread::of(&values), target)
        })
        .filter(|f| f.spread.max.is_finite() || f.target.is_some())
        .collect()
}

fn target(target: &Target, group: &[&RunResult]) -> Option<f64> {
    let first = group.first();
    let at_target_size = first.is_some_and(|r| r.size >= TARGET_SIZE);
    match *target {
        Target::Reported => None,
        Target::AtMost(bound) => Some(bound),
        Target::AtMostAtTargetSize(bound) => at_target_size.then_some(bound),
        Target::FloorTimes(factor) => Some(factor * cold_start_floor(group)),
        Target::ListsNeeded => Some(first.map_or(0, |r| r.steady_lists_needed) as f64),
        Target::ResyncInterval => Some(first.map_or(0, |r| r.resync_seconds) as f64),
    }
}

fn figure(row: &FigureRow, spread: Spread, target: Option<f64>) -> Figure {
    let ratio = target.map(|t| match (t, spread.median) {
        (0.0, 0.0) => 0.0,
        (0.0, _) => f64::INFINITY,
        (t, median) => median / t,
    });
    let met = target.map(|t| spread.max <= t);
    Figure {
        name: row.name,
        unit: row.unit,
        spread,
        target,
        ratio,
        met,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(size: usize, cold_start_seconds: f64) -> RunResult {
        RunResult {
            size,
            cold_start_seconds,
            cold_start_floor_seconds: 10.0,
            steady_lists_needed: 10,
            resync_seconds: 30,
            drift_corrected_seconds: Some(3.0),
            ..RunResult::default()
        }
    }

    #[test]
    fn every_figure_has_its_own_name() {
        let mut names: Vec<&str> = FIGURES.iter().map(|row| row.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), FIGURES.len());
    }

    #[test]
    fn a_spread_has_the_median_of_an_even_count_halfway() {
        let spread = Spread::of(&[4.0, 1.0, 3.0, 2.0]);
        assert_eq!((spread.median, spread.min, spread.max), (2.5, 1.0, 4.0));
    }

    #[test]
    fn targets_follow_the_group_and_met_checks_the_worst_run() {
        let (a, b, c) = (run(1000, 11.0), run(1000, 12.5), run(1000, 11.5));
        let figures = figures(&[&a, &b, &c]);
        let find = |name: &str| figures.iter().find(|f| f.name == name);
        let cold = find("cold start").expect("reported");
        assert_eq!(cold.target, Some(12.0));
        assert_eq!(cold.met, Some(false));
        assert_eq!(
            find("list calls per sweep").and_then(|f| f.target),
            Some(10.0)
        );
        assert_eq!(
            find("drift corrected after").and_then(|f| f.target),
            Some(30.0)
        );
        // The memory target applies at the target size only.
        let rss = "RSS (restarted, all objects compared)";
        assert_eq!(find(rss).and_then(|f| f.target), None);
        let big = run(TARGET_SIZE, 1.0);
        let figures = super::figures(&[&big]);
        let rss_big = figures
            .iter()
            .find(|f| f.name == rss)
            .and_then(|f| f.target);
        assert_eq!(rss_big, Some(64.0));
    }

    #[test]
    fn a_zero_target_gives_a_zero_or_infinite_ratio() {
        let quiet = run(1000, 1.0);
        let noisy = RunResult {
            rate_limited: 2,
            ..run(1000, 1.0)
        };
        let ratio = |r: &RunResult| {
            figures(&[r])
                .into_iter()
                .find(|f| f.name == "429s received")
                .and_then(|f| f.ratio)
        };
        assert_eq!(ratio(&quiet), Some(0.0));
        assert_eq!(ratio(&noisy), Some(f64::INFINITY));
    }
}
