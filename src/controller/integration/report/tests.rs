use std::time::Duration;

use jiff::SignedDuration;
use serde_json::json;

use super::*;
use crate::crd::Origin;
use crate::losant;
use crate::sync::reason::{ConditionStatus, ConditionType};

const APP: &str = "0123456789abcdef0123456a";
const ID: &str = "bbbbbbbbbbbbbbbbbbbbbbbb";

fn now() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap()
}

fn remote() -> losant::Integration {
    losant::Integration::from_value_lenient(
        json!({"id": ID, "name": "broker-in", "integrationType": "mqtt"}),
    )
    .unwrap()
}

fn synced(wrote: Option<Wrote>) -> Synced {
    Synced::for_test(remote(), Origin::Created, APP, wrote)
}

/// A status that was Ready (or in `health`) an hour ago, applied two hours ago.
fn previous(health: &Health) -> IntegrationStatus {
    let hour_ago = now() - SignedDuration::from_hours(1);
    IntegrationStatus {
        observed_generation: Some(1),
        integration_id: Some(ID.into()),
        last_applied_time: Some(Time(now() - SignedDuration::from_hours(2))),
        conditions: conditions::conditions(health, Some(1), &[], hour_ago),
        ..IntegrationStatus::default()
    }
}

fn ready() -> Health {
    Health::Ready {
        reason: Reason::Synced,
        message: format!("integration {ID} matches the spec"),
    }
}

fn note(type_: EventType, reason: &'static str, note: &str) -> Note {
    Note {
        type_,
        reason,
        action: "Sync",
        note: note.into(),
    }
}

#[test]
fn a_write_is_reported_with_its_event_and_time() {
    let report = report(
        Some(2),
        &previous(&ready()),
        &Ok(synced(Some(Wrote::Created))),
        now(),
        None,
    );
    let status = &report.status;
    assert_eq!(status.observed_generation, Some(2));
    assert_eq!(status.integration_id.as_deref(), Some(ID));
    assert_eq!(status.application_id.as_deref(), Some(APP));
    assert_eq!(status.origin, Some(Origin::Created));
    assert_eq!(status.last_applied_time, Some(Time(now())));
    assert_eq!(status.applied_fields, ["enabled", "name"]);
    let ready = conditions::ready_condition(&status.conditions).unwrap();
    assert!(ready.is(ConditionType::Ready, ConditionStatus::True));
    assert_eq!(ready.message, format!("integration {ID} matches the spec"));
    assert_eq!(
        report.events,
        [note(
            EventType::Normal,
            "Created",
            &format!("created integration {ID} in application {APP}")
        )]
    );
    assert_eq!(report.next, Next::Resync);
    assert!(!report.drift_corrected);
}

/// Nothing written: no Event, and nothing in status moves (it is not written again).
#[test]
fn an_unchanged_remote_reports_nothing_new() {
    let before = report(Some(1), &previous(&ready()), &Ok(synced(None)), now(), None).status;
    let again = report(
        Some(1),
        &before,
        &Ok(synced(None)),
        now() + SignedDuration::from_secs(60),
        None,
    );
    assert_eq!(again.status, before);
    assert!(again.events.is_empty());
    assert_eq!(
        before.last_applied_time,
        previous(&ready()).last_applied_time,
        "lastAppliedTime moves only with a write"
    );
}

#[test]
fn every_write_has_its_event() {
    let fields = || vec!["enabled", "topics"];
    let table = [
        (
            Wrote::Recreated {
                old_id: "old".into(),
            },
            note(
                EventType::Warning,
                "Recreated",
                &format!("integration old was deleted outside Kubernetes; re-created it as {ID}"),
            ),
        ),
        (
            Wrote::Adopted { patched: vec![] },
            note(
                EventType::Normal,
                "Adopted",
                &format!("took over existing integration {ID} in application {APP}"),
            ),
        ),
        (
            Wrote::Adopted { patched: fields() },
            note(
                EventType::Normal,
                "Adopted",
                &format!(
                    "took over existing integration {ID} in application {APP} and updated enabled, topics"
                ),
            ),
        ),
        (
            Wrote::Patched {
                spec_changed: true,
                fields: fields(),
            },
            note(
                EventType::Normal,
                "Updated",
                &format!("updated enabled, topics of integration {ID}"),
            ),
        ),
        (
            Wrote::Patched {
                spec_changed: false,
                fields: fields(),
            },
            note(
                EventType::Normal,
                "DriftCorrected",
                &format!(
                    "reverted changes to enabled, topics of integration {ID} made outside Kubernetes"
                ),
            ),
        ),
    ];
    for (wrote, expected) in table {
        let drift = matches!(
            wrote,
            Wrote::Patched {
                spec_changed: false,
                ..
            }
        );
        let report = report(
            Some(1),
            &previous(&ready()),
            &Ok(synced(Some(wrote))),
            now(),
            None,
        );
        assert_eq!(report.events, [expected]);
        assert_eq!(report.drift_corrected, drift);
    }
}

/// A failure keeps what status recorded, sets the conditions, and is announced only when the
/// object enters it.
#[test]
fn a_failure_is_announced_once() {
    let failure = Failure::permanent(Reason::AmbiguousName, "2 integrations are named x");
    let first = report(
        Some(1),
        &previous(&ready()),
        &Err(failure.clone()),
        now(),
        None,
    );
    assert_eq!(first.status.integration_id.as_deref(), Some(ID));
    assert_eq!(
        first.status.last_applied_time,
        previous(&ready()).last_applied_time
    );
    assert!(conditions::has(
        &first.status.conditions,
        ConditionType::Stalled,
        ConditionStatus::True
    ));
    assert_eq!(
        first.events,
        [note(
            EventType::Warning,
            "AmbiguousName",
            "2 integrations are named x"
        )]
    );
    assert_eq!(first.next, Next::Retry(RequeueChoice::StalledRecheck));
    let again = report(Some(1), &first.status, &Err(failure), now(), None);
    assert!(again.events.is_empty());
    assert_eq!(again.status, first.status);
}

#[test]
fn waiting_is_not_a_failure_worth_an_event() {
    let waiting = Failure::transient(Reason::WaitingForApplication, "waiting");
    let report_of =
        |failure: Failure| report(Some(1), &previous(&ready()), &Err(failure), now(), None);
    let waited = report_of(waiting);
    assert!(waited.events.is_empty());
    assert_eq!(waited.next, Next::Retry(RequeueChoice::Backoff(None)));
    let pending = Failure::Transient {
        reason: Reason::CreatePending,
        message: "a create sent at … is not visible".into(),
        retry_after: Some(Duration::from_secs(5)),
    };
    let pending = report_of(pending);
    assert_eq!(
        pending.next,
        Next::Retry(RequeueChoice::After(Duration::from_secs(5)))
    );
    assert_eq!(
        pending.events.len(),
        1,
        "a pending create is announced once"
    );
}

/// Every reason, as a transient failure (with and without Losant's Retry-After) and as a
/// permanent one, through the status step: the conditions it sets, the Event it announces
/// when the object enters it, what it leaves of the last success, and when to look again.
#[test]
fn every_reason_reports_its_conditions_event_and_requeue() {
    let wait = Some(Duration::from_secs(7));
    for &reason in Reason::ALL {
        let message = format!("because of {reason}");
        let with_retry_after = Failure::Transient {
            reason,
            message: message.clone(),
            retry_after: wait,
        };
        let rows = [
            (Failure::transient(reason, message.as_str()), None),
            (with_retry_after, wait),
            (Failure::permanent(reason, message.as_str()), None),
        ];
        for (failure, retry_after) in rows {
            let permanent = matches!(failure, Failure::Permanent { .. });
            let before = previous(&ready());
            let out = report(Some(2), &before, &Err(failure.clone()), now(), None);
            let case = format!("{reason} permanent={permanent} retry_after={retry_after:?}");
            let expected = expected_next(permanent, reason, retry_after);
            assert_eq!(out.next, Next::Retry(expected), "{case}");
            assert_failure_conditions(&out.status, reason, &message, permanent, &case);
            assert_eq!(out.status.observed_generation, Some(2), "{case}");
            assert_eq!(out.status.integration_id, before.integration_id, "{case}");
            let applied = &out.status.last_applied_time;
            assert_eq!(applied, &before.last_applied_time, "{case}");
            assert!(!out.drift_corrected, "{case}");
            // Announced when it enters the reason (the object was Ready, reason Synced),
            // except waiting for the application, which is no failure.
            let announced = reason != Reason::Synced && reason != Reason::WaitingForApplication;
            let expected_events = if announced {
                vec![note(EventType::Warning, reason.as_str(), &message)]
            } else {
                Vec::new()
            };
            assert_eq!(out.events, expected_events, "{case}");
        }
    }
}

/// When a failure for `reason` is looked at again, spelled out per case.
fn expected_next(permanent: bool, reason: Reason, retry_after: Option<Duration>) -> RequeueChoice {
    match (permanent, reason, retry_after) {
        (true, Reason::ConflictingOwner, _) => RequeueChoice::After(outcome::SOON),
        (true, _, _) => RequeueChoice::StalledRecheck,
        (false, Reason::CreatePending, Some(wait)) => RequeueChoice::After(wait),
        (false, _, retry_after) => RequeueChoice::Backoff(retry_after),
    }
}

/// `Ready` False and `Stalled` (permanent) or `Reconciling` (transient) True, both saying
/// `reason` and `message`; the other at rest.
fn assert_failure_conditions(
    status: &IntegrationStatus,
    reason: Reason,
    message: &str,
    permanent: bool,
    case: &str,
) {
    let said = |kind: ConditionType| {
        let c = (status.conditions.iter())
            .find(|c| c.type_ == kind.as_str())
            .unwrap();
        (
            c.status.to_string(),
            c.reason.to_string(),
            c.message.clone(),
        )
    };
    let (held, idle) = if permanent {
        (ConditionType::Stalled, ConditionType::Reconciling)
    } else {
        (ConditionType::Reconciling, ConditionType::Stalled)
    };
    let saying = |status: ConditionStatus| {
        (
            status.to_string(),
            reason.as_str().to_owned(),
            message.to_owned(),
        )
    };
    assert_eq!(
        said(ConditionType::Ready),
        saying(ConditionStatus::False),
        "{case}"
    );
    assert_eq!(said(held), saying(ConditionStatus::True), "{case}");
    let at_rest = (
        ConditionStatus::False.to_string(),
        Reason::None.to_string(),
        String::new(),
    );
    assert_eq!(said(idle), at_rest, "{case}");
}
