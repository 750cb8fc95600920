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

/// Binds the notify socket and starts reading it (the file is the daemon's until
/// [`give_notify_socket`] hands it to the process's user at each spawn).
pub(super) fn notify(
    path: &Path,
    id: ProcId,
    facts: mpsc::Sender<Fact>,
) -> std::io::Result<Watcher> {
    let sock = NotifySocket::bind(path, None)?;
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
    Ok(Watcher(task.abort_handle()))
}

/// On the spawner thread, for a spawn: the socket file goes to the process's user (`uid`),
/// and the child's environment gets `NOTIFY_SOCKET`.
pub(super) fn give_notify_socket(
    path: &Path,
    uid: Option<u32>,
    env: &mut Vec<(std::ffi::OsString, std::ffi::OsString)>,
) -> std::io::Result<()> {
    if let Some(uid) = uid {
        nix::unistd::chown(path, Some(nix::unistd::Uid::from_raw(uid)), None)
            .map_err(std::io::Error::from)?;
    }
    let key = crate::checks::notify::NOTIFY_SOCKET;
    env.retain(|(k, _)| k != key);
    env.push((key.into(), path.as_os_str().to_os_string()));
    Ok(())
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
