//! `sys` against the real kernel: real children, the real reaper, real signals.
//!
//! This is its own test binary with its own `main` (`harness = false`) because it does what
//! a test harness process must not: it runs a `waitpid(-1)` reaper (which would steal other
//! tests' children), makes itself a child subreaper, installs TERM/INT handlers and sends
//! itself those signals, and re-executes itself as a daemonizing probe, which has to fork
//! while single-threaded. Every child here is started with `sys::spawn` and collected by the
//! one reaper, exactly as in the daemon. Scenarios run one after another; an argument
//! filters them by substring, like libtest.

use std::ffi::OsString;
use std::future::Future;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use supervisord::checks::exec::{self, ExecContext};
use supervisord::procsup::ExitStatus;
use supervisord::sys::reaper::{Reaped, Reaper, ReaperHandle};
use supervisord::sys::signals::{self, DaemonSignal};
use supervisord::sys::spawn::{self, SpawnSpec};
use supervisord::sys::{daemonize, users};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;

/// A generous bound for "this should happen"; tests never assert on how long things take.
const DEADLINE: Duration = Duration::from_secs(30);

type Scenario = fn(ReaperHandle) -> Pin<Box<dyn Future<Output = ()>>>;

macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        [$((stringify!($name), (|r| Box::pin($name(r))) as Scenario)),*]
    };
}

fn main() {
    // The re-executed daemonize probe must fork before any thread exists.
    if let Some(report) = std::env::var_os(PROBE_REPORT) {
        daemonize_probe(Path::new(&report));
    }
    let filters: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let all = scenarios![
        output_pipes_and_exit_status,
        redirect_stderr_merges_into_stdout,
        cwd_and_umask,
        environment_is_exactly_the_given_one,
        only_stdio_fds_are_inherited,
        child_leads_its_own_process_group,
        signal_dispositions_match_python,
        stdin_is_a_pipe,
        exec_failure_is_exit_127_with_pythons_text,
        chdir_failure_is_exit_127_with_pythons_text,
        user_switch,
        signal_death_is_reported,
        exit_before_registration_is_delivered,
        many_children_all_routed,
        orphans_are_reaped_and_not_delivered,
        daemon_signals_are_forwarded,
        daemonize_detaches,
        exec_check_passes_on_exit_zero,
        exec_check_failure_says_why,
        exec_check_runs_like_the_program,
        exec_check_timeout_kills_the_whole_group,
    ];
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let reaper = rt.block_on(async {
        // Grandchildren that lose their parent come back to us, as they would to PID 1.
        assert_eq!(supervisord::sys::reaper::set_child_subreaper(), Ok(true));
        Reaper::spawn().expect("the reaper starts")
    });
    assert!(Reaper::spawn().is_err(), "a second reaper in one process is refused");

    let (mut passed, mut failed) = (0, Vec::new());
    for (name, scenario) in all {
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        let reaper = reaper.clone();
        let res = std::panic::catch_unwind(AssertUnwindSafe(|| {
            rt.block_on(async { tokio::time::timeout(DEADLINE, scenario(reaper)).await })
        }));
        match res {
            Ok(Ok(())) => {
                println!("test {name} ... ok");
                passed += 1;
            }
            Ok(Err(_)) => {
                println!("test {name} ... FAILED (no result within {DEADLINE:?})");
                failed.push(name);
            }
            Err(_) => {
                println!("test {name} ... FAILED");
                failed.push(name);
            }
        }
    }
    // Nothing a scenario started may outlive the run: every child and adopted orphan is
    // ours (subreaper), so our children list must empty out (zombies are reaped promptly).
    let left = (0..500).find_map(|_| {
        let c = own_children();
        if c.is_empty() {
            return Some(c);
        }
        std::thread::sleep(Duration::from_millis(10));
        None
    });
    if left.is_none() {
        let c = own_children();
        println!("test nothing_is_left_running ... FAILED: {c:?}");
        for pid in c {
            // SAFETY: kill(2) of our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        failed.push("nothing_is_left_running");
    }
    println!(
        "\ntest result: {}. {passed} passed; {} failed",
        if failed.is_empty() { "ok" } else { "FAILED" },
        failed.len()
    );
    if !failed.is_empty() {
        println!("failures: {failed:?}");
        std::process::exit(101);
    }
}

// ---------------------------------------------------------------------------------------
// Helpers

/// Our children (of every thread), zombies included.
fn own_children() -> Vec<i32> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return Vec::new() };
    tasks
        .flatten()
        .flat_map(|t| {
            std::fs::read_to_string(t.path().join("children"))
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect()
}

fn sh(script: &str) -> SpawnSpec {
    SpawnSpec {
        name: "t".into(),
        program: "/bin/sh".into(),
        argv: vec!["sh".into(), "-c".into(), script.into()],
        env: vec![("PATH".into(), "/usr/bin:/bin".into())],
        cwd: None,
        umask: None,
        user: None,
        redirect_stderr: false,
        stdin_socket: None,
    }
}

/// What a finished child produced.
#[derive(Debug)]
struct Out {
    pid: i32,
    stdout: String,
    stderr: String,
    status: ExitStatus,
}

async fn read_all(fd: Option<OwnedFd>) -> String {
    let Some(fd) = fd else { return String::new() };
    let mut rx = pipe::Receiver::from_owned_fd(fd).expect("a non-blocking pipe read end");
    let mut buf = Vec::new();
    rx.read_to_end(&mut buf).await.expect("read the pipe");
    String::from_utf8_lossy(&buf).into_owned()
}

/// Spawns, feeds `input` to stdin (then closes it), collects both pipes and the exit.
async fn run_with(reaper: &ReaperHandle, spec: &SpawnSpec, input: &[u8]) -> Out {
    let child = spawn::spawn(spec).expect("spawn");
    let exit = reaper.watch(child.pid, child.birth).await;
    let mut tx = pipe::Sender::from_owned_fd(child.stdin).expect("a non-blocking pipe write end");
    tx.write_all(input).await.expect("write stdin");
    drop(tx);
    let (stdout, stderr) = tokio::join!(read_all(Some(child.stdout)), read_all(child.stderr));
    let reaped = exit.await.expect("the reaper reports the exit");
    assert_eq!(reaped.pid, child.pid);
    Out { pid: child.pid, stdout, stderr, status: reaped.status }
}

async fn run(reaper: &ReaperHandle, spec: &SpawnSpec) -> Out {
    run_with(reaper, spec, b"").await
}

/// Polls `cond` until it holds; the pause between polls is not what the test checks.
async fn poll_until(what: &str, mut cond: impl FnMut() -> bool) {
    let t = tokio::time::timeout(DEADLINE, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    assert!(t.await.is_ok(), "timed out waiting for {what}");
}

/// True once `pid` is gone entirely: exited *and* reaped (a zombie still has /proc/<pid>).
fn reaped(pid: i32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
}

// ---------------------------------------------------------------------------------------
// Spawning

async fn output_pipes_and_exit_status(reaper: ReaperHandle) {
    let out = run(&reaper, &sh("echo out; echo err >&2; exit 3")).await;
    assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("out\n", "err\n"), "{out:?}");
    assert_eq!(out.status, ExitStatus::Exited(3));
}

async fn redirect_stderr_merges_into_stdout(reaper: ReaperHandle) {
    let spec = SpawnSpec { redirect_stderr: true, ..sh("echo out; echo err >&2") };
    let child = spawn::spawn(&spec).expect("spawn");
    assert!(child.stderr.is_none(), "no stderr pipe with redirect_stderr");
    let exit = reaper.watch(child.pid, child.birth).await;
    drop(child.stdin);
    assert_eq!(read_all(Some(child.stdout)).await, "out\nerr\n");
    assert_eq!(exit.await.map(|r| r.status), Ok(ExitStatus::Exited(0)));
}

async fn cwd_and_umask(reaper: ReaperHandle) {
    let dir = tempfile::tempdir().expect("tempdir");
    let real = dir.path().canonicalize().expect("canonical tempdir");
    let spec =
        SpawnSpec { cwd: Some(real.clone()), umask: Some(0o027), ..sh("pwd -P; umask; touch f") };
    let out = run(&reaper, &spec).await;
    assert_eq!(out.stdout, format!("{}\n0027\n", real.display()), "{out:?}");
    let mode = std::fs::metadata(real.join("f"))
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()));
    assert_eq!(mode.map(|m| m & 0o777).ok(), Some(0o640));
}

async fn environment_is_exactly_the_given_one(reaper: ReaperHandle) {
    let daemon_env = vec![
        (OsString::from("PATH"), OsString::from("/usr/bin:/bin")),
        ("HOME".into(), "/nowhere".into()),
    ];
    let vars = spawn::SupervisorVars {
        server_url: Some("unix:///tmp/x.sock"),
        process_name: "p1",
        group_name: "g",
    };
    let env = spawn::env_for_child(
        daemon_env,
        &vars,
        &[("HOME".into(), "/srv".into()), ("FOO".into(), "bar baz".into())],
    );
    let spec = SpawnSpec { env, ..sh("env | grep -v '^PWD=' | grep -v '^SHLVL=' | grep -v '^_='") };
    let out = run(&reaper, &spec).await;
    let mut lines: Vec<&str> = out.stdout.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        [
            "FOO=bar baz",
            "HOME=/srv",
            "PATH=/usr/bin:/bin",
            "SUPERVISOR_ENABLED=1",
            "SUPERVISOR_GROUP_NAME=g",
            "SUPERVISOR_PROCESS_NAME=p1",
            "SUPERVISOR_SERVER_URL=unix:///tmp/x.sock",
        ],
        "{out:?}"
    );
}

async fn only_stdio_fds_are_inherited(reaper: ReaperHandle) {
    // A descriptor without close-on-exec in the parent must still not reach the child.
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid two-int array for pipe(2).
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: pipe(2) just created both fds and nothing else owns them.
    let leaky = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // The child starts on our own table: what it does to its fds must not reach ours.
    let ours = |n: i32| std::fs::read_link(format!("/proc/self/fd/{n}")).ok();
    let before: Vec<_> = (0..3).map(ours).collect();
    // `ls` (no pipeline, so the shell holds no extra pipe) lists the shell's descriptors.
    let out = run(&reaper, &sh("ls /proc/$$/fd")).await;
    assert_eq!((0..3).map(ours).collect::<Vec<_>>(), before, "our stdio changed");
    // SAFETY: F_GETFD only reads the flags of a descriptor we own.
    assert!(unsafe { libc::fcntl(leaky.1.as_raw_fd(), libc::F_GETFD) } >= 0);
    let mut fds: Vec<&str> = out.stdout.lines().collect();
    fds.sort_unstable();
    assert_eq!(
        fds,
        ["0", "1", "2"],
        "{out:?} (leaky fds {} {})",
        leaky.0.as_raw_fd(),
        leaky.1.as_raw_fd()
    );
}

async fn child_leads_its_own_process_group(reaper: ReaperHandle) {
    // Field 5 of /proc/<pid>/stat is the process group (the comm field has no spaces here).
    let out = run(&reaper, &sh("cut -d' ' -f5 /proc/$$/stat")).await;
    assert_eq!(out.stdout.trim(), out.pid.to_string(), "{out:?}");
    assert_ne!(out.stdout.trim(), nix::unistd::getpgrp().to_string());
}

async fn signal_dispositions_match_python(reaper: ReaperHandle) {
    // Under supervisord 4.3.0 a child sees SigBlk 0 and SigIgn 0x1001000 (SIGPIPE and
    // SIGXFSZ ignored, inherited from the Python interpreter). This process has tokio
    // handlers installed, SIGPIPE ignored by Rust, and (under cargo here) even the
    // glibc-reserved signal 32 ignored; none of that may reach the child.
    let out = run(&reaper, &sh("exec grep -E '^Sig(Blk|Ign)' /proc/self/status")).await;
    assert_eq!(out.stdout, "SigBlk:\t0000000000000000\nSigIgn:\t0000000001001000\n", "{out:?}");
}

async fn stdin_is_a_pipe(reaper: ReaperHandle) {
    let out = run_with(&reaper, &sh("tr a-z A-Z"), b"hello\n").await;
    assert_eq!(out.stdout, "HELLO\n", "{out:?}");
}

async fn exec_failure_is_exit_127_with_pythons_text(reaper: ReaperHandle) {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("badinterp");
    std::fs::write(&script, "#!/nonexistent/interpreter\n").expect("write");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    // resolve_program is happy (the file exists and is executable); execve is not.
    let program =
        spawn::resolve_program(script.to_str().expect("utf-8 path"), &[]).expect("resolves");
    let argv0 = script.display().to_string();
    let spec = SpawnSpec { program, argv: vec![argv0.clone(), "arg".into()], ..sh("") };
    let out = run(&reaper, &spec).await;
    assert_eq!(out.status, ExitStatus::Exited(127));
    assert_eq!(
        out.stderr,
        format!(
            "supervisor: couldn't exec {argv0}: ENOENT\nsupervisor: child process was not spawned\n"
        )
    );
    assert_eq!(out.stdout, "");

    let spec = SpawnSpec { redirect_stderr: true, ..spec };
    let out = run(&reaper, &spec).await;
    assert!(out.stdout.ends_with("supervisor: child process was not spawned\n"), "{out:?}");
}

async fn chdir_failure_is_exit_127_with_pythons_text(reaper: ReaperHandle) {
    let spec = SpawnSpec { cwd: Some("/nonexistent/dir".into()), ..sh("echo should not run") };
    let out = run(&reaper, &spec).await;
    assert_eq!(out.status, ExitStatus::Exited(127));
    assert_eq!(
        out.stderr,
        "supervisor: couldn't chdir to /nonexistent/dir: ENOENT\nsupervisor: child process was not spawned\n"
    );
    assert_eq!(out.stdout, "");
}

async fn user_switch(reaper: ReaperHandle) {
    let ghost = 3_999_999;
    let out = run(&reaper, &SpawnSpec { user: Some(ghost), ..sh("echo ran") }).await;
    assert_eq!(out.status, ExitStatus::Exited(127));
    assert_eq!(
        out.stderr,
        format!(
            "supervisor: couldn't setuid to {ghost}: Can't find uid {ghost}\nsupervisor: child process was not spawned\n"
        )
    );

    let Ok(nobody) = users::lookup_user("nobody") else {
        println!("  (no 'nobody' user; skipping the switch itself)");
        return;
    };
    let groups_before = nix::unistd::getgroups().unwrap_or_default();
    let out =
        run(&reaper, &SpawnSpec { user: Some(nobody.uid), ..sh("id -u; id -g; id -G") }).await;
    if nix::unistd::getuid().is_root() {
        let groups = users::supplementary_groups(&nobody, &users::etc_groups());
        let mut expected: Vec<String> = groups.iter().map(u32::to_string).collect();
        expected.sort();
        let got: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(got.first().copied(), Some(nobody.uid.to_string().as_str()), "{out:?}");
        assert_eq!(got.get(1).copied(), Some(nobody.gid.to_string().as_str()), "{out:?}");
        let mut got_groups: Vec<String> =
            got.get(2).map(|l| l.split(' ').map(str::to_owned).collect()).unwrap_or_default();
        got_groups.sort();
        assert_eq!(got_groups, expected, "{out:?}");
        // The child switches in our memory before it execs (CLONE_VM): the switch must have
        // been its own, not this process's (libc's setuid would reach our threads too).
        assert!(nix::unistd::getuid().is_root() && nix::unistd::geteuid().is_root());
        assert!(nix::unistd::getgid().as_raw() == 0 && nix::unistd::getegid().as_raw() == 0);
        assert_eq!(nix::unistd::getgroups().unwrap_or_default(), groups_before);
    } else {
        assert_eq!(
            out.stderr,
            format!(
                "supervisor: couldn't setuid to {}: Can't drop privilege as nonroot user\nsupervisor: child process was not spawned\n",
                nobody.uid
            )
        );
    }
}

async fn signal_death_is_reported(reaper: ReaperHandle) {
    let child = spawn::spawn(&sh("exec sleep 1000")).expect("spawn");
    let exit = reaper.watch(child.pid, child.birth).await;
    // Signal the whole group, as stopasgroup does; the group id is the pid.
    let pid = nix::unistd::Pid::from_raw(child.pid);
    if let Err(e) = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGTERM) {
        // Don't leave a `sleep 1000` behind when failing: the group must exist on return.
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        panic!("killpg right after spawn: {e}");
    }
    let reaped = exit.await.expect("exit");
    assert_eq!(
        reaped,
        Reaped { pid: child.pid, status: ExitStatus::Signaled { sig: libc::SIGTERM, core: false } }
    );
}

// ---------------------------------------------------------------------------------------
// Reaping

async fn exit_before_registration_is_delivered(reaper: ReaperHandle) {
    let child = spawn::spawn(&sh("exit 7")).expect("spawn");
    // Wait until the reaper has surely collected it, and only then register.
    poll_until("the child to be reaped", || reaped(child.pid)).await;
    let reaped = reaper.watch(child.pid, child.birth).await.await.expect("exit");
    assert_eq!(reaped.status, ExitStatus::Exited(7));
}

async fn many_children_all_routed(reaper: ReaperHandle) {
    let children: Vec<_> = (0..200)
        .map(|i| {
            let spec = SpawnSpec { redirect_stderr: true, ..sh(&format!("exit {}", i % 250)) };
            (i, spawn::spawn(&spec).expect("spawn"))
        })
        .collect();
    let mut waits = Vec::new();
    for (i, child) in &children {
        waits.push((*i, child.pid, reaper.watch(child.pid, child.birth).await));
    }
    for (i, pid, rx) in waits {
        let reaped = rx.await.expect("every child's exit arrives");
        assert_eq!(reaped, Reaped { pid, status: ExitStatus::Exited(i % 250) });
    }
}

async fn orphans_are_reaped_and_not_delivered(reaper: ReaperHandle) {
    // The child backgrounds a grandchild (detached from the pipes) and exits at once.
    let script = "sleep 1000 </dev/null >/dev/null 2>&1 & echo $!";
    let out = run(&reaper, &sh(script)).await;
    assert_eq!(out.status, ExitStatus::Exited(0));
    let grandchild: i32 = out.stdout.trim().parse().expect("grandchild pid");
    // It is now ours (subreaper). Kill it; the reaper must collect it though nobody watches.
    let stat = std::fs::read_to_string(format!("/proc/{grandchild}/stat")).unwrap_or_default();
    let ppid =
        stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().nth(1)).unwrap_or("");
    assert_eq!(ppid, std::process::id().to_string(), "the orphan was re-parented to us");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(grandchild),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill");
    poll_until("the orphan to be reaped", || reaped(grandchild)).await;
    // A later child is still routed normally.
    let out = run(&reaper, &sh("exit 5")).await;
    assert_eq!(out.status, ExitStatus::Exited(5));
}

// ---------------------------------------------------------------------------------------
// Signals and daemonizing

async fn daemon_signals_are_forwarded(_reaper: ReaperHandle) {
    let mut rx = signals::forward().expect("install handlers");
    let me = nix::unistd::Pid::this();
    use nix::sys::signal::Signal::*;
    for (sig, expected) in [
        (SIGHUP, DaemonSignal::Hup),
        (SIGUSR2, DaemonSignal::Usr2),
        (SIGTERM, DaemonSignal::Term),
        (SIGINT, DaemonSignal::Int),
        (SIGQUIT, DaemonSignal::Quit),
    ] {
        nix::sys::signal::kill(me, sig).expect("kill self");
        assert_eq!(rx.recv().await, Some(expected));
    }
}

const PROBE_REPORT: &str = "SYS_TEST_DAEMONIZE_REPORT";
const PROBE_DIR: &str = "SYS_TEST_DAEMONIZE_DIR";

/// The re-executed test binary as a would-be daemon: daemonize, describe the result in a
/// report file (written whole, then renamed into place), exit.
fn daemonize_probe(report: &Path) -> ! {
    let dir = std::env::var_os(PROBE_DIR).map(PathBuf::from);
    let outcome = daemonize::daemonize(dir.as_deref(), 0o027);
    let fd = |n: i32| {
        std::fs::read_link(format!("/proc/self/fd/{n}"))
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    };
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let umask = status.lines().find_map(|l| l.strip_prefix("Umask:\t")).unwrap_or("?").to_owned();
    let text = format!(
        "outcome={}\npid={}\nsid={}\npgid={}\ncwd={}\numask={umask}\nfds={} {} {}\n",
        match &outcome {
            Ok(Some(o)) => o.to_string(),
            Ok(None) => "none".into(),
            Err(e) => format!("error {e}"),
        },
        std::process::id(),
        nix::unistd::getsid(None).map(|p| p.to_string()).unwrap_or_default(),
        nix::unistd::getpgrp(),
        std::env::current_dir().map(|p| p.display().to_string()).unwrap_or_default(),
        fd(0),
        fd(1),
        fd(2),
    );
    let tmp = report.with_extension("tmp");
    let ok = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, report)).is_ok();
    std::process::exit(if ok { 0 } else { 1 })
}

async fn daemonize_detaches(reaper: ReaperHandle) {
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path().canonicalize().expect("canonical");
    let report = work.join("report");
    let exe = std::env::current_exe().expect("current exe");
    let mut env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    env.push((PROBE_REPORT.into(), report.clone().into()));
    env.push((PROBE_DIR.into(), work.clone().into()));
    let spec =
        SpawnSpec { program: exe.clone(), argv: vec![exe.display().to_string()], env, ..sh("") };
    let out = run(&reaper, &spec).await;
    // The original process exits 0 at once; the daemon carries on detached.
    assert_eq!(out.status, ExitStatus::Exited(0), "{out:?}");
    poll_until("the daemonized probe's report", || report.exists()).await;
    let text = std::fs::read_to_string(&report).expect("report");
    let field = |k: &str| {
        text.lines().find_map(|l| l.strip_prefix(&format!("{k}="))).unwrap_or("").to_owned()
    };
    assert_eq!(field("outcome"), format!("set current directory: '{}'", work.display()), "{text}");
    assert_ne!(field("pid"), out.pid.to_string(), "the daemon is the forked child: {text}");
    assert_eq!(field("sid"), field("pid"), "the daemon leads a new session: {text}");
    assert_eq!(field("pgid"), field("pid"), "{text}");
    assert_eq!(field("cwd"), work.display().to_string(), "{text}");
    assert_eq!(field("umask"), "0027", "{text}");
    assert_eq!(field("fds"), "/dev/null /dev/null /dev/null", "{text}");
    // The daemon was re-parented to us (subreaper) and is reaped like any orphan.
    let pid: i32 = field("pid").parse().expect("pid");
    poll_until("the daemonized probe to be reaped", || reaped(pid)).await;
}

// ---------------------------------------------------------------------------------------
// exec: checks

fn check_ctx<'a>(env: &'a [(String, String)], dir: Option<&'a Path>) -> ExecContext<'a> {
    ExecContext {
        process_name: "web",
        group_name: "edge",
        environment: env,
        daemon_env: &[],
        server_url: None,
        directory: dir,
        umask: None,
        user: None,
    }
}

const PATH_ENV: &[(&str, &str)] = &[("PATH", "/usr/bin:/bin")];

fn path_env() -> Vec<(String, String)> {
    PATH_ENV.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

async fn exec_check_passes_on_exit_zero(reaper: ReaperHandle) {
    let env = path_env();
    let spec = exec::prepare("true", &check_ctx(&env, None)).expect("prepare");
    assert_eq!(exec::attempt(&spec, &reaper, DEADLINE).await, Ok(()));
}

async fn exec_check_failure_says_why(reaper: ReaperHandle) {
    let env = path_env();
    let ctx = check_ctx(&env, None);
    let spec = exec::prepare("sh -c 'echo starting; echo not ready yet >&2; exit 3'", &ctx)
        .expect("prepare");
    assert_eq!(
        exec::attempt(&spec, &reaper, DEADLINE).await,
        Err("exit status 3: not ready yet".to_string())
    );
    let spec = exec::prepare("sh -c 'kill -TERM $$'", &ctx).expect("prepare");
    assert_eq!(
        exec::attempt(&spec, &reaper, DEADLINE).await,
        Err("terminated by SIGTERM".to_string())
    );
}

async fn exec_check_runs_like_the_program(reaper: ReaperHandle) {
    let dir = tempfile::Builder::new().prefix("sdchk").tempdir_in("/tmp").expect("tmp");
    let mut env = path_env();
    env.push(("WANT".into(), "yes".into()));
    let ctx = check_ctx(&env, Some(dir.path()));
    let script = "sh -c 'test \"$WANT\" = yes && test \"$SUPERVISOR_PROCESS_NAME\" = web && \
                  test \"$(pwd)\" = \"$0\" && touch ran' ";
    let cmd = format!("{script}{}", dir.path().display());
    let spec = exec::prepare(&cmd, &ctx).expect("prepare");
    assert_eq!(exec::attempt(&spec, &reaper, DEADLINE).await, Ok(()));
    assert!(dir.path().join("ran").exists());
}

async fn exec_check_timeout_kills_the_whole_group(reaper: ReaperHandle) {
    let dir = tempfile::Builder::new().prefix("sdchk").tempdir_in("/tmp").expect("tmp");
    let pids = dir.path().join("pids");
    let env = path_env();
    // A shell with a grandchild, both sleeping far past the timeout.
    let cmd = format!("sh -c 'sleep 300 & echo $$ $! > {}; wait'", pids.display());
    let spec = exec::prepare(&cmd, &check_ctx(&env, None)).expect("prepare");
    let got = exec::attempt(&spec, &reaper, Duration::from_secs(2)).await;
    assert_eq!(got, Err("timed out after 2s".to_string()));
    let text = std::fs::read_to_string(&pids).expect("the check wrote its pids");
    for pid in text.split_whitespace() {
        let pid: i32 = pid.parse().expect("a pid");
        poll_until(&format!("pid {pid} gone"), || reaped(pid)).await;
    }
}
