//! One owner per remote, the I/O half: feeding the [`OwnerIndex`] from the watched objects and
//! confirming a rival still exists before refusing to write.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kube::Api;
use kube::api::ResourceExt;

use super::error::Error;
use crate::crd::{Integration, LosantApplication, ManagementPolicy};
use crate::sync::owners::{Claim, OwnerIndex, Rival, Seniority};

/// The shared index.
#[derive(Debug, Default)]
pub struct Owners {
    index: Mutex<OwnerIndex>,
    /// One lock per remote name: objects claiming the same name look it up and create in turn,
    /// never at once (two copies applied together would otherwise both find nothing and POST).
    name_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// `namespace/name` of an object.
pub fn object_key(obj: &Integration) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

/// How senior an object is: its creation time, then its key.
pub fn seniority(obj: &Integration) -> Seniority {
    let created = obj
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0.to_string())
        .unwrap_or_default();
    (created, object_key(obj))
}

/// What an object claims in an application: its remote name and, once known, its remote id.
pub fn claims(api_url: &str, application_id: &str, name: &str, id: Option<&str>) -> Vec<Claim> {
    let (api_url, application_id): (std::sync::Arc<str>, std::sync::Arc<str>) =
        (api_url.into(), application_id.into());
    let mut claims = vec![Claim::Name {
        api_url: api_url.clone(),
        application_id: application_id.clone(),
        name: name.into(),
    }];
    if let Some(id) = id {
        claims.push(Claim::Id {
            api_url,
            application_id,
            id: id.into(),
        });
    }
    claims
}

impl Owners {
    fn lock(&self) -> std::sync::MutexGuard<'_, OwnerIndex> {
        self.index
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records the object's claims and returns an older object claiming the same remote, after
    /// checking with the API server that it still exists (a vanished one is forgotten).
    pub async fn claim(
        &self,
        kube: &kube::Client,
        obj: &Integration,
        claims: Vec<Claim>,
    ) -> Result<Option<Rival>, Error> {
        let seniority = seniority(obj);
        loop {
            let rival = {
                let mut index = self.lock();
                index.set(seniority.clone(), claims.clone());
                index.senior_rival(&seniority, &claims)
            };
            let Some(rival) = rival else {
                return Ok(None);
            };
            let (namespace, name) = rival.object.split_once('/').unwrap_or_default();
            let api: Api<Integration> = Api::namespaced(kube.clone(), namespace);
            if api
                .get_opt(name)
                .await
                .map_err(Error::kube("read a rival Integration"))?
                .is_some()
            {
                return Ok(Some(rival));
            }
            self.lock().remove(&rival.object);
        }
    }

    /// Holds the lock of remote name `name` until the guard is dropped.
    pub async fn lock_name(&self, name: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self
                .name_locks
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if locks.len() > 4096 {
                // Forget locks nobody holds or waits for.
                locks.retain(|_, lock| Arc::strong_count(lock) > 1);
            }
            Arc::clone(locks.entry(name.to_owned()).or_default())
        };
        lock.lock_owned().await
    }

    /// Forgets a deleted object.
    pub fn release(&self, obj: &Integration) {
        self.lock().remove(&object_key(obj));
    }

    /// Seeds the index with every object's claims, from the watch caches, before the first
    /// reconcile: an object must see a senior rival even if the rival has not been reconciled
    /// yet in this process.
    pub fn load(&self, objects: &[Arc<Integration>], apps: &[Arc<LosantApplication>]) {
        let mut index = self.lock();
        // Observers claim nothing (see `integration::resolve`).
        let managed = objects
            .iter()
            .filter(|obj| obj.spec.management_policy != ManagementPolicy::ObserveOnly);
        for obj in managed {
            let app = apps.iter().find(|a| {
                a.namespace() == obj.namespace() && a.name_any() == obj.spec.application_ref.name
            });
            let Some(app) = app else { continue };
            let api_url = app.spec.api_url.trim_end_matches('/');
            let application_id = app.spec.application_id.to_ascii_lowercase();
            let id = obj
                .status
                .as_ref()
                .and_then(|s| s.integration_id.clone())
                .or_else(|| {
                    obj.metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get("losant.io/integration-id").cloned())
                });
            index.set(
                seniority(obj),
                claims(api_url, &application_id, obj.remote_name(), id.as_deref()),
            );
        }
    }
}
