//! The end-to-end tests, one binary: the real API server (`scripts/control-plane.sh up`), the
//! real `losant-operator` and `losant-emulator` binaries as processes, driven by kubectl through
//! the test kit (`losant_operator::testkit`). Each test skips itself unless `LOSANT_E2E=1`.
//!
//! One module per concern; run one with a filter, e.g. `cargo nextest run --test e2e crds::`.

mod audit;
mod crds;
mod deletion;
mod export;
mod faults;
mod hostile;
mod hostile_losant;
mod leaks;
mod modes;
mod operator;
mod ops;
mod plan;
mod restarts;
mod safety;
mod survive;
mod tenancy;
#[path = "../test_ca/mod.rs"]
mod test_ca;
