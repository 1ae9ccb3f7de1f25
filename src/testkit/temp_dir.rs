//! A throwaway directory ([`TempDir`]) for files a test writes: state files, certificates.

use std::path::{Path, PathBuf};

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `losant-test-TAG-PID-RANDOM` under the system temp dir.
    ///
    /// # Panics
    /// When it cannot be created.
    pub fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "losant-test-{tag}-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        if let Err(e) = std::fs::create_dir_all(&dir) {
            panic!("cannot create {}: {e}", dir.display());
        }
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // What cannot be removed stays in the system temp dir, where it harms nothing.
        std::fs::remove_dir_all(&self.0).ok();
    }
}
