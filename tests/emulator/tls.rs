//! The emulator over HTTPS (`EmulatorConfig::tls`, `--tls-cert/--tls-key`): clients that trust
//! the generated test CA get answers, clients that do not fail the handshake, the operator's
//! own Losant client works with its extra CA bundle, broken or stalled handshakes do not harm
//! the server, graceful shutdown still works, and unusable certificate files refuse to start.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::{
    APP, TOKEN, call, client, client_trusting, collection, config, create, example_post, id_of,
    named, start_tls,
};
use crate::test_ca::{CA_FILE, generate_ca_and_server_cert};
use losant_operator::emulator::{EmulatorConfig, EmulatorError, TlsFiles, spawn};
use losant_operator::losant::{self, ClientBuilder, RetryPolicy, SecretString};
use losant_operator::testkit::TempDir;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Whether the error, or anything it was caused by, mentions `needle` (case-insensitive).
fn chain_mentions(error: &(dyn std::error::Error + 'static), needle: &str) -> bool {
    let needle = needle.to_ascii_lowercase();
    let mut current = Some(error);
    while let Some(e) = current {
        if e.to_string().to_ascii_lowercase().contains(&needle)
            || format!("{e:?}").to_ascii_lowercase().contains(&needle)
        {
            return true;
        }
        current = e.source();
    }
    false
}

async fn spawn_err(config: EmulatorConfig) -> EmulatorError {
    match spawn(config).await {
        Ok(_) => panic!("the emulator started"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn a_client_trusting_the_ca_gets_answers_over_https() {
    let tls = start_tls(config()).await;
    let em = &tls.emulator;
    assert!(
        em.base_url().starts_with("https://127.0.0.1:"),
        "{}",
        em.base_url()
    );
    let c = client_trusting(&tls.fixture.ca_pem);
    let created = create(&c, em, APP, &example_post()).await;
    let (status, listed) = call(&c, Method::GET, &collection(em, APP), None).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed["items"][0]["id"], created["id"]);

    // The certificate also names localhost.
    let by_name = format!(
        "https://localhost:{}/applications/{APP}/integrations/{}",
        em.addr().port(),
        id_of(&created)
    );
    let (status, fetched) = call(&c, Method::GET, &by_name, None).await;
    assert_eq!(status, StatusCode::OK, "{fetched}");
    assert_eq!(fetched["name"], created["name"]);
}

#[tokio::test]
async fn a_client_trusting_only_the_ca_gets_answers_too() {
    let tls = start_tls(config()).await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certs = reqwest::Certificate::from_pem_bundle(tls.fixture.ca_pem.as_bytes()).unwrap();
    let c = reqwest::Client::builder()
        .tls_certs_only(certs)
        .build()
        .unwrap();
    let (status, body) = call(&c, Method::GET, &collection(&tls.emulator, APP), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_client_not_trusting_the_ca_fails_the_handshake() {
    let tls = start_tls(config()).await;
    let url = collection(&tls.emulator, APP);

    // System roots only.
    let err = client()
        .get(&url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    assert!(
        chain_mentions(&err, "UnknownIssuer"),
        "not a certificate error: {err:?}"
    );

    // Another test CA is no better.
    let other_dir = TempDir::new("emulator-tls-other");
    let other = generate_ca_and_server_cert(other_dir.path());
    let err = client_trusting(&other.ca_pem)
        .get(&url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    // Both CAs have the same name, so rustls finds an issuer whose signature does not match.
    assert!(chain_mentions(&err, "InvalidCertificate"), "{err:?}");

    // The server is still there for a client that trusts it.
    let c = client_trusting(&tls.fixture.ca_pem);
    let (status, _) = call(&c, Method::GET, &url, None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn plain_http_garbage_and_stalled_handshakes_do_not_harm_the_server() {
    let tls = start_tls(config()).await;
    let em = &tls.emulator;
    let url = collection(em, APP);

    // Plain HTTP to the HTTPS port.
    let plain = format!("http://{}/applications/{APP}/integrations", em.addr());
    let result = client().get(&plain).bearer_auth(TOKEN).send().await;
    assert!(
        result.is_err() || result.is_ok_and(|r| !r.status().is_success()),
        "plain HTTP must not be served"
    );

    // Bytes that are no TLS at all, then a hang-up.
    let mut garbage = TcpStream::connect(em.addr()).await.unwrap();
    garbage
        .write_all(b"\x16\x03\x01\x00\x05hello, not tls at all\r\n\r\n")
        .await
        .unwrap();
    drop(garbage);

    // A client that connects and never starts the handshake.
    let _stalled = TcpStream::connect(em.addr()).await.unwrap();

    let c = client_trusting(&tls.fixture.ca_pem);
    for i in 0..3 {
        let created = create(&c, em, APP, &named(&format!("after-garbage-{i}"))).await;
        assert!(created["id"].is_string());
    }
    let (status, listed) = call(&c, Method::GET, &url, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["totalCount"], 3);
}

#[tokio::test]
async fn graceful_shutdown_works_over_tls() {
    let tls = start_tls(config()).await;
    let addr = tls.emulator.addr();
    let c = client_trusting(&tls.fixture.ca_pem);
    let (status, _) = call(&c, Method::GET, &collection(&tls.emulator, APP), None).await;
    assert_eq!(status, StatusCode::OK);
    // A connection stuck before its handshake must not hold shutdown up.
    let _stalled = TcpStream::connect(addr).await.unwrap();

    let started = std::time::Instant::now();
    tls.emulator.shutdown().await.expect("clean shutdown");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "shutdown took {:?}",
        started.elapsed()
    );
    // The port is free again: nothing accepts there any more.
    let mut refused = false;
    for _ in 0..50 {
        if TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "still accepting on {addr} after shutdown");
}

#[tokio::test]
async fn unusable_certificate_files_refuse_to_start() {
    let dir = TempDir::new("emulator-tls-bad");
    let fixture = generate_ca_and_server_cert(dir.path());

    let missing = dir.path().join("missing.pem");
    let mut cfg = config();
    cfg.tls = Some(TlsFiles {
        cert: missing.clone(),
        key: fixture.key_path.clone(),
    });
    let err = spawn_err(cfg).await;
    assert!(matches!(err, EmulatorError::TlsFile { .. }), "{err}");
    assert!(err.to_string().contains("missing.pem"), "{err}");

    // The CA's own certificate with the server's key: they do not belong together.
    let mut cfg = config();
    cfg.tls = Some(TlsFiles {
        cert: dir.path().join(CA_FILE),
        key: fixture.key_path.clone(),
    });
    let err = spawn_err(cfg).await;
    assert!(matches!(err, EmulatorError::Tls(_)), "{err}");

    // A key file given as the certificate.
    let mut cfg = config();
    cfg.tls = Some(TlsFiles {
        cert: fixture.key_path.clone(),
        key: fixture.key_path.clone(),
    });
    let err = spawn_err(cfg).await;
    assert!(err.to_string().contains("no PEM certificate"), "{err}");
}

fn losant_client(url: &str, ca_pem: Option<&str>) -> losant::Client {
    let mut builder = ClientBuilder::new(SecretString::new(TOKEN))
        .api_url(url)
        .retry(RetryPolicy::never())
        .connect_timeout(Duration::from_secs(5))
        .request_timeout(Duration::from_secs(10));
    if let Some(pem) = ca_pem {
        builder = builder.extra_ca_pem(pem.as_bytes().to_vec());
    }
    builder.build().expect("losant client builds")
}

#[tokio::test]
async fn the_losant_client_lists_over_tls_with_its_extra_ca() {
    let tls = start_tls(config()).await;
    let em = &tls.emulator;
    let created = create(
        &client_trusting(&tls.fixture.ca_pem),
        em,
        APP,
        &named("over-tls"),
    )
    .await;

    let losant = losant_client(&em.base_url(), Some(&tls.fixture.ca_pem));
    let all = losant.list_all(APP).await.expect("list over TLS");
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].id, id_of(&created));
    assert_eq!(all[0].name, "over-tls");
}

#[tokio::test]
async fn the_losant_client_without_the_ca_fails_transiently() {
    let tls = start_tls(config()).await;
    let losant = losant_client(&tls.emulator.base_url(), None);
    let err = losant
        .list_all(APP)
        .await
        .expect_err("an untrusted server must not be believed");
    assert!(
        matches!(
            err,
            losant::Error::Connect { .. } | losant::Error::Transport { .. }
        ),
        "{err:?}"
    );
    assert!(err.is_transient(), "{err:?}");
    // rustls says why (reqwest keeps the cause as the error's source).
    assert!(
        chain_mentions(&err, "UnknownIssuer"),
        "cause not reported: {err:?}"
    );
    // Nothing reached the API.
    assert_eq!(tls.emulator.stats().total, 0);
}

/// Kills the child even when an assertion fails.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_binary_serves_https_with_tls_flags() {
    let dir = TempDir::new("emulator-tls-binary");
    let fixture = generate_ca_and_server_cert(dir.path());
    let mut child = Command::new(env!("CARGO_BIN_EXE_losant-emulator"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--token",
            TOKEN,
            "--application",
            APP,
        ])
        .arg("--tls-cert")
        .arg(&fixture.cert_path)
        .arg("--tls-key")
        .arg(&fixture.key_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("binary starts");
    let stdout = child.stdout.take().expect("stdout piped");
    let _guard = KillOnDrop(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("listening line");
    let base = line
        .trim()
        .strip_prefix("losant-emulator listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_owned();
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");

    let c = client_trusting(&fixture.ca_pem);
    let url = format!("{base}/applications/{APP}/integrations");
    let resp = c
        .post(&url)
        .bearer_auth(TOKEN)
        .json(&example_post())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let resp = c.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let listed: Value = resp.json().await.unwrap();
    assert_eq!(listed["totalCount"], 1);
}

#[test]
fn the_binary_wants_both_tls_flags() {
    let output = Command::new(env!("CARGO_BIN_EXE_losant-emulator"))
        .args(["--listen", "127.0.0.1:0", "--tls-cert", "/nonexistent.pem"])
        .stdin(Stdio::null())
        .output()
        .expect("binary runs");
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--tls-key"), "{stderr}");
}

#[test]
fn the_binary_reports_unreadable_tls_files() {
    let output = Command::new(env!("CARGO_BIN_EXE_losant-emulator"))
        .args(["--listen", "127.0.0.1:0"])
        .args(["--tls-cert", "/nonexistent/cert.pem"])
        .args(["--tls-key", "/nonexistent/key.pem"])
        .stdin(Stdio::null())
        .output()
        .expect("binary runs");
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(output.stdout.is_empty(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/cert.pem"), "{stderr}");
}
