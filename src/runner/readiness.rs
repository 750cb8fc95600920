//! What a process announces about its own readiness, watched by its runner and reported as
//! `Fact::Announced`: a line of its output matching `ready_check = log:REGEX` (a hook on
//! the output pumps), or `READY=1` / `STATUS=` over the `NOTIFY_SOCKET` of
//! `ready_check = notify` (a task reading the socket for the runner's lifetime).

use std::path::{Path, PathBuf};

use tokio::sync::mpsc;

use super::{Fact, ProcId};
use crate::checks::log::{LineMatcher, LogWatch};
use crate::checks::notify::NotifySocket;
use crate::logio::pump::OutputHook;

/// The readiness a process announces, if its check is of that kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadyWatch {
    /// `log:REGEX`: the pattern.
    Log(String),
    /// `notify`: where its socket goes.
    Notify(PathBuf),
}

/// A watching task, ended when this is dropped (the socket file goes with it).
pub(super) struct Watcher(tokio::task::AbortHandle);

impl Drop for Watcher {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Binds the notify socket (owned by `owner`) and starts reading it. Returns the watcher
/// and the `NOTIFY_SOCKET` pair for the child's environment.
pub(super) fn notify(
    path: &Path,
    owner: Option<u32>,
    id: ProcId,
    facts: mpsc::Sender<Fact>,
) -> std::io::Result<(Watcher, (String, String))> {
    let sock = NotifySocket::bind(path, owner)?;
    let env = sock.env();
    let task = tokio::spawn(async move {
        while let Ok(n) = sock.recv().await {
            if !n.ready && n.status.is_none() {
                continue;
            }
            let fact = Fact::Announced { id, pid: None, ready: n.ready, status: n.status };
            if facts.send(fact).await.is_err() {
                return;
            }
        }
    });
    Ok((Watcher(task.abort_handle()), env))
}

/// Wraps a pump's hook with the `log:` matcher: the first matching line of child `pid`
/// is reported. An invalid pattern (the loader rejects those) watches nothing.
pub(super) fn log_hook(
    pattern: &str,
    inner: Option<Box<dyn OutputHook>>,
    id: ProcId,
    pid: u32,
    facts: mpsc::Sender<Fact>,
) -> Option<Box<dyn OutputHook>> {
    let Ok(matcher) = LineMatcher::new(pattern) else { return inner };
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        if rx.await.is_ok() {
            let _ =
                facts.send(Fact::Announced { id, pid: Some(pid), ready: true, status: None }).await;
        }
    });
    Some(Box::new(LogWatch::new(matcher, tx, inner)))
}
