//! Reads process figures from `/proc` for metrics scrapes: CPU time, resident memory, open
//! descriptors, start time. Blocking but quick (procfs is in memory); called from a
//! request's task when a scrape asks, never polled.

use std::fs;
use std::io::Read;
use std::sync::OnceLock;

/// One process's usage as `/proc/<pid>/stat` tells it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    /// User plus system CPU, in seconds.
    pub cpu_seconds: f64,
    /// Resident set size, in bytes.
    pub resident_bytes: u64,
    /// When it started, in seconds since the epoch.
    pub start_time: f64,
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

/// Parses a `/proc/<pid>/stat` line: the fields after the command name (which is in
/// parentheses and may itself contain spaces and parentheses).
pub fn parse_stat(text: &str, ticks: f64, page: u64, boot: f64) -> Option<Usage> {
    let after = &text[text.rfind(')')? + 1..];
    // `after` starts with field 3 (state); utime is field 14, stime 15, starttime 22,
    // rss 24 (1-based, as in proc(5)).
    let mut f = after.split_ascii_whitespace();
    let mut next = |skip: usize| f.nth(skip).and_then(|v| v.parse::<u64>().ok());
    // Fields 14 and 15 are the 12th and 13th after `after`'s first (field 3), 22 comes 6
    // later, 24 one after that.
    let (utime, stime, start, rss) = (next(11)?, next(0)?, next(6)?, next(1)?);
    Some(Usage {
        cpu_seconds: (utime + stime) as f64 / ticks,
        resident_bytes: rss * page,
        start_time: boot + start as f64 / ticks,
    })
}

/// Reads `/proc/<pid>/stat` for each pid (`None` where there is no process or no such
/// pid any more), through one reused path and buffer on the stack.
pub fn usage_of(pids: &[Option<u32>]) -> Vec<Option<Usage>> {
    let (ticks, page, boot) = (ticks_per_second(), page_size(), boot_time());
    let mut buf = [0u8; 1024];
    pids.iter()
        .map(|pid| {
            let n = read_stat((*pid)?, &mut buf)?;
            parse_stat(std::str::from_utf8(&buf[..n]).ok()?, ticks, page, boot)
        })
        .collect()
}

/// `/proc/<pid>/stat` into `buf` with three syscalls: `openat`, one `read` (the line is a
/// few hundred bytes; `read_to_end` would also `statx` the file for a size hint) and
/// `close`. `openat` rather than `File::open`: musl's `open` follows an `O_CLOEXEC` open
/// with an `fcntl`, a fourth syscall per process.
fn read_stat(pid: u32, buf: &mut [u8]) -> Option<usize> {
    let mut path = [0u8; 32];
    let mut digits = itoa::Buffer::new();
    let pid = digits.format(pid).as_bytes();
    let parts: [&[u8]; 4] = [b"/proc/", pid, b"/stat", b"\0"];
    let mut at = 0;
    for part in parts {
        path.get_mut(at..at + part.len())?.copy_from_slice(part);
        at += part.len();
    }
    // SAFETY: `path` is NUL-terminated (written above); the flags open no new file.
    let fd = unsafe {
        libc::openat(libc::AT_FDCWD, path.as_ptr().cast(), libc::O_RDONLY | libc::O_CLOEXEC)
    };
    if fd < 0 {
        return None;
    }
    // SAFETY: `fd` was just opened and is owned by nothing else; the File closes it.
    let mut file = unsafe { <fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    file.read(buf).ok()
}

/// The daemon's own figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SelfUsage {
    pub usage: Option<Usage>,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
}

pub fn self_usage() -> SelfUsage {
    let usage = usage_of(&[Some(std::process::id())]).pop().flatten();
    let open_fds = open_fds();
    let max_fds = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .ok()
        .map(|(soft, _)| soft);
    SelfUsage { usage, open_fds, max_fds }
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
        let u = parse_stat(line, 100.0, 4096, 1_000_000.0).unwrap();
        assert_eq!(u.cpu_seconds, 3.0);
        assert_eq!(u.resident_bytes, 300 * 4096);
        assert_eq!(u.start_time, 1_000_010.0);
        assert_eq!(parse_stat("42 (x) S 1", 100.0, 4096, 0.0), None);
    }

    #[test]
    fn our_own_process_reads() {
        let me = self_usage();
        let u = me.usage.unwrap();
        assert!(u.resident_bytes > 0 && u.start_time > 0.0);
        assert!(me.open_fds.unwrap() >= 3);
        assert_eq!(usage_of(&[None]), vec![None]);
    }
}
