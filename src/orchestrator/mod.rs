//! The orchestrator: the one actor that owns all mutable daemon state (the process table,
//! the autorecovery count, the config snapshot, pending waiters, the lifecycle). Runners
//! report facts into it, the RPC layer sends requests through an [`OrchestratorHandle`],
//! and it answers by feeding the pure state machine (`procsup::step`) and carrying out the
//! returned actions: `try_send` to runners, `try_send` to the log thread, oneshot replies.
//! It never awaits anything but its own inboxes, and does no IO.

pub mod describe;
pub mod handle;
pub mod msg;
pub mod names;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot};

use crate::config::{Config, GroupConfig, LogConfig, LogTarget, ProcessConfig};
use crate::events::{Bus, Event};
use crate::logio::Channel;
use crate::logio::mainlog::Level;
use crate::logio::mainlog_task::MainLogHandle;
use crate::procsup::{
    self, Action, AutoRecovery, Ctx, Input, Policy, Proc, ProcessState, Refusal, StartOutcome,
    WaitOutcome,
};
use crate::rpc::{Fault, FaultKind};
use crate::runner::{Fact, LogSpec, ProcId, Runner, RunnerCmd, RunnerSpec, SignalPurpose};
use crate::sys::clock;
use crate::sys::reaper::ReaperHandle;
use crate::sys::signals::DaemonSignal;

pub use handle::OrchestratorHandle;
pub use msg::{
    CommandCheck, Commands, DaemonState, LogChannel, Outcome, Pending, ProcessInfo, Request, Target,
};

/// Facts runners may have in flight. Runners `send().await` (the orchestrator always drains
/// its inboxes), so this only bounds memory under a burst, e.g. 1,000 processes exiting.
const FACT_INBOX: usize = 4096;

/// How often shutdown reports `waiting for … to die` (Python: at most every 3 s).
const DIE_REPORT_EVERY: Duration = Duration::from_secs(3);

/// How often a waited-on stop reports `waiting for x to stop` (Python: every 2 s).
const STOP_REPORT_EVERY: Duration = Duration::from_secs(2);
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lifecycle {
    Running,
    Stopping { restart: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WaitKind {
    /// `wait=false` starts: answered once the fork happened (or failed).
    Spawned,
    /// `wait=true` starts: answered when the process leaves STARTING.
    Start,
    /// `wait=true` stops: answered in a stopped state.
    Stop,
}

struct Waiter {
    kind: WaitKind,
    /// The name the fault names, as Python does: the spec as given, or `group:name`.
    label: String,
    reply: oneshot::Sender<Result<(), Fault>>,
}

/// One process instance in the table.
struct Entry {
    id: ProcId,
    config: ProcessConfig,
    proc: Proc,
    runner: mpsc::Sender<RunnerCmd>,
    stdout_path: Option<PathBuf>,
    stderr_path: Option<PathBuf>,
    /// The deadline last sent to the runner, so it is only told about changes.
    sent_deadline: Option<Instant>,
}

/// One active group: its config and its processes by name.
struct Group {
    config: GroupConfig,
    procs: BTreeMap<String, Entry>,
}

/// The actor.
pub struct Orchestrator {
    requests: mpsc::Receiver<Request>,
    facts: mpsc::Receiver<Fact>,
    facts_tx: mpsc::Sender<Fact>,
    signals: mpsc::Receiver<DaemonSignal>,
    reaper: ReaperHandle,
    log: MainLogHandle,
    /// The config the daemon runs from.
    config: Arc<Config>,
    /// The latest parsed config (after `reloadConfig`), which `addProcessGroup` reads.
    latest: Arc<Config>,
    daemon_env: Vec<(OsString, OsString)>,
    groups: BTreeMap<String, Group>,
    by_id: HashMap<ProcId, (String, String)>,
    waiters: HashMap<ProcId, Vec<Waiter>>,
    autorecovery: AutoRecovery,
    lifecycle: Lifecycle,
    next_id: ProcId,
    rng: u64,
    last_die_report: Option<Instant>,
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
}

/// What the daemon needs to start an orchestrator.
pub struct Setup {
    pub config: Arc<Config>,
    pub reaper: ReaperHandle,
    pub log: MainLogHandle,
    pub signals: mpsc::Receiver<DaemonSignal>,
    pub daemon_env: Vec<(OsString, OsString)>,
    /// Seeds AUTO log names; read from the OS by the caller.
    pub seed: u64,
    /// Where event serials continue from (a fresh one at boot, the last one on restart).
    pub serial: crate::events::event::Serial,
}

impl Orchestrator {
    /// Builds the actor and its handle; the process table is created (and autostart
    /// processes started) when [`Orchestrator::run`] begins.
    pub fn new(setup: Setup) -> (Orchestrator, OrchestratorHandle) {
        let (req_tx, requests) = mpsc::channel(handle::ORCH_INBOX);
        let (facts_tx, facts) = mpsc::channel(FACT_INBOX);
        let (bus, events_rx) = Bus::new(
            setup.config.supervisord.identifier.clone(),
            setup.log.clone(),
            clock::wall_now(),
            setup.serial,
        );
        let orch = Orchestrator {
            requests,
            facts,
            facts_tx,
            signals: setup.signals,
            reaper: setup.reaper,
            log: setup.log,
            latest: setup.config.clone(),
            config: setup.config,
            daemon_env: setup.daemon_env,
            groups: BTreeMap::new(),
            by_id: HashMap::new(),
            waiters: HashMap::new(),
            autorecovery: AutoRecovery::new(),
            lifecycle: Lifecycle::Running,
            next_id: 1,
            rng: setup.seed | 1,
            last_die_report: None,
            stop_report_at: None,
            start_queue: VecDeque::new(),
            start_inflight: HashSet::new(),
            bus,
            events_rx,
            lingers: Vec::new(),
        };
        (orch, OrchestratorHandle::new(req_tx))
    }

    /// Runs until shutdown or restart has stopped every process.
    pub async fn run(mut self) -> Exit {
        let config = self.config.clone();
        for gc in &config.groups {
            self.create_group(gc.clone());
        }
        self.bus.publish(Event::supervisor_running());
        self.autostart();
        loop {
            if let Lifecycle::Stopping { restart } = self.lifecycle
                && self.advance_shutdown()
            {
                self.linger().await;
                return Exit { restart, signals: self.signals, serial: self.bus.serial() };
            }
            // Python reports at once, then at most every 3 s (`shutdown_report`).
            if matches!(self.lifecycle, Lifecycle::Stopping { .. })
                && self.last_die_report.is_none()
            {
                self.report_waiting_to_die();
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
            let tick_due = self.bus.next_tick(clock::now(), clock::wall_now());
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
                () = tick => self.bus.tick(clock::wall_now()),
            }
        }
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

    // ---- the table -------------------------------------------------------------------

    /// Groups in start order: ascending (priority, name).
    fn group_order(&self) -> Vec<String> {
        let mut v: Vec<(&i64, &String)> =
            self.groups.values().map(|g| (&g.config.priority, &g.config.name)).collect();
        v.sort();
        v.into_iter().map(|(_, n)| n.clone()).collect()
    }

    /// A group's processes in start order: ascending (priority, name).
    fn proc_order(group: &Group) -> Vec<String> {
        let mut v: Vec<(&i64, &String)> =
            group.procs.values().map(|e| (&e.config.priority, &e.config.name)).collect();
        v.sort();
        v.into_iter().map(|(_, n)| n.clone()).collect()
    }

    /// Every process, groups and members in start order.
    fn all_in_order(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for g in self.group_order() {
            if let Some(group) = self.groups.get(&g) {
                out.extend(Self::proc_order(group).into_iter().map(|p| (g.clone(), p)));
            }
        }
        out
    }

    fn entry(&self, group: &str, name: &str) -> Option<&Entry> {
        self.groups.get(group).and_then(|g| g.procs.get(name))
    }

    fn next_random(&mut self) -> [u8; 8] {
        // xorshift64*: AUTO log names only need to differ, not to be secret.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes()
    }

    fn log_path(
        &mut self,
        cfg: &ProcessConfig,
        log: &LogConfig,
        channel: Channel,
    ) -> Option<PathBuf> {
        match &log.logfile {
            LogTarget::None => None,
            LogTarget::Path(p) => Some(p.clone()),
            LogTarget::Auto => {
                let random = crate::logio::autoname::random_part(self.next_random());
                let file = crate::logio::autoname::auto_log_file_name(
                    &cfg.name,
                    channel,
                    &self.config.supervisord.identifier,
                    &random,
                );
                Some(self.config.supervisord.childlogdir.join(file))
            }
        }
    }

    fn create_group(&mut self, gc: GroupConfig) {
        // The pool exists before PROCESS_GROUP_ADDED, so it receives its own.
        let pool = self.bus.add_pool(&gc);
        let mut procs = BTreeMap::new();
        for pc in &gc.processes {
            let id = self.next_id;
            self.next_id += 1;
            let stdout_path = self.log_path(pc, &pc.stdout, Channel::Stdout);
            // With redirect_stderr there is no stderr log (Python ignores stderr_logfile).
            let stderr_path = if pc.redirect_stderr {
                None
            } else {
                self.log_path(pc, &pc.stderr, Channel::Stderr)
            };
            let log_spec = |path: &Option<PathBuf>, lc: &LogConfig| LogSpec {
                path: path.clone(),
                maxbytes: lc.maxbytes,
                backups: lc.backups,
                capture_maxbytes: lc.capture_maxbytes,
                create_now: lc.logfile == LogTarget::Auto,
                events_enabled: lc.events_enabled,
            };
            let wants_events = [&pc.stdout, &pc.stderr]
                .iter()
                .any(|lc| lc.events_enabled || lc.capture_maxbytes > 0);
            let spec = RunnerSpec {
                id,
                name: pc.name.clone(),
                group: gc.name.clone(),
                command: pc.command.clone(),
                environment: pc.environment.clone(),
                directory: pc.directory.clone(),
                umask: pc.umask,
                user: pc.user.clone(),
                redirect_stderr: pc.redirect_stderr,
                server_url: pc.serverurl.clone().or_else(|| self.config.default_serverurl()),
                stdout: log_spec(&stdout_path, &pc.stdout),
                stderr: log_spec(&stderr_path, &pc.stderr),
                strip_ansi: self.config.supervisord.strip_ansi,
                publisher: wants_events.then(|| self.bus.publisher()),
                pool: pool.clone(),
            };
            let runner = Runner::spawn(
                spec,
                self.facts_tx.clone(),
                self.reaper.clone(),
                self.daemon_env.clone(),
            );
            let entry = Entry {
                id,
                proc: Proc::new(pc.name.clone(), policy_of(pc)),
                config: pc.clone(),
                runner,
                stdout_path,
                stderr_path,
                sent_deadline: None,
            };
            self.by_id.insert(id, (gc.name.clone(), pc.name.clone()));
            procs.insert(pc.name.clone(), entry);
        }
        let name = gc.name.clone();
        self.groups.insert(gc.name.clone(), Group { config: gc, procs });
        self.bus.publish(Event::group_added(&name));
    }

    fn autostart_due(&self, g: &str, p: &str) -> bool {
        self.entry(g, p).is_some_and(|e| {
            e.config.autostart
                && e.proc.laststart().is_none()
                && e.proc.state() == ProcessState::Stopped
        })
    }

    /// Python's main-loop autostart: every never-started `autostart` process, in start
    /// order, queued by priority class.
    fn autostart(&mut self) {
        if self.lifecycle != Lifecycle::Running {
            return;
        }
        let mut last_key = None;
        for (g, p) in self.all_in_order() {
            if !self.autostart_due(&g, &p) {
                continue;
            }
            let key = self.groups.get(&g).and_then(|grp| {
                grp.procs.get(&p).map(|e| (grp.config.priority, e.config.priority))
            });
            match self.start_queue.back_mut() {
                Some(class) if key == last_key => class.push((g, p)),
                _ => self.start_queue.push_back(vec![(g, p)]),
            }
            last_key = key;
        }
        self.next_start_class();
    }

    /// Starts the next autostart class once the current one has been forked.
    fn next_start_class(&mut self) {
        while self.start_inflight.is_empty() && self.lifecycle == Lifecycle::Running {
            let Some(class) = self.start_queue.pop_front() else { return };
            for (g, p) in class {
                if !self.autostart_due(&g, &p) {
                    continue;
                }
                self.feed(&g, &p, Input::Start);
                if let Some(e) = self.entry(&g, &p)
                    && e.proc.state() == ProcessState::Starting
                    && e.proc.pid().is_none()
                {
                    self.start_inflight.insert(e.id);
                }
            }
        }
    }

    /// A spawn was answered: the autostart queue may move on.
    fn spawn_answered(&mut self, id: ProcId) {
        if self.start_inflight.remove(&id) {
            self.next_start_class();
        }
    }

    // ---- feeding the state machine -----------------------------------------------------

    /// Steps one process and carries out the actions.
    fn feed(&mut self, group: &str, name: &str, input: Input) {
        let now = clock::now();
        let ctx = self.ctx(now);
        let purpose = if matches!(input, Input::Signal { .. }) {
            SignalPurpose::Signal
        } else {
            SignalPurpose::Kill
        };
        let Some(entry) = self.groups.get_mut(group).and_then(|g| g.procs.get_mut(name)) else {
            return;
        };
        let actions = procsup::step(&mut entry.proc, input, &ctx);
        let id = entry.id;
        let mut resolved = Vec::new();
        let mut changes = Vec::new();
        for action in actions {
            match action {
                Action::Spawn => send_cmd(&self.log, &entry.runner, RunnerCmd::Spawn),
                Action::Signal { pid, sig, group } => send_cmd(
                    &self.log,
                    &entry.runner,
                    RunnerCmd::Signal { pid, sig, group, purpose },
                ),
                // The runner keeps one timer: the earliest deadline, synced below.
                Action::StartTimer { .. } | Action::CancelTimer { .. } => {}
                Action::Emit(change) => changes.push(change),
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
            send_cmd(&self.log, &entry.runner, RunnerCmd::Deadline(deadline));
        }
        for change in changes {
            if self.bus.is_pool(group) {
                self.bus.member_running(group, name, change.to == ProcessState::Running);
            }
            self.bus.publish(Event::process_state(name, group, &change));
        }
        for outcome in resolved {
            self.resolve(id, outcome);
        }
    }

    fn resolve(&mut self, id: ProcId, outcome: WaitOutcome) {
        let Some(list) = self.waiters.get_mut(&id) else { return };
        let kind = match outcome {
            WaitOutcome::Start(_) => WaitKind::Start,
            WaitOutcome::Stopped => WaitKind::Stop,
        };
        let (now, keep): (Vec<Waiter>, Vec<Waiter>) =
            std::mem::take(list).into_iter().partition(|w| w.kind == kind);
        *list = keep;
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

    fn resolve_spawned(&mut self, id: ProcId, res: Result<(), ()>) {
        let Some(list) = self.waiters.get_mut(&id) else { return };
        let (now, keep): (Vec<Waiter>, Vec<Waiter>) =
            std::mem::take(list).into_iter().partition(|w| w.kind == WaitKind::Spawned);
        *list = keep;
        for w in now {
            let _ = w.reply.send(res.map_err(|()| Fault::with(FaultKind::SpawnError, &w.label)));
        }
    }

    fn park(&mut self, id: ProcId, kind: WaitKind, label: String) -> Outcome {
        let (reply, rx) = oneshot::channel();
        self.waiters.entry(id).or_default().push(Waiter { kind, label, reply });
        Outcome::Wait(rx)
    }

    // ---- facts -------------------------------------------------------------------------

    fn on_fact(&mut self, fact: Fact) {
        let id = match &fact {
            Fact::Spawned { id, .. }
            | Fact::SpawnFailed { id, .. }
            | Fact::Exited { id, .. }
            | Fact::Tick { id }
            | Fact::SignalFailed { id, .. } => *id,
            Fact::Log { level, message } => {
                self.log.log(*level, message.clone());
                return;
            }
        };
        // A fact from the runner of a group that has since been removed.
        let Some((g, p)) = self.by_id.get(&id).cloned() else { return };
        match fact {
            Fact::Spawned { pid, .. } => {
                self.feed(&g, &p, Input::Spawned { pid });
                self.resolve_spawned(id, Ok(()));
                self.spawn_answered(id);
            }
            Fact::SpawnFailed { message, .. } => {
                self.feed(&g, &p, Input::SpawnFailed { message });
                self.resolve_spawned(id, Err(()));
                self.spawn_answered(id);
            }
            Fact::Exited { pid, status, .. } => self.feed(&g, &p, Input::Exited { pid, status }),
            Fact::Tick { .. } => {
                // The runner's timer fired; make sure it is re-armed even if nothing changed.
                if let Some(e) = self.groups.get_mut(&g).and_then(|grp| grp.procs.get_mut(&p)) {
                    e.sent_deadline = None;
                }
                self.feed(&g, &p, Input::Tick);
            }
            Fact::SignalFailed { purpose, error, .. } => {
                let input = match purpose {
                    SignalPurpose::Kill => Input::KillFailed { error },
                    SignalPurpose::Signal => Input::SignalFailed { error },
                };
                self.feed(&g, &p, input);
            }
            Fact::Log { .. } => {}
        }
    }

    fn on_signal(&mut self, sig: DaemonSignal) {
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
                for g in self.groups.values() {
                    for e in g.procs.values() {
                        send_cmd(&self.log, &e.runner, RunnerCmd::ReopenLogs);
                    }
                }
            }
        }
    }

    fn begin_stopping(&mut self, restart: bool) {
        if self.lifecycle == Lifecycle::Running {
            self.lifecycle = Lifecycle::Stopping { restart };
            self.bus.publish(Event::supervisor_stopping());
            self.last_die_report = None;
            self.start_queue.clear();
            self.start_inflight.clear();
        }
    }

    /// Python's ordered shutdown: stop the group with the highest priority that still has
    /// processes up, and only move on once all of them are down. True when all are down.
    fn advance_shutdown(&mut self) -> bool {
        let order = self.group_order();
        for g in order.iter().rev() {
            let Some(group) = self.groups.get(g) else { continue };
            let mut members = Self::proc_order(group);
            members.reverse();
            let up: Vec<String> = members
                .into_iter()
                .filter(|p| group.procs.get(p).is_some_and(|e| !e.proc.state().is_stopped()))
                .collect();
            if up.is_empty() {
                continue;
            }
            for p in &up {
                let state = self.entry(g, p).map(|e| e.proc.state());
                if matches!(
                    state,
                    Some(ProcessState::Starting | ProcessState::Running | ProcessState::Backoff)
                ) {
                    self.feed(g, p, Input::Shutdown);
                }
            }
            // Feeding may have stopped them at once (BACKOFF → FATAL): look again.
            let still_up = self
                .groups
                .get(g)
                .is_some_and(|grp| grp.procs.values().any(|e| !e.proc.state().is_stopped()));
            if still_up {
                return false;
            }
        }
        true
    }

    /// Python's `stop_report`: while a `stopProcess(wait=true)` waits on a STOPPING process,
    /// INFO `waiting for x to stop` at once and then every 2 s.
    fn report_waiting_to_stop(&mut self) {
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
        self.stop_report_at = any.then(|| clock::now() + STOP_REPORT_EVERY);
    }

    fn report_waiting_to_die(&mut self) {
        self.last_die_report = Some(clock::now());
        // In start order, as Python walks its groups and their processes.
        let names: Vec<String> = self
            .all_in_order()
            .into_iter()
            .filter_map(|(g, p)| self.entry(&g, &p))
            .filter(|e| !e.proc.state().is_stopped())
            .map(|e| e.config.name.clone())
            .collect();
        if !names.is_empty() {
            let line = procsup::LogLine::WaitingToDie { names };
            self.log.log(line.level(), line.to_string());
        }
    }

    // ---- requests ----------------------------------------------------------------------

    fn state(&self) -> DaemonState {
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

    fn on_request(&mut self, req: Request) {
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
                let (now, wall) = (clock::now(), clock::wall_now());
                let all = self
                    .groups
                    .values()
                    .flat_map(|g| g.procs.values())
                    .map(|e| self.info_of(e, now, wall))
                    .collect();
                let _ = reply.send(all);
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
                let active = self.groups.keys().cloned().collect();
                let _ = reply.send((self.latest.groups.clone(), active));
            }
            Request::CurrentConfig { reply } => {
                let _ = reply.send(self.config.clone());
            }
            Request::LogPath { spec, channel, reply } => {
                let res = self.refuse_if_stopping().and_then(|()| {
                    let (g, p) = self.lookup_process(&spec)?;
                    let e =
                        self.entry(&g, &p).ok_or_else(|| Fault::with(FaultKind::BadName, &spec))?;
                    Ok(match channel {
                        LogChannel::Stdout => e.stdout_path.clone(),
                        LogChannel::Stderr => e.stderr_path.clone(),
                    })
                });
                let _ = reply.send(res);
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
            Request::DisableAutoRecovery { reply } => {
                self.autorecovery.disable();
                let _ = reply.send(());
            }
            Request::RemoteCommEvent { type_, data, reply } => {
                // Python has no shutdown check here: it works while stopping, too.
                self.bus.publish(Event::remote_communication(&type_, &data));
                let _ = reply.send(());
            }
            Request::EnableAutoRecovery { reply } => {
                if self.autorecovery.enable() {
                    for (g, p) in self.all_in_order() {
                        self.feed(&g, &p, Input::AutoRecoveryOn);
                    }
                }
                let _ = reply.send(());
            }
        }
    }

    /// Python's `_getGroupAndProcess` for a spec that must name one process.
    fn lookup_process(&self, spec: &str) -> Result<(String, String), Fault> {
        let s = names::split(spec);
        let bad = || Fault::with(FaultKind::BadName, spec);
        let group = self.groups.get(s.group).ok_or_else(bad)?;
        let name = s.process.ok_or_else(bad)?;
        group.procs.get(name).ok_or_else(bad)?;
        Ok((s.group.to_string(), name.to_string()))
    }

    /// The processes a target covers, in start order, with the label faults use. `single`
    /// is true when the spec names one process.
    fn resolve_target(&self, target: &Target) -> Result<(Vec<Member>, bool), Fault> {
        match target {
            Target::All => Ok((
                self.all_in_order().into_iter().map(|(g, p)| (names::key(&g, &p), g, p)).collect(),
                false,
            )),
            Target::IoNodes => Ok((
                self.all_in_order()
                    .into_iter()
                    .filter(|(g, p)| self.entry(g, p).is_some_and(|e| e.config.io_node))
                    .map(|(g, p)| (names::key(&g, &p), g, p))
                    .collect(),
                false,
            )),
            Target::Processes(list) => Ok((
                list.iter()
                    .filter(|(g, p)| self.entry(g, p).is_some())
                    .map(|(g, p)| (names::key(g, p), g.clone(), p.clone()))
                    .collect(),
                false,
            )),
            Target::Spec(spec) => {
                let s = names::split(spec);
                let bad = || Fault::with(FaultKind::BadName, spec);
                let group = self.groups.get(s.group).ok_or_else(bad)?;
                match s.process {
                    Some(p) => {
                        group.procs.get(p).ok_or_else(bad)?;
                        Ok((vec![(spec.clone(), s.group.to_string(), p.to_string())], true))
                    }
                    None => Ok((
                        Self::proc_order(group)
                            .into_iter()
                            .map(|p| (names::key(s.group, &p), s.group.to_string(), p))
                            .collect(),
                        false,
                    )),
                }
            }
        }
    }

    fn commands(&self, target: &Target) -> Result<Commands, Fault> {
        let (members, _single) = self.resolve_target(target)?;
        let list = members
            .into_iter()
            .filter_map(|(_, g, p)| {
                let e = self.entry(&g, &p)?;
                let path_env =
                    e.config.environment.iter().rev().find(|(k, _)| k == "PATH").map(|(_, v)| v);
                Some(CommandCheck {
                    command: e.config.command.clone(),
                    path_env: path_env.cloned(),
                    running: e.proc.state().is_running(),
                    group: g,
                    name: p,
                })
            })
            .collect();
        let daemon_path = self.daemon_env.iter().find(|(k, _)| k == "PATH").map(|(_, v)| v.clone());
        Ok(Commands { list, daemon_path })
    }

    fn pending(g: &str, p: &str, outcome: Outcome) -> Pending {
        Pending { name: p.to_string(), group: g.to_string(), outcome }
    }

    fn start(
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
            if !single && !idempotent && state.is_running() {
                continue;
            }
            let outcome = self.start_one(&label, &g, &p, wait, idempotent);
            if single && let Outcome::Done(Err(f)) = outcome {
                return Err(f);
            }
            out.push(Self::pending(&g, &p, outcome));
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
        self.feed(g, p, Input::Start);
        let Some(e) = self.entry(g, p) else { return Outcome::Done(Ok(())) };
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

    fn stop(&mut self, target: &Target, wait: bool) -> Result<Vec<Pending>, Fault> {
        let (list, single) = self.resolve_target(target)?;
        let mut out = Vec::with_capacity(list.len());
        for (label, g, p) in list {
            let Some((id, check)) = self.entry(&g, &p).map(|e| (e.id, e.proc.check_stop())) else {
                continue;
            };
            if let Err(_refusal) = check {
                if single {
                    return Err(Fault::with(FaultKind::NotRunning, &label));
                }
                continue;
            }
            self.feed(&g, &p, Input::Stop);
            let done = self.entry(&g, &p).is_none_or(|e| e.proc.stop_wait_done());
            let outcome = if wait && !done {
                let parked = self.park(id, WaitKind::Stop, label);
                if self.stop_report_at.is_none() {
                    self.stop_report_at = Some(clock::now());
                }
                parked
            } else {
                Outcome::Done(Ok(()))
            };
            out.push(Self::pending(&g, &p, outcome));
        }
        Ok(out)
    }

    fn signal(&mut self, target: &Target, sig: i32) -> Result<Vec<Pending>, Fault> {
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
            out.push(Self::pending(&g, &p, Outcome::Done(Ok(()))));
        }
        Ok(out)
    }

    fn clear_logs(&mut self, target: &Target) -> Result<Vec<Pending>, Fault> {
        let (list, _single) = self.resolve_target(target)?;
        let mut out = Vec::with_capacity(list.len());
        for (label, g, p) in list {
            let Some(e) = self.entry(&g, &p) else { continue };
            let (reply, rx) = oneshot::channel();
            let outcome = match e.runner.try_send(RunnerCmd::ClearLogs { label, reply }) {
                Ok(()) => Outcome::Wait(rx),
                Err(_) => Outcome::Done(Err(Fault::with(FaultKind::Failed, names::key(&g, &p)))),
            };
            out.push(Self::pending(&g, &p, outcome));
        }
        Ok(out)
    }

    fn send_stdin(
        &mut self,
        spec: &str,
        data: Vec<u8>,
    ) -> Result<oneshot::Receiver<Result<(), crate::runner::StdinError>>, Fault> {
        let (g, p) = self.lookup_process(spec)?;
        let e = self.entry(&g, &p).ok_or_else(|| Fault::with(FaultKind::BadName, spec))?;
        if e.proc.pid().is_none() || e.proc.state() == ProcessState::Stopping {
            return Err(Fault::with(FaultKind::NotRunning, spec));
        }
        let (reply, rx) = oneshot::channel();
        e.runner
            .try_send(RunnerCmd::WriteStdin { data, reply })
            .map_err(|_| Fault::with(FaultKind::Failed, format!("{spec}: runner is busy")))?;
        Ok(rx)
    }

    fn process_info(&self, spec: &str) -> Result<ProcessInfo, Fault> {
        let (g, p) = self.lookup_process(spec)?;
        let e = self.entry(&g, &p).ok_or_else(|| Fault::with(FaultKind::BadName, spec))?;
        Ok(self.info_of(e, clock::now(), clock::wall_now()))
    }

    fn info_of(&self, e: &Entry, now: Instant, wall: SystemTime) -> ProcessInfo {
        let wall_secs = wall.duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
        // An Instant becomes epoch seconds by its distance from now.
        let epoch = |at: Instant| {
            (wall_secs - now.saturating_duration_since(at).as_secs_f64()).floor() as i64
        };
        let start = e.proc.laststart().map_or(0, epoch);
        let stop = e.proc.laststop().map_or(0, epoch);
        let description = e.proc.description(now).render(|at| {
            let secs = at.map_or(0, epoch);
            describe::local_tm(secs).map(|tm| describe::stop_time(&tm)).unwrap_or_default()
        });
        // `to_string_lossy` is what `display` prints, without core::fmt.
        let path_str = |p: &Option<PathBuf>| {
            p.as_ref().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default()
        };
        ProcessInfo {
            name: e.config.name.clone(),
            group: e.config.group.clone(),
            start,
            stop,
            now: wall_secs.floor() as i64,
            state: e.proc.state(),
            spawnerr: e.proc.spawnerr().unwrap_or_default().to_string(),
            exitstatus: e.proc.exitstatus().map_or(0, i64::from),
            stdout_logfile: path_str(&e.stdout_path),
            stderr_logfile: path_str(&e.stderr_path),
            pid: e.proc.pid().map_or(0, i64::from),
            description,
        }
    }

    // ---- reread / add / remove -----------------------------------------------------------

    fn reread(&mut self, config: Config) -> [Vec<String>; 3] {
        let new = Arc::new(config);
        let mut added = Vec::new();
        let mut changed = Vec::new();
        for gc in &new.groups {
            match self.groups.get(&gc.name) {
                None => added.push(gc.name.clone()),
                Some(active) if active.config != *gc => changed.push(gc.name.clone()),
                Some(_) => {}
            }
        }
        let removed = self
            .group_order()
            .into_iter()
            .filter(|name| new.group(name).is_none())
            .collect::<Vec<_>>();
        self.latest = new;
        [added, changed, removed]
    }

    fn add_group(&mut self, name: &str) -> Result<(), Fault> {
        let gc = self
            .latest
            .group(name)
            .cloned()
            .ok_or_else(|| Fault::with(FaultKind::BadName, name))?;
        if self.groups.contains_key(name) {
            return Err(Fault::with(FaultKind::AlreadyAdded, name));
        }
        self.create_group(gc);
        // New processes start as Python's next main-loop pass would start them.
        self.autostart();
        Ok(())
    }

    fn remove_group(&mut self, name: &str) -> Result<(), Fault> {
        let group = self.groups.get(name).ok_or_else(|| Fault::with(FaultKind::BadName, name))?;
        if group.procs.values().any(|e| !e.proc.state().is_stopped()) {
            return Err(Fault::with(FaultKind::StillRunning, name));
        }
        if let Some(group) = self.groups.remove(name) {
            for e in group.procs.values() {
                self.by_id.remove(&e.id);
                self.waiters.remove(&e.id);
                self.spawn_answered(e.id);
                send_cmd(&self.log, &e.runner, RunnerCmd::Retire);
            }
            // Python unsubscribes the pool before announcing the removal.
            self.bus.remove_pool(name);
            self.bus.publish(Event::group_removed(name));
        }
        Ok(())
    }
}

/// A process a target covers: (label for faults, group, name).
type Member = (String, String, String);

/// The orchestrator never waits on a runner: a full inbox is a bug, logged, not awaited.
fn send_cmd(log: &MainLogHandle, runner: &mpsc::Sender<RunnerCmd>, cmd: RunnerCmd) {
    if let Err(e) = runner.try_send(cmd) {
        log.log(Level::Error, format!("runner inbox unavailable, command dropped: {e}"));
    }
}

/// A program's options as the state machine's policy.
pub fn policy_of(pc: &ProcessConfig) -> Policy {
    Policy {
        startsecs: pc.startsecs,
        startretries: pc.startretries,
        autorestart: match pc.autorestart {
            crate::config::AutoRestart::False => procsup::AutoRestart::False,
            crate::config::AutoRestart::Unexpected => procsup::AutoRestart::Unexpected,
            crate::config::AutoRestart::True => procsup::AutoRestart::True,
        },
        exitcodes: pc.exitcodes.iter().map(|&c| i32::from(c)).collect(),
        stopsignal: pc.stopsignal,
        stopwaitsecs: pc.stopwaitsecs,
        stopasgroup: pc.stopasgroup,
        killasgroup: pc.killasgroup,
    }
}
