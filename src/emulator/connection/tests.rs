//! The pure timing model: a connection and a time in, a status out.

use super::*;

const T0: i64 = 1_764_763_200_000;
const HOST: &str = "broker.example.com";

fn config(delay_ms: u64) -> ConnectionConfig {
    ConnectionConfig {
        connect_delay: Duration::from_millis(delay_ms),
        keep_alive: Duration::from_millis(100),
        retry: Duration::from_millis(1_000),
        failures: vec![ConnectionFailure::parse("*.down.example=connect ECONNREFUSED").unwrap()],
    }
}

fn enabled(endpoint: &str) -> Facts<'_> {
    Facts {
        enabled: true,
        endpoint,
    }
}

fn disabled(endpoint: &str) -> Facts<'_> {
    Facts {
        enabled: false,
        endpoint,
    }
}

fn connected_at(at: i64, keep_alive: i64) -> Reported {
    Reported {
        connected_at: Some(at),
        last_keep_alive: Some(keep_alive),
        ..Reported::default()
    }
}

#[test]
fn says_nothing_until_the_delay_then_connects_and_keeps_alive() {
    let config = config(1_000);
    let connection = Connection::new(T0);
    let at = |ms: i64| connection.report(T0 + ms, &enabled(HOST), &config);
    assert_eq!(at(0), Reported::default());
    assert_eq!(at(999).to_status(), json!({}));
    assert_eq!(at(1_000), connected_at(T0 + 1_000, T0 + 1_000));
    assert_eq!(at(1_099), connected_at(T0 + 1_000, T0 + 1_000));
    assert_eq!(at(1_250), connected_at(T0 + 1_000, T0 + 1_200));
    assert_eq!(
        at(1_250).to_status(),
        json!({"connectInfo": {"ts": T0 + 1_000}, "lastKeepAlive": T0 + 1_200})
    );
}

#[test]
fn a_zero_delay_connects_at_once_and_an_endless_one_never() {
    let connection = Connection::new(T0);
    let now = connection.report(T0, &enabled(HOST), &config(0));
    assert_eq!(now, connected_at(T0, T0));
    let never = ConnectionConfig {
        connect_delay: Duration::MAX,
        ..config(0)
    };
    const CENTURY_MS: i64 = 100 * 365 * 24 * 3_600 * 1_000;
    let later = connection.report(T0 + CENTURY_MS, &enabled(HOST), &never);
    assert_eq!(later, Reported::default());
}

#[test]
fn a_matching_endpoint_fails_every_attempt_and_announces_the_next() {
    let config = config(500);
    let connection = Connection::new(T0);
    let endpoint = "Broker.DOWN.example";
    let at = |ms: i64| connection.report(T0 + ms, &enabled(endpoint), &config);
    assert_eq!(at(499), Reported::default());
    let first = at(500);
    let failure = Some(Disconnect {
        at: T0 + 500,
        error: "connect ECONNREFUSED".into(),
    });
    assert_eq!(first.disconnect, failure);
    assert_eq!(first.connected_at, None);
    assert_eq!(first.next_attempt, Some(T0 + 1_500));
    // The next attempt fails too: the announced one moves on, the disconnect stays the first.
    assert_eq!(at(1_499).next_attempt, Some(T0 + 1_500));
    assert_eq!(at(1_500).next_attempt, Some(T0 + 2_500));
    assert_eq!(at(1_500).disconnect, failure);
    assert_eq!(
        at(1_500).to_status(),
        json!({"disconnectInfo": {"ts": T0 + 500, "error": "connect ECONNREFUSED"},
               "nextAttempt": T0 + 2_500})
    );
}

#[test]
fn admin_overrides_order_connects_and_disconnects() {
    let config = config(0);
    let mut connection = Connection::new(T0);
    let facts = enabled(HOST);
    let down = ConnectionOverride::Disconnected {
        error: "Keepalive Timeout".into(),
    };
    connection.set_override(T0 + 250, &facts, down, &config);
    let lost = connection.report(T0 + 250, &facts, &config);
    let disconnect = lost.disconnect.clone().unwrap();
    assert_eq!(
        (disconnect.at, disconnect.error.as_str()),
        (T0 + 250, "Keepalive Timeout")
    );
    // The last connect and keep-alive stay; the integration keeps retrying.
    assert_eq!(lost.connected_at, Some(T0));
    assert_eq!(lost.last_keep_alive, Some(T0 + 200));
    assert_eq!(lost.next_attempt, Some(T0 + 1_250));
    assert!(lost.connected_at < Some(disconnect.at));

    connection.set_override(T0 + 3_000, &facts, ConnectionOverride::Connected, &config);
    let back = connection.report(T0 + 3_050, &facts, &config);
    assert_eq!(back.connected_at, Some(T0 + 3_000));
    assert_eq!(
        back.disconnect,
        Some(disconnect),
        "the last disconnect is kept"
    );
    assert_eq!(back.next_attempt, None);
    assert_eq!(back.last_keep_alive, Some(T0 + 3_000));
}

#[test]
fn transitions_within_one_millisecond_are_still_strictly_ordered() {
    let config = config(0);
    let mut connection = Connection::new(T0);
    let facts = enabled(HOST);
    let down = || ConnectionOverride::Disconnected { error: "e".into() };
    connection.set_override(T0, &facts, down(), &config);
    let lost = connection.report(T0, &facts, &config);
    let lost_at = lost.disconnect.unwrap().at;
    assert!(lost_at > T0, "the disconnect follows the connect at {T0}");
    connection.set_override(T0, &facts, ConnectionOverride::Connected, &config);
    let back = connection.report(T0, &facts, &config);
    assert!(back.connected_at.unwrap() > lost_at);
    connection.set_override(T0, &facts, down(), &config);
    let again = connection.report(T0, &facts, &config);
    assert!(again.disconnect.unwrap().at > back.connected_at.unwrap());
}

#[test]
fn automatic_again_reconnects_after_the_delay_unless_already_automatic() {
    let config = config(1_000);
    let mut connection = Connection::new(T0);
    let facts = enabled(HOST);
    let unchanged = connection.clone();
    connection.set_override(T0 + 5_000, &facts, ConnectionOverride::Automatic, &config);
    assert_eq!(connection, unchanged, "the delay does not start over");

    let down = ConnectionOverride::Disconnected { error: "e".into() };
    connection.set_override(T0 + 5_000, &facts, down, &config);
    connection.set_override(T0 + 6_000, &facts, ConnectionOverride::Automatic, &config);
    let waiting = connection.report(T0 + 6_999, &facts, &config);
    assert_eq!(waiting.disconnect.as_ref().map(|d| d.at), Some(T0 + 5_000));
    assert_eq!(waiting.connected_at, Some(T0 + 1_000));
    assert_eq!(waiting.next_attempt, None);
    let back = connection.report(T0 + 7_000, &facts, &config);
    assert_eq!(back.connected_at, Some(T0 + 7_000));
}

#[test]
fn a_disabled_integration_reports_nothing_new() {
    let config = config(1_000);
    let mut connection = Connection::new(T0);
    // Created disabled: nothing, ever, while disabled.
    assert_eq!(
        connection.report(T0 + 60_000, &disabled(HOST), &config),
        Reported::default()
    );
    // Enabled at +2 s: connects at +3 s. Disabled at +3.25 s: frozen there.
    connection.restart(T0 + 2_000, &disabled(HOST), &config);
    connection.restart(T0 + 3_250, &enabled(HOST), &config);
    let frozen = connected_at(T0 + 3_000, T0 + 3_200);
    assert_eq!(
        connection.report(T0 + 3_250, &disabled(HOST), &config),
        frozen
    );
    assert_eq!(
        connection.report(T0 + 90_000, &disabled(HOST), &config),
        frozen
    );
    // Even an admin override waits for the integration to be enabled.
    connection.set_override(
        T0 + 4_000,
        &disabled(HOST),
        ConnectionOverride::Connected,
        &config,
    );
    assert_eq!(
        connection.report(T0 + 5_000, &disabled(HOST), &config),
        frozen
    );
}

#[test]
fn a_disabled_failing_integration_stops_announcing_attempts() {
    let config = config(0);
    let mut connection = Connection::new(T0);
    let failing = enabled("x.down.example");
    connection.restart(T0 + 100, &failing, &config);
    let frozen = connection.report(T0 + 10_000, &disabled("x.down.example"), &config);
    assert_eq!(frozen.disconnect.map(|d| d.at), Some(T0));
    assert_eq!(frozen.next_attempt, None);
}

#[test]
fn connections_survive_a_round_trip_through_json() {
    let config = config(0);
    let mut connection = Connection::new(T0);
    let down = ConnectionOverride::Disconnected {
        error: "Keepalive Timeout".into(),
    };
    connection.set_override(T0 + 10, &enabled(HOST), down, &config);
    let text = serde_json::to_string(&connection).unwrap();
    let back: Connection = serde_json::from_str(&text).unwrap();
    assert_eq!(back, connection);
    assert_eq!(
        back.report(T0 + 20, &enabled(HOST), &config),
        connection.report(T0 + 20, &enabled(HOST), &config)
    );
}

#[test]
fn override_bodies() {
    let parse = |v: Value| ConnectionOverride::from_body(v);
    assert_eq!(
        parse(json!({"connected": true})),
        Ok(ConnectionOverride::Connected)
    );
    assert_eq!(
        parse(json!({"connected": false, "error": "connect ECONNREFUSED"})),
        Ok(ConnectionOverride::Disconnected {
            error: "connect ECONNREFUSED".into()
        })
    );
    assert_eq!(
        parse(json!({"connected": false})),
        Ok(ConnectionOverride::Disconnected {
            error: DEFAULT_DISCONNECT_ERROR.into()
        })
    );
    for bad in [
        json!({}),
        json!({"connected": "no"}),
        json!({"connected": true, "error": "x"}),
        json!({"connected": false, "error": ""}),
        json!({"connected": false, "secret-ish": 1}),
        json!([]),
    ] {
        let message = parse(bad.clone()).unwrap_err();
        assert!(!message.contains("secret-ish"), "{message}");
    }
}

#[test]
fn zero_periods_are_refused() {
    assert!(ConnectionConfig::default().validate().is_ok());
    let zero = ConnectionConfig {
        keep_alive: Duration::ZERO,
        ..ConnectionConfig::default()
    };
    assert!(zero.validate().is_err());
    let zero = ConnectionConfig {
        retry: Duration::from_micros(999),
        ..ConnectionConfig::default()
    };
    assert!(zero.validate().is_err());
}
