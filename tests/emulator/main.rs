//! The Losant API emulator's tests, one binary: in-process (`emulator::spawn`) and as the
//! `losant-emulator` binary, over HTTP and HTTPS, and its validator against the upstream schemas.

mod binary;
mod common;
mod connection;
mod http;
mod knobs;
mod list;
mod persistence;
mod schema_agreement;
#[path = "../test_ca/mod.rs"]
mod test_ca;
mod tls;
