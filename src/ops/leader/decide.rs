//! The pure core of leader election: what a replica does given the lease records it observed and
//! when (on its own monotonic clock). No I/O here.
//!
//! Expiry is judged the way client-go judges it: a replica never compares the lease's
//! `renewTime` with its own wall clock. It remembers *when it last saw the record change*, and
//! the lease has expired once `leaseDurationSeconds` have passed on its own monotonic clock
//! without a change. Clock skew between nodes therefore cannot make a standby take a live lease,
//! and a wall clock stepping on either node does not matter.
//!
//! One refinement: a standby polls, so it sees a renew up to one poll (plus a read) after it
//! happened. Measured from its sighting, the full lease duration would let a dead leader's claim
//! outlive it by that lag. The observer therefore subtracts an *observation allowance* (the
//! polling lag it can have) from the lease duration, so a standby takes over within the lease
//! duration of the leader's last renew — hence of its death.
//!
//! # Guarantees
//! - A standby takes over no sooner than `lease_duration - allowance` after it saw the holder
//!   renew, and it saw that renew no earlier than the renew was written.
//! - A leader counts its renew deadline from the *start* of its last successful renew, which is
//!   no later than any other replica saw that renew; with
//!   `renew_deadline < lease_duration - allowance` it stops before any standby may take over.

use std::time::Duration;

use jiff::Timestamp;
use tokio::time::Instant;

/// What a Lease says, reduced to what the election reads and writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseRecord {
    /// Who holds it; `None` (or empty) means nobody (released).
    pub holder: Option<String>,
    /// How long the holder's claim lasts after each renew.
    pub lease_duration: Duration,
    /// When the current holder acquired it (informational).
    pub acquire_time: Option<Timestamp>,
    /// When the holder last renewed (informational: never compared with a local clock).
    pub renew_time: Option<Timestamp>,
    /// How many times the lease changed hands.
    pub transitions: i32,
}

impl LeaseRecord {
    /// The holder, with an empty string read as nobody.
    pub fn holder(&self) -> Option<&str> {
        self.holder.as_deref().filter(|h| !h.is_empty())
    }
}

/// What to do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// We hold the lease: write a fresh `renewTime`.
    Renew,
    /// Nobody holds it, or the holder's claim expired by our observation: take it.
    Acquire,
    /// Someone else holds a live claim: wait.
    StandBy {
        /// The holder.
        holder: String,
        /// How long until the claim expires unless it is renewed (by our observation).
        expires_in: Duration,
    },
}

/// The last lease record seen, and when (monotonic) it was first seen in that form.
#[derive(Clone, Debug, Default)]
pub struct Observer {
    last: Option<(LeaseRecord, Instant)>,
    allowance: Duration,
}

impl Observer {
    /// An observer that may see a renew up to `allowance` after it happened (see the module
    /// docs); `Observer::default()` allows nothing, as client-go does.
    pub fn with_allowance(allowance: Duration) -> Self {
        Self {
            last: None,
            allowance,
        }
    }

    /// Records that the lease read `record` at `now`. The observation time moves only when the
    /// record differs from the previous one: an unchanged record keeps ageing.
    pub fn observe(&mut self, record: LeaseRecord, now: Instant) {
        match &self.last {
            Some((previous, _)) if *previous == record => {}
            _ => self.last = Some((record, now)),
        }
    }

    /// The last record seen.
    pub fn record(&self) -> Option<&LeaseRecord> {
        self.last.as_ref().map(|(record, _)| record)
    }

    /// What replica `me` should do at `now`.
    pub fn decide(&self, me: &str, now: Instant) -> Decision {
        let Some((record, seen)) = &self.last else {
            return Decision::Acquire;
        };
        match record.holder() {
            None => Decision::Acquire,
            Some(holder) if holder == me => Decision::Renew,
            Some(holder) => {
                let expires = *seen + record.lease_duration.saturating_sub(self.allowance);
                if now >= expires {
                    Decision::Acquire
                } else {
                    Decision::StandBy {
                        holder: holder.to_owned(),
                        expires_in: expires - now,
                    }
                }
            }
        }
    }
}

/// The record `me` writes after deciding `decision` (which must not be `StandBy`) on
/// `previous`, at wall time `wall_now`, claiming `lease_duration`.
pub fn next_record(
    previous: Option<&LeaseRecord>,
    me: &str,
    decision: &Decision,
    wall_now: Timestamp,
    lease_duration: Duration,
) -> LeaseRecord {
    let transitions = previous.map_or(0, |p| p.transitions);
    match (decision, previous) {
        (Decision::Renew, Some(previous)) => LeaseRecord {
            holder: Some(me.to_owned()),
            lease_duration,
            acquire_time: previous.acquire_time.or(Some(wall_now)),
            renew_time: Some(wall_now),
            transitions,
        },
        _ => {
            // A change of hands counts as a transition; a first acquisition or taking back our
            // own released lease does not change who led last.
            let changed_hands = previous
                .and_then(LeaseRecord::holder)
                .is_some_and(|holder| holder != me);
            LeaseRecord {
                holder: Some(me.to_owned()),
                lease_duration,
                acquire_time: Some(wall_now),
                renew_time: Some(wall_now),
                transitions: transitions.saturating_add(i32::from(changed_hands)),
            }
        }
    }
}

/// The record a leader writes to step down: nobody holds it, and its one-second duration lets a
/// standby that missed the release still take over quickly.
pub fn released(previous: &LeaseRecord, wall_now: Timestamp) -> LeaseRecord {
    LeaseRecord {
        holder: None,
        lease_duration: Duration::from_secs(1),
        acquire_time: previous.acquire_time,
        renew_time: Some(wall_now),
        transitions: previous.transitions,
    }
}

/// Whether a leader whose last successful renew started at `last_renew` must stop at `now`.
pub fn renew_deadline_passed(last_renew: Instant, now: Instant, renew_deadline: Duration) -> bool {
    now >= last_renew + renew_deadline
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_secs(15);

    fn held_by(holder: &str, renewed_at_second: i64) -> LeaseRecord {
        LeaseRecord {
            holder: Some(holder.to_owned()),
            lease_duration: LEASE,
            acquire_time: Some(Timestamp::UNIX_EPOCH),
            renew_time: Some(Timestamp::from_second(renewed_at_second).expect("valid second")),
            transitions: 3,
        }
    }

    #[test]
    fn nothing_observed_means_acquire() {
        let observer = Observer::default();
        assert_eq!(observer.decide("a", Instant::now()), Decision::Acquire);
    }

    #[tokio::test(start_paused = true)]
    async fn a_live_holder_is_waited_for_one_lease_duration_from_our_first_sight() {
        let mut observer = Observer::default();
        // The record claims a renew in 1970: a skewed wall clock must not make it look expired.
        observer.observe(held_by("b", 0), Instant::now());
        assert_eq!(
            observer.decide("a", Instant::now()),
            Decision::StandBy {
                holder: "b".into(),
                expires_in: LEASE
            }
        );
        tokio::time::advance(LEASE - Duration::from_millis(1)).await;
        observer.observe(held_by("b", 0), Instant::now());
        assert!(matches!(
            observer.decide("a", Instant::now()),
            Decision::StandBy { .. }
        ));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(observer.decide("a", Instant::now()), Decision::Acquire);
    }

    #[tokio::test(start_paused = true)]
    async fn an_allowance_for_polling_lag_shortens_the_wait_by_that_much() {
        let allowance = Duration::from_secs(4);
        let mut observer = Observer::with_allowance(allowance);
        observer.observe(held_by("b", 0), Instant::now());
        assert_eq!(
            observer.decide("a", Instant::now()),
            Decision::StandBy {
                holder: "b".into(),
                expires_in: LEASE - allowance
            }
        );
        tokio::time::advance(LEASE - allowance).await;
        assert_eq!(observer.decide("a", Instant::now()), Decision::Acquire);
        // An allowance longer than the lease never underflows: the claim is simply over.
        let mut eager = Observer::with_allowance(LEASE * 2);
        eager.observe(held_by("b", 0), Instant::now());
        assert_eq!(eager.decide("a", Instant::now()), Decision::Acquire);
    }

    #[tokio::test(start_paused = true)]
    async fn every_renew_restarts_the_expiry() {
        let mut observer = Observer::default();
        observer.observe(held_by("b", 100), Instant::now());
        tokio::time::advance(Duration::from_secs(10)).await;
        // A renew with a wall time *earlier* than before (the holder's clock stepped back) is
        // still a change, and still proves the holder alive.
        observer.observe(held_by("b", 50), Instant::now());
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(matches!(
            observer.decide("a", Instant::now()),
            Decision::StandBy { expires_in, .. } if expires_in == Duration::from_secs(5)
        ));
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(observer.decide("a", Instant::now()), Decision::Acquire);
    }

    #[tokio::test(start_paused = true)]
    async fn our_own_lease_is_renewed_and_a_released_one_is_taken_at_once() {
        let mut observer = Observer::default();
        observer.observe(held_by("a", 0), Instant::now());
        assert_eq!(observer.decide("a", Instant::now()), Decision::Renew);
        let released = released(&held_by("b", 0), Timestamp::UNIX_EPOCH);
        observer.observe(released, Instant::now());
        assert_eq!(observer.decide("a", Instant::now()), Decision::Acquire);
        let mut empty = held_by("", 0);
        empty.lease_duration = Duration::from_secs(3600);
        observer.observe(empty, Instant::now());
        assert_eq!(observer.decide("a", Instant::now()), Decision::Acquire);
    }

    #[test]
    fn records_written() {
        let now = Timestamp::from_second(1_000).expect("valid");
        let previous = held_by("b", 0);
        let taken = next_record(Some(&previous), "a", &Decision::Acquire, now, LEASE);
        assert_eq!(taken.holder(), Some("a"));
        assert_eq!(taken.transitions, 4, "taking over from b is a transition");
        assert_eq!(taken.acquire_time, Some(now));

        let renewed = next_record(Some(&taken), "a", &Decision::Renew, now, LEASE);
        assert_eq!(renewed.transitions, 4);
        assert_eq!(renewed.acquire_time, Some(now));
        assert_eq!(renewed.renew_time, Some(now));

        let first = next_record(None, "a", &Decision::Acquire, now, LEASE);
        assert_eq!(first.transitions, 0);

        let stepped_down = released(&renewed, now);
        assert_eq!(stepped_down.holder(), None);
        assert_eq!(stepped_down.lease_duration, Duration::from_secs(1));
        let retaken = next_record(Some(&stepped_down), "a", &Decision::Acquire, now, LEASE);
        assert_eq!(retaken.transitions, 4, "nobody held it in between");
    }

    #[tokio::test(start_paused = true)]
    async fn a_leader_stops_at_its_renew_deadline_before_anyone_may_take_over() {
        let renew_deadline = Duration::from_secs(10);
        let last_renew = Instant::now();
        // A standby sees that renew no earlier than it started.
        let mut standby = Observer::default();
        standby.observe(held_by("a", 0), Instant::now());
        tokio::time::advance(renew_deadline - Duration::from_millis(1)).await;
        assert!(!renew_deadline_passed(
            last_renew,
            Instant::now(),
            renew_deadline
        ));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(renew_deadline_passed(
            last_renew,
            Instant::now(),
            renew_deadline
        ));
        assert!(matches!(
            standby.decide("b", Instant::now()),
            Decision::StandBy { .. }
        ));
    }
}
