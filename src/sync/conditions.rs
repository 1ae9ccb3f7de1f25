//! Status conditions, pure: an outcome → `Ready`, `Reconciling` and `Stalled`, keeping each
//! condition's `lastTransitionTime` unless its status flips, so an unchanged outcome writes
//! nothing.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::crd::Condition;

use crate::crd::condition::{READY, RECONCILING, STALLED};

/// Longest condition message kept, in characters.
pub const MAX_CONDITION_MESSAGE: usize = 1024;

/// Where an object stands after a reconcile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    /// In the desired state.
    Ready {
        /// Why (CamelCase).
        reason: &'static str,
        /// For humans.
        message: String,
    },
    /// Not there yet; the operator keeps trying on its own (a transient failure, or work pending).
    Progressing {
        /// Why (CamelCase).
        reason: &'static str,
        /// For humans.
        message: String,
    },
    /// Blocked until something changes (the spec, a Secret, the remote, a permission).
    Stalled {
        /// Why (CamelCase).
        reason: &'static str,
        /// For humans.
        message: String,
    },
}

impl Health {
    /// The reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Health::Ready { reason, .. }
            | Health::Progressing { reason, .. }
            | Health::Stalled { reason, .. } => reason,
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        match self {
            Health::Ready { message, .. }
            | Health::Progressing { message, .. }
            | Health::Stalled { message, .. } => message,
        }
    }
}

/// The three conditions for `health`, reusing `existing` transition times where the status holds.
pub fn conditions(
    health: &Health,
    generation: Option<i64>,
    existing: &[Condition],
    now: &Time,
) -> Vec<Condition> {
    let (ready, reconciling, stalled) = match health {
        Health::Ready { .. } => ("True", "False", "False"),
        Health::Progressing { .. } => ("False", "True", "False"),
        Health::Stalled { .. } => ("False", "False", "True"),
    };
    let message = truncate(health.message(), MAX_CONDITION_MESSAGE);
    let make = |kind: &str, status: &str, reason: &str, message: &str| {
        let kept = existing
            .iter()
            .find(|c| c.type_ == kind && c.status == status)
            .map(|c| c.last_transition_time.clone());
        Condition {
            type_: kind.into(),
            status: status.into(),
            reason: reason.into(),
            message: message.to_owned(),
            observed_generation: generation,
            last_transition_time: kept.unwrap_or_else(|| now.clone()),
        }
    };
    let quiet = |active: &str| {
        if active == "True" {
            health.reason()
        } else {
            "None"
        }
    };
    let quiet_message = |active: &str| {
        if active == "True" {
            message.as_str()
        } else {
            ""
        }
    };
    vec![
        make(READY, ready, health.reason(), &message),
        make(
            RECONCILING,
            reconciling,
            quiet(reconciling),
            quiet_message(reconciling),
        ),
        make(STALLED, stalled, quiet(stalled), quiet_message(stalled)),
    ]
}

/// Whether two condition lists say the same, ignoring transition times.
pub fn same_conditions(a: &[Condition], b: &[Condition]) -> bool {
    let key = |c: &Condition| {
        (
            c.type_.clone(),
            c.status.clone(),
            c.reason.clone(),
            c.message.clone(),
            c.observed_generation,
        )
    };
    let mut a: Vec<_> = a.iter().map(key).collect();
    let mut b: Vec<_> = b.iter().map(key).collect();
    a.sort();
    b.sort();
    a == b
}

/// The `Ready` condition, if present.
pub fn ready_condition(conditions: &[Condition]) -> Option<&Condition> {
    conditions.iter().find(|c| c.type_ == READY)
}

/// Cuts `text` to at most `max` characters, on a character boundary.
pub fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}…", &text[..cut]),
    }
}
