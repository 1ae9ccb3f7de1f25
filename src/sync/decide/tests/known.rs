//! A remote found by its recorded id: claims, sync, exact patches, rotated secrets, the last
//! write, and an immutable type.

use serde_json::json;

use super::*;

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
        secrets: SecretsSince::Changed,
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

/// `facts` for a spec with a Secret reference (its value is never compared).
fn with_secret(mut facts: Facts) -> Facts {
    facts.desired.secret_paths = vec!["mqttConfig.password".to_owned()];
    facts
}

/// A spec with a Secret reference, pinned to the remote; `says_match`: it says its Secrets hold
/// what Losant has.
fn pinned_with_secret(secrets: SecretsSince, says_match: bool) -> Facts {
    with_secret(Facts {
        recorded: recorded(ID, Some(Origin::Adopted)),
        applied_fields: Vec::new(),
        secrets,
        secrets_match_remote: says_match,
        ..known(remote())
    })
}

/// A spec with a Secret reference, its remote found by name (`recorded_id`: a recorded remote
/// Losant no longer has), saying its Secrets match.
fn named_with_secret(recorded_id: Option<&str>) -> Facts {
    with_secret(Facts {
        recorded: recorded_id.and_then(|id| recorded(id, Some(Origin::Adopted))),
        applied_fields: Vec::new(),
        secrets: SecretsSince::NeverApplied,
        secrets_match_remote: true,
        ..named(vec![remote()])
    })
}

/// Values never sent here are sent, except to the remote an object is pinned to when it says its
/// Secrets hold what Losant already has (`export` writes that): nothing is sent then, and a
/// later change is sent as usual. Adoption by name is never taken on that word.
#[test]
fn secrets_said_to_match_are_taken_as_applied_only_for_the_pinned_remote() {
    let send_config = || IntegrationPatch {
        config: wanted().config,
        ..IntegrationPatch::default()
    };
    let pinned = pinned_with_secret;
    let by_name = named_with_secret;
    let table = [
        (
            "pinned, said to match, never applied: adopted as it is",
            pinned(SecretsSince::NeverApplied, true),
            Decision::InSync {
                remote: Box::new(remote()),
                origin: Origin::Adopted,
            },
        ),
        (
            "pinned, not said to match: the values are sent once",
            pinned(SecretsSince::NeverApplied, false),
            Decision::Patch {
                remote: Box::new(remote()),
                origin: Origin::Adopted,
                patch: send_config(),
                spec_changed: false,
            },
        ),
        (
            "pinned, said to match, a Secret changed since: sent as usual",
            pinned(SecretsSince::Changed, true),
            Decision::Patch {
                remote: Box::new(remote()),
                origin: Origin::Adopted,
                patch: send_config(),
                spec_changed: false,
            },
        ),
        (
            "pinned, said to match, applied and unchanged: in sync",
            pinned(SecretsSince::Unchanged, true),
            Decision::InSync {
                remote: Box::new(remote()),
                origin: Origin::Adopted,
            },
        ),
        (
            "found by name, nothing recorded: adopted with the values sent",
            by_name(None),
            Decision::Adopt {
                remote: Box::new(remote()),
                patch: Some(send_config()),
            },
        ),
        (
            "recorded remote gone, another found by name: the values are sent",
            by_name(Some(OLD_ID)),
            Decision::Patch {
                remote: Box::new(remote()),
                origin: Origin::Adopted,
                patch: send_config(),
                spec_changed: false,
            },
        ),
    ];
    for (case, facts, expected) in table {
        assert_eq!(decided(&facts), expected, "{case}");
    }
}

/// A spec with no Secret reference has nothing unknown to send: adopting a remote that matches
/// writes nothing, by name or pinned, and one that differs gets exactly the differing fields.
#[test]
fn without_secret_references_nothing_is_sent_for_secrets() {
    let no_secrets = |mut facts: Facts| {
        facts.desired.secret_paths.clear();
        facts.applied_fields = Vec::new();
        facts.secrets = SecretsSince::NeverApplied;
        facts
    };
    let by_name = no_secrets(named(vec![remote()]));
    assert_eq!(
        decided(&by_name),
        Decision::Adopt {
            remote: Box::new(remote()),
            patch: None,
        },
        "found by name and matching: adopted without a write"
    );
    let pinned = no_secrets(Facts {
        recorded: recorded(ID, Some(Origin::Adopted)),
        ..known(remote())
    });
    assert_eq!(
        decided(&pinned),
        Decision::InSync {
            remote: Box::new(remote()),
            origin: Origin::Adopted,
        },
        "pinned and matching: in sync"
    );
    let mut renamed = remote();
    renamed.name = "someone else's name".into();
    let differing = no_secrets(Facts {
        recorded: recorded(ID, Some(Origin::Adopted)),
        ..known(renamed.clone())
    });
    assert_eq!(
        decided(&differing),
        Decision::Patch {
            remote: Box::new(renamed),
            origin: Origin::Adopted,
            patch: IntegrationPatch {
                name: Some(wanted().name),
                ..IntegrationPatch::default()
            },
            spec_changed: false,
        },
        "only the differing field"
    );
}

#[test]
fn secret_versions_compare_with_the_last_write_here_only() {
    use std::collections::BTreeMap;
    let current = BTreeMap::from([("mqtt".to_owned(), "7".to_owned())]);
    let same = crate::crd::SecretVersions::from(&current);
    let older: crate::crd::SecretVersions =
        [("mqtt".to_owned(), "6".to_owned())].into_iter().collect();
    let none = crate::crd::SecretVersions::default();
    let table = [
        (None, &current, SecretsSince::NeverApplied),
        (None, &BTreeMap::new(), SecretsSince::NeverApplied),
        (Some(&same), &current, SecretsSince::Unchanged),
        (Some(&older), &current, SecretsSince::Changed),
        (Some(&none), &current, SecretsSince::Changed),
        (Some(&same), &BTreeMap::new(), SecretsSince::Changed),
        (Some(&none), &BTreeMap::new(), SecretsSince::Unchanged),
    ];
    for (applied, current, expected) in table {
        assert_eq!(
            SecretsSince::compare(applied, current),
            expected,
            "{applied:?} vs {current:?}"
        );
    }
}
