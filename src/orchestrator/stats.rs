//! Per-process counters for metrics and `status --json`: restarts and exits by cause,
//! FATAL transitions and time spent in BACKOFF. Pure: fed the state changes the state
//! machine emits (and which input caused them), with `now` as an argument.

use std::time::{Duration, Instant};

use crate::procsup::{Input, ProcessState, StateChange};

/// Why a process was started again after its first start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartCause {
    /// `autorestart` after an exit (EXITED → STARTING).
    Exited,
    /// A retry after an exit before `startsecs` (BACKOFF → STARTING).
    Backoff,
    /// Autorecovery crossed back on and restarted it.
    Autorecovery,
    /// An explicit start (RPC) of a process that had been started before.
    Request,
}

impl RestartCause {
    pub const ALL: [RestartCause; 4] = [
        RestartCause::Exited,
        RestartCause::Backoff,
        RestartCause::Autorecovery,
        RestartCause::Request,
    ];

    /// The `cause` label value.
    pub fn label(self) -> &'static str {
        match self {
            RestartCause::Exited => "exited",
            RestartCause::Backoff => "backoff",
            RestartCause::Autorecovery => "autorecovery",
            RestartCause::Request => "request",
        }
    }
}

/// How a running (or starting) process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCause {
    /// Exited after `startsecs` with a status in `exitcodes`.
    Expected,
    /// Exited after `startsecs` with a status not in `exitcodes`.
    Unexpected,
    /// Exited before `startsecs` (to BACKOFF).
    Early,
    /// Stopped by a stop request or shutdown (STOPPING → STOPPED).
    Stopped,
    /// Could not be spawned at all (to BACKOFF without a pid).
    SpawnError,
}

impl ExitCause {
    pub const ALL: [ExitCause; 5] = [
        ExitCause::Expected,
        ExitCause::Unexpected,
        ExitCause::Early,
        ExitCause::Stopped,
        ExitCause::SpawnError,
    ];

    /// The `cause` label value.
    pub fn label(self) -> &'static str {
        match self {
            ExitCause::Expected => "expected",
            ExitCause::Unexpected => "unexpected",
            ExitCause::Early => "early",
            ExitCause::Stopped => "stopped",
            ExitCause::SpawnError => "spawn_error",
        }
    }
}

/// What about an input matters to the counters (the input itself is consumed by the step).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Start,
    AutoRecoveryOn,
    SpawnFailed,
    Other,
}

impl Origin {
    pub fn of(input: &Input) -> Origin {
        match input {
            Input::Start => Origin::Start,
            Input::AutoRecoveryOn => Origin::AutoRecoveryOn,
            Input::SpawnFailed { .. } => Origin::SpawnFailed,
            _ => Origin::Other,
        }
    }
}

/// The counters of one process; lives in its table entry, copied into snapshots. A process
/// that has only been started (most of them) keeps no counters: they are allocated at its
/// first restart, exit, FATAL, BACKOFF or failed health check.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcStats {
    /// Whether the process has ever entered STARTING.
    started: bool,
    counts: Option<Box<Counts>>,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Counts {
    /// Indexed like [`RestartCause::ALL`].
    restarts: [u64; 4],
    /// Indexed like [`ExitCause::ALL`].
    exits: [u64; 5],
    /// Transitions into FATAL.
    fatal: u64,
    /// Failed attempts of its `health_check`.
    health_failed: u64,
    /// BACKOFF time of finished BACKOFF periods.
    backoff_done: Duration,
    /// When the current BACKOFF period began.
    backoff_since: Option<Instant>,
}

impl ProcStats {
    fn counts(&mut self) -> &mut Counts {
        self.counts.get_or_insert_with(Box::default)
    }

    /// Counts one state change caused by an input of `origin`.
    pub fn record(&mut self, origin: Origin, change: &StateChange, now: Instant) {
        if change.from == ProcessState::Backoff
            && let Some(c) = self.counts.as_deref_mut()
            && let Some(since) = c.backoff_since.take()
        {
            c.backoff_done += now.saturating_duration_since(since);
        }
        match change.to {
            ProcessState::Starting => {
                let cause = match (origin, change.from) {
                    (Origin::Start, _) => RestartCause::Request,
                    (Origin::AutoRecoveryOn, _) => RestartCause::Autorecovery,
                    (_, ProcessState::Backoff) => RestartCause::Backoff,
                    _ => RestartCause::Exited,
                };
                if self.started {
                    self.counts().restarts[cause as usize] += 1;
                }
                self.started = true;
            }
            ProcessState::Backoff => {
                let c = self.counts();
                c.backoff_since = Some(now);
                let cause = if origin == Origin::SpawnFailed {
                    ExitCause::SpawnError
                } else {
                    ExitCause::Early
                };
                c.exits[cause as usize] += 1;
            }
            ProcessState::Exited => {
                let cause =
                    if change.expected { ExitCause::Expected } else { ExitCause::Unexpected };
                self.counts().exits[cause as usize] += 1;
            }
            ProcessState::Stopped if change.from == ProcessState::Stopping => {
                self.counts().exits[ExitCause::Stopped as usize] += 1;
            }
            ProcessState::Fatal => self.counts().fatal += 1,
            _ => {}
        }
    }

    /// Counts one failed attempt of its `health_check`.
    pub fn health_failed_once(&mut self) {
        self.counts().health_failed += 1;
    }

    /// Every restart, whatever its cause.
    pub fn restart_count(&self) -> u64 {
        self.restarts().iter().sum()
    }

    /// Time spent in BACKOFF up to `now`, the current period included.
    pub fn backoff_time(&self, now: Instant) -> Duration {
        self.counts.as_deref().map_or(Duration::ZERO, |c| {
            c.backoff_done + c.backoff_since.map_or(Duration::ZERO, |s| now - s.min(now))
        })
    }

    /// Restarts, indexed like [`RestartCause::ALL`].
    pub fn restarts(&self) -> [u64; 4] {
        self.counts.as_deref().map_or([0; 4], |c| c.restarts)
    }

    /// Exits, indexed like [`ExitCause::ALL`].
    pub fn exits(&self) -> [u64; 5] {
        self.counts.as_deref().map_or([0; 5], |c| c.exits)
    }

    pub fn restarts_by(&self, cause: RestartCause) -> u64 {
        self.restarts()[cause as usize]
    }

    pub fn exits_by(&self, cause: ExitCause) -> u64 {
        self.exits()[cause as usize]
    }

    /// Transitions into FATAL.
    pub fn fatal(&self) -> u64 {
        self.counts.as_deref().map_or(0, |c| c.fatal)
    }

    /// Failed attempts of its `health_check`.
    pub fn health_failed(&self) -> u64 {
        self.counts.as_deref().map_or(0, |c| c.health_failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ProcessState::*;

    fn change(from: ProcessState, to: ProcessState, expected: bool) -> StateChange {
        StateChange { from, to, pid: None, tries: 0, expected }
    }

    #[test]
    fn first_start_is_not_a_restart_and_causes_are_told_apart() {
        let t0 = crate::sys::clock::now();
        let mut s = ProcStats::default();
        s.record(Origin::Start, &change(Stopped, Starting, false), t0);
        assert_eq!(s.restart_count(), 0);
        s.record(Origin::Other, &change(Starting, Backoff, false), t0);
        s.record(Origin::Other, &change(Backoff, Starting, false), t0 + Duration::from_secs(2));
        s.record(Origin::Other, &change(Starting, Running, false), t0);
        s.record(Origin::Other, &change(Running, Exited, false), t0);
        s.record(Origin::Other, &change(Exited, Starting, false), t0);
        s.record(Origin::AutoRecoveryOn, &change(Exited, Starting, false), t0);
        s.record(Origin::Start, &change(Exited, Starting, false), t0);
        assert_eq!(s.restarts_by(RestartCause::Backoff), 1);
        assert_eq!(s.restarts_by(RestartCause::Exited), 1);
        assert_eq!(s.restarts_by(RestartCause::Autorecovery), 1);
        assert_eq!(s.restarts_by(RestartCause::Request), 1);
        assert_eq!(s.restart_count(), 4);
        assert_eq!(s.exits_by(ExitCause::Early), 1);
        assert_eq!(s.exits_by(ExitCause::Unexpected), 1);
        assert_eq!(s.backoff_time(t0 + Duration::from_secs(9)), Duration::from_secs(2));
    }

    #[test]
    fn backoff_time_counts_the_current_period_and_fatal_ends_it() {
        let t0 = crate::sys::clock::now();
        let mut s = ProcStats::default();
        s.record(Origin::SpawnFailed, &change(Starting, Backoff, false), t0);
        assert_eq!(s.exits_by(ExitCause::SpawnError), 1);
        assert_eq!(s.backoff_time(t0 + Duration::from_secs(3)), Duration::from_secs(3));
        s.record(Origin::Other, &change(Backoff, Fatal, false), t0 + Duration::from_secs(4));
        assert_eq!(s.fatal(), 1);
        assert_eq!(s.backoff_time(t0 + Duration::from_secs(60)), Duration::from_secs(4));
        s.record(Origin::Other, &change(Stopping, Stopped, false), t0);
        s.record(Origin::Other, &change(Running, Exited, true), t0);
        assert_eq!(s.exits_by(ExitCause::Stopped), 1);
        assert_eq!(s.exits_by(ExitCause::Expected), 1);
    }
}
