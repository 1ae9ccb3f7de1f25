//! The objects a run creates in the API server: the Secrets and the `LosantApplication`s (with
//! the test kit's manifests), and the N `Integration`s (concurrently, which kubectl cannot).

use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail};
use futures::StreamExt;
use kube::Api;
use kube::api::PostParams;
use losant_operator::crd::Integration;
use losant_operator::testkit::{
    integration_manifest, kubectl_apply_yaml, losant_application_manifest, secret_manifest,
};
use serde_json::json;

/// The token the operator uses (all applications share it, so one rate budget).
pub const OPERATOR_TOKEN: &str = "bench-operator-token";
/// The topic every Integration starts with (drift is undone back to it).
pub const INITIAL_TOPIC: &str = "bench/initial";
/// Creates sent to the API server at once.
const CREATE_CONCURRENCY: usize = 32;
/// The Secret holding the operator's token, and its key.
const TOKEN_SECRET: (&str, &str) = ("losant-token", "token");

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
    let spec = json!({
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
    });
    Ok(serde_json::from_str(&integration_manifest(
        &integration_name(index),
        &spec,
    ))?)
}

/// The Secrets (the token, the MQTT password) and one `LosantApplication` per id in `apps`,
/// served by the emulator at `emulator_url`, applied in one kubectl call.
pub fn create_fixtures(ns: &str, apps: &[String], emulator_url: &str) -> anyhow::Result<()> {
    let (token_secret, token_key) = TOKEN_SECRET;
    let mut manifests = vec![
        secret_manifest(token_secret, &[(token_key, OPERATOR_TOKEN)]),
        secret_manifest("mqtt-credentials", &[("password", "bench-mqtt-password")]),
    ];
    manifests.extend(apps.iter().enumerate().map(|(i, app)| {
        losant_application_manifest(
            &format!("app-{i}"),
            app,
            emulator_url,
            token_secret,
            token_key,
        )
    }));
    // The manifests are JSON, which kubectl reads as a stream of objects (`---` is YAML's).
    kubectl_apply_yaml(ns, &manifests.join("\n"))
        .map_err(|stderr| anyhow!("applying the Secrets and LosantApplications:\n{stderr}"))?;
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
