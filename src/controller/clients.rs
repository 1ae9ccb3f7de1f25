//! One Losant client per API URL and token, reused across reconciles so connections are pooled,
//! all drawing from shared rate limiters.

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::losant::{self, ClientBuilder, LimiterRegistry, RateLimits, SecretString};

/// A cache of Losant clients keyed by API URL and the SHA-256 of the token.
#[derive(Debug)]
pub struct LosantClients {
    limits: RateLimits,
    registry: LimiterRegistry,
    clients: Mutex<HashMap<(String, [u8; 32]), losant::Client>>,
}

impl LosantClients {
    /// An empty cache; clients it builds use `limits`.
    pub fn new(limits: RateLimits) -> Self {
        Self {
            limits,
            registry: LimiterRegistry::new(),
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// The client for `api_url` and `token`.
    pub fn get(
        &self,
        api_url: &str,
        token: &SecretString,
    ) -> Result<losant::Client, losant::Error> {
        let key = (api_url.to_owned(), Sha256::digest(token.expose()).into());
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let client = ClientBuilder::new(token.clone())
            .api_url(api_url)
            .limits(self.limits)
            .registry(self.registry.clone())
            .build()?;
        // Rotated tokens leave stale entries; a bound keeps the cache from growing without end.
        if clients.len() > 1024 {
            clients.clear();
        }
        clients.insert(key, client.clone());
        Ok(client)
    }
}
