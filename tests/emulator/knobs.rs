//! The realism knobs over HTTP: latency, rate limiting (both Retry-After forms), injected
//! 503s, faults after commit, list lag, secret echo modes, server defaults and the body cap.

use std::time::{Duration, Instant, SystemTime};

use crate::common::*;
use losant_operator::emulator::{
    COLLECTION_ROUTE, RetryAfterForm, SECRET_MASK, SecretEcho, TokenSpec,
};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test]
async fn latency_delays_api_responses() {
    let mut cfg = config();
    cfg.latency = Duration::from_millis(300);
    let em = start(cfg).await;
    let c = client();
    let began = Instant::now();
    let (status, _) = list(&c, &em, "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        began.elapsed() >= Duration::from_millis(300),
        "{:?}",
        began.elapsed()
    );
}

async fn rate_limited(form: RetryAfterForm) -> reqwest::header::HeaderValue {
    let mut cfg = config();
    // Slow refill (one token per 5 s) so a loaded machine cannot refill between requests.
    cfg.rate_limit = Some(0.2);
    cfg.retry_after_form = form;
    cfg.tokens.push(TokenSpec::full("other"));
    let em = start(cfg).await;
    let c = client();
    assert_eq!(list(&c, &em, "").await.0, StatusCode::OK, "burst of one");
    let resp = c
        .get(collection(&em, APP))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .expect("Retry-After header")
        .clone();
    let (status, body) = split(resp).await;
    assert_eq!(
        (status, error_type(&body)),
        (StatusCode::TOO_MANY_REQUESTS, "TooManyRequests")
    );
    let other = c
        .get(collection(&em, APP))
        .bearer_auth("other")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::OK, "buckets are per token");
    retry_after
}

#[tokio::test]
async fn rate_limit_with_retry_after_seconds() {
    let value = rate_limited(RetryAfterForm::Seconds).await;
    let secs: u64 = value.to_str().unwrap().parse().expect("whole seconds");
    assert!((1..=5).contains(&secs), "{secs}");
}

#[tokio::test]
async fn rate_limit_with_retry_after_http_date() {
    let value = rate_limited(RetryAfterForm::HttpDate).await;
    let at = httpdate::parse_http_date(value.to_str().unwrap()).expect("an HTTP-date");
    assert!(at > SystemTime::now(), "points to the future");
    assert!(at <= SystemTime::now() + Duration::from_secs(6));
}

#[tokio::test]
async fn error_rate_one_answers_503_and_changes_nothing() {
    let mut cfg = config();
    cfg.error_rate = 1.0;
    let em = start(cfg).await;
    let c = client();
    let (status, body) = call(
        &c,
        Method::POST,
        &collection(&em, APP),
        Some(&example_post()),
    )
    .await;
    assert_eq!(
        (status, error_type(&body)),
        (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable")
    );
    let (status, _) = list(&c, &em, "").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(em.integrations(APP).unwrap().is_empty());
    let resp = c.get(collection(&em, APP)).send().await.unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::UNAUTHORIZED,
        "auth still comes first"
    );
}

/// Sends a mutation: Ok(status) for a complete response, Err(()) when the connection was
/// dropped before any status line arrived (hyper's "incomplete message").
async fn outcome(
    c: &Client,
    method: Method,
    url: &str,
    body: Option<&Value>,
) -> Result<StatusCode, ()> {
    let mut req = c.request(method, url).bearer_auth(TOKEN);
    if let Some(b) = body {
        req = req.json(b);
    }
    let resp = req.send().await.map_err(|_| ())?;
    let status = resp.status();
    resp.bytes()
        .await
        .expect("a response that arrived is complete");
    Ok(status)
}

#[tokio::test]
async fn fault_after_commit_applies_the_change_but_loses_the_answer() {
    let mut cfg = config();
    cfg.fault_after_commit = 1.0;
    let em = start(cfg).await;
    let c = client();
    let (mut unavailable, mut dropped) = (0, 0);
    for i in 0..16 {
        let body = named(&format!("n{i}"));
        match outcome(&c, Method::POST, &collection(&em, APP), Some(&body)).await {
            Ok(StatusCode::SERVICE_UNAVAILABLE) => unavailable += 1,
            Ok(other) => panic!("a faulted create answered {other}"),
            Err(()) => dropped += 1,
        }
    }
    assert!(
        unavailable > 0 && dropped > 0,
        "both fault kinds occur: {unavailable} / {dropped}"
    );
    let stored = em.integrations(APP).unwrap();
    assert_eq!(stored.len(), 16, "every create took effect");
    assert_eq!(em.stats().count("POST", COLLECTION_ROUTE, 0), dropped);

    let id = id_of(&stored[0]);
    let url = item(&em, APP, &id);
    let patched = outcome(&c, Method::PATCH, &url, Some(&json!({"name": "renamed"}))).await;
    assert!(patched.is_err() || patched == Ok(StatusCode::SERVICE_UNAVAILABLE));
    let (status, now) = call(&c, Method::GET, &url, None).await;
    assert_eq!(
        (status, now["name"].as_str()),
        (StatusCode::OK, Some("renamed"))
    );
    let deleted = outcome(&c, Method::DELETE, &url, None).await;
    assert!(deleted.is_err() || deleted == Ok(StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(
        call(&c, Method::GET, &url, None).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn list_lag_hides_new_items_from_lists_only() {
    let mut cfg = config();
    cfg.list_lag = Duration::from_millis(800);
    let em = start(cfg).await;
    let c = client();
    let created = create(&c, &em, APP, &example_post()).await;
    let (_, env) = list(&c, &em, "").await;
    assert_eq!(env["totalCount"], 0, "not listed yet");
    let (status, _) = call(&c, Method::GET, &item(&em, APP, &id_of(&created)), None).await;
    assert_eq!(status, StatusCode::OK, "GET by id sees it at once");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, env) = list(&c, &em, "").await;
        if env["totalCount"] == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "never became visible");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn secret_laden() -> Value {
    json!({
        "name": "secrets", "integrationType": "mqtt",
        "mqttConfig": {"host": "h", "port": 8883, "protocol": "mqtts", "password": "s-mqtt-pw", "privateKey": "s-mqtt-key"},
        "googlePubSubConfig": {"keyJson": "s-google"},
        "sqsConfig": {"queueUrl": "q", "secretAccessKey": "s-sqs"},
        "azureEventHubConfig": {"hubName": "h", "consumerGroup": "c", "connectionString": "s-azure"},
        "particleConfig": {"accessToken": "s-particle"},
        "websocketConfig": {"url": "u", "password": "s-ws-pw", "privateKey": "s-ws-key",
            "headers": [{"headerKey": "Authorization", "headerValue": "s-header"}]}
    })
}

const SECRET_PATHS: [&str; 9] = [
    "/mqttConfig/password",
    "/mqttConfig/privateKey",
    "/googlePubSubConfig/keyJson",
    "/sqsConfig/secretAccessKey",
    "/azureEventHubConfig/connectionString",
    "/particleConfig/accessToken",
    "/websocketConfig/password",
    "/websocketConfig/privateKey",
    "/websocketConfig/headers/0/headerValue",
];

fn assert_secrets(doc: &Value, mode: SecretEcho, sent: &Value) {
    let mask = Value::String(SECRET_MASK.to_owned());
    for path in SECRET_PATHS {
        let expected = match mode {
            SecretEcho::Clear => sent.pointer(path),
            SecretEcho::Omit => None,
            SecretEcho::Mask => Some(&mask),
        };
        assert_eq!(doc.pointer(path), expected, "{mode:?} {path}");
    }
    assert_eq!(doc["mqttConfig"]["host"], "h", "non-secrets untouched");
    assert_eq!(
        doc["websocketConfig"]["headers"][0]["headerKey"],
        "Authorization"
    );
}

#[tokio::test]
async fn secret_echo_modes() {
    let sent = secret_laden();
    for mode in [SecretEcho::Clear, SecretEcho::Omit, SecretEcho::Mask] {
        let mut cfg = config();
        cfg.secret_echo = mode;
        let em = start(cfg).await;
        let c = client();
        let created = create(&c, &em, APP, &sent).await;
        assert_secrets(&created, mode, &sent);
        let url = item(&em, APP, &id_of(&created));
        assert_secrets(&call(&c, Method::GET, &url, None).await.1, mode, &sent);
        assert_secrets(&list(&c, &em, "").await.1["items"][0], mode, &sent);
        let (_, patched) = call(&c, Method::PATCH, &url, Some(&json!({"enabled": true}))).await;
        assert_secrets(&patched, mode, &sent);
        let stored = &em.integrations(APP).unwrap()[0];
        assert_secrets(stored, SecretEcho::Clear, &sent);
    }
}

#[tokio::test]
async fn server_defaults_fill_what_was_not_sent() {
    let mqtt = json!({"name": "m", "integrationType": "mqtt",
        "mqttConfig": {"host": "h", "port": 1883, "protocol": "mqtt", "clean": false}});
    let ws = json!({"name": "w", "integrationType": "websocket", "websocketConfig": {"url": "u"}});
    let c = client();

    let plain = start(config()).await;
    let stored = create(&c, &plain, APP, &mqtt).await;
    assert!(stored.get("enabled").is_none() && stored.get("topics").is_none());
    assert!(stored["mqttConfig"].get("protocolVersion").is_none());

    let mut cfg = config();
    cfg.server_defaults = true;
    let em = start(cfg).await;
    let stored = create(&c, &em, APP, &mqtt).await;
    assert_eq!(
        (&stored["enabled"], &stored["topics"]),
        (&json!(true), &json!([]))
    );
    let expected = json!({"host": "h", "port": 1883, "protocol": "mqtt", "clean": false,
        "disableSSLVerification": false, "protocolVersion": "3.1.1"});
    assert_eq!(
        stored["mqttConfig"], expected,
        "sent values kept, missing ones filled"
    );
    let stored_ws = create(&c, &em, APP, &ws).await;
    assert_eq!(
        stored_ws["websocketConfig"],
        json!({"url": "u", "disableSSLVerification": false})
    );

    let url = item(&em, APP, &id_of(&stored));
    let patch =
        json!({"mqttConfig": {"host": "x", "port": 1, "protocol": "ws", "protocolVersion": "5"}});
    let (_, patched) = call(&c, Method::PATCH, &url, Some(&patch)).await;
    let expected = json!({"host": "x", "port": 1, "protocol": "ws", "protocolVersion": "5",
        "clean": true, "disableSSLVerification": false});
    assert_eq!(patched["mqttConfig"], expected);
}

#[tokio::test]
async fn oversized_body_with_default_cap() {
    let em = start(config()).await;
    let c = client();
    let mut body = named("big");
    body["name"] = json!("x".repeat(1024 * 1024 + 10));
    let (status, err) = call(&c, Method::POST, &collection(&em, APP), Some(&body)).await;
    assert_eq!(
        (status, error_type(&err)),
        (StatusCode::PAYLOAD_TOO_LARGE, "RequestEntityTooLarge")
    );
    create(&c, &em, APP, &named("after")).await;
}
