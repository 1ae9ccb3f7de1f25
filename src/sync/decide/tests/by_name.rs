//! A remote looked up by name: create, recreate, wait for a pending create, adopt, or refuse.

use super::*;

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
