//! Tests of the Helm chart against the real local API server (1.20): rendered objects accepted
//! by `kubectl apply --dry-run=server` (CRDs first), kinds that server is too old for checked by
//! `kubernetes-validate` against a current Kubernetes, and `helm install` / `helm uninstall` of
//! the chart in namespaced mode, with the operator then run under exactly the RBAC the chart
//! granted (impersonating its ServiceAccount: this cluster has no nodes; `tests/helm_node.rs`
//! runs the chart's real pods on real nodes).

use std::time::Duration;

use losant_operator::testkit;
use losant_operator::testkit::helm::*;
use losant_operator::testkit::*;
use serde_json::{Value, json};

/// The local API server's version.
const SERVER: &str = "1.20.2";
const CURRENT: &str = "1.33.0";
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Kinds that need a CRD the local server does not have (the Prometheus Operator's).
const NOT_ON_THE_SERVER: [&str; 1] = ["ServiceMonitor"];

fn yaml_stream(objects: &[&Value]) -> String {
    objects
        .iter()
        .map(|o| format!("---\n{o}\n"))
        .collect::<String>()
}

fn server_dry_run(namespace: &str, objects: &[&Value]) -> Result<String, String> {
    kubectl_dry_run_yaml(namespace, &yaml_stream(objects))
}

#[test]
fn rendered_objects_are_accepted_by_the_api_server() {
    require_cluster!();
    let helm = require_helm!();
    install_crds();
    let ns = TestNamespace::new("helm-dry");
    let watch = format!("watchNamespaces={{{}}}", ns.name());
    let value_sets: Vec<Vec<&str>> = vec![
        vec![],
        vec![
            "--set",
            "rbac.namespaced=true",
            "--set",
            &watch,
            "--set",
            "crds.templated=true",
            "--set",
            "networkPolicy.enabled=true",
            "--set",
            "networkPolicy.losantCIDRs={203.0.113.0/24}",
            "--set",
            "networkPolicy.apiServer.cidrs={10.0.0.1/32}",
            "--set",
            "metrics.serviceMonitor.enabled=true",
            "--set",
            "leaderElection.enabled=false",
            "--set",
            "replicaCount=3",
            "--set-json",
            r#"topologySpreadConstraints=[{"maxSkew":1,"topologyKey":"kubernetes.io/hostname","whenUnsatisfiable":"ScheduleAnyway"}]"#,
        ],
    ];
    for values in &value_sets {
        let objects = render(&helm, "dry", ns.name(), SERVER, values);
        let (crds, rest): (Vec<&Value>, Vec<&Value>) = objects
            .iter()
            .filter(|o| !NOT_ON_THE_SERVER.iter().any(|k| o["kind"] == *k))
            .partition(|o| o["kind"] == "CustomResourceDefinition");
        if !crds.is_empty() {
            // CRDs first: the templated copies must be acceptable updates of the installed ones.
            server_dry_run(ns.name(), &crds)
                .unwrap_or_else(|e| panic!("CRDs refused ({values:?}):\n{e}"));
        }
        let out = server_dry_run(ns.name(), &rest)
            .unwrap_or_else(|e| panic!("rendered objects refused ({values:?}):\n{e}"));
        assert_eq!(
            out.matches("(server dry run)").count(),
            rest.len(),
            "every object was checked:\n{out}"
        );
    }
}

/// `kubernetes-validate`, or `None` after saying why the test is skipped: only when pip itself
/// is missing (the install script needs it); with pip present, a missing validator is a failure.
fn kubernetes_validate_or_skip() -> Option<std::path::PathBuf> {
    if let Some(bin) = kubernetes_validate_bin() {
        return Some(bin);
    }
    let pip = std::process::Command::new("python3")
        .args(["-m", "pip", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if pip {
        panic!(
            "kubernetes-validate is not installed although pip is available: run \
             `eval \"$(scripts/install-helm.sh)\"` (or set KUBERNETES_VALIDATE)"
        );
    }
    eprintln!("SKIPPED: kubernetes-validate needs python3 with pip, which this machine lacks");
    None
}

fn kubernetes_validate(bin: &std::path::Path, yaml: &str) -> (bool, String) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("helm");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join(format!(
        "rendered-{}-{:08x}.yaml",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::write(&file, yaml).expect("rendered file");
    let out = std::process::Command::new(bin)
        .args(["--kubernetes-version", CURRENT, "--strict"])
        .arg(&file)
        .output()
        .expect("kubernetes-validate runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn kinds_the_local_server_lacks_validate_against_current_kubernetes() {
    let helm = require_helm!();
    let Some(validate) = kubernetes_validate_or_skip() else {
        return;
    };
    let text = render_text(
        &helm,
        "current",
        "losant-system",
        CURRENT,
        &[
            "--set",
            "networkPolicy.enabled=true",
            "--set",
            "networkPolicy.losantCIDRs={203.0.113.0/24}",
        ],
    )
    .expect("renders");
    let objects = parse_objects(&text);
    assert_eq!(
        of_kind(&objects, "PodDisruptionBudget")[0]["apiVersion"],
        "policy/v1",
        "policy/v1 is what the 1.20 server cannot check"
    );
    let (ok, report) = kubernetes_validate(&validate, &text);
    assert!(ok, "kubernetes-validate refused the chart:\n{report}");
    for object in &objects {
        let kind = object["kind"].as_str().expect("kind").to_ascii_lowercase();
        let name = object["metadata"]["name"].as_str().expect("name");
        assert!(
            report.contains(&format!("passed for resource {kind}/{name}")),
            "{kind}/{name} was validated:\n{report}"
        );
    }
    // The validator does catch a broken object (so the pass above means something).
    let mut broken = of_kind(&objects, "PodDisruptionBudget")[0].clone();
    broken["spec"]["minAvailabel"] = json!(1);
    let (ok, report) = kubernetes_validate(&validate, &format!("---\n{broken}\n"));
    assert!(
        !ok,
        "a misspelt PDB field must fail strict validation:\n{report}"
    );
}

/// `helm install` in namespaced mode, the operator running as the chart's ServiceAccount
/// (impersonated) through a create, a leader election and a delete, then `helm uninstall`.
#[test]
fn helm_install_grants_what_the_operator_needs_and_uninstall_cleans_up() {
    require_cluster!();
    let helm = require_helm!();
    install_crds();
    let ns = TestNamespace::new("helm-inst");
    let release = ns.name().to_owned();
    let fullname = format!("{release}-losant-operator");
    let chart = chart_dir();
    let chart = chart.to_str().expect("UTF-8");
    let watch = format!("watchNamespaces={{{}}}", ns.name());
    let out = testkit::helm::helm(
        &helm,
        &[
            "install",
            &release,
            chart,
            "--namespace",
            ns.name(),
            "--set",
            "rbac.namespaced=true",
            "--set",
            &watch,
        ],
    );
    assert!(
        out.status.success(),
        "helm install failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let notes = String::from_utf8_lossy(&out.stdout);
    assert!(
        notes.contains("integrations.post"),
        "NOTES list the token scopes:\n{notes}"
    );
    let deployment = get_object(ns.name(), &format!("deployment/{fullname}"))
        .expect("the Deployment exists (its pods stay Pending: no kubelet here)");
    assert_eq!(deployment["spec"]["replicas"], 2);
    for kind_name in [
        format!("serviceaccount/{fullname}"),
        format!("role/{fullname}"),
        format!("rolebinding/{fullname}"),
        format!("role/{fullname}-leader-election"),
        format!("service/{fullname}-metrics"),
    ] {
        assert!(get_object(ns.name(), &kind_name).is_some(), "{kind_name}");
    }

    run_operator_as_the_service_account(&ns, &fullname);

    let out = testkit::helm::helm(&helm, &["uninstall", &release, "--namespace", ns.name()]);
    assert!(
        out.status.success(),
        "helm uninstall failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until(
        Duration::from_secs(30),
        "the release's objects to go",
        || {
            get_object(ns.name(), &format!("deployment/{fullname}")).is_none()
                && get_object(ns.name(), &format!("role/{fullname}")).is_none()
        },
    );
    let crds = kubectl(&["get", "crd", "integrations.losant.io"]);
    assert!(crds.status.success(), "uninstalling never removes the CRDs");
}

fn run_operator_as_the_service_account(ns: &TestNamespace, service_account: &str) {
    let emulator = EmulatorProcess::start(&[]);
    ns.register_log("emulator", emulator.log_path());
    ns.install_application(&emulator, "app");
    let user = format!("system:serviceaccount:{}:{service_account}", ns.name());
    let groups = format!(
        "system:serviceaccounts,system:serviceaccounts:{},system:authenticated",
        ns.name()
    );
    let operator = OperatorProcess::start_with_env(
        ns.name(),
        &[
            "--leader-elect",
            "--leader-election-namespace",
            ns.name(),
            "--lease-duration",
            "6s",
            "--renew-deadline",
            "3s",
            "--retry-period",
            "1s",
        ],
        &[
            ("POD_NAME", "chart-operator"),
            ("KUBE_RS_DEBUG_IMPERSONATE_USER", &user),
            ("KUBE_RS_DEBUG_IMPERSONATE_GROUP", &groups),
        ],
    );
    wait_for_condition(
        ns.name(),
        "losantapplication/app",
        "Ready",
        "True",
        READY_TIMEOUT,
    );
    ns.apply_ok(&integration_manifest(
        "charted",
        &json!({
            "applicationRef": {"name": "app"},
            "integrationType": "mqtt",
            "topics": ["chart/+"],
            "mqttConfig": {"host": "broker.example.com", "port": 8883, "protocol": "mqtts"},
        }),
    ));
    wait_for_condition(
        ns.name(),
        "integration/charted",
        "Ready",
        "True",
        READY_TIMEOUT,
    );
    let lease = get_object(ns.name(), "lease/losant-operator").expect("the Lease exists");
    assert_eq!(lease["spec"]["holderIdentity"], "chart-operator");
    kubectl_ok(&[
        "delete",
        "integration",
        "charted",
        "-n",
        ns.name(),
        "--wait=false",
    ]);
    wait_until(READY_TIMEOUT, "the integration to be deleted", || {
        get_object(ns.name(), "integration/charted").is_none()
    });
    assert!(
        emulator.list_integrations().is_empty(),
        "the remote integration was deleted with the object"
    );
    let logs = operator.logs();
    assert!(
        !logs.to_ascii_lowercase().contains("forbidden"),
        "the chart's RBAC covered every call:\n{logs}"
    );
}
