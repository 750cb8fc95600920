//! The per-process shell: one task per process instance that carries out what the
//! orchestrator decided (spawn, signal, the next deadline) and reports facts back (`Spawned`,
//! `SpawnFailed`, `Exited`, `Tick`). It decides nothing. The blocking work of a spawn
//! (`/etc/passwd`, stats, opening log files, the clone) runs on the spawner thread
//! ([`spawner`]); output pumps run on the pump runtime and own their log writers, which the
//! runner reaches with [`LogCtl`] messages. A runner itself never blocks, so it can live on
//! the orchestrator's thread.

mod readiness;
pub mod spawner;

pub use readiness::ReadyWatch;

use std::ffi::OsString;
use std::future::Future;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use smallvec::SmallVec;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Sleep;

use crate::logio::pump::{self, LogCtl, LogCtlSender, PumpOptions};
use crate::logio::{Channel, RotatingWriter};
use crate::sys::proctree::{self, Member, ProcKey, Scanner};
use crate::sys::reaper::{Reaped, ReaperHandle};
use crate::sys::spawn::{self, SpawnError, SpawnSpec, SupervisorVars};
pub use spawner::Spawner;

/// What every runner shares: where children are started, reaped and pumped.
#[derive(Clone, Debug)]
pub struct Services {
    pub reaper: ReaperHandle,
    pub spawner: Spawner,
    /// Finds the descendants of a stopped process (`stopastree`).
    pub scanner: Scanner,
    /// The pump runtime: output pumps and log writers run there, off the orchestrator's
    /// thread, so a log write that blocks never stalls the control plane.
    pub pumps: tokio::runtime::Handle,
    /// The daemon's environment, the base of every child's.
    pub daemon_env: Arc<Vec<(OsString, OsString)>>,
}

/// A process instance's identity for the lifetime of its runner. Facts carry it so that a
/// fact from a runner of a removed group (or a previous config) is recognised as stale.
pub type ProcId = u64;

/// Where one channel's output goes.
#[derive(Debug, Clone)]
pub struct LogSpec {
    /// `None` for `NONE`; AUTO is already resolved to a path by the orchestrator. Shared
    /// with the log's writer.
    pub path: Option<Arc<Path>>,
    pub maxbytes: u64,
    pub backups: u32,
    pub capture_maxbytes: u64,
    /// AUTO logs are created empty when the process is created, as Python does at startup.
    pub create_now: bool,
    /// `*_events_enabled`: PROCESS_LOG events for this channel's output.
    pub events_enabled: bool,
    /// `*_syslog`: each output line to syslog too.
    pub syslog: bool,
    /// `*_log_prefix`.
    pub prefix: Option<Box<crate::config::LinePrefix>>,
    /// Shared with the orchestrator's table entry, which reports them in metrics.
    pub counters: std::sync::Arc<pump::OutputCounters>,
}

/// Everything a runner needs to spawn its process; fixed for the runner's lifetime.
#[derive(Debug, Clone)]
pub struct RunnerSpec {
    pub id: ProcId,
    /// The process's config, shared with the table entry: name, group, command,
    /// environment, directory, umask, user, `redirect_stderr`, `stopastree`.
    pub config: Arc<crate::config::ProcessConfig>,
    /// Shared by every process whose `serverurl` is AUTO.
    pub server_url: Option<Arc<str>>,
    pub stdout: LogSpec,
    pub stderr: LogSpec,
    pub strip_ansi: bool,
    /// Where output events go; set when a channel has events or capture mode enabled.
    pub publisher: Option<crate::events::Publisher>,
    /// For `[eventlistener:x]` processes: the pool that gets the child's stdin and stdout
    /// (the protocol channel) instead of the stdout log pump.
    pub pool: Option<crate::events::PoolHandle>,
    /// A readiness the process announces itself (`log:`, `notify`).
    pub readiness: Option<ReadyWatch>,
    /// The daemon log, set only when `loglevel` is debug or lower: each chunk of output is
    /// then logged there too, and the end of each output pipe is reported.
    pub mainlog: Option<crate::logio::mainlog_task::MainLogHandle>,
    /// An `[fcgi-program:x]`'s socket, the child's fd 0 (shared by the group's processes),
    /// or why it could not be created (then every spawn fails with that message).
    pub fcgi_socket: Option<Result<std::sync::Arc<OwnedFd>, String>>,
    /// The daemon log, whose thread sends `*_syslog` lines (set when a channel has it).
    pub syslog: Option<crate::logio::mainlog_task::MainLogHandle>,
    /// The creation of the AUTO logs (`LogSpec::create_now`), done once: by the preparing
    /// thread, or by the first spawn if it gets there first.
    pub auto_logs: crate::logio::autoname::CreateOnce,
}

/// What the orchestrator asks of a runner.
#[derive(Debug)]
pub enum RunnerCmd {
    /// Fork and exec; answer with `Spawned` or `SpawnFailed`.
    Spawn,
    /// `kill(pid, sig)` (or the group); failures other than ESRCH come back as
    /// `SignalFailed` with `purpose` so the orchestrator knows which input to feed.
    Signal { pid: u32, sig: i32, group: bool, purpose: SignalPurpose },
    /// The process's next deadline changed: sleep until it (or not at all) and send `Tick`.
    Deadline(Option<Instant>),
    /// `sendProcessStdin`: write the bytes to the child's stdin.
    WriteStdin { data: Vec<u8>, reply: oneshot::Sender<Result<(), StdinError>> },
    /// SIGUSR2: reopen both logs by name.
    ReopenLogs,
    /// `clearProcessLogs`: truncate both logs (backups too, as Python removes them).
    ClearLogs { label: String, reply: oneshot::Sender<Result<(), crate::fault::Fault>> },
    /// The process is gone from the config: end the task (after its child is gone).
    Retire,
}

/// Why a signal was sent, so a failure can be fed back as the right input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalPurpose {
    /// Part of a stop (stopsignal or SIGKILL).
    Kill,
    /// A `signalProcess` request.
    Signal,
}

/// Why `sendProcessStdin` failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StdinError {
    /// No child (NOT_RUNNING).
    NotRunning,
    /// The child closed its stdin (NO_FILE).
    Closed,
}

/// Facts a runner reports. The orchestrator feeds them to the state machine.
#[derive(Debug)]
pub enum Fact {
    Spawned {
        id: ProcId,
        pid: u32,
    },
    SpawnFailed {
        id: ProcId,
        message: String,
    },
    Exited {
        id: ProcId,
        pid: u32,
        status: crate::procsup::ExitStatus,
    },
    /// The deadline the orchestrator set has passed.
    Tick {
        id: ProcId,
    },
    SignalFailed {
        id: ProcId,
        purpose: SignalPurpose,
        error: String,
    },
    /// A log line the runner wants in the daemon log (level, text).
    Log {
        level: crate::logio::mainlog::Level,
        message: String,
    },
    /// The child exited and its output pipe is no longer watched for it (sent only under
    /// a debug `loglevel`, before `Exited`, for Python's DEBG `fd N closed, stopped
    /// monitoring <POutputDispatcher …>` line). `process` and `dispatcher` are addresses
    /// that stand in for Python's object ids; `kind` is Python's dispatcher class.
    OutputClosed {
        id: ProcId,
        fd: i32,
        channel: Channel,
        kind: &'static str,
        process: usize,
        dispatcher: usize,
    },
    /// The process announced readiness (`ready` ) or a status: a `log:` line matched
    /// (`pid` is the child whose output it was), or a `notify` datagram arrived.
    Announced {
        id: ProcId,
        pid: Option<u32>,
        ready: bool,
        status: Option<String>,
    },
    /// One attempt of a readiness or health check ended (from the check's task, which
    /// the orchestrator starts through its shell; `generation` tells stale ones apart).
    Check {
        id: ProcId,
        kind: CheckKind,
        generation: u64,
        outcome: Result<(), String>,
    },
}

/// Which check of a process a [`Fact::Check`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckKind {
    /// `ready_check`: attempts while STARTING.
    Ready,
    /// `health_check`: attempts while RUNNING.
    Health,
}

/// A live child as the runner sees it.
struct Live {
    pid: u32,
    exit: oneshot::Receiver<Reaped>,
}

/// The runner task's state. The task is this and a few bytes more (see [`Runner::run`]):
/// it exists for every process, idle or not, so what only some runners need at some
/// moments lives in [`Cold`], boxed and made on first use.
pub struct Runner {
    spec: Arc<RunnerSpec>,
    inbox: crate::inbox::Receiver<RunnerCmd>,
    facts: mpsc::Sender<Fact>,
    services: Arc<Services>,
    /// The log writers of this process's pumps that may still run (a pump outlives its
    /// child while a grandchild holds the pipe), by channel. One pump's two channels are
    /// kept inline: a heap vector would be another allocation per process.
    logs: SmallVec<[(Channel, LogCtlSender); 2]>,
    live: Option<Live>,
    /// The live child's stdin (not for listeners, whose stdin carries events): a plain
    /// nonblocking descriptor, registered with tokio only while a write waits for room
    /// (then it is in [`Cold::stdin_wait`]).
    stdin: Option<OwnedFd>,
    /// The deadline the orchestrator set, as a timer that exists only while one is set.
    deadline: Option<Pin<Box<Sleep>>>,
    /// Rarely used state; `None` whenever none of it is in use.
    cold: Option<Box<Cold>>,
    /// The `notify` socket's reader, bound before the first spawn (the spawner gives the
    /// socket file to the process's user and the child its `NOTIFY_SOCKET`). Not in
    /// [`Cold`]: it lives as long as the runner.
    notify: Option<readiness::Watcher>,
    retiring: bool,
}

/// What a runner needs only now and then. Made on first use, dropped when empty again.
#[derive(Default)]
struct Cold {
    /// `sendProcessStdin` bytes the pipe had no room for yet, and the pipe registered to
    /// wait for room; written as it drains, so a large write is neither lost nor allowed
    /// to stall the runner. Back to [`Runner::stdin`] once all is written.
    stdin_wait: Option<StdinWait>,
    /// The stop in progress when stopping as a tree: its latest signal, and the
    /// descendants signalled so far with the last signal each got.
    stop: Option<TreeStop>,
    /// The child's exit, held back while its descendants are still alive.
    held: Option<(u32, crate::procsup::ExitStatus)>,
    /// A `/proc` scan in flight and what it is for; one at a time, a second is queued.
    scan: Option<(oneshot::Receiver<Vec<Member>>, ScanFor)>,
    next_scan: Option<ScanFor>,
    /// When to look again for a stopped child's descendants.
    rescan: Option<Pin<Box<Sleep>>>,
    /// Processes left running by exits on their own: never stopped as this one's.
    abandoned: Vec<ProcKey>,
    /// The live child's output pumps (only kept under a debug `loglevel`, where the exit
    /// waits briefly for them so that output and pipe lines precede the exit line).
    pumps: Vec<Pumping>,
}

impl Cold {
    fn is_empty(&self) -> bool {
        self.stdin_wait.is_none()
            && self.stop.is_none()
            && self.held.is_none()
            && self.scan.is_none()
            && self.next_scan.is_none()
            && self.rescan.is_none()
            && self.abandoned.is_empty()
            && self.pumps.is_empty()
    }
}

/// The cold state, made if it is not there yet.
fn cold(slot: &mut Option<Box<Cold>>) -> &mut Cold {
    slot.get_or_insert_with(Box::default)
}

/// A stdin write waiting for the pipe to drain.
struct StdinWait {
    tx: tokio::net::unix::pipe::Sender,
    pending: Vec<u8>,
}

/// A stop that also covers the process's descendants.
#[derive(Debug, Default)]
struct TreeStop {
    sig: i32,
    /// The signal went to the child's process group (`stopasgroup`/`killasgroup`), which
    /// already reached the descendants still in it: they are not signalled twice.
    group_of: Option<i32>,
    signalled: Vec<(ProcKey, i32)>,
    /// The last "sending SIGx to descendants" line: a tree that keeps forking (a shell
    /// loop) is reported once per signal and then at most once a second.
    logged: Option<(i32, Instant)>,
}

/// Why the runner looks for descendants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScanFor {
    /// A stop: signal them, and hold the exit until none is left.
    Stop,
    /// The child exited on its own: say what it left running, and leave it alone.
    Leftover,
}

/// What woke the runner, in the order it is looked at.
enum Event {
    /// The child was reaped (`None`: the reaper is gone, the runtime is shutting down).
    Exit(Option<Reaped>),
    Scan(Vec<Member>, ScanFor),
    Rescan,
    /// A command, or `None` once the orchestrator is gone.
    Cmd(Option<RunnerCmd>),
    StdinRoom,
    Deadline,
}

/// What the runner does after an event.
enum Step {
    /// Look for the next event.
    Next,
    /// This event waits for something: handle it in a boxed future of its own.
    Wait(Event),
    /// The orchestrator is gone: end the task.
    End,
}

/// The runner's task, written out rather than an `async fn` so that an idle runner's task
/// is the `Runner` alone: waiting for the next event is a poll of its own fields
/// ([`Runner::poll_event`]), and an event that waits for something runs in a boxed future
/// that holds the runner until it is done (an `async fn` would keep its argument twice and
/// the largest handler's state inline, in every idle process).
enum Task {
    Idle(Runner),
    Busy(Pin<Box<dyn Future<Output = Option<Runner>> + Send>>),
    Done,
}

impl Future for Task {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        loop {
            match this {
                Task::Idle(runner) => {
                    let Poll::Ready(event) = runner.poll_event(cx) else { return Poll::Pending };
                    match runner.on_event_now(event) {
                        Step::Next => {}
                        Step::End => *this = Task::Done,
                        Step::Wait(event) => {
                            if let Task::Idle(runner) = std::mem::replace(this, Task::Done) {
                                *this = Task::Busy(Box::pin(runner.on_event(event)));
                            }
                            continue;
                        }
                    }
                }
                Task::Busy(handler) => {
                    let Poll::Ready(runner) = handler.as_mut().poll(cx) else {
                        return Poll::Pending;
                    };
                    *this = runner.map_or(Task::Done, Task::Idle);
                }
                Task::Done => return Poll::Ready(()),
            }
            if let Task::Idle(runner) = this
                && runner.settle()
            {
                *this = Task::Done;
            }
        }
    }
}

/// How often a stopped child's descendants are looked for until they are gone.
const RESCAN_EVERY: std::time::Duration = std::time::Duration::from_millis(50);
/// How often a stop reports more descendants signalled with the same signal.
const LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// Leftovers remembered per process, so the list cannot grow without bound.
const ABANDONED_MAX: usize = 1024;

impl Runner {
    /// Starts a runner task for `spec` and returns its command sender.
    pub fn spawn(
        spec: RunnerSpec,
        facts: mpsc::Sender<Fact>,
        services: Arc<Services>,
    ) -> crate::inbox::Sender<RunnerCmd> {
        let (runner, tx) = Runner::new(spec, facts, services);
        tokio::spawn(runner.run());
        tx
    }

    fn new(
        spec: RunnerSpec,
        facts: mpsc::Sender<Fact>,
        services: Arc<Services>,
    ) -> (Runner, crate::inbox::Sender<RunnerCmd>) {
        // Unbounded so that no command is ever dropped (a lost `Spawn` or `Signal` would
        // leave the process in STARTING or STOPPING for ever) and the orchestrator never
        // waits. The volume is bounded by the state machine: between two facts it issues
        // at most a spawn, a couple of signals and a deadline per process; requests
        // (stdin, clear) are bounded by the RPC connections waiting on them.
        let (tx, inbox) = crate::inbox::unbounded();
        let runner = Runner {
            spec: Arc::new(spec),
            inbox,
            facts,
            services,
            logs: SmallVec::new(),
            live: None,
            stdin: None,
            deadline: None,
            cold: None,
            notify: None,
            retiring: false,
        };
        (runner, tx)
    }

    /// The runner's task. It creates the AUTO logs first (on the spawner thread, before
    /// any spawn it is asked for).
    fn run(mut self) -> Task {
        self.create_auto_logs();
        Task::Idle(self)
    }

    /// Handles an event that needs no waiting; gives back one that does.
    fn on_event_now(&mut self, event: Event) -> Step {
        match event {
            Event::Rescan => {
                if let Some(c) = self.cold.as_deref_mut() {
                    c.rescan = None;
                }
                self.start_scan(ScanFor::Stop);
            }
            Event::Cmd(None) => return Step::End,
            Event::Cmd(Some(cmd)) => {
                if let Some(cmd) = self.on_cmd_now(cmd) {
                    return Step::Wait(Event::Cmd(Some(cmd)));
                }
            }
            Event::StdinRoom => {
                let _closed = self.flush_stdin();
            }
            Event::Exit(_) | Event::Scan(..) | Event::Deadline => return Step::Wait(event),
        }
        Step::Next
    }

    /// Handles an event that waits (for a fact to be queued, a spawn, a pump); the task
    /// lends the runner to it and gets it back, or `None` when the runner ends.
    async fn on_event(mut self, event: Event) -> Option<Runner> {
        match event {
            Event::Exit(reaped) => self.on_exit(reaped).await,
            Event::Scan(members, why) => {
                if let Some(c) = self.cold.as_deref_mut() {
                    c.scan = None;
                }
                self.on_scan(members, why).await;
                if let Some(next) = self.cold.as_deref_mut().and_then(|c| c.next_scan.take()) {
                    self.start_scan(next);
                }
            }
            Event::Deadline => {
                self.deadline = None;
                self.facts.send(Fact::Tick { id: self.spec.id }).await.ok()?;
            }
            Event::Cmd(Some(cmd)) => self.on_cmd(cmd).await,
            event => {
                if let Step::End = self.on_event_now(event) {
                    return None;
                }
            }
        }
        Some(self)
    }

    /// After an event: drops the cold state if nothing is left in it, and says whether the
    /// runner is done (retired, and its child and any held exit are gone).
    fn settle(&mut self) -> bool {
        if self.cold.as_deref().is_some_and(Cold::is_empty) {
            self.cold = None;
        }
        self.retiring && self.live.is_none() && self.held().is_none()
    }

    /// The next event, in a fixed order (the child's exit first, the deadline last), so
    /// that an exit is never judged after a deadline or command that came later.
    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Event> {
        // As `tokio::select!` does: with the task's budget spent, a ready exit would poll
        // as pending (tokio's resources yield) and a later event would be taken first.
        if !tokio::task::coop::has_budget_remaining() {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        if let Some(live) = self.live.as_mut()
            && let Poll::Ready(reaped) = Pin::new(&mut live.exit).poll(cx)
        {
            return Poll::Ready(Event::Exit(reaped.ok()));
        }
        if let Some(c) = self.cold.as_deref_mut() {
            if let Some((rx, why)) = c.scan.as_mut()
                && let Poll::Ready(members) = Pin::new(rx).poll(cx)
            {
                return Poll::Ready(Event::Scan(members.unwrap_or_default(), *why));
            }
            if let Some(sleep) = c.rescan.as_mut()
                && sleep.as_mut().poll(cx).is_ready()
            {
                return Poll::Ready(Event::Rescan);
            }
        }
        if let Poll::Ready(cmd) = self.inbox.poll_recv(cx) {
            return Poll::Ready(Event::Cmd(cmd));
        }
        // `flush_stdin` writes until nothing is left or the pipe is full, and a full pipe
        // (WouldBlock) is what clears this readiness.
        if let Some(wait) = self.cold.as_deref().and_then(|c| c.stdin_wait.as_ref())
            && wait.tx.poll_write_ready(cx).is_ready()
        {
            return Poll::Ready(Event::StdinRoom);
        }
        if let Some(sleep) = self.deadline.as_mut()
            && sleep.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Event::Deadline);
        }
        Poll::Pending
    }

    /// The child's exit held back for its descendants, if any.
    fn held(&self) -> Option<(u32, crate::procsup::ExitStatus)> {
        self.cold.as_deref().and_then(|c| c.held)
    }

    async fn on_exit(&mut self, reaped: Option<Reaped>) {
        let Some(live) = self.live.take() else { return };
        // Python closes the stdin pipe at the exit too: a stopped process holds no descriptor.
        self.stdin = None;
        let pumps = match self.cold.as_deref_mut() {
            Some(c) => {
                c.stdin_wait = None;
                std::mem::take(&mut c.pumps)
            }
            None => Vec::new(),
        };
        // The reaper is gone only when the runtime is shutting down; nothing to report.
        let Some(reaped) = reaped else { return };
        if !pumps.is_empty() {
            // Python drains a child's pipes before it judges the exit, and stops watching
            // them; give the pumps a moment to read what the exit has just made readable
            // (a grandchild holding the pipes open is not waited for, and its output is
            // still logged later), then report the pipes as Python closes them.
            let mut pumps = pumps;
            let handles = pumps.iter_mut().filter_map(|p| p.task.take());
            let all = futures_join_all(handles.collect());
            let _ = tokio::time::timeout(std::time::Duration::from_millis(20), all).await;
            for p in pumps {
                let closed = Fact::OutputClosed {
                    id: self.spec.id,
                    fd: p.fd,
                    channel: p.channel,
                    kind: p.kind,
                    process: Arc::as_ptr(&self.spec) as usize,
                    dispatcher: p.dispatcher,
                };
                let _ = self.facts.send(closed).await;
            }
        }
        let status = reaped.status;
        if let Some(c) = self.cold.as_deref_mut()
            && c.stop.is_some()
        {
            // Stopped as a tree: it counts as stopped once its descendants are gone too.
            c.held = Some((live.pid, status));
            self.start_scan(ScanFor::Stop);
            return;
        }
        let _ = self.facts.send(Fact::Exited { id: self.spec.id, pid: live.pid, status }).await;
        if self.spec.config.stopastree {
            self.start_scan(ScanFor::Leftover);
        }
    }

    fn start_scan(&mut self, why: ScanFor) {
        let c = cold(&mut self.cold);
        if c.scan.is_some() {
            // A stop's scan wins over a leftover report.
            if c.next_scan != Some(ScanFor::Stop) {
                c.next_scan = Some(why);
            }
            return;
        }
        let known = c.stop.iter().flat_map(|s| s.signalled.iter().map(|(k, _)| *k)).collect();
        let q = proctree::Query {
            child: self.live.as_ref().and_then(|l| i32::try_from(l.pid).ok()),
            known,
            name: self.spec.config.name.clone(),
            group: self.spec.config.group.clone(),
            exclude: c.abandoned.clone(),
        };
        c.scan = Some((self.services.scanner.scan(q), why));
    }

    async fn on_scan(&mut self, members: Vec<Member>, why: ScanFor) {
        match why {
            ScanFor::Leftover => {
                if self.cold.as_deref().is_some_and(|c| c.stop.is_some()) || members.is_empty() {
                    return;
                }
                let list = describe(&members);
                self.log(
                    crate::logio::mainlog::Level::Info,
                    format!(
                        "descendants of '{}' left running (it exited on its own): {list}",
                        self.spec.config.name
                    ),
                )
                .await;
                let abandoned = &mut cold(&mut self.cold).abandoned;
                abandoned.extend(members.iter().map(|m| (m.pid, m.start)));
                let excess = abandoned.len().saturating_sub(ABANDONED_MAX);
                abandoned.drain(..excess);
            }
            ScanFor::Stop => {
                let Some(c) = self.cold.as_deref_mut() else { return };
                let held = c.held;
                let Some(stop) = c.stop.as_mut() else { return };
                let (sig, group_of) = (stop.sig, stop.group_of);
                let mut fresh = Vec::new();
                for m in &members {
                    let key = (m.pid, m.start);
                    if group_of == Some(m.pgid) && held.is_none() {
                        // killpg just reached it.
                        continue;
                    }
                    match stop.signalled.iter_mut().find(|(k, _)| *k == key) {
                        Some((_, last)) if *last == sig => continue,
                        Some((_, last)) => *last = sig,
                        None => stop.signalled.push((key, sig)),
                    }
                    // SAFETY: kill(2) with plain integers; the pid was alive with this
                    // start time an instant ago.
                    unsafe { libc::kill(m.pid, sig) };
                    fresh.push(m.clone());
                }
                let now = crate::sys::clock::now();
                let due = match stop.logged {
                    Some((logged, at)) => logged != sig || now >= at + LOG_EVERY,
                    None => true,
                };
                if !fresh.is_empty() && due {
                    stop.logged = Some((sig, now));
                    let message = format!(
                        "sending {} to descendants of '{}': {}",
                        crate::procsup::exit::signame(sig),
                        self.spec.config.name,
                        describe(&fresh)
                    );
                    self.log(crate::logio::mainlog::Level::Info, message).await;
                }
                if let Some((pid, status)) = held {
                    let c = cold(&mut self.cold);
                    if members.is_empty() {
                        c.held = None;
                        c.stop = None;
                        let fact = Fact::Exited { id: self.spec.id, pid, status };
                        let _ = self.facts.send(fact).await;
                    } else {
                        let at = crate::sys::clock::now() + RESCAN_EVERY;
                        c.rescan = Some(Box::pin(tokio::time::sleep_until(at.into())));
                    }
                }
            }
        }
    }

    async fn log(&self, level: crate::logio::mainlog::Level, message: String) {
        let _ = self.facts.send(Fact::Log { level, message }).await;
    }

    /// Carries out a command that needs no waiting; gives back one that does.
    fn on_cmd_now(&mut self, cmd: RunnerCmd) -> Option<RunnerCmd> {
        match cmd {
            RunnerCmd::Spawn | RunnerCmd::Signal { .. } => return Some(cmd),
            RunnerCmd::Deadline(at) => self.set_deadline(at),
            RunnerCmd::WriteStdin { data, reply } => {
                let res = self.write_stdin(&data);
                let _ = reply.send(res);
            }
            RunnerCmd::ReopenLogs => {
                // Handled by each pump between writes; failures are logged there.
                self.logs.retain(|(channel, tx)| tx.send(LogCtl::Reopen(*channel)).is_ok());
            }
            RunnerCmd::ClearLogs { label, reply } => self.clear_logs(label, reply),
            RunnerCmd::Retire => self.retiring = true,
        }
        None
    }

    async fn on_cmd(&mut self, cmd: RunnerCmd) {
        match cmd {
            RunnerCmd::Spawn => {
                if let Some(c) = self.cold.as_deref_mut() {
                    c.stop = None;
                }
                let fact = match self.start_child().await {
                    Ok(pid) => Fact::Spawned { id: self.spec.id, pid },
                    Err(message) => Fact::SpawnFailed { id: self.spec.id, message },
                };
                let _ = self.facts.send(fact).await;
            }
            RunnerCmd::Signal { pid, sig, group, purpose } => {
                if purpose == SignalPurpose::Kill && self.spec.config.stopastree {
                    let stop = cold(&mut self.cold).stop.get_or_insert_with(TreeStop::default);
                    stop.sig = sig;
                    stop.group_of = group.then_some(pid as i32);
                    self.start_scan(ScanFor::Stop);
                }
                if self.held().is_some_and(|(held, _)| held == pid) {
                    // Reaped already (its exit waits for the descendants): the pid may be
                    // someone else's by now.
                    return;
                }
                let target = if group { -(pid as i32) } else { pid as i32 };
                // SAFETY: kill(2) takes plain integers and touches no memory of ours.
                let rc = unsafe { libc::kill(target, sig) };
                if rc != 0 {
                    let err = std::io::Error::last_os_error();
                    // ESRCH: it just exited on its own; the reap will follow.
                    if err.raw_os_error() == Some(libc::ESRCH) {
                        if self.spec.mainlog.is_some() {
                            let now = match purpose {
                                SignalPurpose::Kill => "",
                                SignalPurpose::Signal => "now ",
                            };
                            let message = format!(
                                "unable to signal {} (pid {pid}), it probably just {now}exited on its own: [Errno 3] No such process",
                                self.spec.config.name
                            );
                            let level = crate::logio::mainlog::Level::Debug;
                            let _ = self.facts.send(Fact::Log { level, message }).await;
                        }
                    } else {
                        let error = crate::sys::errno::display(err.raw_os_error().unwrap_or(0));
                        let _ = self
                            .facts
                            .send(Fact::SignalFailed { id: self.spec.id, purpose, error })
                            .await;
                    }
                }
            }
            cmd => {
                // Nothing else waits (`on_cmd_now`).
                let _ = self.on_cmd_now(cmd);
            }
        }
    }

    /// Clears both logs: through the pumps that own them, or (no pump yet, or gone) by
    /// truncating the file on a blocking thread. The answer is sent from a task of its
    /// own, so a pump stuck on a slow reader delays only this request, not the runner.
    fn clear_logs(
        &mut self,
        label: String,
        reply: oneshot::Sender<Result<(), crate::fault::Fault>>,
    ) {
        self.logs.retain(|(_, tx)| !tx.is_closed());
        let mut waits = Vec::new();
        for (channel, spec) in
            [(Channel::Stdout, &self.spec.stdout), (Channel::Stderr, &self.spec.stderr)]
        {
            let Some(path) = spec.path.clone() else { continue };
            let mut asked = false;
            for (_, tx) in self.logs.iter().filter(|(c, _)| *c == channel) {
                let (done, rx) = oneshot::channel();
                if tx.send(LogCtl::Clear(channel, done)).is_ok() {
                    waits.push((path.clone(), Some(rx)));
                    asked = true;
                }
            }
            if !asked {
                waits.push((path, None));
            }
        }
        tokio::spawn(async move {
            let mut res = Ok(());
            for (path, rx) in waits {
                let got = match rx {
                    Some(rx) => rx.await.ok(),
                    None => None,
                };
                // No pump answered (none yet, or it just ended): truncate the file if it
                // exists, as a never-started process's log is cleared.
                let got = match got {
                    Some(r) => r,
                    None => tokio::task::spawn_blocking(move || {
                        if path.exists() { std::fs::File::create(&path).map(drop) } else { Ok(()) }
                    })
                    .await
                    .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string()))),
                };
                if let Err(e) = got {
                    res = Err(e.to_string());
                }
            }
            let _ = reply.send(res.map_err(|e: String| {
                crate::fault::Fault::with(crate::fault::FaultKind::Failed, format!("{label}: {e}"))
            }));
        });
    }

    /// Sets or clears the deadline; a set timer is moved rather than made anew.
    fn set_deadline(&mut self, at: Option<Instant>) {
        match (at, self.deadline.as_mut()) {
            (None, _) => self.deadline = None,
            (Some(at), Some(sleep)) => sleep.as_mut().reset(at.into()),
            (Some(at), None) => self.deadline = Some(Box::pin(tokio::time::sleep_until(at.into()))),
        }
    }

    fn write_stdin(&mut self, data: &[u8]) -> Result<(), StdinError> {
        if self.live.is_none() {
            return Err(StdinError::NotRunning);
        }
        if let Some(wait) = self.cold.as_deref_mut().and_then(|c| c.stdin_wait.as_mut()) {
            wait.pending.extend_from_slice(data);
            return self.flush_stdin();
        }
        let Some(fd) = self.stdin.take() else { return Err(StdinError::Closed) };
        // The descriptor is nonblocking (the spawn made it so): a full pipe is WouldBlock.
        let mut written = 0;
        while let Some(rest) = data.get(written..).filter(|r| !r.is_empty()) {
            match nix::unistd::write(&fd, rest) {
                Ok(n) => written += n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(nix::errno::Errno::EAGAIN) => break,
                // The child closed its end: the descriptor goes.
                Err(_) => return Err(StdinError::Closed),
            }
        }
        let Some(rest) = data.get(written..).filter(|r| !r.is_empty()) else {
            self.stdin = Some(fd);
            return Ok(());
        };
        // The pipe is full: register it with tokio to learn when it has room again.
        let tx =
            tokio::net::unix::pipe::Sender::from_owned_fd(fd).map_err(|_| StdinError::Closed)?;
        cold(&mut self.cold).stdin_wait = Some(StdinWait { tx, pending: rest.to_vec() });
        Ok(())
    }

    /// Writes pending stdin bytes until they are all written or the pipe is full; the
    /// rest waits for the pipe to drain. A closed pipe drops the stdin and what is pending.
    /// Once all is written the descriptor leaves tokio's driver again.
    fn flush_stdin(&mut self) -> Result<(), StdinError> {
        let Some(c) = self.cold.as_deref_mut() else { return Ok(()) };
        let Some(wait) = c.stdin_wait.as_mut() else { return Ok(()) };
        let mut written = 0;
        let mut closed = false;
        while written < wait.pending.len() {
            let rest = wait.pending.get(written..).unwrap_or_default();
            match wait.tx.try_write(rest) {
                Ok(n) => written += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    closed = true;
                    break;
                }
            }
        }
        wait.pending.drain(..written);
        if closed {
            c.stdin_wait = None;
            return Err(StdinError::Closed);
        }
        if wait.pending.is_empty()
            && let Some(wait) = c.stdin_wait.take()
        {
            self.stdin = Some(wait.tx.into_nonblocking_fd().map_err(|_| StdinError::Closed)?);
        }
        Ok(())
    }

    /// AUTO logs exist from the moment the process does (Python creates them with the
    /// group), private to the daemon's user as Python's `mkstemp` makes them. They are
    /// created on the preparing thread, beside the spawns; a first spawn that gets to its
    /// files before that thread does creates them itself (`open_log`).
    fn create_auto_logs(&mut self) {
        if !self.spec.stdout.create_now && !self.spec.stderr.create_now {
            return;
        }
        let spec = self.spec.clone();
        self.services.spawner.prepare(move || {
            take_auto_logs(&spec);
        });
    }

    /// Python's spawn: resolve the command, open the logs, fork (all on the spawner
    /// thread), then start the pumps. The message of an `Err` is Python's `spawnerr` text.
    async fn start_child(&mut self) -> Result<u32, String> {
        if let Some(live) = &self.live {
            // The state machine never asks for this; be safe rather than orphan a child.
            return Ok(live.pid);
        }
        if let Some(ReadyWatch::Notify(path)) = &self.spec.readiness
            && self.notify.is_none()
        {
            let w = readiness::notify(path, self.spec.id, self.facts.clone())
                .map_err(|e| format!("cannot create the notify socket {}: {e}", path.display()))?;
            self.notify = Some(w);
        }
        let (reply, rx) = oneshot::channel();
        let (spec, services) = (self.spec.clone(), self.services.clone());
        let queued = self.services.spawner.run(move || {
            let _ = reply.send(prepare_and_spawn(&spec, &services));
        });
        if !queued {
            return Err(format!(
                "unknown error during fork for '{}': spawner is gone",
                self.spec.config.name
            ));
        }
        let started = rx.await.map_err(|_| {
            format!("unknown error during fork for '{}': spawner is gone", self.spec.config.name)
        })??;
        let Started { pid, exit, stdin, stdout, stderr, stdout_log, stderr_log } = started;
        self.logs.retain(|(_, tx)| !tx.is_closed());
        let mut stdin = Some(stdin);
        let spec = self.spec.clone();
        if let Some(c) = self.cold.as_deref_mut() {
            c.pumps.clear();
        }
        let mut sides = Vec::with_capacity(2);
        match (&spec.pool, stdin.take()) {
            (Some(pool), Some(fd)) => {
                if self.spec.mainlog.is_some() {
                    let raw_fd = std::os::fd::AsRawFd::as_raw_fd(&stdout);
                    cold(&mut self.cold).pumps.push(Pumping {
                        task: None,
                        fd: raw_fd,
                        channel: Channel::Stdout,
                        kind: "PEventListenerDispatcher",
                        dispatcher: std::ptr::from_ref(pool) as usize,
                        _id: Box::new(0),
                    });
                }
                let log = stdout_log.map(|w| {
                    let tx = pump::spawn_sink(&self.services.pumps, w, self.spec.config.clone());
                    self.logs.push((Channel::Stdout, tx.ctl.clone()));
                    tx
                });
                let attach = crate::events::Attach {
                    name: self.spec.config.name.clone(),
                    stdin: fd,
                    stdout,
                    log,
                    strip_ansi: self.spec.strip_ansi,
                };
                // A removed pool closes the pipes: the listener sees EOF and exits.
                let _ = pool.attach(attach).await;
            }
            (_, fd) => {
                stdin = fd;
                sides.push(self.pump_side(stdout, stdout_log, Channel::Stdout, pid));
            }
        }
        if let Some(err) = stderr {
            sides.push(self.pump_side(err, stderr_log, Channel::Stderr, pid));
        }
        self.start_pump(sides);
        self.stdin = stdin;
        self.live = Some(Live { pid, exit });
        Ok(pid)
    }

    /// One pipe of the child's pump: its log writer, options and output hooks.
    fn pump_side(
        &self,
        fd: OwnedFd,
        writer: Option<RotatingWriter>,
        channel: Channel,
        pid: u32,
    ) -> pump::PumpSide {
        let spec = match channel {
            Channel::Stdout => &self.spec.stdout,
            Channel::Stderr => &self.spec.stderr,
        };
        let opts = PumpOptions {
            strip_ansi: self.spec.strip_ansi,
            capture_maxbytes: usize::try_from(spec.capture_maxbytes).unwrap_or(usize::MAX),
            prefix: spec.prefix.as_deref().cloned(),
            counters: Some(spec.counters.clone()),
        };
        let hook = match &self.spec.publisher {
            Some(p) if spec.events_enabled || opts.capture_maxbytes > 0 => {
                let hook: Box<dyn pump::OutputHook> = Box::new(crate::events::EventHook {
                    publisher: p.clone(),
                    name: self.spec.config.name.clone(),
                    group: self.spec.config.group.clone(),
                    pid,
                    channel,
                    log_events: spec.events_enabled,
                });
                Some(hook)
            }
            _ => None,
        };
        // Python's order for a chunk: the child log (syslog included), the DEBG line, events.
        let debug = self.spec.mainlog.clone();
        let hook = match &debug {
            Some(log) => {
                let hook: Box<dyn pump::OutputHook> =
                    Box::new(crate::logio::mainlog_task::ChildOutputLog {
                        log: log.clone(),
                        name: self.spec.config.name.clone(),
                        channel,
                        inner: hook,
                    });
                Some(hook)
            }
            None => hook,
        };
        let hook = match (&self.spec.syslog, spec.syslog) {
            (Some(log), true) => {
                let hook: Box<dyn pump::OutputHook> =
                    Box::new(crate::logio::mainlog_task::SyslogOutput {
                        log: log.clone(),
                        name: self.spec.config.name.clone(),
                        inner: hook,
                    });
                Some(hook)
            }
            _ => hook,
        };
        let hook = match &self.spec.readiness {
            Some(ReadyWatch::Log(pattern)) => {
                readiness::log_hook(pattern, hook, self.spec.id, pid, self.facts.clone())
            }
            _ => hook,
        };
        pump::PumpSide { channel, pipe: fd, writer, opts, hook }
    }

    /// Starts the child's pump (one task for its pipes). It outlives the child when a
    /// grandchild keeps a pipe open; it ends at EOF of both.
    fn start_pump(&mut self, sides: Vec<pump::PumpSide>) {
        let mut sides = sides.into_iter();
        let Some(first) = sides.next() else { return };
        let second = sides.next();
        let pipes: Vec<(Channel, i32)> = std::iter::once(&first)
            .chain(&second)
            .map(|s| (s.channel, std::os::fd::AsRawFd::as_raw_fd(&s.pipe)))
            .collect();
        let (tx, task) = pump::spawn(&self.services.pumps, self.spec.config.clone(), first, second);
        let mut task = self.spec.mainlog.is_some().then_some(task);
        for (channel, fd) in pipes {
            self.logs.push((channel, tx.clone()));
            if self.spec.mainlog.is_some() {
                // A unique address stands in for Python's dispatcher object id.
                let id = Box::new(0u8);
                let dispatcher = std::ptr::from_ref(&*id) as usize;
                let kind = "POutputDispatcher";
                // The pipes share the task: the exit waits for it once.
                let task = task.take();
                cold(&mut self.cold).pumps.push(Pumping {
                    task,
                    fd,
                    channel,
                    kind,
                    dispatcher,
                    _id: id,
                });
            }
        }
    }
}

/// A child's pump task.
type PumpTask = tokio::task::JoinHandle<[Option<pump::PumpReport>; 2]>;

/// A pipe of the live child, as the debug log reports it when the child exits.
struct Pumping {
    task: Option<PumpTask>,
    fd: i32,
    channel: Channel,
    kind: &'static str,
    dispatcher: usize,
    /// Keeps `dispatcher`'s address unique while the pump is reported.
    _id: Box<u8>,
}

/// Awaits every handle (their results do not matter, only that they ended).
async fn futures_join_all(handles: Vec<PumpTask>) {
    for h in handles {
        let _ = h.await;
    }
}

/// What the spawner thread hands back: the child, its registered exit and its log writers.
struct Started {
    pid: u32,
    exit: oneshot::Receiver<Reaped>,
    stdin: OwnedFd,
    stdout: OwnedFd,
    stderr: Option<OwnedFd>,
    stdout_log: Option<RotatingWriter>,
    stderr_log: Option<RotatingWriter>,
}

/// Creates the process's AUTO logs unless that is done (or under way) elsewhere. Returns
/// the files created here (stdout, stderr), to be written without opening them again.
fn take_auto_logs(spec: &RunnerSpec) -> [Option<std::fs::File>; 2] {
    spec.auto_logs.take(|| [&spec.stdout, &spec.stderr].map(create_auto_log)).unwrap_or_default()
}

/// Creates one AUTO log; a failure is logged, and the spawn then opens the path as usual.
fn create_auto_log(log: &LogSpec) -> Option<std::fs::File> {
    let path = log.path.as_deref().filter(|_| log.create_now)?;
    crate::logio::autoname::create_private(path)
        .map_err(|e| tracing::error!("cannot create log file {}: {e}", path.display()))
        .ok()
}

/// The writer of one channel's log: the file the spawn just created, or the path opened.
fn open_log(
    spec: &LogSpec,
    created: Option<std::fs::File>,
) -> std::io::Result<Option<RotatingWriter>> {
    let Some(p) = &spec.path else { return Ok(None) };
    Ok(Some(match created {
        Some(file) => RotatingWriter::from_new(p.clone(), file, spec.maxbytes, spec.backups),
        None => RotatingWriter::open_shared(p.clone(), spec.maxbytes, spec.backups)?,
    }))
}

/// The blocking part of a spawn, in Python's order, on the spawner thread. The child is
/// registered with the reaper before this returns.
fn prepare_and_spawn(spec: &RunnerSpec, services: &Services) -> Result<Started, String> {
    let argv = spawn::split_command(&spec.config.command).map_err(|e| e.to_string())?;
    let program_path = spec.config.environment.get("PATH").map(OsString::from);
    let daemon_path = services.daemon_env.iter().find(|(k, _)| k == "PATH").map(|(_, v)| v.clone());
    let search = spawn::search_path(program_path.as_deref(), daemon_path.as_deref());
    let first = argv.first().cloned().unwrap_or_default();
    let program = spawn::resolve_program(&first, &search).map_err(|e| e.to_string())?;
    let uid = match &spec.config.user {
        None => None,
        Some(u) => Some(
            crate::sys::users::lookup_user(u)
                .map_err(|e| format!("couldn't find user {u}: {e}"))?
                .uid,
        ),
    };
    // AUTO logs the preparing thread has not reached yet are created here.
    let [stdout_new, stderr_new] = take_auto_logs(spec);
    let stdout_log =
        open_log(&spec.stdout, stdout_new).map_err(|e| dispatch_error(&spec.config.name, &e))?;
    let stderr_log = if spec.config.redirect_stderr {
        None
    } else {
        open_log(&spec.stderr, stderr_new).map_err(|e| dispatch_error(&spec.config.name, &e))?
    };
    // Log files, like pipes, stay out of the descriptor reserve.
    let logs = [&stdout_log, &stderr_log].into_iter().flatten();
    let floor = crate::sys::limits::reserve_floor();
    if crate::sys::limits::in_reserve(floor, logs.map(RotatingWriter::raw_fd)) {
        return Err(SpawnError::TooManyOpenFiles { name: spec.config.name.clone() }.to_string());
    }
    let vars = SupervisorVars {
        server_url: spec.server_url.as_deref(),
        process_name: &spec.config.name,
        group_name: &spec.config.group,
    };
    let mut env = spawn::env_for_child(
        services.daemon_env.iter().cloned(),
        &vars,
        spec.config.environment.iter(),
    );
    if let Some(ReadyWatch::Notify(path)) = &spec.readiness {
        readiness::give_notify_socket(path, uid, &mut env)
            .map_err(|e| format!("cannot give the notify socket to the process: {e}"))?;
    }
    let stdin_socket = match &spec.fcgi_socket {
        None => None,
        Some(Ok(sock)) => Some(std::os::fd::AsRawFd::as_raw_fd(&**sock)),
        Some(Err(message)) => return Err(message.clone()),
    };
    let sspec = SpawnSpec {
        stdin_socket,
        name: spec.config.name.clone(),
        program,
        argv,
        env,
        cwd: spec.config.directory.as_deref().map(Path::to_path_buf),
        umask: spec.config.umask,
        user: uid,
        redirect_stderr: spec.config.redirect_stderr,
    };
    let child = spawn::spawn(&sspec).map_err(|e: SpawnError| e.to_string())?;
    let exit = services.reaper.watch_blocking(child.pid, child.birth);
    Ok(Started {
        pid: u32::try_from(child.pid).unwrap_or(0),
        exit,
        stdin: child.stdin,
        stdout: child.stdout,
        stderr: child.stderr,
        stdout_log,
        stderr_log,
    })
}

/// `123 (sleep), 456 (sh)` for log lines.
fn describe(members: &[Member]) -> String {
    members.iter().map(|m| format!("{} ({})", m.pid, m.comm)).collect::<Vec<_>>().join(", ")
}

/// Python's message for a log file that cannot be opened (it opens them while making the
/// dispatchers, as it makes the pipes: EMFILE reads the same for both).
fn dispatch_error(name: &str, e: &std::io::Error) -> String {
    if e.raw_os_error() == Some(libc::EMFILE) {
        return SpawnError::TooManyOpenFiles { name: name.to_owned() }.to_string();
    }
    let errno = e.raw_os_error().map(crate::sys::errno::display).unwrap_or_else(|| e.to_string());
    format!("unknown error making dispatchers for '{name}': {errno}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `[program:burst]` with `command=true`, as the config loader makes it.
    fn burst_config() -> Arc<crate::config::ProcessConfig> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.conf");
        std::fs::write(&path, "[supervisord]\nlogfile=/dev/null\n[program:burst]\ncommand=true\n")
            .unwrap();
        let ctx = crate::config::LoadContext {
            env: Vec::new(),
            cwd: dir.path().to_path_buf(),
            host_node_name: "node1".into(),
        };
        let cfg = crate::config::load(&path, &crate::config::Overrides::default(), &ctx).unwrap();
        cfg.groups[0].processes[0].clone()
    }

    fn spec() -> RunnerSpec {
        let log = LogSpec {
            path: None,
            maxbytes: 0,
            backups: 0,
            capture_maxbytes: 0,
            create_now: false,
            events_enabled: false,
            syslog: false,
            prefix: None,
            counters: Default::default(),
        };
        RunnerSpec {
            id: 7,
            config: burst_config(),
            server_url: None,
            stdout: log.clone(),
            stderr: log,
            strip_ansi: false,
            publisher: None,
            pool: None,
            readiness: None,
            mainlog: None,
            fcgi_socket: None,
            syslog: None,
            auto_logs: Default::default(),
        }
    }

    /// Inside a runtime.
    fn services() -> Arc<Services> {
        Arc::new(Services {
            reaper: ReaperHandle::detached(),
            spawner: Spawner::start().unwrap(),
            scanner: Scanner::start().unwrap(),
            pumps: tokio::runtime::Handle::current(),
            daemon_env: Arc::new(Vec::new()),
        })
    }

    /// Every process has a runner task, idle or not: its future must stay the runner's
    /// own fields (no timer, channel future or handler state kept inline beside them).
    #[test]
    fn an_idle_runner_task_stays_small() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let (facts_tx, _facts) = mpsc::channel(16);
            let (runner, _tx) = Runner::new(spec(), facts_tx, services());
            let runner_size = std::mem::size_of_val(&runner);
            let task_size = std::mem::size_of_val(&runner.run());
            // Up to 152 bytes, tokio's task is 256 (its header, scheduler and trailer
            // beside the future, aligned to 128).
            assert!(task_size <= 152, "the task is {task_size} bytes");
            assert!(task_size <= runner_size + 8, "the task is {task_size} bytes");
        });
    }

    /// A `sendProcessStdin` the pipe has room for is written straight to the descriptor;
    /// one it has no room for registers the pipe with tokio, is written in order as the
    /// child reads, and the pipe leaves tokio's driver again once all is written.
    #[test]
    fn stdin_is_registered_only_while_a_write_waits_for_room() {
        use nix::fcntl::OFlag;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let (facts_tx, _facts) = mpsc::channel(16);
            let (mut runner, _tx) = Runner::new(spec(), facts_tx, services());
            let (_exit_tx, exit) = oneshot::channel();
            runner.live = Some(Live { pid: 0, exit });
            let (child, ours) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).unwrap();
            runner.stdin = Some(ours);
            assert_eq!(runner.write_stdin(b"first "), Ok(()));
            assert!(runner.stdin.is_some() && runner.cold.is_none());
            let big: Vec<u8> = (0..1_000_000u32).map(|n| (n % 251) as u8).collect();
            assert_eq!(runner.write_stdin(&big), Ok(()));
            assert!(runner.stdin.is_none(), "a full pipe waits for room, registered");
            assert_eq!(runner.write_stdin(b" last"), Ok(()));
            let want: Vec<u8> = [&b"first "[..], &big, b" last"].concat();
            let mut got = Vec::new();
            let mut buf = vec![0u8; 1 << 16];
            while got.len() < want.len() {
                match nix::unistd::read(&child, &mut buf) {
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(nix::errno::Errno::EAGAIN) => {
                        // A bound so that a lost wake fails rather than hangs.
                        let wait = std::future::poll_fn(|cx| runner.poll_event(cx));
                        let event = tokio::time::timeout(std::time::Duration::from_secs(60), wait)
                            .await
                            .expect("no stdin room although the pipe was drained");
                        assert!(matches!(event, Event::StdinRoom));
                        assert_eq!(runner.flush_stdin(), Ok(()));
                    }
                    Err(e) => panic!("read: {e}"),
                }
            }
            assert!(got == want, "the bytes arrive whole and in order");
            assert!(!runner.settle());
            assert!(runner.stdin.is_some() && runner.cold.is_none(), "unregistered again");
            // The child closing its end closes ours at the next write.
            drop(child);
            assert_eq!(runner.write_stdin(b"gone"), Err(StdinError::Closed));
            assert_eq!(runner.write_stdin(b"gone"), Err(StdinError::Closed));
            runner.live = None;
            assert_eq!(runner.write_stdin(b"gone"), Err(StdinError::NotRunning));
        });
    }

    #[test]
    fn a_burst_of_thousands_of_commands_loses_none() {
        const BURST: usize = 5000;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let (facts_tx, mut facts) = mpsc::channel(16);
            let runner = Runner::spawn(spec(), facts_tx, services());
            // All sent before the runner runs once (one thread): an inbox that could fill
            // up would drop most of them. Signal 999 is invalid, so each one comes back as
            // a `SignalFailed` fact, and nothing is signalled.
            let me = std::process::id();
            for _ in 0..BURST {
                let cmd = RunnerCmd::Signal {
                    pid: me,
                    sig: 999,
                    group: false,
                    purpose: SignalPurpose::Kill,
                };
                runner.send(cmd).unwrap();
            }
            runner.send(RunnerCmd::Deadline(Some(crate::sys::clock::now()))).unwrap();
            let (mut failed, mut ticked) = (0, false);
            while !ticked {
                match facts.recv().await {
                    Some(Fact::SignalFailed { id: 7, .. }) => failed += 1,
                    Some(Fact::Tick { id: 7 }) => ticked = true,
                    other => panic!("unexpected fact {other:?}"),
                }
            }
            assert_eq!(failed, BURST);
        });
    }

    #[test]
    fn a_first_spawn_creates_its_auto_logs_unless_they_exist() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let auto = |out: &str, err: &str| {
            let mut spec = spec();
            for (log, name) in [(&mut spec.stdout, out), (&mut spec.stderr, err)] {
                log.path = Some(dir.path().join(name).into());
                log.create_now = true;
            }
            spec
        };
        let mode = |name: &str| {
            let meta = std::fs::symlink_metadata(dir.path().join(name)).unwrap();
            assert!(meta.file_type().is_file(), "{name}");
            meta.permissions().mode() & 0o777
        };
        // Not created yet: the spawn creates both (0600, exclusively, replacing a planted
        // symlink) and logs into the new files.
        let first = auto("a.log", "a-err.log");
        let target = dir.path().join("target");
        std::fs::write(&target, b"keep").unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join("a.log")).unwrap();
        let [out, err] = take_auto_logs(&first);
        assert!(out.is_some() && err.is_some());
        let mut w = open_log(&first.stdout, out).unwrap().unwrap();
        w.write_all(b"one\n").unwrap();
        assert_eq!((mode("a.log"), mode("a-err.log")), (0o600, 0o600));
        // A later spawn (or the preparing thread) never creates them again.
        assert!(take_auto_logs(&first).iter().all(Option::is_none));
        let mut again = open_log(&first.stdout, None).unwrap().unwrap();
        again.write_all(b"two\n").unwrap();
        assert_eq!(std::fs::read(dir.path().join("a.log")).unwrap(), b"one\ntwo\n");
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
        // Only AUTO logs are created.
        let mut second = auto("b.log", "b-err.log");
        second.stderr.create_now = false;
        let [out, err] = take_auto_logs(&second);
        assert!(out.is_some() && err.is_none());
        assert_eq!(mode("b.log"), 0o600);
        assert!(!dir.path().join("b-err.log").exists());
    }
}
