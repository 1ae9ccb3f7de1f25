use serde_json::json;

use super::*;
use crate::gitops::plan::fields::SecretSource;
use crate::gitops::plan::verdict::REPORT_VERSION;

fn row(field: &str, old: Option<Value>, new: Option<Value>) -> FieldChange {
    FieldChange {
        field: field.into(),
        old,
        new,
        secret: None,
    }
}

fn report(actions: &[Action]) -> Report {
    let items = actions
        .iter()
        .enumerate()
        .map(|(i, a)| Verdict::new("ns", &format!("obj{i}"), Some("in.yaml (document 1)"), *a))
        .collect();
    Report::new(items)
}

#[test]
fn field_lines_say_added_changed_removed_and_secret() {
    assert_eq!(
        field_line(&row("name", None, Some(json!("a")))),
        "+ name: \"a\""
    );
    assert_eq!(
        field_line(&row("enabled", Some(json!(true)), Some(json!(false)))),
        "~ enabled: true → false"
    );
    assert_eq!(
        field_line(&row("credentialName", Some(json!("c")), Some(Value::Null))),
        "- credentialName: \"c\" → (removed)"
    );
    let secret = FieldChange {
        secret: Some(SecretSource {
            name: "s".into(),
            key: "k".into(),
            changed: false,
        }),
        ..row("mqttConfig.password", None, None)
    };
    assert_eq!(
        field_line(&secret),
        "~ mqttConfig.password: (secret from s/k: unchanged)"
    );
}

#[test]
fn exit_codes_follow_kubectl_diff() {
    assert_eq!(report(&[]).exit_code(), 0);
    assert_eq!(
        report(&[Action::Unchanged, Action::Observe, Action::Paused]).exit_code(),
        0
    );
    for change in [
        Action::Create,
        Action::Update,
        Action::Adopt,
        Action::Refuse,
        Action::Wait,
        Action::Delete,
        Action::Orphan,
    ] {
        assert_eq!(
            report(&[Action::Unchanged, change]).exit_code(),
            1,
            "{change:?}"
        );
    }
    assert_eq!(report(&[Action::Create, Action::Error]).exit_code(), 2);
}

#[test]
fn both_formats_carry_every_object() {
    let mut verdict =
        Verdict::new("ns", "queue", Some("in.yaml (document 3)"), Action::Update).because("", "");
    verdict.reason = None;
    verdict.message = None;
    verdict.remote_id = Some("0123456789abcdef01234567".into());
    verdict.fields = vec![row("enabled", Some(json!(true)), Some(json!(false)))];
    let report = Report::new(vec![verdict]);
    let text = render(&report, Format::Text);
    assert!(
        text.contains("Integration ns/queue: update (id 0123456789abcdef01234567)"),
        "{text}"
    );
    assert!(text.contains("    ~ enabled: true → false"), "{text}");
    assert!(text.ends_with("Plan: 1 update (changes).\n"), "{text}");
    let json: Value = serde_json::from_str(&render(&report, Format::Json)).unwrap();
    assert_eq!(json["apiVersion"], REPORT_VERSION);
    assert_eq!(json["changes"], true);
    assert_eq!(json["summary"]["update"], 1);
    assert_eq!(json["items"][0]["action"], "update");
    assert_eq!(
        json["items"][0]["fields"][0],
        json!({"field": "enabled", "old": true, "new": false})
    );
}
