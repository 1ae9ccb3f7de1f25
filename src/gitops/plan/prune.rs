//! `--prune`, pure: the cluster's Integrations that manage a remote (they record its id) but
//! are gone from the input, and what deleting each would do under its `deletionPolicy`.

use std::collections::BTreeSet;

use kube::api::ResourceExt;

use super::verdict::{Action, Verdict};
use super::world::World;
use crate::controller::integration::is_paused;
use crate::crd::DeletionPolicy;
use crate::sync::record;

/// One row per cluster object in `namespaces` that records a remote and whose
/// `namespace/name` is not in `kept`, by namespace and name.
pub fn prune(
    world: &World,
    kept: &BTreeSet<(String, String)>,
    namespaces: &BTreeSet<String>,
) -> Vec<Verdict> {
    let mut rows: Vec<Verdict> = world
        .cluster
        .iter()
        .filter_map(|obj| {
            let namespace = obj.namespace()?;
            let name = obj.name_any();
            if !namespaces.contains(&namespace) || kept.contains(&(namespace.clone(), name.clone())) {
                return None;
            }
            let previous = obj.status.clone().unwrap_or_default();
            let managed = record::managed(obj, &previous)?;
            let policy = record::deletion_policy(obj, &previous, world.now);
            let (action, what) = match policy {
                DeletionPolicy::Delete if is_paused(obj) => (
                    Action::Paused,
                    "deletion would wait: losant.io/paused is set and deletionPolicy is Delete",
                ),
                DeletionPolicy::Delete => (
                    Action::Delete,
                    "deleting the object deletes the remote integration (deletionPolicy Delete)",
                ),
                DeletionPolicy::Orphan => (
                    Action::Orphan,
                    "deleting the object leaves the remote integration in Losant (deletionPolicy Orphan)",
                ),
            };
            let mut row = Verdict::new(&namespace, &name, None, action);
            row.remote_name = Some(obj.remote_name().to_owned());
            row.remote_id = Some(managed.id.clone());
            row.application_id = Some(managed.application_id.clone());
            row.message = Some(match gone(world, &managed.application_id, &managed.id) {
                true => format!("{what}; Losant no longer has it"),
                false => what.to_owned(),
            });
            Some(row)
        })
        .collect();
    rows.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    rows
}

/// Whether a listing of the application was read and lacks the id.
fn gone(world: &World, application_id: &str, id: &str) -> bool {
    world
        .listings
        .iter()
        .filter(|((_, app), _)| app == application_id)
        .any(|(_, listing)| {
            listing
                .as_ref()
                .is_ok_and(|l| l.items.iter().all(|i| i.id != id))
        })
}
