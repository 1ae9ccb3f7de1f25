//! Pure reconcile logic: no I/O, no clock, no Kubernetes client. Given the spec, the resolved
//! Secret values and what Losant holds, it decides what to write and what the status says — so
//! it is tested with plain tables and property tests, and reusable by a dry-run command.
//!
//! - [`desired`]: spec + Secret values → the integration Losant should hold.
//! - [`locate`]: a name lookup's matches → create, adopt, or refuse.
//! - [`decide`]: everything a reconcile read → one [`decide::Decision`] (create, adopt, patch,
//!   nothing, wait for a pending create, or a named refusal), at an injected `now`.
//! - [`plan`]: desired vs. remote → create, patch (exact fields), nothing, or a named conflict.
//! - [`conditions`]: an outcome → `Ready` / `Reconciling` / `Stalled`.
//! - [`reason`]: condition reasons, types and statuses, typed.

pub mod conditions;
pub mod connection;
pub mod decide;
pub mod desired;
pub mod locate;
pub mod owners;
pub mod plan;
pub mod reason;
pub mod record;

#[cfg(test)]
mod tests;
