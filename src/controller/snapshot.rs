//! Per-application views of the remote integrations, so that reconciles share list calls
//! instead of spending one each.
//!
//! A view is filled by one paged list of the whole application (a *refresh*) and kept current
//! by this process's own writes (write-through: a create or patch answer is the remote state as
//! of that write; a delete removes the entry). The sweeper refreshes each application's view
//! once per resync interval; reconciles of unchanged objects then compare against it with no
//! call of their own.
//!
//! # Guarantees
//! - An entry is used only if it is as recent as the caller needs (`max_age`, and no older than
//!   the last write to that integration, by this process or as recorded in status).
//! - Absence from a view never means "gone": a recorded integration missing from it is read by
//!   id, since lists may lag behind creates.
//! - A refresh that races with a write keeps the write: writes made after the refresh started
//!   are applied over what the list returned.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;

use super::clock::Clock;
use crate::losant::{self, Integration};

/// How long this process's own writes are remembered: longer than any refresh takes, so one that
/// started before a write cannot undo it.
const WRITE_MEMORY: Duration = Duration::from_secs(120);

/// One integration as last seen, kept as its JSON, much smaller than the struct: a view holds
/// every integration of its application. Never printed: it may hold secret values.
#[derive(Clone, PartialEq)]
struct Entry {
    /// The integration (made [`slim`]) as JSON, without `unreadable_fields`.
    json: Box<str>,
    /// Its `unreadable_fields` (which JSON does not carry).
    unreadable_fields: Vec<String>,
    /// Its name, for lookups by name without reading every entry.
    name: Box<str>,
    /// When it was seen: the start of the refresh that listed it, or the time of our write.
    as_of: Timestamp,
}

impl Entry {
    fn new(integration: Integration, as_of: Timestamp) -> Self {
        let mut integration = slim(integration);
        Self {
            // Serializing this struct cannot fail (no maps, no non-string keys); were it ever
            // to, the entry reads back as unknown and the integration is read by id.
            json: serde_json::to_string(&integration)
                .unwrap_or_default()
                .into_boxed_str(),
            unreadable_fields: std::mem::take(&mut integration.unreadable_fields),
            name: integration.name.into_boxed_str(),
            as_of,
        }
    }

    /// The integration, if it reads back (always, see `new`).
    fn integration(&self) -> Option<Integration> {
        let mut integration: Integration = serde_json::from_str(&self.json).ok()?;
        integration.unreadable_fields = self.unreadable_fields.clone();
        Some(integration)
    }

    /// What a lookup found in this entry.
    fn seen(&self) -> Seen {
        match self.integration() {
            Some(integration) => Seen::Found(Box::new(integration)),
            None => Seen::Absent,
        }
    }
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("as_of", &self.as_of)
            .finish_non_exhaustive()
    }
}

/// The integration without what no comparison reads: the id repeated, the application id (the
/// view's own) and the timestamps. Keeping them would cost memory in every entry of every view,
/// and a change of `lastUpdated` alone is no drift.
fn slim(mut integration: Integration) -> Integration {
    integration.integration_id = None;
    integration.application_id = None;
    integration.creation_date = None;
    integration.last_updated = None;
    // Keep-alives tick all the time; what the connection state is made of changes rarely, and
    // only such a change should make the sweep compare the object again.
    if let Some(status) = &mut integration.status {
        status.last_keep_alive = None;
    }
    integration
}

/// A write by this process, kept to merge into refreshes that started before it landed.
#[derive(Clone, Debug)]
struct Write {
    at: Timestamp,
    /// The remote after the write; `None` for a delete.
    after: Option<Integration>,
}

#[derive(Debug, Default)]
struct View {
    /// When the last completed refresh started.
    taken: Option<Timestamp>,
    by_id: HashMap<String, Entry>,
    /// Names of listed items that could not be read.
    unreadable_names: Vec<Option<String>>,
    writes: HashMap<String, Write>,
    /// Ids whose remote changed (or appeared, or went) at any refresh since the sweeper last
    /// asked, so a refresh made for a lookup between sweeps hides nothing from the next sweep.
    changed_since_sweep: HashSet<String>,
}

impl View {
    fn apply_write(&mut self, id: &str, write: &Write) {
        match &write.after {
            Some(integration) => {
                self.by_id
                    .insert(id.to_owned(), Entry::new(integration.clone(), write.at));
            }
            None => {
                self.by_id.remove(id);
            }
        }
    }
}

#[derive(Default)]
struct Slot {
    view: Mutex<View>,
    /// One refresh at a time per application; others wait and share it.
    refreshing: tokio::sync::Mutex<()>,
}

/// What a lookup by id found.
#[derive(Clone, Debug, PartialEq)]
pub enum Seen {
    /// The view holds it, recently enough.
    Found(Box<Integration>),
    /// A recent enough view does not hold it (read it by id: lists may lag).
    Absent,
}

/// Views by API URL and application id.
pub struct Snapshots {
    slots: Mutex<HashMap<(String, String), Arc<Slot>>>,
    /// When a view was taken, and how old it is, by this clock.
    clock: Clock,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Snapshots {
    /// No views yet; their ages are read from `clock`.
    pub fn new(clock: Clock) -> Self {
        Self {
            slots: Mutex::default(),
            clock,
        }
    }

    fn slot(&self, api_url: &str, application_id: &str) -> Arc<Slot> {
        let mut slots = lock(&self.slots);
        Arc::clone(
            slots
                .entry((api_url.to_owned(), application_id.to_owned()))
                .or_default(),
        )
    }

    /// The sweeper's refresh: lists the whole application now and replaces its view (merging
    /// this process's writes). Returns the ids whose remote changed since the previous sweep's
    /// refresh (changed, new or gone), including changes that refreshes for lookups saw since.
    pub async fn refresh_for_sweep(
        &self,
        client: &losant::Client,
        application_id: &str,
    ) -> Result<HashSet<String>, losant::Error> {
        let slot = self.slot(client.api_url(), application_id);
        let _one_at_a_time = slot.refreshing.lock().await;
        self.refresh_slot(&slot, client, application_id).await?;
        Ok(std::mem::take(&mut lock(&slot.view).changed_since_sweep))
    }

    async fn refresh_slot(
        &self,
        slot: &Slot,
        client: &losant::Client,
        application_id: &str,
    ) -> Result<(), losant::Error> {
        let started = self.clock.now();
        let listing = client.list_everything(application_id).await?;
        let mut view = lock(&slot.view);
        let previous = std::mem::take(&mut view.by_id);
        view.by_id = listing
            .items
            .into_iter()
            .map(|integration| (integration.id.clone(), Entry::new(integration, started)))
            .collect();
        view.unreadable_names = listing.unreadable_names;
        view.taken = Some(started);
        let forget_before = started - WRITE_MEMORY;
        let writes: Vec<(String, Write)> = view
            .writes
            .iter()
            .filter(|(_, w)| w.at >= forget_before)
            .map(|(id, w)| (id.clone(), w.clone()))
            .collect();
        // Writes newer than the list win. (An older create missing from the list is left out:
        // it was deleted since, or the list lags; a reconcile then reads it by id.)
        for (id, write) in &writes {
            if write.at >= started {
                view.apply_write(id, write);
            }
        }
        view.writes = writes.into_iter().collect();
        let changed: Vec<String> = view
            .by_id
            .iter()
            .filter(|(id, entry)| {
                previous.get(*id).is_none_or(|before| {
                    (&before.json, &before.unreadable_fields)
                        != (&entry.json, &entry.unreadable_fields)
                })
            })
            .map(|(id, _)| id.clone())
            .chain(
                previous
                    .keys()
                    .filter(|id| !view.by_id.contains_key(*id))
                    .cloned(),
            )
            .collect();
        view.changed_since_sweep.extend(changed);
        Ok(())
    }

    /// Refreshes unless the view was taken within `max_age` (and after `not_before`).
    async fn ensure_fresh(
        &self,
        client: &losant::Client,
        application_id: &str,
        max_age: Duration,
        not_before: Option<Timestamp>,
    ) -> Result<Arc<Slot>, losant::Error> {
        let slot = self.slot(client.api_url(), application_id);
        let fresh = |slot: &Slot| {
            let view = lock(&slot.view);
            view.taken.is_some_and(|taken| {
                self.age(taken) <= max_age && not_before.is_none_or(|not_before| taken > not_before)
            })
        };
        if fresh(&slot) {
            return Ok(slot);
        }
        let asked = self.clock.now();
        {
            let _one_at_a_time = slot.refreshing.lock().await;
            // Someone else may have refreshed while this waited: a refresh that started after
            // this asked is as good as one of its own.
            let refreshed_since = lock(&slot.view).taken.is_some_and(|taken| taken >= asked);
            if !refreshed_since && !fresh(&slot) {
                self.refresh_slot(&slot, client, application_id).await?;
            }
        }
        Ok(slot)
    }

    /// The integration `id` as seen no longer than `max_age` ago and after `not_before` (the
    /// last write recorded in status; this process's own later writes count too), refreshing
    /// the view if it cannot answer.
    pub async fn lookup(
        &self,
        client: &losant::Client,
        application_id: &str,
        id: &str,
        max_age: Duration,
        not_before: Option<Timestamp>,
    ) -> Result<Seen, losant::Error> {
        if let Some(seen) = self.cached(client.api_url(), application_id, id, max_age, not_before) {
            return Ok(seen);
        }
        let not_before = not_before.max(self.own_write(client.api_url(), application_id, id));
        let slot = self
            .ensure_fresh(client, application_id, max_age, not_before)
            .await?;
        let view = lock(&slot.view);
        Ok(match view.by_id.get(id) {
            Some(entry) => entry.seen(),
            None => Seen::Absent,
        })
    }

    /// What the view says about `id` without any call, if that is recent enough.
    pub fn cached(
        &self,
        api_url: &str,
        application_id: &str,
        id: &str,
        max_age: Duration,
        not_before: Option<Timestamp>,
    ) -> Option<Seen> {
        let slot = self.slot(api_url, application_id);
        let view = lock(&slot.view);
        let own_write = view.writes.get(id).map(|w| w.at);
        // A status time recorded by this process is later than the write itself; our own record
        // of the write is the precise one.
        let not_before = own_write.or(not_before);
        let recent = |as_of: Timestamp| {
            self.age(as_of) <= max_age && not_before.is_none_or(|not_before| as_of >= not_before)
        };
        match view.by_id.get(id) {
            Some(entry) if recent(entry.as_of) => Some(entry.seen()),
            None if view.taken.is_some_and(|taken| {
                recent(taken) && own_write.is_none_or(|written| taken > written)
            }) =>
            {
                Some(Seen::Absent)
            }
            _ => None,
        }
    }

    fn own_write(&self, api_url: &str, application_id: &str, id: &str) -> Option<Timestamp> {
        let slot = self.slot(api_url, application_id);
        let view = lock(&slot.view);
        view.writes.get(id).map(|w| w.at)
    }

    /// The integrations named exactly `name`, from a view no older than `max_age` and taken
    /// after `not_before`. An error if an item that could not be read might carry that name.
    pub async fn find_by_name(
        &self,
        client: &losant::Client,
        application_id: &str,
        name: &str,
        max_age: Duration,
        not_before: Option<Timestamp>,
    ) -> Result<Vec<Integration>, losant::Error> {
        let slot = self
            .ensure_fresh(client, application_id, max_age, not_before)
            .await?;
        let view = lock(&slot.view);
        let unreadable = view
            .unreadable_names
            .iter()
            .filter(|n| n.as_deref().is_none_or(|n| n == name))
            .count();
        if unreadable > 0 {
            return Err(losant::Error::Decode {
                status: 200,
                reason: format!(
                    "{unreadable} listed item(s) that may have this name could not be read"
                ),
            });
        }
        let mut found: Vec<Integration> = view
            .by_id
            .values()
            .filter(|entry| &*entry.name == name)
            .map(|entry| {
                entry.integration().ok_or_else(|| losant::Error::Decode {
                    status: 200,
                    reason: "a kept integration with this name could not be read back".into(),
                })
            })
            .collect::<Result<_, _>>()?;
        found.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(found)
    }

    /// Notes that this process just wrote integration `id`, which now is `after` (`None`:
    /// deleted).
    pub fn note_write(
        &self,
        api_url: &str,
        application_id: &str,
        id: &str,
        after: Option<&Integration>,
    ) {
        let slot = self.slot(api_url, application_id);
        let mut view = lock(&slot.view);
        let write = Write {
            at: self.clock.now(),
            after: after.cloned().map(slim),
        };
        view.apply_write(id, &write);
        view.writes.insert(id.to_owned(), write);
    }

    /// Notes integrations read by a call of their own (a lookup by name or id), so a follow-up
    /// reconcile can use them.
    pub fn note_seen(&self, api_url: &str, application_id: &str, seen: &[Integration]) {
        let slot = self.slot(api_url, application_id);
        let mut view = lock(&slot.view);
        let now = self.clock.now();
        for integration in seen {
            view.by_id
                .insert(integration.id.clone(), Entry::new(integration.clone(), now));
        }
    }

    /// How many integrations the views hold, in all (for tests and metrics).
    pub fn len(&self) -> usize {
        let slots = lock(&self.slots);
        slots
            .values()
            .map(|slot| lock(&slot.view).by_id.len())
            .sum()
    }

    /// Whether the views hold nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn age(&self, at: Timestamp) -> Duration {
        self.clock.now().duration_since(at).unsigned_abs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote() -> Integration {
        serde_json::from_value(serde_json::json!({
            "id": "6b0ae4a51337747874000002", "integrationId": "6b0ae4a51337747874000002",
            "applicationId": "000000000000000000be0003", "name": "broker",
            "integrationType": "mqtt", "enabled": true, "topics": ["a/b"],
            "creationDate": "2026-11-28T14:26:45.000Z", "lastUpdated": "2026-11-28T14:26:45.000Z",
            "mqttConfig": {"host": "h", "port": 8883, "password": "hunter2-secret-value"}
        }))
        .unwrap()
    }

    #[test]
    fn an_entry_reads_back_as_the_slim_integration_and_never_prints_it() {
        let mut original = remote();
        original.unreadable_fields = vec!["particleConfig".into()];
        let entry = Entry::new(original.clone(), Timestamp::now());
        let read = entry.integration().unwrap();
        assert_eq!(read, slim(original));
        assert_eq!(read.unreadable_fields, ["particleConfig"]);
        assert_eq!(read.last_updated, None);
        assert_eq!(&*entry.name, "broker");
        assert!(!format!("{entry:?}").contains("hunter2"));
        assert_eq!(entry.seen(), Seen::Found(Box::new(read)));
    }

    #[test]
    fn a_change_of_last_updated_alone_is_no_change() {
        let mut touched = remote();
        touched.last_updated = Some("2026-11-29T00:00:00.000Z".into());
        let now = Timestamp::now();
        assert_eq!(Entry::new(remote(), now), Entry::new(touched, now));
        let mut moved = remote();
        moved.topics = Some(vec!["c/d".into()]);
        assert_ne!(Entry::new(remote(), now), Entry::new(moved, now));
    }
}
