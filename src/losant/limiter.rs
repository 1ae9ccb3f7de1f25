//! Client-side politeness: a token-bucket rate limit and a cap on requests in flight.
//!
//! Losant's limits apply per token, so every client that talks to the same API URL with the same
//! token should draw from one [`Limiter`]; a [`LimiterRegistry`] hands them out keyed that way
//! (the token is keyed by its SHA-256, so the registry holds no secret).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::secret::SecretString;

/// Limits for the requests of one API URL and token.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimits {
    /// Sustained requests per second (must be positive; `f64::INFINITY` turns the rate limit off).
    pub requests_per_second: f64,
    /// Requests that may go at once after a quiet period.
    pub burst: u32,
    /// Requests in flight at once.
    pub max_concurrent: usize,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            requests_per_second: 10.0,
            burst: 20,
            max_concurrent: 8,
        }
    }
}

impl RateLimits {
    /// Checks the limits make sense.
    pub fn validate(&self) -> Result<(), String> {
        if self.requests_per_second.is_nan() || self.requests_per_second <= 0.0 {
            return Err("requests per second must be positive".into());
        }
        if self.burst == 0 {
            return Err("burst must be at least 1".into());
        }
        if self.max_concurrent == 0 {
            return Err("max concurrent requests must be at least 1".into());
        }
        Ok(())
    }
}

/// Tokens available at `updated`; may go negative when callers have reserved ahead.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// A shared rate limit and concurrency cap.
#[derive(Debug)]
pub struct Limiter {
    limits: RateLimits,
    bucket: Mutex<Bucket>,
    in_flight: Arc<Semaphore>,
}

/// Held while a request is in flight; dropping it frees the slot.
#[derive(Debug)]
pub struct Permit {
    // `None` only if the semaphore were closed, which this module never does.
    _slot: Option<OwnedSemaphorePermit>,
}

impl Limiter {
    /// A limiter with these limits (see [`RateLimits::validate`]).
    pub fn new(limits: RateLimits) -> Self {
        Self {
            limits,
            bucket: Mutex::new(Bucket {
                tokens: f64::from(limits.burst),
                updated: Instant::now(),
            }),
            in_flight: Arc::new(Semaphore::new(limits.max_concurrent)),
        }
    }

    /// The limits it enforces.
    pub fn limits(&self) -> RateLimits {
        self.limits
    }

    /// Waits for a rate token, then for a free slot.
    pub async fn acquire(&self) -> Permit {
        let wait = self.reserve(Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        Permit {
            _slot: Arc::clone(&self.in_flight).acquire_owned().await.ok(),
        }
    }

    /// Takes one token and returns how long to wait for it. Reserving ahead (the bucket may go
    /// negative) serves waiters in arrival order with no thundering herd.
    fn reserve(&self, now: Instant) -> Duration {
        let rate = self.limits.requests_per_second;
        if rate.is_infinite() {
            return Duration::ZERO;
        }
        let mut bucket = self
            .bucket
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let refill = now.saturating_duration_since(bucket.updated).as_secs_f64() * rate;
        bucket.tokens = (bucket.tokens + refill).min(f64::from(self.limits.burst));
        bucket.updated = now;
        bucket.tokens -= 1.0;
        if bucket.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-bucket.tokens / rate)
        }
    }
}

/// Key of a shared limiter: the API URL and the SHA-256 of the token.
type LimiterKey = (String, [u8; 32]);

/// Hands out one [`Limiter`] per API URL and token, shared by every client that asks for it.
#[derive(Clone, Debug, Default)]
pub struct LimiterRegistry {
    limiters: Arc<Mutex<HashMap<LimiterKey, Weak<Limiter>>>>,
}

impl LimiterRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The limiter for `api_url` and `token`, made with `limits` if none is alive; a live one
    /// keeps the limits it was made with.
    pub fn limiter_for(
        &self,
        api_url: &str,
        token: &SecretString,
        limits: RateLimits,
    ) -> Arc<Limiter> {
        let key = (
            api_url.trim_end_matches('/').to_owned(),
            Sha256::digest(token.expose()).into(),
        );
        let mut limiters = self
            .limiters
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(live) = limiters.get(&key).and_then(Weak::upgrade) {
            return live;
        }
        limiters.retain(|_, limiter| limiter.strong_count() > 0);
        let limiter = Arc::new(Limiter::new(limits));
        limiters.insert(key, Arc::downgrade(&limiter));
        limiter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rps: f64, burst: u32, concurrent: usize) -> RateLimits {
        RateLimits {
            requests_per_second: rps,
            burst,
            max_concurrent: concurrent,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn burst_is_free_then_rate_applies() {
        let limiter = Limiter::new(limits(10.0, 5, 100));
        let started = Instant::now();
        for _ in 0..5 {
            drop(limiter.acquire().await);
        }
        assert_eq!(started.elapsed(), Duration::ZERO);
        for _ in 0..10 {
            drop(limiter.acquire().await);
        }
        // Ten more tokens at 10/s take one second.
        let elapsed = started.elapsed();
        assert!(
            elapsed >= Duration::from_millis(999) && elapsed <= Duration::from_millis(1001),
            "{elapsed:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn concurrency_is_capped() {
        let limiter = Arc::new(Limiter::new(limits(f64::INFINITY, 1, 2)));
        let first = limiter.acquire().await;
        let _second = limiter.acquire().await;
        let waiting = tokio::spawn({
            let limiter = Arc::clone(&limiter);
            async move { limiter.acquire().await }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!waiting.is_finished());
        drop(first);
        assert!(waiting.await.is_ok());
    }

    #[test]
    fn registry_shares_by_url_and_token() {
        let registry = LimiterRegistry::new();
        let token = SecretString::new("t1");
        let a = registry.limiter_for("https://api.losant.com", &token, RateLimits::default());
        let b = registry.limiter_for("https://api.losant.com/", &token, limits(1.0, 1, 1));
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(b.limits(), RateLimits::default());
        let other_token = registry.limiter_for(
            "https://api.losant.com",
            &SecretString::new("t2"),
            RateLimits::default(),
        );
        assert!(!Arc::ptr_eq(&a, &other_token));
        let other_url =
            registry.limiter_for("https://losant.internal", &token, RateLimits::default());
        assert!(!Arc::ptr_eq(&a, &other_url));
    }

    #[test]
    fn registry_forgets_limiters_nobody_uses() {
        let registry = LimiterRegistry::new();
        let token = SecretString::new("t");
        let first = registry.limiter_for("u", &token, limits(1.0, 1, 1));
        drop(first);
        let second = registry.limiter_for("u", &token, RateLimits::default());
        assert_eq!(second.limits(), RateLimits::default());
    }

    #[test]
    fn nonsense_limits_are_rejected() {
        assert!(limits(0.0, 1, 1).validate().is_err());
        assert!(limits(f64::NAN, 1, 1).validate().is_err());
        assert!(limits(1.0, 0, 1).validate().is_err());
        assert!(limits(1.0, 1, 0).validate().is_err());
        assert!(limits(f64::INFINITY, 1, 1).validate().is_ok());
    }
}
