//! End-to-end safety tests: crashes at exact points (failpoints) and at random moments (SIGKILL)
//! never duplicate or leak a remote integration, and never leave an object stuck.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use losant_operator::testkit::*;
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(60);
const FAILPOINT_EXIT_CODE: i32 = 86;

fn spec(name_suffix: &str, host: &str) -> Value {
    json!({
        "applicationRef": {"name": "app"},
        "name": format!("safe {name_suffix}"),
        "integrationType": "sqs",
        "sqsConfig": {"queueUrl": format!("https://{host}/q"),
                      "secretAccessKeySecretRef": {"name": "aws", "key": "secret"}}
    })
}

struct Setup {
    ns: TestNamespace,
    emulator: EmulatorProcess,
}

fn setup(prefix: &str, emulator_args: &[&str]) -> Setup {
    install_crds();
    let ns = TestNamespace::new(prefix);
    let emulator = EmulatorProcess::start(emulator_args);
    ns.register_log("emulator", emulator.log_path());
    ns.install_application(&emulator, "app");
    ns.create_secret("aws", &[("secret", "aws-secret-value")]);
    Setup { ns, emulator }
}

fn remotes_by_name(emulator: &EmulatorProcess) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for item in emulator.list_integrations() {
        *counts
            .entry(item["name"].as_str().unwrap_or_default().to_owned())
            .or_insert(0) += 1;
    }
    counts
}

fn wait_for_exit(operator: &mut OperatorProcess, what: &str) {
    wait_until(TIMEOUT, what, || !operator.is_running());
}

/// Crashing right after the POST, or after recording the id but before status, leaves exactly
/// one remote integration, which the restarted operator recognises as its own creation.
fn crash_during_create(failpoint: &str) {
    let Setup { ns, emulator } = setup(&format!("fp-{failpoint}"), &[]);
    let mut crashing = OperatorProcess::start_with_env(
        ns.name(),
        &[],
        &[("LOSANT_OPERATOR_FAILPOINT", failpoint)],
    );
    ns.apply_ok(&integration_manifest("queue", &spec("queue", "a")));
    wait_for_exit(&mut crashing, "the operator to stop at the failpoint");
    assert!(
        crashing
            .logs()
            .contains(&format!("failpoint {failpoint} reached"))
    );
    assert_eq!(
        remotes_by_name(&emulator).get("safe queue"),
        Some(&1),
        "the POST happened once"
    );
    drop(crashing);

    let _operator = OperatorProcess::start(ns.name(), &[]);
    let object = wait_for_condition(ns.name(), "integration/queue", "Ready", "True", TIMEOUT);
    assert_eq!(
        object["status"]["origin"], "Created",
        "its own creation, not an adoption"
    );
    assert_eq!(
        remotes_by_name(&emulator).get("safe queue"),
        Some(&1),
        "no second POST"
    );
    let posts: u64 = emulator.stats()["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == "POST")
        .map(|r| r["count"].as_u64().unwrap())
        .sum();
    assert_eq!(posts, 1);
    let annotations = &object["metadata"]["annotations"];
    assert_eq!(
        annotations["losant.io/integration-id"],
        object["status"]["integrationId"]
    );
    assert!(
        annotations.get("losant.io/create-pending").is_none(),
        "the marker is cleared"
    );
    // Created by the operator, so deleted with the object by default.
    kubectl_ok(&[
        "delete",
        "integration",
        "queue",
        "-n",
        ns.name(),
        "--timeout=60s",
    ]);
    assert!(remotes_by_name(&emulator).is_empty());
}

#[test]
fn a_crash_after_post_creates_no_duplicate() {
    require_cluster!();
    crash_during_create("after-post");
}

#[test]
fn a_crash_before_status_creates_no_duplicate() {
    require_cluster!();
    crash_during_create("before-status");
}

#[test]
fn a_crash_after_the_remote_delete_still_finishes_the_deletion() {
    require_cluster!();
    let Setup { ns, emulator } = setup("fp-after-delete", &[]);
    let mut operator = OperatorProcess::start(ns.name(), &[]);
    ns.apply_ok(&integration_manifest("queue", &spec("queue", "a")));
    wait_for_condition(ns.name(), "integration/queue", "Ready", "True", TIMEOUT);
    operator.kill();
    let mut crashing = OperatorProcess::start_with_env(
        ns.name(),
        &[],
        &[("LOSANT_OPERATOR_FAILPOINT", "after-delete")],
    );
    kubectl_ok(&[
        "delete",
        "integration",
        "queue",
        "-n",
        ns.name(),
        "--wait=false",
    ]);
    wait_for_exit(
        &mut crashing,
        "the operator to stop after the remote delete",
    );
    assert!(
        remotes_by_name(&emulator).is_empty(),
        "the remote is deleted"
    );
    assert!(
        get_object(ns.name(), "integration/queue").is_some(),
        "the finalizer still holds the object"
    );
    drop(crashing);
    let _operator = OperatorProcess::start(ns.name(), &[]);
    wait_until(TIMEOUT, "the object to be gone", || {
        get_object(ns.name(), "integration/queue").is_none()
    });
    let deletes = |status: u64| -> u64 {
        emulator.stats()["requests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["method"] == "DELETE" && r["status"] == status)
            .map(|r| r["count"].as_u64().unwrap())
            .sum()
    };
    assert_eq!(deletes(200), 1, "one DELETE removed it");
    assert!(
        deletes(404) >= 1,
        "the restarted operator's DELETE found it gone and finished"
    );
}

#[test]
fn the_failpoint_exit_code_is_distinct() {
    require_cluster!();
    let Setup {
        ns,
        emulator: _emulator,
    } = setup("fp-exit", &[]);
    let mut crashing = OperatorProcess::start_with_env(
        ns.name(),
        &[],
        &[("LOSANT_OPERATOR_FAILPOINT", "after-post")],
    );
    ns.apply_ok(&integration_manifest("queue", &spec("queue", "a")));
    wait_for_exit(&mut crashing, "the operator to stop at the failpoint");
    let status = crashing.terminate(Duration::from_secs(1));
    if let Some(status) = status {
        assert_eq!(status.code(), Some(FAILPOINT_EXIT_CODE));
    }
}

/// Fifty SIGKILLs at random moments during a burst of creates, updates and deletes, against a
/// Losant that loses answers after committing and whose lists lag behind creates.
#[test]
fn fifty_random_kills_leave_exactly_one_remote_per_integration() {
    require_cluster!();
    let Setup { ns, emulator } = setup(
        "kills",
        &[
            "--fault-after-commit",
            "0.3",
            "--list-lag-ms",
            "700",
            "--seed",
            "11",
        ],
    );
    // The grace period must exceed the list lag, as the README says.
    let args = ["--create-grace-period", "3s"];
    let mut operator = OperatorProcess::start(ns.name(), &args);
    let mut rng_state: u64 = 0x5eed_1234_abcd_9876;
    let mut next = move |bound: u64| {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        rng_state % bound
    };
    let mut alive: BTreeMap<String, String> = BTreeMap::new();
    let mut deleted: Vec<String> = Vec::new();
    let started = Instant::now();
    for round in 0..50u64 {
        // Some work for the operator between kills: create, update or delete an object.
        match next(4) {
            0 | 1 if alive.len() < 12 => {
                let name = format!("q{round}");
                ns.apply_ok(&integration_manifest(&name, &spec(&name, "a")));
                alive.insert(name, "a".into());
            }
            2 if !alive.is_empty() => {
                let index = usize::try_from(next(alive.len() as u64)).unwrap();
                let name = alive.keys().nth(index).unwrap().clone();
                let host = format!("h{round}");
                ns.apply_ok(&integration_manifest(&name, &spec(&name, &host)));
                alive.insert(name, host);
            }
            _ if alive.len() > 3 => {
                let name = alive.keys().next().unwrap().clone();
                kubectl_ok(&[
                    "delete",
                    "integration",
                    &name,
                    "-n",
                    ns.name(),
                    "--wait=false",
                ]);
                alive.remove(&name);
                deleted.push(name);
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(100 + next(500)));
        operator.restart();
    }
    eprintln!("50 kills in {:?}; converging", started.elapsed());

    for (name, host) in &alive {
        let object = wait_for_condition(
            ns.name(),
            &format!("integration/{name}"),
            "Ready",
            "True",
            Duration::from_secs(90),
        );
        let id = object["status"]["integrationId"]
            .as_str()
            .unwrap()
            .to_owned();
        wait_until(TIMEOUT, "the last update to reach Losant", || {
            let (_, remote) = emulator.get(&emulator.integration_path(&id));
            remote["sqsConfig"]["queueUrl"] == format!("https://{host}/q")
        });
    }
    for name in &deleted {
        wait_until(
            Duration::from_secs(90),
            "a deleted object to finish deleting",
            || get_object(ns.name(), &format!("integration/{name}")).is_none(),
        );
    }
    let remotes = remotes_by_name(&emulator);
    for name in alive.keys() {
        assert_eq!(
            remotes.get(&format!("safe {name}")),
            Some(&1),
            "exactly one remote for {name}: {remotes:?}"
        );
    }
    for name in &deleted {
        assert_eq!(
            remotes.get(&format!("safe {name}")),
            None,
            "nothing left of deleted {name}"
        );
    }
    assert_eq!(
        remotes.values().sum::<usize>(),
        alive.len(),
        "no stray remote: {remotes:?}"
    );
}

/// Dev and staging copies of one manifest cannot fight over, or delete, each other's remote;
/// neither can an object copied together with its annotations.
#[test]
fn a_second_claimant_is_refused_and_cannot_delete_the_remote() {
    require_cluster!();
    let Setup { ns: dev, emulator } = setup("owner-dev", &[]);
    let staging = TestNamespace::new("owner-staging");
    staging.install_application(&emulator, "app");
    staging.create_secret("aws", &[("secret", "aws-secret-value")]);
    let copy_ns = TestNamespace::new("owner-copy");
    copy_ns.install_application(&emulator, "app");
    copy_ns.create_secret("aws", &[("secret", "aws-secret-value")]);
    let _operator = OperatorProcess::start(
        dev.name(),
        &["--namespace", staging.name(), "--namespace", copy_ns.name()],
    );

    dev.apply_ok(&integration_manifest("queue", &spec("queue", "dev")));
    let owner = wait_for_condition(dev.name(), "integration/queue", "Ready", "True", TIMEOUT);
    let id = owner["status"]["integrationId"]
        .as_str()
        .unwrap()
        .to_owned();

    staging.apply_ok(&integration_manifest("queue", &spec("queue", "staging")));
    let refused = wait_for_condition(
        staging.name(),
        "integration/queue",
        "Stalled",
        "True",
        TIMEOUT,
    );
    let ready = find_condition(&refused, "Ready").unwrap();
    assert_eq!(ready["reason"], "ConflictingOwner");
    let message = ready["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("{}/queue", dev.name())),
        "{message}"
    );

    // A copy that carries the owner's annotations (remote id included), made later than the
    // owner: seniority is the creation time, which has whole seconds, then namespace/name (and
    // "owner-copy-…" sorts before "owner-dev-…"), so a copy made within the owner's second would
    // be the senior one.
    std::thread::sleep(Duration::from_millis(1100));
    let mut copied = kubectl_json(&["get", "integration", "queue", "-n", dev.name()]);
    let annotations = copied["metadata"]["annotations"].clone();
    assert_eq!(annotations["losant.io/integration-id"], id.as_str());
    copied["metadata"] =
        json!({"name": "queue-copy", "namespace": copy_ns.name(), "annotations": annotations});
    copied.as_object_mut().unwrap().remove("status");
    let mut copy_spec = copied["spec"].clone();
    copy_spec["name"] = json!("safe a different name");
    copied["spec"] = copy_spec;
    copy_ns.apply_ok(&copied.to_string());
    let refused = wait_for_condition(
        copy_ns.name(),
        "integration/queue-copy",
        "Stalled",
        "True",
        TIMEOUT,
    );
    assert_eq!(
        find_condition(&refused, "Ready").unwrap()["reason"],
        "ConflictingOwner"
    );

    std::thread::sleep(Duration::from_secs(4));
    let remote = emulator.get(&emulator.integration_path(&id)).1;
    assert_eq!(
        remote["sqsConfig"]["queueUrl"], "https://dev/q",
        "the junior objects wrote nothing"
    );
    assert_eq!(remotes_by_name(&emulator).len(), 1);

    kubectl_ok(&[
        "delete",
        "integration",
        "queue",
        "-n",
        staging.name(),
        "--timeout=60s",
    ]);
    kubectl_ok(&[
        "delete",
        "integration",
        "queue-copy",
        "-n",
        copy_ns.name(),
        "--timeout=60s",
    ]);
    assert!(
        emulator.get(&emulator.integration_path(&id)).0.is_success(),
        "the owner's remote survives"
    );
    assert_eq!(
        wait_for_condition(dev.name(), "integration/queue", "Ready", "True", TIMEOUT)["status"]["integrationId"],
        id.as_str()
    );
}

/// A remote deleted behind the operator's back is re-created; a crash right after that POST
/// must not lead to a second re-creation (the marker guards re-creates as well as first creates).
#[test]
fn a_crash_while_re_creating_creates_no_duplicate() {
    require_cluster!();
    let Setup { ns, emulator } = setup("fp-recreate", &[]);
    let mut operator = OperatorProcess::start(ns.name(), &[]);
    ns.apply_ok(&integration_manifest("queue", &spec("queue", "a")));
    let first = wait_for_condition(ns.name(), "integration/queue", "Ready", "True", TIMEOUT);
    let old_id = first["status"]["integrationId"]
        .as_str()
        .unwrap()
        .to_owned();
    operator.kill();
    let (code, _) = emulator.delete(&emulator.integration_path(&old_id));
    assert!(code.is_success());

    let mut crashing = OperatorProcess::start_with_env(
        ns.name(),
        &[],
        &[("LOSANT_OPERATOR_FAILPOINT", "after-post")],
    );
    wait_for_exit(
        &mut crashing,
        "the operator to stop right after re-creating",
    );
    assert_eq!(remotes_by_name(&emulator).get("safe queue"), Some(&1));
    drop(crashing);
    let _operator = OperatorProcess::start(ns.name(), &[]);
    let object = wait_for(TIMEOUT, "the new id to be recorded", || {
        let object = get_object(ns.name(), "integration/queue")?;
        let id = object["status"]["integrationId"].as_str()?;
        (id != old_id && find_condition(&object, "Ready")?["status"] == "True")
            .then(|| object.clone())
    });
    assert_eq!(object["status"]["origin"], "Created");
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        remotes_by_name(&emulator).get("safe queue"),
        Some(&1),
        "no second re-creation"
    );
}
