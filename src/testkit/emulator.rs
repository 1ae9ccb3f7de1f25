//! A `losant-emulator` child process ([`EmulatorProcess`]) on a loopback port, and blocking
//! HTTP calls to it that work from plain and async tests alike.

use std::fs::{File, OpenOptions};
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{OnceLock, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::binaries::emulator_binary;
use super::logs::{new_log_path, read_lossy, tail};
use super::manifests::random_object_id;

/// Token the emulator accepts (full access) unless a test passes more with `--token`.
pub const EMULATOR_TOKEN: &str = "e2e-token";
/// The first line the emulator prints, before its address.
const LISTENING_LINE: &str = "losant-emulator listening on ";
/// How long the emulator may take to print that line.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How to start an [`EmulatorProcess`]; from [`EmulatorProcess::builder`].
#[derive(Clone, Debug)]
pub struct EmulatorBuilder {
    binary: PathBuf,
    listen: String,
    token: String,
    application_id: String,
    args: Vec<String>,
    log_path: Option<PathBuf>,
}

impl EmulatorBuilder {
    /// The binary to run (default: [`emulator_binary`]).
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.binary = path.into();
        self
    }

    /// The `--listen` address (default `127.0.0.1:0`, a free port).
    pub fn listen(mut self, address: impl Into<String>) -> Self {
        self.listen = address.into();
        self
    }

    /// The first `--token`, the one the process's own requests use (default [`EMULATOR_TOKEN`]).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = token.into();
        self
    }

    /// The first `--application`, the one the process's helpers address (default: a random id).
    pub fn application(mut self, id: impl Into<String>) -> Self {
        self.application_id = id.into();
        self
    }

    /// One more argument, after those above (e.g. `--latency-ms`, a second `--token`).
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// More arguments, after those above.
    pub fn args<S: Into<String>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// The file for the emulator's stderr, its request log (default: a new one in
    /// [`log_dir`](super::logs::log_dir)).
    pub fn log_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.log_path = Some(path.into());
        self
    }

    /// Starts the emulator and waits until it says where it listens.
    pub fn start(self) -> anyhow::Result<EmulatorProcess> {
        let log_path = self.log_path.unwrap_or_else(|| new_log_path("emulator"));
        let log = File::create(&log_path)
            .with_context(|| format!("creating the emulator log {}", log_path.display()))?;
        let fixed = fixed_args(&self.listen, &self.token, &self.application_id);
        let (child, base_url) = spawn_listening(&self.binary, &fixed, &self.args, log)
            .map_err(|e| anyhow!("{e:#}; its log:\n{}", read_lossy(&log_path)))?;
        let client = http_client()?;
        Ok(EmulatorProcess {
            child,
            binary: self.binary,
            base_url,
            token: self.token,
            application_id: self.application_id,
            log_path,
            client,
        })
    }
}

/// A running `losant-emulator` on a loopback port, killed on drop.
pub struct EmulatorProcess {
    child: Child,
    binary: PathBuf,
    base_url: String,
    token: String,
    application_id: String,
    log_path: PathBuf,
    client: reqwest::Client,
}

impl EmulatorProcess {
    /// A builder with the defaults: the binary cargo built, a free loopback port, token
    /// [`EMULATOR_TOKEN`], one random application, a new log file.
    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder {
            binary: emulator_binary(),
            listen: "127.0.0.1:0".to_owned(),
            token: EMULATOR_TOKEN.to_owned(),
            application_id: random_object_id(),
            args: Vec::new(),
            log_path: None,
        }
    }

    /// Starts the emulator with the [`builder`](Self::builder)'s defaults plus `extra_args`
    /// (e.g. `&["--latency-ms", "50"]`).
    ///
    /// # Panics
    /// When it does not start, with its log.
    pub fn start(extra_args: &[&str]) -> EmulatorProcess {
        Self::builder()
            .args(extra_args.iter().copied())
            .start()
            .unwrap_or_else(|e| panic!("losant-emulator did not start: {e:#}"))
    }

    /// Stops the emulator and starts it again on the same address, for the same application and
    /// token, with `extra_args` in place of the first start's: e.g. without one of its
    /// `--token`s, to revoke that token. Pass the same `--state-file` to keep the integrations.
    /// The log continues in the same file; the request counters start from zero.
    ///
    /// # Panics
    /// When it does not start again within 30 s.
    pub fn restart_with(&mut self, extra_args: &[&str]) {
        self.stop();
        let listen = self
            .base_url
            .split_once("://")
            .map_or(self.base_url.as_str(), |(_, address)| address)
            .to_owned();
        let fixed = fixed_args(&listen, &self.token, &self.application_id);
        let extra: Vec<String> = extra_args.iter().map(|a| (*a).to_owned()).collect();
        // The old socket may take a moment to free the port.
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let started = OpenOptions::new()
                .append(true)
                .open(&self.log_path)
                .context("opening the emulator log")
                .and_then(|log| spawn_listening(&self.binary, &fixed, &extra, log));
            match started {
                Ok((child, _)) => {
                    self.child = child;
                    return;
                }
                Err(e) if Instant::now() >= deadline => panic!(
                    "losant-emulator did not restart on {listen} ({e:#}); its log:\n{}",
                    tail(&self.logs(), 40)
                ),
                Err(_) => std::thread::sleep(Duration::from_millis(250)),
            }
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

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
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
    ///
    /// # Panics
    /// Unless it answers 200.
    pub fn stats(&self) -> Value {
        let (status, body) = self.get("/_emulator/stats");
        assert_eq!(status, StatusCode::OK, "stats: {body}");
        body
    }

    /// Every integration of the application, straight from the emulator.
    ///
    /// # Panics
    /// Unless the list answers 200.
    pub fn list_integrations(&self) -> Vec<Value> {
        let path = format!("{}?perPage=1000&_links=false", self.integrations_path());
        let (status, body) = self.get(&path);
        assert_eq!(status, StatusCode::OK, "list: {body}");
        body["items"].as_array().cloned().unwrap_or_default()
    }

    /// Creates an integration behind the operator's back; returns the stored object.
    ///
    /// # Panics
    /// Unless the create answers 201.
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
    ///
    /// # Panics
    /// When no answer arrives.
    pub fn request(&self, method: Method, path: &str, body: Option<&Value>) -> (StatusCode, Value) {
        self.try_request(method, path, body)
            .unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// Like [`Self::request`], with an error instead of a panic when no answer arrives (for
    /// programs that are not tests).
    pub fn try_request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
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
        let (status, text) = result.with_context(|| format!("{method} {url} failed"))?;
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok((status, value))
    }

    /// Kills and reaps the process; it may already be gone, which is all this is for.
    fn stop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

impl Drop for EmulatorProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `--listen`, the first `--token` and the first `--application`.
fn fixed_args(listen: &str, token: &str, application_id: &str) -> Vec<String> {
    [
        "--listen",
        listen,
        "--token",
        token,
        "--application",
        application_id,
    ]
    .map(str::to_owned)
    .to_vec()
}

/// Starts `binary` with `fixed` and `extra` arguments, stderr into `log`, and waits for its
/// listening line: the child and the URL it names. A thread keeps draining stdout afterwards
/// so the emulator never blocks or dies on a closed pipe.
fn spawn_listening(
    binary: &Path,
    fixed: &[String],
    extra: &[String],
    log: File,
) -> anyhow::Result<(Child, String)> {
    let mut child = Command::new(binary)
        .args(fixed)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let stdout = child.stdout.take().context("the emulator's stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        // The receiver may have given up waiting; then nobody needs the line.
        tx.send(lines.next()).ok();
        for _ in lines {}
    });
    let first = rx.recv_timeout(START_TIMEOUT);
    let address = match &first {
        Ok(Some(Ok(line))) => line.trim().strip_prefix(LISTENING_LINE).map(str::to_owned),
        _ => None,
    };
    match address {
        Some(address) => Ok((child, address)),
        None => {
            // It failed to start; what it printed is the error, the process is of no use.
            child.kill().ok();
            child.wait().ok();
            Err(anyhow!(
                "{} did not report its address (got {first:?})",
                binary.display()
            ))
        }
    }
}

/// A reqwest client with rustls' ring provider installed (as the crate's clients expect).
fn http_client() -> anyhow::Result<reqwest::Client> {
    // Installed already (by an earlier call or the test) is as good.
    rustls::crypto::ring::default_provider()
        .install_default()
        .ok();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .context("building the HTTP client")
}

/// The runtime that carries the kit's HTTP calls, separate from any runtime of the test.
fn http_runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("the test kit's HTTP runtime does not start: {e}"))
    })
}

/// Runs `future` to completion on the private runtime. Unlike `block_on`, this also works when
/// the caller is itself inside a Tokio runtime (an async test).
fn run_blocking<T: Send + 'static>(future: impl Future<Output = T> + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    http_runtime().spawn(async move {
        // The caller waits on the receiver below; it cannot be gone.
        tx.send(future.await).ok();
    });
    rx.recv()
        .unwrap_or_else(|_| panic!("the test kit's HTTP task ended without an answer"))
}
