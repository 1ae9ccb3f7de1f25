//! The client without a server: URLs, configuration checks, redaction and id checks.

use http::StatusCode;

use super::transport::api_error;
use super::*;

fn client(url: &str) -> Client {
    // Another test may have installed it already.
    rustls::crypto::ring::default_provider()
        .install_default()
        .ok();
    ClientBuilder::new("token-value".into())
        .api_url(url)
        .build()
        .unwrap()
}

#[test]
fn urls_keep_a_base_path_and_encode_everything() {
    let client = client("https://losant.internal/api/");
    let call = Call {
        operation: "list",
        method: Method::GET,
        route: "",
        segments: vec!["applications", "575ec8687ae143cd83dc4a97", "integrations"],
        query: vec![("filter", "a+b c".into())],
        body: None,
        secrets: vec![],
    };
    assert_eq!(
        client.url(&call).as_str(),
        "https://losant.internal/api/applications/575ec8687ae143cd83dc4a97/integrations?_links=false&_embedded=false&_actions=false&filter=a%2Bb%20c"
    );
}

#[test]
fn bad_configuration_is_refused() {
    // Another test may have installed it already.
    rustls::crypto::ring::default_provider()
        .install_default()
        .ok();
    for url in [
        "ftp://x",
        "not a url",
        "https://user:pw@host",
        "https://host/?q=1",
    ] {
        let built = ClientBuilder::new("t".into()).api_url(url).build();
        assert!(matches!(built, Err(Error::Config { .. })), "{url}");
    }
    let bad_token = ClientBuilder::new("line\nbreak".into()).build();
    assert!(matches!(bad_token, Err(Error::Config { .. })));
    let bad_ca = ClientBuilder::new("t".into())
        .extra_ca_pem(b"nope".to_vec())
        .build();
    assert!(matches!(bad_ca, Err(Error::Config { .. })));
}

#[test]
fn debug_shows_no_token() {
    let shown = format!("{:?}", client("https://api.losant.com"));
    assert!(!shown.contains("token-value"), "{shown}");
    assert!(shown.contains("api.losant.com"));
}

#[test]
fn api_errors_quote_only_losants_fields() {
    let body = br#"{"type":"Validation","message":"password sekrit is too short","extra":"x"}"#;
    let error = api_error(StatusCode::BAD_REQUEST, body, None, &["sekrit"]);
    assert_eq!(
        error.to_string(),
        "losant answered 400 Validation: password <redacted> is too short"
    );
    let html = api_error(StatusCode::BAD_GATEWAY, b"<html>sekrit</html>", None, &[]);
    assert_eq!(html.to_string(), "losant answered 502 Unknown: Bad Gateway");
}

#[tokio::test]
async fn malformed_ids_never_reach_the_network() {
    let client = client("http://127.0.0.1:9");
    let error = client
        .get("575ec8687ae143cd83dc4a97", "../../x")
        .await
        .unwrap_err();
    assert!(matches!(error, Error::InvalidArgument { .. }));
    assert!(!error.is_transient());
}
