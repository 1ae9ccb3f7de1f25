//! In-use finalizers: while any `Integration` references a `LosantApplication`, the application
//! and its token (and CA bundle) Secret carry the `losant.io/in-use` finalizer, so deleting a
//! namespace (or `kubectl delete -f examples/`, or an Argo CD prune) that removes everything at
//! once still lets every Integration delete its remote integration with that token. The
//! finalizers go when the last referencing Integration is gone. Secrets are given here as
//! metadata-only `Api`s: the finalizer is the only thing the operator ever writes to a Secret,
//! and it needs none of its data (`e2e::audit` checks both in the API server's audit log).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use kube::api::{Patch, PatchParams, ResourceExt};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use serde_json::json;

use super::error::Error;
use super::status::FIELD_MANAGER;
use crate::crd::{Integration, LosantApplication};

/// The finalizer on applications and their token and CA bundle Secrets in use.
pub const IN_USE_FINALIZER: &str = "losant.io/in-use";

/// How many Integrations (in the caches) reference the application `name` in `namespace`.
pub fn users(stores: &[Store<Integration>], namespace: &str, name: &str) -> usize {
    stores
        .iter()
        .flat_map(Store::state)
        .filter(|i| {
            i.namespace().as_deref() == Some(namespace) && i.spec.application_ref.name == name
        })
        .count()
}

/// Whether the Secret `secret` is needed: some application whose token or CA bundle it holds is
/// in use.
pub fn secret_needed(
    stores: &[Store<Integration>],
    apps: &[LosantApplication],
    namespace: &str,
    secret: &str,
) -> bool {
    apps.iter()
        .filter(|a| {
            a.spec.token_secret_ref.name == secret
                || a.spec
                    .ca_bundle_secret_ref
                    .as_ref()
                    .is_some_and(|r| r.name == secret)
        })
        .any(|a| users(stores, namespace, &a.name_any()) > 0)
}

/// Adds or removes the in-use finalizer with a JSON patch guarded by a test, never rewriting the
/// whole list (other controllers' finalizers stay as they are).
pub async fn set_finalizer<K>(api: &Api<K>, obj: &K, wanted: bool) -> Result<(), Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let has = |obj: &K| {
        obj.meta()
            .finalizers
            .iter()
            .flatten()
            .any(|f| f == IN_USE_FINALIZER)
    };
    if has(obj) == wanted {
        return Ok(());
    }
    // A change is due: build it on the latest copy. The cached one is often a write behind (the
    // same reconcile may just have written the application's status), and a patch tested
    // against its resourceVersion would fail and wait for a backoff.
    let Some(obj) = api
        .get_opt(&obj.name_any())
        .await
        .map_err(Error::kube("read an object for its in-use finalizer"))?
    else {
        return Ok(());
    };
    let obj = &obj;
    if wanted && obj.meta().deletion_timestamp.is_some() {
        // No finalizer may be added to an object being deleted.
        return Ok(());
    }
    let finalizers = obj.meta().finalizers.clone().unwrap_or_default();
    let position = finalizers.iter().position(|f| f == IN_USE_FINALIZER);
    let patch = match (wanted, position) {
        (true, Some(_)) | (false, None) => return Ok(()),
        (true, None) if finalizers.is_empty() => json!([
            {"op": "test", "path": "/metadata/resourceVersion", "value": obj.meta().resource_version},
            {"op": "add", "path": "/metadata/finalizers", "value": [IN_USE_FINALIZER]},
        ]),
        (true, None) => json!([
            {"op": "test", "path": "/metadata/resourceVersion", "value": obj.meta().resource_version},
            {"op": "add", "path": "/metadata/finalizers/-", "value": IN_USE_FINALIZER},
        ]),
        (false, Some(index)) => json!([
            {"op": "test", "path": format!("/metadata/finalizers/{index}"), "value": IN_USE_FINALIZER},
            {"op": "remove", "path": format!("/metadata/finalizers/{index}")},
        ]),
    };
    let patch: json_patch::Patch =
        serde_json::from_value(patch).map_err(|_| Error::InvalidPatch)?;
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    };
    api.patch(&obj.name_any(), &params, &Patch::<()>::Json(patch))
        .await
        .map_err(Error::kube("update an in-use finalizer"))?;
    Ok(())
}

/// Which applications an Integration watch event may have woken, see [`UsageTracker`].
#[derive(Debug, PartialEq, Eq)]
pub enum Wake {
    /// No application gained its first user or lost its last one.
    Nothing,
    /// These did.
    Applications(Vec<ObjectRef<LosantApplication>>),
    /// The cache was (re)listed: any application may have changed, including ones no cached
    /// Integration references any more (a stale finalizer from before a restart).
    Everything,
}

/// Follows the events of the Integration cache (after the cache applied them) and tells which
/// `LosantApplication`s may have gained their first user or lost their last one: the only
/// changes the in-use finalizers depend on. Waking the application reconciler for every
/// Integration event instead (a flood of them during a cold start) costs several API server
/// requests each and slows creates down at scale.
///
/// Integrations are keyed by uid (as a number) and applications are interned, so following a
/// large fleet stays small.
#[derive(Debug, Default)]
pub struct UsageTracker {
    /// Every application seen, as (namespace, name); indexes below refer to this.
    applications: Vec<(String, String)>,
    interned: HashMap<(String, String), u32>,
    /// The application each cached Integration references.
    users: HashMap<u128, u32>,
    /// How many cached Integrations reference each application.
    counts: Vec<usize>,
    /// Users met while the watch (re)lists; they replace `users` when the list is done.
    relisting: Option<HashMap<u128, u32>>,
}

impl UsageTracker {
    /// Accounts for `event` and says whom to wake.
    pub fn observe(&mut self, event: &watcher::Event<Integration>) -> Wake {
        match event {
            watcher::Event::Init => {
                self.relisting = Some(HashMap::new());
                Wake::Nothing
            }
            watcher::Event::InitApply(obj) => {
                if let Some((uid, app)) = self.identify(obj) {
                    self.relisting.get_or_insert_default().insert(uid, app);
                }
                Wake::Nothing
            }
            watcher::Event::InitDone => {
                self.users = self.relisting.take().unwrap_or_default();
                self.counts = vec![0; self.applications.len()];
                for app in self.users.values() {
                    self.counts[*app as usize] += 1;
                }
                Wake::Everything
            }
            watcher::Event::Apply(obj) => {
                let Some((uid, app)) = self.identify(obj) else {
                    return Wake::Nothing;
                };
                let before = self.users.insert(uid, app);
                if before == Some(app) {
                    return Wake::Nothing;
                }
                let mut woken = Vec::new();
                if let Some(before) = before {
                    woken.extend(self.lose_user(before));
                }
                woken.extend(self.gain_user(app));
                self.wake(woken)
            }
            watcher::Event::Delete(obj) => {
                let before = Self::uid(obj).and_then(|uid| self.users.remove(&uid));
                let woken = before.and_then(|app| self.lose_user(app));
                self.wake(woken.into_iter().collect())
            }
        }
    }

    fn identify(&mut self, obj: &Integration) -> Option<(u128, u32)> {
        let uid = Self::uid(obj)?;
        let namespace = obj.namespace().unwrap_or_default();
        let key = (namespace, obj.spec.application_ref.name.clone());
        let app = match self.interned.get(&key) {
            Some(app) => *app,
            None => {
                let app = u32::try_from(self.applications.len()).ok()?;
                self.applications.push(key.clone());
                self.interned.insert(key, app);
                self.counts.push(0);
                app
            }
        };
        Some((uid, app))
    }

    /// A uid is a UUID: 32 hex digits fit a u128 exactly. Anything else (no API server sends
    /// it) is hashed.
    fn uid(obj: &Integration) -> Option<u128> {
        let uid = obj.metadata.uid.as_deref()?;
        let digits: String = uid.chars().filter(|c| *c != '-').collect();
        Some(match u128::from_str_radix(&digits, 16) {
            Ok(number) if digits.len() == 32 => number,
            _ => {
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                uid.hash(&mut hasher);
                u128::from(hasher.finish())
            }
        })
    }

    fn gain_user(&mut self, app: u32) -> Option<u32> {
        let count = &mut self.counts[app as usize];
        *count += 1;
        (*count == 1).then_some(app)
    }

    fn lose_user(&mut self, app: u32) -> Option<u32> {
        let count = &mut self.counts[app as usize];
        *count = count.saturating_sub(1);
        (*count == 0).then_some(app)
    }

    fn wake(&self, apps: Vec<u32>) -> Wake {
        if apps.is_empty() {
            return Wake::Nothing;
        }
        Wake::Applications(
            apps.into_iter()
                .map(|app| {
                    let (namespace, name) = &self.applications[app as usize];
                    ObjectRef::new(name).within(namespace)
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn integration(name: &str, uid: &str, app: &str) -> Integration {
        serde_json::from_value(json!({
            "apiVersion": "losant.io/v1alpha1",
            "kind": "Integration",
            "metadata": {"name": name, "namespace": "ns", "uid": uid},
            "spec": {"applicationRef": {"name": app}, "integrationType": "mqtt"}
        }))
        .expect("a valid Integration")
    }

    fn woken(apps: &[&str]) -> Wake {
        Wake::Applications(
            apps.iter()
                .map(|a| ObjectRef::new(a).within("ns"))
                .collect(),
        )
    }

    const UID_A: &str = "0b5e8a4e-6c1f-4a55-9d7e-1f2a3b4c5d6e";
    const UID_B: &str = "1c6f9b5f-7d20-4b66-8e8f-2a3b4c5d6e7f";

    #[test]
    fn only_the_first_user_and_the_last_wake_an_application() {
        let mut tracker = UsageTracker::default();
        let a = integration("a", UID_A, "app");
        let b = integration("b", UID_B, "app");
        let steps: Vec<(watcher::Event<Integration>, Wake)> = vec![
            (watcher::Event::Init, Wake::Nothing),
            (watcher::Event::InitDone, Wake::Everything),
            (watcher::Event::Apply(a.clone()), woken(&["app"])),
            // Status writes and other edits of a user: nothing.
            (watcher::Event::Apply(a.clone()), Wake::Nothing),
            (watcher::Event::Apply(b.clone()), Wake::Nothing),
            (watcher::Event::Delete(a.clone()), Wake::Nothing),
            (watcher::Event::Delete(b.clone()), woken(&["app"])),
            // A delete of an object never seen changes nothing.
            (watcher::Event::Delete(b), Wake::Nothing),
        ];
        for (i, (event, wanted)) in steps.into_iter().enumerate() {
            assert_eq!(tracker.observe(&event), wanted, "step {i}");
        }
    }

    #[test]
    fn moving_to_another_application_wakes_both() {
        let mut tracker = UsageTracker::default();
        tracker.observe(&watcher::Event::Apply(integration("a", UID_A, "old")));
        tracker.observe(&watcher::Event::Apply(integration("b", UID_B, "old")));
        assert_eq!(
            tracker.observe(&watcher::Event::Apply(integration("a", UID_A, "new"))),
            woken(&["new"]),
            "old keeps a user"
        );
        assert_eq!(
            tracker.observe(&watcher::Event::Apply(integration("b", UID_B, "new"))),
            woken(&["old"])
        );
    }

    #[test]
    fn a_relist_replaces_what_was_known() {
        let mut tracker = UsageTracker::default();
        tracker.observe(&watcher::Event::Apply(integration("a", UID_A, "app")));
        tracker.observe(&watcher::Event::Init);
        tracker.observe(&watcher::Event::InitApply(integration("b", UID_B, "app")));
        assert_eq!(tracker.observe(&watcher::Event::InitDone), Wake::Everything);
        // `a` was gone from the relist: deleting it again changes nothing, and `b` is the last.
        assert_eq!(
            tracker.observe(&watcher::Event::Delete(integration("a", UID_A, "app"))),
            Wake::Nothing
        );
        assert_eq!(
            tracker.observe(&watcher::Event::Delete(integration("b", UID_B, "app"))),
            woken(&["app"])
        );
    }

    #[test]
    fn uids_are_numbers_without_collisions_between_distinct_ones() {
        let a = UsageTracker::uid(&integration("a", UID_A, "app"));
        let b = UsageTracker::uid(&integration("b", UID_B, "app"));
        assert!(a.is_some() && b.is_some() && a != b);
        assert_eq!(a, Some(0x0b5e8a4e_6c1f_4a55_9d7e_1f2a3b4c5d6e));
        let odd = UsageTracker::uid(&integration("c", "not-a-uuid", "app"));
        assert!(odd.is_some());
    }
}
