//! One owner per remote: an index of which `Integration` claims which remote integration, by
//! (API URL, application, name) and by (API URL, application, id), across every watched object.
//!
//! When two objects claim the same remote — dev and staging copies of one manifest, or an object
//! copied with its annotations — the older one (by creation time, then by namespace/name) owns it
//! and the other must write nothing. Pure data: the controller feeds it and asks it.

use std::collections::{BTreeSet, HashMap};

/// What an object claims.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Claim {
    /// The integration with this name in this application.
    Name {
        /// API base URL.
        api_url: String,
        /// Application id (lowercase).
        application_id: String,
        /// Remote name.
        name: String,
    },
    /// The integration with this id in this application.
    Id {
        /// API base URL.
        api_url: String,
        /// Application id (lowercase).
        application_id: String,
        /// Remote id.
        id: String,
    },
}

impl std::fmt::Display for Claim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Claim::Name {
                application_id,
                name,
                ..
            } => write!(
                f,
                "the integration named {name:?} in application {application_id}"
            ),
            Claim::Id {
                application_id, id, ..
            } => write!(f, "integration {id} in application {application_id}"),
        }
    }
}

/// Who is older: creation time (RFC 3339, so it sorts), then `namespace/name`.
pub type Seniority = (String, String);

/// The claims of every known object.
#[derive(Debug, Default)]
pub struct OwnerIndex {
    claimants: HashMap<Claim, BTreeSet<Seniority>>,
    claims_of: HashMap<String, (Seniority, Vec<Claim>)>,
}

/// An older object claiming the same remote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rival {
    /// Its `namespace/name`.
    pub object: String,
    /// What both claim.
    pub claim: Claim,
}

impl OwnerIndex {
    /// Records that the object `seniority.1` claims exactly `claims` (replacing what it claimed).
    pub fn set(&mut self, seniority: Seniority, claims: Vec<Claim>) {
        self.remove(&seniority.1);
        for claim in &claims {
            self.claimants
                .entry(claim.clone())
                .or_default()
                .insert(seniority.clone());
        }
        self.claims_of
            .insert(seniority.1.clone(), (seniority, claims));
    }

    /// Forgets an object.
    pub fn remove(&mut self, object: &str) {
        let Some((seniority, claims)) = self.claims_of.remove(object) else {
            return;
        };
        for claim in claims {
            if let Some(set) = self.claimants.get_mut(&claim) {
                set.remove(&seniority);
                if set.is_empty() {
                    self.claimants.remove(&claim);
                }
            }
        }
    }

    /// The oldest other object that is older than `seniority` and claims one of `claims`.
    pub fn senior_rival(&self, seniority: &Seniority, claims: &[Claim]) -> Option<Rival> {
        claims
            .iter()
            .filter_map(|claim| {
                let oldest = self
                    .claimants
                    .get(claim)?
                    .iter()
                    .find(|other| other.1 != seniority.1)?;
                (oldest < seniority).then(|| (oldest.clone(), claim.clone()))
            })
            .min()
            .map(|(oldest, claim)| Rival {
                object: oldest.1,
                claim,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(n: &str) -> Claim {
        Claim::Name {
            api_url: "u".into(),
            application_id: "a".into(),
            name: n.into(),
        }
    }

    fn id(i: &str) -> Claim {
        Claim::Id {
            api_url: "u".into(),
            application_id: "a".into(),
            id: i.into(),
        }
    }

    fn at(time: &str, object: &str) -> Seniority {
        (time.into(), object.into())
    }

    #[test]
    fn the_older_object_owns_a_shared_name() {
        let mut index = OwnerIndex::default();
        let dev = at("2026-01-01T00:00:00Z", "dev/broker");
        let staging = at("2026-02-01T00:00:00Z", "staging/broker");
        index.set(staging.clone(), vec![name("broker")]);
        index.set(dev.clone(), vec![name("broker"), id("x")]);
        assert_eq!(index.senior_rival(&dev, &[name("broker")]), None);
        let rival = index.senior_rival(&staging, &[name("broker")]).unwrap();
        assert_eq!(rival.object, "dev/broker");
        assert_eq!(rival.claim, name("broker"));
    }

    #[test]
    fn a_copied_id_is_a_rivalry_too() {
        let mut index = OwnerIndex::default();
        let original = at("2026-01-01T00:00:00Z", "a/x");
        let copy = at("2026-01-02T00:00:00Z", "b/x");
        index.set(original.clone(), vec![name("one"), id("42")]);
        assert_eq!(
            index
                .senior_rival(&copy, &[name("other"), id("42")])
                .unwrap()
                .object,
            "a/x"
        );
    }

    #[test]
    fn forgetting_or_changing_claims_releases_them() {
        let mut index = OwnerIndex::default();
        let old = at("1", "ns/old");
        let new = at("2", "ns/new");
        index.set(old.clone(), vec![name("n")]);
        assert!(index.senior_rival(&new, &[name("n")]).is_some());
        index.set(old.clone(), vec![name("renamed")]);
        assert_eq!(index.senior_rival(&new, &[name("n")]), None);
        index.set(old, vec![name("n")]);
        index.remove("ns/old");
        assert_eq!(index.senior_rival(&new, &[name("n")]), None);
    }

    #[test]
    fn ties_on_time_break_by_name() {
        let mut index = OwnerIndex::default();
        let a = at("1", "a/x");
        let b = at("1", "b/x");
        index.set(a.clone(), vec![name("n")]);
        index.set(b.clone(), vec![name("n")]);
        assert_eq!(index.senior_rival(&a, &[name("n")]), None);
        assert_eq!(index.senior_rival(&b, &[name("n")]).unwrap().object, "a/x");
    }
}
