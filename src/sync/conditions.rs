//! Status conditions, pure: an outcome → `Ready`, `Reconciling` and `Stalled`, keeping each
//! condition's `lastTransitionTime` unless its status flips, so an unchanged outcome writes
//! nothing.

use jiff::Timestamp;

use super::connection::Connection;
use super::reason::{ConditionStatus, ConditionType, Reason};
use crate::crd::Condition;

/// Longest condition message kept, in characters.
pub const MAX_CONDITION_MESSAGE: usize = 1024;

/// Where an object stands after a reconcile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    /// In the desired state.
    Ready {
        /// Why (CamelCase).
        reason: Reason,
        /// For humans.
        message: String,
    },
    /// Not there yet; the operator keeps trying on its own (a transient failure, or work pending).
    Progressing {
        /// Why (CamelCase).
        reason: Reason,
        /// For humans.
        message: String,
    },
    /// Blocked until something changes (the spec, a Secret, the remote, a permission).
    Stalled {
        /// Why (CamelCase).
        reason: Reason,
        /// For humans.
        message: String,
    },
    /// Held on purpose (`losant.io/paused`): not ready, and neither working nor blocked.
    Paused {
        /// For humans.
        message: String,
    },
}

impl Health {
    /// The reason.
    pub fn reason(&self) -> Reason {
        match self {
            Health::Ready { reason, .. }
            | Health::Progressing { reason, .. }
            | Health::Stalled { reason, .. } => *reason,
            Health::Paused { .. } => Reason::Paused,
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        match self {
            Health::Ready { message, .. }
            | Health::Progressing { message, .. }
            | Health::Stalled { message, .. }
            | Health::Paused { message } => message,
        }
    }
}

/// The three conditions for `health`, reusing `existing` transition times where the status holds.
pub fn conditions(
    health: &Health,
    generation: Option<i64>,
    existing: &[Condition],
    now: Timestamp,
) -> Vec<Condition> {
    use ConditionStatus::{False, True};
    let (ready, reconciling, stalled) = match health {
        Health::Ready { .. } => (True, False, False),
        Health::Progressing { .. } => (False, True, False),
        Health::Stalled { .. } => (False, False, True),
        Health::Paused { .. } => (False, False, False),
    };
    let message = truncate(health.message(), MAX_CONDITION_MESSAGE);
    let make = |kind: ConditionType, status: ConditionStatus| {
        // Reconciling and Stalled say nothing while not in force (kstatus abnormal-true
        // conditions at rest); Ready always says why.
        let (reason, message) = if kind == ConditionType::Ready || status == True {
            (health.reason(), message.as_str())
        } else {
            (Reason::None, "")
        };
        let kept = find(existing, kind, status).map(|c| c.last_transition_time.clone());
        Condition {
            type_: kind.as_str().into(),
            status: status.as_str().into(),
            reason: reason.as_str().into(),
            message: message.to_owned(),
            observed_generation: generation,
            last_transition_time: kept.unwrap_or_else(|| now.into()),
        }
    };
    vec![
        make(ConditionType::Ready, ready),
        make(ConditionType::Reconciling, reconciling),
        make(ConditionType::Stalled, stalled),
    ]
}

/// The `Connected` condition saying `connection`, keeping its transition time from `existing`
/// while its status holds (a new error text alone is no transition).
pub fn connected(
    connection: &Connection,
    generation: Option<i64>,
    existing: &[Condition],
    now: Timestamp,
) -> Condition {
    let kept = find(existing, ConditionType::Connected, connection.status)
        .map(|c| c.last_transition_time.clone());
    Condition {
        type_: ConditionType::Connected.as_str().into(),
        status: connection.status.as_str().into(),
        reason: connection.reason.as_str().into(),
        message: truncate(&connection.message, MAX_CONDITION_MESSAGE),
        observed_generation: generation,
        last_transition_time: kept.unwrap_or_else(|| now.into()),
    }
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
    conditions
        .iter()
        .find(|c| c.type_ == ConditionType::Ready.as_str())
}

/// Whether the `Ready` condition is `True`.
pub fn is_ready(conditions: &[Condition]) -> bool {
    ready_condition(conditions).is_some_and(|c| c.is(ConditionType::Ready, ConditionStatus::True))
}

/// The first condition of `type_` with `status`, if any.
pub fn find(
    conditions: &[Condition],
    type_: ConditionType,
    status: ConditionStatus,
) -> Option<&Condition> {
    conditions.iter().find(|c| c.is(type_, status))
}

/// Whether a condition of `type_` has `status`.
pub fn has(conditions: &[Condition], type_: ConditionType, status: ConditionStatus) -> bool {
    find(conditions, type_, status).is_some()
}

/// Typed reads of the wire condition. Here rather than in `crd`, which knows nothing of
/// [`Reason`].
impl Condition {
    /// Whether this is the `type_` condition with `status`.
    pub fn is(&self, type_: ConditionType, status: ConditionStatus) -> bool {
        self.type_ == type_.as_str() && self.status == status.as_str()
    }

    /// Whether its reason is `reason`.
    pub fn reason_is(&self, reason: Reason) -> bool {
        self.reason == reason.as_str()
    }

    /// Its reason, when it is one the operator writes.
    pub fn known_reason(&self) -> Option<Reason> {
        self.reason.parse().ok()
    }
}

/// Cuts `text` to at most `max` characters, on a character boundary.
pub fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}…", &text[..cut]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(conditions: &[Condition]) -> Vec<(String, String, String, String)> {
        conditions
            .iter()
            .map(|c| {
                let strings = [&c.type_, &c.status, &c.reason].map(|w| w.to_string());
                let [type_, status, reason] = strings;
                (type_, status, reason, c.message.clone())
            })
            .collect()
    }

    fn row(
        type_: &str,
        status: &str,
        reason: &str,
        message: &str,
    ) -> (String, String, String, String) {
        (type_.into(), status.into(), reason.into(), message.into())
    }

    #[test]
    fn each_health_writes_the_same_wire_conditions_as_before() {
        let now = Timestamp::UNIX_EPOCH;
        let message = || "m".to_owned();
        let stalled = Health::Stalled {
            reason: Reason::InsufficientScope,
            message: message(),
        };
        assert_eq!(
            wire(&conditions(&stalled, Some(2), &[], now)),
            [
                row("Ready", "False", "InsufficientScope", "m"),
                row("Reconciling", "False", "None", ""),
                row("Stalled", "True", "InsufficientScope", "m"),
            ]
        );
        let progressing = Health::Progressing {
            reason: Reason::CreatePending,
            message: message(),
        };
        assert_eq!(
            wire(&conditions(&progressing, None, &[], now)),
            [
                row("Ready", "False", "CreatePending", "m"),
                row("Reconciling", "True", "CreatePending", "m"),
                row("Stalled", "False", "None", ""),
            ]
        );
        let ready = Health::Ready {
            reason: Reason::Synced,
            message: message(),
        };
        assert_eq!(
            wire(&conditions(&ready, None, &[], now)),
            [
                row("Ready", "True", "Synced", "m"),
                row("Reconciling", "False", "None", ""),
                row("Stalled", "False", "None", ""),
            ]
        );
    }

    #[test]
    fn transition_times_hold_while_the_status_holds() {
        let earlier = Timestamp::UNIX_EPOCH;
        let later = earlier + jiff::SignedDuration::from_secs(60);
        let stalled = |reason| Health::Stalled {
            reason,
            message: String::new(),
        };
        let before = conditions(&stalled(Reason::Forbidden), Some(1), &[], earlier);
        let after = conditions(&stalled(Reason::Unauthorized), Some(1), &before, later);
        assert!(after.iter().all(|c| c.last_transition_time.0 == earlier));
        let ready = Health::Ready {
            reason: Reason::Synced,
            message: String::new(),
        };
        let flipped = conditions(&ready, Some(1), &after, later);
        let times: Vec<_> = flipped.iter().map(|c| c.last_transition_time.0).collect();
        assert_eq!(times, [later, earlier, later]);
    }

    #[test]
    fn typed_reads_of_conditions() {
        let health = Health::Stalled {
            reason: Reason::LosantRejected,
            message: String::new(),
        };
        let list = conditions(&health, None, &[], Timestamp::UNIX_EPOCH);
        let stalled = find(&list, ConditionType::Stalled, ConditionStatus::True).unwrap();
        assert!(stalled.reason_is(Reason::LosantRejected));
        assert_eq!(stalled.known_reason(), Some(Reason::LosantRejected));
        assert!(has(&list, ConditionType::Ready, ConditionStatus::False));
        assert!(!has(&list, ConditionType::Ready, ConditionStatus::True));
        assert_eq!(
            ready_condition(&list).map(|c| c.is(ConditionType::Ready, ConditionStatus::False)),
            Some(true)
        );
        assert!(!is_ready(&list));
        let ready = Health::Ready {
            reason: Reason::Verified,
            message: String::new(),
        };
        assert!(is_ready(&conditions(
            &ready,
            None,
            &list,
            Timestamp::UNIX_EPOCH
        )));
        let mut odd = stalled.clone();
        odd.reason = "SomethingElse".into();
        assert_eq!(odd.known_reason(), None);
        assert!(!odd.reason_is(Reason::LosantRejected));
    }
}
