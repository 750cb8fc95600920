//! `supervisord eventlistener --logger`: appends the output carried by PROCESS_LOG events
//! to one file, each line prefixed with its process and channel (`web stdout: hello`;
//! `group:name` when the group has another name), rotating like a child log. A line split
//! across two events is joined before it is written; the unfinished tail of each stream is
//! written when the listener ends.

use std::collections::BTreeMap;
use std::io::{self, BufRead, Write};

use super::io::{ListenerIo, Received};
use crate::logio::RotatingWriter;

/// An unfinished line longer than this is written as it is rather than held.
const MAX_PENDING: usize = 64 * 1024;

/// Where the lines go.
pub enum Sink {
    File(RotatingWriter),
    Stderr,
}

impl Sink {
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Sink::File(w) => w.write_all(data).map(drop),
            Sink::Stderr => io::stderr().write_all(data),
        }
    }
}

/// The formatter: joins partial lines per (process, channel) and prefixes each line.
#[derive(Default)]
pub struct LineJoiner {
    pending: BTreeMap<(String, String), String>,
}

impl LineJoiner {
    /// The complete lines a PROCESS_LOG event adds, prefixed; `None` for other events.
    pub fn feed(&mut self, ev: &Received) -> Option<String> {
        if !ev.event_name().starts_with("PROCESS_LOG") {
            return None;
        }
        let (body, data) = ev.body();
        let name = body.get("processname").map_or("", String::as_str);
        let group = body.get("groupname").map_or("", String::as_str);
        let channel = body.get("channel").map_or("", String::as_str).to_string();
        let who = if group.is_empty() || group == name {
            name.to_string()
        } else {
            format!("{group}:{name}")
        };
        let key = (who, channel);
        let mut text = self.pending.remove(&key).unwrap_or_default();
        text.push_str(data);
        let mut out = String::new();
        let mut rest = text.as_str();
        while let Some(pos) = rest.find('\n') {
            let (line, tail) = rest.split_at(pos);
            out.push_str(&format!("{} {}: {line}\n", key.0, key.1));
            rest = tail.get(1..).unwrap_or("");
        }
        if rest.len() > MAX_PENDING {
            out.push_str(&format!("{} {}: {rest}\n", key.0, key.1));
        } else if !rest.is_empty() {
            self.pending.insert(key, rest.to_string());
        }
        Some(out)
    }

    /// Every unfinished line, prefixed and terminated.
    pub fn finish(&mut self) -> String {
        let mut out = String::new();
        for ((who, channel), rest) in std::mem::take(&mut self.pending) {
            out.push_str(&format!("{who} {channel}: {rest}\n"));
        }
        out
    }
}

/// Runs the listener until supervisord closes its stdin.
pub fn run<R: BufRead, W: Write>(io: &mut ListenerIo<R, W>, sink: &mut Sink) -> io::Result<()> {
    let mut joiner = LineJoiner::default();
    let res = loop {
        let ev = match io.wait() {
            Ok(Some(ev)) => ev,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        if let Some(lines) = joiner.feed(&ev)
            && !lines.is_empty()
            && let Err(e) = sink.write_all(lines.as_bytes())
        {
            // A full disk must not make supervisord resend the event forever: say so
            // on stderr (the listener's own log) and go on.
            let _ = writeln!(io::stderr(), "logger: cannot write the log: {e}");
        }
        if let Err(e) = io.ok() {
            break Err(e);
        }
    };
    let tail = joiner.finish();
    if !tail.is_empty() {
        let _ = sink.write_all(tail.as_bytes());
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn log_event(name: &str, group: &str, channel: &str, data: &str) -> Received {
        let mut headers = HashMap::new();
        headers.insert(
            "eventname".to_string(),
            format!("PROCESS_LOG_{}", channel.to_ascii_uppercase()),
        );
        Received {
            headers,
            payload: format!(
                "processname:{name} groupname:{group} pid:1 channel:{channel}\n{data}"
            ),
        }
    }

    #[test]
    fn lines_are_prefixed_and_joined_per_stream() {
        let mut j = LineJoiner::default();
        assert_eq!(j.feed(&log_event("web", "web", "stdout", "a\nb")).unwrap(), "web stdout: a\n");
        assert_eq!(
            j.feed(&log_event("w_1", "pool", "stderr", "x\n")).unwrap(),
            "pool:w_1 stderr: x\n"
        );
        assert_eq!(
            j.feed(&log_event("web", "web", "stdout", "c\n\nd")).unwrap(),
            "web stdout: bc\nweb stdout: \n"
        );
        assert_eq!(j.finish(), "web stdout: d\n");
        assert_eq!(j.finish(), "");
    }

    #[test]
    fn other_events_are_ignored() {
        let mut j = LineJoiner::default();
        let mut ev = log_event("web", "web", "stdout", "a\n");
        ev.headers.insert("eventname".into(), "PROCESS_STATE_RUNNING".into());
        assert_eq!(j.feed(&ev), None);
    }

    #[test]
    fn a_huge_unfinished_line_is_not_held_forever() {
        let mut j = LineJoiner::default();
        let big = "x".repeat(MAX_PENDING + 1);
        let out = j.feed(&log_event("web", "web", "stdout", &big)).unwrap();
        assert_eq!(out.len(), "web stdout: ".len() + big.len() + 1);
        assert_eq!(j.finish(), "");
    }

    #[test]
    fn run_writes_and_acknowledges() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.log");
        let payload = "processname:web groupname:web pid:1 channel:stdout\nhi\npartial";
        let input = format!(
            "ver:3.0 server:s serial:0 pool:log poolserial:0 eventname:PROCESS_LOG_STDOUT len:{}\n{payload}",
            payload.chars().count()
        );
        let mut out = Vec::new();
        let mut io = ListenerIo::new(input.as_bytes(), &mut out);
        let mut sink = Sink::File(RotatingWriter::open(&path, 0, 0).unwrap());
        run(&mut io, &mut sink).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "web stdout: hi\nweb stdout: partial\n"
        );
        assert_eq!(out, b"READY\nRESULT 2\nOKREADY\n");
    }
}
