//! The supervisor 3.0 event types and their hierarchy (`supervisor.events.EventTypes`).
//! A listener subscribed to a type receives every subtype (Python checks `isinstance`),
//! so `EVENT` covers everything and `PROCESS_STATE` every `PROCESS_STATE_*`.

python_constants! {
    /// Every event type, abstract ones included; `name()` is the name in `events=` and in
    /// the `eventname:` header.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum EventType {
        Event => "EVENT",
        ProcessState => "PROCESS_STATE",
        ProcessStateStopped => "PROCESS_STATE_STOPPED",
        ProcessStateExited => "PROCESS_STATE_EXITED",
        ProcessStateStarting => "PROCESS_STATE_STARTING",
        ProcessStateStopping => "PROCESS_STATE_STOPPING",
        ProcessStateBackoff => "PROCESS_STATE_BACKOFF",
        ProcessStateFatal => "PROCESS_STATE_FATAL",
        ProcessStateRunning => "PROCESS_STATE_RUNNING",
        ProcessStateUnknown => "PROCESS_STATE_UNKNOWN",
        ProcessCommunication => "PROCESS_COMMUNICATION",
        ProcessCommunicationStdout => "PROCESS_COMMUNICATION_STDOUT",
        ProcessCommunicationStderr => "PROCESS_COMMUNICATION_STDERR",
        ProcessLog => "PROCESS_LOG",
        ProcessLogStdout => "PROCESS_LOG_STDOUT",
        ProcessLogStderr => "PROCESS_LOG_STDERR",
        RemoteCommunication => "REMOTE_COMMUNICATION",
        SupervisorStateChange => "SUPERVISOR_STATE_CHANGE",
        SupervisorStateChangeRunning => "SUPERVISOR_STATE_CHANGE_RUNNING",
        SupervisorStateChangeStopping => "SUPERVISOR_STATE_CHANGE_STOPPING",
        Tick => "TICK",
        Tick5 => "TICK_5",
        Tick60 => "TICK_60",
        Tick3600 => "TICK_3600",
        ProcessGroup => "PROCESS_GROUP",
        ProcessGroupAdded => "PROCESS_GROUP_ADDED",
        ProcessGroupRemoved => "PROCESS_GROUP_REMOVED",
    }
}

use EventType::*;

/// The TICK types in the order Python fires them within one pass, with their periods.
pub const TICKS: [(EventType, u64); 3] = [(Tick5, 5), (Tick60, 60), (Tick3600, 3600)];

impl EventType {
    /// The type called `name` (exact, upper case as the config stores it).
    pub fn from_name(name: &str) -> Option<EventType> {
        EventType::ALL.iter().copied().find(|t| t.name() == name)
    }

    /// The type this one subclasses; `None` for `EVENT`.
    pub fn parent(self) -> Option<EventType> {
        Some(match self {
            Event => return None,
            ProcessState
            | ProcessCommunication
            | ProcessLog
            | RemoteCommunication
            | SupervisorStateChange
            | Tick
            | ProcessGroup => Event,
            ProcessStateStopped | ProcessStateExited | ProcessStateStarting
            | ProcessStateStopping | ProcessStateBackoff | ProcessStateFatal
            | ProcessStateRunning | ProcessStateUnknown => ProcessState,
            ProcessCommunicationStdout | ProcessCommunicationStderr => ProcessCommunication,
            ProcessLogStdout | ProcessLogStderr => ProcessLog,
            SupervisorStateChangeRunning | SupervisorStateChangeStopping => SupervisorStateChange,
            Tick5 | Tick60 | Tick3600 => Tick,
            ProcessGroupAdded | ProcessGroupRemoved => ProcessGroup,
        })
    }

    /// Python's `isinstance(event, base)`: `self` is `base` or one of its subtypes.
    pub fn is_a(self, base: EventType) -> bool {
        let mut t = Some(self);
        while let Some(cur) = t {
            if cur == base {
                return true;
            }
            t = cur.parent();
        }
        false
    }

    /// Abstract types are never emitted, only subscribed to.
    #[cfg(test)]
    fn is_abstract(self) -> bool {
        EventType::ALL.iter().any(|t| t.parent() == Some(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_the_config_table() {
        for t in EventType::ALL {
            assert_eq!(EventType::from_name(t.name()), Some(t));
        }
        let mut ours: Vec<&str> = EventType::ALL.iter().map(|t| t.name()).collect();
        ours.sort_unstable();
        let mut config: Vec<&str> = crate::config::EVENT_TYPES.to_vec();
        config.sort_unstable();
        assert_eq!(ours, config);
        assert_eq!(EventType::from_name("process_state"), None);
        assert_eq!(EventType::from_name("FOO"), None);
    }

    #[test]
    fn event_covers_everything_and_branches_cover_their_leaves() {
        for t in EventType::ALL {
            assert!(t.is_a(Event), "{t:?}");
            assert!(t.is_a(t));
        }
        let covered =
            |base: EventType| EventType::ALL.iter().filter(|t| t.is_a(base) && **t != base).count();
        assert_eq!(covered(ProcessState), 8);
        assert_eq!(covered(ProcessLog), 2);
        assert_eq!(covered(ProcessCommunication), 2);
        assert_eq!(covered(SupervisorStateChange), 2);
        assert_eq!(covered(Tick), 3);
        assert_eq!(covered(ProcessGroup), 2);
        assert_eq!(covered(RemoteCommunication), 0);
        assert!(!ProcessStateRunning.is_a(ProcessLog));
        assert!(!ProcessState.is_a(ProcessStateRunning));
        assert!(!Tick5.is_a(Tick60));
    }

    #[test]
    fn abstract_types_are_exactly_pythons() {
        let abstract_: Vec<&str> =
            EventType::ALL.iter().filter(|t| t.is_abstract()).map(|t| t.name()).collect();
        assert_eq!(
            abstract_,
            [
                "EVENT",
                "PROCESS_STATE",
                "PROCESS_COMMUNICATION",
                "PROCESS_LOG",
                "SUPERVISOR_STATE_CHANGE",
                "TICK",
                "PROCESS_GROUP"
            ]
        );
    }
}
