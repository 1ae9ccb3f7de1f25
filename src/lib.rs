//! losant-operator: a Kubernetes operator for Losant integrations.
//!
//! The crate is split so dependencies point one way:
//! - [`losant`]: the REST client and wire types (knows nothing of Kubernetes);
//! - [`controller`]: the kube-runtime wiring (watches, reconcilers, status, events);
//! - [`crd`]: the Kubernetes API types and their CRDs;
//! - [`sync`]: pure reconcile logic (desired state vs. remote → a plan);
//! - [`emulator`]: a local emulator of the Losant integrations API, for tests, demos and benches;
//! - [`gitops`]: command-line tools next to the operator (`plan`, `export`), on the layers above;
//! - [`flags`]: command-line values the commands share (durations);
//! - [`ops`]: metrics, health endpoints, leader election, the CRD schema check and shutdown;
//! - `testkit` (feature `testkit`): the end-to-end test kit, for the tests and the benchmark only.

pub mod controller;
pub mod crd;
pub mod emulator;
pub mod failpoint;
pub mod flags;
pub mod gitops;
pub mod losant;
pub mod ops;
pub mod sync;
pub mod telemetry;
#[cfg(feature = "testkit")]
pub mod testkit;
