//! What a request does to the processes of a target: start (with Python's idempotent and
//! group rules, the `wait` forms parked as waiters), stop, signal, clear logs, and writing
//! to a process's stdin. Whether a start is allowed is decided in `start_one`.

use tokio::sync::oneshot;

use super::Orchestrator;
use super::msg::{Outcome, Pending, Target};
use super::names;
use super::shell::Shell;
use super::waiters::WaitKind;
use crate::fault::{Fault, FaultKind};
use crate::procsup::{Input, ProcessState, Refusal, StartOutcome};
use crate::runner::{RunnerCmd, StdinError};

fn pending(g: &str, p: &str, outcome: Outcome) -> Pending {
    Pending { name: p.to_string(), group: g.to_string(), outcome }
}

impl<S: Shell> Orchestrator<S> {
    pub(super) fn start(
        &mut self,
        target: &Target,
        wait: bool,
        idempotent: bool,
    ) -> Result<Vec<Pending>, Fault> {
        let (list, single) = self.resolve_target(target)?;
        let mut out = Vec::with_capacity(list.len());
        for (label, g, p) in list {
            let Some(state) = self.entry(&g, &p).map(|e| e.proc.state()) else { continue };
            // Group and all starts leave out what is already in a running state.
            if !single && !idempotent && (state.is_running() || self.is_waiting(&g, &p)) {
                continue;
            }
            let outcome = self.start_one(&label, &g, &p, wait, idempotent);
            if single && let Outcome::Done(Err(f)) = outcome {
                return Err(f);
            }
            out.push(pending(&g, &p, outcome));
        }
        Ok(out)
    }

    fn start_one(
        &mut self,
        label: &str,
        g: &str,
        p: &str,
        wait: bool,
        idempotent: bool,
    ) -> Outcome {
        let Some(e) = self.entry(g, p) else {
            return Outcome::Done(Err(Fault::with(FaultKind::BadName, label)));
        };
        let (id, state) = (e.id, e.proc.state());
        if e.life.waiting.is_some() {
            // Waiting for its dependencies counts as STARTING.
            return match (idempotent, wait) {
                (true, true) => self.park(id, WaitKind::Start, label.to_string()),
                (true, false) => Outcome::Done(Ok(())),
                (false, _) => Outcome::Done(Err(Fault::with(FaultKind::AlreadyStarted, label))),
            };
        }
        match e.proc.check_start() {
            Ok(()) => {}
            Err(Refusal::AlreadyStarted) if idempotent && state != ProcessState::Backoff => {
                return if wait && state == ProcessState::Starting {
                    self.park(id, WaitKind::Start, label.to_string())
                } else {
                    Outcome::Done(Ok(()))
                };
            }
            Err(Refusal::AlreadyStarted) if idempotent => {}
            Err(Refusal::AlreadyStarted) => {
                return Outcome::Done(Err(Fault::with(FaultKind::AlreadyStarted, label)));
            }
            Err(Refusal::UnknownState) => {
                return Outcome::Done(Err(Fault::with(
                    FaultKind::Failed,
                    format!("{label} is in an unknown process state"),
                )));
            }
            Err(Refusal::NotRunning) => {
                return Outcome::Done(Err(Fault::with(FaultKind::Failed, label)));
            }
        }
        self.start_dependencies(g, p);
        self.begin_start(g, p);
        let Some(e) = self.entry(g, p) else { return Outcome::Done(Ok(())) };
        if e.life.waiting.is_some() {
            let kind = if wait { WaitKind::Start } else { WaitKind::Spawned };
            return self.park(id, kind, label.to_string());
        }
        if !wait && e.proc.state() != ProcessState::Starting {
            // A dependency can never be met: it went FATAL without a spawn.
            return Outcome::Done(Err(Fault::with(FaultKind::SpawnError, label)));
        }
        if !wait {
            // Answered when the fork has happened, as Python's answer follows its spawn.
            return self.park(id, WaitKind::Spawned, label.to_string());
        }
        match e.proc.start_wait_result() {
            None => self.park(id, WaitKind::Start, label.to_string()),
            Some(StartOutcome::Running) => Outcome::Done(Ok(())),
            Some(StartOutcome::SpawnError) => {
                Outcome::Done(Err(Fault::with(FaultKind::SpawnError, label)))
            }
            Some(StartOutcome::AbnormalTermination) => {
                Outcome::Done(Err(Fault::with(FaultKind::AbnormalTermination, label)))
            }
        }
    }

    pub(super) fn stop(&mut self, target: &Target, wait: bool) -> Result<Vec<Pending>, Fault> {
        let (list, single) = self.resolve_target(target)?;
        let mut out = Vec::with_capacity(list.len());
        for (label, g, p) in list {
            if self.is_waiting(&g, &p) {
                // A start waiting for dependencies is given up: it is stopped at once.
                self.cancel_wait(&g, &p);
                out.push(pending(&g, &p, Outcome::Done(Ok(()))));
                continue;
            }
            let Some((id, check)) = self.entry(&g, &p).map(|e| (e.id, e.proc.check_stop())) else {
                continue;
            };
            if let Err(_refusal) = check {
                if single {
                    return Err(Fault::with(FaultKind::NotRunning, &label));
                }
                continue;
            }
            // Dependents stop first; it follows once they are down.
            if self.stop_dependents(&g, &p) {
                self.feed(&g, &p, Input::Stop);
            }
            let done = self.entry(&g, &p).is_none_or(|e| e.proc.stop_wait_done());
            let outcome = if wait && !done {
                let parked = self.park(id, WaitKind::Stop, label);
                self.stop_waited_on();
                parked
            } else {
                Outcome::Done(Ok(()))
            };
            out.push(pending(&g, &p, outcome));
        }
        Ok(out)
    }

    pub(super) fn signal(&mut self, target: &Target, sig: i32) -> Result<Vec<Pending>, Fault> {
        let (list, single) = self.resolve_target(target)?;
        let mut out = Vec::with_capacity(list.len());
        for (label, g, p) in list {
            let Some(check) = self.entry(&g, &p).map(|e| e.proc.check_signal()) else { continue };
            if check.is_err() {
                if single {
                    return Err(Fault::with(FaultKind::NotRunning, &label));
                }
                continue;
            }
            self.feed(&g, &p, Input::Signal { sig });
            out.push(pending(&g, &p, Outcome::Done(Ok(()))));
        }
        Ok(out)
    }

    pub(super) fn clear_logs(&mut self, target: &Target) -> Result<Vec<Pending>, Fault> {
        let (list, _single) = self.resolve_target(target)?;
        let mut out = Vec::with_capacity(list.len());
        for (label, g, p) in list {
            let Some(id) = self.entry(&g, &p).map(|e| e.id) else { continue };
            let (reply, rx) = oneshot::channel();
            let outcome = match self.shell.send(id, RunnerCmd::ClearLogs { label, reply }) {
                Ok(()) => Outcome::Wait(rx),
                Err(_) => Outcome::Done(Err(Fault::with(FaultKind::Failed, names::key(&g, &p)))),
            };
            out.push(pending(&g, &p, outcome));
        }
        Ok(out)
    }

    pub(super) fn send_stdin(
        &mut self,
        spec: &str,
        data: Vec<u8>,
    ) -> Result<oneshot::Receiver<Result<(), StdinError>>, Fault> {
        let (g, p) = self.lookup_process(spec)?;
        let e = self.entry(&g, &p).ok_or_else(|| Fault::with(FaultKind::BadName, spec))?;
        if e.proc.pid().is_none() || e.proc.state() == ProcessState::Stopping {
            return Err(Fault::with(FaultKind::NotRunning, spec));
        }
        let id = e.id;
        let (reply, rx) = oneshot::channel();
        self.shell
            .send(id, RunnerCmd::WriteStdin { data, reply })
            .map_err(|_| Fault::with(FaultKind::Failed, format!("{spec}: runner is gone")))?;
        Ok(rx)
    }
}
