//! The local control plane of `scripts/control-plane.sh`, one component at a time: etcd or the
//! API server killed (SIGKILL) and started again with exactly the flags `up` gave it, a second
//! API server without a watch cache, and etcd compacted. For the tests that prove the operator
//! survives its control plane; [`ControlPlane::current`] finds the one `KUBECONFIG` points at.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::cluster::api_server_url;

/// A component `scripts/control-plane.sh stop|start` knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Component {
    /// etcd; it keeps its data across a restart.
    Etcd,
    /// The API server `KUBECONFIG` points at.
    ApiServer,
    /// A second API server on the same etcd (on the first one's port + 1) without a watch cache:
    /// etcd serves its watches, so one resumed from a compacted revision gets `410 Gone`.
    UncachedApiServer,
    /// kube-controller-manager.
    ControllerManager,
}

impl Component {
    /// The script's name for it.
    pub fn script_name(self) -> &'static str {
        match self {
            Self::Etcd => "etcd",
            Self::ApiServer => "apiserver",
            Self::UncachedApiServer => "apiserver-uncached",
            Self::ControllerManager => "kcm",
        }
    }
}

/// The control plane `scripts/control-plane.sh up` started, addressed by its state directory and
/// port (so the script acts on this one, whatever `LOSANT_CP_*` the caller has set).
#[derive(Clone, Debug)]
pub struct ControlPlane {
    dir: PathBuf,
    port: u16,
}

impl ControlPlane {
    /// The control plane `KUBECONFIG` points at, when `scripts/control-plane.sh up` made it (the
    /// kubeconfig is the one in its state directory); `Err` says why not.
    pub fn current() -> Result<ControlPlane, String> {
        let kubeconfig = std::env::var_os("KUBECONFIG")
            .map(PathBuf::from)
            .ok_or("KUBECONFIG is not set")?;
        let dir = kubeconfig
            .parent()
            .filter(|_| {
                kubeconfig
                    .file_name()
                    .is_some_and(|name| name == "kubeconfig")
            })
            .filter(|dir| dir.join("bin").is_file() && dir.join("pki/tokens.csv").is_file())
            .ok_or_else(|| {
                format!(
                    "KUBECONFIG={} is not the kubeconfig of a control plane that \
                     scripts/control-plane.sh up started",
                    kubeconfig.display()
                )
            })?;
        let server = api_server_url();
        let port = url::Url::parse(&server)
            .ok()
            .and_then(|url| url.port())
            .ok_or_else(|| format!("no port in the API server URL {server}"))?;
        Ok(ControlPlane {
            dir: dir.to_owned(),
            port,
        })
    }

    /// The state directory (`LOSANT_CP_DIR`): PKI, pid files, `logs/`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The process id the script recorded for `component` (its pid file), if it has one.
    pub fn pid(&self, component: Component) -> Option<u32> {
        let file = self.dir.join(format!("{}.pid", component.script_name()));
        std::fs::read_to_string(file).ok()?.trim().parse().ok()
    }

    /// The log of `component`, which a restart continues.
    pub fn log_path(&self, component: Component) -> PathBuf {
        self.dir
            .join("logs")
            .join(format!("{}.log", component.script_name()))
    }

    /// SIGKILLs `component` (a crash) and returns an [`Outage`] that starts it again.
    pub fn kill(&self, component: Component) -> anyhow::Result<Outage<'_>> {
        self.script(&["stop", "--kill", component.script_name()])?;
        Ok(Outage {
            control_plane: self,
            component,
            started: Instant::now(),
            ended: false,
        })
    }

    /// Starts `component` (unless it runs) with the flags `up` gave it, and waits until it
    /// serves (etcd's `/health`, an API server's `/readyz`).
    pub fn start(&self, component: Component) -> anyhow::Result<()> {
        self.script(&["start", component.script_name()]).map(drop)
    }

    /// Stops `component` gracefully (SIGTERM).
    pub fn stop(&self, component: Component) -> anyhow::Result<()> {
        self.script(&["stop", component.script_name()]).map(drop)
    }

    /// Starts the [`Component::UncachedApiServer`], which runs until the returned value is
    /// dropped.
    pub fn start_uncached_api_server(&self) -> anyhow::Result<UncachedApiServer<'_>> {
        let out = self.script(&["start", Component::UncachedApiServer.script_name()])?;
        let kubeconfig = out
            .lines()
            .find_map(|line| line.strip_prefix("export KUBECONFIG="))
            .map(PathBuf::from)
            .with_context(|| format!("no kubeconfig in the script's output: {out}"))?;
        Ok(UncachedApiServer {
            control_plane: self,
            kubeconfig,
        })
    }

    /// Compacts etcd's history up to its current revision; returns that revision.
    pub fn compact_etcd(&self) -> anyhow::Result<u64> {
        let out = self.script(&["compact"])?;
        out.trim()
            .parse()
            .with_context(|| format!("no revision in the script's output: {out}"))
    }

    /// Whether every component `up` started runs and the API server is ready (`status`).
    pub fn is_up(&self) -> bool {
        self.script(&["status"]).is_ok()
    }

    fn script(&self, args: &[&str]) -> anyhow::Result<String> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/control-plane.sh");
        let out = Command::new(&script)
            .args(args)
            .env("LOSANT_CP_DIR", &self.dir)
            .env("LOSANT_CP_PORT", self.port.to_string())
            .output()
            .with_context(|| format!("running {}", script.display()))?;
        if !out.status.success() {
            bail!(
                "control-plane.sh {} failed ({}):\n{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// The control plane for a test that restarts parts of it, or `None` after printing why the test
/// is skipped (the cluster was not started by `scripts/control-plane.sh`). Call it after
/// [`require_cluster!`](crate::require_cluster).
pub fn control_plane_for_restarts() -> Option<ControlPlane> {
    match ControlPlane::current() {
        Ok(control_plane) => Some(control_plane),
        Err(why) => {
            let test = std::thread::current()
                .name()
                .unwrap_or("this test")
                .to_owned();
            eprintln!(
                "SKIPPED: {test} restarts control-plane components, which needs a control plane \
                 of scripts/control-plane.sh: {why}"
            );
            None
        }
    }
}

/// The [`Component::UncachedApiServer`] while it is wanted: stopped (SIGTERM) when dropped, so
/// the control plane is left as `up` made it.
pub struct UncachedApiServer<'a> {
    control_plane: &'a ControlPlane,
    kubeconfig: PathBuf,
}

impl UncachedApiServer<'_> {
    /// A kubeconfig that reaches this API server (for the operator's `KUBECONFIG`).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }
}

impl Drop for UncachedApiServer<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.control_plane.stop(Component::UncachedApiServer) {
            eprintln!("the uncached API server did not stop: {e:#}");
        }
    }
}

/// A component [`ControlPlane::kill`]ed: started again by [`Outage::end`], or when dropped, so a
/// failing test still leaves the control plane whole for the tests after it.
pub struct Outage<'a> {
    control_plane: &'a ControlPlane,
    component: Component,
    started: Instant,
    ended: bool,
}

impl Outage<'_> {
    /// Starts the component again and waits until it serves; returns how long it was gone.
    pub fn end(mut self) -> anyhow::Result<Duration> {
        self.ended = true;
        self.control_plane.start(self.component)?;
        Ok(self.started.elapsed())
    }
}

impl Drop for Outage<'_> {
    fn drop(&mut self) {
        if !self.ended
            && let Err(e) = self.control_plane.start(self.component)
        {
            eprintln!(
                "the control plane's {} did not start again: {e:#}",
                self.component.script_name()
            );
        }
    }
}
