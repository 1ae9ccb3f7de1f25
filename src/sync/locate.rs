//! Step 2 of a reconcile, the pure half: what a name lookup found → which remote to manage.

use crate::crd::{AdoptionPolicy, DeletionPolicy, Origin};
use crate::losant::Integration;

/// The decision after looking the remote up by name.
#[derive(Clone, Debug, PartialEq)]
pub enum Lookup {
    /// Nothing has the name: create it.
    Create,
    /// Exactly one has the name and it may be managed.
    Take(Box<Integration>, Origin),
    /// Several have the name: refuse to guess.
    Ambiguous {
        /// How many.
        count: usize,
    },
    /// One exists, and the policy forbids adopting it.
    AlreadyExists {
        /// Its id.
        id: String,
    },
}

/// Chooses what to manage among the integrations named like the spec. `created_by_us` says the
/// operator may have created one of them itself (a create was pending): a match is then its own
/// creation, never an adoption.
pub fn choose(
    mut matches: Vec<Integration>,
    policy: AdoptionPolicy,
    created_by_us: bool,
) -> Lookup {
    match matches.len() {
        0 => Lookup::Create,
        1 => {
            let found = matches.remove(0);
            match (created_by_us, policy) {
                (true, _) => Lookup::Take(Box::new(found), Origin::Created),
                (false, AdoptionPolicy::IfExactlyOneMatch) => {
                    Lookup::Take(Box::new(found), Origin::Adopted)
                }
                (false, AdoptionPolicy::Never) => Lookup::AlreadyExists { id: found.id },
            }
        }
        count => Lookup::Ambiguous { count },
    }
}

/// The deletion policy in force: the spec's, else `Delete` for what the operator created and
/// `Orphan` for what it adopted (or when it cannot tell).
pub fn effective_deletion_policy(
    spec: Option<DeletionPolicy>,
    origin: Option<Origin>,
) -> DeletionPolicy {
    spec.unwrap_or(match origin {
        Some(Origin::Created) => DeletionPolicy::Delete,
        Some(Origin::Adopted) | None => DeletionPolicy::Orphan,
    })
}
