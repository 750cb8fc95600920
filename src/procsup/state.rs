//! Process states with Python's numeric codes and UPPERCASE names (supervisor/states.py),
//! and the state classes (`STOPPED_STATES`, `RUNNING_STATES`, `SIGNALLABLE_STATES`) that the
//! RPC layer uses to pick faults.

use std::fmt;

/// A process's state. The discriminants are Python's codes, which clients see in
/// `getProcessInfo().state` and in `from_state` of events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProcessState {
    Stopped = 0,
    Starting = 10,
    Running = 20,
    Backoff = 30,
    Stopping = 40,
    Exited = 100,
    Fatal = 200,
    Unknown = 1000,
}

impl ProcessState {
    /// Every state, in code order.
    pub const ALL: [ProcessState; 8] = [
        ProcessState::Stopped,
        ProcessState::Starting,
        ProcessState::Running,
        ProcessState::Backoff,
        ProcessState::Stopping,
        ProcessState::Exited,
        ProcessState::Fatal,
        ProcessState::Unknown,
    ];

    /// Python's numeric code.
    pub const fn code(self) -> i32 {
        self as i32
    }

    /// Python's name, as in `statename` and event bodies.
    pub fn name(self) -> &'static str {
        match self {
            ProcessState::Stopped => "STOPPED",
            ProcessState::Starting => "STARTING",
            ProcessState::Running => "RUNNING",
            ProcessState::Backoff => "BACKOFF",
            ProcessState::Stopping => "STOPPING",
            ProcessState::Exited => "EXITED",
            ProcessState::Fatal => "FATAL",
            ProcessState::Unknown => "UNKNOWN",
        }
    }

    /// The state with this code, if any.
    pub fn from_code(code: i32) -> Option<ProcessState> {
        ProcessState::ALL.into_iter().find(|s| s.code() == code)
    }

    /// Python's `STOPPED_STATES`: a stop waiter is answered once one of these is reached.
    pub fn is_stopped(self) -> bool {
        matches!(
            self,
            ProcessState::Stopped
                | ProcessState::Exited
                | ProcessState::Fatal
                | ProcessState::Unknown
        )
    }

    /// Python's `RUNNING_STATES`: `startProcess` refuses these with ALREADY_STARTED and
    /// `stopProcess` accepts only these (BACKOFF is one of them).
    pub fn is_running(self) -> bool {
        matches!(self, ProcessState::Starting | ProcessState::Running | ProcessState::Backoff)
    }

    /// Python's `SIGNALLABLE_STATES`: `signalProcess` accepts only these.
    pub fn is_signallable(self) -> bool {
        matches!(self, ProcessState::Starting | ProcessState::Running | ProcessState::Stopping)
    }

    /// Whether Python's state table has an edge `self → to` (section 2.2 of the reference).
    /// Every `StateChange` the machine emits satisfies this; the property tests check it.
    pub fn can_transition_to(self, to: ProcessState) -> bool {
        use ProcessState::*;
        matches!(
            (self, to),
            (Stopped | Exited | Fatal | Backoff, Starting)
                | (Starting, Running | Backoff | Stopping | Unknown)
                | (Running, Stopping | Exited | Unknown)
                | (Backoff, Fatal | Stopped)
                | (Stopping, Stopped | Unknown)
        )
    }
}

impl fmt::Display for ProcessState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_are_pythons() {
        let table: Vec<String> =
            ProcessState::ALL.iter().map(|s| format!("{} {}", s.code(), s.name())).collect();
        assert_eq!(
            table.join(", "),
            "0 STOPPED, 10 STARTING, 20 RUNNING, 30 BACKOFF, 40 STOPPING, 100 EXITED, 200 FATAL, 1000 UNKNOWN"
        );
    }

    #[test]
    fn from_code_round_trips_and_rejects_others() {
        for s in ProcessState::ALL {
            assert_eq!(ProcessState::from_code(s.code()), Some(s));
        }
        assert_eq!(ProcessState::from_code(5), None);
        assert_eq!(ProcessState::from_code(-1), None);
    }

    #[test]
    fn state_classes_match_states_py() {
        let names = |f: fn(ProcessState) -> bool| -> Vec<&str> {
            ProcessState::ALL.into_iter().filter(|s| f(*s)).map(|s| s.name()).collect()
        };
        assert_eq!(names(ProcessState::is_stopped), ["STOPPED", "EXITED", "FATAL", "UNKNOWN"]);
        assert_eq!(names(ProcessState::is_running), ["STARTING", "RUNNING", "BACKOFF"]);
        assert_eq!(names(ProcessState::is_signallable), ["STARTING", "RUNNING", "STOPPING"]);
    }
}
