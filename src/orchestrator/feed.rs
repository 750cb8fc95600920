//! Feeding the state machine: a runner's fact (or a request's input) goes to
//! `procsup::step` for its process, and the actions that come back are carried out here:
//! commands to the runner through the shell, the runner's one deadline kept in sync, log
//! lines, state events to the bus, and waiter replies. What happens when a process changes
//! state (it ended, it became RUNNING) is decided here, after `step`.

use super::Orchestrator;
use super::shell::{Shell, Undelivered};
use super::stats::Origin;
use crate::events::Event;
use crate::logio::mainlog::Level;
use crate::logio::mainlog_task::MainLogHandle;
use crate::procsup::{self, Action, Input, ProcessState, StateChange};
use crate::runner::{Fact, ProcId, RunnerCmd, SignalPurpose};

impl<S: Shell> Orchestrator<S> {
    /// Steps one process and carries out the actions.
    pub(super) fn feed(&mut self, group: &str, name: &str, input: Input) {
        let now = self.shell.now();
        let ctx = self.ctx(now);
        let purpose = if matches!(input, Input::Signal { .. }) {
            SignalPurpose::Signal
        } else {
            SignalPurpose::Kill
        };
        let Some(entry) = self.groups.get_mut(group).and_then(|g| g.procs.get_mut(name)) else {
            return;
        };
        let origin = Origin::of(&input);
        let actions = procsup::step(&mut entry.proc, input, &ctx);
        let id = entry.id;
        let mut resolved = Vec::new();
        let mut changes = Vec::new();
        for action in actions {
            match action {
                Action::Spawn => send_cmd(&self.log, &mut self.shell, id, RunnerCmd::Spawn),
                Action::Signal { pid, sig, group } => send_cmd(
                    &self.log,
                    &mut self.shell,
                    id,
                    RunnerCmd::Signal { pid, sig, group, purpose },
                ),
                // The runner keeps one timer: the earliest deadline, synced below.
                Action::StartTimer { .. } | Action::CancelTimer { .. } => {}
                Action::Emit(change) => {
                    entry.stats.record(origin, &change, now);
                    changes.push(change);
                }
                Action::ResolveWaiters(outcome) => resolved.push(outcome),
                Action::Log(line) => {
                    let level = line.level();
                    if self.log.enabled(level) {
                        self.log.log(level, line.to_string());
                    }
                }
            }
        }
        let deadline = entry.proc.next_deadline();
        if deadline != entry.sent_deadline {
            entry.sent_deadline = deadline;
            send_cmd(&self.log, &mut self.shell, id, RunnerCmd::Deadline(deadline));
        }
        for change in changes {
            self.state_changed(group, name, &change);
        }
        for outcome in resolved {
            self.resolve(id, outcome);
        }
    }

    /// What follows from a process changing state (it became RUNNING, it ended), beyond
    /// what the state machine itself decided: listener pools and PROCESS_STATE events.
    fn state_changed(&mut self, group: &str, name: &str, change: &StateChange) {
        self.lifecycle_changed(group, name, change);
        if self.bus.is_pool(group) {
            self.bus.member_running(group, name, change.to == ProcessState::Running);
        }
        self.bus.publish(Event::process_state(name, group, change));
    }

    /// A runner's report.
    pub(super) fn on_fact(&mut self, fact: Fact) {
        let id = match &fact {
            Fact::Spawned { id, .. }
            | Fact::SpawnFailed { id, .. }
            | Fact::Exited { id, .. }
            | Fact::Tick { id }
            | Fact::SignalFailed { id, .. }
            | Fact::OutputClosed { id, .. } => *id,
            Fact::Check { id, kind, generation, outcome } => {
                return self.on_check(*id, *kind, *generation, outcome.clone());
            }
            Fact::Announced { id, pid, ready, status } => {
                return self.on_announced(*id, *pid, *ready, status.clone());
            }
            Fact::Log { level, message } => {
                self.log.log(*level, message.clone());
                return;
            }
        };
        // A fact from the runner of a group that has since been removed.
        let Some(pc) = self.by_id.get(&id).cloned() else { return };
        let (g, p) = (pc.group.as_str(), pc.name.as_str());
        match fact {
            Fact::Spawned { pid, .. } => {
                self.feed(g, p, Input::Spawned { pid });
                self.lifecycle_spawned(g, p);
                self.resolve_spawned(id, Ok(()));
                self.spawn_answered(id);
            }
            Fact::SpawnFailed { message, .. } => {
                self.feed(g, p, Input::SpawnFailed { message });
                self.resolve_spawned(id, Err(()));
                self.spawn_answered(id);
            }
            Fact::Exited { pid, status, .. } => {
                self.feed(g, p, Input::Exited { pid, status });
                self.release_holds(id, &format!("{g}:{p}"));
                // Python notes the SIGCHLD after it has reaped and judged the exit.
                self.log.log(Level::Debug, "received SIGCHLD indicating a child quit");
            }
            Fact::OutputClosed { fd, channel, kind, process, dispatcher, .. } => {
                if let Some(e) = self.entry(g, p) {
                    self.log.log(
                        Level::Debug,
                        format!(
                            "fd {fd} closed, stopped monitoring <{kind} at {dispatcher} \
                             for <Subprocess at {process} with name {} in state {}> ({})>",
                            e.config.name,
                            e.proc.state(),
                            channel.as_str()
                        ),
                    );
                }
            }
            Fact::Tick { .. } => {
                // The runner's timer fired; make sure it is re-armed even if nothing changed.
                if let Some(e) = self.entry_mut(g, p) {
                    e.sent_deadline = None;
                }
                self.feed(g, p, Input::Tick);
            }
            Fact::SignalFailed { purpose, error, .. } => {
                let input = match purpose {
                    SignalPurpose::Kill => Input::KillFailed { error },
                    SignalPurpose::Signal => Input::SignalFailed { error },
                };
                self.feed(g, p, input);
            }
            Fact::Log { .. } | Fact::Check { .. } | Fact::Announced { .. } => {}
        }
    }
}

/// The orchestrator never waits on a runner: an undeliverable command (the runner is gone)
/// is a bug, logged, not awaited.
pub(super) fn send_cmd<S: Shell>(log: &MainLogHandle, shell: &mut S, id: ProcId, cmd: RunnerCmd) {
    if let Err(e) = shell.send(id, cmd) {
        undelivered(log, &e);
    }
}

pub(super) fn undelivered(log: &MainLogHandle, e: &Undelivered) {
    log.log(Level::Error, format!("command not delivered: {e}"));
}
