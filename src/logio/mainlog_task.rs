//! The one owner of the daemon log: a dedicated thread that writes lines it receives over a
//! bounded channel, so that neither the orchestrator nor any other task ever does file IO
//! for logging. Senders `try_send`; when the queue is full a line is dropped and counted,
//! and the count is logged once the queue drains (a slow disk must not stall the daemon).
//!
//! Internal diagnostics (a failed `waitpid` or `accept`, a child log that cannot be
//! written) are `tracing` events anywhere in the daemon; [`MainLogHandle::install_tracing`]
//! routes them here, so they appear in the daemon log in its format and at its level.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use tokio::sync::{mpsc, oneshot};

use super::Channel;
use super::mainlog::{ClearError, Level, MainLog, child_output_message};
use super::pump::OutputHook;
use crate::pytext::repr as py_repr;

/// Lines that may wait for the disk; a burst of a few thousand state changes fits.
pub const LOG_QUEUE: usize = 8192;

enum LogMsg {
    Line {
        wall: SystemTime,
        level: Level,
        msg: String,
    },
    /// A child's `*_syslog` line, already prefixed with its process name.
    Syslog {
        wall: SystemTime,
        msg: String,
    },
    Reopen {
        wall: SystemTime,
        reply: oneshot::Sender<std::io::Result<()>>,
    },
    Clear {
        wall: SystemTime,
        reply: oneshot::Sender<Result<(), ClearError>>,
    },
    /// Return this thread's free allocator memory to the kernel.
    Release,
}

/// A cheap handle for writing to the daemon log: one pointer, so that every runner and
/// output hook that may log carries 8 bytes for it.
#[derive(Clone)]
pub struct MainLogHandle(Arc<HandleInner>);

struct HandleInner {
    tx: mpsc::Sender<LogMsg>,
    level: Level,
    dropped: Arc<AtomicU64>,
}

impl MainLogHandle {
    fn new(tx: mpsc::Sender<LogMsg>, level: Level, dropped: Arc<AtomicU64>) -> MainLogHandle {
        MainLogHandle(Arc::new(HandleInner { tx, level, dropped }))
    }
}

impl std::fmt::Debug for MainLogHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MainLogHandle").field("level", &self.0.level).finish()
    }
}

impl MainLogHandle {
    /// Moves `log` to its own thread and returns the handle and the thread, which ends
    /// (after writing everything queued) when the last handle is dropped.
    pub fn start(log: MainLog) -> (MainLogHandle, std::thread::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::channel::<LogMsg>(LOG_QUEUE);
        let level = log.level();
        let dropped = Arc::new(AtomicU64::new(0));
        let counter = dropped.clone();
        let thread = std::thread::Builder::new().name("mainlog".into()).spawn(move || {
            let mut log = log;
            while let Some(msg) = rx.blocking_recv() {
                match msg {
                    LogMsg::Line { wall, level, msg } => {
                        let lost = counter.swap(0, Ordering::Relaxed);
                        if lost > 0 {
                            log.log(
                                wall,
                                Level::Warn,
                                &format!("{lost} log lines were dropped (log queue full)"),
                            );
                        }
                        log.log(wall, level, &msg);
                    }
                    LogMsg::Syslog { wall, msg } => log.send_syslog(wall, &msg),
                    LogMsg::Reopen { wall, reply } => {
                        let _ = reply.send(log.reopen(wall));
                    }
                    LogMsg::Clear { wall, reply } => {
                        let _ = reply.send(log.clear(wall));
                    }
                    LogMsg::Release => crate::sys::memory::release(),
                }
            }
        });
        let thread = match thread {
            Ok(t) => t,
            // Without a thread there is no daemon log; the process cannot do much else
            // either, but a handle that drops everything keeps the daemon running.
            Err(_) => std::thread::spawn(|| {}),
        };
        (MainLogHandle::new(tx, level, dropped), thread)
    }

    /// Has the log thread return its free allocator memory to the kernel (after a burst
    /// of lines, such as boot's); skipped when the queue is full.
    pub fn release_memory(&self) {
        let _ = self.0.tx.try_send(LogMsg::Release);
    }

    /// Whether a line at `level` would be written (skip formatting when not).
    pub fn enabled(&self, level: Level) -> bool {
        level >= self.0.level
    }

    /// Queues one line, stamped now.
    pub fn log(&self, level: Level, msg: impl Into<String>) {
        if !self.enabled(level) {
            return;
        }
        let line = LogMsg::Line { wall: crate::sys::clock::wall_now(), level, msg: msg.into() };
        if self.0.tx.try_send(line).is_err() {
            self.0.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Makes this log the process's `tracing` subscriber: every `tracing` event at or above
    /// the configured `loglevel` becomes a daemon log line (ERROR → ERRO, WARN → WARN,
    /// INFO → INFO, DEBUG → DEBG, TRACE → TRAC). False if a subscriber was already set.
    pub fn install_tracing(&self) -> bool {
        use tracing_subscriber::layer::SubscriberExt;
        let filter = match self.0.level {
            Level::Critical | Level::Error => tracing::level_filters::LevelFilter::ERROR,
            Level::Warn => tracing::level_filters::LevelFilter::WARN,
            Level::Info => tracing::level_filters::LevelFilter::INFO,
            Level::Debug => tracing::level_filters::LevelFilter::DEBUG,
            Level::Trace | Level::Blather => tracing::level_filters::LevelFilter::TRACE,
        };
        let subscriber = tracing_subscriber::registry().with(self.tracing_layer()).with(filter);
        tracing::subscriber::set_global_default(subscriber).is_ok()
    }

    /// The layer holds the log weakly: the global subscriber lives for ever, and the log
    /// thread must still end (writing what is queued) when the daemon drops its handles.
    fn tracing_layer(&self) -> TracingLayer {
        TracingLayer {
            tx: self.0.tx.downgrade(),
            level: self.0.level,
            dropped: self.0.dropped.clone(),
        }
    }

    /// Queues one child output line for syslog (whatever the level; dropped lines are
    /// counted and reported like the log's own).
    pub fn syslog(&self, msg: String) {
        let line = LogMsg::Syslog { wall: crate::sys::clock::wall_now(), msg };
        if self.0.tx.try_send(line).is_err() {
            self.0.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// SIGUSR2: reopen by name.
    pub async fn reopen(&self) -> std::io::Result<()> {
        let (reply, rx) = oneshot::channel();
        let msg = LogMsg::Reopen { wall: crate::sys::clock::wall_now(), reply };
        if self.0.tx.send(msg).await.is_err() {
            return Err(std::io::Error::other("log thread is gone"));
        }
        rx.await.unwrap_or_else(|_| Err(std::io::Error::other("log thread is gone")))
    }

    /// `clearLog`: remove and reopen the log file.
    pub async fn clear(&self) -> Result<(), ClearError> {
        let (reply, rx) = oneshot::channel();
        let msg = LogMsg::Clear { wall: crate::sys::clock::wall_now(), reply };
        if self.0.tx.send(msg).await.is_err() {
            return Err(ClearError::Failed);
        }
        rx.await.unwrap_or(Err(ClearError::Failed))
    }
}

/// Unit tests' view of the daemon log: the lines queued so far, without a thread or file.
#[cfg(test)]
pub struct Captured {
    rx: mpsc::Receiver<LogMsg>,
}

#[cfg(test)]
impl Captured {
    /// A handle writing at `level` and up, and what it has written.
    pub fn start(level: Level) -> (MainLogHandle, Captured) {
        let (tx, rx) = mpsc::channel(LOG_QUEUE);
        (MainLogHandle::new(tx, level, Arc::new(AtomicU64::new(0))), Captured { rx })
    }

    /// The lines queued since the last call.
    pub fn lines(&mut self) -> Vec<(Level, String)> {
        let mut out = Vec::new();
        while let Ok(msg) = self.rx.try_recv() {
            if let LogMsg::Line { level, msg, .. } = msg {
                out.push((level, msg));
            }
        }
        out
    }
}

/// The `tracing` layer that writes events as daemon log lines.
struct TracingLayer {
    tx: mpsc::WeakSender<LogMsg>,
    level: Level,
    dropped: Arc<AtomicU64>,
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for TracingLayer {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let level = match *event.metadata().level() {
            tracing::Level::ERROR => Level::Error,
            tracing::Level::WARN => Level::Warn,
            tracing::Level::INFO => Level::Info,
            tracing::Level::DEBUG => Level::Debug,
            tracing::Level::TRACE => Level::Trace,
        };
        if level < self.level {
            return;
        }
        let Some(tx) = self.tx.upgrade() else { return };
        let log = MainLogHandle::new(tx, self.level, self.dropped.clone());
        let mut text = EventText(String::new());
        event.record(&mut text);
        log.log(level, text.0);
    }
}

/// An event's message followed by its other fields as `name=value`.
struct EventText(String);

impl tracing::field::Visit for EventText {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write;
        if field.name() == "message" {
            let rest = std::mem::take(&mut self.0);
            let _ = write!(self.0, "{value:?}");
            self.0.push_str(&rest);
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.0.insert_str(0, value);
        } else {
            self.record_debug(field, &value);
        }
    }
}

/// The output-pump hook used when `loglevel` is debug or lower: every chunk of a child's
/// output also goes to the daemon log at DEBG (`'web' stdout output:` and the text), and
/// the end of a capture section is noted (`'web' stdout emitted a comm event`), as Python's
/// output dispatcher does. Wraps the events hook, if any, which runs after the line.
pub struct ChildOutputLog {
    pub log: MainLogHandle,
    pub name: String,
    pub channel: Channel,
    pub inner: Option<Box<dyn OutputHook>>,
}

impl OutputHook for ChildOutputLog {
    fn on_output(&mut self, data: &[u8]) {
        self.log.log(Level::Debug, child_output_message(&self.name, self.channel, data));
        if let Some(inner) = &mut self.inner {
            inner.on_output(data);
        }
    }

    fn on_captured(&mut self, data: &[u8]) {
        self.log.log(Level::Debug, child_output_message(&self.name, self.channel, data));
        if let Some(inner) = &mut self.inner {
            inner.on_captured(data);
        }
    }

    fn on_communication(&mut self, payload: Vec<u8>) {
        if let Some(inner) = &mut self.inner {
            inner.on_communication(payload);
        }
        self.log.log(
            Level::Debug,
            format!("{} {} emitted a comm event", py_repr(&self.name), self.channel.as_str()),
        );
    }
}

/// The output-pump hook for `stdout_syslog`/`stderr_syslog`: each line of each chunk goes
/// to syslog as `<process name> <line>` (Python's format for it), before the hooks it wraps.
/// Bytes that are not UTF-8 are replaced (Python fails on them and loses the chunk).
pub struct SyslogOutput {
    pub log: MainLogHandle,
    pub name: String,
    pub inner: Option<Box<dyn OutputHook>>,
}

impl OutputHook for SyslogOutput {
    fn on_output(&mut self, data: &[u8]) {
        let text = String::from_utf8_lossy(data);
        for line in super::syslog::lines(&text) {
            self.log.syslog(format!("{} {line}", self.name));
        }
        if let Some(inner) = &mut self.inner {
            inner.on_output(data);
        }
    }

    fn on_captured(&mut self, data: &[u8]) {
        // Captured output goes to the capture log, not to the normal log's syslog.
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

    #[test]
    fn tracing_events_become_log_lines_at_the_configured_level() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("main.log");
        let log = MainLog::open(&path, 0, 0, Level::Warn, false).unwrap();
        let (handle, thread) = MainLogHandle::start(log);
        let subscriber = {
            use tracing_subscriber::layer::SubscriberExt;
            tracing_subscriber::registry()
                .with(handle.tracing_layer())
                .with(tracing::level_filters::LevelFilter::WARN)
        };
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!("waitpid failed: {}", "ECHILD");
            tracing::warn!(pid = 7, "discarding");
            tracing::info!("not at this level");
        });
        drop(handle);
        thread.join().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().map(|l| l.get(24..).unwrap_or(l)).collect();
        assert_eq!(lines, ["ERRO waitpid failed: ECHILD", "WARN discarding pid=7"]);
    }
}
