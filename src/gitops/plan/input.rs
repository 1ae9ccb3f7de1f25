//! Reading `plan`'s input, pure apart from reading files: files, directories (`-R` descends) and
//! `-` (stdin), each multi-document YAML or JSON, into the `Integration`s, `LosantApplication`s
//! and `Secret`s they hold. Any other kind is skipped (a kustomize build holds Deployments too).
//!
//! A document that does not parse, or an object of a known kind that does not decode, is an
//! error naming the file and the document (1-based index, and kind/name when readable); nothing
//! is skipped silently.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Secret;
use serde_json::Value;

use crate::crd::{Integration, LosantApplication};

/// The objects the input holds, each with where it came from.
#[derive(Default)]
pub struct Inputs {
    /// `Integration`s.
    pub integrations: Vec<Sourced<Integration>>,
    /// `LosantApplication`s.
    pub applications: Vec<Sourced<LosantApplication>>,
    /// `Secret`s. Never printed: they hold values.
    pub secrets: Vec<Sourced<Secret>>,
}

impl std::fmt::Debug for Inputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets are counted, never shown.
        f.debug_struct("Inputs")
            .field("integrations", &self.integrations.len())
            .field("applications", &self.applications.len())
            .field("secrets", &self.secrets.len())
            .finish()
    }
}

/// An object and the document it came from.
#[derive(Clone)]
pub struct Sourced<T> {
    /// The object.
    pub object: T,
    /// Where: `FILE (document N)`.
    pub source: String,
}

/// A bad input: which file and document, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// A path could not be read.
    #[error("{path}: {reason}")]
    Read {
        /// The path.
        path: String,
        /// Why.
        reason: String,
    },
    /// A document is not valid YAML, or not an object of a kind it claims.
    #[error("{file}: document {index}{what}: {reason}")]
    Document {
        /// The file (`-` for stdin).
        file: String,
        /// 1-based index of the document in the file.
        index: usize,
        /// ` (Kind/name)` when readable, else empty.
        what: String,
        /// Why.
        reason: String,
    },
}

impl InputError {
    fn document(file: &str, index: usize, what: Option<String>, reason: String) -> Self {
        InputError::Document {
            file: file.to_owned(),
            index,
            what: what.map(|w| format!(" ({w})")).unwrap_or_default(),
            reason,
        }
    }
}

/// Reads every path (`-` is `stdin`, read once), in order. Directories hold `*.yaml`, `*.yml`
/// and `*.json` files, read in name order; their subdirectories only with `recursive`.
pub fn load(
    paths: &[String],
    recursive: bool,
    stdin: &mut dyn std::io::Read,
) -> Result<Inputs, InputError> {
    let mut inputs = Inputs::default();
    let mut stdin_read = false;
    for path in paths {
        if path == "-" {
            if stdin_read {
                continue;
            }
            stdin_read = true;
            let mut text = String::new();
            stdin
                .read_to_string(&mut text)
                .map_err(|e| read_error("-", &e))?;
            parse_into(&mut inputs, "-", &text)?;
            continue;
        }
        for file in files(Path::new(path), recursive)? {
            let name = file.display().to_string();
            let text = std::fs::read_to_string(&file).map_err(|e| read_error(&name, &e))?;
            parse_into(&mut inputs, &name, &text)?;
        }
    }
    Ok(inputs)
}

fn read_error(path: &str, error: &std::io::Error) -> InputError {
    InputError::Read {
        path: path.to_owned(),
        reason: error.to_string(),
    }
}

/// The manifest files at `path`: itself, or the YAML/JSON files of a directory.
fn files(path: &Path, recursive: bool) -> Result<Vec<PathBuf>, InputError> {
    let name = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| read_error(&name, &e))?;
    if !meta.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| read_error(&name, &e))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(|e| read_error(&name, &e))?;
    entries.sort();
    let mut found = Vec::new();
    for entry in entries {
        if entry.is_dir() {
            if recursive {
                found.extend(files(&entry, recursive)?);
            }
        } else if is_manifest(&entry) {
            found.push(entry);
        }
    }
    Ok(found)
}

fn is_manifest(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

/// One document of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// 1-based index in the stream.
    pub index: usize,
    /// The file's line (1-based) the document starts on.
    pub first_line: usize,
    /// Its text.
    pub text: String,
}

/// Splits a stream at `---` lines, as kubectl does; blank documents are left out.
pub fn split_documents(text: &str) -> Vec<Document> {
    let mut documents = vec![Document {
        index: 1,
        first_line: 1,
        text: String::new(),
    }];
    for (number, line) in text.lines().enumerate() {
        let is_separator =
            line.starts_with("---") && line[3..].chars().next().is_none_or(char::is_whitespace);
        if is_separator {
            documents.push(Document {
                index: documents.len() + 1,
                first_line: number + 2,
                text: String::new(),
            });
        } else if let Some(current) = documents.last_mut() {
            current.text.push_str(line);
            current.text.push('\n');
        }
    }
    documents.retain(|d| !is_blank(&d.text));
    documents
}

/// Only whitespace and comments.
fn is_blank(text: &str) -> bool {
    text.lines().all(|line| {
        let line = line.trim();
        line.is_empty() || line.starts_with('#') || line == "..."
    })
}

/// Parses one file's documents into `inputs`.
pub fn parse_into(inputs: &mut Inputs, file: &str, text: &str) -> Result<(), InputError> {
    for Document {
        index,
        first_line,
        text,
    } in split_documents(text)
    {
        // Only where: the parser's message may quote the text, and a Secret's holds values.
        let value: Value = serde_saphyr::from_str(&text).map_err(|e| {
            let at = e.location().map_or_else(String::new, |l| {
                let line = usize::try_from(l.line()).unwrap_or(0) + first_line - 1;
                format!(" at line {line}, column {}", l.column())
            });
            InputError::document(file, index, None, format!("not valid YAML{at}"))
        })?;
        if value.is_null() {
            continue;
        }
        let source = format!("{file} (document {index})");
        add(inputs, value, &source)
            .map_err(|(what, reason)| InputError::document(file, index, what, reason))?;
    }
    Ok(())
}

/// `Kind/name` of an object, when readable.
fn what(value: &Value) -> Option<String> {
    let kind = value.get("kind")?.as_str()?;
    let name = value
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("<no name>");
    Some(format!("{kind}/{name}"))
}

type Rejection = (Option<String>, String);

/// Adds one object (the items of a `List`) of a kind `plan` reads; other kinds are skipped.
fn add(inputs: &mut Inputs, value: Value, source: &str) -> Result<(), Rejection> {
    if !value.is_object() {
        return Err((
            None,
            "not an object (a Kubernetes manifest is a mapping)".into(),
        ));
    }
    let kind = value
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let api_version = value
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if kind.is_empty() || api_version.is_empty() {
        return Err((what(&value), "apiVersion and kind are required".into()));
    }
    let losant = api_version.starts_with("losant.io/");
    let api_version = api_version.as_str();
    match kind.as_str() {
        "List" if api_version == "v1" => {
            let items = value.get("items").and_then(Value::as_array).cloned();
            for item in items.unwrap_or_default() {
                add(inputs, item, source)?;
            }
        }
        "Integration" if losant => inputs.integrations.push(Sourced {
            object: decode(value, api_version)?,
            source: source.to_owned(),
        }),
        "LosantApplication" if losant => inputs.applications.push(Sourced {
            object: decode(value, api_version)?,
            source: source.to_owned(),
        }),
        "Secret" if api_version == "v1" => inputs.secrets.push(Sourced {
            object: decode(value, api_version)?,
            source: source.to_owned(),
        }),
        _ => {}
    }
    Ok(())
}

/// Decodes a Losant or Secret object; the reason names the field serde could not read (never a
/// value: a Secret's data could be echoed otherwise).
fn decode<T: serde::de::DeserializeOwned>(value: Value, api_version: &str) -> Result<T, Rejection> {
    let what = what(&value);
    if api_version.starts_with("losant.io/") && api_version != "losant.io/v1alpha1" {
        return Err((
            what,
            format!("apiVersion {api_version} is not served (losant.io/v1alpha1 is)"),
        ));
    }
    if value
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .is_none()
    {
        return Err((what, "metadata.name is required".into()));
    }
    let is_secret = api_version == "v1";
    serde_json::from_value(value).map_err(|e| {
        let reason = if is_secret {
            // serde's message may quote the value it could not read.
            "not a valid Secret (data must be base64, stringData text)".to_owned()
        } else {
            format!("does not match the schema: {e}")
        };
        (what, reason)
    })
}

#[cfg(test)]
mod tests;
