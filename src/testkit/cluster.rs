//! The cluster the tests run against: whether end-to-end tests are on, that the API server is
//! this machine's own (loopback), and the CRDs installed on it.

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::kubectl::{kubectl, try_kubectl};

/// CRD names the operator installs.
pub const CRD_NAMES: [&str; 2] = [
    "crd/integrations.losant.io",
    "crd/losantapplications.losant.io",
];

/// Whether end-to-end tests are switched on (`LOSANT_E2E=1`).
pub fn e2e_enabled() -> bool {
    std::env::var("LOSANT_E2E").as_deref() == Ok("1")
}

/// True when the test may use the cluster; false (after printing why) when e2e tests are off.
/// Tests call it through [`require_cluster!`](crate::require_cluster).
///
/// # Panics
/// When e2e tests are on but `KUBECONFIG` leads somewhere other than this machine's loopback
/// interface (unless `LOSANT_E2E_ALLOW_REMOTE=1`), or when kubectl cannot read it.
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
#[macro_export]
macro_rules! require_cluster {
    () => {
        if !$crate::testkit::cluster::cluster_ready() {
            return;
        }
    };
}

/// The API server's URL from the current kubeconfig, checked to be on loopback.
///
/// # Panics
/// When it is not (see [`cluster_ready`]).
pub fn api_server_url() -> String {
    local_api_server_url().unwrap_or_else(|e| panic!("{e}"))
}

/// Like [`api_server_url`], with an error instead of a panic (for programs that are not tests:
/// the benchmark).
pub fn local_api_server_url() -> anyhow::Result<String> {
    local_cluster_check().map_err(anyhow::Error::msg)
}

/// The API server URL, checked once per process to be on loopback.
fn local_cluster_check() -> Result<String, String> {
    static CHECKED: OnceLock<Result<String, String>> = OnceLock::new();
    CHECKED.get_or_init(check_local_cluster).clone()
}

fn check_local_cluster() -> Result<String, String> {
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
    if is_loopback_url(&server) || std::env::var("LOSANT_E2E_ALLOW_REMOTE").as_deref() == Ok("1") {
        Ok(server)
    } else {
        Err(format!(
            "refusing to run end-to-end tests against {server}: it is not on 127.0.0.1 or \
             localhost, and these tests create and delete namespaces. Point KUBECONFIG at the \
             local control plane (scripts/control-plane.sh up), or set \
             LOSANT_E2E_ALLOW_REMOTE=1 if you really mean it."
        ))
    }
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

/// Applies `crds/` (server-side, forcing conflicts) once per process and waits until the CRDs
/// are Established and published. Idempotent, and safe to run from many processes at once.
///
/// # Panics
/// When the CRDs cannot be installed (see [`apply_crds`]).
pub fn install_crds() {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    if let Err(message) = INSTALLED.get_or_init(|| apply_crds().map_err(|e| format!("{e:#}"))) {
        panic!("{message}");
    }
}

/// Applies `crds/` (server-side, forcing conflicts) and waits until the CRDs are Established
/// and the API server's OpenAPI document describes both kinds.
pub fn apply_crds() -> anyhow::Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("crds");
    let dir = dir
        .to_str()
        .ok_or_else(|| anyhow::anyhow!("the crds/ path is not UTF-8"))?;
    let mut last_error = String::new();
    // Parallel test processes apply the same objects; the API server serializes the writes, but
    // an occasional conflict or a slow first request is retried rather than failing the test.
    for attempt in 1..=5 {
        let out = try_kubectl(&[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=losant-operator-e2e",
            "-f",
            dir,
        ])?;
        if out.status.success() {
            let mut args = vec!["wait", "--for", "condition=established", "--timeout=60s"];
            args.extend(CRD_NAMES);
            let out = try_kubectl(&args)?;
            if out.status.success() {
                return wait_for_openapi();
            }
            last_error = String::from_utf8_lossy(&out.stderr).into_owned();
        } else {
            last_error = String::from_utf8_lossy(&out.stderr).into_owned();
        }
        std::thread::sleep(Duration::from_millis(500 * attempt));
    }
    anyhow::bail!("installing the CRDs from {dir} failed:\n{last_error}")
}

/// Waits until the API server's OpenAPI document describes both kinds. It is published a moment
/// after the CRDs are Established; until then `kubectl explain` fails ("couldn't find resource")
/// and kubectl's client-side validation silently skips the kinds.
fn wait_for_openapi() -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut missing = Vec::new();
        for field in ["integrations.spec", "losantapplications.spec"] {
            let out = try_kubectl(&["explain", field])?;
            if !out.status.success() {
                missing.push(String::from_utf8_lossy(&out.stderr).into_owned());
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            anyhow::bail!(
                "the CRDs are Established but the OpenAPI document still lacks them after 60 s:\n{}",
                missing.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}
