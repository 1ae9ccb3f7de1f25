//! Hostile or broken answers (a proxy in front of a private install, or a broken server), served
//! by the test kit's [`HostileServer`]: each becomes an error of the right class within a
//! bounded time, no body is read past its cap, no redirect is followed (so the token never goes
//! to another host), an endless list is stopped, unknown types and fields are read leniently,
//! and every message is short, without HTML and without the token.

use std::time::{Duration, Instant};

use crate::common::{APP, OTHER_APP, TOKEN, install_crypto, quick_retries};
use losant_operator::losant::{
    Client, ClientBuilder, Error, IntegrationType, MAX_LIST_PAGES, MAX_LISTED_INTEGRATIONS,
    RateLimits, RetryPolicy, SecretString,
};
use losant_operator::testkit::{HostileServer, Misbehaviour};

/// The success body cap of the client (`transport::MAX_BODY_BYTES`).
const BODY_CAP: u64 = 32 * 1024 * 1024;

fn hostile(behaviours: &[(&str, Misbehaviour)]) -> HostileServer {
    HostileServer::start(
        behaviours
            .iter()
            .map(|(application, behaviour)| ((*application).to_owned(), behaviour.clone())),
    )
}

/// A client of `server` with a short request timeout, quick retries and no rate limit to speak
/// of (the endless list is paged as fast as the server answers).
fn client(server: &HostileServer, retry: RetryPolicy) -> Client {
    install_crypto();
    ClientBuilder::new(SecretString::new(TOKEN))
        .api_url(server.base_url())
        .request_timeout(Duration::from_millis(800))
        .retry(retry)
        .limits(RateLimits {
            requests_per_second: f64::INFINITY,
            burst: 1000,
            max_concurrent: 8,
        })
        .build()
        .expect("client builds")
}

/// What a condition may show: one short line, no markup, no token.
fn assert_sanitized(error: &Error) {
    let text = format!("{error} {error:?}");
    assert!(!text.contains(TOKEN), "token leaked: {text}");
    assert!(!text.contains('<'), "markup quoted: {text}");
    assert!(!error.to_string().contains('\n'), "not one line: {error}");
    assert!(error.to_string().len() < 300, "too long: {error}");
}

#[tokio::test]
async fn a_malformed_success_body_is_a_transient_decode_error() {
    let server = hostile(&[(APP, Misbehaviour::MalformedJson)]);
    let error = client(&server, quick_retries())
        .list_everything(APP)
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::Decode { status: 200, .. }),
        "{error:?}"
    );
    assert!(error.is_transient());
    // The body is read after the request's own retries: the caller backs off instead.
    assert_eq!(server.requests_for(APP), 1);
    assert_sanitized(&error);
}

#[tokio::test]
async fn a_list_whose_total_lies_is_stopped_by_name() {
    // A total no application reaches: refused on the first page.
    let server = hostile(&[
        (
            APP,
            Misbehaviour::EndlessList {
                claimed_total: 1_000_000_000,
            },
        ),
        (
            OTHER_APP,
            Misbehaviour::EndlessList {
                claimed_total: MAX_LISTED_INTEGRATIONS - 1,
            },
        ),
    ]);
    let client = client(&server, RetryPolicy::never());
    let error = client.list_everything(APP).await.unwrap_err();
    assert!(
        matches!(error, Error::EndlessList { pages: 1, .. }),
        "{error:?}"
    );
    assert!(error.is_transient());
    assert_eq!(server.requests_for(APP), 1);
    assert_sanitized(&error);
    // A believable total, one item per page: stopped at the page bound.
    let started = Instant::now();
    let error = client.find_by_name(OTHER_APP, "x").await.unwrap_err();
    assert!(matches!(error, Error::EndlessList { .. }), "{error:?}");
    assert_eq!(server.requests_for(OTHER_APP), MAX_LIST_PAGES);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_huge_body_is_refused_at_the_cap() {
    let server = hostile(&[(APP, Misbehaviour::HugeBody { bytes: 1 << 30 })]);
    let started = Instant::now();
    let error = client(&server, RetryPolicy::never())
        .list(APP, &Default::default())
        .await;
    // Either the cap (read fast enough) or the request timeout ends it; never the whole GiB.
    let error = error.unwrap_err();
    assert!(
        matches!(error, Error::Decode { .. } | Error::Timeout { .. }),
        "{error:?}"
    );
    assert!(error.is_transient());
    assert!(started.elapsed() < Duration::from_secs(5));
    // Socket buffers hold a few MiB more than the client took.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sent = server.streamed_bytes();
    assert!(
        sent <= BODY_CAP + 16 * 1024 * 1024,
        "{sent} bytes left the server"
    );
    assert_sanitized(&error);
}

#[tokio::test]
async fn a_dripping_answer_ends_at_the_request_timeout() {
    let server = hostile(&[(
        APP,
        Misbehaviour::Drip {
            every: Duration::from_millis(50),
        },
    )]);
    let started = Instant::now();
    let error = client(&server, quick_retries())
        .get(APP, "5a0b1c2d3e4f5a6b7c8d9e01")
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Timeout { .. }), "{error:?}");
    assert!(error.is_transient());
    // Four attempts of 0.8 s each, and short backoffs.
    assert_eq!(server.requests_for(APP), 4);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_sanitized(&error);
}

#[tokio::test]
async fn redirects_are_never_followed_and_the_token_stays_home() {
    let elsewhere = hostile(&[]);
    let server = hostile(&[
        (
            APP,
            Misbehaviour::RedirectTo(elsewhere.base_url().to_owned()),
        ),
        (OTHER_APP, Misbehaviour::RedirectSameHost),
    ]);
    let client = client(&server, quick_retries());
    let error = client.list_everything(APP).await.unwrap_err();
    assert!(
        matches!(error, Error::Redirect { status: 302, .. }),
        "{error:?}"
    );
    assert!(!error.is_transient(), "a redirect is not retried");
    let port = elsewhere.base_url().rsplit(':').next().unwrap();
    assert!(
        error
            .to_string()
            .contains(&format!("another host (127.0.0.1:{port})"))
    );
    assert_eq!(elsewhere.requests(), 0, "the redirect was followed");
    assert_eq!(server.requests_for(APP), 1);
    assert_sanitized(&error);

    let error = client.find_by_name(OTHER_APP, "x").await.unwrap_err();
    assert!(
        matches!(error, Error::Redirect { status: 301, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("the same host"), "{error}");
    assert_eq!(server.requests(), 2, "nothing but the two first requests");
    assert_sanitized(&error);
}

#[tokio::test]
async fn html_error_pages_are_never_quoted() {
    const BAD_GATEWAY: &str = "5a0b1c2d3e4f5a6b7c8d9e0a";
    const UNAVAILABLE: &str = "5a0b1c2d3e4f5a6b7c8d9e0b";
    let server = hostile(&[
        (BAD_GATEWAY, Misbehaviour::HtmlError(502)),
        (UNAVAILABLE, Misbehaviour::HtmlError(503)),
        (APP, Misbehaviour::HtmlInMessage),
    ]);
    let client = client(&server, quick_retries());
    for (application, status, words) in [
        (BAD_GATEWAY, 502, "Bad Gateway"),
        (UNAVAILABLE, 503, "Service Unavailable"),
    ] {
        let error = client.list_everything(application).await.unwrap_err();
        assert_eq!(error.status(), Some(status));
        assert!(error.is_transient());
        assert!(error.to_string().contains(words), "{error}");
        assert_eq!(server.requests_for(application), 4);
        assert_sanitized(&error);
    }
    // HTML passed off as Losant's JSON message, quoting the Authorization header.
    let error = client.list_everything(APP).await.unwrap_err();
    assert_eq!(error.status(), Some(400));
    assert!(!error.is_transient());
    assert!(
        error.to_string().contains("an HTML page, not quoted"),
        "{error}"
    );
    assert_sanitized(&error);
}

#[tokio::test]
async fn unknown_types_and_fields_are_read_leniently() {
    let server = hostile(&[(APP, Misbehaviour::UnknownItems)]);
    let listing = client(&server, RetryPolicy::never())
        .list_everything(APP)
        .await
        .unwrap();
    assert!(listing.unreadable_names.is_empty());
    let [unknown, mqtt] = &listing.items[..] else {
        panic!("{:?}", listing.items);
    };
    assert_eq!(
        unknown.integration_type,
        IntegrationType::Unknown("meridian".into())
    );
    assert_eq!(mqtt.integration_type, IntegrationType::Mqtt);
    assert_eq!(
        mqtt.mqtt_config.as_ref().and_then(|c| c.host.as_deref()),
        Some("broker.example.com")
    );
    assert!(
        mqtt.unreadable_fields.is_empty(),
        "{:?}",
        mqtt.unreadable_fields
    );
}
