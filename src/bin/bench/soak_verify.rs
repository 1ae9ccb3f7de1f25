//! The soak's end check, a hard one: every live Integration Ready for its latest generation
//! with its remote recorded; Losant holding exactly one remote per live Integration, found by
//! the recorded id and by the name, with the latest topic and the current Secret value; no
//! remote for a deleted Integration and no object of it left; nothing else in Losant.
//!
//! Problems name objects only: a Secret value never appears in what is printed or written.

use std::collections::BTreeMap;

use kube::api::ListParams;
use losant_operator::sync::conditions;
use losant_operator::sync::reason::{ConditionStatus, ConditionType};
use reqwest::Method;
use serde_json::{Value, json};

use crate::observe::PER_PAGE;
use crate::soak_churn::Churn;
use crate::soak_emulator::SoakEmulator;

/// An object as the API server holds it: Ready for its latest generation, and its remote.
struct Recorded {
    ready_now: bool,
    app: Option<String>,
    id: Option<String>,
}

/// What is wrong with the end state; empty when it is right.
pub async fn verify_end_state(
    churn: &Churn,
    emulator: &SoakEmulator,
) -> anyhow::Result<Vec<String>> {
    let recorded = recorded(churn).await?;
    let mut remotes: BTreeMap<String, Vec<(usize, Value)>> = BTreeMap::new();
    let mut remote_count = 0;
    for (app_index, app) in churn.apps.iter().enumerate() {
        for remote in all_remotes(emulator, app)? {
            remote_count += 1;
            let name = remote["name"].as_str().unwrap_or_default().to_owned();
            remotes.entry(name).or_default().push((app_index, remote));
        }
    }
    let mut problems = Vec::new();
    for (name, expected) in &churn.live {
        let Some(object) = recorded.get(name) else {
            problems.push(format!("{name}: live, but not in the API server"));
            continue;
        };
        if !object.ready_now {
            problems.push(format!("{name}: not Ready for its latest generation"));
        }
        let found = remotes.get(name).map(Vec::as_slice).unwrap_or_default();
        let [(app_index, remote)] = found else {
            problems.push(format!("{name}: {} remotes by name, not 1", found.len()));
            continue;
        };
        let id = remote["id"].as_str().unwrap_or_default();
        if *app_index != expected.app
            || object.app.as_deref() != Some(churn.apps[*app_index].as_str())
        {
            problems.push(format!("{name}: remote in the wrong application"));
        }
        if object.id.as_deref() != Some(id) {
            problems.push(format!("{name}: recorded id is not its remote's"));
        }
        if remote["topics"] != json!([expected.topic]) {
            problems.push(format!("{name}: the latest topic is not in Losant"));
        }
        let secret = churn.secret_values[expected.secret].as_str();
        if remote["mqttConfig"]["password"].as_str() != Some(secret) {
            problems.push(format!("{name}: the current Secret value is not in Losant"));
        }
    }
    for name in &churn.deleted {
        if recorded.contains_key(name) {
            problems.push(format!("{name}: deleted, but still in the API server"));
        }
        if let Some(found) = remotes.get(name) {
            problems.push(format!(
                "{name}: deleted, but {} remotes remain",
                found.len()
            ));
        }
    }
    if remote_count != churn.live.len() {
        problems.push(format!(
            "Losant holds {remote_count} remotes for {} live Integrations",
            churn.live.len()
        ));
    }
    Ok(problems)
}

/// Every Integration of the namespace, by name.
async fn recorded(churn: &Churn) -> anyhow::Result<BTreeMap<String, Recorded>> {
    let mut recorded = BTreeMap::new();
    let mut params = ListParams::default().limit(500);
    loop {
        let page = churn.api().list(&params).await?;
        for object in &page.items {
            let status = object.status.clone().unwrap_or_default();
            let ready = conditions::has(
                &status.conditions,
                ConditionType::Ready,
                ConditionStatus::True,
            );
            let current = status.observed_generation.is_some()
                && status.observed_generation == object.metadata.generation;
            let name = object.metadata.name.clone().unwrap_or_default();
            let entry = Recorded {
                ready_now: ready && current && object.metadata.deletion_timestamp.is_none(),
                app: status.application_id.map(|app| app.to_string()),
                id: status.integration_id,
            };
            recorded.insert(name, entry);
        }
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => break,
        }
    }
    Ok(recorded)
}

/// Every remote of `app` (all pages), read with the soak's token; an error when the emulator
/// does not answer 200 (a partial list must not pass for the whole).
fn all_remotes(emulator: &SoakEmulator, app: &str) -> anyhow::Result<Vec<Value>> {
    let mut all = Vec::new();
    for page in 0.. {
        let path = format!(
            "/applications/{app}/integrations?perPage={PER_PAGE}&page={page}&sortField=id&_links=false&_embedded=false&_actions=false"
        );
        let body = emulator.api(Method::GET, &path, None)?;
        let items = body["items"].as_array().cloned().unwrap_or_default();
        let done = items.len() < PER_PAGE;
        all.extend(items);
        if done {
            break;
        }
    }
    Ok(all)
}
