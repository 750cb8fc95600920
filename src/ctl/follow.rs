//! `tail -f`, `maintail -f` and `fg` output: following a log by polling the daemon over
//! the session's keep-alive connection, in place of Python's `/logtail` HTTP stream.
//!
//! Like `/logtail`, a stream starts with the last 1024 bytes and then sends whatever the
//! file grows by; a file that shrinks prints `==> File truncated <==` and is read again
//! from the start. Offsets are the daemon's byte offsets, never lengths of the decoded
//! text we receive, so a lossily decoded byte cannot shift the stream:
//! - a process log's size comes from `tailProcess*Log(name, off, 0)` (its `newoffset`
//!   is always the file size, and a zero length sends no data), and the new bytes from
//!   `readProcess*Log(name, off, n)`, which returns exactly `[off, off+n)`;
//! - the main log has no tail method, so its size is found by probing
//!   `readLog(x, 1)`, which is empty exactly when `x` is at or past the end. Idle polls
//!   cost two probes; growth costs a logarithmic number of them.

use super::commands::{Ctl, Step};
use crate::fault::Fault;
use crate::rpc::value::Value;

/// `/logtail` sends this much of the existing file first.
const HEAD: u64 = 1024;
/// The most we ask for in one read, so a log that grew a lot arrives in pieces.
const CHUNK: u64 = 1 << 20;

/// A log to follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Process { name: String, stderr: bool },
    Main,
}

/// How a follow ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Ctrl-C.
    Interrupted,
    /// stdout was closed (`| head -1`).
    OutputClosed,
    /// The log does not exist, is NONE, or the name is unknown: Python's 404.
    Unreadable,
    /// `fg`'s input side ended the session.
    Stopped,
}

impl Source {
    fn path(&self) -> String {
        match self {
            Source::Process { name, stderr } => {
                format!("/logtail/{name}/{}", if *stderr { "stderr" } else { "stdout" })
            }
            Source::Main => "/mainlogtail".to_string(),
        }
    }
}

impl Ctl<'_> {
    /// Streams `sources` to stdout until Ctrl-C, a closed stdout, or (with `fg`) the
    /// input side says stop. Without `fg`, an unreadable log ends the follow at once; with
    /// it, that log's 404 goes to stderr and the others go on, as `fg`'s thread does.
    pub(super) fn follow(&mut self, sources: &[Source], fg: Option<&str>) -> Step<Ended> {
        let mut offsets = Vec::with_capacity(sources.len());
        for src in sources {
            let off = self.follow_start(src)?;
            if off.is_none() {
                if fg.is_none() {
                    return Ok(Ended::Unreadable);
                }
                let url = self.rpc.serverurl().to_string();
                let _best_effort =
                    writeln!(self.err, "{url}{} Cannot read, status code 404", src.path());
            }
            offsets.push(off);
        }
        loop {
            self.out.flush();
            if self.out.broken() {
                return Ok(Ended::OutputClosed);
            }
            if self.env().interrupted() {
                return Ok(Ended::Interrupted);
            }
            if let Some(name) = fg
                && !self.fg_input(name)?
            {
                return Ok(Ended::Stopped);
            }
            self.env().pause();
            if self.env().interrupted() {
                return Ok(Ended::Interrupted);
            }
            for (src, off) in sources.iter().zip(offsets.iter_mut()) {
                if let Some(o) = off {
                    *o = self.follow_step(src, *o)?;
                }
            }
        }
    }

    /// Prints the head of the log; returns the offset to follow from, or `None` when the
    /// log cannot be read.
    pub(super) fn follow_start(&mut self, src: &Source) -> Step<Option<u64>> {
        let Ok(size) = self.log_size(src, 0)? else { return Ok(None) };
        let start = size.saturating_sub(HEAD);
        // A zero-length read means "to EOF", so an empty log is checked with one byte.
        let len = if size == 0 { 1 } else { size - start };
        match self.log_read(src, start, len)? {
            Ok(data) if size > 0 => self.out.raw(data.as_bytes()),
            Ok(_) => {}
            Err(_) => return Ok(None),
        }
        Ok(Some(size))
    }

    /// One poll: prints what was added since `off`; returns the new offset.
    pub(super) fn follow_step(&mut self, src: &Source, mut off: u64) -> Step<u64> {
        // A fault here (the log was removed with its group, say) just waits for the
        // next poll, as `/logtail` keeps its open file.
        let Ok(size) = self.log_size(src, off)? else { return Ok(off) };
        if size < off {
            self.out.raw(b"==> File truncated <==\n");
            off = 0;
        }
        while off < size {
            let n = (size - off).min(CHUNK);
            match self.log_read(src, off, n)? {
                Ok(data) if !data.is_empty() => {
                    self.out.raw(data.as_bytes());
                    off += n;
                }
                // Shrunk between the two calls: the next poll sees it.
                _ => break,
            }
        }
        Ok(off)
    }

    /// The log's current size in bytes.
    fn log_size(&mut self, src: &Source, hint: u64) -> Step<Result<u64, Fault>> {
        match src {
            Source::Process { name, stderr } => {
                let method = if *stderr {
                    "supervisor.tailProcessStderrLog"
                } else {
                    "supervisor.tailProcessStdoutLog"
                };
                let params = [Value::str(name), Value::Int(to_i64(hint)), Value::Int(0)];
                Ok(self.log_call(method, &params)?.map(|v| {
                    let off = v.as_array().and_then(|a| a.get(1)).and_then(Value::as_int);
                    u64::try_from(off.unwrap_or(0)).unwrap_or(0)
                }))
            }
            Source::Main => self.main_log_size(hint),
        }
    }

    /// `readLog(x, 1)` is non-empty exactly when `x` is before the end of the main log;
    /// search for that boundary from `hint`, the last known size.
    fn main_log_size(&mut self, hint: u64) -> Step<Result<u64, Fault>> {
        let probe = |ctl: &mut Self, x: u64| -> Step<Result<bool, Fault>> {
            let params = [Value::Int(to_i64(x)), Value::Int(1)];
            Ok(ctl
                .log_call("supervisor.readLog", &params)?
                .map(|v| v.as_str().is_some_and(|s| !s.is_empty())))
        };
        let mut lo = hint;
        match probe(self, lo)? {
            Err(f) => return Ok(Err(f)),
            Ok(true) => {}
            Ok(false) if lo == 0 => return Ok(Ok(0)),
            Ok(false) => match probe(self, lo - 1)? {
                Err(f) => return Ok(Err(f)),
                Ok(true) => return Ok(Ok(lo)),
                Ok(false) => {
                    // Shrunk below the hint: start over from the beginning.
                    lo = 0;
                    match probe(self, 0)? {
                        Err(f) => return Ok(Err(f)),
                        Ok(false) => return Ok(Ok(0)),
                        Ok(true) => {}
                    }
                }
            },
        }
        // Invariant: lo < size. Gallop up to an upper bound, then bisect.
        let mut step = HEAD;
        let mut hi = lo.saturating_add(step);
        loop {
            match probe(self, hi)? {
                Err(f) => return Ok(Err(f)),
                Ok(true) => {
                    lo = hi;
                    step = step.saturating_mul(2);
                    hi = lo.saturating_add(step);
                }
                Ok(false) => break,
            }
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            match probe(self, mid)? {
                Err(f) => return Ok(Err(f)),
                Ok(true) => lo = mid,
                Ok(false) => hi = mid,
            }
        }
        Ok(Ok(hi))
    }

    /// Exactly the bytes `[off, off+len)` of the log (fewer at EOF).
    fn log_read(&mut self, src: &Source, off: u64, len: u64) -> Step<Result<String, Fault>> {
        let (method, mut params) = match src {
            Source::Process { name, stderr } => (
                if *stderr {
                    "supervisor.readProcessStderrLog"
                } else {
                    "supervisor.readProcessStdoutLog"
                },
                vec![Value::str(name)],
            ),
            Source::Main => ("supervisor.readLog", Vec::new()),
        };
        params.push(Value::Int(to_i64(off)));
        params.push(Value::Int(to_i64(len)));
        Ok(self.log_call(method, &params)?.map(|v| v.as_str().unwrap_or("").to_string()))
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
