//! End-to-end: deletion always finishes. Deleting a whole namespace (Secrets, LosantApplication
//! and Integrations together) removes the remotes (or keeps the orphans), thanks to the in-use
//! finalizers; a revoked token blocks deletion visibly until the policy is switched to Orphan.
//! These need kube-controller-manager (namespace deletion), which scripts/control-plane.sh runs.

use std::time::Duration;

use losant_operator::testkit::*;
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(90);

fn sqs(name: &str) -> Value {
    json!({
        "applicationRef": {"name": "app"},
        "name": name,
        "integrationType": "sqs",
        "sqsConfig": {"queueUrl": "https://q", "secretAccessKeySecretRef": {"name": "aws", "key": "secret"}}
    })
}

fn remote_names(emulator: &EmulatorProcess) -> Vec<String> {
    let mut names: Vec<String> = emulator
        .list_integrations()
        .iter()
        .map(|i| i["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    names.sort();
    names
}

fn finalizers(namespace: &str, kind_name: &str) -> Vec<String> {
    get_object(namespace, kind_name)
        .and_then(|o| serde_json::from_value(o["metadata"]["finalizers"].clone()).ok())
        .unwrap_or_default()
}

#[test]
fn deleting_the_namespace_removes_remotes_and_keeps_orphans() {
    require_cluster!();
    install_crds();
    let emulator = EmulatorProcess::start(&[]);
    // Not a TestNamespace: this test deletes the namespace itself and waits for it to go.
    let ns = format!("nsdel-{:08x}", rand::random::<u32>());
    kubectl_ok(&["create", "namespace", &ns]);
    kubectl_ok(&["label", "namespace", &ns, "losant-operator-e2e=true"]);
    register_log(&ns, "emulator", emulator.log_path());
    let _operator = OperatorProcess::start(&ns, &[]);
    create_secret(&ns, "app-token", &[("token", emulator.token())]);
    create_secret(&ns, "aws", &[("secret", "aws-secret-value")]);
    kubectl_apply_yaml(
        &ns,
        &losant_application_manifest(
            "app",
            emulator.application_id(),
            emulator.base_url(),
            "app-token",
            "token",
        ),
    )
    .unwrap();
    for name in ["one", "two", "three"] {
        kubectl_apply_yaml(&ns, &integration_manifest(name, &sqs(name))).unwrap();
    }
    let mut kept = sqs("kept");
    kept["deletionPolicy"] = json!("Orphan");
    kubectl_apply_yaml(&ns, &integration_manifest("kept", &kept)).unwrap();
    for name in ["one", "two", "three", "kept"] {
        wait_for_condition(
            &ns,
            &format!("integration/{name}"),
            "Ready",
            "True",
            TIMEOUT,
        );
    }
    wait_until(TIMEOUT, "the in-use finalizers", || {
        finalizers(&ns, "losantapplication/app").contains(&"losant.io/in-use".to_owned())
            && finalizers(&ns, "secret/app-token").contains(&"losant.io/in-use".to_owned())
    });
    assert!(
        !finalizers(&ns, "secret/aws").contains(&"losant.io/in-use".to_owned()),
        "only the token Secret is held"
    );
    assert_eq!(remote_names(&emulator), ["kept", "one", "three", "two"]);

    kubectl_ok(&["delete", "namespace", &ns, "--wait=false"]);
    wait_until(TIMEOUT, "the namespace to be gone", || {
        !kubectl(&["get", "namespace", &ns]).status.success()
    });
    assert_eq!(
        remote_names(&emulator),
        ["kept"],
        "the remotes went with the namespace, the orphan stayed"
    );
    assert_eq!(emulator.stats()["includeWorkflowsTrue"], 0);
}

#[test]
fn deleting_everything_at_once_finishes() {
    require_cluster!();
    install_crds();
    let ns = TestNamespace::new("delall");
    let emulator = EmulatorProcess::start(&[]);
    ns.register_log("emulator", emulator.log_path());
    let _operator = OperatorProcess::start(ns.name(), &[]);
    let mut manifests = vec![
        secret_manifest("app-token", &[("token", emulator.token())]),
        secret_manifest("aws", &[("secret", "aws-secret-value")]),
        losant_application_manifest(
            "app",
            emulator.application_id(),
            emulator.base_url(),
            "app-token",
            "token",
        ),
    ];
    for name in ["a", "b"] {
        manifests.push(integration_manifest(name, &sqs(name)));
    }
    let items: Vec<Value> = manifests
        .iter()
        .map(|m| serde_json::from_str(m).unwrap())
        .collect();
    let all = json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string();
    ns.apply_ok(&all);
    wait_for_condition(ns.name(), "integration/a", "Ready", "True", TIMEOUT);
    wait_for_condition(ns.name(), "integration/b", "Ready", "True", TIMEOUT);
    // Like `kubectl delete -f` or an Argo CD prune: everything in one go.
    let out = kubectl_with_stdin(
        &["delete", "-n", ns.name(), "-f", "-", "--wait=false"],
        &all,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until(TIMEOUT, "everything to be deleted", || {
        [
            "integration/a",
            "integration/b",
            "losantapplication/app",
            "secret/app-token",
        ]
        .iter()
        .all(|o| get_object(ns.name(), o).is_none())
    });
    assert!(remote_names(&emulator).is_empty());
}

#[test]
fn a_revoked_token_blocks_deletion_until_the_policy_is_orphan() {
    require_cluster!();
    install_crds();
    let ns = TestNamespace::new("revoked");
    let emulator = EmulatorProcess::start(&[]);
    ns.register_log("emulator", emulator.log_path());
    ns.install_application(&emulator, "app");
    ns.create_secret("aws", &[("secret", "aws-secret-value")]);
    let _operator = OperatorProcess::start(ns.name(), &[]);
    ns.apply_ok(&integration_manifest("queue", &sqs("queue")));
    wait_for_condition(ns.name(), "integration/queue", "Ready", "True", TIMEOUT);

    ns.apply_secret("app-token", &[("token", "revoked-token-value")]);
    kubectl_ok(&[
        "delete",
        "integration",
        "queue",
        "-n",
        ns.name(),
        "--wait=false",
    ]);
    // The revoked token first makes the application (and so the Integration) not ready; the
    // deletion then reports why it cannot finish.
    let blocked = wait_for(TIMEOUT, "DeletionBlocked", || {
        let object = get_object(ns.name(), "integration/queue")?;
        let ready = find_condition(&object, "Ready")?;
        (ready["reason"] == "DeletionBlocked").then(|| object.clone())
    });
    let ready = find_condition(&blocked, "Ready").unwrap();
    assert_eq!(
        find_condition(&blocked, "Stalled").unwrap()["status"],
        "True"
    );
    let message = ready["message"].as_str().unwrap();
    assert!(
        message.contains("401") || message.contains("Unauthorized"),
        "{message}"
    );
    assert!(!message.contains("revoked-token-value"));
    assert_eq!(remote_names(&emulator), ["queue"], "nothing deleted");

    kubectl_ok(&[
        "patch",
        "integration",
        "queue",
        "-n",
        ns.name(),
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"deletionPolicy":"Orphan"}}"#,
    ]);
    wait_until(TIMEOUT, "the deletion to finish", || {
        get_object(ns.name(), "integration/queue").is_none()
    });
    assert_eq!(remote_names(&emulator), ["queue"], "orphaned");
    wait_until(TIMEOUT, "the in-use finalizers to go", || {
        !finalizers(ns.name(), "losantapplication/app").contains(&"losant.io/in-use".to_owned())
            && !finalizers(ns.name(), "secret/app-token").contains(&"losant.io/in-use".to_owned())
    });
}
