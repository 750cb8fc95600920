//! The per-process policy the state machine obeys. Its own type, not the config model: the
//! orchestrator maps a program's config onto it, so `procsup` depends on nothing else.

use std::time::Duration;

/// When an exit in RUNNING leads to a restart (`autorestart=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoRestart {
    /// `false`: never.
    False,
    /// `unexpected` (the default): when the exit status is not in `exitcodes`.
    Unexpected,
    /// `true`: always.
    True,
}

/// The options of `[program:x]` that drive the state machine. Times are whole seconds, as
/// Python's config has them (a negative value in the config maps to 0, which gives the same
/// behaviour under Python's arithmetic).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// A process that stays up this long is RUNNING; one that exits sooner backs off.
    /// 0 means RUNNING as soon as it is spawned, and no exit is ever "too quickly".
    pub startsecs: i64,
    /// How many failed starts are retried before FATAL (so `startretries + 1` attempts).
    pub startretries: u32,
    pub autorestart: AutoRestart,
    /// Exit codes (0..=255) that count as expected.
    pub exitcodes: Vec<i32>,
    /// Signal number sent first on a stop.
    pub stopsignal: i32,
    /// How long after the stop signal (and between SIGKILLs) before SIGKILL.
    pub stopwaitsecs: u64,
    /// Send the stop signal to the process group.
    pub stopasgroup: bool,
    /// Send SIGKILL to the process group.
    pub killasgroup: bool,
    /// With a readiness check (`ready_check`): how long after the spawn it may take to
    /// pass. `None`: no check, RUNNING after `startsecs` alone.
    pub ready_timeout: Option<Duration>,
    /// `restart_backoff_max`: exponential delays before restarts after failures.
    pub exp_backoff: Option<super::lifecycle::ExpBackoff>,
    /// `restart_limit = N/SECONDS`: at most N automatic restarts per window.
    pub restart_limit: Option<(u32, Duration)>,
}

impl Default for Policy {
    /// Python's defaults for `[program:x]`.
    fn default() -> Policy {
        Policy {
            startsecs: 1,
            startretries: 3,
            autorestart: AutoRestart::Unexpected,
            exitcodes: vec![0],
            stopsignal: libc::SIGTERM,
            stopwaitsecs: 10,
            stopasgroup: false,
            killasgroup: false,
            ready_timeout: None,
            exp_backoff: None,
            restart_limit: None,
        }
    }
}

impl Policy {
    /// Whether an exit with Python's `exitstatus` (-1 for a signal) should be restarted
    /// (Python's `transition()` for EXITED).
    pub fn wants_restart(&self, exitstatus: i32) -> bool {
        match self.autorestart {
            AutoRestart::False => false,
            AutoRestart::True => true,
            AutoRestart::Unexpected => !self.exitcodes.contains(&exitstatus),
        }
    }

    pub fn startsecs_duration(&self) -> Duration {
        // A negative startsecs (Python accepts it) counts as 0.
        Duration::from_secs(u64::try_from(self.startsecs).unwrap_or(0))
    }

    pub fn stopwaitsecs_duration(&self) -> Duration {
        Duration::from_secs(self.stopwaitsecs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wants_restart_by_autorestart_and_exitcodes() {
        let p = |autorestart| Policy { autorestart, exitcodes: vec![0, 2], ..Policy::default() };
        let row = |a| [0, 2, 3, -1].map(|es| p(a).wants_restart(es));
        assert_eq!(row(AutoRestart::False), [false; 4]);
        assert_eq!(row(AutoRestart::True), [true; 4]);
        assert_eq!(row(AutoRestart::Unexpected), [false, false, true, true]);
    }
}
