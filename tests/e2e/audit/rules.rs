//! What the operator may do to Secrets, judged from the API server's audit events (Secrets are
//! audited at `RequestResponse`: request and response bodies).
//!
//! - Writes are patches of `metadata.finalizers` only (`test` preconditions allowed), answered
//!   with metadata only; no create, update or delete.
//! - A read that returns (or would return) data names a Secret some `LosantApplication` or
//!   `Integration` of its namespace referenced at that moment; metadata-only reads are free.
//! - Lists answer `PartialObjectMetadataList`. A watch's stream and its `Accept` header are not
//!   in the audit log: a watch must follow a metadata-only list of the same scope (kube's watcher
//!   lists and watches through one `Api`, whose `Accept` header
//!   `controller::secret_watch_tests` pins).

use std::collections::{BTreeSet, HashSet};

use jiff::Timestamp;
use losant_operator::testkit::{OPERATOR_USER, received_at};
use serde_json::Value;

/// When each Secret was referenced, as the test set it up: `begin` before applying the object
/// that references it, `end` once the operator has acted on the reference going.
pub struct References {
    /// The namespaces these windows speak for; reads elsewhere are not judged.
    namespaces: BTreeSet<String>,
    windows: Vec<Window>,
}

struct Window {
    namespace: String,
    secret: String,
    from: Timestamp,
    until: Option<Timestamp>,
}

impl References {
    pub fn new(namespaces: &[&str]) -> References {
        References {
            namespaces: namespaces.iter().map(|ns| (*ns).to_owned()).collect(),
            windows: Vec::new(),
        }
    }

    pub fn begin(&mut self, namespace: &str, secret: &str) {
        self.windows.push(Window {
            namespace: namespace.to_owned(),
            secret: secret.to_owned(),
            from: Timestamp::now(),
            until: None,
        });
    }

    pub fn end(&mut self, namespace: &str, secret: &str) {
        let now = Timestamp::now();
        for window in &mut self.windows {
            if window.namespace == namespace && window.secret == secret && window.until.is_none() {
                window.until = Some(now);
            }
        }
    }

    fn covers(&self, namespace: &str, secret: &str, at: Timestamp) -> bool {
        self.windows.iter().any(|w| {
            w.namespace == namespace
                && w.secret == secret
                && w.from <= at
                && w.until.is_none_or(|until| at <= until)
        })
    }
}

/// What one request of the operator did to a Secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    FinalizerAdded,
    FinalizerRemoved,
    /// A merge patch setting the whole list: which way cannot be told.
    FinalizersSet,
    DataRead,
    MetadataRead,
    MetadataList,
    /// A list the API server refused: nothing was read.
    RefusedList,
    Watch,
}

/// One request of the operator to Secrets.
#[derive(Debug)]
pub struct Observed {
    pub namespace: String,
    /// `None` for a list or a watch.
    pub name: Option<String>,
    pub access: Access,
}

/// The rules broken, and what was done.
#[derive(Debug, Default)]
pub struct Verdict {
    pub violations: Vec<String>,
    pub observed: Vec<Observed>,
}

/// Judges every request [`OPERATOR_USER`] made to Secrets among `events`; see the module doc.
/// Writes and lists are judged in every namespace, reads and watches only in those
/// `references` speak for.
pub fn judge(events: &[Value], references: &References) -> Verdict {
    let mut verdict = Verdict::default();
    let mut listed_scopes: HashSet<String> = HashSet::new();
    for event in operator_secret_requests(events) {
        let namespace = event["objectRef"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let name = event["objectRef"]["name"].as_str().map(str::to_owned);
        let judged_here = references.namespaces.contains(&namespace);
        let verb = event["verb"].as_str().unwrap_or_default();
        let outcome = match verb {
            "patch" => judge_patch(event),
            "get" => judge_get(event, &namespace, name.as_deref(), references, judged_here),
            "list" => judge_list(event),
            "watch" if !judged_here || listed_scopes.contains(&namespace) => Ok(Access::Watch),
            "watch" => Err("a watch no metadata-only list of its scope came before".to_owned()),
            other => Err(format!(
                "a {other}: the operator only ever patches a Secret's finalizers"
            )),
        };
        match outcome {
            Ok(access) => {
                if access == Access::MetadataList {
                    listed_scopes.insert(namespace.clone());
                }
                verdict.observed.push(Observed {
                    namespace,
                    name,
                    access,
                });
            }
            Err(why) => verdict
                .violations
                .push(format!("{why}\n    in {}", describe(event))),
        }
    }
    verdict
}

/// The operator's requests to Secrets, one event each (a finished request's `ResponseComplete`,
/// else, for a watch still running, its `ResponseStarted`), in the order they were received.
fn operator_secret_requests(events: &[Value]) -> Vec<&Value> {
    let ours = |e: &&Value| {
        e["user"]["username"] == OPERATOR_USER
            && e["objectRef"]["resource"] == "secrets"
            && e["objectRef"]["apiGroup"]
                .as_str()
                .unwrap_or_default()
                .is_empty()
    };
    let complete: HashSet<&str> = events
        .iter()
        .filter(ours)
        .filter(|e| e["stage"] == "ResponseComplete")
        .filter_map(|e| e["auditID"].as_str())
        .collect();
    let mut requests: Vec<&Value> = events
        .iter()
        .filter(ours)
        .filter(|e| {
            e["stage"] == "ResponseComplete"
                || (e["stage"] == "ResponseStarted"
                    && !complete.contains(e["auditID"].as_str().unwrap_or_default()))
        })
        .collect();
    requests.sort_by_key(|e| received_at(e));
    requests
}

fn succeeded(event: &Value) -> bool {
    event["responseStatus"]["code"]
        .as_u64()
        .is_some_and(|code| (200..300).contains(&code))
}

fn response_kind(event: &Value) -> Option<&str> {
    event["responseObject"]["kind"].as_str()
}

fn judge_patch(event: &Value) -> Result<Access, String> {
    let body = &event["requestObject"];
    let access = match body {
        Value::Array(operations) => finalizer_json_patch(operations)?,
        Value::Object(_) => finalizer_merge_patch(body)?,
        _ => return Err("a patch whose body the audit log lacks (not RequestResponse?)".into()),
    };
    if succeeded(event) && response_kind(event) != Some("PartialObjectMetadata") {
        return Err(format!(
            "a finalizer patch answered with {:?}: it asked for the Secret's data",
            response_kind(event)
        ));
    }
    Ok(access)
}

fn is_finalizers_path(path: &str) -> bool {
    path == "/metadata/finalizers"
        || path
            .strip_prefix("/metadata/finalizers/")
            .is_some_and(|index| {
                index == "-" || (!index.is_empty() && index.bytes().all(|b| b.is_ascii_digit()))
            })
}

/// A JSON patch: `test`s of the resourceVersion or the finalizers, and changes of the
/// finalizers, nothing else.
fn finalizer_json_patch(operations: &[Value]) -> Result<Access, String> {
    let mut access = None;
    for operation in operations {
        let path = operation["path"].as_str().unwrap_or_default();
        let op = operation["op"].as_str().unwrap_or_default();
        match op {
            "test" if path == "/metadata/resourceVersion" || is_finalizers_path(path) => {}
            "add" if is_finalizers_path(path) => access = Some(Access::FinalizerAdded),
            "remove" if is_finalizers_path(path) => access = Some(Access::FinalizerRemoved),
            "replace" if is_finalizers_path(path) => access = Some(Access::FinalizersSet),
            _ => {
                return Err(format!(
                    "a patch operation beyond the finalizers: {operation}"
                ));
            }
        }
    }
    access.ok_or_else(|| "a patch that changes nothing".to_owned())
}

/// A merge (or strategic merge) patch of `metadata.finalizers` alone; the object's identity
/// and resourceVersion may be stated as preconditions.
fn finalizer_merge_patch(body: &Value) -> Result<Access, String> {
    const PRECONDITIONS: [&str; 4] = ["name", "namespace", "uid", "resourceVersion"];
    const FINALIZER_KEYS: [&str; 3] = [
        "finalizers",
        "$setElementOrder/finalizers",
        "$deleteFromPrimitiveList/finalizers",
    ];
    let beyond = |why: &str| Err(format!("a patch beyond the finalizers ({why}): {body}"));
    let Some(top) = body.as_object() else {
        return beyond("not an object");
    };
    if let Some(key) = top
        .keys()
        .find(|k| !["metadata", "apiVersion", "kind"].contains(&k.as_str()))
    {
        return beyond(key);
    }
    let metadata = top
        .get("metadata")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if let Some(key) = metadata
        .keys()
        .find(|k| !PRECONDITIONS.contains(&k.as_str()) && !FINALIZER_KEYS.contains(&k.as_str()))
    {
        return beyond(key);
    }
    if FINALIZER_KEYS
        .iter()
        .all(|key| !metadata.contains_key(*key))
    {
        return Err(format!("a patch that changes nothing: {body}"));
    }
    Ok(Access::FinalizersSet)
}

fn judge_get(
    event: &Value,
    namespace: &str,
    name: Option<&str>,
    references: &References,
    judged_here: bool,
) -> Result<Access, String> {
    if response_kind(event) == Some("PartialObjectMetadata") {
        return Ok(Access::MetadataRead);
    }
    if succeeded(event) && response_kind(event).is_none() {
        return Err("a read whose answer the audit log lacks (not RequestResponse?)".into());
    }
    // A Secret, or a failure (nothing read, but its data was asked for).
    let Some(at) = received_at(event) else {
        return Err("a read without a timestamp".into());
    };
    let name = name.unwrap_or_default();
    if judged_here && !references.covers(namespace, name, at) {
        return Err(format!(
            "asked for the data of Secret {namespace}/{name}, which nothing referenced then"
        ));
    }
    Ok(Access::DataRead)
}

fn judge_list(event: &Value) -> Result<Access, String> {
    match response_kind(event) {
        Some("PartialObjectMetadataList") => Ok(Access::MetadataList),
        _ if !succeeded(event) => Ok(Access::RefusedList),
        None => Err("a list whose answer the audit log lacks (not RequestResponse?)".into()),
        Some(kind) => Err(format!("a list answered with {kind}: Secret data")),
    }
}

fn describe(event: &Value) -> String {
    format!(
        "{} {} (code {}, at {}, auditID {})",
        event["verb"].as_str().unwrap_or("?"),
        event["requestURI"].as_str().unwrap_or("?"),
        event["responseStatus"]["code"],
        event["requestReceivedTimestamp"].as_str().unwrap_or("?"),
        event["auditID"].as_str().unwrap_or("?"),
    )
}

/// The rules against hand-made events: each breach is caught, each allowed request passes.
#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const AT: &str = "2030-01-01T00:00:00.000001Z";

    fn event(verb: &str, name: Option<&str>, request: Value, response: Value) -> Value {
        json!({
            "auditID": format!("{verb}-{name:?}-{request}-{response}"), "stage": "ResponseComplete",
            "verb": verb, "requestURI": "/api/v1/namespaces/ns/secrets",
            "user": {"username": OPERATOR_USER},
            "objectRef": {"resource": "secrets", "namespace": "ns", "name": name},
            "responseStatus": {"code": if response["kind"] == "Status" { 404 } else { 200 }},
            "requestReceivedTimestamp": AT,
            "requestObject": request, "responseObject": response,
        })
    }

    fn kind(kind: &str) -> Value {
        json!({"kind": kind})
    }

    fn violations(events: &[Value], references: &References) -> usize {
        judge(events, references).violations.len()
    }

    #[test]
    fn writes_may_change_finalizers_only_and_ask_for_no_data() {
        let refs = References::new(&["ns"]);
        let add = json!([{"op": "test", "path": "/metadata/resourceVersion", "value": "5"},
            {"op": "add", "path": "/metadata/finalizers/-", "value": "losant.io/in-use"}]);
        let meta = kind("PartialObjectMetadata");
        let allowed = [
            event("patch", Some("t"), add.clone(), meta.clone()),
            event(
                "patch",
                Some("t"),
                json!({"metadata": {"finalizers": null}}),
                meta.clone(),
            ),
        ];
        assert_eq!(violations(&allowed, &refs), 0);
        let breaches = [
            event(
                "patch",
                Some("t"),
                json!([{"op": "add", "path": "/metadata/labels", "value": {}}]),
                meta.clone(),
            ),
            event(
                "patch",
                Some("t"),
                json!([{"op": "replace", "path": "/data/token", "value": "x"}]),
                meta.clone(),
            ),
            event(
                "patch",
                Some("t"),
                json!({"metadata": {"finalizers": [], "labels": {}}}),
                meta.clone(),
            ),
            event(
                "patch",
                Some("t"),
                json!({"data": {"token": "eA=="}}),
                meta.clone(),
            ),
            event("patch", Some("t"), add, kind("Secret")),
            event(
                "update",
                Some("t"),
                json!({"kind": "Secret"}),
                kind("Secret"),
            ),
            event(
                "create",
                Some("t"),
                json!({"kind": "Secret"}),
                kind("Secret"),
            ),
            event("delete", Some("t"), Value::Null, kind("Status")),
        ];
        for breach in &breaches {
            assert_eq!(
                violations(std::slice::from_ref(breach), &refs),
                1,
                "{breach}"
            );
        }
    }

    #[test]
    fn data_is_read_only_from_secrets_referenced_then() {
        let mut refs = References::new(&["ns"]);
        let at: Timestamp = AT.parse().unwrap();
        let read = |name| event("get", Some(name), Value::Null, kind("Secret"));
        refs.windows.push(Window {
            namespace: "ns".into(),
            secret: "token".into(),
            from: at,
            until: Some(at),
        });
        assert_eq!(violations(&[read("token")], &refs), 0);
        assert_eq!(violations(&[read("other")], &refs), 1);
        let missing = event("get", Some("other"), Value::Null, kind("Status"));
        assert_eq!(violations(&[missing], &refs), 1, "asking is reading");
        let metadata = event(
            "get",
            Some("other"),
            Value::Null,
            kind("PartialObjectMetadata"),
        );
        assert_eq!(violations(&[metadata], &refs), 0);
        refs.windows[0].until = Some(at - jiff::SignedDuration::from_micros(1));
        assert_eq!(
            violations(&[read("token")], &refs),
            1,
            "no longer referenced"
        );
        let elsewhere = References::new(&["another"]);
        assert_eq!(violations(&[read("other")], &elsewhere), 0, "not judged");
    }

    #[test]
    fn lists_and_watches_are_metadata_only() {
        let refs = References::new(&["ns"]);
        let list = |answer| event("list", None, Value::Null, kind(answer));
        let watch = event("watch", None, Value::Null, Value::Null);
        assert_eq!(
            violations(&[list("PartialObjectMetadataList"), watch.clone()], &refs),
            0
        );
        assert_eq!(
            violations(&[list("Status")], &refs),
            0,
            "refused: nothing read"
        );
        assert_eq!(violations(&[list("SecretList")], &refs), 1);
        assert_eq!(
            violations(&[watch], &refs),
            1,
            "a watch with no metadata list first"
        );
    }

    #[test]
    fn only_the_operators_requests_to_secrets_are_judged() {
        let refs = References::new(&["ns"]);
        let mut admin = event("update", Some("t"), Value::Null, kind("Secret"));
        admin["user"]["username"] = json!("losant-admin");
        let mut config_map = event("update", Some("t"), Value::Null, kind("ConfigMap"));
        config_map["objectRef"]["resource"] = json!("configmaps");
        assert_eq!(violations(&[admin, config_map], &refs), 0);
    }
}
