//! `losant-operator export`: manifests for the integrations an application already has in
//! Losant, so a team can bring an existing estate under the operator without writing them by
//! hand, and without the operator writing anything to Losant when it takes them over.
//!
//! Each exported `Integration` is pinned to its remote by the annotations the controller
//! records (`losant.io/integration-id`, `losant.io/application-id`, `losant.io/origin:
//! Adopted`), so adoption is by id, never by name; `deletionPolicy: Orphan`. Secret fields
//! become references to generated Secrets with empty keys to fill, and
//! `losant.io/secrets-match-remote: "true"` says those values are the ones Losant holds, so the
//! first reconcile records them as applied instead of sending them
//! ([`crate::sync::decide::SecretsSince`]).
//!
//! Reading goes through the operator's Losant client (paged list, rate limiter, retries) and is
//! read-only everywhere; the pure parts ([`bundle`], [`convert`], [`names`], [`select`],
//! [`render`]) are tested without I/O.

pub mod bundle;
pub mod convert;
pub mod names;
pub mod render;
pub mod select;
#[cfg(test)]
mod tests;

use std::io::Write;
use std::path::{Path, PathBuf};

use super::application::{self, ApplicationError, Source};
use crate::crd::IntegrationTypeSpec;
use render::{Application, File};
use select::Selection;

/// `losant-operator export`'s flags.
#[derive(clap::Args, Debug)]
#[command(
    group(clap::ArgGroup::new("application").required(true).args(["application_ref", "application_id"])),
    after_help = "Secret values are never written: each Secret field becomes a reference to a key of a generated Secret, left empty for you to fill with the value Losant holds. Fill them, apply everything, and the operator adopts each integration by id without writing to Losant."
)]
pub struct ExportArgs {
    /// The LosantApplication to export, as NAMESPACE/NAME. It and its token (and CA bundle)
    /// Secret are read with the current kubeconfig; nothing is written to the cluster.
    #[arg(long, value_name = "NAMESPACE/NAME", conflicts_with_all = ["api_url", "token_file", "ca_file"])]
    pub application_ref: Option<String>,
    /// The Losant application id (24 hex digits), instead of --application-ref; needs --token-file.
    #[arg(long, value_name = "ID", requires = "token_file")]
    pub application_id: Option<String>,
    /// Losant's API URL (with --application-id). Default: `https://api.losant.com`.
    #[arg(long, value_name = "URL", requires = "application_id")]
    pub api_url: Option<String>,
    /// A file holding the API token (with --application-id).
    #[arg(long, value_name = "PATH", requires = "application_id")]
    pub token_file: Option<PathBuf>,
    /// A file holding an extra CA bundle (PEM) to trust, for a private install (with
    /// --application-id).
    #[arg(long, value_name = "PATH", requires = "application_id")]
    pub ca_file: Option<PathBuf>,
    /// Only integrations whose whole name matches GLOB (`*` any run of characters, `?` one
    /// character, `\` escapes; case-sensitive).
    #[arg(long, value_name = "GLOB")]
    pub filter: Option<String>,
    /// Only integrations of these types (repeatable, or comma-separated): azureEventHub,
    /// googlePubSub, mqtt, particle, sqs, websocket.
    #[arg(long = "type", value_name = "TYPE", value_delimiter = ',', value_parser = parse_type)]
    pub types: Vec<IntegrationTypeSpec>,
    /// Namespace of the generated objects. Default: the LosantApplication's, else the current
    /// kubeconfig context's, else `default`.
    #[arg(long, short = 'n', value_name = "NS")]
    pub namespace: Option<String>,
    /// Write one file per integration, `_application.yaml` and `_secrets.yaml` into DIR (new or
    /// empty) instead of one YAML stream to standard output.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

fn parse_type(text: &str) -> Result<IntegrationTypeSpec, String> {
    IntegrationTypeSpec::ALL
        .into_iter()
        .find(|t| t.as_str() == text.trim())
        .ok_or_else(|| {
            let known: Vec<&str> = IntegrationTypeSpec::ALL
                .iter()
                .map(|t| t.as_str())
                .collect();
            format!(
                "unknown integration type {text:?}; one of {}",
                known.join(", ")
            )
        })
}

/// Why the export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The application could not be reached.
    #[error(transparent)]
    Application(#[from] ApplicationError),
    /// A flag is unusable.
    #[error("{0}")]
    Usage(String),
    /// Listing the integrations failed.
    #[error("listing the integrations of application {application_id} failed: {source}")]
    Losant {
        /// The application.
        application_id: String,
        /// The client's error (never a secret).
        source: crate::losant::Error,
    },
    /// Losant listed items that could not be read and may be selected.
    #[error(
        "Losant listed {0} integration(s) that cannot be read and may match the selection; nothing was written"
    )]
    Unreadable(usize),
    /// The manifests could not be made.
    #[error(transparent)]
    Bundle(#[from] bundle::BundleError),
    /// The output could not be written.
    #[error("cannot write {path}: {reason}")]
    Output {
        /// Where.
        path: String,
        /// Why.
        reason: String,
    },
}

impl ExportError {
    /// Whether trying again may help.
    pub fn is_transient(&self) -> bool {
        match self {
            ExportError::Application(error) => error.is_transient(),
            ExportError::Losant { source, .. } => {
                source.class() == crate::losant::ErrorClass::Transient
            }
            _ => false,
        }
    }
}

/// Runs `export`: reads, then writes everything or nothing.
///
/// # Errors
/// [`ExportError`], naming what failed; never a secret value.
pub fn run(args: ExportArgs) -> Result<(), ExportError> {
    // reqwest is built without a default rustls provider (as for `run`).
    rustls::crypto::ring::default_provider()
        .install_default()
        .ok();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ExportError::Usage(format!("cannot start the runtime: {e}")))?;
    let files = runtime.block_on(export(&args))?;
    match &args.out {
        Some(dir) => write_dir(dir, &files)?,
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(render::stream(&files).as_bytes())
                .and_then(|()| stdout.flush())
                .map_err(|e| ExportError::Output {
                    path: "standard output".into(),
                    reason: e.to_string(),
                })?;
        }
    }
    let integrations = files.len().saturating_sub(2);
    eprintln!(
        "exported {integrations} integration(s); fill the Secrets in {} before applying",
        render::SECRETS_FILE
    );
    Ok(())
}

/// Everything up to the files: the flags, the application, the list, the manifests.
async fn export(args: &ExportArgs) -> Result<Vec<File>, ExportError> {
    let source = source(args)?;
    if let Some(out) = &args.out {
        check_out_dir(out)?;
    }
    let connected = application::connect(&source).await?;
    let namespace = match (&args.namespace, &connected.namespace) {
        (Some(flag), _) => flag.clone(),
        (None, Some(found)) => found.clone(),
        (None, None) => "default".to_owned(),
    };
    if !names::is_dns_label(&namespace) {
        return Err(ExportError::Usage(format!(
            "{namespace:?} is not a namespace name"
        )));
    }
    let application_id = connected.spec.application_id.to_ascii_lowercase();
    let listing = connected
        .client
        .list_everything(&application_id)
        .await
        .map_err(|source| ExportError::Losant {
            application_id: application_id.clone(),
            source,
        })?;
    let selection = Selection {
        name_glob: args.filter.clone(),
        types: args.types.clone(),
    };
    let unreadable = listing
        .unreadable_names
        .iter()
        .filter(|name| match (name, &selection.name_glob) {
            (Some(name), Some(glob)) => select::glob_matches(glob, name),
            _ => true,
        })
        .count();
    if unreadable > 0 {
        return Err(ExportError::Unreadable(unreadable));
    }
    let application = Application {
        name: connected.object_name,
        namespace,
        spec: connected.spec,
    };
    Ok(bundle::bundle(&application, &listing.items, &selection)?)
}

fn source(args: &ExportArgs) -> Result<Source, ExportError> {
    if let Some(reference) = &args.application_ref {
        let (namespace, name) = reference
            .split_once('/')
            .filter(|(ns, name)| !ns.is_empty() && !name.is_empty() && !name.contains('/'))
            .ok_or_else(|| {
                ExportError::Usage(format!(
                    "--application-ref {reference:?} is not NAMESPACE/NAME"
                ))
            })?;
        return Ok(Source::Cluster {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        });
    }
    match (&args.application_id, &args.token_file) {
        (Some(application_id), Some(token_file)) => Ok(Source::Direct {
            api_url: args
                .api_url
                .clone()
                .unwrap_or_else(|| crate::losant::DEFAULT_API_URL.to_owned()),
            application_id: application_id.clone(),
            token_file: token_file.clone(),
            ca_file: args.ca_file.clone(),
        }),
        _ => Err(ExportError::Usage(
            "name the application with --application-ref NAMESPACE/NAME, or with --application-id and --token-file".into(),
        )),
    }
}

fn output_error(path: &Path, error: impl std::fmt::Display) -> ExportError {
    ExportError::Output {
        path: path.display().to_string(),
        reason: error.to_string(),
    }
}

/// The output directory must be new or empty: files of an earlier export left next to a new
/// one could pin integrations that are gone.
fn check_out_dir(dir: &Path) -> Result<(), ExportError> {
    match std::fs::read_dir(dir).map(|mut entries| entries.next().is_none()) {
        Ok(false) => Err(output_error(
            dir,
            "the directory is not empty; export into a new or empty directory",
        )),
        Ok(true) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(output_error(dir, e)),
    }
}

fn write_dir(dir: &Path, files: &[File]) -> Result<(), ExportError> {
    check_out_dir(dir)?;
    std::fs::create_dir_all(dir).map_err(|e| output_error(dir, e))?;
    for file in files {
        let path = dir.join(&file.name);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        if file.name == render::SECRETS_FILE {
            // It will hold secret values once filled.
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        }
        options
            .open(&path)
            .and_then(|mut out| out.write_all(file.text.as_bytes()))
            .map_err(|e| output_error(&path, e))?;
    }
    Ok(())
}
