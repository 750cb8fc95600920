//! The pure process state machine: Python supervisor's `Subprocess` life cycle
//! as `step(&mut Proc, Input, &Ctx) -> Vec<Action>`, with no IO, no clock reads and no
//! tokio. The runner and the orchestrator (the shell) feed it facts and requests and carry
//! out the actions; deadlines are data (`Proc::next_deadline`), fed back as `Input::Tick`.
//!
//! - [`state`]: `ProcessState` with Python's codes and names.
//! - [`policy`]: the per-process options the machine obeys.
//! - [`input`] / [`action`]: the boundary with the shell.
//! - [`machine`]: `Proc` and `step`, with the lifecycle inputs (`Ready`, `NotReady`,
//!   `Unhealthy`, `DependencyFailed`) and policies (`ready_timeout`, `exp_backoff`,
//!   `restart_limit`), which change nothing for a process that uses none of them.
//! - [`exit`]: `ExitStatus` and Python's `signame`.
//! - [`log`]: daemon log lines as data, with Python's wording.
//! - [`backoff`], [`autorecovery`]: pure arithmetic for retries and the autorecovery gate.
//! - [`lifecycle`]: whether a dependency is met, exponential restart backoff, the restart
//!   budget and the essential exit code, for the lifecycle options.

pub mod action;
pub mod autorecovery;
pub mod backoff;
pub mod exit;
pub mod input;
pub mod lifecycle;
pub mod log;
pub mod machine;
pub mod policy;
pub mod state;
mod timers;

#[cfg(test)]
mod tests;

pub use action::{Action, StartOutcome, StateChange, TimerKind, WaitOutcome};
pub use autorecovery::AutoRecovery;
pub use exit::{ExitStatus, signame};
pub use input::{Ctx, Input};
pub use lifecycle::{
    BudgetVerdict, DepStatus, DepView, ExpBackoff, FailureStreak, Need, RestartBudget,
    dependency_status, essential_exit_code,
};
pub use log::LogLine;
pub use machine::{Description, Proc, Refusal, step};
pub use policy::{AutoRestart, Policy};
pub use state::ProcessState;
