//! Deterministic crash points for tests: with `LOSANT_OPERATOR_FAILPOINT=<name>` set, the process
//! exits at exactly that point, the first time it is reached. Inert unless the variable is set.
//!
//! Points: `after-post` (Losant created the integration, nothing recorded yet), `before-status`
//! (the id is in the annotations, status not yet written), `after-delete` (the remote is deleted,
//! the finalizer not yet removed).

use std::sync::OnceLock;

/// The environment variable that arms a failpoint.
pub const FAILPOINT_ENV: &str = "LOSANT_OPERATOR_FAILPOINT";

/// Exit code of a process stopped by a failpoint.
pub const FAILPOINT_EXIT_CODE: i32 = 86;

fn armed() -> Option<&'static str> {
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    ARMED
        .get_or_init(|| std::env::var(FAILPOINT_ENV).ok().filter(|v| !v.is_empty()))
        .as_deref()
}

/// Exits the process if the failpoint `name` is armed.
pub fn hit(name: &str) {
    if armed() == Some(name) {
        eprintln!("failpoint {name} reached: exiting");
        std::process::exit(FAILPOINT_EXIT_CODE);
    }
}
