//! Per-application list snapshots: periodic drift checks of all the Integrations of one
//! application share one paged list per resync interval instead of one GET each.
//!
//! A snapshot is only a shortcut: an integration absent from it is then read by id, never
//! assumed gone (lists may lag behind creates).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;

use crate::losant::{self, Integration};

struct Snapshot {
    taken: Timestamp,
    by_id: HashMap<String, Integration>,
}

type Slot = Arc<tokio::sync::Mutex<Option<Snapshot>>>;

/// Snapshots by API URL and application id.
#[derive(Default)]
pub struct Snapshots {
    slots: Mutex<HashMap<(String, String), Slot>>,
    /// When this process last wrote each integration (by id): a snapshot older than that cannot
    /// be trusted for it, whatever the (possibly stale) cached status says.
    writes: Mutex<HashMap<String, Timestamp>>,
}

impl Snapshots {
    /// The integration `id` as of a snapshot no older than `max_age` and taken after
    /// `not_before` (the last write to it), refreshing the snapshot if needed. `None` when the
    /// snapshot does not hold it.
    pub async fn lookup(
        &self,
        client: &losant::Client,
        application_id: &str,
        id: &str,
        max_age: Duration,
        not_before: Option<Timestamp>,
    ) -> Result<Option<Integration>, losant::Error> {
        let slot = {
            let mut slots = self
                .slots
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            Arc::clone(
                slots
                    .entry((client.api_url().to_owned(), application_id.to_owned()))
                    .or_default(),
            )
        };
        // One refresh at a time per application; the others wait and share it.
        let mut snapshot = slot.lock().await;
        let now = Timestamp::now();
        let written = self
            .writes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(id)
            .copied();
        let not_before = not_before.max(written);
        let fresh = snapshot.as_ref().is_some_and(|s| {
            let age = now.duration_since(s.taken).unsigned_abs();
            age <= max_age && not_before.is_none_or(|t| s.taken > t)
        });
        if !fresh {
            let items = client.list_all(application_id).await?;
            *snapshot = Some(Snapshot {
                taken: now,
                by_id: items.into_iter().map(|i| (i.id.clone(), i)).collect(),
            });
        }
        Ok(snapshot.as_ref().and_then(|s| s.by_id.get(id).cloned()))
    }

    /// Notes that this process just wrote integration `id`.
    pub fn note_write(&self, id: &str) {
        let mut writes = self
            .writes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Entries only matter for one resync interval; a bound keeps the map small.
        if writes.len() > 100_000 {
            writes.clear();
        }
        writes.insert(id.to_owned(), Timestamp::now());
    }
}
