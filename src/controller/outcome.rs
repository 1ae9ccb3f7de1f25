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

    /// A Losant error during `call`. Only Losant's parsed `{type, message}` reaches the message,
    /// never a response body. A 403 names the scope the token lacks.
    pub fn losant(call: LosantCall, error: &losant::Error) -> Self {
        let message = format!("{}: {}", call.describe(), describe(error));
        if error.status() == Some(403)
            && let Some(scope) = call.scope()
        {
            return Failure::Permanent {
                reason: "InsufficientScope",
                message: format!(
                    "the API token may not {}: it needs the {scope} scope (or integrations.*/integration.*, or all.Application)",
                    call.describe()
                ),
            };
        }
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

/// A call to Losant, for messages and for the scope it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LosantCall {
    /// Building the client (no request).
    SetUp,
    /// Listing integrations (also the access check and snapshots).
    List,
    /// A name lookup (a filtered list).
    FindByName,
    /// Creating an integration.
    Create,
    /// Reading one integration.
    Get,
    /// Updating one integration.
    Patch,
    /// Deleting one integration.
    Delete,
}

impl LosantCall {
    /// What the operator was doing, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            LosantCall::SetUp => "set up the Losant client",
            LosantCall::List => "list integrations",
            LosantCall::FindByName => "look the integration up by name",
            LosantCall::Create => "create the integration",
            LosantCall::Get => "read the integration",
            LosantCall::Patch => "update the integration",
            LosantCall::Delete => "delete the integration",
        }
    }

    /// The narrowest Losant scope that allows the call: plural for the collection, singular for
    /// one integration.
    pub fn scope(self) -> Option<&'static str> {
        Some(match self {
            LosantCall::SetUp => return None,
            LosantCall::List | LosantCall::FindByName => "integrations.get",
            LosantCall::Create => "integrations.post",
            LosantCall::Get => "integration.get",
            LosantCall::Patch => "integration.patch",
            LosantCall::Delete => "integration.delete",
        })
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
