//! The Secret watches, request by request: their lists and watches ask the API server for
//! metadata only. The API server's audit log shows a list's answer (`e2e::audit`) but neither a
//! watch's stream nor the `Accept` header that shapes it, so this pins the header on the
//! operator's own code path: [`secret_metadata`] watched by [`crate::ops::watch`], as both of
//! a scope's Secret watches are.

use futures::StreamExt;
use http::{Request, Response};
use kube::client::Body;
use serde_json::json;

use super::secret_metadata;

/// What the API server saw of one request.
struct Seen {
    path_and_query: String,
    accept: String,
}

async fn next_request(
    handle: &mut tower_test::mock::Handle<Request<Body>, Response<Body>>,
    answer: serde_json::Value,
) -> Seen {
    let (request, respond) = handle.next_request().await.expect("a request");
    let seen = Seen {
        path_and_query: request
            .uri()
            .path_and_query()
            .map(ToString::to_string)
            .unwrap_or_default(),
        accept: request
            .headers()
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
    };
    let body = serde_json::to_vec(&answer).expect("JSON");
    let response = Response::builder()
        .header("content-type", "application/json")
        .body(Body::from(body))
        .expect("a response");
    respond.send_response(response);
    seen
}

/// The list and the watch a Secret watch starts with, as the API server sees them.
async fn first_requests<S>(watch: impl FnOnce(kube::Client) -> S) -> (Seen, Seen)
where
    S: futures::Stream + Send + 'static,
{
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let mut events = Box::pin(watch(kube::Client::new(service, "dev")));
    let server = tokio::spawn(async move {
        let empty_list = json!({
            "apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList",
            "metadata": {"resourceVersion": "7"}, "items": []
        });
        let list = next_request(&mut handle, empty_list).await;
        // An empty stream: the watch ends at once (the watcher would then watch again).
        let watch = next_request(&mut handle, json!(null)).await;
        (list, watch)
    });
    // The watcher asks for the list, then for the watch, as it is polled.
    let driven = async {
        while events.next().await.is_some() {}
        panic!("the watch ended before it asked for its list and its watch");
    };
    let asked = async {
        tokio::select! {
            seen = server => seen.expect("the mocked API server"),
            never = driven => never,
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), asked)
        .await
        .expect("a list and a watch within 10 s")
}

fn assert_metadata_only((list, watch): (Seen, Seen)) {
    assert!(
        list.path_and_query
            .starts_with("/api/v1/namespaces/dev/secrets?")
            && !list.path_and_query.contains("watch="),
        "{}",
        list.path_and_query
    );
    assert_eq!(
        list.accept,
        "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
    );
    assert!(
        watch
            .path_and_query
            .starts_with("/api/v1/namespaces/dev/secrets?")
            && watch.path_and_query.contains("watch=true"),
        "{}",
        watch.path_and_query
    );
    assert_eq!(
        watch.accept,
        "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
    );
}

/// Both Secret watches of a scope (the Integration controller's cache and the
/// LosantApplication controller's trigger) are this one.
#[tokio::test]
async fn the_secret_watch_lists_and_watches_metadata_only() {
    let requests = first_requests(|kube| {
        crate::ops::watch(
            "Secret metadata".into(),
            secret_metadata(&kube, Some("dev")),
        )
    });
    assert_metadata_only(requests.await);
}
