//! End-to-end tests: the real binary, real processes, real sockets.

mod cli;
mod config;
mod support;
