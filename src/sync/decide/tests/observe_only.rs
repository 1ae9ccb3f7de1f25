//! `ObserveOnly`: whatever was found, an observation or a refusal, never a write.

use serde_json::json;

use super::*;

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
    let observed = |remote: &Integration, drift: Vec<&'static str>| Decision::Observe {
        remote: Box::new(remote.clone()),
        drift,
    };
    let rows: Vec<(Facts, Decision)> = vec![
        (known(remote()), observed(&remote(), vec![])),
        (named(vec![remote()]), observed(&remote(), vec![])),
        (known(moved.clone()), observed(&moved, vec!["mqttConfig"])),
        (
            known(renamed.clone()),
            observed(&renamed, vec!["enabled", "topics"]),
        ),
        (
            known(retyped.clone()),
            observed(&retyped, vec!["integrationType"]),
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
