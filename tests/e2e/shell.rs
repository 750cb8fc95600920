//! supervisorctl's interactive shell against Python's: the same keystrokes on a
//! pseudo-terminal (Python's supervisorctl with its own daemon, ours with ours), and the
//! screens compared with pids and uptimes masked; the same commands piped on stdin, the
//! output compared byte for byte.

use std::path::{Path, PathBuf};

use crate::support::daemon::Daemon;
use crate::support::mask::mask_ctl;
use crate::support::pty::{Pty, Screen};
use crate::support::pydaemon::PyDaemon;
use crate::support::pyref::pyref;

const CONF: &str = "[supervisorctl]\nserverurl=unix://{dir}/sock\n\
[program:hello]\ncommand=sleep 1000\nstartsecs=0\n\
[program:pool]\ncommand=sleep 1000\nstartsecs=0\nnumprocs=2\n\
process_name=%(program_name)s_%(process_num)02d\n";

/// One side of a comparison: a supervisorctl and the config naming its daemon.
struct Side {
    ctl: PathBuf,
    conf: PathBuf,
    dir: PathBuf,
}

/// Runs `f` against Python's daemon and supervisorctl, then ours, with the same config.
fn both<T>(f: impl Fn(&Side) -> T) -> Option<(T, T)> {
    let py = pyref()?;
    let text = crate::daemon::conf(CONF);
    let pyd = PyDaemon::start(&py, &text);
    // `status` exits 0 once every process is RUNNING.
    let all_running = || {
        let st = std::process::Command::new(&py.supervisorctl)
            .args(["-c", &pyd.conf.display().to_string(), "status"])
            .output()
            .ok()?;
        st.status.success().then_some(())
    };
    crate::support::daemon::poll(
        "python's processes RUNNING",
        crate::support::daemon::DEADLINE,
        all_running,
    )
    .expect("python's processes RUNNING");
    let theirs = f(&Side {
        ctl: py.supervisorctl.clone(),
        conf: pyd.conf.clone(),
        dir: pyd.dir.path().to_path_buf(),
    });
    let d = Daemon::start(&text);
    d.ready();
    // Python's daemon has had its whole start-up to get there; ours must be as far along.
    for name in ["hello", "pool:pool_00", "pool:pool_01"] {
        d.wait_state(name, "RUNNING");
    }
    let link = d.path("supervisorctl");
    std::os::unix::fs::symlink(crate::support::bin(), &link).expect("symlink");
    let ours = f(&Side { ctl: link, conf: d.conf.clone(), dir: d.dir.path().to_path_buf() });
    Some((theirs, ours))
}

fn prompts(s: &Screen) -> usize {
    s.text().lines().filter(|l| l.starts_with("supervisor>")).count()
}

/// Sends `keys` and waits until a new prompt line reads `current`.
fn step(p: &mut Pty, keys: &str, current: &str) {
    let before = prompts(&Screen::of(&p.output));
    p.send(keys);
    p.read_until(&format!("{current:?} after {keys:?}"), |s| {
        prompts(s) > before && s.current() == current
    });
}

/// Sends `keys` and waits until the line being edited reads `current`.
fn edit(p: &mut Pty, keys: &str, current: &str) {
    p.send(keys);
    p.read_until(&format!("{current:?} after {keys:?}"), |s| s.current() == current);
}

fn shell(side: &Side, extra: &[&str]) -> Pty {
    let conf = side.conf.display().to_string();
    let mut args = vec!["-c", conf.as_str()];
    args.extend_from_slice(extra);
    let mut p = Pty::spawn(&side.ctl, &args, &side.dir);
    p.read_until("the first prompt", |s| s.current() == "supervisor> ");
    p
}

fn masked(p: &Pty, dir: &Path) -> String {
    mask_ctl(&Screen::of(&p.output).text(), dir)
}

#[test]
fn shell_session_on_a_terminal_matches_python() {
    let Some((theirs, ours)) = both(|side| {
        // `history_file` in the config (Python ignores `-r` when it reads a config file).
        let history = side.dir.join("history");
        let text = std::fs::read_to_string(&side.conf).expect("read conf");
        let text = text.replace(
            "[supervisorctl]\n",
            &format!("[supervisorctl]\nhistory_file={}\n", history.display()),
        );
        std::fs::write(&side.conf, text).expect("write conf");
        let mut p = shell(side, &["-r", "/nonexistent/ignored"]);
        step(&mut p, "status\r", "supervisor> ");
        step(&mut p, "help\r", "supervisor> ");
        step(&mut p, "help stop\r", "supervisor> ");
        step(&mut p, "sta\t\t", "supervisor> sta");
        edit(&mut p, "\x15", "supervisor> ");
        // The first Tab completes what all matches share; listing them takes two more
        // under GNU readline, one more here (the screens are the same after both).
        edit(&mut p, "stop p\t", "supervisor> stop pool:");
        step(&mut p, "\t\t", "supervisor> stop pool:");
        edit(&mut p, "\x15", "supervisor> ");
        edit(&mut p, "stop h\t", "supervisor> stop hello ");
        step(&mut p, "\r", "supervisor> ");
        step(&mut p, "start hello\r", "supervisor> ");
        // Up twice: the `stop hello ` before the start, then again the start.
        step(&mut p, "\x1b[A\x1b[A\r", "supervisor> ");
        step(&mut p, "\x1b[A\x1b[A\r", "supervisor> ");
        step(&mut p, "status hello\r", "supervisor> ");
        p.send("quit\r");
        let code = p.wait();
        let saved = std::fs::read_to_string(&history).unwrap_or_default();
        (masked(&p, &side.dir), code, saved)
    }) else {
        return;
    };
    assert!(theirs.0.contains("hello: stopped\nsupervisor> start hello\nhello: started"));
    assert_eq!(theirs.0, ours.0, "screen: python (left) vs ours (right)");
    assert_eq!((theirs.1, &theirs.2), (ours.1, &ours.2), "exit code and history file");
}

#[test]
fn end_of_input_and_ctrl_c_at_the_prompt_leave_like_python() {
    for keys in ["\x04", "\x03", "exit\r"] {
        let Some((theirs, ours)) = both(|side| {
            let mut p = shell(side, &[]);
            p.send(keys);
            let code = p.wait();
            (masked(&p, &side.dir), code)
        }) else {
            return;
        };
        assert_eq!(theirs, ours, "after {keys:?}: python (left) vs ours (right)");
        assert_eq!(ours.1, Some(0));
    }
}

#[test]
fn piped_commands_read_like_python() {
    let input = "status\nstop hello\nfoo bar\nhelp stop\n\nstatus nosuch\nstart hello\n\
                 shutdown\nn\nreload\nno\n?\ntail -5 hello\nstatus";
    let Some((theirs, ours)) = both(|side| {
        let conf = side.conf.display().to_string();
        let mut child = std::process::Command::new(&side.ctl)
            .args(["-c", &conf])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("run supervisorctl");
        std::io::Write::write_all(child.stdin.as_mut().expect("stdin"), input.as_bytes())
            .expect("write commands");
        drop(child.stdin.take());
        let out = child.wait_with_output().expect("wait");
        (mask_ctl(&String::from_utf8_lossy(&out.stdout), &side.dir), out.status.code())
    }) else {
        return;
    };
    assert!(theirs.0.contains("supervisor> hello: stopped\n"), "{}", theirs.0);
    assert_eq!(theirs, ours, "python (left) vs ours (right)");
}

#[test]
fn interactive_flag_with_a_command_runs_it_once() {
    let Some((theirs, ours)) = both(|side| {
        let conf = side.conf.display().to_string();
        let r = crate::support::run_as(&side.ctl, &["-c", &conf, "-i", "status", "nosuch"], None);
        (r.stdout, r.code)
    }) else {
        return;
    };
    assert_eq!(theirs, ours);
    assert_eq!(ours.1, Some(4));
}
