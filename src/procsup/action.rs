//! What the state machine asks the shell to do. Actions are data; the order within one step
//! is the order Python does things in (event, then log, as `change_state` then `logger`).

use std::fmt;
use std::time::Instant;

use super::log::LogLine;
use super::state::ProcessState;

/// One command for the shell (the runner and the orchestrator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Fork and exec the program; answer with `Input::Spawned` or `Input::SpawnFailed`.
    Spawn,
    /// `kill(pid, sig)`, or `kill(-pid, sig)` (the process group) when `group`.
    Signal { pid: u32, sig: i32, group: bool },
    /// A deadline of this kind is now `at` (replacing any earlier one of the kind). The same
    /// deadline is in `Proc::next_deadline()`; this action is informational for shells that
    /// keep one timer per kind.
    StartTimer { kind: TimerKind, at: Instant },
    /// The pending deadline of this kind is gone before it fired.
    CancelTimer { kind: TimerKind },
    /// Publish a PROCESS_STATE_* event.
    Emit(StateChange),
    /// Answer the pending RPC waiters this outcome concerns.
    ResolveWaiters(WaitOutcome),
    /// Write a daemon log line.
    Log(LogLine),
}

/// The deadlines a process can have; at most one of each is pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TimerKind {
    /// STARTING becomes RUNNING when it passes (laststart + startsecs).
    Startsecs,
    /// BACKOFF retries when it passes (exit + backoff seconds).
    Backoff,
    /// STOPPING sends SIGKILL when it passes (signal + stopwaitsecs).
    Kill,
    /// EXITED restarts when it passes: a process that lived less than
    /// [`super::machine::MIN_RESTART_INTERVAL`] is not restarted sooner than that after its
    /// last start, so a crash loop cannot spin a core.
    Restart,
    /// A STARTING process with a readiness check that has not passed by then failed its
    /// start (laststart + ready_timeout).
    Ready,
}

/// A state change, with the fields Python puts in the PROCESS_STATE_* event body
/// (supervisor/events.py): every body has `from_state`; the rest depends on `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChange {
    pub from: ProcessState,
    pub to: ProcessState,
    /// The pid at the time of the change; `None` (Python prints 0) when there is no child.
    pub pid: Option<u32>,
    /// The backoff counter: STARTING shows it before the attempt, BACKOFF after the increment.
    pub tries: u32,
    /// For EXITED: whether the exit status was in `exitcodes`.
    pub expected: bool,
}

impl StateChange {
    /// The event body after `from_state:X`, exactly as Python renders it:
    /// `tries:N` for STARTING/BACKOFF, `expected:E pid:N` for EXITED, `pid:N` for
    /// RUNNING/STOPPING/STOPPED (`pid:0` when there is no child, e.g. BACKOFF→STOPPED),
    /// nothing for FATAL/UNKNOWN.
    pub fn extra_fields(&self) -> String {
        let pid = self.pid.unwrap_or(0);
        match self.to {
            ProcessState::Starting | ProcessState::Backoff => format!("tries:{}", self.tries),
            ProcessState::Exited => format!("expected:{} pid:{pid}", u8::from(self.expected)),
            ProcessState::Running | ProcessState::Stopping | ProcessState::Stopped => {
                format!("pid:{pid}")
            }
            ProcessState::Fatal | ProcessState::Unknown => String::new(),
        }
    }
}

/// `from_state:RUNNING expected:1 pid:123` (without processname/groupname, which the
/// orchestrator knows).
impl fmt::Display for StateChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "from_state:{}", self.from)?;
        let extra = self.extra_fields();
        if !extra.is_empty() {
            write!(f, " {extra}")?;
        }
        Ok(())
    }
}

/// The answer for waiting `startProcess`/`stopProcess` calls (Python's `onwait`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitOutcome {
    /// A start waiter's answer: the process left STARTING.
    Start(StartOutcome),
    /// Stop waiters are answered: a STOPPED_STATE was reached.
    Stopped,
}

/// How a wait for a start ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartOutcome {
    /// RUNNING was reached: `true`.
    Running,
    /// The spawn failed or the child exited too quickly (spawnerr is set): SPAWN_ERROR.
    SpawnError,
    /// Anything else that is neither STARTING nor RUNNING: ABNORMAL_TERMINATION.
    AbnormalTermination,
}

#[cfg(test)]
mod tests {
    use super::*;
    use ProcessState::*;

    #[test]
    fn event_bodies_follow_events_py() {
        let sc = |from, to, pid, tries, expected| {
            StateChange { from, to, pid, tries, expected }.to_string()
        };
        let got = [
            sc(Stopped, Starting, None, 0, true),
            sc(Starting, Backoff, None, 1, true),
            sc(Starting, Running, Some(123), 0, true),
            sc(Running, Exited, Some(123), 0, false),
            sc(Running, Stopping, Some(123), 0, true),
            sc(Backoff, Stopped, None, 2, true),
            sc(Backoff, Fatal, None, 0, true),
            sc(Stopping, Unknown, Some(123), 0, true),
        ];
        assert_eq!(
            got,
            [
                "from_state:STOPPED tries:0",
                "from_state:STARTING tries:1",
                "from_state:STARTING pid:123",
                "from_state:RUNNING expected:0 pid:123",
                "from_state:RUNNING pid:123",
                "from_state:BACKOFF pid:0",
                "from_state:BACKOFF",
                "from_state:STOPPING",
            ]
        );
    }
}
