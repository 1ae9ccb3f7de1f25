//! Step 4 of an Integration's apply, pure: what came of it → the next status (conditions
//! included), the Events to publish and when to look again. No I/O and no clock (`now` comes
//! in): `apply` publishes the Events and writes the status, only if it changed.
//!
//! # Guarantees
//! - Status comes from what was applied ([`Synced`], which only `execute` builds) or from the
//!   failure; `lastAppliedTime` moves only when something was written to Losant.
//! - A failure is announced once, when the object enters it (not on every retry); waiting for
//!   the `LosantApplication` to be verified is not a failure worth an Event.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::events::EventType;

use super::super::outcome::{self, Failure, RequeueChoice};
use super::execute::{Synced, Wrote};
use crate::crd::{Condition, ConnectionStatus, IntegrationStatus};
use crate::sync::conditions::{self, Health};
use crate::sync::connection::Connection;
use crate::sync::reason::{ConditionStatus, ConditionType, Reason};

/// An Event to publish about the object.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Note {
    pub type_: EventType,
    pub reason: &'static str,
    pub action: &'static str,
    pub note: String,
}

/// When to reconcile again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Next {
    /// In sync: at the resync interval (or when the sweep brings it back); backoff forgotten.
    Resync,
    /// After a failure.
    Retry(RequeueChoice),
}

/// What `apply` publishes, writes and returns.
#[derive(Debug)]
pub(super) struct Report {
    /// The status to write (if it differs from the current one).
    pub status: IntegrationStatus,
    /// Events to publish, in order.
    pub events: Vec<Note>,
    /// When to look again.
    pub next: Next,
    /// Whether a change made outside Kubernetes was reverted (a metric).
    pub drift_corrected: bool,
}

/// The report of an apply of generation `generation` that ended in `outcome`, at `now`;
/// `requested` is the `losant.io/reconcile-requested-at` value this apply handled.
pub(super) fn report(
    generation: Option<i64>,
    previous: &IntegrationStatus,
    outcome: &Result<Synced, Failure>,
    now: Timestamp,
    requested: Option<&str>,
) -> Report {
    let (mut status, health, next) = match outcome {
        Ok(synced) => (
            succeeded(previous, synced, now),
            health_of(synced),
            Next::Resync,
        ),
        Err(failure) => (
            previous.clone(),
            failure.health(),
            Next::Retry(outcome::requeue(failure)),
        ),
    };
    status.observed_generation = generation;
    status.conditions = conditions::conditions(&health, generation, &previous.conditions, now);
    let connected = connected_condition(outcome, previous, generation, now);
    status.conditions.extend(connected);
    if let Some(requested) = requested {
        status.last_handled_reconcile_at = Some(requested.to_owned());
    }
    let written = outcome.as_ref().ok().and_then(write_event);
    let events = written
        .into_iter()
        .chain(failure_event(previous, &health))
        .chain(disconnect_event(previous, &status))
        .collect();
    let drift_corrected = matches!(
        outcome,
        Ok(Synced {
            wrote: Some(Wrote::Patched {
                spec_changed: false,
                ..
            }),
            ..
        })
    );
    Report {
        status,
        events,
        next,
        drift_corrected,
    }
}

/// Ready once Losant holds what the spec says; under `ObserveOnly`, drift is reported as a
/// standstill the operator will not resolve.
fn health_of(synced: &Synced) -> Health {
    let id = &synced.remote.id;
    match synced.drift.as_deref() {
        None => Health::Ready {
            reason: Reason::Synced,
            message: format!("integration {id} matches the spec"),
        },
        Some([]) => Health::Ready {
            reason: Reason::Observed,
            message: format!("integration {id} matches the spec (managementPolicy ObserveOnly)"),
        },
        Some(fields) => Health::Stalled {
            reason: Reason::DriftDetected,
            message: format!(
                "integration {id} differs from the spec in {}; managementPolicy is ObserveOnly, so the operator leaves it so",
                fields.join(", ")
            ),
        },
    }
}

/// The `Connected` condition: from the remote just read, else as it was (a failed reconcile
/// learned nothing new), else unknown.
fn connected_condition(
    outcome: &Result<Synced, Failure>,
    previous: &IntegrationStatus,
    generation: Option<i64>,
    now: Timestamp,
) -> Option<Condition> {
    let kind = ConditionType::Connected.as_str();
    match outcome {
        Ok(synced) => Some(conditions::connected(
            &synced.connection,
            generation,
            &previous.conditions,
            now,
        )),
        Err(_) => match previous.conditions.iter().find(|c| c.type_ == kind) {
            Some(kept) => Some(kept.clone()),
            None => {
                let unknown = Connection {
                    status: ConditionStatus::Unknown,
                    reason: Reason::NotReported,
                    message: "there is no remote integration to report on yet".into(),
                    since: None,
                    error: None,
                    next_attempt: None,
                };
                Some(conditions::connected(
                    &unknown,
                    generation,
                    &previous.conditions,
                    now,
                ))
            }
        },
    }
}

/// A Warning Event when the integration goes from connected to disconnected (not on every
/// sweep that finds it still disconnected).
fn disconnect_event(previous: &IntegrationStatus, next: &IntegrationStatus) -> Option<Note> {
    let connected = |status: &IntegrationStatus, value| {
        conditions::has(&status.conditions, ConditionType::Connected, value)
    };
    if !(connected(previous, ConditionStatus::True) && connected(next, ConditionStatus::False)) {
        return None;
    }
    let now = conditions::find(
        &next.conditions,
        ConditionType::Connected,
        ConditionStatus::False,
    )?;
    Some(Note {
        type_: EventType::Warning,
        reason: Reason::Disconnected.as_str(),
        action: "Observe",
        note: now.message.clone(),
    })
}

/// Status after a successful sync (conditions and generation are set by the caller). An
/// observed remote (nothing written) keeps what the last write applied.
fn succeeded(previous: &IntegrationStatus, synced: &Synced, now: Timestamp) -> IntegrationStatus {
    let observed = synced.drift.is_some();
    let (applied_fields, applied_secret_versions) = if observed {
        (
            previous.applied_fields.clone(),
            previous.applied_secret_versions.clone(),
        )
    } else {
        (
            synced.applied_fields.clone(),
            (&synced.secret_versions).into(),
        )
    };
    IntegrationStatus {
        observed_generation: previous.observed_generation,
        integration_id: Some(synced.remote.id.clone()),
        application_id: Some(synced.application_id.as_str().into()),
        api_url: Some(synced.api_url.as_str().into()),
        origin: synced.origin.or(previous.origin),
        last_applied_time: if synced.wrote.is_some() {
            Some(Time(now))
        } else {
            previous.last_applied_time.clone()
        },
        applied_secret_versions,
        applied_fields,
        connection: Some(connection_status(&synced.connection)),
        last_handled_reconcile_at: previous.last_handled_reconcile_at.clone(),
        conditions: previous.conditions.clone(),
    }
}

/// `status.connection` for `connection`, its times in whole seconds as the API server keeps
/// them (so an unchanged connection compares equal to what was written).
fn connection_status(connection: &Connection) -> ConnectionStatus {
    let seconds = |t: Timestamp| Timestamp::from_second(t.as_second()).unwrap_or(t);
    ConnectionStatus {
        state: connection.reason.as_str().into(),
        since: connection.since.map(|t| Time(seconds(t))),
        since_unix: connection.since.map(|t| t.as_second()),
        last_error: connection.error.clone(),
        next_attempt: connection.next_attempt.map(|t| Time(seconds(t))),
    }
}

/// The Normal (or, for a re-create, Warning) Event of a write; none when nothing was written.
fn write_event(synced: &Synced) -> Option<Note> {
    let id = &synced.remote.id;
    let app = &synced.application_id;
    let (type_, reason, note) = match synced.wrote.as_ref()? {
        Wrote::Created => (
            EventType::Normal,
            "Created",
            format!("created integration {id} in application {app}"),
        ),
        Wrote::Recreated { old_id } => (
            EventType::Warning,
            "Recreated",
            format!("integration {old_id} was deleted outside Kubernetes; re-created it as {id}"),
        ),
        Wrote::Adopted { patched } if patched.is_empty() => (
            EventType::Normal,
            "Adopted",
            format!("took over existing integration {id} in application {app}"),
        ),
        Wrote::Adopted { patched } => (
            EventType::Normal,
            "Adopted",
            format!(
                "took over existing integration {id} in application {app} and updated {}",
                patched.join(", ")
            ),
        ),
        Wrote::Patched {
            spec_changed: true,
            fields,
        } => (
            EventType::Normal,
            "Updated",
            format!("updated {} of integration {id}", fields.join(", ")),
        ),
        Wrote::Patched {
            spec_changed: false,
            fields,
        } => (
            EventType::Normal,
            "DriftCorrected",
            format!(
                "reverted changes to {} of integration {id} made outside Kubernetes",
                fields.join(", ")
            ),
        ),
    };
    Some(Note {
        type_,
        reason,
        action: "Sync",
        note,
    })
}

/// A Warning Event when the object enters a failing state (not on every retry).
pub(super) fn failure_event(previous: &IntegrationStatus, health: &Health) -> Option<Note> {
    // Waiting for the application to be verified is normal, not a failure worth an event.
    if matches!(health, Health::Ready { .. }) || health.reason() == Reason::WaitingForApplication {
        return None;
    }
    let before = conditions::ready_condition(&previous.conditions);
    if before.is_some_and(|c| c.reason_is(health.reason())) {
        return None;
    }
    Some(Note {
        type_: EventType::Warning,
        reason: health.reason().as_str(),
        action: "Sync",
        note: health.message().to_owned(),
    })
}

#[cfg(test)]
mod tests;
