//! The spawner thread: where every child is started. A spawn looks up users, stats the
//! program, opens log files and `clone`s, and with `CLONE_VFORK` the calling thread is
//! suspended until the child execs; none of that may run on the orchestrator's thread. Jobs
//! run one at a time in the order sent (forks are serialised by the reaper's gate anyway).
//!
//! Beside it, the preparing thread does blocking work that spawns may need but must not
//! wait behind: creating the AUTO logs of new processes. A spawn that gets to a file first
//! does that file's part itself (`logio::autoname::CreateOnce`), so the spawns of a boot
//! run at the pace of fork and exec while the files are created alongside.
//!
//! A job registers its child with the reaper before it replies, and the reaper keeps an exit
//! it reaps before the registration (`sys::reaper`), so an exit that races the spawn still
//! reaches its runner.

use std::sync::{Arc, mpsc};

/// A unit of blocking work for the spawner thread.
type Job = Box<dyn FnOnce() + Send>;

/// The way to the spawner thread and its preparing thread. Cheap to clone; the threads end
/// when the last one drops.
#[derive(Clone, Debug)]
pub struct Spawner {
    /// One allocation for both queues: every runner holds a copy.
    tx: Arc<Queues>,
}

#[derive(Debug)]
struct Queues {
    spawn: mpsc::Sender<Job>,
    prepare: mpsc::Sender<Job>,
}

impl Spawner {
    /// Starts the threads.
    pub fn start() -> std::io::Result<Spawner> {
        let spawn = worker("spawner", "a spawn job panicked; its process reports a spawn error")?;
        let prepare = worker("spawn-prep", "a job creating log files panicked")?;
        Ok(Spawner { tx: Arc::new(Queues { spawn, prepare }) })
    }

    /// Queues `job` for the spawner thread; false if the thread is gone (it never ends
    /// while a handle exists, unless a job panicked).
    pub fn run(&self, job: impl FnOnce() + Send + 'static) -> bool {
        self.tx.spawn.send(Box::new(job)).is_ok()
    }

    /// Queues `job` for the preparing thread, which runs beside the spawns; false if the
    /// thread is gone.
    pub fn prepare(&self, job: impl FnOnce() + Send + 'static) -> bool {
        self.tx.prepare.send(Box::new(job)).is_ok()
    }
}

/// A thread that runs the jobs sent to it one after the other.
fn worker(name: &str, on_panic: &'static str) -> std::io::Result<mpsc::Sender<Job>> {
    let (tx, rx) = mpsc::channel::<Job>();
    std::thread::Builder::new().name(name.into()).spawn(move || {
        while let Ok(job) = rx.recv() {
            // A bug in one job must not end every later one.
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
                tracing::error!("{on_panic}");
            }
        }
    })?;
    Ok(tx)
}
