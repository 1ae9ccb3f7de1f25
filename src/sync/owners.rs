//! One owner per remote: an index of which `Integration` claims which remote integration, by
//! (API URL, application, name) and by (API URL, application, id), across every watched object.
//!
//! When two objects claim the same remote — dev and staging copies of one manifest, or an object
//! copied with its annotations — the older one (by creation time, then by namespace/name) owns it
//! and the other must write nothing. Pure data: the controller feeds it and asks it.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
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
/// Sized for large fleets: a remote's claimants are found by the hash of the claim (an 8-byte
/// key instead of the claim itself) and checked against each claimant's own claims, so a hash
/// collision can never make a false rival; one claimant, the usual case, needs no vector; and
/// strings are shared.
#[derive(Debug, Default)]
pub struct OwnerIndex<S = RandomState> {
    /// Who claims each remote (by the claim's hash), oldest first.
    claimants: HashMap<u64, Claimants>,
    /// What each object (by `namespace/name`) claims.
    claims_of: HashMap<Arc<str>, Claimed>,
    /// API URLs and application ids, one copy each.
    places: HashSet<Arc<str>>,
    /// Hashes claims for `claimants`.
    hasher: S,
}

/// One object's creation time and claims.
#[derive(Debug)]
struct Claimed {
    created: Box<str>,
    claims: Box<[Claim]>,
}

/// The objects claiming one remote (or, rarely, remotes whose claims share a hash), oldest
/// first.
#[derive(Debug)]
enum Claimants {
    One(Arc<str>),
    Many(Vec<Arc<str>>),
}

impl Claimants {
    fn as_slice(&self) -> &[Arc<str>] {
        match self {
            Claimants::One(object) => std::slice::from_ref(object),
            Claimants::Many(objects) => objects,
        }
    }
}

/// An older object claiming the same remote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rival {
    /// Its `namespace/name`.
    pub object: String,
    /// What both claim.
    pub claim: Claim,
}

impl<S: BuildHasher> OwnerIndex<S> {
    /// Records that the object `seniority.1` claims exactly `claims` (replacing what it claimed).
    pub fn set(&mut self, seniority: Seniority, claims: Vec<Claim>) {
        let (created, object) = seniority;
        self.remove(&object);
        let object: Arc<str> = object.into();
        let claims: Box<[Claim]> = claims.into_iter().map(|c| self.share(c)).collect();
        self.claims_of.insert(
            Arc::clone(&object),
            Claimed {
                created: created.into(),
                claims: claims.clone(),
            },
        );
        for claim in claims.iter() {
            let hash = self.hasher.hash_one(claim);
            let older = |other: &Arc<str>| self.seniority_of(other) < self.seniority_of(&object);
            let entry = match self.claimants.get(&hash) {
                None => Claimants::One(Arc::clone(&object)),
                Some(claimants) if claimants.as_slice().contains(&object) => continue,
                Some(claimants) => {
                    let mut objects = claimants.as_slice().to_vec();
                    let at = objects.partition_point(older);
                    objects.insert(at, Arc::clone(&object));
                    Claimants::Many(objects)
                }
            };
            self.claimants.insert(hash, entry);
        }
    }

    /// `(creation time, namespace/name)` of a known object.
    fn seniority_of<'a>(&'a self, object: &'a str) -> (&'a str, &'a str) {
        let created = self
            .claims_of
            .get(object)
            .map_or("", |claimed| &*claimed.created);
        (created, object)
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
        let Some(claimed) = self.claims_of.remove(object) else {
            return;
        };
        for claim in claimed.claims.iter() {
            let hash = self.hasher.hash_one(claim);
            let Some(claimants) = self.claimants.remove(&hash) else {
                continue;
            };
            let mut rest: Vec<Arc<str>> = claimants
                .as_slice()
                .iter()
                .filter(|other| &***other != object)
                .cloned()
                .collect();
            match rest.len() {
                0 => {}
                1 => {
                    if let Some(only) = rest.pop() {
                        self.claimants.insert(hash, Claimants::One(only));
                    }
                }
                _ => {
                    self.claimants.insert(hash, Claimants::Many(rest));
                }
            }
        }
    }

    /// The oldest other object that is older than `seniority` and claims one of `claims`.
    pub fn senior_rival(&self, seniority: &Seniority, claims: &[Claim]) -> Option<Rival> {
        let own = (seniority.0.as_str(), seniority.1.as_str());
        claims
            .iter()
            .filter_map(|claim| {
                let claimants = self.claimants.get(&self.hasher.hash_one(claim))?;
                // Oldest first: the first other object that really makes this claim.
                let oldest = claimants.as_slice().iter().find(|other| {
                    ***other != *seniority.1
                        && self
                            .claims_of
                            .get(&***other)
                            .is_some_and(|claimed| claimed.claims.contains(claim))
                })?;
                let theirs = self.seniority_of(oldest);
                (theirs < own).then(|| ((theirs.0.to_owned(), theirs.1.to_owned()), claim))
            })
            .min()
            .map(|((_, object), claim)| Rival {
                object,
                claim: claim.clone(),
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
        let mut index: OwnerIndex = OwnerIndex::default();
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
        let mut index: OwnerIndex = OwnerIndex::default();
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
        let mut index: OwnerIndex = OwnerIndex::default();
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
        let mut index: OwnerIndex = OwnerIndex::default();
        for i in 0..50 {
            let claims = vec![name(&format!("n{}", i % 7)), id(&i.to_string())];
            index.set(at(&format!("{:03}", i % 5), &format!("ns/o{i}")), claims);
        }
        // Re-claiming replaces, never duplicates.
        index.set(at("000", "ns/o0"), vec![name("n0")]);
        let hash = index.hasher.hash_one(name("n0"));
        assert_eq!(index.claimants[&hash].as_slice().len(), 8);
        for i in 0..50 {
            index.remove(&format!("ns/o{i}"));
        }
        assert!(index.claimants.is_empty() && index.claims_of.is_empty());
    }

    /// Hashes every claim alike: every claim collides with every other.
    #[derive(Debug, Default)]
    struct Colliding;

    impl BuildHasher for Colliding {
        type Hasher = Constant;
        fn build_hasher(&self) -> Constant {
            Constant
        }
    }

    struct Constant;

    impl std::hash::Hasher for Constant {
        fn finish(&self) -> u64 {
            7
        }
        fn write(&mut self, _: &[u8]) {}
    }

    #[test]
    fn claims_whose_hashes_collide_are_no_rivals() {
        let mut index = OwnerIndex::<Colliding>::default();
        let a = at("1", "ns/a");
        let b = at("2", "ns/b");
        let c = at("3", "ns/c");
        index.set(a.clone(), vec![name("one"), id("1")]);
        index.set(b.clone(), vec![name("two"), id("2")]);
        assert_eq!(index.senior_rival(&b, &[name("two"), id("2")]), None);
        index.set(c.clone(), vec![name("one")]);
        let rival = index.senior_rival(&c, &[name("one")]).unwrap();
        assert_eq!((rival.object.as_str(), rival.claim), ("ns/a", name("one")));
        assert_eq!(index.senior_rival(&a, &[name("one"), id("1")]), None);
        index.remove("ns/a");
        assert_eq!(index.senior_rival(&c, &[name("one")]), None);
        index.remove("ns/b");
        index.remove("ns/c");
        assert!(index.claimants.is_empty() && index.claims_of.is_empty());
    }

    #[test]
    fn ties_on_time_break_by_name() {
        let mut index: OwnerIndex = OwnerIndex::default();
        let a = at("1", "a/x");
        let b = at("1", "b/x");
        index.set(a.clone(), vec![name("n")]);
        index.set(b.clone(), vec![name("n")]);
        assert_eq!(index.senior_rival(&a, &[name("n")]), None);
        assert_eq!(index.senior_rival(&b, &[name("n")]).unwrap().object, "a/x");
    }
}
