//! Proof that no secret value (the API token, or any secret field of any integration type) shows in
//! log output at any level, in `Debug` output, or in error messages — on success and failure paths.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::{APP, SECRETS, emulator, every_type};
use losant_operator::emulator::SecretEcho;
use losant_operator::losant::{ClientBuilder, IntegrationPatch, RetryPolicy, SecretString};

const TOKEN_MARKER: &str = "tok-secret-e4a9b";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Debug and Display of an error, with its whole source chain.
fn describe(error: &dyn std::error::Error) -> String {
    let mut text = format!("{error:?} / {error}");
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(" / {cause:?} / {cause}"));
        source = cause.source();
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_logs_debug_output_or_errors() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .try_init()
        .expect("this test binary installs the only subscriber");

    let mut shown = Vec::new();
    let emulator = emulator(|c| {
        c.tokens
            .push(losant_operator::emulator::TokenSpec::full(TOKEN_MARKER));
        c.secret_echo = SecretEcho::Clear;
    })
    .await;
    let client = ClientBuilder::new(SecretString::new(TOKEN_MARKER))
        .api_url(emulator.base_url())
        .retry(crate::common::quick_retries())
        .build()
        .unwrap();
    shown.push(format!("{client:?}"));

    // Success paths, with every secret echoed back in clear by the server.
    for post in every_type("leak") {
        shown.push(format!("{post:?}"));
        let created = client.create(APP, &post).await.unwrap();
        shown.push(format!("{created:?}"));
        shown.push(format!("{:?}", client.get(APP, &created.id).await.unwrap()));
        let patch = IntegrationPatch {
            config: post.config.clone(),
            ..Default::default()
        };
        shown.push(format!("{patch:?}"));
        shown.push(format!(
            "{:?}",
            client.patch(APP, &created.id, &patch).await.unwrap()
        ));
        shown.push(format!(
            "{:?}",
            client.find_by_name(APP, &post.name).await.unwrap()
        ));
    }
    shown.push(format!("{:?}", client.list_all(APP).await.unwrap()));

    // Failure paths: a rejected body full of secrets, a wrong token, a token that cannot be a
    // header, and answers lost after the write took effect.
    let mut rejected = every_type("leak").remove(5);
    rejected.name = "n".repeat(300);
    shown.push(describe(&client.create(APP, &rejected).await.unwrap_err()));
    let wrong = ClientBuilder::new(SecretString::new(format!("{TOKEN_MARKER}-wrong")))
        .api_url(emulator.base_url())
        .build()
        .unwrap();
    shown.push(describe(
        &wrong.list(APP, &Default::default()).await.unwrap_err(),
    ));
    let bad_header = ClientBuilder::new(SecretString::new(format!("{TOKEN_MARKER}\n"))).build();
    shown.push(describe(&bad_header.unwrap_err()));

    let faulty = emulator_with_faults().await;
    let faulty_client = ClientBuilder::new(SecretString::new(TOKEN_MARKER))
        .api_url(faulty.base_url())
        .retry(RetryPolicy::never())
        .request_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    for post in every_type("lost") {
        shown.push(describe(
            &faulty_client.create(APP, &post).await.unwrap_err(),
        ));
    }
    emulator.shutdown().await.unwrap();
    faulty.shutdown().await.unwrap();

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("losant request"),
        "the client's request log was captured"
    );
    assert!(
        logs.contains("hyper"),
        "the HTTP stack's trace output was captured too"
    );
    let shown = shown.join("\n");
    assert!(
        shown.contains("<redacted>"),
        "secrets were present and redacted"
    );
    for secret in SECRETS.iter().copied().chain([TOKEN_MARKER]) {
        assert!(!logs.contains(secret), "a secret reached the logs");
        assert!(
            !shown.contains(secret),
            "a secret reached Debug output or an error"
        );
    }
}

async fn emulator_with_faults() -> losant_operator::emulator::RunningEmulator {
    emulator(|c| {
        c.tokens
            .push(losant_operator::emulator::TokenSpec::full(TOKEN_MARKER));
        c.fault_after_commit = 1.0;
    })
    .await
}
