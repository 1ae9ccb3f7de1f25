//! Surviving the control plane, end to end: the API server killed (SIGKILL) and started again,
//! etcd killed and started again, and a watch cut off until etcd compacted what it missed
//! (`410 Gone`), each while Integrations are created, edited and deleted. The operator recovers
//! by itself (the same process throughout), relists, converges, and leaves exactly one remote
//! per Integration and none for deleted ones.
//!
//! They stop parts of the shared control plane (`scripts/control-plane.sh stop|start`), so they
//! run alone (`exclusive_`, see .config/nextest.toml), and what they kill is started again even
//! when they fail ([`Outage`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use losant_operator::testkit::*;
use serde_json::{Value, json};

/// Integrations created, and Ready, before the churn starts.
const INITIAL: usize = 20;
/// Rounds of churn; each creates two Integrations, edits two and deletes one.
const ROUNDS: usize = 8;
/// How long everything may take to converge once the control plane is back: objects whose
/// reconciles failed meanwhile wait out their backoff.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(150);
/// How long one kubectl step of the churn is retried while the API cannot answer.
const STEP_TIMEOUT: Duration = Duration::from_secs(120);
const READY_TIMEOUT: Duration = Duration::from_secs(90);

fn spec(name: &str, host: &str) -> Value {
    json!({
        "applicationRef": {"name": "app"},
        "name": format!("restart {name}"),
        "integrationType": "sqs",
        "sqsConfig": {"queueUrl": format!("https://{host}/q"), "region": "us-east-1",
                      "secretAccessKeySecretRef": {"name": "aws", "key": "secret"}}
    })
}

struct Setup {
    ns: TestNamespace,
    emulator: EmulatorProcess,
}

fn setup(prefix: &str) -> Setup {
    install_crds();
    let ns = TestNamespace::new(prefix);
    // Slow answers keep reconciles in flight (between their Losant call and their status
    // write) when the control plane goes.
    let emulator = EmulatorProcess::start(&["--latency-ms", "200"]);
    ns.register_log("emulator", emulator.log_path());
    ns.install_application(&emulator, "app");
    ns.create_secret("aws", &[("secret", "aws-secret-value")]);
    Setup { ns, emulator }
}

/// What the test asked for: every live Integration with the host of its latest spec, and the
/// deleted ones.
#[derive(Clone, Debug, Default)]
struct Expected {
    alive: BTreeMap<String, String>,
    deleted: Vec<String>,
}

/// Creates the first Integrations and waits until they are Ready.
fn create_initial(ns: &TestNamespace) -> Expected {
    let mut expected = Expected::default();
    let items: Vec<Value> = (0..INITIAL)
        .map(|i| {
            let name = format!("q{i:02}");
            let item = integration(&name, "a");
            expected.alive.insert(name, "a".to_owned());
            item
        })
        .collect();
    ns.apply_ok(&list(items));
    for name in expected.alive.keys() {
        wait_for_condition(
            ns.name(),
            &format!("integration/{name}"),
            "Ready",
            "True",
            READY_TIMEOUT,
        );
    }
    expected
}

fn integration(name: &str, host: &str) -> Value {
    serde_json::from_str(&integration_manifest(name, &spec(name, host)))
        .unwrap_or_else(|e| panic!("the kit's manifest is JSON: {e}"))
}

fn list(items: Vec<Value>) -> String {
    json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string()
}

/// [`ROUNDS`] rounds of churn: each creates two Integrations, edits two that exist (a new host,
/// so a new generation) and deletes one, every step retried until the API answers. `applied`
/// counts the rounds whose creates and edits the API server took.
fn churn(namespace: &str, mut expected: Expected, applied: &AtomicUsize) -> Expected {
    for round in 0..ROUNDS {
        let mut items = Vec::new();
        for i in 0..2 {
            let name = format!("n{round}x{i}");
            items.push(integration(&name, "a"));
            expected.alive.insert(name, "a".to_owned());
        }
        // Edit two older objects, a different pair each round.
        let older: Vec<String> = expected
            .alive
            .keys()
            .filter(|name| name.starts_with('q'))
            .cloned()
            .collect();
        let host = format!("h{round}");
        for k in 0..2 {
            let name = older[(round * 2 + k) % older.len()].clone();
            items.push(integration(&name, &host));
            expected.alive.insert(name, host.clone());
        }
        let manifest = list(items);
        retry("an apply", || kubectl_apply_yaml(namespace, &manifest));
        applied.fetch_add(1, Ordering::SeqCst);
        // Delete the newest object of the previous round (it may still be being created).
        if let Some(name) = (round > 0).then(|| format!("n{}x1", round - 1)) {
            let args = ["delete", "integration", &name, "-n", namespace];
            retry("a delete", || {
                let out = kubectl(&[&args[..], &["--wait=false", "--ignore-not-found"]].concat());
                let stderr = String::from_utf8_lossy(&out.stderr);
                out.status
                    .success()
                    .then_some(())
                    .ok_or(stderr.into_owned())
            });
            expected.alive.remove(&name);
            expected.deleted.push(name);
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    expected
}

/// Runs `step` until it succeeds (it must be idempotent: an answer lost in a crash is retried).
///
/// # Panics
/// When it still fails after [`STEP_TIMEOUT`].
fn retry<T>(what: &str, mut step: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        match step() {
            Ok(value) => return value,
            Err(e) if Instant::now() >= deadline => {
                panic!("{what} still failed after {STEP_TIMEOUT:?}: {e}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    }
}

/// Waits until every live Integration is Ready for its latest generation and every deleted one
/// is gone, then checks Losant: exactly one remote per live Integration, by recorded id and by
/// name, with its latest spec; none for deleted ones; nothing else of the operator's.
fn assert_converged(ns: &TestNamespace, emulator: &EmulatorProcess, expected: &Expected) {
    let started = Instant::now();
    let mut ids = BTreeMap::new();
    for name in expected.alive.keys() {
        let object = wait_for(
            CONVERGE_TIMEOUT,
            &format!("{name} Ready for its latest generation"),
            || {
                let object = get_object(ns.name(), &format!("integration/{name}"))?;
                let ready = find_condition(&object, "Ready")?["status"] == "True";
                let current =
                    object["status"]["observedGeneration"] == object["metadata"]["generation"];
                (ready && current).then_some(object)
            },
        );
        let id = object["status"]["integrationId"]
            .as_str()
            .map(str::to_owned);
        ids.insert(
            name.clone(),
            id.unwrap_or_else(|| panic!("{name} records no remote id")),
        );
    }
    for name in &expected.deleted {
        wait_until(
            CONVERGE_TIMEOUT,
            &format!("{name} to finish deleting"),
            || get_object(ns.name(), &format!("integration/{name}")).is_none(),
        );
    }
    eprintln!(
        "converged {:?} after the control plane was back",
        started.elapsed()
    );

    let remotes = emulator.list_integrations();
    let mut by_name: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for remote in &remotes {
        let name = remote["name"].as_str().unwrap_or_default().to_owned();
        by_name.entry(name).or_default().push(remote);
    }
    for (name, host) in &expected.alive {
        let found = by_name.get(&format!("restart {name}")).map(Vec::as_slice);
        let [remote] = found.unwrap_or_default() else {
            panic!("exactly one remote for {name}, found {found:?}");
        };
        assert_eq!(
            remote["id"],
            ids[name].as_str(),
            "{name} recorded its remote's id"
        );
        assert_eq!(
            remote["sqsConfig"]["queueUrl"],
            format!("https://{host}/q"),
            "{name}'s latest spec reached Losant"
        );
    }
    for name in &expected.deleted {
        assert!(
            !by_name.contains_key(&format!("restart {name}")),
            "the remote of deleted {name} is gone"
        );
    }
    let ours = by_name
        .iter()
        .filter(|(name, _)| name.starts_with("restart "));
    let ours: usize = ours.map(|(_, remotes)| remotes.len()).sum();
    assert_eq!(ours, expected.alive.len(), "no orphan remote: {by_name:#?}");
}

/// The scenario of the first two tests: `component` killed (SIGKILL) right after the second
/// round of churn was applied, with its reconciles in flight, and started again after `outage`,
/// while the churn goes on (its steps retried until the API answers again); everything
/// converges under the same operator process.
fn survive_a_crash_mid_churn(prefix: &str, component: Component, outage: Duration) {
    let Some(control_plane) = control_plane_for_restarts() else {
        return;
    };
    let Setup { ns, emulator } = setup(prefix);
    ns.register_log(component.script_name(), &control_plane.log_path(component));
    let mut operator = OperatorProcess::start(ns.name(), &[]);
    let pid = operator.pid();
    let expected = create_initial(&ns);

    let applied = Arc::new(AtomicUsize::new(0));
    let worker = {
        let (namespace, applied) = (ns.name().to_owned(), Arc::clone(&applied));
        std::thread::spawn(move || churn(&namespace, expected, &applied))
    };
    wait_until(STEP_TIMEOUT, "two rounds of churn applied", || {
        applied.load(Ordering::SeqCst) >= 2 || worker.is_finished()
    });
    let crash = control_plane
        .kill(component)
        .unwrap_or_else(|e| panic!("killing {}: {e:#}", component.script_name()));
    // The outage lasts this long: reconciles, watches and the churn meet a dead API meanwhile.
    std::thread::sleep(outage);
    let applied_while_down = applied.load(Ordering::SeqCst);
    let down_for = crash
        .end()
        .unwrap_or_else(|e| panic!("{} did not start again: {e:#}", component.script_name()));
    // Whatever was killed, the tests talk to the API server: wait until it serves again.
    control_plane
        .start(Component::ApiServer)
        .unwrap_or_else(|e| panic!("the API server does not serve: {e:#}"));
    eprintln!("{} was down for {down_for:?}", component.script_name());
    let expected = worker
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    assert!(
        applied_while_down < ROUNDS,
        "some of the churn waited out the outage"
    );

    assert_converged(&ns, &emulator, &expected);
    assert!(
        operator.is_running() && operator.pid() == pid,
        "the operator recovered by itself: the same process, never restarted"
    );
    assert!(control_plane.is_up(), "the control plane is whole again");
}

/// Every request and watch of the operator fails at once (connection refused); the API server
/// comes back with an empty watch cache, so resumed watches meet `410 Gone`.
#[test]
fn exclusive_the_api_server_killed_mid_churn_is_survived_without_a_restart() {
    require_cluster!();
    survive_a_crash_mid_churn(
        "apiserver-kill",
        Component::ApiServer,
        Duration::from_secs(5),
    );
}

/// The API server stays up: the operator's requests and watches stall on it until etcd is back
/// with its data.
#[test]
fn exclusive_etcd_killed_mid_churn_is_survived_without_a_restart() {
    require_cluster!();
    survive_a_crash_mid_churn("etcd-kill", Component::Etcd, Duration::from_secs(5));
}

/// The operator's watches are served by an API server without a watch cache (so by etcd). That
/// API server is killed, which cuts the operator off while the main one serves the test: it
/// creates, edits and deletes Integrations (one of them, with no finalizer, vanishes at once)
/// and compacts etcd. Started again, the API server answers the operator's resumed watches with
/// `410 Gone`; the operator relists, acts on everything it missed, and keeps no ghost of the
/// vanished object.
#[test]
fn exclusive_a_watch_cut_off_past_a_compaction_relists_and_acts_on_what_it_missed() {
    require_cluster!();
    let Some(control_plane) = control_plane_for_restarts() else {
        return;
    };
    let Setup { ns, emulator } = setup("compacted");
    let uncached = control_plane
        .start_uncached_api_server()
        .unwrap_or_else(|e| panic!("the uncached API server did not start: {e:#}"));
    ns.register_log(
        "uncached API server",
        &control_plane.log_path(Component::UncachedApiServer),
    );
    let operator = OperatorProcess::builder(ns.name())
        .env("KUBECONFIG", uncached.kubeconfig().display().to_string())
        .start()
        .unwrap_or_else(|e| panic!("losant-operator did not start: {e:#}"));
    let pid = operator.pid();
    let expected = create_initial(&ns);
    let observed = observe_a_remote(&ns, &emulator);

    let cut_off = control_plane
        .kill(Component::UncachedApiServer)
        .unwrap_or_else(|e| panic!("killing the uncached API server: {e:#}"));
    let expected = churn(ns.name(), expected, &AtomicUsize::new(0));
    kubectl_ok(&[
        "delete",
        "integration",
        "observed",
        "-n",
        ns.name(),
        "--wait=false",
    ]);
    let revision = control_plane
        .compact_etcd()
        .unwrap_or_else(|e| panic!("compacting etcd: {e:#}"));
    let log_before = operator.logs().len();
    let down_for = cut_off
        .end()
        .unwrap_or_else(|e| panic!("the uncached API server did not start again: {e:#}"));
    eprintln!("the operator was cut off for {down_for:?}; etcd compacted at revision {revision}");

    assert_converged(&ns, &emulator, &expected);
    let after = operator.logs()[log_before..].to_owned();
    assert!(
        after.contains("(410 Gone); listing again") && after.contains("listed again"),
        "the operator's watches met 410 Gone and listed again:\n{after}"
    );
    // The relist replaced the cache: the vanished object is not in it (nor counted).
    wait_until(
        CONVERGE_TIMEOUT,
        "the cache to hold just the live Integrations",
        || cached_integrations(&operator) == expected.alive.len(),
    );
    assert!(
        operator.pid() == pid,
        "the operator recovered by itself: the same process, never restarted"
    );
    assert_eq!(
        emulator.get(&emulator.integration_path(&observed)).0,
        reqwest::StatusCode::OK,
        "an observed remote is never deleted"
    );
}

/// An `ObserveOnly` Integration `observed` of a remote made behind the operator's back, Ready;
/// returns the remote's id. Observed objects have no finalizer: deleting one removes it at once.
fn observe_a_remote(ns: &TestNamespace, emulator: &EmulatorProcess) -> String {
    let remote = emulator.create_integration(&json!({
        "name": "observed", "integrationType": "sqs",
        "sqsConfig": {"queueUrl": "https://observed/q", "region": "us-east-1"}
    }));
    let mut observe_only = spec("observed", "observed");
    observe_only["name"] = json!("observed");
    observe_only["managementPolicy"] = json!("ObserveOnly");
    ns.apply_ok(&integration_manifest("observed", &observe_only));
    let found = wait_for_condition(
        ns.name(),
        "integration/observed",
        "Ready",
        "True",
        READY_TIMEOUT,
    );
    assert_eq!(found["status"]["integrationId"], remote["id"]);
    remote["id"].as_str().unwrap_or_default().to_owned()
}

/// How many Integrations the operator's cache holds, by its `losant_operator_objects` gauge.
fn cached_integrations(operator: &OperatorProcess) -> usize {
    crate::survive::operator_metrics(&operator.logs())
        .lines()
        .filter(|line| line.starts_with(r#"losant_operator_objects{kind="Integration""#))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<usize>().ok())
        .sum()
}

/// Election timings: short, with retry < renew deadline and renew deadline + 2 × retry < lease.
const ELECTION_ARGS: [&str; 7] = [
    "--leader-elect",
    "--lease-duration",
    "8s",
    "--renew-deadline",
    "4s",
    "--retry-period",
    "1s",
];

/// Two replicas with leader election, both on the API server that is killed, while the test
/// creates, edits and deletes through the main one. Longer than the renew deadline without an
/// API, the leader exits with the designed error; the standby rides the outage out (the same
/// process). The former leader is restarted as a kubelet restarts a container (the same pod
/// name, so the same identity: it may take its own lease back at once, unless the standby saw
/// the lease expire first); either way one replica leads and everything converges.
#[test]
fn exclusive_a_leader_cut_off_past_its_renew_deadline_exits_and_converges_once_restarted() {
    require_cluster!();
    let Some(control_plane) = control_plane_for_restarts() else {
        return;
    };
    let Setup { ns, emulator } = setup("leader-cut");
    let uncached = control_plane
        .start_uncached_api_server()
        .unwrap_or_else(|e| panic!("the uncached API server did not start: {e:#}"));
    ns.register_log(
        "uncached API server",
        &control_plane.log_path(Component::UncachedApiServer),
    );
    let replica = |identity: &str| {
        OperatorProcess::builder(ns.name())
            .args(ELECTION_ARGS)
            .args(["--leader-election-namespace", ns.name()])
            .env("KUBECONFIG", uncached.kubeconfig().display().to_string())
            .env("POD_NAME", identity)
            .start()
            .unwrap_or_else(|e| panic!("replica {identity} did not start: {e:#}"))
    };
    let mut leader = replica("replica-a");
    wait_until(READY_TIMEOUT, "replica-a to lead", || {
        lease_holder(ns.name()).as_deref() == Some("replica-a")
    });
    let standby = replica("replica-b");
    standby.wait_for_log("standing by for the lease", READY_TIMEOUT);
    let standby_pid = standby.pid();
    let expected = create_initial(&ns);

    let cut_off = control_plane
        .kill(Component::UncachedApiServer)
        .unwrap_or_else(|e| panic!("killing the uncached API server: {e:#}"));
    let expected = churn(ns.name(), expected, &AtomicUsize::new(0));
    wait_until(READY_TIMEOUT, "the cut-off leader to exit", || {
        !leader.is_running()
    });
    let exit = leader.terminate(Duration::from_secs(1));
    assert!(
        exit.is_some_and(|status| !status.success()),
        "a lost lease is a failure exit: {exit:?}"
    );
    assert!(
        leader
            .logs()
            .contains("lost the lease; stopped reconciling and exiting"),
        "the designed exit"
    );
    cut_off
        .end()
        .unwrap_or_else(|e| panic!("the uncached API server did not start again: {e:#}"));
    leader.restart();

    assert_converged(&ns, &emulator, &expected);
    let holder = lease_holder(ns.name());
    assert!(
        matches!(holder.as_deref(), Some("replica-a" | "replica-b")),
        "one replica leads: {holder:?}"
    );
    assert!(leader.is_running(), "the restarted replica runs");
    assert!(
        standby.pid() == standby_pid,
        "the standby rode the outage out: the same process"
    );
}

fn lease_holder(namespace: &str) -> Option<String> {
    get_object(namespace, "lease/losant-operator")?["spec"]["holderIdentity"]
        .as_str()
        .filter(|h| !h.is_empty())
        .map(str::to_owned)
}
