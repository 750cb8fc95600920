//! What the state machine reacts to: requests (imperative) and facts (past tense), plus the
//! context every step gets from the orchestrator.

use std::time::Instant;

use super::exit::ExitStatus;

/// The daemon-wide facts a step needs but the process does not own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ctx {
    /// The time of the input (for `Exited`, the time the child was reaped). The core never
    /// reads a clock.
    pub now: Instant,
    /// Whether automatic (re)starts are allowed: the autorecovery gate is on (docs/control-plane.md)
    /// and the daemon is not shutting down (Python's `mood` check in `transition()`).
    pub autorecovery_on: bool,
}

/// One input to `step`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Start the process (RPC `startProcess`, or autostart at boot). Spawns from STOPPED,
    /// EXITED, FATAL and BACKOFF; a no-op in STARTING/RUNNING (check `Proc::check_start`
    /// first to answer ALREADY_STARTED).
    Start,
    /// Stop the process (RPC `stopProcess`): the stop signal in STARTING/RUNNING, straight to
    /// STOPPED in BACKOFF, a no-op elsewhere (no second signal while STOPPING).
    Stop,
    /// The daemon is shutting down or reloading (Python's group `stop_all`): like `Stop`,
    /// except that a BACKOFF process gives up (FATAL) instead of becoming STOPPED.
    Shutdown,
    /// Send a signal without intending to stop the process (RPC `signalProcess`): to the pid
    /// only, never the group; no state change.
    Signal { sig: i32 },
    /// The shell forked the child that `Action::Spawn` asked for.
    Spawned { pid: u32 },
    /// The shell could not spawn (no pid exists): the message is Python's spawnerr text,
    /// e.g. `can't find command 'x'` or `Too many processes in process table to spawn 'x'`.
    SpawnFailed { message: String },
    /// The child `pid` was reaped. An exit for another pid is stale and ignored.
    Exited { pid: u32, status: ExitStatus },
    /// Sending a stop/kill signal failed with something other than ESRCH: the process
    /// becomes UNKNOWN. (ESRCH is not a failure: the reap will follow.)
    KillFailed { error: String },
    /// Sending a `Signal` request's signal failed with something other than ESRCH.
    SignalFailed { error: String },
    /// Time passed: the shell sleeps until `Proc::next_deadline()` and sends this. A tick
    /// with nothing due is a no-op, so stale or spurious ticks are harmless.
    Tick,
    /// The autorecovery gate just crossed back on: restart what the policy would have
    /// restarted while it was off, as if its exit had just happened.
    AutoRecoveryOn,
    /// The readiness check passed: a STARTING process becomes RUNNING once `startsecs`
    /// have passed too.
    Ready,
    /// A readiness attempt failed (or the process said why it is not ready): the reason
    /// shows in the description while STARTING.
    NotReady { reason: String },
    /// The health check failed `failures` times in a row: stop the RUNNING process and
    /// restart it as after an unexpected exit.
    Unhealthy { failures: u32, reason: String },
    /// A dependency can no longer be met: a process that was to start is FATAL instead.
    DependencyFailed { reason: String },
}

impl Input {
    /// A short name for debug logs.
    pub fn label(&self) -> String {
        match self {
            Input::Start => "start".into(),
            Input::Stop => "stop".into(),
            Input::Shutdown => "shutdown".into(),
            Input::Signal { sig } => format!("signal({sig})"),
            Input::Spawned { pid } => format!("spawned({pid})"),
            Input::SpawnFailed { .. } => "spawn failure".into(),
            Input::Exited { pid, status } => format!("exit of pid {pid} ({status})"),
            Input::KillFailed { .. } => "kill failure".into(),
            Input::SignalFailed { .. } => "signal failure".into(),
            Input::Tick => "tick".into(),
            Input::AutoRecoveryOn => "autorecovery on".into(),
            Input::Ready => "ready".into(),
            Input::NotReady { .. } => "not ready".into(),
            Input::Unhealthy { .. } => "unhealthy".into(),
            Input::DependencyFailed { .. } => "dependency failed".into(),
        }
    }
}
