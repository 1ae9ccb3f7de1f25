//! kubectl, run as a child process with the environment's `KUBECONFIG`: the one way the tests
//! read and write the cluster, so they see what a user sees.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use anyhow::Context;
use serde_json::Value;

use super::manifests::secret_manifest;

/// How long a single kubectl call may wait for one request; no test step should need longer.
const KUBECTL_REQUEST_TIMEOUT: &str = "--request-timeout=60s";

/// Runs kubectl with `args`; an error only when it cannot be started at all.
pub fn try_kubectl(args: &[&str]) -> anyhow::Result<Output> {
    kubectl_command(args)
        .stdin(Stdio::null())
        .output()
        .context("cannot run kubectl (is it installed?)")
}

/// Runs kubectl with `args` and returns whatever happened.
///
/// # Panics
/// When kubectl cannot be started.
pub fn kubectl(args: &[&str]) -> Output {
    try_kubectl(args).unwrap_or_else(|e| panic!("{e:#}"))
}

/// Runs kubectl with `stdin` piped in.
///
/// # Panics
/// When kubectl cannot be started.
pub fn kubectl_with_stdin(args: &[&str], stdin: &str) -> Output {
    let spawned = kubectl_command(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child =
        spawned.unwrap_or_else(|e| panic!("cannot run kubectl (is it installed?): {e}"));
    let pipe = child.stdin.take();
    let input = stdin.to_owned();
    // Written from another thread so a large manifest cannot deadlock against a full stdout.
    // A write kubectl cut short shows in its own output and exit status.
    let writer = std::thread::spawn(move || pipe.map(|mut pipe| pipe.write_all(input.as_bytes())));
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("waiting for kubectl failed: {e}"));
    writer.join().ok();
    out
}

fn kubectl_command(args: &[&str]) -> Command {
    let mut cmd = Command::new("kubectl");
    cmd.arg(KUBECTL_REQUEST_TIMEOUT).args(args);
    cmd
}

/// Runs kubectl and returns its stdout.
///
/// # Panics
/// With the command and its stderr, when it fails.
pub fn kubectl_ok(args: &[&str]) -> String {
    let out = kubectl(args);
    if !out.status.success() {
        panic!(
            "kubectl {} failed ({}):\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `kubectl <args> -o json` and parses the output.
///
/// # Panics
/// When kubectl fails or prints no JSON.
pub fn kubectl_json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let text = kubectl_ok(&all);
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("kubectl {} gave no JSON ({e}):\n{text}", all.join(" ")))
}

/// `kubectl apply -n <namespace> -f -` with `yaml` (YAML or JSON, one or more documents).
/// `Ok(stdout)` when applied, `Err(stderr)` when kubectl or the API server refused it.
pub fn kubectl_apply_yaml(namespace: &str, yaml: &str) -> Result<String, String> {
    kubectl_apply_yaml_with(namespace, yaml, &[])
}

/// Like [`kubectl_apply_yaml`] with extra flags, e.g. `&["--server-side"]` or
/// `&["--validate=false"]` (to see what the API server alone says).
pub fn kubectl_apply_yaml_with(
    namespace: &str,
    yaml: &str,
    extra_args: &[&str],
) -> Result<String, String> {
    let mut args = vec!["apply", "-n", namespace, "-f", "-"];
    args.extend_from_slice(extra_args);
    let out = kubectl_with_stdin(&args, yaml);
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// `kubectl apply --dry-run=server`: full server-side validation and defaulting, nothing stored.
pub fn kubectl_dry_run_yaml(namespace: &str, yaml: &str) -> Result<String, String> {
    kubectl_apply_yaml_with(namespace, yaml, &["--dry-run=server"])
}

/// The object `kind_name` (e.g. `integration/mqtt-1`) in `namespace`, or `None` if it does not
/// exist.
///
/// # Panics
/// On any other kubectl failure.
pub fn get_object(namespace: &str, kind_name: &str) -> Option<Value> {
    let out = kubectl(&["get", kind_name, "-n", namespace, "-o", "json"]);
    if out.status.success() {
        let object = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("kubectl get {kind_name} gave no JSON: {e}"));
        return Some(object);
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("NotFound") || stderr.contains("not found") {
        None
    } else {
        panic!("kubectl get {kind_name} -n {namespace} failed:\n{stderr}");
    }
}

/// `kubectl create secret generic <name> -n <namespace> --from-literal=k=v ...`.
///
/// # Panics
/// When kubectl refuses it.
pub fn create_secret(namespace: &str, name: &str, data: &[(&str, &str)]) {
    let literals: Vec<String> = data
        .iter()
        .map(|(k, v)| format!("--from-literal={k}={v}"))
        .collect();
    let mut args = vec!["create", "secret", "generic", name, "-n", namespace];
    args.extend(literals.iter().map(String::as_str));
    kubectl_ok(&args);
}

/// Creates or replaces the data of a Secret (`kubectl apply` of a rendered manifest).
///
/// # Panics
/// When kubectl refuses it.
pub fn apply_secret(namespace: &str, name: &str, data: &[(&str, &str)]) {
    let manifest = secret_manifest(name, data);
    if let Err(e) = kubectl_apply_yaml(namespace, &manifest) {
        panic!("applying Secret {namespace}/{name} failed:\n{e}");
    }
}
