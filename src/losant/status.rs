//! An integration's runtime connection state as Losant reports it (`status`, read-only): when it
//! last connected, when and why it last disconnected, its last keep-alive and its next attempt.
//! Times are epoch milliseconds. The upstream schema of this object is malformed, so every field
//! is read leniently: a field of an unexpected shape reads as absent, never as an error.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// `status` of an integration.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteStatus {
    /// Last keep-alive, epoch ms.
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_keep_alive: Option<f64>,
    /// When Losant tries to connect again, epoch ms.
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub next_attempt: Option<f64>,
    /// The last connect.
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub connect_info: Option<ConnectInfo>,
    /// The last disconnect.
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub disconnect_info: Option<DisconnectInfo>,
}

/// `status.connectInfo`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ConnectInfo {
    /// When, epoch ms.
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub ts: Option<f64>,
}

/// `status.disconnectInfo`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DisconnectInfo {
    /// When, epoch ms.
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub ts: Option<f64>,
    /// Why, in Losant's words (e.g. `Keepalive Timeout`); may quote what the remote end said.
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub error: Option<String>,
}

/// Reads `T` if the value has its shape, else nothing.
fn lenient<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let value = Value::deserialize(deserializer)?;
    Ok(serde_json::from_value(value).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_what_losant_sends_and_shrugs_at_odd_shapes() {
        let status: RemoteStatus = serde_json::from_value(json!({
            "lastKeepAlive": 1764763200000u64, "nextAttempt": 1764763230000u64,
            "connectInfo": {"ts": 1764763100000u64},
            "disconnectInfo": {"ts": null, "error": "Keepalive Timeout"}
        }))
        .unwrap();
        assert_eq!(status.last_keep_alive, Some(1_764_763_200_000.0));
        assert_eq!(status.connect_info.unwrap().ts, Some(1_764_763_100_000.0));
        let disconnect = status.disconnect_info.unwrap();
        assert_eq!(
            (disconnect.ts, disconnect.error.as_deref()),
            (None, Some("Keepalive Timeout"))
        );

        let odd: RemoteStatus = serde_json::from_value(json!({
            "lastKeepAlive": "yesterday", "connectInfo": 7, "disconnectInfo": {"ts": "x", "error": 5}
        }))
        .unwrap();
        assert_eq!(odd.last_keep_alive, None);
        assert_eq!(odd.connect_info, None);
        assert_eq!(odd.disconnect_info, Some(DisconnectInfo::default()));
    }
}
