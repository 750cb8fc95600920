//! What /proc says about a daemon under test: its children, zombies, open descriptors and
//! resident memory, and any process still carrying a test's marker in its environment.

use std::path::Path;

use super::daemon::read_lossy;

/// (pid, state letter, ppid) of every process.
fn all() -> Vec<(i32, char, i32)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else { return out };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let stat = read_lossy(&e.path().join("stat"));
        // pid (comm) state ppid ...: comm may contain spaces, so split after the last ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { continue };
        let mut f = rest.split_whitespace();
        let state = f.next().and_then(|s| s.chars().next());
        let parent = f.next().and_then(|p| p.parse::<i32>().ok());
        if let (Some(state), Some(parent)) = (state, parent) {
            out.push((pid, state, parent));
        }
    }
    out
}

/// Live (non-zombie) children of `ppid`.
pub fn children(ppid: i32) -> Vec<i32> {
    all().into_iter().filter(|&(_, s, p)| p == ppid && s != 'Z').map(|(pid, ..)| pid).collect()
}

/// Children of `ppid` that are zombies.
pub fn zombies(ppid: i32) -> Vec<i32> {
    all().into_iter().filter(|&(_, s, p)| p == ppid && s == 'Z').map(|(pid, ..)| pid).collect()
}

/// How many descriptors `pid` has open.
pub fn fd_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

/// What `pid`'s descriptors point at, for failure messages.
pub fn fd_targets(pid: i32) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return Vec::new() };
    let mut out: Vec<String> = dir
        .flatten()
        .map(|e| {
            let target = std::fs::read_link(e.path()).map(|t| t.display().to_string());
            format!("{} -> {}", e.file_name().to_string_lossy(), target.unwrap_or_default())
        })
        .collect();
    out.sort();
    out
}

/// `pid`'s resident set in KiB.
pub fn rss_kib(pid: i32) -> u64 {
    read_lossy(Path::new(&format!("/proc/{pid}/status")))
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Processes whose environment contains `marker` (e.g. `MARK=<temp dir>`).
pub fn with_env(marker: &str) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else { return out };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(env) = std::fs::read(e.path().join("environ")) else { continue };
        if env.split(|&b| b == 0).any(|kv| kv == marker.as_bytes()) {
            out.push(pid);
        }
    }
    out
}
