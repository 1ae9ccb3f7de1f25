//! Bearer tokens and Losant scopes: which token may perform which action.

use std::collections::{HashMap, HashSet};
use std::fmt;

use axum::http::{HeaderMap, header};

use super::config::TokenSpec;
use super::error::ApiError;

/// The five API actions, each with its own accepted scopes (README §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    List,
    Create,
    Get,
    Patch,
    Delete,
}

/// Account-wide scopes that allow reading (list, get): exactly the contract's read set
/// (README §3). The only `.bounded` variants the contract names are those of the three full
/// scopes; there is no `.cli` variant.
const READ_WIDE: &[&str] = &[
    "all.Application",
    "all.Application.bounded",
    "all.Application.read",
    "all.Organization",
    "all.Organization.bounded",
    "all.Organization.read",
    "all.User",
    "all.User.bounded",
    "all.User.read",
];

/// Account-wide scopes that allow writing (create, patch, delete), per README §3.
const WRITE_WIDE: &[&str] = &[
    "all.Application",
    "all.Application.bounded",
    "all.Organization",
    "all.Organization.bounded",
    "all.User",
    "all.User.bounded",
];

impl Action {
    /// The resource-specific scopes (collection scopes are plural, item scopes singular).
    fn own_scopes(self) -> [&'static str; 2] {
        match self {
            Self::List => ["integrations.*", "integrations.get"],
            Self::Create => ["integrations.*", "integrations.post"],
            Self::Get => ["integration.*", "integration.get"],
            Self::Patch => ["integration.*", "integration.patch"],
            Self::Delete => ["integration.*", "integration.delete"],
        }
    }

    fn wide_scopes(self) -> &'static [&'static str] {
        match self {
            Self::List | Self::Get => READ_WIDE,
            Self::Create | Self::Patch | Self::Delete => WRITE_WIDE,
        }
    }

    /// True when holding `scope` is enough for this action.
    pub fn allows(self, scope: &str) -> bool {
        self.own_scopes().contains(&scope) || self.wide_scopes().contains(&scope)
    }
}

/// The accepted tokens; `None` scopes mean full access.
#[derive(Default)]
pub struct Tokens {
    by_token: HashMap<String, Option<HashSet<String>>>,
}

/// Shows how many tokens there are, never the tokens themselves.
impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("count", &self.by_token.len())
            .finish_non_exhaustive()
    }
}

impl Tokens {
    pub fn new(specs: &[TokenSpec]) -> Self {
        let by_token = specs
            .iter()
            .map(|s| {
                let scopes = s.scopes.as_ref().map(|v| v.iter().cloned().collect());
                (s.token.clone(), scopes)
            })
            .collect();
        Self { by_token }
    }

    /// Returns the caller's token when it is known and may perform `action`.
    pub fn authorize<'h>(
        &self,
        headers: &'h HeaderMap,
        action: Action,
    ) -> Result<&'h str, ApiError> {
        let token = bearer(headers).ok_or(ApiError::Unauthorized)?;
        match self.by_token.get(token) {
            None => Err(ApiError::Unauthorized),
            Some(None) => Ok(token),
            Some(Some(scopes)) if scopes.iter().any(|s| action.allows(s)) => Ok(token),
            Some(Some(_)) => Err(ApiError::Forbidden),
        }
    }
}

/// Extracts the token from `Authorization: Bearer TOKEN` (scheme matched case-insensitively).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn scopes_per_action() {
        let tokens = Tokens::new(&[
            TokenSpec::full("full"),
            TokenSpec::scoped("lister", &["integrations.get"]),
            TokenSpec::scoped("reader", &["all.Application.read"]),
        ]);
        let full = headers("Bearer full");
        let lister = headers("Bearer lister");
        let reader = headers("bearer reader");
        assert!(tokens.authorize(&full, Action::Delete).is_ok());
        assert!(tokens.authorize(&lister, Action::List).is_ok());
        assert!(matches!(
            tokens.authorize(&lister, Action::Create),
            Err(ApiError::Forbidden)
        ));
        assert!(matches!(
            tokens.authorize(&lister, Action::Get),
            Err(ApiError::Forbidden)
        ));
        assert!(tokens.authorize(&reader, Action::Get).is_ok());
        assert!(matches!(
            tokens.authorize(&reader, Action::Patch),
            Err(ApiError::Forbidden)
        ));
        assert!(matches!(
            tokens.authorize(&headers("Bearer nope"), Action::List),
            Err(ApiError::Unauthorized)
        ));
        assert!(matches!(
            tokens.authorize(&HeaderMap::new(), Action::List),
            Err(ApiError::Unauthorized)
        ));
    }

    /// Every scope anyone might try, so "exactly these" is checked against all of them.
    const CANDIDATES: &[&str] = &[
        "all.Application",
        "all.Application.bounded",
        "all.Application.read",
        "all.Application.read.bounded",
        "all.Application.cli",
        "all.Organization",
        "all.Organization.bounded",
        "all.Organization.read",
        "all.Organization.cli",
        "all.User",
        "all.User.bounded",
        "all.User.read",
        "all.User.cli",
        "all.Device",
        "integrations.*",
        "integrations.get",
        "integrations.post",
        "integration.*",
        "integration.get",
        "integration.patch",
        "integration.delete",
        "Integrations.get",
        "",
    ];

    #[test]
    fn scope_sets_are_exactly_the_contract() {
        let read = [
            "all.Application",
            "all.Application.read",
            "all.Organization",
            "all.Organization.read",
            "all.User",
            "all.User.read",
            "all.Application.bounded",
            "all.Organization.bounded",
            "all.User.bounded",
        ];
        let write = [
            "all.Application",
            "all.Organization",
            "all.User",
            "all.Application.bounded",
            "all.Organization.bounded",
            "all.User.bounded",
        ];
        let cases: [(Action, &[&str], [&str; 2]); 5] = [
            (Action::List, &read, ["integrations.*", "integrations.get"]),
            (Action::Get, &read, ["integration.*", "integration.get"]),
            (
                Action::Create,
                &write,
                ["integrations.*", "integrations.post"],
            ),
            (
                Action::Patch,
                &write,
                ["integration.*", "integration.patch"],
            ),
            (
                Action::Delete,
                &write,
                ["integration.*", "integration.delete"],
            ),
        ];
        for (action, wide, own) in cases {
            let allowed: HashSet<&str> = CANDIDATES
                .iter()
                .copied()
                .filter(|s| action.allows(s))
                .collect();
            let expected: HashSet<&str> = wide.iter().copied().chain(own).collect();
            assert_eq!(allowed, expected, "{action:?}");
        }
    }

    #[test]
    fn debug_output_hides_tokens() {
        let tokens = Tokens::new(&[TokenSpec::full("s3cret-token")]);
        let shown = format!("{tokens:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
    }

    #[test]
    fn cli_scopes_are_refused() {
        for scope in ["all.Application.cli", "all.User.cli"] {
            let tokens = Tokens::new(&[TokenSpec::scoped("cli", &[scope])]);
            let h = headers("Bearer cli");
            for action in [
                Action::List,
                Action::Get,
                Action::Create,
                Action::Patch,
                Action::Delete,
            ] {
                assert!(
                    matches!(tokens.authorize(&h, action), Err(ApiError::Forbidden)),
                    "{scope} {action:?}"
                );
            }
        }
    }
}
