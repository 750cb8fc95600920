//! The boot budget of docs/performance.md: 1,000 programs to all RUNNING, and `status` on
//! the full table.
//!
//! ```text
//! cargo run --release --example bench_startup [-- --programs 1000 --startsecs 0]
//! ```
//!
//! Each daemon is started on `--programs` `sleep` programs (AUTO logs, `startsecs` as
//! given; with the default 0 the time is all spawning and bookkeeping, with 1 it includes
//! the startsecs wait, which both daemons must sit out). Two start-up times are taken from
//! the daemon's fork: when its main log holds the last `success: ... entered RUNNING`
//! line (read from the file, so measuring costs the daemon nothing), and when an XML-RPC
//! `getAllProcessInfo` first shows every process RUNNING (polled every 50 ms, over `/RPC2`
//! for both daemons, so the transport is the same). Then the median latency of
//! `getAllProcessInfo` on the full table, the RPC behind `supervisorctl status`.

#![allow(clippy::disallowed_methods)]

mod bench_support;

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use bench_support::{Daemon, HEADER, Impl, median, ms, print_machine, ratio};

/// `getAllProcessInfo` calls per latency sample.
const STATUS_CALLS: usize = 21;

fn main() -> Result<()> {
    let mut programs = 1000usize;
    let mut startsecs = 0u64;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let val = it.next().and_then(|v| v.parse::<u64>().ok());
        match (flag.as_str(), val) {
            ("--programs", Some(v)) if v > 0 => programs = v as usize,
            ("--startsecs", Some(v)) => startsecs = v,
            _ => bail!("usage: bench_startup [--programs N] [--startsecs N]"),
        }
    }
    let Some(python) = bench_support::python() else { return Ok(()) };
    let ours = bench_support::ours()?;
    print_machine();
    println!("{programs} programs `sleep 100000`, startsecs={startsecs}\n");
    let py = measure(&python, programs, startsecs)?;
    let us = measure(&ours, programs, startsecs)?;
    println!(
        "{:<8} {:>20} {:>22} {:>26}",
        "daemon", "last RUNNING logged", "RPC shows all RUNNING", "getAllProcessInfo median"
    );
    for r in [&py, &us] {
        println!("{:<8} {:>20} {:>22} {:>26}", r.label, ms(r.logged), ms(r.rpc), ms(r.status));
    }
    let secs = |d: Duration| d.as_secs_f64();
    println!("\nall RUNNING (log), python/ours: {}", ratio(secs(py.logged), secs(us.logged)));
    println!("all RUNNING (RPC), python/ours: {}", ratio(secs(py.rpc), secs(us.rpc)));
    println!(
        "status (getAllProcessInfo), python/ours: {} (target for both: >= 10x)",
        ratio(secs(py.status), secs(us.status))
    );
    Ok(())
}

struct Row {
    label: &'static str,
    logged: Duration,
    rpc: Duration,
    status: Duration,
}

fn measure(imp: &Impl, programs: usize, startsecs: u64) -> Result<Row> {
    eprintln!("running {} ...", imp.label);
    // Each process holds pipes and two AUTO log files in the daemon: more than the default
    // 1024 descriptors.
    let mut conf = HEADER.replacen("[supervisord]\n", "[supervisord]\nminfds=8192\n", 1);
    for i in 0..programs {
        conf.push_str(&format!(
            "[program:p{i:04}]\ncommand=sleep 100000\nstartsecs={startsecs}\n\n"
        ));
    }
    let mut d = Daemon::start(imp, &conf)?;
    let deadline = Duration::from_secs(300);
    let logged = loop {
        d.check_alive()?;
        if d.main_log().matches("entered RUNNING state").count() >= programs {
            break d.started.elapsed();
        }
        if d.started.elapsed() > deadline {
            bail!("{}: not all RUNNING in the log after {deadline:?}", imp.label);
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let rpc = d.wait_running(programs, deadline)?;
    let mut samples = Vec::with_capacity(STATUS_CALLS);
    for _ in 0..STATUS_CALLS {
        let t = Instant::now();
        let states = d.states()?;
        samples.push(t.elapsed());
        if states.len() != programs {
            bail!("{}: getAllProcessInfo returned {} entries", imp.label, states.len());
        }
    }
    Ok(Row { label: imp.label, logged, rpc, status: median(samples) })
}
