//! A `losant-operator run` child process ([`OperatorProcess`]) with its output in a log file:
//! started, watched, crashed, stopped and restarted the way the tests need.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::audit::operator_kubeconfig;
use super::binaries::operator_binary;
use super::logs::{new_log_path, read_lossy, tail};
use super::namespace::{register_log, register_operator};

/// Flags the kit passes unless the caller passes them itself, with their values: a short
/// resync, text logs, a free metrics port (parallel tests each run an operator), and plain http
/// to the emulator on 127.0.0.1 (which the operator refuses by default).
const DEFAULT_FLAGS: [(&str, &str); 4] = [
    ("--resync-interval", "3s"),
    ("--log-format", "text"),
    ("--metrics-addr", "127.0.0.1:0"),
    ("--allowed-http-hosts", "127.0.0.1"),
];
/// The log filter unless the caller sets `RUST_LOG` or passes `--log-level`.
const DEFAULT_RUST_LOG: &str = "info,losant_operator=debug";

/// How to start an [`OperatorProcess`]; from [`OperatorProcess::builder`].
#[derive(Clone, Debug)]
pub struct OperatorBuilder {
    binary: PathBuf,
    wrapper: Option<PathBuf>,
    namespace: String,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    log_path: Option<PathBuf>,
}

impl OperatorBuilder {
    /// The binary to run (default: [`operator_binary`]).
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.binary = path.into();
        self
    }

    /// A program to start the binary through: `wrapper <binary> <arguments>` (e.g. one that
    /// records a profile).
    pub fn wrapper(mut self, program: impl Into<PathBuf>) -> Self {
        self.wrapper = Some(program.into());
        self
    }

    /// One more argument of `run`; a flag the kit passes by default
    /// (`--resync-interval`, `--log-format`, `--metrics-addr`, `--allowed-http-hosts`) replaces
    /// the kit's value.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// More arguments of `run`.
    pub fn args<S: Into<String>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// An environment variable of the process. Without a `KUBECONFIG` of the caller's, the
    /// operator runs as [`OPERATOR_USER`](super::audit::OPERATOR_USER) ([`operator_kubeconfig`]).
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.envs.push((name.into(), value.into()));
        self
    }

    /// The file for the operator's stdout and stderr, appended to (default: a new one in
    /// [`log_dir`](super::logs::log_dir)).
    pub fn log_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.log_path = Some(path.into());
        self
    }

    /// Starts the operator. Its log and process are registered with the namespace, for a
    /// [`TestNamespace`](super::namespace::TestNamespace) of that name to report and stop.
    pub fn start(self) -> anyhow::Result<OperatorProcess> {
        let namespace = self.namespace;
        let log_path = self
            .log_path
            .unwrap_or_else(|| new_log_path(&format!("operator-{namespace}")));
        register_log(&namespace, "operator", &log_path);
        let mut args: Vec<String> = ["run", "--namespace", namespace.as_str()]
            .map(str::to_owned)
            .to_vec();
        for (flag, value) in DEFAULT_FLAGS {
            if !names_flag(&self.args, flag) {
                args.extend([flag.to_owned(), value.to_owned()]);
            }
        }
        args.extend(self.args);
        let mut envs = self.envs;
        if !envs.iter().any(|(name, _)| name == "KUBECONFIG")
            && let Some(kubeconfig) = operator_kubeconfig()
        {
            envs.push(("KUBECONFIG".to_owned(), kubeconfig.display().to_string()));
        }
        if !names_flag(&args, "--log-level") && !envs.iter().any(|(name, _)| name == "RUST_LOG") {
            envs.insert(0, ("RUST_LOG".to_owned(), DEFAULT_RUST_LOG.to_owned()));
        }
        let mut operator = OperatorProcess {
            child: None,
            binary: self.binary,
            wrapper: self.wrapper,
            namespace,
            args,
            envs,
            log_path,
        };
        operator.spawn()?;
        Ok(operator)
    }
}

/// Whether `args` pass `flag` (`--flag value` or `--flag=value`).
fn names_flag(args: &[String], flag: &str) -> bool {
    args.iter().any(|arg| {
        arg == flag
            || arg
                .strip_prefix(flag)
                .is_some_and(|rest| rest.starts_with('='))
    })
}

/// A running `losant-operator run --namespace NS ...`, with its output in a log file; killed
/// (SIGKILL) on drop.
pub struct OperatorProcess {
    child: Option<Child>,
    binary: PathBuf,
    wrapper: Option<PathBuf>,
    namespace: String,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    log_path: PathBuf,
}

impl OperatorProcess {
    /// A builder for an operator watching `namespace`, with the kit's defaults
    /// (a 3 s resync, text logs, a free metrics port, http to 127.0.0.1, debug logs of the
    /// operator's own code, the identity [`OPERATOR_USER`](super::audit::OPERATOR_USER)).
    pub fn builder(namespace: &str) -> OperatorBuilder {
        OperatorBuilder {
            binary: operator_binary(),
            wrapper: None,
            namespace: namespace.to_owned(),
            args: Vec::new(),
            envs: Vec::new(),
            log_path: None,
        }
    }

    /// Starts the operator for `namespace` with the kit's defaults plus `extra_args`.
    ///
    /// # Panics
    /// When it cannot be started.
    pub fn start(namespace: &str, extra_args: &[&str]) -> OperatorProcess {
        OperatorProcess::start_with_env(namespace, extra_args, &[])
    }

    /// Like [`OperatorProcess::start`] with extra environment variables.
    ///
    /// # Panics
    /// When it cannot be started.
    pub fn start_with_env(
        namespace: &str,
        extra_args: &[&str],
        envs: &[(&str, &str)],
    ) -> OperatorProcess {
        let builder = envs.iter().fold(
            Self::builder(namespace).args(extra_args.iter().copied()),
            |builder, (name, value)| builder.env(*name, *value),
        );
        builder
            .start()
            .unwrap_or_else(|e| panic!("losant-operator did not start: {e:#}"))
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .with_context(|| format!("opening the operator log {}", self.log_path.display()))?;
        writeln!(
            log,
            "---- test kit: starting losant-operator {}",
            self.args.join(" ")
        )?;
        let stderr = log.try_clone()?;
        let mut command = match &self.wrapper {
            Some(wrapper) => {
                let mut command = Command::new(wrapper);
                command.arg(&self.binary);
                command
            }
            None => Command::new(&self.binary),
        };
        let child = command
            .args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(stderr))
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        register_operator(&self.namespace, child.id());
        self.child = Some(child);
        Ok(())
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

    /// Waits until the log contains `needle`.
    ///
    /// # Panics
    /// On timeout, with the log's tail.
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
            // It may have exited already; either way it is gone afterwards.
            child.kill().ok();
            child.wait().ok();
        }
    }

    /// SIGTERM, then waits up to `timeout` for a graceful exit (SIGKILL after that). Returns the
    /// exit status if it exited by itself.
    pub fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        // A failed `kill -TERM` (the process is gone) shows in the wait below.
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .ok();
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                child.kill().ok();
                child.wait().ok();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the process and starts it again with the same arguments; the log continues.
    ///
    /// # Panics
    /// When it cannot be started again.
    pub fn restart(&mut self) {
        self.kill();
        if let Err(e) = self.spawn() {
            panic!("losant-operator did not restart: {e:#}");
        }
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
