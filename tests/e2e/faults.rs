//! Fault injection with real processes and sockets: SIGKILL storms, crash loops, children
//! that misbehave, a log file that cannot grow, the daemon's own SIGTERM in the middle of a
//! large boot, and clients that hang up on a waiting call. Afterwards the daemon must be in
//! the expected state with no zombie and no leaked descriptor.
//!
//! Sizes are small by default; `FAULTS_STORM_SECS` (default 3) sets the SIGKILL storm's
//! length, e.g. 30 for the full run.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::daemon::conf;
use crate::support::daemon::{DEADLINE, Daemon, poll, read_lossy};
use crate::support::{bin, procfs, rpc};

/// `FAULTS_STORM_SECS`, or `default`.
fn storm_secs(default: u64) -> u64 {
    std::env::var("FAULTS_STORM_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Waits until every process is in `state`; panics with the stragglers if not.
fn wait_all(d: &Daemon, state: &str, deadline: Duration) -> Vec<serde_json::Value> {
    let sock = d.sock();
    let res = poll(&format!("every process {state}"), deadline, || {
        let all = rpc::call(&sock, "supervisor.getAllProcessInfo", json!([])).ok()?;
        let all = all.as_array()?.clone();
        all.iter().all(|p| p["statename"] == state).then_some(all)
    });
    res.unwrap_or_else(|e| {
        let all = rpc::call(&sock, "supervisor.getAllProcessInfo", json!([]));
        let odd: Vec<String> = all
            .ok()
            .and_then(|a| a.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter(|p| p["statename"] != state)
            .map(|p| format!("{} {}", p["name"], p["statename"]))
            .collect();
        panic!("{e}: {odd:?}\n{}", d.explain())
    })
}

/// Waits until the daemon has no zombie children.
fn no_zombies(d: &Daemon) {
    let res =
        poll("no zombie children", DEADLINE, || procfs::zombies(d.pid()).is_empty().then_some(()));
    if let Err(e) = res {
        panic!("{e}: {:?}\n{}", procfs::zombies(d.pid()), d.explain());
    }
}

/// Waits until the daemon's descriptor count is back to `before` (requests in flight and
/// pumps of exiting children close theirs a moment later).
fn fds_back_to(d: &Daemon, before: usize, start: &[String]) {
    let res = poll("descriptors back to the baseline", DEADLINE, || {
        (procfs::fd_count(d.pid()) <= before).then_some(())
    });
    if let Err(e) = res {
        panic!(
            "{e}: {} now, {before} before\nbefore: {start:#?}\nnow: {:#?}",
            procfs::fd_count(d.pid()),
            procfs::fd_targets(d.pid())
        );
    }
}

#[test]
fn sigkill_storm_with_autorestart_ends_all_running() {
    let mut body = String::new();
    for i in 0..6 {
        body.push_str(&format!(
            "[program:k{i}]\ncommand=sleep 1000\nstartsecs=0\nautorestart=true\n\
stdout_logfile={{dir}}/k{i}.log\nstderr_logfile={{dir}}/k{i}.err\n"
        ));
    }
    // One with a startsecs: kills while STARTING go through BACKOFF, with retries to spare.
    body.push_str("[program:slow]\ncommand=sleep 1000\nstartsecs=1\nstartretries=100000\n");
    let d = Daemon::start(&conf(&body));
    d.ready();
    wait_all(&d, "RUNNING", DEADLINE);
    let (fds, fd_list) = (procfs::fd_count(d.pid()), procfs::fd_targets(d.pid()));
    let secs = storm_secs(3);
    let start = Instant::now();
    let mut kills = 0u64;
    while start.elapsed() < Duration::from_secs(secs) {
        for pid in procfs::children(d.pid()) {
            // SAFETY: kill(2) on a child of our daemon; no memory is touched.
            if unsafe { libc::kill(pid, libc::SIGKILL) } == 0 {
                kills += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(kills > 0, "the storm killed nothing");
    // Paced restarts may take a second each; the slow one needs its startsecs too.
    let all = wait_all(&d, "RUNNING", DEADLINE);
    assert_eq!(all.len(), 7);
    no_zombies(&d);
    fds_back_to(&d, fds, &fd_list);
    println!("storm: {secs}s, {kills} kills");
}

#[test]
fn a_hundred_crash_loops_reach_fatal_and_again() {
    let mut body = String::new();
    for i in 0..100 {
        body.push_str(&format!(
            "[program:c{i:03}]\ncommand=sh -c 'echo crash >&2; exit 3'\nstartsecs=1\nstartretries=1\n"
        ));
    }
    let d = Daemon::start(&conf(&body));
    d.ready();
    wait_all(&d, "FATAL", DEADLINE * 2);
    no_zombies(&d);
    let (fds, fd_list) = (procfs::fd_count(d.pid()), procfs::fd_targets(d.pid()));
    let rss = procfs::rss_kib(d.pid());
    // A second round from FATAL: nothing a crash loop leaves behind may accumulate.
    let r = rpc::ok(&d.sock(), "supervisor.startAllProcesses", json!([false]));
    assert_eq!(r.as_array().map(Vec::len), Some(100), "{r}");
    wait_all(&d, "FATAL", DEADLINE * 2);
    no_zombies(&d);
    fds_back_to(&d, fds, &fd_list);
    let gave_up = d.stdout().matches("entered FATAL state, too many start retries").count();
    assert_eq!(gave_up, 200, "{}", d.explain());
    println!("RSS after round 1: {rss} KiB, after round 2: {} KiB", procfs::rss_kib(d.pid()));
}

#[test]
fn children_that_misbehave() {
    let d = Daemon::start(&conf(
        "[program:deaf]\ncommand=sh -c 'trap \"\" TERM; echo ready; exec sleep 1000'\nstartsecs=0\n\
stopwaitsecs=1\nstdout_logfile={dir}/deaf.log\n\
[program:forker]\ncommand=sh -c 'sleep 1000 & echo $! > {dir}/orphan.pid; exit 0'\nstartsecs=0\n\
autorestart=false\n\
[program:closer]\ncommand=sh -c 'exec >&- 2>&-; exec sleep 1000'\nstartsecs=0\n\
[program:flood]\ncommand=sh -c 'head -c 10485760 /dev/zero | tr \"\\\\000\" x; exec sleep 1000'\n\
startsecs=0\nstdout_logfile={dir}/flood.log\nstdout_logfile_maxbytes=0\n",
    ));
    d.ready();
    let sock = d.sock();
    // Fork and exit: the process is EXITED and its orphan, adopted by the daemon, is
    // reaped when it dies.
    d.wait_state("forker", "EXITED");
    let orphan: i32 = poll("the orphan's pid", DEADLINE, || {
        read_lossy(&d.path("orphan.pid")).trim().parse().ok()
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
    // SAFETY: kill(2) on the orphan our test program started.
    unsafe {
        libc::kill(orphan, libc::SIGKILL);
    }
    // Closed stdout and stderr: the process keeps running.
    d.wait_state("closer", "RUNNING");
    // 10 MB without a newline reaches the log file whole, and the daemon stays small.
    let flood = d.path("flood.log");
    poll("10 MB in flood.log", DEADLINE * 3, || {
        (std::fs::metadata(&flood).map(|m| m.len()).unwrap_or(0) >= 10 * 1024 * 1024).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
    assert_eq!(std::fs::metadata(&flood).map(|m| m.len()).unwrap_or(0), 10 * 1024 * 1024);
    d.wait_state("flood", "RUNNING");
    let rss = procfs::rss_kib(d.pid());
    assert!(rss < 64 * 1024, "daemon RSS {rss} KiB after a 10 MB line");
    // SIGTERM ignored: the stop escalates to SIGKILL after stopwaitsecs.
    poll("deaf's trap", DEADLINE, || {
        read_lossy(&d.path("deaf.log")).contains("ready").then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
    let stopped = rpc::ok(&sock, "supervisor.stopProcess", json!(["deaf", true]));
    assert_eq!(stopped, json!(true));
    assert_eq!(d.info("deaf")["statename"], "STOPPED");
    d.wait_for_log("killing 'deaf'");
    for name in ["closer", "flood"] {
        assert_eq!(rpc::ok(&sock, "supervisor.stopProcess", json!([name, true])), json!(true));
    }
    no_zombies(&d);
    assert!(procfs::children(d.pid()).is_empty(), "{:?}", procfs::children(d.pid()));
}

/// A wrapper that runs the daemon with its file size limit at `bytes`.
fn fsize_wrapper(dir: &Path, bytes: u64) -> PathBuf {
    let path = dir.join("sd-fsize");
    let script = format!("#!/bin/sh\nexec prlimit --fsize={bytes} -- {} \"$@\"\n", bin().display());
    std::fs::write(&path, script).expect("write wrapper");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

#[test]
fn a_log_that_cannot_grow_keeps_the_process_running() {
    let wrapper_dir = crate::support::tempdir();
    let limit = 64 * 1024;
    let wrapper = fsize_wrapper(wrapper_dir.path(), limit);
    let text = conf(
        "[program:chatty]\ncommand=sh -c 'while :; do echo 0123456789012345678901234567890123456789; done'\n\
startsecs=0\nstdout_logfile={dir}/chatty.log\nstdout_logfile_maxbytes=0\n",
    );
    let d = Daemon::start_program(&wrapper, &text, &[]);
    d.ready();
    let log = d.path("chatty.log");
    poll("the log at its size limit", DEADLINE, || {
        (std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0) >= limit).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
    let before = d.info("chatty");
    // Writes now fail (EFBIG); the process and the daemon carry on.
    let sock = d.sock();
    for _ in 0..20 {
        let _ = rpc::ok(&sock, "supervisor.getAllProcessInfo", json!([]));
    }
    let after = d.wait_state("chatty", "RUNNING");
    assert_eq!(before["pid"], after["pid"], "chatty was restarted\n{}", d.explain());
    assert_eq!(std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0), limit);
    assert_eq!(rpc::ok(&sock, "supervisor.stopProcess", json!(["chatty", true])), json!(true));
    no_zombies(&d);
}

#[test]
fn sigterm_in_the_middle_of_a_500_program_boot_leaves_nothing() {
    let mut body = String::new();
    for i in 0..500 {
        // Distinct priorities: the boot goes class by class, so it is long enough to cut.
        body.push_str(&format!(
            "[program:b{i:03}]\ncommand=sleep 1000\nstartsecs=0\npriority={i}\n\
environment=FAULTS_MARK=\"{{dir}}\"\n"
        ));
    }
    let mut d = Daemon::start(&conf(&body));
    d.wait_for_log("spawned: 'b010'");
    d.signal(libc::SIGTERM);
    let code = d.wait_exit();
    assert_eq!(code, Some(0), "{}", d.explain());
    let out = d.stdout();
    assert!(!out.contains("spawned: 'b499'"), "the boot finished before SIGTERM\n{out}");
    let marker = format!("FAULTS_MARK={}", d.dir.path().display());
    let left = procfs::with_env(&marker);
    assert!(left.is_empty(), "processes left behind: {left:?}\n{}", d.explain());
    assert!(!d.sock().exists(), "socket left behind");
    assert!(!d.path("sd.pid").exists(), "pidfile left behind");
}

#[test]
fn clients_that_hang_up_on_a_waiting_call() {
    let d = Daemon::start(&conf(
        "[program:slow]\ncommand=sleep 1000\nstartsecs=2\nautostart=false\n\
[program:deaf]\ncommand=sh -c 'trap \"\" TERM; exec sleep 1000'\nstartsecs=0\nstopwaitsecs=2\n",
    ));
    d.ready();
    d.wait_state("deaf", "RUNNING");
    let sock = d.sock();
    // One start and stop first: a process's log files stay open once opened.
    rpc::ok(&sock, "supervisor.startProcess", json!(["slow", true]));
    rpc::ok(&sock, "supervisor.stopProcess", json!(["slow", true]));
    let (fds, fd_list) = (procfs::fd_count(d.pid()), procfs::fd_targets(d.pid()));
    let send = |method: &str, params: serde_json::Value| {
        let body =
            json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 1}).to_string();
        let mut s = UnixStream::connect(&sock).expect("connect");
        let req = format!(
            "POST /weka/jrpc HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).expect("write");
        s
    };
    // Twenty clients start a process with wait=true and vanish before it is RUNNING;
    // twenty more stop one that ignores SIGTERM and vanish before it is killed.
    let starts: Vec<UnixStream> =
        (0..20).map(|_| send("supervisor.startProcess", json!(["slow", true]))).collect();
    let stops: Vec<UnixStream> =
        (0..20).map(|_| send("supervisor.stopProcess", json!(["deaf", true]))).collect();
    d.wait_state("slow", "STARTING");
    drop(starts);
    drop(stops);
    // The daemon answers meanwhile, and both calls complete for nobody.
    assert_eq!(rpc::ok(&sock, "supervisor.getState", json!([]))["statename"], "RUNNING");
    d.wait_state("slow", "RUNNING");
    d.wait_state("deaf", "STOPPED");
    let r = rpc::ok(&sock, "supervisor.stopProcess", json!(["slow", true]));
    assert_eq!(r, json!(true));
    no_zombies(&d);
    fds_back_to(&d, fds, &fd_list);
}
