//! A hook through which the client reports every HTTP attempt it makes, so an operator can count
//! requests without this module knowing anything about metrics (dependencies point one way:
//! `losant` ← the code that implements the hook).

/// Told about every attempt the client makes to Losant, including each retry.
///
/// # Contract
/// - `operation` is one of a fixed set of names (`list`, `create`, `get`, `patch`, `delete`), so
///   implementations may use it as a bounded metric label.
/// - `status` is the HTTP status of the answer, or `None` when there was none (connect error,
///   timeout, dropped connection).
/// - `retried` is true when this attempt is a retry of an earlier attempt of the same call.
/// - `observe` is called on the request path: it must be cheap and must not block.
pub trait RequestObserver: Send + Sync + std::fmt::Debug {
    /// Records one attempt.
    fn observe(&self, operation: &'static str, status: Option<u16>, retried: bool);
}
