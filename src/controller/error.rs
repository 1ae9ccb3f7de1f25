//! Errors of the controller's own I/O (the Kubernetes API). Problems with the spec, Secrets or
//! Losant do not end up here: they become conditions ([`super::outcome::Failure`]).

/// A Kubernetes API call failed; the reconcile is retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A call to the Kubernetes API failed.
    #[error("failed to {action}")]
    Kube {
        /// What the operator was doing.
        action: &'static str,
        /// The failure.
        #[source]
        source: kube::Error,
    },
    /// The finalizer helper failed.
    #[error("finalizer handling failed")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    /// The object has no namespace (impossible for these namespaced kinds).
    #[error("object has no namespace")]
    MissingNamespace,
    /// A patch the operator built did not parse (a bug).
    #[error("internal error: an invalid JSON patch was built")]
    InvalidPatch,
    /// The remote could not be deleted yet; the finalizer stays (the condition says why).
    #[error("deletion of the remote integration is blocked")]
    DeletionBlocked {
        /// When to try again: soon for a transient failure, slowly for a permanent one.
        retry_in: std::time::Duration,
    },
}

impl Error {
    /// The retry delay this error asks for, if it asks for one (a blocked deletion wrapped by the
    /// finalizer helper).
    pub fn requested_retry(&self) -> Option<std::time::Duration> {
        match self {
            Error::DeletionBlocked { retry_in } => Some(*retry_in),
            Error::Finalizer(inner) => match inner.as_ref() {
                kube::runtime::finalizer::Error::CleanupFailed(error)
                | kube::runtime::finalizer::Error::ApplyFailed(error) => error.requested_retry(),
                _ => None,
            },
            _ => None,
        }
    }

    /// Builds a [`Error::Kube`] for `action`.
    pub fn kube(action: &'static str) -> impl FnOnce(kube::Error) -> Error {
        move |source| Error::Kube { action, source }
    }

    /// A bounded label for metrics and logs (the variant name).
    pub fn category(&self) -> &'static str {
        match self {
            Error::Kube { .. } => "KubeApi",
            Error::Finalizer(_) => "Finalizer",
            Error::MissingNamespace => "MissingNamespace",
            Error::DeletionBlocked { .. } => "DeletionBlocked",
            Error::InvalidPatch => "InvalidPatch",
        }
    }
}
