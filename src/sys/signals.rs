//! The daemon's signals: TERM/INT/QUIT (orderly shutdown), HUP (restart) and USR2 (reopen
//! logs), forwarded as [`DaemonSignal`]s on a bounded channel. SIGCHLD belongs to the
//! reaper.
//!
//! Handlers are installed when [`forward`] is called, not when the task first runs, so the
//! caller controls the ordering: install before the first spawn. As PID 1 of a PID namespace
//! the kernel drops TERM/INT for which no handler exists, so installing them explicitly is
//! what makes `docker stop` work. Once installed, a handler stays for the life of the process
//! (tokio never restores the default), so a TERM arriving after the receiver is dropped is
//! ignored rather than fatal.

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

/// A signal the daemon acts on. tokio coalesces repeats, so several TERMs arriving before
/// the first is read are one message, like Python's "each distinct signal queued once".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DaemonSignal {
    /// SIGTERM: shut down.
    Term,
    /// SIGINT: shut down.
    Int,
    /// SIGQUIT: shut down.
    Quit,
    /// SIGHUP: restart (re-read the config), unless already shutting down.
    Hup,
    /// SIGUSR2: reopen every log file.
    Usr2,
}

impl DaemonSignal {
    /// The name Python's log lines use, e.g. `received SIGTERM indicating exit request`.
    pub fn name(self) -> &'static str {
        match self {
            DaemonSignal::Term => "SIGTERM",
            DaemonSignal::Int => "SIGINT",
            DaemonSignal::Quit => "SIGQUIT",
            DaemonSignal::Hup => "SIGHUP",
            DaemonSignal::Usr2 => "SIGUSR2",
        }
    }
}

/// Ignores SIGXFSZ, as Python does from its start: a log file that reaches the daemon's
/// `RLIMIT_FSIZE` must fail the write (EFBIG, logged and survived), not kill the daemon.
pub fn ignore_file_size_signal() {
    // SAFETY: SIG_IGN installs no handler code; called before any thread that could race
    // on the disposition is started.
    let _ = unsafe {
        nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGXFSZ,
            nix::sys::signal::SigHandler::SigIgn,
        )
    };
}

/// How many signals may wait unread. Each kind is coalesced, so five would do; a few more
/// cost nothing.
const SIGNAL_QUEUE: usize = 8;

/// Installs the handlers now and starts a task (on the current tokio runtime) that forwards
/// each signal. The task ends when the receiver is dropped.
pub fn forward() -> std::io::Result<mpsc::Receiver<DaemonSignal>> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut quit = signal(SignalKind::quit())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut usr2 = signal(SignalKind::user_defined2())?;
    let (tx, rx) = mpsc::channel(SIGNAL_QUEUE);
    tokio::spawn(async move {
        loop {
            // `None` only when the runtime's signal driver is gone.
            let sig = tokio::select! {
                Some(()) = term.recv() => DaemonSignal::Term,
                Some(()) = int.recv() => DaemonSignal::Int,
                Some(()) = quit.recv() => DaemonSignal::Quit,
                Some(()) = hup.recv() => DaemonSignal::Hup,
                Some(()) = usr2.recv() => DaemonSignal::Usr2,
                else => return,
            };
            if tx.send(sig).await.is_err() {
                return;
            }
        }
    });
    Ok(rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_pythons_log_lines() {
        let all = [
            DaemonSignal::Term,
            DaemonSignal::Int,
            DaemonSignal::Quit,
            DaemonSignal::Hup,
            DaemonSignal::Usr2,
        ];
        let names: Vec<&str> = all.iter().map(|s| s.name()).collect();
        assert_eq!(names, ["SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGUSR2"]);
    }
}
