//! What a `/metrics` scrape costs with 100 (and 1,000) running programs: the median wall
//! time of one `GET /metrics` on a kept-alive connection to the unix socket (orchestrator
//! snapshot, a `/proc/<pid>/stat` read per running process, encoding, transfer), and the
//! daemon CPU time per scrape.
//!
//! Run: `cargo run --release --example bench_metrics [-- N...]` (builds and measures the
//! shipped static build, as the other benchmarks do).

// A benchmark measures wall time by definition; the clock rule is for the product's code.
#![allow(clippy::disallowed_methods)]

mod bench_support;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bench_support::{Daemon, HEADER, cpu_seconds, median, print_machine};

const RUNS: usize = 301;

fn main() -> Result<()> {
    let sizes: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![100, 1000] } else { sizes };
    let ours = bench_support::ours()?;
    println!("ours: {}", ours.supervisord.display());
    print_machine();
    println!(
        "{:>6}  {:>16}  {:>18}  {:>10}",
        "progs", "median scrape ms", "daemon CPU ms/scrape", "bytes"
    );
    for n in sizes {
        let mut conf = HEADER.to_string();
        for i in 0..n {
            conf.push_str(&format!(
                "[program:p{i:04}]\ncommand=sleep 100000\nstartsecs=0\n\
                 stdout_logfile=NONE\nstderr_logfile=NONE\n"
            ));
        }
        let mut d = Daemon::start(&ours, &conf)?;
        d.wait_running(n, Duration::from_secs(300))?;
        let mut conn = UnixStream::connect(d.sock()).context("connect")?;
        for _ in 0..5 {
            scrape(&mut conn)?;
        }
        let cpu_before = cpu_seconds(d.pid())?;
        let mut times = Vec::with_capacity(RUNS);
        let mut size = 0;
        for _ in 0..RUNS {
            let t = Instant::now();
            size = scrape(&mut conn)?;
            times.push(t.elapsed());
        }
        let cpu = (cpu_seconds(d.pid())? - cpu_before) / RUNS as f64;
        let med = median(times);
        println!("{n:>6}  {:>16.3}  {:>18.3}  {size:>10}", med.as_secs_f64() * 1e3, cpu * 1e3);
    }
    Ok(())
}

/// One `GET /metrics` on `conn`; returns the body's length.
fn scrape(conn: &mut UnixStream) -> Result<usize> {
    conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")?;
    let mut buf = Vec::with_capacity(256 * 1024);
    let mut chunk = [0u8; 65536];
    loop {
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            bail!("connection closed");
        }
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .context("no content-length")?;
        if buf.len() >= end + 4 + len {
            if !head.starts_with("http/1.1 200") {
                bail!("scrape failed: {head}");
            }
            return Ok(len);
        }
    }
}
