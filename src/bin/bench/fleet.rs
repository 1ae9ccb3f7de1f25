//! The objects a run creates in the API server (its namespace, the Secrets, the
//! `LosantApplication`s and the N `Integration`s) and removes again with `--cleanup`.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, bail};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Resource, ResourceExt};
use losant_operator::crd::{Integration, LosantApplication};
use serde::de::DeserializeOwned;
use serde_json::json;

/// The token the operator uses (all applications share it, so one rate budget).
pub const OPERATOR_TOKEN: &str = "bench-operator-token";
/// The topic every Integration starts with (drift is undone back to it).
pub const INITIAL_TOPIC: &str = "bench/initial";
/// Creates sent to the API server at once.
const CREATE_CONCURRENCY: usize = 32;

/// The Losant ids of `count` applications.
pub fn application_ids(count: usize) -> Vec<String> {
    (0..count)
        .map(|i| format!("{:024x}", 0xbe_0000 + i))
        .collect()
}

fn integration_name(index: usize) -> String {
    format!("int-{index:05}")
}

/// Integration number `index`: MQTT with a password from a Secret, in application
/// `index % applications`.
fn integration(index: usize, applications: usize, topic: &str) -> anyhow::Result<Integration> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "losant.io/v1alpha1",
        "kind": "Integration",
        "metadata": {"name": integration_name(index)},
        "spec": {
            "applicationRef": {"name": format!("app-{}", index % applications)},
            "integrationType": "mqtt",
            "topics": [topic],
            "mqttConfig": {
                "host": format!("broker-{index}.example.com"),
                "port": 8883,
                "protocol": "mqtts",
                "clientId": format!("losant-{index}"),
                "username": "losant",
                "passwordSecretRef": {"name": "mqtt-credentials", "key": "password"}
            }
        }
    }))?)
}

/// Creates the namespace `ns`, which must not exist.
pub async fn create_namespace(kube: &kube::Client, ns: &str) -> anyhow::Result<()> {
    let namespaces: Api<Namespace> = Api::all(kube.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}}))?,
        )
        .await
        .context("creating the namespace (it must not exist)")?;
    Ok(())
}

/// The Secrets (the token, the MQTT password) and one `LosantApplication` per id in `apps`,
/// served by the emulator at `emulator_url`.
pub async fn create_fixtures(
    kube: &kube::Client,
    ns: &str,
    apps: &[String],
    emulator_url: &str,
) -> anyhow::Result<()> {
    let secrets: Api<Secret> = Api::namespaced(kube.clone(), ns);
    for (name, key, value) in [
        ("losant-token", "token", OPERATOR_TOKEN),
        ("mqtt-credentials", "password", "bench-mqtt-password"),
    ] {
        secrets
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({
                    "metadata": {"name": name},
                    "stringData": {key: value}
                }))?,
            )
            .await?;
    }
    let applications: Api<LosantApplication> = Api::namespaced(kube.clone(), ns);
    for (i, app) in apps.iter().enumerate() {
        let object: LosantApplication = serde_json::from_value(json!({
            "apiVersion": "losant.io/v1alpha1",
            "kind": "LosantApplication",
            "metadata": {"name": format!("app-{i}")},
            "spec": {
                "applicationId": app,
                "apiUrl": emulator_url,
                "tokenSecretRef": {"name": "losant-token", "key": "token"}
            }
        }))?;
        applications.create(&PostParams::default(), &object).await?;
    }
    Ok(())
}

/// Creates `size` new Integrations spread over `applications`; returns the seconds it took.
pub async fn create_integrations(
    integrations: &Api<Integration>,
    size: usize,
    applications: usize,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let objects: Vec<Integration> = (0..size)
        .map(|i| integration(i, applications, INITIAL_TOPIC))
        .collect::<anyhow::Result<_>>()?;
    let api = Arc::new(integrations.clone());
    let failures: Vec<String> = futures::stream::iter(objects)
        .map(|object| {
            let api = Arc::clone(&api);
            async move {
                api.create(&PostParams::default(), &object)
                    .await
                    .err()
                    .map(|e| e.to_string())
            }
        })
        .buffer_unordered(CREATE_CONCURRENCY)
        .filter_map(|failure| async move { failure })
        .collect()
        .await;
    if let Some(first) = failures.first() {
        bail!("{} creates failed, first: {first}", failures.len());
    }
    Ok(started.elapsed().as_secs_f64())
}

/// Deletes the namespace and takes the finalizers off what is in it (the operator is stopped
/// by then). Failures are logged: what is left behind only takes up room in the control plane.
pub async fn cleanup(kube: &kube::Client, ns: &str) {
    let namespaces: Api<Namespace> = Api::all(kube.clone());
    if let Err(error) = namespaces.delete(ns, &Default::default()).await {
        eprintln!("bench: cleanup: deleting namespace {ns}: {error}");
    }
    strip_finalizers::<Integration>(kube, ns).await;
    strip_finalizers::<LosantApplication>(kube, ns).await;
    strip_finalizers::<Secret>(kube, ns).await;
}

async fn strip_finalizers<K>(kube: &kube::Client, ns: &str)
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope> + Clone + Debug + DeserializeOwned,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(kube.clone(), ns);
    let kind = K::kind(&K::DynamicType::default()).into_owned();
    let list = match api.list(&ListParams::default()).await {
        Ok(list) => list,
        Err(error) => {
            eprintln!("bench: cleanup: listing {kind}s: {error}");
            return;
        }
    };
    let strip = Patch::Merge(json!({"metadata": {"finalizers": null}}));
    for object in list.items {
        let name = object.name_any();
        match api.patch(&name, &PatchParams::default(), &strip).await {
            Ok(_) => {}
            // Gone already: the namespace's deletion got there first.
            Err(kube::Error::Api(status)) if status.is_not_found() => {}
            Err(error) => eprintln!("bench: cleanup: {kind} {name}: {error}"),
        }
    }
}
