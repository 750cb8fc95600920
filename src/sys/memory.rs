//! Hands freed memory back to the kernel after a burst of allocation. A large reply (a
//! `getAllProcessInfo` of thousands of processes: its values, its text and their regrowths)
//! frees megabytes that the allocator keeps for reuse and purges only when it is next
//! called; a daemon that then sits idle would keep them resident for ever.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Replies at least this large (a `status` of a few hundred programs) are followed by a
/// release.
pub const LARGE_REPLY: usize = 32 * 1024;

/// Long enough for the reply to be written and its buffers freed.
const DELAY: Duration = Duration::from_millis(100);

/// A release is scheduled; further large replies until it runs share it.
static PENDING: AtomicBool = AtomicBool::new(false);

/// Schedules one release on this runtime (where the reply's memory was allocated and
/// freed), unless one is pending already. Returns whether this call scheduled it.
pub fn release_soon() -> bool {
    if PENDING.swap(true, Ordering::Relaxed) {
        return false;
    }
    tokio::spawn(async {
        tokio::time::sleep(DELAY).await;
        PENDING.store(false, Ordering::Relaxed);
        release();
    });
    true
}

/// How long after a burst of spawns its threads release: the last processes' first
/// state changes (RUNNING, their log lines) are done by then.
const AFTER_BURST: Duration = Duration::from_secs(1);

/// A release after a burst of spawns is scheduled.
static BURST_PENDING: AtomicBool = AtomicBool::new(false);

/// After a burst of spawns (boot), has every thread that took part release what it
/// freed: the orchestrator's (runners, the process table's temporaries), the spawner,
/// the pump runtime and the daemon log's thread. Each thread's allocator keeps its own
/// free pages and purges them only when that thread next allocates, which an idle daemon
/// never does. Must be called on the orchestrator's runtime.
pub fn release_after_burst(
    services: &crate::runner::Services,
    log: &crate::logio::mainlog_task::MainLogHandle,
) {
    if BURST_PENDING.swap(true, Ordering::Relaxed) {
        return;
    }
    let (pumps, spawner, log) = (services.pumps.clone(), services.spawner.clone(), log.clone());
    tokio::spawn(async move {
        tokio::time::sleep(AFTER_BURST).await;
        BURST_PENDING.store(false, Ordering::Relaxed);
        spawner.run(release);
        pumps.spawn(async { release() });
        log.release_memory();
        release();
    });
}

/// Returns the free memory of this thread's allocator heap, and the process's free pages,
/// to the kernel.
pub fn release() {
    #[cfg(target_env = "musl")]
    {
        unsafe extern "C" {
            // mimalloc, the musl build's allocator (see `main.rs`).
            fn mi_collect(force: bool);
        }
        // SAFETY: takes no pointers; collects the calling thread's heap and purges pages
        // that are free.
        unsafe { mi_collect(true) };
    }
    #[cfg(target_env = "gnu")]
    // SAFETY: takes no pointers; trims glibc's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Polls (with a deadline) until no release is pending.
    async fn until_released() {
        let deadline = crate::sys::clock::now() + Duration::from_secs(10);
        while PENDING.load(Ordering::Relaxed) {
            assert!(crate::sys::clock::now() < deadline, "the release never ran");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn large_replies_in_a_row_share_one_release() {
        until_released().await;
        assert!(release_soon());
        assert!(!release_soon(), "a second one while the first is pending");
        until_released().await;
        assert!(release_soon(), "the next large reply schedules again");
        until_released().await;
    }
}
