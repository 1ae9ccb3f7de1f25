//! Command-line flags of the `losant-emulator` binary and their mapping onto
//! [`EmulatorConfig`](super::EmulatorConfig).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use super::config::{
    DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_PER_PAGE, EmulatorConfig, RetryAfterForm, SecretEcho,
    TlsFiles, TokenSpec, is_object_id,
};
use super::connection::{ConnectionConfig, ConnectionFailure};

/// The one-line description shown by `--help` (the crate description is the operator's).
pub const ABOUT: &str =
    "Emulates the Losant REST API for application integrations, for tests and demos";

/// Emulates the Losant REST API for application integrations, for tests and demos.
#[derive(Debug, Parser)]
#[command(name = "losant-emulator", version, about = ABOUT)]
pub struct EmulatorArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8787")]
    pub listen: SocketAddr,
    /// Accepted token: `TOKEN` (full access) or `TOKEN:SCOPE,SCOPE`. Repeatable.
    #[arg(long = "token", value_name = "TOKEN[:SCOPES]", value_parser = TokenSpec::parse)]
    pub tokens: Vec<TokenSpec>,
    /// An application that exists (24 hex characters). Repeatable.
    #[arg(long = "application", value_name = "ID", value_parser = parse_application_id)]
    pub applications: Vec<String>,
    /// Seed for ids and fault decisions (default: random).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Load state from this file at start and rewrite it atomically after every mutation.
    #[arg(long, value_name = "PATH")]
    pub state_file: Option<PathBuf>,
    /// Delay every API response by this many milliseconds.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub latency_ms: u64,
    /// Requests per second per token (burst equal to the rate); excess gets 429.
    #[arg(long, value_name = "R", value_parser = parse_rate)]
    pub rate_limit: Option<f64>,
    /// Form of the Retry-After header on 429 answers.
    #[arg(long, value_enum, default_value = "seconds")]
    pub retry_after_form: RetryAfterForm,
    /// Fraction of API requests answered 503 without doing anything.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = parse_fraction)]
    pub error_rate: f64,
    /// Fraction of POST/PATCH/DELETE that take effect, then answer 503 or drop the connection.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = parse_fraction)]
    pub fault_after_commit: f64,
    /// New integrations appear in lists only this many milliseconds after creation.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub list_lag_ms: u64,
    /// How secret fields come back in responses.
    #[arg(long, value_enum, default_value = "clear")]
    pub secret_echo: SecretEcho,
    /// Fill server-side defaults (enabled, topics, mqtt/websocket options) not sent by the client.
    #[arg(long)]
    pub server_defaults: bool,
    /// Largest accepted request body in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
    /// Largest list page; a bigger `perPage` is clamped to it (the envelope reports the result).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_PER_PAGE, value_parser = parse_max_per_page)]
    pub max_per_page: u64,
    /// Serve HTTPS with this PEM certificate (chain); needs --tls-key.
    #[arg(long, value_name = "PATH", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) of the --tls-cert certificate.
    #[arg(long, value_name = "PATH", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// An enabled integration connects this many milliseconds after it is created, enabled
    /// again, or its connection settings change.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub connect_delay_ms: u64,
    /// While connected, `status.lastKeepAlive` advances in steps of this many milliseconds.
    #[arg(long, value_name = "N", default_value_t = 30_000, value_parser = parse_period)]
    pub keep_alive_ms: u64,
    /// A failing integration retries every this many milliseconds (`status.nextAttempt`).
    #[arg(long, value_name = "N", default_value_t = 30_000, value_parser = parse_period)]
    pub connect_retry_ms: u64,
    /// Integrations whose endpoint (MQTT host, WebSocket URL, SQS queue URL, Pub/Sub project,
    /// Event Hub name, `api.particle.io`) matches PATTERN (`*` wildcard, case-insensitive)
    /// never connect; every attempt fails with ERROR. Repeatable; the first match wins.
    #[arg(long = "connect-failure", value_name = "PATTERN=ERROR", value_parser = ConnectionFailure::parse)]
    pub connect_failures: Vec<ConnectionFailure>,
}

impl EmulatorArgs {
    pub fn into_config(self) -> EmulatorConfig {
        EmulatorConfig {
            listen: self.listen,
            tokens: self.tokens,
            applications: self.applications,
            seed: self.seed,
            state_file: self.state_file,
            latency: Duration::from_millis(self.latency_ms),
            rate_limit: self.rate_limit,
            retry_after_form: self.retry_after_form,
            error_rate: self.error_rate,
            fault_after_commit: self.fault_after_commit,
            list_lag: Duration::from_millis(self.list_lag_ms),
            secret_echo: self.secret_echo,
            server_defaults: self.server_defaults,
            max_body_bytes: self.max_body_bytes,
            max_per_page: self.max_per_page,
            tls: match (self.tls_cert, self.tls_key) {
                (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
                // clap refuses one without the other.
                _ => None,
            },
            connection: ConnectionConfig {
                connect_delay: Duration::from_millis(self.connect_delay_ms),
                keep_alive: Duration::from_millis(self.keep_alive_ms),
                retry: Duration::from_millis(self.connect_retry_ms),
                failures: self.connect_failures,
            },
        }
    }
}

fn parse_application_id(s: &str) -> Result<String, String> {
    if is_object_id(s) {
        Ok(s.to_owned())
    } else {
        Err("an application id must be exactly 24 hexadecimal characters".into())
    }
}

fn parse_fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err("must be a number between 0 and 1".into()),
    }
}

fn parse_max_per_page(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("must be a whole number of at least 1".into()),
    }
}

fn parse_period(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("must be a whole number of milliseconds, at least 1".into()),
    }
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err("must be a positive number".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_map_onto_config() {
        let args = EmulatorArgs::try_parse_from([
            "losant-emulator",
            "--token",
            "t",
            "--token",
            "r:integrations.get",
            "--application",
            "575ec8687ae143cd83dc4a97",
            "--retry-after-form",
            "http-date",
            "--secret-echo",
            "mask",
            "--error-rate",
            "0.5",
        ])
        .unwrap();
        let config = args.into_config();
        assert_eq!(config.tokens.len(), 2);
        assert_eq!(config.retry_after_form, RetryAfterForm::HttpDate);
        assert_eq!(config.secret_echo, SecretEcho::Mask);
        assert_eq!(config.listen.port(), 8787);
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(EmulatorArgs::try_parse_from(["x", "--application", "nothex"]).is_err());
        assert!(EmulatorArgs::try_parse_from(["x", "--error-rate", "1.5"]).is_err());
        assert!(EmulatorArgs::try_parse_from(["x", "--rate-limit", "0"]).is_err());
        assert!(EmulatorArgs::try_parse_from(["x", "--max-per-page", "0"]).is_err());
        assert!(EmulatorArgs::try_parse_from(["x", "--max-per-page", "-1"]).is_err());
    }

    #[test]
    fn max_per_page_flag() {
        let default = EmulatorArgs::try_parse_from(["x"]).unwrap().into_config();
        assert_eq!(default.max_per_page, DEFAULT_MAX_PER_PAGE);
        assert_eq!(EmulatorConfig::default().max_per_page, DEFAULT_MAX_PER_PAGE);
        let args = EmulatorArgs::try_parse_from(["x", "--max-per-page", "10"]).unwrap();
        assert_eq!(args.into_config().max_per_page, 10);
    }

    #[test]
    fn connection_flags() {
        let default = EmulatorArgs::try_parse_from(["x"]).unwrap().into_config();
        assert_eq!(default.connection.connect_delay, Duration::from_secs(1));
        assert!(default.connection.failures.is_empty());
        let args = EmulatorArgs::try_parse_from([
            "x",
            "--connect-delay-ms",
            "0",
            "--keep-alive-ms",
            "50",
            "--connect-retry-ms",
            "70",
            "--connect-failure",
            "*.down.example=connect ECONNREFUSED",
            "--connect-failure",
            "wss://*=Unexpected server response: 401",
        ])
        .unwrap();
        let connection = args.into_config().connection;
        assert_eq!(connection.connect_delay, Duration::ZERO);
        assert_eq!(connection.keep_alive, Duration::from_millis(50));
        assert_eq!(connection.retry, Duration::from_millis(70));
        assert_eq!(connection.failures.len(), 2);
        assert_eq!(connection.failures[1].pattern, "wss://*");
        assert_eq!(
            connection.failures[1].error,
            "Unexpected server response: 401"
        );
        for bad in [
            ["--keep-alive-ms", "0"],
            ["--connect-retry-ms", "0"],
            ["--connect-failure", "no-equals"],
            ["--connect-delay-ms", "-1"],
        ] {
            assert!(
                EmulatorArgs::try_parse_from(["x", bad[0], bad[1]]).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn tls_flags_come_in_pairs() {
        let plain = EmulatorArgs::try_parse_from(["x"]).unwrap().into_config();
        assert_eq!(plain.tls, None);
        let args = EmulatorArgs::try_parse_from(["x", "--tls-cert", "c.pem", "--tls-key", "k.pem"])
            .unwrap();
        assert_eq!(
            args.into_config().tls,
            Some(TlsFiles {
                cert: "c.pem".into(),
                key: "k.pem".into()
            })
        );
        assert!(EmulatorArgs::try_parse_from(["x", "--tls-cert", "c.pem"]).is_err());
        assert!(EmulatorArgs::try_parse_from(["x", "--tls-key", "k.pem"]).is_err());
    }

    #[test]
    fn help_text_is_the_emulators_own() {
        use clap::CommandFactory;
        let mut cmd = EmulatorArgs::command();
        let short = cmd.render_help().to_string();
        let long = cmd.render_long_help().to_string();
        for help in [&short, &long] {
            assert!(help.contains(ABOUT), "{help}");
            assert!(!help.contains("Kubernetes"), "{help}");
            assert!(!help.contains("SECRET_MASK"), "{help}");
            assert!(help.contains("--max-per-page <N>"), "{help}");
        }
        // clap pads the value names to one column, so match the text after the padding.
        let mask = format!("Replaced by \"{}\"", crate::emulator::SECRET_MASK);
        let line = long.lines().find(|l| l.trim_start().starts_with("- mask:"));
        assert!(
            line.is_some_and(|l| l.trim_end().ends_with(&mask)),
            "{long}"
        );
    }
}
