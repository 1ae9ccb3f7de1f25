//! What of an integration decides its connection: whether it is enabled, the endpoint failure
//! rules are matched against, and which changes make it reconnect.

use serde_json::{Map, Value};

pub use crate::losant::type_facts::PARTICLE_ENDPOINT;

use crate::emulator::list::glob_match;
use crate::losant::{Endpoint, IntegrationType, TypeFacts};

/// `--connect-failure PATTERN=ERROR`: integrations whose endpoint matches `pattern` (anchored,
/// case-insensitive, `*` any run of characters) never connect; each attempt fails with `error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionFailure {
    pub pattern: String,
    pub error: String,
}

impl ConnectionFailure {
    /// Parses `PATTERN=ERROR TEXT`, split at the first `=` (so a pattern cannot hold one; a `*`
    /// stands in for it).
    pub fn parse(arg: &str) -> Result<Self, String> {
        match arg.split_once('=') {
            Some((pattern, error)) if !pattern.is_empty() && !error.is_empty() => Ok(Self {
                pattern: pattern.to_owned(),
                error: error.to_owned(),
            }),
            _ => Err("expected PATTERN=ERROR TEXT, both non-empty".into()),
        }
    }
}

/// The error of the first rule matching `endpoint`.
pub fn failure_for<'a>(rules: &'a [ConnectionFailure], endpoint: &str) -> Option<&'a str> {
    rules
        .iter()
        .find(|rule| glob_match(&rule.pattern, endpoint))
        .map(|rule| rule.error.as_str())
}

/// What the connection of one integration depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts<'a> {
    /// `enabled`, true when absent (Losant's default).
    pub enabled: bool,
    /// What it connects to (see [`endpoint`]).
    pub endpoint: &'a str,
}

impl<'a> Facts<'a> {
    pub fn of(doc: &'a Map<String, Value>) -> Self {
        Self {
            enabled: doc.get("enabled").and_then(Value::as_bool).unwrap_or(true),
            endpoint: endpoint(doc),
        }
    }
}

/// What an integration connects to, per its type's facts (e.g. MQTT `mqttConfig.host`, Particle
/// always [`PARTICLE_ENDPOINT`]). Empty when the field is absent or the type unknown.
pub fn endpoint(doc: &Map<String, Value>) -> &str {
    let field = match type_facts(doc).map(|facts| facts.endpoint) {
        Some(Endpoint::ConfigField(field)) => field,
        Some(Endpoint::Fixed(host)) => return host,
        None => return "",
    };
    own_config(doc)
        .and_then(|config| config.get(field))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn type_facts(doc: &Map<String, Value>) -> Option<&'static TypeFacts> {
    let kind = doc.get("integrationType").and_then(Value::as_str)?;
    IntegrationType::from(kind).facts()
}

/// The config object of the integration's own type (`mqtt` → `mqttConfig`, …); Losant ignores
/// the others.
fn own_config(doc: &Map<String, Value>) -> Option<&Value> {
    doc.get(type_facts(doc)?.config_field)
}

/// True when going from `before` to `after` makes the integration connect anew: it was enabled
/// or disabled, or what it connects with changed (its config object or `credentialName`). Name
/// or topic changes leave the connection alone.
pub fn reconnects(before: &Map<String, Value>, after: &Map<String, Value>) -> bool {
    Facts::of(before).enabled != Facts::of(after).enabled
        || own_config(before) != own_config(after)
        || before.get("credentialName") != after.get("credentialName")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn every_type_has_its_endpoint() {
        let cases = [
            (
                json!({"integrationType": "mqtt", "mqttConfig": {"host": "b.example"}}),
                "b.example",
            ),
            (
                json!({"integrationType": "websocket", "websocketConfig": {"url": "wss://w"}}),
                "wss://w",
            ),
            (
                json!({"integrationType": "sqs", "sqsConfig": {"queueUrl": "https://q"}}),
                "https://q",
            ),
            (
                json!({"integrationType": "googlePubSub", "googlePubSubConfig": {"projectId": "p"}}),
                "p",
            ),
            (
                json!({"integrationType": "azureEventHub", "azureEventHubConfig": {"hubName": "h"}}),
                "h",
            ),
            (
                json!({"integrationType": "particle", "particleConfig": {"accessToken": "x"}}),
                PARTICLE_ENDPOINT,
            ),
            // Another type's config object is not what it connects with.
            (
                json!({"integrationType": "sqs", "mqttConfig": {"host": "b.example"}}),
                "",
            ),
            (
                json!({"integrationType": "googlePubSub", "credentialName": "gcp"}),
                "",
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(endpoint(&doc(value.clone())), expected, "{value}");
        }
    }

    #[test]
    fn rules_parse_and_the_first_match_wins() {
        let rules = [
            ConnectionFailure::parse("*.down.example=connect ECONNREFUSED").unwrap(),
            ConnectionFailure::parse("*=Not authorized=yes").unwrap(),
        ];
        assert_eq!(rules[1].error, "Not authorized=yes");
        assert_eq!(
            failure_for(&rules, "Broker.DOWN.example"),
            Some("connect ECONNREFUSED")
        );
        assert_eq!(
            failure_for(&rules, "up.example"),
            Some("Not authorized=yes")
        );
        assert_eq!(failure_for(&rules[..1], "up.example"), None);
        for bad in ["", "=x", "x=", "no-equals"] {
            assert!(ConnectionFailure::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_what_the_connection_is_made_with_makes_it_reconnect() {
        let before = doc(
            json!({"integrationType": "mqtt", "name": "a", "topics": ["t"],
            "mqttConfig": {"host": "h", "port": 1883, "protocol": "mqtt"}}),
        );
        let changed = |patch: Value| {
            let mut after = before.clone();
            after.extend(doc(patch));
            reconnects(&before, &after)
        };
        assert!(!changed(json!({"name": "b", "topics": ["u"]})));
        assert!(!changed(json!({"enabled": true})), "absent means enabled");
        assert!(!changed(json!({"websocketConfig": {"url": "wss://w"}})));
        assert!(changed(json!({"enabled": false})));
        assert!(changed(json!({"credentialName": "c"})));
        assert!(changed(
            json!({"mqttConfig": {"host": "h", "port": 8883, "protocol": "mqtts"}})
        ));
    }
}
