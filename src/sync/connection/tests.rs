use serde_json::json;

use super::*;
use crate::losant::RemoteStatus;

const T0: f64 = 1_800_000_000_000.0;

fn status(value: serde_json::Value) -> RemoteStatus {
    serde_json::from_value(value).unwrap()
}

fn at(ms: f64) -> Timestamp {
    Timestamp::from_millisecond(ms as i64).unwrap()
}

#[test]
fn the_newer_of_connect_and_disconnect_wins() {
    let secrets = [];
    let rows: Vec<(
        serde_json::Value,
        bool,
        ConditionStatus,
        Reason,
        Option<f64>,
    )> = vec![
        (
            json!({}),
            true,
            ConditionStatus::Unknown,
            Reason::NotReported,
            None,
        ),
        (
            json!({"connectInfo": {"ts": null}, "disconnectInfo": {"ts": null}}),
            true,
            ConditionStatus::Unknown,
            Reason::NotReported,
            None,
        ),
        (
            json!({"connectInfo": {"ts": T0}}),
            true,
            ConditionStatus::True,
            Reason::Connected,
            Some(T0),
        ),
        (
            json!({"connectInfo": {"ts": T0 + 5.0}, "disconnectInfo": {"ts": T0}}),
            true,
            ConditionStatus::True,
            Reason::Connected,
            Some(T0 + 5.0),
        ),
        (
            json!({"connectInfo": {"ts": T0}, "disconnectInfo": {"ts": T0 + 5.0, "error": "Keepalive Timeout"}}),
            true,
            ConditionStatus::False,
            Reason::Disconnected,
            Some(T0 + 5.0),
        ),
        (
            json!({"connectInfo": {"ts": T0}, "disconnectInfo": {"ts": T0}}),
            true,
            ConditionStatus::False,
            Reason::Disconnected,
            Some(T0),
        ),
        (
            json!({"disconnectInfo": {"ts": T0}}),
            true,
            ConditionStatus::False,
            Reason::Disconnected,
            Some(T0),
        ),
        (
            json!({"connectInfo": {"ts": T0}}),
            false,
            ConditionStatus::Unknown,
            Reason::Disabled,
            None,
        ),
    ];
    for (value, enabled, expected, reason, since) in rows {
        let case = format!("{value} enabled={enabled}");
        let connection = assess(Some(&status(value)), enabled, &secrets);
        assert_eq!(connection.status, expected, "{case}");
        assert_eq!(connection.reason, reason, "{case}");
        assert_eq!(connection.since, since.map(at), "{case}");
    }
    let nothing = assess(None, true, &secrets);
    assert_eq!(
        (nothing.status, nothing.reason),
        (ConditionStatus::Unknown, Reason::NotReported)
    );
}

#[test]
fn a_disconnect_says_why_and_when_losant_tries_again() {
    let connection = assess(
        Some(&status(json!({
            "connectInfo": {"ts": T0},
            "disconnectInfo": {"ts": T0 + 1000.0, "error": "Connection refused"},
            "nextAttempt": T0 + 31_000.0,
            "lastKeepAlive": T0
        }))),
        true,
        &[],
    );
    assert_eq!(connection.error.as_deref(), Some("Connection refused"));
    assert_eq!(connection.next_attempt, Some(at(T0 + 31_000.0)));
    assert_eq!(
        connection.message,
        format!(
            "Losant reports it disconnected since {}: Connection refused; it tries again at {}",
            at(T0 + 1000.0),
            at(T0 + 31_000.0)
        )
    );
}

#[test]
fn error_text_never_shows_a_secret_and_stays_short() {
    let secrets = [
        "hunter2".to_owned(),
        "hunter2-longer".to_owned(),
        String::new(),
    ];
    assert_eq!(
        sanitize("bad password hunter2-longer (was hunter2)\r\nbye", &secrets),
        "bad password [redacted] (was [redacted])  bye"
    );
    let long = "é".repeat(MAX_ERROR_CHARS + 50);
    let cut = sanitize(&long, &[]);
    assert_eq!(
        cut.chars().count(),
        MAX_ERROR_CHARS + 1,
        "cut, with an ellipsis"
    );
    let connection = assess(
        Some(&status(
            json!({"disconnectInfo": {"ts": T0, "error": "auth failed for hunter2"}}),
        )),
        true,
        &secrets,
    );
    assert!(
        !connection.message.contains("hunter2"),
        "{}",
        connection.message
    );
    assert!(!format!("{connection:?}").contains("hunter2"));
}

#[test]
fn the_secret_values_of_a_spec_are_found_at_their_paths() {
    let spec: crate::crd::IntegrationSpec = serde_json::from_value(json!({
        "applicationRef": {"name": "app"}, "integrationType": "websocket",
        "websocketConfig": {"url": "wss://example.com/feed",
            "headers": [{"headerKey": "Authorization",
                "headerValueSecretRef": {"name": "s", "key": "k"}}]}
    }))
    .unwrap();
    let reference = crate::crd::SecretKeyRef {
        name: "s".into(),
        key: "k".into(),
    };
    let secrets = std::collections::BTreeMap::from([(
        reference,
        crate::losant::SecretString::new("Bearer abc123"),
    )]);
    let desired = crate::sync::desired::desired(&spec, "feed", &secrets).unwrap();
    assert_eq!(secret_values(&desired), ["Bearer abc123"]);
}
