//! End-to-end tests of the operations side of the operator, on the real API server: `/metrics`
//! counters that move with the work done, `/healthz`, `/readyz` that turns true only once every
//! watch cache synced, and leader election between two operator processes (exactly one
//! reconciles; SIGKILL it and the other takes over; SIGTERM hands the lease over at once).

use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use losant_operator::testkit::*;
use serde_json::{Value, json};

const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Election timings for the tests: short, and still with retry < renew deadline and
/// renew deadline + 2 × retry < lease.
const LEASE_SECONDS: u64 = 6;
const RETRY_SECONDS: u64 = 1;
const ELECTION_ARGS: [&str; 7] = [
    "--leader-elect",
    "--lease-duration",
    "6s",
    "--renew-deadline",
    "3s",
    "--retry-period",
    "1s",
];

/// An operator with its metrics server on a free loopback port.
struct Operator {
    process: OperatorProcess,
    metrics_url: String,
}

impl Operator {
    /// Starts an operator for `namespace` with identity `identity` (its `POD_NAME`) and
    /// `extra_args`, and waits for the address of its metrics server.
    fn start(namespace: &str, identity: &str, extra_args: &[&str]) -> Operator {
        Operator::start_with_env(namespace, identity, extra_args, &[])
    }

    fn start_with_env(
        namespace: &str,
        identity: &str,
        extra_args: &[&str],
        envs: &[(&str, &str)],
    ) -> Operator {
        let mut args = vec!["--metrics-addr", "127.0.0.1:0"];
        args.extend_from_slice(extra_args);
        let mut all_envs = vec![("POD_NAME", identity)];
        all_envs.extend_from_slice(envs);
        let process = OperatorProcess::start_with_env(namespace, &args, &all_envs);
        let addr = wait_for(
            Duration::from_secs(30),
            "the operator to log its metrics address",
            || metrics_addr_in(&process.logs()),
        );
        Operator {
            process,
            metrics_url: format!("http://{addr}"),
        }
    }

    /// `GET path` on the metrics server: status and body (`None` if it does not answer).
    fn get(&self, path: &str) -> Option<(u16, String)> {
        let url = format!("{}{path}", self.metrics_url);
        let out = std::process::Command::new("curl")
            .args(["-s", "-m", "5", "-w", "\n%{http_code}", &url])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n')?;
        let code: u16 = code.trim().parse().ok()?;
        (code != 0).then(|| (code, body.to_owned()))
    }

    fn metrics(&self) -> String {
        match self.get("/metrics") {
            Some((200, body)) => body,
            other => panic!("/metrics did not answer 200: {other:?}"),
        }
    }

    /// The value of the sample `series` (name and labels exactly as exposed), if present.
    fn sample(&self, series: &str) -> Option<f64> {
        sample(&self.metrics(), series)
    }

    /// The sum of every sample of `name` whose labels contain all of `labels`.
    fn sum(&self, name: &str, labels: &[&str]) -> f64 {
        sum(&self.metrics(), name, labels)
    }

    fn reconciles(&self, kind: &str) -> f64 {
        self.sum(
            "losant_operator_reconciles_total",
            &[&format!("kind=\"{kind}\"")],
        )
    }
}

/// `ADDR` from the first `metrics server listening on ADDR` line.
fn metrics_addr_in(log: &str) -> Option<String> {
    log.lines().find_map(|line| {
        let rest = line.split("metrics server listening on ").nth(1)?;
        let addr: String = rest
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '"')
            .collect();
        (!addr.is_empty()).then_some(addr)
    })
}

fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

fn sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let (labelset, value) = rest.rsplit_once(' ')?;
            labels
                .iter()
                .all(|l| labelset.contains(l))
                .then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

fn mqtt_spec(topic: &str) -> Value {
    json!({
        "applicationRef": {"name": "app"},
        "integrationType": "mqtt",
        "topics": [topic],
        "mqttConfig": {"host": "broker.example.com", "port": 8883, "protocol": "mqtts"},
    })
}

fn posts(emulator: &EmulatorProcess) -> u64 {
    emulator.stats()["requests"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter(|r| r["method"] == "POST")
                .filter_map(|r| r["count"].as_u64())
                .sum()
        })
        .unwrap_or(0)
}

fn lease_holder(namespace: &str) -> Option<String> {
    get_object(namespace, "lease/losant-operator")?["spec"]["holderIdentity"]
        .as_str()
        .filter(|h| !h.is_empty())
        .map(str::to_owned)
}

#[test]
fn metrics_count_reconciles_and_objects_and_health_answers() {
    require_cluster!();
    install_crds();
    let ns = TestNamespace::new("ops-metrics");
    let emulator = EmulatorProcess::start(&[]);
    ns.register_log("emulator", emulator.log_path());
    ns.install_application(&emulator, "app");
    let operator = Operator::start(ns.name(), "solo", &[]);

    assert_eq!(operator.get("/healthz").map(|(code, _)| code), Some(200));
    wait_until(READY_TIMEOUT, "/readyz to answer 200", || {
        operator.get("/readyz").is_some_and(|(code, _)| code == 200)
    });
    // Readiness is never reported before every cache said it synced (logged first): the two
    // controllers' own, and the Integration controller's LosantApplications and Secret
    // metadata.
    let synced = operator
        .process
        .logs()
        .matches("watch cache synced")
        .count();
    assert_eq!(synced, 4, "one line per cache before /readyz turns true");

    wait_for_condition(
        ns.name(),
        "losantapplication/app",
        "Ready",
        "True",
        READY_TIMEOUT,
    );
    let before = operator.reconciles("Integration");
    ns.apply_ok(&integration_manifest("metered", &mqtt_spec("a/b")));
    wait_for_condition(
        ns.name(),
        "integration/metered",
        "Ready",
        "True",
        READY_TIMEOUT,
    );
    wait_until(
        READY_TIMEOUT,
        "the Integration reconcile counter to grow",
        || operator.reconciles("Integration") > before,
    );
    assert!(operator.reconciles("LosantApplication") >= 1.0);
    assert!(
        operator.sum(
            "losant_operator_reconcile_duration_seconds_count",
            &["kind=\"Integration\""]
        ) >= 1.0
    );
    wait_until(READY_TIMEOUT, "the Ready gauge to count the object", || {
        operator.sample(r#"losant_operator_objects{kind="Integration",reason="Synced"}"#)
            == Some(1.0)
    });
    assert_eq!(operator.sample("losant_operator_leader"), Some(1.0));

    let text = operator.metrics();
    assert!(
        text.ends_with("# EOF\n"),
        "OpenMetrics text ends with # EOF"
    );
    assert!(
        !text.contains(ns.name()) && !text.contains("metered"),
        "no label carries a namespace or an object name"
    );
    // Every request to Losant is counted by operation and status: one object, one create.
    assert_eq!(
        sum(
            &text,
            "losant_operator_losant_requests_total",
            &["operation=\"create\"", "status=\"201\""]
        ),
        1.0
    );
    assert!(
        sum(
            &text,
            "losant_operator_losant_requests_total",
            &["operation=\"list\"", "status=\"200\""]
        ) >= 1.0,
        "the name lookup before the create is counted"
    );

    // A change made in Losant is reverted, and counted as a drift correction.
    let id =
        get_object(ns.name(), "integration/metered").expect("exists")["status"]["integrationId"]
            .as_str()
            .expect("integrationId")
            .to_owned();
    let (status, _) = emulator.patch(
        &emulator.integration_path(&id),
        &json!({"topics": ["drifted/+"]}),
    );
    assert_eq!(status.as_u16(), 200);
    wait_until(
        READY_TIMEOUT,
        "the drift to be corrected and counted",
        || operator.sample("losant_operator_drift_corrections_total") >= Some(1.0),
    );
}

/// `/readyz` stays 503 while the operator cannot reach the API server (its caches cannot sync)
/// and `/healthz` stays 200 meanwhile; once the API server is reachable, both caches sync and
/// `/readyz` turns 200. The API server is reached through a loopback proxy that holds every
/// connection until the test opens it.
#[test]
fn readyz_is_false_until_the_caches_sync() {
    require_cluster!();
    install_crds();
    let ns = TestNamespace::new("ops-ready");
    let proxy = GatedProxy::start(&api_server_addr());
    let kubeconfig = kubeconfig_via(&proxy.addr, ns.name());
    let kubeconfig_path = kubeconfig.to_str().expect("UTF-8 path");
    let operator =
        Operator::start_with_env(ns.name(), "readyz", &[], &[("KUBECONFIG", kubeconfig_path)]);
    for _ in 0..10 {
        assert_eq!(operator.get("/healthz").map(|(c, _)| c), Some(200));
        assert_eq!(
            operator.get("/readyz").map(|(c, _)| c),
            Some(503),
            "not ready before the caches synced"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(!operator.process.logs().contains("watch cache synced"));
    proxy.open();
    wait_until(READY_TIMEOUT, "/readyz to answer 200", || {
        operator.get("/readyz").is_some_and(|(code, _)| code == 200)
    });
    assert_eq!(
        operator
            .process
            .logs()
            .matches("watch cache synced")
            .count(),
        4,
        "every cache synced before /readyz turned true"
    );
}

/// `host:port` of the API server in the current kubeconfig.
fn api_server_addr() -> String {
    let server = kubectl_ok(&[
        "config",
        "view",
        "--minify",
        "-o",
        "jsonpath={.clusters[0].cluster.server}",
    ]);
    let url = url::Url::parse(server.trim()).expect("server URL");
    format!(
        "{}:{}",
        url.host_str().expect("host"),
        url.port_or_known_default().expect("port")
    )
}

/// A copy of the kubeconfig the kit's operators use (their own identity when the cluster has one;
/// credentials inlined) whose server is `proxy_addr`, written under the test's log directory.
fn kubeconfig_via(proxy_addr: &str, label: &str) -> PathBuf {
    let text = match operator_kubeconfig() {
        Some(path) => std::fs::read_to_string(path).expect("the operators' kubeconfig"),
        None => kubectl_ok(&["config", "view", "--minify", "--raw", "-o", "json"]),
    };
    let mut config: Value = serde_json::from_str(&text).expect("kubeconfig JSON");
    config["clusters"][0]["cluster"]["server"] = json!(format!("https://{proxy_addr}"));
    let path = logs::log_dir().join(format!("kubeconfig-{label}.json"));
    std::fs::write(&path, config.to_string()).expect("kubeconfig written");
    path
}

/// A TCP proxy on loopback that accepts connections at once but forwards them to `upstream`
/// only while open ([`GatedProxy::open`]); [`GatedProxy::cut`] closes it again and drops every
/// forwarded connection. To the operator: an API server that does not answer (yet, or any more).
struct GatedProxy {
    addr: String,
    state: Arc<ProxyState>,
}

#[derive(Default)]
struct ProxyState {
    open: Mutex<bool>,
    opened: Condvar,
    /// Both ends of every forwarded connection, to shut down on a cut.
    streams: Mutex<Vec<TcpStream>>,
}

impl GatedProxy {
    fn start(upstream: &str) -> GatedProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy binds");
        let addr = listener.local_addr().expect("proxy address").to_string();
        let state = Arc::new(ProxyState::default());
        let upstream = upstream.to_owned();
        let accept_state = Arc::clone(&state);
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let state = Arc::clone(&accept_state);
                let upstream = upstream.clone();
                std::thread::spawn(move || forward_when_open(client, &upstream, &state));
            }
        });
        GatedProxy { addr, state }
    }

    fn open(&self) {
        *self.state.open.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.state.opened.notify_all();
    }

    fn cut(&self) {
        *self.state.open.lock().unwrap_or_else(|e| e.into_inner()) = false;
        for stream in self
            .state
            .streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

fn forward_when_open(client: TcpStream, upstream: &str, state: &ProxyState) {
    let mut open = state.open.lock().unwrap_or_else(|e| e.into_inner());
    while !*open {
        open = state.opened.wait(open).unwrap_or_else(|e| e.into_inner());
    }
    drop(open);
    let Ok(server) = TcpStream::connect(upstream) else {
        return;
    };
    let clones = (
        client.try_clone(),
        server.try_clone(),
        client.try_clone(),
        server.try_clone(),
    );
    let (Ok(mut client_read), Ok(mut server_read), Ok(client_end), Ok(server_end)) = clones else {
        return;
    };
    state
        .streams
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .extend([client_end, server_end]);
    let (mut client_write, mut server_write) = (client, server);
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut client_read, &mut server_write);
        let _ = server_write.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut server_read, &mut client_write);
    let _ = client_write.shutdown(Shutdown::Write);
}

/// A leader that cannot renew (its API server connection is cut) stops within the renew
/// deadline, says why, and exits non-zero; the standby takes over once the lease expires.
#[test]
fn a_leader_that_cannot_renew_stops_and_exits() {
    require_cluster!();
    install_crds();
    let ns = TestNamespace::new("ops-renew");
    let proxy = GatedProxy::start(&api_server_addr());
    proxy.open();
    let kubeconfig = kubeconfig_via(&proxy.addr, ns.name());
    let kubeconfig_path = kubeconfig.to_str().expect("UTF-8 path");
    let lease_ns = ["--leader-election-namespace", ns.name()];
    let args: Vec<&str> = ELECTION_ARGS.iter().copied().chain(lease_ns).collect();
    let mut cut_off = Operator::start_with_env(
        ns.name(),
        "replica-a",
        &args,
        &[("KUBECONFIG", kubeconfig_path)],
    );
    wait_until(Duration::from_secs(30), "replica-a to lead", || {
        lease_holder(ns.name()).as_deref() == Some("replica-a")
    });
    let standby = Operator::start(ns.name(), "replica-b", &args);
    standby
        .process
        .wait_for_log("standing by for the lease", Duration::from_secs(30));

    proxy.cut();
    let cut = Instant::now();
    // Renew deadline 3 s, counted from the start of the last successful renew (at most one
    // retry period before the cut).
    wait_until(
        Duration::from_secs(15),
        "the cut-off leader to exit",
        || !cut_off.process.is_running(),
    );
    let took = cut.elapsed();
    assert!(
        took < Duration::from_secs(LEASE_SECONDS),
        "it stopped before its lease could expire for the others ({took:?})"
    );
    let logs = cut_off.process.logs();
    assert!(
        logs.contains("lost the lease; stopped reconciling and exiting"),
        "{logs}"
    );
    // main returns the error, which is a failure exit (status 1) with this line on stderr.
    assert!(
        logs.contains("Error: lost the leader lease"),
        "a lost lease is a failure exit:\n{logs}"
    );
    wait_until(
        Duration::from_secs(LEASE_SECONDS + 2 * RETRY_SECONDS + 10),
        "the standby to take over",
        || lease_holder(ns.name()).as_deref() == Some("replica-b"),
    );
}

/// Two operators, one lease: exactly one reconciles; SIGKILL it and the other takes over within
/// the lease duration (plus the polling of both); nothing is created twice.
#[test]
fn one_leader_reconciles_and_a_standby_takes_over_after_a_crash() {
    require_cluster!();
    install_crds();
    let ns = TestNamespace::new("ops-leader");
    let emulator = EmulatorProcess::start(&[]);
    ns.register_log("emulator", emulator.log_path());
    ns.install_application(&emulator, "app");
    let lease_ns = ["--leader-election-namespace", ns.name()];
    let args: Vec<&str> = ELECTION_ARGS.iter().copied().chain(lease_ns).collect();

    let first = Operator::start(ns.name(), "replica-a", &args);
    let leader_name = wait_for(
        Duration::from_secs(30),
        "a replica to hold the lease",
        || lease_holder(ns.name()),
    );
    assert_eq!(leader_name, "replica-a", "the only replica takes the lease");
    let second = Operator::start(ns.name(), "replica-b", &args);
    // Both replicas sync their caches and are ready, leader or not.
    for operator in [&first, &second] {
        wait_until(READY_TIMEOUT, "/readyz on every replica", || {
            operator.get("/readyz").is_some_and(|(code, _)| code == 200)
        });
    }
    wait_for_condition(
        ns.name(),
        "losantapplication/app",
        "Ready",
        "True",
        READY_TIMEOUT,
    );
    for (name, topic) in [("one", "a/1"), ("two", "a/2"), ("three", "a/3")] {
        ns.apply_ok(&integration_manifest(name, &mqtt_spec(topic)));
    }
    for name in ["one", "two", "three"] {
        wait_for_condition(
            ns.name(),
            &format!("integration/{name}"),
            "Ready",
            "True",
            READY_TIMEOUT,
        );
    }
    assert!(first.reconciles("Integration") >= 3.0);
    assert_eq!(
        second.reconciles("Integration") + second.reconciles("LosantApplication"),
        0.0,
        "the standby never reconciles"
    );
    assert_eq!(first.sample("losant_operator_leader"), Some(1.0));
    assert_eq!(second.sample("losant_operator_leader"), Some(0.0));
    assert!(
        second
            .process
            .logs()
            .contains("not the leader: reconcile skipped"),
        "the standby saw the objects and skipped them"
    );
    assert_eq!(posts(&emulator), 3, "one create per integration");

    let mut first = first;
    first.process.kill();
    let killed = Instant::now();
    // Drift made while nobody leads: the standby skipped "one" (it was never asked to requeue
    // it), so only the reconcile-everything on taking over can notice it.
    let one = get_object(ns.name(), "integration/one").expect("exists")["status"]["integrationId"]
        .as_str()
        .expect("integrationId")
        .to_owned();
    let (status, _) = emulator.patch(
        &emulator.integration_path(&one),
        &json!({"topics": ["drifted/+"]}),
    );
    assert_eq!(status.as_u16(), 200);
    wait_until(
        Duration::from_secs(LEASE_SECONDS + 2 * RETRY_SECONDS + 10),
        "the standby to take the lease",
        || lease_holder(ns.name()).as_deref() == Some("replica-b"),
    );
    let took = killed.elapsed();
    // Within the lease duration of the kill: the standby saw the last renew at most a poll
    // (plus a read) after it was written, and allows for that lag.
    let bound = Duration::from_secs(LEASE_SECONDS);
    assert!(took <= bound, "takeover took {took:?}, more than {bound:?}");

    // The new leader reconciles: a change is applied, a new object is created once.
    ns.apply_ok(&integration_manifest("two", &mqtt_spec("a/2-changed")));
    ns.apply_ok(&integration_manifest("four", &mqtt_spec("a/4")));
    wait_for_condition(
        ns.name(),
        "integration/four",
        "Ready",
        "True",
        READY_TIMEOUT,
    );
    wait_until(READY_TIMEOUT, "the changed topic to reach Losant", || {
        emulator
            .list_integrations()
            .iter()
            .any(|i| i["name"] == "two" && i["topics"] == json!(["a/2-changed"]))
    });
    assert!(second.reconciles("Integration") >= 1.0);
    wait_until(READY_TIMEOUT, "the new leader to correct the drift", || {
        emulator
            .list_integrations()
            .iter()
            .any(|i| i["name"] == "one" && i["topics"] == json!(["a/1"]))
    });
    let names: Vec<String> = emulator
        .list_integrations()
        .iter()
        .filter_map(|i| i["name"].as_str().map(str::to_owned))
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        ["four", "one", "three", "two"],
        "nothing duplicated"
    );
    assert_eq!(
        posts(&emulator),
        4,
        "one create per integration, across the failover"
    );
}

/// SIGTERM: the leader finishes, releases the lease and exits 0; the standby takes over at its
/// next retry instead of waiting a lease duration.
#[test]
fn sigterm_releases_the_lease_for_a_fast_handover() {
    require_cluster!();
    install_crds();
    let ns = TestNamespace::new("ops-handover");
    let lease_ns = ["--leader-election-namespace", ns.name()];
    let args: Vec<&str> = ELECTION_ARGS.iter().copied().chain(lease_ns).collect();
    let mut first = Operator::start(ns.name(), "replica-a", &args);
    wait_until(Duration::from_secs(30), "replica-a to lead", || {
        lease_holder(ns.name()).as_deref() == Some("replica-a")
    });
    let second = Operator::start(ns.name(), "replica-b", &args);
    second
        .process
        .wait_for_log("standing by for the lease", Duration::from_secs(30));

    let stopped = Instant::now();
    let status = first.process.terminate(Duration::from_secs(30));
    assert!(
        status.is_some_and(|s| s.success()),
        "a graceful exit with status 0, got {status:?}"
    );
    let logs = first.process.logs();
    assert!(logs.contains("released the lease"), "{logs}");
    wait_until(Duration::from_secs(10), "replica-b to take over", || {
        lease_holder(ns.name()).as_deref() == Some("replica-b")
    });
    let took = stopped.elapsed();
    assert!(
        took < Duration::from_secs(LEASE_SECONDS),
        "a released lease is taken within a retry period or so, not a lease duration ({took:?})"
    );
    assert_eq!(second.sample("losant_operator_leader"), Some(1.0));
}

#[test]
fn invalid_election_timings_are_refused() {
    require_cluster!();
    let ns = TestNamespace::new("ops-timings");
    let mut operator = OperatorProcess::start(
        ns.name(),
        &[
            "--metrics-addr",
            "127.0.0.1:0",
            "--leader-elect",
            "--lease-duration",
            "5s",
            "--renew-deadline",
            "10s",
        ],
    );
    wait_until(Duration::from_secs(30), "the operator to exit", || {
        !operator.is_running()
    });
    assert!(
        operator.logs().contains("renew deadline"),
        "{}",
        operator.logs()
    );
}

/// The binary starts: `--help` and `crds` work without a cluster. CI runs this once more against
/// the release binary built with the Dockerfile's command (`LOSANT_OPERATOR_BIN`, see
/// `scripts/check-release.sh`).
#[test]
fn the_binary_starts_without_a_cluster() {
    let bin = operator_binary();
    let help = std::process::Command::new(&bin)
        .args(["run", "--help"])
        .output()
        .expect("runs");
    assert!(help.status.success());
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--metrics-addr",
        "--leader-elect",
        "--leader-election-namespace",
        "--lease-duration",
        "--renew-deadline",
        "--retry-period",
        "--shutdown-timeout",
    ] {
        assert!(help.contains(flag), "{flag} in:\n{help}");
    }
    let crds = std::process::Command::new(&bin)
        .arg("crds")
        .output()
        .expect("runs");
    assert!(crds.status.success());
    let text = String::from_utf8_lossy(&crds.stdout);
    let committed = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crds/losant.io_crds.yaml"),
    )
    .expect("crds/losant.io_crds.yaml");
    assert_eq!(
        text,
        committed,
        "{} crds prints the committed CRDs",
        bin.display()
    );
}
