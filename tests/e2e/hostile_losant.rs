//! End-to-end: hostile or broken Losant answers. One operator serves a healthy application on
//! the emulator and, on the test kit's [`HostileServer`], one application per misbehaviour (a
//! malformed body, a lying `totalCount`, a huge body, a dripping answer, redirects away and home,
//! HTML error pages, HTML in a JSON message). The healthy application's Integrations converge;
//! each affected Integration shows `LosantUnavailable` or `LosantRejected` with one short line
//! that quotes no HTML and no token; the operator keeps running with a bounded RSS; and its
//! requests to the hostile server back off instead of following the fast resync.

use std::time::{Duration, Instant};

use losant_operator::testkit::*;
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(120);
const TOKEN: &str = "hostile-e2e-token-93ad";
/// Far above the operator's ordinary RSS (tens of MiB), far below what reading the huge
/// bodies whole would take.
const MAX_RSS_KIB: u64 = 256 * 1024;
const RESYNC: Duration = Duration::from_secs(1);

struct Case {
    name: &'static str,
    behaviour: Misbehaviour,
    reason: &'static str,
    /// One of these must be in the message.
    says: &'static [&'static str],
}

fn cases(elsewhere: &HostileServer) -> Vec<Case> {
    let unavailable = "LosantUnavailable";
    let rejected = "LosantRejected";
    let case = |name, behaviour, reason, says| Case {
        name,
        behaviour,
        reason,
        says,
    };
    vec![
        case(
            "malformed",
            Misbehaviour::MalformedJson,
            unavailable,
            &["unreadable answer"],
        ),
        case(
            "endless",
            Misbehaviour::EndlessList {
                claimed_total: 1_000_000_000,
            },
            unavailable,
            &["did not end"],
        ),
        case(
            "huge",
            Misbehaviour::HugeBody { bytes: 1 << 30 },
            unavailable,
            &["larger than", "timed out"],
        ),
        case(
            "drip",
            Misbehaviour::Drip {
                every: Duration::from_millis(100),
            },
            unavailable,
            &["timed out"],
        ),
        case(
            "away",
            Misbehaviour::RedirectTo(elsewhere.base_url().to_owned()),
            rejected,
            &["another host"],
        ),
        case(
            "home",
            Misbehaviour::RedirectSameHost,
            rejected,
            &["the same host"],
        ),
        case(
            "gateway",
            Misbehaviour::HtmlError(502),
            unavailable,
            &["Bad Gateway"],
        ),
        case(
            "down",
            Misbehaviour::HtmlError(503),
            unavailable,
            &["Service Unavailable"],
        ),
        case(
            "html",
            Misbehaviour::HtmlInMessage,
            rejected,
            &["not quoted"],
        ),
    ]
}

fn mqtt_spec(app: &str, name: &str) -> Value {
    json!({
        "applicationRef": {"name": app}, "integrationType": "mqtt", "name": name,
        "mqttConfig": {"host": "broker.example.com", "port": 8883, "protocol": "mqtts"}
    })
}

/// The operator's resident set, in KiB.
fn rss_kib(operator: &OperatorProcess) -> u64 {
    let pid = operator.pid().expect("the operator runs");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("its status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line")
}

#[test]
fn hostile_answers_are_reported_bounded_and_never_stop_the_others() {
    require_cluster!();
    install_crds();
    let ns = TestNamespace::new("hostile-losant");
    let emulator = EmulatorProcess::start(&[]);
    ns.register_log("emulator", emulator.log_path());
    let elsewhere = HostileServer::start([]);
    let cases = cases(&elsewhere);
    let ids: Vec<String> = cases.iter().map(|_| random_object_id()).collect();
    let server = HostileServer::start(
        ids.iter()
            .cloned()
            .zip(cases.iter().map(|case| case.behaviour.clone())),
    );
    let mut operator = OperatorProcess::start(
        ns.name(),
        &["--resync-interval", "1s", "--losant-request-timeout", "2s"],
    );
    ns.install_application(&emulator, "healthy");
    ns.create_secret("hostile-token", &[("token", TOKEN)]);
    for (case, id) in cases.iter().zip(&ids) {
        let app = format!("app-{}", case.name);
        ns.apply_ok(&losant_application_manifest(
            &app,
            id,
            server.base_url(),
            "hostile-token",
            "token",
        ));
        let name = format!("int-{}", case.name);
        ns.apply_ok(&integration_manifest(&name, &mqtt_spec(&app, &name)));
    }
    for index in 0..3 {
        let name = format!("healthy-{index}");
        ns.apply_ok(&integration_manifest(&name, &mqtt_spec("healthy", &name)));
    }

    for index in 0..3 {
        let object = format!("integration/healthy-{index}");
        wait_for_condition(ns.name(), &object, "Ready", "True", TIMEOUT);
    }
    for case in &cases {
        let object = format!("integration/int-{}", case.name);
        let ready = wait_for(TIMEOUT, &format!("{object}: {}", case.reason), || {
            let object = get_object(ns.name(), &object)?;
            let ready = find_condition(&object, "Ready")?.clone();
            (ready["reason"] == case.reason).then_some(ready)
        });
        let message = ready["message"].as_str().unwrap_or_default();
        assert_eq!(ready["status"], "False", "{}: {ready}", case.name);
        assert!(
            case.says.iter().any(|words| message.contains(words)),
            "{}: {message}",
            case.name
        );
        assert!(message.len() < 400, "{}: too long: {message}", case.name);
        assert!(!message.contains('<'), "{}: markup: {message}", case.name);
        assert!(!message.contains(TOKEN), "{}: token: {message}", case.name);
    }
    assert_eq!(elsewhere.requests(), 0, "a redirect was followed");
    assert!(operator.is_running(), "the operator died");

    // Backoff: over two windows, the requests do not keep pace with a resync every second
    // (which would be at least one list per affected object per second), and do not grow.
    let window = Duration::from_secs(20);
    let mut counts = vec![server.requests()];
    let mut peak_rss = rss_kib(&operator);
    for _ in 0..2 {
        let started = Instant::now();
        while started.elapsed() < window {
            std::thread::sleep(Duration::from_secs(1));
            peak_rss = peak_rss.max(rss_kib(&operator));
        }
        counts.push(server.requests());
    }
    let (first, second) = (counts[1] - counts[0], counts[2] - counts[1]);
    let per_resync = (window.as_secs_f64() / RESYNC.as_secs_f64()) as u64 * cases.len() as u64;
    eprintln!(
        "hostile requests: {counts:?} (windows {first}, {second}; linear {per_resync}); peak RSS {peak_rss} KiB"
    );
    assert!(second < per_resync / 2, "{second} requests in {window:?}");
    assert!(
        second <= first + cases.len() as u64,
        "growing: {first} then {second}"
    );
    assert!(peak_rss < MAX_RSS_KIB, "RSS {peak_rss} KiB");
    assert!(operator.is_running(), "the operator died");

    // The healthy application still works: a new Integration converges.
    ns.apply_ok(&integration_manifest(
        "healthy-late",
        &mqtt_spec("healthy", "healthy-late"),
    ));
    wait_for_condition(
        ns.name(),
        "integration/healthy-late",
        "Ready",
        "True",
        TIMEOUT,
    );
    assert_eq!(elsewhere.requests(), 0, "a redirect was followed");
    assert!(
        !operator.logs().contains(TOKEN),
        "the token reached the log"
    );
    assert!(!operator.logs().contains("panicked"), "a panic");
}
