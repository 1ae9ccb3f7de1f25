//! End-to-end: Secrets are only ever touched at their finalizers. The operator runs as its own
//! user (`OPERATOR_USER`); after it has been driven through every path that touches a Secret,
//! the API server's audit log (Secrets at `RequestResponse`) must show that it only patched
//! finalizers, read data only of Secrets referenced at that moment, and listed metadata only
//! ([`rules`] says exactly what is checked, and what the audit log cannot show).

mod rules;

use std::time::Duration;

use jiff::Timestamp;
use losant_operator::testkit::*;
use serde_json::json;

use rules::{Access, References};

const TIMEOUT: Duration = Duration::from_secs(90);
/// Two resync intervals and a little: time for requests a step should not have caused to show.
const SETTLE: Duration = Duration::from_secs(7);
const IN_USE: &str = "losant.io/in-use";
/// The Secrets the objects of the test reference (at one time or another).
const REFERENCED: [&str; 4] = ["app-token", "app-ca", "mqtt-password", "mqtt-password-next"];

/// The operator, its emulator (over TLS with a private CA, so `caBundleSecretRef` is used) and
/// two namespaces it watches: `ns` with the objects, `decoys` with Secrets named exactly like
/// the referenced ones that nothing references. Fields drop in order: the operator goes first.
struct Scene {
    operator: OperatorProcess,
    ns: TestNamespace,
    decoys: TestNamespace,
    emulator: EmulatorProcess,
    references: References,
    _tls: TempDir,
}

impl Scene {
    fn start() -> Scene {
        let tls_dir = TempDir::new("audit-tls");
        let tls = crate::test_ca::generate_ca_and_server_cert(tls_dir.path());
        let decoys = TestNamespace::new("audit-decoys");
        let ns = TestNamespace::new("audit");
        let (cert, key) = (tls.cert_path.display(), tls.key_path.display());
        let emulator = EmulatorProcess::start(&[
            "--tls-cert",
            &cert.to_string(),
            "--tls-key",
            &key.to_string(),
        ]);
        ns.register_log("emulator", emulator.log_path());
        ns.create_secret("app-token", &[("token", emulator.token())]);
        ns.create_secret("app-ca", &[("ca.pem", &tls.ca_pem)]);
        ns.create_secret("mqtt-password", &[("password", "first-password")]);
        ns.create_secret("mqtt-password-next", &[("password", "next-password")]);
        ns.create_secret("unreferenced", &[("password", "nobody-reads-this")]);
        // Named like the token Secret, referenced by nothing.
        ns.create_secret("app-token-old", &[("token", "an-old-token")]);
        for name in REFERENCED {
            decoys.create_secret(name, &[("token", "a-decoy"), ("password", "a-decoy")]);
        }
        let operator = OperatorProcess::start(
            ns.name(),
            &[
                "--namespace",
                decoys.name(),
                "--allowed-api-hosts",
                "127.0.0.1",
            ],
        );
        let references = References::new(&[ns.name(), decoys.name()]);
        Scene {
            operator,
            ns,
            decoys,
            emulator,
            references,
            _tls: tls_dir,
        }
    }

    fn main(&self) -> &str {
        self.ns.name()
    }

    fn apply_application(&mut self) {
        let main = self.ns.name().to_owned();
        self.references.begin(&main, "app-token");
        self.references.begin(&main, "app-ca");
        let spec = json!({
            "applicationId": self.emulator.application_id(),
            "apiUrl": self.emulator.base_url(),
            "tokenSecretRef": {"name": "app-token", "key": "token"},
            "caBundleSecretRef": {"name": "app-ca", "key": "ca.pem"},
        });
        self.ns
            .apply_ok(&manifest("LosantApplication", "app", &spec));
        wait_for_condition(&main, "losantapplication/app", "Ready", "True", TIMEOUT);
    }

    /// Applies the Integration `broker` with its password from `secret`, and waits until the
    /// operator wrote it with that Secret's current version.
    fn apply_integration(&mut self, secret: &str) {
        let main = self.main().to_owned();
        self.references.begin(&main, secret);
        let spec = json!({
            "applicationRef": {"name": "app"},
            "integrationType": "mqtt",
            "topics": ["factory/+/telemetry"],
            "mqttConfig": {"host": "broker.example.com", "port": 8883, "protocol": "mqtts",
                "username": "losant", "passwordSecretRef": {"name": secret, "key": "password"}},
        });
        self.ns.apply_ok(&integration_manifest("broker", &spec));
        self.wait_written_with(secret);
    }

    fn wait_written_with(&self, secret: &str) {
        let main = self.main();
        let version = secret_version(main, secret);
        wait_until(TIMEOUT, &format!("broker written with {secret}"), || {
            get_object(main, "integration/broker").is_some_and(|o| {
                let status = &o["status"];
                status["observedGeneration"] == o["metadata"]["generation"]
                    && status["appliedSecretVersions"][secret] == version.as_str()
                    && find_condition(&o, "Ready").is_some_and(|c| c["status"] == "True")
            })
        });
    }

    fn wait_in_use(&self, wanted: bool) {
        for secret in ["app-token", "app-ca"] {
            let what = format!("{secret} in use: {wanted}");
            wait_until(TIMEOUT, &what, || {
                finalizers(self.main(), &format!("secret/{secret}")).contains(&IN_USE.into())
                    == wanted
            });
        }
    }

    fn delete(&self, kind_name: &str) {
        kubectl_ok(&["delete", kind_name, "-n", self.main(), "--wait=false"]);
    }

    fn wait_gone(&self, kind_name: &str) {
        wait_until(TIMEOUT, &format!("{kind_name} gone"), || {
            get_object(self.main(), kind_name).is_none()
        });
    }
}

fn secret_version(namespace: &str, secret: &str) -> String {
    let object = get_object(namespace, &format!("secret/{secret}"))
        .unwrap_or_else(|| panic!("Secret {secret} exists"));
    object["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn finalizers(namespace: &str, kind_name: &str) -> Vec<String> {
    get_object(namespace, kind_name)
        .and_then(|o| serde_json::from_value(o["metadata"]["finalizers"].clone()).ok())
        .unwrap_or_default()
}

/// Every Secret-touching path: the in-use finalizers on the token and CA Secrets added, removed
/// when the last Integration goes and when the application is deleted; an Integration's Secret
/// resolved, rotated and swapped for another; Secrets nothing references, beside them and in a
/// second watched namespace under the referenced names. Then the audit log is judged.
#[test]
fn secrets_are_only_touched_at_their_finalizers() {
    require_cluster!();
    install_crds();
    let since = Timestamp::now();
    let mut scene = Scene::start();
    let main = scene.main().to_owned();

    scene.apply_application();
    scene.apply_integration("mqtt-password");
    scene.wait_in_use(true);
    scene
        .ns
        .apply_secret("mqtt-password", &[("password", "rotated-password")]);
    scene.wait_written_with("mqtt-password");
    scene.apply_integration("mqtt-password-next");
    scene.references.end(&main, "mqtt-password");

    // The last Integration goes: the finalizers go, the application stays.
    scene.delete("integration/broker");
    scene.wait_gone("integration/broker");
    scene.references.end(&main, "mqtt-password-next");
    scene.wait_in_use(false);

    // In use again, then the application is deleted first: held until the Integration is gone.
    scene.apply_integration("mqtt-password-next");
    scene.wait_in_use(true);
    scene.delete("losantapplication/app");
    scene.delete("integration/broker");
    scene.wait_gone("integration/broker");
    scene.references.end(&main, "mqtt-password-next");
    scene.wait_gone("losantapplication/app");
    scene.references.end(&main, "app-token");
    scene.references.end(&main, "app-ca");
    scene.wait_in_use(false);

    std::thread::sleep(SETTLE);
    scene.operator.kill();
    // The API server writes an event just after answering.
    std::thread::sleep(Duration::from_secs(1));
    let events = audit_events_since(since, &[OPERATOR_USER, "\"secrets\""]);
    let verdict = rules::judge(&events, &scene.references);
    assert!(
        verdict.violations.is_empty(),
        "the operator's Secret requests broke {} rule(s):\n{}",
        verdict.violations.len(),
        verdict.violations.join("\n")
    );
    assert_paths_covered(&verdict.observed, &main, scene.decoys.name());
}

/// The judged requests include every path the test drove, so a pass is not an empty one; and
/// none names a Secret nothing references.
fn assert_paths_covered(observed: &[rules::Observed], main: &str, decoys: &str) {
    let count = |namespace: &str, name: Option<&str>, access: Access| {
        observed
            .iter()
            .filter(|o| o.namespace == namespace && o.name.as_deref() == name && o.access == access)
            .count()
    };
    let expected: [(&str, Option<&str>, Access, usize); 12] = [
        (main, Some("app-token"), Access::FinalizerAdded, 2),
        (main, Some("app-token"), Access::FinalizerRemoved, 2),
        (main, Some("app-ca"), Access::FinalizerAdded, 2),
        (main, Some("app-ca"), Access::FinalizerRemoved, 2),
        (main, Some("app-token"), Access::DataRead, 1),
        (main, Some("app-ca"), Access::DataRead, 1),
        (main, Some("mqtt-password"), Access::DataRead, 2),
        (main, Some("mqtt-password-next"), Access::DataRead, 1),
        (main, None, Access::MetadataList, 1),
        (main, None, Access::Watch, 1),
        (decoys, None, Access::MetadataList, 1),
        (decoys, None, Access::Watch, 1),
    ];
    for (namespace, name, access, at_least) in expected {
        let seen = count(namespace, name, access);
        assert!(
            seen >= at_least,
            "expected at least {at_least} {access:?} of {namespace}/{name:?} in the audit log, \
             saw {seen}; all the operator's Secret requests: {observed:#?}"
        );
    }
    let stray: Vec<&rules::Observed> = observed
        .iter()
        .filter(|o| o.namespace == main || o.namespace == decoys)
        .filter(|o| {
            o.name
                .as_deref()
                .is_some_and(|name| o.namespace == decoys || !REFERENCED.contains(&name))
        })
        .collect();
    assert!(
        stray.is_empty(),
        "requests naming Secrets nothing references: {stray:#?}"
    );
}
