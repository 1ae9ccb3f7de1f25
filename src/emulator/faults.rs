//! Realism knobs decided per request: per-token rate limiting, injected 503s, and faults
//! after a mutation has been committed (503 or a dropped connection).

use std::collections::HashMap;
use std::io;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use axum::body::Body;
use axum::http::HeaderValue;
use axum::response::Response;
use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::config::{EmulatorConfig, RetryAfterForm};
use super::error::ApiError;

/// Longest `Retry-After` ever announced (one year).
const MAX_RETRY_AFTER_SECS: u64 = 365 * 24 * 60 * 60;

/// What to do after a mutation took effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitFault {
    None,
    /// Answer 503 although the change was made.
    Unavailable,
    /// Abort the connection without a complete response.
    Drop,
}

/// Marks a response whose connection is deliberately aborted (recorded in stats as status 0).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionDropped;

struct Bucket {
    tokens: f64,
    refilled: Instant,
}

/// Fault decisions, all drawn from one seeded RNG so a run is reproducible for a given seed
/// and request order.
pub struct Faults {
    rng: Mutex<StdRng>,
    error_rate: f64,
    fault_after_commit: f64,
    rate: Option<f64>,
    retry_after_form: RetryAfterForm,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Faults {
    pub fn new(config: &EmulatorConfig, seed: u64) -> Self {
        Self {
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            error_rate: config.error_rate,
            fault_after_commit: config.fault_after_commit,
            rate: config.rate_limit,
            retry_after_form: config.retry_after_form,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Draws `true` with probability `p`; `p = 1` is always true, `p = 0` never.
    fn chance(&self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
        rng.random::<f64>() < p
    }

    /// `Err(ServiceUnavailable)` for the fraction of requests `--error-rate` selects.
    pub fn injected_error(&self) -> Result<(), ApiError> {
        if self.chance(self.error_rate) {
            Err(ApiError::ServiceUnavailable)
        } else {
            Ok(())
        }
    }

    /// Decides the fate of a committed mutation.
    pub fn after_commit(&self) -> CommitFault {
        if !self.chance(self.fault_after_commit) {
            return CommitFault::None;
        }
        if self.chance(0.5) {
            CommitFault::Unavailable
        } else {
            CommitFault::Drop
        }
    }

    /// Token bucket per token, refilled at the configured rate with a burst equal to it.
    pub fn rate_limit(&self, token: &str) -> Result<(), ApiError> {
        let Some(rate) = self.rate else {
            return Ok(());
        };
        let burst = rate.max(1.0);
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let bucket = buckets.entry(token.to_owned()).or_insert(Bucket {
            tokens: burst,
            refilled: now,
        });
        let elapsed = now.duration_since(bucket.refilled).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.refilled = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = (1.0 - bucket.tokens) / rate;
        Err(ApiError::TooManyRequests {
            retry_after: self.retry_after(wait),
        })
    }

    fn retry_after(&self, wait_secs: f64) -> HeaderValue {
        // Whole seconds, rounded up so a client that honours the header is not refused again,
        // and capped: a tiny rate would otherwise overflow the clock or the HTTP-date year.
        let secs = (wait_secs.ceil().max(1.0) as u64).min(MAX_RETRY_AFTER_SECS);
        match self.retry_after_form {
            RetryAfterForm::Seconds => HeaderValue::from(secs),
            RetryAfterForm::HttpDate => {
                let at = SystemTime::now() + Duration::from_secs(secs);
                // HTTP-dates drop sub-second digits; push to the next whole second instead.
                let at = ceil_to_second(at);
                HeaderValue::from_str(&httpdate::fmt_http_date(at))
                    .unwrap_or(HeaderValue::from(secs))
            }
        }
    }
}

fn ceil_to_second(t: SystemTime) -> SystemTime {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) if d.subsec_nanos() > 0 => {
            SystemTime::UNIX_EPOCH + Duration::from_secs(d.as_secs() + 1)
        }
        _ => t,
    }
}

/// A response whose body fails at once, so hyper aborts the connection before the status
/// line reaches the client: the "lost response" case.
pub fn dropped_connection() -> Response {
    let failing = futures::stream::once(async {
        Err::<Bytes, io::Error>(io::Error::other("emulated lost response"))
    });
    let mut response = Response::new(Body::from_stream(failing));
    response.extensions_mut().insert(ConnectionDropped);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn faults(config: EmulatorConfig) -> Faults {
        Faults::new(&config, 7)
    }

    #[test]
    fn bucket_allows_burst_then_refuses() {
        let f = faults(EmulatorConfig {
            rate_limit: Some(3.0),
            ..Default::default()
        });
        for _ in 0..3 {
            assert!(f.rate_limit("a").is_ok());
        }
        let Err(ApiError::TooManyRequests { retry_after }) = f.rate_limit("a") else {
            panic!("expected 429");
        };
        assert_eq!(retry_after.to_str().unwrap(), "1");
        assert!(f.rate_limit("b").is_ok(), "buckets are per token");
    }

    #[test]
    fn http_date_form_parses() {
        let f = faults(EmulatorConfig {
            rate_limit: Some(1.0),
            retry_after_form: RetryAfterForm::HttpDate,
            ..Default::default()
        });
        assert!(f.rate_limit("a").is_ok());
        let Err(ApiError::TooManyRequests { retry_after }) = f.rate_limit("a") else {
            panic!("expected 429");
        };
        let at = httpdate::parse_http_date(retry_after.to_str().unwrap()).unwrap();
        assert!(at > SystemTime::now());
    }

    /// A tiny (but valid) rate means a wait of millions of years: it must not overflow the clock
    /// or HTTP-date formatting (years after 9999 panic there).
    #[test]
    fn a_tiny_rate_gives_a_bounded_retry_after() {
        for form in [RetryAfterForm::Seconds, RetryAfterForm::HttpDate] {
            let f = faults(EmulatorConfig {
                rate_limit: Some(1e-30),
                retry_after_form: form,
                ..Default::default()
            });
            assert!(f.rate_limit("a").is_ok());
            let Err(ApiError::TooManyRequests { retry_after }) = f.rate_limit("a") else {
                panic!("expected 429");
            };
            let text = retry_after.to_str().unwrap();
            let secs = match form {
                RetryAfterForm::Seconds => text.parse::<u64>().unwrap(),
                RetryAfterForm::HttpDate => httpdate::parse_http_date(text)
                    .unwrap()
                    .duration_since(SystemTime::now())
                    .unwrap()
                    .as_secs(),
            };
            assert!(
                (1..=MAX_RETRY_AFTER_SECS).contains(&secs),
                "{form:?}: {text}"
            );
        }
    }

    #[test]
    fn certain_and_impossible_faults() {
        let f = faults(EmulatorConfig {
            error_rate: 1.0,
            ..Default::default()
        });
        assert!(f.injected_error().is_err());
        assert_eq!(f.after_commit(), CommitFault::None);
        let f = faults(EmulatorConfig {
            fault_after_commit: 1.0,
            ..Default::default()
        });
        assert!(f.injected_error().is_ok());
        assert_ne!(f.after_commit(), CommitFault::None);
    }
}
