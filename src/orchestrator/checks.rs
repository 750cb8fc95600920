//! Readiness and health checks and essential processes, as follow-ups of state changes:
//! a `ready_check` runs (in a task the shell starts) while a spawned process is STARTING,
//! a `health_check` while it is RUNNING; their results come back as facts and are fed to
//! the state machine (`Ready`, `NotReady`, `Unhealthy` after the retries). An essential
//! process that ends for good starts the daemon's shutdown with its exit code.

use super::shell::{CheckSpec, ExecContext, Shell};
use super::{Lifecycle, Orchestrator};
use crate::config::CheckForm;
use crate::procsup::{Input, LogLine, ProcessState, StateChange, essential_exit_code};
use crate::runner::{CheckKind, ProcId};

impl<S: Shell> Orchestrator<S> {
    /// What the lifecycle options make of a state change.
    pub(super) fn lifecycle_changed(&mut self, g: &str, p: &str, change: &StateChange) {
        self.track_dependency_facts(g, p, change);
        let Some(e) = self.entry(g, p) else { return };
        let id = e.id;
        let (ready, health) = (
            e.config.lifecycle().ready_check.is_some(),
            e.config.lifecycle().health_check.is_some(),
        );
        if ready && change.from == ProcessState::Starting {
            self.shell.stop_check(id, CheckKind::Ready);
        }
        if health && change.from == ProcessState::Running {
            self.shell.stop_check(id, CheckKind::Health);
        }
        if health && change.to == ProcessState::Running {
            self.start_check(g, p, CheckKind::Health);
        }
        self.essential_changed(g, p, change);
    }

    /// The runner spawned the process: dependents waiting for `started` may go, and its
    /// readiness check begins.
    pub(super) fn lifecycle_spawned(&mut self, g: &str, p: &str) {
        let Some(e) = self.entry_mut(g, p) else { return };
        e.life.spawned = true;
        let checks = e.config.lifecycle().ready_check.is_some()
            && e.proc.state() == ProcessState::Starting
            && e.proc.pid().is_some();
        self.deps_dirty |= self.uses_deps();
        if checks {
            self.start_check(g, p, CheckKind::Ready);
        }
    }

    fn start_check(&mut self, g: &str, p: &str, kind: CheckKind) {
        let default_url = self.config.default_serverurl();
        let Some(e) = self.entry_mut(g, p) else { return };
        let c = e.life.checks_mut();
        c.generation += 1;
        c.health_failures = 0;
        c.health_reason = None;
        let generation = c.generation;
        let lc = e.config.lifecycle();
        let (form, interval, timeout, until_success) = match kind {
            CheckKind::Ready => match &lc.ready_check {
                Some(r) => (r.form.clone(), r.interval, r.attempt_timeout, true),
                None => return,
            },
            CheckKind::Health => match &lc.health_check {
                Some(h) => (h.form.clone(), h.interval, h.timeout, false),
                None => return,
            },
        };
        // `log:` and `notify` are not polled: the output pump and the notify socket
        // report them.
        if matches!(form, CheckForm::Log { .. } | CheckForm::Notify) {
            return;
        }
        let exec = matches!(form, CheckForm::Exec { .. }).then(|| ExecContext {
            process_name: e.config.name.clone(),
            group_name: g.to_string(),
            environment: e.config.environment.to_vec(),
            server_url: e.config.serverurl.as_deref().map(str::to_owned).or(default_url),
            directory: e.config.directory.as_deref().map(std::path::Path::to_path_buf),
            umask: e.config.umask,
            user: e.config.user.as_deref().map(str::to_owned),
        });
        let id = e.id;
        self.shell.start_check(CheckSpec {
            id,
            kind,
            generation,
            form,
            interval,
            timeout,
            until_success,
            exec,
        });
    }

    /// One check attempt ended.
    pub(super) fn on_check(
        &mut self,
        id: ProcId,
        kind: CheckKind,
        generation: u64,
        outcome: Result<(), String>,
    ) {
        let Some(pc) = self.by_id.get(&id).cloned() else { return };
        let (g, p) = (pc.group.as_str(), pc.name.as_str());
        let Some(e) = self.entry_mut(g, p) else { return };
        if e.life.checks().generation != generation {
            return;
        }
        match (kind, outcome) {
            (CheckKind::Ready, Ok(())) => self.feed(g, p, Input::Ready),
            (CheckKind::Ready, Err(reason)) => self.feed(g, p, Input::NotReady { reason }),
            (CheckKind::Health, _) if e.proc.state() != ProcessState::Running => {}
            (CheckKind::Health, Ok(())) => {
                let c = e.life.checks_mut();
                c.health_failures = 0;
                c.health_reason = None;
            }
            (CheckKind::Health, Err(reason)) => {
                e.stats.health_failed_once();
                let retries = e.config.lifecycle().health_check.as_ref().map_or(1, |h| h.retries);
                let c = e.life.checks_mut();
                c.health_failures += 1;
                c.health_reason = Some(reason.clone());
                if c.health_failures >= retries {
                    let failures = c.health_failures;
                    c.health_failures = 0;
                    self.feed(g, p, Input::Unhealthy { failures, reason });
                }
            }
        }
    }

    /// The process announced readiness or a status (`log:` line, `notify` datagram).
    pub(super) fn on_announced(
        &mut self,
        id: ProcId,
        pid: Option<u32>,
        ready: bool,
        status: Option<String>,
    ) {
        let Some(pc) = self.by_id.get(&id).cloned() else { return };
        let (g, p) = (pc.group.as_str(), pc.name.as_str());
        let Some(e) = self.entry(g, p) else { return };
        // A line from an earlier child's output is not this one's readiness.
        if pid.is_some() && e.proc.pid() != pid {
            return;
        }
        if ready {
            self.feed(g, p, Input::Ready);
        } else if let Some(reason) = status {
            self.feed(g, p, Input::NotReady { reason });
        }
    }

    /// An essential process that ended for good (FATAL, or exited with no restart
    /// coming) ends the daemon with its code; a requested stop is no end.
    fn essential_changed(&mut self, g: &str, p: &str, change: &StateChange) {
        let Some(e) = self.entry(g, p) else { return };
        if !e.config.lifecycle().essential
            || self.lifecycle != Lifecycle::Running
            || self.exit_code.is_some()
        {
            return;
        }
        let ended = match change.to {
            ProcessState::Fatal => true,
            ProcessState::Exited => {
                e.proc.state() == ProcessState::Exited && e.proc.next_restart().is_none()
            }
            _ => false,
        };
        if !ended {
            return;
        }
        let last = if e.life.dependency_failed { None } else { e.proc.last_exit() };
        let code = essential_exit_code(last);
        let how = match (change.to, last) {
            (ProcessState::Exited, Some(status)) => format!("exited ({status})"),
            _ => format!("entered FATAL state ({})", e.proc.spawnerr().unwrap_or("never ran")),
        };
        let line = LogLine::EssentialEnded { name: e.config.name.clone(), how, code };
        self.log.log(line.level(), line.to_string());
        self.exit_code = Some(code);
        self.begin_stopping(false);
    }
}
