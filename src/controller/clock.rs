//! The wall clock of the controllers, injectable so that tests decide what time it is.
//!
//! A reconcile reads it once, at its start, and hands the reading to every step: status times,
//! a pending create's grace period and a refusal's re-check all count to that moment. (Reading
//! at the start is the safe side for the grace period: a create looks younger, so the operator
//! waits a little longer before concluding that it did not happen.)

use std::sync::Arc;

use jiff::Timestamp;

/// Where the controllers get the time from.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> Timestamp + Send + Sync>);

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self(Arc::new(Timestamp::now))
    }

    /// A clock that always says `at` (for tests).
    pub fn fixed(at: Timestamp) -> Self {
        Self(Arc::new(move || at))
    }

    /// What time it is.
    pub fn now(&self) -> Timestamp {
        (self.0)()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock({})", self.now())
    }
}
