//! Simulated connection state of every integration: Losant's read-only `status` (last connect,
//! last disconnect and why, last keep-alive, next attempt), derived lazily from the clock and a
//! little stored state, so no background task is needed.
//!
//! Timing model (all times epoch milliseconds):
//! - An integration's current *phase* starts at `since`: when it is created, enabled again, when
//!   the type's config object or `credentialName` changes, and on every admin override.
//! - Automatic phase: `connect_delay` after `since` the integration connects, or, when its
//!   endpoint matches a failure rule, its first attempt fails with the rule's error.
//! - Forced phase (admin endpoint): it connects, or fails with the given error, at `since`.
//! - Connected: `lastKeepAlive` is the connect time plus whole keep-alive periods, so it advances.
//! - Failing: `disconnectInfo.ts` is the first failure; `nextAttempt` is the next whole retry
//!   period after it, always in the future; attempts keep failing until the phase ends.
//! - Disabled: nothing new; the status stays as it was when disabled, without `nextAttempt`.
//!
//! When a phase ends, what it reported is kept, so a reconnect still shows the last disconnect
//! (as Losant's own example does) and a disconnect the last connect and keep-alive. A new event
//! is always stamped after every kept one, so whichever of `connectInfo.ts` and
//! `disconnectInfo.ts` is newer says whether the integration is connected.

mod rules;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

pub use rules::{ConnectionFailure, Facts, PARTICLE_ENDPOINT, reconnects};

/// How connections behave; shared by every integration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionConfig {
    /// From the start of an automatic phase to its connect (or first failed attempt).
    pub connect_delay: Duration,
    /// Period of `lastKeepAlive` while connected (at least 1 ms).
    pub keep_alive: Duration,
    /// Period between failed attempts, which `nextAttempt` announces (at least 1 ms).
    pub retry: Duration,
    /// Endpoints that never connect; the first matching rule gives the error.
    pub failures: Vec<ConnectionFailure>,
}

/// Default `lastKeepAlive` period.
pub const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(30);
/// Default period between failed connection attempts.
pub const DEFAULT_RETRY: Duration = Duration::from_secs(30);
/// The error of an admin disconnect that names none (Losant's most common one).
pub const DEFAULT_DISCONNECT_ERROR: &str = "Keepalive Timeout";

impl Default for ConnectionConfig {
    /// Connects at once (realism off, like every other knob), nothing fails.
    fn default() -> Self {
        Self {
            connect_delay: Duration::ZERO,
            keep_alive: DEFAULT_KEEP_ALIVE,
            retry: DEFAULT_RETRY,
            failures: Vec::new(),
        }
    }
}

impl ConnectionConfig {
    /// Rejects periods of zero (they would never advance) and malformed failure rules.
    pub fn validate(&self) -> Result<(), String> {
        if millis(self.keep_alive) < 1 || millis(self.retry) < 1 {
            return Err("keep-alive and retry periods must be at least 1 ms".into());
        }
        match self
            .failures
            .iter()
            .find(|f| f.pattern.is_empty() || f.error.is_empty())
        {
            Some(_) => Err("connection failure rules need a pattern and an error text".into()),
            None => Ok(()),
        }
    }
}

/// What the admin endpoint asks of one integration's connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionOverride {
    /// Back to the automatic behaviour (connect after the delay, unless a failure rule says no).
    Automatic,
    /// Connect now and stay connected.
    Connected,
    /// Disconnect now with this error and keep failing every retry period.
    Disconnected { error: String },
}

impl ConnectionOverride {
    /// Reads a `PUT …/connection` body: `{"connected": true}` or
    /// `{"connected": false, "error": TEXT}` (`error` optional, never with `true`).
    pub fn from_body(body: Value) -> Result<Self, String> {
        const SHAPE: &str =
            r#"body: expected {"connected": true} or {"connected": false, "error": "TEXT"}"#;
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Body {
            connected: bool,
            #[serde(default)]
            error: Option<String>,
        }
        // serde's messages may quote the body, so every failure gets the same fixed text.
        let body: Body = serde_json::from_value(body).map_err(|_| SHAPE.to_owned())?;
        match (body.connected, body.error) {
            (true, None) => Ok(Self::Connected),
            (false, None) => Ok(Self::Disconnected {
                error: DEFAULT_DISCONNECT_ERROR.into(),
            }),
            (false, Some(error)) if !error.is_empty() => Ok(Self::Disconnected { error }),
            _ => Err(SHAPE.to_owned()),
        }
    }
}

/// An admin override in force (persisted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
enum Forced {
    Connected,
    Disconnected { error: String },
}

/// The last disconnect: when and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disconnect {
    pub at: i64,
    pub error: String,
}

/// What `status` says at one instant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reported {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connected_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disconnect: Option<Disconnect>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_keep_alive: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt: Option<i64>,
}

impl Reported {
    /// Losant's `status` object; what is not known yet is left out (`{}` says nothing yet).
    pub fn to_status(&self) -> Value {
        let mut status = Map::new();
        if let Some(ts) = self.connected_at {
            status.insert("connectInfo".into(), json!({ "ts": ts }));
        }
        if let Some(d) = &self.disconnect {
            status.insert(
                "disconnectInfo".into(),
                json!({ "ts": d.at, "error": d.error }),
            );
        }
        if let Some(ts) = self.last_keep_alive {
            status.insert("lastKeepAlive".into(), json!(ts));
        }
        if let Some(ts) = self.next_attempt {
            status.insert("nextAttempt".into(), json!(ts));
        }
        Value::Object(status)
    }

    fn latest_event(&self) -> Option<i64> {
        self.connected_at
            .max(self.disconnect.as_ref().map(|d| d.at))
    }
}

/// One integration's connection: the current phase and what earlier phases reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    /// Start of the current phase, epoch ms.
    since: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    forced: Option<Forced>,
    /// What the status said when the current phase started (never with `next_attempt`).
    #[serde(default)]
    kept: Reported,
}

enum Outcome<'a> {
    Connect,
    Fail(&'a str),
}

impl Connection {
    /// A connection in its automatic phase from `now` on, with nothing reported yet.
    pub fn new(now: i64) -> Self {
        Self {
            since: now,
            forced: None,
            kept: Reported::default(),
        }
    }

    /// The status at `now` of an integration described by `facts`.
    pub fn report(&self, now: i64, facts: &Facts<'_>, config: &ConnectionConfig) -> Reported {
        let mut out = self.kept.clone();
        if !facts.enabled {
            return out;
        }
        // A phase may start a millisecond ahead of the clock (see `restart`); reads never
        // show less than it.
        let now = now.max(self.since);
        let (at, outcome) = self.event(facts, config);
        if now < at {
            return out;
        }
        match outcome {
            Outcome::Connect => {
                out.connected_at = Some(at);
                out.last_keep_alive = Some(last_tick(at, now, config.keep_alive));
            }
            Outcome::Fail(error) => {
                out.disconnect = Some(Disconnect {
                    at,
                    error: error.to_owned(),
                });
                let retry = millis(config.retry).max(1);
                out.next_attempt = Some(last_tick(at, now, config.retry).saturating_add(retry));
            }
        }
        out
    }

    /// Ends the current phase at `now` (keeping what it reported for `before`, the integration
    /// as it was) and starts a new one, stamped after everything kept.
    pub fn restart(&mut self, now: i64, before: &Facts<'_>, config: &ConnectionConfig) {
        let mut kept = self.report(now, before, config);
        kept.next_attempt = None;
        let after_kept = kept
            .latest_event()
            .map_or(i64::MIN, |t| t.saturating_add(1));
        self.since = now.max(self.since).max(after_kept);
        self.kept = kept;
    }

    /// Applies an admin override at `now`; returning to automatic when already there changes
    /// nothing, so the delay does not start over.
    pub fn set_override(
        &mut self,
        now: i64,
        facts: &Facts<'_>,
        wanted: ConnectionOverride,
        config: &ConnectionConfig,
    ) {
        let forced = match wanted {
            ConnectionOverride::Automatic if self.forced.is_none() => return,
            ConnectionOverride::Automatic => None,
            ConnectionOverride::Connected => Some(Forced::Connected),
            ConnectionOverride::Disconnected { error } => Some(Forced::Disconnected { error }),
        };
        self.restart(now, facts, config);
        self.forced = forced;
    }

    /// When the current phase connects or first fails, and which.
    fn event<'a>(&'a self, facts: &Facts<'_>, config: &'a ConnectionConfig) -> (i64, Outcome<'a>) {
        match &self.forced {
            Some(Forced::Connected) => (self.since, Outcome::Connect),
            Some(Forced::Disconnected { error }) => (self.since, Outcome::Fail(error)),
            None => {
                let at = self.since.saturating_add(millis(config.connect_delay));
                match rules::failure_for(&config.failures, facts.endpoint) {
                    Some(error) => (at, Outcome::Fail(error)),
                    None => (at, Outcome::Connect),
                }
            }
        }
    }
}

/// The last of `start`, `start + period`, `start + 2 period`, … that is not after `now`.
fn last_tick(start: i64, now: i64, period: Duration) -> i64 {
    let period = millis(period).max(1);
    start.saturating_add(now.saturating_sub(start) / period * period)
}

/// Whole milliseconds, saturating (a delay of `Duration::MAX` means "never").
fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
