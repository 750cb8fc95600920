//! The spawner thread: where every child is started. A spawn looks up users, stats the
//! program, opens log files and `clone`s, and with `CLONE_VFORK` the calling thread is
//! suspended until the child execs; none of that may run on the orchestrator's thread. Jobs
//! run one at a time in the order sent (forks are serialised by the reaper's gate anyway).
//!
//! A job registers its child with the reaper before it replies, and the reaper keeps an exit
//! it reaps before the registration (`sys::reaper`), so an exit that races the spawn still
//! reaches its runner.

use std::sync::mpsc;

/// A unit of blocking work for the spawner thread.
type Job = Box<dyn FnOnce() + Send>;

/// The way to the spawner thread. Cheap to clone; the thread ends when the last one drops.
#[derive(Clone, Debug)]
pub struct Spawner {
    tx: mpsc::Sender<Job>,
}

impl Spawner {
    /// Starts the thread.
    pub fn start() -> std::io::Result<Spawner> {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new().name("spawner".into()).spawn(move || {
            while let Ok(job) = rx.recv() {
                // A bug in one spawn must not end every later one.
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
                    tracing::error!("a spawn job panicked; its process reports a spawn error");
                }
            }
        })?;
        Ok(Spawner { tx })
    }

    /// Queues `job`; false if the thread is gone (it never ends while a handle exists,
    /// unless a job panicked).
    pub fn run(&self, job: impl FnOnce() + Send + 'static) -> bool {
        self.tx.send(Box::new(job)).is_ok()
    }
}
