//! Table tests of [`decide`]: every decision and every refusal, each from facts that read like
//! what a reconcile found. This module holds the facts they start from; the tests are by what
//! was found: a known remote, a name lookup's matches, and any of them under `ObserveOnly`.

mod by_name;
mod known;
mod observe_only;

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::*;
use crate::crd::{IntegrationSpec, Word};
use crate::losant::FieldPatch;
use crate::sync::desired::{SecretValues, desired};
use crate::sync::owners::Claim;
use crate::sync::plan::applied_fields;

const APP: &str = "0123456789abcdef0123456a";
const OLD_ID: &str = "aaaaaaaaaaaaaaaaaaaaaaaa";
const ID: &str = "bbbbbbbbbbbbbbbbbbbbbbbb";
const GRACE: Duration = Duration::from_secs(30);

fn now() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap()
}

fn ago(seconds: i64) -> Timestamp {
    now() - SignedDuration::from_secs(seconds)
}

fn spec() -> IntegrationSpec {
    serde_json::from_value(json!({
        "applicationRef": {"name": "app"},
        "integrationType": "mqtt",
        "topics": ["a/#"],
        "mqttConfig": {"host": "broker", "port": 8883, "protocol": "mqtts", "clientId": "c1"},
    }))
    .unwrap()
}

fn wanted() -> Desired {
    desired(&spec(), "broker-in", &SecretValues::new()).unwrap()
}

/// The remote as Losant stores what `wanted()` creates, with `edit` applied.
fn remote_with(edit: impl FnOnce(&mut Value)) -> Integration {
    let mut value = serde_json::to_value(plan::create_body(&wanted())).unwrap();
    value["id"] = json!(ID);
    edit(&mut value);
    Integration::from_value_lenient(value).unwrap()
}

fn remote() -> Integration {
    remote_with(|_| {})
}

fn known(remote: Integration) -> Facts {
    facts(Found::Known(Box::new(remote)))
}

fn named(matches: Vec<Integration>) -> Facts {
    facts(Found::Named {
        name: "broker-in".into(),
        matches,
    })
}

fn facts(found: Found) -> Facts {
    Facts {
        desired: wanted(),
        adoption_policy: AdoptionPolicy::IfExactlyOneMatch,
        management: ManagementPolicy::Full,
        application_id: APP.into(),
        recorded: None,
        pending: None,
        found,
        applied_fields: applied_fields(&wanted()),
        secrets: SecretsSince::Unchanged,
        secrets_match_remote: false,
        spec_changed: false,
    }
}

fn recorded(id: &str, origin: Option<Origin>) -> Option<Recorded> {
    Some(Recorded {
        id: id.into(),
        origin,
    })
}

fn pending(at: Timestamp, application_id: Option<&str>, name: Option<&str>) -> Option<Pending> {
    Some(Pending {
        at,
        application_id: application_id.map(Into::into),
        name: name.map(Into::into),
    })
}

fn decided(facts: &Facts) -> Decision {
    decide(facts, now(), GRACE)
}

fn create(recreates: Option<&str>) -> Decision {
    Decision::Create {
        post: plan::create_body(&wanted()),
        recreates: recreates.map(Into::into),
    }
}

fn enable() -> IntegrationPatch {
    IntegrationPatch {
        enabled: Some(true),
        ..IntegrationPatch::default()
    }
}

fn disabled() -> Integration {
    remote_with(|v| v["enabled"] = json!(false))
}
