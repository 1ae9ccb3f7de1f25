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

    /// Whether this says the reconciled object itself is gone: a write to it answered 404 naming
    /// it (`plural`, `name`), as when it was deleted while the reconcile ran or while a stale
    /// cache still held it (a watch cut off). Nothing is left to retry then.
    pub fn is_gone(&self, plural: &str, name: &str) -> bool {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(error) = cause {
            if let Some(kube::Error::Api(status)) = error.downcast_ref::<kube::Error>() {
                return status.code == 404
                    && status
                        .details
                        .as_ref()
                        .is_some_and(|d| d.kind == plural && d.name == name);
            }
            cause = error.source();
        }
        false
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

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn not_found(kind: &str, name: &str) -> kube::Error {
        let status = serde_json::json!({
            "status": "Failure", "code": 404, "reason": "NotFound",
            "details": {"name": name, "kind": kind}
        });
        kube::Error::Api(Box::new(serde_json::from_value(status).expect("a Status")))
    }

    #[test]
    fn only_a_404_naming_the_object_itself_says_it_is_gone() {
        let status_write = Error::kube("write status")(not_found("integrations", "broker"));
        assert!(status_write.is_gone("integrations", "broker"));
        assert!(!status_write.is_gone("integrations", "other"));
        let finalizer = Error::Finalizer(Box::new(
            kube::runtime::finalizer::Error::RemoveFinalizer(not_found("integrations", "broker")),
        ));
        assert!(finalizer.is_gone("integrations", "broker"));
        let application =
            Error::kube("read the LosantApplication")(not_found("losantapplications", "broker"));
        assert!(
            !application.is_gone("integrations", "broker"),
            "another object"
        );
        let unavailable = Error::kube("write status")(kube::Error::Api(
            Status::failure("unavailable", "ServiceUnavailable")
                .with_code(503)
                .boxed(),
        ));
        assert!(!unavailable.is_gone("integrations", "broker"));
    }
}
