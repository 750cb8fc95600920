//! Process states with Python's numeric codes and UPPERCASE names (supervisor/states.py),
//! and the state classes (`STOPPED_STATES`, `RUNNING_STATES`, `SIGNALLABLE_STATES`) that the
//! RPC layer uses to pick faults.

use std::fmt;

python_constants! {
    /// A process's state. The codes are Python's, which clients see in
    /// `getProcessInfo().state` and in `from_state` of events; the names are `statename`'s.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum ProcessState {
        Stopped = 0 => "STOPPED",
        Starting = 10 => "STARTING",
        Running = 20 => "RUNNING",
        Backoff = 30 => "BACKOFF",
        Stopping = 40 => "STOPPING",
        Exited = 100 => "EXITED",
        Fatal = 200 => "FATAL",
        Unknown = 1000 => "UNKNOWN",
    }
}

impl ProcessState {
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

    /// Whether Python's state table has an edge `self → to`. Every `StateChange` the
    /// machine emits satisfies this; the property tests check it.
    #[cfg(test)]
    pub(crate) fn can_transition_to(self, to: ProcessState) -> bool {
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
