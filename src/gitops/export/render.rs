//! The exported manifests as YAML documents and files, pure.
//!
//! One file per integration (named after its object, so names are already safe and unique),
//! `_application.yaml` with the `LosantApplication`, and `_secrets.yaml` with every Secret to
//! fill (`_` cannot start an object name, so these never collide with an integration's file).
//! Secret values are never written: each key is an empty placeholder under a comment naming the
//! field it feeds.

use serde_json::{Value, json};

use super::convert::SecretSlot;
use crate::controller::integration::{
    APPLICATION_ID, INTEGRATION_ID, ORIGIN, SECRETS_MATCH_REMOTE,
};
use crate::crd::{IntegrationSpec, LosantApplicationSpec, SecretKeyRef};

/// The file holding the `LosantApplication`.
pub const APPLICATION_FILE: &str = "_application.yaml";
/// The file holding every Secret to fill.
pub const SECRETS_FILE: &str = "_secrets.yaml";

/// The `LosantApplication` the exported integrations belong to.
#[derive(Clone, Debug, PartialEq)]
pub struct Application {
    /// Its object name.
    pub name: String,
    /// The namespace of every generated object.
    pub namespace: String,
    /// Its spec (the token and CA bundle are references, filled by the user).
    pub spec: LosantApplicationSpec,
}

/// One exported integration.
#[derive(Clone, Debug, PartialEq)]
pub struct Exported {
    /// Its object name.
    pub object_name: String,
    /// The remote's id.
    pub id: String,
    /// The application the remote lives in (lowercase id).
    pub application_id: String,
    /// The spec (secret fields as references).
    pub spec: IntegrationSpec,
    /// The Secret its references point at, if any.
    pub secret_name: String,
    /// The keys of that Secret to fill.
    pub slots: Vec<SecretSlot>,
}

/// A generated file: its name and YAML text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    /// File name (no directory).
    pub name: String,
    /// YAML, one or more documents.
    pub text: String,
}

/// Every file of an export, the application's first, then the Secrets, then the integrations
/// by object name.
pub fn files(application: &Application, integrations: &[Exported]) -> Result<Vec<File>, String> {
    let mut files = vec![File {
        name: APPLICATION_FILE.into(),
        text: application_yaml(application)?,
    }];
    let mut secrets = vec![token_secret(application)];
    if let Some(reference) = &application.spec.ca_bundle_secret_ref {
        secrets.push(placeholder_secret(
            &application.namespace,
            &reference.name,
            "The CA bundle (PEM) the operator trusts for this application's apiUrl.",
            &[(reference.key.clone(), "the CA bundle, PEM".into())],
        ));
    }
    for exported in integrations.iter().filter(|e| !e.slots.is_empty()) {
        secrets.push(integration_secret(&application.namespace, exported));
    }
    files.push(File {
        name: SECRETS_FILE.into(),
        text: secrets.join("---\n"),
    });
    for exported in integrations {
        files.push(File {
            name: format!("{}.yaml", exported.object_name),
            text: integration_yaml(&application.namespace, exported)?,
        });
    }
    Ok(files)
}

/// All files as one multi-document stream (for standard output).
pub fn stream(files: &[File]) -> String {
    files
        .iter()
        .map(|file| file.text.as_str())
        .collect::<Vec<_>>()
        .join("---\n")
}

fn yaml(value: &Value) -> Result<String, String> {
    serde_saphyr::to_string(value).map_err(|e| format!("cannot write YAML: {e}"))
}

fn application_yaml(application: &Application) -> Result<String, String> {
    let spec = serde_json::to_value(&application.spec).map_err(|e| e.to_string())?;
    let document = json!({
        "apiVersion": "losant.io/v1alpha1",
        "kind": "LosantApplication",
        "metadata": {"name": application.name, "namespace": application.namespace},
        "spec": spec,
    });
    Ok(format!(
        "# Losant application {}; its API token comes from the Secret in {SECRETS_FILE}.\n{}",
        application.spec.application_id,
        yaml(&document)?
    ))
}

fn integration_yaml(namespace: &str, exported: &Exported) -> Result<String, String> {
    let spec = serde_json::to_value(&exported.spec).map_err(|e| e.to_string())?;
    let document = json!({
        "apiVersion": "losant.io/v1alpha1",
        "kind": "Integration",
        "metadata": {
            "name": exported.object_name,
            "namespace": namespace,
            "annotations": {
                INTEGRATION_ID: exported.id,
                APPLICATION_ID: exported.application_id,
                ORIGIN: "Adopted",
                SECRETS_MATCH_REMOTE: "true",
            },
        },
        "spec": spec,
    });
    Ok(format!(
        "# Losant integration {:?} ({}), id {}: pinned to it by the annotations.\n{}",
        exported.spec.name.as_deref().unwrap_or_default(),
        exported.spec.integration_type.as_str(),
        exported.id,
        yaml(&document)?
    ))
}

fn token_secret(application: &Application) -> String {
    let SecretKeyRef { name, key } = &application.spec.token_secret_ref;
    placeholder_secret(
        &application.namespace,
        name,
        &format!(
            "The API token of Losant application {} (it needs the integration scopes).",
            application.spec.application_id
        ),
        &[(key.clone(), "the API token".into())],
    )
}

fn integration_secret(namespace: &str, exported: &Exported) -> String {
    let keys: Vec<(String, String)> = exported
        .slots
        .iter()
        .map(|slot| (slot.key.clone(), slot.field.clone()))
        .collect();
    placeholder_secret(
        namespace,
        &exported.secret_name,
        &format!(
            "The secret values of Losant integration {:?} (id {}), Integration {}.",
            exported.spec.name.as_deref().unwrap_or_default(),
            exported.id,
            exported.object_name
        ),
        &keys,
    )
}

/// A Secret whose keys are empty, each under a comment naming what it holds. Names and keys are
/// quoted, and `about` names integrations only through `{:?}` (escaped, one line), so nothing
/// here can break out of a comment or a scalar.
fn placeholder_secret(
    namespace: &str,
    name: &str,
    about: &str,
    keys: &[(String, String)],
) -> String {
    // JSON strings are YAML double-quoted scalars: a key such as `true` stays a string.
    let quoted = |text: &str| Value::String(text.to_owned()).to_string();
    let (name, namespace) = (quoted(name), quoted(namespace));
    let mut text = format!(
        "# {about}\n\
         # Fill in each key with the value Losant holds now (export never writes secret values),\n\
         # then keep this file out of version control.\n\
         apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: {namespace}\n\
         type: Opaque\nstringData:\n"
    );
    for (key, holds) in keys {
        text.push_str(&format!("  # {holds}\n  {}: \"\"\n", quoted(key)));
    }
    text
}
