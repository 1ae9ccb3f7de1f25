//! The soak's churn: the Integrations it keeps alive and what it does to them each round. It remembers what each live
//! object should end as (its application, topic and Secret) and which names it deleted, for the
//! end check.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use anyhow::{anyhow, bail};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use losant_operator::crd::Integration;
use losant_operator::testkit::{
    integration_manifest, kubectl_apply_yaml, losant_application_manifest, secret_manifest,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::json;

use crate::fleet::{OPERATOR_TOKEN, application_ids};
use crate::soak::SoakArgs;
use crate::soak_emulator::SoakEmulator;

/// Creates sent to the API server at once while the first fleet is made.
const CREATE_CONCURRENCY: usize = 16;
/// A Secret rotation every this many rounds; a change in Losant every this many.
const ROTATE_EVERY: u64 = 10;
const DRIFT_EVERY: u64 = 3;
/// The topic a change in Losant sets (the operator must set it back).
const DRIFTED_TOPIC: &str = "drifted/by/soak";

/// What the churn did, by kind.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ChurnCounts {
    pub rounds: u64,
    pub created: u64,
    pub deleted: u64,
    pub edited: u64,
    pub secret_rotations: u64,
    pub drift_patched: u64,
    pub drift_deleted: u64,
    pub connection_overrides: u64,
    pub emulator_restarts: u64,
    /// Steps the API server or the emulator refused (the expectation stays as it was).
    pub failed_steps: u64,
}

impl ChurnCounts {
    /// The kinds of churn that never happened.
    pub fn missing_kinds(&self) -> Vec<&'static str> {
        [
            ("create", self.created),
            ("deletion", self.deleted),
            ("edit", self.edited),
            ("Secret rotation", self.secret_rotations),
            ("topics changed in Losant", self.drift_patched),
            ("remote deleted in Losant", self.drift_deleted),
            ("connection forced down", self.connection_overrides),
            ("emulator restart", self.emulator_restarts),
        ]
        .into_iter()
        .filter(|(_, count)| *count == 0)
        .map(|(kind, _)| kind)
        .collect()
    }
}

/// What a live Integration should end as.
#[derive(Clone, Debug)]
pub struct Expected {
    pub app: usize,
    pub secret: usize,
    pub topic: String,
}

/// The churned fleet.
pub struct Churn {
    api: Api<Integration>,
    secrets_api: Api<Secret>,
    namespace: String,
    pub apps: Vec<String>,
    secrets: usize,
    size: usize,
    next_serial: usize,
    pub live: BTreeMap<String, Expected>,
    pub deleted: BTreeSet<String>,
    /// The current password of each Secret.
    pub secret_values: Vec<String>,
    /// The remote id whose connection the soak forced down last (restored at the next).
    overridden: Option<String>,
    rng: StdRng,
    pub counts: ChurnCounts,
}

impl Churn {
    pub fn new(args: &SoakArgs, kube: kube::Client) -> Churn {
        let secrets = args.secrets.max(1);
        Churn {
            secrets_api: Api::namespaced(kube.clone(), &args.namespace),
            api: Api::namespaced(kube, &args.namespace),
            namespace: args.namespace.clone(),
            apps: application_ids(args.applications.max(1)),
            secrets,
            size: args.size,
            next_serial: 0,
            live: BTreeMap::new(),
            deleted: BTreeSet::new(),
            secret_values: (0..secrets)
                .map(|s| format!("soak-password-{s}-0"))
                .collect(),
            overridden: None,
            rng: StdRng::seed_from_u64(0x50a4),
            counts: ChurnCounts::default(),
        }
    }

    /// The namespace's Integrations.
    pub fn api(&self) -> &Api<Integration> {
        &self.api
    }

    pub fn live_count(&self) -> usize {
        self.live.len()
    }

    pub fn deleted_count(&self) -> usize {
        self.deleted.len()
    }

    /// The token Secret, the password Secrets and one `LosantApplication` per application.
    pub fn create_fixtures(&self, emulator_url: &str) -> anyhow::Result<()> {
        let mut manifests = vec![secret_manifest(
            "losant-token",
            &[("token", OPERATOR_TOKEN)],
        )];
        for (s, value) in self.secret_values.iter().enumerate() {
            manifests.push(secret_manifest(&secret_name(s), &[("password", value)]));
        }
        for (i, app) in self.apps.iter().enumerate() {
            manifests.push(losant_application_manifest(
                &format!("app-{i}"),
                app,
                emulator_url,
                "losant-token",
                "token",
            ));
        }
        kubectl_apply_yaml(&self.namespace, &manifests.join("\n"))
            .map_err(|stderr| anyhow!("applying the soak's fixtures:\n{stderr}"))?;
        Ok(())
    }

    /// The first `size` Integrations, before the operator starts.
    pub async fn create_initial(&mut self) -> anyhow::Result<()> {
        let objects: Vec<(String, Expected, Integration)> = (0..self.size)
            .map(|_| self.next_object())
            .collect::<anyhow::Result<_>>()?;
        let api = Arc::new(self.api.clone());
        let failures: Vec<String> = futures::stream::iter(objects.iter())
            .map(|(_, _, object)| {
                let api = Arc::clone(&api);
                async move { api.create(&PostParams::default(), object).await.err() }
            })
            .buffer_unordered(CREATE_CONCURRENCY)
            .filter_map(|failure| async move { failure.map(|e| e.to_string()) })
            .collect()
            .await;
        if let Some(first) = failures.first() {
            bail!("{} creates failed, first: {first}", failures.len());
        }
        for (name, expected, _) in objects {
            self.live.insert(name, expected);
        }
        Ok(())
    }

    /// The next new Integration: MQTT with a password from one of the Secrets.
    fn next_object(&mut self) -> anyhow::Result<(String, Expected, Integration)> {
        let serial = self.next_serial;
        self.next_serial += 1;
        let name = format!("soak-{serial:06}");
        let expected = Expected {
            app: serial % self.apps.len(),
            secret: serial % self.secrets,
            topic: format!("soak/{name}/0"),
        };
        let spec = json!({
            "applicationRef": {"name": format!("app-{}", expected.app)},
            "integrationType": "mqtt",
            "topics": [expected.topic],
            "mqttConfig": {
                "host": format!("broker-{serial}.example.com"),
                "port": 8883,
                "protocol": "mqtts",
                "clientId": format!("soak-{serial}"),
                "username": "losant",
                "passwordSecretRef": {"name": secret_name(expected.secret), "key": "password"}
            }
        });
        let object = serde_json::from_str(&integration_manifest(&name, &spec))?;
        Ok((name, expected, object))
    }

    /// One round: a create, a deletion, two edits; every few rounds a Secret rotation and a
    /// change made in Losant.
    pub async fn round(&mut self, emulator: &SoakEmulator) -> anyhow::Result<()> {
        self.counts.rounds += 1;
        let round = self.counts.rounds;
        self.create_one().await?;
        self.delete_one().await;
        for _ in 0..2 {
            self.edit_one(round).await;
        }
        if round.is_multiple_of(ROTATE_EVERY) {
            self.rotate_secret(round).await;
        }
        if round % DRIFT_EVERY == 1 {
            self.drift(emulator, (round / DRIFT_EVERY) % 3).await;
        }
        Ok(())
    }

    async fn create_one(&mut self) -> anyhow::Result<()> {
        let (name, expected, object) = self.next_object()?;
        match self.api.create(&PostParams::default(), &object).await {
            Ok(_) => {
                self.live.insert(name, expected);
                self.counts.created += 1;
            }
            Err(e) => self.failed("create", &name, &e),
        }
        Ok(())
    }

    /// A live name chosen at random.
    fn any_live(&mut self) -> Option<String> {
        if self.live.is_empty() {
            return None;
        }
        let index = self.rng.random_range(0..self.live.len());
        self.live.keys().nth(index).cloned()
    }

    async fn delete_one(&mut self) {
        let Some(name) = self.any_live() else { return };
        match self.api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {
                self.live.remove(&name);
                self.deleted.insert(name);
                self.counts.deleted += 1;
            }
            Err(e) => self.failed("delete", &name, &e),
        }
    }

    async fn edit_one(&mut self, round: u64) {
        let Some(name) = self.any_live() else { return };
        let topic = format!("soak/{name}/{round}");
        let patch = Patch::Merge(json!({"spec": {"topics": [topic]}}));
        match self.api.patch(&name, &PatchParams::default(), &patch).await {
            Ok(_) => {
                if let Some(expected) = self.live.get_mut(&name) {
                    expected.topic = topic;
                }
                self.counts.edited += 1;
            }
            Err(e) => self.failed("edit", &name, &e),
        }
    }

    /// Gives one of the password Secrets a new value (every Integration using it must follow).
    async fn rotate_secret(&mut self, round: u64) {
        let s = (round / ROTATE_EVERY) as usize % self.secrets;
        let value = format!("soak-password-{s}-{round}");
        let patch = Patch::Merge(json!({"stringData": {"password": value}}));
        let name = secret_name(s);
        match self
            .secrets_api
            .patch(&name, &PatchParams::default(), &patch)
            .await
        {
            Ok(_) => {
                self.secret_values[s] = value;
                self.counts.secret_rotations += 1;
            }
            Err(e) => self.failed("rotate", &name, &e),
        }
    }

    /// A change in Losant behind the operator's back, on a random live object's remote: its
    /// topics changed (`kind` 0), the remote deleted (1), or its connection forced down (2).
    async fn drift(&mut self, emulator: &SoakEmulator, kind: u64) {
        let Some(name) = self.any_live() else { return };
        let Ok(object) = self.api.get(&name).await else {
            return;
        };
        let status = object.status.unwrap_or_default();
        let (Some(app), Some(id)) = (status.application_id, status.integration_id) else {
            // Not created in Losant yet: nothing to change there.
            return;
        };
        let path = format!("/applications/{app}/integrations/{id}");
        let done = match kind {
            0 => {
                let body = json!({"topics": [DRIFTED_TOPIC]});
                let done = emulator.api(Method::PATCH, &path, Some(&body)).is_ok();
                self.counts.drift_patched += u64::from(done);
                done
            }
            1 => {
                let done = emulator.api(Method::DELETE, &path, None).is_ok();
                self.counts.drift_deleted += u64::from(done);
                done
            }
            _ => {
                let done = self.force_disconnected(emulator, &id);
                self.counts.connection_overrides += u64::from(done);
                done
            }
        };
        if !done {
            self.counts.failed_steps += 1;
        }
    }

    /// Forces the connection of remote `id` down, and gives the one forced before back to the
    /// emulator's automatic behaviour.
    fn force_disconnected(&mut self, emulator: &SoakEmulator, id: &str) -> bool {
        if let Some(previous) = self.overridden.take() {
            emulator.restore_connection(&previous);
        }
        let path = format!("/_emulator/integrations/{id}/connection");
        let body = json!({"connected": false, "error": "soak: connection dropped"});
        let forced = emulator.admin(Method::PUT, &path, Some(&body)).is_ok();
        if forced {
            self.overridden = Some(id.to_owned());
        }
        forced
    }

    /// Gives the last forced connection back (before the end check).
    pub fn restore_connections(&mut self, emulator: &SoakEmulator) {
        if let Some(previous) = self.overridden.take() {
            emulator.restore_connection(&previous);
        }
    }

    fn failed(&mut self, step: &str, name: &str, error: &kube::Error) {
        self.counts.failed_steps += 1;
        eprintln!("soak: {step} of {name} failed: {error}");
    }
}

fn secret_name(index: usize) -> String {
    format!("soak-password-{index}")
}
