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
    both_with(&crate::daemon::conf(CONF), &[], f)
}

/// [`both`] with the config `text`; `creds` are supervisorctl options that let the
/// readiness checks through an authenticating server.
fn both_with<T>(text: &str, creds: &[&str], f: impl Fn(&Side) -> T) -> Option<(T, T)> {
    let py = pyref()?;
    // Every line of `status` says RUNNING (its exit status counts STARTING as running).
    let all_running = |ctl: &Path, conf: &Path| {
        let st = std::process::Command::new(ctl)
            .arg("-c")
            .arg(conf)
            .args(creds)
            .arg("status")
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&st.stdout);
        let lines: Vec<&str> = text.lines().collect();
        (lines.len() == 3 && lines.iter().all(|l| l.contains(" RUNNING "))).then_some(())
    };
    let wait = |ctl: &Path, conf: &Path, who: &str| {
        crate::support::daemon::poll(
            &format!("{who} processes RUNNING"),
            crate::support::daemon::DEADLINE,
            || all_running(ctl, conf),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    };
    let pyd = PyDaemon::start(&py, text);
    wait(&py.supervisorctl, &pyd.conf, "python's");
    let theirs = f(&Side {
        ctl: py.supervisorctl.clone(),
        conf: pyd.conf.clone(),
        dir: pyd.dir.path().to_path_buf(),
    });
    let d = Daemon::start(text);
    if creds.is_empty() {
        d.ready();
    }
    let link = d.path("supervisorctl");
    std::os::unix::fs::symlink(crate::support::bin(), &link).expect("symlink");
    // Python's daemon has had its whole start-up to get there; ours must be as far along.
    wait(&link, &d.conf, "our");
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

#[test]
fn the_shell_asks_for_credentials_like_python() {
    // A server that wants a password, a client config without one: Python's shell says
    // so, asks (the password without echo), and runs the command again; a wrong answer is
    // asked again.
    let text = crate::daemon::conf(CONF)
        .replace("[unix_http_server]\n", "[unix_http_server]\nusername=bob\npassword=pw\n");
    let Some((theirs, ours)) = both_with(&text, &["-u", "bob", "-p", "pw"], |side| {
        let conf = side.conf.display().to_string();
        let mut p = Pty::spawn(&side.ctl, &["-c", conf.as_str()], &side.dir);
        p.read_until("the username prompt", |s| s.current() == "Username:");
        p.send("bob\r");
        p.read_until("the password prompt", |s| s.current() == "Password:");
        p.send("wrong\r");
        p.read_until("the second username prompt", |s| {
            s.current() == "Username:" && s.text().matches("Username:").count() == 2
        });
        p.send("bob\r");
        p.read_until("the second password prompt", |s| {
            s.current() == "Password:" && s.text().matches("Password:").count() == 2
        });
        p.send("pw\r");
        p.read_until("the first prompt", |s| s.current() == "supervisor> ");
        step(&mut p, "status hello\r", "supervisor> ");
        p.send("quit\r");
        let code = p.wait();
        (masked(&p, &side.dir), code)
    }) else {
        return;
    };
    assert!(!theirs.0.contains("wrong"), "python echoed the password:\n{}", theirs.0);
    assert!(theirs.0.contains("hello                            RUNNING"), "{}", theirs.0);
    assert_eq!(theirs, ours, "python (left) vs ours (right)");
}
