//! One task per listener process: it reads the listener's stdout (the protocol channel),
//! records those bytes in its stdout log as Python does, runs the [`Protocol`] state
//! machine, logs its lines, reports READY and results to the pool, and writes the events
//! the pool hands it to the listener's stdin. A listener that never reads blocks only
//! this task's write; the pool and the orchestrator never wait for it.

use tokio::net::unix::pipe;
use tokio::sync::mpsc;

use super::pool::{Attach, PoolMsg};
use super::protocol::{ListenerState, Note, Protocol};
use crate::logio::ansi;
use crate::logio::mainlog::{Level, py_bytes_repr};
use crate::logio::mainlog_task::MainLogHandle;
use crate::pytext;

/// An envelope for the listener, with its serial for log lines.
#[derive(Debug)]
pub(crate) struct Delivery {
    pub serial: u64,
    pub bytes: Vec<u8>,
}

/// What a pump tells its pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PumpReport {
    /// The listener wrote `READY\n`.
    Ready,
    /// The listener answered the event it was given; a rejection gives it back.
    Result { processed: bool },
    /// The listener violated the protocol (no event in flight is given back by this).
    Unknown,
    /// The event could not be written (EPIPE): it goes back to the pool.
    Bounced,
    /// The listener's stdout reached EOF: it is gone, and so is the pump.
    Gone,
}

pub(crate) struct PumpSetup {
    pub attach: Attach,
    pub generation: u64,
    pub pool: mpsc::Sender<PoolMsg>,
    pub deliveries: mpsc::Receiver<Delivery>,
    pub log: MainLogHandle,
}

const READ_BUF: usize = 64 * 1024;

struct Pump {
    name: String,
    generation: u64,
    pool: mpsc::Sender<PoolMsg>,
    log: MainLogHandle,
}

impl Pump {
    async fn report(&self, report: PumpReport) -> bool {
        let msg = PoolMsg::Pump { name: self.name.clone(), generation: self.generation, report };
        self.pool.send(msg).await.is_ok()
    }

    fn log(&self, level: Level, msg: String) {
        if self.log.enabled(level) {
            self.log.log(level, msg);
        }
    }

    /// Logs and reports what the listener's bytes meant.
    async fn notes(&self, notes: Vec<Note>) -> bool {
        for note in notes {
            for (level, line) in note.lines(&self.name) {
                self.log(level, line);
            }
            let report = match note {
                Note::Processed => Some(PumpReport::Result { processed: true }),
                Note::Rejected | Note::BadResultLine(_) => {
                    Some(PumpReport::Result { processed: false })
                }
                Note::Changed { to: ListenerState::Ready, .. } => Some(PumpReport::Ready),
                Note::Changed { to: ListenerState::Unknown, .. } => Some(PumpReport::Unknown),
                Note::Changed { .. } => None,
            };
            if let Some(r) = report
                && !self.report(r).await
            {
                return false;
            }
        }
        true
    }
}

/// Runs until the listener's stdout closes or the pool goes away.
pub(crate) async fn run(setup: PumpSetup) {
    let PumpSetup { attach, generation, pool, mut deliveries, log } = setup;
    let Attach { name, stdin, stdout, log: childlog, strip_ansi } = attach;
    let pump = Pump { name, generation, pool, log };
    let (rx, tx) = match (pipe::Receiver::from_owned_fd(stdout), pipe::Sender::from_owned_fd(stdin))
    {
        (Ok(rx), Ok(tx)) => (rx, tx),
        (Err(e), _) | (_, Err(e)) => {
            pump.log(Level::Error, format!("cannot pump listener {}: {e}", pump.name));
            pump.report(PumpReport::Gone).await;
            return;
        }
    };
    let mut proto = Protocol::new();
    let mut buf = vec![0u8; READ_BUF];
    let mut stripped = Vec::new();
    // The envelope being written and how much of it is out.
    let mut pending: Vec<u8> = Vec::new();
    let mut written = 0usize;
    let mut serial = 0u64;
    // Output left out of the stdout log while it is too far behind.
    let mut left_out = 0u64;
    loop {
        tokio::select! {
            ready = rx.readable() => {
                if ready.is_err() {
                    break;
                }
                let n = match rx.try_read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                };
                let data = buf.get(..n).unwrap_or_default();
                if pump.log.enabled(Level::Debug) {
                    pump.log(Level::Debug, format!(
                        "{} stdout output:\n{}",
                        pytext::repr(&pump.name),
                        py_bytes_repr(data)
                    ));
                }
                if let Some(w) = &childlog {
                    let logged = if strip_ansi && ansi::has_escape(data) {
                        stripped.clear();
                        ansi::strip_escapes(data, &mut stripped);
                        &stripped[..]
                    } else {
                        data
                    };
                    if w.write(logged.to_vec()) {
                        if left_out > 0 {
                            pump.log(Level::Warn, format!(
                                "{} stdout log caught up; {left_out} bytes of output were left out of it",
                                pytext::repr(&pump.name)
                            ));
                            left_out = 0;
                        }
                    } else {
                        if left_out == 0 {
                            pump.log(Level::Warn, format!(
                                "{} stdout log is {} bytes behind: output is left out of it until it catches up",
                                pytext::repr(&pump.name),
                                crate::logio::pump::SINK_BACKLOG_MAX
                            ));
                        }
                        left_out += logged.len() as u64;
                    }
                }
                if !pump.notes(proto.feed(data)).await {
                    return;
                }
            }
            delivery = deliveries.recv(), if pending.is_empty() => {
                match delivery {
                    Some(d) => {
                        proto.sent();
                        pending = d.bytes;
                        serial = d.serial;
                        written = 0;
                    }
                    // The pool is gone (group removed, daemon exiting).
                    None => return,
                }
            }
            ready = tx.writable(), if !pending.is_empty() => {
                if ready.is_err() {
                    pending.clear();
                    continue;
                }
                match tx.try_write(pending.get(written..).unwrap_or_default()) {
                    Ok(n) => {
                        written += n;
                        if written >= pending.len() {
                            pending.clear();
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => {
                        pending.clear();
                        pump.log(Level::Debug, format!(
                            "epipe occurred while sending event {serial} to listener {}, listener state unchanged",
                            pump.name
                        ));
                        if !pump.report(PumpReport::Bounced).await {
                            return;
                        }
                    }
                }
            }
        }
    }
    pump.report(PumpReport::Gone).await;
}
