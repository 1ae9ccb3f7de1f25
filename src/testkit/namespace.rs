//! A namespace of its own for each test ([`TestNamespace`]): created with a random name,
//! reported on when the test fails (objects, events, process logs), and cleaned up after it.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

use serde_json::json;

use super::emulator::EmulatorProcess;
use super::kubectl::{
    apply_secret, create_secret, kubectl, kubectl_apply_yaml, kubectl_with_stdin,
};
use super::logs::{read_lossy, tail};
use super::manifests::losant_application_manifest;

/// Label put on every namespace the tests create, to find leftovers:
/// `kubectl get ns -l losant-operator-e2e=true`.
pub const NAMESPACE_LABEL: &str = "losant-operator-e2e";
/// How much of a process log a failing test prints.
const LOG_TAIL_LINES: usize = 400;

/// Process logs to print when a test in a namespace fails: namespace -> [(label, file)].
type LogRegistry = Mutex<BTreeMap<String, Vec<(String, PathBuf)>>>;

fn log_registry() -> &'static LogRegistry {
    static LOGS: OnceLock<LogRegistry> = OnceLock::new();
    LOGS.get_or_init(Default::default)
}

/// Registers a log file to print if a test using `namespace` fails. [`OperatorProcess`] does this
/// itself; use it for emulators and anything else.
///
/// [`OperatorProcess`]: super::operator::OperatorProcess
pub fn register_log(namespace: &str, label: &str, path: &Path) {
    log_registry()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(namespace.to_owned())
        .or_default()
        .push((label.to_owned(), path.to_owned()));
}

/// Operator processes started for each namespace, so the namespace's cleanup can stop them
/// first: a running operator would put its finalizers back on objects the cleanup strips.
fn operator_pids() -> &'static Mutex<BTreeMap<String, Vec<u32>>> {
    static PIDS: OnceLock<Mutex<BTreeMap<String, Vec<u32>>>> = OnceLock::new();
    PIDS.get_or_init(Default::default)
}

/// Records an operator process watching `namespace`, to be killed when its test namespace goes.
pub(super) fn register_operator(namespace: &str, pid: u32) {
    operator_pids()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(namespace.to_owned())
        .or_default()
        .push(pid);
}

thread_local! {
    static PANIC_MESSAGE: RefCell<Option<String>> = const { RefCell::new(None) };
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

/// A namespace of its own for one test, deleted when dropped (unless `LOSANT_E2E_KEEP=1`).
/// When the test is failing, the drop first prints the namespace's objects, events and the
/// registered process logs to stderr.
pub struct TestNamespace {
    name: String,
}

impl TestNamespace {
    /// Creates `<prefix>-<random>` labelled `losant-operator-e2e=true`.
    ///
    /// # Panics
    /// When the API server refuses it.
    pub fn new(prefix: &str) -> TestNamespace {
        remember_panic_messages();
        let prefix = name_prefix(prefix);
        for _ in 0..3 {
            let name = format!("{prefix}-{:08x}", rand::random::<u32>());
            match create_namespace(&name) {
                Ok(()) => return TestNamespace { name },
                Err(e) if format!("{e:#}").contains("AlreadyExists") => {}
                Err(e) => panic!("{e:#}"),
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

    /// Like [`TestNamespace::apply`].
    ///
    /// # Panics
    /// With kubectl's stderr, when it is refused.
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
        let all = "all,integrations,losantapplications,events";
        for args in [
            ["get", all, "-n", ns, "-o", "wide"],
            [
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

    /// Stops the namespace's operators, then deletes it (see [`delete_namespace`]).
    fn clean_up(&self) {
        let ns = self.name.as_str();
        let pids = operator_pids()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(ns)
            .unwrap_or_default();
        for pid in pids {
            // The test is over; its operators go first (an exited one's pid is not reused this
            // quickly, and `kill` of a gone process is harmless).
            Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(Stdio::null())
                .status()
                .ok();
        }
        delete_namespace(ns);
    }
}

/// Creates the namespace `name`, labelled [`NAMESPACE_LABEL`] so leftovers can be found. The
/// error carries kubectl's stderr (`AlreadyExists` when the name is taken).
pub fn create_namespace(name: &str) -> anyhow::Result<()> {
    let manifest = json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {NAMESPACE_LABEL: "true"}},
    });
    let out = kubectl_with_stdin(&["create", "-f", "-"], &manifest.to_string());
    if !out.status.success() {
        anyhow::bail!(
            "creating namespace {name} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Deletes the namespace `name` without waiting, and strips the finalizers that would keep it
/// Terminating; call it once the operators watching it are stopped (a running one would put
/// its finalizers back). Failures are ignored: what is left over carries [`NAMESPACE_LABEL`].
pub fn delete_namespace(name: &str) {
    kubectl(&["delete", "namespace", name, "--wait=false"]);
    // Without a running operator, finalizers on our objects would keep the namespace in
    // Terminating forever; whoever deletes it is done with them.
    let names = kubectl(&[
        "get",
        "integrations.losant.io,losantapplications.losant.io,secrets",
        "-n",
        name,
        "-o",
        "jsonpath={range .items[?(@.metadata.finalizers)]}{.kind}/{.metadata.name}{\"\\n\"}{end}",
        "--ignore-not-found",
    ]);
    for object in String::from_utf8_lossy(&names.stdout).lines() {
        kubectl(&[
            "patch",
            object,
            "-n",
            name,
            "--type=merge",
            "-p",
            r#"{"metadata":{"finalizers":null}}"#,
        ]);
    }
}

/// `prefix` as the start of a namespace name: lower case, other characters as `-`, at most 40.
fn name_prefix(prefix: &str) -> String {
    let mut prefix: String = prefix
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    prefix.truncate(40);
    let prefix = prefix.trim_matches('-');
    if prefix.is_empty() { "e2e" } else { prefix }.to_owned()
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
        self.clean_up();
    }
}
