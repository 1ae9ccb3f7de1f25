//! The Helm chart as users install it, on real nodes: the image built from the Dockerfile runs as
//! the chart's two replicas on two kubelets (`scripts/control-plane.sh up --node`), probed by
//! the kubelets, with in-cluster configuration from the mounted ServiceAccount token. One
//! scenario, in the order a user meets it: install (namespaced mode) and the examples going
//! Ready, the leader's crash and the standby's takeover, `helm upgrade` with an edit made during
//! the rollout, `helm rollback`, and `helm uninstall` leaving CRDs and remote integrations.
//!
//! Everything is asserted on the running pods: the user, the read-only root and the capabilities
//! from the container's process as the kernel reports it, not from the manifest. The nodes run
//! pods with `hostNetwork: true` (no CNI; the API server is only on loopback), so the chart's
//! `hostNetwork` value binds each replica's metrics server to its node's address (127.0.0.1 and
//! 127.0.0.2).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use losant_operator::testkit;
use losant_operator::testkit::helm::*;
use losant_operator::testkit::node::*;
use losant_operator::testkit::*;
use serde_json::{Value, json};

const RELEASE: &str = "losant-operator";
/// The chart's default lease duration (values.yaml `leaderElection.leaseDuration`).
const LEASE: Duration = Duration::from_secs(15);
const ROLLOUT_TIMEOUT: Duration = Duration::from_secs(240);
const READY_TIMEOUT: Duration = Duration::from_secs(120);
const OPERATOR_TOKEN: &str = "chart-node-operator-token";
const RESYNC: &str = "30s";
const RESYNC_UPGRADED: &str = "45s";

/// The `Integration` objects of `examples/` and their remote names.
const EXAMPLES: [(&str, &str); 6] = [
    ("factory-broker", "factory-broker"),
    ("fleet-pubsub", "fleet-pubsub"),
    ("orders-queue", "orders-queue"),
    ("telemetry-hub", "telemetry-hub"),
    ("particle-product", "particle-product"),
    ("market-feed", "Market feed (prod)"),
];

struct Scenario {
    nodes: Nodes,
    helm: std::path::PathBuf,
    ns: TestNamespace,
    emulator: EmulatorProcess,
    /// The Deployment's and ServiceAccount's name.
    fullname: String,
}

#[test]
fn the_chart_runs_fails_over_upgrades_and_uninstalls_on_real_nodes() {
    let nodes = require_nodes!();
    let helm = require_helm!();
    let ns = TestNamespace::new("chart-node");
    let emulator = EmulatorProcess::start(&["--token", OPERATOR_TOKEN]);
    ns.register_log("emulator", emulator.log_path());
    let scenario = Scenario {
        nodes,
        helm,
        ns,
        emulator,
        fullname: RELEASE.to_owned(),
    };
    scenario.install_and_run_the_examples();
    scenario.kill_the_leader();
    scenario.upgrade_with_an_edit_during_the_rollout();
    scenario.roll_back();
    scenario.uninstall();
}

impl Scenario {
    fn ns(&self) -> &str {
        self.ns.name()
    }

    fn helm_ok(&self, args: &[&str]) -> String {
        let out = testkit::helm::helm(&self.helm, args);
        assert!(
            out.status.success(),
            "helm {} failed:\n{}\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Values as a user on such a cluster sets them: the local image, namespaced RBAC, host
    /// networking with the API server's loopback address, and the emulator's host allowed.
    fn install_values(&self) -> Vec<String> {
        let (repository, tag) = self
            .nodes
            .image
            .rsplit_once(':')
            .unwrap_or((&self.nodes.image, "latest"));
        let env = json!([
            {"name": "KUBERNETES_SERVICE_HOST", "value": "127.0.0.1"},
            {"name": "KUBERNETES_SERVICE_PORT", "value": self.nodes.api_port.to_string()},
        ]);
        [
            "--set",
            &format!("image.repository={repository}"),
            "--set",
            &format!("image.tag={tag}"),
            "--set",
            "image.pullPolicy=Never",
            "--set",
            "rbac.namespaced=true",
            "--set",
            &format!("watchNamespaces={{{}}}", self.ns()),
            "--set",
            "hostNetwork=true",
            "--set",
            &format!("resyncInterval={RESYNC}"),
            "--set-json",
            &format!("extraEnv={env}"),
            "--set-json",
            r#"extraArgs=["--allowed-http-hosts=127.0.0.1"]"#,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    fn install_and_run_the_examples(&self) {
        let chart = chart_dir();
        let values = self.install_values();
        let mut args = vec![
            "install",
            RELEASE,
            chart.to_str().expect("a UTF-8 path"),
            "--namespace",
            self.ns(),
            "--wait",
            "--timeout",
            "4m",
        ];
        args.extend(values.iter().map(String::as_str));
        self.helm_ok(&args);

        let pods = self.ready_pods(2, READY_TIMEOUT);
        let nodes: Vec<&str> = pods.iter().map(|p| p.node.as_str()).collect();
        assert_ne!(nodes[0], nodes[1], "one replica per node: {nodes:?}");
        for pod in &pods {
            self.assert_hardened_and_in_cluster(pod);
        }

        for manifest in example_manifests(&self.emulator, OPERATOR_TOKEN) {
            self.ns.apply_ok(&manifest);
        }
        self.wait_for_examples_ready();
        self.assert_one_remote_per_integration();
        let leader = self.leader();
        assert!(
            pods.iter().any(|p| p.name == leader),
            "the Lease is held by one of the chart's pods ({leader})"
        );
        self.assert_writes_came_from_the_service_account();
        // The kubelets kept probing all along: Ready still, and no liveness failure restarted
        // a container.
        for pod in self.ready_pods(2, READY_TIMEOUT) {
            assert_eq!(pod.restarts, 0, "{} was never restarted", pod.name);
        }
    }

    /// SIGKILL of the leader's container on its node, its pod force-deleted, the node cordoned so
    /// the replacement cannot start (the only other node's port is the standby's): the standby
    /// must take the lease within the lease duration and reconcile.
    fn kill_the_leader(&self) {
        let pods = self.ready_pods(2, READY_TIMEOUT);
        let leader_name = self.leader();
        let leader = pods
            .iter()
            .find(|p| p.name == leader_name)
            .expect("the leader is a running pod");
        let standby = pods
            .iter()
            .find(|p| p.name != leader_name)
            .expect("a standby runs");
        kubectl_ok(&["cordon", &leader.node]);
        let container = self
            .nodes
            .container(&leader.node, self.ns(), &leader.name, "operator");
        let out = self
            .nodes
            .docker(&leader.node, &["kill", &container.container_id]);
        assert!(
            out.status.success(),
            "docker kill: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let killed = Instant::now();
        kubectl_ok(&[
            "delete",
            "pod",
            &leader.name,
            "-n",
            self.ns(),
            "--grace-period=0",
            "--force",
        ]);
        wait_until(LEASE * 3, "the standby to take the lease", || {
            self.lease_holder().as_deref() == Some(standby.name.as_str())
        });
        let took = killed.elapsed();
        eprintln!("the standby took the lease {took:?} after the leader was killed");
        assert!(took <= LEASE, "takeover took {took:?}, more than {LEASE:?}");

        // The new leader reconciles: an edit reaches Losant, and nothing was duplicated.
        self.edit_topics("factory-broker", &["failover/+"]);
        self.wait_for_remote_topics("failover edit", "factory-broker", &["failover/+"]);
        self.assert_one_remote_per_integration();

        kubectl_ok(&["uncordon", &leader.node]);
        let pods = self.ready_pods(2, READY_TIMEOUT);
        assert!(
            pods.iter().all(|p| p.name != leader.name),
            "the killed pod was replaced"
        );
    }

    fn upgrade_with_an_edit_during_the_rollout(&self) {
        let chart = chart_dir();
        let resync = format!("resyncInterval={RESYNC_UPGRADED}");
        self.helm_ok(&[
            "upgrade",
            RELEASE,
            chart.to_str().expect("a UTF-8 path"),
            "--namespace",
            self.ns(),
            "--reuse-values",
            "--set",
            &resync,
        ]);
        // While the rollout replaces the pods one at a time.
        self.edit_topics("factory-broker", &["rollout/+"]);
        self.wait_for_rollout();
        let pods = self.ready_pods(2, READY_TIMEOUT);
        for pod in &pods {
            assert!(
                pod.args
                    .contains(&format!("--resync-interval={RESYNC_UPGRADED}")),
                "{} runs the upgraded value: {:?}",
                pod.name,
                pod.args
            );
        }
        self.wait_for_remote_topics("rollout edit", "factory-broker", &["rollout/+"]);
        self.assert_one_remote_per_integration();
        self.wait_for_examples_ready();
    }

    fn roll_back(&self) {
        self.helm_ok(&["rollback", RELEASE, "1", "--namespace", self.ns()]);
        self.wait_for_rollout();
        let pods = self.ready_pods(2, READY_TIMEOUT);
        for pod in &pods {
            assert!(
                pod.args.contains(&format!("--resync-interval={RESYNC}")),
                "{} runs the first revision's value again: {:?}",
                pod.name,
                pod.args
            );
        }
        self.edit_topics("factory-broker", &["rolled-back/+"]);
        self.wait_for_remote_topics("rollback edit", "factory-broker", &["rolled-back/+"]);
        self.assert_one_remote_per_integration();
    }

    /// `helm uninstall` removes the operator, never the CRDs, the objects or what they manage.
    fn uninstall(&self) {
        let before = self.remote_ids_by_name();
        self.helm_ok(&["uninstall", RELEASE, "--namespace", self.ns()]);
        wait_until(READY_TIMEOUT, "the operator's pods to go", || {
            self.pods().is_empty()
                && get_object(self.ns(), &format!("deployment/{}", self.fullname)).is_none()
        });
        for crd in CRD_NAMES {
            assert!(
                kubectl(&["get", crd]).status.success(),
                "uninstalling keeps the CRD {crd}"
            );
        }
        for (name, _) in EXAMPLES {
            assert!(
                get_object(self.ns(), &format!("integration/{name}")).is_some(),
                "uninstalling keeps the Integration {name}"
            );
        }
        assert_eq!(
            self.remote_ids_by_name(),
            before,
            "uninstalling the operator leaves every remote integration in Losant"
        );
    }

    // -----------------------------------------------------------------------------------------
    // Observations

    fn wait_for_examples_ready(&self) {
        for (name, _) in EXAMPLES {
            let kind_name = format!("integration/{name}");
            wait_for_condition(self.ns(), &kind_name, "Ready", "True", READY_TIMEOUT);
        }
    }

    fn pods(&self) -> Vec<Pod> {
        let selector = format!("app.kubernetes.io/instance={RELEASE}");
        let list = kubectl_json(&["get", "pods", "-n", self.ns(), "-l", &selector]);
        list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .map(Pod::from_json)
            .collect()
    }

    /// Waits until exactly `count` pods are Running and Ready (the kubelet's readiness probe
    /// passed) and none is on its way out, and returns them.
    fn ready_pods(&self, count: usize, timeout: Duration) -> Vec<Pod> {
        let deadline = Instant::now() + timeout;
        loop {
            let selector = format!("app.kubernetes.io/instance={RELEASE}");
            let list = kubectl_json(&["get", "pods", "-n", self.ns(), "-l", &selector]);
            let all: Vec<&Value> = list["items"].as_array().into_iter().flatten().collect();
            let pods: Vec<Pod> = all.iter().map(|p| Pod::from_json(p)).collect();
            if all.len() == count && pods.iter().all(|p| p.ready && !p.terminating) {
                return pods;
            }
            if Instant::now() >= deadline {
                panic!("timed out after {timeout:?} waiting for {count} Ready pods; saw {pods:#?}");
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn wait_for_rollout(&self) {
        let timeout = format!("--timeout={}s", ROLLOUT_TIMEOUT.as_secs());
        kubectl_ok(&[
            "rollout",
            "status",
            &format!("deployment/{}", self.fullname),
            "-n",
            self.ns(),
            &timeout,
        ]);
    }

    fn lease_holder(&self) -> Option<String> {
        get_object(self.ns(), "lease/losant-operator")?["spec"]["holderIdentity"]
            .as_str()
            .map(str::to_owned)
    }

    fn leader(&self) -> String {
        wait_for(READY_TIMEOUT, "a replica to hold the lease", || {
            self.lease_holder()
        })
    }

    /// From the container's process: the image's binary, running as 65532:65532 with no
    /// capability, no privilege gain, a seccomp filter and a read-only root; configured for the
    /// cluster only by the environment the kubelet gave it and the mounted token.
    fn assert_hardened_and_in_cluster(&self, pod: &Pod) {
        let process = self
            .nodes
            .container(&pod.node, self.ns(), &pod.name, "operator");
        assert_eq!(
            process.executable(),
            "/usr/local/bin/losant-operator",
            "{}: the image's binary",
            pod.name
        );
        for field in ["Uid", "Gid"] {
            assert_eq!(
                process.status_field(field),
                vec!["65532"; 4],
                "{}: {field} (real, effective, saved, filesystem)",
                pod.name
            );
        }
        for field in ["CapEff", "CapPrm", "CapBnd"] {
            assert_eq!(
                process.status_field(field),
                vec!["0000000000000000"],
                "{}: {field}",
                pod.name
            );
        }
        assert_eq!(
            process.status_field("NoNewPrivs"),
            vec!["1"],
            "{}",
            pod.name
        );
        assert_eq!(
            process.status_field("Seccomp"),
            vec!["2"],
            "{}: a seccomp filter (RuntimeDefault)",
            pod.name
        );
        let options = process.root_mount_options();
        assert!(
            options.iter().any(|o| o == "ro"),
            "{}: the root filesystem is mounted read-only: {options:?}",
            pod.name
        );
        let env = process.environment();
        assert!(
            !env.iter().any(|e| e.starts_with("KUBECONFIG=")),
            "{}: no kubeconfig, only in-cluster configuration",
            pod.name
        );
        assert!(
            env.contains(&"KUBERNETES_SERVICE_HOST=127.0.0.1".to_owned()),
            "{}: the API server's address from the chart's extraEnv",
            pod.name
        );
        assert!(
            env.contains(&format!("POD_NAME={}", pod.name)),
            "{}: the downward API's pod name (the leader-election identity)",
            pod.name
        );
        let ip = format!("POD_IP={}", pod.node);
        assert!(
            env.contains(&ip),
            "{}: {ip} from the downward API",
            pod.name
        );
        assert!(
            pod.args
                .contains(&format!("--metrics-addr=$(POD_IP):{}", 8080)),
            "{}: metrics on the pod's address: {:?}",
            pod.name,
            pod.args
        );
        let token = Path::new(&format!("/proc/{}/root", process.pid))
            .join("var/run/secrets/kubernetes.io/serviceaccount/token");
        assert!(
            token.is_file(),
            "{}: the ServiceAccount token is mounted",
            pod.name
        );
    }

    /// The API server's audit log shows the operator's writes made as the chart's
    /// ServiceAccount (the mounted token), from loopback.
    fn assert_writes_came_from_the_service_account(&self) {
        let user = format!("system:serviceaccount:{}:{}", self.ns(), self.fullname);
        let events = self.nodes.audit_events();
        let writes: Vec<&Value> = events
            .iter()
            .filter(|e| e["user"]["username"] == user.as_str())
            .filter(|e| e["objectRef"]["resource"] == "integrations")
            .filter(|e| e["verb"] == "patch" || e["verb"] == "update")
            .collect();
        assert!(
            !writes.is_empty(),
            "the audit log has the operator's Integration writes as {user}"
        );
        for event in &writes {
            for ip in event["sourceIPs"].as_array().into_iter().flatten() {
                let ip: std::net::IpAddr = ip
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| panic!("a source IP in {event}"));
                assert!(ip.is_loopback(), "the operator called from {ip}");
            }
        }
    }

    fn edit_topics(&self, integration: &str, topics: &[&str]) {
        kubectl_ok(&[
            "patch",
            &format!("integration/{integration}"),
            "-n",
            self.ns(),
            "--type=merge",
            "-p",
            &json!({"spec": {"topics": topics}}).to_string(),
        ]);
    }

    fn wait_for_remote_topics(&self, what: &str, remote_name: &str, topics: &[&str]) {
        let mut want: Vec<&str> = topics.to_vec();
        want.sort_unstable();
        wait_until(
            READY_TIMEOUT,
            &format!("{what}: topics {want:?} on {remote_name} in Losant"),
            || {
                self.emulator.list_integrations().iter().any(|i| {
                    let mut have: Vec<&str> = i["topics"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect();
                    have.sort_unstable();
                    i["name"] == remote_name && have == want
                })
            },
        );
    }

    fn remote_ids_by_name(&self) -> BTreeMap<String, Vec<String>> {
        let mut by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for remote in self.emulator.list_integrations() {
            let name = remote["name"].as_str().unwrap_or_default().to_owned();
            let id = remote["id"].as_str().unwrap_or_default().to_owned();
            by_name.entry(name).or_default().push(id);
        }
        by_name
    }

    /// Exactly one remote integration per `Integration`, and no other.
    fn assert_one_remote_per_integration(&self) {
        let by_name = self.remote_ids_by_name();
        let counts: BTreeMap<&str, usize> = by_name
            .iter()
            .map(|(name, ids)| (name.as_str(), ids.len()))
            .collect();
        let expected: BTreeMap<&str, usize> = EXAMPLES.iter().map(|(_, r)| (*r, 1)).collect();
        assert_eq!(counts, expected, "one remote per Integration, none else");
    }
}

#[derive(Debug)]
struct Pod {
    name: String,
    node: String,
    ready: bool,
    terminating: bool,
    /// Container restarts (a failing liveness probe would restart it).
    restarts: u64,
    args: Vec<String>,
}

impl Pod {
    fn from_json(pod: &Value) -> Pod {
        let ready = pod["status"]["phase"] == "Running"
            && pod["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
        Pod {
            name: pod["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            node: pod["spec"]["nodeName"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            ready,
            terminating: !pod["metadata"]["deletionTimestamp"].is_null(),
            restarts: pod["status"]["containerStatuses"][0]["restartCount"]
                .as_u64()
                .unwrap_or_default(),
            args: pod["spec"]["containers"][0]["args"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
        }
    }
}
