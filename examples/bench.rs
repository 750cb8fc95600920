//! The one benchmark of docs/performance.md: ours against Python supervisor 4.3.0 on the same
//! generated configurations, alternating (Python, ours, ours, Python, ...), printed as one
//! table of medians, min–max ranges and ratios.
//!
//! ```text
//! cargo run --release --example bench                  # everything (~15 minutes)
//! cargo run --release --example bench -- --quick       # fewer repeats, smaller sizes
//! cargo run --release --example bench -- --sections scale,chatty --sizes 100,1000 --reps 3
//! ```
//!
//! Sections: `scale` (per size: boot to RUNNING, RSS, `supervisorctl status`; at 1,000 the
//! fork/exec floor beside the boot), `idle` (CPU and wake-ups of the 1,000-program daemon
//! over 30 s), `chatty` (20 programs, 10,000 lines/s in total, 10 s), `bulk` (10 programs,
//! 50 MB in 100-byte writes as fast as they go), `roundtrip` (`stopProcess` then
//! `startProcess`, both `wait=true`), `events` (REMOTE_COMMUNICATION events to one
//! listener). Every output section checks that every byte reached the logs.
//!
//! It builds and measures the shipped static musl build (`bench_support::ours`) and installs
//! Python supervisor 4.3.0 into a venv under `target/` on first use. The writers and the
//! event listener are this same executable in `--writer`/`--listener` mode. It asserts
//! nothing about time.

#![allow(clippy::disallowed_methods)]

mod bench_support;

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bench_support::{
    Daemon, HEADER, Impl, context_switches, cpu_seconds, print_machine, status_value, xmlrpc,
};

/// Bytes per line, newline included.
const LINE_BYTES: usize = 100;

struct Opts {
    quick: bool,
    reps: usize,
    sizes: Vec<usize>,
    sections: Vec<String>,
    idle_secs: u64,
    chatty_secs: u64,
    bulk_bytes: u64,
}

/// One metric's samples per implementation; `floor` for the boot row.
#[derive(Default)]
struct Samples {
    unit: &'static str,
    python: Vec<f64>,
    ours: Vec<f64>,
    floor: Vec<f64>,
    notes: Vec<String>,
}

type Table = BTreeMap<(u32, String), Samples>;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("--writer") => return writer(&args[2..]),
        Some("--listener") => return listener(&args[2..]),
        _ => {}
    }
    let opts = parse(&args[1..])?;
    let ours = bench_support::ours()?;
    let Some(python) = bench_support::python() else { return Ok(()) };
    println!("ours: {}", ours.supervisord.display());
    print_machine();
    let load0 = loadavg();
    let mut table = Table::new();
    let want = |s: &str| opts.sections.iter().any(|x| x == s);
    // Alternate which daemon goes first from one repeat to the next.
    let order =
        |rep: usize| if rep.is_multiple_of(2) { [&python, &ours] } else { [&ours, &python] };
    if want("scale") || want("idle") {
        let mut trash = bench_support::Trash::default();
        for &n in &opts.sizes {
            for rep in 0..opts.reps {
                for imp in order(rep) {
                    scale(imp, n, rep, &opts, &mut table, &mut trash)?;
                }
                if n == 1000 && want("scale") {
                    let floor = fork_exec_floor(n)?;
                    entry(&mut table, 21, "boot to RUNNING, 1,000 programs", "s").floor.push(floor);
                }
            }
        }
    }
    for rep in 0..opts.reps {
        for imp in order(rep) {
            if want("chatty") {
                let secs = opts.chatty_secs;
                output(imp, &mut table, 60, "chatty", 20, 10_000 / 20, 10_000 / 20 * secs)?;
            }
            if want("bulk") {
                let lines = opts.bulk_bytes / LINE_BYTES as u64 / 10;
                output(imp, &mut table, 70, "bulk", 10, 0, lines)?;
            }
            if want("roundtrip") {
                roundtrip(imp, &mut table)?;
            }
            if want("events") {
                events(imp, &mut table, if opts.quick { 300 } else { 1000 })?;
            }
        }
    }
    print_table(&table, &opts, &load0);
    Ok(())
}

fn parse(args: &[String]) -> Result<Opts> {
    let all = ["scale", "idle", "chatty", "bulk", "roundtrip", "events"];
    let mut o = Opts {
        quick: false,
        reps: 3,
        sizes: vec![100, 1000, 3500],
        sections: all.iter().map(|s| s.to_string()).collect(),
        idle_secs: 30,
        chatty_secs: 10,
        bulk_bytes: 50_000_000,
    };
    let mut it = args.iter();
    let list = |v: Option<&String>| -> Vec<String> {
        v.map(|v| v.split(',').map(str::to_string).collect()).unwrap_or_default()
    };
    let usage = "usage: bench [--quick] [--reps N] [--sizes 100,1000,3500] \
                 [--sections scale,idle,chatty,bulk,roundtrip,events]";
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--quick" => {
                o.quick = true;
                o.reps = 1;
                o.sizes = vec![100, 1000];
                o.idle_secs = 5;
                o.chatty_secs = 3;
                o.bulk_bytes = 10_000_000;
            }
            "--reps" => {
                o.reps = it.next().and_then(|v| v.parse().ok()).filter(|v| *v > 0).context(usage)?
            }
            "--sizes" => {
                o.sizes = list(it.next()).iter().filter_map(|v| v.parse().ok()).collect();
            }
            "--sections" => {
                o.sections = list(it.next());
                if let Some(bad) = o.sections.iter().find(|s| !all.contains(&s.as_str())) {
                    bail!("unknown section {bad:?}; {usage}");
                }
            }
            _ => bail!("{usage}"),
        }
    }
    Ok(o)
}

fn entry<'a>(t: &'a mut Table, order: u32, name: &str, unit: &'static str) -> &'a mut Samples {
    let s = t.entry((order, name.to_string())).or_default();
    s.unit = unit;
    s
}

fn push(t: &mut Table, order: u32, name: &str, unit: &'static str, imp: &Impl, v: f64) {
    let s = entry(t, order, name, unit);
    if imp.label == "python" { s.python.push(v) } else { s.ours.push(v) }
}

fn fmt_n(n: usize) -> String {
    if n >= 1000 { format!("{},{:03}", n / 1000, n % 1000) } else { n.to_string() }
}

/// `n` `sleep` programs with AUTO logs and `startsecs=0`: boot time (daemon start to the
/// last `success:` line of its own log), RSS once all are RUNNING, `status` wall times,
/// and at 1,000 programs on the first repeat the idle window.
fn scale(
    imp: &Impl,
    n: usize,
    rep: usize,
    opts: &Opts,
    t: &mut Table,
    trash: &mut bench_support::Trash,
) -> Result<()> {
    eprintln!("{} {n} programs, repeat {} ...", imp.label, rep + 1);
    // Five descriptors a program (three pipe ends, two log files), and a margin.
    let minfds = (n * 5 + 500).max(1024);
    let mut conf =
        HEADER.replacen("[supervisord]\n", &format!("[supervisord]\nminfds={minfds}\n"), 1);
    conf.push_str("[supervisorctl]\nserverurl=unix://{dir}/sock\n\n");
    for i in 0..n {
        conf.push_str(&format!("[program:p{i:04}]\ncommand=sleep 100000\nstartsecs=0\n\n"));
    }
    let mut d = Daemon::start(imp, &conf)?;
    let deadline = Duration::from_secs(600);
    let boot = loop {
        d.check_alive()?;
        if d.main_log().matches("success: ").count() >= n {
            break d.started.elapsed();
        }
        if d.started.elapsed() > deadline {
            bail!("{}: not all {n} RUNNING in the log after {deadline:?}", imp.label);
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let want = |s: &str| opts.sections.iter().any(|x| x == s);
    let nn = fmt_n(n);
    if want("scale") {
        push(
            t,
            20 + n as u32 / 1000,
            &format!("boot to RUNNING, {nn} programs"),
            "s",
            imp,
            boot.as_secs_f64(),
        );
    }
    d.wait_running(n, deadline)?;
    for _ in 0..3 {
        d.states()?;
    }
    std::thread::sleep(Duration::from_millis(500));
    let pid = d.pid();
    if want("scale") {
        let rss = status_value(pid, "VmRSS").unwrap_or(0) as f64 / 1024.0;
        push(t, 30 + n as u32 / 1000, &format!("RSS, {nn} programs (AUTO logs)"), "MB", imp, rss);
        let ctl = ctl_for(imp, &d)?;
        let conf_path = d.path("supervisord.conf");
        // Wall time of a whole run, and the client's CPU (user + system of the waited-for
        // child): a client that spins while it waits shows in the second only.
        let status = || -> Result<(f64, f64, usize)> {
            let cpu0 = children_cpu();
            let t0 = Instant::now();
            let out = Command::new(&ctl).arg("-c").arg(&conf_path).arg("status").output()?;
            let wall = t0.elapsed().as_secs_f64();
            let running = String::from_utf8_lossy(&out.stdout).matches("RUNNING").count();
            Ok((wall, children_cpu() - cpu0, running))
        };
        let (_, _, running) = status()?;
        if running != n {
            bail!("{}: status shows {running} of {n} RUNNING", imp.label);
        }
        let runs = match (imp.label, n) {
            ("python", n) if n >= 3000 => 3,
            ("python", _) => 7,
            _ => 51,
        };
        for _ in 0..runs {
            let (secs, cpu, _) = status()?;
            let name = format!("`supervisorctl status`, {nn} programs");
            push(t, 10 + n as u32 / 1000, &name, "ms", imp, secs * 1000.0);
            let name = format!("client CPU per `status`, {nn} programs");
            push(t, 14 + n as u32 / 1000, &name, "ms", imp, cpu * 1000.0);
        }
    }
    if want("idle") && n == 1000 && rep == 0 {
        let secs = opts.idle_secs;
        std::thread::sleep(Duration::from_secs(1));
        let (v0, i0) = context_switches(pid);
        let c0 = cpu_seconds(pid)?;
        std::thread::sleep(Duration::from_secs(secs));
        let (v1, i1) = context_switches(pid);
        let cpu = cpu_seconds(pid)? - c0;
        push(t, 40, &format!("idle CPU over {secs} s, 1,000 programs"), "s", imp, cpu);
        let wakes = (v1 + i1).saturating_sub(v0 + i0) as f64;
        push(t, 41, &format!("idle wake-ups over {secs} s (context switches)"), "", imp, wakes);
    }
    d.check_alive()?;
    d.end_keeping_files(trash);
    Ok(())
}

/// User + system CPU of the waited-for children so far, in seconds.
fn children_cpu() -> f64 {
    // SAFETY: getrusage only writes the struct it is given; RUSAGE_CHILDREN is valid.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru);
        ru
    };
    let secs = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    secs(ru.ru_utime) + secs(ru.ru_stime)
}

/// The floor for a boot: the benchmark itself forks and execs the same `n` programs one
/// after the other (each `spawn` returns once the child has exec'd), then ends them.
fn fork_exec_floor(n: usize) -> Result<f64> {
    eprintln!("fork/exec floor, {n} programs ...");
    let t0 = Instant::now();
    let mut kids = Vec::with_capacity(n);
    for _ in 0..n {
        let c = Command::new("sleep")
            .arg("100000")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        kids.push(c);
    }
    let secs = t0.elapsed().as_secs_f64();
    for mut c in kids {
        let _ = c.kill();
        let _ = c.wait();
    }
    Ok(secs)
}

fn ctl_for(imp: &Impl, d: &Daemon) -> Result<PathBuf> {
    if imp.label == "python" {
        return Ok(imp.supervisord.with_file_name("supervisorctl"));
    }
    let link = d.path("supervisorctl");
    if !link.exists() {
        std::os::unix::fs::symlink(&imp.supervisord, &link).context("linking supervisorctl")?;
    }
    Ok(link)
}

/// `programs` writers of `lines` 100-byte lines each (`rate` lines/s each, 0 for as fast
/// as they go) into per-program stdout logs; the daemon's own CPU from "go" until every
/// byte is in the logs, which are then checked line by line.
#[allow(clippy::too_many_arguments)]
fn output(
    imp: &Impl,
    t: &mut Table,
    order: u32,
    kind: &str,
    programs: usize,
    rate: u64,
    lines: u64,
) -> Result<()> {
    eprintln!("{} {kind} output ...", imp.label);
    let exe = std::env::current_exe()?;
    let mut conf = HEADER.to_string();
    for i in 0..programs {
        conf.push_str(&format!(
            "[program:w{i:02}]\ncommand={} --writer {i} {lines} {rate} {{dir}}/go\n\
             stdout_logfile={{dir}}/w{i:02}.log\nstdout_logfile_maxbytes=0\n\
             stderr_logfile={{dir}}/w{i:02}.err\nautorestart=false\n\n",
            exe.display()
        ));
    }
    let mut d = Daemon::start(imp, &conf)?;
    d.wait_running(programs, Duration::from_secs(60))?;
    std::thread::sleep(Duration::from_secs(1));
    let pid = d.pid();
    let expected = lines * LINE_BYTES as u64 * programs as u64;
    let logs: Vec<_> = (0..programs).map(|i| d.path(&format!("w{i:02}.log"))).collect();
    let cpu0 = cpu_seconds(pid)?;
    fs::write(d.path("go"), "")?;
    let t0 = Instant::now();
    let deadline = Duration::from_secs(300);
    loop {
        d.check_alive()?;
        let bytes: u64 = logs.iter().map(|p| fs::metadata(p).map(|m| m.len()).unwrap_or(0)).sum();
        if bytes >= expected {
            break;
        }
        if t0.elapsed() > deadline {
            bail!("{} {kind}: only {bytes} of {expected} bytes after {deadline:?}", imp.label);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let cpu = cpu_seconds(pid)? - cpu0;
    let mut good = 0;
    for (i, p) in logs.iter().enumerate() {
        good += verify(p, i, lines)?;
    }
    let name = if rate > 0 {
        format!(
            "daemon CPU, chatty: {programs} programs, {} lines/s, {} s",
            rate * programs as u64,
            lines / rate
        )
    } else {
        format!(
            "daemon CPU, bulk: {programs} programs, {} MB in 100-byte writes",
            expected / 1_000_000
        )
    };
    push(t, order, &name, "s", imp, cpu);
    let s = entry(t, order, &name, "s");
    let note = format!("{}: {good} of {} lines intact", imp.label, lines * programs as u64);
    if good != lines * programs as u64 || !s.notes.iter().any(|n| n.starts_with(imp.label)) {
        s.notes.push(note);
    }
    Ok(())
}

/// Lines of program `id`'s log that are intact and in sequence; an error at the first
/// anomaly.
fn verify(path: &Path, id: usize, lines: u64) -> Result<u64> {
    let data = fs::read(path)?;
    let mut ok = 0;
    for (n, line) in data.split(|b| *b == b'\n').enumerate() {
        if n as u64 == lines && line.is_empty() {
            break;
        }
        if line.len() == LINE_BYTES - 1 && line.starts_with(&prefix(id, n as u64)) {
            ok += 1;
        } else {
            let shown = String::from_utf8_lossy(&line[..line.len().min(40)]).into_owned();
            bail!("{}: line {} is {shown:?}", path.display(), n + 1);
        }
    }
    Ok(ok)
}

fn prefix(id: usize, seq: u64) -> Vec<u8> {
    format!("w{id:02} {seq:07} ").into_bytes()
}

/// `stopProcess(p, wait=true)` then `startProcess(p, wait=true)` on a one-program daemon
/// (`startsecs=0`), each pair timed over one XML-RPC connection apiece.
fn roundtrip(imp: &Impl, t: &mut Table) -> Result<()> {
    eprintln!("{} start/stop round trip ...", imp.label);
    let conf = format!("{HEADER}[program:p]\ncommand=sleep 100000\nstartsecs=0\n\n");
    let mut d = Daemon::start(imp, &conf)?;
    d.wait_running(1, Duration::from_secs(60))?;
    let sock = d.sock();
    let name = "<param><value><string>p</string></value></param>\
                <param><value><boolean>1</boolean></value></param>";
    let runs = if imp.label == "python" { 5 } else { 20 };
    for _ in 0..runs {
        let t0 = Instant::now();
        xmlrpc(&sock, "supervisor.stopProcess", name)?;
        xmlrpc(&sock, "supervisor.startProcess", name)?;
        push(
            t,
            80,
            "`stop` + `start` round trip, wait=true",
            "ms",
            imp,
            t0.elapsed().as_secs_f64() * 1000.0,
        );
    }
    d.check_alive()
}

/// `n` `sendRemoteCommEvent` calls, then the time until one listener (buffer big enough to
/// hold them all) has acknowledged every event: events per second.
fn events(imp: &Impl, t: &mut Table, n: usize) -> Result<()> {
    eprintln!("{} events to one listener ...", imp.label);
    let exe = std::env::current_exe()?;
    let conf = format!(
        "{HEADER}[eventlistener:l]\ncommand={} --listener {{dir}}/got {n}\n\
         events=REMOTE_COMMUNICATION\nbuffer_size={}\n\n",
        exe.display(),
        n + 10
    );
    let mut d = Daemon::start(imp, &conf)?;
    d.wait_running(1, Duration::from_secs(60))?;
    let sock = d.sock();
    let got = d.path("got");
    let t0 = Instant::now();
    for i in 0..n {
        let p = format!(
            "<param><value><string>bench</string></value></param>\
             <param><value><string>event {i}</string></value></param>"
        );
        xmlrpc(&sock, "supervisor.sendRemoteCommEvent", &p)?;
    }
    let deadline = Duration::from_secs(120);
    while !got.exists() {
        d.check_alive()?;
        if t0.elapsed() > deadline {
            bail!("{}: the listener did not get {n} events in {deadline:?}", imp.label);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let rate = n as f64 / t0.elapsed().as_secs_f64();
    push(t, 90, &format!("events to one listener ({n} sent over RPC)"), "/s", imp, rate);
    d.check_alive()
}

/// `--listener FILE N`: the listener protocol; after N events writes FILE, then keeps
/// acknowledging.
fn listener(args: &[String]) -> Result<()> {
    let (Some(file), Some(n)) = (args.first(), args.get(1).and_then(|v| v.parse::<usize>().ok()))
    else {
        bail!("usage: --listener FILE N");
    };
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut out = std::io::stdout().lock();
    let mut count = 0;
    loop {
        out.write_all(b"READY\n")?;
        out.flush()?;
        let mut header = String::new();
        if input.read_line(&mut header)? == 0 {
            return Ok(());
        }
        let len = header
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix("len:"))
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        input.read_exact(&mut body)?;
        out.write_all(b"RESULT 2\nOK")?;
        out.flush()?;
        count += 1;
        if count == n {
            fs::write(file, "")?;
        }
    }
}

/// `--writer ID LINES RATE GOFILE`: waits for GOFILE, then writes LINES lines of
/// `LINE_BYTES` bytes, one write(2) each, RATE a second (0: as fast as it can), then idles.
fn writer(args: &[String]) -> Result<()> {
    let (Some(id), Some(lines), Some(rate), Some(go)) = (
        args.first().and_then(|v| v.parse::<usize>().ok()),
        args.get(1).and_then(|v| v.parse::<u64>().ok()),
        args.get(2).and_then(|v| v.parse::<u64>().ok()),
        args.get(3),
    ) else {
        bail!("usage: --writer ID LINES RATE GOFILE");
    };
    while !Path::new(go).exists() {
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut out = std::io::stdout().lock();
    let start = Instant::now();
    let mut line = Vec::with_capacity(LINE_BYTES);
    for seq in 0..lines {
        if rate > 0 {
            let due = start + Duration::from_secs_f64(seq as f64 / rate as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
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

fn loadavg() -> String {
    let load = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// Median and min–max of a sample.
fn stats(xs: &[f64]) -> Option<(f64, f64, f64)> {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    Some((*v.get(v.len() / 2)?, *v.first()?, *v.last()?))
}

fn fmt_val(v: f64, unit: &str) -> String {
    match unit {
        "ms" if v < 10.0 => format!("{v:.2}"),
        "ms" | "/s" | "" => format!("{v:.0}"),
        "MB" => format!("{v:.1}"),
        _ => format!("{v:.2}"),
    }
}

fn cell(xs: &[f64], unit: &str) -> String {
    match stats(xs) {
        None => "-".into(),
        Some((m, lo, hi)) if xs.len() == 1 || lo == hi => format!("{} {unit}", fmt_val(m, unit)),
        Some((m, lo, hi)) => {
            format!("{} {unit} ({}–{})", fmt_val(m, unit), fmt_val(lo, unit), fmt_val(hi, unit))
        }
    }
}

fn print_table(t: &Table, opts: &Opts, load0: &str) {
    println!(
        "\nload average before: {load0}, after: {}; {} repeat(s), alternating; median (min–max)\n",
        loadavg(),
        opts.reps
    );
    println!("| what | Python 4.3.0 | ours | Python/ours | fork/exec floor |");
    println!("| --- | --- | --- | --- | --- |");
    for ((_, name), s) in t {
        let unit = s.unit.trim_start_matches('/');
        let unit = if s.unit == "/s" { "events/s" } else { unit };
        let ratio = match (stats(&s.python), stats(&s.ours)) {
            (Some((p, ..)), Some((o, ..))) if s.unit == "/s" && p > 0.0 => format!("{:.1}x", o / p),
            (Some((p, ..)), Some((o, ..))) if o > 0.0 => format!("{:.1}x", p / o),
            _ => "-".into(),
        };
        let floor = match (stats(&s.floor), stats(&s.ours)) {
            (Some((f, ..)), Some((o, ..))) => {
                format!("{} (ours {:.2}x)", cell(&s.floor, unit), o / f)
            }
            _ => String::new(),
        };
        let mut name = name.clone();
        if !s.notes.is_empty() {
            name = format!("{name}; {}", s.notes.join(", "));
        }
        println!(
            "| {name} | {} | {} | {ratio} | {floor} |",
            cell(&s.python, unit),
            cell(&s.ours, unit)
        );
    }
    println!(
        "\nratios are Python's median over ours (for events/s, ours over Python's): above 1 is \
         ours better"
    );
}
