//! The one owner of the daemon log: a dedicated thread that writes lines it receives over a
//! bounded channel, so that neither the orchestrator nor any other task ever does file IO
//! for logging. Senders `try_send`; when the queue is full a line is dropped and counted,
//! and the count is logged once the queue drains (a slow disk must not stall the daemon).

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
}

/// A cheap handle for writing to the daemon log.
#[derive(Clone)]
pub struct MainLogHandle {
    tx: mpsc::Sender<LogMsg>,
    level: Level,
    dropped: Arc<AtomicU64>,
}

impl std::fmt::Debug for MainLogHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MainLogHandle").field("level", &self.level).finish()
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
                }
            }
        });
        let thread = match thread {
            Ok(t) => t,
            // Without a thread there is no daemon log; the process cannot do much else
            // either, but a handle that drops everything keeps the daemon running.
            Err(_) => std::thread::spawn(|| {}),
        };
        (MainLogHandle { tx, level, dropped }, thread)
    }

    /// Whether a line at `level` would be written (skip formatting when not).
    pub fn enabled(&self, level: Level) -> bool {
        level >= self.level
    }

    /// Queues one line, stamped now.
    pub fn log(&self, level: Level, msg: impl Into<String>) {
        if !self.enabled(level) {
            return;
        }
        let line = LogMsg::Line { wall: crate::sys::clock::wall_now(), level, msg: msg.into() };
        if self.tx.try_send(line).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Queues one child output line for syslog (whatever the level; dropped lines are
    /// counted and reported like the log's own).
    pub fn syslog(&self, msg: String) {
        let line = LogMsg::Syslog { wall: crate::sys::clock::wall_now(), msg };
        if self.tx.try_send(line).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// SIGUSR2: reopen by name.
    pub async fn reopen(&self) -> std::io::Result<()> {
        let (reply, rx) = oneshot::channel();
        let msg = LogMsg::Reopen { wall: crate::sys::clock::wall_now(), reply };
        if self.tx.send(msg).await.is_err() {
            return Err(std::io::Error::other("log thread is gone"));
        }
        rx.await.unwrap_or_else(|_| Err(std::io::Error::other("log thread is gone")))
    }

    /// `clearLog`: remove and reopen the log file.
    pub async fn clear(&self) -> Result<(), ClearError> {
        let (reply, rx) = oneshot::channel();
        let msg = LogMsg::Clear { wall: crate::sys::clock::wall_now(), reply };
        if self.tx.send(msg).await.is_err() {
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
        (MainLogHandle { tx, level, dropped: Arc::new(AtomicU64::new(0)) }, Captured { rx })
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
