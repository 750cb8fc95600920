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
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

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

/// The runner task's state.
pub struct Runner {
    spec: Arc<RunnerSpec>,
    inbox: crate::inbox::Receiver<RunnerCmd>,
    facts: mpsc::Sender<Fact>,
    services: Services,
    /// The log writers of this process's pumps that may still run (a pump outlives its
    /// child while a grandchild holds the pipe), by channel.
    logs: Vec<(Channel, LogCtlSender)>,
    live: Option<Live>,
    /// The live child's stdin (not for listeners, whose stdin carries events).
    stdin: Option<tokio::net::unix::pipe::Sender>,
    /// `sendProcessStdin` bytes the pipe had no room for yet; written as it drains, so a
    /// large write is neither lost nor allowed to stall the runner.
    stdin_pending: Vec<u8>,
    deadline: Option<Instant>,
    retiring: bool,
    /// The stop in progress when stopping as a tree: its latest signal, and the
    /// descendants signalled so far with the last signal each got.
    stop: Option<TreeStop>,
    /// The child's exit, held back while its descendants are still alive.
    held: Option<(u32, crate::procsup::ExitStatus)>,
    /// A `/proc` scan in flight and what it is for; one at a time, a second is queued.
    scan: Option<(oneshot::Receiver<Vec<Member>>, ScanFor)>,
    next_scan: Option<ScanFor>,
    /// When to look again for a stopped child's descendants.
    rescan_at: Option<Instant>,
    /// Processes left running by exits on their own: never stopped as this one's.
    abandoned: Vec<ProcKey>,
    /// The `notify` socket's reader, bound before the first spawn (the spawner gives the
    /// socket file to the process's user and the child its `NOTIFY_SOCKET`).
    notify: Option<readiness::Watcher>,
    /// The live child's output pumps (only kept under a debug `loglevel`, where the exit
    /// waits briefly for them so that output and pipe lines precede the exit line).
    pumps: Vec<Pumping>,
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
        services: Services,
    ) -> crate::inbox::Sender<RunnerCmd> {
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
            logs: Vec::new(),
            live: None,
            stdin: None,
            stdin_pending: Vec::new(),
            deadline: None,
            retiring: false,
            stop: None,
            held: None,
            scan: None,
            next_scan: None,
            rescan_at: None,
            abandoned: Vec::new(),
            notify: None,
            pumps: Vec::new(),
        };
        tokio::spawn(runner.run());
        tx
    }

    async fn run(mut self) {
        self.create_auto_logs();
        loop {
            let deadline = self.deadline;
            // Timers and readiness futures are boxed only while they exist: inline, each
            // would be part of every idle runner task.
            let sleep = async move {
                match deadline {
                    Some(at) => Box::pin(tokio::time::sleep_until(at.into())).await,
                    None => std::future::pending().await,
                }
            };
            let exit = async {
                match self.live.as_mut() {
                    Some(live) => (&mut live.exit).await.ok(),
                    None => std::future::pending().await,
                }
            };
            let stdin_room = async {
                match (&self.stdin, self.stdin_pending.is_empty()) {
                    // `flush_stdin` writes until nothing is left or the pipe is full, and
                    // a full pipe (WouldBlock) is what clears this readiness.
                    (Some(tx), false) => {
                        let _ = Box::pin(tx.writable()).await;
                    }
                    _ => std::future::pending().await,
                }
            };
            let scan = async {
                match self.scan.as_mut() {
                    Some((rx, why)) => ((&mut *rx).await.unwrap_or_default(), *why),
                    None => std::future::pending().await,
                }
            };
            let rescan_at = self.rescan_at;
            let rescan = async move {
                match rescan_at {
                    Some(at) => Box::pin(tokio::time::sleep_until(at.into())).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                // Handlers are boxed for the same reason: they run rarely.
                reaped = exit => Box::pin(self.on_exit(reaped)).await,
                (members, why) = scan => {
                    self.scan = None;
                    Box::pin(self.on_scan(members, why)).await;
                    if let Some(next) = self.next_scan.take() {
                        self.start_scan(next);
                    }
                }
                () = rescan => {
                    self.rescan_at = None;
                    self.start_scan(ScanFor::Stop);
                }
                cmd = self.inbox.recv() => match cmd {
                    Some(cmd) => Box::pin(self.on_cmd(cmd)).await,
                    None => break,
                },
                () = stdin_room => {
                    let _closed = self.flush_stdin();
                }
                () = sleep => {
                    self.deadline = None;
                    if Box::pin(self.facts.send(Fact::Tick { id: self.spec.id })).await.is_err() {
                        break;
                    }
                }
            }
            if self.retiring && self.live.is_none() && self.held.is_none() {
                break;
            }
        }
    }

    async fn on_exit(&mut self, reaped: Option<Reaped>) {
        let Some(live) = self.live.take() else { return };
        // Python closes the stdin pipe at the exit too: a stopped process holds no descriptor.
        self.stdin = None;
        self.stdin_pending.clear();
        // The reaper is gone only when the runtime is shutting down; nothing to report.
        let Some(reaped) = reaped else { return };
        if !self.pumps.is_empty() {
            // Python drains a child's pipes before it judges the exit, and stops watching
            // them; give the pumps a moment to read what the exit has just made readable
            // (a grandchild holding the pipes open is not waited for, and its output is
            // still logged later), then report the pipes as Python closes them.
            let mut pumps = std::mem::take(&mut self.pumps);
            let handles = pumps.iter_mut().filter_map(|p| p.task.take());
            let all = futures_join_all(handles.collect());
            let _ = tokio::time::timeout(std::time::Duration::from_millis(20), all).await;
            for p in pumps {
                let closed = Fact::OutputClosed {
                    id: self.spec.id,
                    fd: p.fd,
                    channel: p.channel,
                    kind: p.kind,
                    process: std::ptr::from_ref(&self.spec) as usize,
                    dispatcher: p.dispatcher,
                };
                let _ = self.facts.send(closed).await;
            }
        }
        let status = reaped.status;
        if self.stop.is_some() {
            // Stopped as a tree: it counts as stopped once its descendants are gone too.
            self.held = Some((live.pid, status));
            self.start_scan(ScanFor::Stop);
            return;
        }
        let _ = self.facts.send(Fact::Exited { id: self.spec.id, pid: live.pid, status }).await;
        if self.spec.config.stopastree {
            self.start_scan(ScanFor::Leftover);
        }
    }

    fn start_scan(&mut self, why: ScanFor) {
        if self.scan.is_some() {
            // A stop's scan wins over a leftover report.
            if self.next_scan != Some(ScanFor::Stop) {
                self.next_scan = Some(why);
            }
            return;
        }
        let known = self.stop.iter().flat_map(|s| s.signalled.iter().map(|(k, _)| *k)).collect();
        let q = proctree::Query {
            child: self.live.as_ref().and_then(|l| i32::try_from(l.pid).ok()),
            known,
            name: self.spec.config.name.clone(),
            group: self.spec.config.group.clone(),
            exclude: self.abandoned.clone(),
        };
        self.scan = Some((self.services.scanner.scan(q), why));
    }

    async fn on_scan(&mut self, members: Vec<Member>, why: ScanFor) {
        match why {
            ScanFor::Leftover => {
                if self.stop.is_some() || members.is_empty() {
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
                self.abandoned.extend(members.iter().map(|m| (m.pid, m.start)));
                let excess = self.abandoned.len().saturating_sub(ABANDONED_MAX);
                self.abandoned.drain(..excess);
            }
            ScanFor::Stop => {
                let Some(stop) = self.stop.as_mut() else { return };
                let (sig, group_of) = (stop.sig, stop.group_of);
                let mut fresh = Vec::new();
                for m in &members {
                    let key = (m.pid, m.start);
                    if group_of == Some(m.pgid) && self.held.is_none() {
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
                if let Some((pid, status)) = self.held {
                    if members.is_empty() {
                        self.held = None;
                        self.stop = None;
                        let fact = Fact::Exited { id: self.spec.id, pid, status };
                        let _ = self.facts.send(fact).await;
                    } else {
                        self.rescan_at = Some(crate::sys::clock::now() + RESCAN_EVERY);
                    }
                }
            }
        }
    }

    async fn log(&self, level: crate::logio::mainlog::Level, message: String) {
        let _ = self.facts.send(Fact::Log { level, message }).await;
    }

    async fn on_cmd(&mut self, cmd: RunnerCmd) {
        match cmd {
            RunnerCmd::Spawn => {
                self.stop = None;
                let fact = match self.start_child().await {
                    Ok(pid) => Fact::Spawned { id: self.spec.id, pid },
                    Err(message) => Fact::SpawnFailed { id: self.spec.id, message },
                };
                let _ = self.facts.send(fact).await;
            }
            RunnerCmd::Signal { pid, sig, group, purpose } => {
                if purpose == SignalPurpose::Kill && self.spec.config.stopastree {
                    let stop = self.stop.get_or_insert_with(TreeStop::default);
                    stop.sig = sig;
                    stop.group_of = group.then_some(pid as i32);
                    self.start_scan(ScanFor::Stop);
                }
                if self.held.as_ref().is_some_and(|(held, _)| *held == pid) {
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
            RunnerCmd::Deadline(at) => self.deadline = at,
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

    fn write_stdin(&mut self, data: &[u8]) -> Result<(), StdinError> {
        if self.live.is_none() {
            return Err(StdinError::NotRunning);
        }
        if self.stdin.is_none() {
            return Err(StdinError::Closed);
        }
        self.stdin_pending.extend_from_slice(data);
        self.flush_stdin()
    }

    /// Writes pending stdin bytes until they are all written or the pipe is full; the
    /// rest waits for the pipe to drain. A closed pipe drops the stdin and what is pending.
    fn flush_stdin(&mut self) -> Result<(), StdinError> {
        let Some(tx) = &self.stdin else {
            self.stdin_pending.clear();
            return Err(StdinError::Closed);
        };
        let mut written = 0;
        let mut closed = false;
        while written < self.stdin_pending.len() {
            let rest = self.stdin_pending.get(written..).unwrap_or_default();
            match tx.try_write(rest) {
                Ok(n) => written += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    closed = true;
                    break;
                }
            }
        }
        self.stdin_pending.drain(..written);
        if closed {
            self.stdin = None;
            self.stdin_pending.clear();
            return Err(StdinError::Closed);
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
        self.pumps.clear();
        let mut sides = Vec::with_capacity(2);
        match (&spec.pool, stdin.take()) {
            (Some(pool), Some(fd)) => {
                if self.spec.mainlog.is_some() {
                    let raw_fd = std::os::fd::AsRawFd::as_raw_fd(&stdout);
                    self.pumps.push(Pumping {
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
        self.stdin = stdin.and_then(|fd| tokio::net::unix::pipe::Sender::from_owned_fd(fd).ok());
        self.stdin_pending.clear();
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
                self.pumps.push(Pumping { task, fd, channel, kind, dispatcher, _id: id });
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

    #[test]
    fn a_burst_of_thousands_of_commands_loses_none() {
        const BURST: usize = 5000;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let services = Services {
                reaper: ReaperHandle::detached(),
                spawner: Spawner::start().unwrap(),
                scanner: Scanner::start().unwrap(),
                pumps: tokio::runtime::Handle::current(),
                daemon_env: Arc::new(Vec::new()),
            };
            let (facts_tx, mut facts) = mpsc::channel(16);
            let runner = Runner::spawn(spec(), facts_tx, services);
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
