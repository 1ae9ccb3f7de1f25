//! Emulator configuration: the knobs shared by the `losant-emulator` binary and in-process tests.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::EmulatorError;
use super::connection::ConnectionConfig;

/// The string that replaces secret values when [`SecretEcho::Mask`] is chosen.
pub const SECRET_MASK: &str = "********";

/// Default request-body cap (1 MiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// Default largest list page (what losant-cli asks for).
pub const DEFAULT_MAX_PER_PAGE: u64 = 1000;

/// Everything that shapes one emulator instance. All realism knobs are off by default.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Address to bind. The default is `127.0.0.1:0` (an ephemeral port), which suits tests;
    /// the binary defaults to `127.0.0.1:8787`.
    pub listen: SocketAddr,
    /// Accepted bearer tokens.
    pub tokens: Vec<TokenSpec>,
    /// Applications that exist (24 hex characters each).
    pub applications: Vec<String>,
    /// Seed for ids and fault decisions; `None` picks one at random.
    pub seed: Option<u64>,
    /// Load state from here at start (if present) and write it after every mutation.
    pub state_file: Option<PathBuf>,
    /// Delay added before every API response.
    pub latency: Duration,
    /// Requests per second allowed per token (token bucket, burst equal to the rate).
    pub rate_limit: Option<f64>,
    /// How `Retry-After` is written on 429 answers.
    pub retry_after_form: RetryAfterForm,
    /// Fraction of API requests answered 503 without doing anything.
    pub error_rate: f64,
    /// Fraction of mutations that take effect and then answer 503 or drop the connection.
    pub fault_after_commit: f64,
    /// How long a new integration stays out of list results (GET by id sees it at once).
    pub list_lag: Duration,
    /// How secret fields appear in responses.
    pub secret_echo: SecretEcho,
    /// Fill server-side defaults the client did not send.
    pub server_defaults: bool,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Largest list page (at least 1); a bigger `perPage` is clamped to it, and the envelope's
    /// `perPage` reports the size actually used.
    pub max_per_page: u64,
    /// Serve HTTPS with this certificate and key instead of plain HTTP.
    pub tls: Option<TlsFiles>,
    /// How the simulated connections behave (each integration's `status`). The default connects
    /// at once; the binary's `--connect-delay-ms` defaults to 1000.
    pub connection: ConnectionConfig,
}

/// PEM files that make the emulator serve HTTPS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The server certificate, optionally followed by its intermediates (PEM).
    pub cert: PathBuf,
    /// The certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            tokens: Vec::new(),
            applications: Vec::new(),
            seed: None,
            state_file: None,
            latency: Duration::ZERO,
            rate_limit: None,
            retry_after_form: RetryAfterForm::Seconds,
            error_rate: 0.0,
            fault_after_commit: 0.0,
            list_lag: Duration::ZERO,
            secret_echo: SecretEcho::Clear,
            server_defaults: false,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_per_page: DEFAULT_MAX_PER_PAGE,
            tls: None,
            connection: ConnectionConfig::default(),
        }
    }
}

impl EmulatorConfig {
    /// Rejects values the emulator cannot honour, naming the offending setting.
    pub fn validate(&self) -> Result<(), EmulatorError> {
        for app in &self.applications {
            if !is_object_id(app) {
                return Err(EmulatorError::InvalidConfig(format!(
                    "application id {app:?} must be 24 hexadecimal characters"
                )));
            }
        }
        check_fraction("error_rate", self.error_rate)?;
        check_fraction("fault_after_commit", self.fault_after_commit)?;
        if let Some(rate) = self.rate_limit
            && !(rate.is_finite() && rate > 0.0)
        {
            return Err(EmulatorError::InvalidConfig(
                "rate_limit must be a positive number".into(),
            ));
        }
        if self.max_per_page == 0 {
            return Err(EmulatorError::InvalidConfig(
                "max_per_page must be at least 1".into(),
            ));
        }
        self.connection
            .validate()
            .map_err(EmulatorError::InvalidConfig)?;
        if self.tokens.iter().any(|t| t.token.is_empty()) {
            return Err(EmulatorError::InvalidConfig(
                "tokens must not be empty".into(),
            ));
        }
        Ok(())
    }
}

fn check_fraction(name: &str, value: f64) -> Result<(), EmulatorError> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(EmulatorError::InvalidConfig(format!(
            "{name} must be within [0, 1]"
        )))
    }
}

/// True for a 24-character hexadecimal id (the shape of Losant path ids).
pub fn is_object_id(s: &str) -> bool {
    s.len() == 24 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// One accepted bearer token and, optionally, the only Losant scopes it carries. Its `Debug`
/// form hides the token, so printing a config never shows one.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSpec {
    pub token: String,
    /// `None` means full access.
    pub scopes: Option<Vec<String>>,
}

impl fmt::Debug for TokenSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSpec")
            .field("token", &REDACTED)
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// Stands in for a token in `Debug` output.
const REDACTED: &str = "<redacted>";

impl TokenSpec {
    /// A token allowed to do everything.
    pub fn full(token: impl Into<String>) -> Self {
        Self {
            token: token.into(),
            scopes: None,
        }
    }

    /// A token limited to the given scopes (e.g. `integrations.get`).
    pub fn scoped(token: impl Into<String>, scopes: &[&str]) -> Self {
        Self {
            token: token.into(),
            scopes: Some(scopes.iter().map(|s| (*s).to_owned()).collect()),
        }
    }

    /// Parses `TOKEN` or `TOKEN:SCOPE,SCOPE` (split at the first ':').
    pub fn parse(arg: &str) -> Result<Self, String> {
        let (token, scopes) = match arg.split_once(':') {
            None => (arg, None),
            Some((token, list)) => {
                let scopes: Vec<String> = list
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect();
                (token, Some(scopes))
            }
        };
        if token.is_empty() {
            return Err("token must not be empty".into());
        }
        Ok(Self {
            token: token.to_owned(),
            scopes,
        })
    }
}

/// Form of the `Retry-After` header on 429 answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RetryAfterForm {
    /// Whole seconds, at least 1.
    Seconds,
    /// An IMF-fixdate (RFC 9110 HTTP-date), rounded up to the next whole second.
    HttpDate,
}

/// How secret fields come back in responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SecretEcho {
    /// As sent (the documented Losant behaviour).
    Clear,
    /// Left out.
    Omit,
    // The help text must spell the mask out: clap shows doc comments verbatim, so an
    // intra-doc link would print as "[`SECRET_MASK`]". A test keeps the two in step.
    /// Replaced by "********".
    Mask,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_spec_parsing() {
        assert_eq!(TokenSpec::parse("abc"), Ok(TokenSpec::full("abc")));
        assert_eq!(
            TokenSpec::parse("abc:integrations.get,integration.get"),
            Ok(TokenSpec::scoped(
                "abc",
                &["integrations.get", "integration.get"]
            ))
        );
        assert!(TokenSpec::parse(":x").is_err());
    }

    #[test]
    fn debug_output_hides_tokens() {
        let config = EmulatorConfig {
            tokens: vec![
                TokenSpec::full("s3cret-full"),
                TokenSpec::parse("s3cret-scoped:integrations.get").unwrap(),
            ],
            ..Default::default()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(
            shown.contains("integrations.get"),
            "scopes are still shown: {shown}"
        );
    }

    #[test]
    fn object_ids() {
        assert!(is_object_id("575ec8687ae143cd83dc4a97"));
        assert!(!is_object_id("575ec8687ae143cd83dc4a9"));
        assert!(!is_object_id("575ec8687ae143cd83dc4a9g"));
    }
}
