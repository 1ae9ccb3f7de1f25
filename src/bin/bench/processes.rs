//! The processes a run starts and stops (the emulator, the operator, kubectl for the CRDs) and
//! the control plane's own, found by their pid files: every process the benchmark touches goes
//! through here, so this is the one place to swap for shared test support.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};

use crate::RunArgs;
use crate::fleet::OPERATOR_TOKEN;
use crate::observe::BENCH_TOKEN;

/// A child process, killed if it still runs when dropped.
pub struct Process {
    child: Child,
    name: &'static str,
}

impl Process {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How it ended, if it has.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        match self.child.try_wait() {
            Ok(status) => status,
            Err(error) => {
                eprintln!("bench: cannot tell whether {} runs: {error}", self.name);
                None
            }
        }
    }

    /// SIGTERM (the operator shuts down gracefully), then SIGKILL after 10 s.
    pub fn terminate(&mut self) {
        // A kill that finds the process gone fails; the wait below tells that apart.
        if let Err(error) = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
        {
            eprintln!("bench: cannot run kill for {}: {error}", self.name);
        }
        for _ in 0..100 {
            if self.exit_status().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.kill();
        eprintln!("bench: {} did not stop on SIGTERM; killed", self.name);
    }

    fn kill(&mut self) {
        if let Err(error) = self.child.kill() {
            eprintln!("bench: cannot kill {}: {error}", self.name);
        }
        if let Err(error) = self.child.wait() {
            eprintln!("bench: cannot reap {}: {error}", self.name);
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.exit_status().is_none() {
            self.kill();
        }
    }
}

/// The running emulator and the URL it serves.
pub struct Emulator {
    pub process: Process,
    pub url: String,
}

/// Starts the emulator with the operator's and the benchmark's tokens and `apps`, on a free
/// port, and reads the address it announces.
pub fn start_emulator(args: &RunArgs, apps: &[String]) -> anyhow::Result<Emulator> {
    let mut command = Command::new(args.bin_dir.join("losant-emulator"));
    command.args([
        "--listen",
        "127.0.0.1:0",
        "--token",
        OPERATOR_TOKEN,
        "--token",
        BENCH_TOKEN,
        "--latency-ms",
        &args.latency_ms.to_string(),
        "--rate-limit",
        &args.rate_limit.to_string(),
    ]);
    for app in apps {
        command.args(["--application", app]);
    }
    let log = std::fs::File::create(args.log_dir.join("emulator.log"))?;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .context("starting losant-emulator (build it with cargo build --release --bins)")?;
    let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
    let process = Process {
        child,
        name: "losant-emulator",
    };
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let address = line
        .trim()
        .rsplit(' ')
        .next()
        .ok_or_else(|| anyhow!("unexpected emulator output {line:?}"))?;
    let url = if address.starts_with("http") {
        address.to_owned()
    } else {
        format!("http://{address}")
    };
    Ok(Emulator { process, url })
}

/// Which start of the operator: its log file, and whether `--restart-wrapper` applies.
#[derive(Clone, Copy)]
pub enum OperatorStart {
    /// With every object new.
    Cold,
    /// With every object present and converged.
    Restart,
}

/// Starts the operator on the run's namespace, serving metrics on `metrics_port`; returns it
/// with the moment it was started.
pub fn start_operator(
    args: &RunArgs,
    metrics_port: u16,
    start: OperatorStart,
) -> anyhow::Result<(Process, Instant)> {
    let log_name = match start {
        OperatorStart::Cold => "operator.log",
        OperatorStart::Restart => "operator-restart.log",
    };
    let log = std::fs::File::create(args.log_dir.join(log_name))?;
    let started = Instant::now();
    let binary = args.bin_dir.join("losant-operator");
    let mut command = match (&args.restart_wrapper, start) {
        (Some(wrapper), OperatorStart::Restart) => {
            let mut command = Command::new(wrapper);
            command.arg(&binary);
            command
        }
        _ => Command::new(&binary),
    };
    let child = command
        .args([
            "run",
            "--namespace",
            &args.namespace,
            "--sync-strategy",
            &args.strategy,
            "--resync-interval",
            &format!("{}s", args.resync_seconds),
            "--losant-rate-limit",
            &args.rate_limit.to_string(),
            "--allowed-http-hosts",
            "127.0.0.1",
            "--metrics-addr",
            &format!("127.0.0.1:{metrics_port}"),
            "--log-format",
            "text",
            "--log-level",
            &args.operator_log_level,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log))
        .spawn()
        .context("starting losant-operator")?;
    let process = Process {
        child,
        name: "losant-operator",
    };
    Ok((process, started))
}

/// A loopback port free at the moment of asking.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Applies the CRDs `losant-operator crds` prints (with the binaries in `bin_dir`) and waits
/// until they are established.
pub fn install_crds(bin_dir: &Path) -> anyhow::Result<()> {
    let crds = Command::new(bin_dir.join("losant-operator"))
        .arg("crds")
        .output()?;
    if !crds.status.success() {
        bail!("losant-operator crds failed");
    }
    let mut apply = Command::new("kubectl")
        .args(["apply", "--server-side", "--force-conflicts", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()?;
    {
        // Closed at the end of this block, so kubectl sees the end of its input.
        let mut stdin = apply.stdin.take().ok_or_else(|| anyhow!("no stdin"))?;
        stdin.write_all(&crds.stdout)?;
    }
    if !apply.wait()?.success() {
        bail!("kubectl apply of the CRDs failed");
    }
    let status = Command::new("kubectl")
        .args([
            "wait",
            "--for=condition=Established",
            "crd/integrations.losant.io",
            "crd/losantapplications.losant.io",
            "--timeout=60s",
        ])
        .stdout(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("the CRDs were not established");
    }
    Ok(())
}

/// kube-apiserver and etcd of the control plane scripts/control-plane.sh started, by the pid
/// files in $LOSANT_CP_DIR (empty when there are none).
pub fn control_plane_pids() -> Vec<(String, u32)> {
    let Ok(dir) = std::env::var("LOSANT_CP_DIR") else {
        return Vec::new();
    };
    ["apiserver", "etcd"]
        .into_iter()
        .filter_map(|name| {
            let pid = std::fs::read_to_string(Path::new(&dir).join(format!("{name}.pid")))
                .ok()?
                .trim()
                .parse()
                .ok()?;
            Some((name.to_owned(), pid))
        })
        .collect()
}
