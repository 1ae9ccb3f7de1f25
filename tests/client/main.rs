//! The Losant REST client's tests, one binary: its contract, error paths and secrecy, against the
//! in-process emulator over real HTTP.

mod common;
mod connection;
mod contract;
mod faults;
mod hostile;
mod secrets;
