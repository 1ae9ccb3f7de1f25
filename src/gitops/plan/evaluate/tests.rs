use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::json;

use super::*;
use crate::gitops::plan::world::{Place, SecretData};
use crate::losant::Listing;

const APP: &str = "0123456789abcdef01234567";
const URL: &str = "http://127.0.0.1:1";

fn now() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap()
}

fn integration(name: &str, spec: serde_json::Value) -> Integration {
    let mut obj: Integration = serde_json::from_value(json!({
        "apiVersion": "losant.io/v1alpha1", "kind": "Integration",
        "metadata": {"name": name}, "spec": spec,
    }))
    .unwrap();
    obj.metadata.namespace = Some("ns".into());
    obj
}

fn sqs(queue: &str) -> serde_json::Value {
    json!({"applicationRef": {"name": "app"}, "integrationType": "sqs",
           "sqsConfig": {"queueUrl": queue, "secretAccessKeySecretRef": {"name": "aws", "key": "key"}}})
}

fn remote(id: &str, name: &str, queue: &str) -> losant::Integration {
    serde_json::from_value(json!({"id": id, "name": name, "integrationType": "sqs",
        "enabled": true, "sqsConfig": {"queueUrl": queue}}))
    .unwrap()
}

fn world(remotes: Vec<losant::Integration>) -> World {
    let mut world = World::new(now(), Duration::from_secs(30));
    let place = Place {
        api_url: URL.into(),
        application_id: APP.into(),
        refused: None,
    };
    world.listings.insert(
        place.key(),
        Ok(Listing {
            items: remotes,
            unreadable_names: Vec::new(),
        }),
    );
    world.places.insert(("ns".into(), "app".into()), place);
    let mut data = BTreeMap::new();
    data.insert("key".to_owned(), b"aws-secret-value".to_vec());
    world.secrets.insert(
        ("ns".into(), "aws".into()),
        SecretData {
            data,
            version: "7".into(),
        },
    );
    world
}

fn plan(world: &World, objects: &[Integration]) -> Vec<Verdict> {
    let inputs: Vec<Sourced<Integration>> = objects
        .iter()
        .map(|o| Sourced {
            object: o.clone(),
            source: "in.yaml (document 1)".into(),
        })
        .collect();
    evaluate(world, &inputs, "ns")
}

#[test]
fn nothing_named_so_is_created_with_the_secret_labelled_and_never_shown() {
    let verdicts = plan(&world(vec![]), &[integration("queue", sqs("https://q/1"))]);
    assert_eq!(verdicts[0].action, Action::Create);
    let text = serde_json::to_string(&verdicts).unwrap();
    assert!(!text.contains("aws-secret-value"), "{text}");
    assert!(
        text.contains(r#""secret":{"name":"aws","key":"key","changed":true}"#),
        "{text}"
    );
}

#[test]
fn one_remote_named_so_is_adopted_with_a_patch_when_it_differs() {
    let id = "aaaaaaaaaaaaaaaaaaaaaaaa";
    let verdicts = plan(
        &world(vec![remote(id, "queue", "https://q/old")]),
        &[integration("queue", sqs("https://q/new"))],
    );
    assert_eq!(verdicts[0].action, Action::Adopt);
    assert_eq!(verdicts[0].remote_id.as_deref(), Some(id));
    assert_eq!(verdicts[0].sends, vec!["sqsConfig".to_owned()]);
}

#[test]
fn an_older_object_in_the_cluster_claiming_the_name_refuses_a_new_one() {
    let mut world = world(vec![]);
    let mut older = integration("older", sqs("https://q/1"));
    older.spec.name = Some("shared".into());
    older.metadata.creation_timestamp = Some(Time(now() - jiff::SignedDuration::from_secs(60)));
    world.cluster.push(older.clone());
    let mut newer = integration("newer", sqs("https://q/1"));
    newer.spec.name = Some("shared".into());
    let verdicts = plan(&world, &[newer, older]);
    assert_eq!(verdicts[0].action, Action::Refuse);
    assert_eq!(verdicts[0].reason.as_deref(), Some("ConflictingOwner"));
    assert_eq!(
        verdicts[1].action,
        Action::Create,
        "the older one goes ahead"
    );
}

#[test]
fn what_is_missing_before_losant_is_named_as_the_operator_names_it() {
    let world = world(vec![]);
    let mut no_app = integration("a", sqs("https://q/1"));
    no_app.spec.application_ref.name = "other".into();
    let mut no_secret = integration("b", sqs("https://q/1"));
    no_secret
        .spec
        .sqs_config
        .as_mut()
        .unwrap()
        .secret_access_key_secret_ref = Some(crate::crd::SecretKeyRef {
        name: "gone".into(),
        key: "key".into(),
    });
    let mut paused = integration("c", sqs("https://q/1"));
    paused.metadata.annotations = Some([("losant.io/paused".to_owned(), "true".to_owned())].into());
    let reasons: Vec<Option<String>> = plan(&world, &[no_app, no_secret, paused])
        .into_iter()
        .map(|v| v.reason)
        .collect();
    assert_eq!(
        reasons,
        vec![
            Some("ApplicationNotFound".to_owned()),
            Some("SecretNotFound".to_owned()),
            Some("Paused".to_owned())
        ]
    );
}

#[test]
fn the_cluster_copy_gives_records_status_and_a_new_generation_only_for_a_new_spec() {
    let mut live = integration("queue", sqs("https://q/1"));
    live.metadata.generation = Some(4);
    live.metadata.annotations = Some([(record::INTEGRATION_ID.to_owned(), "x".to_owned())].into());
    let same = effective(&integration("queue", sqs("https://q/1")), "ns", Some(&live));
    assert_eq!(same.metadata.generation, Some(4));
    assert_eq!(
        same.annotations()
            .get(record::INTEGRATION_ID)
            .map(String::as_str),
        Some("x")
    );
    let changed = effective(&integration("queue", sqs("https://q/2")), "ns", Some(&live));
    assert_eq!(changed.metadata.generation, Some(5));
    let new = effective(&integration("queue", sqs("https://q/2")), "ns", None);
    assert_eq!(
        seniority(&new, now()).0,
        now().to_string(),
        "younger than all that exist"
    );
}

#[test]
fn an_observer_claims_nothing_and_is_never_refused() {
    let mut world = world(vec![]);
    let mut observer = integration("observer", sqs("https://q/1"));
    observer.spec.name = Some("shared".into());
    observer.spec.management_policy = crate::crd::ManagementPolicy::ObserveOnly;
    observer.metadata.creation_timestamp = Some(Time(now() - jiff::SignedDuration::from_secs(60)));
    world.cluster.push(observer.clone());
    let mut manager = integration("manager", sqs("https://q/1"));
    manager.spec.name = Some("shared".into());
    let verdicts = plan(&world, &[manager, observer]);
    assert_eq!(
        verdicts[0].action,
        Action::Create,
        "the older observer does not block it"
    );
    assert_eq!(verdicts[1].action, Action::Refuse);
    assert_eq!(
        verdicts[1].reason.as_deref(),
        Some("NotFound"),
        "it only observes"
    );
}
