//! Contract tests of the client's error paths and of the emulator's realism knobs, over real HTTP.

use std::time::Duration;

use crate::common::{APP, TOKEN, builder, client, emulator, every_type, install_crypto};
use losant_operator::emulator::{
    COLLECTION_ROUTE, ITEM_ROUTE, RetryAfterForm, SECRET_MASK, SecretEcho, TokenSpec,
};
use losant_operator::losant::{
    ClientBuilder, Error, IntegrationPatch, LimiterRegistry, RateLimits, RetryPolicy, SecretString,
};

const MISSING_ID: &str = "0123456789abcdef01234567";

#[tokio::test]
async fn a_bad_token_is_a_permanent_401() {
    let emulator = emulator(|_| {}).await;
    let client = builder(&emulator).build().unwrap();
    let wrong = ClientBuilder::new(SecretString::new("wrong-token-value"))
        .api_url(emulator.base_url())
        .build()
        .unwrap();
    let error = wrong.list(APP, &Default::default()).await.unwrap_err();
    assert_eq!(error.status(), Some(401));
    assert!(!error.is_transient());
    assert!(!error.to_string().contains("wrong-token-value"));
    // Not retried: a permanent error.
    assert_eq!(emulator.stats().count("GET", COLLECTION_ROUTE, 401), 1);
    assert!(client.list(APP, &Default::default()).await.is_ok());
}

#[tokio::test]
async fn a_scoped_token_is_refused_outside_its_scopes() {
    let emulator = emulator(|c| {
        c.tokens
            .push(TokenSpec::scoped("reader", &["integrations.get"]))
    })
    .await;
    let admin = client(&emulator);
    let created = admin.create(APP, &every_type("scoped")[0]).await.unwrap();
    let reader = ClientBuilder::new("reader".into())
        .api_url(emulator.base_url())
        .build()
        .unwrap();
    assert_eq!(
        reader
            .list(APP, &Default::default())
            .await
            .unwrap()
            .total_count,
        1
    );
    let refused = reader
        .create(APP, &every_type("scoped")[1])
        .await
        .unwrap_err();
    assert_eq!(refused.status(), Some(403));
    assert!(!refused.is_transient());
    // The collection scope does not cover the item actions.
    assert_eq!(
        reader.get(APP, &created.id).await.unwrap_err().status(),
        Some(403)
    );
}

#[tokio::test]
async fn unknown_applications_and_integrations_are_404() {
    let emulator = emulator(|_| {}).await;
    let client = client(&emulator);
    let error = client
        .list(MISSING_ID, &Default::default())
        .await
        .unwrap_err();
    assert!(error.is_not_found());
    assert_eq!(error.api_kind(), Some("NotFound"));
    assert!(
        client
            .get(APP, MISSING_ID)
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        client
            .delete(APP, MISSING_ID)
            .await
            .unwrap_err()
            .is_not_found()
    );
}

#[tokio::test]
async fn an_invalid_body_is_a_permanent_400() {
    let emulator = emulator(|_| {}).await;
    let client = client(&emulator);
    let mut post = every_type("x").remove(0);
    post.name = "n".repeat(256);
    let error = client.create(APP, &post).await.unwrap_err();
    assert_eq!(
        (error.status(), error.api_kind()),
        (Some(400), Some("Validation"))
    );
    assert!(!error.is_transient() && !error.write_outcome_unknown());
    assert!(emulator.integrations(APP).unwrap().is_empty());
}

#[tokio::test]
async fn a_503_is_retried_for_idempotent_calls_only() {
    let emulator = emulator(|c| c.error_rate = 1.0).await;
    let client = client(&emulator);
    let error = client.get(APP, MISSING_ID).await.unwrap_err();
    assert_eq!(error.status(), Some(503));
    assert!(error.is_transient());
    assert_eq!(
        emulator.stats().count("GET", ITEM_ROUTE, 503),
        4,
        "four attempts"
    );

    let error = client
        .create(APP, &every_type("once")[0])
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(503));
    assert_eq!(
        emulator.stats().count("POST", COLLECTION_ROUTE, 503),
        1,
        "a POST is sent once"
    );
    assert!(
        emulator.integrations(APP).unwrap().is_empty(),
        "503 without effect"
    );
}

#[tokio::test]
async fn retry_after_is_read_in_both_forms() {
    for form in [RetryAfterForm::Seconds, RetryAfterForm::HttpDate] {
        let emulator = emulator(|c| {
            c.rate_limit = Some(1.0);
            c.retry_after_form = form;
        })
        .await;
        let client = builder(&emulator)
            .retry(RetryPolicy::never())
            .build()
            .unwrap();
        client.list(APP, &Default::default()).await.unwrap();
        let error = client.list(APP, &Default::default()).await.unwrap_err();
        assert_eq!(error.status(), Some(429), "{form:?}");
        assert!(error.is_transient());
        let wait = error.retry_after().expect("Retry-After is read");
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(2),
            "{form:?}: {wait:?}"
        );
    }
}

#[tokio::test]
async fn a_rate_limited_get_succeeds_after_waiting() {
    let emulator = emulator(|c| c.rate_limit = Some(2.0)).await;
    let client = client(&emulator);
    for _ in 0..4 {
        client.list(APP, &Default::default()).await.unwrap();
    }
    let stats = emulator.stats();
    assert_eq!(stats.count("GET", COLLECTION_ROUTE, 200), 4);
    assert!(
        stats.count("GET", COLLECTION_ROUTE, 429) >= 1,
        "the limit was hit and absorbed"
    );
}

#[tokio::test]
async fn a_slow_answer_times_out_as_transient() {
    let emulator = emulator(|c| c.latency = Duration::from_millis(400)).await;
    let client = builder(&emulator)
        .request_timeout(Duration::from_millis(100))
        .retry(RetryPolicy::never())
        .build()
        .unwrap();
    let error = client.list(APP, &Default::default()).await.unwrap_err();
    assert!(matches!(error, Error::Timeout { .. }), "{error:?}");
    assert!(error.is_transient() && error.write_outcome_unknown());
}

#[tokio::test]
async fn a_refused_connection_is_transient() {
    install_crypto();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let client = ClientBuilder::new(TOKEN.into())
        .api_url(url)
        .retry(RetryPolicy::never())
        .build()
        .unwrap();
    let error = client.list(APP, &Default::default()).await.unwrap_err();
    assert!(matches!(error, Error::Connect { .. }), "{error:?}");
    assert!(error.is_transient() && !error.write_outcome_unknown());
}

#[tokio::test]
async fn a_lost_create_response_leaves_the_outcome_unknown_but_findable() {
    let emulator = emulator(|c| c.fault_after_commit = 1.0).await;
    let client = client(&emulator);
    let post = &every_type("lost")[0];
    let error = client.create(APP, post).await.unwrap_err();
    assert!(error.write_outcome_unknown(), "{error:?}");
    let stored = emulator.integrations(APP).unwrap();
    assert_eq!(stored.len(), 1, "the POST took effect");
    let found = client.find_by_name(APP, &post.name).await.unwrap();
    assert_eq!(
        found.len(),
        1,
        "a lookup finds what the lost answer would have said"
    );

    // A PATCH is retried; every attempt commits and loses its answer, yet the change is made.
    let patch = IntegrationPatch {
        enabled: Some(false),
        ..Default::default()
    };
    let error = client.patch(APP, &found[0].id, &patch).await.unwrap_err();
    assert!(error.is_transient());
    assert_eq!(emulator.integrations(APP).unwrap()[0]["enabled"], false);
    assert_eq!(
        emulator.stats().count("POST", COLLECTION_ROUTE, 201)
            + emulator.stats().count("POST", COLLECTION_ROUTE, 503)
            + emulator.stats().count("POST", COLLECTION_ROUTE, 0),
        1,
        "one POST in all"
    );
}

#[tokio::test]
async fn list_lag_hides_new_items_from_lists_but_not_from_get() {
    let emulator = emulator(|c| c.list_lag = Duration::from_millis(300)).await;
    let client = client(&emulator);
    let created = client.create(APP, &every_type("lagging")[0]).await.unwrap();
    assert!(
        client
            .find_by_name(APP, &created.name)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(client.get(APP, &created.id).await.unwrap().id, created.id);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        client.find_by_name(APP, &created.name).await.unwrap().len(),
        1
    );
}

#[tokio::test]
async fn secrets_come_back_as_the_echo_mode_says() {
    for echo in [SecretEcho::Clear, SecretEcho::Omit, SecretEcho::Mask] {
        let emulator = emulator(|c| c.secret_echo = echo).await;
        let client = client(&emulator);
        let created = client.create(APP, &every_type("echo")[0]).await.unwrap();
        let read = client
            .get(APP, &created.id)
            .await
            .unwrap()
            .mqtt_config
            .unwrap();
        let listed = client
            .find_by_name(APP, &created.name)
            .await
            .unwrap()
            .remove(0)
            .mqtt_config
            .unwrap();
        for config in [read, listed] {
            let password = config.password.as_ref().map(SecretString::expose);
            let expected = match echo {
                SecretEcho::Clear => Some(crate::common::SECRETS[0]),
                SecretEcho::Omit => None,
                SecretEcho::Mask => Some(SECRET_MASK),
            };
            assert_eq!(password, expected, "{echo:?}");
            assert_eq!(
                config.host.as_deref(),
                Some("broker.example.com"),
                "non-secrets always echo"
            );
        }
    }
}

#[tokio::test]
async fn server_defaults_fill_what_was_not_sent() {
    let emulator = emulator(|c| c.server_defaults = true).await;
    let client = client(&emulator);
    let mut post = every_type("defaults").remove(0);
    post.enabled = None;
    if let Some(losant_operator::losant::IntegrationConfig::Mqtt(mqtt)) = &mut post.config {
        mqtt.clean = None;
    }
    let created = client.create(APP, &post).await.unwrap();
    assert_eq!(created.enabled, Some(true));
    assert_eq!(created.mqtt_config.unwrap().clean, Some(true));
}

#[tokio::test]
async fn clients_of_one_url_and_token_share_a_limiter() {
    let emulator = emulator(|c| c.latency = Duration::from_millis(150)).await;
    let registry = LimiterRegistry::new();
    let limits = RateLimits {
        requests_per_second: f64::INFINITY,
        burst: 1,
        max_concurrent: 1,
    };
    let first = builder(&emulator)
        .limits(limits)
        .registry(registry.clone())
        .build()
        .unwrap();
    let second = builder(&emulator)
        .limits(limits)
        .registry(registry)
        .build()
        .unwrap();
    let query = Default::default();
    let started = std::time::Instant::now();
    let (a, b) = tokio::join!(first.list(APP, &query), second.list(APP, &query));
    a.unwrap();
    b.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "one request in flight at a time"
    );
}

#[tokio::test]
async fn a_client_of_its_own_lower_budget_waits_for_it_and_still_shares_the_common_one() {
    let emulator = emulator(|_| {}).await;
    let registry = LimiterRegistry::new();
    let shared = RateLimits {
        requests_per_second: 1000.0,
        burst: 1000,
        max_concurrent: 8,
    };
    let own = RateLimits {
        requests_per_second: 10.0,
        burst: 1,
        max_concurrent: 8,
    };
    let slow = builder(&emulator)
        .limits(shared)
        .registry(registry.clone())
        .own_limits(own)
        .build()
        .unwrap();
    let fast = builder(&emulator)
        .limits(shared)
        .registry(registry.clone())
        .build()
        .unwrap();
    let query = Default::default();
    // Six requests at 10/s with a burst of 1: at least half a second.
    let started = std::time::Instant::now();
    for _ in 0..6 {
        slow.list(APP, &query).await.unwrap();
    }
    assert!(
        started.elapsed() >= Duration::from_millis(490),
        "{:?}",
        started.elapsed()
    );
    // The other client of the same token is not held to the lower budget.
    let started = std::time::Instant::now();
    for _ in 0..6 {
        fast.list(APP, &query).await.unwrap();
    }
    assert!(
        started.elapsed() < Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
}

/// Records what the client reports.
#[derive(Debug, Default)]
struct Recorder(std::sync::Mutex<Vec<(&'static str, Option<u16>, bool)>>);

impl losant_operator::losant::RequestObserver for Recorder {
    fn observe(&self, operation: &'static str, status: Option<u16>, retried: bool) {
        self.0.lock().unwrap().push((operation, status, retried));
    }
}

#[tokio::test]
async fn every_attempt_is_reported_to_the_observer() {
    let emulator = emulator(|c| c.error_rate = 1.0).await;
    let recorder = std::sync::Arc::new(Recorder::default());
    let client = builder(&emulator)
        .observer(recorder.clone())
        .build()
        .unwrap();
    client.get(APP, MISSING_ID).await.unwrap_err();
    client
        .create(APP, &every_type("observed")[0])
        .await
        .unwrap_err();
    let seen = recorder.0.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            ("get", Some(503), false),
            ("get", Some(503), true),
            ("get", Some(503), true),
            ("get", Some(503), true),
            ("create", Some(503), false),
        ]
    );
    drop(emulator);
    let refused = builder_for_closed_port()
        .observer(recorder.clone())
        .retry(RetryPolicy::never())
        .build()
        .unwrap();
    refused.list(APP, &Default::default()).await.unwrap_err();
    assert_eq!(
        recorder.0.lock().unwrap().last(),
        Some(&("list", None, false))
    );
}

fn builder_for_closed_port() -> ClientBuilder {
    install_crypto();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    ClientBuilder::new(TOKEN.into()).api_url(url)
}
