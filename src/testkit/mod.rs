//! The test kit: what the end-to-end tests (and the benchmark) need to drive a real API server
//! and the real binaries. Compiled only with the cargo feature `testkit`, which the package's
//! own tests turn on through a self dev-dependency (see Cargo.toml); nothing else in the crate
//! may use it (`tests/architecture.rs` checks).
//!
//! The tests drive the API server through `kubectl` and run `losant-operator` and
//! `losant-emulator` as child processes, so what they exercise is what a user runs.
//! `scripts/test.sh` starts a local control plane (`scripts/control-plane.sh up`) and sets
//! `LOSANT_E2E=1` and `KUBECONFIG`; without `LOSANT_E2E=1` every cluster test returns early and
//! says it was skipped ([`require_cluster!`](crate::require_cluster)).
//!
//! Safety: the kit refuses to run against an API server that is not on the loopback interface
//! unless `LOSANT_E2E_ALLOW_REMOTE=1`, so a stray `KUBECONFIG` never lets a test create or delete
//! namespaces in a real cluster.
//!
//! Everything here is blocking, so tests are plain `#[test]` functions; HTTP calls to the
//! emulator run on a private Tokio runtime and also work from inside an async test. Logs of
//! child processes go to files under `target/tmp/e2e-logs/` (see [`logs`]) and are kept after
//! the run. The helpers meant for tests panic, with the reason, when a step fails: that is how
//! a test fails. The process builders ([`EmulatorProcess::builder`],
//! [`OperatorProcess::builder`]), [`apply_crds`], [`create_namespace`], [`local_api_server_url`]
//! and [`EmulatorProcess::try_request`] return errors instead, for other programs.
//!
//! The operators run as a user of their own ([`audit::OPERATOR_USER`]), so the API server's
//! audit log tells their requests from the tests' own ([`audit`]).
//!
//! Environment knobs: `LOSANT_E2E_KEEP=1` keeps test namespaces instead of deleting them;
//! `LOSANT_OPERATOR_BIN` runs another operator binary (e.g. the release build).

pub mod audit;
pub mod binaries;
pub mod cluster;
pub mod control_plane;
pub mod emulator;
pub mod helm;
pub mod hostile;
pub mod kubectl;
pub mod logs;
pub mod manifests;
pub mod namespace;
pub mod node;
pub mod operator;
pub mod temp_dir;
pub mod wait;

pub use crate::{require_cluster, require_helm, require_nodes};
pub use audit::{OPERATOR_USER, audit_events_since, operator_kubeconfig, received_at};
pub use binaries::{emulator_binary, operator_binary, profile_dir};
pub use cluster::{
    CRD_NAMES, api_server_url, apply_crds, cluster_ready, e2e_enabled, install_crds,
    local_api_server_url,
};
pub use control_plane::{
    Component, ControlPlane, Outage, UncachedApiServer, control_plane_for_restarts,
};
pub use emulator::{EMULATOR_TOKEN, EmulatorBuilder, EmulatorProcess};
pub use hostile::{HostileServer, Misbehaviour};
pub use kubectl::{
    apply_secret, create_secret, get_object, kubectl, kubectl_apply_yaml, kubectl_apply_yaml_with,
    kubectl_dry_run_yaml, kubectl_json, kubectl_ok, kubectl_with_stdin,
};
pub use manifests::{
    example_manifests, integration_manifest, losant_application_manifest, manifest,
    random_object_id, secret_manifest,
};
pub use namespace::{
    NAMESPACE_LABEL, TestNamespace, create_namespace, delete_namespace, register_log,
};
pub use operator::{OperatorBuilder, OperatorProcess};
pub use temp_dir::TempDir;
pub use wait::{find_condition, wait_for, wait_for_condition, wait_until};
