//! What the parts of a `/metrics` scrape cost, measured apart (a micro-benchmark): the
//! ways to read a process's CPU time and resident memory from the kernel, for 100 (or N)
//! child processes, and encoding with `prometheus-client` from a per-scrape collector
//! versus a registry kept between scrapes and updated in place. CPU time of this thread
//! (`CLOCK_THREAD_CPUTIME_ID`, kernel time included), not wall time: the machine may be
//! shared. Methods are interleaved round by round so load hits them alike.
//!
//! Run: `cargo run --release --example bench_scrape_parts [-- N]`.

// A benchmark starts and kills its own children; the rules are for the product's code.
#![allow(clippy::disallowed_methods)]

use std::fmt::Write as _;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use supervisord::logio::pump::OutputCounters;
use supervisord::orchestrator::{DaemonState, ProcSample, ProcessInfo, Snapshot};
use supervisord::procsup::ProcessState;
use supervisord::rpc::metrics::{Scrape, render};
use supervisord::sys::procfs::{SelfUsage, Usage};

const ROUNDS: usize = 300;

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn cpath(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// open + read + close of a path relative to `dir` (`AT_FDCWD` for absolute paths).
fn read_at(dir: i32, path: &[u8], buf: &mut [u8]) -> usize {
    // SAFETY: `path` is NUL-terminated.
    let fd = unsafe { libc::openat(dir, path.as_ptr().cast(), libc::O_RDONLY | libc::O_CLOEXEC) };
    assert!(fd >= 0, "open {:?}", String::from_utf8_lossy(path));
    // SAFETY: `buf` is valid for its length; `fd` was just opened.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    // SAFETY: `fd` is ours.
    unsafe { libc::close(fd) };
    n as usize
}

fn pread(fd: i32, buf: &mut [u8]) -> usize {
    // SAFETY: `buf` is valid for its length.
    (unsafe { libc::pread(fd, buf.as_mut_ptr().cast(), buf.len(), 0) }) as usize
}

fn process_cpu_ns(pid: i32) -> u64 {
    let mut id: libc::clockid_t = 0;
    // SAFETY: `id` is a valid out-pointer.
    unsafe { libc::clock_getcpuclockid(pid, &mut id) };
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid out-pointer.
    unsafe { libc::clock_gettime(id, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The kernel's process CPU clock id, built as `clock_getcpuclockid` does, without its
/// validating `clock_getres`.
fn process_cpu_ns_direct(pid: i32) -> u64 {
    let id = ((!pid) << 3) | 2;
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid out-pointer.
    unsafe { libc::clock_gettime(id, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn sample_proc(i: usize) -> ProcSample {
    ProcSample {
        info: ProcessInfo {
            name: format!("p{i:04}"),
            group: format!("p{i:04}"),
            start: 1_700_000_000,
            stop: 0,
            now: 1_700_000_100,
            state: ProcessState::Running,
            spawnerr: String::new(),
            exitstatus: 0,
            stdout_logfile: String::new(),
            stderr_logfile: String::new(),
            pid: 1000 + i as i64,
            description: String::new(),
            last_exit: None,
            lifecycle: None,
        },
        autostart: true,
        has_health_check: false,
        completed: false,
        stats: Default::default(),
        backoff_seconds: 0.5,
        output: Default::default(),
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct L {
    name: String,
    group: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LC {
    name: String,
    group: String,
    cause: &'static str,
}

/// The per-process series of one process in a kept registry, updated in place.
struct Kept {
    gauges: Vec<Gauge<f64, std::sync::atomic::AtomicU64>>,
    counters: Vec<Counter<f64, std::sync::atomic::AtomicU64>>,
}

fn kept_registry(n: usize) -> (Registry, Vec<Kept>) {
    let mut reg = Registry::default();
    let mut gfam = Vec::new();
    for name in ["node_supervisord_up", "node_supervisord_state", "node_supervisord_exit_status"]
        .into_iter()
        .chain(["node_supervisord_start_time_seconds", "supervisord_process_resident_memory_bytes"])
    {
        let f = Family::<L, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        reg.register(name, "help text of about this length", f.clone());
        gfam.push(f);
    }
    let mut cfam = Vec::new();
    for name in [
        "supervisord_process_fatal_transitions",
        "supervisord_process_backoff_seconds",
        "supervisord_process_cpu_seconds",
    ] {
        let f = Family::<L, Counter<f64, std::sync::atomic::AtomicU64>>::default();
        reg.register(name, "help text of about this length", f.clone());
        cfam.push(f);
    }
    let mut causes = Vec::new();
    for (name, labels) in [
        ("supervisord_process_restarts", &["exited", "backoff", "autorecovery", "request"][..]),
        (
            "supervisord_process_exits",
            &["expected", "unexpected", "early", "stopped", "spawn_error"][..],
        ),
        ("supervisord_process_output_bytes", &["stdout", "stderr"][..]),
        ("supervisord_process_output_dropped_bytes", &["stdout", "stderr"][..]),
    ] {
        let f = Family::<LC, Counter<f64, std::sync::atomic::AtomicU64>>::default();
        reg.register(name, "help text of about this length", f.clone());
        causes.push((f, labels));
    }
    let kept = (0..n)
        .map(|i| {
            let l = L { name: format!("p{i:04}"), group: format!("p{i:04}") };
            let gauges = gfam.iter().map(|f| f.get_or_create(&l).clone()).collect();
            let mut counters: Vec<_> = cfam.iter().map(|f| f.get_or_create(&l).clone()).collect();
            for (f, labels) in &causes {
                for c in labels.iter() {
                    let lc = LC { name: l.name.clone(), group: l.group.clone(), cause: c };
                    counters.push(f.get_or_create(&lc).clone());
                }
            }
            Kept { gauges, counters }
        })
        .collect();
    (reg, kept)
}

struct Timer {
    name: &'static str,
    total: u64,
    samples: Vec<u64>,
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100);
    let mut children: Vec<Child> = (0..n)
        .map(|_| {
            Command::new("sleep").arg("100000").stdin(Stdio::null()).spawn().expect("spawn sleep")
        })
        .collect();
    let pids: Vec<i32> = children.iter().map(|c| c.id() as i32).collect();
    let stat_paths: Vec<Vec<u8>> = pids.iter().map(|p| cpath(&format!("/proc/{p}/stat"))).collect();
    let rel_stat: Vec<Vec<u8>> = pids.iter().map(|p| cpath(&format!("{p}/stat"))).collect();
    let rel_statm: Vec<Vec<u8>> = pids.iter().map(|p| cpath(&format!("{p}/statm"))).collect();
    let statm_paths: Vec<Vec<u8>> =
        pids.iter().map(|p| cpath(&format!("/proc/{p}/statm"))).collect();
    let sched_paths: Vec<Vec<u8>> =
        pids.iter().map(|p| cpath(&format!("/proc/{p}/schedstat"))).collect();
    let open = |p: &Vec<u8>| {
        // SAFETY: NUL-terminated path.
        let fd = unsafe { libc::open(p.as_ptr().cast(), libc::O_RDONLY | libc::O_CLOEXEC) };
        assert!(fd >= 0);
        // SAFETY: just opened, owned by nothing else.
        unsafe { OwnedFd::from_raw_fd(fd) }
    };
    let kept_fds: Vec<OwnedFd> = stat_paths.iter().map(open).collect();
    let kept_statm: Vec<OwnedFd> = statm_paths.iter().map(open).collect();
    let proc_dir = open(&cpath("/proc"));
    let upids: Vec<Option<u32>> = pids.iter().map(|&p| Some(p as u32)).collect();
    let dir = proc_dir.as_raw_fd();

    let mut snap_procs: Vec<ProcSample> = (0..n).map(sample_proc).collect();
    for p in &mut snap_procs {
        p.output = [Arc::new(OutputCounters::default()), Arc::new(OutputCounters::default())];
    }
    let snapshot = Snapshot {
        state: DaemonState::Running,
        procs: snap_procs,
        pool_overflows: vec![],
        autorecovery: true,
    };
    let usage: Vec<Option<Usage>> =
        (0..n).map(|_| Some(Usage { cpu_seconds: 1.25, resident_bytes: 4096 * 300 })).collect();
    let (registry, kept) = kept_registry(n);

    let mut buf = [0u8; 1024];
    let mut sink = 0usize;
    type Method<'a> = Box<dyn FnMut(&mut [u8]) -> usize + 'a>;
    let mut methods: Vec<(&'static str, Method)> = vec![
        (
            "stat: open+read+close /proc/<pid>/stat",
            Box::new(|b| stat_paths.iter().map(|p| read_at(libc::AT_FDCWD, p, b)).sum()),
        ),
        (
            "stat: pread on a kept-open fd",
            Box::new(|b| kept_fds.iter().map(|f| pread(f.as_raw_fd(), b)).sum()),
        ),
        (
            "stat: openat(/proc dirfd, <pid>/stat)",
            Box::new(|b| rel_stat.iter().map(|p| read_at(dir, p, b)).sum()),
        ),
        (
            "statm: open+read+close",
            Box::new(|b| statm_paths.iter().map(|p| read_at(libc::AT_FDCWD, p, b)).sum()),
        ),
        (
            "statm: openat(/proc dirfd, <pid>/statm)",
            Box::new(|b| rel_statm.iter().map(|p| read_at(dir, p, b)).sum()),
        ),
        (
            "statm: pread on a kept-open fd",
            Box::new(|b| kept_statm.iter().map(|f| pread(f.as_raw_fd(), b)).sum()),
        ),
        (
            "schedstat: open+read+close",
            Box::new(|b| sched_paths.iter().map(|p| read_at(libc::AT_FDCWD, p, b)).sum()),
        ),
        (
            "cpu clock: clock_getcpuclockid+clock_gettime",
            Box::new(|_| pids.iter().map(|&p| process_cpu_ns(p) as usize).sum()),
        ),
        (
            "cpu clock: clock_gettime only",
            Box::new(|_| pids.iter().map(|&p| process_cpu_ns_direct(p) as usize).sum()),
        ),
        (
            "procfs::usage_of (what a scrape reads)",
            Box::new(|_| supervisord::sys::procfs::usage_of(&upids).len()),
        ),
        (
            "statm (dirfd) + cpu clock (candidate)",
            Box::new(|b| {
                pids.iter()
                    .zip(&rel_statm)
                    .map(|(&p, m)| read_at(dir, m, b) + process_cpu_ns_direct(p) as usize)
                    .sum()
            }),
        ),
        (
            "encode: collector over a snapshot (today)",
            Box::new(|_| {
                render(Scrape {
                    snapshot: snapshot.clone(),
                    usage: usage.clone(),
                    daemon: SelfUsage {
                        usage: None,
                        start_time: None,
                        open_fds: Some(12),
                        max_fds: Some(1024),
                    },
                    now: 1.7e9,
                })
                .len()
            }),
        ),
        (
            "encode: snapshot clone only",
            Box::new(|_| snapshot.clone().procs.len() + usage.clone().len()),
        ),
        (
            "encode: kept registry, set + encode",
            Box::new(|_| {
                for (i, k) in kept.iter().enumerate() {
                    for g in &k.gauges {
                        g.set(i as f64);
                    }
                    for c in &k.counters {
                        c.inc_by(1.0);
                    }
                }
                let mut out = String::with_capacity(4096 + 1800 * n);
                prometheus_client::encoding::prometheus_text::encode(&mut out, &registry).ok();
                out.len()
            }),
        ),
    ];
    let mut timers: Vec<Timer> =
        methods.iter().map(|(name, _)| Timer { name, total: 0, samples: vec![] }).collect();
    for round in 0..ROUNDS + 10 {
        for ((_, m), t) in methods.iter_mut().zip(&mut timers) {
            let t0 = thread_cpu_ns();
            sink += m(&mut buf);
            let dt = thread_cpu_ns() - t0;
            if round >= 10 {
                t.total += dt;
                t.samples.push(dt);
            }
        }
    }
    for c in &mut children {
        c.kill().ok();
        c.wait().ok();
    }
    let mut report = String::new();
    writeln!(report, "{n} processes, {ROUNDS} rounds; CPU µs per round (all {n} processes)").ok();
    writeln!(report, "{:<48} {:>10} {:>10}", "method", "median", "mean").ok();
    for t in &mut timers {
        t.samples.sort_unstable();
        let med = t.samples[t.samples.len() / 2] as f64 / 1e3;
        let mean = t.total as f64 / ROUNDS as f64 / 1e3;
        writeln!(report, "{:<48} {med:>10.1} {mean:>10.1}", t.name).ok();
    }
    print!("{report}");
    std::hint::black_box(sink);
}
