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
//! Memory: every process has a pump for its whole life, mostly idle, so the task is a
//! hand-written future ([`Pump`]) that holds the pump's state and nothing else. What only
//! some channels need (hooks, capture mode, a log prefix) and what only a failure needs
//! is behind one pointer per channel ([`Extra`]); the process name is shared, not copied,
//! and messages are worded when they are logged. A size test keeps the task within
//! tokio's 384-byte task allocation.
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

use std::future::Future;
use std::io;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::oneshot;

use super::ansi;
use super::capture::{CaptureParser, Piece};
use super::coalesce;
use super::prefix::LineFramer;
use super::watch::Pipe;
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

    /// The `strip_ansi` output buffer of every pump on this thread, for the same reason.
    static STRIPPED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
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

/// Whose output a pump carries, for its messages (`'name' stdout log /path`).
pub trait Named: Send + Sync {
    fn name(&self) -> &str;
}

/// The process a pump serves, shared with its owner: the pump holds a pointer to the name,
/// not a copy, and words a message only when it logs one.
pub type PumpName = Arc<dyn Named>;

impl Named for String {
    fn name(&self) -> &str {
        self
    }
}

impl Named for crate::config::ProcessConfig {
    fn name(&self) -> &str {
        &self.name
    }
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
}

/// Starts a pump for a child's pipes (stdout and stderr; one of them when stderr is
/// redirected or stdout goes to an event listener's pool) of the process `name` on `rt`
/// and returns the way to its writers, and its task (to learn when the output is drained).
pub fn spawn(
    rt: &Handle,
    name: PumpName,
    first: PumpSide,
    second: Option<PumpSide>,
) -> (LogCtlSender, tokio::task::JoinHandle<[Option<PumpReport>; 2]>) {
    let (tx, rx) = crate::inbox::unbounded();
    (tx, rt.spawn(Pump::new(name, first, second, rx)))
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

/// Starts a task on `rt` that owns `writer` (the stdout log of the process `name`) and
/// writes what it is sent ([`LogCtl::Write`]).
pub fn spawn_sink(rt: &Handle, writer: RotatingWriter, name: PumpName) -> SinkSender {
    let (ctl, mut rx) = crate::inbox::unbounded();
    let backlog = Arc::new(AtomicUsize::new(0));
    let written = backlog.clone();
    let mut sink = Sink::new(Channel::Stdout, Some(writer), false, None);
    rt.spawn(async move {
        while let Some(msg) = rx.recv().await {
            let n = match &msg {
                LogCtl::Write(data) => data.len(),
                _ => 0,
            };
            sink.control(name.name(), msg);
            written.fetch_sub(n, Ordering::Relaxed);
        }
        sink.finish(name.name());
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
    name: PumpName,
) -> PumpReport {
    let channel = Channel::Stdout;
    let side = PumpSide { channel, pipe, writer, opts, hook };
    let [report, _] = Pump::new(name, side, None, ctl).await;
    report.unwrap_or_default()
}

/// A pump's task: both pipes, the control inbox and the process name; polled by hand so
/// that the task holds this and nothing more.
struct Pump {
    sides: [Option<Side>; 2],
    /// Once every sender is gone it keeps answering `None` at once.
    ctl: crate::inbox::Receiver<LogCtl>,
    name: PumpName,
}

impl Pump {
    fn new(
        name: PumpName,
        first: PumpSide,
        second: Option<PumpSide>,
        ctl: crate::inbox::Receiver<LogCtl>,
    ) -> Pump {
        let sides =
            [Some(Side::new(first, name.name())), second.map(|s| Side::new(s, name.name()))];
        Pump { sides, ctl, name }
    }

    /// A pipe that is ready (or failed), looking first at the one not read last; registers
    /// for both.
    fn poll_pipes(&mut self, cx: &mut Context<'_>) -> Option<usize> {
        let first = usize::from(self.sides[0].as_ref().is_some_and(|s| s.read_last));
        for k in 0..2 {
            let i = (first + k) % 2;
            let rx = self.sides.get_mut(i).and_then(Option::as_mut).and_then(|s| s.rx.as_mut());
            if let Some(rx) = rx
                && rx.poll_read_ready(cx).is_ready()
            {
                return Some(i);
            }
        }
        None
    }

    /// Hands a control message to the side of its channel (`Write`, which has none, to the
    /// first).
    fn control(&mut self, msg: LogCtl) {
        let want = match &msg {
            LogCtl::Reopen(c) | LogCtl::Clear(c, _) => Some(*c),
            LogCtl::Write(_) => None,
        };
        let side =
            self.sides.iter_mut().flatten().find(|s| want.is_none_or(|c| c == s.sink.channel));
        match (side, msg) {
            (Some(side), msg) => side.sink.control(self.name.name(), msg),
            (None, LogCtl::Clear(_, reply)) => {
                let _ = reply.send(Ok(()));
            }
            (None, _) => {}
        }
    }

    /// Both pipes ended: requests that arrived with the EOF are still answered, and each
    /// side reports.
    fn finish(&mut self) -> [Option<PumpReport>; 2] {
        self.ctl.close();
        while let Some(msg) = self.ctl.try_recv() {
            self.control(msg);
        }
        let name = self.name.name();
        self.sides.each_mut().map(|s| s.take().map(|s| s.sink.finish(name)))
    }
}

impl Future for Pump {
    type Output = [Option<PumpReport>; 2];

    /// Waits holding no buffer (an idle pump owns no read memory); a control message is
    /// looked at before the pipes, and nothing is read while waiting, so one that wins
    /// loses nothing.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let pump = self.get_mut();
        loop {
            if pump.sides.iter().flatten().all(|s| s.rx.is_none()) {
                return Poll::Ready(pump.finish());
            }
            if let Poll::Ready(Some(msg)) = pump.ctl.poll_recv(cx) {
                pump.control(msg);
                continue;
            }
            let Some(i) = pump.poll_pipes(cx) else { return Poll::Pending };
            for (k, side) in pump.sides.iter_mut().enumerate() {
                if let Some(side) = side {
                    side.read_last = k == i;
                }
            }
            if let Some(Some(side)) = pump.sides.get_mut(i) {
                side.read(pump.name.name());
            }
            // Readiness stays set while a child keeps writing: take part in tokio's
            // cooperative budget so one chatty child cannot starve the other pumps.
            ready!(tokio::task::coop::poll_proceed(cx)).made_progress();
        }
    }
}

/// A pipe being drained: its reader (`None` once it ended) and where its output goes.
struct Side {
    rx: Option<Pipe>,
    sink: Sink,
    /// When the pipe was last read, in [`mono_us`].
    last_read: u32,
    /// The pipe's capacity is `1 << capacity_log2` (the kernel sizes pipes in powers of
    /// two); wider than the default while `wide` (see [`coalesce`]).
    capacity_log2: u8,
    wide: Option<coalesce::WidePipe>,
    /// Reads since the pipe was last found empty: only a round's first read tells
    /// [`coalesce`] the pipe's rate.
    draining: bool,
    /// This pipe was read last, so the other one is looked at first.
    read_last: bool,
}

impl Side {
    fn new(side: PumpSide, name: &str) -> Side {
        // Taken apart at once: only what the pump uses lives in its task, and the rarely
        // used parts (hook, prefix framer, capture parser) are boxed together.
        let PumpSide { channel, pipe, writer, opts, hook } = side;
        let PumpOptions { strip_ansi, capture_maxbytes, prefix, counters } = opts;
        let mut sink = Sink::new(channel, writer, strip_ansi, counters);
        if let Some(hook) = hook {
            sink.extra().hook = Some(hook);
        }
        if let Some(prefix) = prefix {
            sink.extra().framer = Some(Box::new(LineFramer::new(prefix)));
        }
        // Checks that this is a pipe and makes it non-blocking.
        let rx = match Pipe::new(pipe) {
            Ok(rx) => Some(rx),
            Err(e) => {
                tracing::error!("{} pipe: cannot read: {e}", sink.label(name));
                sink.extra().trouble.read_error = Some(e);
                None
            }
        };
        if rx.is_some() && capture_maxbytes > 0 {
            let parser = CaptureParser::new(capture_maxbytes, strip_ansi);
            sink.extra().capture = Some(Box::new(parser));
        }
        Side {
            rx,
            sink,
            last_read: mono_us(),
            capacity_log2: coalesce::DEFAULT_PIPE.ilog2() as u8,
            wide: None,
            draining: false,
            read_last: false,
        }
    }

    /// One read after readiness, handled before the next await; false once the pipe ended.
    fn read(&mut self, name: &str) -> bool {
        let Some(rx) = &mut self.rx else { return false };
        let sink = &mut self.sink;
        let read = SCRATCH.with_borrow_mut(|buf| {
            let n = rx.try_read(buf)?;
            sink.bytes_read += n as u64;
            let chunk = buf.get(..n).unwrap_or_default();
            match sink.extra.as_mut().and_then(|e| e.capture.take()) {
                None => sink.output(name, chunk),
                Some(mut parser) => {
                    parser.feed(chunk, &mut |piece| sink.piece(name, piece));
                    sink.extra().capture = Some(parser);
                }
            }
            Ok::<_, io::Error>(n)
        });
        match read {
            Ok(0) => {}
            Ok(n) => {
                if !self.draining {
                    self.draining = true;
                    self.note_read(n);
                    if n >= self.capacity() / 2
                        && self.wide.is_none()
                        && let Some(rx) = &self.rx
                        && let Some((wide, capacity)) = coalesce::WidePipe::widen(rx)
                    {
                        self.wide = Some(wide);
                        self.capacity_log2 = capacity.ilog2() as u8;
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
                tracing::error!("{} pipe: read failed: {e}", sink.label(name));
                sink.extra().trouble.read_error = Some(e);
            }
        }
        self.end(name);
        false
    }

    /// Tells the pump runtime's read coalescing how long this pipe can wait before its
    /// next read (see [`coalesce`]).
    fn note_read(&mut self, n: usize) {
        let now = mono_us();
        let since = Duration::from_micros(u64::from(now.wrapping_sub(self.last_read)));
        coalesce::after_read(n, self.capacity(), since);
        self.last_read = now;
    }

    fn capacity(&self) -> usize {
        1 << self.capacity_log2
    }

    /// The pipe is closed: the capture parser's and framer's leftovers are written.
    fn end(&mut self, name: &str) {
        self.rx = None;
        self.wide = None;
        let sink = &mut self.sink;
        if let Some(mut parser) = sink.extra.as_mut().and_then(|e| e.capture.take()) {
            parser.finish(&mut |piece| sink.piece(name, piece));
        }
        sink.flush_line(name);
    }
}

/// Monotonic microseconds since the first call, wrapping after 71 minutes: a pipe's last
/// read in 4 bytes. A longer gap between reads looks shorter, which only shortens the
/// pause that one read allows.
fn mono_us() -> u32 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = *START.get_or_init(clock::now);
    clock::now().saturating_duration_since(start).as_micros() as u32
}

/// A channel's output side: its writer, counters and (boxed) rarely used parts.
struct Sink {
    writer: Option<RotatingWriter>,
    counters: Option<Arc<OutputCounters>>,
    /// Created when a channel first needs it.
    extra: Option<Box<Extra>>,
    bytes_read: u64,
    channel: Channel,
    strip_ansi: bool,
}

/// What only some channels need: an output hook, capture mode, a log prefix, and the state
/// of a failure.
#[derive(Default)]
struct Extra {
    hook: Option<Box<dyn OutputHook>>,
    /// Taken out while it feeds the sink.
    capture: Option<Box<CaptureParser>>,
    /// Taken out while its lines are written.
    framer: Option<Box<LineFramer>>,
    trouble: Trouble,
}

/// What went wrong on a channel, for its messages and report.
#[derive(Default)]
struct Trouble {
    /// The kind of the write failure being reported, so a cause is logged once.
    failing: Option<io::ErrorKind>,
    /// Bytes dropped since writing last worked.
    dropped_now: u64,
    write_errors: u64,
    dropped_bytes: u64,
    read_error: Option<io::Error>,
}

impl Sink {
    fn new(
        channel: Channel,
        writer: Option<RotatingWriter>,
        strip_ansi: bool,
        counters: Option<Arc<OutputCounters>>,
    ) -> Sink {
        Sink { writer, counters, extra: None, bytes_read: 0, channel, strip_ansi }
    }

    fn extra(&mut self) -> &mut Extra {
        self.extra.get_or_insert_default()
    }

    /// `'name' stdout log /path` (or `'name' stdout` without a file).
    fn label(&self, name: &str) -> String {
        let name = crate::pytext::repr(name);
        let channel = self.channel.as_str();
        match &self.writer {
            Some(w) => format!("{name} {channel} log {}", w.path().display()),
            None => format!("{name} {channel}"),
        }
    }

    /// Runs `f` on the writer, under `block_in_place` when the file is special (a FIFO or
    /// `/dev/stdout` may block on its reader) and the runtime allows it.
    fn with_writer<T>(&mut self, f: impl FnOnce(&mut RotatingWriter) -> T) -> Option<T> {
        let w = self.writer.as_mut()?;
        let block = !w.is_regular()
            && Handle::try_current()
                .is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread);
        Some(if block { tokio::task::block_in_place(|| f(w)) } else { f(w) })
    }

    fn control(&mut self, name: &str, msg: LogCtl) {
        match msg {
            LogCtl::Reopen(_) => {
                if let Some(Err(e)) = self.with_writer(RotatingWriter::reopen) {
                    tracing::error!("{}: cannot reopen: {e}", self.label(name));
                }
            }
            LogCtl::Clear(_, reply) => {
                let res = self.with_writer(RotatingWriter::clear).unwrap_or(Ok(()));
                let _ = reply.send(res);
            }
            LogCtl::Write(data) => self.write(name, &data),
        }
    }

    fn piece(&mut self, name: &str, piece: Piece<'_>) {
        match piece {
            Piece::Output(data) => self.output(name, data),
            Piece::Captured(data) => {
                let strip = self.strip_ansi;
                if let Some(hook) = self.extra.as_mut().and_then(|e| e.hook.as_mut()) {
                    with_stripped(strip, data, |data| hook.on_captured(data));
                }
            }
            Piece::Communication(payload) => {
                if let Some(hook) = self.extra.as_mut().and_then(|e| e.hook.as_mut()) {
                    hook.on_communication(payload);
                }
            }
        }
    }

    fn output(&mut self, name: &str, data: &[u8]) {
        with_stripped(self.strip_ansi, data, |data| {
            if data.is_empty() {
                return;
            }
            // Moved out, so the framed lines can be written through `self`.
            match self.extra.as_mut().and_then(|e| e.framer.take()) {
                None => self.write(name, data),
                Some(mut framer) => {
                    self.write(name, framer.feed(data, clock::wall_now()));
                    self.extra().framer = Some(framer);
                }
            }
            if let Some(hook) = self.extra.as_mut().and_then(|e| e.hook.as_mut()) {
                hook.on_output(data);
            }
        });
    }

    /// The pipe is closed: a prefixed channel's unfinished line is written out.
    fn flush_line(&mut self, name: &str) {
        if let Some(mut framer) = self.extra.as_mut().and_then(|e| e.framer.take()) {
            self.write(name, framer.finish(clock::wall_now()));
        }
    }

    /// Writes one chunk; a failure drops it, counted, and is logged once per cause.
    fn write(&mut self, name: &str, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let Some(res) = self.with_writer(|w| w.write_all(data)) else {
            return;
        };
        if let Some(c) = &self.counters {
            let counter = if res.is_ok() { &c.written } else { &c.dropped };
            counter.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        match res {
            Ok(rotate) => {
                if let Some(t) = self.extra.as_mut().map(|e| &mut e.trouble)
                    && let Some(kind) = t.failing.take()
                {
                    let dropped = std::mem::take(&mut t.dropped_now);
                    tracing::warn!(
                        "{}: writing again after {kind}; {dropped} bytes of output were dropped",
                        self.label(name),
                    );
                }
                if let Some(e) = rotate {
                    tracing::error!("{}: cannot rotate: {e}", self.label(name));
                }
            }
            Err(e) => {
                let n = data.len() as u64;
                let t = &mut self.extra().trouble;
                t.write_errors += 1;
                t.dropped_bytes += n;
                t.dropped_now += n;
                if t.failing != Some(e.kind()) {
                    t.failing = Some(e.kind());
                    tracing::error!(
                        "{}: cannot write ({e}); the process keeps running and its output is dropped until the log can be written",
                        self.label(name)
                    );
                }
            }
        }
    }

    /// The pump's end: a failure still in progress gets its final count.
    fn finish(self, name: &str) -> PumpReport {
        let trouble = self.extra.as_ref().map(|e| &e.trouble);
        if let Some(t) = trouble
            && t.failing.is_some()
            && t.dropped_now > 0
        {
            tracing::error!(
                "{}: {} bytes of output were dropped (the log could not be written)",
                self.label(name),
                t.dropped_now
            );
        }
        let bytes_read = self.bytes_read;
        match self.extra {
            None => PumpReport { bytes_read, ..PumpReport::default() },
            Some(extra) => {
                let Trouble { write_errors, dropped_bytes, read_error, .. } = extra.trouble;
                PumpReport { bytes_read, write_errors, dropped_bytes, read_error }
            }
        }
    }
}

/// Calls `f` with `data` without ANSI escapes when `strip` is on, built in the thread's
/// buffer; with `data` itself when there is nothing to strip (one scan, no copy).
fn with_stripped<T>(strip: bool, data: &[u8], f: impl FnOnce(&[u8]) -> T) -> T {
    if !(strip && ansi::has_escape(data)) {
        return f(data);
    }
    STRIPPED.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            buf.clear();
            ansi::strip_escapes(data, &mut buf);
            f(&buf)
        }
        // Not expected (a hook never calls back into a pump); a buffer of its own then.
        Err(_) => {
            let mut buf = Vec::new();
            ansi::strip_escapes(data, &mut buf);
            f(&buf)
        }
    })
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
        let sink = spawn_sink(rt.handle(), writer, test_name());
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

    fn test_name() -> PumpName {
        Arc::new(String::from("t"))
    }

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
            tokio::spawn(run(r, writer, ctl_rx, opts, hook, test_name())).await.unwrap()
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
        let task = rt.spawn(run(r, Some(w), ctl_rx, PumpOptions::default(), None, test_name()));
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
        };
        let rt = runtime();
        let (ctl, task) = spawn(
            rt.handle(),
            test_name(),
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
            test_name(),
        ));
        assert!(report.read_error.is_some());
    }
}

#[cfg(test)]
mod size {
    use super::*;

    /// The shape of tokio's `JoinError`: a panic's payload and the task's id.
    type JoinError = (Option<Box<dyn std::any::Any + Send>>, u64);

    /// The shape of tokio's task stage: the future, or its output.
    #[allow(dead_code)]
    enum Stage {
        Running(Pump),
        Finished(Result<[Option<PumpReport>; 2], JoinError>),
        Consumed,
    }

    #[test]
    fn an_idle_pump_fits_a_384_byte_task() {
        // Every process has a pump for its whole life. Tokio allocates a task as 96 bytes
        // of header and trailer plus the stage, in steps of 128 bytes on x86_64: a stage of
        // up to 288 bytes makes a 384-byte task (it was 1,280 with an `async fn` pump).
        let stage = size_of::<Stage>();
        assert!(stage <= 288, "the pump's task stage is {stage} bytes");
        // A plain channel's state; hooks, capture, prefixes and failures are boxed.
        assert!(size_of::<Side>() <= 128, "a pump side is {} bytes", size_of::<Side>());
    }
}
