//! Capture mode (`*_capture_maxbytes > 0`): the pure parser that splits child output at
//! `<!--XSUPERVISOR:BEGIN-->` / `<!--XSUPERVISOR:END-->` (Python's `POutputDispatcher.
//! record_output` and `toggle_capturemode`, supervisor/dispatchers.py).
//!
//! Text outside the tokens is [`Piece::Output`] (the child log). Text between them is
//! [`Piece::Captured`]: kept out of the child log but, as in Python, still a PROCESS_LOG
//! event and a DEBG main-log line. At END the bounded buffer becomes a
//! [`Piece::Communication`] (a PROCESS_COMMUNICATION event). Tokens are dropped and may be
//! split across reads.
//!
//! Deliberate differences (docs/compatibility.md, "Capture-mode tails are kept"): Python
//! holds back any remainder no longer than the token, and loses it when the child exits
//! (`after\n` never reached the log). Here only a remainder that could still be the start
//! of a token is held back, and [`CaptureParser::finish`] releases it at EOF.

/// Starts a captured section (both channels use the same tokens).
pub const BEGIN_TOKEN: &[u8] = b"<!--XSUPERVISOR:BEGIN-->";
/// Ends a captured section.
pub const END_TOKEN: &[u8] = b"<!--XSUPERVISOR:END-->";

/// One piece of parsed output, in stream order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Ordinary output: goes to the child log (and PROCESS_LOG events).
    Output(&'a [u8]),
    /// Output inside a captured section: not written to the child log.
    Captured(&'a [u8]),
    /// An END token closed a section: the PROCESS_COMMUNICATION payload (may be empty).
    Communication(Vec<u8>),
}

/// The capture-mode state of one channel of one process.
#[derive(Debug)]
pub struct CaptureParser {
    /// `*_capture_maxbytes`.
    maxbytes: usize,
    /// `strip_ansi`: Python strips each piece before it enters the capture buffer.
    strip_ansi: bool,
    capturing: bool,
    /// A tail of the previous feed that may be the start of the next token.
    pending: Vec<u8>,
    /// Reused to join `pending` with new data; empty between calls.
    scratch: Vec<u8>,
    /// Python's `BoundIO` buffer for the current section.
    buf: Vec<u8>,
}

impl CaptureParser {
    /// A parser for a channel with `capture_maxbytes = maxbytes` (> 0 to be useful).
    pub fn new(maxbytes: usize, strip_ansi: bool) -> Self {
        CaptureParser {
            maxbytes,
            strip_ansi,
            capturing: false,
            pending: Vec::new(),
            scratch: Vec::new(),
            buf: Vec::new(),
        }
    }

    /// True between a BEGIN and its END.
    #[cfg(test)]
    fn is_capturing(&self) -> bool {
        self.capturing
    }

    /// Parses one chunk read from the pipe, calling `out` for each piece in order.
    pub fn feed(&mut self, data: &[u8], out: &mut impl FnMut(Piece<'_>)) {
        if self.pending.is_empty() {
            self.scan(data, out);
        } else {
            let mut joined = std::mem::take(&mut self.scratch);
            joined.clear();
            joined.append(&mut self.pending);
            joined.extend_from_slice(data);
            self.scan(&joined, out);
            joined.clear();
            self.scratch = joined;
        }
    }

    /// EOF: releases a held-back partial token as ordinary (or captured) output. An open
    /// section is not emitted as a Communication, as in Python (no END, no event).
    pub fn finish(&mut self, out: &mut impl FnMut(Piece<'_>)) {
        let rest = std::mem::take(&mut self.pending);
        self.piece(&rest, out);
    }

    fn scan(&mut self, mut input: &[u8], out: &mut impl FnMut(Piece<'_>)) {
        loop {
            let token = if self.capturing { END_TOKEN } else { BEGIN_TOKEN };
            if let Some(at) = find(input, token) {
                let (before, rest) = input.split_at(at);
                self.piece(before, out);
                input = rest.get(token.len()..).unwrap_or_default();
                self.toggle(out);
            } else {
                let keep = prefix_at_end(input, token);
                let (now, later) = input.split_at(input.len() - keep);
                self.piece(now, out);
                self.pending.extend_from_slice(later);
                return;
            }
        }
    }

    fn piece(&mut self, data: &[u8], out: &mut impl FnMut(Piece<'_>)) {
        if data.is_empty() {
            return;
        }
        if self.capturing {
            if self.strip_ansi {
                let mut clean = Vec::with_capacity(data.len());
                super::ansi::strip_escapes(data, &mut clean);
                self.bound_write(&clean);
            } else {
                self.bound_write(data);
            }
            out(Piece::Captured(data));
        } else {
            out(Piece::Output(data));
        }
    }

    fn toggle(&mut self, out: &mut impl FnMut(Piece<'_>)) {
        self.capturing = !self.capturing;
        if !self.capturing {
            out(Piece::Communication(std::mem::take(&mut self.buf)));
        }
    }

    /// Python's `BoundIO.write`: when the write would exceed the bound, drop as many old
    /// bytes as the write brings (so one write larger than the bound is kept whole).
    fn bound_write(&mut self, data: &[u8]) {
        if self.buf.len() + data.len() > self.maxbytes {
            let drop = data.len().min(self.buf.len());
            self.buf.drain(..drop);
        }
        self.buf.extend_from_slice(data);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The length of the longest proper prefix of `needle` that `haystack` ends with
/// (medusa's `find_prefix_at_end`).
fn prefix_at_end(haystack: &[u8], needle: &[u8]) -> usize {
    let max = needle.len().saturating_sub(1).min(haystack.len());
    (1..=max).rev().find(|&l| needle.get(..l).is_some_and(|p| haystack.ends_with(p))).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A normalised transcript: adjacent pieces of the same kind merged, so that results
    /// of different read splits compare equal.
    #[derive(Debug, PartialEq, Eq)]
    enum Ev {
        Out(Vec<u8>),
        Cap(Vec<u8>),
        Comm(Vec<u8>),
    }

    fn push(evs: &mut Vec<Ev>, p: Piece<'_>) {
        match (evs.last_mut(), p) {
            (Some(Ev::Out(v)), Piece::Output(d)) => v.extend_from_slice(d),
            (Some(Ev::Cap(v)), Piece::Captured(d)) => v.extend_from_slice(d),
            (_, Piece::Output(d)) => evs.push(Ev::Out(d.to_vec())),
            (_, Piece::Captured(d)) => evs.push(Ev::Cap(d.to_vec())),
            (_, Piece::Communication(d)) => evs.push(Ev::Comm(d)),
        }
    }

    fn run(chunks: &[&[u8]], maxbytes: usize) -> Vec<Ev> {
        let mut p = CaptureParser::new(maxbytes, false);
        let mut evs = Vec::new();
        for c in chunks {
            p.feed(c, &mut |piece| push(&mut evs, piece));
        }
        p.finish(&mut |piece| push(&mut evs, piece));
        evs
    }

    fn out(s: &str) -> Ev {
        Ev::Out(s.as_bytes().to_vec())
    }
    fn cap(s: &str) -> Ev {
        Ev::Cap(s.as_bytes().to_vec())
    }
    fn comm(s: &str) -> Ev {
        Ev::Comm(s.as_bytes().to_vec())
    }

    const OBSERVED: &[u8] =
        b"before<!--XSUPERVISOR:BEGIN-->captured data<!--XSUPERVISOR:END-->after\n";

    #[test]
    fn python_observed_transcript_keeps_the_tail() {
        // Python logged `before`, emitted `captured data`, and lost `after\n`; we keep it.
        assert_eq!(
            run(&[OBSERVED], 1000),
            vec![out("before"), cap("captured data"), comm("captured data"), out("after\n")]
        );
    }

    #[test]
    fn every_split_point_gives_the_same_result() {
        let stream: &[u8] = b"a<!--XSUPERVISOR:BEGIN-->x<!--XSUPERVISOR:END--><!--XSUPERVISOR:BEGIN--><!--XSUPERVISOR:END--><!--XSUPERV<!--XSUPERVISOR:BEGIN-->y<!--XSUPERVISOR:BEGIN-->z<!--XSUPERVISOR:END--><!--";
        let whole = run(&[stream], 1000);
        assert_eq!(
            whole,
            vec![
                out("a"),
                cap("x"),
                comm("x"),
                comm(""),
                out("<!--XSUPERV"),
                cap("y<!--XSUPERVISOR:BEGIN-->z"),
                comm("y<!--XSUPERVISOR:BEGIN-->z"),
                out("<!--"),
            ]
        );
        for i in 0..=stream.len() {
            for j in i..=stream.len() {
                let got = run(&[&stream[..i], &stream[i..j], &stream[j..]], 1000);
                assert_eq!(got, whole, "split at {i},{j}");
            }
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(run(&bytes, 1000), whole, "byte by byte");
    }

    #[test]
    fn only_a_possible_token_prefix_is_held_back() {
        let mut p = CaptureParser::new(100, false);
        let mut evs = Vec::new();
        p.feed(b"short\n", &mut |x| push(&mut evs, x));
        assert_eq!(evs, vec![out("short\n")], "no token in sight: logged at once");
        p.feed(b"x<!--XSUP", &mut |x| push(&mut evs, x));
        assert_eq!(evs, vec![out("short\nx")]);
        p.feed(b"ERVISOR:BEGIN-->in", &mut |x| push(&mut evs, x));
        assert!(p.is_capturing());
        assert_eq!(evs, vec![out("short\nx"), cap("in")]);
    }

    #[test]
    fn unterminated_section_emits_no_communication() {
        assert_eq!(
            run(&[b"<!--XSUPERVISOR:BEGIN-->lost", b"<!--XSUP"], 100),
            vec![cap("lost<!--XSUP")]
        );
    }

    #[test]
    fn invalid_utf8_passes_through() {
        let got = run(&[b"\xff\xfe<!--XSUPERVISOR:BEGIN-->\x80<!--XSUPERVISOR:END-->\xc3"], 10);
        assert_eq!(
            got,
            vec![
                Ev::Out(b"\xff\xfe".to_vec()),
                Ev::Cap(vec![0x80]),
                Ev::Comm(vec![0x80]),
                Ev::Out(vec![0xc3])
            ]
        );
    }

    #[test]
    fn capture_maxbytes_follows_python_boundio() {
        // One write larger than the bound is kept whole.
        assert_eq!(
            run(&[b"<!--XSUPERVISOR:BEGIN-->abcdefgh<!--XSUPERVISOR:END-->"], 5),
            vec![cap("abcdefgh"), comm("abcdefgh")]
        );
        // Later writes drop as many old bytes as they bring.
        assert_eq!(
            run(&[b"<!--XSUPERVISOR:BEGIN-->abc", b"de", b"fg", b"<!--XSUPERVISOR:END-->"], 5),
            vec![cap("abcdefg"), comm("cdefg")]
        );
        assert_eq!(
            run(&[b"<!--XSUPERVISOR:BEGIN-->abcdefgh", b"ij<!--XSUPERVISOR:END-->"], 5),
            vec![cap("abcdefghij"), comm("cdefghij")]
        );
    }

    #[test]
    fn strip_ansi_applies_to_the_payload() {
        let mut p = CaptureParser::new(100, true);
        let mut evs = Vec::new();
        p.feed(b"<!--XSUPERVISOR:BEGIN-->\x1b[1mhi\x1b[0m<!--XSUPERVISOR:END-->", &mut |x| {
            push(&mut evs, x)
        });
        assert_eq!(evs, vec![cap("\x1b[1mhi\x1b[0m"), comm("hi")]);
    }

    #[test]
    fn prefix_at_end_is_medusas() {
        assert_eq!(prefix_at_end(b"abc<!--X", BEGIN_TOKEN), 5);
        assert_eq!(prefix_at_end(b"abc", BEGIN_TOKEN), 0);
        assert_eq!(prefix_at_end(b"<", BEGIN_TOKEN), 1);
        assert_eq!(prefix_at_end(b"", BEGIN_TOKEN), 0);
        assert_eq!(prefix_at_end(b"<!--XSUPERVISOR:BEGIN--", BEGIN_TOKEN), BEGIN_TOKEN.len() - 1);
    }
}
