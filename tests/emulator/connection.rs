//! The simulated connection state (`status`) over real HTTP: nothing yet, then connected after
//! the delay; failure rules; the admin override endpoint and the order of its timestamps;
//! disabled integrations; persistence. The operator's client reading it is
//! `client::connection::the_client_reads_the_status`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::common::{APP, call, client, collection, config, create, id_of, item, start};
use losant_operator::emulator::{
    CONNECTION_ROUTE, ConnectionFailure, EmulatorConfig, RunningEmulator,
};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

const DOWN: &str = "*.down.example=connect ECONNREFUSED";

fn mqtt(name: &str, host: &str) -> Value {
    json!({"name": name, "integrationType": "mqtt",
           "mqttConfig": {"host": host, "port": 8883, "protocol": "mqtts"}})
}

fn connecting(delay_ms: u64, keep_alive_ms: u64, retry_ms: u64) -> EmulatorConfig {
    let mut cfg = config();
    cfg.connection.connect_delay = Duration::from_millis(delay_ms);
    cfg.connection.keep_alive = Duration::from_millis(keep_alive_ms);
    cfg.connection.retry = Duration::from_millis(retry_ms);
    cfg.connection.failures = vec![ConnectionFailure::parse(DOWN).unwrap()];
    cfg
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

fn created_ms(doc: &Value) -> i64 {
    let stamp = doc["creationDate"].as_str().expect("creationDate");
    stamp.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

fn ms(v: &Value) -> i64 {
    v.as_i64()
        .unwrap_or_else(|| panic!("epoch ms expected, got {v}"))
}

fn connection_url(em: &RunningEmulator, id: &str) -> String {
    let path = CONNECTION_ROUTE.replace("{integrationId}", id);
    format!("{}{path}", em.base_url())
}

async fn status_of(c: &Client, em: &RunningEmulator, id: &str) -> Value {
    let (code, doc) = call(c, Method::GET, &item(em, APP, id), None).await;
    assert_eq!(code, StatusCode::OK, "{doc}");
    doc["status"].clone()
}

/// Polls the integration until `done` holds for its status (or 10 s pass).
async fn wait_for(
    c: &Client,
    em: &RunningEmulator,
    id: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = status_of(c, em, id).await;
        if done(&status) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "status never got there: {status}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn admin(c: &Client, em: &RunningEmulator, id: &str, body: Option<&Value>) -> Value {
    let method = if body.is_some() {
        Method::PUT
    } else {
        Method::DELETE
    };
    let (code, status) = call(c, method, &connection_url(em, id), body).await;
    assert_eq!(code, StatusCode::OK, "{status}");
    status
}

#[tokio::test]
async fn a_new_integration_says_nothing_then_connects_after_the_delay() {
    let em = start(connecting(400, 50, 1_000)).await;
    let c = client();
    let created = create(&c, &em, APP, &mqtt("up", "broker.example.com")).await;
    let id = id_of(&created);
    assert_eq!(created["status"], json!({}), "nothing yet");
    let born = created_ms(&created);
    let early = status_of(&c, &em, &id).await;
    if now_ms() < born + 400 {
        assert_eq!(early, json!({}));
    }

    let connected = wait_for(&c, &em, &id, |s| s["connectInfo"]["ts"].is_number()).await;
    let connect_ts = ms(&connected["connectInfo"]["ts"]);
    assert_eq!(connect_ts, born + 400);
    assert!(connected.get("disconnectInfo").is_none(), "{connected}");
    assert!(connected.get("nextAttempt").is_none(), "{connected}");
    let first = ms(&connected["lastKeepAlive"]);
    assert!(
        first >= connect_ts && (first - connect_ts) % 50 == 0,
        "{connected}"
    );

    // Keep-alives advance while connected; the connect stays put.
    let later = wait_for(&c, &em, &id, |s| ms(&s["lastKeepAlive"]) > first).await;
    assert_eq!(ms(&later["connectInfo"]["ts"]), connect_ts);
    let (_, listed) = call(&c, Method::GET, &collection(&em, APP), None).await;
    assert_eq!(
        listed["items"][0]["status"]["connectInfo"]["ts"],
        connect_ts
    );
}

#[tokio::test]
async fn a_failure_rule_reports_the_disconnect_and_a_future_attempt() {
    let em = start(connecting(0, 50, 200)).await;
    let c = client();
    let created = create(&c, &em, APP, &mqtt("down", "broker.DOWN.example")).await;
    let id = id_of(&created);
    let status = &created["status"];
    let failed_at = ms(&status["disconnectInfo"]["ts"]);
    assert_eq!(failed_at, created_ms(&created));
    assert_eq!(status["disconnectInfo"]["error"], "connect ECONNREFUSED");
    assert!(status.get("connectInfo").is_none(), "{status}");
    let next = ms(&status["nextAttempt"]);
    assert_eq!(next, failed_at + 200, "one retry period after the failure");

    // Attempts keep failing: the next one moves on, the disconnect stays the first.
    let retried = wait_for(&c, &em, &id, |s| ms(&s["nextAttempt"]) > next).await;
    assert_eq!(ms(&retried["disconnectInfo"]["ts"]), failed_at);
    let asked = now_ms();
    let later = status_of(&c, &em, &id).await;
    let next = ms(&later["nextAttempt"]);
    assert!(next > asked, "{next} is not after the request at {asked}");
    assert_eq!((next - failed_at) % 200, 0);

    // Pointing it at a working broker reconnects it, after the failure.
    let patch =
        json!({"mqttConfig": {"host": "broker.example.com", "port": 8883, "protocol": "mqtts"}});
    let (code, patched) = call(&c, Method::PATCH, &item(&em, APP, &id), Some(&patch)).await;
    assert_eq!(code, StatusCode::OK, "{patched}");
    let status = &patched["status"];
    assert!(ms(&status["connectInfo"]["ts"]) > failed_at, "{status}");
    assert_eq!(status["disconnectInfo"]["error"], "connect ECONNREFUSED");
    assert!(status.get("nextAttempt").is_none(), "{status}");
}

#[tokio::test]
async fn a_patch_that_leaves_the_endpoint_alone_keeps_the_connection() {
    let em = start(connecting(0, 50, 200)).await;
    let c = client();
    let created = create(&c, &em, APP, &mqtt("up", "broker.example.com")).await;
    let id = id_of(&created);
    let connect_ts = ms(&created["status"]["connectInfo"]["ts"]);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let same_config = json!({"name": "renamed", "topics": ["t/#"], "enabled": true,
        "mqttConfig": {"host": "broker.example.com", "port": 8883, "protocol": "mqtts"}});
    let (code, patched) = call(&c, Method::PATCH, &item(&em, APP, &id), Some(&same_config)).await;
    assert_eq!(code, StatusCode::OK, "{patched}");
    assert_eq!(ms(&patched["status"]["connectInfo"]["ts"]), connect_ts);

    let failing =
        json!({"mqttConfig": {"host": "b.down.example", "port": 8883, "protocol": "mqtts"}});
    let (_, patched) = call(&c, Method::PATCH, &item(&em, APP, &id), Some(&failing)).await;
    let status = &patched["status"];
    assert_eq!(
        ms(&status["connectInfo"]["ts"]),
        connect_ts,
        "the last connect is kept"
    );
    assert!(ms(&status["disconnectInfo"]["ts"]) > connect_ts, "{status}");
}

#[tokio::test]
async fn admin_disconnects_and_reconnects_in_order_without_counting_as_api_calls() {
    let em = start(connecting(0, 50, 200)).await;
    let c = client();
    let id = id_of(&create(&c, &em, APP, &mqtt("up", "broker.example.com")).await);
    let counted = em.stats();

    let lost = admin(
        &c,
        &em,
        &id,
        Some(&json!({"connected": false, "error": "Keepalive Timeout"})),
    )
    .await;
    let connect_ts = ms(&lost["connectInfo"]["ts"]);
    let lost_ts = ms(&lost["disconnectInfo"]["ts"]);
    assert!(lost_ts > connect_ts, "{lost}");
    assert_eq!(lost["disconnectInfo"]["error"], "Keepalive Timeout");
    assert!(ms(&lost["nextAttempt"]) > lost_ts);
    assert_eq!(
        status_of(&c, &em, &id).await["disconnectInfo"],
        lost["disconnectInfo"]
    );
    let counted = counted.total + 1;

    let back = admin(&c, &em, &id, Some(&json!({"connected": true}))).await;
    assert!(ms(&back["connectInfo"]["ts"]) > lost_ts, "{back}");
    assert_eq!(
        back["disconnectInfo"], lost["disconnectInfo"],
        "the last disconnect is kept"
    );
    assert!(back.get("nextAttempt").is_none(), "{back}");

    let again = admin(&c, &em, &id, Some(&json!({"connected": false}))).await;
    assert!(
        ms(&again["disconnectInfo"]["ts"]) > ms(&back["connectInfo"]["ts"]),
        "{again}"
    );
    assert_eq!(again["disconnectInfo"]["error"], "Keepalive Timeout");

    // Automatic again: connects after the delay (0 here), after the forced disconnect.
    let auto = admin(&c, &em, &id, None).await;
    assert!(
        ms(&auto["connectInfo"]["ts"]) > ms(&again["disconnectInfo"]["ts"]),
        "{auto}"
    );

    assert_eq!(em.stats().total, counted, "only the one GET counts");
    let (_, stats) = call(
        &c,
        Method::GET,
        &format!("{}/_emulator/stats", em.base_url()),
        None,
    )
    .await;
    assert_eq!(stats["total"], counted);
}

#[tokio::test]
async fn admin_requests_are_checked() {
    let em = start(connecting(0, 50, 200)).await;
    let c = client();
    let id = id_of(&create(&c, &em, APP, &mqtt("up", "broker.example.com")).await);
    let unknown = "0123456789abcdef01234567";
    let down = json!({"connected": false});
    let (code, body) = call(&c, Method::PUT, &connection_url(&em, unknown), Some(&down)).await;
    assert_eq!(
        (code, body["type"].as_str()),
        (StatusCode::NOT_FOUND, Some("NotFound"))
    );
    let (code, _) = call(&c, Method::DELETE, &connection_url(&em, "nothex"), None).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    for bad in [
        json!({"connected": true, "error": "x"}),
        json!({"up": true}),
        json!(1),
    ] {
        let (code, body) = call(&c, Method::PUT, &connection_url(&em, &id), Some(&bad)).await;
        assert_eq!(
            (code, body["type"].as_str()),
            (StatusCode::BAD_REQUEST, Some("Validation"))
        );
    }
    // Uppercase ids name the same integration, as on the API routes.
    let upper = connection_url(&em, &id.to_ascii_uppercase());
    let (code, _) = call(&c, Method::PUT, &upper, Some(&down)).await;
    assert_eq!(code, StatusCode::OK);
}

#[tokio::test]
async fn status_is_never_accepted_from_clients() {
    let em = start(connecting(0, 50, 200)).await;
    let c = client();
    let mut post = mqtt("up", "broker.example.com");
    post["status"] = json!({"connectInfo": {"ts": 1}});
    let (code, _) = call(&c, Method::POST, &collection(&em, APP), Some(&post)).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    let id = id_of(&create(&c, &em, APP, &mqtt("up", "broker.example.com")).await);
    let patch = json!({"status": {"disconnectInfo": {"ts": 1, "error": "x"}}});
    let (code, _) = call(&c, Method::PATCH, &item(&em, APP, &id), Some(&patch)).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(
        status_of(&c, &em, &id)
            .await
            .get("disconnectInfo")
            .is_none()
    );
}

#[tokio::test]
async fn a_disabled_integration_reports_nothing_new() {
    let em = start(connecting(200, 50, 200)).await;
    let c = client();
    let mut body = mqtt("off", "broker.example.com");
    body["enabled"] = json!(false);
    let id = id_of(&create(&c, &em, APP, &body).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(status_of(&c, &em, &id).await, json!({}));

    let url = item(&em, APP, &id);
    let asked = now_ms();
    let (code, enabled) = call(&c, Method::PATCH, &url, Some(&json!({"enabled": true}))).await;
    let answered = now_ms();
    assert_eq!(code, StatusCode::OK, "{enabled}");
    assert_eq!(enabled["status"], json!({}), "the delay starts over");
    let connected = wait_for(&c, &em, &id, |s| s["connectInfo"]["ts"].is_number()).await;
    let connect_ts = ms(&connected["connectInfo"]["ts"]);
    assert!(
        (asked + 200..=answered + 200).contains(&connect_ts),
        "{connected}"
    );

    let (_, disabled) = call(&c, Method::PATCH, &url, Some(&json!({"enabled": false}))).await;
    let frozen = disabled["status"].clone();
    assert_eq!(frozen["connectInfo"], connected["connectInfo"]);
    // Not even an admin override says anything new while it is disabled.
    admin(
        &c,
        &em,
        &id,
        Some(&json!({"connected": false, "error": "x"})),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert_eq!(
        status_of(&c, &em, &id).await,
        frozen,
        "keep-alives stop too"
    );
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn the_connection_survives_a_restart() {
    let dir = TempDir(std::env::temp_dir().join(format!(
        "losant-emulator-connection-{}-{}",
        std::process::id(),
        now_ms()
    )));
    std::fs::create_dir_all(&dir.0).unwrap();
    let mut cfg = connecting(0, 50, 200);
    cfg.state_file = Some(dir.0.join("state.json"));
    let c = client();
    let em = start(cfg.clone()).await;
    let id = id_of(&create(&c, &em, APP, &mqtt("up", "broker.example.com")).await);
    let lost = admin(
        &c,
        &em,
        &id,
        Some(&json!({"connected": false, "error": "Keepalive Timeout"})),
    )
    .await;
    em.shutdown().await.unwrap();

    let text = std::fs::read_to_string(dir.0.join("state.json")).unwrap();
    let on_disk: Value = serde_json::from_str(&text).unwrap();
    assert!(
        on_disk["applications"][APP][0].get("status").is_none(),
        "derived, not stored"
    );

    let em = start(cfg).await;
    let status = status_of(&c, &em, &id).await;
    assert_eq!(status["connectInfo"], lost["connectInfo"]);
    assert_eq!(status["disconnectInfo"], lost["disconnectInfo"]);
    assert!(ms(&status["nextAttempt"]) > ms(&lost["disconnectInfo"]["ts"]));
}
