//! What `plan` says about each object, pure: the controller's [`Decision`] turned into a
//! [`Verdict`] (operation, fields old → new, the refusal's reason), and the whole [`Report`]
//! with its exit code. This is the `-o json` document (schema in the README, "Plan").

use serde::Serialize;

use super::fields::{self, FieldChange, SecretLabels};
use crate::crd::Word;
use crate::losant::IntegrationPost;
use crate::sync::decide::{Decision, Facts};
use crate::sync::plan::patched_fields;

/// The operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    /// A POST.
    Create,
    /// A PATCH of a remote the object manages.
    Update,
    /// Taking over a remote found by name (with a PATCH when `fields` is not empty).
    Adopt,
    /// The managed remote matches.
    Unchanged,
    /// `ObserveOnly`: nothing is written; `fields` is the drift.
    Observe,
    /// The operator would write nothing and report `reason`.
    Refuse,
    /// A create sent earlier may still show up; the operator waits before creating again.
    Wait,
    /// `losant.io/paused`: no Losant call.
    Paused,
    /// `--prune`: the object is gone from the input; deleting it deletes the remote.
    Delete,
    /// `--prune`: the object is gone from the input; deleting it leaves the remote in Losant.
    Orphan,
    /// The object could not be planned (Losant or the cluster could not be read).
    Error,
}

impl Action {
    /// Whether applying the input changes something (or cannot converge): exit code 1.
    pub fn is_change(self) -> bool {
        !matches!(
            self,
            Action::Unchanged | Action::Observe | Action::Paused | Action::Error
        )
    }
}

/// What the operator would do about one object.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    /// The object's namespace.
    pub namespace: String,
    /// The object's name.
    pub name: String,
    /// The input document, `FILE (document N)`; absent for `--prune` rows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The operation.
    pub action: Action,
    /// The name in Losant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_name: Option<String>,
    /// The Losant application.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application_id: Option<String>,
    /// The remote integration concerned, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_id: Option<String>,
    /// The condition reason the operator would report (refusals, waits, errors).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For humans.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The top-level fields the write sends (`name`, `enabled`, `topics`, `credentialName`,
    /// the config object; a create also `integrationType`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sends: Vec<String>,
    /// Field by field.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldChange>,
}

impl Verdict {
    /// A verdict with no remote facts yet.
    pub fn new(namespace: &str, name: &str, source: Option<&str>, action: Action) -> Self {
        Verdict {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            source: source.map(str::to_owned),
            action,
            remote_name: None,
            application_id: None,
            remote_id: None,
            reason: None,
            message: None,
            sends: Vec::new(),
            fields: Vec::new(),
        }
    }

    /// With a reason and message.
    pub fn because(mut self, reason: impl Into<String>, message: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self.message = Some(message.into());
        self
    }
}

/// What was planned about, for [`from_decision`].
pub struct Subject<'a> {
    /// The object's namespace.
    pub namespace: &'a str,
    /// The object's name.
    pub name: &'a str,
    /// The input document.
    pub source: &'a str,
    /// Secret labels of the spec.
    pub labels: &'a SecretLabels,
}

/// The verdict for a decision taken on `facts`.
pub fn from_decision(subject: &Subject<'_>, facts: &Facts, decision: &Decision) -> Verdict {
    let verdict = |action| {
        let mut v = Verdict::new(
            subject.namespace,
            subject.name,
            Some(subject.source),
            action,
        );
        v.remote_name = Some(facts.desired.name.clone());
        v.application_id = Some(facts.application_id.clone());
        v
    };
    let applied: &[Word] = match facts.recorded {
        Some(_) => &facts.applied_fields,
        None => &[],
    };
    match decision {
        Decision::Create { post, recreates } => {
            let mut v = verdict(Action::Create);
            v.sends = post_fields(post);
            v.fields = fields::create(post, subject.labels);
            if let Some(gone) = recreates {
                v.message = Some(format!(
                    "the recorded integration {gone} is no longer in Losant; it is created again"
                ));
            }
            v
        }
        Decision::Adopt { remote, patch } => {
            let mut v = verdict(Action::Adopt);
            v.remote_id = Some(remote.id.clone());
            if let Some(patch) = patch {
                v.sends = patched_fields(patch)
                    .into_iter()
                    .map(str::to_owned)
                    .collect();
                v.fields = fields::patch(patch, remote, subject.labels, applied);
                if v.fields.is_empty() {
                    v.message = Some(format!(
                        "{} sent as it is: nothing differs, but it was never written to this remote",
                        v.sends.join(", ")
                    ));
                }
            }
            v
        }
        Decision::Patch { remote, patch, .. } => {
            let mut v = verdict(Action::Update);
            v.remote_id = Some(remote.id.clone());
            v.sends = patched_fields(patch)
                .into_iter()
                .map(str::to_owned)
                .collect();
            v.fields = fields::patch(patch, remote, subject.labels, applied);
            v
        }
        Decision::InSync { remote, .. } => {
            let mut v = verdict(Action::Unchanged);
            v.remote_id = Some(remote.id.clone());
            v
        }
        Decision::Observe { remote, drift } => {
            let mut v = verdict(Action::Observe);
            v.remote_id = Some(remote.id.clone());
            v.fields = fields::drift(drift, &facts.desired, remote);
            if !drift.is_empty() {
                v.message = Some(format!("drifted: {}", drift.join(", ")));
            }
            v
        }
        Decision::Wait(pending) => {
            verdict(Action::Wait).because(pending.reason().as_str(), pending.message())
        }
        Decision::Refuse(refusal) => {
            verdict(Action::Refuse).because(refusal.reason().as_str(), refusal.to_string())
        }
    }
}

/// The top-level fields of a POST body.
fn post_fields(post: &IntegrationPost) -> Vec<String> {
    serde_json::to_value(post)
        .ok()
        .and_then(|v| v.as_object().map(|o| o.keys().cloned().collect()))
        .unwrap_or_default()
}

/// Everything `plan` found.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The document's version.
    pub api_version: &'static str,
    /// Whether anything would change (exit code 1).
    pub changes: bool,
    /// How many objects got each action.
    pub summary: std::collections::BTreeMap<String, usize>,
    /// One per input `Integration` (in input order), then the `--prune` rows.
    pub items: Vec<Verdict>,
}

/// The `-o json` document's `apiVersion`.
pub const REPORT_VERSION: &str = "plan.losant.io/v1alpha1";

impl Report {
    /// The report on `items`.
    pub fn new(items: Vec<Verdict>) -> Self {
        let mut summary = std::collections::BTreeMap::new();
        for item in &items {
            let name = serde_json::to_value(item.action)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            *summary.entry(name).or_default() += 1;
        }
        Report {
            api_version: REPORT_VERSION,
            changes: items.iter().any(|i| i.action.is_change()),
            summary,
            items,
        }
    }

    /// `kubectl diff`'s: 0 no changes, 1 changes, 2 an object could not be planned.
    pub fn exit_code(&self) -> i32 {
        if self.items.iter().any(|i| i.action == Action::Error) {
            2
        } else if self.changes {
            1
        } else {
            0
        }
    }
}
