//! How problems met during a reconcile become conditions: each is transient (the operator keeps
//! retrying with backoff, `Reconciling`) or permanent (`Stalled` until something changes).

use std::time::Duration;

use crate::losant;
use crate::sync::conditions::Health;
use crate::sync::reason::{Reason, Requeue};

/// Why a reconcile could not finish. The message never holds a secret value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Will likely pass on a later try; retry with backoff (or after `retry_after`).
    Transient {
        /// Condition reason.
        reason: Reason,
        /// For humans.
        message: String,
        /// Server-requested wait.
        retry_after: Option<Duration>,
    },
    /// Needs a change (spec, Secret, permissions, remote) before it can pass.
    Permanent {
        /// Condition reason.
        reason: Reason,
        /// For humans.
        message: String,
    },
}

impl Failure {
    /// A permanent failure.
    pub fn permanent(reason: Reason, message: impl Into<String>) -> Self {
        Failure::Permanent {
            reason,
            message: message.into(),
        }
    }

    /// A transient failure.
    pub fn transient(reason: Reason, message: impl Into<String>) -> Self {
        Failure::Transient {
            reason,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The reason.
    pub fn reason(&self) -> Reason {
        match self {
            Failure::Transient { reason, .. } | Failure::Permanent { reason, .. } => *reason,
        }
    }

    /// The conditions' view of it.
    pub fn health(&self) -> Health {
        match self {
            Failure::Transient {
                reason, message, ..
            } => Health::Progressing {
                reason: *reason,
                message: message.clone(),
            },
            Failure::Permanent { reason, message } => Health::Stalled {
                reason: *reason,
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
                reason: Reason::InsufficientScope,
                message: format!(
                    "the API token may not {}: it needs the {scope} scope (or integrations.*/integration.*, or all.Application)",
                    call.describe()
                ),
            };
        }
        if error.is_transient() {
            return Failure::Transient {
                reason: Reason::LosantUnavailable,
                message,
                retry_after: error.retry_after(),
            };
        }
        let reason = match error.status() {
            Some(401) => Reason::Unauthorized,
            Some(403) => Reason::Forbidden,
            Some(404) => Reason::NotFound,
            // A redirect is never followed: what answers at the API URL refused to serve it.
            Some(300..=400) => Reason::LosantRejected,
            Some(_) => Reason::LosantError,
            None => Reason::LosantClientError,
        };
        Failure::Permanent { reason, message }
    }
}

/// When to reconcile again after a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequeueChoice {
    /// After exactly this long.
    After(Duration),
    /// On the object's growing backoff, or after Losant's Retry-After when it gave one.
    Backoff(Option<Duration>),
    /// At the stalled re-check interval.
    StalledRecheck,
}

/// How soon a failure that may clear at any time ([`Requeue::Soon`]) is looked at again.
pub const SOON: Duration = Duration::from_secs(30);

/// When to look again after `failure`: its kind, refined by its reason's [`Requeue`] class.
pub fn requeue(failure: &Failure) -> RequeueChoice {
    match (failure, failure.reason().requeue()) {
        // Waiting for a pending create is not a failure: look again when asked, not on a
        // growing backoff.
        (
            Failure::Transient {
                retry_after: Some(wait),
                ..
            },
            Requeue::AsAsked,
        ) => RequeueChoice::After(*wait),
        (Failure::Transient { retry_after, .. }, _) => RequeueChoice::Backoff(*retry_after),
        // A rival may go away at any time; look again soon.
        (Failure::Permanent { .. }, Requeue::Soon) => RequeueChoice::After(SOON),
        (Failure::Permanent { .. }, _) => RequeueChoice::StalledRecheck,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn transient(reason: Reason, retry_after: Option<Duration>) -> Failure {
        Failure::Transient {
            reason,
            message: String::new(),
            retry_after,
        }
    }

    /// Every reason, transient (with and without a wait) and permanent.
    #[test]
    fn every_reason_is_requeued_as_before() {
        let wait = Some(Duration::from_secs(3));
        for &reason in Reason::ALL {
            let as_asked = reason == Reason::CreatePending;
            let soon = reason == Reason::ConflictingOwner;
            let table = [
                (
                    transient(reason, wait),
                    if as_asked {
                        RequeueChoice::After(Duration::from_secs(3))
                    } else {
                        RequeueChoice::Backoff(wait)
                    },
                ),
                (transient(reason, None), RequeueChoice::Backoff(None)),
                (
                    Failure::permanent(reason, "m"),
                    if soon {
                        RequeueChoice::After(Duration::from_secs(30))
                    } else {
                        RequeueChoice::StalledRecheck
                    },
                ),
            ];
            for (failure, expected) in table {
                assert_eq!(requeue(&failure), expected, "{failure:?}");
            }
        }
    }

    #[test]
    fn losant_errors_keep_their_reasons() {
        let status = |code: u16| losant::Error::Api {
            status: code,
            kind: "Error".into(),
            message: "m".into(),
            retry_after: None,
        };
        let reason = |call, code| Failure::losant(call, &status(code)).reason();
        assert_eq!(reason(LosantCall::Create, 403), Reason::InsufficientScope);
        assert_eq!(reason(LosantCall::SetUp, 403), Reason::Forbidden);
        assert_eq!(reason(LosantCall::Get, 401), Reason::Unauthorized);
        assert_eq!(reason(LosantCall::Get, 404), Reason::NotFound);
        assert_eq!(reason(LosantCall::Patch, 400), Reason::LosantRejected);
        assert_eq!(reason(LosantCall::Patch, 409), Reason::LosantError);
        assert_eq!(reason(LosantCall::List, 503), Reason::LosantUnavailable);
        let redirect = losant::Error::Redirect {
            status: 302,
            target: "another host (example.com)".into(),
        };
        let failure = Failure::losant(LosantCall::List, &redirect);
        assert_eq!(failure.reason(), Reason::LosantRejected);
        let unreadable = losant::Error::Decode {
            status: 200,
            reason: "x".into(),
        };
        let failure = Failure::losant(LosantCall::List, &unreadable);
        assert_eq!(failure.reason(), Reason::LosantUnavailable);
        let bad_id = losant::Error::InvalidArgument { reason: "x".into() };
        let failure = Failure::losant(LosantCall::Get, &bad_id);
        assert_eq!(failure.reason(), Reason::LosantClientError);
    }
}
