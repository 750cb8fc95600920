//! The listener side of the protocol as supervisord reads it: what a listener writes on
//! its stdout moves it between ACKNOWLEDGED, READY, BUSY and UNKNOWN, exactly as
//! `PEventListenerDispatcher.handle_listener_state_change` does, including its quirks
//! (the `RESULT ` prefix is skipped, not checked; a result is only judged once more
//! data follows its length line when that line came alone). Pure: bytes in, notes out.

/// `process.listener_state` (supervisor.dispatchers.EventListenerStates).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerState {
    Ready,
    Busy,
    Acknowledged,
    Unknown,
}

impl ListenerState {
    pub fn name(self) -> &'static str {
        match self {
            ListenerState::Ready => "READY",
            ListenerState::Busy => "BUSY",
            ListenerState::Acknowledged => "ACKNOWLEDGED",
            ListenerState::Unknown => "UNKNOWN",
        }
    }
}

/// What happened while reading, in Python's log order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// `x: FROM -> TO` (DEBG); entering UNKNOWN also logs [`Note::unknown_warning`].
    Changed { from: ListenerState, to: ListenerState },
    /// The default handler accepted `OK`: `x: event was processed` (DEBG).
    Processed,
    /// Any other result: `x: event was rejected` (WARN); the event goes back to the pool.
    Rejected,
    /// The length after `RESULT ` is not an int: `x: bad result line: '…'` (WARN); the
    /// listener becomes UNKNOWN and the event goes back to the pool.
    BadResultLine(String),
}

impl Note {
    /// The daemon log line for this note of listener `name`, with its level.
    pub fn lines(&self, name: &str) -> Vec<(crate::logio::mainlog::Level, String)> {
        use crate::logio::mainlog::Level;
        match self {
            Note::Changed { from, to } => {
                let mut v =
                    vec![(Level::Debug, format!("{name}: {} -> {}", from.name(), to.name()))];
                if *to == ListenerState::Unknown {
                    v.push((Level::Warn, Note::unknown_warning(name)));
                }
                v
            }
            Note::Processed => vec![(Level::Debug, format!("{name}: event was processed"))],
            Note::Rejected => vec![(Level::Warn, format!("{name}: event was rejected"))],
            Note::BadResultLine(line) => {
                vec![(Level::Warn, format!("{name}: bad result line: '{line}'"))]
            }
        }
    }

    /// Python's WARN on entering UNKNOWN.
    pub fn unknown_warning(name: &str) -> String {
        format!(
            "{name}: has entered the UNKNOWN state and will no longer receive events, this usually indicates the process violated the eventlistener protocol"
        )
    }

    /// True when the note gives the in-flight event back to the pool.
    #[cfg(test)]
    fn rejects(&self) -> bool {
        matches!(self, Note::Rejected | Note::BadResultLine(_))
    }
}

const READY_TOKEN: &[u8] = b"READY\n";
const RESULT_PREFIX_LEN: usize = b"RESULT ".len();

/// One listener's protocol state and unread bytes.
#[derive(Debug, Clone)]
pub struct Protocol {
    state: ListenerState,
    buf: Vec<u8>,
    /// The announced result length once the `RESULT n` line has been read. Negative
    /// lengths (Python's `int()` accepts them) can never be satisfied.
    resultlen: Option<i64>,
    result: Vec<u8>,
}

impl Default for Protocol {
    fn default() -> Self {
        Protocol::new()
    }
}

impl Protocol {
    /// A freshly spawned listener: ACKNOWLEDGED, waiting for `READY\n`.
    pub fn new() -> Protocol {
        Protocol {
            state: ListenerState::Acknowledged,
            buf: Vec::new(),
            resultlen: None,
            result: Vec::new(),
        }
    }

    #[cfg(test)]
    fn state(&self) -> ListenerState {
        self.state
    }

    /// An event was written to the listener: BUSY. Python sets the state without a log
    /// line.
    pub fn sent(&mut self) {
        self.state = ListenerState::Busy;
    }

    fn change(&mut self, to: ListenerState, notes: &mut Vec<Note>) {
        notes.push(Note::Changed { from: self.state, to });
        self.state = to;
    }

    /// Feeds what the listener wrote and returns what it meant.
    pub fn feed(&mut self, data: &[u8]) -> Vec<Note> {
        self.buf.extend_from_slice(data);
        let mut notes = Vec::new();
        // Python recurses while bytes remain and it made progress; this loop does the same.
        while !self.buf.is_empty() {
            match self.state {
                ListenerState::Unknown => {
                    self.buf.clear();
                    break;
                }
                ListenerState::Acknowledged => {
                    if self.buf.len() < READY_TOKEN.len() {
                        break;
                    }
                    if self.buf.starts_with(READY_TOKEN) {
                        self.change(ListenerState::Ready, &mut notes);
                        self.buf.drain(..READY_TOKEN.len());
                    } else {
                        self.change(ListenerState::Unknown, &mut notes);
                        self.buf.clear();
                    }
                }
                ListenerState::Ready => {
                    // Anything written while READY is a violation.
                    self.change(ListenerState::Unknown, &mut notes);
                    self.buf.clear();
                }
                ListenerState::Busy => {
                    if !self.busy_step(&mut notes) {
                        break;
                    }
                }
            }
        }
        notes
    }

    /// One pass of the BUSY branch; false when it needs more data.
    fn busy_step(&mut self, notes: &mut Vec<Note>) -> bool {
        match self.resultlen {
            None => {
                let Some(pos) = self.buf.iter().position(|&b| b == b'\n') else {
                    return false;
                };
                let line: Vec<u8> = self.buf.drain(..=pos).take(pos).collect();
                let len_part = line.get(RESULT_PREFIX_LEN..).unwrap_or_default();
                match python_int(len_part) {
                    Some(n) => self.resultlen = Some(n),
                    None => {
                        let shown = match std::str::from_utf8(&line) {
                            Ok(s) => s.to_string(),
                            Err(_) => format!(
                                "Undecodable: {}",
                                crate::logio::mainlog::py_bytes_repr(&line)
                            ),
                        };
                        notes.push(Note::BadResultLine(shown));
                        self.change(ListenerState::Unknown, notes);
                        self.buf.clear();
                        return false;
                    }
                }
                // Python only looks at the result on its next pass, which happens only
                // if bytes remain (the loop condition).
                true
            }
            Some(len) => {
                let have = self.result.len() as i64;
                let needed = len - have;
                if needed > 0 {
                    let take = usize::try_from(needed).unwrap_or(usize::MAX).min(self.buf.len());
                    self.result.extend(self.buf.drain(..take));
                } else if needed < 0 {
                    // Unsatisfiable: Python keeps swallowing bytes and stays BUSY.
                    self.buf.clear();
                    return false;
                }
                if self.result.len() as i64 == len {
                    let result = std::mem::take(&mut self.result);
                    self.resultlen = None;
                    if result == b"OK" {
                        notes.push(Note::Processed);
                    } else {
                        notes.push(Note::Rejected);
                    }
                    self.change(ListenerState::Acknowledged, notes);
                    true
                } else {
                    false
                }
            }
        }
    }
}

/// Python's `int(bytes)` for the result length: surrounding whitespace, an optional sign,
/// decimal digits with single underscores between them.
fn python_int(b: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(b).ok()?;
    let s = s.trim_matches(|c: char| c.is_ascii_whitespace() || c == '\x0b' || c == '\x0c');
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, s.get(1..)?),
        Some(b'+') => (false, s.get(1..)?),
        _ => (false, s),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.chars().all(|c| c.is_ascii_digit() || c == '_')
    {
        return None;
    }
    let n: i64 = digits.replace('_', "").parse().ok()?;
    Some(if neg { -n } else { n })
}

#[cfg(test)]
mod tests {
    use super::ListenerState::*;
    use super::*;

    fn ch(from: ListenerState, to: ListenerState) -> Note {
        Note::Changed { from, to }
    }

    fn busy() -> Protocol {
        let mut p = Protocol::new();
        assert_eq!(p.feed(b"READY\n"), vec![ch(Acknowledged, Ready)]);
        p.sent();
        p
    }

    #[test]
    fn ready_needs_six_bytes_and_may_come_in_pieces() {
        let mut p = Protocol::new();
        assert_eq!(p.feed(b"REA"), vec![]);
        assert_eq!(p.state(), Acknowledged);
        assert_eq!(p.feed(b"DY\n"), vec![ch(Acknowledged, Ready)]);
        assert_eq!(p.state(), Ready);
    }

    #[test]
    fn anything_but_ready_when_acknowledged_is_unknown() {
        let mut p = Protocol::new();
        assert_eq!(p.feed(b"hello!"), vec![ch(Acknowledged, Unknown)]);
        assert_eq!(p.feed(b"READY\n"), vec![], "UNKNOWN is final");
        assert_eq!(p.state(), Unknown);
    }

    #[test]
    fn data_while_ready_is_unknown() {
        let mut p = Protocol::new();
        assert_eq!(p.feed(b"READY\nx"), vec![ch(Acknowledged, Ready), ch(Ready, Unknown)]);
    }

    #[test]
    fn ok_then_ready_in_one_write() {
        let mut p = busy();
        assert_eq!(
            p.feed(b"RESULT 2\nOKREADY\n"),
            vec![Note::Processed, ch(Busy, Acknowledged), ch(Acknowledged, Ready)]
        );
        assert_eq!(p.state(), Ready);
    }

    #[test]
    fn fail_is_a_rejection() {
        let mut p = busy();
        assert_eq!(p.feed(b"RESULT 4\nFAIL"), vec![Note::Rejected, ch(Busy, Acknowledged)]);
        assert!(Note::Rejected.rejects());
    }

    #[test]
    fn the_prefix_is_not_checked() {
        let mut p = busy();
        assert_eq!(p.feed(b"XXXXXXX2\nOK"), vec![Note::Processed, ch(Busy, Acknowledged)]);
        let mut p = busy();
        assert_eq!(p.feed(b"RESULT  2 \nOK"), vec![Note::Processed, ch(Busy, Acknowledged)]);
    }

    #[test]
    fn a_bad_length_is_unknown_and_rejects() {
        let mut p = busy();
        let notes = p.feed(b"RESULT x\nOK");
        assert_eq!(notes, vec![Note::BadResultLine("RESULT x".into()), ch(Busy, Unknown)]);
        assert!(notes[0].rejects());
        let mut p = busy();
        assert_eq!(
            p.feed(b"RESULT \xff\n"),
            vec![Note::BadResultLine("Undecodable: b'RESULT \\xff'".into()), ch(Busy, Unknown)]
        );
    }

    #[test]
    fn result_split_across_writes() {
        let mut p = busy();
        assert_eq!(p.feed(b"RESULT 2"), vec![]);
        assert_eq!(p.feed(b"\nO"), vec![]);
        assert_eq!(p.feed(b"K"), vec![Note::Processed, ch(Busy, Acknowledged)]);
        assert_eq!(p.feed(b"READY\n"), vec![ch(Acknowledged, Ready)]);
    }

    #[test]
    fn a_lone_zero_length_line_waits_for_more_bytes_as_python_does() {
        let mut p = busy();
        assert_eq!(p.feed(b"RESULT 0\n"), vec![]);
        assert_eq!(p.state(), Busy);
        assert_eq!(
            p.feed(b"READY\n"),
            vec![Note::Rejected, ch(Busy, Acknowledged), ch(Acknowledged, Ready)]
        );
    }

    #[test]
    fn negative_lengths_never_complete() {
        let mut p = busy();
        assert_eq!(p.feed(b"RESULT -1\nOKREADY\n"), vec![]);
        assert_eq!(p.feed(b"READY\n"), vec![]);
        assert_eq!(p.state(), Busy);
    }

    #[test]
    fn python_int_rules() {
        assert_eq!(python_int(b"12"), Some(12));
        assert_eq!(python_int(b" +1_0 "), Some(10));
        assert_eq!(python_int(b"-3"), Some(-3));
        for bad in [&b""[..], b"_1", b"1_", b"1__0", b"1.0", b"0x1", b"- 1", b"\xff"] {
            assert_eq!(python_int(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn log_lines_are_pythons() {
        use crate::logio::mainlog::Level;
        assert_eq!(
            ch(Acknowledged, Ready).lines("lst"),
            vec![(Level::Debug, "lst: ACKNOWLEDGED -> READY".to_string())]
        );
        let unk = ch(Busy, Unknown).lines("lst");
        assert_eq!(unk[0].1, "lst: BUSY -> UNKNOWN");
        assert_eq!(unk[1], (Level::Warn, "lst: has entered the UNKNOWN state and will no longer receive events, this usually indicates the process violated the eventlistener protocol".to_string()));
        assert_eq!(Note::Rejected.lines("a")[0], (Level::Warn, "a: event was rejected".into()));
        assert_eq!(Note::Processed.lines("a")[0], (Level::Debug, "a: event was processed".into()));
        assert_eq!(
            Note::BadResultLine("RESULT x".into()).lines("a")[0],
            (Level::Warn, "a: bad result line: 'RESULT x'".into())
        );
    }
}
