//! End-to-end tests: the real binary, real processes, real sockets.

// Tests measure their own deadlines; the clock rule is for the product's code.
#![allow(clippy::disallowed_methods)]

mod cli;
mod config;
mod ctl;
mod ctl_oracle;
mod daemon;
mod events;
mod faults;
mod lifecycle;
mod liveness;
mod observe;
mod oracle;
mod rpc;
mod security;
mod shell;
mod soak;
mod support;
mod tree;
mod web;
