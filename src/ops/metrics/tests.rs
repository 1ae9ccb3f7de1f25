//! The metrics as scraped: names, labels, bounds and zeroes.

use super::caches::MAX_REASONS_PER_KIND;
use super::*;

fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

#[test]
fn reconciles_are_counted_by_kind_and_result() {
    let metrics = Metrics::new();
    metrics.reconcile_finished("Integration", true, Duration::from_millis(20));
    metrics.reconcile_finished("Integration", true, Duration::from_millis(20));
    metrics.reconcile_finished("Integration", false, Duration::from_millis(20));
    let text = metrics.encode().expect("encodes");
    assert_eq!(
        sample(
            &text,
            r#"losant_operator_reconciles_total{kind="Integration",result="ok"}"#
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"losant_operator_reconciles_total{kind="Integration",result="error"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"losant_operator_reconcile_duration_seconds_count{kind="Integration"}"#
        ),
        Some(3.0)
    );
    assert!(text.ends_with("# EOF\n"), "OpenMetrics ends with EOF");
}

#[test]
fn requests_count_statuses_429s_and_retries() {
    let metrics = Metrics::new();
    let observer = metrics.losant_observer();
    observer.observe("get", Some(200), false);
    observer.observe("get", Some(429), false);
    observer.observe("get", Some(429), true);
    observer.observe("patch", None, true);
    observer.observe("made-up", Some(9999), false);
    let text = metrics.encode().expect("encodes");
    let get = |s: &str| sample(&text, s);
    assert_eq!(
        get(r#"losant_operator_losant_requests_total{operation="get",status="429"}"#),
        Some(2.0)
    );
    assert_eq!(
        get(r#"losant_operator_losant_requests_total{operation="patch",status="0"}"#),
        Some(1.0)
    );
    assert_eq!(
        get(r#"losant_operator_losant_requests_total{operation="other",status="other"}"#),
        Some(1.0)
    );
    assert_eq!(
        get(r#"losant_operator_losant_rate_limited_total{operation="get"}"#),
        Some(2.0)
    );
    assert_eq!(
        get(r#"losant_operator_losant_retries_total{operation="get"}"#),
        Some(1.0)
    );
    assert_eq!(
        get(r#"losant_operator_losant_retries_total{operation="patch"}"#),
        Some(1.0)
    );
}

#[test]
fn condition_reasons_are_bounded_and_zeroed_when_gone() {
    let metrics = Metrics::new();
    let mut counts = BTreeMap::new();
    counts.insert("Synced".to_owned(), 3);
    counts.insert("name with spaces: secret".to_owned(), 1);
    metrics.set_conditions("Integration", &counts);
    let text = metrics.encode().expect("encodes");
    assert_eq!(
        sample(
            &text,
            r#"losant_operator_objects{kind="Integration",reason="Synced"}"#
        ),
        Some(3.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"losant_operator_objects{kind="Integration",reason="Other"}"#
        ),
        Some(1.0)
    );
    assert!(!text.contains("secret"), "free text never becomes a label");

    metrics.set_conditions("Integration", &BTreeMap::new());
    let text = metrics.encode().expect("encodes");
    assert_eq!(
        sample(
            &text,
            r#"losant_operator_objects{kind="Integration",reason="Synced"}"#
        ),
        Some(0.0)
    );

    for i in 0..100 {
        metrics.set_condition("Integration", &format!("Reason{i}"), 1);
    }
    let series = metrics
        .encode()
        .expect("encodes")
        .lines()
        .filter(|l| l.starts_with("losant_operator_objects{kind=\"Integration\""))
        .count();
    assert!(series <= MAX_REASONS_PER_KIND, "{series} series");
}

#[test]
fn condition_sources_are_summed_on_every_scrape() {
    let metrics = Metrics::new();
    for n in [3, 4] {
        metrics.count_conditions("LosantApplication", move || {
            BTreeMap::from([("Verified".to_owned(), n)])
        });
    }
    let text = metrics.encode().expect("encodes");
    assert_eq!(
        sample(
            &text,
            r#"losant_operator_objects{kind="LosantApplication",reason="Verified"}"#
        ),
        Some(7.0)
    );
}

#[test]
fn registered_kinds_start_at_zero() {
    let metrics = Metrics::new();
    metrics.register_kind("Integration");
    let text = metrics.encode().expect("encodes");
    assert_eq!(
        sample(
            &text,
            r#"losant_operator_reconciles_total{kind="Integration",result="error"}"#
        ),
        Some(0.0)
    );
}

#[test]
fn drift_and_leader() {
    let metrics = Metrics::new();
    metrics.drift_corrected();
    metrics.set_leader(true);
    let text = metrics.encode().expect("encodes");
    assert_eq!(
        sample(&text, "losant_operator_drift_corrections_total"),
        Some(1.0)
    );
    assert_eq!(sample(&text, "losant_operator_leader"), Some(1.0));
}

#[test]
fn connections_are_counted_by_state_from_every_source() {
    let metrics = Metrics::new();
    let text = metrics.encode().expect("encodes");
    assert!(
        !text.contains("integration_connections{"),
        "no source, no series: {text}"
    );
    metrics.count_connections(|| [2, 1, 0, 3]);
    metrics.count_connections(|| [1, 0, 0, 0]);
    let text = metrics.encode().expect("encodes");
    for (state, expected) in [
        ("connected", 3.0),
        ("disconnected", 1.0),
        ("unknown", 0.0),
        ("none", 3.0),
    ] {
        let series = format!("losant_operator_integration_connections{{state=\"{state}\"}}");
        assert_eq!(sample(&text, &series), Some(expected), "{state}: {text}");
    }
}

#[tokio::test]
async fn runtime_tasks_are_read_on_each_scrape() {
    let metrics = Metrics::new();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let waiting = tokio::spawn(async move { stopped.await.ok() });
    let text = metrics.encode().unwrap();
    // The test's own task and the one spawned above, at least.
    assert!(
        sample(&text, "losant_operator_runtime_tasks").unwrap() >= 1.0,
        "{text}"
    );
    stop.send(()).unwrap();
    waiting.await.unwrap();
}
