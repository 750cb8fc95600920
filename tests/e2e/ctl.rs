//! supervisorctl, wekastop and bridge against the real daemon.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::json;

use crate::daemon::conf;
use crate::support::daemon::{DEADLINE, Daemon, poll};
use crate::support::{Run, rpc, run_as};

/// Links named after the personalities, next to the daemon's config.
fn link(d: &Daemon, name: &str) -> PathBuf {
    let p = d.path(name);
    if !p.exists() {
        std::os::unix::fs::symlink(crate::support::bin(), &p).expect("symlink");
    }
    p
}

fn ctl(d: &Daemon, args: &[&str]) -> Run {
    let conf = d.conf.display().to_string();
    let mut all = vec!["-c", conf.as_str()];
    all.extend_from_slice(args);
    run_as(&link(d, "supervisorctl"), &all, Some(d.dir.path()))
}

const TWO: &str = "[supervisorctl]\nserverurl=unix://{dir}/sock\n\
[program:web]\ncommand=sleep 100\nstartsecs=0\n\
[program:worker]\ncommand=sleep 100\nstartsecs=0\nautorestart=true\nio_node=true\n";

#[test]
fn status_start_stop_and_exit_codes() {
    let d = Daemon::start(&conf(TWO));
    d.ready();
    d.wait_state("web", "RUNNING");
    d.wait_state("worker", "RUNNING");
    let r = ctl(&d, &["status"]);
    r.expect_code(0);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", r.explain());
    assert!(
        lines[0].starts_with("web                              RUNNING   pid "),
        "{}",
        r.explain()
    );
    ctl(&d, &["stop", "web"]).expect_code(0);
    let r = ctl(&d, &["status", "web"]);
    r.expect_code(3);
    assert!(r.stdout.starts_with("web                              STOPPED   "), "{}", r.explain());
    let r = ctl(&d, &["start", "nope"]);
    assert_eq!(r.stdout, "nope: ERROR (no such process)\n", "{}", r.explain());
    let r = ctl(&d, &["start", "web"]);
    r.expect_code(0);
    assert_eq!(r.stdout, "web: started\n");
    let r = ctl(&d, &["start", "web"]);
    assert_eq!(r.stdout, "web: ERROR (already started)\n", "{}", r.explain());
    // The `supervisord ctl` form is the same program.
    let conf = d.conf.display().to_string();
    let r = crate::support::run(&["ctl", "-c", &conf, "status", "web"], Some(d.dir.path()));
    r.expect_code(0);
}

#[test]
fn a_closed_stdout_is_a_quiet_exit() {
    let d = Daemon::start(&conf(TWO));
    d.ready();
    let conf = d.conf.display().to_string();
    let script = format!(
        "'{}' -c '{}' status | head -c 1 >/dev/null; echo ${{PIPESTATUS[0]}}",
        link(&d, "supervisorctl").display(),
        conf
    );
    let out = Command::new("bash").arg("-c").arg(&script).output().expect("bash");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0", "{stderr}");
}

#[test]
fn a_missing_socket_gives_pythons_message() {
    let dir = crate::support::tempdir();
    let sock = dir.path().join("nosock");
    let url = format!("unix://{}", sock.display());
    let r = crate::support::run(&["ctl", "-s", &url, "status"], Some(Path::new("/")));
    assert_eq!(r.stdout, format!("{url} no such file\n"), "{}", r.explain());
    r.expect_code(4);
}

#[test]
fn wekastop_holds_autorecovery_off_while_stopping() {
    let d = Daemon::start(&conf(TWO));
    d.ready();
    d.wait_state("worker", "RUNNING");
    let conf = d.conf.display().to_string();
    let r = run_as(&link(&d, "wekastop"), &["-c", &conf, "worker"], Some(d.dir.path()));
    r.expect_code(0);
    assert_eq!(r.stdout, "worker: stopped\n", "{}", r.explain());
    // autorestart=true did not bring it back, and autorecovery is on again.
    assert_eq!(d.info("worker")["statename"], "STOPPED");
    let ar = rpc::ok(&d.sock(), "weka.getAutoRecovery", json!([]));
    assert_eq!(ar, json!({"enabled": true, "count": 1}));
}

#[test]
fn wekastop_reenables_autorecovery_when_interrupted() {
    let d = Daemon::start(&conf(
        "[supervisorctl]\nserverurl=unix://{dir}/sock\n\
         [program:stubborn]\ncommand=sh -c 'trap \"\" TERM; touch {dir}/trapped; while :; do sleep 1; done'\nstartsecs=0\nstopwaitsecs=30\n",
    ));
    d.ready();
    d.wait_state("stubborn", "RUNNING");
    // A SIGTERM that lands before the shell has run `trap` kills it: wait for the trap.
    poll("the trap", DEADLINE, || d.path("trapped").exists().then_some(()))
        .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
    let conf = d.conf.display().to_string();
    let mut child = Command::new(link(&d, "wekastop"))
        .args(["-c", &conf, "stubborn"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("wekastop");
    poll("autorecovery off", DEADLINE, || {
        let ar = rpc::call(&d.sock(), "weka.getAutoRecovery", json!([])).ok()?;
        (ar["enabled"] == json!(false)).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
    d.wait_state("stubborn", "STOPPING");
    // SAFETY: a signal to the child we started.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status = poll("wekastop exit", DEADLINE, || child.try_wait().ok().flatten())
        .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
    assert_eq!(status.code(), Some(130));
    let ar = rpc::ok(&d.sock(), "weka.getAutoRecovery", json!([]));
    assert_eq!(ar, json!({"enabled": true, "count": 1}));
    // The stop is still waiting out stopwaitsecs=30: end it, so the daemon's own shutdown
    // does not outlast the test's guard (which used to leave this loop running for ever).
    let pid = d.info("stubborn")["pid"].as_i64().unwrap_or(0) as i32;
    // SAFETY: a signal to the child the daemon reported.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
    d.wait_state("stubborn", "STOPPED");
}

#[test]
fn bridge_prints_results_and_faults() {
    let d = Daemon::start(&conf(TWO));
    d.ready();
    let sock = format!("unix://{}", d.sock().display());
    let r = crate::support::run(&["bridge", "-s", &sock, "supervisor.getState"], None);
    r.expect_code(0);
    assert_eq!(r.stdout, "{\"statecode\":1,\"statename\":\"RUNNING\"}\n");
    let r = crate::support::run(
        &["bridge", "-s", &sock, "supervisor.startProcess", "[\"nope\", true]"],
        None,
    );
    r.expect_code(1);
    assert_eq!(r.stdout, "{\"faultCode\":10,\"faultString\":\"BAD_NAME: nope\"}\n");
    let r = crate::support::run(&["bridge", "-s", &sock, "weka.startProcess", "[\"web\"]"], None);
    r.expect_code(0);
    assert_eq!(r.stdout, "true\n", "idempotent start of a running process");
    let r = crate::support::run(&["bridge", "-s", &sock, "supervisor.getState", "{oops"], None);
    r.expect_code(2);
    assert!(r.stderr.starts_with("Error: the parameters are not valid JSON"), "{}", r.explain());
    let r = crate::support::run(
        &["bridge", "-s", "unix:///nonexistent/sock", "supervisor.getState"],
        None,
    );
    r.expect_code(2);
}

#[test]
fn stop_all_io_nodes_stops_only_io_nodes() {
    let d = Daemon::start(&conf(TWO));
    d.ready();
    d.wait_state("worker", "RUNNING");
    let res = rpc::ok(&d.sock(), "weka.stopAllIoNodes", json!([]));
    assert_eq!(
        res,
        json!([{"name": "worker", "group": "worker", "status": 80, "description": "OK"}])
    );
    assert_eq!(d.info("worker")["statename"], "STOPPED");
    assert_eq!(d.info("web")["statename"], "RUNNING");
    assert_eq!(rpc::ok(&d.sock(), "weka.getAutoRecovery", json!([]))["count"], 1);
}
