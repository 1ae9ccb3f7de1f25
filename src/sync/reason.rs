//! The status vocabulary, typed: condition reasons, types and statuses. Control flow matches on
//! these; only [`Reason::as_str`] and friends spell the wire strings, which tests, `kubectl`
//! columns and the Argo CD health check read, so they never change.

use std::fmt;
use std::str::FromStr;

/// Defines [`Reason`], with its wire strings, [`Reason::ALL`] and the two-way mapping.
macro_rules! reasons {
    ($($(#[$doc:meta])* $variant:ident => $wire:literal,)+) => {
        /// Why a condition is what it is (CamelCase on the wire).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Reason {
            $($(#[$doc])* $variant,)+
        }

        impl Reason {
            /// Every reason.
            pub const ALL: &[Reason] = &[$(Reason::$variant,)+];

            /// The wire string.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Reason::$variant => $wire,)+
                }
            }
        }

        impl FromStr for Reason {
            type Err = UnknownReason;

            fn from_str(text: &str) -> Result<Self, UnknownReason> {
                match text {
                    $($wire => Ok(Reason::$variant),)+
                    _ => Err(UnknownReason),
                }
            }
        }
    };
}

reasons! {
    /// Integration: the remote matches the spec.
    Synced => "Synced",
    /// LosantApplication: the token works against the application.
    Verified => "Verified",
    /// The `LosantApplication` is not verified yet: a normal wait, not a failure.
    WaitingForApplication => "WaitingForApplication",
    /// The `LosantApplication` object, or the application in Losant, does not exist.
    ApplicationNotFound => "ApplicationNotFound",
    /// The `LosantApplication` is stalled.
    ApplicationNotReady => "ApplicationNotReady",
    /// An earlier create may still show up in Losant's lists.
    CreatePending => "CreatePending",
    /// A step found nothing to work on; the next try starts over.
    Retrying => "Retrying",
    /// An older object manages the same remote.
    ConflictingOwner => "ConflictingOwner",
    /// Several remotes carry the name.
    AmbiguousName => "AmbiguousName",
    /// A remote carries the name and adoption is not allowed.
    AlreadyExists => "AlreadyExists",
    /// The spec changes a field Losant cannot change.
    ImmutableField => "ImmutableField",
    /// The spec cannot become an integration.
    InvalidSpec => "InvalidSpec",
    /// Losant answered 403 for a call with a known scope.
    InsufficientScope => "InsufficientScope",
    /// Losant answered 401.
    Unauthorized => "Unauthorized",
    /// Losant answered 403.
    Forbidden => "Forbidden",
    /// Losant answered 404.
    NotFound => "NotFound",
    /// Losant answered 400, or a redirect (never followed).
    LosantRejected => "LosantRejected",
    /// Losant answered with another error status.
    LosantError => "LosantError",
    /// The request failed without an answer, for good.
    LosantClientError => "LosantClientError",
    /// Losant is unreachable or overloaded for now.
    LosantUnavailable => "LosantUnavailable",
    /// Deletion needs a change before it can finish.
    DeletionBlocked => "DeletionBlocked",
    /// Deletion is under way.
    Deleting => "Deleting",
    /// A referenced Secret does not exist.
    SecretNotFound => "SecretNotFound",
    /// A referenced Secret key is not UTF-8 text.
    SecretKeyInvalid => "SecretKeyInvalid",
    /// A referenced Secret key does not exist.
    SecretKeyNotFound => "SecretKeyNotFound",
    /// The API URL's host is not allowed by the operator's policy.
    ApiHostNotAllowed => "ApiHostNotAllowed",
    /// The Losant client cannot be built (e.g. a bad CA bundle).
    InvalidClientConfig => "InvalidClientConfig",
    /// Losant reports the integration connected.
    Connected => "Connected",
    /// Losant reports the integration disconnected.
    Disconnected => "Disconnected",
    /// The integration is disabled: it does not connect.
    Disabled => "Disabled",
    /// Losant has not reported a connection (or the lack of one) yet.
    NotReported => "NotReported",
    /// `losant.io/paused` is set: the operator does not call Losant for this object.
    Paused => "Paused",
    /// `ObserveOnly`: the remote matches the spec.
    Observed => "Observed",
    /// `ObserveOnly`: the remote differs from the spec (and the operator leaves it so).
    DriftDetected => "DriftDetected",
    /// The object cannot be read by this version of the operator (reported, never reconciled).
    Undecodable => "Undecodable",
    /// A condition that is not `True` (`Reconciling` or `Stalled` at rest).
    None => "None",
}

/// A string that is not a reason the operator writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownReason;

impl fmt::Display for UnknownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a condition reason the operator writes")
    }
}

impl std::error::Error for UnknownReason {}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When to look again after a failure with a reason, beyond its transient/permanent kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requeue {
    /// Transient: backoff (or Losant's Retry-After); permanent: the stalled re-check.
    Ordinary,
    /// A wait the operator chose itself (a pending create): after that wait, not on a growing
    /// backoff.
    AsAsked,
    /// Permanent, yet it may clear at any time (a rival may go away): look again soon.
    Soon,
}

impl Reason {
    /// Losant refused a write for good (a bad or under-scoped token, a rejected body): not tried
    /// again before the stalled re-check, however often the object is woken.
    pub fn is_refusal(self) -> bool {
        matches!(
            self,
            Reason::InsufficientScope
                | Reason::LosantRejected
                | Reason::Forbidden
                | Reason::Unauthorized
        )
    }

    /// When to look again after a failure for this reason.
    pub fn requeue(self) -> Requeue {
        match self {
            Reason::CreatePending => Requeue::AsAsked,
            Reason::ConflictingOwner => Requeue::Soon,
            _ => Requeue::Ordinary,
        }
    }
}

/// Defines a small wire enum with `as_str`, `ALL` and `Display`.
macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $wire:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            /// Every value.
            pub const ALL: &[$name] = &[$($name::$variant,)+];

            /// The wire string.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum! {
    /// Which condition (kstatus).
    ConditionType {
        /// The object is in the state its spec asks for.
        Ready => "Ready",
        /// Work is in progress (abnormal-true).
        Reconciling => "Reconciling",
        /// Progress is blocked by an error that needs a change to fix (abnormal-true).
        Stalled => "Stalled",
        /// Whether Losant reports the integration connected (independent of `Ready`).
        Connected => "Connected",
    }
}

wire_enum! {
    /// A condition's status.
    ConditionStatus {
        /// In force.
        True => "True",
        /// Not in force.
        False => "False",
        /// Not known (the operator never writes it; others may).
        Unknown => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every reason with its wire string, spelled out: a renamed string fails here.
    const WIRE: &[(Reason, &str)] = &[
        (Reason::Synced, "Synced"),
        (Reason::Verified, "Verified"),
        (Reason::WaitingForApplication, "WaitingForApplication"),
        (Reason::ApplicationNotFound, "ApplicationNotFound"),
        (Reason::ApplicationNotReady, "ApplicationNotReady"),
        (Reason::CreatePending, "CreatePending"),
        (Reason::Retrying, "Retrying"),
        (Reason::ConflictingOwner, "ConflictingOwner"),
        (Reason::AmbiguousName, "AmbiguousName"),
        (Reason::AlreadyExists, "AlreadyExists"),
        (Reason::ImmutableField, "ImmutableField"),
        (Reason::InvalidSpec, "InvalidSpec"),
        (Reason::InsufficientScope, "InsufficientScope"),
        (Reason::Unauthorized, "Unauthorized"),
        (Reason::Forbidden, "Forbidden"),
        (Reason::NotFound, "NotFound"),
        (Reason::LosantRejected, "LosantRejected"),
        (Reason::LosantError, "LosantError"),
        (Reason::LosantClientError, "LosantClientError"),
        (Reason::LosantUnavailable, "LosantUnavailable"),
        (Reason::DeletionBlocked, "DeletionBlocked"),
        (Reason::Deleting, "Deleting"),
        (Reason::SecretNotFound, "SecretNotFound"),
        (Reason::SecretKeyInvalid, "SecretKeyInvalid"),
        (Reason::SecretKeyNotFound, "SecretKeyNotFound"),
        (Reason::ApiHostNotAllowed, "ApiHostNotAllowed"),
        (Reason::InvalidClientConfig, "InvalidClientConfig"),
        (Reason::Connected, "Connected"),
        (Reason::Disconnected, "Disconnected"),
        (Reason::Disabled, "Disabled"),
        (Reason::NotReported, "NotReported"),
        (Reason::Paused, "Paused"),
        (Reason::Observed, "Observed"),
        (Reason::DriftDetected, "DriftDetected"),
        (Reason::Undecodable, "Undecodable"),
        (Reason::None, "None"),
    ];

    #[test]
    fn every_reason_has_its_wire_string_and_reads_back() {
        assert_eq!(WIRE.len(), Reason::ALL.len());
        for &(reason, wire) in WIRE {
            assert_eq!(reason.as_str(), wire);
            assert_eq!(reason.to_string(), wire);
            assert_eq!(wire.parse::<Reason>(), Ok(reason));
        }
        for &reason in Reason::ALL {
            assert!(WIRE.iter().any(|&(r, _)| r == reason), "{reason:?}");
        }
    }

    #[test]
    fn wire_strings_are_unique_camel_case_words() {
        let mut seen = std::collections::BTreeSet::new();
        for reason in Reason::ALL {
            let wire = reason.as_str();
            assert!(seen.insert(wire), "{wire} twice");
            assert!(wire.starts_with(|c: char| c.is_ascii_uppercase()), "{wire}");
            assert!(wire.bytes().all(|b| b.is_ascii_alphanumeric()), "{wire}");
        }
    }

    #[test]
    fn strings_that_are_not_reasons_do_not_parse() {
        for text in ["", "synced", "Synced ", "Other", "Ready", "True"] {
            assert_eq!(text.parse::<Reason>(), Err(UnknownReason), "{text:?}");
        }
    }

    #[test]
    fn exactly_the_four_refusals_are_refusals() {
        let refusals: Vec<&str> = Reason::ALL
            .iter()
            .filter(|r| r.is_refusal())
            .map(|r| r.as_str())
            .collect();
        assert_eq!(
            refusals,
            [
                "InsufficientScope",
                "Unauthorized",
                "Forbidden",
                "LosantRejected"
            ]
        );
    }

    /// Spelled out per reason, so a new reason must say how it is requeued.
    fn expected_requeue(reason: Reason) -> Requeue {
        use Reason::*;
        match reason {
            CreatePending => Requeue::AsAsked,
            ConflictingOwner => Requeue::Soon,
            Synced
            | Verified
            | WaitingForApplication
            | ApplicationNotFound
            | ApplicationNotReady
            | Retrying
            | AmbiguousName
            | AlreadyExists
            | ImmutableField
            | InvalidSpec
            | InsufficientScope
            | Unauthorized
            | Forbidden
            | NotFound
            | LosantRejected
            | LosantError
            | LosantClientError
            | LosantUnavailable
            | DeletionBlocked
            | Deleting
            | SecretNotFound
            | SecretKeyInvalid
            | SecretKeyNotFound
            | ApiHostNotAllowed
            | InvalidClientConfig
            | Connected
            | Disconnected
            | Disabled
            | NotReported
            | Paused
            | Observed
            | DriftDetected
            | Undecodable
            | None => Requeue::Ordinary,
        }
    }

    #[test]
    fn every_reason_has_its_requeue_class() {
        for &reason in Reason::ALL {
            assert_eq!(reason.requeue(), expected_requeue(reason), "{reason}");
        }
    }

    #[test]
    fn condition_types_and_statuses_keep_their_wire_strings() {
        let types: Vec<&str> = ConditionType::ALL.iter().map(|t| t.as_str()).collect();
        assert_eq!(types, ["Ready", "Reconciling", "Stalled", "Connected"]);
        let statuses: Vec<String> = ConditionStatus::ALL.iter().map(|s| s.to_string()).collect();
        assert_eq!(statuses, ["True", "False", "Unknown"]);
    }
}
