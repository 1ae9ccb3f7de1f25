//! `losant.io/paused: "true"`: the operator makes no Losant call for the object and leaves its
//! status alone, except to say once that it is paused. Deleting a paused object whose remote
//! would be orphaned finishes at once (orphaning calls no Losant API); one whose remote would be
//! deleted waits, saying so in `Ready` and an Event, until the annotation goes (or
//! `deletionPolicy: Orphan` is set).

use kube::Api;
use kube::api::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;

use super::super::context::Context;
use super::super::error::Error;
use super::super::status;
use super::report::Note;
use super::{announce, cleanup, has_finalizer};
use crate::crd::{DeletionPolicy, Integration, IntegrationStatus};
use crate::sync::conditions::{self, Health};
use crate::sync::reason::{ConditionType, Reason};

/// The annotation that pauses an object.
pub const PAUSED: &str = "losant.io/paused";

/// Whether `obj` carries `losant.io/paused: "true"`.
pub fn is_paused(obj: &Integration) -> bool {
    obj.annotations().get(PAUSED).is_some_and(|v| v == "true")
}

/// Whether `obj` is paused and must be held: a deletion that only orphans (or has nothing left
/// to do) goes ahead.
pub(super) fn holds(obj: &Integration, ctx: &Context) -> bool {
    if !is_paused(obj) {
        return false;
    }
    if obj.metadata.deletion_timestamp.is_none() {
        return true;
    }
    let previous = obj.status.clone().unwrap_or_default();
    has_finalizer(obj)
        && cleanup::deletion_policy(obj, &previous, ctx.clock.now()) == DeletionPolicy::Delete
}

/// Holds a paused object: `Ready` says why (written once), and an Event when that changes.
pub(super) async fn hold(
    obj: &Integration,
    api: &Api<Integration>,
    ctx: &Context,
) -> Result<Action, Error> {
    let previous = obj.status.clone().unwrap_or_default();
    let deleting = obj.metadata.deletion_timestamp.is_some();
    let message = if deleting {
        "deletion waits: losant.io/paused is set, and finishing it would delete the remote integration in Losant; remove the annotation (or set deletionPolicy: Orphan) to let it finish"
    } else {
        "losant.io/paused is set: the operator makes no Losant call for this object until it is removed"
    };
    let health = Health::Paused {
        message: message.to_owned(),
    };
    let next = paused_status(&previous, &health, obj.metadata.generation, ctx);
    let said = |status: &IntegrationStatus| {
        conditions::ready_condition(&status.conditions)
            .map(|c| (c.reason.clone(), c.message.clone()))
    };
    if said(&previous) != said(&next) {
        let note = Note {
            type_: if deleting {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: Reason::Paused.as_str(),
            action: "Pause",
            note: message.to_owned(),
        };
        announce(obj, note, ctx).await;
    }
    if status::apply_if_changed(api, &obj.name_any(), obj.status.as_ref(), &next).await? {
        ctx.metrics.status_written();
    }
    // Removing the annotation (or any other change) brings the object back.
    Ok(Action::await_change())
}

/// The status of a paused object: `Ready`, `Reconciling` and `Stalled` say paused; everything
/// else (the last sync, the connection) stays as it was.
fn paused_status(
    previous: &IntegrationStatus,
    health: &Health,
    generation: Option<i64>,
    ctx: &Context,
) -> IntegrationStatus {
    let mut next = previous.clone();
    let now = ctx.clock.now();
    next.conditions = conditions::conditions(health, generation, &previous.conditions, now);
    let connected = ConditionType::Connected.as_str();
    next.conditions.extend(
        previous
            .conditions
            .iter()
            .filter(|c| c.type_ == connected)
            .cloned(),
    );
    next
}
