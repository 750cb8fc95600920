//! What the daemon is asked: each [`Request`] answered on its reply channel (most refused
//! with SHUTDOWN_STATE while stopping, as Python does), and the daemon's signals (exit,
//! restart, log reopen).

use super::feed::send_cmd;
use super::msg::{DaemonState, LogChannel, Request, Target};
use super::shell::Shell;
use super::{Lifecycle, Orchestrator};
use crate::events::Event;
use crate::fault::{Fault, FaultKind};
use crate::logio::mainlog::Level;
use crate::procsup::Input;
use crate::runner::{ProcId, RunnerCmd};
use crate::sys::signals::DaemonSignal;

impl<S: Shell> Orchestrator<S> {
    pub(super) fn state(&self) -> DaemonState {
        match self.lifecycle {
            Lifecycle::Running => DaemonState::Running,
            Lifecycle::Stopping { restart: true } => DaemonState::Restarting,
            Lifecycle::Stopping { restart: false } => DaemonState::Shutdown,
        }
    }

    /// Python refuses almost every call while shutting down or restarting.
    fn refuse_if_stopping(&self) -> Result<(), Fault> {
        if self.lifecycle == Lifecycle::Running {
            Ok(())
        } else {
            Err(Fault::bare(FaultKind::ShutdownState))
        }
    }

    pub(super) fn on_request(&mut self, req: Request) {
        match req {
            Request::GetState { reply } => {
                let _ = reply.send(self.state());
            }
            Request::GetIdentification { reply } => {
                let _ = reply.send(self.config.supervisord.identifier.clone());
            }
            Request::ProcessInfo { spec, reply } => {
                let _ =
                    reply.send(self.refuse_if_stopping().and_then(|()| self.process_info(&spec)));
            }
            Request::AllProcessInfo { reply } => {
                let _ = reply.send(self.all_process_info());
            }
            Request::StatusRows { reply } => {
                let _ = reply.send(self.refuse_if_stopping().map(|()| self.status_rows()));
            }
            Request::Snapshot { detail, reply } => {
                let _ = reply.send(self.snapshot(detail));
            }
            Request::Start { target, wait, idempotent, reply } => {
                let res =
                    self.refuse_if_stopping().and_then(|()| self.start(&target, wait, idempotent));
                let _ = reply.send(res);
            }
            Request::Stop { target, wait, reply } => {
                let res = self.refuse_if_stopping().and_then(|()| self.stop(&target, wait));
                let _ = reply.send(res);
            }
            Request::Signal { target, sig, reply } => {
                // Python: signalAllProcesses has no shutdown check.
                let res = match target {
                    Target::All => Ok(()),
                    _ => self.refuse_if_stopping(),
                }
                .and_then(|()| self.signal(&target, sig));
                let _ = reply.send(res);
            }
            Request::Shutdown { reply } => {
                let res = self.refuse_if_stopping();
                if res.is_ok() {
                    self.begin_stopping(false);
                }
                let _ = reply.send(res);
            }
            Request::Restart { reply } => {
                let res = self.refuse_if_stopping();
                if res.is_ok() {
                    self.begin_stopping(true);
                }
                let _ = reply.send(res);
            }
            Request::Reread { config, reply } => {
                let res = self.refuse_if_stopping().map(|()| self.reread(*config));
                let _ = reply.send(res);
            }
            Request::AddGroup { name, reply } => {
                let res = self.refuse_if_stopping().and_then(|()| self.add_group(&name));
                let _ = reply.send(res);
            }
            Request::RemoveGroup { name, reply } => {
                let res = self.refuse_if_stopping().and_then(|()| self.remove_group(&name));
                let _ = reply.send(res);
            }
            Request::AllConfigInfo { reply } => {
                let active = self.groups.keys().map(str::to_owned).collect();
                let _ = reply.send((self.latest.groups.clone(), active));
            }
            Request::LogPath { spec, channel, reply } => {
                let mut auto = false;
                let res = self.refuse_if_stopping().and_then(|()| {
                    let (g, p) = self.lookup_process(&spec)?;
                    let e =
                        self.entry(&g, &p).ok_or_else(|| Fault::with(FaultKind::BadName, &spec))?;
                    let (log, path) = match channel {
                        LogChannel::Stdout => (&e.config.stdout, &e.stdout_path),
                        LogChannel::Stderr => (&e.config.stderr, &e.stderr_path),
                    };
                    auto = matches!(log.logfile, crate::config::LogTarget::Auto);
                    Ok(path.as_deref().map(std::path::Path::to_path_buf))
                });
                if auto {
                    // Python creates AUTO logs before it answers anything: a path is
                    // handed out once its file exists, even early in a boot.
                    self.shell.after_auto_logs(Box::new(move || {
                        let _ = reply.send(res);
                    }));
                } else {
                    let _ = reply.send(res);
                }
            }
            Request::MainLogPath { reply } => {
                let path = match &self.config.supervisord.logfile {
                    crate::config::DaemonLog::Path(p) => Some(p.clone()),
                    crate::config::DaemonLog::Syslog => None,
                };
                let _ = reply.send(path);
            }
            Request::ClearLogs { target, reply } => {
                let res = self.refuse_if_stopping().and_then(|()| self.clear_logs(&target));
                let _ = reply.send(res);
            }
            Request::Linger { until, reply } => {
                self.lingers.push(until);
                let _ = reply.send(());
            }
            Request::Commands { target, reply } => {
                let res = self.refuse_if_stopping().and_then(|()| self.commands(&target));
                let _ = reply.send(res);
            }
            Request::SendStdin { spec, data, reply } => {
                let res = self.refuse_if_stopping().and_then(|()| self.send_stdin(&spec, data));
                let _ = reply.send(res);
            }
            Request::GetAutoRecovery { reply } => {
                let _ = reply.send((self.autorecovery.is_on(), self.autorecovery.count()));
            }
            Request::DisableAutoRecovery { holder, reply } => {
                let res = self.holder_id(holder.as_deref()).map(|id| {
                    self.autorecovery.disable();
                    if let Some(id) = id {
                        *self.holds.entry(id).or_default() += 1;
                    }
                });
                let _ = reply.send(res);
            }
            Request::RemoteCommEvent { type_, data, reply } => {
                // Python has no shutdown check here: it works while stopping, too.
                self.bus.publish(Event::remote_communication(&type_, &data));
                let _ = reply.send(());
            }
            Request::EnableAutoRecovery { holder, reply } => {
                let res = self.holder_id(holder.as_deref()).map(|id| {
                    if let Some(n) = id.and_then(|id| self.holds.get_mut(&id)) {
                        *n = n.saturating_sub(1);
                    }
                    self.enable_autorecovery();
                });
                let _ = reply.send(res);
            }
        }
    }

    /// The process a `weka.*AutoRecovery` holder names (BAD_NAME for an unknown one).
    fn holder_id(&self, holder: Option<&str>) -> Result<Option<ProcId>, Fault> {
        let Some(spec) = holder else { return Ok(None) };
        let (g, p) = self.lookup_process(spec)?;
        Ok(self.entry(&g, &p).map(|e| e.id))
    }

    /// One enable; when it turns the gate back on, processes waiting for it restart.
    fn enable_autorecovery(&mut self) {
        if self.autorecovery.enable() {
            for (g, p) in self.all_in_order() {
                self.feed(&g, &p, Input::AutoRecoveryOn);
            }
        }
    }

    /// The process `id` is gone (exited): the autorecovery holds it took and did not
    /// release are released, so a crashed holder cannot keep autorecovery off.
    pub(super) fn release_holds(&mut self, id: ProcId, name: &str) {
        let Some(n) = self.holds.remove(&id).filter(|n| *n > 0) else { return };
        self.log.log(
            Level::Warn,
            format!(
                "released {n} autorecovery hold(s) of {name}: it exited without releasing them"
            ),
        );
        for _ in 0..n {
            self.enable_autorecovery();
        }
    }

    pub(super) fn on_signal(&mut self, sig: DaemonSignal) {
        match sig {
            DaemonSignal::Term | DaemonSignal::Int | DaemonSignal::Quit => {
                self.log
                    .log(Level::Warn, format!("received {} indicating exit request", sig.name()));
                self.begin_stopping(false);
            }
            DaemonSignal::Hup => {
                if self.lifecycle == Lifecycle::Running {
                    self.log.log(Level::Warn, "received SIGHUP indicating restart request");
                    self.begin_stopping(true);
                } else {
                    self.log.log(
                        Level::Warn,
                        "ignored SIGHUP indicating restart request (shutdown in progress)",
                    );
                }
            }
            DaemonSignal::Usr2 => {
                self.log.log(Level::Info, "received SIGUSR2 indicating log reopen request");
                let log = self.log.clone();
                tokio::spawn(async move {
                    if let Err(e) = log.reopen().await {
                        log.log(Level::Error, format!("could not reopen the daemon log: {e}"));
                    }
                });
                let ids: Vec<_> =
                    self.groups.values().flat_map(|g| g.procs.values()).map(|e| e.id).collect();
                for id in ids {
                    send_cmd(&self.log, &mut self.shell, id, RunnerCmd::ReopenLogs);
                }
            }
        }
    }
}
