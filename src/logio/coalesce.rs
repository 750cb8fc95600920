//! Read coalescing on the pump runtime: after a round of small pipe reads, the runtime's
//! thread pauses for a few milliseconds before it goes back to `epoll_wait`, so that its
//! next wake finds many lines in many pipes instead of one line in one pipe.
//!
//! Why a pause of the whole thread and not a timer per pump: a pipe watched by epoll wakes
//! the waiting thread on every write, whether or not a task is waiting for it, so the
//! per-line wake-ups stop only while the thread is not in `epoll_wait` at all. The pause
//! runs in the runtime's before-park hook ([`before_park`]), that is only when no task of
//! the runtime has anything left to do.
//!
//! Fences, so that coalescing never costs a byte or stalls a child:
//! - Only pipe reads ask for a pause ([`after_read`]); a wake for anything else (a control
//!   message, a timer) never pauses.
//! - The pause is what the fastest pump that read in the round needs to fill a quarter
//!   of its pipe at its current rate, at most [`MAX_PAUSE`]; under [`MIN_PAUSE`] there is
//!   none. A read of half a pipe or more, a writer faster than the pause, cancels the
//!   round's pause, so a default pipe that fills is read as fast as it comes.
//! - Bulk output: a pipe found half full is widened ([`WidePipe`], 1 MiB, at most
//!   [`WIDE_MAX`] pipes at a time), so that the pause lets it fill and a round drains it
//!   in full 64 KiB reads instead of many small ones: the daemon's CPU per byte is then
//!   about the kernel's copies. A pipe that cannot be widened (the user's pipe-buffer
//!   limit) keeps the default behaviour.
//! - The pause only delays the next `epoll_wait`: the bytes wait in the pipe, readiness
//!   is not lost (the epoll events queue up meanwhile), and a task woken from another
//!   thread runs right after it.
//! - A reaped child cuts the pause short ([`cut_short`]), so the end of a child's output
//!   and its EOF are read as promptly as without coalescing.
//!
//! The cost is latency: a line reaches its log file up to [`MAX_PAUSE`] later.

use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

/// The longest pause: the added latency of a line, bounded.
pub const MAX_PAUSE: Duration = Duration::from_millis(10);

/// Shorter pauses than this cost more (a timed wait) than they save.
pub const MIN_PAUSE: Duration = Duration::from_millis(1);

/// The capacity of a pipe as the kernel makes it.
pub const DEFAULT_PIPE: usize = 64 * 1024;

/// The capacity a bulk pipe is widened to: the unprivileged limit (`pipe-max-size`).
const WIDE_PIPE: usize = 1024 * 1024;

/// Pipes widened at once, daemon-wide: together at most 16 MiB of pipe buffers, a quarter
/// of the default per-user soft limit (`pipe-user-pages-soft`), past which the kernel
/// gives an unprivileged user's new pipes two pages only.
pub const WIDE_MAX: usize = 16;

static WIDE_NOW: AtomicUsize = AtomicUsize::new(0);

/// Nothing asked for a pause since the last park.
const NO_REQUEST: u64 = u64::MAX;

/// The pause the pumps allow before the next park, in microseconds: the minimum over the
/// round's reads; [`NO_REQUEST`] when none read. One per process: only the daemon's pump
/// runtime pauses, and pumps on another runtime (tests) merely leave a request behind.
static ALLOWED_US: AtomicU64 = AtomicU64::new(NO_REQUEST);

/// Where a pause waits, so that [`cut_short`] can end it; the flag is "cut".
static PAUSE: Mutex<bool> = Mutex::new(false);
static PAUSE_END: Condvar = Condvar::new();

/// A pump's first read of a round took `n` bytes from a pipe of `capacity` bytes, `since`
/// after its previous round: how long it could wait before its pipe holds a quarter of
/// its capacity (its pause bound for this round).
pub fn after_read(n: usize, capacity: usize, since: Duration) {
    ALLOWED_US.fetch_min(allowed_us(n, capacity, since), Ordering::Relaxed);
}

/// The pause (in microseconds) that a read of `n` bytes from a pipe of `capacity`, `since`
/// after the previous read, allows: the time the same rate needs to fill a quarter of
/// the pipe, within [`MAX_PAUSE`]; 0 after a read of half the pipe or more.
fn allowed_us(n: usize, capacity: usize, since: Duration) -> u64 {
    let max = MAX_PAUSE.as_micros() as u64;
    if n >= capacity / 2 {
        return 0;
    }
    if n == 0 {
        return max;
    }
    // since / n is the time per byte; a quarter pipe of them is the time to fill.
    let since_us = since.as_micros().min(u128::from(u64::MAX)) as u64;
    let target = (capacity / 4) as u64;
    since_us.saturating_mul(target).checked_div(n as u64).unwrap_or(max).min(max)
}

/// A pipe widened for bulk output; dropping it gives its place back (the pipe keeps its
/// size until it is closed, which is when its pump drops this).
#[derive(Debug)]
pub struct WidePipe(());

impl WidePipe {
    /// Widens `pipe` (a read end found half full) to 1 MiB if fewer than [`WIDE_MAX`] are
    /// wide: its new capacity, or `None` (it keeps its size) when none is free or the
    /// kernel refuses.
    pub fn widen(pipe: impl AsFd) -> Option<(WidePipe, usize)> {
        let taken = WIDE_NOW.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
            (n < WIDE_MAX).then_some(n + 1)
        });
        taken.ok()?;
        let wide = WidePipe(());
        let fd = pipe.as_fd().as_raw_fd();
        // SAFETY: F_SETPIPE_SZ on a descriptor borrowed for the call; no memory is passed.
        let got = unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, WIDE_PIPE as libc::c_int) };
        usize::try_from(got).ok().filter(|&c| c > DEFAULT_PIPE).map(|c| (wide, c))
    }
}

impl Drop for WidePipe {
    fn drop(&mut self) {
        WIDE_NOW.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The pump runtime's before-park hook: pauses as long as the round's reads allow.
pub fn before_park() {
    let allowed = ALLOWED_US.swap(NO_REQUEST, Ordering::Relaxed);
    if allowed == NO_REQUEST {
        return;
    }
    let pause = Duration::from_micros(allowed);
    if pause >= MIN_PAUSE {
        #[cfg(test)]
        tests::PAUSES.fetch_add(1, Ordering::Relaxed);
        wait(pause);
    }
}

/// A child was reaped: ends a pause in progress (or skips the next one) so that its last
/// output and EOF are read now.
pub fn cut_short() {
    let mut cut = PAUSE.lock().unwrap_or_else(PoisonError::into_inner);
    *cut = true;
    PAUSE_END.notify_all();
}

/// Waits for `pause` or a [`cut_short`]; true if cut.
fn wait(pause: Duration) -> bool {
    let cut = PAUSE.lock().unwrap_or_else(PoisonError::into_inner);
    let (mut cut, _) = PAUSE_END
        .wait_timeout_while(cut, pause, |cut| !*cut)
        .unwrap_or_else(PoisonError::into_inner);
    std::mem::take(&mut *cut)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logio::RotatingWriter;
    use crate::logio::pump::{self, PumpOptions};
    use std::io::Write;

    /// Pauses taken (or started) so far.
    pub(super) static PAUSES: AtomicU64 = AtomicU64::new(0);

    #[test]
    fn pausing_pumps_lose_nothing_up_to_the_eof() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .on_thread_park(before_park)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut want = Vec::new();
        let mut tasks = Vec::new();
        let mut feeders = Vec::new();
        for p in 0..4 {
            let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
            let path = dir.path().join(format!("p{p}.log"));
            let writer = RotatingWriter::open(&path, 0, 0).unwrap();
            let (_ctl, ctl_rx) = crate::inbox::unbounded();
            let opts = PumpOptions::default();
            tasks.push(rt.spawn(pump::run(
                r,
                Some(writer),
                ctl_rx,
                opts,
                None,
                std::sync::Arc::new(String::new()),
            )));
            // Slow short lines (each pump asks for the longest pause), a burst larger than
            // a pipe, then unterminated last words right before the close.
            let mut chunks: Vec<Vec<u8>> =
                (0..100).map(|i| format!("p{p} line {i}\n").into_bytes()).collect();
            chunks.push(vec![b'b'; 200_000]);
            chunks.extend((0..20).map(|i| format!("p{p} after {i}\n").into_bytes()));
            chunks.push(format!("p{p} last words").into_bytes());
            want.push((path, chunks.concat()));
            feeders.push(std::thread::spawn(move || {
                let mut w = std::fs::File::from(w);
                for c in chunks {
                    w.write_all(&c).unwrap();
                    if c.len() < 100 {
                        std::thread::sleep(Duration::from_micros(500));
                    }
                }
            }));
        }
        for f in feeders {
            f.join().unwrap();
        }
        for t in tasks {
            let report = rt.block_on(t).unwrap();
            assert!(report.read_error.is_none() && report.write_errors == 0);
        }
        assert!(PAUSES.load(Ordering::Relaxed) > 0, "slow lines made the runtime pause");
        for (path, bytes) in want {
            assert!(std::fs::read(&path).unwrap() == bytes, "{} differs", path.display());
        }
    }

    const MAX_US: u64 = MAX_PAUSE.as_micros() as u64;
    const BUF: usize = 64 * 1024;

    #[test]
    fn slow_writers_allow_the_longest_pause() {
        // 100 bytes 2 ms after the previous read: 16 KiB would take 327 ms.
        assert_eq!(allowed_us(100, BUF, Duration::from_millis(2)), MAX_US);
        // A first read after a long silence.
        assert_eq!(allowed_us(100, BUF, Duration::from_secs(3600)), MAX_US);
        assert_eq!(allowed_us(0, BUF, Duration::ZERO), MAX_US);
    }

    #[test]
    fn fast_writers_allow_a_pause_that_fills_a_quarter_pipe_at_most() {
        // 8 KiB in 1 ms: 16 KiB in 2 ms.
        assert_eq!(allowed_us(8192, BUF, Duration::from_millis(1)), 2000);
        // 2 KiB in 50 µs (40 MB/s): 400 µs, below MIN_PAUSE, so no pause at all.
        assert!(allowed_us(2048, BUF, Duration::from_micros(50)) < MIN_PAUSE.as_micros() as u64);
    }

    #[test]
    fn a_read_of_half_a_pipe_cancels_the_pause() {
        assert_eq!(allowed_us(32 * 1024, BUF, Duration::from_secs(1)), 0);
        assert_eq!(allowed_us(64 * 1024, BUF, Duration::from_secs(1)), 0);
        // A smaller pipe, half of it.
        assert_eq!(allowed_us(8192, 16 * 1024, Duration::from_secs(1)), 0);
    }

    #[test]
    fn a_wide_pipe_read_in_full_buffers_still_pauses_to_fill() {
        // 64 KiB 10 ms after the previous round, from a 1 MiB pipe: a quarter of it takes
        // 40 ms at that rate, so the longest pause.
        assert_eq!(allowed_us(64 * 1024, 1 << 20, Duration::from_millis(10)), MAX_US);
        // 64 KiB in 1 ms: 256 KiB in 4 ms.
        assert_eq!(allowed_us(64 * 1024, 1 << 20, Duration::from_millis(1)), 4000);
    }

    #[test]
    fn widening_is_bounded() {
        let mut held = Vec::new();
        let mut pipes = Vec::new();
        for _ in 0..WIDE_MAX + 2 {
            let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
            if let Some((wide, cap)) = WidePipe::widen(&r) {
                assert!(cap > DEFAULT_PIPE);
                held.push(wide);
            }
            pipes.push((r, w));
        }
        assert!(!held.is_empty(), "no pipe could be widened");
        assert!(held.len() <= WIDE_MAX && WIDE_NOW.load(Ordering::Relaxed) <= WIDE_MAX);
    }

    #[test]
    fn a_cut_ends_a_pause() {
        // Cut until the pause returns: another test's pause may take a single cut.
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let cutter = std::thread::spawn({
            let done = done.clone();
            move || {
                while !done.load(Ordering::Relaxed) {
                    cut_short();
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        });
        assert!(wait(Duration::from_secs(600)), "the pause ran to its end");
        done.store(true, Ordering::Relaxed);
        cutter.join().unwrap();
    }
}
