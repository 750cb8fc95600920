//! The per-process shell: one task per process instance that carries out what the
//! orchestrator decided (spawn, signal, the next deadline) and reports facts back (`Spawned`,
//! `SpawnFailed`, `Exited`, `Tick`). It decides nothing; it does the blocking work (fork,
//! `/etc/passwd`, opening log files) so the orchestrator never has to.

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use crate::logio::pump::{self, PumpOptions, SharedWriter};
use crate::logio::{Channel, RotatingWriter};
use crate::sys::reaper::{ExitStatus as RawExit, Reaped, ReaperHandle};
use crate::sys::spawn::{self, SpawnError, SpawnSpec, SupervisorVars};

/// Commands a runner can have outstanding is small by construction (the state machine
/// issues at most a spawn or a couple of signals between facts), so a full inbox is a bug
/// and is logged by the orchestrator rather than waited on.
pub const RUNNER_INBOX: usize = 64;

/// A process instance's identity for the lifetime of its runner. Facts carry it so that a
/// fact from a runner of a removed group (or a previous config) is recognised as stale.
pub type ProcId = u64;

/// Where one channel's output goes.
#[derive(Debug, Clone)]
pub struct LogSpec {
    /// `None` for `NONE`; AUTO is already resolved to a path by the orchestrator.
    pub path: Option<PathBuf>,
    pub maxbytes: u64,
    pub backups: u32,
    pub capture_maxbytes: u64,
    /// AUTO logs are created empty when the process is created, as Python does at startup.
    pub create_now: bool,
    /// `*_events_enabled`: PROCESS_LOG events for this channel's output.
    pub events_enabled: bool,
    /// `*_syslog`: each output line to syslog too.
    pub syslog: bool,
}

/// Everything a runner needs to spawn its process; fixed for the runner's lifetime.
#[derive(Debug, Clone)]
pub struct RunnerSpec {
    pub id: ProcId,
    pub name: String,
    pub group: String,
    pub command: String,
    pub environment: Vec<(String, String)>,
    pub directory: Option<PathBuf>,
    pub umask: Option<u32>,
    pub user: Option<String>,
    pub redirect_stderr: bool,
    pub server_url: Option<String>,
    pub stdout: LogSpec,
    pub stderr: LogSpec,
    pub strip_ansi: bool,
    /// Where output events go; set when a channel has events or capture mode enabled.
    pub publisher: Option<crate::events::Publisher>,
    /// For `[eventlistener:x]` processes: the pool that gets the child's stdin and stdout
    /// (the protocol channel) instead of the stdout log pump.
    pub pool: Option<crate::events::PoolHandle>,
    /// The daemon log, set only when `loglevel` is debug or lower: each chunk of output is
    /// then logged there too, and the end of each output pipe is reported.
    pub mainlog: Option<crate::logio::mainlog_task::MainLogHandle>,
    /// An `[fcgi-program:x]`'s socket, the child's fd 0 (shared by the group's processes),
    /// or why it could not be created (then every spawn fails with that message).
    pub fcgi_socket: Option<Result<std::sync::Arc<OwnedFd>, String>>,
    /// The daemon log, whose thread sends `*_syslog` lines (set when a channel has it).
    pub syslog: Option<crate::logio::mainlog_task::MainLogHandle>,
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
    ClearLogs { label: String, reply: oneshot::Sender<Result<(), crate::rpc::Fault>> },
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
}

/// A live child as the runner sees it.
struct Live {
    pid: u32,
    exit: oneshot::Receiver<Reaped>,
}

/// The runner task's state.
pub struct Runner {
    spec: RunnerSpec,
    inbox: mpsc::Receiver<RunnerCmd>,
    facts: mpsc::Sender<Fact>,
    reaper: ReaperHandle,
    daemon_env: Vec<(OsString, OsString)>,
    stdout_log: Option<SharedWriter>,
    stderr_log: Option<SharedWriter>,
    live: Option<Live>,
    /// The live child's stdin (not for listeners, whose stdin carries events).
    stdin: Option<tokio::net::unix::pipe::Sender>,
    /// `sendProcessStdin` bytes the pipe had no room for yet; written as it drains, so a
    /// large write is neither lost nor allowed to stall the runner.
    stdin_pending: Vec<u8>,
    deadline: Option<Instant>,
    retiring: bool,
    /// The live child's output pumps (only kept under a debug `loglevel`, where the exit
    /// waits briefly for them so that output and pipe lines precede the exit line).
    pumps: Vec<Pumping>,
}

impl Runner {
    /// Starts a runner task for `spec` and returns its command sender.
    pub fn spawn(
        spec: RunnerSpec,
        facts: mpsc::Sender<Fact>,
        reaper: ReaperHandle,
        daemon_env: Vec<(OsString, OsString)>,
    ) -> mpsc::Sender<RunnerCmd> {
        let (tx, inbox) = mpsc::channel(RUNNER_INBOX);
        let runner = Runner {
            spec,
            inbox,
            facts,
            reaper,
            daemon_env,
            stdout_log: None,
            stderr_log: None,
            live: None,
            stdin: None,
            stdin_pending: Vec::new(),
            deadline: None,
            retiring: false,
            pumps: Vec::new(),
        };
        tokio::spawn(runner.run());
        tx
    }

    async fn run(mut self) {
        self.create_auto_logs();
        loop {
            let deadline = self.deadline;
            let sleep = async move {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
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
                        let _ = tx.writable().await;
                    }
                    _ => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                reaped = exit => self.on_exit(reaped).await,
                cmd = self.inbox.recv() => match cmd {
                    Some(cmd) => self.on_cmd(cmd).await,
                    None => break,
                },
                () = stdin_room => {
                    let _closed = self.flush_stdin();
                }
                () = sleep => {
                    self.deadline = None;
                    if self.facts.send(Fact::Tick { id: self.spec.id }).await.is_err() {
                        break;
                    }
                }
            }
            if self.retiring && self.live.is_none() {
                break;
            }
        }
    }

    async fn on_exit(&mut self, reaped: Option<Reaped>) {
        let Some(live) = self.live.take() else { return };
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
        let status = match reaped.status {
            RawExit::Exited(code) => crate::procsup::ExitStatus::Exited(code),
            RawExit::Signaled { signal, core_dumped } => {
                crate::procsup::ExitStatus::Signaled { sig: signal, core: core_dumped }
            }
        };
        let _ = self.facts.send(Fact::Exited { id: self.spec.id, pid: live.pid, status }).await;
    }

    async fn on_cmd(&mut self, cmd: RunnerCmd) {
        match cmd {
            RunnerCmd::Spawn => {
                let fact = match self.start_child().await {
                    Ok(pid) => Fact::Spawned { id: self.spec.id, pid },
                    Err(message) => Fact::SpawnFailed { id: self.spec.id, message },
                };
                let _ = self.facts.send(fact).await;
            }
            RunnerCmd::Signal { pid, sig, group, purpose } => {
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
                                self.spec.name
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
                for w in [&self.stdout_log, &self.stderr_log].into_iter().flatten() {
                    if let Err(e) = w.reopen() {
                        self.log_error(format!(
                            "could not reopen log for '{}': {e}",
                            self.spec.name
                        ))
                        .await;
                    }
                }
            }
            RunnerCmd::ClearLogs { label, reply } => {
                let mut res = Ok(());
                for (spec, w) in
                    [(&self.spec.stdout, &self.stdout_log), (&self.spec.stderr, &self.stderr_log)]
                {
                    match w {
                        Some(w) => {
                            if let Err(e) = w.clear() {
                                res = Err(e.to_string());
                            }
                        }
                        // Never spawned yet: truncate the file if it exists.
                        None => {
                            if let Some(path) = &spec.path
                                && path.exists()
                                && let Err(e) = std::fs::File::create(path)
                            {
                                res = Err(e.to_string());
                            }
                        }
                    }
                }
                let _ = reply.send(res.map_err(|e: String| {
                    crate::rpc::Fault::with(crate::rpc::FaultKind::Failed, format!("{label}: {e}"))
                }));
            }
            RunnerCmd::Retire => self.retiring = true,
        }
    }

    async fn log_error(&self, message: String) {
        let _ = self
            .facts
            .send(Fact::Log { level: crate::logio::mainlog::Level::Error, message })
            .await;
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

    /// AUTO logs exist from the moment the process does (Python creates them with the group).
    fn create_auto_logs(&mut self) {
        for spec in [&self.spec.stdout, &self.spec.stderr] {
            if let (true, Some(path)) = (spec.create_now, &spec.path) {
                let _ = std::fs::OpenOptions::new().create(true).append(true).open(path);
            }
        }
    }

    fn open_log(spec: &LogSpec) -> std::io::Result<Option<SharedWriter>> {
        match &spec.path {
            None => Ok(None),
            Some(p) => {
                Ok(Some(SharedWriter::new(RotatingWriter::open(p, spec.maxbytes, spec.backups)?)))
            }
        }
    }

    /// Python's spawn, parent side: resolve the command, open the logs, fork. The message of
    /// an `Err` is Python's `spawnerr` text.
    async fn start_child(&mut self) -> Result<u32, String> {
        if let Some(live) = &self.live {
            // The state machine never asks for this; be safe rather than orphan a child.
            return Ok(live.pid);
        }
        let spec = &self.spec;
        let argv = spawn::split_command(&spec.command).map_err(|e| e.to_string())?;
        let program_path = spec
            .environment
            .iter()
            .rev()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| OsString::from(v));
        let daemon_path = self.daemon_env.iter().find(|(k, _)| k == "PATH").map(|(_, v)| v.clone());
        let search = spawn::search_path(program_path.as_deref(), daemon_path.as_deref());
        let first = argv.first().cloned().unwrap_or_default();
        let program = spawn::resolve_program(&first, &search).map_err(|e| e.to_string())?;
        let uid = match &spec.user {
            None => None,
            Some(u) => Some(
                crate::sys::users::lookup_user(u)
                    .map_err(|e| format!("couldn't find user {u}: {e}"))?
                    .uid,
            ),
        };
        if self.stdout_log.is_none() {
            self.stdout_log =
                Self::open_log(&spec.stdout).map_err(|e| dispatch_error(&spec.name, &e))?;
        }
        if self.stderr_log.is_none() && !spec.redirect_stderr {
            self.stderr_log =
                Self::open_log(&spec.stderr).map_err(|e| dispatch_error(&spec.name, &e))?;
        }
        let vars = SupervisorVars {
            server_url: spec.server_url.as_deref(),
            process_name: &spec.name,
            group_name: &spec.group,
        };
        let env = spawn::env_for_child(self.daemon_env.iter().cloned(), &vars, &spec.environment);
        let stdin_socket = match &spec.fcgi_socket {
            None => None,
            Some(Ok(sock)) => Some(std::os::fd::AsRawFd::as_raw_fd(&**sock)),
            Some(Err(message)) => return Err(message.clone()),
        };
        let sspec = SpawnSpec {
            stdin_socket,
            name: spec.name.clone(),
            program,
            argv,
            env,
            cwd: spec.directory.clone(),
            umask: spec.umask,
            user: uid,
            redirect_stderr: spec.redirect_stderr,
        };
        let child = spawn::spawn(&sspec).map_err(|e: SpawnError| e.to_string())?;
        let pid = u32::try_from(child.pid).unwrap_or(0);
        let exit = self.reaper.watch(child.pid, child.birth).await;
        let mut stdin = Some(child.stdin);
        self.pumps.clear();
        match (&self.spec.pool, stdin.take()) {
            (Some(pool), Some(fd)) => {
                if self.spec.mainlog.is_some() {
                    let raw_fd = std::os::fd::AsRawFd::as_raw_fd(&child.stdout);
                    self.pumps.push(Pumping {
                        task: None,
                        fd: raw_fd,
                        channel: Channel::Stdout,
                        kind: "PEventListenerDispatcher",
                        dispatcher: std::ptr::from_ref(pool) as usize,
                    });
                }
                let attach = crate::events::Attach {
                    name: self.spec.name.clone(),
                    pid,
                    stdin: fd,
                    stdout: child.stdout,
                    log: self.stdout_log.clone(),
                    strip_ansi: self.spec.strip_ansi,
                };
                // A removed pool closes the pipes: the listener sees EOF and exits.
                let _ = pool.attach(attach).await;
            }
            (_, fd) => {
                stdin = fd;
                let (log, spec) = (self.stdout_log.clone(), self.spec.stdout.clone());
                self.start_pump(child.stdout, log, &spec, Channel::Stdout, pid);
            }
        }
        if let Some(err) = child.stderr {
            let spec = self.spec.stderr.clone();
            self.start_pump(err, self.stderr_log.clone(), &spec, Channel::Stderr, pid);
        }
        self.stdin = stdin.and_then(|fd| tokio::net::unix::pipe::Sender::from_owned_fd(fd).ok());
        self.stdin_pending.clear();
        self.live = Some(Live { pid, exit });
        Ok(pid)
    }

    fn start_pump(
        &mut self,
        fd: OwnedFd,
        writer: Option<SharedWriter>,
        spec: &LogSpec,
        channel: Channel,
        pid: u32,
    ) {
        let opts = PumpOptions {
            strip_ansi: self.spec.strip_ansi,
            capture_maxbytes: usize::try_from(spec.capture_maxbytes).unwrap_or(usize::MAX),
        };
        let hook = match &self.spec.publisher {
            Some(p) if spec.events_enabled || opts.capture_maxbytes > 0 => {
                let hook: Box<dyn pump::OutputHook> = Box::new(crate::events::EventHook {
                    publisher: p.clone(),
                    name: self.spec.name.clone(),
                    group: self.spec.group.clone(),
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
                        name: self.spec.name.clone(),
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
                        name: self.spec.name.clone(),
                        inner: hook,
                    });
                Some(hook)
            }
            _ => hook,
        };
        if debug.is_none() {
            // The pump outlives the child when a grandchild keeps the pipe open; it ends at EOF.
            tokio::spawn(pump::run(fd, writer, opts, hook));
            return;
        }
        let raw_fd = std::os::fd::AsRawFd::as_raw_fd(&fd);
        let pumping = Box::pin(pump::run(fd, writer, opts, hook));
        let dispatcher = std::ptr::from_ref(&*pumping) as *const u8 as usize;
        let task = tokio::spawn(async move {
            pumping.await;
        });
        let kind = "POutputDispatcher";
        self.pumps.push(Pumping { task: Some(task), fd: raw_fd, channel, kind, dispatcher });
    }
}

/// A pump of the live child, as the debug log reports it when the child exits.
struct Pumping {
    task: Option<tokio::task::JoinHandle<()>>,
    fd: i32,
    channel: Channel,
    kind: &'static str,
    dispatcher: usize,
}

/// Awaits every handle (their results do not matter, only that they ended).
async fn futures_join_all(handles: Vec<tokio::task::JoinHandle<()>>) {
    for h in handles {
        let _ = h.await;
    }
}

fn dispatch_error(name: &str, e: &std::io::Error) -> String {
    let errno = e.raw_os_error().map(crate::sys::errno::display).unwrap_or_else(|| e.to_string());
    format!("unknown error making dispatchers for '{name}': {errno}")
}
