//! A drop-in replacement for Python supervisord 4.3.0.
//!
//! # Layout
//! - [`config`]: the supervisord configuration language, raw ini with file and line,
//!   interpolation, numprocs expansion, the validated typed model, and the daemon's flags.
//! - [`procsup`]: the pure process state machine (no IO, no clock, no tokio).
//! - [`orchestrator`]: the actor that owns every piece of mutable daemon state.
//! - [`runner`]: the per-process shell that executes `procsup` actions.
//! - [`sys`]: the only places that fork, wait, read the clock, or look up users.
//! - [`logio`]: rotating log writers, output pumps, log-reading offset rules.
//! - [`events`]: the supervisor 3.0 event types, listener pools and the listener protocol.
//! - [`listeners`]: the built-in event listeners (`--logger`, `--test-req-restart`).
//! - [`rpc`]: the HTTP server, JSON-RPC and XML-RPC; the only module that knows JSON/XML.
//! - [`ctl`]: supervisorctl, with byte-exact formatting.
//!
//! `ARCHITECTURE.md` at the top of the repository is the map.

pub mod bridge;
pub mod config;
pub mod ctl;
pub mod daemon;
pub mod events;
pub mod listeners;
pub mod logio;
pub mod orchestrator;
pub mod personality;
pub mod procsup;
pub mod pytext;
pub mod rpc;
pub mod runner;
pub mod sys;
pub mod wekastop;
