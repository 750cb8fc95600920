//! The orchestrator's seam to everything it does not own: starting a process's runner,
//! handing a runner a command, and reading the clock. The daemon uses [`TokioShell`]
//! (runner tasks, `sys::clock`); unit tests drive the actor with a fake that records the
//! commands and keeps a virtual clock.

use std::collections::HashMap;
use std::fmt;
use std::time::{Instant, SystemTime};

use tokio::sync::mpsc;

use crate::runner::{Fact, ProcId, Runner, RunnerCmd, RunnerSpec, Services};
use crate::sys::clock;

/// Why a command did not reach its runner (the runner is gone: its inbox is unbounded, so
/// that no command is ever dropped while it runs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undelivered(pub String);

impl fmt::Display for Undelivered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the orchestrator needs from the outside. Every method returns at once: the
/// orchestrator never waits on a runner.
pub trait Shell {
    /// Monotonic now, for deadlines.
    fn now(&self) -> Instant;
    /// Wall-clock now, for what users see.
    fn wall_now(&self) -> SystemTime;
    /// Starts the runner of a new process instance (`spec.id`).
    fn start_runner(&mut self, spec: RunnerSpec);
    /// Hands `cmd` to the runner of `id` without waiting.
    fn send(&mut self, id: ProcId, cmd: RunnerCmd) -> Result<(), Undelivered>;
    /// The process instance is gone from the table: tell its runner to end once its child
    /// is gone, and forget it.
    fn retire(&mut self, id: ProcId) -> Result<(), Undelivered>;
}

/// The daemon's shell: one tokio task per runner, commands over its unbounded inbox (a
/// dropped `Spawn`, `Signal` or deadline would leave a process in STARTING or STOPPING for
/// ever; the state machine bounds how many are outstanding).
pub struct TokioShell {
    facts: mpsc::Sender<Fact>,
    services: Services,
    runners: HashMap<ProcId, mpsc::UnboundedSender<RunnerCmd>>,
}

impl TokioShell {
    pub fn new(facts: mpsc::Sender<Fact>, services: Services) -> TokioShell {
        TokioShell { facts, services, runners: HashMap::new() }
    }
}

impl Shell for TokioShell {
    fn now(&self) -> Instant {
        clock::now()
    }

    fn wall_now(&self) -> SystemTime {
        clock::wall_now()
    }

    fn start_runner(&mut self, spec: RunnerSpec) {
        let id = spec.id;
        let tx = Runner::spawn(spec, self.facts.clone(), self.services.clone());
        self.runners.insert(id, tx);
    }

    fn send(&mut self, id: ProcId, cmd: RunnerCmd) -> Result<(), Undelivered> {
        match self.runners.get(&id) {
            Some(tx) => tx.send(cmd).map_err(|_| Undelivered("the runner is gone".into())),
            None => Err(Undelivered("channel closed".into())),
        }
    }

    fn retire(&mut self, id: ProcId) -> Result<(), Undelivered> {
        let res = self.send(id, RunnerCmd::Retire);
        self.runners.remove(&id);
        res
    }
}
