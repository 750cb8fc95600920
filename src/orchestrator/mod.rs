//! The orchestrator: the one actor that owns all mutable daemon state (the process table,
//! the autorecovery count, the config snapshot, pending waiters, the lifecycle). Runners
//! report facts into it, the RPC layer sends requests through an [`OrchestratorHandle`],
//! and it answers by feeding the pure state machine (`procsup::step`) and carrying out the
//! returned actions through its [`Shell`] (commands to runners on unbounded inboxes, the
//! clock), `try_send` to
//! the log thread and oneshot replies. It never awaits anything but its own inboxes, and
//! does no IO.
//!
//! This file holds the actor's state and its loop; the parts live in submodules named for
//! what they own: `table` (the process table and its order), `boot` (the autostart queue),
//! `feed` (facts in, state machine, actions out), `waiters` (parked replies), `control`
//! (start/stop/signal/logs/stdin of targets), `info` (what is reported about processes),
//! `dispatch` (requests and signals), `shutdown` (ordered stop), `reload` (reread, add,
//! remove), `stats` (per-process counters for metrics) and `shell` (the seam to runners and the clock).

mod boot;
mod checks;
mod control;
mod deps;
pub mod describe;
mod dispatch;
mod feed;
pub mod handle;
mod info;
pub mod msg;
pub mod names;
mod reload;
pub mod shell;
mod shutdown;
pub mod stats;
mod table;
mod waiters;

#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::OsString;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::config::Config;
use crate::events::{Bus, Event};
use crate::logio::mainlog_task::MainLogHandle;
use crate::procsup::{AutoRecovery, Ctx};
use crate::runner::{Fact, ProcId};
use crate::sys::signals::DaemonSignal;

pub use handle::OrchestratorHandle;
pub use msg::{
    CommandCheck, DaemonState, Detail, LogChannel, Outcome, Pending, ProcSample, ProcessInfo,
    Request, Snapshot, StatusRow, Target,
};
pub use shell::{Shell, TokioShell};

use waiters::Waiter;

/// Facts runners may have in flight. Runners `send().await` (the orchestrator always drains
/// its inboxes), so this only bounds memory under a burst, e.g. 1,000 processes exiting.
const FACT_INBOX: usize = 4096;

/// How often shutdown reports `waiting for … to die` (Python: at most every 3 s).
const DIE_REPORT_EVERY: Duration = Duration::from_secs(3);

/// The longest an ending incarnation waits for its last responses to be written.
const LINGER_MAX: Duration = Duration::from_secs(2);

/// Why [`Orchestrator::run`] returned.
pub struct Exit {
    /// SIGHUP or `supervisor.restart`: re-read the config and start again in-process.
    pub restart: bool,
    /// Handed back so the next incarnation keeps the same signal handlers.
    pub signals: mpsc::Receiver<DaemonSignal>,
    /// The event serial, so the next incarnation keeps counting.
    pub serial: crate::events::event::Serial,
    /// The daemon's exit code: an essential process's, else 0.
    pub code: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lifecycle {
    Running,
    Stopping { restart: bool },
}

/// The actor. `S` is how it reaches runners and the clock: [`TokioShell`] in the daemon,
/// a fake in unit tests.
pub struct Orchestrator<S: Shell = TokioShell> {
    shell: S,
    requests: mpsc::Receiver<Request>,
    facts: mpsc::Receiver<Fact>,
    signals: mpsc::Receiver<DaemonSignal>,
    log: MainLogHandle,
    /// The config the daemon runs from.
    config: Arc<Config>,
    /// The latest parsed config (after `reloadConfig`), which `addProcessGroup` reads.
    latest: Arc<Config>,
    daemon_env: Vec<(OsString, OsString)>,
    groups: table::Groups,
    /// Each process's config by id (it names the group and the process).
    by_id: HashMap<ProcId, Arc<crate::config::ProcessConfig>>,
    waiters: HashMap<ProcId, Vec<Waiter>>,
    autorecovery: AutoRecovery,
    /// Autorecovery holds taken by a process (`weka.disableAutoRecovery(name)`), by id.
    holds: HashMap<ProcId, u32>,
    lifecycle: Lifecycle,
    next_id: ProcId,
    rng: u64,
    /// `SUPERVISOR_SERVER_URL` of programs whose `serverurl` is AUTO: one copy for all.
    default_url: Option<Arc<str>>,
    /// The policy of the process created last: the next one with equal options shares it.
    last_policy: Option<Arc<crate::procsup::Policy>>,
    last_die_report: Option<Instant>,
    /// The shutdown's plan: groups by descending (priority, name), fixed when it begins.
    stop_order: Vec<(i64, String)>,
    /// Groups of `stop_order` before this index are down; those from it to `stop_batch`
    /// (one priority) have been told to stop.
    stop_cursor: usize,
    stop_batch: usize,
    /// When to next log `waiting for x to stop` for stops that an RPC waits on.
    stop_report_at: Option<Instant>,
    /// Autostart classes (same group and process priority) not started yet. A class is
    /// started once every spawn of the previous one has been answered, so lower priorities
    /// are forked first while equal priorities spawn in parallel.
    start_queue: VecDeque<Vec<(String, String)>>,
    /// Spawns of the current autostart class that have not been answered yet.
    start_inflight: HashSet<ProcId>,
    /// Listener pools, the event serial and the TICK clock.
    bus: Bus,
    /// PROCESS_LOG / PROCESS_COMMUNICATION events from output pumps.
    events_rx: mpsc::Receiver<Event>,
    /// Answers that must reach their clients before the incarnation ends (the reply to
    /// `shutdown`/`restart` itself): each resolves once its response is on the socket.
    lingers: Vec<oneshot::Receiver<()>>,
    /// `depends_on` between the active processes.
    graph: crate::config::DependencyGraph,
    /// The graph indexed for walks done per message: direct dependents of each process,
    /// and each process's place in the dependency start order.
    dependents_of: HashMap<crate::config::ProcessKey, Vec<crate::config::ProcessKey>>,
    dep_rank: HashMap<crate::config::ProcessKey, usize>,
    /// Something changed that waiting starts or deferred stops may be waiting for.
    deps_dirty: bool,
    /// An essential process ended: the daemon shuts down and exits with this code.
    exit_code: Option<u8>,
}

/// What the daemon needs to start an orchestrator.
pub struct Setup {
    pub config: Arc<Config>,
    /// The reaper, spawner thread, process-tree scanner and pump runtime every runner uses.
    pub runners: crate::runner::Services,
    pub log: MainLogHandle,
    pub signals: mpsc::Receiver<DaemonSignal>,
    pub daemon_env: Vec<(OsString, OsString)>,
    /// Seeds AUTO log names; read from the OS by the caller.
    pub seed: u64,
    /// Where event serials continue from (a fresh one at boot, the last one on restart).
    pub serial: crate::events::event::Serial,
}

/// What an orchestrator is built from, whatever its shell.
struct Parts {
    config: Arc<Config>,
    log: MainLogHandle,
    signals: mpsc::Receiver<DaemonSignal>,
    facts: mpsc::Receiver<Fact>,
    daemon_env: Vec<(OsString, OsString)>,
    seed: u64,
    serial: crate::events::event::Serial,
}

impl Orchestrator {
    /// Builds the actor and its handle; the process table is created (and autostart
    /// processes started) when [`Orchestrator::run`] begins.
    pub fn new(setup: Setup) -> (Orchestrator, OrchestratorHandle) {
        let (facts_tx, facts) = mpsc::channel(FACT_INBOX);
        let shell = TokioShell::new(facts_tx, setup.runners, setup.log.clone());
        Orchestrator::with_shell(
            shell,
            Parts {
                config: setup.config,
                log: setup.log,
                signals: setup.signals,
                facts,
                daemon_env: setup.daemon_env,
                seed: setup.seed,
                serial: setup.serial,
            },
        )
    }
}

impl<S: Shell> Orchestrator<S> {
    fn with_shell(shell: S, parts: Parts) -> (Orchestrator<S>, OrchestratorHandle) {
        let (req_tx, requests) = mpsc::channel(handle::ORCH_INBOX);
        let (bus, events_rx) = Bus::new(
            parts.config.supervisord.identifier.clone(),
            parts.log.clone(),
            shell.wall_now(),
            parts.serial,
        );
        let default_url = parts.config.default_serverurl().map(Arc::from);
        let orch = Orchestrator {
            default_url,
            shell,
            requests,
            facts: parts.facts,
            signals: parts.signals,
            log: parts.log,
            latest: parts.config.clone(),
            config: parts.config,
            daemon_env: parts.daemon_env,
            groups: table::Groups::default(),
            by_id: HashMap::new(),
            waiters: HashMap::new(),
            autorecovery: AutoRecovery::new(),
            holds: HashMap::new(),
            lifecycle: Lifecycle::Running,
            last_policy: None,
            next_id: 1,
            rng: parts.seed | 1,
            last_die_report: None,
            stop_order: Vec::new(),
            stop_cursor: 0,
            stop_batch: 0,
            stop_report_at: None,
            start_queue: VecDeque::new(),
            start_inflight: HashSet::new(),
            bus,
            events_rx,
            lingers: Vec::new(),
            graph: crate::config::DependencyGraph::default(),
            dependents_of: HashMap::new(),
            dep_rank: HashMap::new(),
            deps_dirty: false,
            exit_code: None,
        };
        (orch, OrchestratorHandle::new(req_tx))
    }

    /// Creates the process table from the config and starts the autostart processes.
    fn boot(&mut self) {
        let config = self.config.clone();
        self.groups.reserve_exact(config.groups.len());
        for gc in &config.groups {
            self.create_group(gc.clone());
        }
        self.rebuild_graph();
        self.bus.publish(Event::supervisor_running());
        self.autostart();
    }

    /// Runs until shutdown or restart has stopped every process.
    pub async fn run(mut self) -> Exit {
        self.boot();
        loop {
            if let Some(restart) = self.settle() {
                self.linger().await;
                let code = self.exit_code.unwrap_or(0);
                // An essential process's end is no restart, whatever was asked since.
                let restart = restart && self.exit_code.is_none();
                return Exit { restart, signals: self.signals, serial: self.bus.serial(), code };
            }
            let report_due = match (self.lifecycle, self.last_die_report) {
                (Lifecycle::Stopping { .. }, Some(at)) => Some(at + DIE_REPORT_EVERY),
                _ => None,
            };
            let report = async move {
                match report_due {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            let stop_report_due = self.stop_report_at;
            let stop_report = async move {
                match stop_report_due {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            // TICK timers exist only while some pool subscribes to a TICK type.
            let tick_due = self.bus.next_tick(self.shell.now(), self.shell.wall_now());
            let tick = async move {
                match tick_due {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                Some(fact) = self.facts.recv() => self.on_fact(fact),
                Some(sig) = self.signals.recv() => self.on_signal(sig),
                Some(req) = self.requests.recv() => self.on_request(req),
                Some(event) = self.events_rx.recv() => self.bus.publish(event),
                () = report => self.report_waiting_to_die(),
                () = stop_report => self.report_waiting_to_stop(),
                () = tick => self.bus.tick(self.shell.wall_now()),
            }
        }
    }

    /// The loop's own work after each message: move a shutdown on, and report it at once
    /// when it begins. `Some(restart)` once every process is down.
    fn settle(&mut self) -> Option<bool> {
        if self.lifecycle == Lifecycle::Running {
            self.settle_dependencies();
        }
        if let Lifecycle::Stopping { restart } = self.lifecycle
            && self.advance_shutdown()
        {
            return Some(restart);
        }
        // Python reports at once, then at most every 3 s (`shutdown_report`).
        if matches!(self.lifecycle, Lifecycle::Stopping { .. }) && self.last_die_report.is_none() {
            self.report_waiting_to_die();
        }
        None
    }

    /// Waits (briefly) for the responses registered with [`Request::Linger`] to be sent.
    async fn linger(&mut self) {
        let all = std::mem::take(&mut self.lingers);
        let _ = tokio::time::timeout(LINGER_MAX, async {
            for rx in all {
                let _ = rx.await;
            }
        })
        .await;
    }

    fn ctx(&self, now: Instant) -> Ctx {
        Ctx {
            now,
            autorecovery_on: self.autorecovery.is_on() && self.lifecycle == Lifecycle::Running,
        }
    }
}
