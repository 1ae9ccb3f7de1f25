//! Emulator state: applications and their integrations (each with its simulated connection)
//! behind a mutex, id generation, and hand-off of snapshots to the state file after every
//! mutation.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use serde_json::{Map, Value, json};

use super::EmulatorError;
use super::connection::{Connection, ConnectionConfig, ConnectionOverride, Facts, reconnects};
use super::error::{APPLICATION_NOT_FOUND, ApiError, INTEGRATION_NOT_FOUND};
use super::persist::{FORMAT, Persister, StateFile};

struct Record {
    doc: Map<String, Value>,
    /// Lists include the record only from this instant on (`--list-lag-ms`).
    listed_from: Option<Instant>,
    connection: Connection,
}

impl Record {
    /// The integration as answered at `now_ms`: the stored document plus its `status`.
    fn view(&self, now_ms: i64, config: &ConnectionConfig) -> Map<String, Value> {
        let mut doc = self.doc.clone();
        let reported = self
            .connection
            .report(now_ms, &Facts::of(&self.doc), config);
        doc.insert("status".into(), reported.to_status());
        doc
    }
}

struct State {
    apps: HashMap<String, HashMap<String, Record>>,
    id_counter: u32,
    /// Bumped on every mutation so the persister can drop stale snapshots.
    generation: u64,
    rng: StdRng,
}

/// All integrations of all applications.
pub struct Store {
    state: Mutex<State>,
    persister: Option<Arc<Persister>>,
    list_lag: Duration,
    connection: ConnectionConfig,
}

type Snapshot = Option<(u64, Vec<u8>)>;

impl Store {
    /// Builds the store, loading the state file (if any) and adding the configured applications.
    pub fn open(
        applications: &[String],
        persister: Option<Arc<Persister>>,
        seed: u64,
        list_lag: Duration,
        connection: ConnectionConfig,
    ) -> Result<Self, EmulatorError> {
        let mut loaded = match &persister {
            Some(p) => p.load()?.unwrap_or_default(),
            None => StateFile::default(),
        };
        let now_ms = Timestamp::now().as_millisecond();
        let mut apps: HashMap<String, HashMap<String, Record>> = HashMap::new();
        for (app, docs) in loaded.applications {
            let records = docs.into_iter().filter_map(|mut doc| {
                let id = doc.get("id")?.as_str()?.to_owned();
                // Files from before the simulation stored a fixed `status`; it is derived now.
                doc.remove("status");
                let connection = loaded
                    .connections
                    .remove(&id)
                    .unwrap_or_else(|| Connection::new(now_ms));
                let record = Record {
                    doc,
                    listed_from: None,
                    connection,
                };
                Some((id, record))
            });
            apps.insert(app.to_ascii_lowercase(), records.collect());
        }
        for app in applications {
            apps.entry(app.to_ascii_lowercase()).or_default();
        }
        let state = State {
            apps,
            id_counter: loaded.id_counter,
            generation: 0,
            rng: StdRng::seed_from_u64(seed),
        };
        Ok(Self {
            state: Mutex::new(state),
            persister,
            list_lag,
            connection,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied mutation behind (each is a
        // single insert/remove), so a poisoned lock is still safe to use.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores a new integration built from a validated create body.
    pub async fn create(
        &self,
        app: &str,
        body: Map<String, Value>,
    ) -> Result<Map<String, Value>, ApiError> {
        let (doc, snapshot) = {
            let mut st = self.lock();
            if !st.apps.contains_key(app) {
                return Err(ApiError::NotFound(APPLICATION_NOT_FOUND));
            }
            let now_ms = Timestamp::now().as_millisecond();
            let id = st.fresh_id(now_ms);
            let doc = new_doc(body, &id, app, now_ms);
            let listed_from = (!self.list_lag.is_zero()).then(|| listed_after(self.list_lag));
            let record = Record {
                doc,
                listed_from,
                connection: Connection::new(now_ms),
            };
            let view = record.view(now_ms, &self.connection);
            st.apps
                .entry(app.to_owned())
                .or_default()
                .insert(id, record);
            (view, self.snapshot(&mut st))
        };
        self.persist(snapshot).await?;
        Ok(doc)
    }

    /// Returns one integration.
    pub fn get(&self, app: &str, id: &str) -> Result<Map<String, Value>, ApiError> {
        let st = self.lock();
        let now_ms = Timestamp::now().as_millisecond();
        Ok(find(&st, app, id)?.view(now_ms, &self.connection))
    }

    /// Merges a validated patch body: top-level keys replace, `credentialName: null` removes.
    pub async fn patch(
        &self,
        app: &str,
        id: &str,
        patch: Map<String, Value>,
    ) -> Result<Map<String, Value>, ApiError> {
        let (doc, snapshot) = {
            let mut st = self.lock();
            let record = find_mut(&mut st, app, id)?;
            let before = record.doc.clone();
            for (key, value) in patch {
                if value.is_null() {
                    record.doc.remove(&key);
                } else {
                    record.doc.insert(key, value);
                }
            }
            let stamp = bumped_stamp(record.doc.get("lastUpdated"));
            record.doc.insert("lastUpdated".into(), json!(stamp));
            let now_ms = Timestamp::now().as_millisecond();
            if reconnects(&before, &record.doc) {
                let config = &self.connection;
                record
                    .connection
                    .restart(now_ms, &Facts::of(&before), config);
            }
            let view = record.view(now_ms, &self.connection);
            (view, self.snapshot(&mut st))
        };
        self.persist(snapshot).await?;
        Ok(doc)
    }

    /// Removes one integration.
    pub async fn delete(&self, app: &str, id: &str) -> Result<(), ApiError> {
        let snapshot = {
            let mut st = self.lock();
            find(&st, app, id)?;
            if let Some(records) = st.apps.get_mut(app) {
                records.remove(id);
            }
            self.snapshot(&mut st)
        };
        self.persist(snapshot).await
    }

    /// The integrations a list may show right now (list lag applied).
    pub fn listable(&self, app: &str) -> Result<Vec<Map<String, Value>>, ApiError> {
        let st = self.lock();
        let records = st
            .apps
            .get(app)
            .ok_or(ApiError::NotFound(APPLICATION_NOT_FOUND))?;
        let now = Instant::now();
        let now_ms = Timestamp::now().as_millisecond();
        let visible = records
            .values()
            .filter(|r| r.listed_from.is_none_or(|t| t <= now));
        Ok(visible.map(|r| r.view(now_ms, &self.connection)).collect())
    }

    /// Applies an admin override to the connection of integration `id` (of any application)
    /// and returns its `status` as of now.
    pub async fn override_connection(
        &self,
        id: &str,
        wanted: ConnectionOverride,
    ) -> Result<Value, ApiError> {
        let (status, snapshot) = {
            let mut st = self.lock();
            let record = st
                .apps
                .values_mut()
                .find_map(|records| records.get_mut(id))
                .ok_or(ApiError::NotFound(INTEGRATION_NOT_FOUND))?;
            let now_ms = Timestamp::now().as_millisecond();
            let facts = Facts::of(&record.doc);
            let config = &self.connection;
            record
                .connection
                .set_override(now_ms, &facts, wanted, config);
            let status = record.connection.report(now_ms, &facts, config);
            (status.to_status(), self.snapshot(&mut st))
        };
        self.persist(snapshot).await?;
        Ok(status)
    }

    /// Every stored integration of `app`, unredacted and ignoring list lag (for tests).
    pub fn all(&self, app: &str) -> Option<Vec<Value>> {
        let st = self.lock();
        let now_ms = Timestamp::now().as_millisecond();
        let mut docs: Vec<Map<String, Value>> = st
            .apps
            .get(app)?
            .values()
            .map(|r| r.view(now_ms, &self.connection))
            .collect();
        docs.sort_by(|a, b| id_of(a).cmp(id_of(b)));
        Some(docs.into_iter().map(Value::Object).collect())
    }

    fn snapshot(&self, st: &mut State) -> Snapshot {
        st.generation += 1;
        self.persister.as_ref()?;
        let applications: BTreeMap<String, Vec<Map<String, Value>>> = st
            .apps
            .iter()
            .map(|(app, records)| {
                let mut docs: Vec<Map<String, Value>> =
                    records.values().map(|r| r.doc.clone()).collect();
                docs.sort_by(|a, b| id_of(a).cmp(id_of(b)));
                (app.clone(), docs)
            })
            .collect();
        let connections = st
            .apps
            .values()
            .flat_map(|records| records.iter())
            .map(|(id, r)| (id.clone(), r.connection.clone()))
            .collect();
        let file = StateFile {
            format: FORMAT,
            id_counter: st.id_counter,
            applications,
            connections,
        };
        let bytes = serde_json::to_vec_pretty(&file).ok()?;
        Some((st.generation, bytes))
    }

    async fn persist(&self, snapshot: Snapshot) -> Result<(), ApiError> {
        let (Some(persister), Some((generation, bytes))) = (&self.persister, snapshot) else {
            return Ok(());
        };
        persister.save(generation, bytes).await.map_err(|e| {
            tracing::error!(error = %e, "writing the state file failed");
            ApiError::Internal
        })
    }
}

impl State {
    /// ObjectId-like: 4-byte seconds timestamp, 5 seeded random bytes, 3-byte counter.
    fn fresh_id(&mut self, now_ms: i64) -> String {
        let secs = u32::try_from(now_ms.div_euclid(1000)).unwrap_or(u32::MAX);
        loop {
            // `wrapping_add`: the counter may come from a state file with any u32 in it.
            self.id_counter = self.id_counter.wrapping_add(1) & 0x00FF_FFFF;
            let mut bytes = [0u8; 12];
            bytes[..4].copy_from_slice(&secs.to_be_bytes());
            self.rng.fill_bytes(&mut bytes[4..9]);
            bytes[9..].copy_from_slice(&self.id_counter.to_be_bytes()[1..]);
            let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            if !self.apps.values().any(|records| records.contains_key(&id)) {
                return id;
            }
        }
    }
}

/// The instant a record created now joins lists. A lag beyond what the clock can represent
/// (e.g. `Duration::MAX`) would overflow `Instant`; it means "not in this process's lifetime".
fn listed_after(lag: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(u32::MAX as u64);
    let now = Instant::now();
    now.checked_add(lag.min(FAR)).unwrap_or(now)
}

fn find<'a>(st: &'a State, app: &str, id: &str) -> Result<&'a Record, ApiError> {
    let records = st
        .apps
        .get(app)
        .ok_or(ApiError::NotFound(APPLICATION_NOT_FOUND))?;
    records
        .get(id)
        .ok_or(ApiError::NotFound(INTEGRATION_NOT_FOUND))
}

fn find_mut<'a>(st: &'a mut State, app: &str, id: &str) -> Result<&'a mut Record, ApiError> {
    let records = st
        .apps
        .get_mut(app)
        .ok_or(ApiError::NotFound(APPLICATION_NOT_FOUND))?;
    records
        .get_mut(id)
        .ok_or(ApiError::NotFound(INTEGRATION_NOT_FOUND))
}

fn id_of(doc: &Map<String, Value>) -> &str {
    doc.get("id").and_then(Value::as_str).unwrap_or_default()
}

fn new_doc(body: Map<String, Value>, id: &str, app: &str, now_ms: i64) -> Map<String, Value> {
    let mut doc = body;
    let stamp = iso_millis(now_ms);
    doc.insert("id".into(), json!(id));
    doc.insert("integrationId".into(), json!(id));
    doc.insert("applicationId".into(), json!(app));
    doc.insert("creationDate".into(), json!(stamp));
    doc.insert("lastUpdated".into(), json!(stamp));
    doc
}

/// A new `lastUpdated` strictly after the previous one, so every patch visibly bumps it.
fn bumped_stamp(previous: Option<&Value>) -> String {
    let now_ms = Timestamp::now().as_millisecond();
    let prev_ms = previous
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<Timestamp>().ok())
        .map(|t| t.as_millisecond());
    iso_millis(prev_ms.map_or(now_ms, |p| now_ms.max(p + 1)))
}

/// ISO-8601 UTC with exactly three fractional digits, e.g. `2016-06-13T04:00:00.000Z`.
pub fn iso_millis(ms: i64) -> String {
    Timestamp::from_millisecond(ms)
        .map(|t| format!("{t:.3}"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_format() {
        assert_eq!(iso_millis(1_465_790_400_000), "2016-06-13T04:00:00.000Z");
        assert_eq!(iso_millis(1_465_790_400_123), "2016-06-13T04:00:00.123Z");
    }

    #[tokio::test]
    async fn an_endless_list_lag_hides_instead_of_panicking() {
        let app = "575ec8687ae143cd83dc4a97".to_owned();
        let store = Store::open(
            std::slice::from_ref(&app),
            None,
            1,
            Duration::MAX,
            ConnectionConfig::default(),
        )
        .unwrap();
        let body = json!({"name": "n", "integrationType": "sqs"});
        let Value::Object(body) = body else {
            unreachable!()
        };
        let doc = store.create(&app, body).await.unwrap();
        assert!(store.listable(&app).unwrap().is_empty());
        assert!(store.get(&app, id_of(&doc)).is_ok());
    }

    #[test]
    fn bump_is_strictly_later() {
        let future = iso_millis(Timestamp::now().as_millisecond() + 60_000);
        let bumped = bumped_stamp(Some(&json!(future)));
        assert!(bumped > future, "{bumped} <= {future}");
    }
}
