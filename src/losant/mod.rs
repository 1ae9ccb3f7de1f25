//! The Losant REST client and its wire types, for an application's integrations.
//!
//! This module knows nothing of Kubernetes. It offers the five actions of the API (list, create,
//! get, patch, delete) plus [`Client::find_by_name`], typed models of every integration type, a
//! typed [`Error`] classified transient or permanent, retries for idempotent calls, and a shared
//! rate limiter. Secrets are [`SecretString`]s, which never show in `Debug` output.

mod client;
mod config;
mod encode;
mod enums;
mod error;
mod limiter;
mod model;
mod observe;
mod remote_config;
mod retry;
mod secret;
mod status;
pub mod type_facts;

pub use client::{
    Client, ClientBuilder, DEFAULT_ACCEPT_VERSION, DEFAULT_API_URL, Listing, MAX_LIST_PAGES,
    MAX_LISTED_INTEGRATIONS, MAX_PER_PAGE,
};
pub use config::{
    AzureEventHubAuth, AzureEventHubConfig, GooglePubSubConfig, IntegrationConfig, MqttConfig,
    ParticleConfig, SqsConfig, WebsocketConfig, WebsocketHeader,
};
pub use encode::{is_losant_id, name_filter};
pub use enums::{
    FilterField, IntegrationType, MqttProtocol, MqttProtocolVersion, SortDirection, SortField,
};
pub use error::{Error, ErrorClass, MAX_MESSAGE_CHARS};
pub use limiter::{Limiter, LimiterRegistry, Permit, RateLimits};
pub use model::{
    FieldPatch, Integration, IntegrationPage, IntegrationPatch, IntegrationPost, ListQuery,
    UnreadableItem,
};
pub use observe::RequestObserver;
pub use remote_config::{
    RemoteAzureEventHubConfig, RemoteGooglePubSubConfig, RemoteMqttConfig, RemoteParticleConfig,
    RemoteSqsConfig, RemoteWebsocketConfig, RemoteWebsocketHeader,
};
pub use retry::{RetryPolicy, parse_retry_after};
pub use secret::SecretString;
pub use status::{ConnectInfo, DisconnectInfo, RemoteStatus};
pub use type_facts::{
    DefaultValue, Endpoint, ListItemSecret, SecretField, ServerDefault, TypeFacts,
};
