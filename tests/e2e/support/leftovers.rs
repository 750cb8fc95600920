//! Nothing a test starts outlives it. Every process this test binary starts inherits
//! `SUPERVISORD_TEST_RUN=<our pid>` (set before `main`), and every daemon the harness starts
//! also carries `SUPERVISORD_TEST_DAEMON=<its temp dir>`, which its children inherit too.
//! A daemon guard's drop kills whatever still carries its marker, however the test ended
//! (even children in process groups and sessions of their own, or orphans whose daemon was
//! killed); when the binary exits, any process still carrying the run marker fails the run.
//! Tests run in parallel, so each guard kills only its own daemon's processes.

use std::time::{Duration, Instant};

pub const RUN_VAR: &str = "SUPERVISORD_TEST_RUN";
pub const DAEMON_VAR: &str = "SUPERVISORD_TEST_DAEMON";

/// Live processes (not zombies, not us) whose environment holds `var=value`, as
/// (pid, command line).
pub fn marked(var: &str, value: &str) -> Vec<(i32, String)> {
    let me = std::process::id() as i32;
    let needle = format!("{var}={value}");
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else { return out };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(env) = std::fs::read(e.path().join("environ")) else { continue };
        if !env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()) {
            continue;
        }
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let state = stat.rsplit_once(')').and_then(|(_, r)| r.split_whitespace().next());
        if state == Some("Z") {
            continue;
        }
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ").trim().to_string();
        out.push((pid, cmd));
    }
    out
}

/// SIGKILLs every process marked `var=value` until none is left (a process may fork while
/// we look); returns what was found the first time.
pub fn kill_marked(var: &str, value: &str) -> Vec<(i32, String)> {
    let first = marked(var, value);
    let start = Instant::now();
    let mut now = first.clone();
    while !now.is_empty() && start.elapsed() < Duration::from_secs(10) {
        for (pid, _) in &now {
            // SAFETY: kill(2) of a process that carries our marker: one we started.
            unsafe {
                libc::kill(*pid, libc::SIGKILL);
            }
        }
        std::thread::sleep(Duration::from_millis(10));
        now = marked(var, value);
    }
    first
}

/// Runs before `main` (and before any thread exists): marks the environment every child
/// inherits, and checks at exit that no marked process is left.
extern "C" fn mark_run() {
    let name = std::ffi::CString::new(RUN_VAR).unwrap_or_default();
    let value = std::ffi::CString::new(std::process::id().to_string()).unwrap_or_default();
    // SAFETY: single-threaded (before main); both strings are NUL-terminated.
    unsafe {
        libc::setenv(name.as_ptr(), value.as_ptr(), 1);
        libc::atexit(check_at_exit);
    }
}

#[used]
#[unsafe(link_section = ".init_array")]
static MARK_RUN: extern "C" fn() = mark_run;

/// At exit: processes still carrying the run marker fail the run (after a grace period
/// for ones being stopped right now), and are killed so they do not run for ever.
extern "C" fn check_at_exit() {
    let run = std::process::id().to_string();
    let start = Instant::now();
    let mut left = marked(RUN_VAR, &run);
    while !left.is_empty() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
        left = marked(RUN_VAR, &run);
    }
    if left.is_empty() {
        return;
    }
    kill_marked(RUN_VAR, &run);
    eprintln!("\nprocesses started by the tests outlived them (now killed):");
    for (pid, cmd) in &left {
        eprintln!("  {pid} {cmd}");
    }
    // SAFETY: ends the process without running further exit handlers.
    unsafe { libc::_exit(1) }
}
