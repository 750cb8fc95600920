//! Unit tests of the orchestrator with a fake shell: scripts of facts, requests and
//! signals, and the transcript of runner commands, log lines and replies they produce.

mod autorecovery;
mod boot;
mod control;
mod harness;
mod lifecycle;
mod reload;
mod run_loop;
mod shutdown;
mod stats;
mod waiters;
