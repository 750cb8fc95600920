//! Reads process figures for metrics scrapes: CPU time, resident memory, open
//! descriptors, start time. Blocking but quick (the kernel answers from memory); called
//! from a request's task when a scrape asks, never polled.
//!
//! Per process, the cheapest sources the kernel has (measured with
//! `examples/bench_scrape_parts.rs`): CPU time from the process's CPU clock (one
//! `clock_gettime`, no file) and resident memory from `/proc/<pid>/statm`, which the
//! kernel generates in a third of the time of `/proc/<pid>/stat`. A [`UsageReader`] keeps
//! the `statm` files open between scrapes while descriptors are plentiful
//! ([`statm_budget`]): descriptors are what a daemon with thousands of programs runs out of.

use std::collections::HashMap;
use std::fs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::OnceLock;

/// One process's usage.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    /// User plus system CPU of all its threads, in seconds.
    pub cpu_seconds: f64,
    /// Resident set size, in bytes.
    pub resident_bytes: u64,
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a constant of the C library.
    let n = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if n > 0 { n as f64 } else { 100.0 }
}

fn page_size() -> u64 {
    // SAFETY: sysconf only reads a constant of the C library.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 { n as u64 } else { 4096 }
}

/// The boot time (`btime` of `/proc/stat`), in seconds since the epoch. Read once: it does
/// not change, and `/proc/stat` is long (a counter per interrupt) and costly to generate.
fn boot_time() -> f64 {
    static BOOT: OnceLock<f64> = OnceLock::new();
    *BOOT.get_or_init(|| {
        let stat = fs::read_to_string("/proc/stat").unwrap_or_default();
        stat.lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    })
}

/// The start time (seconds since the epoch) in a `/proc/<pid>/stat` line: field 22, counted
/// after the command name (which is in parentheses and may itself contain spaces and
/// parentheses).
pub fn parse_start_time(text: &str, ticks: f64, boot: f64) -> Option<f64> {
    let after = &text[text.rfind(')')? + 1..];
    // `after` starts with field 3 (state), so field 22 is its 20th (1-based, as in proc(5)).
    let start = after.split_ascii_whitespace().nth(19)?.parse::<u64>().ok()?;
    Some(boot + start as f64 / ticks)
}

/// The resident size in a `/proc/<pid>/statm` line (its second field, in pages), in bytes.
pub fn parse_statm(text: &str, page: u64) -> Option<u64> {
    let pages = text.split_ascii_whitespace().nth(1)?.parse::<u64>().ok()?;
    Some(pages * page)
}

/// The CPU time of process `pid` (all its threads, user and system), in seconds: the
/// kernel's process CPU clock, which it reads without generating any text.
fn cpu_seconds(pid: u32) -> Option<f64> {
    // Pid 0 would be our own process; above the kernel's pid limit (2^22), the id below
    // would overflow into another clock.
    let pid = i32::try_from(pid).ok().filter(|&p| p > 0 && p <= 1 << 22)?;
    // The clock id `clock_getcpuclockid` computes (kernel ABI: `~pid << 3`, CPUCLOCK_SCHED,
    // a process clock); built here because the C library's function adds a `clock_getres`
    // per call to check that the process exists, which `clock_gettime` does anyway.
    let clock = ((!pid) << 3) | 2;
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid out-pointer; an unknown clock or a gone process is an error.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return None;
    }
    Some(ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9)
}

/// The usage of each pid (`None` where there is no process or no such pid any more),
/// keeping no descriptor.
pub fn usage_of(pids: &[Option<u32>]) -> Vec<Option<Usage>> {
    UsageReader::default().read(pids, 0)
}

/// Reads process usage: a CPU clock read and a `statm` read per process. It may keep each
/// process's `statm` open between calls, as many as its caller allows: a `pread` on a kept
/// descriptor costs the kernel a third of an open, read and close
/// (`examples/bench_scrape_parts.rs`), but each one is a descriptor (see [`statm_budget`]).
#[derive(Debug, Default)]
pub struct UsageReader {
    statm: HashMap<u32, OwnedFd>,
}

impl UsageReader {
    /// The usage of each pid, keeping at most `keep` descriptors afterwards; those of pids
    /// not asked about are closed.
    pub fn read(&mut self, pids: &[Option<u32>], keep: usize) -> Vec<Option<Usage>> {
        let page = page_size();
        let mut before = std::mem::take(&mut self.statm);
        // Opened on the first process without a kept descriptor.
        let mut proc_dir: Option<Option<OwnedFd>> = None;
        let mut buf = [0u8; 256];
        let mut out = Vec::with_capacity(pids.len());
        for pid in pids {
            // No CPU clock: no such process (a descriptor kept for it is closed below).
            let Some((pid, cpu_seconds)) = pid.and_then(|p| Some((p, cpu_seconds(p)?))) else {
                out.push(None);
                continue;
            };
            // A kept descriptor stays with its process: once that process is reaped the read
            // fails with ESRCH (even if the pid is reused), and the file is opened afresh.
            let mut read = before.remove(&pid).and_then(|fd| Some((pread0(&fd, &mut buf)?, fd)));
            if read.is_none() {
                let dir = proc_dir.get_or_insert_with(|| {
                    open_at(libc::AT_FDCWD, c"/proc", libc::O_PATH | libc::O_DIRECTORY)
                });
                read = dir
                    .as_ref()
                    .and_then(|dir| open_statm(dir, pid))
                    .and_then(|fd| Some((pread0(&fd, &mut buf)?, fd)));
            }
            let Some((n, fd)) = read else {
                out.push(None);
                continue;
            };
            if self.statm.len() < keep {
                self.statm.insert(pid, fd);
            }
            let resident = std::str::from_utf8(&buf[..n]).ok().and_then(|t| parse_statm(t, page));
            out.push(resident.map(|resident_bytes| Usage { cpu_seconds, resident_bytes }));
        }
        out
    }

    /// The descriptors it keeps.
    pub fn kept(&self) -> usize {
        self.statm.len()
    }
}

/// How many `statm` descriptors a [`UsageReader`] may keep: only within the lower half of
/// the descriptor limit once the daemon's other descriptors (`open` less `kept`) and five
/// for every program not running (its pipes and logs once started) are counted, so that
/// they never stand between a program and its start, nor near the limit.
pub fn statm_budget(open: u64, kept: usize, limit: u64, not_running: usize) -> usize {
    let others = open.saturating_sub(kept as u64).saturating_add(5 * not_running as u64);
    usize::try_from((limit / 2).saturating_sub(others)).unwrap_or(0)
}

/// `path` relative to `dir`, opened with `flags`. `openat` rather than `File::open`:
/// musl's `open` follows an `O_CLOEXEC` open with an `fcntl`, one more syscall per file.
fn open_at(dir: i32, path: &std::ffi::CStr, flags: i32) -> Option<OwnedFd> {
    // SAFETY: `path` is NUL-terminated; the flags create no file.
    let fd = unsafe { libc::openat(dir, path.as_ptr(), flags | libc::O_RDONLY | libc::O_CLOEXEC) };
    // SAFETY: `fd` was just opened and is owned by nothing else.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `<pid>/statm` under `dir` (`/proc`).
fn open_statm(dir: &OwnedFd, pid: u32) -> Option<OwnedFd> {
    let mut path = [0u8; 24];
    let mut digits = itoa::Buffer::new();
    let parts: [&[u8]; 3] = [digits.format(pid).as_bytes(), b"/statm", b"\0"];
    let mut at = 0;
    for part in parts {
        path.get_mut(at..at + part.len())?.copy_from_slice(part);
        at += part.len();
    }
    let path = std::ffi::CStr::from_bytes_until_nul(&path).ok()?;
    open_at(dir.as_raw_fd(), path, 0)
}

/// The whole of a short `/proc` file from its start (the kernel regenerates it on a read
/// at offset 0): the bytes read into `buf`.
fn pread0(fd: &OwnedFd, buf: &mut [u8]) -> Option<usize> {
    // SAFETY: `buf` is valid for writes of its length; `fd` is open.
    let n = unsafe { libc::pread(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    usize::try_from(n).ok().filter(|&n| n > 0)
}

/// The daemon's own figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SelfUsage {
    pub usage: Option<Usage>,
    /// When the daemon started, in seconds since the epoch.
    pub start_time: Option<f64>,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
}

pub fn self_usage() -> SelfUsage {
    let usage = usage_of(&[Some(std::process::id())]).pop().flatten();
    let open_fds = open_fds();
    let max_fds = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .ok()
        .map(|(soft, _)| soft);
    SelfUsage { usage, start_time: self_start_time(), open_fds, max_fds }
}

/// When this process started, from `/proc/self/stat`; read once, as it does not change.
fn self_start_time() -> Option<f64> {
    static START: OnceLock<Option<f64>> = OnceLock::new();
    *START.get_or_init(|| {
        let stat = fs::read_to_string("/proc/self/stat").ok()?;
        parse_start_time(&stat, ticks_per_second(), boot_time())
    })
}

/// The number of open descriptors: the size `stat` reports for `/proc/self/fd` (Linux
/// 6.2 and later; one syscall), else a listing of that directory, which costs the kernel a
/// dentry per descriptor.
fn open_fds() -> Option<u64> {
    match fs::metadata("/proc/self/fd").map(|m| m.len()) {
        Ok(n) if n > 0 => Some(n),
        // The listing counts its own descriptor.
        _ => fs::read_dir("/proc/self/fd").ok().map(|d| (d.count() as u64).saturating_sub(1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        // A command name with a space and a parenthesis, as a program may call itself.
        let line = "42 (a b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 1000 \
                    10000000 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        assert_eq!(parse_start_time(line, 100.0, 1_000_000.0), Some(1_000_010.0));
        assert_eq!(parse_start_time("42 (x) S 1", 100.0, 0.0), None);
        assert_eq!(parse_statm("2300 300 200 10 0 150 0\n", 4096), Some(300 * 4096));
        assert_eq!(parse_statm("2300", 4096), None);
    }

    #[test]
    fn our_own_process_reads() {
        let me = self_usage();
        let u = me.usage.unwrap();
        assert!(u.resident_bytes > 0 && me.start_time.unwrap() > 0.0);
        // Our CPU clock counts what this thread has spent.
        let spent = (0..100_000u64).fold(0u64, |a, b| a.wrapping_mul(31).wrapping_add(b));
        std::hint::black_box(spent);
        let later = usage_of(&[Some(std::process::id())])[0].unwrap();
        assert!(later.cpu_seconds > 0.0 && later.cpu_seconds >= u.cpu_seconds);
        assert!(me.open_fds.unwrap() >= 3);
        assert_eq!(usage_of(&[None]), vec![None]);
        // Pids that cannot be a child's: our clock for 0, another clock by overflow above
        // the kernel's largest pid.
        assert_eq!(cpu_seconds(0), None);
        assert_eq!(cpu_seconds(i32::MAX as u32), None);
        assert_eq!(usage_of(&[Some(i32::MAX as u32)]), vec![None]);
    }

    #[test]
    fn a_reader_keeps_what_it_may_and_rereads_kept_files() {
        let me = Some(std::process::id());
        let mut r = UsageReader::default();
        let first = r.read(&[me, None, Some(i32::MAX as u32)], 5);
        assert!(first[0].is_some_and(|u| u.resident_bytes > 0));
        assert_eq!(&first[1..], &[None, None]);
        assert_eq!(r.kept(), 1);
        // A kept file read again from its start gives a whole line again.
        let again = r.read(&[me], 5);
        assert!(again[0].is_some_and(|u| u.resident_bytes > 0 && u.cpu_seconds > 0.0));
        assert_eq!(r.kept(), 1);
        // No budget: read, then closed; a pid not asked about is closed too.
        assert!(r.read(&[me], 0)[0].is_some());
        assert_eq!(r.kept(), 0);
        r.read(&[me], 5);
        r.read(&[None], 5);
        assert_eq!(r.kept(), 0);
    }

    #[test]
    fn the_budget_stays_in_the_lower_half_of_the_limit() {
        // 100 running programs (about 500 descriptors) under a limit of 20,000.
        assert_eq!(statm_budget(510, 0, 20_000, 0), 9_490);
        // What is kept does not count against itself.
        assert_eq!(statm_budget(610, 100, 20_000, 0), 9_490);
        // Programs not running may need five each when started.
        assert_eq!(statm_budget(510, 0, 20_000, 1_000), 4_490);
        // 3,500 programs: nothing to spare.
        assert_eq!(statm_budget(17_510, 0, 20_000, 0), 0);
        assert_eq!(statm_budget(10, 0, 1024, 200), 0);
    }
}
