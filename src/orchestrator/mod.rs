//! The orchestrator: the one actor that owns all mutable daemon state (process table,
//! autorecovery count, config snapshot, waiters, lifecycle). Not fully built yet.

pub mod describe;
pub mod names;
