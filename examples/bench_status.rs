//! `supervisorctl status` latency, ours against Python supervisor 4.3.0 (SPEC section 10):
//! for 100 and 1,000 programs, each daemon runs the same config and its own supervisorctl
//! is executed repeatedly; the median wall time of a whole run (exec, connect, request,
//! print) is reported with the ratio.
//!
//! Run: `cargo build --release && cargo run --release --example bench_status [N...]`
//! (it uses the static build of README's release section when that exists).
//! Needs python3 (a venv with supervisor==4.3.0 is created under target/ on first use).

// A benchmark measures wall time by definition; the clock rule is for the product's code.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 30;

fn target_dir() -> PathBuf {
    // target/release/examples/bench_status → target/
    let exe = std::env::current_exe().unwrap_or_default();
    exe.ancestors().nth(3).map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("target"))
}

fn pyref() -> Option<PathBuf> {
    let dir = target_dir().join("tmp").join("pyref");
    if dir.join(".installed-4.3.0").exists() {
        return Some(dir);
    }
    let ok =
        Command::new("python3").args(["-m", "venv"]).arg(&dir).status().is_ok_and(|s| s.success())
            && Command::new(dir.join("bin/pip"))
                .args(["install", "-q", "supervisor==4.3.0"])
                .status()
                .is_ok_and(|s| s.success());
    if ok {
        let _ = std::fs::write(dir.join(".installed-4.3.0"), "");
        Some(dir)
    } else {
        None
    }
}

fn config(dir: &Path, n: usize) -> PathBuf {
    let d = dir.display();
    let mut text = format!(
        "[supervisord]\nlogfile={d}/main.log\npidfile={d}/sd.pid\nchildlogdir={d}\nminfds=4096\n\
[unix_http_server]\nfile={d}/sock\n[rpcinterface:supervisor]\n\
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\
[supervisorctl]\nserverurl=unix://{d}/sock\n"
    );
    for i in 0..n {
        text.push_str(&format!(
            "[program:p{i:04}]\ncommand=sleep 100000\nstartsecs=0\nstdout_logfile=NONE\nstderr_logfile=NONE\n"
        ));
    }
    let path = dir.join("supervisord.conf");
    std::fs::write(&path, text).expect("write config");
    path
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: signals to a child we started and to its process group.
        unsafe {
            libc::kill(self.0.id() as i32, libc::SIGTERM);
        }
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            if self.0.try_wait().ok().flatten().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // SAFETY: as above.
        unsafe {
            libc::kill(-(self.0.id() as i32), libc::SIGKILL);
        }
        let _ = self.0.wait();
    }
}

fn start(daemon: &Path, conf: &Path) -> Daemon {
    use std::os::unix::process::CommandExt;
    let child = Command::new(daemon)
        .args(["-n", "-c"])
        .arg(conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("start daemon");
    Daemon(child)
}

fn status(ctl: &Path, conf: &Path) -> (Duration, Option<i32>, usize) {
    let t = Instant::now();
    let out =
        Command::new(ctl).arg("-c").arg(conf).arg("status").output().expect("run supervisorctl");
    let running = String::from_utf8_lossy(&out.stdout).matches("RUNNING").count();
    (t.elapsed(), out.status.code(), running)
}

/// Waits until every program is RUNNING, then times `RUNS` status calls.
fn measure(ctl: &Path, conf: &Path, n: usize) -> Option<(Duration, Duration)> {
    let t0 = Instant::now();
    loop {
        let (_, code, running) = status(ctl, conf);
        if code == Some(0) && running == n {
            break;
        }
        if t0.elapsed() > Duration::from_secs(300) {
            eprintln!("  gave up waiting for {n} programs to be RUNNING ({running} so far)");
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let all_running = t0.elapsed();
    let mut times: Vec<Duration> = (0..RUNS).map(|_| status(ctl, conf).0).collect();
    times.sort();
    Some((times[RUNS / 2], all_running))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let sizes: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![100, 1000] } else { sizes };
    // The shipped artifact is the static build; fall back to the plain release build.
    let static_build =
        target_dir().join("x86_64-unknown-linux-gnu").join("release").join("supervisord");
    let ours = if static_build.exists() {
        static_build
    } else {
        target_dir().join("release").join("supervisord")
    };
    if !ours.exists() {
        eprintln!("build the daemon first: cargo build --release ({} is missing)", ours.display());
        std::process::exit(2);
    }
    println!("ours: {}", ours.display());
    let Some(py) = pyref() else {
        eprintln!(
            "\n!!! python3 or supervisor==4.3.0 is not available: nothing to compare against\n"
        );
        return;
    };
    let work = std::env::temp_dir().join(format!("bench-status-{}", std::process::id()));
    let our_ctl = work.join("supervisorctl");
    std::fs::create_dir_all(&work).expect("work dir");
    let _ = std::os::unix::fs::symlink(&ours, &our_ctl);
    let mut base: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            let _ = Command::new("/bin/true").status();
            t.elapsed()
        })
        .collect();
    base.sort();
    println!("supervisorctl status, median of {RUNS} runs (exec + connect + request + print)");
    println!("baseline: exec of /bin/true takes {:.3} ms here", ms(base[RUNS / 2]));
    println!(
        "{:>6}  {:>12}  {:>12}  {:>7}  {:>14}  {:>14}",
        "progs", "ours ms", "python ms", "ratio", "ours up (s)", "python up (s)"
    );
    for n in sizes {
        let dir_o = work.join(format!("ours-{n}"));
        let dir_p = work.join(format!("py-{n}"));
        std::fs::create_dir_all(&dir_o).expect("dir");
        std::fs::create_dir_all(&dir_p).expect("dir");
        let (conf_o, conf_p) = (config(&dir_o, n), config(&dir_p, n));
        let o = {
            let _d = start(&ours, &conf_o);
            measure(&our_ctl, &conf_o, n)
        };
        let p = {
            let _d = start(&py.join("bin/supervisord"), &conf_p);
            measure(&py.join("bin/supervisorctl"), &conf_p, n)
        };
        match (o, p) {
            (Some((om, ou)), Some((pm, pu))) => println!(
                "{n:>6}  {:>12.3}  {:>12.3}  {:>6.1}x  {:>14.2}  {:>14.2}",
                ms(om),
                ms(pm),
                pm.as_secs_f64() / om.as_secs_f64(),
                ou.as_secs_f64(),
                pu.as_secs_f64()
            ),
            _ => println!("{n:>6}  (one of the daemons did not bring every program up)"),
        }
    }
    let _ = std::fs::remove_dir_all(&work);
}
