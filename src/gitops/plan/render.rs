//! `plan`'s output, pure: a readable list (the default) or the [`Report`] as JSON (`-o json`).
//! Secret values never reach either: [`Verdict`]s hold none (see `fields`).

use serde_json::Value;

use super::fields::FieldChange;
use super::verdict::{Action, Report, Verdict};

/// The output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One block per object, field by field.
    Text,
    /// The report as JSON (schema in the README).
    Json,
}

/// The report in `format`.
pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Json => {
            let mut text = serde_json::to_string_pretty(report).unwrap_or_default();
            text.push('\n');
            text
        }
        Format::Text => text(report),
    }
}

fn action_word(action: Action) -> &'static str {
    match action {
        Action::Create => "create",
        Action::Update => "update",
        Action::Adopt => "adopt",
        Action::Unchanged => "unchanged",
        Action::Observe => "observe",
        Action::Refuse => "refuse",
        Action::Wait => "wait",
        Action::Paused => "paused",
        Action::Delete => "delete",
        Action::Orphan => "orphan",
        Action::Error => "error",
    }
}

fn text(report: &Report) -> String {
    let mut out = String::new();
    let out = &mut out;
    for item in &report.items {
        block(out, item);
    }
    let counts: Vec<String> = report
        .summary
        .iter()
        .map(|(action, count)| format!("{count} {action}"))
        .collect();
    let verdict = match report.exit_code() {
        0 => "no changes",
        1 => "changes",
        _ => "errors",
    };
    let counts = if counts.is_empty() {
        "no Integrations in the input".to_owned()
    } else {
        counts.join(", ")
    };
    line(out, &format!("Plan: {counts} ({verdict})."));
    std::mem::take(out)
}

fn line(out: &mut String, text: &str) {
    out.push_str(text);
    out.push('\n');
}

/// One object: a headline, then one line per field.
fn block(out: &mut String, item: &Verdict) {
    let mut headline = format!(
        "Integration {}/{}: {}",
        item.namespace,
        item.name,
        action_word(item.action)
    );
    if let Some(reason) = &item.reason {
        headline.push_str(&format!(" {reason}"));
    }
    if let Some(name) = &item.remote_name {
        headline.push_str(&format!(" {name:?}"));
    }
    if let Some(id) = &item.remote_id {
        headline.push_str(&format!(" (id {id})"));
    }
    if let Some(app) = &item.application_id {
        headline.push_str(&format!(" in application {app}"));
    }
    line(out, &headline);
    if let Some(source) = &item.source {
        line(out, &format!("    from {source}"));
    }
    if let Some(message) = &item.message {
        line(out, &format!("    {message}"));
    }
    for field in &item.fields {
        line(out, &format!("    {}", field_line(field)));
    }
    out.push('\n');
}

/// `+ field: new`, `~ field: old → new`, `- field: old → (removed)`.
pub fn field_line(field: &FieldChange) -> String {
    if let Some(secret) = &field.secret {
        return format!("~ {}: {secret}", field.field);
    }
    let new = field.new.as_ref().map(show);
    match (&field.old, new) {
        (None, Some(new)) => format!("+ {}: {new}", field.field),
        (Some(old), Some(_)) if field.new.as_ref().is_some_and(Value::is_null) => {
            format!("- {}: {} → (removed)", field.field, show(old))
        }
        (Some(old), Some(new)) => format!("~ {}: {} → {new}", field.field, show(old)),
        (old, None) => format!(
            "~ {}: {}",
            field.field,
            old.as_ref().map(show).unwrap_or_default()
        ),
    }
}

/// A value on one line: strings as JSON strings, anything else as compact JSON.
fn show(value: &Value) -> String {
    match value {
        Value::Null => "(none)".to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests;
