//! The daemon runs programs: real children, real signals, real log files.

use std::path::Path;

use serde_json::json;

use crate::support::daemon::{DEADLINE, Daemon, poll, read_lossy};
use crate::support::rpc;

/// A config with the test's temp dir holding the log, pidfile, AUTO logs and socket.
pub fn conf(body: &str) -> String {
    format!(
        "[supervisord]\nlogfile={{dir}}/main.log\npidfile={{dir}}/sd.pid\nchildlogdir={{dir}}\n\n\
[unix_http_server]\nfile={{dir}}/sock\n\n[rpcinterface:supervisor]\n\
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n{body}"
    )
}

fn alive(pid: i64) -> bool {
    // A zombie still has a /proc entry; count it as gone only once reaped.
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Seconds (with millis) of a log line's timestamp.
fn stamp_secs(line: &str) -> f64 {
    let t = line.get(11..23).unwrap_or("00:00:00,000");
    let (hms, ms) = t.split_once(',').unwrap_or((t, "0"));
    let mut parts = hms.split(':').map(|x| x.parse::<f64>().unwrap_or(0.0));
    let (h, m, s) =
        (parts.next().unwrap_or(0.0), parts.next().unwrap_or(0.0), parts.next().unwrap_or(0.0));
    h * 3600.0 + m * 60.0 + s + ms.parse::<f64>().unwrap_or(0.0) / 1000.0
}

fn lines_with<'a>(out: &'a str, needle: &str) -> Vec<&'a str> {
    out.lines().filter(|l| l.contains(needle)).collect()
}

#[test]
fn lower_priority_is_spawned_first() {
    let d = Daemon::start(&conf(
        "[program:late]\ncommand=sleep 100\npriority=20\n\
         [program:early]\ncommand=sleep 100\npriority=10\n\
         [program:late2]\ncommand=sleep 100\npriority=20\n",
    ));
    d.wait_for_log("spawned: 'late2'");
    d.wait_for_log("spawned: 'late'");
    let out = d.stdout();
    let pos = |n: &str| out.find(&format!("spawned: '{n}'")).unwrap_or(usize::MAX);
    assert!(pos("early") < pos("late") && pos("early") < pos("late2"), "{}", d.explain());
}

#[test]
fn exits_before_startsecs_back_off_then_give_up() {
    let d = Daemon::start(&conf(
        "[program:crash]\ncommand=sh -c 'exit 1'\nstartsecs=1\nstartretries=2\n",
    ));
    d.wait_for_log("gave up: crash entered FATAL state, too many start retries too quickly");
    let out = d.stdout();
    let spawns = lines_with(&out, "spawned: 'crash'");
    assert_eq!(spawns.len(), 3, "startretries=2 means 3 attempts\n{}", d.explain());
    // Python's backoff: 1 s after the first failure, 2 s after the second; never early,
    // late only by scheduling delay on a loaded machine.
    let t: Vec<f64> = spawns.iter().map(|l| stamp_secs(l)).collect();
    let (d1, d2) = (t[1] - t[0], t[2] - t[1]);
    assert!(
        (0.95..1.8).contains(&d1) && (1.95..2.8).contains(&d2),
        "backoff gaps {d1:.3} {d2:.3}\n{}",
        d.explain()
    );
    assert_eq!(lines_with(&out, "exited: crash (exit status 1; not expected)").len(), 3);
    d.ready();
    let info = d.info("crash");
    assert_eq!(info["statename"], "FATAL");
    assert_eq!(info["spawnerr"], "Exited too quickly (process log may have details)");
    assert_eq!(info["description"], "Exited too quickly (process log may have details)");
}

#[test]
fn startsecs_zero_is_running_at_once_and_uptime_is_described() {
    let d = Daemon::start(&conf("[program:s]\ncommand=sleep 100\nstartsecs=0\n"));
    d.ready();
    let info = d.wait_state("s", "RUNNING");
    let pid = info["pid"].as_i64().unwrap_or(0);
    assert!(pid > 0 && alive(pid));
    let desc = info["description"].as_str().unwrap_or("");
    assert!(desc.starts_with(&format!("pid {pid}, uptime 0:00:0")), "{desc}");
    // The log thread writes after the state is visible over RPC: wait, do not race it.
    d.wait_for_log(
        "success: s entered RUNNING state, process has stayed up for > than 0 seconds (startsecs)",
    );
}

#[test]
fn autorestart_policies_and_exitcodes() {
    let d = Daemon::start(&conf(
        "[program:never]\ncommand=sh -c 'sleep 0.3; exit 0'\nstartsecs=0\nautorestart=false\n\
         [program:expected]\ncommand=sh -c 'sleep 0.3; exit 3'\nstartsecs=0\nexitcodes=0,3\n\
         [program:unexpected]\ncommand=sh -c 'sleep 0.3; exit 4'\nstartsecs=0\nexitcodes=0,3\n\
         [program:always]\ncommand=sh -c 'sleep 0.3; exit 0'\nstartsecs=0\nautorestart=true\n",
    ));
    d.wait_for_log_count("spawned: 'unexpected'", 2);
    d.wait_for_log_count("spawned: 'always'", 2);
    d.wait_for_log("exited: expected (exit status 3; expected)");
    d.wait_for_log("exited: never (exit status 0; expected)");
    d.ready();
    assert_eq!(d.wait_state("never", "EXITED")["exitstatus"], 0);
    assert_eq!(d.wait_state("expected", "EXITED")["exitstatus"], 3);
    let out = d.stdout();
    assert_eq!(lines_with(&out, "spawned: 'never'").len(), 1, "{}", d.explain());
    assert_eq!(lines_with(&out, "spawned: 'expected'").len(), 1, "{}", d.explain());
    assert!(out.contains("exited: unexpected (exit status 4; not expected)"));
}

#[test]
fn stop_escalates_to_sigkill_after_stopwaitsecs() {
    let d = Daemon::start(&conf(
        "[program:stubborn]\ncommand=sh -c 'trap \"\" TERM; touch {dir}/trapped; while :; do sleep 1; done'\nstartsecs=0\nstopwaitsecs=1\n",
    ));
    d.ready();
    let pid = d.wait_state("stubborn", "RUNNING")["pid"].as_i64().unwrap_or(0);
    // A SIGTERM that lands before the shell has run `trap` kills it: wait for the trap.
    poll("the trap", DEADLINE, || d.path("trapped").exists().then_some(()))
        .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
    let res = rpc::ok(&d.sock(), "supervisor.stopProcess", json!(["stubborn"]));
    assert_eq!(res, json!(true));
    d.wait_for_log(&format!("killing 'stubborn' ({pid}) with SIGKILL"));
    d.wait_for_log("stopped: stubborn (terminated by SIGKILL)");
    let info = d.info("stubborn");
    assert_eq!(
        (info["statename"].as_str(), info["exitstatus"].as_i64()),
        (Some("STOPPED"), Some(-1))
    );
    assert!(!alive(pid));
}

#[test]
fn stopasgroup_takes_grandchildren_with_it() {
    let d = Daemon::start(&conf(
        "[program:grp]\ncommand=sh -c 'sleep 1000 & echo $! > {dir}/gc.pid; wait'\nstartsecs=0\nstopasgroup=true\n",
    ));
    d.ready();
    d.wait_state("grp", "RUNNING");
    let gc = poll("grandchild pid", DEADLINE, || {
        read_lossy(&d.path("gc.pid")).trim().parse::<i64>().ok()
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
    assert!(alive(gc));
    assert_eq!(rpc::ok(&d.sock(), "supervisor.stopProcess", json!(["grp"])), json!(true));
    // Reaped by the daemon (a subreaper), so the /proc entry disappears.
    poll("grandchild to be gone", DEADLINE, || (!alive(gc)).then_some(()))
        .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
}

#[test]
fn children_get_directory_umask_and_environment() {
    let d = Daemon::start(&conf(
        "[program:env]\ncommand=sh -c 'umask; pwd; echo \"$FOO|$SUPERVISOR_ENABLED|$SUPERVISOR_PROCESS_NAME|$SUPERVISOR_GROUP_NAME|$SUPERVISOR_SERVER_URL\"; exec sleep 100'\n\
         directory=/tmp\numask=027\nenvironment=FOO=\"a b,c\"\nstdout_logfile={dir}/env.log\nstartsecs=0\n",
    ));
    let log = d.path("env.log");
    let text = poll("env output", DEADLINE, || {
        let t = read_lossy(&log);
        (t.lines().count() >= 3).then_some(t)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
    let sock = d.sock();
    assert_eq!(text, format!("0027\n/tmp\na b,c|1|env|env|unix://{}\n", sock.display()));
}

#[test]
fn user_switch_when_root() {
    if !nix::unistd::getuid().is_root() {
        eprintln!("skipping user switch: not root");
        return;
    }
    let d = Daemon::start(&conf(
        "[program:who]\ncommand=sh -c 'id -u; id -g; exec sleep 100'\nuser=nobody\nstdout_logfile={dir}/who.log\nstartsecs=0\n",
    ));
    let log = d.path("who.log");
    let text = poll("id output", DEADLINE, || {
        let t = read_lossy(&log);
        (t.lines().count() >= 2).then_some(t)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
    let nobody = std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines()
                .find(|l| l.starts_with("nobody:"))
                .map(|l| l.split(':').nth(2).unwrap_or("").to_string())
        })
        .unwrap_or_default();
    assert_eq!(text.lines().next(), Some(nobody.as_str()), "{}", d.explain());
}

#[test]
fn rotation_keeps_every_byte_in_order() {
    let d = Daemon::start(&conf(
        "[program:chatty]\ncommand=sh -c 'seq 1 40000; exec sleep 100'\nstdout_logfile={dir}/out.log\n\
         stdout_logfile_maxbytes=20KB\nstdout_logfile_backups=50\nstartsecs=0\n",
    ));
    let expected: String = (1..=40000).map(|i| format!("{i}\n")).collect();
    let read_all = || {
        let mut all = Vec::new();
        for n in (1..=50).rev() {
            if let Ok(b) = std::fs::read(d.path(&format!("out.log.{n}"))) {
                all.extend(b);
            }
        }
        all.extend(std::fs::read(d.path("out.log")).unwrap_or_default());
        all
    };
    let got = poll("all output logged", DEADLINE, || {
        let all = read_all();
        (all.len() >= expected.len()).then_some(all)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
    assert!(got == expected.as_bytes(), "rotated logs differ from the output");
    // Like Python, a rollover follows the write that crossed maxbytes and a read chunk
    // (up to 128 KiB, the read buffer) is never split, so files exceed maxbytes by less
    // than a chunk.
    assert!(d.path("out.log.2").exists(), "expected several rotations");
    for n in 1..=50 {
        if let Ok(m) = std::fs::metadata(d.path(&format!("out.log.{n}"))) {
            assert!(
                m.len() >= 20 * 1024 && m.len() < 20 * 1024 + 128 * 1024,
                "out.log.{n} has {} bytes",
                m.len()
            );
        }
    }
}

#[test]
fn invalid_utf8_and_partial_lines_are_logged_as_bytes() {
    let d = Daemon::start(&conf(
        "[program:bin]\ncommand=sh -c 'printf \"\\377\\376abc\"; printf \"err\" >&2; exec sleep 100'\n\
         stdout_logfile={dir}/o.log\nstderr_logfile={dir}/e.log\nstartsecs=0\n",
    ));
    let got = poll("bytes logged", DEADLINE, || {
        let b = std::fs::read(d.path("o.log")).ok()?;
        (b.len() >= 5).then_some(b)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
    assert_eq!(got, b"\xff\xfeabc");
    poll("stderr logged", DEADLINE, || (read_lossy(&d.path("e.log")) == "err").then_some(()))
        .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
}

/// `c{n}-0\n` … `c{n}-{count-1}\n`: what a chatty test program prints before its last words.
fn numbered_lines(prefix: &str, count: usize) -> String {
    (0..count).map(|i| format!("{prefix}-{i}\n")).collect()
}

#[test]
fn chatty_output_and_the_last_words_before_an_exit_are_all_logged() {
    // Slow writers (bursts of 10 short lines, 10 ms apart) make the pump runtime pause
    // before it sleeps; unterminated last words right before the exit must still arrive.
    let mut body = String::new();
    for n in 0..4 {
        body.push_str(&format!(
            "[program:c{n}]\ncommand=sh -c 'i=0; k=0; while [ $i -lt 200 ]; do echo c{n}-$i; \
             i=$((i+1)); k=$((k+1)); if [ $k -eq 10 ]; then k=0; sleep 0.01; fi; done; \
             printf last-{n}'\n\
             stdout_logfile={{dir}}/c{n}.log\nstartsecs=0\nautorestart=false\n"
        ));
    }
    let d = Daemon::start(&conf(&body));
    for n in 0..4 {
        d.wait_state(&format!("c{n}"), "EXITED");
        let want = format!("{}last-{n}", numbered_lines(&format!("c{n}"), 200));
        poll(&format!("c{n}'s whole output"), DEADLINE, || {
            (read_lossy(&d.path(&format!("c{n}.log"))) == want).then_some(())
        })
        .unwrap_or_else(|e| {
            let got = read_lossy(&d.path(&format!("c{n}.log")));
            panic!("{e}: got {} bytes, want {}\n{}", got.len(), want.len(), d.explain())
        });
    }
}

#[test]
fn last_words_of_a_child_stopped_by_the_shutdown_are_logged() {
    // A line every 5 ms until SIGTERM, then unterminated last words and exit: the daemon
    // exits only after they reach the log.
    let mut d = Daemon::start(&conf(
        "[program:talker]\ncommand=sh -c 'i=0; trap \"printf bye-\\$i; exit 0\" TERM; \
         while :; do echo t-$i; i=$((i+1)); sleep 0.005; done'\n\
         stdout_logfile={dir}/t.log\nstartsecs=0\n",
    ));
    d.wait_state("talker", "RUNNING");
    poll("some output", DEADLINE, || (read_lossy(&d.path("t.log")).len() > 100).then_some(()))
        .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait_exit(), Some(0), "{}", d.explain());
    let got = read_lossy(&d.path("t.log"));
    let (lines, last) = got.rsplit_once('\n').unwrap_or(("", &got));
    let count: usize =
        last.strip_prefix("bye-").and_then(|n| n.parse().ok()).unwrap_or_else(|| {
            panic!("the log does not end with the last words: {:?}\n{}", last, d.explain())
        });
    assert_eq!(format!("{lines}\n"), numbered_lines("t", count), "{}", d.explain());
}

#[test]
fn spawn_error_names_the_command() {
    let d =
        Daemon::start(&conf("[program:ghost]\ncommand=/nonexistent/ghost --x\nstartretries=0\n"));
    d.wait_for_log("spawnerr: can't find command '/nonexistent/ghost'");
    d.wait_for_log("gave up: ghost entered FATAL state, too many start retries too quickly");
    d.ready();
    let info = d.info("ghost");
    assert_eq!(info["statename"], "FATAL");
    assert_eq!(info["description"], "can't find command '/nonexistent/ghost'");
}

#[test]
fn sigterm_stops_everything_and_exits_zero() {
    let mut d = Daemon::start(&conf(
        "[program:a]\ncommand=sleep 100\n[program:b]\ncommand=sleep 100\npriority=5\n",
    ));
    d.ready();
    let pa = d.wait_state("a", "RUNNING")["pid"].as_i64().unwrap_or(0);
    let pb = d.wait_state("b", "RUNNING")["pid"].as_i64().unwrap_or(0);
    assert!(d.path("sd.pid").exists());
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait_exit(), Some(0));
    let out = d.stdout();
    assert!(out.contains("received SIGTERM indicating exit request"), "{out}");
    // Reverse priority: a (999) goes down before b (5).
    let (sa, sb) = (out.find("stopped: a ("), out.find("stopped: b ("));
    assert!(sa.is_some() && sb.is_some() && sa < sb, "{out}");
    assert!(!alive(pa) && !alive(pb));
    assert!(!d.path("sd.pid").exists(), "pidfile left behind");
    assert!(!d.sock().exists(), "socket left behind");
}

#[test]
fn sighup_rereads_the_config_and_restarts() {
    let d = Daemon::start(&conf("[program:a]\ncommand=sleep 100\nstartsecs=0\n"));
    d.ready();
    let before = d.wait_state("a", "RUNNING")["pid"].as_i64().unwrap_or(0);
    let text = std::fs::read_to_string(&d.conf).expect("read conf");
    std::fs::write(&d.conf, format!("{text}[program:b]\ncommand=sleep 100\nstartsecs=0\n"))
        .expect("rewrite conf");
    d.signal(libc::SIGHUP);
    d.wait_for_log("received SIGHUP indicating restart request");
    d.wait_for_log_count("supervisord started with pid", 2);
    d.ready();
    d.wait_state("b", "RUNNING");
    let after = d.wait_state("a", "RUNNING")["pid"].as_i64().unwrap_or(0);
    assert_ne!(before, after, "a was not restarted");
    assert!(!alive(before));
}

#[test]
fn a_second_daemon_on_the_same_config_leaves_the_first_alone() {
    let d = Daemon::start(&conf("[program:a]\ncommand=sleep 100\nstartsecs=0\n"));
    d.ready();
    let info = d.wait_state("a", "RUNNING");
    let log = info["stdout_logfile"].as_str().unwrap_or("").to_string();
    assert!(Path::new(&log).exists());
    let second =
        crate::support::run(&["-n", "-c", &d.conf.display().to_string()], Some(d.dir.path()));
    second.expect_code(2);
    assert!(second.stderr.contains("Another program is already listening"), "{}", second.explain());
    assert!(Path::new(&log).exists(), "the running daemon's AUTO log was deleted");
    assert_eq!(d.info("a")["pid"], info["pid"]);
}

/// Children of `ppid` (host pids) that are zombies.
fn zombie_children(ppid: i64) -> Vec<i64> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else { return out };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i64>().ok()) else {
            continue;
        };
        let stat = read_lossy(&e.path().join("stat"));
        // pid (comm) state ppid ...: comm may contain spaces, so split after the last ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { continue };
        let mut f = rest.split_whitespace();
        let (state, parent) = (f.next(), f.next().and_then(|p| p.parse::<i64>().ok()));
        if parent == Some(ppid) && state == Some("Z") {
            out.push(pid);
        }
    }
    out
}

/// Five orphans (`sleep 0.2` whose subshell parent is gone at once); `made` is written
/// once all of them exist, so from then on they are the daemon's to reap.
const ORPHANS: &str = "[program:orphans]\ncommand=sh -c 'for i in 1 2 3 4 5; do (sleep 0.2 &); done; echo made > {dir}/made; exec sleep 100'\nstartsecs=0\n";

/// The children of every thread of `pid` (a child belongs to the thread that forked it,
/// an adopted orphan to some thread), zombies included until reaped.
fn children(pid: i64) -> Vec<i64> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    let mut out: Vec<i64> = tasks
        .flatten()
        .flat_map(|t| {
            read_lossy(&t.path().join("children"))
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<i64>>()
        })
        .collect();
    out.sort_unstable();
    out
}

/// Polls until the daemon's only child is its program (the orphans were adopted, exited
/// and reaped: a zombie would still be listed).
fn orphans_reaped(daemon: i64) -> Result<Vec<i64>, String> {
    poll("the orphans to be reaped", DEADLINE, || {
        let c = children(daemon);
        (c.len() == 1).then_some(c)
    })
    .map_err(|e| {
        format!("{e}: children left {:?}, zombies {:?}", children(daemon), zombie_children(daemon))
    })
}

#[test]
fn orphans_are_reaped_as_subreaper() {
    let d = Daemon::start(&conf(ORPHANS));
    poll("orphans made", DEADLINE, || d.path("made").exists().then_some(()))
        .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
    orphans_reaped(i64::from(d.pid())).unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
}

/// The `unshare` arguments that give a new PID namespace here: plain first, then inside a
/// user namespace (where an unprivileged user may create one). `None` if neither works.
fn pid_namespace_args() -> Option<&'static [&'static str]> {
    let tries: [&'static [&'static str]; 2] =
        [&["--pid", "--fork"], &["--user", "--map-root-user", "--pid", "--fork"]];
    tries.into_iter().find(|args| {
        std::process::Command::new("unshare")
            .args(*args)
            .arg("true")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

#[test]
fn orphans_are_reaped_as_pid_1() {
    let Some(ns) = pid_namespace_args() else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("the PID 1 test needs `unshare --pid --fork` (or with --user) under CI=true");
        }
        eprintln!("\n!!! SKIPPING pid 1 test: `unshare --pid --fork` is not permitted here\n");
        return;
    };
    let dir = crate::support::tempdir();
    let conf_path = dir.path().join("supervisord.conf");
    let text = conf(ORPHANS).replace("{dir}", &dir.path().display().to_string());
    std::fs::write(&conf_path, text).expect("write conf");
    let mut child = std::process::Command::new("unshare")
        .args(ns)
        .arg("--kill-child")
        .arg(crate::support::bin())
        .args(["-n", "-c"])
        .arg(&conf_path)
        .env(crate::support::leftovers::DAEMON_VAR, dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn unshare");
    let unshare_pid = i64::from(child.id());
    let made = poll("orphans made", DEADLINE, || dir.path().join("made").exists().then_some(()));
    // The daemon is unshare's only child: PID 1 inside the namespace.
    let daemon = poll("daemon pid", DEADLINE, || children(unshare_pid).first().copied());
    let status_1 =
        daemon.as_ref().ok().map(|pid| read_lossy(Path::new(&format!("/proc/{pid}/status"))));
    let reaped = daemon.clone().and_then(orphans_reaped);
    // SIGTERM to PID 1 works only because the daemon installs a handler.
    if let Ok(pid) = &daemon {
        // SAFETY: a signal to a process we started.
        unsafe {
            libc::kill(*pid as i32, libc::SIGTERM);
        }
    }
    let exited = poll("pid 1 daemon exit", DEADLINE, || child.try_wait().ok().flatten());
    if exited.is_err() {
        let _ = child.kill();
        let _ = child.wait();
    }
    crate::support::leftovers::kill_marked(
        crate::support::leftovers::DAEMON_VAR,
        &dir.path().display().to_string(),
    );
    made.unwrap_or_else(|e| panic!("{e}"));
    let daemon = daemon.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        status_1.unwrap_or_default().contains(&format!("NSpid:\t{daemon}\t1")),
        "daemon is not pid 1"
    );
    reaped.unwrap_or_else(|e| panic!("under pid 1: {e}"));
    assert!(exited.is_ok(), "pid 1 daemon ignored SIGTERM");
}

#[test]
fn without_nodaemon_it_daemonizes_and_writes_a_pidfile() {
    let dir = crate::support::tempdir();
    let conf_path = dir.path().join("supervisord.conf");
    let text = conf("[program:s]\ncommand=sleep 100\nstartsecs=0\n")
        .replace("{dir}", &dir.path().display().to_string());
    std::fs::write(&conf_path, text).expect("write conf");
    let r = crate::support::run(&["-c", &conf_path.display().to_string()], Some(dir.path()));
    // The parent returns at once; the daemon lives on in its own session.
    r.expect_code(0);
    let pidfile = dir.path().join("sd.pid");
    let pid = poll("pidfile", DEADLINE, || read_lossy(&pidfile).trim().parse::<i32>().ok())
        .unwrap_or_else(|e| panic!("{e}\n{}", read_lossy(&dir.path().join("main.log"))));
    let sock = dir.path().join("sock");
    let res = poll("daemon to run s", DEADLINE, || {
        let info = rpc::call(&sock, "supervisor.getProcessInfo", json!(["s"])).ok()?;
        (info["statename"] == "RUNNING").then_some(info)
    });
    // SAFETY: getsid/kill on the daemon we started.
    let (sid, own_sid) = unsafe { (libc::getsid(pid), libc::getsid(0)) };
    // SAFETY: as above.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    let gone = poll("daemon exit", DEADLINE, || (!alive(i64::from(pid))).then_some(()));
    let log = read_lossy(&dir.path().join("main.log"));
    res.unwrap_or_else(|e| panic!("{e}\n{log}"));
    gone.unwrap_or_else(|e| panic!("{e}\n{log}"));
    assert!(sid == pid && sid != own_sid, "daemon is not a session leader of its own");
    assert!(log.contains("daemonizing the supervisord process"), "{log}");
    assert!(!pidfile.exists(), "pidfile left behind");
}

#[test]
fn container_style_dev_stdout_logs() {
    // The typical container setup: child output and the daemon log on the daemon's stdout.
    let d = Daemon::start(&conf(
        "[program:hello]\ncommand=sh -c 'echo hello from the child; exec sleep 100'\n\
         stdout_logfile=/dev/stdout\nstdout_logfile_maxbytes=0\nredirect_stderr=true\nstartsecs=0\n",
    ));
    d.wait_for_log("hello from the child");
    d.wait_for_log("success: hello entered RUNNING state");
}

#[test]
fn syslog_gets_the_daemon_log_and_child_output_lines() {
    let sock_dir = crate::support::tempdir();
    let sock_path = sock_dir.path().join("log");
    let server = std::os::unix::net::UnixDatagram::bind(&sock_path).expect("bind syslog socket");
    server.set_read_timeout(Some(std::time::Duration::from_millis(200))).expect("timeout");
    let text = conf(
        "[program:talk]\ncommand=sh -c 'printf \"one\\ntwo\\n\"; printf \"bad \\377\\n\" >&2; exec sleep 1000'\n\
         stdout_syslog=true\nstderr_syslog=true\n\
         [program:quiet]\ncommand=sh -c 'echo not-to-syslog; exec sleep 1000'\n",
    )
    .replace("logfile={dir}/main.log", "logfile=syslog");
    let sock = sock_path.display().to_string();
    let d = Daemon::start_env(
        &crate::support::bin(),
        &text,
        &[],
        &[("SUPERVISORD_SYSLOG_SOCKET", sock.as_str())],
    );
    let mut got: Vec<String> = Vec::new();
    let mut buf = [0u8; 4096];
    let wanted =
        ["supervisord: talk one", "supervisord: talk two", "supervisord: talk bad \u{fffd}"];
    let res = poll("syslog lines", DEADLINE, || {
        while let Ok(n) = server.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        let spawned = got.iter().any(|l| l.contains(" INFO spawned: 'talk' with pid "));
        (spawned && wanted.iter().all(|w| got.iter().any(|l| l.ends_with(w)))).then_some(())
    });
    if let Err(e) = res {
        panic!("{e}\n{got:#?}\n{}", d.explain());
    }
    for l in &got {
        // `<14>`: user.info, whatever the level; glibc's stamp; then supervisord's ident.
        assert!(l.starts_with("<14>") && l[4..].chars().nth(15) == Some(' '), "{l:?}");
        assert!(l[20..].starts_with("supervisord: "), "{l:?}");
    }
    let daemon_line = got.iter().find(|l| l.contains(" INFO spawned: 'talk'")).expect("spawn line");
    assert!(daemon_line.ends_with('\n'), "the daemon log's format ends in a newline");
    assert!(!got.iter().any(|l| l.contains("not-to-syslog")), "{got:#?}");
    // Under -n the lines still reach stdout.
    assert!(d.stdout().contains("INFO spawned: 'talk' with pid "), "{}", d.explain());
}

#[test]
fn fcgi_program_processes_share_the_socket_as_fd_0() {
    // Accepts on fd 0 for ever and answers each connection with its pid.
    let server = "import socket,os;s=socket.socket(fileno=0);\
                  [(lambda c:(c.sendall(str(os.getpid()).encode()),c.close()))(s.accept()[0]) \
                  for _ in iter(int,1)]";
    let text = conf(&format!(
        "[fcgi-program:app]\ncommand=python3 -c \"{server}\"\nsocket=unix://{{dir}}/%(program_name)s.sock\n\
         socket_mode=0660\nnumprocs=2\nprocess_name=%(program_name)s_%(process_num)d\nstartsecs=0\n"
    ));
    let d = Daemon::start(&text);
    d.ready();
    let pids: Vec<i64> = ["app:app_0", "app:app_1"]
        .iter()
        .map(|n| d.wait_state(n, "RUNNING")["pid"].as_i64().unwrap_or(0))
        .collect();
    let sock = d.path("app.sock");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&sock).expect("socket").permissions(),
    );
    assert_eq!(mode & 0o777, 0o660);
    // Both processes have the one listening socket as their stdin.
    let fd0: Vec<String> = pids
        .iter()
        .map(|p| {
            std::fs::read_link(format!("/proc/{p}/fd/0"))
                .map(|l| l.display().to_string())
                .unwrap_or_default()
        })
        .collect();
    assert!(fd0[0].starts_with("socket:[") && fd0[0] == fd0[1], "{fd0:?}");
    let answer = poll("an answer on the socket", DEADLINE, || {
        let mut s = std::os::unix::net::UnixStream::connect(&sock).ok()?;
        let mut out = String::new();
        std::io::Read::read_to_string(&mut s, &mut out).ok()?;
        Some(out)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
    let pid: i64 = answer.trim().parse().unwrap_or(0);
    assert!(pids.contains(&pid), "{answer:?} from {pids:?}");
    // Removing the group closes the socket.
    crate::support::rpc::ok(&d.sock(), "supervisor.stopProcessGroup", serde_json::json!(["app"]));
    crate::support::rpc::ok(&d.sock(), "supervisor.removeProcessGroup", serde_json::json!(["app"]));
    poll("the socket to close", DEADLINE, || {
        std::os::unix::net::UnixStream::connect(&sock).is_err().then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
    d.wait_for_log(&format!("INFO Closing socket unix://{}", sock.display()));
}

/// Every AUTO log exists as `mkstemp` makes it (empty, 0600) whether or not its program was
/// ever started, and a started program's output goes into the same file: with many
/// programs, some files are created by their first spawn and some beside the spawns.
#[test]
fn auto_logs_are_private_for_started_and_never_started_programs() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    const N: usize = 40;
    let mut body = String::new();
    for i in 0..N {
        let (name, autostart) =
            if i % 2 == 0 { (format!("p{i:02}"), "true") } else { (format!("q{i:02}"), "false") };
        body.push_str(&format!(
            "[program:{name}]\ncommand=sh -c 'echo out-{name}; echo err-{name} >&2; exec sleep 100'\n\
             startsecs=0\nautostart={autostart}\n"
        ));
    }
    let d = Daemon::start(&conf(&body));
    d.ready();
    for i in 0..N {
        let started = i % 2 == 0;
        let name = if started { format!("p{i:02}") } else { format!("q{i:02}") };
        let info = if started { d.wait_state(&name, "RUNNING") } else { d.info(&name) };
        for (key, want) in [("stdout_logfile", "out"), ("stderr_logfile", "err")] {
            let path = info[key].as_str().unwrap_or_default().to_string();
            assert!(path.contains("---supervisor-"), "{name} {key}: {path}\n{}", d.explain());
            let meta = poll(&format!("{path} to exist"), DEADLINE, || {
                std::fs::symlink_metadata(&path).ok()
            })
            .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
            assert!(meta.file_type().is_file(), "{path}");
            assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{path}\n{}", d.explain());
            assert_eq!(meta.nlink(), 1, "{path}");
            if started {
                let line = format!("{want}-{name}\n");
                poll(&format!("{name}'s {want} in its log"), DEADLINE, || {
                    (read_lossy(Path::new(&path)) == line).then_some(())
                })
                .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
            } else {
                assert_eq!(meta.len(), 0, "{path}");
                let method = format!(
                    "supervisor.tailProcess{}Log",
                    if want == "out" { "Stdout" } else { "Stderr" }
                );
                let tail = rpc::ok(&d.sock(), &method, json!([name, 0, 100]));
                assert_eq!(tail, json!(["", 0, false]), "{name}");
            }
        }
    }
}
