//! The state file: its JSON format, loading at start, and atomic rewrites after mutations
//! (temp file in the same directory, fsync, rename). The file holds secrets in clear, so on Unix
//! it is created readable by its owner only.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::EmulatorError;
use super::connection::Connection;

/// Current state-file format version.
pub const FORMAT: u32 = 1;

/// What the state file holds: every application with its integrations, plus the id counter
/// so ids stay unique across restarts, and each integration's simulated connection by id
/// (absent from files written before it existed: those integrations start over).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateFile {
    pub format: u32,
    pub id_counter: u32,
    pub applications: BTreeMap<String, Vec<Map<String, Value>>>,
    #[serde(default)]
    pub connections: BTreeMap<String, Connection>,
}

/// Writes the state file, never letting an older snapshot overwrite a newer one.
#[derive(Debug)]
pub struct Persister {
    path: PathBuf,
    /// Generation of the snapshot last written.
    written: tokio::sync::Mutex<u64>,
}

impl Persister {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            written: tokio::sync::Mutex::new(0),
        }
    }

    /// Reads the state file if it exists.
    pub fn load(&self) -> Result<Option<StateFile>, EmulatorError> {
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(EmulatorError::StateFileRead {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        let state =
            serde_json::from_slice(&bytes).map_err(|source| EmulatorError::StateFileParse {
                path: self.path.clone(),
                source,
            })?;
        Ok(Some(state))
    }

    /// Writes `bytes` (snapshot number `generation`) unless a newer snapshot is already on disk.
    ///
    /// The write runs in its own task: if the caller is dropped (its client hung up), the write
    /// still finishes while holding the lock, so a newer snapshot can never be overtaken by it.
    pub async fn save(self: &Arc<Self>, generation: u64, bytes: Vec<u8>) -> io::Result<()> {
        let this = Arc::clone(self);
        tokio::spawn(async move { this.save_in_order(generation, bytes).await })
            .await
            .map_err(io::Error::other)?
    }

    async fn save_in_order(&self, generation: u64, bytes: Vec<u8>) -> io::Result<()> {
        let mut written = self.written.lock().await;
        if generation <= *written {
            return Ok(());
        }
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || write_atomic(&path, &bytes))
            .await
            .map_err(io::Error::other)??;
        *written = generation;
        Ok(())
    }
}

/// Creates `path` (which must not exist) owner-only, writes `bytes` and syncs them.
fn write_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Replaces `path` atomically so a crash leaves either the old or the new file, never half.
fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Unique per writer, so two emulators sharing a directory never clobber each other.
    let tmp = dir.join(format!(
        ".{name}.tmp-{}-{:016x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    let result = write_new(&tmp, bytes).and_then(|()| fs::rename(&tmp, path));
    if result.is_err()
        && let Err(error) = fs::remove_file(&tmp)
    {
        // The write's own error is what matters; a stray temp file is only noted.
        tracing::debug!(path = %tmp.display(), %error, "could not remove a temporary state file");
    }
    result?;
    // Persist the rename itself; not every platform lets a directory be opened, so best effort.
    if let Ok(d) = fs::File::open(&dir)
        && let Err(error) = d.sync_all()
    {
        tracing::debug!(%error, "could not sync the state directory");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "losant-emulator-persist-{tag}-{}-{:016x}",
                std::process::id(),
                rand::random::<u64>()
            ));
            fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        /// Waits until no temp file of an unfinished write is left in the directory.
        async fn settle(&self) {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let writing = fs::read_dir(&self.0)
                    .unwrap()
                    .flatten()
                    .any(|e| e.file_name().to_string_lossy().contains(".tmp-"));
                if !writing {
                    return;
                }
                assert!(Instant::now() < deadline, "a write never finished");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            // A test's scratch directory; nothing to do if it is already gone.
            fs::remove_dir_all(&self.0).ok();
        }
    }

    /// A request whose client hangs up mid-save drops the save future. The write it started
    /// must still be ordered before newer ones, or it lands last and resurrects old state.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cancelled_save_never_overwrites_a_newer_one() {
        let dir = TempDir::new("cancel");
        let path = dir.0.join("state.json");
        let persister = Arc::new(Persister::new(path.clone()));
        // Big enough that writing and syncing it takes far longer than the small write.
        let old = vec![b' '; 16 * 1024 * 1024];
        let mut cancelled = Box::pin(persister.save(1, old));
        assert!(futures::poll!(cancelled.as_mut()).is_pending());
        drop(cancelled);
        persister.save(2, b"new".to_vec()).await.unwrap();
        dir.settle().await;
        let on_disk = fs::read(&path).unwrap();
        assert!(
            on_disk == b"new",
            "the older snapshot ({} bytes) landed last",
            on_disk.len()
        );
    }
}
