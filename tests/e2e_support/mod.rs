//! Shared harness of the end-to-end tests (`tests/e2e_*.rs`, each with `mod e2e_support;`).
//!
//! The tests drive a real API server through `kubectl` and run the real `losant-operator` and
//! `losant-emulator` binaries as child processes, so what they exercise is what a user runs.
//! `scripts/test.sh` starts a local control plane (`scripts/control-plane.sh up`) and sets
//! `LOSANT_E2E=1` and `KUBECONFIG`; without `LOSANT_E2E=1` every test returns early and says it
//! was skipped (see [`require_cluster!`]).
//!
//! Safety: the harness refuses to run against an API server that is not on the loopback
//! interface unless `LOSANT_E2E_ALLOW_REMOTE=1`, so a stray `KUBECONFIG` never lets a test
//! create or delete namespaces in a real cluster.
//!
//! Everything here is blocking, so tests are plain `#[test]` functions; HTTP calls to the
//! emulator run on a private Tokio runtime and also work from inside an async test. Logs of
//! child processes go to files under `$CARGO_TARGET_TMPDIR/e2e-logs/` and are kept after the run.
//!
//! Environment knobs: `LOSANT_E2E_KEEP=1` keeps test namespaces instead of deleting them.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::future::Future;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Label put on every namespace the tests create, to find leftovers:
/// `kubectl get ns -l losant-operator-e2e=true`.
pub const NAMESPACE_LABEL: &str = "losant-operator-e2e";
/// Token the emulator accepts (full access) unless a test passes more with `--token`.
pub const EMULATOR_TOKEN: &str = "e2e-token";
/// How long a single kubectl call may wait for one request; no test step should need longer.
const KUBECTL_REQUEST_TIMEOUT: &str = "--request-timeout=60s";
/// How much of a process log a failing test prints.
const LOG_TAIL_LINES: usize = 400;

// ---------------------------------------------------------------------------------------------
// Gating

/// Whether end-to-end tests are switched on (`LOSANT_E2E=1`).
pub fn e2e_enabled() -> bool {
    std::env::var("LOSANT_E2E").as_deref() == Ok("1")
}

/// True when the test may use the cluster; false (after printing why) when e2e tests are off.
/// Panics when e2e tests are on but `KUBECONFIG` leads somewhere other than this machine's
/// loopback interface (unless `LOSANT_E2E_ALLOW_REMOTE=1`), or when kubectl cannot read it.
/// Tests call it through [`require_cluster!`].
pub fn cluster_ready() -> bool {
    if !e2e_enabled() {
        let test = std::thread::current()
            .name()
            .unwrap_or("this test")
            .to_owned();
        eprintln!(
            "SKIPPED: {test} needs a Kubernetes API server; set LOSANT_E2E=1 and KUBECONFIG \
             (scripts/test.sh does, after scripts/control-plane.sh up)"
        );
        return false;
    }
    if let Err(message) = local_cluster_check() {
        panic!("{message}");
    }
    true
}

/// Returns from the calling test (after printing `SKIPPED: ...`) unless end-to-end tests are
/// enabled and the cluster is a local one; see [`cluster_ready`].
macro_rules! require_cluster {
    () => {
        if !$crate::e2e_support::cluster_ready() {
            return;
        }
    };
}
#[allow(unused_imports)]
pub(crate) use require_cluster;

/// The API server URL, checked once per process to be on loopback.
fn local_cluster_check() -> Result<String, String> {
    static CHECKED: OnceLock<Result<String, String>> = OnceLock::new();
    CHECKED
        .get_or_init(|| {
            let out = kubectl(&[
                "config",
                "view",
                "--minify",
                "-o",
                "jsonpath={.clusters[0].cluster.server}",
            ]);
            let server = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            if !out.status.success() || server.is_empty() {
                return Err(format!(
                    "LOSANT_E2E=1 but kubectl finds no cluster (KUBECONFIG={:?}): {}\n\
                     Start one with `eval \"$(scripts/control-plane.sh up)\"`.",
                    std::env::var("KUBECONFIG").ok(),
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            if is_loopback_url(&server)
                || std::env::var("LOSANT_E2E_ALLOW_REMOTE").as_deref() == Ok("1")
            {
                Ok(server)
            } else {
                Err(format!(
                    "refusing to run end-to-end tests against {server}: it is not on 127.0.0.1 or \
                     localhost, and these tests create and delete namespaces. Point KUBECONFIG at \
                     the local control plane (scripts/control-plane.sh up), or set \
                     LOSANT_E2E_ALLOW_REMOTE=1 if you really mean it."
                ))
            }
        })
        .clone()
}

fn is_loopback_url(server: &str) -> bool {
    let Ok(url) = url::Url::parse(server) else {
        return false;
    };
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

// ---------------------------------------------------------------------------------------------
// kubectl

/// Runs kubectl with `args` (KUBECONFIG from the environment) and returns whatever happened.
pub fn kubectl(args: &[&str]) -> Output {
    kubectl_command(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run kubectl (is it installed?): {e}"))
}

/// Runs kubectl with `stdin` piped in.
pub fn kubectl_with_stdin(args: &[&str], stdin: &str) -> Output {
    let mut child = kubectl_command(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run kubectl (is it installed?): {e}"));
    let mut pipe = child.stdin.take().expect("stdin is piped");
    let input = stdin.to_owned();
    // Written from another thread so a large manifest cannot deadlock against a full stdout.
    let writer = std::thread::spawn(move || {
        let _ = pipe.write_all(input.as_bytes());
    });
    let out = child.wait_with_output().expect("kubectl finishes");
    let _ = writer.join();
    out
}

fn kubectl_command(args: &[&str]) -> Command {
    let mut cmd = Command::new("kubectl");
    cmd.arg(KUBECTL_REQUEST_TIMEOUT).args(args);
    cmd
}

/// Runs kubectl and returns its stdout; panics with the command and its stderr on failure.
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

/// Runs `kubectl <args> -o json` and parses the output; panics on failure.
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

// ---------------------------------------------------------------------------------------------
// CRDs

/// CRD names the operator installs.
pub const CRD_NAMES: [&str; 2] = [
    "crd/integrations.losant.io",
    "crd/losantapplications.losant.io",
];

/// Applies `crds/` (server-side, forcing conflicts) once per test process and waits until the
/// CRDs are Established. Idempotent, and safe to run from many test processes at once.
pub fn install_crds() {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    if let Err(message) = INSTALLED.get_or_init(try_install_crds) {
        panic!("{message}");
    }
}

fn try_install_crds() -> Result<(), String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("crds");
    let dir = dir.to_str().ok_or("crds/ path is not UTF-8")?;
    let mut last_error = String::new();
    // Parallel test processes apply the same objects; the API server serializes the writes, but
    // an occasional conflict or a slow first request is retried rather than failing the test.
    for attempt in 1..=5 {
        let out = kubectl(&[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=losant-operator-e2e",
            "-f",
            dir,
        ]);
        if out.status.success() {
            let mut args = vec!["wait", "--for", "condition=established", "--timeout=60s"];
            args.extend(CRD_NAMES);
            let out = kubectl(&args);
            if out.status.success() {
                return wait_for_openapi();
            }
            last_error = String::from_utf8_lossy(&out.stderr).into_owned();
        } else {
            last_error = String::from_utf8_lossy(&out.stderr).into_owned();
        }
        std::thread::sleep(Duration::from_millis(500 * attempt));
    }
    Err(format!(
        "installing the CRDs from {dir} failed:\n{last_error}"
    ))
}

/// Waits until the API server's OpenAPI document describes both kinds. It is published a moment
/// after the CRDs are Established; until then `kubectl explain` fails ("couldn't find resource")
/// and kubectl's client-side validation silently skips the kinds.
fn wait_for_openapi() -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let missing: Vec<String> = ["integrations.spec", "losantapplications.spec"]
            .into_iter()
            .filter_map(|field| {
                let out = kubectl(&["explain", field]);
                (!out.status.success()).then(|| String::from_utf8_lossy(&out.stderr).into_owned())
            })
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "the CRDs are Established but the OpenAPI document still lacks them after 60 s:\n{}",
                missing.join("\n")
            ));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

// ---------------------------------------------------------------------------------------------
// Namespaces

/// Process logs to print when a test in a namespace fails: namespace -> [(label, file)].
type LogRegistry = Mutex<BTreeMap<String, Vec<(String, PathBuf)>>>;

/// The operator binary the tests run: `LOSANT_OPERATOR_BIN` when set (CI points it at the
/// release build the Dockerfile makes), else the one cargo built for the tests.
pub fn operator_binary() -> PathBuf {
    match std::env::var_os("LOSANT_OPERATOR_BIN") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_losant-operator")),
    }
}

thread_local! {
    static PANIC_MESSAGE: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Wraps the panic hook (once per process) so a failing test's message can be repeated after
/// its diagnostics.
fn remember_panic_messages() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "(a non-string panic)".to_owned());
            let location = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            PANIC_MESSAGE.with(|m| *m.borrow_mut() = Some(format!("{message}{location}")));
            previous(info);
        }));
    });
}

fn last_panic_message() -> Option<String> {
    PANIC_MESSAGE.with(|m| m.borrow().clone())
}

fn log_registry() -> &'static LogRegistry {
    static LOGS: OnceLock<LogRegistry> = OnceLock::new();
    LOGS.get_or_init(Default::default)
}

/// Registers a log file to print if a test using `namespace` fails. [`OperatorProcess`] does this
/// itself; use it for emulators and anything else.
/// Operator processes started for each namespace, so the namespace's cleanup can stop them
/// first: a running operator would put its finalizers back on objects the cleanup strips.
fn operator_pids() -> &'static Mutex<BTreeMap<String, Vec<u32>>> {
    static PIDS: OnceLock<Mutex<BTreeMap<String, Vec<u32>>>> = OnceLock::new();
    PIDS.get_or_init(|| Mutex::new(BTreeMap::new()))
}

pub fn register_log(namespace: &str, label: &str, path: &Path) {
    log_registry()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(namespace.to_owned())
        .or_default()
        .push((label.to_owned(), path.to_owned()));
}

/// A namespace of its own for one test, deleted when dropped (unless `LOSANT_E2E_KEEP=1`).
/// When the test is failing, the drop first prints the namespace's objects, events and the
/// registered process logs to stderr.
pub struct TestNamespace {
    name: String,
}

impl TestNamespace {
    /// Creates `<prefix>-<random>` labelled `losant-operator-e2e=true`.
    pub fn new(prefix: &str) -> TestNamespace {
        remember_panic_messages();
        let mut prefix: String = prefix
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        prefix.truncate(40);
        let prefix = prefix.trim_matches('-');
        let prefix = if prefix.is_empty() { "e2e" } else { prefix };
        for _ in 0..3 {
            let name = format!("{prefix}-{:08x}", rand::random::<u32>());
            let manifest = json!({
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": name, "labels": {NAMESPACE_LABEL: "true"}},
            });
            let out = kubectl_with_stdin(&["create", "-f", "-"], &manifest.to_string());
            if out.status.success() {
                return TestNamespace { name };
            }
            let stderr = String::from_utf8_lossy(&out.stderr);
            if !stderr.contains("AlreadyExists") {
                panic!("creating namespace {name} failed:\n{stderr}");
            }
        }
        panic!("could not find a free namespace name for prefix {prefix}");
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Registers a log file to print if the test fails (see [`register_log`]).
    pub fn register_log(&self, label: &str, path: &Path) {
        register_log(&self.name, label, path);
    }

    /// `kubectl apply` of `yaml` in this namespace; see [`kubectl_apply_yaml`].
    pub fn apply(&self, yaml: &str) -> Result<String, String> {
        kubectl_apply_yaml(&self.name, yaml)
    }

    /// Like [`TestNamespace::apply`], panicking with kubectl's stderr when it is refused.
    pub fn apply_ok(&self, yaml: &str) -> String {
        self.apply(yaml).unwrap_or_else(|e| {
            panic!("apply in {} failed:\n{e}\n--- manifest:\n{yaml}", self.name)
        })
    }

    /// Creates a generic Secret from literal key/value pairs.
    pub fn create_secret(&self, name: &str, data: &[(&str, &str)]) {
        create_secret(&self.name, name, data);
    }

    /// Creates or updates a Secret (for tests that rotate values).
    pub fn apply_secret(&self, name: &str, data: &[(&str, &str)]) {
        apply_secret(&self.name, name, data);
    }

    /// Creates the Secret `<app_name>-token` (key `token`) with the emulator's token, and a
    /// `LosantApplication` named `app_name` pointing at the emulator's application and URL.
    pub fn install_application(&self, emulator: &EmulatorProcess, app_name: &str) {
        let secret = format!("{app_name}-token");
        self.create_secret(&secret, &[("token", emulator.token())]);
        self.apply_ok(&losant_application_manifest(
            app_name,
            emulator.application_id(),
            emulator.base_url(),
            &secret,
            "token",
        ));
    }

    fn dump_for_failure(&self) {
        let ns = self.name.as_str();
        let mut report = format!("\n==== e2e failure diagnostics for namespace {ns} ====\n");
        for args in [
            vec![
                "get",
                "all,integrations,losantapplications,events",
                "-n",
                ns,
                "-o",
                "wide",
            ],
            vec![
                "get",
                "integrations,losantapplications",
                "-n",
                ns,
                "-o",
                "yaml",
            ],
        ] {
            let out = kubectl(&args);
            report.push_str(&format!("---- kubectl {}\n", args.join(" ")));
            report.push_str(&String::from_utf8_lossy(&out.stdout));
            report.push_str(&String::from_utf8_lossy(&out.stderr));
        }
        let logs = log_registry()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(ns)
            .cloned()
            .unwrap_or_default();
        for (label, path) in logs {
            report.push_str(&format!(
                "---- {label} log ({}), last {LOG_TAIL_LINES} lines\n",
                path.display()
            ));
            report.push_str(&tail(&read_lossy(&path), LOG_TAIL_LINES));
            report.push('\n');
        }
        report.push_str(&format!("==== end of diagnostics for {ns} ====\n"));
        // The diagnostics are long and CI shows a run's head and tail: say what failed once
        // more, last.
        if let Some(message) = last_panic_message() {
            report.push_str(&format!("==== the failure, again: {message}\n"));
        }
        eprintln!("{report}");
    }
}

impl fmt::Display for TestNamespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump_for_failure();
        }
        if std::env::var("LOSANT_E2E_KEEP").as_deref() == Ok("1") {
            eprintln!("LOSANT_E2E_KEEP=1: keeping namespace {}", self.name);
            return;
        }
        let ns = self.name.as_str();
        let pids = operator_pids()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(ns)
            .unwrap_or_default();
        for pid in pids {
            // The test is over; its operators go first (an exited one's pid is not reused this
            // quickly, and `kill` of a gone process is harmless).
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
        let _ = kubectl(&["delete", "namespace", ns, "--wait=false"]);
        // Without a running operator, finalizers on our objects would keep the namespace in
        // Terminating forever; the test is over, so nothing is left for them to guard.
        let names = kubectl(&[
            "get",
            "integrations.losant.io,losantapplications.losant.io,secrets",
            "-n",
            ns,
            "-o",
            "jsonpath={range .items[?(@.metadata.finalizers)]}{.kind}/{.metadata.name}{\"\\n\"}{end}",
            "--ignore-not-found",
        ]);
        for object in String::from_utf8_lossy(&names.stdout).lines() {
            let _ = kubectl(&[
                "patch",
                object,
                "-n",
                ns,
                "--type=merge",
                "-p",
                r#"{"metadata":{"finalizers":null}}"#,
            ]);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Secrets and manifests

/// `kubectl create secret generic <name> -n <namespace> --from-literal=k=v ...`.
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
pub fn apply_secret(namespace: &str, name: &str, data: &[(&str, &str)]) {
    let manifest = secret_manifest(name, data);
    if let Err(e) = kubectl_apply_yaml(namespace, &manifest) {
        panic!("applying Secret {namespace}/{name} failed:\n{e}");
    }
}

/// A generic Secret manifest (JSON, which kubectl reads as YAML) with `stringData`.
pub fn secret_manifest(name: &str, data: &[(&str, &str)]) -> String {
    let string_data: serde_json::Map<String, Value> = data
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned())))
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "type": "Opaque",
        "stringData": string_data,
    })
    .to_string()
}

/// A `losant.io/v1alpha1` object of `kind` named `name` with `spec` (JSON manifest text).
pub fn manifest(kind: &str, name: &str, spec: &Value) -> String {
    json!({
        "apiVersion": "losant.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": spec,
    })
    .to_string()
}

/// A `LosantApplication` manifest.
pub fn losant_application_manifest(
    name: &str,
    application_id: &str,
    api_url: &str,
    token_secret: &str,
    token_key: &str,
) -> String {
    manifest(
        "LosantApplication",
        name,
        &json!({
            "applicationId": application_id,
            "apiUrl": api_url,
            "tokenSecretRef": {"name": token_secret, "key": token_key},
        }),
    )
}

/// The manifests of `examples/`, pointed at `emulator`, its application and `token`.
pub fn example_manifests(emulator: &EmulatorProcess, token: &str) -> Vec<String> {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut files: Vec<_> = std::fs::read_dir(&examples)
        .expect("examples/ exists")
        .map(|e| e.expect("a directory entry").path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|file| {
            std::fs::read_to_string(file)
                .expect("an example")
                .replace("http://127.0.0.1:8787", emulator.base_url())
                .replace("575ec8687ae143cd83dc4a97", emulator.application_id())
                .replace("token: demo-token", &format!("token: {token}"))
        })
        .collect()
}

/// The API server's URL from the current kubeconfig, checked to be on loopback.
pub fn api_server_url() -> String {
    local_cluster_check().unwrap_or_else(|message| panic!("{message}"))
}

/// An `Integration` manifest with the given spec (which should include `applicationRef`).
pub fn integration_manifest(name: &str, spec: &Value) -> String {
    manifest("Integration", name, spec)
}

// ---------------------------------------------------------------------------------------------
// Waiting

/// Polls `f` every 200 ms until it returns true; panics with `what` after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Polls `f` every 200 ms until it returns `Some`; panics with `what` after `timeout`.
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = f() {
            return value;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The object `kind_name` (e.g. `integration/mqtt-1`) in `namespace`, or `None` if it does not
/// exist. Panics on any other kubectl failure.
pub fn get_object(namespace: &str, kind_name: &str) -> Option<Value> {
    let out = kubectl(&["get", kind_name, "-n", namespace, "-o", "json"]);
    if out.status.success() {
        return Some(serde_json::from_slice(&out.stdout).expect("kubectl get gives JSON"));
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("NotFound") || stderr.contains("not found") {
        None
    } else {
        panic!("kubectl get {kind_name} -n {namespace} failed:\n{stderr}");
    }
}

/// The condition of `type_` in an object's `status.conditions`, if any.
pub fn find_condition<'a>(object: &'a Value, type_: &str) -> Option<&'a Value> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

/// Polls (`kubectl get -o json`) until `kind_name` in `namespace` has condition `condition`
/// with `status` (`"True"`, `"False"`, `"Unknown"`), and returns the object. On timeout it
/// panics with the object's last status, so the failure says what state it was stuck in.
pub fn wait_for_condition(
    namespace: &str,
    kind_name: &str,
    condition: &str,
    status: &str,
    timeout: Duration,
) -> Value {
    let deadline = Instant::now() + timeout;
    let mut last: Option<Value> = None;
    loop {
        if let Some(object) = get_object(namespace, kind_name) {
            if find_condition(&object, condition).is_some_and(|c| c["status"] == status) {
                return object;
            }
            last = Some(object);
        }
        if Instant::now() >= deadline {
            let observed = match &last {
                Some(object) => format!(
                    "generation {}, status:\n{}",
                    object["metadata"]["generation"],
                    serde_json::to_string_pretty(&object["status"]).unwrap_or_default()
                ),
                None => "the object never existed".to_owned(),
            };
            panic!(
                "timed out after {timeout:?} waiting for {kind_name} in {namespace} to have \
                 condition {condition}={status}; last observed {observed}"
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

// ---------------------------------------------------------------------------------------------
// Child processes

fn log_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-logs");
    std::fs::create_dir_all(&dir).expect("log directory can be created");
    dir
}

/// A fresh log file path: `<prefix>-<pid>-<n>.log` under the e2e log directory.
fn new_log_path(prefix: &str) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    log_dir().join(format!("{prefix}-{}-{n}.log", std::process::id()))
}

fn read_lossy(path: &Path) -> String {
    let mut bytes = Vec::new();
    if let Ok(mut f) = File::open(path) {
        let _ = f.read_to_end(&mut bytes);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A random Losant-style object id (24 hexadecimal characters).
pub fn random_object_id() -> String {
    format!("{:024x}", rand::random::<u128>() >> 32)
}

/// The runtime that carries the harness's HTTP calls, separate from any runtime of the test.
fn http_runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("HTTP runtime starts")
    })
}

/// Runs `future` to completion on the private runtime. Unlike `block_on`, this also works when
/// the caller is itself inside a Tokio runtime (an async test).
fn run_blocking<T: Send + 'static>(future: impl Future<Output = T> + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    http_runtime().spawn(async move {
        let _ = tx.send(future.await);
    });
    rx.recv().expect("HTTP task finishes")
}

/// A reqwest client with rustls' ring provider installed (as the crate's clients expect).
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("HTTP client builds")
}

/// A running `losant-emulator` on an ephemeral loopback port, killed on drop.
pub struct EmulatorProcess {
    child: Child,
    base_url: String,
    token: String,
    application_id: String,
    log_path: PathBuf,
    client: reqwest::Client,
}

impl EmulatorProcess {
    /// Starts the emulator with token [`EMULATOR_TOKEN`] and one random application, plus
    /// `extra_args` (e.g. `&["--latency-ms", "50"]`), and waits for its listening line.
    pub fn start(extra_args: &[&str]) -> EmulatorProcess {
        let application_id = random_object_id();
        let log_path = new_log_path("emulator");
        let log = File::create(&log_path).expect("emulator log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_losant-emulator"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--token",
                EMULATOR_TOKEN,
                "--application",
                &application_id,
            ])
            .args(extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("losant-emulator starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        // The first stdout line names the address; the thread keeps draining stdout afterwards
        // so the emulator never blocks or dies on a closed pipe.
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            for _ in lines {}
        });
        let first = rx.recv_timeout(Duration::from_secs(30));
        let base_url = match first {
            Ok(Some(Ok(ref line))) => line
                .trim()
                .strip_prefix("losant-emulator listening on ")
                .map(str::to_owned),
            _ => None,
        };
        let Some(base_url) = base_url else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "losant-emulator did not report its address (got {first:?}); its log:\n{}",
                read_lossy(&log_path)
            );
        };
        EmulatorProcess {
            child,
            base_url,
            token: EMULATOR_TOKEN.to_owned(),
            application_id,
            log_path,
            client: http_client(),
        }
    }

    /// Stops the emulator and starts it again on the same address, for the same application and
    /// with token [`EMULATOR_TOKEN`], plus `extra_args` in place of the first start's: e.g. without
    /// one of its `--token`s, to revoke that token. Pass the same `--state-file` to keep the
    /// integrations. The log continues in the same file; the request counters start from zero.
    pub fn restart_with(&mut self, extra_args: &[&str]) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let listen = self
            .base_url
            .split_once("://")
            .map_or(self.base_url.as_str(), |(_, address)| address)
            .to_owned();
        // The old socket may take a moment to free the port.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let log = OpenOptions::new()
                .append(true)
                .open(&self.log_path)
                .expect("emulator log file");
            let mut child = Command::new(env!("CARGO_BIN_EXE_losant-emulator"))
                .args([
                    "--listen",
                    &listen,
                    "--token",
                    EMULATOR_TOKEN,
                    "--application",
                    &self.application_id,
                ])
                .args(extra_args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::from(log))
                .spawn()
                .expect("losant-emulator starts");
            let stdout = child.stdout.take().expect("stdout is piped");
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                let mut lines = BufReader::new(stdout).lines();
                let _ = tx.send(lines.next());
                for _ in lines {}
            });
            if let Ok(Some(Ok(line))) = rx.recv_timeout(Duration::from_secs(30))
                && line.contains("listening on")
            {
                self.child = child;
                return;
            }
            let _ = child.kill();
            let _ = child.wait();
            if Instant::now() >= deadline {
                panic!(
                    "losant-emulator did not restart on {listen}; its log:\n{}",
                    tail(&read_lossy(&self.log_path), 40)
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// `http://127.0.0.1:PORT`, the value for a `LosantApplication`'s `apiUrl`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    pub fn application_id(&self) -> &str {
        &self.application_id
    }

    /// The emulator's stderr (its request log).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    pub fn logs(&self) -> String {
        read_lossy(&self.log_path)
    }

    /// `/applications/<app>/integrations`.
    pub fn integrations_path(&self) -> String {
        format!("/applications/{}/integrations", self.application_id)
    }

    /// `/applications/<app>/integrations/<id>`.
    pub fn integration_path(&self, id: &str) -> String {
        format!("{}/{id}", self.integrations_path())
    }

    /// `GET /_emulator/stats`.
    pub fn stats(&self) -> Value {
        let (status, body) = self.get("/_emulator/stats");
        assert_eq!(status, StatusCode::OK, "stats: {body}");
        body
    }

    /// Every integration of the application, straight from the emulator.
    pub fn list_integrations(&self) -> Vec<Value> {
        let path = format!("{}?perPage=1000&_links=false", self.integrations_path());
        let (status, body) = self.get(&path);
        assert_eq!(status, StatusCode::OK, "list: {body}");
        body["items"].as_array().cloned().unwrap_or_default()
    }

    /// Creates an integration behind the operator's back; returns the stored object.
    pub fn create_integration(&self, body: &Value) -> Value {
        let (status, created) = self.post(&self.integrations_path(), body);
        assert_eq!(status, StatusCode::CREATED, "create: {created}");
        created
    }

    pub fn get(&self, path: &str) -> (StatusCode, Value) {
        self.request(Method::GET, path, None)
    }

    pub fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.request(Method::POST, path, Some(body))
    }

    pub fn patch(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.request(Method::PATCH, path, Some(body))
    }

    pub fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.request(Method::DELETE, path, None)
    }

    /// Sends a request with the emulator's token. `path` is relative to [`Self::base_url`] (or a
    /// full URL). Returns the status and the JSON body (`Null` when empty, a string when not
    /// JSON).
    pub fn request(&self, method: Method, path: &str, body: Option<&Value>) -> (StatusCode, Value) {
        let url = if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base_url)
        };
        let mut request = self
            .client
            .request(method.clone(), &url)
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let result = run_blocking(async move {
            let response = request.send().await?;
            let status = response.status();
            let text = response.text().await?;
            Ok::<_, reqwest::Error>((status, text))
        });
        let (status, text) = result.unwrap_or_else(|e| panic!("{method} {url} failed: {e}"));
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }
}

impl Drop for EmulatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `losant-operator run --namespace NS ...`, with its output in a log file; killed
/// (SIGKILL) on drop.
pub struct OperatorProcess {
    child: Option<Child>,
    namespace: String,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    log_path: PathBuf,
}

impl OperatorProcess {
    /// Starts the operator for `namespace` with a 3 s resync and text logs, plus `extra_args`.
    pub fn start(namespace: &str, extra_args: &[&str]) -> OperatorProcess {
        OperatorProcess::start_with_env(namespace, extra_args, &[])
    }

    /// Like [`OperatorProcess::start`] with extra environment variables.
    pub fn start_with_env(
        namespace: &str,
        extra_args: &[&str],
        envs: &[(&str, &str)],
    ) -> OperatorProcess {
        let mut args: Vec<String> = ["run", "--namespace", namespace, "--log-format", "text"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        // A fast resync unless the test asks for its own.
        if !extra_args.contains(&"--resync-interval") {
            args.extend(["--resync-interval".to_owned(), "3s".to_owned()]);
        }
        // Parallel tests each run an operator: give each its own free metrics port.
        if !extra_args.contains(&"--metrics-addr") {
            args.extend(["--metrics-addr".to_owned(), "127.0.0.1:0".to_owned()]);
        }
        // The emulator listens on plain http on 127.0.0.1, which the operator refuses by default.
        if !extra_args.contains(&"--allowed-http-hosts") {
            args.extend(["--allowed-http-hosts".to_owned(), "127.0.0.1".to_owned()]);
        }
        args.extend(extra_args.iter().map(|s| (*s).to_owned()));
        let log_path = new_log_path(&format!("operator-{namespace}"));
        register_log(namespace, "operator", &log_path);
        let mut operator = OperatorProcess {
            child: None,
            namespace: namespace.to_owned(),
            args,
            envs: envs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            log_path,
        };
        operator.spawn();
        operator
    }

    fn spawn(&mut self) {
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("operator log file");
        let _ = writeln!(
            log,
            "---- harness: starting losant-operator {}",
            self.args.join(" ")
        );
        let stderr = log.try_clone().expect("log file handle");
        let child = Command::new(operator_binary())
            .args(&self.args)
            .env("RUST_LOG", "info,losant_operator=debug")
            .envs(self.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(stderr))
            .spawn()
            .expect("losant-operator starts");
        operator_pids()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(self.namespace.clone())
            .or_default()
            .push(child.id());
        self.child = Some(child);
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Everything the operator wrote so far, across restarts.
    pub fn logs(&self) -> String {
        read_lossy(&self.log_path)
    }

    /// Waits until the log contains `needle`; panics with the log's tail on timeout.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.logs().contains(needle) {
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {needle:?} in the operator log; its \
                     last lines:\n{}",
                    tail(&self.logs(), 60)
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }

    /// SIGKILL and reap (a crash, as far as the cluster and Losant can tell).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits up to `timeout` for a graceful exit (SIGKILL after that). Returns the
    /// exit status if it exited by itself.
    pub fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the process and starts it again with the same arguments; the log continues.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
