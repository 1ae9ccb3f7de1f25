//! The remote integrations of an application → the files of an export, pure.

use std::collections::BTreeSet;

use super::convert::{self, Unexportable};
use super::names;
use super::render::{self, Application, Exported, File};
use super::select::Selection;
use crate::losant::Integration;

/// Why no files could be made.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// Some selected integrations cannot be written as specs; nothing is written.
    #[error(
        "{} selected integration(s) cannot be exported (nothing was written; leave them out with --filter or --type):\n{}",
        .0.len(),
        .0.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n")
    )]
    Unexportable(Vec<Unexportable>),
    /// A generated Secret name is taken by the application's own Secret.
    #[error(
        "Secret {0:?} would hold both the application's token and an integration's values; rename the token Secret"
    )]
    SecretNameClash(String),
    /// YAML could not be written.
    #[error("{0}")]
    Render(String),
}

/// The files for the `remotes` that `selection` includes, sorted and named.
///
/// # Errors
/// [`BundleError`]; every unexportable integration is named at once.
pub fn bundle(
    application: &Application,
    remotes: &[Integration],
    selection: &Selection,
) -> Result<Vec<File>, BundleError> {
    let mut chosen: Vec<&Integration> = remotes.iter().filter(|r| selection.includes(r)).collect();
    chosen.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
    let pairs: Vec<(&str, &str)> = chosen
        .iter()
        .map(|r| (r.id.as_str(), r.name.as_str()))
        .collect();
    let object_names = names::object_names(&pairs);
    let application_id = application.spec.application_id.to_ascii_lowercase();
    let mut exported = Vec::with_capacity(chosen.len());
    let mut failures = Vec::new();
    for (remote, object_name) in chosen.into_iter().zip(object_names) {
        let secret_name = names::secret_name(&object_name);
        match convert::integration_spec(remote, &application.name, &secret_name) {
            Ok((spec, slots)) => exported.push(Exported {
                object_name,
                id: remote.id.clone(),
                application_id: application_id.clone(),
                spec,
                secret_name,
                slots,
            }),
            Err(failure) => failures.push(failure),
        }
    }
    if !failures.is_empty() {
        return Err(BundleError::Unexportable(failures));
    }
    let integration_secrets: BTreeSet<&str> = exported
        .iter()
        .filter(|e| !e.slots.is_empty())
        .map(|e| e.secret_name.as_str())
        .collect();
    let spec = &application.spec;
    for own in std::iter::once(&spec.token_secret_ref).chain(&spec.ca_bundle_secret_ref) {
        if integration_secrets.contains(own.name.as_str()) {
            return Err(BundleError::SecretNameClash(own.name.clone()));
        }
    }
    exported.sort_by(|a, b| a.object_name.cmp(&b.object_name));
    render::files(application, &exported).map_err(BundleError::Render)
}
