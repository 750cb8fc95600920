//! Finding a process's descendants, including the ones that left its process group
//! (`setsid`, a double fork), so that a stop can end the whole tree.
//!
//! The daemon is PID 1 or a child subreaper, so a descendant whose parent dies is adopted
//! by the daemon and loses its link to the process it came from. A process therefore
//! belongs to program `x` of group `g` when, walking up its parents, it reaches either
//! `x`'s live child, or a process the daemon adopted whose environment (as it was at its
//! exec) says `SUPERVISOR_PROCESS_NAME=x` and `SUPERVISOR_GROUP_NAME=g`, as every child
//! inherits unless it clears its environment. A process is known by its pid and its start
//! time, so a recycled pid is never taken for the process it replaced.
//!
//! The reads are blocking (`/proc`), so they run on the scanner thread ([`Scanner`]), which
//! answers every request waiting for it from one fresh snapshot: stopping a thousand
//! programs at once costs a few walks of `/proc`, not a thousand. A walk follows the
//! kernel's children lists from the daemon down, so it reads the daemon's own processes,
//! not every process on the machine.

use std::collections::HashMap;
use std::sync::mpsc;

use tokio::sync::oneshot;

/// A process: pid and start time (clock ticks after boot, `/proc/pid/stat` field 22).
pub type ProcKey = (i32, u64);

/// A descendant found by a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub pid: i32,
    pub start: u64,
    /// Its process group.
    pub pgid: i32,
    /// The command name (`comm`), for log lines.
    pub comm: String,
}

/// What to look for.
#[derive(Debug, Clone)]
pub struct Query {
    /// The program's live child, if it has not been reaped.
    pub child: Option<i32>,
    /// Descendants found before (still theirs if alive with the same start time).
    pub known: Vec<ProcKey>,
    /// `SUPERVISOR_PROCESS_NAME` and `SUPERVISOR_GROUP_NAME` of the program.
    pub name: String,
    pub group: String,
    /// Processes left behind by earlier exits on their own: never taken for this one's.
    pub exclude: Vec<ProcKey>,
}

/// One process in a snapshot of `/proc`.
#[derive(Debug, Clone)]
struct Entry {
    ppid: i32,
    pgid: i32,
    start: u64,
    comm: String,
}

/// A snapshot of every process: pid → entry (zombies left out: they cannot be signalled
/// and are gone once reaped).
#[derive(Debug, Default)]
struct Snapshot {
    procs: HashMap<i32, Entry>,
    /// For processes the daemon adopted: their (name, group) marker, read lazily.
    markers: HashMap<i32, Option<(String, String)>>,
}

/// Parses `/proc/pid/stat`: (comm, state, ppid, pgrp, starttime).
fn parse_stat(stat: &str) -> Option<(String, char, i32, i32, u64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_string();
    let mut rest = stat.get(close + 1..)?.split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    let pgid = rest.next()?.parse().ok()?;
    // Fields 6..=21 then starttime (22): after state, ppid and pgrp (3..=5), skip 16.
    let start = rest.nth(16)?.parse().ok()?;
    Some((comm, state, ppid, pgid, start))
}

/// [`parse_stat`] and the number of threads (field 20).
fn parse_stat_threads(stat: &str) -> Option<(String, char, i32, i32, u64, u64)> {
    let (comm, state, ppid, pgid, start) = parse_stat(stat)?;
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let threads = rest.split_ascii_whitespace().nth(17)?.parse().ok()?;
    Some((comm, state, ppid, pgid, start, threads))
}

/// The children of `pid` from the kernel's per-thread lists: only the main thread's when
/// it has one thread (`threads == 1`), else every thread's. `None` when `pid` has no
/// readable list (gone, or a kernel without `CONFIG_PROC_CHILDREN`).
fn children_of(pid: i32, threads: u64) -> Option<Vec<i32>> {
    let parse = |text: &str| -> Vec<i32> {
        text.split_ascii_whitespace().filter_map(|s| s.parse().ok()).collect()
    };
    if threads == 1 {
        return std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .ok()
            .map(|t| parse(&t));
    }
    let mut out = Vec::new();
    let mut any = false;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
        if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
            any = true;
            out.extend(parse(&text));
        }
    }
    any.then_some(out)
}

impl Snapshot {
    /// The daemon's descendants. The daemon adopts every orphan among them, so they are all
    /// in its subtree: walking it through the kernel's children lists costs the daemon's
    /// own processes, not every process on the machine. Without children lists (a kernel
    /// built without them), every process in `/proc`.
    fn take(daemon: i32) -> Snapshot {
        let mut procs = HashMap::new();
        let Some(mut queue) = children_of(daemon, 0) else { return Snapshot::take_all() };
        while let Some(pid) = queue.pop() {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
            let Some((comm, state, ppid, pgid, start, threads)) = parse_stat_threads(&stat) else {
                continue;
            };
            if state == 'Z' || state == 'X' {
                continue;
            }
            queue.extend(children_of(pid, threads).into_iter().flatten());
            procs.insert(pid, Entry { ppid, pgid, start, comm });
        }
        Snapshot { procs, markers: HashMap::new() }
    }

    fn take_all() -> Snapshot {
        let mut procs = HashMap::new();
        if let Ok(dir) = std::fs::read_dir("/proc") {
            for e in dir.flatten() {
                let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                    continue;
                };
                let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else { continue };
                if let Some((comm, state, ppid, pgid, start)) = parse_stat(&stat)
                    && state != 'Z'
                    && state != 'X'
                {
                    procs.insert(pid, Entry { ppid, pgid, start, comm });
                }
            }
        }
        Snapshot { procs, markers: HashMap::new() }
    }

    fn marker(&mut self, pid: i32) -> Option<&(String, String)> {
        self.markers
            .entry(pid)
            .or_insert_with(|| {
                let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
                let (mut name, mut group) = (None, None);
                for kv in env.split(|b| *b == 0) {
                    if let Some(v) = kv.strip_prefix(b"SUPERVISOR_PROCESS_NAME=") {
                        name = Some(String::from_utf8_lossy(v).into_owned());
                    } else if let Some(v) = kv.strip_prefix(b"SUPERVISOR_GROUP_NAME=") {
                        group = Some(String::from_utf8_lossy(v).into_owned());
                    }
                }
                Some((name?, group?))
            })
            .as_ref()
    }

    /// The descendants `q` asks for (not the child itself), parents before children.
    fn find(&mut self, q: &Query, daemon: i32) -> Vec<Member> {
        let alive = |s: &Snapshot, (pid, start): ProcKey| {
            s.procs.get(&pid).is_some_and(|e| e.start == start)
        };
        let mut roots: Vec<i32> = Vec::new();
        if let Some(c) = q.child.filter(|c| self.procs.contains_key(c)) {
            roots.push(c);
        }
        roots.extend(q.known.iter().filter(|k| alive(self, **k)).map(|k| k.0));
        let adopted: Vec<i32> = self
            .procs
            .iter()
            .filter(|(pid, e)| e.ppid == daemon && Some(**pid) != q.child)
            .map(|(pid, _)| *pid)
            .collect();
        for pid in adopted {
            if self.marker(pid).is_some_and(|(n, g)| *n == q.name && *g == q.group) {
                roots.push(pid);
            }
        }
        let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
        for (pid, e) in &self.procs {
            children.entry(e.ppid).or_default().push(*pid);
        }
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut queue: std::collections::VecDeque<i32> = roots.into_iter().collect();
        while let Some(pid) = queue.pop_front() {
            if pid == daemon || !seen.insert(pid) {
                continue;
            }
            let Some(e) = self.procs.get(&pid) else { continue };
            if q.exclude.contains(&(pid, e.start)) {
                continue;
            }
            if Some(pid) != q.child {
                out.push(Member { pid, start: e.start, pgid: e.pgid, comm: e.comm.clone() });
            }
            queue.extend(children.get(&pid).into_iter().flatten().copied());
        }
        out
    }
}

type Request = (Query, oneshot::Sender<Vec<Member>>);

/// The way to the scanner thread.
#[derive(Clone, Debug)]
pub struct Scanner {
    tx: mpsc::Sender<Request>,
}

impl Scanner {
    /// Starts the thread.
    pub fn start() -> std::io::Result<Scanner> {
        let (tx, rx) = mpsc::channel::<Request>();
        let daemon = std::process::id() as i32;
        std::thread::Builder::new().name("proctree".into()).spawn(move || {
            while let Ok(first) = rx.recv() {
                // Everything already waiting is answered from the same snapshot, taken
                // after each of those requests was made.
                let mut batch = vec![first];
                batch.extend(rx.try_iter());
                let mut snap = Snapshot::take(daemon);
                for (q, reply) in batch {
                    let _ = reply.send(snap.find(&q, daemon));
                }
            }
        })?;
        Ok(Scanner { tx })
    }

    /// Asks for `q`'s descendants; the receiver errs only if the thread is gone.
    pub fn scan(&self, q: Query) -> oneshot::Receiver<Vec<Member>> {
        let (reply, rx) = oneshot::channel();
        let _ = self.tx.send((q, reply));
        rx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(ppid: i32, start: u64) -> Entry {
        Entry { ppid, pgid: ppid, start, comm: format!("p{start}") }
    }

    fn snapshot(procs: &[(i32, i32, u64)], markers: &[(i32, &str, &str)]) -> Snapshot {
        Snapshot {
            procs: procs.iter().map(|&(pid, ppid, start)| (pid, entry(ppid, start))).collect(),
            markers: markers
                .iter()
                .map(|&(pid, n, g)| (pid, Some((n.to_string(), g.to_string()))))
                .collect(),
        }
    }

    fn query(child: Option<i32>) -> Query {
        Query {
            child,
            known: Vec::new(),
            name: "web".into(),
            group: "web".into(),
            exclude: Vec::new(),
        }
    }

    fn pids(mut m: Vec<Member>) -> Vec<i32> {
        m.sort_by_key(|m| m.pid);
        m.into_iter().map(|m| m.pid).collect()
    }

    #[test]
    fn children_grandchildren_and_marked_orphans() {
        // Daemon 1; child 10 with child 11 (and its 12); 20 is another program's child;
        // 30 was adopted from web (marker), with child 31; 40 adopted from another program.
        let mut s = snapshot(
            &[
                (10, 1, 100),
                (11, 10, 101),
                (12, 11, 102),
                (20, 1, 200),
                (30, 1, 300),
                (31, 30, 301),
                (40, 1, 400),
            ],
            &[(20, "db", "db"), (30, "web", "web"), (40, "db", "db")],
        );
        assert_eq!(pids(s.find(&query(Some(10)), 1)), [11, 12, 30, 31]);
        // After the child is reaped: the orphans still count, by marker or as known.
        let mut q = query(None);
        q.known = vec![(11, 101)];
        assert_eq!(pids(s.find(&q, 1)), [11, 12, 30, 31]);
    }

    #[test]
    fn recycled_pids_and_excluded_processes_are_not_taken() {
        let mut s = snapshot(&[(11, 5, 999), (30, 1, 300)], &[(30, "web", "web")]);
        let mut q = query(None);
        q.known = vec![(11, 101)];
        q.exclude = vec![(30, 300)];
        assert!(s.find(&q, 1).is_empty());
    }

    #[test]
    fn stat_parsing_survives_odd_command_names() {
        let stat =
            "1234 (a (b) c) S 77 1234 1234 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 5555 1000 100";
        assert_eq!(parse_stat(stat), Some(("a (b) c".to_string(), 'S', 77, 1234, 5555)));
        let me = std::fs::read_to_string("/proc/self/stat").unwrap();
        assert!(parse_stat(&me).is_some_and(|(_, _, ppid, _, start)| ppid > 0 && start > 0));
    }
}
