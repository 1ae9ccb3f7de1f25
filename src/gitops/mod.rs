//! Command-line tools for GitOps, run by a person or a CI job next to the operator (not by it):
//! `losant-operator plan` says what applying manifests would do in Losant, and
//! `losant-operator export` writes manifests for what an application already holds in Losant.
//!
//! - [`application`]: a Losant client for an application named by a `LosantApplication` in the
//!   cluster (read-only, current kubeconfig) or given directly (URL, id, token file).
//! - [`export`]: remote integrations → `Integration`, `LosantApplication` and Secret manifests.
//! - [`plan`]: manifests → the controller's own decision for each, field by field.

pub mod application;
pub mod export;
pub mod plan;
