//! Log files of child processes: where they go, and reading them back for a failure report.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use super::binaries::profile_dir;

/// The directory for process logs: `LOSANT_E2E_LOG_DIR`, else `e2e-logs/` in cargo's temporary
/// directory for tests (`target/tmp`, beside the profile directory). Created when missing.
///
/// # Panics
/// When the directory cannot be created: nothing could be logged.
pub fn log_dir() -> PathBuf {
    let dir = match std::env::var_os("LOSANT_E2E_LOG_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => {
            let profile = profile_dir();
            let target = profile.parent().unwrap_or(&profile);
            target.join("tmp").join("e2e-logs")
        }
    };
    if let Err(e) = std::fs::create_dir_all(&dir) {
        panic!("cannot create the log directory {}: {e}", dir.display());
    }
    dir
}

/// A fresh log file path: `<prefix>-<pid>-<n>.log` in [`log_dir`].
pub fn new_log_path(prefix: &str) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    log_dir().join(format!("{prefix}-{}-{n}.log", std::process::id()))
}

/// The file's text (invalid UTF-8 replaced), or nothing when it cannot be read.
pub fn read_lossy(path: &Path) -> String {
    let mut bytes = Vec::new();
    if let Ok(mut file) = File::open(path) {
        // A log cut short by a read error still helps; what was read is kept.
        file.read_to_end(&mut bytes).ok();
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
