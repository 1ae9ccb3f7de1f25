//! End-to-end: tenants cannot turn the operator against other hosts, private installs with their
//! own CA work with TLS verified, and a token lacking a scope is named precisely.

use std::time::Duration;

use losant_operator::testkit::*;
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(60);

fn requests(emulator: &EmulatorProcess) -> u64 {
    emulator.stats()["total"].as_u64().unwrap_or(0)
}

#[test]
fn an_application_on_a_host_not_allowed_is_refused_before_any_request() {
    require_cluster!();
    install_crds();
    let ns = TestNamespace::new("hosts");
    let emulator = EmulatorProcess::start(&[]);
    ns.register_log("emulator", emulator.log_path());
    // Only "localhost" may be reached over http: the emulator's 127.0.0.1 URL is not allowed.
    let _operator = OperatorProcess::start(ns.name(), &["--allowed-http-hosts", "localhost"]);
    ns.create_secret("token", &[("token", emulator.token())]);
    ns.apply_ok(&losant_application_manifest(
        "loopback",
        emulator.application_id(),
        emulator.base_url(),
        "token",
        "token",
    ));
    ns.apply_ok(&losant_application_manifest(
        "elsewhere",
        emulator.application_id(),
        "https://metadata.internal.example/",
        "token",
        "token",
    ));
    ns.apply_ok(&losant_application_manifest(
        "plain",
        emulator.application_id(),
        &emulator.base_url().replace("127.0.0.1", "api.losant.com"),
        "token",
        "token",
    ));
    for (app, words) in [
        ("loopback", "not allowed"),
        ("elsewhere", "not allowed"),
        ("plain", "plain http"),
    ] {
        let object = wait_for_condition(
            ns.name(),
            &format!("losantapplication/{app}"),
            "Stalled",
            "True",
            TIMEOUT,
        );
        let ready = find_condition(&object, "Ready").unwrap();
        assert_eq!(ready["reason"], "ApiHostNotAllowed", "{app}");
        assert!(
            ready["message"].as_str().unwrap().contains(words),
            "{app}: {ready}"
        );
    }
    assert_eq!(requests(&emulator), 0, "no request reached the emulator");
}

#[test]
fn a_private_install_with_its_own_ca_is_reached_with_tls_verified() {
    require_cluster!();
    install_crds();
    let dir = std::env::temp_dir().join(format!("losant-e2e-tls-{:08x}", rand::random::<u32>()));
    std::fs::create_dir_all(&dir).unwrap();
    let tls = crate::test_ca::generate_ca_and_server_cert(&dir);
    let ns = TestNamespace::new("private-ca");
    let emulator = EmulatorProcess::start(&[
        "--tls-cert",
        tls.cert_path.to_str().unwrap(),
        "--tls-key",
        tls.key_path.to_str().unwrap(),
    ]);
    ns.register_log("emulator", emulator.log_path());
    assert!(
        emulator.base_url().starts_with("https://127.0.0.1:"),
        "{}",
        emulator.base_url()
    );
    let _operator = OperatorProcess::start(ns.name(), &["--allowed-api-hosts", "127.0.0.1"]);
    ns.create_secret("token", &[("token", emulator.token())]);
    ns.create_secret("private-ca", &[("ca.pem", &tls.ca_pem)]);

    // Without the CA the certificate is not trusted: not Ready, and the message says why.
    ns.apply_ok(&losant_application_manifest(
        "app",
        emulator.application_id(),
        emulator.base_url(),
        "token",
        "token",
    ));
    let untrusted = wait_for_condition(
        ns.name(),
        "losantapplication/app",
        "Reconciling",
        "True",
        TIMEOUT,
    );
    let message = find_condition(&untrusted, "Ready").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.to_lowercase().contains("certificate"), "{message}");

    let mut spec = json!({
        "applicationId": emulator.application_id(),
        "apiUrl": emulator.base_url(),
        "tokenSecretRef": {"name": "token", "key": "token"},
        "caBundleSecretRef": {"name": "private-ca", "key": "ca.pem"},
    });
    ns.apply_ok(&manifest("LosantApplication", "app", &spec));
    wait_for_condition(ns.name(), "losantapplication/app", "Ready", "True", TIMEOUT);
    ns.create_secret("aws", &[("secret", "aws-secret-value")]);
    ns.apply_ok(&integration_manifest("queue", &json!({
        "applicationRef": {"name": "app"},
        "integrationType": "sqs",
        "sqsConfig": {"queueUrl": "https://q", "secretAccessKeySecretRef": {"name": "aws", "key": "secret"}}
    })));
    let object = wait_for_condition(ns.name(), "integration/queue", "Ready", "True", TIMEOUT);
    assert!(object["status"]["integrationId"].is_string());
    // The harness's own HTTP client does not trust the test CA; the emulator's request log shows
    // the create arrived over TLS.
    let logs = emulator.logs();
    assert!(
        logs.lines()
            .any(|l| l.contains("method=POST") && l.contains("status=201")),
        "{logs}"
    );

    // A CA that did not sign the server's certificate is not enough.
    std::fs::create_dir_all(dir.join("other")).unwrap();
    let other = crate::test_ca::generate_ca_and_server_cert(&dir.join("other"));
    ns.apply_secret("private-ca", &[("ca.pem", &other.ca_pem)]);
    spec["caBundleSecretRef"]["key"] = json!("ca.pem");
    wait_for_condition(
        ns.name(),
        "losantapplication/app",
        "Reconciling",
        "True",
        TIMEOUT,
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_token_missing_a_scope_is_named() {
    require_cluster!();
    install_crds();
    let ns = TestNamespace::new("scopes");
    let emulator =
        EmulatorProcess::start(&["--token", "reader-token:integrations.get,integration.get"]);
    ns.register_log("emulator", emulator.log_path());
    let _operator = OperatorProcess::start(ns.name(), &[]);
    ns.create_secret("token", &[("token", "reader-token")]);
    ns.apply_ok(&losant_application_manifest(
        "app",
        emulator.application_id(),
        emulator.base_url(),
        "token",
        "token",
    ));
    wait_for_condition(ns.name(), "losantapplication/app", "Ready", "True", TIMEOUT);
    ns.create_secret("aws", &[("secret", "aws-secret-value")]);
    ns.apply_ok(&integration_manifest("queue", &json!({
        "applicationRef": {"name": "app"},
        "integrationType": "sqs",
        "sqsConfig": {"queueUrl": "https://q", "secretAccessKeySecretRef": {"name": "aws", "key": "secret"}}
    })));
    let object = wait_for_condition(ns.name(), "integration/queue", "Stalled", "True", TIMEOUT);
    let ready = find_condition(&object, "Ready").unwrap();
    assert_eq!(ready["reason"], "InsufficientScope");
    let message = ready["message"].as_str().unwrap();
    assert!(message.contains("integrations.post"), "{message}");
    assert!(!message.contains("reader-token"));
    assert!(emulator.list_integrations().is_empty());
}
