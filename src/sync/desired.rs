//! Step 1 of a reconcile, the pure half: an `Integration` spec plus the values of the Secret keys
//! it references → the integration Losant should hold ([`Desired`]).
//!
//! Secret values are checked against Losant's length limits here, so a bad value is reported with
//! the Secret's name and key — never its value — instead of as an opaque 400 from Losant.

use std::collections::BTreeMap;

use crate::crd::{
    AzureEventHubSpec, GooglePubSubSpec, IntegrationSpec, IntegrationTypeSpec, MqttProtocolSpec,
    MqttProtocolVersionSpec, MqttSpec, ParticleSpec, SecretKeyRef, SqsSpec, WebsocketSpec,
};
use crate::losant::type_facts::{
    ACCESS_TOKEN, CONNECTION_STRING, HEADER_VALUE, KEY_JSON, PASSWORD, PRIVATE_KEY,
    SECRET_ACCESS_KEY,
};
use crate::losant::{
    AzureEventHubAuth, AzureEventHubConfig, GooglePubSubConfig, IntegrationConfig, IntegrationType,
    MqttConfig, MqttProtocol, MqttProtocolVersion, ParticleConfig, SecretField, SecretString,
    SqsConfig, TypeFacts, WebsocketConfig, WebsocketHeader,
};

/// Values of the referenced Secret keys, as resolved by the controller.
pub type SecretValues = BTreeMap<SecretKeyRef, SecretString>;

/// The integration as Losant should hold it.
#[derive(Clone, Debug, PartialEq)]
pub struct Desired {
    /// Remote name.
    pub name: String,
    /// Type.
    pub integration_type: IntegrationType,
    /// Enabled flag.
    pub enabled: bool,
    /// Topics, when the spec manages them.
    pub topics: Option<Vec<String>>,
    /// Credential name, when the spec sets one.
    pub credential_name: Option<String>,
    /// The config object, when the spec has one.
    pub config: Option<IntegrationConfig>,
    /// Config paths (`mqttConfig.password`, `websocketConfig.headers.0.headerValue`) whose values
    /// come from Secrets: Losant may mask or omit them, so they are never compared; a change of the
    /// Secret's `resourceVersion` is what makes them drift.
    pub secret_paths: Vec<String>,
}

/// A spec that cannot become a valid integration. Always permanent: the spec must change.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// The config block of the type is missing.
    #[error("integrationType {integration_type} needs spec.{field}")]
    ConfigMissing {
        /// The type.
        integration_type: &'static str,
        /// The missing block.
        field: &'static str,
    },
    /// A config block of another type is present.
    #[error("spec.{field} does not belong to integrationType {integration_type}")]
    ConfigForOtherType {
        /// The type.
        integration_type: &'static str,
        /// The stray block.
        field: &'static str,
    },
    /// A referenced Secret key was not resolved.
    #[error("key {key:?} of Secret {secret:?} is not available")]
    SecretValueMissing {
        /// Secret name.
        secret: String,
        /// Key.
        key: String,
    },
    /// A Secret value does not fit Losant's limits for the field.
    #[error("key {key:?} of Secret {secret:?} (for {field}) must be {min}–{max} characters long")]
    SecretValueLength {
        /// Secret name.
        secret: String,
        /// Key.
        key: String,
        /// The Losant field it feeds, e.g. `mqttConfig.password`.
        field: String,
        /// Minimum length.
        min: usize,
        /// Maximum length.
        max: usize,
    },
    /// A field has a value outside what Losant accepts (possible with an outdated CRD schema).
    #[error("{field} {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
}

/// The Secret keys a spec references, for its own type's config block. A match on the type: each
/// block is its own typed struct.
pub fn secret_refs(spec: &IntegrationSpec) -> Vec<&SecretKeyRef> {
    let mut refs: Vec<&SecretKeyRef> = Vec::new();
    match spec.integration_type {
        IntegrationTypeSpec::Mqtt => {
            if let Some(c) = &spec.mqtt_config {
                refs.extend(
                    c.password_secret_ref
                        .iter()
                        .chain(&c.private_key_secret_ref),
                );
            }
        }
        IntegrationTypeSpec::GooglePubSub => {
            if let Some(c) = &spec.google_pub_sub_config {
                refs.extend(&c.key_json_secret_ref);
            }
        }
        IntegrationTypeSpec::AzureEventHub => {
            if let Some(c) = &spec.azure_event_hub_config {
                refs.extend(&c.connection_string_secret_ref);
            }
        }
        IntegrationTypeSpec::Particle => {
            if let Some(c) = &spec.particle_config {
                refs.push(&c.access_token_secret_ref);
            }
        }
        IntegrationTypeSpec::Sqs => {
            if let Some(c) = &spec.sqs_config {
                refs.extend(&c.secret_access_key_secret_ref);
            }
        }
        IntegrationTypeSpec::Websocket => {
            if let Some(c) = &spec.websocket_config {
                refs.extend(
                    c.password_secret_ref
                        .iter()
                        .chain(&c.private_key_secret_ref),
                );
                for header in c.headers.iter().flatten() {
                    refs.extend(&header.header_value_secret_ref);
                }
            }
        }
    }
    refs
}

/// Builds the desired integration.
///
/// # Errors
/// [`SpecError`] when the spec and secrets cannot make a valid integration.
pub fn desired(
    spec: &IntegrationSpec,
    name: &str,
    secrets: &SecretValues,
) -> Result<Desired, SpecError> {
    check_blocks(spec)?;
    let facts = spec.integration_type.facts();
    let resolve = Resolver { secrets, facts };
    // Each block is its own typed struct, built into its own typed config.
    let config = match spec.integration_type {
        IntegrationTypeSpec::Mqtt => spec
            .mqtt_config
            .as_ref()
            .map(|c| mqtt(c, &resolve))
            .transpose()?,
        IntegrationTypeSpec::GooglePubSub => spec
            .google_pub_sub_config
            .as_ref()
            .map(|c| google_pub_sub(c, &resolve))
            .transpose()?,
        IntegrationTypeSpec::AzureEventHub => spec
            .azure_event_hub_config
            .as_ref()
            .map(|c| azure_event_hub(c, &resolve))
            .transpose()?,
        IntegrationTypeSpec::Particle => spec
            .particle_config
            .as_ref()
            .map(|c| particle(c, &resolve))
            .transpose()?,
        IntegrationTypeSpec::Sqs => spec
            .sqs_config
            .as_ref()
            .map(|c| sqs(c, &resolve))
            .transpose()?,
        IntegrationTypeSpec::Websocket => spec
            .websocket_config
            .as_ref()
            .map(|c| websocket(c, &resolve))
            .transpose()?,
    };
    let mut secret_paths = config
        .as_ref()
        .map(|config| secret_paths(facts, config))
        .unwrap_or_default();
    if spec.integration_type == IntegrationTypeSpec::Websocket {
        let headers = spec
            .websocket_config
            .iter()
            .flat_map(|c| c.headers.iter().flatten());
        for (index, header) in headers.enumerate() {
            if header.header_value_secret_ref.is_some() {
                secret_paths.push(facts.list_item_secret_path(&HEADER_VALUE, Some(index)));
            }
        }
    }
    Ok(Desired {
        secret_paths,
        name: name.to_owned(),
        integration_type: IntegrationType::from(spec.integration_type.as_str()),
        enabled: spec.enabled,
        topics: spec.topics.clone(),
        credential_name: spec.credential_name.clone(),
        config,
    })
}

/// The paths of `config` that hold Secret values (inline header values excepted).
fn secret_paths(facts: &TypeFacts, config: &IntegrationConfig) -> Vec<String> {
    let mut paths: Vec<String> = config
        .set_secret_fields()
        .into_iter()
        .map(|(field, _)| facts.secret_path(field))
        .collect();
    paths.sort();
    paths
}

/// The config block must match the type (the CRD says so too; an outdated CRD may not). The
/// blocks are typed fields of the spec, so which are present is listed field by field.
fn check_blocks(spec: &IntegrationSpec) -> Result<(), SpecError> {
    let present = [
        (
            IntegrationTypeSpec::AzureEventHub,
            spec.azure_event_hub_config.is_some(),
        ),
        (
            IntegrationTypeSpec::GooglePubSub,
            spec.google_pub_sub_config.is_some(),
        ),
        (IntegrationTypeSpec::Mqtt, spec.mqtt_config.is_some()),
        (
            IntegrationTypeSpec::Particle,
            spec.particle_config.is_some(),
        ),
        (IntegrationTypeSpec::Sqs, spec.sqs_config.is_some()),
        (
            IntegrationTypeSpec::Websocket,
            spec.websocket_config.is_some(),
        ),
    ];
    let own = spec.integration_type;
    for (block_type, is_present) in present {
        if is_present && block_type != own {
            return Err(SpecError::ConfigForOtherType {
                integration_type: own.as_str(),
                field: block_type.config_field(),
            });
        }
        if !is_present && block_type == own && own.config_required() {
            return Err(SpecError::ConfigMissing {
                integration_type: own.as_str(),
                field: own.config_field(),
            });
        }
    }
    Ok(())
}

/// Looks Secret values up and checks their lengths against the type's limits.
struct Resolver<'a> {
    secrets: &'a SecretValues,
    facts: &'static TypeFacts,
}

impl Resolver<'_> {
    /// The value for the config object's secret `field`.
    fn value(
        &self,
        reference: &SecretKeyRef,
        field: &SecretField,
    ) -> Result<SecretString, SpecError> {
        self.checked(reference, field, || self.facts.secret_path(field))
    }

    fn optional(
        &self,
        reference: Option<&SecretKeyRef>,
        field: &SecretField,
    ) -> Result<Option<SecretString>, SpecError> {
        reference.map(|r| self.value(r, field)).transpose()
    }

    /// The value, if its length is within `field`'s limits; `path` names the field in errors.
    fn checked(
        &self,
        reference: &SecretKeyRef,
        field: &SecretField,
        path: impl FnOnce() -> String,
    ) -> Result<SecretString, SpecError> {
        let (min, max) = (field.min_chars, field.max_chars);
        let value = self
            .secrets
            .get(reference)
            .ok_or_else(|| SpecError::SecretValueMissing {
                secret: reference.name.clone(),
                key: reference.key.clone(),
            })?;
        let length = value.char_len();
        if length < min || length > max {
            return Err(SpecError::SecretValueLength {
                secret: reference.name.clone(),
                key: reference.key.clone(),
                field: path(),
                min,
                max,
            });
        }
        Ok(value.clone())
    }
}

fn mqtt(spec: &MqttSpec, resolve: &Resolver<'_>) -> Result<IntegrationConfig, SpecError> {
    let port = u16::try_from(spec.port)
        .ok()
        .filter(|p| *p >= 1)
        .ok_or(SpecError::Invalid {
            field: "mqttConfig.port",
            reason: "must be between 1 and 65535",
        })?;
    Ok(IntegrationConfig::Mqtt(MqttConfig {
        host: spec.host.clone(),
        port,
        protocol: match spec.protocol {
            MqttProtocolSpec::Mqtt => MqttProtocol::Mqtt,
            MqttProtocolSpec::Mqtts => MqttProtocol::Mqtts,
            MqttProtocolSpec::Ws => MqttProtocol::Ws,
            MqttProtocolSpec::Wss => MqttProtocol::Wss,
        },
        client_id: spec.client_id.clone(),
        username: spec.username.clone(),
        password: resolve.optional(spec.password_secret_ref.as_ref(), &PASSWORD)?,
        clean: spec.clean,
        private_key: resolve.optional(spec.private_key_secret_ref.as_ref(), &PRIVATE_KEY)?,
        certificate: spec.certificate.clone(),
        ca_certificate: spec.ca_certificate.clone(),
        disable_ssl_verification: spec.disable_ssl_verification,
        protocol_version: spec.protocol_version.map(|v| match v {
            MqttProtocolVersionSpec::V3_1_1 => MqttProtocolVersion::V3_1_1,
            MqttProtocolVersionSpec::V5 => MqttProtocolVersion::V5,
        }),
    }))
}

fn google_pub_sub(
    spec: &GooglePubSubSpec,
    resolve: &Resolver<'_>,
) -> Result<IntegrationConfig, SpecError> {
    Ok(IntegrationConfig::GooglePubSub(GooglePubSubConfig {
        project_id: spec.project_id.clone(),
        key_json: resolve.optional(spec.key_json_secret_ref.as_ref(), &KEY_JSON)?,
    }))
}

fn azure_event_hub(
    spec: &AzureEventHubSpec,
    resolve: &Resolver<'_>,
) -> Result<IntegrationConfig, SpecError> {
    let auth = match (&spec.connection_string_secret_ref, &spec.host_name) {
        (Some(reference), None) => AzureEventHubAuth::ConnectionString {
            connection_string: resolve.value(reference, &CONNECTION_STRING)?,
        },
        (None, Some(host_name)) => AzureEventHubAuth::HostName {
            host_name: host_name.clone(),
        },
        _ => {
            return Err(SpecError::Invalid {
                field: "azureEventHubConfig",
                reason: "needs exactly one of connectionStringSecretRef and hostName",
            });
        }
    };
    Ok(IntegrationConfig::AzureEventHub(AzureEventHubConfig {
        hub_name: spec.hub_name.clone(),
        consumer_group: spec.consumer_group.clone(),
        auth,
    }))
}

fn particle(spec: &ParticleSpec, resolve: &Resolver<'_>) -> Result<IntegrationConfig, SpecError> {
    Ok(IntegrationConfig::Particle(ParticleConfig {
        access_token: resolve.value(&spec.access_token_secret_ref, &ACCESS_TOKEN)?,
        product_slug_or_id: spec.product_slug_or_id.clone(),
        org_slug_or_id: spec.org_slug_or_id.clone(),
        device_name_or_id: spec.device_name_or_id.clone(),
    }))
}

fn sqs(spec: &SqsSpec, resolve: &Resolver<'_>) -> Result<IntegrationConfig, SpecError> {
    Ok(IntegrationConfig::Sqs(SqsConfig {
        queue_url: spec.queue_url.clone(),
        access_key_id: spec.access_key_id.clone(),
        secret_access_key: resolve.optional(
            spec.secret_access_key_secret_ref.as_ref(),
            &SECRET_ACCESS_KEY,
        )?,
        region: spec.region.clone(),
    }))
}

fn websocket(spec: &WebsocketSpec, resolve: &Resolver<'_>) -> Result<IntegrationConfig, SpecError> {
    let mut headers = Vec::new();
    for header in spec.headers.iter().flatten() {
        let value = match (&header.header_value, &header.header_value_secret_ref) {
            (Some(inline), None) => SecretString::new(inline.clone()),
            (None, Some(reference)) => resolve.checked(reference, &HEADER_VALUE.field, || {
                resolve.facts.list_item_secret_path(&HEADER_VALUE, None)
            })?,
            _ => {
                return Err(SpecError::Invalid {
                    field: "websocketConfig.headers",
                    reason: "each header needs exactly one of headerValue and headerValueSecretRef",
                });
            }
        };
        headers.push(WebsocketHeader {
            header_key: header.header_key.clone(),
            header_value: value,
        });
    }
    Ok(IntegrationConfig::Websocket(WebsocketConfig {
        url: spec.url.clone(),
        disable_ssl_verification: spec.disable_ssl_verification,
        username: spec.username.clone(),
        password: resolve.optional(spec.password_secret_ref.as_ref(), &PASSWORD)?,
        private_key: resolve.optional(spec.private_key_secret_ref.as_ref(), &PRIVATE_KEY)?,
        certificate: spec.certificate.clone(),
        ca_certificate: spec.ca_certificate.clone(),
        headers: spec.headers.as_ref().map(|_| headers),
    }))
}
