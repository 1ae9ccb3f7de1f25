//! The state file: its JSON format, loading at start, and atomic rewrites after mutations
//! (temp file in the same directory, fsync, rename).

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::EmulatorError;

/// Current state-file format version.
pub const FORMAT: u32 = 1;

/// What the state file holds: every application with its integrations, plus the id counter
/// so ids stay unique across restarts.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateFile {
    pub format: u32,
    pub id_counter: u32,
    pub applications: BTreeMap<String, Vec<Map<String, Value>>>,
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
    pub async fn save(&self, generation: u64, bytes: Vec<u8>) -> io::Result<()> {
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
    let mut file = fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, path)?;
    // Persist the rename itself; not every platform lets a directory be opened, so best effort.
    if let Ok(d) = fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
