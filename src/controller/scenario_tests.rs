//! Scenario tests of the Integration reconciler: a mocked Kubernetes API server (`tower-test`)
//! that records every request, and the Losant emulator over real HTTP. They pin what kill loops
//! on a real cluster can only sample: the crash-safe order of writes (finalizer and
//! create-pending marker → POST → id in annotations → status), that status is written once, and
//! that an object in sync costs no write at all.

use std::sync::{Arc, Mutex};

use http::{Method, Request, Response, StatusCode};
use jiff::Timestamp;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::client::Body;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use serde_json::{Value, json};

use super::{Caches, Clock, Context, Settings};
use crate::crd::{Integration, LosantApplication};
use crate::emulator::{self, EmulatorConfig, RunningEmulator, TokenSpec};
use crate::ops::{Metrics, Readiness};

const NAMESPACE: &str = "scenario";
const APP: &str = "575ec8687ae143cd83dc4a97";
const TOKEN: &str = "scenario-token-3b7e";
const PASSWORD: &str = "scenario-password-91d2";

/// One request the API server saw, and how many integrations Losant held when it arrived.
#[derive(Clone, Debug)]
struct Call {
    method: Method,
    path: String,
    body: Value,
    remotes: usize,
}

impl Call {
    fn is_write(&self) -> bool {
        self.method != Method::GET
    }
}

/// The mocked API server: the Integration as stored, and the log of requests.
#[derive(Clone)]
struct ApiServer {
    object: Arc<Mutex<Value>>,
    calls: Arc<Mutex<Vec<Call>>>,
}

impl ApiServer {
    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    fn object(&self) -> Integration {
        serde_json::from_value(self.object.lock().unwrap().clone()).unwrap()
    }

    /// Serves `handle` until the client is dropped.
    fn serve(
        &self,
        mut handle: tower_test::mock::Handle<Request<Body>, Response<Body>>,
        emulator: Arc<RunningEmulator>,
    ) -> tokio::task::JoinHandle<()> {
        let server = self.clone();
        tokio::spawn(async move {
            while let Some((request, respond)) = handle.next_request().await {
                let (parts, body) = request.into_parts();
                let bytes = body.collect_bytes().await.unwrap();
                let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                let call = Call {
                    method: parts.method.clone(),
                    path: parts.uri.path().to_owned(),
                    body,
                    remotes: emulator.integrations(APP).unwrap_or_default().len(),
                };
                server.calls.lock().unwrap().push(call.clone());
                let (status, answer) = server.answer(&call);
                let response = Response::builder()
                    .status(status)
                    .header("content-type", "application/json")
                    .body(Body::from(serde_json::to_vec(&answer).unwrap()))
                    .unwrap();
                respond.send_response(response);
            }
        })
    }

    fn answer(&self, call: &Call) -> (StatusCode, Value) {
        let integration = format!("/apis/losant.io/v1alpha1/namespaces/{NAMESPACE}/integrations/");
        let secrets = format!("/api/v1/namespaces/{NAMESPACE}/secrets/");
        let mut object = self.object.lock().unwrap();
        match (&call.method, call.path.as_str()) {
            (&Method::GET, path) if path.starts_with(&integration) => {
                (StatusCode::OK, object.clone())
            }
            (&Method::PATCH, path)
                if path.starts_with(&integration) && path.ends_with("/status") =>
            {
                object["status"] = call.body["status"].clone();
                bump(&mut object);
                (StatusCode::OK, object.clone())
            }
            (&Method::PATCH, path) if path.starts_with(&integration) => {
                let expected = &call.body["metadata"]["resourceVersion"];
                if !expected.is_null() && *expected != object["metadata"]["resourceVersion"] {
                    return (StatusCode::CONFLICT, status_of(409, "Conflict"));
                }
                json_patch::merge(&mut object, &call.body);
                bump(&mut object);
                (StatusCode::OK, object.clone())
            }
            (&Method::GET, path) if path.starts_with(&secrets) => {
                let name = &path[secrets.len()..];
                (StatusCode::OK, secret(name))
            }
            (&Method::POST, path) if path.ends_with("/events") => {
                (StatusCode::CREATED, call.body.clone())
            }
            _ => (StatusCode::NOT_FOUND, status_of(404, "NotFound")),
        }
    }
}

fn bump(object: &mut Value) {
    let version: u64 = object["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    object["metadata"]["resourceVersion"] = json!((version + 1).to_string());
}

fn status_of(code: u16, reason: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
        "message": reason, "reason": reason, "code": code})
}

fn secret(name: &str) -> Value {
    let (key, value) = match name {
        "losant-api-token" => ("token", TOKEN),
        _ => ("mqtt-password", PASSWORD),
    };
    let mut secret = Secret::default();
    secret.metadata.name = Some(name.into());
    secret.metadata.namespace = Some(NAMESPACE.into());
    secret.metadata.resource_version = Some("5".into());
    secret.data = Some([(key.to_owned(), ByteString(value.as_bytes().to_vec()))].into());
    // Serialized as the API server sends it: data base64-encoded.
    serde_json::to_value(secret).unwrap()
}

fn integration() -> Value {
    json!({
        "apiVersion": "losant.io/v1alpha1", "kind": "Integration",
        "metadata": {"name": "broker", "namespace": NAMESPACE, "uid": "uid-broker",
            "generation": 1, "resourceVersion": "10"},
        "spec": {
            "applicationRef": {"name": "app"}, "integrationType": "mqtt",
            "topics": ["factory/+/telemetry"],
            "mqttConfig": {"host": "broker.example.com", "port": 8883, "protocol": "mqtts",
                "username": "losant",
                "passwordSecretRef": {"name": "integration-credentials", "key": "mqtt-password"}}
        }
    })
}

fn application(emulator: &RunningEmulator) -> LosantApplication {
    serde_json::from_value(json!({
        "apiVersion": "losant.io/v1alpha1", "kind": "LosantApplication",
        "metadata": {"name": "app", "namespace": NAMESPACE, "uid": "uid-app", "generation": 1,
            "resourceVersion": "3"},
        "spec": {"applicationId": APP, "apiUrl": emulator.base_url(),
            "tokenSecretRef": {"name": "losant-api-token", "key": "token"}},
        "status": {"observedGeneration": 1, "conditions": [{"type": "Ready", "status": "True",
            "reason": "Verified", "message": "ok", "lastTransitionTime": "2026-12-01T00:00:00Z"}]}
    }))
    .unwrap()
}

/// A synced cache holding `objects`.
fn cache<K>(objects: Vec<K>) -> Store<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    let (store, mut writer) = reflector::store();
    writer.apply_watcher_event(&watcher::Event::Init);
    for object in objects {
        writer.apply_watcher_event(&watcher::Event::InitApply(object));
    }
    writer.apply_watcher_event(&watcher::Event::InitDone);
    store
}

fn secret_metadata(name: &str) -> PartialObjectMeta<Secret> {
    serde_json::from_value(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": NAMESPACE, "resourceVersion": "5"}}))
    .unwrap()
}

/// The emulator, the mocked API server, and a context whose caches hold the application and
/// the Secrets' metadata.
async fn scenario() -> (Arc<RunningEmulator>, ApiServer, Arc<Context>) {
    // Already installed by another test is fine.
    rustls::crypto::ring::default_provider()
        .install_default()
        .ok();
    let emulator = Arc::new(
        emulator::spawn(EmulatorConfig {
            tokens: vec![TokenSpec::full(TOKEN)],
            applications: vec![APP.into()],
            seed: Some(11),
            ..EmulatorConfig::default()
        })
        .await
        .unwrap(),
    );
    let server = ApiServer {
        object: Arc::new(Mutex::new(integration())),
        calls: Arc::default(),
    };
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    server.serve(handle, Arc::clone(&emulator));
    let kube = kube::Client::new(service, NAMESPACE);
    let synced = Readiness::default();
    synced.expect(1);
    synced.cache("scenario".into()).mark();
    let caches = Caches {
        synced,
        integrations: vec![cache(vec![server.object()])],
        applications: vec![cache(vec![application(&emulator)])],
        secrets: vec![cache(vec![
            secret_metadata("losant-api-token"),
            secret_metadata("integration-credentials"),
        ])],
    };
    let mut settings = Settings::default();
    settings.api_hosts.allowed_http = vec!["127.0.0.1".into()];
    let clock = Clock::fixed(Timestamp::from_second(1_800_000_000).unwrap());
    let ctx = Context::new(kube, caches, settings, Metrics::new(), clock);
    (emulator, server, Arc::new(ctx))
}

fn annotation<'a>(body: &'a Value, key: &str) -> Option<&'a str> {
    body["metadata"]["annotations"][key].as_str()
}

#[tokio::test]
async fn a_create_marks_pending_then_posts_then_records_then_writes_status_once() {
    let (emulator, server, ctx) = scenario().await;
    super::integration::reconcile(Arc::new(server.object()), Arc::clone(&ctx))
        .await
        .unwrap();

    let remotes = emulator.integrations(APP).unwrap();
    assert_eq!(remotes.len(), 1, "exactly one integration was created");
    let id = remotes[0]["id"].as_str().unwrap().to_owned();
    let writes: Vec<Call> = server
        .calls()
        .into_iter()
        .filter(|c| c.is_write() && !c.path.ends_with("/events"))
        .collect();
    let order: Vec<(&str, usize)> = writes
        .iter()
        .map(|c| (c.path.rsplit('/').next().unwrap(), c.remotes))
        .collect();
    assert_eq!(
        order,
        [("broker", 0), ("broker", 1), ("status", 1)],
        "marker before the POST, the id after it, status last: {writes:#?}"
    );
    let (marker, record, status) = (&writes[0].body, &writes[1].body, &writes[2].body);
    assert_eq!(
        marker["metadata"]["finalizers"],
        json!([super::integration::FINALIZER])
    );
    assert!(
        annotation(marker, "losant.io/create-pending").is_some(),
        "{marker}"
    );
    assert_eq!(
        marker["metadata"]["resourceVersion"],
        json!("10"),
        "guarded by the version read"
    );
    assert_eq!(
        annotation(record, "losant.io/integration-id"),
        Some(id.as_str())
    );
    assert_eq!(
        record["metadata"]["annotations"]["losant.io/create-pending"],
        Value::Null
    );
    assert_eq!(status["status"]["integrationId"], json!(id));
    let ready = &status["status"]["conditions"][0];
    assert_eq!(
        (&ready["type"], &ready["status"]),
        (&json!("Ready"), &json!("True"))
    );
    assert_eq!(
        ready["lastTransitionTime"],
        json!("2027-01-15T08:00:00Z"),
        "the injected clock"
    );
    let everything = format!("{:?}", server.calls());
    assert!(!everything.contains(PASSWORD) && !everything.contains(TOKEN));
}

#[tokio::test]
async fn an_object_in_sync_costs_no_write() {
    let (emulator, server, ctx) = scenario().await;
    let reconcile = |obj| super::integration::reconcile(Arc::new(obj), Arc::clone(&ctx));
    reconcile(server.object()).await.unwrap();
    let before = server.calls().len();
    emulator.reset_stats();

    reconcile(server.object()).await.unwrap();
    let again: Vec<Call> = server.calls().split_off(before);
    assert!(
        again.iter().all(|c| !c.is_write()),
        "no patch, no status, no Event: {again:#?}"
    );
    let stats = emulator.stats();
    assert_eq!(emulator.integrations(APP).unwrap().len(), 1);
    let writes = stats.requests.iter().filter(|r| r.method != "GET").count();
    assert_eq!(writes, 0, "no write to Losant either: {stats:?}");
}
