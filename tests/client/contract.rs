//! Contract tests: the Losant client against the emulator over real HTTP — every action, every
//! integration type, paging, and name lookups with awkward characters.

use crate::common::{APP, OTHER_APP, builder, client, emulator, every_type};
use losant_operator::emulator::{COLLECTION_ROUTE, ITEM_ROUTE};
use losant_operator::losant::{
    FieldPatch, FilterField, IntegrationConfig, IntegrationPatch, IntegrationPost, IntegrationType,
    ListQuery, RateLimits, SortDirection, SortField, SqsConfig,
};
use serde_json::Value;

fn sqs(name: &str) -> IntegrationPost {
    IntegrationPost::new(
        name,
        IntegrationConfig::Sqs(SqsConfig {
            queue_url: format!("https://sqs/{}", name.len()),
            access_key_id: None,
            secret_access_key: None,
            region: None,
        }),
    )
}

#[tokio::test]
async fn every_action_works_for_every_type() {
    let emulator = emulator(|_| {}).await;
    let client = client(&emulator);
    for post in every_type("contract") {
        let config_key = post.integration_type.config_field().unwrap();
        let created = client.create(APP, &post).await.unwrap();
        assert_eq!(created.name, post.name);
        assert_eq!(created.integration_type, post.integration_type);
        assert_eq!(created.integration_id.as_deref(), Some(created.id.as_str()));
        assert_eq!(created.application_id.as_deref(), Some(APP));
        assert!(created.creation_date.is_some() && created.last_updated.is_some());
        let sent = serde_json::to_value(&post).unwrap();
        let read = serde_json::to_value(&created).unwrap();
        assert_eq!(
            read[config_key], sent[config_key],
            "{config_key} reads back as sent"
        );
        assert_eq!(read["topics"], sent["topics"]);

        let fetched = client.get(APP, &created.id).await.unwrap();
        assert_eq!(fetched, created);

        let patch = IntegrationPatch {
            enabled: Some(false),
            topics: Some(vec!["changed".into()]),
            ..IntegrationPatch::default()
        };
        let patched = client.patch(APP, &created.id, &patch).await.unwrap();
        assert_eq!(patched.enabled, Some(false));
        assert_eq!(patched.topics, Some(vec!["changed".to_string()]));
        assert_eq!(
            serde_json::to_value(&patched).unwrap()[config_key],
            sent[config_key]
        );

        client.delete(APP, &created.id).await.unwrap();
        assert!(
            client
                .get(APP, &created.id)
                .await
                .unwrap_err()
                .is_not_found()
        );
    }
    let stats = emulator.stats();
    assert_eq!(stats.count("POST", COLLECTION_ROUTE, 201), 6);
    assert_eq!(stats.count("DELETE", ITEM_ROUTE, 200), 6);
    assert_eq!(stats.include_workflows_true, 0);
}

#[tokio::test]
async fn patch_replaces_the_config_and_clears_the_credential() {
    let emulator = emulator(|_| {}).await;
    let client = client(&emulator);
    let mut post = sqs("with-credential");
    post.credential_name = Some("aws-prod".into());
    let created = client.create(APP, &post).await.unwrap();
    let patch = IntegrationPatch {
        credential_name: Some(FieldPatch::Clear),
        config: Some(IntegrationConfig::Sqs(SqsConfig {
            queue_url: "https://sqs/new".into(),
            access_key_id: None,
            secret_access_key: None,
            region: Some("eu-west-1".into()),
        })),
        ..IntegrationPatch::default()
    };
    let patched = client.patch(APP, &created.id, &patch).await.unwrap();
    assert_eq!(patched.credential_name, None);
    let config = patched.sqs_config.unwrap();
    assert_eq!(config.queue_url.as_deref(), Some("https://sqs/new"));
    assert_eq!(config.region.as_deref(), Some("eu-west-1"));
    assert!(patched.last_updated >= created.last_updated);
}

#[tokio::test]
async fn lists_page_sort_and_filter() {
    let emulator = emulator(|_| {}).await;
    let client = client(&emulator);
    for i in 0..25 {
        client
            .create(APP, &sqs(&format!("item-{i:02}")))
            .await
            .unwrap();
    }
    client.create(OTHER_APP, &sqs("elsewhere")).await.unwrap();

    let mut seen = Vec::new();
    for page in 0..3 {
        let query = ListQuery {
            sort_field: Some(SortField::Name),
            sort_direction: Some(SortDirection::Desc),
            page: Some(page),
            per_page: Some(10),
            ..ListQuery::default()
        };
        let listed = client.list(APP, &query).await.unwrap();
        assert_eq!(
            (listed.total_count, listed.per_page, listed.page),
            (25, 10, page)
        );
        assert_eq!(listed.count as usize, listed.items.len());
        seen.extend(listed.items.into_iter().map(|i| i.name));
    }
    let expected: Vec<String> = (0..25).rev().map(|i| format!("item-{i:02}")).collect();
    assert_eq!(seen, expected);

    let by_type = ListQuery {
        filter_field: Some(FilterField::IntegrationType),
        filter: Some("SQS".into()),
        ..ListQuery::default()
    };
    assert_eq!(client.list(APP, &by_type).await.unwrap().total_count, 25);
    assert_eq!(client.list_all(APP).await.unwrap().len(), 25);
}

#[tokio::test]
async fn find_by_name_follows_pages_the_server_clamps() {
    // The server serves at most 100 items a page although the client asks for 1000.
    let emulator = emulator(|c| c.max_per_page = 100).await;
    let unlimited = RateLimits {
        requests_per_second: f64::INFINITY,
        burst: 1,
        max_concurrent: 8,
    };
    let client = builder(&emulator).limits(unlimited).build().unwrap();
    // More than one full page of the largest page size, all matching the filter.
    let posts: Vec<_> = (0..1003).map(|i| sqs(&format!("bulk {i}"))).collect();
    let mut creates = futures::stream::iter(posts.iter().map(|p| client.create(APP, p)));
    use futures::StreamExt;
    let mut created = 0;
    let mut buffered = (&mut creates).buffer_unordered(8);
    while let Some(result) = buffered.next().await {
        result.unwrap();
        created += 1;
    }
    assert_eq!(created, 1003);
    let twin = client.create(APP, &sqs("bulk 1002")).await.unwrap();

    emulator.reset_stats();
    let found = client.find_by_name(APP, "bulk 1002").await.unwrap();
    assert_eq!(
        found.len(),
        2,
        "both integrations named exactly 'bulk 1002'"
    );
    assert!(found.iter().any(|i| i.id == twin.id));
    // The filter "bulk 1002" is exact, so one page; a wildcard name needs every page.
    let wide = client.find_by_name(APP, "bulk*").await.unwrap();
    assert!(wide.is_empty());
    let pages = emulator.stats().count("GET", COLLECTION_ROUTE, 200);
    assert_eq!(
        pages,
        1 + 11,
        "one page for the exact name, eleven clamped pages of 100 for the wildcard"
    );
}

#[tokio::test]
async fn names_with_special_characters_round_trip() {
    let emulator = emulator(|_| {}).await;
    let client = client(&emulator);
    let names = [
        "a+b",
        "a b",
        "a*b",
        "a&b",
        "a#b",
        "a%b",
        "a%2Bb",
        "a?b",
        "a[b]",
        "a[]b",
        "a=b;c",
        "Ünïcødé 漢字 ✓",
        "trailing ",
        " leading",
        "A+B",
        "a+bc",
        "aXb",
        "a\\b",
        "a.b",
        "a_b",
    ];
    for name in names {
        client.create(APP, &sqs(name)).await.unwrap();
    }
    for name in names {
        let found = client.find_by_name(APP, name).await.unwrap();
        let found_names: Vec<&str> = found.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(
            found_names,
            [name],
            "exactly one byte-equal match for {name:?}"
        );
    }
    assert!(client.find_by_name(APP, "a").await.unwrap().is_empty());
}

#[tokio::test]
async fn unknown_types_and_odd_fields_do_not_fail_a_page() {
    let dir = tempdir();
    let state = dir.join("state.json");
    {
        let emulator = emulator(|c| c.state_file = Some(state.clone())).await;
        let client = client(&emulator);
        client.create(APP, &sqs("ordinary")).await.unwrap();
        client.create(APP, &sqs("retired")).await.unwrap();
        client.create(APP, &sqs("odd")).await.unwrap();
        emulator.shutdown().await.unwrap();
    }
    // Rewrite the stored items the way a newer or older Losant might return them.
    let mut document: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    let mut edited = 0;
    edit_items(&mut document, &mut |item| match item["name"].as_str() {
        Some("retired") => {
            item["integrationType"] = "meridian".into();
            item["meridianConfig"] = serde_json::json!({"locationId": "x"});
            edited += 1;
        }
        Some("odd") => {
            item["sqsConfig"] = serde_json::json!({"queueUrl": 42});
            item["futureField"] = serde_json::json!({"nested": true});
            edited += 1;
        }
        _ => {}
    });
    assert_eq!(edited, 2, "the state file holds the items");
    std::fs::write(&state, serde_json::to_vec(&document).unwrap()).unwrap();

    let emulator = emulator(|c| c.state_file = Some(state.clone())).await;
    let client = client(&emulator);
    let all = client.list_all(APP).await.unwrap();
    assert_eq!(all.len(), 3);
    let retired = all.iter().find(|i| i.name == "retired").unwrap();
    assert_eq!(
        retired.integration_type,
        IntegrationType::Unknown("meridian".into())
    );
    let odd = client.find_by_name(APP, "odd").await.unwrap();
    assert_eq!(odd.len(), 1);
    assert_eq!(odd[0].unreadable_fields, ["sqsConfig"]);
    assert_eq!(odd[0].sqs_config, None);
}

/// Applies `edit` to every integration object anywhere in the state document.
fn edit_items(value: &mut Value, edit: &mut dyn FnMut(&mut Value)) {
    match value {
        Value::Object(map) => {
            if map.contains_key("integrationType") && map.contains_key("id") {
                edit(value);
            } else {
                map.values_mut().for_each(|v| edit_items(v, edit));
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| edit_items(v, edit)),
        _ => {}
    }
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "losant-client-test-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}
