//! End-to-end: the six example integrations converge against a Losant that misbehaves. Each test
//! runs the examples (`examples/`) against an emulator with one kind of fault — 503s
//! (`--error-rate 0.2`), a rate limit of 5 requests per second, 300 ms of latency on every answer,
//! writes whose answers are lost after they took effect (`--fault-after-commit 0.3`, with lists
//! lagging behind creates by 1 s) — and one test with all of them at once. The operator runs with
//! a create grace period of 5 s, above that list lag as it must be.
//!
//! Every test checks that everything converges (all Ready), that Losant ends up with exactly one
//! integration per `Integration` (no duplicate from a retried or lost create), and that there is no
//! hot loop: the requests of the whole run stay within an explicit budget, and a quiet period
//! after convergence adds only a few list calls and no write at all.
//!
//! One more test checks the other side of "no hot loop": a create Losant refuses for good (a token
//! without the create scope) is reported and left alone, not retried back to back.
//!
//! Fault decisions are seeded: each run draws a seed and prints it; `LOSANT_E2E_SEED=N` runs with
//! seed N again (the faults then depend only on the order in which requests arrive).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use losant_operator::testkit::*;
use serde_json::Value;

/// Time for all six to converge. Generous: with lost create answers, an integration may wait a
/// whole create grace period before it is recognised.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(120);
/// The operator's resync interval (set by the harness).
const RESYNC: Duration = Duration::from_secs(3);
/// The quiet period watched after convergence.
const QUIET: Duration = Duration::from_secs(10);
/// Time for the operator to finish reacting to the last status writes of convergence (the
/// follow-up reconciles they trigger) before the quiet period starts.
const SETTLE: Duration = Duration::from_secs(3);
/// The token the operator uses (the harness's own calls use another, so they never eat the
/// operator's rate-limit budget).
const OPERATOR_TOKEN: &str = "faults-operator-token";

/// The `Integration` objects of `examples/` and the remote names they must have.
const EXAMPLES: [(&str, &str); 6] = [
    ("factory-broker", "factory-broker"),
    ("fleet-pubsub", "fleet-pubsub"),
    ("orders-queue", "orders-queue"),
    ("telemetry-hub", "telemetry-hub"),
    ("particle-product", "particle-product"),
    ("market-feed", "Market feed (prod)"),
];

const COLLECTION: &str = "/applications/{applicationId}/integrations";
const ITEM: &str = "/applications/{applicationId}/integrations/{integrationId}";

/// Request counts by (method, route) over all statuses, from the emulator's stats.
#[derive(Clone, Debug, Default, PartialEq)]
struct Counts {
    total: u64,
    by_call: BTreeMap<(String, String), u64>,
    by_status: BTreeMap<u64, u64>,
}

impl Counts {
    fn read(emulator: &EmulatorProcess) -> Counts {
        let stats = emulator.stats();
        let mut counts = Counts {
            total: stats["total"].as_u64().unwrap_or(0),
            ..Counts::default()
        };
        for row in stats["requests"].as_array().into_iter().flatten() {
            let count = row["count"].as_u64().unwrap_or(0);
            let key = (
                row["method"].as_str().unwrap_or_default().to_owned(),
                row["route"].as_str().unwrap_or_default().to_owned(),
            );
            *counts.by_call.entry(key).or_insert(0) += count;
            *counts
                .by_status
                .entry(row["status"].as_u64().unwrap_or(0))
                .or_insert(0) += count;
        }
        counts
    }

    fn get(&self, method: &str, route: &str) -> u64 {
        self.by_call
            .get(&(method.to_owned(), route.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    fn writes(&self) -> u64 {
        self.by_call
            .iter()
            .filter(|((method, _), _)| method != "GET")
            .map(|(_, count)| count)
            .sum()
    }

    /// What happened between `earlier` and `self`.
    fn since(&self, earlier: &Counts) -> Counts {
        let mut by_call = self.by_call.clone();
        for (key, count) in &earlier.by_call {
            *by_call.entry(key.clone()).or_insert(0) -= count;
        }
        by_call.retain(|_, count| *count > 0);
        let mut by_status = self.by_status.clone();
        for (key, count) in &earlier.by_status {
            *by_status.entry(*key).or_insert(0) -= count;
        }
        by_status.retain(|_, count| *count > 0);
        Counts {
            total: self.total - earlier.total,
            by_call,
            by_status,
        }
    }
}

/// The seed of this run's fault decisions.
fn seed() -> u64 {
    std::env::var("LOSANT_E2E_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u32>)
        .into()
}

/// The faults of one run, and what they may cost (for the request budget, see [`budget`]).
struct Faults<'a> {
    /// A label for messages.
    label: &'a str,
    /// Emulator flags.
    emulator_args: Vec<&'a str>,
    /// Fraction of requests refused outright (503 or 429): each call takes on average
    /// `1 / (1 - refused)` attempts.
    refused: f64,
    /// Fraction of creates whose outcome the operator cannot know (a 5xx or a dropped
    /// connection, whether or not the create took effect). Each one holds the next create back
    /// for the create grace period while the operator re-lists by name.
    ambiguous_creates: f64,
}

/// The operator's create grace period in these tests: above the emulator's list lag (1 s), as it
/// must be, and short enough that an ambiguous create costs seconds, not the default 30 s.
const CREATE_GRACE: Duration = Duration::from_secs(5);

/// The request budget of a run that took `elapsed` in all (applying, converging, settling and
/// the quiet period).
///
/// Without faults, a run needs:
/// - 2 lists to verify the application's token (the README: once, then when its Secret changes
///   or every 5 minutes; the second covers a first look that raced the Secret);
/// - per integration: 1 list by name, 1 POST, then 1 read when the status write that records the
///   create triggers the next reconcile: 3 requests, 18 for the six;
/// - the periodic drift checks: one shared list per application per resync interval (3 s), for
///   as long as the run lasts.
///
/// An ambiguous create costs about one list by name per 5 s of grace period, the create again (or
/// the adoption of the one that did land) and the read after it: `grace / 5 s + 3`. Refused
/// requests are retried, multiplying everything by `1 / (1 - refused)` on average.
///
/// The budget is twice that estimate plus 10: loose enough for bad luck, tight enough that a
/// per-object loop (one reconcile every few hundred milliseconds adds hundreds of requests a
/// minute) or a retried POST blows it.
fn budget(faults: &Faults<'_>, elapsed: Duration) -> u64 {
    let integrations = EXAMPLES.len() as f64;
    let converge = 2.0 + integrations * 3.0;
    let resync_lists = (elapsed.as_secs_f64() / RESYNC.as_secs_f64()).ceil() + 1.0;
    let ambiguous =
        integrations * faults.ambiguous_creates * (CREATE_GRACE.as_secs_f64() / 5.0 + 3.0);
    let estimate = (converge + resync_lists + ambiguous) / (1.0 - faults.refused);
    (2.0 * estimate + 10.0).ceil() as u64
}

/// `request` with retries: the harness's own calls meet the same faults as the operator's.
fn with_retries(
    emulator: &EmulatorProcess,
    what: &str,
    mut request: impl FnMut(&EmulatorProcess) -> (reqwest::StatusCode, Value),
) -> Value {
    for _ in 0..30 {
        let (status, body) = request(emulator);
        if status.is_success() {
            return body;
        }
        assert!(
            status.as_u16() == 503 || status.as_u16() == 429,
            "{what}: {status} {body}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("{what}: the emulator kept refusing");
}

fn run(prefix: &str, faults: Faults<'_>) {
    let seed = seed();
    let seed_text = seed.to_string();
    install_crds();
    let ns = TestNamespace::new(prefix);
    let mut emulator_args = vec!["--token", OPERATOR_TOKEN, "--seed", &seed_text];
    emulator_args.extend(&faults.emulator_args);
    let emulator = EmulatorProcess::start(&emulator_args);
    ns.register_log("emulator", emulator.log_path());
    let grace = format!("{}s", CREATE_GRACE.as_secs());
    let mut operator = OperatorProcess::start(ns.name(), &["--create-grace-period", &grace]);
    let started = Instant::now();
    for manifest in example_manifests(&emulator, OPERATOR_TOKEN) {
        ns.apply_ok(&manifest);
    }
    let applied_in = started.elapsed();
    let deadline = Instant::now() + CONVERGE_TIMEOUT;
    for (object, _) in EXAMPLES {
        let left = deadline.saturating_duration_since(Instant::now());
        wait_for_condition(
            ns.name(),
            &format!("integration/{object}"),
            "Ready",
            "True",
            left.max(Duration::from_secs(1)),
        );
    }
    let converged_in = started.elapsed();
    let converged = Counts::read(&emulator);
    std::thread::sleep(SETTLE);
    let at_convergence = Counts::read(&emulator);
    std::thread::sleep(QUIET);
    let after_quiet = Counts::read(&emulator);
    let elapsed = started.elapsed();
    let quiet = after_quiet.since(&at_convergence);
    let allowed = budget(&faults, elapsed);
    // The application is re-verified (one list) whenever its controller reconciles it, and it
    // reconciles on every change of an Integration that refers to it (for in-use finalizers).
    let app_verifications = operator
        .logs()
        .lines()
        .filter(|l| {
            l.contains("reconciling object{object.ref=LosantApplication")
                && l.contains("losant request method=GET")
                && l.contains("attempt=0")
        })
        .count();
    println!(
        "{}: seed {seed}, applied in {applied_in:.1?}, converged after {converged_in:.1?} with {} \
         requests ({} application verifications), {} more while settling, {} in {QUIET:?} of \
         quiet; {} in all, budget {allowed} for {elapsed:.0?}; by status {:?}; quiet {:?}",
        faults.label,
        converged.total,
        app_verifications,
        at_convergence.total - converged.total,
        quiet.total,
        after_quiet.total,
        after_quiet.by_status,
        quiet.by_call
    );

    // Exactly one remote per Integration, the one its status records. (The harness's own calls
    // start here, after the last stats snapshot.)
    let remotes = with_retries(&emulator, "listing integrations", |e| {
        e.get(&format!(
            "{}?perPage=1000&_links=false",
            e.integrations_path()
        ))
    })["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for (object, remote_name) in EXAMPLES {
        let named: Vec<&Value> = remotes
            .iter()
            .filter(|r| r["name"] == remote_name)
            .collect();
        let recorded = get_object(ns.name(), &format!("integration/{object}"))
            .expect("the Integration exists")["status"]["integrationId"]
            .clone();
        assert_eq!(
            named.len(),
            1,
            "{}: {object}: Losant has {} integrations named {remote_name:?}",
            faults.label,
            named.len()
        );
        assert_eq!(named[0]["id"], recorded, "{}: {object}", faults.label);
    }
    assert_eq!(
        remotes.len(),
        EXAMPLES.len(),
        "{}: no other integration exists",
        faults.label
    );

    // No hot loop: the whole run within budget, and the quiet period only a few lists.
    assert!(
        after_quiet.total <= allowed,
        "{}: {} requests to Losant in {elapsed:.0?}, over the budget of {allowed}: {:?}",
        faults.label,
        after_quiet.total,
        after_quiet.by_call
    );
    assert_eq!(
        quiet.writes(),
        0,
        "{}: writes to Losant after convergence: {:?}",
        faults.label,
        quiet.by_call
    );
    // One shared drift-check list per resync interval: 10 s of 3 s resyncs is 4 at most, each
    // possibly retried once or twice under faults.
    let quiet_lists = quiet.get("GET", COLLECTION);
    let quiet_lists_allowed = ((QUIET.as_secs_f64() / RESYNC.as_secs_f64()).ceil() as u64 + 1)
        * if faults.refused > 0.0 { 2 } else { 1 };
    assert!(
        quiet_lists <= quiet_lists_allowed,
        "{}: {quiet_lists} list calls in {QUIET:?} of quiet (at most {quiet_lists_allowed})",
        faults.label
    );
    assert!(
        quiet.get("GET", ITEM) <= 1,
        "{}: the quiet period read integrations one by one: {:?}",
        faults.label,
        quiet.by_call
    );
    assert!(
        operator.is_running(),
        "{}: the operator exited",
        faults.label
    );
    assert!(
        !operator.logs().contains("panicked"),
        "{}: the operator panicked",
        faults.label
    );
}

#[test]
fn examples_converge_when_a_fifth_of_requests_fail() {
    require_cluster!();
    run(
        "faults-errors",
        Faults {
            label: "error-rate 0.2",
            emulator_args: vec!["--error-rate", "0.2"],
            refused: 0.2,
            // A 503 to a POST may hide a create that happened: the operator cannot tell.
            ambiguous_creates: 0.2,
        },
    );
}

#[test]
fn examples_converge_under_a_rate_limit_of_five_per_second() {
    require_cluster!();
    run(
        "faults-rate",
        Faults {
            label: "rate-limit 5/s",
            emulator_args: vec!["--rate-limit", "5"],
            // The operator may burst 20 requests (its own limit is 10/s); what goes over 5/s is
            // refused with 429 and a Retry-After it honours. A 429 is no ambiguous create.
            refused: 0.5,
            ambiguous_creates: 0.0,
        },
    );
}

#[test]
fn examples_converge_with_slow_answers() {
    require_cluster!();
    run(
        "faults-latency",
        Faults {
            label: "latency 300 ms",
            emulator_args: vec!["--latency-ms", "300"],
            refused: 0.0,
            ambiguous_creates: 0.0,
        },
    );
}

#[test]
fn examples_converge_when_write_answers_are_lost() {
    require_cluster!();
    run(
        "faults-commit",
        Faults {
            label: "fault-after-commit 0.3, list lag 1 s",
            emulator_args: vec!["--fault-after-commit", "0.3", "--list-lag-ms", "1000"],
            refused: 0.0,
            ambiguous_creates: 0.3,
        },
    );
}

#[test]
fn examples_converge_with_every_fault_at_once() {
    require_cluster!();
    run(
        "faults-all",
        Faults {
            label: "all faults at once",
            emulator_args: vec![
                "--error-rate",
                "0.2",
                "--rate-limit",
                "5",
                "--latency-ms",
                "300",
                "--fault-after-commit",
                "0.3",
                "--list-lag-ms",
                "1000",
            ],
            refused: 0.5,
            // Refused outright (503) or lost after it took effect.
            ambiguous_creates: 0.2 + 0.8 * 0.3,
        },
    );
}

/// A create that Losant refuses for good (403: the token may list but not create) is reported and
/// then left alone until something changes — retried after the stalled interval (minutes), not in
/// a loop. The operator's own writes to the object while it tries (the create-pending marker, set
/// before the POST and cleared after the refusal) must not set off another POST.
#[test]
fn a_create_refused_for_good_is_not_retried_in_a_loop() {
    require_cluster!();
    install_crds();
    let ns = TestNamespace::new("faults-refused");
    let lister = "lister-token";
    let scoped = format!("{lister}:integrations.get,integration.get");
    let emulator = EmulatorProcess::start(&["--token", &scoped]);
    ns.register_log("emulator", emulator.log_path());
    ns.create_secret("lister", &[("token", lister)]);
    ns.apply_ok(&losant_application_manifest(
        "app",
        emulator.application_id(),
        emulator.base_url(),
        "lister",
        "token",
    ));
    ns.create_secret("aws", &[("secret", "aws-secret-value")]);
    let operator = OperatorProcess::start(ns.name(), &[]);
    ns.apply_ok(&integration_manifest(
        "queue",
        &serde_json::json!({
            "applicationRef": {"name": "app"}, "integrationType": "sqs",
            "sqsConfig": {"queueUrl": "https://q",
                          "secretAccessKeySecretRef": {"name": "aws", "key": "secret"}}
        }),
    ));
    let stalled = wait_for_condition(
        ns.name(),
        "integration/queue",
        "Stalled",
        "True",
        CONVERGE_TIMEOUT,
    );
    let reason = find_condition(&stalled, "Ready").expect("a Ready condition")["reason"].clone();
    assert!(
        reason == "InsufficientScope" || reason == "Forbidden",
        "reason {reason}"
    );
    let posts = || Counts::read(&emulator).get("POST", COLLECTION);
    let at_stall = posts();
    std::thread::sleep(QUIET);
    let after_quiet = posts();
    println!(
        "refused create: {at_stall} POSTs until Stalled, {} more in {QUIET:?}; {} reconciles \
         logged",
        after_quiet - at_stall,
        operator
            .logs()
            .matches("reconciled object=Integration")
            .count()
    );
    assert_eq!(
        after_quiet - at_stall,
        0,
        "a Stalled Integration kept POSTing ({at_stall} POSTs until it was Stalled, {} more in \
         {QUIET:?})",
        after_quiet - at_stall
    );
}
