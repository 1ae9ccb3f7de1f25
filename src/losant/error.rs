//! The one error type of the Losant client, classified as transient or permanent.
//!
//! Messages never carry secret values: Losant's own `message` is scrubbed of every secret the
//! request carried and truncated, response bodies are never quoted, and decode failures name what
//! was wrong without repeating the value (serde's messages would).

use std::time::Duration;

/// Whether retrying the same request later can succeed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// Rate limiting, server errors, timeouts and connection failures: try again later.
    Transient,
    /// The request itself is wrong or not allowed: retrying the same request will fail again.
    Permanent,
}

/// Longest Losant message kept in an error, in characters.
pub const MAX_MESSAGE_CHARS: usize = 512;

/// What went wrong talking to Losant.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Losant answered with an error status and (usually) its `{type, message}` body.
    #[error("losant answered {status} {kind}: {message}")]
    Api {
        /// HTTP status code.
        status: u16,
        /// Losant's error `type` (e.g. `NotFound`, `Validation`), or `Unknown` without a JSON body.
        kind: String,
        /// Losant's error `message`, scrubbed of secrets and truncated.
        message: String,
        /// The wait the server asked for (`Retry-After`), already capped.
        retry_after: Option<Duration>,
    },
    /// No complete answer within the request timeout.
    #[error("request to losant timed out")]
    Timeout {
        /// The underlying failure.
        #[source]
        source: reqwest::Error,
    },
    /// The connection could not be established.
    #[error("could not connect to losant")]
    Connect {
        /// The underlying failure.
        #[source]
        source: reqwest::Error,
    },
    /// The connection failed after the request may have been sent (the lost-response case).
    #[error("connection to losant failed before a complete answer")]
    Transport {
        /// The underlying failure.
        #[source]
        source: reqwest::Error,
    },
    /// A success answer that could not be read.
    #[error("unreadable answer from losant (status {status}): {reason}")]
    Decode {
        /// HTTP status code.
        status: u16,
        /// What was wrong, without any value from the body.
        reason: String,
    },
    /// A list did not hold still long enough to be read completely.
    #[error("the integration list kept changing while it was read; try again")]
    UnstableList,
    /// A list that would not end: more pages or integrations than any application holds (a
    /// server whose `totalCount` lies, or that pages without end).
    #[error(
        "the integration list did not end after {pages} page(s) and {items} item(s) (the server claims {claimed}): more than any application holds"
    )]
    EndlessList {
        /// Pages read.
        pages: u64,
        /// Items read.
        items: u64,
        /// The `totalCount` the server claimed.
        claimed: u64,
    },
    /// A redirect, which is never followed: the token must not go anywhere but the API URL.
    #[error(
        "losant answered {status} with a redirect to {target}, which is never followed; check the API URL"
    )]
    Redirect {
        /// HTTP status code (3xx).
        status: u16,
        /// `the same host`, or `another host (HOST)`, or `nowhere` without a usable `Location`.
        target: String,
    },
    /// An argument can never make a valid request (e.g. an id that is not 24 hex characters).
    #[error("invalid argument: {reason}")]
    InvalidArgument {
        /// What is wrong.
        reason: String,
    },
    /// The client could not be built from its configuration.
    #[error("invalid losant client configuration: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
}

impl Error {
    /// Transient or permanent.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Api { status, .. } if *status == 408 || *status == 429 || *status >= 500 => {
                ErrorClass::Transient
            }
            // A broken answer (unreadable, oversized, endless) is a broken server or proxy in
            // between, which may recover: retried, with backoff.
            Error::Timeout { .. }
            | Error::Connect { .. }
            | Error::Transport { .. }
            | Error::Decode { .. }
            | Error::EndlessList { .. }
            | Error::UnstableList => ErrorClass::Transient,
            Error::Api { .. }
            | Error::Redirect { .. }
            | Error::InvalidArgument { .. }
            | Error::Config { .. } => ErrorClass::Permanent,
        }
    }

    /// Whether retrying later can succeed.
    pub fn is_transient(&self) -> bool {
        self.class() == ErrorClass::Transient
    }

    /// The HTTP status Losant answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. }
            | Error::Decode { status, .. }
            | Error::Redirect { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Losant's error `type`, if it answered with one.
    pub fn api_kind(&self) -> Option<&str> {
        match self {
            Error::Api { kind, .. } => Some(kind),
            _ => None,
        }
    }

    /// Whether Losant said the addressed resource does not exist.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// The wait the server asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Whether a write that failed this way may still have taken effect on the server: the
    /// request may have been processed even though its answer never arrived (or was a 5xx).
    pub fn write_outcome_unknown(&self) -> bool {
        match self {
            Error::Timeout { .. } | Error::Transport { .. } => true,
            Error::Api { status, .. } => *status >= 500,
            // A success answer that could not be read: the write happened.
            Error::Decode { status, .. } => (200..300).contains(status),
            _ => false,
        }
    }
}

/// Replaces every occurrence of each secret in `text` and truncates it to [`MAX_MESSAGE_CHARS`].
/// Markup (a proxy's HTML page passed off as a message) is not quoted at all, and control
/// characters and runs of whitespace become one space, so a message stays one short line.
pub(crate) fn scrub(text: &str, secrets: &[&str]) -> String {
    if looks_like_markup(text) {
        return "(an HTML page, not quoted)".to_owned();
    }
    let mut scrubbed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    scrubbed.retain(|c| !c.is_control());
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        scrubbed = scrubbed.replace(secret, "<redacted>");
    }
    truncate_chars(&scrubbed, MAX_MESSAGE_CHARS)
}

/// Whether `text` holds an HTML or XML tag (`<x`, `</x` or `<!`).
fn looks_like_markup(text: &str) -> bool {
    text.as_bytes().windows(2).any(|pair| {
        pair[0] == b'<' && (pair[1].is_ascii_alphabetic() || pair[1] == b'/' || pair[1] == b'!')
    })
}

/// Cuts `text` to at most `max` characters, marking the cut.
pub(crate) fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}…", &text[..cut]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16) -> Error {
        Error::Api {
            status,
            kind: "X".into(),
            message: String::new(),
            retry_after: None,
        }
    }

    #[test]
    fn classification_follows_the_status() {
        for transient in [408, 429, 500, 502, 503, 504] {
            assert!(api(transient).is_transient(), "{transient}");
        }
        for permanent in [400, 401, 403, 404, 405, 409, 413, 422] {
            assert!(!api(permanent).is_transient(), "{permanent}");
        }
        assert!(Error::UnstableList.is_transient());
        assert!(!Error::Config { reason: "x".into() }.is_transient());
    }

    #[test]
    fn an_unreadable_success_answer_means_the_write_happened() {
        let unreadable = Error::Decode {
            status: 201,
            reason: "x".into(),
        };
        assert!(unreadable.write_outcome_unknown());
        assert!(
            !Error::Decode {
                status: 400,
                reason: "x".into()
            }
            .write_outcome_unknown()
        );
    }

    #[test]
    fn only_ambiguous_failures_leave_a_write_outcome_unknown() {
        assert!(api(503).write_outcome_unknown());
        assert!(!api(429).write_outcome_unknown());
        assert!(!api(400).write_outcome_unknown());
    }

    #[test]
    fn scrub_removes_secrets_and_truncates() {
        let text = format!("bad password hunter2 for {}", "x".repeat(600));
        let scrubbed = scrub(&text, &["hunter2", ""]);
        assert!(!scrubbed.contains("hunter2"));
        assert!(scrubbed.starts_with("bad password <redacted> for"));
        assert_eq!(scrubbed.chars().count(), MAX_MESSAGE_CHARS + 1);
    }

    #[test]
    fn markup_is_never_quoted_and_a_message_stays_one_line() {
        let page = "<!DOCTYPE html><html><body>Bearer hunter2</body></html>";
        assert_eq!(scrub(page, &["hunter2"]), "(an HTML page, not quoted)");
        assert_eq!(scrub("a\n\tb  c\u{7}", &[]), "a b c");
        assert_eq!(scrub("port < 65536", &[]), "port < 65536");
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate_chars("ééé", 2), "éé…");
        assert_eq!(truncate_chars("ab", 2), "ab");
    }
}
