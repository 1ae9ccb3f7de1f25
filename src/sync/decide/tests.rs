//! Table tests of [`decide`]: every decision and every refusal, each from facts that read like
//! what a reconcile found.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::*;
use crate::crd::{IntegrationSpec, Word};
use crate::losant::FieldPatch;
use crate::sync::desired::{SecretValues, desired};
use crate::sync::owners::Claim;
use crate::sync::plan::applied_fields;

const APP: &str = "0123456789abcdef0123456a";
const OLD_ID: &str = "aaaaaaaaaaaaaaaaaaaaaaaa";
const ID: &str = "bbbbbbbbbbbbbbbbbbbbbbbb";
const GRACE: Duration = Duration::from_secs(30);

fn now() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap()
}

fn ago(seconds: i64) -> Timestamp {
    now() - SignedDuration::from_secs(seconds)
}

fn spec() -> IntegrationSpec {
    serde_json::from_value(json!({
        "applicationRef": {"name": "app"},
        "integrationType": "mqtt",
        "topics": ["a/#"],
        "mqttConfig": {"host": "broker", "port": 8883, "protocol": "mqtts", "clientId": "c1"},
    }))
    .unwrap()
}

fn wanted() -> Desired {
    desired(&spec(), "broker-in", &SecretValues::new()).unwrap()
}

/// The remote as Losant stores what `wanted()` creates, with `edit` applied.
fn remote_with(edit: impl FnOnce(&mut Value)) -> Integration {
    let mut value = serde_json::to_value(plan::create_body(&wanted())).unwrap();
    value["id"] = json!(ID);
    edit(&mut value);
    Integration::from_value_lenient(value).unwrap()
}

fn remote() -> Integration {
    remote_with(|_| {})
}

fn known(remote: Integration) -> Facts {
    facts(Found::Known(Box::new(remote)))
}

fn named(matches: Vec<Integration>) -> Facts {
    facts(Found::Named {
        name: "broker-in".into(),
        matches,
    })
}

fn facts(found: Found) -> Facts {
    Facts {
        desired: wanted(),
        adoption_policy: AdoptionPolicy::IfExactlyOneMatch,
        management: ManagementPolicy::Full,
        application_id: APP.into(),
        recorded: None,
        pending: None,
        found,
        applied_fields: applied_fields(&wanted()),
        secrets_changed: false,
        spec_changed: false,
    }
}

fn recorded(id: &str, origin: Option<Origin>) -> Option<Recorded> {
    Some(Recorded {
        id: id.into(),
        origin,
    })
}

fn pending(at: Timestamp, application_id: Option<&str>, name: Option<&str>) -> Option<Pending> {
    Some(Pending {
        at,
        application_id: application_id.map(Into::into),
        name: name.map(Into::into),
    })
}

fn decided(facts: &Facts) -> Decision {
    decide(facts, now(), GRACE)
}

fn create(recreates: Option<&str>) -> Decision {
    Decision::Create {
        post: plan::create_body(&wanted()),
        recreates: recreates.map(Into::into),
    }
}

fn enable() -> IntegrationPatch {
    IntegrationPatch {
        enabled: Some(true),
        ..IntegrationPatch::default()
    }
}

fn disabled() -> Integration {
    remote_with(|v| v["enabled"] = json!(false))
}

#[test]
fn an_older_claim_refuses_before_anything_else() {
    let rival = Rival {
        object: "team-a/first".into(),
        claim: Claim::Name {
            api_url: "https://api.losant.com".into(),
            application_id: APP.into(),
            name: "broker-in".into(),
        },
    };
    let facts = Facts {
        pending: pending(ago(1), Some(APP), None),
        ..facts(Found::Claimed(rival.clone()))
    };
    let decision = decided(&facts);
    assert_eq!(
        decision,
        Decision::Refuse(Refusal::ConflictingOwner(rival.clone()))
    );
    let Decision::Refuse(refusal) = decision else {
        unreachable!()
    };
    assert_eq!(refusal.reason(), Reason::ConflictingOwner);
    assert_eq!(
        refusal.to_string(),
        format!(
            "Integration team-a/first already manages the integration named \"broker-in\" in application {APP}; this object writes nothing while it does"
        )
    );
}

/// The recorded remote, read by its id: its origin is the recorded one (Adopted when unknown),
/// the last write's fields count, and a match is never an adoption.
#[test]
fn a_known_remote_is_kept_in_sync_or_patched_exactly() {
    let created = Some(Origin::Created);
    let table = [
        (
            Facts {
                recorded: recorded(ID, created),
                ..known(remote())
            },
            Decision::InSync {
                remote: Box::new(remote()),
                origin: Origin::Created,
            },
        ),
        (
            Facts {
                recorded: recorded(ID, None),
                ..known(remote())
            },
            Decision::InSync {
                remote: Box::new(remote()),
                origin: Origin::Adopted,
            },
        ),
        (
            Facts {
                recorded: recorded(ID, created),
                ..known(disabled())
            },
            Decision::Patch {
                remote: Box::new(disabled()),
                origin: Origin::Created,
                patch: enable(),
                spec_changed: false,
            },
        ),
        (
            Facts {
                recorded: recorded(ID, Some(Origin::Adopted)),
                spec_changed: true,
                ..known(disabled())
            },
            Decision::Patch {
                remote: Box::new(disabled()),
                origin: Origin::Adopted,
                patch: enable(),
                spec_changed: true,
            },
        ),
    ];
    for (facts, expected) in table {
        assert_eq!(decided(&facts), expected, "{facts:?}");
    }
}

#[test]
fn a_rotated_secret_resends_the_whole_config() {
    let facts = Facts {
        recorded: recorded(ID, Some(Origin::Created)),
        secrets_changed: true,
        ..known(remote())
    };
    let Decision::Patch { patch, .. } = decided(&facts) else {
        panic!("a changed Secret is drift of its values");
    };
    assert_eq!(
        patch,
        IntegrationPatch {
            config: wanted().config,
            ..IntegrationPatch::default()
        }
    );
}

/// `credentialName` set by the last write and dropped from the spec is cleared, but only on the
/// remote that write went to: a remote found by name is not judged by another one's history.
#[test]
fn the_last_write_counts_only_for_the_recorded_remote() {
    let with_credential = || remote_with(|v| v["credentialName"] = json!("old"));
    let mut fields = applied_fields(&wanted());
    fields.push(Word::from("credentialName"));
    let recorded_one = Facts {
        recorded: recorded(ID, Some(Origin::Created)),
        applied_fields: fields.clone(),
        ..known(with_credential())
    };
    assert_eq!(
        decided(&recorded_one),
        Decision::Patch {
            remote: Box::new(with_credential()),
            origin: Origin::Created,
            patch: IntegrationPatch {
                credential_name: Some(FieldPatch::Clear),
                ..IntegrationPatch::default()
            },
            spec_changed: false,
        }
    );
    let found_by_name = Facts {
        applied_fields: fields,
        ..named(vec![with_credential()])
    };
    assert_eq!(
        decided(&found_by_name),
        Decision::Adopt {
            remote: Box::new(with_credential()),
            patch: None,
        }
    );
}

#[test]
fn a_different_type_is_refused_as_immutable() {
    let sqs = || remote_with(|v| v["integrationType"] = json!("sqs"));
    let conflict = Conflict::ImmutableType {
        remote: "sqs".into(),
        desired: "mqtt".into(),
    };
    let cases = [
        Facts {
            recorded: recorded(ID, Some(Origin::Created)),
            ..known(sqs())
        },
        named(vec![sqs()]),
    ];
    for facts in cases {
        let decision = decided(&facts);
        assert_eq!(
            decision,
            Decision::Refuse(Refusal::ImmutableField(conflict.clone())),
            "{facts:?}"
        );
        let Decision::Refuse(refusal) = decision else {
            unreachable!()
        };
        assert_eq!(refusal.reason(), Reason::ImmutableField);
        assert_eq!(refusal.to_string(), conflict.to_string());
    }
}

#[test]
fn no_match_creates_and_a_vanished_remote_is_recreated() {
    assert_eq!(decided(&named(vec![])), create(None));
    let vanished = Facts {
        recorded: recorded(OLD_ID, Some(Origin::Created)),
        ..named(vec![])
    };
    assert_eq!(decided(&vanished), create(Some(OLD_ID)));
}

/// While a create sent here may still show up, nothing is created: look again when the grace
/// period ends, and at least every five seconds.
#[test]
fn a_pending_create_is_waited_for_until_the_grace_period_ends() {
    let waiting = |sent_at: Timestamp, retry_after: u64| {
        Decision::Wait(PendingCreate {
            sent_at,
            retry_after: Duration::from_secs(retry_after),
        })
    };
    let in_the_future = now() + SignedDuration::from_secs(60);
    let table = [
        (
            pending(ago(1), Some(APP), Some("broker-in")),
            waiting(ago(1), 5),
        ),
        (
            pending(ago(28), Some(APP), Some("broker-in")),
            waiting(ago(28), 2),
        ),
        // Older markers hold only the time: they count for every application.
        (pending(ago(10), None, None), waiting(ago(10), 5)),
        // A marker from a clock running ahead counts as just sent.
        (
            pending(in_the_future, Some(APP), None),
            waiting(in_the_future, 5),
        ),
        (pending(ago(30), Some(APP), Some("broker-in")), create(None)),
        (pending(ago(300), None, None), create(None)),
        // Sent to the application the spec pointed at before: not looked for here.
        (
            pending(ago(1), Some("another"), Some("broker-in")),
            create(None),
        ),
    ];
    for (pending, expected) in table {
        let facts = Facts {
            pending,
            ..named(vec![])
        };
        assert_eq!(decided(&facts), expected, "{:?}", facts.pending);
    }
    let Decision::Wait(wait) = waiting(ago(1), 5) else {
        unreachable!()
    };
    assert_eq!(wait.reason(), Reason::CreatePending);
    assert_eq!(
        wait.message(),
        format!(
            "a create sent at {} is not visible in Losant's lists yet; waiting for it before creating again",
            ago(1)
        )
    );
}

#[test]
fn one_match_is_adopted_only_if_the_policy_allows() {
    let adopt = named(vec![remote()]);
    assert_eq!(
        decided(&adopt),
        Decision::Adopt {
            remote: Box::new(remote()),
            patch: None,
        }
    );
    let adopt_with_patch = named(vec![disabled()]);
    assert_eq!(
        decided(&adopt_with_patch),
        Decision::Adopt {
            remote: Box::new(disabled()),
            patch: Some(enable()),
        }
    );
    let never = Facts {
        adoption_policy: AdoptionPolicy::Never,
        ..named(vec![remote()])
    };
    let decision = decided(&never);
    assert_eq!(
        decision,
        Decision::Refuse(Refusal::AlreadyExists {
            id: ID.into(),
            name: "broker-in".into(),
        })
    );
    let Decision::Refuse(refusal) = decision else {
        unreachable!()
    };
    assert_eq!(refusal.reason(), Reason::AlreadyExists);
    assert_eq!(
        refusal.to_string(),
        format!("integration {ID} is already named \"broker-in\" and adoptionPolicy is Never")
    );
}

/// A match found while a create is pending here is the operator's own creation, whatever the
/// policy; a marker for another application proves nothing.
#[test]
fn a_match_of_a_pending_create_is_the_operators_own() {
    for policy in [AdoptionPolicy::IfExactlyOneMatch, AdoptionPolicy::Never] {
        let own = Facts {
            adoption_policy: policy,
            pending: pending(ago(1), Some(APP), Some("broker-in")),
            ..named(vec![remote()])
        };
        assert_eq!(
            decided(&own),
            Decision::InSync {
                remote: Box::new(remote()),
                origin: Origin::Created,
            },
            "{policy:?}"
        );
    }
    let elsewhere = Facts {
        adoption_policy: AdoptionPolicy::Never,
        pending: pending(ago(1), Some("another"), None),
        ..named(vec![remote()])
    };
    assert!(matches!(
        decided(&elsewhere),
        Decision::Refuse(Refusal::AlreadyExists { .. })
    ));
}

/// The recorded remote is gone and another carries the name: it is taken as Adopted, but it is
/// not a first adoption (the object already managed a remote); the last write's fields count.
#[test]
fn a_match_after_the_recorded_remote_vanished_is_managed_not_adopted() {
    let facts = Facts {
        recorded: recorded(OLD_ID, Some(Origin::Created)),
        ..named(vec![disabled()])
    };
    assert_eq!(
        decided(&facts),
        Decision::Patch {
            remote: Box::new(disabled()),
            origin: Origin::Adopted,
            patch: enable(),
            spec_changed: false,
        }
    );
}

#[test]
fn several_matches_are_ambiguous_whatever_the_policy() {
    for (policy, pending) in [
        (AdoptionPolicy::IfExactlyOneMatch, None),
        (AdoptionPolicy::Never, None),
        (
            AdoptionPolicy::IfExactlyOneMatch,
            pending(ago(1), Some(APP), None),
        ),
    ] {
        let facts = Facts {
            adoption_policy: policy,
            pending,
            ..named(vec![remote(), disabled()])
        };
        let decision = decided(&facts);
        assert_eq!(
            decision,
            Decision::Refuse(Refusal::AmbiguousName {
                count: 2,
                application_id: APP.into(),
                name: "broker-in".into(),
            })
        );
        let Decision::Refuse(refusal) = decision else {
            unreachable!()
        };
        assert_eq!(refusal.reason(), Reason::AmbiguousName);
        assert_eq!(
            refusal.to_string(),
            format!(
                "2 integrations in application {APP} are named \"broker-in\"; rename or delete all but one"
            )
        );
    }
}

#[test]
fn a_pending_create_is_looked_up_by_the_name_it_was_sent_with() {
    let desired = wanted();
    let here = pending(ago(1), Some(APP), Some("old-name"));
    let old_marker = pending(ago(1), None, None);
    let elsewhere = pending(ago(1), Some("another"), Some("old-name"));
    let name = |p: &Option<Pending>| lookup_name(pending_here(p.as_ref(), APP), &desired);
    assert_eq!(name(&here), "old-name");
    assert_eq!(name(&old_marker), "broker-in");
    assert_eq!(name(&elsewhere), "broker-in");
    assert_eq!(name(&None), "broker-in");
    assert!(pending_here(elsewhere.as_ref(), APP).is_none());
    assert!(pending_here(old_marker.as_ref(), APP).is_some());
}

/// `ObserveOnly` never decides a write: whatever was found, the decision is to observe it (with
/// the fields that differ) or a refusal that names why there is nothing to observe.
#[test]
fn observe_only_never_decides_a_write() {
    let observe = |facts: Facts| {
        decided(&Facts {
            management: ManagementPolicy::ObserveOnly,
            // Even with a pending create long overdue and a recorded id Losant lost.
            pending: pending(ago(3600), Some(APP), None),
            ..facts
        })
    };
    let moved = remote_with(|v| v["mqttConfig"]["host"] = json!("elsewhere"));
    let renamed = remote_with(|v| {
        v["topics"] = json!(["b/#"]);
        v["enabled"] = json!(false);
    });
    let retyped = remote_with(|v| v["integrationType"] = json!("sqs"));
    let rows: Vec<(Facts, Decision)> = vec![
        (
            known(remote()),
            Decision::Observe {
                remote: Box::new(remote()),
                drift: vec![],
            },
        ),
        (
            named(vec![remote()]),
            Decision::Observe {
                remote: Box::new(remote()),
                drift: vec![],
            },
        ),
        (
            known(moved.clone()),
            Decision::Observe {
                remote: Box::new(moved),
                drift: vec!["mqttConfig"],
            },
        ),
        (
            known(renamed.clone()),
            Decision::Observe {
                remote: Box::new(renamed),
                drift: vec!["enabled", "topics"],
            },
        ),
        (
            known(retyped.clone()),
            Decision::Observe {
                remote: Box::new(retyped),
                drift: vec!["integrationType"],
            },
        ),
        (
            named(vec![]),
            Decision::Refuse(Refusal::NotFound {
                application_id: APP.into(),
                name: "broker-in".into(),
            }),
        ),
        (
            named(vec![remote(), remote()]),
            Decision::Refuse(Refusal::AmbiguousName {
                count: 2,
                application_id: APP.into(),
                name: "broker-in".into(),
            }),
        ),
    ];
    for (facts, expected) in rows {
        let case = format!("{:?}", facts.found);
        let decision = observe(facts);
        assert_eq!(decision, expected, "{case}");
        assert!(
            !matches!(
                decision,
                Decision::Create { .. }
                    | Decision::Adopt { .. }
                    | Decision::Patch { .. }
                    | Decision::Wait(_)
            ),
            "{case}"
        );
    }
    let refusal = Refusal::NotFound {
        application_id: APP.into(),
        name: "broker-in".into(),
    };
    assert_eq!(refusal.reason(), Reason::NotFound);
    assert!(refusal.to_string().contains("ObserveOnly"), "{refusal}");
}
