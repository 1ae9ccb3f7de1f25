//! A hostile or broken "Losant" on 127.0.0.1: what a proxy in front of a private install, or a
//! broken server, may answer. Each application id is given one [`Misbehaviour`]; the server
//! counts the requests it gets per application, and how many carried an `Authorization` header.
//!
//! A separate server rather than emulator knobs: the emulator models what Losant does, and none
//! of this is Losant; here every answer is written by hand, down to the bytes and their timing.
//!
//! One exception keeps the affected objects' own calls reachable: a one-item list (`perPage=1`,
//! the operator's token check of a `LosantApplication`) is answered as an empty, healthy page, so
//! the application is verified and the misbehaviour meets the Integrations' calls.
//!
//! It runs on a thread of its own with its own runtime, so blocking and async tests both use it;
//! dropping it stops it (connections still open are cut).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::any;
use bytes::Bytes;
use serde_json::json;

/// What the server does to one application's requests.
#[derive(Clone, Debug)]
pub enum Misbehaviour {
    /// 200 with a body that is not JSON (a list envelope cut short).
    MalformedJson,
    /// Lists that claim `claimed_total` items but clamp every page to one item, so following
    /// `totalCount` never ends.
    EndlessList {
        /// The `totalCount` every page claims.
        claimed_total: u64,
    },
    /// 200 with a body of `bytes` bytes, streamed without a `Content-Length`.
    HugeBody {
        /// Body length.
        bytes: u64,
    },
    /// 200 whose headers come at once and whose body then comes one byte per `every`, forever.
    Drip {
        /// Pause between bytes.
        every: Duration,
    },
    /// 302 to the same path and query under another base URL (another server).
    RedirectTo(String),
    /// 301 to another path on this server.
    RedirectSameHost,
    /// A proxy's HTML error page with this status, echoing the request's `Authorization`.
    HtmlError(u16),
    /// 400 with a JSON body whose `message` is an HTML page echoing the `Authorization` header.
    HtmlInMessage,
    /// Healthy lists whose items are of a type the client does not know or carry fields it does
    /// not know.
    UnknownItems,
}

/// Per-application request counts.
#[derive(Default)]
struct Counts {
    by_application: Mutex<BTreeMap<String, u64>>,
    total: AtomicU64,
    with_authorization: AtomicU64,
    /// Body bytes handed to the connection by streamed answers.
    streamed_bytes: AtomicU64,
}

struct Shared {
    behaviours: BTreeMap<String, Misbehaviour>,
    counts: Counts,
}

/// A running hostile server; stopped on drop.
pub struct HostileServer {
    base_url: String,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl HostileServer {
    /// Starts a server that answers each application id of `behaviours` its way; any other
    /// application id gets a JSON 404.
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub fn start(behaviours: impl IntoIterator<Item = (String, Misbehaviour)>) -> Self {
        let shared = Arc::new(Shared {
            behaviours: behaviours.into_iter().collect(),
            counts: Counts::default(),
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (bound, address) = std::sync::mpsc::channel();
        let state = Arc::clone(&shared);
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the hostile server");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("a loopback port for the hostile server");
                // The starting thread waits for this; if it is gone there is no one to tell.
                bound
                    .send(listener.local_addr().expect("a bound address"))
                    .ok();
                let app = Router::new()
                    .route("/applications/{application}/integrations", any(answer))
                    .route("/applications/{application}/integrations/{id}", any(answer))
                    .fallback(any(elsewhere))
                    .with_state(state);
                tokio::select! {
                    _ = axum::serve(listener, app) => {}
                    _ = stopped => {}
                }
            });
        });
        let address = address.recv().expect("the hostile server starts");
        HostileServer {
            base_url: format!("http://{address}"),
            shared,
            stop: Some(stop),
        }
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Requests received for `application_id`.
    pub fn requests_for(&self, application_id: &str) -> u64 {
        let counts = self.shared.counts.by_application.lock();
        counts
            .map(|counts| counts.get(application_id).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// Requests received in all (any path).
    pub fn requests(&self) -> u64 {
        self.shared.counts.total.load(Ordering::SeqCst)
    }

    /// Requests that carried an `Authorization` header.
    pub fn requests_with_authorization(&self) -> u64 {
        self.shared.counts.with_authorization.load(Ordering::SeqCst)
    }

    /// Body bytes of streamed answers ([`Misbehaviour::HugeBody`], [`Misbehaviour::Drip`])
    /// handed to connections so far: a reader that stops early leaves this near its cap.
    pub fn streamed_bytes(&self) -> u64 {
        self.shared.counts.streamed_bytes.load(Ordering::SeqCst)
    }
}

impl Drop for HostileServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            // Already stopped if the server thread ended on its own.
            stop.send(()).ok();
        }
    }
}

fn count(shared: &Shared, application: Option<&str>, headers: &HeaderMap) {
    shared.counts.total.fetch_add(1, Ordering::SeqCst);
    if headers.contains_key(header::AUTHORIZATION) {
        shared
            .counts
            .with_authorization
            .fetch_add(1, Ordering::SeqCst);
    }
    if let (Some(application), Ok(mut counts)) = (application, shared.counts.by_application.lock())
    {
        *counts.entry(application.to_owned()).or_default() += 1;
    }
}

/// Any path the routes do not know (e.g. where a redirect points): counted, then 404.
async fn elsewhere(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    count(&shared, None, &headers);
    json_answer(
        StatusCode::NOT_FOUND,
        json!({"type": "NotFound", "message": "no such route"}),
    )
}

async fn answer(
    State(shared): State<Arc<Shared>>,
    Path(params): Path<BTreeMap<String, String>>,
    RawQuery(query): RawQuery,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let application = params.get("application").cloned().unwrap_or_default();
    count(&shared, Some(&application), &headers);
    let query = query.unwrap_or_default();
    let is_collection = !params.contains_key("id");
    if is_collection && query.split('&').any(|pair| pair == "perPage=1") {
        return json_answer(
            StatusCode::OK,
            json!({"items": [], "count": 0, "totalCount": 0, "perPage": 1, "page": 0}),
        );
    }
    let Some(behaviour) = shared.behaviours.get(&application) else {
        return json_answer(
            StatusCode::NOT_FOUND,
            json!({"type": "NotFound", "message": "Application was not found"}),
        );
    };
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    misbehave(&shared, behaviour, &uri, &authorization, &query)
}

fn misbehave(
    shared: &Arc<Shared>,
    behaviour: &Misbehaviour,
    uri: &Uri,
    authorization: &str,
    query: &str,
) -> Response {
    let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
    match behaviour {
        Misbehaviour::MalformedJson => raw_answer(
            StatusCode::OK,
            "application/json",
            r#"{"items": [{"id": "5a0b1c2d3e4f5a6b7c8d9e0f", "name": "#,
        ),
        Misbehaviour::EndlessList { claimed_total } => {
            let page: u64 = query
                .split('&')
                .find_map(|pair| pair.strip_prefix("page="))
                .and_then(|page| page.parse().ok())
                .unwrap_or(0);
            json_answer(
                StatusCode::OK,
                json!({
                    "items": [mqtt_item(&format!("{page:024x}"), &format!("endless-{page}"))],
                    "count": 1, "totalCount": claimed_total, "perPage": 1, "page": page,
                }),
            )
        }
        Misbehaviour::HugeBody { bytes } => stream(shared, *bytes, Duration::ZERO),
        Misbehaviour::Drip { every } => stream(shared, u64::MAX, *every),
        Misbehaviour::RedirectTo(base) => redirect(
            StatusCode::FOUND,
            &format!("{}{path_and_query}", base.trim_end_matches('/')),
        ),
        Misbehaviour::RedirectSameHost => redirect(
            StatusCode::MOVED_PERMANENTLY,
            &format!("/v2{path_and_query}"),
        ),
        Misbehaviour::HtmlError(status) => raw_answer(
            StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY),
            "text/html",
            &html_page(*status, authorization),
        ),
        Misbehaviour::HtmlInMessage => json_answer(
            StatusCode::BAD_REQUEST,
            json!({"type": "Error", "message": html_page(400, authorization)}),
        ),
        Misbehaviour::UnknownItems => json_answer(
            StatusCode::OK,
            json!({
                "items": [
                    {"id": "5a0b1c2d3e4f5a6b7c8d9e01", "name": "meridian-feed",
                     "integrationType": "meridian", "meridianConfig": {"dial": [1, 2]},
                     "futureTopLevel": {"nested": true}},
                    mqtt_item("5a0b1c2d3e4f5a6b7c8d9e02", "mqtt-with-extras"),
                ],
                "count": 2, "totalCount": 2, "perPage": 1000, "page": 0,
            }),
        ),
    }
}

/// An mqtt integration carrying fields no client knows, at the top and in its config.
fn mqtt_item(id: &str, name: &str) -> serde_json::Value {
    json!({
        "id": id, "name": name, "integrationType": "mqtt", "topics": [],
        "mqttConfig": {"host": "broker.example.com", "port": 1883, "protocol": "mqtt",
                       "futureKnob": "on"},
        "futureTopLevel": [1, 2, 3],
    })
}

/// A proxy's error page, several kilobytes, quoting the request's `Authorization` header.
fn html_page(status: u16, authorization: &str) -> String {
    format!(
        "<!DOCTYPE html><html><head><title>{status} Error</title></head><body>\
         <h1>{status} Bad Gateway</h1><p>upstream failed for request with \
         Authorization: {authorization}</p><pre>{}</pre></body></html>",
        "trace line\n".repeat(400)
    )
}

fn json_answer(status: StatusCode, body: serde_json::Value) -> Response {
    raw_answer(status, "application/json", &body.to_string())
}

fn raw_answer(status: StatusCode, content_type: &str, body: &str) -> Response {
    let mut response = Response::new(Body::from(body.to_owned()));
    *response.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

fn redirect(status: StatusCode, location: &str) -> Response {
    let mut response = raw_answer(status, "text/html", "<html>moved</html>");
    if let Ok(value) = location.parse() {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// A 200 whose JSON-looking body of `total` bytes is streamed in 64 KiB chunks, or one byte per
/// `every` when that is not zero.
fn stream(shared: &Arc<Shared>, total: u64, every: Duration) -> Response {
    let chunk: u64 = if every.is_zero() { 64 * 1024 } else { 1 };
    let shared = Arc::clone(shared);
    let chunks = futures::stream::unfold(0u64, move |sent| {
        let shared = Arc::clone(&shared);
        async move {
            if sent >= total {
                return None;
            }
            if !every.is_zero() {
                tokio::time::sleep(every).await;
            }
            let length = chunk.min(total - sent);
            let bytes = if sent == 0 {
                let mut first = b"{\"items\":[".to_vec();
                first.resize(length.max(10) as usize, b' ');
                Bytes::from(first)
            } else {
                Bytes::from(vec![b' '; length as usize])
            };
            let length = bytes.len() as u64;
            shared
                .counts
                .streamed_bytes
                .fetch_add(length, Ordering::SeqCst);
            Some((Ok::<_, Infallible>(bytes), sent + length))
        }
    });
    let mut response = Response::new(Body::from_stream(chunks));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}
