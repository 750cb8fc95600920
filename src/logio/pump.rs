//! The output pump: one async task per child that drains its stdout and stderr pipes, each
//! into its channel's log writer, until both reach EOF (one task rather than one per pipe:
//! an idle process then costs one task and one inbox). The pump owns its writers:
//! SIGUSR2's reopen and `clearProcessLogs` are [`LogCtl`] messages to it, addressed by
//! channel and handled between writes, so nothing else ever touches the files and no lock
//! is held across a write.
//!
//! Hot path (no capture, no `strip_ansi`, no log prefix, no hook): one 128 KiB read into the
//! thread's scratch buffer, one `write` of the whole chunk, no per-byte or per-line work
//! and no allocation. With a log prefix (`prefix::LineFramer`) the chunk is cut into lines
//! and written framed, once. Child output is bytes: no newline is required and invalid
//! UTF-8 is written unchanged (Python writes each chunk as is, too).
//!
//! Each round of reads tells [`coalesce`] how long its pipe could wait: after small reads the
//! pump runtime pauses a few milliseconds before it parks, so one wake reads many lines; a
//! pipe found half full is widened so that bulk output is read in full buffers.
//!
//! Pumps run on the daemon's pump runtime, never on the orchestrator's thread, so a write
//! that blocks (dirty-page throttling, a full disk) never stalls the control plane. A
//! regular file write is a plain `write(2)`; a special file (`/dev/stdout` feeding a
//! container log driver, a FIFO) can block for as long as its reader sleeps, so those
//! writes (and reopens) run under `block_in_place`, which hands the pump runtime's other
//! pumps to another thread. The pump never sends to the orchestrator; events go through
//! the [`OutputHook`], whose implementation must not await either.
//!
//! A write that fails (disk full, the log's directory removed) does not stop the pump: the
//! child must never block on a full pipe. The bytes are counted as dropped, the failure is
//! logged once per cause, and the count when writing works again or the pump ends.
//!
//! Pipes held open by a grandchild never reach EOF; the pump then lives as long as they do.
//! The pipes are read in turn: after a read of one, the other is looked at first.

use std::io;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tokio::net::unix::pipe;
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::oneshot;

use std::task::Poll;

use super::ansi;
use super::capture::{CaptureParser, Piece};
use super::coalesce;
use super::prefix::LineFramer;
use super::{Channel, RotatingWriter};
use crate::config::LinePrefix;
use crate::sys::clock;

/// One read's worth, as Python's: a default pipe (64 KiB) drains in one read, a widened
/// one in a few.
const READ_BUF: usize = 128 * 1024;

thread_local! {
    /// The read buffer of every pump on this thread: a pump reads into it and hands the
    /// chunk on without awaiting, so one buffer per pump-runtime thread serves them all
    /// and an idle pump holds no read memory.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; READ_BUF]);
}

/// What the rest of the daemon may ask of a pump's writer.
#[derive(Debug)]
pub enum LogCtl {
    /// SIGUSR2: reopen the channel's file by name (failures are logged by the pump).
    Reopen(Channel),
    /// `clearProcessLogs`: remove the channel's current file and reopen it empty.
    Clear(Channel, oneshot::Sender<io::Result<()>>),
    /// Bytes to log, for a writer with no pipe of its own (an event listener's stdout
    /// log, whose pipe the listener protocol reads).
    Write(Vec<u8>),
}

/// The way to a pump's (or sink's) writer; unbounded so that no request is ever lost and
/// no sender waits (reopen and clear are rare; `Write` is the listener protocol's output).
pub type LogCtlSender = crate::inbox::Sender<LogCtl>;

/// What a pump's messages call it: `'name' stdout log /path`.
#[derive(Debug, Clone, Default)]
pub struct PumpLabel {
    pub name: String,
    pub channel: &'static str,
}

/// What a pump does besides writing the log file. Calls happen on the pump's task, in
/// stream order; implementations must be quick and must not block (use `try_send`).
pub trait OutputHook: Send {
    /// A chunk of output that went to the child log (after `strip_ansi`): the place for
    /// PROCESS_LOG events (`*_events_enabled`; Python sends one event per chunk, not per
    /// line) and the DEBG `'name' stdout output:` main-log line.
    fn on_output(&mut self, data: &[u8]);

    /// Output inside a capture section (after `strip_ansi`): not in the child log, but
    /// Python still sends it as PROCESS_LOG and DEBG, so by default it is `on_output`.
    fn on_captured(&mut self, data: &[u8]) {
        self.on_output(data);
    }

    /// A capture section ended: the PROCESS_COMMUNICATION_STDOUT/STDERR payload.
    fn on_communication(&mut self, payload: Vec<u8>);
}

/// Per-channel settings that change what the pump does with each chunk.
#[derive(Debug, Clone, Default)]
pub struct PumpOptions {
    /// `strip_ansi` (`-t`): remove ANSI escapes before logging.
    pub strip_ansi: bool,
    /// `*_capture_maxbytes`; 0 turns capture mode off.
    pub capture_maxbytes: usize,
    /// `*_log_prefix`: written line by line, each line framed.
    pub prefix: Option<LinePrefix>,
    /// Where the bytes written and dropped are counted.
    pub counters: Option<Arc<OutputCounters>>,
}

/// One channel's output bytes over the life of its process (all its runs): written to the
/// log, and dropped because a write failed. Bumped by the pumps, read by metrics scrapes.
#[derive(Debug, Default)]
pub struct OutputCounters {
    pub written: AtomicU64,
    pub dropped: AtomicU64,
}

impl OutputCounters {
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// How a pump ended; the runner awaits it to know that output is drained.
#[derive(Debug, Default)]
pub struct PumpReport {
    /// Bytes read from the pipe.
    pub bytes_read: u64,
    /// Chunks that could not be written (disk full, …); the pump kept draining anyway so
    /// the child never blocks on a full pipe.
    pub write_errors: u64,
    /// Bytes read but not written to the log (counted, and logged).
    pub dropped_bytes: u64,
    /// Set if the pipe failed with something other than EOF (or was not a pipe).
    pub read_error: Option<io::Error>,
}

/// One pipe of a pump and where its output goes.
pub struct PumpSide {
    pub channel: Channel,
    pub pipe: OwnedFd,
    /// `None` for `NONE`.
    pub writer: Option<RotatingWriter>,
    pub opts: PumpOptions,
    pub hook: Option<Box<dyn OutputHook>>,
    pub label: PumpLabel,
}

/// Starts a pump for a child's pipes (stdout and stderr; one of them when stderr is
/// redirected or stdout goes to an event listener's pool) on `rt` and returns
/// the way to its writers, and its task (to learn when the output is drained).
pub fn spawn(
    rt: &Handle,
    first: PumpSide,
    second: Option<PumpSide>,
) -> (LogCtlSender, tokio::task::JoinHandle<[Option<PumpReport>; 2]>) {
    let (tx, rx) = crate::inbox::unbounded();
    let task = rt.spawn(run_sides(first, second, rx));
    (tx, task)
}

/// How far (in bytes) a sink's log may fall behind its writer before further output is left
/// out of it: the writer (an event listener's protocol) is never held up by its log, and
/// what waits for a slow log cannot grow without bound.
pub const SINK_BACKLOG_MAX: usize = 1 << 20;

/// The way to a sink: [`LogCtl`] messages, and output counted against
/// [`SINK_BACKLOG_MAX`].
#[derive(Debug, Clone)]
pub struct SinkSender {
    pub ctl: LogCtlSender,
    /// Bytes sent and not yet written.
    backlog: Arc<AtomicUsize>,
}

impl SinkSender {
    /// Queues `data` for the log; false, queueing nothing, while the log is
    /// [`SINK_BACKLOG_MAX`] behind.
    pub fn write(&self, data: Vec<u8>) -> bool {
        let n = data.len();
        if self.backlog.fetch_add(n, Ordering::Relaxed).saturating_add(n) > SINK_BACKLOG_MAX {
            self.backlog.fetch_sub(n, Ordering::Relaxed);
            return false;
        }
        if self.ctl.send(LogCtl::Write(data)).is_err() {
            self.backlog.fetch_sub(n, Ordering::Relaxed);
        }
        true
    }
}

/// Starts a task on `rt` that owns `writer` and writes what it is sent ([`LogCtl::Write`]).
pub fn spawn_sink(rt: &Handle, writer: RotatingWriter, label: PumpLabel) -> SinkSender {
    let (ctl, mut rx) = crate::inbox::unbounded();
    let backlog = Arc::new(AtomicUsize::new(0));
    let written = backlog.clone();
    let mut sink = Sink::new(Some(writer), None, false, label);
    rt.spawn(async move {
        while let Some(msg) = rx.recv().await {
            let n = match &msg {
                LogCtl::Write(data) => data.len(),
                _ => 0,
            };
            sink.control(msg);
            written.fetch_sub(n, Ordering::Relaxed);
        }
        sink.finish();
    });
    SinkSender { ctl, backlog }
}

/// Drains `pipe` (the read end of a child's stdout or stderr) into `writer` (None for
/// `NONE`) until EOF, applying `opts` and calling `hook`, and carries out `ctl` messages
/// between reads: a pump of one pipe.
pub async fn run(
    pipe: OwnedFd,
    writer: Option<RotatingWriter>,
    ctl: crate::inbox::Receiver<LogCtl>,
    opts: PumpOptions,
    hook: Option<Box<dyn OutputHook>>,
    label: PumpLabel,
) -> PumpReport {
    let channel = Channel::Stdout;
    let side = PumpSide { channel, pipe, writer, opts, hook, label };
    let [report, _] = run_sides(side, None, ctl).await;
    report.unwrap_or_default()
}

/// A pipe being drained: its reader (`None` once it ended), its sink and capture state.
struct Side {
    channel: Channel,
    rx: Option<pipe::Receiver>,
    sink: Sink,
    /// Set in capture mode; boxed, as it is rarely used.
    capture: Option<Box<CaptureParser>>,
    last_read: std::time::Instant,
    /// The pipe's capacity, and its widening while it is wide (see [`coalesce`]).
    capacity: usize,
    wide: Option<coalesce::WidePipe>,
    /// Reads since the pipe was last found empty: only a round's first read tells
    /// [`coalesce`] the pipe's rate.
    draining: bool,
}

impl Side {
    fn new(side: PumpSide) -> Side {
        // Taken apart at once: only what the pump uses lives in its task, and the rarely
        // used parts (prefix framer, capture parser) are boxed, so an idle pump stays small.
        let PumpSide { channel, pipe, writer, opts, hook, label } = side;
        let PumpOptions { strip_ansi, capture_maxbytes, prefix, counters } = opts;
        let mut sink = Sink::new(writer, hook, strip_ansi, label);
        sink.framer = prefix.map(|p| Box::new(LineFramer::new(p)));
        sink.counters = counters;
        // Checks that this is a pipe and makes it non-blocking.
        let rx = match pipe::Receiver::from_owned_fd(pipe) {
            Ok(rx) => Some(rx),
            Err(e) => {
                tracing::error!("{} pipe: cannot read: {e}", sink.label());
                sink.report.read_error = Some(e);
                None
            }
        };
        let capture = (rx.is_some() && capture_maxbytes > 0)
            .then(|| Box::new(CaptureParser::new(capture_maxbytes, strip_ansi)));
        Side {
            channel,
            rx,
            sink,
            capture,
            last_read: clock::now(),
            capacity: coalesce::DEFAULT_PIPE,
            wide: None,
            draining: false,
        }
    }

    /// One read after readiness, handled before the next await; false once the pipe ended.
    fn read(&mut self, ready: io::Result<()>) -> bool {
        let Some(rx) = &self.rx else { return false };
        let sink = &mut self.sink;
        let capture = &mut self.capture;
        let read = ready.and_then(|()| {
            SCRATCH.with_borrow_mut(|buf| {
                let n = rx.try_read(buf)?;
                sink.report.bytes_read += n as u64;
                let chunk = buf.get(..n).unwrap_or_default();
                match capture {
                    None => sink.output(chunk),
                    Some(parser) => parser.feed(chunk, &mut |piece| sink.piece(piece)),
                }
                Ok(n)
            })
        });
        match read {
            Ok(0) => {}
            Ok(n) => {
                if !self.draining {
                    self.draining = true;
                    note_read(n, self.capacity, &mut self.last_read);
                    if n >= self.capacity / 2
                        && self.wide.is_none()
                        && let Some(rx) = &self.rx
                        && let Some((wide, capacity)) = coalesce::WidePipe::widen(rx)
                    {
                        self.wide = Some(wide);
                        self.capacity = capacity;
                    }
                }
                return true;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.draining = false;
                return true;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return true,
            Err(e) => {
                tracing::error!("{} pipe: read failed: {e}", sink.label());
                sink.report.read_error = Some(e);
            }
        }
        self.end();
        false
    }

    /// The pipe is closed: the capture parser's and framer's leftovers are written.
    fn end(&mut self) {
        self.rx = None;
        self.wide = None;
        if let Some(parser) = &mut self.capture {
            parser.finish(&mut |piece| self.sink.piece(piece));
        }
        self.sink.flush_line();
    }
}

/// What woke the pump.
enum Wake {
    Ctl(Option<LogCtl>),
    Ready(usize, io::Result<()>),
}

/// Drains the pipes of `first` and `second` until both reach EOF, carrying out `ctl`
/// messages between reads; returns each side's report.
async fn run_sides(
    first: PumpSide,
    second: Option<PumpSide>,
    mut ctl: crate::inbox::Receiver<LogCtl>,
) -> [Option<PumpReport>; 2] {
    let mut sides = [Some(Side::new(first)), second.map(Side::new)];
    let mut ctl_open = true;
    // The side looked at first; after a read, the other one.
    let mut next = 0;
    loop {
        if sides.iter().flatten().all(|s| s.rx.is_none()) {
            break;
        }
        // Wait for readiness holding no buffer: an idle pump owns no read memory. Nothing
        // is read here, so a control message that wins loses nothing.
        // (Borrowed mutably: a shared borrow of the hooks would not be `Send`.)
        let (ctl_rx, pipes) = (&mut ctl, &mut sides);
        let wake = std::future::poll_fn(|cx| {
            if ctl_open && let Poll::Ready(msg) = ctl_rx.poll_recv(cx) {
                return Poll::Ready(Wake::Ctl(msg));
            }
            for k in 0..2 {
                let i = (next + k) % 2;
                let rx = pipes.get_mut(i).and_then(|s| s.as_mut()).and_then(|s| s.rx.as_ref());
                if let Some(rx) = rx
                    && let Poll::Ready(ready) = rx.poll_read_ready(cx)
                {
                    return Poll::Ready(Wake::Ready(i, ready));
                }
            }
            Poll::Pending
        })
        .await;
        match wake {
            Wake::Ctl(Some(msg)) => control(&mut sides, msg),
            Wake::Ctl(None) => ctl_open = false,
            Wake::Ready(i, ready) => {
                next = (i + 1) % 2;
                if let Some(Some(side)) = sides.get_mut(i) {
                    side.read(ready);
                }
                // Readiness stays set while a child keeps writing: take part in tokio's
                // cooperative budget so one chatty child cannot starve the other pumps.
                tokio::task::consume_budget().await;
            }
        }
    }
    // Requests that arrived with the EOF are still answered.
    ctl.close();
    while let Some(msg) = ctl.try_recv() {
        control(&mut sides, msg);
    }
    sides.map(|s| s.map(|s| s.sink.finish()))
}

/// Hands a control message to the side of its channel (`Write`, which has none, to the
/// first).
fn control(sides: &mut [Option<Side>; 2], msg: LogCtl) {
    let want = match &msg {
        LogCtl::Reopen(c) | LogCtl::Clear(c, _) => Some(*c),
        LogCtl::Write(_) => None,
    };
    let side = sides.iter_mut().flatten().find(|s| want.is_none_or(|c| c == s.channel));
    match (side, msg) {
        (Some(side), msg) => side.sink.control(msg),
        (None, LogCtl::Clear(_, reply)) => {
            let _ = reply.send(Ok(()));
        }
        (None, _) => {}
    }
}

/// Tells the pump runtime's read coalescing how long this pipe can wait before its next
/// read (see [`coalesce`]).
fn note_read(n: usize, capacity: usize, last_read: &mut std::time::Instant) {
    let now = clock::now();
    coalesce::after_read(n, capacity, now.saturating_duration_since(*last_read));
    *last_read = now;
}

/// The pump's output side, separate from the capture parser so both can be borrowed.
struct Sink {
    writer: Option<RotatingWriter>,
    hook: Option<Box<dyn OutputHook>>,
    strip_ansi: bool,
    can_block_in_place: bool,
    /// Reused buffer for `strip_ansi` output.
    stripped: Vec<u8>,
    label: PumpLabel,
    /// The kind of the write failure being reported, so a cause is logged once.
    failing: Option<io::ErrorKind>,
    /// Bytes dropped since writing last worked.
    dropped_now: u64,
    report: PumpReport,
    /// Set when the channel has a log prefix.
    framer: Option<Box<LineFramer>>,
    counters: Option<Arc<OutputCounters>>,
}

impl Sink {
    fn new(
        writer: Option<RotatingWriter>,
        hook: Option<Box<dyn OutputHook>>,
        strip_ansi: bool,
        label: PumpLabel,
    ) -> Sink {
        let can_block_in_place =
            Handle::try_current().is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread);
        Sink {
            writer,
            hook,
            strip_ansi,
            can_block_in_place,
            stripped: Vec::new(),
            label,
            failing: None,
            dropped_now: 0,
            report: PumpReport::default(),
            framer: None,
            counters: None,
        }
    }

    /// `'name' stdout log /path` (or `'name' stdout` without a file).
    fn label(&self) -> String {
        let name = crate::pytext::repr(&self.label.name);
        match &self.writer {
            Some(w) => format!("{name} {} log {}", self.label.channel, w.path().display()),
            None => format!("{name} {}", self.label.channel),
        }
    }

    /// Runs `f` on the writer, under `block_in_place` when the file is special (a FIFO or
    /// `/dev/stdout` may block on its reader).
    fn with_writer<T>(&mut self, f: impl FnOnce(&mut RotatingWriter) -> T) -> Option<T> {
        let block = self.can_block_in_place;
        let w = self.writer.as_mut()?;
        Some(if !w.is_regular() && block { tokio::task::block_in_place(|| f(w)) } else { f(w) })
    }

    fn control(&mut self, msg: LogCtl) {
        match msg {
            LogCtl::Reopen(_) => {
                if let Some(Err(e)) = self.with_writer(RotatingWriter::reopen) {
                    tracing::error!("{}: cannot reopen: {e}", self.label());
                }
            }
            LogCtl::Clear(_, reply) => {
                let res = self.with_writer(RotatingWriter::clear).unwrap_or(Ok(()));
                let _ = reply.send(res);
            }
            LogCtl::Write(data) => self.write(&data),
        }
    }

    fn piece(&mut self, piece: Piece<'_>) {
        match piece {
            Piece::Output(data) => self.output(data),
            Piece::Captured(data) => {
                let data = strip_into(self.strip_ansi, &mut self.stripped, data);
                if let Some(hook) = &mut self.hook {
                    hook.on_captured(data);
                }
            }
            Piece::Communication(payload) => {
                if let Some(hook) = &mut self.hook {
                    hook.on_communication(payload);
                }
            }
        }
    }

    fn output(&mut self, data: &[u8]) {
        // Moved out (no allocation) so the stripped bytes can be written through `self`.
        let mut stripped = std::mem::take(&mut self.stripped);
        let data = strip_into(self.strip_ansi, &mut stripped, data);
        if !data.is_empty() {
            // Moved out as well, so the framed lines can be written through `self`.
            match self.framer.take() {
                None => self.write(data),
                Some(mut framer) => {
                    self.write(framer.feed(data, clock::wall_now()));
                    self.framer = Some(framer);
                }
            }
            if let Some(hook) = &mut self.hook {
                hook.on_output(data);
            }
        }
        self.stripped = stripped;
    }

    /// The pipe is closed: a prefixed channel's unfinished line is written out.
    fn flush_line(&mut self) {
        if let Some(mut framer) = self.framer.take() {
            self.write(framer.finish(clock::wall_now()));
        }
    }

    /// Writes one chunk; a failure drops it, counted, and is logged once per cause.
    fn write(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let Some(res) = self.with_writer(|w| {
            let res = w.write_all(data);
            (res, w.take_rotate_error())
        }) else {
            return;
        };
        if let Some(c) = &self.counters {
            let counter = if res.0.is_ok() { &c.written } else { &c.dropped };
            counter.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        match res {
            (Ok(()), rotate) => {
                if let Some(kind) = self.failing.take() {
                    tracing::warn!(
                        "{}: writing again after {kind}; {} bytes of output were dropped",
                        self.label(),
                        self.dropped_now
                    );
                    self.dropped_now = 0;
                }
                if let Some(e) = rotate {
                    tracing::error!("{}: cannot rotate: {e}", self.label());
                }
            }
            (Err(e), _) => {
                self.report.write_errors += 1;
                self.report.dropped_bytes += data.len() as u64;
                self.dropped_now += data.len() as u64;
                if self.failing != Some(e.kind()) {
                    tracing::error!(
                        "{}: cannot write ({e}); the process keeps running and its output is dropped until the log can be written",
                        self.label()
                    );
                    self.failing = Some(e.kind());
                }
            }
        }
    }

    /// The pump's end: a failure still in progress gets its final count.
    fn finish(mut self) -> PumpReport {
        if self.failing.is_some() && self.dropped_now > 0 {
            tracing::error!(
                "{}: {} bytes of output were dropped (the log could not be written)",
                self.label(),
                self.dropped_now
            );
        }
        std::mem::take(&mut self.report)
    }
}

/// `data` without ANSI escapes when `strip` is on, built in `buf`; `data` itself when
/// there is nothing to strip (the common case costs one scan, no copy).
fn strip_into<'a>(strip: bool, buf: &'a mut Vec<u8>, data: &'a [u8]) -> &'a [u8] {
    if strip && ansi::has_escape(data) {
        buf.clear();
        ansi::strip_escapes(data, buf);
        buf
    } else {
        data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sink_too_far_behind_takes_no_more_until_it_catches_up() {
        // On a current-thread runtime the sink task runs only when the test awaits, so it is
        // as far behind as the test wants it.
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.log");
        let writer = RotatingWriter::open(&path, 0, 0).unwrap();
        let sink = spawn_sink(rt.handle(), writer, PumpLabel::default());
        let chunk = |b: u8| vec![b; 64 * 1024];
        let mut want = Vec::new();
        for i in 0..SINK_BACKLOG_MAX / (64 * 1024) {
            assert!(sink.write(chunk(i as u8)), "chunk {i} within the backlog");
            want.extend(chunk(i as u8));
        }
        assert!(!sink.write(chunk(b'x')), "a chunk past the backlog is left out");
        // Once the sink has written what it had, it takes output again.
        rt.block_on(async {
            while !sink.write(b"after".to_vec()) {
                tokio::task::yield_now().await;
            }
        });
        want.extend(b"after");
        drop(sink);
        rt.block_on(async {
            while std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) < want.len() as u64 {
                tokio::task::yield_now().await;
            }
        });
        assert!(std::fs::read(&path).unwrap() == want, "exactly the accepted output, in order");
    }
    use crate::logio::rotate::read_rotated;
    use std::io::Write;
    use std::path::Path;
    use std::sync::mpsc;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
    }

    /// Writes `chunks` into a fresh pipe from a thread and pumps it to completion.
    fn pump_chunks(
        chunks: Vec<Vec<u8>>,
        writer: Option<RotatingWriter>,
        opts: PumpOptions,
        hook: Option<Box<dyn OutputHook>>,
    ) -> PumpReport {
        let (_ctl, ctl_rx) = crate::inbox::unbounded();
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let feeder = std::thread::spawn(move || {
            let mut w = std::fs::File::from(w);
            for c in chunks {
                w.write_all(&c).unwrap();
            }
        });
        let report = runtime().block_on(async {
            tokio::spawn(run(r, writer, ctl_rx, opts, hook, PumpLabel::default())).await.unwrap()
        });
        feeder.join().unwrap();
        report
    }

    fn shared(path: &Path, maxbytes: u64, backups: u32) -> RotatingWriter {
        RotatingWriter::open(path, maxbytes, backups).unwrap()
    }

    /// Records hook calls in order.
    #[derive(Debug, PartialEq, Eq)]
    enum Call {
        Out(Vec<u8>),
        Cap(Vec<u8>),
        Comm(Vec<u8>),
    }
    struct Recorder(mpsc::Sender<Call>);
    impl OutputHook for Recorder {
        fn on_output(&mut self, data: &[u8]) {
            self.0.send(Call::Out(data.to_vec())).unwrap();
        }
        fn on_captured(&mut self, data: &[u8]) {
            self.0.send(Call::Cap(data.to_vec())).unwrap();
        }
        fn on_communication(&mut self, payload: Vec<u8>) {
            self.0.send(Call::Comm(payload)).unwrap();
        }
    }

    /// Merges adjacent calls of the same kind (read boundaries are arbitrary).
    fn merged(rx: mpsc::Receiver<Call>) -> Vec<Call> {
        let mut out: Vec<Call> = Vec::new();
        for c in rx.try_iter() {
            match (out.last_mut(), c) {
                (Some(Call::Out(a)), Call::Out(b)) | (Some(Call::Cap(a)), Call::Cap(b)) => {
                    a.extend(b)
                }
                (_, c) => out.push(c),
            }
        }
        out
    }

    #[test]
    fn invalid_utf8_and_no_newline_are_logged_as_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.log");
        let chunks =
            vec![b"no newline".to_vec(), vec![0xff, 0xfe, 0x00, 0xc3], b"\x88 tail".to_vec()];
        let want: Vec<u8> = chunks.concat();
        let report = pump_chunks(chunks, Some(shared(&p, 0, 0)), PumpOptions::default(), None);
        assert!(report.read_error.is_none() && report.write_errors == 0);
        assert_eq!(report.bytes_read, want.len() as u64);
        assert_eq!(std::fs::read(&p).unwrap(), want);
    }

    fn random_stream(total: usize) -> Vec<Vec<u8>> {
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut chunks = Vec::new();
        let mut n = 0;
        while n < total {
            let len = (next() % 9000) as usize + 1;
            chunks.push((0..len).map(|_| next() as u8).collect::<Vec<u8>>());
            n += len;
        }
        chunks
    }

    #[test]
    fn ten_megabytes_across_many_rotations_lose_nothing() {
        let chunks = random_stream(10 * 1024 * 1024);
        let input: Vec<u8> = chunks.concat();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.log");
        // A file holds at most maxbytes + one 128 KiB read, so 400 backups of 32 KiB hold
        // at least 10 MiB in at least 10 MiB / 160 KiB = 64 files: everything is kept.
        let report =
            pump_chunks(chunks, Some(shared(&p, 32 * 1024, 400)), PumpOptions::default(), None);
        assert_eq!(report.bytes_read, input.len() as u64);
        assert!(dir.path().join("big.log.60").exists(), "rotated many times");
        let kept = read_rotated(&p, 400).unwrap();
        assert!(kept == input, "kept {} of {} bytes, or reordered", kept.len(), input.len());
    }

    #[test]
    fn ten_megabytes_with_few_backups_keep_an_exact_tail() {
        let chunks = random_stream(10 * 1024 * 1024);
        let input: Vec<u8> = chunks.concat();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.log");
        pump_chunks(chunks, Some(shared(&p, 100_000, 5)), PumpOptions::default(), None);
        let kept = read_rotated(&p, 5).unwrap();
        assert!(kept.len() >= 5 * 100_000, "each backup holds at least maxbytes");
        assert!(input.ends_with(&kept), "kept bytes are the tail of the input, in order");
        assert!(!dir.path().join("big.log.6").exists());
    }

    #[test]
    fn none_logfile_still_feeds_the_hook() {
        let (tx, rx) = mpsc::channel();
        let report = pump_chunks(
            vec![b"a".to_vec(), b"b\n".to_vec()],
            None,
            PumpOptions::default(),
            Some(Box::new(Recorder(tx))),
        );
        assert_eq!(report.bytes_read, 3);
        assert_eq!(merged(rx), vec![Call::Out(b"ab\n".to_vec())]);
    }

    #[test]
    fn capture_mode_with_tokens_split_across_writes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cap.log");
        let (tx, rx) = mpsc::channel();
        let stream =
            b"before<!--XSUPERVISOR:BEGIN-->\x1b[1mcaptured data<!--XSUPERVISOR:END-->after\n";
        let chunks: Vec<Vec<u8>> = stream.chunks(7).map(<[u8]>::to_vec).collect();
        let opts = PumpOptions { strip_ansi: true, capture_maxbytes: 1000, ..Default::default() };
        pump_chunks(chunks, Some(shared(&p, 0, 0)), opts, Some(Box::new(Recorder(tx))));
        assert_eq!(std::fs::read(&p).unwrap(), b"beforeafter\n");
        assert_eq!(
            merged(rx),
            vec![
                Call::Out(b"before".to_vec()),
                Call::Cap(b"captured data".to_vec()),
                Call::Comm(b"captured data".to_vec()),
                Call::Out(b"after\n".to_vec()),
            ]
        );
    }

    #[test]
    fn strip_ansi_without_capture() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ansi.log");
        let opts = PumpOptions { strip_ansi: true, capture_maxbytes: 0, ..Default::default() };
        pump_chunks(
            vec![b"\x1b[31mred\x1b[0m\n".to_vec(), b"plain\n".to_vec()],
            Some(shared(&p, 0, 0)),
            opts,
            None,
        );
        assert_eq!(std::fs::read(&p).unwrap(), b"red\nplain\n");
    }

    #[test]
    fn special_file_with_default_maxbytes() {
        let w = shared(Path::new("/dev/null"), 50 * 1024 * 1024, 10);
        let report = pump_chunks(vec![vec![b'x'; 100_000]], Some(w), PumpOptions::default(), None);
        assert_eq!((report.bytes_read, report.write_errors), (100_000, 0));
    }

    #[test]
    fn clear_while_pumping_keeps_later_output() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.log");
        let w = shared(&p, 0, 0);
        let (r, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let rt = runtime();
        let (ctl, ctl_rx) = crate::inbox::unbounded();
        let task =
            rt.spawn(run(r, Some(w), ctl_rx, PumpOptions::default(), None, PumpLabel::default()));
        let mut wr = std::fs::File::from(wr);
        wr.write_all(b"old").unwrap();
        // Poll (with a deadline) until the pump has written the first chunk.
        let deadline = crate::sys::clock::now() + std::time::Duration::from_secs(10);
        while std::fs::read(&p).unwrap() != b"old" {
            assert!(crate::sys::clock::now() < deadline, "pump never wrote");
            std::thread::yield_now();
        }
        let (reply, cleared) = tokio::sync::oneshot::channel();
        ctl.send(LogCtl::Clear(Channel::Stdout, reply)).unwrap();
        rt.block_on(cleared).unwrap().unwrap();
        wr.write_all(b"new").unwrap();
        drop(wr);
        let report = rt.block_on(task).unwrap();
        assert_eq!(report.bytes_read, 6);
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
    }

    #[test]
    fn one_pump_drains_both_pipes_and_clears_one_channel() {
        let dir = tempfile::tempdir().unwrap();
        let (out_p, err_p) = (dir.path().join("out.log"), dir.path().join("err.log"));
        let (out_r, out_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let (err_r, err_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let side = |channel, pipe, path: &Path| PumpSide {
            channel,
            pipe,
            writer: Some(shared(path, 0, 0)),
            opts: PumpOptions::default(),
            hook: None,
            label: PumpLabel::default(),
        };
        let rt = runtime();
        let (ctl, task) = spawn(
            rt.handle(),
            side(Channel::Stdout, out_r, &out_p),
            Some(side(Channel::Stderr, err_r, &err_p)),
        );
        let (mut out_w, mut err_w) = (std::fs::File::from(out_w), std::fs::File::from(err_w));
        out_w.write_all(b"out1").unwrap();
        err_w.write_all(b"err1").unwrap();
        let deadline = crate::sys::clock::now() + std::time::Duration::from_secs(10);
        while std::fs::read(&out_p).unwrap() != b"out1" || std::fs::read(&err_p).unwrap() != b"err1"
        {
            assert!(crate::sys::clock::now() < deadline, "pump never wrote both");
            std::thread::yield_now();
        }
        let (reply, cleared) = tokio::sync::oneshot::channel();
        ctl.send(LogCtl::Clear(Channel::Stderr, reply)).unwrap();
        rt.block_on(cleared).unwrap().unwrap();
        // One pipe ends first; the other is still drained.
        drop(out_w);
        err_w.write_all(b"err2").unwrap();
        drop(err_w);
        let [out, err] = rt.block_on(task).unwrap();
        assert_eq!((out.unwrap().bytes_read, err.unwrap().bytes_read), (4, 8));
        assert_eq!(std::fs::read(&out_p).unwrap(), b"out1");
        assert_eq!(std::fs::read(&err_p).unwrap(), b"err2");
    }

    #[test]
    fn not_a_pipe_is_a_read_error() {
        let f = std::fs::File::open("/dev/null").unwrap();
        let (_ctl, ctl_rx) = crate::inbox::unbounded();
        let report = runtime().block_on(run(
            f.into(),
            None,
            ctl_rx,
            PumpOptions::default(),
            None,
            PumpLabel::default(),
        ));
        assert!(report.read_error.is_some());
    }
}
