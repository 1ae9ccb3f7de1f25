//! Who did what on the API server: the identity the operators the tests start use, and the API
//! server's audit log.
//!
//! `scripts/control-plane.sh` adds a user [`OPERATOR_USER`] (an admin's rights) with a kubeconfig
//! context of the same name, and writes an audit log, `logs/audit.log` beside the kubeconfig:
//! Secrets at `RequestResponse` (request and response bodies), everything else at `Metadata`.
//! [`OperatorProcess`](super::operator::OperatorProcess) runs as that user unless told otherwise,
//! so the log tells the operators' requests from the tests' own kubectl calls.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::OnceLock;

use jiff::Timestamp;
use serde_json::Value;

use super::kubectl::try_kubectl;
use super::logs::log_dir;

/// The user (and kubeconfig context) of the operators the tests start.
pub const OPERATOR_USER: &str = "losant-operator-e2e";

/// A kubeconfig for the operators the tests start: the environment's cluster as
/// [`OPERATOR_USER`], written once per process into [`log_dir`] (readable by its owner only: it
/// holds a token). `None` when the environment's kubeconfig has no such context (a control plane
/// started before it had one; `scripts/control-plane.sh down` and `up` add it): the operators
/// then use the environment's kubeconfig, and this says so once.
pub fn operator_kubeconfig() -> Option<PathBuf> {
    static WRITTEN: OnceLock<Option<PathBuf>> = OnceLock::new();
    WRITTEN
        .get_or_init(|| match write_operator_kubeconfig() {
            Ok(path) => Some(path),
            Err(why) => {
                eprintln!(
                    "note: the operators run with the tests' own identity, not as \
                     {OPERATOR_USER}: {why:#}"
                );
                None
            }
        })
        .clone()
}

fn write_operator_kubeconfig() -> anyhow::Result<PathBuf> {
    let out = try_kubectl(&[
        "config",
        "view",
        "--raw",
        "--flatten",
        "--minify",
        "--context",
        OPERATOR_USER,
        "-o",
        "json",
    ])?;
    if !out.status.success() {
        anyhow::bail!(
            "the kubeconfig has no context {OPERATOR_USER}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let path = log_dir().join(format!(
        "kubeconfig-{OPERATOR_USER}-{}.json",
        std::process::id()
    ));
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)?;
    file.write_all(&out.stdout)?;
    Ok(path)
}

/// The directory of the audit log: `logs/` beside the environment's kubeconfig, where
/// `scripts/control-plane.sh` puts both.
///
/// # Panics
/// When `KUBECONFIG` is not set.
pub fn audit_log_dir() -> PathBuf {
    let kubeconfig = std::env::var_os("KUBECONFIG")
        .and_then(|paths| std::env::split_paths(&paths).next())
        .unwrap_or_else(|| panic!("KUBECONFIG is not set: no control plane, so no audit log"));
    kubeconfig
        .parent()
        .map(|dir| dir.join("logs"))
        .unwrap_or_else(|| PathBuf::from("logs"))
}

/// The audit events the API servers received at or after `since`: from `audit.log`, its rotated
/// predecessors (`audit-<time>.log`) and a second API server's (`audit-uncached.log`, see
/// `scripts/control-plane.sh start apiserver-uncached`), file by file. Only lines containing every one of
/// `needles` are parsed (a cheap filter: the log of a whole run is large).
///
/// # Panics
/// When there is no audit log (with what to do about it).
pub fn audit_events_since(since: Timestamp, needles: &[&str]) -> Vec<Value> {
    let dir = audit_log_dir();
    let current = dir.join("audit.log");
    assert!(
        current.is_file(),
        "no audit log at {}: restart the control plane (`scripts/control-plane.sh down`, then \
         `up`), which writes one",
        current.display()
    );
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    // Sorted by name (rotated files oldest first), then the current one.
    files.retain(|path| {
        path.file_name()
            .and_then(|name| name.to_str())
            .is_some_and(|name| name.starts_with("audit-") && name.ends_with(".log"))
    });
    files.sort();
    files.push(current);
    // A file last written before `since` holds nothing newer.
    files.retain(|path| {
        let modified = std::fs::metadata(path).and_then(|m| m.modified());
        modified
            .ok()
            .and_then(|time| Timestamp::try_from(time).ok())
            .is_none_or(|time| time >= since)
    });
    let mut events = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        events.extend(
            text.lines()
                .filter(|line| needles.iter().all(|needle| line.contains(needle)))
                .filter_map(|line| serde_json::from_str::<Value>(line).ok())
                .filter(|event| received_at(event).is_some_and(|at| at >= since)),
        );
    }
    events
}

/// When the API server received the request of `event`.
pub fn received_at(event: &Value) -> Option<Timestamp> {
    event["requestReceivedTimestamp"].as_str()?.parse().ok()
}
