//! Where the binaries under test are: the ones cargo built next to the running program.
//!
//! Cargo builds every binary of the package before it runs an integration test, into the
//! profile's directory (`target/debug`); test programs run from its `deps/` subdirectory, other
//! programs (the benchmark) from the directory itself. Environment variables must not be the
//! only way to find them, since the kit also serves programs that are not tests.

use std::path::{Path, PathBuf};

/// The profile directory (`target/debug`, `target/release`) of the running program: its own
/// directory, or the parent of that when it is `deps/` (where test programs are).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.file_name().is_some_and(|name| name == "deps") {
        dir.parent().map(Path::to_path_buf).unwrap_or(dir)
    } else {
        dir
    }
}

/// The binary `name` in [`profile_dir`].
pub fn sibling_binary(name: &str) -> PathBuf {
    profile_dir().join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// The operator binary to run: `LOSANT_OPERATOR_BIN` when set (CI points it at the release
/// build the Dockerfile makes), else the one cargo built beside this program.
pub fn operator_binary() -> PathBuf {
    match std::env::var_os("LOSANT_OPERATOR_BIN") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => sibling_binary("losant-operator"),
    }
}

/// The `losant-emulator` cargo built beside this program.
pub fn emulator_binary() -> PathBuf {
    sibling_binary("losant-emulator")
}
