//! The one reaper: a task that drains `waitpid(-1, WNOHANG)` whenever SIGCHLD arrives and
//! routes each exit to whoever [`ReaperHandle::watch`]es that pid. This is the only place in
//! the crate that waits for children, so that as PID 1 the daemon also reaps orphans it
//! never started, and no status is ever stolen by a second waiter.
//!
//! Two races are handled:
//! - **Exit before registration.** A child may exit, and be reaped, before its runner
//!   registers the pid. Such exits are kept as *unclaimed* (bounded, oldest dropped) and
//!   handed over when the registration arrives. Exits nobody ever claims (orphans adopted as
//!   PID 1 or subreaper) age out of that buffer.
//! - **Pid reuse.** An unclaimed exit of an old process with pid P must not be mistaken for
//!   the exit of a new child that the kernel gave the same pid. Every fork and every reap
//!   happens under one short lock (`GATE`) that also counts reaps, so each child carries a
//!   [`Birth`] (the reap count at its fork) and each exit a reap number: an exit belongs to a
//!   child only if it was reaped after that child was born.
//!
//! tokio's signal stream coalesces SIGCHLDs, so every wake-up drains until nothing is left,
//! and the reaper also drains right after each registration.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use nix::errno::Errno;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::{mpsc, oneshot};

use crate::procsup::ExitStatus;

/// One reaped child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reaped {
    /// The pid that exited.
    pub pid: i32,
    /// How it ended.
    pub status: ExitStatus,
}

/// When a child was forked, counted in reaps: the number of reaps done before the fork.
/// Only [`super::spawn::spawn`] makes one; pass it to [`ReaperHandle::watch`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Birth(u64);

/// Unclaimed exits kept for late registrations. A runner registers within microseconds of
/// its fork, so this only needs to cover bursts of orphan exits between a fork and its
/// registration; older entries are orphans nobody will ask for.
const UNCLAIMED_CAP: usize = 1024;

/// Registrations in flight. Runners `send().await` into it; the reaper never blocks on
/// anyone, so a small buffer only smooths bursts (e.g. 1,000 processes starting at once).
const INBOX_CAP: usize = 256;

/// Orders forks against reaps and counts reaps (see module docs). Held only around one
/// `fork()` or one `waitpid()`, never across an await.
static GATE: Mutex<u64> = Mutex::new(0);

/// At most one reaper per process: two `waitpid(-1)` loops would steal each other's exits.
static STARTED: AtomicBool = AtomicBool::new(false);

/// Starts a child that runs `entry(arg)` on `stack` and returns its pid and [`Birth`].
///
/// The child shares our memory until it execs (`clone` with `CLONE_VM | CLONE_VFORK`, as
/// `posix_spawn` does), and this thread waits until it has exec'd or exited. Nothing is
/// copied, where `fork` copies the daemon's page tables and then refaults every page it
/// writes: with 1,000 children that was a quarter of the daemon's CPU time at start-up.
///
/// # Safety
/// `entry` must only make raw syscalls (no libc call that takes a lock or reaches other
/// threads: `setuid` and friends broadcast to the parent's threads) on memory prepared
/// before the call, must not write memory the parent reads, and must end in `execve` or
/// `_exit`. `arg` must stay valid until this returns, and `stack` must not be used by
/// anything else meanwhile.
/// With `share_files` the child also starts on our descriptor table (`CLONE_FILES`) instead
/// of a copy of it, and must unshare it before it changes any descriptor.
pub(super) unsafe fn spawn_gated(
    entry: extern "C" fn(*mut libc::c_void) -> libc::c_int,
    arg: *mut libc::c_void,
    stack: &mut [std::mem::MaybeUninit<u8>],
    share_files: bool,
) -> Result<(i32, Birth), Errno> {
    // The stack grows down from a 16-byte aligned top.
    let top = stack.as_mut_ptr_range().end;
    let top = top.wrapping_sub(top as usize % 16);
    let reaps = GATE.lock().unwrap_or_else(PoisonError::into_inner);
    let mut flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD;
    if share_files {
        flags |= libc::CLONE_FILES;
    }
    // SAFETY: the caller's contract; `top` lies inside `stack`, which outlives the child's
    // use of it (CLONE_VFORK: we return only after the child exec'd or exited).
    match unsafe { libc::clone(entry, top.cast(), flags, arg) } {
        -1 => Err(Errno::last()),
        pid => Ok((pid, Birth(*reaps))),
    }
}

/// Reaps one exited child, if any, numbering it under the gate.
/// `Ok(None)`: children exist but none has exited; `Err(ECHILD)`: no children at all.
// The single waitpid in the crate; clippy.toml forbids it everywhere else.
#[allow(clippy::disallowed_methods)]
fn reap_one() -> Result<Option<(Reaped, u64)>, Errno> {
    let mut reaps = GATE.lock().unwrap_or_else(PoisonError::into_inner);
    let mut raw: libc::c_int = 0;
    // SAFETY: `raw` is a valid out-pointer for the duration of the call.
    let pid = unsafe { libc::waitpid(-1, &mut raw, libc::WNOHANG) };
    if pid < 0 {
        return Err(Errno::last());
    }
    if pid == 0 {
        return Ok(None);
    }
    *reaps += 1;
    Ok(Some((Reaped { pid, status: ExitStatus::from_wait_status(raw) }, *reaps)))
}

/// A registration: tell `reply` when `pid` (born at `birth`) exits.
struct Watch {
    pid: i32,
    birth: Birth,
    reply: oneshot::Sender<Reaped>,
}

/// The reaper's bookkeeping, kept free of syscalls so it can be tested directly.
#[derive(Default)]
struct Registry {
    watchers: HashMap<i32, (Birth, oneshot::Sender<Reaped>)>,
    /// `(reap number, exit)`, oldest first.
    unclaimed: VecDeque<(u64, Reaped)>,
}

impl Registry {
    fn on_reaped(&mut self, reaped: Reaped, reap_no: u64) {
        if let Some((birth, _)) = self.watchers.get(&reaped.pid)
            && reap_no > birth.0
            && let Some((_, reply)) = self.watchers.remove(&reaped.pid)
        {
            // The runner may be gone (its process was removed); nobody else wants this.
            let _ = reply.send(reaped);
            return;
        }
        if self.unclaimed.len() >= UNCLAIMED_CAP
            && let Some((_, old)) = self.unclaimed.pop_front()
        {
            tracing::debug!(pid = old.pid, status = ?old.status, "discarding an unclaimed exit");
        }
        self.unclaimed.push_back((reap_no, reaped));
    }

    fn on_watch(&mut self, w: Watch) {
        // Any unclaimed exit of this pid reaped before the birth belongs to an older process.
        self.unclaimed.retain(|(no, r)| r.pid != w.pid || *no > w.birth.0);
        match self.unclaimed.iter().position(|(_, r)| r.pid == w.pid) {
            Some(i) => {
                if let Some((_, reaped)) = self.unclaimed.remove(i) {
                    let _ = w.reply.send(reaped);
                }
            }
            // A second registration for the same pid replaces the first (its receiver errs).
            None => {
                self.watchers.insert(w.pid, (w.birth, w.reply));
            }
        }
    }
}

/// Registers interest in children's exits. Cheap to clone; the reaper keeps reaping (and
/// discarding orphans) after the last handle is dropped, until the runtime shuts down.
#[derive(Clone, Debug)]
pub struct ReaperHandle {
    inbox: mpsc::Sender<Watch>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch").field("pid", &self.pid).field("birth", &self.birth).finish()
    }
}

impl ReaperHandle {
    /// Returns a receiver that yields the exit of `pid`, the child [`super::spawn::spawn`]
    /// returned with `birth`, even if it has already exited. The receiver errs only if the
    /// reaper is gone (runtime shutdown) or the pid is watched again.
    pub async fn watch(&self, pid: i32, birth: Birth) -> oneshot::Receiver<Reaped> {
        let (reply, rx) = oneshot::channel();
        // If the reaper is gone the message (and `reply`) is dropped and `rx` reports it.
        let _ = self.inbox.send(Watch { pid, birth, reply }).await;
        rx
    }

    /// A handle whose reaper is gone: every watch errs at once. For tests of code that
    /// needs a handle but starts no child.
    pub fn detached() -> ReaperHandle {
        let (inbox, _) = mpsc::channel(1);
        ReaperHandle { inbox }
    }

    /// [`Self::watch`] from a thread outside the runtime (the spawner thread). Must not be
    /// called from async code: it waits while the (always draining) inbox is full.
    pub fn watch_blocking(&self, pid: i32, birth: Birth) -> oneshot::Receiver<Reaped> {
        let (reply, rx) = oneshot::channel();
        let _ = self.inbox.blocking_send(Watch { pid, birth, reply });
        rx
    }
}

/// Why the reaper could not start.
#[derive(Debug, thiserror::Error)]
pub enum ReaperError {
    /// A reaper already runs in this process.
    #[error("a reaper is already running in this process")]
    AlreadyRunning,
    /// SIGCHLD could not be hooked.
    #[error("cannot listen for SIGCHLD: {0}")]
    Signal(#[from] std::io::Error),
}

/// The reaper task.
pub struct Reaper {
    sigchld: Signal,
    inbox: mpsc::Receiver<Watch>,
    registry: Registry,
    /// The `waitpid` failure last logged, so a persistent one is logged once.
    failing: Option<Errno>,
}

impl Reaper {
    /// Hooks SIGCHLD (synchronously, so call this before the first spawn) and starts the
    /// reaper on the current tokio runtime. At most once per process.
    pub fn spawn() -> Result<ReaperHandle, ReaperError> {
        if STARTED.swap(true, Ordering::SeqCst) {
            return Err(ReaperError::AlreadyRunning);
        }
        let sigchld = match signal(SignalKind::child()) {
            Ok(s) => s,
            Err(e) => {
                STARTED.store(false, Ordering::SeqCst);
                return Err(e.into());
            }
        };
        let (tx, inbox) = mpsc::channel(INBOX_CAP);
        let reaper = Reaper { sigchld, inbox, registry: Registry::default(), failing: None };
        tokio::spawn(reaper.run());
        Ok(ReaperHandle { inbox: tx })
    }

    async fn run(mut self) {
        // Children may have exited before SIGCHLD was hooked.
        self.drain();
        let mut inbox_open = true;
        loop {
            tokio::select! {
                biased;
                got = self.sigchld.recv() => match got {
                    Some(()) => self.drain(),
                    None => break, // the signal driver is gone: runtime shutdown
                },
                w = self.inbox.recv(), if inbox_open => match w {
                    Some(w) => {
                        self.drain();
                        self.registry.on_watch(w);
                    }
                    None => inbox_open = false,
                },
            }
        }
    }

    fn drain(&mut self) {
        loop {
            match reap_one() {
                Ok(Some((reaped, no))) => {
                    self.failing = None;
                    // Its last output and EOF are read now, not after a coalescing pause.
                    crate::logio::coalesce::cut_short();
                    self.registry.on_reaped(reaped, no);
                }
                Ok(None) | Err(Errno::ECHILD) => return,
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    if self.failing != Some(e) {
                        tracing::error!("waitpid failed: {e}");
                        self.failing = Some(e);
                    }
                    return;
                }
            }
        }
    }
}

/// Makes this process adopt orphaned descendants (`PR_SET_CHILD_SUBREAPER`), so the reaper
/// collects them as PID 1 would. Returns `false` without doing anything when this process
/// is PID 1, which adopts orphans anyway.
pub fn set_child_subreaper() -> Result<bool, Errno> {
    if nix::unistd::getpid().as_raw() == 1 {
        return Ok(false);
    }
    nix::sys::prctl::set_child_subreaper(true)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exit(pid: i32, code: i32) -> Reaped {
        Reaped { pid, status: ExitStatus::Exited(code) }
    }

    fn watch(reg: &mut Registry, pid: i32, birth: u64) -> oneshot::Receiver<Reaped> {
        let (reply, rx) = oneshot::channel();
        reg.on_watch(Watch { pid, birth: Birth(birth), reply });
        rx
    }

    #[test]
    fn registered_before_exit() {
        let mut reg = Registry::default();
        let mut rx = watch(&mut reg, 10, 5);
        assert!(rx.try_recv().is_err());
        reg.on_reaped(exit(10, 3), 6);
        assert_eq!(rx.try_recv(), Ok(exit(10, 3)));
        assert!(reg.watchers.is_empty() && reg.unclaimed.is_empty());
    }

    #[test]
    fn exit_before_registration_is_kept() {
        let mut reg = Registry::default();
        reg.on_reaped(exit(10, 7), 6);
        let mut rx = watch(&mut reg, 10, 5);
        assert_eq!(rx.try_recv(), Ok(exit(10, 7)));
        assert!(reg.unclaimed.is_empty() && reg.watchers.is_empty());
    }

    #[test]
    fn exit_of_an_older_process_with_a_reused_pid_is_not_delivered() {
        let mut reg = Registry::default();
        // Pid 10 (an orphan) was reaped as reap #3; a new child got pid 10 after 4 reaps.
        reg.on_reaped(exit(10, 1), 3);
        let mut rx = watch(&mut reg, 10, 4);
        assert!(rx.try_recv().is_err());
        assert!(reg.unclaimed.is_empty(), "the stale exit is dropped");
        reg.on_reaped(exit(10, 0), 5);
        assert_eq!(rx.try_recv(), Ok(exit(10, 0)));
    }

    #[test]
    fn unclaimed_is_bounded_oldest_dropped() {
        let mut reg = Registry::default();
        for i in 0..(UNCLAIMED_CAP as i32 + 10) {
            reg.on_reaped(exit(1000 + i, 0), i as u64 + 1);
        }
        assert_eq!(reg.unclaimed.len(), UNCLAIMED_CAP);
        assert_eq!(reg.unclaimed.front().map(|(_, r)| r.pid), Some(1010));
        let mut gone = watch(&mut reg, 1000, 0);
        assert!(gone.try_recv().is_err());
        let mut kept = watch(&mut reg, 1010, 0);
        assert_eq!(kept.try_recv(), Ok(exit(1010, 0)));
    }

    #[test]
    fn watching_twice_replaces_and_closes_the_first() {
        let mut reg = Registry::default();
        let mut first = watch(&mut reg, 10, 1);
        let mut second = watch(&mut reg, 10, 1);
        assert_eq!(first.try_recv(), Err(oneshot::error::TryRecvError::Closed));
        reg.on_reaped(exit(10, 2), 2);
        assert_eq!(second.try_recv(), Ok(exit(10, 2)));
    }
}
