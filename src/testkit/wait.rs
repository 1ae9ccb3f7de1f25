//! Waiting for the cluster to reach a state: polls with a deadline, and conditions of objects.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::kubectl::get_object;

/// How often the waits poll.
const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Polls `f` until it returns true.
///
/// # Panics
/// With `what`, after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut f: impl FnMut() -> bool) {
    wait_for(timeout, what, || f().then_some(()));
}

/// Polls `f` until it returns `Some`, and returns that.
///
/// # Panics
/// With `what`, after `timeout`.
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = f() {
            return value;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// The condition of `type_` in an object's `status.conditions`, if any.
pub fn find_condition<'a>(object: &'a Value, type_: &str) -> Option<&'a Value> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

/// Polls (`kubectl get -o json`) until `kind_name` in `namespace` has condition `condition`
/// with `status` (`"True"`, `"False"`, `"Unknown"`), and returns the object.
///
/// # Panics
/// After `timeout`, with the object's last status, so the failure says what state it was stuck
/// in.
pub fn wait_for_condition(
    namespace: &str,
    kind_name: &str,
    condition: &str,
    status: &str,
    timeout: Duration,
) -> Value {
    let deadline = Instant::now() + timeout;
    let mut last: Option<Value> = None;
    loop {
        if let Some(object) = get_object(namespace, kind_name) {
            if find_condition(&object, condition).is_some_and(|c| c["status"] == status) {
                return object;
            }
            last = Some(object);
        }
        if Instant::now() >= deadline {
            let observed = match &last {
                Some(object) => format!(
                    "generation {}, status:\n{}",
                    object["metadata"]["generation"],
                    serde_json::to_string_pretty(&object["status"]).unwrap_or_default()
                ),
                None => "the object never existed".to_owned(),
            };
            panic!(
                "timed out after {timeout:?} waiting for {kind_name} in {namespace} to have \
                 condition {condition}={status}; last observed {observed}"
            );
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}
