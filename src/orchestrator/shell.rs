//! The orchestrator's seam to everything it does not own: starting a process's runner,
//! handing a runner a command, and reading the clock. The daemon uses [`TokioShell`]
//! (runner tasks, `sys::clock`); unit tests drive the actor with a fake that records the
//! commands and keeps a virtual clock.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, oneshot};

use crate::config::CheckForm;
use crate::runner::{CheckKind, Fact, ProcId, Runner, RunnerCmd, RunnerSpec, Services};
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
    /// Starts attempting a check, one attempt after another `interval` apart, each
    /// reported as `Fact::Check`; replaces a running check of the same process and kind.
    fn start_check(&mut self, spec: CheckSpec);
    /// Stops the check of that process and kind (an attempt under way finishes, unreported).
    fn stop_check(&mut self, id: ProcId, kind: CheckKind);
    /// Where the `NOTIFY_SOCKET` of `group:name` goes (`ready_check = notify`); `None`
    /// when the daemon's notify directory cannot be made (logged).
    fn notify_socket(&mut self, group: &str, name: &str) -> Option<PathBuf>;
    /// Every queued autostart has been answered (boot, or a group added): a burst of
    /// spawns is over.
    fn started_all(&mut self) {}
    /// Runs `then` once the AUTO logs of every runner started so far exist (they are
    /// created beside the spawns, not before the daemon answers); at once by default.
    fn after_auto_logs(&mut self, then: Box<dyn FnOnce() + Send>) {
        then();
    }
}

/// A readiness or health check to attempt outside the orchestrator.
#[derive(Debug, Clone)]
pub struct CheckSpec {
    pub id: ProcId,
    pub kind: CheckKind,
    /// Echoed in each `Fact::Check`, so results of an earlier check are told apart.
    pub generation: u64,
    pub form: CheckForm,
    /// Pause between the end of one attempt and the next.
    pub interval: Duration,
    /// How long one attempt may take.
    pub timeout: Duration,
    /// Stop after the first success (readiness is reached once).
    pub until_success: bool,
    /// For `exec:`: what the command inherits from its program.
    pub exec: Option<ExecContext>,
}

/// The program settings an `exec:` check runs with (owned; see `checks::exec`).
#[derive(Debug, Clone)]
pub struct ExecContext {
    pub process_name: String,
    pub group_name: String,
    pub environment: Vec<(String, String)>,
    pub server_url: Option<String>,
    pub directory: Option<PathBuf>,
    pub umask: Option<u32>,
    pub user: Option<String>,
}

/// The daemon's shell: one tokio task per runner, commands over its unbounded inbox (a
/// dropped `Spawn`, `Signal` or deadline would leave a process in STARTING or STOPPING for
/// ever; the state machine bounds how many are outstanding).
pub struct TokioShell {
    facts: mpsc::Sender<Fact>,
    services: Arc<Services>,
    runners: HashMap<ProcId, crate::inbox::Sender<RunnerCmd>>,
    /// Running checks; dropping the sender ends the check after its current attempt.
    checks: HashMap<(ProcId, CheckKind), oneshot::Sender<()>>,
    /// The directory of `notify` sockets, made when first needed, removed with the shell.
    notify_dir: Option<crate::checks::notify::NotifyDir>,
    /// The daemon log, whose thread is asked to release memory after a burst of spawns.
    log: crate::logio::mainlog_task::MainLogHandle,
}

impl TokioShell {
    pub fn new(
        facts: mpsc::Sender<Fact>,
        services: Services,
        log: crate::logio::mainlog_task::MainLogHandle,
    ) -> TokioShell {
        TokioShell {
            log,
            facts,
            services: Arc::new(services),
            runners: HashMap::new(),
            checks: HashMap::new(),
            notify_dir: None,
        }
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
        self.checks.retain(|(cid, _), _| *cid != id);
        res
    }

    fn start_check(&mut self, spec: CheckSpec) {
        let (stop_tx, stop_rx) = oneshot::channel();
        self.checks.insert((spec.id, spec.kind), stop_tx);
        let facts = self.facts.clone();
        let reaper = self.services.reaper.clone();
        let daemon_env = self.services.daemon_env.clone();
        // On the pump runtime: an `exec:` attempt spawns (a `clone` that waits for the
        // exec) and nothing of a check may run on the orchestrator's thread.
        self.services.pumps.spawn(run_check(spec, stop_rx, facts, reaper, daemon_env));
    }

    fn stop_check(&mut self, id: ProcId, kind: CheckKind) {
        self.checks.remove(&(id, kind));
    }

    fn notify_socket(&mut self, group: &str, name: &str) -> Option<PathBuf> {
        if self.notify_dir.is_none() {
            let path =
                std::env::temp_dir().join(format!("supervisord-notify.{}", std::process::id()));
            // A directory left by an earlier daemon with our pid is stale.
            let _ = std::fs::remove_dir_all(&path);
            match crate::checks::notify::NotifyDir::create(&path) {
                Ok(dir) => self.notify_dir = Some(dir),
                Err(e) => {
                    let _ = self.facts.try_send(Fact::Log {
                        level: crate::logio::mainlog::Level::Error,
                        message: format!("cannot create {}: {e}", path.display()),
                    });
                    return None;
                }
            }
        }
        self.notify_dir.as_ref().map(|d| d.socket_path(group, name))
    }

    fn started_all(&mut self) {
        crate::sys::memory::release_after_burst(&self.services, &self.log);
    }

    fn after_auto_logs(&mut self, then: Box<dyn FnOnce() + Send>) {
        // The preparing thread runs its jobs in order: this one comes after every AUTO
        // log creation queued so far. If the thread is gone, `then` is dropped unrun
        // (the daemon is ending) and its reply's receiver learns so.
        let _ = self.services.spawner.prepare(then);
    }
}

/// A check's task: attempts until stopped (or, for readiness, until one succeeds). It
/// never outlives its stop by more than one attempt (each bounded by its timeout).
async fn run_check(
    spec: CheckSpec,
    mut stop: oneshot::Receiver<()>,
    facts: mpsc::Sender<Fact>,
    reaper: crate::sys::reaper::ReaperHandle,
    daemon_env: std::sync::Arc<Vec<(std::ffi::OsString, std::ffi::OsString)>>,
) {
    // `exec:` resolves its command (PATH, user) once, off the runtime's thread.
    let prepared = match (&spec.form, spec.exec.clone()) {
        (CheckForm::Exec { command }, Some(ctx)) => {
            let command = command.clone();
            let res = tokio::task::spawn_blocking(move || {
                crate::checks::exec::prepare(
                    &command,
                    &crate::checks::exec::ExecContext {
                        process_name: &ctx.process_name,
                        group_name: &ctx.group_name,
                        environment: &ctx.environment,
                        daemon_env: daemon_env.as_slice(),
                        server_url: ctx.server_url.as_deref(),
                        directory: ctx.directory.as_deref(),
                        umask: ctx.umask,
                        user: ctx.user.as_deref(),
                    },
                )
            })
            .await;
            Some(res.unwrap_or_else(|e| Err(e.to_string())))
        }
        _ => None,
    };
    loop {
        let outcome = match &prepared {
            Some(Err(e)) => Err(e.clone()),
            Some(Ok(sp)) => {
                crate::checks::attempt(&spec.form, spec.timeout, Some((sp, &reaper))).await
            }
            None => crate::checks::attempt(&spec.form, spec.timeout, None).await,
        };
        // Stopped meanwhile (the sender was dropped): the result concerns nobody.
        if !matches!(stop.try_recv(), Err(oneshot::error::TryRecvError::Empty)) {
            return;
        }
        let done = outcome.is_ok() && spec.until_success;
        let fact =
            Fact::Check { id: spec.id, kind: spec.kind, generation: spec.generation, outcome };
        if facts.send(fact).await.is_err() || done {
            return;
        }
        tokio::select! {
            _ = &mut stop => return,
            () = tokio::time::sleep(spec.interval) => {}
        }
    }
}
