//! A remote integration → the `Integration` spec that manages it as it is, pure.
//!
//! Fields are copied in Losant's names. A secret field Losant shows (in clear or masked) becomes
//! a reference to a key of the integration's Secret, and the key is listed as a [`SecretSlot`]
//! for the user to fill; the value itself is never read here beyond "is it there". A required
//! secret (Particle's `accessToken`, a WebSocket header's value, an Azure connection string when
//! there is no `hostName`) gets its slot even when Losant leaves it out.

use crate::crd::{AdoptionPolicy, DeletionPolicy, ManagementPolicy};
use crate::crd::{
    AzureEventHubSpec, GooglePubSubSpec, IntegrationSpec, IntegrationTypeSpec, LocalObjectRef,
    MqttSpec, ParticleSpec, SecretKeyRef, SqsSpec, WebsocketHeaderSpec, WebsocketSpec,
};
use crate::losant::{
    Integration, RemoteAzureEventHubConfig, RemoteGooglePubSubConfig, RemoteMqttConfig,
    RemoteParticleConfig, RemoteSqsConfig, RemoteWebsocketConfig, SecretString,
};

/// A key of the generated Secret the user must fill with the value Losant holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretSlot {
    /// The key, e.g. `password` or `headers.0.headerValue`.
    pub key: String,
    /// The Losant field it feeds, e.g. `mqttConfig.password`.
    pub field: String,
}

/// Why a remote integration cannot be written as a spec.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("integration {id} ({name:?}) cannot be exported: {reason}")]
pub struct Unexportable {
    /// Its id.
    pub id: String,
    /// Its name (shown as a quoted string, so control characters stay escaped).
    pub name: String,
    /// What is missing or unknown.
    pub reason: String,
}

/// The spec for `remote`, in application `application`, whose secret references point at
/// Secret `secret_name`, and the keys that Secret must hold.
///
/// # Errors
/// [`Unexportable`] when the remote lacks a field the spec requires or has a value it cannot
/// express (an unknown type or enum value).
pub fn integration_spec(
    remote: &Integration,
    application: &str,
    secret_name: &str,
) -> Result<(IntegrationSpec, Vec<SecretSlot>), Unexportable> {
    let fail = |reason: String| Unexportable {
        id: remote.id.clone(),
        name: remote.name.clone(),
        reason,
    };
    if !remote.unreadable_fields.is_empty() {
        return Err(fail(format!(
            "Losant returned unreadable fields: {}",
            remote.unreadable_fields.join(", ")
        )));
    }
    let integration_type: IntegrationTypeSpec = serde_json::from_value(serde_json::json!(
        remote.integration_type.as_str()
    ))
    .map_err(|_| {
        fail(format!(
            "unknown type {:?}",
            remote.integration_type.as_str()
        ))
    })?;
    let mut spec = IntegrationSpec {
        application_ref: LocalObjectRef {
            name: application.to_owned(),
        },
        name: Some(remote.name.clone()),
        integration_type,
        enabled: remote.enabled.unwrap_or(true),
        topics: remote.topics.clone(),
        credential_name: remote.credential_name.clone(),
        mqtt_config: None,
        google_pub_sub_config: None,
        azure_event_hub_config: None,
        particle_config: None,
        sqs_config: None,
        websocket_config: None,
        adoption_policy: AdoptionPolicy::IfExactlyOneMatch,
        deletion_policy: Some(DeletionPolicy::Orphan),
        management_policy: ManagementPolicy::Full,
    };
    let mut slots = Slots {
        secret_name,
        config_field: integration_type.config_field(),
        taken: Vec::new(),
    };
    config_block(remote, &mut spec, &mut slots).map_err(fail)?;
    Ok((spec, slots.taken))
}

/// Fills the spec's config block of the remote's type (a match on the type: each block is its
/// own typed struct).
fn config_block(
    remote: &Integration,
    spec: &mut IntegrationSpec,
    slots: &mut Slots<'_>,
) -> Result<(), String> {
    let integration_type = spec.integration_type;
    let missing_config = || format!("Losant returned no {}", integration_type.config_field());
    match integration_type {
        IntegrationTypeSpec::Mqtt => {
            let config = remote.mqtt_config.as_deref().ok_or_else(missing_config)?;
            spec.mqtt_config = Some(Box::new(mqtt(config, slots)?));
        }
        IntegrationTypeSpec::GooglePubSub => {
            spec.google_pub_sub_config = remote
                .google_pub_sub_config
                .as_deref()
                .map(|config| Box::new(google_pub_sub(config, slots)));
        }
        IntegrationTypeSpec::AzureEventHub => {
            let config = remote.azure_event_hub_config.as_deref();
            let config = config.ok_or_else(missing_config)?;
            spec.azure_event_hub_config = Some(Box::new(azure_event_hub(config, slots)?));
        }
        IntegrationTypeSpec::Particle => {
            let config = remote.particle_config.as_deref();
            let config = config.ok_or_else(missing_config)?;
            spec.particle_config = Some(Box::new(particle(config, slots)));
        }
        IntegrationTypeSpec::Sqs => {
            let config = remote.sqs_config.as_deref().ok_or_else(missing_config)?;
            spec.sqs_config = Some(Box::new(sqs(config, slots)?));
        }
        IntegrationTypeSpec::Websocket => {
            let config = remote.websocket_config.as_deref();
            let config = config.ok_or_else(missing_config)?;
            spec.websocket_config = Some(Box::new(websocket(config, slots)?));
        }
    }
    Ok(())
}

/// The Secret's keys handed out so far.
struct Slots<'a> {
    secret_name: &'a str,
    config_field: &'static str,
    taken: Vec<SecretSlot>,
}

impl Slots<'_> {
    /// A reference to key `key` (feeding `<config>.<key>`), listed for the user to fill.
    fn take(&mut self, key: String) -> SecretKeyRef {
        self.taken.push(SecretSlot {
            field: format!("{}.{key}", self.config_field),
            key: key.clone(),
        });
        SecretKeyRef {
            name: self.secret_name.to_owned(),
            key,
        }
    }

    /// A reference when Losant shows the field (whatever it shows: the value is not looked at).
    fn if_shown(&mut self, value: Option<&SecretString>, key: &str) -> Option<SecretKeyRef> {
        value.map(|_| self.take(key.to_owned()))
    }
}

fn required<T: Clone>(value: &Option<T>, field: &str) -> Result<T, String> {
    value
        .clone()
        .ok_or_else(|| format!("Losant returned no {field}"))
}

/// A wire enum → the CRD's enum of the same wire values.
fn same_enum<F: serde::Serialize, T: serde::de::DeserializeOwned>(
    value: &F,
    field: &str,
) -> Result<T, String> {
    let wire = serde_json::to_value(value).map_err(|e| e.to_string())?;
    serde_json::from_value(wire.clone()).map_err(|_| format!("unknown {field} {wire}"))
}

fn mqtt(config: &RemoteMqttConfig, slots: &mut Slots<'_>) -> Result<MqttSpec, String> {
    let protocol = required(&config.protocol, "mqttConfig.protocol")?;
    Ok(MqttSpec {
        host: required(&config.host, "mqttConfig.host")?,
        port: i32::from(required(&config.port, "mqttConfig.port")?),
        protocol: same_enum(&protocol, "mqttConfig.protocol")?,
        client_id: config.client_id.clone(),
        username: config.username.clone(),
        password_secret_ref: slots.if_shown(config.password.as_ref(), "password"),
        clean: config.clean,
        private_key_secret_ref: slots.if_shown(config.private_key.as_ref(), "privateKey"),
        certificate: config.certificate.clone(),
        ca_certificate: config.ca_certificate.clone(),
        disable_ssl_verification: config.disable_ssl_verification,
        protocol_version: config
            .protocol_version
            .as_ref()
            .map(|v| same_enum(v, "mqttConfig.protocolVersion"))
            .transpose()?,
    })
}

fn google_pub_sub(config: &RemoteGooglePubSubConfig, slots: &mut Slots<'_>) -> GooglePubSubSpec {
    GooglePubSubSpec {
        project_id: config.project_id.clone(),
        key_json_secret_ref: slots.if_shown(config.key_json.as_ref(), "keyJson"),
    }
}

fn azure_event_hub(
    config: &RemoteAzureEventHubConfig,
    slots: &mut Slots<'_>,
) -> Result<AzureEventHubSpec, String> {
    let connection_string_secret_ref = match (&config.host_name, &config.connection_string) {
        (Some(_), Some(_)) => {
            return Err("Losant returned both hostName and connectionString".into());
        }
        (Some(_), None) => None,
        // Without a host name the connection string is how it connects, shown or not.
        (None, _) => Some(slots.take("connectionString".into())),
    };
    Ok(AzureEventHubSpec {
        hub_name: required(&config.hub_name, "azureEventHubConfig.hubName")?,
        consumer_group: required(&config.consumer_group, "azureEventHubConfig.consumerGroup")?,
        host_name: config.host_name.clone(),
        connection_string_secret_ref,
    })
}

fn particle(config: &RemoteParticleConfig, slots: &mut Slots<'_>) -> ParticleSpec {
    ParticleSpec {
        // Required by Losant: there is one, shown or not.
        access_token_secret_ref: slots.take("accessToken".into()),
        product_slug_or_id: config.product_slug_or_id.clone(),
        org_slug_or_id: config.org_slug_or_id.clone(),
        device_name_or_id: config.device_name_or_id.clone(),
    }
}

fn sqs(config: &RemoteSqsConfig, slots: &mut Slots<'_>) -> Result<SqsSpec, String> {
    Ok(SqsSpec {
        queue_url: required(&config.queue_url, "sqsConfig.queueUrl")?,
        access_key_id: config.access_key_id.clone(),
        secret_access_key_secret_ref: slots
            .if_shown(config.secret_access_key.as_ref(), "secretAccessKey"),
        region: config.region.clone(),
    })
}

fn websocket(
    config: &RemoteWebsocketConfig,
    slots: &mut Slots<'_>,
) -> Result<WebsocketSpec, String> {
    let headers = config
        .headers
        .as_ref()
        .map(|headers| {
            headers
                .iter()
                .enumerate()
                .map(|(index, header)| {
                    Ok(WebsocketHeaderSpec {
                        header_key: required(&header.header_key, "a header's headerKey")?,
                        header_value: None,
                        // Every header value is treated as a secret (it often is Authorization);
                        // Losant requires one, shown or not.
                        header_value_secret_ref: Some(
                            slots.take(format!("headers.{index}.headerValue")),
                        ),
                    })
                })
                .collect::<Result<Vec<_>, String>>()
        })
        .transpose()?;
    Ok(WebsocketSpec {
        url: required(&config.url, "websocketConfig.url")?,
        disable_ssl_verification: config.disable_ssl_verification,
        username: config.username.clone(),
        password_secret_ref: slots.if_shown(config.password.as_ref(), "password"),
        private_key_secret_ref: slots.if_shown(config.private_key.as_ref(), "privateKey"),
        certificate: config.certificate.clone(),
        ca_certificate: config.ca_certificate.clone(),
        headers,
    })
}
