//! Tests of the Helm chart that need only helm: `helm lint`, the values schema, and the rendered
//! objects (default and non-default values, for an old and a current Kubernetes), parsed and
//! checked for the hardened securityContext, least-privilege RBAC and every toggle. The CRDs the
//! chart ships must be byte-identical to the generated `crds/`.

use std::collections::BTreeSet;

use losant_operator::testkit;
use losant_operator::testkit::helm::*;
use serde_json::{Value, json};

const OLD: &str = "1.20.0";
const NEW: &str = "1.33.0";
const NS: &str = "losant-system";

#[test]
fn chart_crds_are_the_generated_crds() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let generated = std::fs::read(root.join("crds/losant.io_crds.yaml")).expect("crds/");
    let shipped = std::fs::read(chart_dir().join("crds/losant.io_crds.yaml")).expect("chart crds/");
    assert!(
        generated == shipped,
        "deploy/helm/losant-operator/crds/losant.io_crds.yaml differs from crds/losant.io_crds.yaml; \
         copy it: cp crds/losant.io_crds.yaml deploy/helm/losant-operator/crds/"
    );
    let entries: Vec<_> = std::fs::read_dir(chart_dir().join("crds"))
        .expect("chart crds/")
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert_eq!(entries.len(), 1, "the chart ships exactly one CRD file");
}

#[test]
fn helm_lint_is_clean() {
    let helm = require_helm!();
    let chart = chart_dir();
    let chart = chart.to_str().expect("UTF-8");
    for values in [
        vec![],
        vec![
            "--set",
            "rbac.namespaced=true",
            "--set",
            "watchNamespaces={a,b}",
        ],
        vec![
            "--set",
            "crds.templated=true",
            "--set",
            "networkPolicy.enabled=true",
            "--set",
            "metrics.serviceMonitor.enabled=true",
        ],
    ] {
        let mut args = vec!["lint", chart, "--strict"];
        args.extend(values.iter().copied());
        let out = testkit::helm::helm(&helm, &args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "helm lint {values:?} failed:\n{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !stdout.contains("[WARNING]") && !stdout.contains("[ERROR]"),
            "{stdout}"
        );
    }
}

#[test]
fn mistyped_values_are_refused_by_the_schema() {
    let helm = require_helm!();
    for (set, expected) in [
        ("replicaCount=two", "replicaCount"),
        ("logging.format=xml", "format"),
        ("resyncInterval=often", "resyncInterval"),
        ("losantRequestTimeout=forever", "losantRequestTimeout"),
        ("leaderElection.enabled=yes", "enabled"),
        ("image.pullPolicy=Sometimes", "pullPolicy"),
        ("metrics.port=70000", "port"),
        ("replicaCont=2", "replicaCont"),
        ("rbac.namespaced=true", "watchNamespaces"),
    ] {
        let result = render_text(&helm, "rel", NS, NEW, &["--set", set]);
        let error = result.expect_err(&format!("--set {set} must be refused"));
        assert!(error.contains(expected), "--set {set}: {error}");
    }
}

#[test]
fn default_render_has_the_expected_objects() {
    let helm = require_helm!();
    let new = render(&helm, "rel", NS, NEW, &[]);
    assert_eq!(
        kinds(&new),
        [
            "ClusterRole",
            "ClusterRole",
            "ClusterRoleBinding",
            "ClusterRoleBinding",
            "Deployment",
            "PodDisruptionBudget",
            "Role",
            "RoleBinding",
            "Service",
            "ServiceAccount",
        ]
    );
    // The CRDs come from crds/ (installed by helm, not templated) by default.
    assert!(of_kind(&new, "CustomResourceDefinition").is_empty());
    let old = render(&helm, "rel", NS, OLD, &[]);
    assert!(
        of_kind(&old, "PodDisruptionBudget").is_empty(),
        "no policy/v1 before 1.21"
    );
    let single = render(&helm, "rel", NS, NEW, &["--set", "replicaCount=1"]);
    assert!(
        of_kind(&single, "PodDisruptionBudget").is_empty(),
        "a PDB with one replica would block every drain"
    );
    let pdb = object(&new, "PodDisruptionBudget", "rel-losant-operator");
    assert_eq!(pdb["apiVersion"], "policy/v1");
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    for object in &new {
        if object["kind"] != "ClusterRole" && object["kind"] != "ClusterRoleBinding" {
            assert_eq!(object["metadata"]["namespace"], NS, "{}", object["kind"]);
        }
    }
}

#[test]
fn the_pod_is_hardened() {
    let helm = require_helm!();
    let objects = render(&helm, "rel", NS, NEW, &[]);
    let deployment = object(&objects, "Deployment", "rel-losant-operator");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert!(pod["securityContext"]["runAsUser"].as_i64() > Some(0));
    assert!(pod.get("hostNetwork").is_none() && pod.get("hostPID").is_none());
    let container = operator_container(&objects);
    let sc = &container["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["privileged"], false);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    assert!(sc["capabilities"].get("add").is_none());
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    assert!(container["resources"]["requests"]["memory"].is_string());
    assert!(container["resources"]["limits"]["memory"].is_string());
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(
        container["image"],
        "ghcr.io/losant-operator/losant-operator:0.1.0"
    );
    let env: Vec<&str> = container["env"]
        .as_array()
        .expect("env")
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert_eq!(env, ["POD_NAME", "POD_NAMESPACE"]);
    let args = args(container);
    for expected in [
        "run",
        "--leader-elect",
        "--metrics-addr=0.0.0.0:8080",
        "--log-format=json",
        "--resync-interval=60s",
        "--losant-request-timeout=30s",
        "--shutdown-timeout=20s",
    ] {
        assert!(args.iter().any(|a| a == expected), "{expected} in {args:?}");
    }
    assert!(
        !args.iter().any(|a| a.starts_with("--namespace")),
        "all namespaces by default"
    );
    let grace = pod["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("grace");
    assert!(grace > 20, "the grace period outlasts the shutdown timeout");
}

/// `(apiGroup, resource) → verbs` of a list of RBAC rules (resourceNames kept apart).
fn verbs(rules: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for rule in rules.as_array().expect("rules") {
        for group in rule["apiGroups"].as_array().expect("apiGroups") {
            for resource in rule["resources"].as_array().expect("resources") {
                for verb in rule["verbs"].as_array().expect("verbs") {
                    let names = rule["resourceNames"]
                        .as_array()
                        .map(|n| format!("{n:?}"))
                        .unwrap_or_default();
                    out.insert(format!(
                        "{}/{} {}{}",
                        group.as_str().expect("group"),
                        resource.as_str().expect("resource"),
                        verb.as_str().expect("verb"),
                        names
                    ));
                }
            }
        }
    }
    out
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Exactly what the operator calls in a watched namespace, and nothing else.
const WATCHED_NAMESPACE_RULES: [&str; 17] = [
    "losant.io/integrations get",
    "losant.io/integrations list",
    "losant.io/integrations watch",
    "losant.io/integrations patch",
    "losant.io/losantapplications get",
    "losant.io/losantapplications list",
    "losant.io/losantapplications watch",
    "losant.io/losantapplications patch",
    "losant.io/integrations/status patch",
    "losant.io/losantapplications/status patch",
    "losant.io/integrations/finalizers update",
    "losant.io/losantapplications/finalizers update",
    "/secrets get",
    "/secrets list",
    "/secrets watch",
    "/secrets patch",
    "events.k8s.io/events create",
];

#[test]
fn rbac_is_least_privilege_in_both_modes() {
    let helm = require_helm!();
    let mut expected = set(&WATCHED_NAMESPACE_RULES);
    expected.insert("events.k8s.io/events patch".into());

    let cluster = render(&helm, "rel", NS, NEW, &[]);
    let role = object(&cluster, "ClusterRole", "rel-losant-operator");
    assert_eq!(verbs(&role["rules"]), expected);
    let crds = object(&cluster, "ClusterRole", "rel-losant-operator-crds");
    assert_eq!(
        verbs(&crds["rules"]),
        set(&[
            "apiextensions.k8s.io/customresourcedefinitions get[String(\"integrations.losant.io\"), String(\"losantapplications.losant.io\")]"
        ])
    );
    let lease = object(&cluster, "Role", "rel-losant-operator-leader-election");
    assert_eq!(lease["metadata"]["namespace"], NS);
    assert_eq!(
        verbs(&lease["rules"]),
        set(&[
            "coordination.k8s.io/leases create",
            "coordination.k8s.io/leases get[String(\"losant-operator\")]",
            "coordination.k8s.io/leases update[String(\"losant-operator\")]",
        ])
    );
    let binding = object(&cluster, "ClusterRoleBinding", "rel-losant-operator");
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "rel-losant-operator", "namespace": NS}])
    );
    for object in &cluster {
        let text = object["rules"].to_string();
        assert!(!text.contains("\"*\""), "no wildcard in {object}");
    }

    let namespaced = render(
        &helm,
        "rel",
        NS,
        NEW,
        &[
            "--set",
            "rbac.namespaced=true",
            "--set",
            "watchNamespaces={team-a,team-b}",
        ],
    );
    assert_eq!(
        of_kind(&namespaced, "ClusterRole").len(),
        1,
        "only the CRD reader is cluster-wide"
    );
    let roles: Vec<&Value> = of_kind(&namespaced, "Role")
        .into_iter()
        .filter(|r| r["metadata"]["name"] == "rel-losant-operator")
        .collect();
    let namespaces: Vec<&Value> = roles.iter().map(|r| &r["metadata"]["namespace"]).collect();
    assert_eq!(namespaces, [&json!("team-a"), &json!("team-b")]);
    for role in roles {
        assert_eq!(verbs(&role["rules"]), expected);
    }
    let args = args(operator_container(&namespaced));
    assert!(args.contains(&"--namespace=team-a".to_owned()));
    assert!(args.contains(&"--namespace=team-b".to_owned()));

    let no_election = render(
        &helm,
        "rel",
        NS,
        NEW,
        &["--set", "leaderElection.enabled=false"],
    );
    assert!(
        of_kind(&no_election, "Role").is_empty(),
        "no Lease access without election"
    );
    assert!(!args_of(&no_election).contains(&"--leader-elect".to_owned()));
    let no_rbac = render(&helm, "rel", NS, NEW, &["--set", "rbac.create=false"]);
    assert!(of_kind(&no_rbac, "ClusterRole").is_empty() && of_kind(&no_rbac, "Role").is_empty());
}

fn args_of(objects: &[Value]) -> Vec<String> {
    args(operator_container(objects))
}

#[test]
fn toggles_render_what_they_promise() {
    let helm = require_helm!();
    let objects = render(
        &helm,
        "rel",
        NS,
        NEW,
        &[
            "--set",
            "metrics.serviceMonitor.enabled=true",
            "--set",
            "metrics.serviceMonitor.labels.release=prom",
            "--set",
            "networkPolicy.enabled=true",
            "--set",
            "networkPolicy.losantCIDRs={203.0.113.0/24}",
            "--set",
            "networkPolicy.apiServer.cidrs={10.0.0.1/32}",
            "--set",
            "allowedApiHosts={api.losant.com,*.example.com}",
            "--set",
            "image.tag=1.2.3",
            "--set",
            "imagePullSecrets[0].name=regcred",
            "--set-json",
            r#"extraEnv=[{"name":"RUST_BACKTRACE","value":"1"}]"#,
            "--set",
            "extraArgs={--concurrency=4}",
            "--set",
            "nodeSelector.disk=ssd",
            "--set-json",
            r#"topologySpreadConstraints=[{"maxSkew":1,"topologyKey":"topology.kubernetes.io/zone","whenUnsatisfiable":"ScheduleAnyway"}]"#,
            "--set",
            "logging.format=text",
        ],
    );
    let monitor = object(&objects, "ServiceMonitor", "rel-losant-operator");
    assert_eq!(monitor["metadata"]["labels"]["release"], "prom");
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "metrics");
    let service = object(&objects, "Service", "rel-losant-operator-metrics");
    assert_eq!(service["spec"]["ports"][0]["name"], "metrics");

    let policy = object(&objects, "NetworkPolicy", "rel-losant-operator");
    assert_eq!(policy["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    let egress = policy["spec"]["egress"].as_array().expect("egress");
    assert_eq!(
        egress.len(),
        3,
        "DNS, the API server and Losant: {egress:?}"
    );
    assert_eq!(egress[0]["ports"][0]["port"], 53);
    assert_eq!(egress[1]["to"][0]["ipBlock"]["cidr"], "10.0.0.1/32");
    assert_eq!(egress[2]["to"][0]["ipBlock"]["cidr"], "203.0.113.0/24");
    assert_eq!(
        egress[2]["ports"],
        json!([{"port": 443, "protocol": "TCP"}])
    );

    let container = operator_container(&objects);
    assert_eq!(
        container["image"],
        "ghcr.io/losant-operator/losant-operator:1.2.3"
    );
    let args = args(container);
    assert!(args.contains(&"--allowed-api-hosts=api.losant.com,*.example.com".to_owned()));
    assert!(args.contains(&"--concurrency=4".to_owned()));
    assert!(args.contains(&"--log-format=text".to_owned()));
    assert!(container["env"].to_string().contains("RUST_BACKTRACE"));
    let pod = &object(&objects, "Deployment", "rel-losant-operator")["spec"]["template"]["spec"];
    assert_eq!(pod["imagePullSecrets"], json!([{"name": "regcred"}]));
    assert_eq!(pod["nodeSelector"], json!({"disk": "ssd"}));
    assert_eq!(
        pod["topologySpreadConstraints"][0]["labelSelector"]["matchLabels"]["app.kubernetes.io/instance"],
        "rel",
        "a constraint without a selector spreads this release's pods"
    );

    let defaults = render(&helm, "rel", NS, NEW, &[]);
    assert!(of_kind(&defaults, "ServiceMonitor").is_empty());
    assert!(of_kind(&defaults, "NetworkPolicy").is_empty());
}

/// `hostNetwork`: the pod joins the node's network, binds its metrics server to the pod's IP
/// (from the downward API) instead of 0.0.0.0, follows cluster DNS, and is replaced one at a
/// time with no surge pod; off (the default), none of that is rendered. Probe timing is a value.
#[test]
fn host_network_and_probes_render_what_they_promise() {
    let helm = require_helm!();
    let deployment = |values: &[&str]| {
        let objects = render(&helm, "rel", NS, NEW, values);
        object(&objects, "Deployment", "rel-losant-operator").clone()
    };
    let env_names = |container: &Value| -> Vec<String> {
        container["env"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["name"].as_str().map(str::to_owned))
            .collect()
    };

    let default = deployment(&[]);
    let pod = &default["spec"]["template"]["spec"];
    assert!(pod["hostNetwork"].is_null() && pod["dnsPolicy"].is_null());
    assert!(default["spec"]["strategy"].is_null(), "Kubernetes' default");
    let container = &pod["containers"][0];
    assert!(args(container).contains(&"--metrics-addr=0.0.0.0:8080".to_owned()));
    assert!(!env_names(container).contains(&"POD_IP".to_owned()));
    for (probe, period) in [("livenessProbe", 10), ("readinessProbe", 5)] {
        assert_eq!(container[probe]["timeoutSeconds"], 5, "{probe}");
        assert_eq!(container[probe]["periodSeconds"], period, "{probe}");
        assert_eq!(container[probe]["failureThreshold"], 3, "{probe}");
    }

    let host = deployment(&[
        "--set",
        "hostNetwork=true",
        "--set",
        "metrics.port=9090",
        "--set",
        "probes.readiness.timeoutSeconds=9",
    ]);
    let pod = &host["spec"]["template"]["spec"];
    assert_eq!(pod["hostNetwork"], true);
    assert_eq!(pod["dnsPolicy"], "ClusterFirstWithHostNet");
    assert_eq!(
        host["spec"]["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}})
    );
    let container = &pod["containers"][0];
    assert!(args(container).contains(&"--metrics-addr=$(POD_IP):9090".to_owned()));
    let pod_ip = container["env"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["name"] == "POD_IP")
        .expect("POD_IP is set");
    assert_eq!(pod_ip["valueFrom"]["fieldRef"]["fieldPath"], "status.podIP");
    assert_eq!(container["readinessProbe"]["timeoutSeconds"], 9);

    let explicit = deployment(&[
        "--set",
        "hostNetwork=true",
        "--set",
        "strategy.type=Recreate",
    ]);
    assert_eq!(
        explicit["spec"]["strategy"],
        json!({"type": "Recreate"}),
        "an explicit strategy wins"
    );
}

#[test]
fn templated_crds_are_the_generated_crds_and_are_kept() {
    let helm = require_helm!();
    let objects = render(&helm, "rel", NS, NEW, &["--set", "crds.templated=true"]);
    let templated = of_kind(&objects, "CustomResourceDefinition");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let generated = parse_objects(
        &std::fs::read_to_string(root.join("crds/losant.io_crds.yaml")).expect("crds/"),
    );
    assert_eq!(templated.len(), generated.len());
    for (rendered, original) in templated.iter().zip(&generated) {
        // helm's YAML round trip writes `minimum: 1.0` as `1`: the same JSON number.
        assert!(
            numbers_as_floats(&rendered["spec"]) == numbers_as_floats(&original["spec"]),
            "the templated CRD {} has the generated schema",
            original["metadata"]["name"]
        );
        assert_eq!(rendered["metadata"]["name"], original["metadata"]["name"]);
        assert_eq!(
            rendered["metadata"]["annotations"]["helm.sh/resource-policy"], "keep",
            "uninstalling must not delete the CRDs (and every object with them)"
        );
        for (key, value) in original["metadata"]["annotations"]
            .as_object()
            .into_iter()
            .flatten()
        {
            assert_eq!(
                &rendered["metadata"]["annotations"][key], value,
                "annotation {key} (e.g. the schema version) is kept"
            );
        }
    }
}

/// `value` with every number as a float, so `1` and `1.0` compare equal.
fn numbers_as_floats(value: &Value) -> Value {
    match value {
        Value::Number(n) => n.as_f64().map_or(Value::Null, |f| json!(f)),
        Value::Array(items) => Value::Array(items.iter().map(numbers_as_floats).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), numbers_as_floats(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A Lua table constructor for `value` (JSON null becomes nil).
fn lua_literal(value: &Value) -> String {
    match value {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("{s:?}"),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(lua_literal).collect();
            format!("{{{}}}", items.join(", "))
        }
        Value::Object(map) => {
            let fields: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("[{k:?}] = {}", lua_literal(v)))
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
    }
}

fn condition(type_: &str, status: &str, reason: &str) -> Value {
    json!({"type": type_, "status": status, "reason": reason, "message": format!("{type_} is {status}")})
}

/// The Argo CD health check shipped with the chart (and shown in the README), run by a Lua
/// interpreter over kstatus condition combinations. Skipped when no `lua5.4`/`lua` is installed.
#[test]
fn argocd_health_check_never_lets_ready_hide_stalled() {
    let lua = ["lua5.4", "lua"].into_iter().find(|bin| {
        std::process::Command::new(bin)
            .arg("-v")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let Some(lua) = lua else {
        eprintln!(
            "SKIPPED: no Lua interpreter (apt-get install lua5.4) to run the Argo CD health check"
        );
        return;
    };
    let script = std::fs::read_to_string(chart_dir().join("files/argocd-health.lua"))
        .expect("the health check script");
    let object = |generation: i64, observed: Option<i64>, conditions: Vec<Value>| {
        let mut status = json!({"conditions": conditions});
        if let Some(observed) = observed {
            status["observedGeneration"] = json!(observed);
        }
        json!({"metadata": {"generation": generation}, "status": status})
    };
    let mut cases = vec![
        (json!({"metadata": {"generation": 1}}), "Progressing"),
        (
            object(
                1,
                Some(1),
                vec![
                    condition("Ready", "True", "Synced"),
                    condition("Stalled", "True", "ImmutableField"),
                ],
            ),
            "Degraded",
        ),
        (
            object(
                2,
                Some(1),
                vec![
                    condition("Ready", "True", "Synced"),
                    condition("Stalled", "True", "InvalidSpec"),
                ],
            ),
            "Degraded",
        ),
        (
            object(
                1,
                Some(1),
                vec![
                    condition("Ready", "True", "Synced"),
                    condition("Reconciling", "False", "Synced"),
                    condition("Stalled", "False", "Synced"),
                ],
            ),
            "Healthy",
        ),
        (
            object(2, Some(1), vec![condition("Ready", "True", "Synced")]),
            "Progressing",
        ),
        (
            object(
                1,
                Some(1),
                vec![
                    condition("Ready", "False", "LosantUnavailable"),
                    condition("Reconciling", "True", "LosantUnavailable"),
                ],
            ),
            "Progressing",
        ),
        (
            object(
                1,
                Some(1),
                vec![
                    condition("Ready", "False", "SecretNotFound"),
                    condition("Reconciling", "False", "SecretNotFound"),
                    condition("Stalled", "False", "SecretNotFound"),
                ],
            ),
            "Degraded",
        ),
    ];
    cases.extend(connection_and_mode_cases());
    for (object, expected) in cases {
        // Argo CD's sandbox: base, table and os.time/os.date only (no string library, no
        // string methods); the clock is pinned to NOW.
        let program = format!(
            "local print, NOW = print, {NOW}\n\
             os = {{ time = function() return NOW end }}\n\
             string, io, require, debug = nil, nil, nil, nil\n\
             getmetatable('').__index = nil\n\
             obj = {}\nlocal hs = (function()\n{script}\nend)()\nprint(hs.status)\nprint(hs.message)\n",
            lua_literal(&object)
        );
        let out = std::process::Command::new(lua)
            .args(["-e", &program])
            .output()
            .expect("lua runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "lua failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(stdout.lines().next(), Some(expected), "{object}\n{stdout}");
    }
}

/// What the health check's clock says in the tests.
const NOW: i64 = 1_800_000_000;

/// The health of connection states and per-object modes: paused objects are Suspended (even
/// when stalled), `ObserveOnly` drift and a missing remote are Degraded, and a disconnect
/// degrades a Ready integration only once it lasted longer than the grace.
fn connection_and_mode_cases() -> Vec<(Value, &'static str)> {
    let ready = |connected: Option<(&str, &str)>, since: Option<i64>, grace: Option<&str>| {
        let mut conditions = vec![
            condition("Ready", "True", "Synced"),
            condition("Reconciling", "False", "None"),
            condition("Stalled", "False", "None"),
        ];
        if let Some((status, reason)) = connected {
            conditions.push(condition("Connected", status, reason));
        }
        let mut object = json!({"metadata": {"generation": 3},
            "status": {"observedGeneration": 3, "conditions": conditions}});
        if let Some(since) = since {
            object["status"]["connection"] = json!({"state": "Disconnected", "sinceUnix": since});
        }
        if let Some(grace) = grace {
            object["metadata"]["annotations"] =
                json!({"losant.io/connection-grace-seconds": grace});
        }
        object
    };
    let down = Some(("False", "Disconnected"));
    let paused = |stalled: &str| {
        json!({"metadata": {"generation": 4}, "status": {"observedGeneration": 3, "conditions": [
            condition("Ready", "False", "Paused"),
            condition("Stalled", stalled, "Paused"),
        ]}})
    };
    let observed = |ready: &str, reason: &str, stalled: &str| {
        json!({"metadata": {"generation": 1}, "status": {"observedGeneration": 1, "conditions": [
            condition("Ready", ready, reason),
            condition("Reconciling", "False", "None"),
            condition("Stalled", stalled, reason),
            condition("Connected", "True", "Connected"),
        ]}})
    };
    vec![
        (ready(Some(("True", "Connected")), None, None), "Healthy"),
        (
            ready(Some(("Unknown", "NotReported")), None, None),
            "Healthy",
        ),
        (ready(Some(("Unknown", "Disabled")), None, None), "Healthy"),
        (ready(down, Some(NOW - 10), None), "Healthy"),
        (ready(down, Some(NOW - 299), None), "Healthy"),
        (ready(down, Some(NOW - 301), None), "Degraded"),
        (ready(down, Some(NOW - 400), Some("600")), "Healthy"),
        (ready(down, Some(NOW - 100), Some("60")), "Degraded"),
        (
            ready(down, Some(NOW - 400), Some("five minutes")),
            "Degraded",
        ),
        (
            ready(down, Some(NOW - 100), Some("five minutes")),
            "Healthy",
        ),
        (ready(down, None, None), "Healthy"),
        (paused("False"), "Suspended"),
        (paused("True"), "Suspended"),
        (observed("True", "Observed", "False"), "Healthy"),
        (observed("False", "DriftDetected", "True"), "Degraded"),
        (observed("False", "NotFound", "True"), "Degraded"),
    ]
}

/// The README's `argocd-cm` snippet carries exactly the tested script.
#[test]
fn readme_argocd_snippet_is_the_tested_script() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README");
    let start = readme
        .find("resource.customizations.health.losant.io_Integration")
        .expect("the snippet's first key");
    let end = readme[start..]
        .find("resource.customizations.health.losant.io_LosantApplication")
        .expect("the snippet's second key")
        + start;
    let snippet: Vec<&str> = readme[start..end]
        .lines()
        .skip(1)
        .filter_map(|line| line.strip_prefix("    "))
        .collect();
    let script = std::fs::read_to_string(chart_dir().join("files/argocd-health.lua"))
        .expect("the health check script");
    let code: Vec<&str> = script.lines().filter(|l| !l.starts_with("--")).collect();
    assert_eq!(
        snippet, code,
        "README.md and files/argocd-health.lua differ"
    );
}
