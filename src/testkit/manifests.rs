//! Manifests the tests apply: Secrets, `LosantApplication`s, `Integration`s and the examples.
//! JSON text, which kubectl reads as YAML.

use std::path::Path;

use serde_json::{Value, json};

use super::emulator::EmulatorProcess;

/// A generic Secret manifest with `stringData`.
pub fn secret_manifest(name: &str, data: &[(&str, &str)]) -> String {
    let string_data: serde_json::Map<String, Value> = data
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned())))
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "type": "Opaque",
        "stringData": string_data,
    })
    .to_string()
}

/// A `losant.io/v1alpha1` object of `kind` named `name` with `spec`.
pub fn manifest(kind: &str, name: &str, spec: &Value) -> String {
    json!({
        "apiVersion": "losant.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": spec,
    })
    .to_string()
}

/// A `LosantApplication` manifest.
pub fn losant_application_manifest(
    name: &str,
    application_id: &str,
    api_url: &str,
    token_secret: &str,
    token_key: &str,
) -> String {
    manifest(
        "LosantApplication",
        name,
        &json!({
            "applicationId": application_id,
            "apiUrl": api_url,
            "tokenSecretRef": {"name": token_secret, "key": token_key},
        }),
    )
}

/// An `Integration` manifest with the given spec (which should include `applicationRef`).
pub fn integration_manifest(name: &str, spec: &Value) -> String {
    manifest("Integration", name, spec)
}

/// The manifests of `examples/`, pointed at `emulator`, its application and `token`.
///
/// # Panics
/// When `examples/` cannot be read.
pub fn example_manifests(emulator: &EmulatorProcess, token: &str) -> Vec<String> {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut files: Vec<_> = std::fs::read_dir(&examples)
        .and_then(|entries| entries.map(|entry| entry.map(|e| e.path())).collect())
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", examples.display()));
    files.sort();
    files
        .iter()
        .map(|file| {
            std::fs::read_to_string(file)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()))
                .replace("http://127.0.0.1:8787", emulator.base_url())
                .replace("575ec8687ae143cd83dc4a97", emulator.application_id())
                .replace("token: demo-token", &format!("token: {token}"))
        })
        .collect()
}

/// A random Losant-style object id (24 hexadecimal characters).
pub fn random_object_id() -> String {
    format!("{:024x}", rand::random::<u128>() >> 32)
}
