//! The output budget of docs/performance.md, "steady chatty output": 20 programs writing 10,000 lines/s in total, in
//! 100-byte writes, to per-program stdout logs. Measures the daemon's own CPU time (utime +
//! stime from /proc, children excluded) for Python supervisor 4.3.0 and for ours, one after
//! the other on the same config, and checks that every line reached the log files.
//!
//! ```text
//! cargo run --release --example bench_output [-- --seconds 10 --programs 20 --rate 10000]
//! cargo run --release --example bench_output -- --ours-only   # no Python, no ratio
//! ```
//!
//! The writers are this same executable in `--writer` mode, so nothing but the two daemons
//! is needed. Each waits for a "go" file, so daemon start-up is outside the measured
//! window, then writes its lines at a steady pace (each line one write(2) of 100 bytes),
//! then sleeps until it is stopped. The window ends when every byte is in the log files.
//! The target is at least 5x less CPU than Python's, with nothing lost; this prints the
//! ratio and never asserts on it.

#![allow(clippy::disallowed_methods)]

mod bench_support;

use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use bench_support::{Daemon, HEADER, Impl, cpu_seconds, print_machine, ratio};

/// Bytes per line, newline included (the budget's 100-byte writes).
const LINE_BYTES: usize = 100;

struct Opts {
    seconds: u64,
    programs: usize,
    /// Lines per second over all programs.
    rate: u64,
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--writer") {
        return writer(&args[2..]);
    }
    let mut opts = Opts { seconds: 10, programs: 20, rate: 10_000 };
    let mut ours_only = false;
    let mut it = args.iter().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--ours-only" {
            ours_only = true;
            continue;
        }
        let val = it.next().and_then(|v| v.parse::<u64>().ok());
        match (flag.as_str(), val) {
            ("--seconds", Some(v)) if v > 0 => opts.seconds = v,
            ("--programs", Some(v)) if v > 0 => opts.programs = v as usize,
            ("--rate", Some(v)) if v > 0 => opts.rate = v,
            _ => bail!(
                "usage: bench_output [--seconds N] [--programs N] [--rate LINES_PER_SEC] [--ours-only]"
            ),
        }
    }
    // `--ours-only` skips Python, for iterating on our daemon; there is no ratio then.
    let python = if ours_only { None } else { bench_support::python() };
    if python.is_none() && !ours_only {
        return Ok(());
    }
    let ours = bench_support::ours()?;
    let per_prog_rate = (opts.rate / opts.programs as u64).max(1);
    let lines_each = per_prog_rate * opts.seconds;
    print_machine();
    println!(
        "{} programs x {} lines/s x {} s = {} lines of {} bytes ({} lines/s in total)\n",
        opts.programs,
        per_prog_rate,
        opts.seconds,
        lines_each * opts.programs as u64,
        LINE_BYTES,
        per_prog_rate * opts.programs as u64
    );
    let py = match &python {
        Some(imp) => Some(measure(imp, &opts, per_prog_rate, lines_each)?),
        None => None,
    };
    let us = measure(&ours, &opts, per_prog_rate, lines_each)?;
    println!(
        "{:<8} {:>11} {:>8} {:>14} {:>6} {:>9} {:>13}",
        "daemon", "daemon CPU", "CPU %", "lines logged", "lost", "window", "CPU/100k lines"
    );
    for r in py.iter().chain([&us]) {
        println!(
            "{:<8} {:>9.2} s {:>7.1}% {:>14} {:>6} {:>7.2} s {:>11.3} s",
            r.label,
            r.cpu,
            100.0 * r.cpu / r.wall,
            r.logged,
            r.lost,
            r.wall,
            r.cpu * 100_000.0 / r.expected.max(1) as f64
        );
        for p in &r.problems {
            println!("         ! {p}");
        }
    }
    if let Some(py) = &py {
        println!("\ndaemon CPU, python/ours: {} (target: >= 5x)", ratio(py.cpu, us.cpu));
        println!("lines lost: python {}, ours {} (target: 0)", py.lost, us.lost);
    }
    Ok(())
}

/// One daemon's result.
struct Row {
    label: &'static str,
    cpu: f64,
    wall: f64,
    expected: u64,
    logged: u64,
    lost: u64,
    problems: Vec<String>,
}

fn measure(imp: &Impl, opts: &Opts, rate: u64, lines: u64) -> Result<Row> {
    eprintln!("running {} ...", imp.label);
    let exe = std::env::current_exe()?;
    let mut conf = HEADER.to_string();
    for i in 0..opts.programs {
        conf.push_str(&format!(
            "[program:w{i:02}]\ncommand={} --writer {i} {lines} {rate} {{dir}}/go\n\
             stdout_logfile={{dir}}/w{i:02}.log\nstdout_logfile_maxbytes=0\n\
             stderr_logfile={{dir}}/w{i:02}.err\nautorestart=false\n\n",
            exe.display()
        ));
    }
    let mut d = Daemon::start(imp, &conf)?;
    d.wait_running(opts.programs, Duration::from_secs(60))?;
    // Let start-up work (the RUNNING transitions, our own polling) settle before measuring.
    std::thread::sleep(Duration::from_secs(1));
    let pid = d.pid();
    let expected_bytes = lines * LINE_BYTES as u64 * opts.programs as u64;
    let logs: Vec<_> = (0..opts.programs).map(|i| d.path(&format!("w{i:02}.log"))).collect();
    let cpu0 = cpu_seconds(pid)?;
    fs::write(d.path("go"), "")?;
    let t0 = Instant::now();
    let deadline = Duration::from_secs(opts.seconds * 3 + 30);
    let mut problems = Vec::new();
    loop {
        d.check_alive()?;
        let bytes: u64 = logs.iter().map(|p| fs::metadata(p).map(|m| m.len()).unwrap_or(0)).sum();
        if bytes >= expected_bytes {
            break;
        }
        if t0.elapsed() > deadline {
            problems.push(format!("only {bytes} of {expected_bytes} bytes after {deadline:?}"));
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid)? - cpu0;
    let mut logged = 0;
    for (i, p) in logs.iter().enumerate() {
        let (ok, bad) = verify(p, i, lines);
        logged += ok;
        problems.extend(bad);
    }
    let expected = lines * opts.programs as u64;
    Ok(Row { label: imp.label, cpu, wall, expected, logged, lost: expected - logged, problems })
}

/// Counts the lines of program `id`'s log that are intact and in sequence; describes the
/// first anomaly.
fn verify(path: &Path, id: usize, lines: u64) -> (u64, Option<String>) {
    let data = fs::read(path).unwrap_or_default();
    let mut ok = 0;
    let mut problem = None;
    for (n, line) in data.split(|b| *b == b'\n').enumerate() {
        if n as u64 == lines && line.is_empty() {
            break; // the split after the final newline
        }
        if line.len() == LINE_BYTES - 1 && line.starts_with(&prefix(id, n as u64)) {
            ok += 1;
        } else if problem.is_none() {
            let shown = String::from_utf8_lossy(&line[..line.len().min(40)]).into_owned();
            problem = Some(format!("{}: line {} is {shown:?}", path.display(), n + 1));
        }
    }
    (ok.min(lines), problem)
}

fn prefix(id: usize, seq: u64) -> Vec<u8> {
    format!("w{id:02} {seq:07} ").into_bytes()
}

/// `--writer ID LINES RATE GOFILE`: wait for GOFILE, then write LINES lines of
/// `LINE_BYTES` bytes at RATE lines per second, one write(2) each, then idle.
fn writer(args: &[String]) -> Result<()> {
    let (Some(id), Some(lines), Some(rate), Some(go)) = (
        args.first().and_then(|v| v.parse::<usize>().ok()),
        args.get(1).and_then(|v| v.parse::<u64>().ok()),
        args.get(2).and_then(|v| v.parse::<u64>().ok()).filter(|r| *r > 0),
        args.get(3),
    ) else {
        bail!("usage: --writer ID LINES RATE GOFILE");
    };
    while !Path::new(go).exists() {
        std::thread::sleep(Duration::from_millis(10));
    }
    // LineWriter: a buffer that ends in a newline goes out in one write(2).
    let mut out = std::io::stdout().lock();
    let start = Instant::now();
    let mut line = Vec::with_capacity(LINE_BYTES);
    for seq in 0..lines {
        // Absolute deadlines: a late wake-up is caught up, not accumulated.
        let due = start + Duration::from_secs_f64(seq as f64 / rate as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        line.clear();
        line.extend_from_slice(&prefix(id, seq));
        line.resize(LINE_BYTES - 1, b'x');
        line.push(b'\n');
        out.write_all(&line)?;
        out.flush()?;
    }
    drop(out);
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
