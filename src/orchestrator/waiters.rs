//! Replies parked until a process gets somewhere: a `wait=false` start is answered once
//! the fork happened, a `wait=true` start when the process leaves STARTING, a `wait=true`
//! stop in a stopped state; and the periodic `waiting for x to stop` line while a waited-on
//! stop is in progress.

use std::time::Duration;

use tokio::sync::oneshot;

use super::Orchestrator;
use super::msg::Outcome;
use super::shell::Shell;
use crate::fault::{Fault, FaultKind};
use crate::procsup::{self, ProcessState, StartOutcome, WaitOutcome};
use crate::runner::ProcId;

/// How often a waited-on stop reports `waiting for x to stop` (Python: every 2 s).
const STOP_REPORT_EVERY: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WaitKind {
    /// `wait=false` starts: answered once the fork happened (or failed).
    Spawned,
    /// `wait=true` starts: answered when the process leaves STARTING.
    Start,
    /// `wait=true` stops: answered in a stopped state.
    Stop,
}

pub(super) struct Waiter {
    kind: WaitKind,
    /// The name the fault names, as Python does: the spec as given, or `group:name`.
    label: String,
    reply: oneshot::Sender<Result<(), Fault>>,
}

impl<S: Shell> Orchestrator<S> {
    /// The state machine resolved the waiters of `outcome`'s kind.
    pub(super) fn resolve(&mut self, id: ProcId, outcome: WaitOutcome) {
        let Some(list) = self.waiters.get_mut(&id) else { return };
        let kind = match outcome {
            WaitOutcome::Start(_) => WaitKind::Start,
            WaitOutcome::Stopped => WaitKind::Stop,
        };
        let (now, keep): (Vec<Waiter>, Vec<Waiter>) =
            std::mem::take(list).into_iter().partition(|w| w.kind == kind);
        self.keep_waiters(id, keep);
        for w in now {
            let res = match outcome {
                WaitOutcome::Start(StartOutcome::Running) | WaitOutcome::Stopped => Ok(()),
                WaitOutcome::Start(StartOutcome::SpawnError) => {
                    Err(Fault::with(FaultKind::SpawnError, &w.label))
                }
                WaitOutcome::Start(StartOutcome::AbnormalTermination) => {
                    Err(Fault::with(FaultKind::AbnormalTermination, &w.label))
                }
            };
            let _ = w.reply.send(res);
        }
    }

    /// The runner answered a spawn: `wait=false` starts get their reply.
    pub(super) fn resolve_spawned(&mut self, id: ProcId, res: Result<(), ()>) {
        let Some(list) = self.waiters.get_mut(&id) else { return };
        let (now, keep): (Vec<Waiter>, Vec<Waiter>) =
            std::mem::take(list).into_iter().partition(|w| w.kind == WaitKind::Spawned);
        self.keep_waiters(id, keep);
        for w in now {
            let _ = w.reply.send(res.map_err(|()| Fault::with(FaultKind::SpawnError, &w.label)));
        }
    }

    /// What still waits on `id`; a process nobody waits on has no entry, and the map
    /// gives back its table once nothing waits (a `restart all` grows it to every process).
    fn keep_waiters(&mut self, id: ProcId, keep: Vec<Waiter>) {
        if !keep.is_empty() {
            self.waiters.insert(id, keep);
            return;
        }
        self.waiters.remove(&id);
        if self.waiters.is_empty() {
            self.waiters.shrink_to_fit();
        }
    }

    pub(super) fn park(&mut self, id: ProcId, kind: WaitKind, label: String) -> Outcome {
        let (reply, rx) = oneshot::channel();
        self.waiters.entry(id).or_default().push(Waiter { kind, label, reply });
        Outcome::Wait(rx)
    }

    /// A stop is waited on: report it at once (and then every 2 s while it lasts).
    pub(super) fn stop_waited_on(&mut self) {
        if self.stop_report_at.is_none() {
            self.stop_report_at = Some(self.shell.now());
        }
    }

    /// Python's `stop_report`: while a `stopProcess(wait=true)` waits on a STOPPING process,
    /// INFO `waiting for x to stop` at once and then every 2 s.
    pub(super) fn report_waiting_to_stop(&mut self) {
        let mut any = false;
        for (g, p) in self.all_in_order() {
            let Some(e) = self.entry(&g, &p) else { continue };
            let waited_on = self
                .waiters
                .get(&e.id)
                .is_some_and(|ws| ws.iter().any(|w| w.kind == WaitKind::Stop));
            if waited_on && e.proc.state() == ProcessState::Stopping {
                any = true;
                let line = procsup::LogLine::WaitingToStop { name: e.config.name.clone() };
                self.log.log(line.level(), line.to_string());
            }
        }
        self.stop_report_at = any.then(|| self.shell.now() + STOP_REPORT_EVERY);
    }
}
