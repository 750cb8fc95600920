//! What the orchestrator is asked (requests, each with a `reply` oneshot) and the domain
//! shapes it answers with. The RPC layer turns these into wire values; nothing here knows
//! JSON or XML.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::oneshot;

use super::stats::ProcStats;
use crate::config::{Config, GroupConfig};
use crate::fault::Fault;
use crate::logio::pump::OutputCounters;
use crate::procsup::ProcessState;
use crate::runner::StdinError;

/// A reply channel.
pub type Reply<T> = oneshot::Sender<T>;

/// The daemon's own state (`getState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DaemonState {
    Running,
    Restarting,
    Shutdown,
}

impl DaemonState {
    pub fn code(self) -> i64 {
        match self {
            DaemonState::Running => 1,
            DaemonState::Restarting => 0,
            DaemonState::Shutdown => -1,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DaemonState::Running => "RUNNING",
            DaemonState::Restarting => "RESTARTING",
            DaemonState::Shutdown => "SHUTDOWN",
        }
    }
}

/// `getProcessInfo`'s fields, in Python's order.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessInfo {
    pub name: String,
    pub group: String,
    pub start: i64,
    pub stop: i64,
    pub now: i64,
    pub state: ProcessState,
    pub spawnerr: String,
    pub exitstatus: i64,
    pub stdout_logfile: String,
    pub stderr_logfile: String,
    pub pid: i64,
    pub description: String,
    /// The status of the last exit, too-quick ones included (which Python's `exitstatus`
    /// does not keep); `None` before the first. Only `weka.getLastExitStatus` shows it.
    pub last_exit: Option<i64>,
    /// Ours: set only for a process that uses the lifecycle options, whose rows gain
    /// these members; other processes' rows are exactly as before.
    pub lifecycle: Option<LifecycleInfo>,
}

/// What `supervisorctl status` shows of a process (`weka.getAllProcessRows`): the name and
/// group are read from the shared config rather than copied.
#[derive(Debug, Clone)]
pub struct StatusRow {
    pub config: std::sync::Arc<crate::config::ProcessConfig>,
    pub state: ProcessState,
    pub pid: i64,
    pub description: String,
}

/// What the lifecycle options add to a process's `getProcessInfo` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleInfo {
    /// `waiting for NAME:CONDITION` while its start waits for a dependency, else empty.
    pub waiting_for: String,
    /// With a `ready_check`: whether it passed since the last spawn.
    pub ready: Option<bool>,
    /// With a `health_check`, while RUNNING: `healthy` or `failing`; else empty.
    pub health: String,
    /// Consecutive failed health checks, and the last failure's reason.
    pub health_failures: i64,
    pub health_reason: String,
    /// Automatic restarts since the daemon started.
    pub restarts: i64,
    /// When the next automatic restart is due (epoch seconds), 0 when none is.
    pub next_restart: i64,
}

/// One process in a [`Snapshot`].
#[derive(Debug, Clone)]
pub struct ProcSample {
    pub info: ProcessInfo,
    pub autostart: bool,
    /// It has a `health_check`.
    pub has_health_check: bool,
    /// EXITED with an expected code since its last start: a one-shot that is done, which
    /// `/readyz` counts as ready.
    pub completed: bool,
    pub stats: ProcStats,
    /// Seconds spent in BACKOFF so far, the current period included.
    pub backoff_seconds: f64,
    /// stdout and stderr output counters (read when the sample is rendered).
    pub output: [Arc<OutputCounters>; 2],
}

/// How much of each process's [`ProcessInfo`] a [`Snapshot`] fills in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// Everything, as `getProcessInfo` reports it (`status --json`, the web page).
    Full,
    /// Names, state, times, pid and exit status only; the description, spawn error, log
    /// file paths and lifecycle details are left empty. What metrics and probes read,
    /// without the orchestrator formatting and copying strings they would throw away.
    Counts,
}

/// What a metrics scrape, a readiness probe, the web page and `status --json` need, in
/// one answer: the orchestrator copies its table; everything slow (reading `/proc`,
/// rendering) happens in the asking task.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub state: DaemonState,
    /// Sorted by group name, then process name.
    pub procs: Vec<ProcSample>,
    /// Each listener pool and the events its full buffer has dropped.
    pub pool_overflows: Vec<(String, u64)>,
    pub autorecovery: bool,
}

/// The answer for one process of a start/stop/signal: done now, or a receiver the caller
/// awaits (the orchestrator has parked the sender as a waiter).
#[derive(Debug)]
pub enum Outcome {
    Done(Result<(), Fault>),
    Wait(oneshot::Receiver<Result<(), Fault>>),
}

/// One process's part in a group/all operation.
#[derive(Debug)]
pub struct Pending {
    pub name: String,
    pub group: String,
    pub outcome: Outcome,
}

/// Which of a process's logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogChannel {
    Stdout,
    Stderr,
}

/// Which processes a start/stop/signal applies to.
#[derive(Debug, Clone)]
pub enum Target {
    /// A name spec: `name`, `group:name`, `group:*`.
    Spec(String),
    /// Every process (`startAllProcesses`, …).
    All,
    /// Every process of a program with `io_node=true` (`weka.stopAllIoNodes`).
    IoNodes,
    /// These processes (group, name), treated as a group operation: what is left of a
    /// group start once the caller's command checks have failed some members.
    Processes(Vec<(String, String)>),
}

/// What a start needs checked on disk first (Python's `get_execv_args`): the caller does
/// the filesystem work, never the orchestrator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandCheck {
    pub group: String,
    pub name: String,
    pub command: String,
    /// The program's own `environment=` PATH, when it sets one.
    pub path_env: Option<String>,
    /// In a running state (STARTING/RUNNING/BACKOFF), which group starts leave out.
    pub running: bool,
}

/// The answer to [`Request::Commands`].
#[derive(Debug, Clone)]
pub struct Commands {
    pub list: Vec<CommandCheck>,
    /// The daemon's PATH, searched when a program sets none.
    pub daemon_path: Option<OsString>,
}

/// Requests, each answered on its `reply`.
#[derive(Debug)]
pub enum Request {
    GetState {
        reply: Reply<DaemonState>,
    },
    GetIdentification {
        reply: Reply<String>,
    },
    /// `getProcessInfo(name)`: a group spec is BAD_NAME.
    ProcessInfo {
        spec: String,
        reply: Reply<Result<ProcessInfo, Fault>>,
    },
    /// `getAllProcessInfo`: sorted by group name, then process name.
    AllProcessInfo {
        reply: Reply<Vec<ProcessInfo>>,
    },
    /// `weka.getAllProcessRows`: [`AllProcessInfo`](Request::AllProcessInfo)'s order and
    /// what `status` shows of it; SHUTDOWN_STATE while stopping, as `getAllProcessInfo`.
    StatusRows {
        reply: Reply<Result<Vec<StatusRow>, Fault>>,
    },
    /// Metrics, `/readyz`, `weka.getAllProcessStatus`.
    Snapshot {
        detail: Detail,
        reply: Reply<Snapshot>,
    },
    /// `startProcess`/`startProcessGroup`/`startAllProcesses`/`weka.startProcess`.
    /// `single` is set when the spec names one process (its fault is the call's fault).
    Start {
        target: Target,
        wait: bool,
        idempotent: bool,
        reply: Reply<Result<Vec<Pending>, Fault>>,
    },
    /// `stopProcess`/`stopProcessGroup`/`stopAllProcesses`/`weka.stopAllIoNodes`.
    Stop {
        target: Target,
        wait: bool,
        reply: Reply<Result<Vec<Pending>, Fault>>,
    },
    /// `signalProcess`/`signalProcessGroup`/`signalAllProcesses` with a parsed signal.
    Signal {
        target: Target,
        sig: i32,
        reply: Reply<Result<Vec<Pending>, Fault>>,
    },
    /// `shutdown`.
    Shutdown {
        reply: Reply<Result<(), Fault>>,
    },
    /// `restart`.
    Restart {
        reply: Reply<Result<(), Fault>>,
    },
    /// `reloadConfig` with a config the caller has already read: `[added, changed, removed]`.
    Reread {
        config: Box<Config>,
        reply: Reply<Result<[Vec<String>; 3], Fault>>,
    },
    AddGroup {
        name: String,
        reply: Reply<Result<(), Fault>>,
    },
    RemoveGroup {
        name: String,
        reply: Reply<Result<(), Fault>>,
    },
    /// `getAllConfigInfo`: the latest parsed groups and which of them are active.
    AllConfigInfo {
        reply: Reply<(Vec<GroupConfig>, Vec<String>)>,
    },
    /// A process log's path for reading (`None` for NONE).
    LogPath {
        spec: String,
        channel: LogChannel,
        reply: Reply<Result<Option<PathBuf>, Fault>>,
    },
    /// The daemon log's path (`None` for syslog).
    MainLogPath {
        reply: Reply<Option<PathBuf>>,
    },
    /// `clearProcessLogs(name)` (and `clearAllProcessLogs` with `Target::All`).
    ClearLogs {
        target: Target,
        reply: Reply<Result<Vec<Pending>, Fault>>,
    },
    /// Keep the incarnation alive until `until` resolves (or is dropped), at most a moment:
    /// registered before `Shutdown`/`Restart` so their answer reaches the client.
    Linger {
        until: oneshot::Receiver<()>,
        reply: Reply<()>,
    },
    /// The commands of a start's target, for the caller's NO_FILE/NOT_EXECUTABLE checks.
    Commands {
        target: Target,
        reply: Reply<Result<Commands, Fault>>,
    },
    /// `sendProcessStdin`.
    SendStdin {
        spec: String,
        data: Vec<u8>,
        reply: Reply<Result<oneshot::Receiver<Result<(), StdinError>>, Fault>>,
    },
    /// `weka.getAutoRecovery`: (enabled, count).
    GetAutoRecovery {
        reply: Reply<(bool, i64)>,
    },
    /// `weka.disableAutoRecovery([holder])`: with a holder (`group:name`), the hold is
    /// released when that process exits, if it has not released it itself.
    DisableAutoRecovery {
        holder: Option<String>,
        reply: Reply<Result<(), Fault>>,
    },
    /// `weka.enableAutoRecovery([holder])`: a holder releases one of its own holds.
    EnableAutoRecovery {
        holder: Option<String>,
        reply: Reply<Result<(), Fault>>,
    },
    /// `sendRemoteCommEvent(type, data)`: a REMOTE_COMMUNICATION event.
    RemoteCommEvent {
        type_: String,
        data: String,
        reply: Reply<()>,
    },
}
