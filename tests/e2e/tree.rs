//! A stop ends the whole process tree (`stopastree`, on by default): descendants that left
//! the process group (`setsid`, double fork) are signalled with the same escalation, and
//! the process is STOPPED only once they are gone. Exits on their own leave them alone.

use std::path::Path;

use serde_json::json;

use crate::daemon::conf;
use crate::support::daemon::{DEADLINE, Daemon, poll, read_lossy};
use crate::support::rpc;

/// A program whose descendant escapes into a session of its own (the subshell that
/// started it exits at once, so the daemon adopts it) and writes its pid to `escaped`.
const ESCAPER: &str =
    "sh -c '(setsid sh -c \"echo \\$\\$ > {dir}/escaped; exec sleep 1000\" &); exec sleep 1000'";

/// Alive and not a zombie.
fn running(pid: i32) -> bool {
    let stat = read_lossy(Path::new(&format!("/proc/{pid}/stat")));
    let state = stat.rsplit_once(')').and_then(|(_, r)| r.split_whitespace().next());
    !stat.is_empty() && state != Some("Z")
}

fn escaped(d: &Daemon) -> i32 {
    poll("the escaped pid", DEADLINE, || {
        let pid = read_lossy(&d.path("escaped")).trim().parse::<i32>().ok()?;
        running(pid).then_some(pid)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()))
}

#[test]
fn a_stop_ends_descendants_that_left_the_group() {
    let d = Daemon::start(&conf(&format!(
        "[program:tree]\ncommand={ESCAPER}\nstartsecs=0\nstopwaitsecs=5\n\
         [program:bystander]\ncommand=sleep 1000\nstartsecs=0\n"
    )));
    d.ready();
    d.wait_state("tree", "RUNNING");
    let bystander = d.wait_state("bystander", "RUNNING")["pid"].as_i64().unwrap_or(0) as i32;
    let pid = escaped(&d);
    rpc::ok(&d.sock(), "supervisor.stopProcess", json!(["tree", true]));
    // STOPPED is reported only once the escaped descendant is gone.
    assert!(!running(pid), "descendant {pid} survived the stop\n{}", d.explain());
    assert_eq!(d.info("tree")["statename"], "STOPPED");
    d.wait_for_log(&format!("sending SIGTERM to descendants of 'tree': {pid} (sleep)"));
    assert!(running(bystander), "another program's child was hit\n{}", d.explain());
}

#[test]
fn a_descendant_that_ignores_the_stop_signal_is_killed_after_stopwaitsecs() {
    let d = Daemon::start(&conf(
        "[program:tree]\ncommand=sh -c '(setsid sh -c \"trap \\\"\\\" TERM; echo \\$\\$ > {dir}/escaped; while :; do sleep 0.1; done\" &); exec sleep 1000'\n\
         startsecs=0\nstopwaitsecs=1\n",
    ));
    d.ready();
    d.wait_state("tree", "RUNNING");
    let pid = escaped(&d);
    rpc::ok(&d.sock(), "supervisor.stopProcess", json!(["tree", true]));
    assert!(!running(pid), "descendant {pid} survived\n{}", d.explain());
    d.wait_for_log("sending SIGKILL to descendants of 'tree'");
    // The main child died of the SIGTERM; that is what the stop reports.
    d.wait_for_log("stopped: tree (terminated by SIGTERM)");
}

#[test]
fn shutdown_ends_the_tree_too() {
    let mut d = Daemon::start(&conf(&format!("[program:tree]\ncommand={ESCAPER}\nstartsecs=0\n")));
    d.ready();
    d.wait_state("tree", "RUNNING");
    let pid = escaped(&d);
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait_exit(), Some(0));
    assert!(!running(pid), "descendant {pid} outlived the daemon\n{}", d.explain());
}

#[test]
fn stopastree_false_leaves_them_as_python_does() {
    let d = Daemon::start(&conf(&format!(
        "[program:tree]\ncommand={ESCAPER}\nstartsecs=0\nstopastree=false\n"
    )));
    d.ready();
    d.wait_state("tree", "RUNNING");
    let pid = escaped(&d);
    rpc::ok(&d.sock(), "supervisor.stopProcess", json!(["tree", true]));
    assert!(running(pid), "stopastree=false still killed {pid}\n{}", d.explain());
    // The guard's drop kills it, as it kills whatever a test's daemon leaves behind.
}

#[test]
fn an_exit_on_its_own_leaves_descendants_alone_and_says_so_once() {
    let d = Daemon::start(&conf(
        "[program:leaver]\ncommand=sh -c '(setsid sh -c \"echo \\$\\$ > {dir}/escaped; exec sleep 1000\" &); sleep 0.2; exit 3'\n\
         startsecs=0\nautorestart=false\n",
    ));
    d.ready();
    let pid = escaped(&d);
    d.wait_state("leaver", "EXITED");
    d.wait_for_log("descendants of 'leaver' left running (it exited on its own)");
    assert!(running(pid), "{}", d.explain());
    // Starting and stopping it again does not take the earlier leftover for its own.
    rpc::ok(&d.sock(), "supervisor.startProcess", json!(["leaver", false]));
    d.wait_state("leaver", "EXITED");
    assert!(running(pid), "{}", d.explain());
    let out = d.stdout();
    assert_eq!(
        out.matches(&format!("left running (it exited on its own): {pid} (sleep)")).count(),
        1,
        "{out}"
    );
}

#[test]
fn check_names_stopastree_false_and_rejects_bad_values() {
    let dir = crate::support::tempdir();
    let conf_path = dir.path().join("supervisord.conf");
    let c = conf_path.display().to_string();
    std::fs::write(&conf_path, "[supervisord]\n[program:a]\ncommand=/bin/true\nstopastree=false\n")
        .expect("write");
    let r = crate::support::run(&["--check", "-c", &c], None);
    r.expect_code(0);
    assert!(
        r.stdout.ends_with("a      a     999       /bin/true\n    stopastree = false\n"),
        "{}",
        r.explain()
    );
    std::fs::write(&conf_path, "[supervisord]\n[program:a]\ncommand=/bin/true\nstopastree=maybe\n")
        .expect("write");
    let r = crate::support::run(&["--check", "-c", &c], None);
    r.expect_code(2);
    assert!(r.stderr.contains("stopastree"), "{}", r.explain());
}
