//! Real nodes for the tests that run pods (`tests/helm_node.rs`): the nodes of
//! `scripts/control-plane.sh up --node` (a kubelet with its own dockerd on 127.0.0.1 and on
//! 127.0.0.2), what runs in their containers as the kernel sees it, and the API server's audit
//! log.
//!
//! `scripts/test.sh` runs these tests in its node tier, with `LOSANT_NODE_E2E=1`,
//! `LOSANT_CP_DIR` and `KUBECONFIG` of that cluster, inside `scripts/loopback-only.sh`. Without
//! `LOSANT_NODE_E2E=1` they say why they are skipped; with it, nodes that are not Ready fail them.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use super::cluster::{api_server_url, cluster_ready};
use super::kubectl::kubectl_json;

/// The node cluster of this run.
pub struct Nodes {
    /// `LOSANT_CP_DIR` of the cluster: node sockets and the audit log are under it.
    pub dir: PathBuf,
    /// The API server's port on 127.0.0.1 (from the kubeconfig).
    pub api_port: u16,
    /// The image the chart is installed with (`LOSANT_NODE_IMAGE`, default `losant-operator:dev`).
    pub image: String,
}

/// The node cluster, or `None` after saying why the test is skipped.
///
/// # Panics
/// When the node tier is on but the cluster has no two Ready nodes.
pub fn nodes_or_skip() -> Option<Nodes> {
    if std::env::var("LOSANT_NODE_E2E").as_deref() != Ok("1") {
        let test = std::thread::current()
            .name()
            .unwrap_or("this test")
            .to_owned();
        eprintln!(
            "SKIPPED: {test} runs pods on real nodes; scripts/test.sh runs it in its node tier \
             (LOSANT_NODE_E2E=1, after scripts/control-plane.sh up --node)"
        );
        return None;
    }
    if !cluster_ready() {
        panic!("LOSANT_NODE_E2E=1 needs LOSANT_E2E=1 and the node cluster's KUBECONFIG");
    }
    let Ok(dir) = std::env::var("LOSANT_CP_DIR") else {
        panic!("LOSANT_NODE_E2E=1 needs LOSANT_CP_DIR");
    };
    let dir = PathBuf::from(dir);
    let nodes = kubectl_json(&["get", "nodes"]);
    let ready: Vec<&str> = nodes["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|n| {
            n["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
        .filter_map(|n| n["metadata"]["name"].as_str())
        .collect();
    assert_eq!(
        ready.len(),
        2,
        "the node tier needs two Ready nodes (scripts/control-plane.sh up --node); got {ready:?}"
    );
    let server = api_server_url();
    let api_port = url::Url::parse(&server)
        .ok()
        .and_then(|u| u.port())
        .unwrap_or_else(|| panic!("no port in the API server URL {server:?}"));
    let image = std::env::var("LOSANT_NODE_IMAGE").unwrap_or_else(|_| "losant-operator:dev".into());
    Some(Nodes {
        dir,
        api_port,
        image,
    })
}

/// Returns from the calling test unless the node tier is on (see [`nodes_or_skip`]).
#[macro_export]
macro_rules! require_nodes {
    () => {
        match $crate::testkit::node::nodes_or_skip() {
            Some(nodes) => nodes,
            None => return,
        }
    };
}
pub use crate::require_nodes;

/// A container of a pod as the host's kernel sees it.
#[derive(Debug)]
pub struct ContainerProcess {
    pub container_id: String,
    pub pid: u32,
}

impl Nodes {
    /// Runs `docker` against node `node_name`'s own daemon (node `127.0.0.N` → `nodeN`).
    pub fn docker(&self, node_name: &str, args: &[&str]) -> std::process::Output {
        let index = node_name
            .rsplit('.')
            .next()
            .unwrap_or_else(|| panic!("node name {node_name:?} is not 127.0.0.N"));
        let socket = self.dir.join(format!("node{index}")).join("docker.sock");
        Command::new("docker")
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run docker: {e}"))
    }

    /// The running `container` of pod `namespace/pod` on `node_name`.
    pub fn container(
        &self,
        node_name: &str,
        namespace: &str,
        pod: &str,
        container: &str,
    ) -> ContainerProcess {
        let out = self.docker(
            node_name,
            &[
                "ps",
                "-q",
                "--no-trunc",
                "--filter",
                &format!("label=io.kubernetes.pod.namespace={namespace}"),
                "--filter",
                &format!("label=io.kubernetes.pod.name={pod}"),
                "--filter",
                &format!("label=io.kubernetes.container.name={container}"),
            ],
        );
        let ids = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        assert!(
            out.status.success() && !ids.is_empty() && !ids.contains('\n'),
            "one running container {container} of {namespace}/{pod} on {node_name}: {ids:?} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = self.docker(node_name, &["inspect", "-f", "{{.State.Pid}}", &ids]);
        let pid: u32 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("no pid for container {ids}"));
        assert!(pid > 0, "container {ids} runs");
        ContainerProcess {
            container_id: ids,
            pid,
        }
    }

    /// Audit events (one JSON object per line of `logs/audit.log`).
    pub fn audit_events(&self) -> Vec<Value> {
        let path = self.dir.join("logs").join("audit.log");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read the audit log {}: {e}", path.display()));
        text.lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }
}

impl ContainerProcess {
    fn proc_file(&self, name: &str) -> String {
        let path = format!("/proc/{}/{name}", self.pid);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
    }

    /// A field of `/proc/PID/status` (e.g. `Uid`), its words.
    pub fn status_field(&self, field: &str) -> Vec<String> {
        let status = self.proc_file("status");
        status
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{field}:")))
            .unwrap_or_else(|| panic!("no {field} in /proc/{}/status", self.pid))
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    }

    /// The mount options of the process's root filesystem (from its mountinfo).
    pub fn root_mount_options(&self) -> Vec<String> {
        let mountinfo = self.proc_file("mountinfo");
        // Fields: id parent major:minor root mount-point options ...
        let line = mountinfo
            .lines()
            .find(|line| line.split_whitespace().nth(4) == Some("/"))
            .unwrap_or_else(|| panic!("no root mount in /proc/{}/mountinfo", self.pid));
        line.split_whitespace()
            .nth(5)
            .unwrap_or_default()
            .split(',')
            .map(str::to_owned)
            .collect()
    }

    /// The process's environment, as `NAME=value` entries.
    pub fn environment(&self) -> Vec<String> {
        let path = format!("/proc/{}/environ", self.pid);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
        bytes
            .split(|b| *b == 0)
            .filter(|e| !e.is_empty())
            .map(|e| String::from_utf8_lossy(e).into_owned())
            .collect()
    }

    /// The executable, as the path inside the container.
    pub fn executable(&self) -> String {
        std::fs::read_link(format!("/proc/{}/exe", self.pid))
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    }
}
