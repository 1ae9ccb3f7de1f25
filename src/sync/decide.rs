//! Step 2 of a reconcile, pure: what reading found ([`Facts`]) → the one [`Decision`] the
//! executor carries out: create, adopt, patch, nothing, wait for a pending create, or a named
//! refusal.
//!
//! No I/O and no clock: `now` comes in, so the same facts always give the same decision. This is
//! what a dry-run (`plan`) command calls; it needs no Kubernetes client.
//!
//! # Guarantees
//! - A create is decided only when a name lookup found nothing, and never while a create sent
//!   earlier to this application may still show up in Losant's lists (the grace period).
//! - A name match is adopted only under `adoptionPolicy: IfExactlyOneMatch`; a match found while
//!   a create was pending is the operator's own creation, never an adoption.
//! - An older object's claim on the same remote refuses before anything else.
//! - Secret values are sent whenever status records no write of them to this place, except to
//!   the remote an object is pinned to by id when the object says they match what Losant holds
//!   (`losant.io/secrets-match-remote`, see [`SecretsSince`]); never on that word for a remote
//!   found by name.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;

use super::desired::Desired;
use super::locate::{self, Lookup};
use super::owners::Rival;
use super::plan::{self, Conflict, LastApplied, Plan};
use super::reason::Reason;
use crate::crd::{AdoptionPolicy, ManagementPolicy, Origin, SecretVersions, Word};
use crate::losant::{Integration, IntegrationPatch, IntegrationPost};

/// The longest wait for a pending create before looking again.
const PENDING_CREATE_RECHECK: Duration = Duration::from_secs(5);

/// The remote the object is known to manage (from its annotations or status).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    /// Remote id.
    pub id: String,
    /// How the operator came to manage it, if known.
    pub origin: Option<Origin>,
}

/// A create that was sent (or about to be) and not yet recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    /// When it was sent.
    pub at: Timestamp,
    /// The application it went to, if recorded (older markers hold only the time).
    pub application_id: Option<String>,
    /// The name it was created with, if recorded.
    pub name: Option<String>,
}

impl Pending {
    /// How long ago it was sent; a marker from a clock running ahead counts as just sent.
    pub fn age(&self, now: Timestamp) -> Duration {
        if self.at > now {
            Duration::ZERO
        } else {
            now.duration_since(self.at).unsigned_abs()
        }
    }
}

/// What reading found about the remote.
#[derive(Clone, Debug, PartialEq)]
pub enum Found {
    /// An older object claims the same remote; nothing was read from Losant.
    Claimed(Rival),
    /// The recorded remote, as Losant holds it.
    Known(Box<Integration>),
    /// What a lookup by `name` returned: nothing was recorded, or Losant no longer has it.
    Named {
        /// The name looked up ([`lookup_name`]).
        name: String,
        /// The integrations carrying it.
        matches: Vec<Integration>,
    },
}

/// Everything a decision depends on, as plain data.
#[derive(Clone, Debug)]
pub struct Facts {
    /// The integration the spec asks for.
    pub desired: Desired,
    /// The spec's `adoptionPolicy`.
    pub adoption_policy: AdoptionPolicy,
    /// The spec's `managementPolicy`.
    pub management: ManagementPolicy,
    /// The application (lowercase id) the spec points at.
    pub application_id: String,
    /// The remote recorded for this application and API URL, if any.
    pub recorded: Option<Recorded>,
    /// The create-pending marker, if set (whatever its application).
    pub pending: Option<Pending>,
    /// What reading found.
    pub found: Found,
    /// The fields the last successful write set (status `appliedFields`).
    pub applied_fields: Vec<Word>,
    /// How the referenced Secrets compare with the last write to this place.
    pub secrets: SecretsSince,
    /// The object says its Secrets hold the values Losant already has
    /// (`losant.io/secrets-match-remote: "true"`, written by `losant-operator export`).
    pub secrets_match_remote: bool,
    /// Whether the spec's generation differs from the last one reconciled.
    pub spec_changed: bool,
}

/// How the referenced Secrets' `resourceVersion`s compare with the last write to this place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretsSince {
    /// The versions recorded for the last write here are the current ones.
    Unchanged,
    /// A referenced Secret changed, was added or was dropped since the last write here.
    Changed,
    /// Status records no write here: a new object, a spec moved to another application, or a
    /// status lost (restored from a backup without it).
    NeverApplied,
}

impl SecretsSince {
    /// Compares the versions status records for the last write here (`None` when status is
    /// about no write to this application and API URL) with the `current` ones.
    pub fn compare(
        applied_here: Option<&SecretVersions>,
        current: &BTreeMap<String, String>,
    ) -> SecretsSince {
        match applied_here {
            None => SecretsSince::NeverApplied,
            Some(applied) if applied == current => SecretsSince::Unchanged,
            Some(_) => SecretsSince::Changed,
        }
    }
}

/// What to do about the remote.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Nothing to manage: create it with this body.
    Create {
        /// The POST body.
        post: IntegrationPost,
        /// The recorded remote Losant no longer has, when this re-creates it.
        recreates: Option<String>,
    },
    /// Take over a remote the operator did not create, patching it first when it differs.
    Adopt {
        /// The remote taken over.
        remote: Box<Integration>,
        /// Exactly the fields to send, if any.
        patch: Option<IntegrationPatch>,
    },
    /// Send exactly these fields to the managed remote.
    Patch {
        /// The managed remote.
        remote: Box<Integration>,
        /// How the operator came to manage it.
        origin: Origin,
        /// Exactly the fields to send.
        patch: IntegrationPatch,
        /// Whether the spec changed (else the remote drifted, or a Secret changed).
        spec_changed: bool,
    },
    /// The managed remote matches.
    InSync {
        /// The managed remote.
        remote: Box<Integration>,
        /// How the operator came to manage it.
        origin: Origin,
    },
    /// `ObserveOnly`: the remote found, and how it differs from the spec. Nothing is written.
    Observe {
        /// The remote found.
        remote: Box<Integration>,
        /// The fields that differ (secret fields are never compared).
        drift: Vec<&'static str>,
    },
    /// A create sent earlier may still show up in Losant's lists: look again before creating.
    Wait(PendingCreate),
    /// Write nothing until something changes.
    Refuse(Refusal),
}

/// A create that may still show up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingCreate {
    /// When it was sent.
    pub sent_at: Timestamp,
    /// When to look again.
    pub retry_after: Duration,
}

impl PendingCreate {
    /// The condition reason.
    pub fn reason(&self) -> Reason {
        Reason::CreatePending
    }

    /// For humans.
    pub fn message(&self) -> String {
        format!(
            "a create sent at {} is not visible in Losant's lists yet; waiting for it before creating again",
            self.sent_at
        )
    }
}

/// Why nothing may be written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// An older object manages the same remote.
    ConflictingOwner(Rival),
    /// Several remotes carry the name.
    AmbiguousName {
        /// How many.
        count: usize,
        /// Where.
        application_id: String,
        /// The name looked up.
        name: String,
    },
    /// One remote carries the name and `adoptionPolicy` is `Never`.
    AlreadyExists {
        /// Its id.
        id: String,
        /// The name looked up.
        name: String,
    },
    /// The remote cannot be made to match (its type differs).
    ImmutableField(Conflict),
    /// `ObserveOnly` and no remote carries the name.
    NotFound {
        /// Where.
        application_id: String,
        /// The name looked up.
        name: String,
    },
}

impl Refusal {
    /// The condition reason.
    pub fn reason(&self) -> Reason {
        match self {
            Refusal::ConflictingOwner(_) => Reason::ConflictingOwner,
            Refusal::AmbiguousName { .. } => Reason::AmbiguousName,
            Refusal::AlreadyExists { .. } => Reason::AlreadyExists,
            Refusal::ImmutableField(_) => Reason::ImmutableField,
            Refusal::NotFound { .. } => Reason::NotFound,
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::ConflictingOwner(rival) => write!(
                f,
                "Integration {} already manages {}; this object writes nothing while it does",
                rival.object, rival.claim
            ),
            Refusal::AmbiguousName {
                count,
                application_id,
                name,
            } => write!(
                f,
                "{count} integrations in application {application_id} are named {name:?}; rename or delete all but one"
            ),
            Refusal::AlreadyExists { id, name } => write!(
                f,
                "integration {id} is already named {name:?} and adoptionPolicy is Never"
            ),
            Refusal::ImmutableField(conflict) => conflict.fmt(f),
            Refusal::NotFound {
                application_id,
                name,
            } => write!(
                f,
                "no integration in application {application_id} is named {name:?}; managementPolicy is ObserveOnly, so the operator does not create it"
            ),
        }
    }
}

/// The pending create that concerns `application_id`: one recorded for another application
/// (the spec moved since) is not looked for here. Older markers name no application: they count.
pub fn pending_here<'a>(pending: Option<&'a Pending>, application_id: &str) -> Option<&'a Pending> {
    pending.filter(|p| {
        p.application_id
            .as_deref()
            .is_none_or(|a| a == application_id)
    })
}

/// The name to look the remote up by: while a create is pending here, the name it was sent
/// with (a match is then the operator's own creation); else the desired name.
pub fn lookup_name(pending_here: Option<&Pending>, desired: &Desired) -> String {
    pending_here
        .and_then(|p| p.name.clone())
        .unwrap_or_else(|| desired.name.clone())
}

/// Decides what to do, at `now`, waiting at most `grace` for a pending create to show up.
pub fn decide(facts: &Facts, now: Timestamp, grace: Duration) -> Decision {
    if facts.management == ManagementPolicy::ObserveOnly {
        return observe(facts);
    }
    match &facts.found {
        Found::Claimed(rival) => Decision::Refuse(Refusal::ConflictingOwner(rival.clone())),
        // Without a recorded origin, Adopted is the safe guess: it orphans on delete.
        Found::Known(remote) => {
            let origin = facts.recorded.as_ref().and_then(|r| r.origin);
            manage(facts, remote.clone(), origin.unwrap_or(Origin::Adopted))
        }
        Found::Named { name, matches } => {
            let pending = pending_here(facts.pending.as_ref(), &facts.application_id);
            match locate::choose(matches.clone(), facts.adoption_policy, pending.is_some()) {
                Lookup::Create => create(facts, pending, now, grace),
                Lookup::Take(remote, origin) => manage(facts, remote, origin),
                Lookup::Ambiguous { count } => Decision::Refuse(Refusal::AmbiguousName {
                    count,
                    application_id: facts.application_id.clone(),
                    name: name.clone(),
                }),
                Lookup::AlreadyExists { id } => Decision::Refuse(Refusal::AlreadyExists {
                    id,
                    name: name.clone(),
                }),
            }
        }
    }
}

/// `ObserveOnly`: the recorded remote, or the one remote carrying the name, and how it differs.
fn observe(facts: &Facts) -> Decision {
    let remote = match &facts.found {
        Found::Claimed(rival) => return Decision::Refuse(Refusal::ConflictingOwner(rival.clone())),
        Found::Known(remote) => remote.clone(),
        Found::Named { name, matches } => match matches.as_slice() {
            [one] => Box::new(one.clone()),
            [] => {
                return Decision::Refuse(Refusal::NotFound {
                    application_id: facts.application_id.clone(),
                    name: name.clone(),
                });
            }
            many => {
                return Decision::Refuse(Refusal::AmbiguousName {
                    count: many.len(),
                    application_id: facts.application_id.clone(),
                    name: name.clone(),
                });
            }
        },
    };
    // Only what the spec sets is compared; secret values never are (Losant does not echo them).
    let nothing_applied = LastApplied {
        fields: &[],
        secrets_changed: false,
    };
    let drift = match plan::plan(&facts.desired, Some(&remote), &nothing_applied) {
        Plan::Patch(patch) => plan::patched_fields(&patch),
        Plan::Conflict(_) => vec!["integrationType"],
        Plan::InSync | Plan::Create(_) => Vec::new(),
    };
    Decision::Observe { remote, drift }
}

/// Nothing carries the name: create, unless a create sent less than `grace` ago may still show
/// up (its answer lost, or lists lagging behind it).
fn create(facts: &Facts, pending: Option<&Pending>, now: Timestamp, grace: Duration) -> Decision {
    if let Some(pending) = pending {
        let waited = pending.age(now);
        if waited < grace {
            return Decision::Wait(PendingCreate {
                sent_at: pending.at,
                retry_after: (grace - waited).min(PENDING_CREATE_RECHECK),
            });
        }
    }
    Decision::Create {
        post: plan::create_body(&facts.desired),
        recreates: facts.recorded.as_ref().map(|r| r.id.clone()),
    }
}

/// The remote to manage, and how it came to be managed → the patch that makes it match.
fn manage(facts: &Facts, remote: Box<Integration>, origin: Origin) -> Decision {
    // What the last write set matters only for the remote it was written to.
    let fields: &[Word] = match facts.recorded {
        Some(_) => &facts.applied_fields,
        None => &[],
    };
    let last = LastApplied {
        fields,
        secrets_changed: secrets_to_send(facts, &remote),
    };
    let adopting = facts.recorded.is_none() && origin == Origin::Adopted;
    match plan::plan(&facts.desired, Some(&remote), &last) {
        Plan::Conflict(conflict) => Decision::Refuse(Refusal::ImmutableField(conflict)),
        Plan::Patch(patch) if adopting => Decision::Adopt {
            remote,
            patch: Some(patch),
        },
        Plan::InSync if adopting => Decision::Adopt {
            remote,
            patch: None,
        },
        Plan::Patch(patch) => Decision::Patch {
            remote,
            origin,
            patch,
            spec_changed: facts.spec_changed,
        },
        Plan::InSync => Decision::InSync { remote, origin },
        // `plan` creates only when given no remote; kept total rather than panicking.
        Plan::Create(post) => Decision::Create {
            post,
            recreates: None,
        },
    }
}

/// Whether the Secret values must be sent even if nothing else differs. Values never sent to
/// this place are sent, except to the remote an object is pinned to (its recorded id) when the
/// object says its Secrets hold what Losant already has: then their versions are recorded as
/// applied without sending them, and later changes are sent as usual. A remote found by name is
/// never taken on that word.
fn secrets_to_send(facts: &Facts, remote: &Integration) -> bool {
    match facts.secrets {
        SecretsSince::Unchanged => false,
        SecretsSince::Changed => true,
        // No Secret value to send: the config is compared like any field.
        SecretsSince::NeverApplied if facts.desired.secret_paths.is_empty() => false,
        SecretsSince::NeverApplied => {
            let pinned = facts.recorded.as_ref().is_some_and(|r| r.id == remote.id);
            !(facts.secrets_match_remote && pinned)
        }
    }
}

#[cfg(test)]
mod tests;
