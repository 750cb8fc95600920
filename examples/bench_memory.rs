//! The memory budget of docs/performance.md, "daemon memory with 100 programs" (target: under a third of Python's
//! RSS) and "idle daemon: no timer wakeups" (target: none beyond configured TICK events or
//! pending startsecs/backoff/stop timers).
//!
//! ```text
//! cargo run --release --example bench_memory [-- --programs 100 --idle-seconds 5]
//! ```
//!
//! Each daemon runs `--programs` `sleep` programs with default settings (AUTO stdout and
//! stderr logs). Once all are RUNNING and a few `getAllProcessInfo` calls have been
//! answered, it reads VmRSS/VmHWM from /proc/<pid>/status. Then nothing is asked of the
//! daemon for `--idle-seconds`, and the context switches of all its threads (voluntary and
//! involuntary, from /proc/<pid>/task/*/status) and its CPU ticks over that window are the
//! idle cost. No listener is configured, so no TICK event needs a timer.

#![allow(clippy::disallowed_methods)]

mod bench_support;

use std::time::Duration;

use anyhow::{Result, bail};
use bench_support::{
    Daemon, HEADER, Impl, context_switches, cpu_seconds, print_machine, ratio, status_value,
    threads,
};

fn main() -> Result<()> {
    let mut programs = 100usize;
    let mut idle = 5u64;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let val = it.next().and_then(|v| v.parse::<u64>().ok()).filter(|v| *v > 0);
        match (flag.as_str(), val) {
            ("--programs", Some(v)) => programs = v as usize,
            ("--idle-seconds", Some(v)) => idle = v,
            _ => bail!("usage: bench_memory [--programs N] [--idle-seconds N]"),
        }
    }
    let Some(python) = bench_support::python() else { return Ok(()) };
    let ours = bench_support::ours()?;
    print_machine();
    println!("{programs} programs `sleep 100000`, idle window {idle} s\n");
    let py = measure(&python, programs, idle)?;
    let us = measure(&ours, programs, idle)?;
    println!(
        "{:<8} {:>10} {:>10} {:>8} {:>16} {:>16} {:>10}",
        "daemon", "VmRSS", "VmHWM", "threads", "idle vol. ctxsw", "idle invol. ctxsw", "idle CPU"
    );
    for r in [&py, &us] {
        println!(
            "{:<8} {:>7} kB {:>7} kB {:>8} {:>16} {:>16} {:>8.2} s",
            r.label, r.rss_kb, r.hwm_kb, r.threads, r.idle_vol, r.idle_invol, r.idle_cpu
        );
    }
    println!("\nRSS, python/ours: {} (target: > 3x)", ratio(py.rss_kb as f64, us.rss_kb as f64));
    println!(
        "idle wake-ups in {idle} s (voluntary context switches, all threads): python {}, ours {} \
         (target: ours 0)",
        py.idle_vol, us.idle_vol
    );
    Ok(())
}

struct Row {
    label: &'static str,
    rss_kb: u64,
    hwm_kb: u64,
    threads: usize,
    idle_vol: u64,
    idle_invol: u64,
    idle_cpu: f64,
}

fn measure(imp: &Impl, programs: usize, idle: u64) -> Result<Row> {
    eprintln!("running {} ...", imp.label);
    let mut conf = HEADER.to_string();
    for i in 0..programs {
        conf.push_str(&format!("[program:p{i:03}]\ncommand=sleep 100000\n\n"));
    }
    let mut d = Daemon::start(imp, &conf)?;
    d.wait_running(programs, Duration::from_secs(60))?;
    for _ in 0..5 {
        d.states()?;
    }
    // Let the last RPC connections close and any start-up buffers settle.
    std::thread::sleep(Duration::from_secs(1));
    let pid = d.pid();
    let rss_kb = status_value(pid, "VmRSS").unwrap_or(0);
    let hwm_kb = status_value(pid, "VmHWM").unwrap_or(0);
    let (v0, i0) = context_switches(pid);
    let cpu0 = cpu_seconds(pid)?;
    std::thread::sleep(Duration::from_secs(idle));
    let (v1, i1) = context_switches(pid);
    let idle_cpu = cpu_seconds(pid)? - cpu0;
    d.check_alive()?;
    Ok(Row {
        label: imp.label,
        rss_kb,
        hwm_kb,
        threads: threads(pid),
        idle_vol: v1.saturating_sub(v0),
        idle_invol: i1.saturating_sub(i0),
        idle_cpu,
    })
}
