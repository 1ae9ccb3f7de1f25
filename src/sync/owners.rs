//! One owner per remote: an index of which `Integration` claims which remote integration, by
//! (API URL, application, name) and by (API URL, application, id), across every watched object.
//!
//! When two objects claim the same remote — dev and staging copies of one manifest, or an object
//! copied with its annotations — the older one (by creation time, then by namespace/name) owns it
//! and the other must write nothing. Pure data: the controller feeds it and asks it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// What an object claims. The strings are shared: the index keeps each claim twice (by claim
/// and by object), and every object of an application repeats its API URL and id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Claim {
    /// The integration with this name in this application.
    Name {
        /// API base URL.
        api_url: Arc<str>,
        /// Application id (lowercase).
        application_id: Arc<str>,
        /// Remote name.
        name: Arc<str>,
    },
    /// The integration with this id in this application.
    Id {
        /// API base URL.
        api_url: Arc<str>,
        /// Application id (lowercase).
        application_id: Arc<str>,
        /// Remote id.
        id: Arc<str>,
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
///
/// Sized for 10,000 objects: claimants are sorted vectors (one element, nearly always) rather
/// than trees, whose smallest node is several hundred bytes, and strings are shared.
#[derive(Debug, Default)]
pub struct OwnerIndex {
    /// Who claims each remote, oldest first.
    claimants: HashMap<Claim, Vec<Arc<Seniority>>>,
    /// What each object (by `namespace/name`) claims.
    claims_of: HashMap<String, (Arc<Seniority>, Vec<Claim>)>,
    /// API URLs and application ids, one copy each.
    places: HashSet<Arc<str>>,
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
        let seniority = Arc::new(seniority);
        let claims: Vec<Claim> = claims.into_iter().map(|c| self.share(c)).collect();
        for claim in &claims {
            let claimants = self.claimants.entry(claim.clone()).or_default();
            if let Err(at) = claimants.binary_search(&seniority) {
                claimants.insert(at, Arc::clone(&seniority));
            }
        }
        self.claims_of
            .insert(seniority.1.clone(), (seniority, claims));
    }

    /// The claim with its API URL and application id taken from the shared copies.
    fn share(&mut self, claim: Claim) -> Claim {
        let mut intern = |text: Arc<str>| match self.places.get(&text) {
            Some(shared) => Arc::clone(shared),
            None => {
                self.places.insert(Arc::clone(&text));
                text
            }
        };
        match claim {
            Claim::Name {
                api_url,
                application_id,
                name,
            } => Claim::Name {
                api_url: intern(api_url),
                application_id: intern(application_id),
                name,
            },
            Claim::Id {
                api_url,
                application_id,
                id,
            } => Claim::Id {
                api_url: intern(api_url),
                application_id: intern(application_id),
                id,
            },
        }
    }

    /// Forgets an object.
    pub fn remove(&mut self, object: &str) {
        let Some((seniority, claims)) = self.claims_of.remove(object) else {
            return;
        };
        for claim in claims {
            if let Some(claimants) = self.claimants.get_mut(&claim) {
                claimants.retain(|other| other.1 != seniority.1);
                if claimants.is_empty() {
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
                (oldest.as_ref() < seniority).then(|| (oldest.as_ref().clone(), claim.clone()))
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
    fn removing_every_object_leaves_nothing_behind() {
        let mut index = OwnerIndex::default();
        for i in 0..50 {
            let claims = vec![name(&format!("n{}", i % 7)), id(&i.to_string())];
            index.set(at(&format!("{:03}", i % 5), &format!("ns/o{i}")), claims);
        }
        // Re-claiming replaces, never duplicates.
        index.set(at("000", "ns/o0"), vec![name("n0")]);
        assert_eq!(index.claimants[&name("n0")].len(), 8);
        for i in 0..50 {
            index.remove(&format!("ns/o{i}"));
        }
        assert!(index.claimants.is_empty() && index.claims_of.is_empty());
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
