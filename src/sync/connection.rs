//! Is the integration actually connected? Pure: Losant's runtime `status` of the remote (when it
//! last connected, when and why it last disconnected, when it tries again) and whether it is
//! enabled → the `Connected` condition's state, reason and message.
//!
//! # Guarantees
//! - Connected means Losant reports a connect newer than any disconnect; a disconnect at the
//!   same moment or later wins.
//! - Losant's error text is shown sanitized: every secret value the spec carries is masked,
//!   control characters go, and it is cut to [`MAX_ERROR_CHARS`] (the remote end's answer may
//!   quote a password or a header back).

use jiff::Timestamp;

use super::desired::Desired;
use super::reason::{ConditionStatus, Reason};
use crate::losant::RemoteStatus;

/// The longest error text kept from Losant.
pub const MAX_ERROR_CHARS: usize = 200;

/// What a masked secret reads as.
const MASK: &str = "[redacted]";

/// The connection state of an integration, for its `Connected` condition and `status.connection`.
#[derive(Clone, Debug, PartialEq)]
pub struct Connection {
    /// `True` connected, `False` disconnected, `Unknown` when Losant says nothing or it is disabled.
    pub status: ConditionStatus,
    /// `Connected`, `Disconnected`, `Disabled` or `NotReported`.
    pub reason: Reason,
    /// For humans (sanitized).
    pub message: String,
    /// When the current state began, as Losant reports it.
    pub since: Option<Timestamp>,
    /// Losant's error text of the last disconnect (sanitized), while disconnected.
    pub error: Option<String>,
    /// When Losant tries again, while disconnected.
    pub next_attempt: Option<Timestamp>,
}

/// The connection of an integration that is `enabled` and whose remote reports `status`;
/// `secrets` are the values to mask in Losant's error text.
pub fn assess(status: Option<&RemoteStatus>, enabled: bool, secrets: &[String]) -> Connection {
    let unknown = |reason, message: &str| Connection {
        status: ConditionStatus::Unknown,
        reason,
        message: message.to_owned(),
        since: None,
        error: None,
        next_attempt: None,
    };
    if !enabled {
        return unknown(Reason::Disabled, "the integration is disabled");
    }
    let connected = status
        .and_then(|s| s.connect_info.as_ref()?.ts)
        .and_then(millis);
    let disconnect = status.and_then(|s| s.disconnect_info.as_ref());
    let disconnected = disconnect.and_then(|d| d.ts).and_then(millis);
    match (connected, disconnected) {
        (Some(up), down) if down.is_none_or(|down| up > down) => Connection {
            status: ConditionStatus::True,
            reason: Reason::Connected,
            message: format!("Losant reports it connected since {up}"),
            since: Some(up),
            error: None,
            next_attempt: None,
        },
        (_, Some(down)) => {
            let error = disconnect
                .and_then(|d| d.error.as_deref())
                .map(|text| sanitize(text, secrets))
                .filter(|text| !text.is_empty());
            let next_attempt = status.and_then(|s| s.next_attempt).and_then(millis);
            let mut message = format!("Losant reports it disconnected since {down}");
            if let Some(error) = &error {
                message.push_str(&format!(": {error}"));
            }
            if let Some(next) = next_attempt {
                message.push_str(&format!("; it tries again at {next}"));
            }
            Connection {
                status: ConditionStatus::False,
                reason: Reason::Disconnected,
                message,
                since: Some(down),
                error,
                next_attempt,
            }
        }
        _ => unknown(
            Reason::NotReported,
            "Losant has not reported a connection yet",
        ),
    }
}

/// Epoch milliseconds as a time, if it is one.
fn millis(ms: f64) -> Option<Timestamp> {
    if !ms.is_finite() {
        return None;
    }
    Timestamp::from_millisecond(ms as i64).ok()
}

/// `text` with every secret value masked, control characters replaced and cut to
/// [`MAX_ERROR_CHARS`] characters.
pub fn sanitize(text: &str, secrets: &[String]) -> String {
    let mut clean = text.to_owned();
    // Longest first, so a secret that contains another is masked whole.
    let mut secrets: Vec<&String> = secrets.iter().filter(|s| !s.is_empty()).collect();
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for secret in secrets {
        clean = clean.replace(secret.as_str(), MASK);
    }
    let clean: String = clean
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let trimmed = clean.trim();
    match trimmed.char_indices().nth(MAX_ERROR_CHARS) {
        Some((cut, _)) => format!("{}…", &trimmed[..cut]),
        None => trimmed.to_owned(),
    }
}

/// The secret values `desired` carries (at its `secret_paths`), for [`sanitize`].
pub fn secret_values(desired: &Desired) -> Vec<String> {
    let Some(config) = &desired.config else {
        return Vec::new();
    };
    let Ok(value) = serde_json::to_value(config) else {
        return Vec::new();
    };
    desired
        .secret_paths
        .iter()
        .filter_map(|path| {
            // The config serializes keyed by its block (`{"mqttConfig": {…}}`), as paths start.
            let mut at = &value;
            for part in path.split('.') {
                at = match part.parse::<usize>() {
                    Ok(index) => at.get(index)?,
                    Err(_) => at.get(part)?,
                };
            }
            at.as_str().map(str::to_owned)
        })
        .collect()
}

#[cfg(test)]
mod tests;
