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
