//! A soak: start/stop/restart cycles mixed with status calls from 50 concurrent clients, with
//! an event listener subscribed to every state change and to the programs' output. Every call must be answered, and the
//! daemon's resident memory and descriptor count must end within 10% of where they began.
//!
//! `SOAK_CYCLES` sets the number of cycles (default 500; the full soak is 10000).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::daemon::conf;
use crate::support::daemon::{DEADLINE, Daemon, poll, read_lossy};
use crate::support::{bin, procfs, rpc};

const PROGRAMS: usize = 10;
const CLIENTS: usize = 50;

fn cycles() -> u64 {
    std::env::var("SOAK_CYCLES").ok().and_then(|v| v.parse().ok()).unwrap_or(500)
}

/// Faults a busy client may meet: another client got there first.
fn expected_fault(code: i64) -> bool {
    // ABNORMAL_TERMINATION (a stop arrived while a start waited), ALREADY_STARTED,
    // NOT_RUNNING; never BAD_NAME, SPAWN_ERROR or anything else.
    matches!(code, 40 | 60 | 70)
}

/// Cycles run before the baseline is taken.
const WARM_UP: u64 = 300;

/// What one round of cycles got back.
struct Round {
    sent: u64,
    replies: u64,
    failures: Vec<String>,
}

impl Round {
    /// Every call answered, none with an unexpected fault; the number of replies.
    fn check(&self, d: &Daemon) -> u64 {
        if let Some(first) = self.failures.first() {
            panic!("{} calls failed, first: {first}\n{}", self.failures.len(), d.explain());
        }
        assert_eq!(self.sent, self.replies, "calls without a reply");
        self.replies
    }
}

/// `total` cycles from [`CLIENTS`] threads: each takes the next cycle number and starts,
/// stops or restarts (stop, then start) a program chosen by it, then asks for the status.
fn hammer(sock: &std::path::Path, total: u64) -> Round {
    let next = Arc::new(AtomicU64::new(0));
    let replies = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (sock, next, replies, sent) =
                (sock.to_path_buf(), next.clone(), replies.clone(), sent.clone());
            std::thread::spawn(move || -> Result<(), String> {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= total {
                        return Ok(());
                    }
                    let name = format!("s{}", (n as usize + c) % PROGRAMS);
                    let calls: Vec<(&str, serde_json::Value)> = match n % 3 {
                        0 => vec![("supervisor.startProcess", json!([name, true]))],
                        1 => vec![("supervisor.stopProcess", json!([name, true]))],
                        _ => vec![
                            ("supervisor.stopProcess", json!([name, true])),
                            ("supervisor.startProcess", json!([name, true])),
                        ],
                    };
                    let status = [("supervisor.getAllProcessInfo", json!([]))];
                    for (method, params) in calls.into_iter().chain(status) {
                        sent.fetch_add(1, Ordering::Relaxed);
                        match rpc::call(&sock, method, params.clone()) {
                            Ok(_) => {}
                            Err((code, _)) if expected_fault(code) => {}
                            Err(e) => return Err(format!("{method}{params}: {e:?}")),
                        }
                        replies.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    let mut failures = Vec::new();
    for w in workers {
        match w.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failures.push(e),
            Err(_) => failures.push("a client thread panicked".into()),
        }
    }
    Round { sent: sent.load(Ordering::Relaxed), replies: replies.load(Ordering::Relaxed), failures }
}

fn all_running(d: &Daemon) {
    let sock = d.sock();
    poll("every program RUNNING", DEADLINE * 3, || {
        let all = rpc::call(&sock, "supervisor.getAllProcessInfo", json!([])).ok()?;
        let all = all.as_array()?.clone();
        all.iter().all(|p| p["statename"] == "RUNNING").then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
}

/// Resident memory and descriptors once the daemon is idle: the smallest of a few
/// readings, so a request still in flight does not count.
fn idle_figures(d: &Daemon) -> (u64, usize) {
    let mut rss = u64::MAX;
    let mut fds = usize::MAX;
    for _ in 0..5 {
        rss = rss.min(procfs::rss_kib(d.pid()));
        fds = fds.min(procfs::fd_count(d.pid()));
        std::thread::sleep(Duration::from_millis(50));
    }
    (rss, fds)
}

#[test]
fn soak_cycles_from_fifty_clients_with_a_listener() {
    let mut body = String::new();
    for i in 0..PROGRAMS {
        body.push_str(&format!(
            "[program:s{i}]\ncommand=sh -c 'echo up; exec sleep 1000'\nstartsecs=0\n\
stopwaitsecs=5\nstdout_logfile={{dir}}/s{i}.log\nstdout_events_enabled=true\n"
        ));
    }
    body.push_str(&format!(
        "[eventlistener:listener]\ncommand={} eventlistener --logger --logfile {{dir}}/events.log\n\
events=PROCESS_STATE,PROCESS_LOG\nbuffer_size=1000\n",
        bin().display()
    ));
    let d = Daemon::start(&conf(&body));
    d.ready();
    all_running(&d);
    let sock = d.sock();
    // Warm up with the same load, so the allocator's and the runtime's high-water marks
    // (50 connections at once) are reached before the baseline is taken.
    hammer(&sock, WARM_UP).check(&d);
    rpc::ok(&sock, "supervisor.startAllProcesses", json!([true]));
    all_running(&d);
    let (rss0, fds0) = idle_figures(&d);

    let total = cycles();
    let started = Instant::now();
    let round = hammer(&sock, total);
    let elapsed = started.elapsed();
    let replies = round.check(&d);

    // Back to the starting state, then compare.
    rpc::ok(&sock, "supervisor.startAllProcesses", json!([true]));
    all_running(&d);
    let listener = d.info("listener");
    assert_eq!(listener["statename"], "RUNNING", "{listener}");
    poll("events logged", DEADLINE, || {
        read_lossy(&d.path("events.log")).contains("s0 stdout: up").then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
    let settled = poll("figures back within 10%", DEADLINE, || {
        let (rss, fds) = idle_figures(&d);
        (rss * 10 <= rss0 * 11 && fds * 10 <= fds0 * 11).then_some((rss, fds))
    });
    let (rss1, fds1) = idle_figures(&d);
    println!(
        "soak: {total} cycles, {replies} calls from {CLIENTS} clients in {:.1}s; \
RSS {rss0} -> {rss1} KiB, fds {fds0} -> {fds1}",
        elapsed.as_secs_f64()
    );
    if let Err(e) = settled {
        panic!(
            "{e}: RSS {rss0} -> {rss1} KiB, fds {fds0} -> {fds1}\n{:#?}",
            procfs::fd_targets(d.pid())
        );
    }
}
