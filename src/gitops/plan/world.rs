//! Everything `plan` read, as plain data: the cluster's Integrations, where each
//! `LosantApplication` points, the Secrets, and one listing per Losant application. Filled by
//! `read`, looked at by `evaluate` and `prune`.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use kube::api::ResourceExt;

use crate::crd::Integration;
use crate::losant::Listing;

/// `(namespace, name)`.
pub type Key = (String, String);

/// Where a `LosantApplication` points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    /// API URL, without a trailing slash.
    pub api_url: String,
    /// Application id, lowercase.
    pub application_id: String,
    /// Why the operator would refuse the API URL (`--allowed-api-hosts`), if it would.
    pub refused: Option<String>,
}

impl Place {
    /// The listing's key.
    pub fn key(&self) -> Key {
        (self.api_url.clone(), self.application_id.clone())
    }
}

/// A Secret's data and `resourceVersion`. Never printed: it holds values.
#[derive(Clone, Default)]
pub struct SecretData {
    /// Key → bytes (`stringData` merged over `data`, as the API server stores it).
    pub data: BTreeMap<String, Vec<u8>>,
    /// The `resourceVersion` it has (or will have once applied: a Secret from the input that
    /// differs from the cluster's gets a new one).
    pub version: String,
}

impl std::fmt::Debug for SecretData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretData")
            .field("keys", &self.data.keys().collect::<Vec<_>>())
            .field("version", &self.version)
            .finish()
    }
}

/// The version given to an input Secret that applying would create or change.
pub const NEW_SECRET_VERSION: &str = "(applied from the input)";

/// Everything read.
#[derive(Debug)]
pub struct World {
    /// The time the plan is made at.
    pub now: Timestamp,
    /// The operator's `--create-grace-period`.
    pub grace: Duration,
    /// The cluster's Integrations (every namespace that could be read).
    pub cluster: Vec<Integration>,
    /// Where each `LosantApplication` points (the input's over the cluster's).
    pub places: BTreeMap<Key, Place>,
    /// Secrets (the input's over the cluster's).
    pub secrets: BTreeMap<Key, SecretData>,
    /// One listing per `(API URL, application id)`, or why it could not be read.
    pub listings: BTreeMap<Key, Result<Listing, String>>,
}

impl World {
    /// An empty world at `now`.
    pub fn new(now: Timestamp, grace: Duration) -> Self {
        World {
            now,
            grace,
            cluster: Vec::new(),
            places: BTreeMap::new(),
            secrets: BTreeMap::new(),
            listings: BTreeMap::new(),
        }
    }

    /// The cluster's copy of an object.
    pub fn cluster_object(&self, namespace: &str, name: &str) -> Option<&Integration> {
        self.cluster
            .iter()
            .find(|o| o.namespace().as_deref() == Some(namespace) && o.name_any() == name)
    }

    /// Where the object's `LosantApplication` points, if it exists.
    pub fn place_of(&self, obj: &Integration) -> Option<&Place> {
        let namespace = obj.namespace().unwrap_or_default();
        self.places
            .get(&(namespace, obj.spec.application_ref.name.clone()))
    }

    /// A Secret.
    pub fn secret(&self, namespace: &str, name: &str) -> Option<&SecretData> {
        self.secrets.get(&(namespace.to_owned(), name.to_owned()))
    }

    /// The application's listing.
    pub fn listing(&self, place: &Place) -> Result<&Listing, String> {
        match self.listings.get(&place.key()) {
            Some(Ok(listing)) => Ok(listing),
            Some(Err(message)) => Err(message.clone()),
            None => Err(format!(
                "application {} at {} was not listed",
                place.application_id, place.api_url
            )),
        }
    }
}
