//! A name lookup's matches → create, adopt or refuse; and the effective deletion policy.

use serde_json::json;

use super::{Echo, read};
use crate::crd::{AdoptionPolicy, DeletionPolicy, Origin};
use crate::sync::locate::{Lookup, choose, effective_deletion_policy};

#[test]
fn lookups_adopt_create_or_refuse() {
    let one = || {
        read(
            json!({"id": "0123456789abcdef01234567", "name": "n", "integrationType": "mqtt"}),
            Echo::Clear,
        )
    };
    assert_eq!(
        choose(vec![], AdoptionPolicy::IfExactlyOneMatch, false),
        Lookup::Create
    );
    assert!(matches!(
        choose(vec![one()], AdoptionPolicy::IfExactlyOneMatch, false),
        Lookup::Take(_, Origin::Adopted)
    ));
    assert!(matches!(
        choose(vec![one()], AdoptionPolicy::Never, false),
        Lookup::AlreadyExists { .. }
    ));
    assert!(matches!(
        choose(vec![one()], AdoptionPolicy::Never, true),
        Lookup::Take(_, Origin::Created)
    ));
    assert_eq!(
        choose(vec![one(), one()], AdoptionPolicy::IfExactlyOneMatch, true),
        Lookup::Ambiguous { count: 2 }
    );
    assert_eq!(
        effective_deletion_policy(None, Some(Origin::Created)),
        DeletionPolicy::Delete
    );
    assert_eq!(
        effective_deletion_policy(None, Some(Origin::Adopted)),
        DeletionPolicy::Orphan
    );
    assert_eq!(
        effective_deletion_policy(None, None),
        DeletionPolicy::Orphan
    );
    assert_eq!(
        effective_deletion_policy(Some(DeletionPolicy::Delete), Some(Origin::Adopted)),
        DeletionPolicy::Delete
    );
}
