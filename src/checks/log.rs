//! `log:REGEX`: ready when a line of the process's output matches. The output pump feeds
//! every chunk it reads into a [`LineMatcher`] (through [`LogWatch`], an output hook);
//! chunks are split into lines here, so a line cut across two reads still matches.

use crate::logio::pump::OutputHook;

/// A line longer than this is matched by its first `MAX_LINE` bytes (a child that never
/// writes a newline cannot make the daemon buffer without bound).
const MAX_LINE: usize = 64 * 1024;

/// Matches complete lines (without their `\n` or `\r\n`) against a regular expression.
/// Bytes that are not UTF-8 are matched as they are.
#[derive(Debug)]
pub struct LineMatcher {
    re: regex::bytes::Regex,
    partial: Vec<u8>,
    /// The current line was cut at `MAX_LINE` and its head already matched against.
    skipping: bool,
}

impl LineMatcher {
    /// Compiles `pattern` (validated at config load, so an error here is unexpected).
    pub fn new(pattern: &str) -> Result<LineMatcher, regex::Error> {
        Ok(LineMatcher {
            re: regex::bytes::Regex::new(pattern)?,
            partial: Vec::new(),
            skipping: false,
        })
    }

    /// Feeds a chunk of output; true once a complete line in it (or ending in it)
    /// matches.
    pub fn feed(&mut self, mut data: &[u8]) -> bool {
        while let Some(nl) = data.iter().position(|&b| b == b'\n') {
            let (line, rest) = data.split_at(nl);
            data = rest.get(1..).unwrap_or_default();
            if self.skipping {
                self.skipping = false;
                continue;
            }
            let matched = if self.partial.is_empty() {
                self.matches(line)
            } else {
                let room = MAX_LINE.saturating_sub(self.partial.len());
                self.partial
                    .extend_from_slice(line.get(..room.min(line.len())).unwrap_or_default());
                let whole = std::mem::take(&mut self.partial);
                self.matches(&whole)
            };
            if matched {
                return true;
            }
        }
        if !self.skipping {
            let room = MAX_LINE.saturating_sub(self.partial.len());
            self.partial.extend_from_slice(data.get(..room.min(data.len())).unwrap_or_default());
            if self.partial.len() >= MAX_LINE {
                let whole = std::mem::take(&mut self.partial);
                self.skipping = true;
                return self.matches(&whole);
            }
        }
        false
    }

    /// At end of output: the last line, if it had no newline.
    pub fn finish(&mut self) -> bool {
        let last = std::mem::take(&mut self.partial);
        !last.is_empty() && !self.skipping && self.matches(&last)
    }

    fn matches(&self, line: &[u8]) -> bool {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        self.re.is_match(line)
    }
}

/// An output hook that watches for the readiness line and passes every call on to the
/// hook it wraps (events, capture), so a pump keeps one hook. Reports the first match
/// on `matched` and then stops matching.
pub struct LogWatch {
    matcher: LineMatcher,
    matched: Option<tokio::sync::oneshot::Sender<()>>,
    inner: Option<Box<dyn OutputHook>>,
}

impl LogWatch {
    /// Watches for `matcher`'s lines, reporting the first on `matched`.
    pub fn new(
        matcher: LineMatcher,
        matched: tokio::sync::oneshot::Sender<()>,
        inner: Option<Box<dyn OutputHook>>,
    ) -> LogWatch {
        LogWatch { matcher, matched: Some(matched), inner }
    }
}

impl OutputHook for LogWatch {
    fn on_output(&mut self, data: &[u8]) {
        if self.matched.is_some()
            && self.matcher.feed(data)
            && let Some(tx) = self.matched.take()
        {
            // Nobody waiting any more (the process was stopped) is fine.
            let _ = tx.send(());
        }
        if let Some(inner) = &mut self.inner {
            inner.on_output(data);
        }
    }

    fn on_captured(&mut self, data: &[u8]) {
        // Output inside a capture section is not the program's log; only pass it on.
        if let Some(inner) = &mut self.inner {
            inner.on_captured(data);
        }
    }

    fn on_communication(&mut self, payload: Vec<u8>) {
        if let Some(inner) = &mut self.inner {
            inner.on_communication(payload);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str) -> LineMatcher {
        LineMatcher::new(p).expect("pattern")
    }

    #[test]
    fn matches_whole_lines_across_chunks() {
        let mut lm = m(r"^listening on :\d+$");
        assert!(!lm.feed(b"starting\nlisten"));
        assert!(!lm.feed(b"ing on :80"));
        assert!(lm.feed(b"80\r\nmore\n"));
        // A line without its newline is not complete until finish().
        let mut lm = m("ready");
        assert!(!lm.feed(b"ready"));
        assert!(lm.finish());
        assert!(!m("x").finish());
    }

    #[test]
    fn anchors_are_per_line_and_bytes_need_not_be_utf8() {
        let mut lm = m("^b$");
        assert!(!lm.feed(b"ab\nbc\n"));
        assert!(lm.feed(b"b\n"));
        let mut lm = m("^caf.* ok$");
        assert!(!lm.feed(b"caf\xff\xfe ok\n"), "invalid UTF-8 is not a character");
        assert!(m(r"(?-u)^caf.+ ok$").feed(b"caf\xff\xfe ok\n"));
        assert!(m(" ok$").feed(b"caf\xff\xfe ok\n"));
    }

    #[test]
    fn endless_lines_are_bounded() {
        let mut lm = m("^a+$");
        let chunk = vec![b'a'; 10_000];
        let mut matched = false;
        for _ in 0..20 {
            matched |= lm.feed(&chunk);
        }
        assert!(matched, "the first MAX_LINE bytes are matched");
        assert!(lm.partial.len() <= MAX_LINE);
        let mut lm = m("^end$");
        for _ in 0..20 {
            assert!(!lm.feed(&chunk));
        }
        assert!(!lm.feed(b"tail end\n"), "the rest of the long line is skipped");
        assert!(lm.feed(b"end\n"));
    }

    struct Count(std::sync::Arc<std::sync::atomic::AtomicUsize>);
    impl OutputHook for Count {
        fn on_output(&mut self, data: &[u8]) {
            self.0.fetch_add(data.len(), std::sync::atomic::Ordering::SeqCst);
        }
        fn on_communication(&mut self, _: Vec<u8>) {}
    }

    #[test]
    fn log_watch_reports_once_and_passes_output_on() {
        let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        let mut w = LogWatch::new(m("up"), tx, Some(Box::new(Count(seen.clone()))));
        w.on_output(b"booting\n");
        assert!(rx.try_recv().is_err());
        w.on_captured(b"up\n");
        assert!(rx.try_recv().is_err(), "captured output is not the log");
        w.on_output(b"up\nup\n");
        assert_eq!(rx.try_recv(), Ok(()));
        assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 8 + 3 + 6);
    }
}
