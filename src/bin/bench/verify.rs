//! The end-state check after the cold start: every object Ready with a recorded remote, and
//! Losant holding exactly one integration per object.

use std::collections::{BTreeMap, BTreeSet};

use kube::Api;
use kube::api::ListParams;
use losant_operator::crd::Integration;
use losant_operator::sync::conditions;
use losant_operator::sync::reason::{ConditionStatus, ConditionType};

use crate::observe::Observer;

/// Where an object's remote is: its application and integration id.
pub struct RemoteRef {
    pub app: String,
    pub id: String,
}

/// Objects read per list page.
const PAGE: u32 = 500;

/// Whether the fleet of `size` ended as it should (logging what is wrong when not); and each
/// Ready object's remote, by the object's name.
pub async fn verify(
    integrations: &Api<Integration>,
    observer: &Observer<'_>,
    apps: &[String],
    size: usize,
) -> anyhow::Result<(bool, BTreeMap<String, RemoteRef>)> {
    let (recorded, not_ready) = recorded_remotes(integrations).await?;
    let mut remote_ids = BTreeSet::new();
    let mut remote_count = 0;
    for app in apps {
        for remote in observer.remotes(app)? {
            remote_count += 1;
            remote_ids.insert(remote["id"].as_str().unwrap_or_default().to_owned());
        }
    }
    let all_present = recorded
        .values()
        .all(|remote| remote_ids.contains(&remote.id));
    let verified = not_ready == 0 && recorded.len() == size && remote_count == size && all_present;
    if !verified {
        eprintln!(
            "bench: NOT VERIFIED: {not_ready} not Ready, {} recorded, {remote_count} remotes, all recorded present: {all_present}",
            recorded.len()
        );
    }
    Ok((verified, recorded))
}

/// The remote each Ready object recorded, by name, and how many objects are not Ready with one.
async fn recorded_remotes(
    integrations: &Api<Integration>,
) -> anyhow::Result<(BTreeMap<String, RemoteRef>, usize)> {
    let mut recorded = BTreeMap::new();
    let mut not_ready = 0;
    let mut params = ListParams::default().limit(PAGE);
    loop {
        let page = integrations.list(&params).await?;
        for object in &page.items {
            let status = object.status.clone().unwrap_or_default();
            let ready = conditions::has(
                &status.conditions,
                ConditionType::Ready,
                ConditionStatus::True,
            );
            match (ready, status.application_id, status.integration_id) {
                (true, Some(app), Some(id)) => {
                    let app = app.to_string();
                    let name = object.metadata.name.clone().unwrap_or_default();
                    recorded.insert(name, RemoteRef { app, id });
                }
                _ => not_ready += 1,
            }
        }
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => break,
        }
    }
    Ok((recorded, not_ready))
}
