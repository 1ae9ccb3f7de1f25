//! Retry policy: capped exponential backoff with jitter, `Retry-After` honoured and capped.
//!
//! Only idempotent calls (GET, PATCH, DELETE) are retried. A POST is never retried here: Losant
//! has no idempotency key, so a retried POST whose first answer was lost creates a duplicate. The
//! caller decides what to do next (the operator re-lists before it ever posts again).

use std::future::Future;
use std::time::{Duration, SystemTime};

use rand::Rng;

use super::error::Error;

/// How transient failures of idempotent calls are retried.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = no retries).
    pub max_attempts: u32,
    /// Backoff before the first retry; it doubles each retry.
    pub initial_backoff: Duration,
    /// Longest backoff between two attempts.
    pub max_backoff: Duration,
    /// Longest `Retry-After` honoured; longer asks are cut to this.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn never() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// Backoff before retry number `retry` (0-based) for a `jitter` in `[0, 1)`: half the capped
    /// exponential step plus a jittered half, so retries of many clients spread out but never
    /// come sooner than half the step.
    pub fn backoff(&self, retry: u32, jitter: f64) -> Duration {
        let step = self
            .initial_backoff
            .saturating_mul(2u32.saturating_pow(retry.min(31)))
            .min(self.max_backoff);
        step / 2 + step.mul_f64(jitter.clamp(0.0, 1.0) / 2.0)
    }

    /// The wait before retry number `retry` after `error`: the backoff, or the server's
    /// `Retry-After` when that is longer.
    pub fn delay(&self, retry: u32, error: &Error, jitter: f64) -> Duration {
        let backoff = self.backoff(retry, jitter);
        match error.retry_after() {
            Some(asked) => asked.min(self.max_retry_after).max(backoff),
            None => backoff,
        }
    }
}

/// Parses a `Retry-After` value, in seconds or as an HTTP-date, into a wait from `now`, capped.
pub fn parse_retry_after(value: &str, now: SystemTime, cap: Duration) -> Option<Duration> {
    let value = value.trim();
    let wait = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        Duration::from_secs(value.parse::<u64>().unwrap_or(u64::MAX))
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(cap))
}

/// Runs `attempt` until it succeeds, fails permanently, or the policy's attempts are used up.
/// Non-idempotent calls get exactly one attempt.
pub(crate) async fn run<T, F, Fut>(
    policy: &RetryPolicy,
    idempotent: bool,
    mut attempt: F,
) -> Result<T, Error>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let attempts = if idempotent {
        policy.max_attempts.max(1)
    } else {
        1
    };
    let mut number = 0;
    loop {
        match attempt(number).await {
            Ok(value) => return Ok(value),
            Err(error) if error.is_transient() && number + 1 < attempts => {
                let wait = policy.delay(number, &error, rand::rng().random::<f64>());
                tracing::debug!(attempt = number + 1, wait_ms = wait.as_millis() as u64, %error, "retrying losant request");
                tokio::time::sleep(wait).await;
                number += 1;
            }
            Err(error) => return Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use tokio::time::Instant;

    fn unavailable(retry_after: Option<Duration>) -> Error {
        Error::Api {
            status: if retry_after.is_some() { 429 } else { 503 },
            kind: "X".into(),
            message: String::new(),
            retry_after,
        }
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.backoff(0, 0.0), Duration::from_millis(125));
        assert_eq!(policy.backoff(0, 1.0), Duration::from_millis(250));
        assert_eq!(policy.backoff(3, 1.0), Duration::from_secs(2));
        assert_eq!(policy.backoff(30, 1.0), Duration::from_secs(8));
        assert_eq!(policy.backoff(u32::MAX, 0.0), Duration::from_secs(4));
    }

    #[test]
    fn retry_after_wins_when_longer_and_is_capped() {
        let policy = RetryPolicy::default();
        let asked = unavailable(Some(Duration::from_secs(5)));
        assert_eq!(policy.delay(0, &asked, 0.5), Duration::from_secs(5));
        let huge = unavailable(Some(Duration::from_secs(3600)));
        assert_eq!(policy.delay(0, &huge, 0.5), Duration::from_secs(60));
        let tiny = unavailable(Some(Duration::ZERO));
        assert_eq!(policy.delay(2, &tiny, 0.0), Duration::from_millis(500));
    }

    #[test]
    fn retry_after_reads_both_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let cap = Duration::from_secs(60);
        assert_eq!(
            parse_retry_after("7", now, cap),
            Some(Duration::from_secs(7))
        );
        assert_eq!(parse_retry_after(" 120 ", now, cap), Some(cap));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            parse_retry_after(&later, now, cap),
            Some(Duration::from_secs(30))
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&past, now, cap), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now, cap), None);
        assert_eq!(
            parse_retry_after("99999999999999999999999", now, cap),
            Some(cap)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn idempotent_calls_back_off_then_succeed() {
        let calls = AtomicU32::new(0);
        let started = Instant::now();
        let result = run(&RetryPolicy::default(), true, |_| {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move { if n < 2 { Err(unavailable(None)) } else { Ok(n) } }
        })
        .await;
        assert_eq!(result.unwrap(), 2);
        let waited = started.elapsed();
        // Two backoffs: [125, 250] ms then [250, 500] ms.
        assert!(waited >= Duration::from_millis(375), "{waited:?}");
        assert!(waited <= Duration::from_millis(750), "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_honoured() {
        let calls = AtomicU32::new(0);
        let started = Instant::now();
        let result: Result<(), _> = run(&RetryPolicy::default(), true, |_| {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    Err(unavailable(Some(Duration::from_secs(3))))
                } else {
                    Ok(())
                }
            }
        })
        .await;
        assert!(result.is_ok(), "the second attempt succeeds");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(started.elapsed(), Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn attempts_are_bounded() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = run(&RetryPolicy::default(), true, |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err(unavailable(None)) }
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn non_idempotent_calls_are_never_retried() {
        let calls = AtomicU32::new(0);
        let started = Instant::now();
        let result: Result<(), _> = run(&RetryPolicy::default(), false, |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err(unavailable(Some(Duration::from_secs(1)))) }
        })
        .await;
        assert_eq!(result.unwrap_err().status(), Some(429));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_errors_are_not_retried() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = run(&RetryPolicy::default(), true, |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async {
                Err(Error::Api {
                    status: 404,
                    kind: "NotFound".into(),
                    message: String::new(),
                    retry_after: None,
                })
            }
        })
        .await;
        assert!(result.unwrap_err().is_not_found());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
