//! The emulator over real HTTP with raw reqwest requests: the docs example, auth, ids, bodies,
//! PATCH/DELETE semantics, HAL extras, robustness against bad input, and stats.

use crate::common::*;
use losant_operator::emulator::{COLLECTION_ROUTE, ITEM_ROUTE, TokenSpec};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn is_iso_millis(v: &Value) -> bool {
    let s = v.as_str().unwrap_or_default();
    s.len() == 24
        && s.ends_with('Z')
        && s.as_bytes()[19] == b'.'
        && s.parse::<jiff::Timestamp>().is_ok()
}

#[tokio::test]
async fn docs_example_create_then_filtered_list() {
    let em = start(config()).await;
    let c = client();
    let created = create(&c, &em, APP, &example_post()).await;
    let id = id_of(&created);
    assert_eq!(id.len(), 24);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(created["integrationId"], created["id"]);
    assert_eq!(created["applicationId"], APP);
    assert!(
        is_iso_millis(&created["creationDate"]),
        "{}",
        created["creationDate"]
    );
    assert!(is_iso_millis(&created["lastUpdated"]));
    assert!(created["status"].is_object());
    assert_eq!(created["mqttConfig"], example_post()["mqttConfig"]);
    assert_eq!(created["topics"], json!(["myTopic"]));

    let (status, listed) = list(&c, &em, "filterField=name&filter=Example*").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["count"], 1);
    assert_eq!(listed["totalCount"], 1);
    assert_eq!(listed["items"][0]["id"], id.as_str());
    assert_eq!(listed["filter"], "Example*");
    assert_eq!(listed["filterField"], "name");
    assert_eq!(listed["applicationId"], APP);

    let (status, fetched) = call(&c, Method::GET, &item(&em, APP, &id), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched["name"], "Example Integrations");
}

#[tokio::test]
async fn unauthenticated_and_unauthorised_calls_are_refused() {
    let mut cfg = config();
    cfg.tokens
        .push(TokenSpec::scoped("lister", &["integrations.get"]));
    cfg.tokens
        .push(TokenSpec::scoped("getter", &["integration.get"]));
    // `.cli` scopes are not in the contract's scope lists, so they allow nothing here.
    cfg.tokens.push(TokenSpec::scoped(
        "cli",
        &["all.Application.cli", "all.User.cli"],
    ));
    let em = start(cfg).await;
    let c = client();
    let url = collection(&em, APP);
    let (status, body) = split(c.get(&url).send().await.unwrap()).await;
    assert_eq!(
        (status, error_type(&body)),
        (StatusCode::UNAUTHORIZED, "Unauthorized")
    );
    let (status, body) = split(c.get(&url).bearer_auth("wrong").send().await.unwrap()).await;
    assert_eq!(
        (status, error_type(&body)),
        (StatusCode::UNAUTHORIZED, "Unauthorized")
    );

    let (status, _) = split(c.get(&url).bearer_auth("lister").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = split(c.get(&url).bearer_auth("cli").send().await.unwrap()).await;
    assert_eq!(
        (status, error_type(&body)),
        (StatusCode::FORBIDDEN, "Forbidden"),
        "a .cli scope does not allow listing"
    );
    let resp = c
        .post(&url)
        .bearer_auth("cli")
        .json(&example_post())
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::FORBIDDEN,
        "a .cli scope does not allow creating"
    );
    let resp = c
        .post(&url)
        .bearer_auth("lister")
        .json(&example_post())
        .send()
        .await
        .unwrap();
    let (status, body) = split(resp).await;
    assert_eq!(
        (status, error_type(&body)),
        (StatusCode::FORBIDDEN, "Forbidden")
    );

    let id = id_of(&create(&c, &em, APP, &example_post()).await);
    let get = |token: &'static str| c.get(item(&em, APP, &id)).bearer_auth(token).send();
    assert_eq!(get("getter").await.unwrap().status(), StatusCode::OK);
    assert_eq!(get("lister").await.unwrap().status(), StatusCode::FORBIDDEN);
    let resp = c
        .delete(item(&em, APP, &id))
        .bearer_auth("getter")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    // Auth comes before id checks.
    let resp = c.get(item(&em, "bad", "ids")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn unknown_application_and_integration_are_404() {
    let em = start(config()).await;
    let c = client();
    let missing_app = "0123456789abcdef01234567";
    let (status, body) = call(&c, Method::GET, &collection(&em, missing_app), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"type": "NotFound", "message": "Application was not found"})
    );
    let (status, _) = call(
        &c,
        Method::POST,
        &collection(&em, missing_app),
        Some(&example_post()),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, body) = call(&c, Method::GET, &item(&em, APP, missing_app), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"type": "NotFound", "message": "Integration was not found"})
    );
    // An integration of another application is not found under this one.
    let id = id_of(&create(&c, &em, OTHER_APP, &example_post()).await);
    for method in [Method::GET, Method::DELETE] {
        let (status, body) = call(&c, method, &item(&em, APP, &id), None).await;
        assert_eq!(
            (status, body["message"].as_str()),
            (StatusCode::NOT_FOUND, Some("Integration was not found"))
        );
    }
    let (status, _) = call(
        &c,
        Method::PATCH,
        &item(&em, APP, &id),
        Some(&json!({"name": "x"})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_ids_bodies_and_query_params_are_400() {
    let em = start(config()).await;
    let c = client();
    for app in [
        "123",
        "575ec8687ae143cd83dc4a9z",
        "575ec8687ae143cd83dc4a970",
    ] {
        let (status, body) = call(&c, Method::GET, &collection(&em, app), None).await;
        assert_eq!(
            (status, error_type(&body)),
            (StatusCode::BAD_REQUEST, "Validation"),
            "{app}"
        );
    }
    let (status, _) = call(&c, Method::GET, &item(&em, APP, "nope"), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let secret_body = json!({"name": "x", "integrationType": "mqtt",
        "mqttConfig": {"host": "h", "port": 0, "protocol": "mqtt", "password": "hunter2-secret"}});
    let (status, body) = call(&c, Method::POST, &collection(&em, APP), Some(&secret_body)).await;
    assert_eq!(
        (status, error_type(&body)),
        (StatusCode::BAD_REQUEST, "Validation")
    );
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("mqttConfig.port"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");

    for bad in [
        json!({"name": "x"}),
        json!({"name": "x", "integrationType": "twilio"}),
        json!([1]),
    ] {
        let (status, _) = call(&c, Method::POST, &collection(&em, APP), Some(&bad)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }
    for query in [
        "sortField=bogus",
        "sortDirection=up",
        "perPage=0",
        "perPage=abc",
        "page=-1",
        "filterField=topics",
    ] {
        let (status, body) = list(&c, &em, query).await;
        assert_eq!(
            (status, error_type(&body)),
            (StatusCode::BAD_REQUEST, "Validation"),
            "{query}"
        );
    }
    assert!(em.integrations(APP).unwrap().is_empty());
}

#[tokio::test]
async fn patch_merges_top_level_and_replaces_configs() {
    let em = start(config()).await;
    let c = client();
    let mut body = example_post();
    body["credentialName"] = json!("my-cred");
    let created = create(&c, &em, APP, &body).await;
    let url = item(&em, APP, &id_of(&created));
    let patch = json!({"topics": ["differentTopic"], "mqttConfig": {"host": "other", "port": 1883, "protocol": "mqtt"}});
    let (status, patched) = call(&c, Method::PATCH, &url, Some(&patch)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(patched["topics"], json!(["differentTopic"]));
    assert_eq!(
        patched["mqttConfig"], patch["mqttConfig"],
        "config replaced whole"
    );
    assert_eq!(
        patched["name"], "Example Integrations",
        "untouched fields kept"
    );
    assert_eq!(patched["credentialName"], "my-cred");
    assert_eq!(patched["creationDate"], created["creationDate"]);
    assert!(patched["lastUpdated"].as_str() > created["lastUpdated"].as_str());

    let (status, cleared) = call(
        &c,
        Method::PATCH,
        &url,
        Some(&json!({"credentialName": null})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(cleared.get("credentialName").is_none());
    assert!(cleared["lastUpdated"].as_str() > patched["lastUpdated"].as_str());

    let (status, body) = call(
        &c,
        Method::PATCH,
        &url,
        Some(&json!({"integrationType": "sqs"})),
    )
    .await;
    assert_eq!(
        (status, error_type(&body)),
        (StatusCode::BAD_REQUEST, "Validation")
    );
    let (_, fetched) = call(&c, Method::GET, &url, None).await;
    assert_eq!(fetched["integrationType"], "mqtt");
    assert_eq!(fetched, cleared);
}

#[tokio::test]
async fn delete_removes_and_tolerates_bodies() {
    let em = start(config()).await;
    let c = client();
    let first = item(
        &em,
        APP,
        &id_of(&create(&c, &em, APP, &example_post()).await),
    );
    let (status, body) = call(&c, Method::DELETE, &first, None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"success": true})));
    let (status, _) = call(&c, Method::GET, &first, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(&c, Method::DELETE, &first, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let second = item(
        &em,
        APP,
        &id_of(&create(&c, &em, APP, &example_post()).await),
    );
    let (status, body) = call(&c, Method::DELETE, &second, Some(&json!({}))).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"success": true})));
    assert_eq!(em.stats().include_workflows_true, 0);

    let third = item(
        &em,
        APP,
        &id_of(&create(&c, &em, APP, &example_post()).await),
    );
    let (status, _) = call(
        &c,
        Method::DELETE,
        &format!("{third}?includeWorkflows=true"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(em.stats().include_workflows_true, 1);
    let (_, stats) = split(
        c.get(format!("{}/_emulator/stats", em.base_url()))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(stats["includeWorkflowsTrue"], 1);
}

#[tokio::test]
async fn hal_extras_unless_links_false() {
    let em = start(config()).await;
    let c = client();
    let created = create(&c, &em, APP, &example_post()).await;
    let id = id_of(&created);
    assert_eq!(created["_type"], "integration");
    let self_href = format!("/applications/{APP}/integrations/{id}");
    assert_eq!(created["_links"]["self"]["href"], self_href.as_str());
    let (_, listed) = list(&c, &em, "").await;
    assert_eq!(listed["_type"], "integrations");
    assert_eq!(
        listed["_links"]["self"]["href"],
        format!("/applications/{APP}/integrations")
    );
    assert_eq!(listed["items"][0]["_type"], "integration");

    let (_, plain) = list(&c, &em, "_links=false&_actions=false&_embedded=false").await;
    assert!(plain.get("_links").is_none() && plain.get("_type").is_none());
    assert!(plain["items"][0].get("_links").is_none());
    let url = format!("{}?_links=false", item(&em, APP, &id));
    let (_, fetched) = call(&c, Method::GET, &url, None).await;
    assert!(fetched.get("_links").is_none() && fetched.get("_type").is_none());
    let url = format!("{}?_links=false", collection(&em, APP));
    let (_, posted) = call(&c, Method::POST, &url, Some(&example_post())).await;
    assert!(posted.get("_links").is_none());
}

#[tokio::test]
async fn bad_input_gets_json_errors_and_server_keeps_serving() {
    let mut cfg = config();
    cfg.max_body_bytes = 4096;
    let em = start(cfg).await;
    let c = client();
    let url = collection(&em, APP);
    let post = |body: &'static str, ct: &'static str| {
        c.post(&url)
            .bearer_auth(TOKEN)
            .header("content-type", ct)
            .body(body)
            .send()
    };
    let (status, body) = split(post("{\"name\": ", "application/json").await.unwrap()).await;
    assert_eq!(
        (status, error_type(&body)),
        (StatusCode::BAD_REQUEST, "Validation")
    );
    let (status, body) = split(
        post("name=x", "application/x-www-form-urlencoded")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, error_type(&body)),
        (StatusCode::BAD_REQUEST, "Validation")
    );
    let (status, _) = split(post("", "application/json").await.unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let mut big = named("big");
    big["topics"] = json!([
        "x".repeat(1000),
        "y".repeat(1000),
        "z".repeat(1000),
        "w".repeat(1000),
        "v".repeat(1000)
    ]);
    let (status, body) = call(&c, Method::POST, &url, Some(&big)).await;
    assert_eq!(
        (status, error_type(&body)),
        (StatusCode::PAYLOAD_TOO_LARGE, "RequestEntityTooLarge")
    );

    let (status, body) = call(&c, Method::GET, &format!("{}/nope", em.base_url()), None).await;
    assert_eq!(
        (status, error_type(&body)),
        (StatusCode::NOT_FOUND, "NotFound")
    );
    let (status, body) = call(&c, Method::PUT, &url, Some(&named("x"))).await;
    assert_eq!(
        (status, error_type(&body)),
        (StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed")
    );
    let item_url = item(&em, APP, "575ec8687ae143cd83dc4a97");
    let (status, body) = call(&c, Method::POST, &item_url, None).await;
    assert_eq!(
        (status, error_type(&body)),
        (StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed")
    );

    create(&c, &em, APP, &named("still alive")).await;
    assert_eq!(em.integrations(APP).unwrap().len(), 1);
}

#[tokio::test]
async fn stats_count_by_method_route_and_status() {
    let em = start(config()).await;
    let c = client();
    for i in 0..3 {
        create(&c, &em, APP, &named(&format!("n{i}"))).await;
    }
    let (status, _) = call(&c, Method::GET, &item(&em, APP, OTHER_APP), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    list(&c, &em, "").await;
    let stats = em.stats();
    assert_eq!(stats.count("POST", COLLECTION_ROUTE, 201), 3);
    assert_eq!(stats.count("GET", ITEM_ROUTE, 404), 1);
    assert_eq!(stats.count("GET", COLLECTION_ROUTE, 200), 1);
    assert_eq!(stats.total, 5);

    let stats_url = format!("{}/_emulator/stats", em.base_url());
    let (_, doc) = split(c.get(&stats_url).send().await.unwrap()).await;
    assert_eq!(doc["total"], 5, "the stats endpoint does not count itself");
    let row = doc["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["method"] == "POST")
        .unwrap()
        .clone();
    assert_eq!(
        row,
        json!({"method": "POST", "route": COLLECTION_ROUTE, "status": 201, "count": 3})
    );

    // Any token is a valid HTTP method; counting each by name would let clients grow the
    // counters without bound, so methods outside the standard set share one label.
    for i in 0..20 {
        let method = Method::from_bytes(format!("X-CUSTOM-{i}").as_bytes()).unwrap();
        let resp = c
            .request(method, collection(&em, APP))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_client_error(), "{}", resp.status());
    }
    let stats = em.stats();
    assert!(
        stats
            .requests
            .iter()
            .all(|r| !r.method.starts_with("X-CUSTOM")),
        "{:?}",
        stats.requests
    );
    let other: u64 = stats
        .requests
        .iter()
        .filter(|r| r.method == "OTHER")
        .map(|r| r.count)
        .sum();
    assert_eq!(other, 20);

    let reset = c
        .post(format!("{}/_emulator/reset-stats", em.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), StatusCode::OK);
    assert_eq!(em.stats().total, 0);
}

#[tokio::test]
async fn the_write_log_names_each_write_and_its_fields_never_values() {
    let em = start(config()).await;
    let c = client();
    let created = create(&c, &em, APP, &example_post()).await;
    let id = id_of(&created);
    let patch = json!({"enabled": false, "name": "renamed"});
    let (status, _) = call(&c, Method::PATCH, &item(&em, APP, &id), Some(&patch)).await;
    assert_eq!(status, StatusCode::OK);
    let refused = json!({"integrationType": "sqs"});
    let (status, _) = call(&c, Method::PATCH, &item(&em, APP, &id), Some(&refused)).await;
    assert!(status.is_client_error(), "a refused write is not logged");
    let writes = em.stats().writes;
    let mut posted: Vec<String> = example_post()
        .as_object()
        .expect("an object")
        .keys()
        .cloned()
        .collect();
    posted.sort();
    assert_eq!(writes.len(), 2, "{writes:?}");
    assert_eq!(
        (writes[0].method.as_str(), &writes[0].fields),
        ("POST", &posted)
    );
    assert_eq!(writes[0].integration_id, id);
    assert_eq!(writes[1].method, "PATCH");
    assert_eq!(
        writes[1].fields,
        vec!["enabled".to_owned(), "name".to_owned()]
    );
    assert_eq!(writes[1].application_id, APP);
    let text = serde_json::to_string(&writes).expect("JSON");
    assert!(!text.contains("renamed"), "values are not logged: {text}");
}
