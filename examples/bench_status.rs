//! `supervisorctl status` latency, ours against Python supervisor 4.3.0 (docs/performance.md):
//! for 100 and 1,000 programs, each daemon runs the same config and its own supervisorctl
//! is executed repeatedly; the median wall time of a whole run (exec, connect, request,
//! print) is reported with the ratio.
//!
//! Run: `cargo run --release --example bench_status [-- N...]`. It measures the shipped
//! artifact, the static musl build of README's release section (built first; the plain
//! release build, with a note, where that target is missing). `BENCH_OURS=<binary>` picks
//! another.
//! Needs python3 (a venv with supervisor==4.3.0 is created under target/ on first use).

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
    let Some(python) = bench_support::python() else { return Ok(()) };
    let baseline = median((0..OUR_RUNS).map(|_| timed(&mut Command::new("/bin/true")).0).collect());
    println!(
        "supervisorctl status, median wall time of a whole run (exec + connect + request + print)"
    );
    println!("baseline: exec of /bin/true takes {:.3} ms here", ms(baseline));
    println!(
        "{:>6}  {:>10}  {:>14}  {:>10}  {:>8}",
        "progs", "ours ms", "ours - exec ms", "python ms", "ratio"
    );
    for n in sizes {
        let o = measure(&ours, n, OUR_RUNS)?;
        let p = measure(&python, n, PY_RUNS)?;
        println!(
            "{n:>6}  {:>10.3}  {:>14.3}  {:>10.3}  {:>8}",
            ms(o),
            ms(o.saturating_sub(baseline)),
            ms(p),
            ratio(p.as_secs_f64(), o.as_secs_f64())
        );
    }
    Ok(())
}

/// Starts `imp` with `n` programs, waits for all of them to run, and returns the median of
/// `runs` timed `supervisorctl status` calls (after a few untimed ones).
fn measure(imp: &Impl, n: usize, runs: usize) -> Result<Duration> {
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
    let status = || {
        let mut cmd = Command::new(&ctl);
        cmd.arg("-c").arg(&conf_path).arg("status");
        timed(&mut cmd)
    };
    for _ in 0..3 {
        let (_, out) = status();
        let running = String::from_utf8_lossy(&out).matches("RUNNING").count();
        anyhow::ensure!(running == n, "{}: status shows {running} of {n} RUNNING", imp.label);
    }
    Ok(median((0..runs).map(|_| status().0).collect()))
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

/// Wall time of one run to completion, with its stdout.
fn timed(cmd: &mut Command) -> (Duration, Vec<u8>) {
    let t = Instant::now();
    let out = cmd.output().map(|o| o.stdout).unwrap_or_default();
    (t.elapsed(), out)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
