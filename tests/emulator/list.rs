//! List behaviour over HTTP: sorting by every field in both directions, paging with the
//! perPage clamp (default and `max_per_page`), and the anchored case-insensitive glob filter (query decoding included).

use std::collections::HashSet;

use crate::common::*;
use futures::StreamExt;
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

async fn list_with(
    c: &Client,
    em: &losant_operator::emulator::RunningEmulator,
    params: &[(&str, &str)],
) -> Value {
    // Encoded as a form, the way a careful client must: ' ' becomes '+', '+' becomes %2B.
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    let url = format!("{}?{query}", collection(em, APP));
    let resp = c.get(url).bearer_auth(TOKEN).send().await.unwrap();
    let (status, body) = split(resp).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn sorts_by_every_field_both_directions() {
    let em = start(config()).await;
    let c = client();
    let bodies = [
        json!({"name": "b", "integrationType": "sqs", "sqsConfig": {"queueUrl": "q"}}),
        json!({"name": "a", "integrationType": "mqtt", "mqttConfig": {"host": "h", "port": 1, "protocol": "mqtt"}}),
        json!({"name": "C", "integrationType": "websocket", "websocketConfig": {"url": "u"}}),
        json!({"name": "é", "integrationType": "particle", "particleConfig": {"accessToken": "t"}}),
        json!({"name": "a", "integrationType": "googlePubSub"}),
    ];
    let mut ids = Vec::new();
    for body in &bodies {
        ids.push(id_of(&create(&c, &em, APP, body).await));
    }
    // Make lastUpdated differ from creation order.
    call(
        &c,
        Method::PATCH,
        &item(&em, APP, &ids[0]),
        Some(&json!({"enabled": false})),
    )
    .await;

    let (_, default) = list(&c, &em, "").await;
    assert_eq!(default["sortField"], "name");
    assert_eq!(default["sortDirection"], "asc");
    assert_eq!(names(&default), ["C", "a", "a", "b", "é"], "byte order");

    for field in [
        "name",
        "id",
        "creationDate",
        "integrationType",
        "lastUpdated",
    ] {
        for direction in ["asc", "desc", "ASC", "DESC"] {
            let env = list_with(
                &c,
                &em,
                &[("sortField", field), ("sortDirection", direction)],
            )
            .await;
            assert_eq!(env["sortField"], field);
            let descending = direction.eq_ignore_ascii_case("desc");
            assert_eq!(
                env["sortDirection"],
                if descending { "desc" } else { "asc" }
            );
            let items = env["items"].as_array().unwrap();
            assert_eq!(items.len(), bodies.len());
            for pair in items.windows(2) {
                let (a, b) = (
                    pair[0][field].as_str().unwrap(),
                    pair[1][field].as_str().unwrap(),
                );
                let ordered = if descending { a >= b } else { a <= b };
                assert!(ordered, "{field} {direction}: {a:?} before {b:?}");
                if a == b {
                    assert!(
                        pair[0]["id"].as_str() < pair[1]["id"].as_str(),
                        "ties broken by id"
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn pages_with_clamped_per_page() {
    let em = start(config()).await;
    let c = client();
    let total = 1005;
    let created: Vec<Value> = futures::stream::iter(0..total)
        .map(|i| {
            let c = c.clone();
            let url = collection(&em, APP);
            async move {
                let body = named(&format!("item {i:04}"));
                let (status, v) = call(&c, Method::POST, &url, Some(&body)).await;
                assert_eq!(status, StatusCode::CREATED);
                v
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let unique: HashSet<String> = created.iter().map(id_of).collect();
    assert_eq!(unique.len(), total, "ids are unique");

    let (_, first) = list(&c, &em, "").await;
    assert_eq!(
        (first["perPage"].as_u64(), first["count"].as_u64()),
        (Some(100), Some(100))
    );
    assert_eq!(first["totalCount"], total);
    assert_eq!(first["page"], 0);

    let (_, clamped) = list(&c, &em, "perPage=5000").await;
    assert_eq!(clamped["perPage"], 1000);
    assert_eq!(clamped["count"], 1000);
    assert_eq!(clamped["totalCount"], total);
    let (_, second) = list(&c, &em, "perPage=5000&page=1").await;
    assert_eq!(second["count"], 5);
    assert_eq!(names(&second).last().map(String::as_str), Some("item 1004"));
    let (_, beyond) = list(&c, &em, "perPage=1000&page=2").await;
    assert_eq!(
        (beyond["count"].as_u64(), beyond["totalCount"].as_u64()),
        (Some(0), Some(1005))
    );

    let mut seen = HashSet::new();
    let mut page = 0;
    loop {
        let (_, env) = list(&c, &em, &format!("perPage=97&page={page}")).await;
        let items = env["items"].as_array().unwrap();
        if items.is_empty() {
            break;
        }
        assert!(
            items.iter().all(|i| seen.insert(id_of(i))),
            "no item on two pages"
        );
        page += 1;
    }
    assert_eq!(seen, unique);
}

#[tokio::test]
async fn a_lower_max_per_page_clamps_harder_than_the_client_asks() {
    let mut cfg = config();
    cfg.max_per_page = 10;
    let em = start(cfg).await;
    let c = client();
    let total = 25;
    let all: Vec<String> = (0..total).map(|i| format!("item {i:02}")).collect();
    for name in &all {
        create(&c, &em, APP, &named(name)).await;
    }

    let (status, first) = list(&c, &em, "perPage=1000").await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(
        first["perPage"], 10,
        "the envelope reports the clamped size"
    );
    assert_eq!(first["count"], 10);
    assert_eq!(first["totalCount"], total);
    assert_eq!(names(&first), all[..10]);

    // Page 1 is counted in clamped pages, so a client that follows the envelope's perPage
    // continues exactly where page 0 ended.
    let (_, second) = list(&c, &em, "perPage=1000&page=1").await;
    assert_eq!(
        (second["perPage"].as_u64(), second["page"].as_u64()),
        (Some(10), Some(1))
    );
    assert_eq!(names(&second), all[10..20]);
    let (_, last) = list(&c, &em, "perPage=1000&page=2").await;
    assert_eq!(names(&last), all[20..]);

    let (_, default) = list(&c, &em, "").await;
    assert_eq!(
        default["perPage"], 10,
        "the default page size is clamped too"
    );
    let (_, smaller) = list(&c, &em, "perPage=4").await;
    assert_eq!(
        (smaller["perPage"].as_u64(), smaller["count"].as_u64()),
        (Some(4), Some(4))
    );
}

#[tokio::test]
async fn max_per_page_zero_is_refused() {
    let mut cfg = config();
    cfg.max_per_page = 0;
    let err = losant_operator::emulator::spawn(cfg)
        .await
        .err()
        .expect("start-up fails");
    assert!(err.to_string().contains("max_per_page"), "{err}");
}

#[tokio::test]
async fn glob_filter_is_anchored_case_insensitive_and_literal() {
    let em = start(config()).await;
    let c = client();
    let all = [
        "a?b",
        "axb",
        "[x]",
        "x",
        "a+b",
        "a b",
        "a&b",
        "a#b",
        "a%b",
        "a*b",
        "Grün Straße",
        "GRÜN",
        "my integration",
    ];
    for name in all {
        create(&c, &em, APP, &named(name)).await;
    }
    let cases: &[(&str, &[&str])] = &[
        ("a?b", &["a?b"]),
        ("[x]", &["[x]"]),
        ("x", &["x"]),
        ("a+b", &["a+b"]),
        ("a b", &["a b"]),
        ("a&b", &["a&b"]),
        ("a#b", &["a#b"]),
        ("a%b", &["a%b"]),
        ("grün*", &["GRÜN", "Grün Straße"]),
        ("*STRASSE", &[]),
        ("*straße", &["Grün Straße"]),
        ("MY*INTEGRATION", &["my integration"]),
        ("integration", &[]),
        (
            "a*b",
            &["a b", "a#b", "a%b", "a&b", "a*b", "a+b", "a?b", "axb"],
        ),
    ];
    for (pattern, expected) in cases {
        let env = list_with(&c, &em, &[("filterField", "name"), ("filter", pattern)]).await;
        assert_eq!(names(&env), *expected, "filter {pattern:?}");
        assert_eq!(env["filter"], *pattern);
        assert_eq!(env["totalCount"], expected.len());
    }
    // Raw query strings: '+' is a space, %2B is a literal plus.
    let (_, spaced) = list(&c, &em, "filterField=name&filter=a+b").await;
    assert_eq!(names(&spaced), ["a b"]);
    let (_, plus) = list(&c, &em, "filterField=name&filter=a%2Bb").await;
    assert_eq!(names(&plus), ["a+b"]);
    // No filterField, or a blank filter, means no filtering.
    let (_, ignored) = list(&c, &em, "filter=x").await;
    assert_eq!(ignored["totalCount"], all.len());
    assert!(ignored.get("filterField").is_none());
    let (_, blank) = list(&c, &em, "filterField=name&filter=").await;
    assert_eq!(blank["totalCount"], all.len());
    assert!(blank.get("filter").is_none());
}

#[tokio::test]
async fn filters_by_integration_type() {
    let em = start(config()).await;
    let c = client();
    create(&c, &em, APP, &example_post()).await;
    create(&c, &em, APP, &named("queue")).await;
    let env = list_with(
        &c,
        &em,
        &[("filterField", "integrationType"), ("filter", "MQ*")],
    )
    .await;
    assert_eq!(names(&env), ["Example Integrations"]);
    assert_eq!(env["filterField"], "integrationType");
    let env = list_with(
        &c,
        &em,
        &[("filterField", "integrationType"), ("filter", "sqs")],
    )
    .await;
    assert_eq!(names(&env), ["queue"]);
    // Lists are per application.
    create(&c, &em, OTHER_APP, &named("elsewhere")).await;
    let (_, env) = list(&c, &em, "").await;
    assert_eq!(env["totalCount"], 2);
}
