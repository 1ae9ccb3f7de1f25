//! Reading what the processes did: the emulator's request counts and remotes, the operator's
//! metrics and readiness (over HTTP, with a token of the benchmark's own), and a process's CPU
//! and memory (from /proc).

use std::collections::BTreeMap;

use anyhow::bail;
use losant_operator::testkit::EmulatorProcess;
use reqwest::Method;
use serde_json::Value;

/// The benchmark's own token, for its checks: another rate bucket, kept out of the figures.
pub const BENCH_TOKEN: &str = "bench-observer-token";
/// Losant's largest page, which the operator's client asks for.
pub const PER_PAGE: usize = 1000;

/// The emulator (through the test kit, with [`BENCH_TOKEN`]) and the operator's metrics
/// endpoint.
///
/// The kit's calls block: the run does one thing at a time, so the worker they hold up has
/// nothing else to do.
pub struct Observer<'a> {
    emulator: &'a EmulatorProcess,
    http: reqwest::Client,
    metrics: String,
}

impl<'a> Observer<'a> {
    pub fn new(emulator: &'a EmulatorProcess, metrics_port: u16) -> Observer<'a> {
        Observer {
            emulator,
            http: reqwest::Client::new(),
            metrics: format!("http://127.0.0.1:{metrics_port}"),
        }
    }

    /// Requests by kind, answers 429 and integrations created, from the emulator's stats.
    pub fn calls(&self) -> anyhow::Result<Calls> {
        let stats = self.emulator_get("/_emulator/stats")?;
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

    /// The operator's `/metrics` (OpenMetrics text).
    pub async fn metrics_text(&self) -> anyhow::Result<String> {
        Ok(self
            .http
            .get(format!("{}/metrics", self.metrics))
            .send()
            .await?
            .text()
            .await?)
    }

    /// Whether the operator's `/readyz` answers 200.
    pub async fn ready(&self) -> bool {
        matches!(
            self.http.get(format!("{}/readyz", self.metrics)).send().await,
            Ok(response) if response.status().is_success()
        )
    }

    /// The integration `id` of `app`.
    pub fn remote(&self, app: &str, id: &str) -> anyhow::Result<Value> {
        self.emulator_get(&integration_path(app, id))
    }

    /// Changes the integration `id` of `app` in Losant, behind the operator's back.
    pub fn patch_remote(&self, app: &str, id: &str, body: &Value) -> anyhow::Result<()> {
        let path = integration_path(app, id);
        let (status, answer) = self
            .emulator
            .try_request(Method::PATCH, &path, Some(body))?;
        if !status.is_success() {
            bail!("PATCH {path} answered {status}: {answer}");
        }
        Ok(())
    }

    /// Every remote integration of `app` (all pages).
    pub fn remotes(&self, app: &str) -> anyhow::Result<Vec<Value>> {
        let mut all = Vec::new();
        for page in 0.. {
            let path = format!(
                "/applications/{app}/integrations?perPage={PER_PAGE}&page={page}&sortField=id&_links=false&_embedded=false&_actions=false"
            );
            let body = self.emulator_get(&path)?;
            let items = body["items"].as_array().cloned().unwrap_or_default();
            let done = items.len() < PER_PAGE;
            all.extend(items);
            if done {
                break;
            }
        }
        Ok(all)
    }

    /// The JSON body of a GET from the emulator, whatever the status: an answer without the
    /// fields asked for (a 429) reads as nothing there yet, and the callers look again or
    /// report what is missing.
    fn emulator_get(&self, path: &str) -> anyhow::Result<Value> {
        let (_, body) = self.emulator.try_request(Method::GET, path, None)?;
        Ok(body)
    }
}

fn integration_path(app: &str, id: &str) -> String {
    format!("/applications/{app}/integrations/{id}")
}

/// Losant requests counted by the emulator since it started.
#[derive(Clone, Debug, Default)]
pub struct Calls {
    /// By kind: list, get, create, patch, delete, other.
    pub by_kind: BTreeMap<String, u64>,
    /// Answered 429.
    pub rate_limited: u64,
    /// Creates answered 201.
    pub created: u64,
}

impl Calls {
    /// The calls made since `earlier`.
    pub fn minus(&self, earlier: &Calls) -> Calls {
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

    pub fn kind(&self, kind: &str) -> u64 {
        self.by_kind.get(kind).copied().unwrap_or(0)
    }

    pub fn total(&self) -> u64 {
        self.by_kind.values().sum()
    }
}

/// The value of a sample in OpenMetrics text (`name{labels} value`); 0 when absent.
pub fn sample(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find(|line| {
            line.strip_prefix(name_and_labels)
                .is_some_and(|rest| rest.starts_with(' '))
        })
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// A process's memory, in MiB; 0 for what /proc did not tell.
#[derive(Clone, Copy, Debug, Default)]
pub struct Memory {
    pub resident: f64,
    pub peak_resident: f64,
    /// Of the resident: heap and other anonymous memory.
    pub anonymous: f64,
    /// Of the resident: mapped files (the binary itself).
    pub file: f64,
}

/// `pid`'s memory, from /proc (status and smaps_rollup).
pub fn memory(pid: u32) -> Memory {
    // A process gone or a file unreadable reads as 0, which the figures then show.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let anonymous = kib_field_in_mib(&rollup, "Anonymous:");
    Memory {
        resident: kib_field_in_mib(&status, "VmRSS:"),
        peak_resident: kib_field_in_mib(&status, "VmHWM:"),
        anonymous,
        file: (kib_field_in_mib(&rollup, "Rss:") - anonymous).max(0.0),
    }
}

/// The `name  N kB` line of a /proc file, in MiB; 0 when absent.
fn kib_field_in_mib(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kib| kib.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

/// CPU seconds (user + system) the process has used; 0 when /proc does not tell.
pub fn cpu_seconds(pid: u32) -> f64 {
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

/// CPU seconds of several processes from one moment on.
pub struct CpuSince {
    /// (name, pid, CPU seconds at the start).
    start: Vec<(String, u32, f64)>,
}

impl CpuSince {
    pub fn now(processes: &[(String, u32)]) -> CpuSince {
        let start = processes
            .iter()
            .map(|(name, pid)| (name.clone(), *pid, cpu_seconds(*pid)))
            .collect();
        CpuSince { start }
    }

    /// CPU seconds each process spent since [`CpuSince::now`], by name.
    pub fn spent(&self) -> BTreeMap<String, f64> {
        self.start
            .iter()
            .map(|(name, pid, start)| (name.clone(), cpu_seconds(*pid) - start))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_is_read_by_its_whole_name_and_labels() {
        let text = "a_total{x=\"1\"} 3\na_total{x=\"10\"} 7\nb 2.5\n";
        assert_eq!(sample(text, "a_total{x=\"1\"}"), 3.0);
        assert_eq!(sample(text, "a_total{x=\"10\"}"), 7.0);
        assert_eq!(sample(text, "b"), 2.5);
        assert_eq!(sample(text, "a_total"), 0.0);
    }

    #[test]
    fn calls_since_an_earlier_count_subtract_per_kind() {
        let earlier = Calls {
            by_kind: BTreeMap::from([("list".to_owned(), 4)]),
            rate_limited: 1,
            created: 0,
        };
        let later = Calls {
            by_kind: BTreeMap::from([("list".to_owned(), 10), ("create".to_owned(), 3)]),
            rate_limited: 1,
            created: 3,
        };
        let since = later.minus(&earlier);
        assert_eq!((since.kind("list"), since.kind("create")), (6, 3));
        assert_eq!(
            (since.total(), since.rate_limited, since.created),
            (9, 0, 3)
        );
    }
}
