//! `supervisorctl status` latency, ours against Python supervisor 4.3.0 (docs/performance.md):
//! for 100 and 1,000 programs, each daemon runs the same config and its own supervisorctl
//! is executed repeatedly; the median wall time of a whole run (exec, connect, request,
//! print) is reported with the ratio. For ours it also reports `supervisorctl pid` (the
//! smallest call) and the client's CPU time (user + system) per run, since a client that
//! spins while it waits costs CPU that wall time does not show.
//!
//! Run: `cargo run --release --example bench_status [-- N...]`. It measures the shipped
//! artifact, the static musl build of README's release section (built first; the plain
//! release build, with a note, where that target is missing). `BENCH_OURS=<binary>` picks
//! another.
//! Needs python3 (a venv with supervisor==4.3.0 is created under target/ on first use);
//! `BENCH_NO_PYTHON=1` measures ours only.

// A benchmark measures wall time by definition; the clock rule is for the product's code.
#![allow(clippy::disallowed_methods)]

mod bench_support;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bench_support::{Daemon, HEADER, Impl, median, print_machine, ratio};

/// Runs per median: ours are ~1 ms each, Python's ~0.1–1 s.
const OUR_RUNS: usize = 201;
const PY_RUNS: usize = 21;

fn main() -> Result<()> {
    let sizes: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![100, 1000] } else { sizes };
    let ours = bench_support::ours()?;
    println!("ours: {}", ours.supervisord.display());
    print_machine();
    let python = match std::env::var_os("BENCH_NO_PYTHON") {
        Some(_) => None,
        None => Some(bench_support::python()),
    };
    let baseline =
        median((0..OUR_RUNS).map(|_| timed(&mut Command::new("/bin/true")).wall).collect());
    println!(
        "supervisorctl status, median wall time of a whole run (exec + connect + request + print)"
    );
    println!("baseline: exec of /bin/true takes {:.3} ms here", ms(baseline));
    println!(
        "{:>6}  {:>10}  {:>14}  {:>10}  {:>8}  {:>13}  {:>10}  {:>11}",
        "progs",
        "ours ms",
        "ours - exec ms",
        "python ms",
        "ratio",
        "ours cpu ms",
        "pid ms",
        "pid cpu ms"
    );
    for n in sizes {
        let o = measure(&ours, n, OUR_RUNS)?;
        let p = match &python {
            Some(Some(python)) => Some(measure(python, n, PY_RUNS)?),
            _ => None,
        };
        let (p_ms, r) = match p {
            Some(p) => (
                format!("{:.3}", ms(p.status.wall)),
                ratio(p.status.wall.as_secs_f64(), o.status.wall.as_secs_f64()),
            ),
            None => ("-".into(), "-".into()),
        };
        println!(
            "{n:>6}  {:>10.3}  {:>14.3}  {p_ms:>10}  {r:>8}  {:>13.3}  {:>10.3}  {:>11.3}",
            ms(o.status.wall),
            ms(o.status.wall.saturating_sub(baseline)),
            ms(o.status.cpu),
            ms(o.pid.wall),
            ms(o.pid.cpu),
        );
    }
    Ok(())
}

/// Medians of one command's runs.
struct Figures {
    wall: Duration,
    cpu: Duration,
}

struct Measured {
    status: Figures,
    pid: Figures,
}

/// Starts `imp` with `n` programs, waits for all of them to run, and returns the medians of
/// `runs` timed `supervisorctl status` and `supervisorctl pid` calls (after a few untimed
/// ones).
fn measure(imp: &Impl, n: usize, runs: usize) -> Result<Measured> {
    let mut conf = format!("{HEADER}[supervisorctl]\nserverurl=unix://{{dir}}/sock\n\n");
    for i in 0..n {
        conf.push_str(&format!(
            "[program:p{i:04}]\ncommand=sleep 100000\nstartsecs=0\n\
             stdout_logfile=NONE\nstderr_logfile=NONE\n"
        ));
    }
    let mut d = Daemon::start(imp, &conf)?;
    d.wait_running(n, Duration::from_secs(300))?;
    let ctl = ctl_for(imp, &d)?;
    let conf_path = d.path("supervisord.conf");
    let run = |what: &str| {
        let mut cmd = Command::new(&ctl);
        cmd.arg("-c").arg(&conf_path).arg(what);
        timed(&mut cmd)
    };
    for _ in 0..3 {
        let out = run("status").stdout;
        let running = String::from_utf8_lossy(&out).matches("RUNNING").count();
        anyhow::ensure!(running == n, "{}: status shows {running} of {n} RUNNING", imp.label);
    }
    let figures = |what: &str| {
        let runs: Vec<Run> = (0..runs).map(|_| run(what)).collect();
        Figures {
            wall: median(runs.iter().map(|r| r.wall).collect()),
            cpu: median(runs.iter().map(|r| r.cpu).collect()),
        }
    };
    Ok(Measured { status: figures("status"), pid: figures("pid") })
}

/// Python's supervisorctl from its venv; ours is a `supervisorctl` link to the binary.
fn ctl_for(imp: &Impl, d: &Daemon) -> Result<PathBuf> {
    if imp.label == "python" {
        return Ok(imp.supervisord.with_file_name("supervisorctl"));
    }
    let link = d.path("supervisorctl");
    std::os::unix::fs::symlink(&imp.supervisord, &link).context("linking supervisorctl")?;
    Ok(link)
}

/// One run to completion: its wall time, its CPU time and its stdout.
struct Run {
    wall: Duration,
    cpu: Duration,
    stdout: Vec<u8>,
}

/// Runs `cmd` to completion. Its CPU time is the growth of this process's
/// `RUSAGE_CHILDREN` (user + system of waited-for children), which only it adds to.
fn timed(cmd: &mut Command) -> Run {
    let before = children_cpu();
    let t = Instant::now();
    let stdout = cmd.output().map(|o| o.stdout).unwrap_or_default();
    let wall = t.elapsed();
    Run { wall, cpu: children_cpu().saturating_sub(before), stdout }
}

fn children_cpu() -> Duration {
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN);
    usage.map_or(Duration::ZERO, |u| {
        let tv = |t: nix::sys::time::TimeVal| {
            Duration::from_secs(t.tv_sec().max(0) as u64)
                + Duration::from_micros(t.tv_usec().max(0) as u64)
        };
        tv(u.user_time()) + tv(u.system_time())
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
