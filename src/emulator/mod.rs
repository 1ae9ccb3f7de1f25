//! Losant API emulator (being written).
