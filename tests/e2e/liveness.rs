//! The control plane never stalls: a log whose reader has stopped, a burst of spawns, and
//! requests aimed at the stalled process leave every other call answering promptly.

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::daemon::conf;
use crate::support::daemon::{DEADLINE, Daemon, poll};
use crate::support::rpc;

/// A generous per-call bound: calls answer in well under 100 ms when nothing stalls them;
/// a loaded machine must not fail this, a daemon frozen on a write must.
const CALL_BOUND: Duration = Duration::from_secs(5);

/// Calls `method` and asserts that it answered within [`CALL_BOUND`]; returns the time.
fn timed(d: &Daemon, method: &str, params: Value) -> Duration {
    let start = Instant::now();
    let res = rpc::call(&d.sock(), method, params.clone());
    let took = start.elapsed();
    assert!(res.is_ok(), "{method}{params} failed: {res:?}\n{}", d.explain());
    assert!(took < CALL_BOUND, "{method}{params} took {took:?}\n{}", d.explain());
    took
}

/// A whole `GET path` response over the daemon's socket, as text.
fn http_get(sock: &Path, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(sock).expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).expect("write request");
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).expect("read response");
    String::from_utf8_lossy(&resp).into_owned()
}

/// True when some thread of `pid` sleeps in a pipe write (the FIFO is full).
fn blocked_in_pipe_write(pid: i32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return false };
    tasks.flatten().any(|t| {
        std::fs::read_to_string(t.path().join("wchan")).is_ok_and(|w| w.contains("pipe_write"))
    })
}

#[test]
fn a_stalled_fifo_log_stalls_nothing_else() {
    let d = Daemon::start(&conf(
        "[program:chatty]\ncommand=sh -c 'while :; do echo 0123456789012345678901234567890123456789; done'\n\
         stdout_logfile={dir}/fifo\nstdout_logfile_maxbytes=0\nautostart=false\nstartsecs=0\n\
         [program:other]\ncommand=sleep 1000\nautostart=false\nstartsecs=0\n",
    ));
    d.ready();
    let fifo = d.path("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    // The reader: opened (so the daemon's open does not wait for one), never read.
    let reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .expect("open the fifo");
    timed(&d, "supervisor.startProcess", json!(["chatty", false]));
    poll("a write to the full fifo to block", DEADLINE, || {
        blocked_in_pipe_write(d.pid()).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
    // The pump is now blocked in a write. Reopen and clear go to it as well...
    d.signal(libc::SIGUSR2);
    let sock = d.sock();
    let clear = std::thread::spawn(move || {
        rpc::call(&sock, "supervisor.clearProcessLogs", json!(["chatty"]))
    });
    // ...and everything else keeps answering.
    let mut slowest = Duration::ZERO;
    for _ in 0..10 {
        slowest = slowest.max(timed(&d, "supervisor.startProcess", json!(["other", true])));
        slowest = slowest.max(timed(&d, "supervisor.getProcessInfo", json!(["other"])));
        slowest = slowest.max(timed(&d, "supervisor.getAllProcessInfo", json!([])));
        slowest = slowest.max(timed(&d, "supervisor.stopProcess", json!(["other", true])));
        slowest = slowest.max(timed(&d, "supervisor.clearProcessLogs", json!(["other"])));
    }
    eprintln!("slowest call while a log write was stalled: {slowest:?}");
    assert_eq!(d.info("chatty")["statename"], "RUNNING");
    // The reader comes back: the pump writes again, then reopens and clears as asked.
    let drain = std::thread::spawn(move || {
        let mut reader = reader;
        let mut buf = vec![0u8; 65536];
        loop {
            match std::io::Read::read(&mut reader, &mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Err(_) => break,
            }
        }
    });
    let cleared = clear.join().expect("the clear thread");
    assert!(cleared.is_ok(), "clear: {cleared:?}\n{}", d.explain());
    assert_eq!(d.info("chatty")["statename"], "RUNNING");
    rpc::ok(&d.sock(), "supervisor.stopProcess", json!(["chatty", true]));
    drop(d);
    let _ = drain.join();
}

#[test]
fn a_log_that_cannot_be_written_is_reported_once_and_the_child_runs_on() {
    let d = Daemon::start(&conf(
        "[program:full]\ncommand=sh -c 'while :; do echo 0123456789; sleep 0.01; done'\n\
         stdout_logfile=/dev/full\nstartsecs=0\n",
    ));
    d.ready();
    d.wait_for_log("'full' stdout log /dev/full: cannot write (No space left on device");
    let pid = d.wait_state("full", "RUNNING")["pid"].clone();
    rpc::ok(&d.sock(), "supervisor.stopProcess", json!(["full", true]));
    d.wait_for_log("bytes of output were dropped (the log could not be written)");
    d.wait_for_log("stopped: full (terminated by SIGTERM)");
    let out = d.stdout();
    assert_eq!(out.matches("cannot write").count(), 1, "{out}");
    assert!(pid.as_i64().unwrap_or(0) > 0);
}

#[test]
fn rpcs_answer_during_two_hundred_spawns() {
    let d = Daemon::start(&conf(
        "[program:many]\ncommand=sleep 1000\nnumprocs=200\nprocess_name=%(program_name)s_%(process_num)03d\n\
         autostart=false\nstartsecs=0\nstopwaitsecs=30\n",
    ));
    d.ready();
    let sock = d.sock();
    let start = std::thread::spawn(move || {
        rpc::call(&sock, "supervisor.startProcessGroup", json!(["many", false]))
    });
    let mut slowest = Duration::ZERO;
    let all_running = |d: &Daemon| {
        let all = rpc::call(&d.sock(), "supervisor.getAllProcessInfo", json!([])).ok()?;
        let n = all.as_array()?.iter().filter(|p| p["statename"] == "RUNNING").count();
        (n == 200).then_some(())
    };
    let begun = Instant::now();
    while all_running(&d).is_none() {
        assert!(begun.elapsed() < DEADLINE * 3, "200 spawns never finished\n{}", d.explain());
        slowest = slowest.max(timed(&d, "supervisor.getState", json!([])));
        slowest = slowest.max(timed(&d, "supervisor.getProcessInfo", json!(["many:many_199"])));
    }
    eprintln!("slowest call during 200 spawns: {slowest:?}");
    let started = start.join().expect("the start thread");
    assert!(started.is_ok(), "{started:?}\n{}", d.explain());
    // Every child is a live process.
    let all = rpc::ok(&d.sock(), "supervisor.getAllProcessInfo", json!([]));
    for p in all.as_array().into_iter().flatten() {
        let pid = p["pid"].as_i64().unwrap_or(0);
        assert!(pid > 0 && Path::new(&format!("/proc/{pid}")).exists(), "{p}");
    }
}

#[test]
fn past_the_descriptor_wall_the_daemon_stays_manageable() {
    // 40 programs need ~200 descriptors; the daemon gets 100 (soft and hard).
    let mut body = String::new();
    for i in 0..40 {
        body.push_str(&format!(
            "[program:p{i:02}]\ncommand=sleep 1000\nstartsecs=0\nstartretries=0\n\n"
        ));
    }
    let text = conf(&body).replacen("[supervisord]\n", "[supervisord]\nminfds=64\n", 1);
    let mut d = Daemon::start_with_nofile(&text, 100);
    d.ready();
    d.wait_for_log("more than the hard limit of 100 (ulimit -Hn)");
    let settled = poll("every process RUNNING or FATAL", DEADLINE, || {
        let all = rpc::call(&d.sock(), "supervisor.getAllProcessInfo", json!([])).ok()?;
        let all = all.as_array()?.clone();
        all.iter().all(|p| p["statename"] == "RUNNING" || p["statename"] == "FATAL").then_some(all)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
    let fatal: Vec<&Value> = settled.iter().filter(|p| p["statename"] == "FATAL").collect();
    let running = settled.len() - fatal.len();
    assert!(running > 0 && !fatal.is_empty(), "{running} running, {} fatal", fatal.len());
    for p in &fatal {
        let desc = p["description"].as_str().unwrap_or_default();
        assert!(desc.contains("too many open files"), "{p}\n{}", d.explain());
    }
    d.wait_for_log("spawnerr: too many open files to spawn");
    // The control plane still answers, and a stop and a shutdown still work.
    timed(&d, "supervisor.getAllProcessInfo", json!([]));
    timed(&d, "supervisor.stopAllProcesses", json!([true]));
    let after = rpc::ok(&d.sock(), "supervisor.getAllProcessInfo", json!([]));
    let after = after.as_array().cloned().unwrap_or_default();
    assert!(after.iter().all(|p| p["statename"] != "RUNNING"), "{after:?}");
    timed(&d, "supervisor.shutdown", json!([]));
    assert_eq!(d.wait_exit(), Some(0), "{}", d.explain());
}

#[test]
fn at_the_descriptor_limit_every_request_kind_still_answers() {
    // 40 programs with a log each need ~200 descriptors; the daemon gets 100. Spawns stop
    // short of the top 32 (the reserve), which connections and the files requests open use.
    let mut body = String::new();
    for i in 0..40 {
        body.push_str(&format!(
            "[program:p{i:02}]\ncommand=sh -c 'echo hello from p{i:02}; exec sleep 1000'\n\
             startsecs=0\nstartretries=0\nstopwaitsecs=30\n\n"
        ));
    }
    let text = conf(&body).replacen("[supervisord]\n", "[supervisord]\nminfds=64\n", 1);
    let mut d = Daemon::start_with_nofile(&text, 100);
    d.ready();
    let settled = poll("every process RUNNING or FATAL", DEADLINE, || {
        let all = rpc::call(&d.sock(), "supervisor.getAllProcessInfo", json!([])).ok()?;
        let all = all.as_array()?.clone();
        all.iter().all(|p| p["statename"] == "RUNNING" || p["statename"] == "FATAL").then_some(all)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
    let running: Vec<String> = settled
        .iter()
        .filter(|p| p["statename"] == "RUNNING")
        .filter_map(|p| p["name"].as_str().map(str::to_owned))
        .collect();
    let fatal = settled.iter().find(|p| p["statename"] == "FATAL");
    let fatal = fatal.unwrap_or_else(|| panic!("nothing FATAL: {settled:?}"));
    assert!(fatal["description"].as_str().is_some_and(|s| s.contains("too many open files")));
    let fatal = fatal["name"].as_str().unwrap_or_default().to_owned();
    assert!(running.len() >= 2, "{} RUNNING\n{}", running.len(), d.explain());
    let one = &running[0];
    let pids: Vec<i64> =
        settled.iter().filter_map(|p| p["pid"].as_i64()).filter(|&p| p > 0).collect();
    // A dozen clients keep connections open while every kind of request is made.
    let held: Vec<std::os::unix::net::UnixStream> = (0..12)
        .map(|_| std::os::unix::net::UnixStream::connect(d.sock()).expect("connect"))
        .collect();
    timed(&d, "supervisor.getState", json!([]));
    timed(&d, "supervisor.getAllProcessInfo", json!([]));
    timed(&d, "supervisor.getProcessInfo", json!([one]));
    poll("the program's output in its log", DEADLINE, || {
        let tail = rpc::ok(&d.sock(), "supervisor.tailProcessStdoutLog", json!([one, 0, 100]));
        tail.to_string().contains("hello from").then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
    let read = rpc::ok(&d.sock(), "supervisor.readProcessStdoutLog", json!([one, 0, 100]));
    assert!(read.to_string().contains("hello from"), "{read}");
    let main = rpc::ok(&d.sock(), "supervisor.readLog", json!([0, 0]));
    assert!(main.to_string().contains("too many open files to spawn"), "{main}");
    timed(&d, "supervisor.clearProcessLogs", json!([one]));
    timed(&d, "supervisor.clearAllProcessLogs", json!([]));
    timed(&d, "supervisor.clearLog", json!([]));
    timed(&d, "supervisor.signalProcess", json!([one, "CONT"]));
    // Stopped programs give their descriptors back (once their output pumps have closed
    // their pipes and logs); the FATAL one can take them, beside the request's connection.
    timed(&d, "supervisor.stopProcess", json!([one, true]));
    timed(&d, "supervisor.stopProcess", json!([running[1], true]));
    poll("the FATAL program starts", DEADLINE, || {
        rpc::call(&d.sock(), "supervisor.startProcess", json!([fatal, true])).ok()
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
    let metrics = http_get(&d.sock(), "/metrics");
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    drop(held);
    timed(&d, "supervisor.stopAllProcesses", json!([true]));
    timed(&d, "supervisor.shutdown", json!([]));
    assert_eq!(d.wait_exit(), Some(0), "{}", d.explain());
    for pid in pids {
        assert!(!Path::new(&format!("/proc/{pid}")).exists(), "pid {pid} outlived the daemon");
    }
}
