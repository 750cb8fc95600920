//! The listener's end of the protocol, as `supervisor.childutils.listener` speaks it:
//! write `READY\n`, read one header line and `len` **characters** of UTF-8 payload, answer
//! `RESULT 2\nOK` (or `FAIL`). Blocking, generic over the streams so tests can drive it.

use std::collections::HashMap;
use std::io::{self, BufRead, Write};

/// One event as a listener sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The header tokens (`ver`, `server`, `serial`, `pool`, `poolserial`, `eventname`, `len`).
    pub headers: HashMap<String, String>,
    pub payload: String,
}

impl Received {
    pub fn event_name(&self) -> &str {
        self.headers.get("eventname").map_or("", String::as_str)
    }

    /// The payload's first line as `key:value` tokens, and the rest (PROCESS_LOG data).
    pub fn body(&self) -> (HashMap<String, String>, &str) {
        let (first, rest) = self.payload.split_once('\n').unwrap_or((&self.payload, ""));
        (tokens(first), rest)
    }
}

/// `childutils.get_headers`: space-separated `key:value` tokens.
pub fn tokens(line: &str) -> HashMap<String, String> {
    line.split_whitespace()
        .filter_map(|t| t.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The longest header line read.
const MAX_HEADER: u64 = 64 * 1024;

/// The two streams of a listener.
pub struct ListenerIo<R, W> {
    input: R,
    output: W,
}

impl<R: BufRead, W: Write> ListenerIo<R, W> {
    pub fn new(input: R, output: W) -> Self {
        ListenerIo { input, output }
    }

    /// Says READY and waits for the next event; `None` at EOF (supervisord went away).
    pub fn wait(&mut self) -> io::Result<Option<Received>> {
        self.output.write_all(b"READY\n")?;
        self.output.flush()?;
        let mut line = String::new();
        // A header is a few short tokens; a line without an end is not one.
        if io::Read::take(&mut self.input, MAX_HEADER).read_line(&mut line)? == 0 {
            return Ok(None);
        }
        if !line.ends_with('\n') && line.len() as u64 == MAX_HEADER {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "header line too long"));
        }
        let headers = tokens(&line);
        let len: usize = headers
            .get("len")
            .and_then(|l| l.parse().ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "header without len"))?;
        let payload = read_chars(&mut self.input, len)?;
        Ok(Some(Received { headers, payload }))
    }

    /// `RESULT 2\nOK`: processed.
    pub fn ok(&mut self) -> io::Result<()> {
        self.send(b"OK")
    }

    fn send(&mut self, result: &[u8]) -> io::Result<()> {
        writeln!(self.output, "RESULT {}", result.len())?;
        self.output.write_all(result)?;
        self.output.flush()
    }
}

/// Reads `n` UTF-8 characters (supervisord's `len` counts characters, not bytes).
fn read_chars(input: &mut impl BufRead, n: usize) -> io::Result<String> {
    // `n` is what the header claims: grow as bytes arrive rather than trust it up front.
    let mut bytes = Vec::with_capacity(n.min(64 * 1024));
    for _ in 0..n {
        let mut lead = [0u8; 1];
        input.read_exact(&mut lead)?;
        bytes.push(lead[0]);
        let width = match lead[0] {
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf7 => 4,
            _ => 1,
        };
        if width > 1 {
            let mut rest = [0u8; 3];
            let rest = rest.get_mut(..width - 1).unwrap_or_default();
            input.read_exact(rest)?;
            bytes.extend_from_slice(rest);
        }
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_characters_and_answers() {
        let payload = "processname:t groupname:t pid:1 channel:stdout\nØresund ok\n";
        let stream = format!(
            "ver:3.0 server:s serial:9 pool:p poolserial:1 eventname:PROCESS_LOG_STDOUT len:{}\n{payload}ver:3.0 eventname:TICK_5 len:4\nwhen",
            payload.chars().count()
        );
        assert_eq!(payload.chars().count() + 1, payload.len(), "one two-byte character");
        let mut out = Vec::new();
        let mut io = ListenerIo::new(stream.as_bytes(), &mut out);
        let ev = io.wait().unwrap().unwrap();
        assert_eq!(ev.event_name(), "PROCESS_LOG_STDOUT");
        assert_eq!(ev.headers["serial"], "9");
        let (body, data) = ev.body();
        assert_eq!((body["processname"].as_str(), body["channel"].as_str()), ("t", "stdout"));
        assert_eq!(data, "Øresund ok\n");
        io.ok().unwrap();
        let ev = io.wait().unwrap().unwrap();
        assert_eq!((ev.event_name(), ev.payload.as_str()), ("TICK_5", "when"));
        io.ok().unwrap();
        assert_eq!(io.wait().unwrap(), None);
        assert_eq!(out, b"READY\nRESULT 2\nOKREADY\nRESULT 2\nOKREADY\n");
    }

    #[test]
    fn a_header_without_len_is_an_error() {
        let mut out = Vec::new();
        let mut io = ListenerIo::new(&b"ver:3.0 eventname:X\n"[..], &mut out);
        assert!(io.wait().is_err());
    }
}
