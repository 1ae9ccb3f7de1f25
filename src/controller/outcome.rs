//! How problems met during a reconcile become conditions: each is transient (the operator keeps
//! retrying with backoff, `Reconciling`) or permanent (`Stalled` until something changes).

use std::time::Duration;

use crate::losant;
use crate::sync::conditions::Health;

/// Why a reconcile could not finish. The message never holds a secret value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Will likely pass on a later try; retry with backoff (or after `retry_after`).
    Transient {
        /// Condition reason.
        reason: &'static str,
        /// For humans.
        message: String,
        /// Server-requested wait.
        retry_after: Option<Duration>,
    },
    /// Needs a change (spec, Secret, permissions, remote) before it can pass.
    Permanent {
        /// Condition reason.
        reason: &'static str,
        /// For humans.
        message: String,
    },
}

impl Failure {
    /// A permanent failure.
    pub fn permanent(reason: &'static str, message: impl Into<String>) -> Self {
        Failure::Permanent {
            reason,
            message: message.into(),
        }
    }

    /// A transient failure.
    pub fn transient(reason: &'static str, message: impl Into<String>) -> Self {
        Failure::Transient {
            reason,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The conditions' view of it.
    pub fn health(&self) -> Health {
        match self {
            Failure::Transient {
                reason, message, ..
            } => Health::Progressing {
                reason,
                message: message.clone(),
            },
            Failure::Permanent { reason, message } => Health::Stalled {
                reason,
                message: message.clone(),
            },
        }
    }

    /// A Losant error during `doing` (e.g. "listing integrations"). Only Losant's parsed
    /// `{type, message}` reaches the message, never a response body.
    pub fn losant(doing: &str, error: &losant::Error) -> Self {
        let message = format!("{doing}: {}", describe(error));
        if error.is_transient() {
            return Failure::Transient {
                reason: "LosantUnavailable",
                message,
                retry_after: error.retry_after(),
            };
        }
        let reason = match error.status() {
            Some(401) => "Unauthorized",
            Some(403) => "Forbidden",
            Some(404) => "NotFound",
            Some(400) => "LosantRejected",
            Some(_) => "LosantError",
            None => "LosantClientError",
        };
        Failure::Permanent { reason, message }
    }
}

/// An error with its causes (which never carry secrets: see `losant::Error`).
pub fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
