//! Events and event listeners end to end: a listener written with Python supervisor's own
//! `supervisor.childutils` sees the same events from our daemon as from Python's for the
//! same scenario; the built-in listeners; rejected events; protocol violations; and a
//! listener that never reads while process management goes on undisturbed.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::daemon::{DEADLINE, Daemon, poll, read_lossy};
use crate::support::pyref::{PyRef, pyref};
use crate::support::{bin, rpc, tempdir};

/// A childutils listener that appends every event (headers and payload) to a JSON-lines
/// file; with `fail_first`, it rejects each serial once before accepting it.
const RECORDER: &str = r#"
import sys, json
from supervisor import childutils
out = open(sys.argv[1], 'a')
fail_first = len(sys.argv) > 2
seen = set()
while True:
    headers, payload = childutils.listener.wait(sys.stdin, sys.stdout)
    out.write(json.dumps({"headers": headers, "payload": payload}) + "\n")
    out.flush()
    if fail_first and headers['serial'] not in seen:
        seen.add(headers['serial'])
        childutils.listener.fail(sys.stdout)
    else:
        childutils.listener.ok(sys.stdout)
"#;

/// Which daemon runs a scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Which {
    Ours,
    Python,
}

/// A daemon of either kind, in its own process group, killed with its children on drop.
struct Any {
    dir: PathBuf,
    child: Option<Child>,
    which: Which,
}

impl Any {
    fn start(which: Which, dir: &Path, conf: &str, py: Option<&PyRef>) -> Any {
        let conf_path = dir.join("supervisord.conf");
        fs::write(&conf_path, conf).expect("write config");
        let program = match (which, py) {
            (Which::Python, Some(py)) => py.supervisord.clone(),
            _ => bin(),
        };
        let mut cmd = Command::new(program);
        cmd.arg("-n").arg("-c").arg(&conf_path);
        cmd.current_dir(dir)
            .stdin(Stdio::null())
            .stdout(fs::File::create(dir.join("daemon.stdout")).expect("stdout"))
            .stderr(fs::File::create(dir.join("daemon.stderr")).expect("stderr"))
            .process_group(0);
        let child = cmd.spawn().expect("start daemon");
        let d = Any { dir: dir.to_path_buf(), child: Some(child), which };
        let sock = d.sock();
        if let Err(e) = poll("the daemon to answer", DEADLINE, || {
            xml_call(&sock, "supervisor.getState", &[]).ok()
        }) {
            panic!("{e}\n{}", d.explain());
        }
        d
    }

    fn sock(&self) -> PathBuf {
        self.dir.join("sock")
    }

    fn log(&self) -> String {
        read_lossy(&self.dir.join("sd.log"))
    }

    fn explain(&self) -> String {
        format!(
            "{:?} daemon\n--- log\n{}--- stderr\n{}",
            self.which,
            self.log(),
            read_lossy(&self.dir.join("daemon.stderr"))
        )
    }

    /// An XML-RPC call that must succeed (both daemons speak XML-RPC).
    fn call(&self, method: &str, params: &[&str]) -> String {
        xml_call(&self.sock(), method, params)
            .unwrap_or_else(|e| panic!("{method}: {e}\n{}", self.explain()))
    }
}

impl Drop for Any {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id() as i32;
            // SAFETY: signals to the daemon and the process group we created for it.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
            let _ =
                poll("daemon exit", Duration::from_secs(10), || child.try_wait().ok().flatten());
            // SAFETY: as above.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("{}", self.explain());
        }
    }
}

/// XML-RPC with string, `true`/`false` and nothing else as parameters; returns the body
/// or the fault text.
fn xml_call(sock: &Path, method: &str, params: &[&str]) -> Result<String, String> {
    let mut body =
        format!("<?xml version='1.0'?><methodCall><methodName>{method}</methodName><params>");
    for p in params {
        match *p {
            "true" | "false" => body.push_str(&format!(
                "<param><value><boolean>{}</boolean></value></param>",
                u8::from(*p == "true")
            )),
            s => body.push_str(&format!("<param><value><string>{s}</string></value></param>")),
        }
    }
    body.push_str("</params></methodCall>");
    let (status, resp) =
        rpc::post(sock, "/RPC2", "text/xml", body.as_bytes()).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&resp).into_owned();
    if status != 200 || text.contains("<fault>") {
        return Err(format!("HTTP {status}: {text}"));
    }
    Ok(text)
}

/// The events a recorder wrote so far.
fn recorded(path: &Path) -> Vec<Value> {
    read_lossy(path).lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

fn wait_recorded(d: &Any, path: &Path, what: &str, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
    poll(what, DEADLINE, || {
        let evs = recorded(path);
        evs.iter().any(&pred).then_some(evs)
    })
    .unwrap_or_else(|e| panic!("{e}\nrecorded: {:#?}\n{}", recorded(path), d.explain()))
}

fn is(ev: &Value, name: &str, payload_part: &str) -> bool {
    ev["headers"]["eventname"] == name
        && ev["payload"].as_str().is_some_and(|p| p.contains(payload_part))
}

/// Headers minus `len` (checked against the payload here), payload with pids masked.
fn normalize(evs: &[Value]) -> Vec<(Vec<(String, String)>, String)> {
    evs.iter()
        .map(|ev| {
            let payload = ev["payload"].as_str().unwrap_or_default().to_string();
            let mut headers: Vec<(String, String)> = ev["headers"]
                .as_object()
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                        .collect()
                })
                .unwrap_or_default();
            let len = headers.iter().find(|(k, _)| k == "len").map(|(_, v)| v.clone());
            assert_eq!(
                len,
                Some(payload.chars().count().to_string()),
                "len counts characters: {ev}"
            );
            headers.retain(|(k, _)| k != "len");
            headers.sort();
            let masked = payload
                .split(' ')
                .map(|tok| match tok.split_once(':') {
                    Some(("pid", rest)) => {
                        let tail: String = rest.chars().skip_while(char::is_ascii_digit).collect();
                        format!("pid:N{tail}")
                    }
                    _ => tok.to_string(),
                })
                .collect::<Vec<_>>()
                .join(" ");
            (headers, masked)
        })
        .collect()
}

fn scenario_conf(dir: &Path, python: &Path) -> String {
    let d = dir.display();
    format!(
        r#"[supervisord]
logfile={d}/sd.log
pidfile={d}/sd.pid
loglevel=debug
identifier=evtest
childlogdir={d}

[unix_http_server]
file={d}/sock

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[eventlistener:lst]
command={py} {d}/rec.py {d}/events.jsonl
events=PROCESS_STATE,PROCESS_LOG,PROCESS_COMMUNICATION,REMOTE_COMMUNICATION,SUPERVISOR_STATE_CHANGE,PROCESS_GROUP
buffer_size=100

[program:talk]
command=sh -c 'while [ ! -e {d}/go ]; do sleep 0.02; done; printf "hello \303\230resund, a line longer than the capture token\n"; while [ ! -e {d}/go2 ]; do sleep 0.02; done; printf "a<!--XSUPERVISOR:BEGIN-->cap<!--XSUPERVISOR:END-->"; exec sleep 100'
startsecs=0
stdout_events_enabled=true
stdout_capture_maxbytes=1000

[program:fail]
command=sh -c 'sleep 0.6 & sleep 0.3; exit 4'
autostart=false
startretries=1
"#,
        py = python.display()
    )
}

/// Runs the comparison scenario under one daemon and returns what the listener saw.
fn run_scenario(which: Which, py: &PyRef) -> Vec<Value> {
    let tmp = tempdir();
    let dir = tmp.path();
    fs::write(dir.join("rec.py"), RECORDER).expect("write listener");
    let d = Any::start(which, dir, &scenario_conf(dir, &py.python), Some(py));
    let file = dir.join("events.jsonl");
    wait_recorded(&d, &file, "lst RUNNING", |e| is(e, "PROCESS_STATE_RUNNING", "processname:lst"));
    fs::write(dir.join("go"), "").expect("go");
    wait_recorded(&d, &file, "hello", |e| is(e, "PROCESS_LOG_STDOUT", "hello"));
    fs::write(dir.join("go2"), "").expect("go2");
    wait_recorded(&d, &file, "comm", |e| is(e, "PROCESS_COMMUNICATION_STDOUT", "cap"));
    d.call("supervisor.sendRemoteCommEvent", &["mytype", "some data"]);
    wait_recorded(&d, &file, "remote", |e| is(e, "REMOTE_COMMUNICATION", "mytype"));
    d.call("supervisor.startProcess", &["fail", "false"]);
    wait_recorded(&d, &file, "FATAL", |e| is(e, "PROCESS_STATE_FATAL", "fail"));
    d.call("supervisor.removeProcessGroup", &["fail"]);
    wait_recorded(&d, &file, "REMOVED", |e| is(e, "PROCESS_GROUP_REMOVED", "fail"));
    d.call("supervisor.stopProcess", &["talk"]);
    wait_recorded(&d, &file, "STOPPED", |e| is(e, "PROCESS_STATE_STOPPED", "talk"))
}

#[test]
fn a_childutils_listener_sees_the_same_events_as_under_python() {
    let Some(py) = pyref() else { return };
    let ours = normalize(&run_scenario(Which::Ours, &py));
    let theirs = normalize(&run_scenario(Which::Python, &py));
    let show = |v: &[(Vec<(String, String)>, String)]| {
        v.iter().map(|(h, p)| format!("{h:?} {p:?}")).collect::<Vec<_>>().join("\n")
    };
    assert_eq!(ours, theirs, "\n--- ours\n{}\n--- python\n{}", show(&ours), show(&theirs));
    // The scenario covered every kind it meant to.
    let names: Vec<&str> = ours
        .iter()
        .filter_map(|(h, _)| h.iter().find(|(k, _)| k == "eventname").map(|(_, v)| v.as_str()))
        .collect();
    for n in [
        "PROCESS_GROUP_ADDED",
        "SUPERVISOR_STATE_CHANGE_RUNNING",
        "PROCESS_STATE_STARTING",
        "PROCESS_STATE_RUNNING",
        "PROCESS_LOG_STDOUT",
        "PROCESS_COMMUNICATION_STDOUT",
        "REMOTE_COMMUNICATION",
        "PROCESS_STATE_BACKOFF",
        "PROCESS_STATE_FATAL",
        "PROCESS_GROUP_REMOVED",
        "PROCESS_STATE_STOPPING",
        "PROCESS_STATE_STOPPED",
    ] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
}

/// A directory holding the recorder script, written before any daemon starts it.
fn recorder_dir() -> tempfile::TempDir {
    let t = tempdir();
    fs::write(t.path().join("rec.py"), RECORDER).expect("write listener");
    t
}

fn base_conf(extra: &str) -> String {
    format!(
        "[supervisord]\nlogfile={{dir}}/sd.log\npidfile={{dir}}/sd.pid\nloglevel=debug\nchildlogdir={{dir}}\n\n[unix_http_server]\nfile={{dir}}/sock\n\n{extra}"
    )
}

#[test]
fn tick_5_arrives_on_a_period_boundary() {
    let Some(py) = pyref() else { return };
    let scripts = recorder_dir();
    let d = Daemon::start(&base_conf(&format!(
        "[eventlistener:ticks]\ncommand={} {}/rec.py {{dir}}/events.jsonl\nevents=TICK_5\n",
        py.python.display(),
        scripts.path().display()
    )));
    d.ready();
    let evs = poll("a TICK_5", DEADLINE, || {
        let evs = recorded(&d.path("events.jsonl"));
        (!evs.is_empty()).then_some(evs)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
    let ev = &evs[0];
    assert_eq!(ev["headers"]["eventname"], "TICK_5");
    let when: u64 = ev["payload"]
        .as_str()
        .and_then(|p| p.strip_prefix("when:"))
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("bad tick payload {ev}"));
    assert_eq!(when % 5, 0, "{ev}");
}

#[test]
fn a_rejected_event_is_sent_again() {
    let Some(py) = pyref() else { return };
    let scripts = recorder_dir();
    let d = Daemon::start(&base_conf(&format!(
        "[eventlistener:picky]\ncommand={} {}/rec.py {{dir}}/events.jsonl fail-first\nevents=PROCESS_GROUP\n",
        py.python.display(),
        scripts.path().display()
    )));
    d.ready();
    let evs = poll("the event twice", DEADLINE, || {
        let evs = recorded(&d.path("events.jsonl"));
        (evs.len() >= 2).then_some(evs)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
    assert_eq!(evs[0], evs[1], "the same event, serials and all, twice");
    assert_eq!(evs[0]["payload"], "groupname:picky\n");
    d.wait_for_log("WARN picky: event was rejected");
    d.wait_for_log("DEBG rebuffering event 0 for pool picky");
}

#[test]
fn a_protocol_violation_makes_the_listener_unknown() {
    let d = Daemon::start(&base_conf(
        "[eventlistener:rude]\ncommand=sh -c 'printf \"HELLO!\\n\"; exec sleep 100'\nevents=PROCESS_STATE\n",
    ));
    d.ready();
    d.wait_for_log("DEBG rude: ACKNOWLEDGED -> UNKNOWN");
    d.wait_for_log(
        "WARN rude: has entered the UNKNOWN state and will no longer receive events, this usually indicates the process violated the eventlistener protocol",
    );
}

fn logger_conf(dir: &Path, listener_cmd: &str) -> String {
    let d = dir.display();
    format!(
        r#"[supervisord]
logfile={d}/sd.log
pidfile={d}/sd.pid
childlogdir={d}

[unix_http_server]
file={d}/sock

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[eventlistener:logger]
command={listener_cmd}
events=PROCESS_LOG

[program:chatty]
command=sh -c 'printf "one\ntw"; sleep 0.3; printf "o\n"; printf "oops\n" >&2; exec sleep 100'
stdout_events_enabled=true
stderr_events_enabled=true
startsecs=0
"#
    )
}

fn check_logger(which: Which, py: Option<&PyRef>) {
    let tmp = tempdir();
    let dir = tmp.path();
    let out = dir.join("output.log");
    let cmd = format!(
        "{} eventlistener --logger --logfile {} --maxbytes 1MB --backups 2",
        bin().display(),
        out.display()
    );
    let d = Any::start(which, dir, &logger_conf(dir, &cmd), py);
    let want = ["chatty stdout: one\n", "chatty stdout: two\n", "chatty stderr: oops\n"];
    let res = poll("the logger's lines", DEADLINE, || {
        let text = read_lossy(&out);
        want.iter().all(|w| text.contains(w)).then_some(text)
    });
    let text =
        res.unwrap_or_else(|e| panic!("{e}\nlogger file: {:?}\n{}", read_lossy(&out), d.explain()));
    assert!(
        !text.contains("chatty stdout: tw\n"),
        "a line split across chunks is joined: {text:?}"
    );
}

#[test]
fn the_logger_listener_writes_process_log_lines() {
    check_logger(Which::Ours, None);
}

#[test]
fn the_logger_listener_runs_under_python_supervisord() {
    let Some(py) = pyref() else { return };
    check_logger(Which::Python, Some(&py));
}

#[test]
fn test_req_restart_restarts_exit_64_with_autorecovery_off() {
    let d = Daemon::start(&base_conf(&format!(
        r#"[eventlistener:treq]
command={bin} eventlistener --test-req-restart
events=PROCESS_STATE

[program:node]
command=sh -c 'echo x >> {{dir}}/starts; sleep 0.3; exit 64'
startsecs=0
autorestart=false

[program:plain]
command=sh -c 'echo x >> {{dir}}/plain; sleep 0.3; exit 3'
startsecs=0
autorestart=true
"#,
        bin = bin().display()
    )));
    d.ready();
    let sock = d.sock();
    let starts = |f: &str| read_lossy(&d.path(f)).lines().count();
    // Exit 64 is restarted by the listener although autorestart=false and autorecovery
    // is off; exit 3 is not restarted although autorestart=true.
    poll("three starts of node", DEADLINE, || (starts("starts") >= 3).then_some(()))
        .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
    let ar = rpc::ok(&sock, "weka.getAutoRecovery", json!([]));
    assert_eq!(ar["enabled"], false, "{ar}");
    d.wait_state("plain", "EXITED");
    let plain_starts = starts("plain");
    // Stopping the listener (SIGTERM) enables autorecovery again, which restarts plain.
    rpc::ok(&sock, "supervisor.stopProcess", json!(["treq", true]));
    poll("autorecovery back on", DEADLINE, || {
        let ar = rpc::call(&sock, "weka.getAutoRecovery", json!([])).ok()?;
        (ar["enabled"] == true).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
    poll("plain restarted by autorecovery", DEADLINE, || {
        (starts("plain") > plain_starts).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
}

#[test]
fn test_req_restart_runs_under_python_supervisord() {
    let Some(py) = pyref() else { return };
    let tmp = tempdir();
    let dir = tmp.path();
    let conf = format!(
        r#"[supervisord]
logfile={d}/sd.log
pidfile={d}/sd.pid
childlogdir={d}

[unix_http_server]
file={d}/sock

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[eventlistener:treq]
command={bin} eventlistener --test-req-restart
events=PROCESS_STATE_EXITED
stderr_logfile={d}/treq.err

[program:node]
command=sh -c 'echo x >> {d}/starts; sleep 1.2; exit 64'
autorestart=false
"#,
        d = dir.display(),
        bin = bin().display()
    );
    let d = Any::start(Which::Python, dir, &conf, Some(&py));
    poll("three starts of node", DEADLINE, || {
        (read_lossy(&dir.join("starts")).lines().count() >= 3).then_some(())
    })
    .unwrap_or_else(|e| {
        panic!("{e}\nlistener stderr: {}\n{}", read_lossy(&dir.join("treq.err")), d.explain())
    });
    let err = read_lossy(&dir.join("treq.err"));
    assert!(err.contains("autorecovery is left as it is"), "{err}");
    assert!(err.contains("node:node exited with status 64: started it again"), "{err}");
}

/// One start and one stop, each waited for; the time both took.
fn cycle(sock: &Path) -> Duration {
    let t = Instant::now();
    rpc::ok(sock, "supervisor.startProcess", json!(["svc", true]));
    rpc::ok(sock, "supervisor.stopProcess", json!(["svc", true]));
    t.elapsed()
}

fn stuck_conf(with_listener: bool) -> String {
    let listener = if with_listener {
        // Says READY once, then never reads another byte.
        "[eventlistener:stuck]\ncommand=sh -c 'printf \"READY\\n\"; exec sleep 1000'\nevents=EVENT\nbuffer_size=3\nstartsecs=0\n\n"
    } else {
        ""
    };
    base_conf(&format!(
        "{listener}[program:svc]\ncommand=sleep 100\nstartsecs=0\nautostart=false\nstdout_events_enabled=true\n"
    ))
}

#[test]
fn a_listener_that_never_reads_does_not_slow_process_management() {
    let cycles = 15;
    let baseline = {
        let d = Daemon::start(&stuck_conf(false));
        d.ready();
        (0..cycles).map(|_| cycle(&d.sock())).sum::<Duration>()
    };
    let d = Daemon::start(&stuck_conf(true));
    d.ready();
    d.wait_state("stuck", "RUNNING");
    d.wait_for_log("sent to listener stuck");
    let stuck: Duration = (0..cycles).map(|_| cycle(&d.sock())).sum();
    // Every operation completed (the rpc::ok calls), and the pool dropped the oldest
    // events as its buffer overflowed.
    d.wait_for_log("ERRO pool stuck event buffer overflowed, discarding event");
    let info = d.info("svc");
    assert_eq!(info["statename"], "STOPPED");
    eprintln!(
        "{cycles} start/stop cycles: {baseline:?} without a listener, {stuck:?} with a stuck one"
    );
}

/// superlance 2.0.0 in the oracle's venv, installed on first use (one installer at a time).
fn superlance(py: &PyRef) -> Option<PathBuf> {
    let bin_dir = py.python.parent()?.to_path_buf();
    let crashmail = bin_dir.join("crashmail");
    let lock_path = bin_dir.join("superlance.lock");
    let lock_file = fs::File::create(&lock_path).ok()?;
    let _lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive).ok()?;
    if !crashmail.exists() {
        let ok = Command::new(bin_dir.join("pip"))
            .args(["install", "-q", "superlance==2.0.0"])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("superlance 2.0.0 is required under CI=true");
            }
            eprintln!("\n!!! SKIPPING superlance check: cannot install superlance 2.0.0\n");
            return None;
        }
    }
    Some(crashmail)
}

#[test]
fn superlance_crashmail_handles_our_events() {
    let Some(py) = pyref() else { return };
    let Some(crashmail) = superlance(&py) else { return };
    let d = Daemon::start(&base_conf(&format!(
        r#"[eventlistener:crashmail]
command={} -a -m ops@example.com -s "cat >> {{dir}}/mail"
events=PROCESS_STATE_EXITED

[program:crash]
command=sh -c 'sleep 1.2; exit 3'
autorestart=false
"#,
        crashmail.display()
    )));
    d.ready();
    let mail = poll("crashmail's mail", DEADLINE, || {
        let m = read_lossy(&d.path("mail"));
        m.contains("exited unexpectedly").then_some(m)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
    assert!(mail.contains("To: ops@example.com"), "{mail}");
    assert!(
        mail.contains("Process crash in group crash exited unexpectedly (pid ")
            && mail.contains(") from state RUNNING"),
        "{mail}"
    );
}

#[test]
fn eventlistener_without_a_mode_is_a_usage_error() {
    let r = crate::support::run(&["eventlistener"], None);
    r.expect_code(2);
    assert!(r.stderr.contains("<--logger|--test-req-restart>"), "{}", r.explain());
    let r = crate::support::run(&["eventlistener", "--logger", "--bogus"], None);
    r.expect_code(2);
    assert!(r.stderr.contains("unexpected argument '--bogus'"), "{}", r.explain());
    let r = crate::support::run(&["eventlistener", "-h"], None);
    r.expect_code(0);
    assert!(r.stdout.contains("Usage: supervisord eventlistener"), "{}", r.explain());
}

#[test]
fn event_serials_keep_counting_across_a_restart() {
    let Some(py) = pyref() else { return };
    let scripts = recorder_dir();
    let d = Daemon::start(&base_conf(&format!(
        "[eventlistener:all]\ncommand={} {}/rec.py {{dir}}/events.jsonl\nevents=SUPERVISOR_STATE_CHANGE\n",
        py.python.display(),
        scripts.path().display()
    )));
    d.ready();
    let serial = |ev: &Value| ev["headers"]["serial"].as_str().and_then(|s| s.parse::<u64>().ok());
    poll("SUPERVISOR_STATE_CHANGE_RUNNING", DEADLINE, || {
        recorded(&d.path("events.jsonl"))
            .iter()
            .any(|e| is(e, "SUPERVISOR_STATE_CHANGE_RUNNING", ""))
            .then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
    d.signal(libc::SIGHUP);
    // RUNNING, STOPPING (before the restart), RUNNING again: serials strictly increase.
    let evs = poll("RUNNING after the restart", DEADLINE, || {
        let evs = recorded(&d.path("events.jsonl"));
        let running = evs.iter().filter(|e| is(e, "SUPERVISOR_STATE_CHANGE_RUNNING", "")).count();
        (running >= 2).then_some(evs)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
    let serials: Vec<u64> = evs.iter().filter_map(serial).collect();
    assert!(serials.windows(2).all(|w| w[0] < w[1]), "serials {serials:?}");
}

#[test]
fn test_req_restart_restarts_exit_64_in_backoff() {
    // Exits 64 before startsecs: BACKOFF, not EXITED; the listener starts it again.
    let d = Daemon::start(&base_conf(&format!(
        r#"[eventlistener:treq]
command={bin} eventlistener --test-req-restart
events=PROCESS_STATE

[program:quick]
command=sh -c 'echo x >> {{dir}}/starts; sleep 0.2; exit 64'
startsecs=5
startretries=0
"#,
        bin = bin().display()
    )));
    d.ready();
    let starts = || read_lossy(&d.path("starts")).lines().count();
    poll("three starts of quick", DEADLINE, || (starts() >= 3).then_some(()))
        .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
    assert!(
        d.stdout().contains("WARN exited: quick (exit status 64; not expected)"),
        "{}",
        d.explain()
    );
}

#[test]
fn test_req_restart_hold_is_released_when_the_listener_dies() {
    let d = Daemon::start(&base_conf(&format!(
        r#"[eventlistener:treq]
command={bin} eventlistener --test-req-restart
events=PROCESS_STATE
autorestart=true
startsecs=0
"#,
        bin = bin().display()
    )));
    d.ready();
    let sock = d.sock();
    let count =
        || rpc::call(&sock, "weka.getAutoRecovery", json!([])).ok().map(|v| v["count"].clone());
    poll("the listener's hold", DEADLINE, || (count() == Some(json!(0))).then_some(()))
        .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
    let pid = d.wait_state("treq", "RUNNING")["pid"].as_i64().unwrap_or(0);
    // SAFETY: kill(2) on the listener the daemon started for this test.
    unsafe {
        libc::kill(pid as i32, libc::SIGKILL);
    }
    d.wait_for_log("released 1 autorecovery hold(s) of treq:treq");
    // The respawned listener takes one hold again: off, count 0, never -1.
    poll("a new listener holding autorecovery", DEADLINE, || {
        let info = rpc::call(&sock, "supervisor.getProcessInfo", json!(["treq"])).ok()?;
        (info["statename"] == "RUNNING"
            && info["pid"].as_i64() != Some(pid)
            && count() == Some(json!(0)))
        .then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
    // A clean stop releases it the normal way.
    rpc::ok(&sock, "supervisor.stopProcess", json!(["treq", true]));
    poll("autorecovery back on", DEADLINE, || (count() == Some(json!(1))).then_some(()))
        .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
    assert_eq!(d.stdout().matches("autorecovery hold(s)").count(), 1, "{}", d.explain());
}
