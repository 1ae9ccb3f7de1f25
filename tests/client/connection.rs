//! The client reads an integration's runtime connection state (`status`) from the emulator:
//! connected, failing per a rule, and disconnected by the admin override.

use losant_operator::emulator::{ConnectionFailure, ConnectionOverride};
use losant_operator::losant::IntegrationType;

#[tokio::test]
async fn the_client_reads_the_status() {
    let em = crate::common::emulator(|cfg| {
        let rule = "wss://*=Unexpected server response: 401";
        cfg.connection.failures = vec![ConnectionFailure::parse(rule).unwrap()];
    })
    .await;
    let client = crate::common::client(&em);
    let mut connect_ts = None;
    for post in crate::common::every_type("status") {
        let created = client.create(crate::common::APP, &post).await.unwrap();
        let status = created.status.expect("status on create");
        if post.integration_type == IntegrationType::Websocket {
            let failed = status.disconnect_info.expect("the rule matches its URL");
            assert_eq!(
                failed.error.as_deref(),
                Some("Unexpected server response: 401")
            );
            assert!(status.next_attempt.unwrap() > failed.ts.unwrap());
            assert!(status.connect_info.is_none());
            continue;
        }
        let connected = status.connect_info.and_then(|i| i.ts);
        assert!(connected.is_some(), "{:?} connects", post.integration_type);
        assert!(status.disconnect_info.is_none());
        if post.integration_type == IntegrationType::Mqtt {
            connect_ts = connected.map(|ts| (created.id.clone(), ts));
        }
    }

    let (id, connect_ts) = connect_ts.expect("an MQTT integration");
    let error = "Keepalive Timeout".to_owned();
    em.set_connection(&id, ConnectionOverride::Disconnected { error })
        .await
        .unwrap();
    let fetched = client
        .get(crate::common::APP, &id)
        .await
        .unwrap()
        .status
        .unwrap();
    let lost = fetched.disconnect_info.expect("disconnected");
    assert_eq!(lost.error.as_deref(), Some("Keepalive Timeout"));
    assert!(lost.ts.unwrap() > connect_ts);
    assert!(fetched.next_attempt.unwrap() > lost.ts.unwrap());
    assert_eq!(fetched.connect_info.and_then(|i| i.ts), Some(connect_ts));
}
