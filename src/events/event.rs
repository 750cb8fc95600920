//! Event bodies and the envelope, rendered exactly as `supervisor/events.py` and
//! `EventListenerPool._eventEnvelope` render them, and the wrapping serial counters.

use crate::logio::Channel;
use crate::logio::mainlog::py_bytes_repr;
use crate::procsup::{ProcessState, StateChange};

use super::kind::EventType;

/// One event: its concrete type and its payload, rendered when it happened (Python renders
/// state bodies eagerly too, so a later pid change cannot leak into them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventType,
    pub payload: String,
}

/// Python's `as_string(data)` for event data: the UTF-8 text, or `Undecodable: b'…'`.
fn text_of(data: &[u8]) -> String {
    match std::str::from_utf8(data) {
        Ok(s) => s.to_string(),
        Err(_) => format!("Undecodable: {}", py_bytes_repr(data)),
    }
}

impl Event {
    /// `PROCESS_STATE_<TO>`: `processname:x groupname:g from_state:S` plus the tail
    /// `StateChange::extra_fields` gives (`tries`, `pid`, `expected`).
    pub fn process_state(name: &str, group: &str, change: &StateChange) -> Event {
        let kind = match change.to {
            ProcessState::Stopped => EventType::ProcessStateStopped,
            ProcessState::Starting => EventType::ProcessStateStarting,
            ProcessState::Running => EventType::ProcessStateRunning,
            ProcessState::Backoff => EventType::ProcessStateBackoff,
            ProcessState::Stopping => EventType::ProcessStateStopping,
            ProcessState::Exited => EventType::ProcessStateExited,
            ProcessState::Fatal => EventType::ProcessStateFatal,
            ProcessState::Unknown => EventType::ProcessStateUnknown,
        };
        Event { kind, payload: format!("processname:{name} groupname:{group} {change}") }
    }

    /// `PROCESS_LOG_STDOUT/STDERR`: one per chunk read from the pipe.
    pub fn process_log(name: &str, group: &str, pid: u32, channel: Channel, data: &[u8]) -> Event {
        let kind = match channel {
            Channel::Stdout => EventType::ProcessLogStdout,
            Channel::Stderr => EventType::ProcessLogStderr,
        };
        let payload = format!(
            "processname:{name} groupname:{group} pid:{pid} channel:{}\n{}",
            channel.as_str(),
            text_of(data)
        );
        Event { kind, payload }
    }

    /// `PROCESS_COMMUNICATION_STDOUT/STDERR`: what a capture section held.
    pub fn process_communication(
        name: &str,
        group: &str,
        pid: u32,
        channel: Channel,
        data: &[u8],
    ) -> Event {
        let kind = match channel {
            Channel::Stdout => EventType::ProcessCommunicationStdout,
            Channel::Stderr => EventType::ProcessCommunicationStderr,
        };
        Event {
            kind,
            payload: format!("processname:{name} groupname:{group} pid:{pid}\n{}", text_of(data)),
        }
    }

    /// `REMOTE_COMMUNICATION` from `sendRemoteCommEvent(type, data)`.
    pub fn remote_communication(type_: &str, data: &str) -> Event {
        Event { kind: EventType::RemoteCommunication, payload: format!("type:{type_}\n{data}") }
    }

    /// `SUPERVISOR_STATE_CHANGE_RUNNING`: empty body.
    pub fn supervisor_running() -> Event {
        Event { kind: EventType::SupervisorStateChangeRunning, payload: String::new() }
    }

    /// `SUPERVISOR_STATE_CHANGE_STOPPING`: empty body.
    pub fn supervisor_stopping() -> Event {
        Event { kind: EventType::SupervisorStateChangeStopping, payload: String::new() }
    }

    /// `PROCESS_GROUP_ADDED`: `groupname:g\n` (Python's trailing newline).
    pub fn group_added(group: &str) -> Event {
        Event { kind: EventType::ProcessGroupAdded, payload: format!("groupname:{group}\n") }
    }

    /// `PROCESS_GROUP_REMOVED`: `groupname:g\n`.
    pub fn group_removed(group: &str) -> Event {
        Event { kind: EventType::ProcessGroupRemoved, payload: format!("groupname:{group}\n") }
    }

    /// `TICK_5/60/3600`: `when:<start of the period, epoch seconds>`.
    pub fn tick(kind: EventType, when: u64) -> Event {
        Event { kind, payload: format!("when:{when}") }
    }
}

/// The header line and payload a listener reads. `len` counts **characters**, as Python's
/// `len(str)` does; the payload follows as UTF-8 with no trailing newline.
pub fn envelope(server: &str, serial: u64, pool: &str, pool_serial: u64, event: &Event) -> String {
    format!(
        "ver:3.0 server:{server} serial:{serial} pool:{pool} poolserial:{pool_serial} eventname:{} len:{}\n{}",
        event.kind.name(),
        event.payload.chars().count(),
        event.payload
    )
}

/// Python's `new_serial`: counts from 0 and wraps to 0 after `sys.maxsize`.
#[derive(Debug, Clone, Default)]
pub struct Serial {
    last: Option<u64>,
}

/// `sys.maxsize` on 64-bit Python.
const MAXSIZE: u64 = i64::MAX as u64;

impl Serial {
    pub fn new() -> Serial {
        Serial::default()
    }

    /// The next serial.
    pub fn take_next(&mut self) -> u64 {
        let n = match self.last {
            None => 0,
            Some(MAXSIZE) => 0,
            Some(n) => n + 1,
        };
        self.last = Some(n);
        n
    }

    #[cfg(test)]
    fn starting_after(last: u64) -> Serial {
        Serial { last: Some(last) }
    }
}

/// Python's `timeslice(period, when)`: the start of the period holding `when`.
pub fn timeslice(period: u64, when: u64) -> u64 {
    when - when % period.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ProcessState::*;

    fn sc(from: ProcessState, to: ProcessState, pid: Option<u32>, tries: u32, exp: bool) -> Event {
        Event::process_state("web", "grp", &StateChange { from, to, pid, tries, expected: exp })
    }

    #[test]
    fn process_state_bodies_are_pythons() {
        let cases = [
            (
                sc(Stopped, Starting, None, 0, true),
                "PROCESS_STATE_STARTING",
                "from_state:STOPPED tries:0",
            ),
            (
                sc(Starting, Running, Some(7), 0, true),
                "PROCESS_STATE_RUNNING",
                "from_state:STARTING pid:7",
            ),
            (
                sc(Starting, Backoff, None, 2, true),
                "PROCESS_STATE_BACKOFF",
                "from_state:STARTING tries:2",
            ),
            (
                sc(Running, Stopping, Some(7), 0, true),
                "PROCESS_STATE_STOPPING",
                "from_state:RUNNING pid:7",
            ),
            (
                sc(Running, Exited, Some(7), 0, false),
                "PROCESS_STATE_EXITED",
                "from_state:RUNNING expected:0 pid:7",
            ),
            (
                sc(Stopping, Stopped, Some(7), 0, true),
                "PROCESS_STATE_STOPPED",
                "from_state:STOPPING pid:7",
            ),
            (
                sc(Backoff, Stopped, None, 1, true),
                "PROCESS_STATE_STOPPED",
                "from_state:BACKOFF pid:0",
            ),
            (sc(Backoff, Fatal, None, 3, true), "PROCESS_STATE_FATAL", "from_state:BACKOFF"),
            (
                sc(Stopping, Unknown, Some(7), 0, true),
                "PROCESS_STATE_UNKNOWN",
                "from_state:STOPPING",
            ),
        ];
        for (ev, name, tail) in cases {
            assert_eq!(ev.kind.name(), name);
            assert_eq!(ev.payload, format!("processname:web groupname:grp {tail}"));
        }
    }

    #[test]
    fn other_bodies_are_pythons() {
        let log = Event::process_log("talk", "talk", 18638, Channel::Stdout, b"hello\n");
        assert_eq!(log.kind, EventType::ProcessLogStdout);
        assert_eq!(
            log.payload,
            "processname:talk groupname:talk pid:18638 channel:stdout\nhello\n"
        );
        let err = Event::process_log("t", "g", 1, Channel::Stderr, b"\x88\n");
        assert_eq!(err.kind, EventType::ProcessLogStderr);
        assert_eq!(
            err.payload,
            "processname:t groupname:g pid:1 channel:stderr\nUndecodable: b'\\x88\\n'"
        );
        let comm = Event::process_communication("talk", "talk", 5, Channel::Stdout, b"cap");
        assert_eq!(comm.kind, EventType::ProcessCommunicationStdout);
        assert_eq!(comm.payload, "processname:talk groupname:talk pid:5\ncap");
        let comm = Event::process_communication("t", "g", 5, Channel::Stderr, b"");
        assert_eq!(
            (comm.kind, comm.payload.as_str()),
            (EventType::ProcessCommunicationStderr, "processname:t groupname:g pid:5\n")
        );
        // Observed from 4.3.0: sendRemoteCommEvent('mytype', 'some data é').
        let rc = Event::remote_communication("mytype", "some data é");
        assert_eq!(rc.payload, "type:mytype\nsome data é");
        assert_eq!(Event::supervisor_running().payload, "");
        assert_eq!(Event::supervisor_stopping().kind.name(), "SUPERVISOR_STATE_CHANGE_STOPPING");
        assert_eq!(Event::group_added("lst").payload, "groupname:lst\n");
        assert_eq!(Event::group_removed("x").kind.name(), "PROCESS_GROUP_REMOVED");
        assert_eq!(Event::tick(EventType::Tick60, 1795469580).payload, "when:1795469580");
    }

    #[test]
    fn envelope_counts_characters_not_bytes() {
        // Observed from 4.3.0: the talk program's first PROCESS_LOG_STDOUT event.
        let ev = Event::process_log(
            "talk",
            "talk",
            18638,
            Channel::Stdout,
            "hello\nØresund\na".as_bytes(),
        );
        let env = envelope("myid", 9, "lst", 9, &ev);
        assert_eq!(
            env,
            "ver:3.0 server:myid serial:9 pool:lst poolserial:9 eventname:PROCESS_LOG_STDOUT len:72\nprocessname:talk groupname:talk pid:18638 channel:stdout\nhello\nØresund\na"
        );
        assert_eq!(env.len() - env.find('\n').unwrap() - 1, 73);
        let env = envelope("supervisor", 0, "p", 0, &Event::supervisor_running());
        assert_eq!(
            env,
            "ver:3.0 server:supervisor serial:0 pool:p poolserial:0 eventname:SUPERVISOR_STATE_CHANGE_RUNNING len:0\n"
        );
    }

    #[test]
    fn serials_count_from_zero_and_wrap_after_maxsize() {
        let mut s = Serial::new();
        assert_eq!((s.take_next(), s.take_next(), s.take_next()), (0, 1, 2));
        let mut s = Serial::starting_after(MAXSIZE - 1);
        assert_eq!((s.take_next(), s.take_next(), s.take_next()), (MAXSIZE, 0, 1));
    }

    #[test]
    fn timeslices() {
        assert_eq!(timeslice(5, 1795469624), 1795469620);
        assert_eq!(timeslice(5, 1795469625), 1795469625);
        assert_eq!(timeslice(60, 1795469625), 1795469580);
        assert_eq!(timeslice(3600, 1795469625), 1795467600);
        assert_eq!(timeslice(0, 7), 7);
    }
}
