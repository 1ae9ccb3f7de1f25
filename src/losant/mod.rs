//! Losant REST client (being written).
