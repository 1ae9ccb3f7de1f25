//! The watch caches reconciles read instead of the API server: every watched scope's
//! Integrations, LosantApplications and Secret metadata (never Secret data). They are handed to
//! the [`Context`](super::Context) when it is built, after every watch exists; answers wait for
//! nothing: before the caches synced they say "cannot tell", and the caller reads the API server.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};

use crate::crd::{Integration, LosantApplication};
use crate::ops::Readiness;

/// The caches of every watched scope (one store per scope and kind).
#[derive(Clone, Debug)]
pub struct Caches {
    /// Whether every watch cache of the process has synced.
    pub synced: Readiness,
    /// The Integration caches of the Integration controllers.
    pub integrations: Vec<Store<Integration>>,
    /// The LosantApplication caches of the Integration controllers.
    pub applications: Vec<Store<LosantApplication>>,
    /// Secret metadata: which version of each Secret exists, so an unchanged object needs no
    /// Secret read.
    pub secrets: Vec<Store<PartialObjectMeta<Secret>>>,
}

impl Caches {
    /// The cached `LosantApplication` `namespace/name`: `Some(None)` when the synced caches do
    /// not hold it, `None` when they cannot tell (read the API server).
    pub fn application(
        &self,
        namespace: &str,
        name: &str,
    ) -> Option<Option<Arc<LosantApplication>>> {
        self.find(&self.applications, namespace, name)
    }

    /// The `resourceVersion` of Secret `namespace/name` as cached: `Some(None)` when the synced
    /// caches say it does not exist, `None` when they cannot tell.
    pub fn secret_version(&self, namespace: &str, name: &str) -> Option<Option<String>> {
        self.find(&self.secrets, namespace, name)
            .map(|secret| secret.and_then(|s| s.metadata.resource_version.clone()))
    }

    /// Every Integration cache once all caches have synced, waiting at most `patience` (a cache
    /// that has not synced would make an application look unused).
    pub async fn synced_integrations(&self, patience: Duration) -> Option<&[Store<Integration>]> {
        tokio::time::timeout(patience, self.synced.wait())
            .await
            .ok()
            .map(|()| self.integrations.as_slice())
    }

    fn find<K>(&self, stores: &[Store<K>], namespace: &str, name: &str) -> Option<Option<Arc<K>>>
    where
        K: kube::Resource<DynamicType = ()> + Clone + 'static,
    {
        if !self.synced.is_ready() || stores.is_empty() {
            return None;
        }
        let reference = ObjectRef::new(name).within(namespace);
        // With one cache per watched namespace, a miss in all of them means it does not exist.
        Some(stores.iter().find_map(|store| store.get(&reference)))
    }
}
