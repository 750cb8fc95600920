//! The issue-5 check: the same config and the same supervisorctl commands against Python
//! supervisord 4.3.0 with Python's supervisorctl, and against our daemon with ours. Output
//! (pids, uptimes and times masked) and exit codes must be identical, command by command.

use std::path::Path;

use crate::support::daemon::{DEADLINE, Daemon, poll};
use crate::support::mask::mask_ctl;
use crate::support::pydaemon::PyDaemon;
use crate::support::pyref::pyref;
use crate::support::{Run, run_as};

const PROGRAMS: &str = "[supervisorctl]\nserverurl=unix://{dir}/sock\n\
[program:web]\ncommand=sleep 100\nstartsecs=0\n\
[program:off]\ncommand=sleep 100\nautostart=false\nstartsecs=0\n\
[program:bad]\ncommand=sh -c 'exit 3'\nstartretries=0\nstartsecs=1\n\
[program:sig]\ncommand=sh -c 'trap \"\" HUP; exec sleep 100'\nstartsecs=0\n\
[program:multi]\ncommand=sleep 100\nprocess_name=%(program_name)s_%(process_num)02d\nnumprocs=2\nstartsecs=0\n\
[group:grp]\nprograms=a,b\n\
[program:a]\ncommand=sleep 100\nstartsecs=0\n\
[program:b]\ncommand=sleep 100\nstartsecs=0\n";

/// (command, whether its output lines may come in any order under Python: its group and
/// "all" operations report in completion order, ours in priority order).
const COMMANDS: &[(&str, bool)] = &[
    ("status", false),
    ("status web", false),
    ("status nope", false),
    ("status grp:*", false),
    ("status web nope", false),
    ("start off", false),
    ("start off", false),
    ("stop off", false),
    ("stop off", false),
    ("status off", false),
    ("start nope", false),
    ("start grp:nope", false),
    ("start nogroup:*", false),
    ("stop grp:*", true),
    ("start grp:*", true),
    ("restart web", false),
    ("signal HUP sig", false),
    ("signal FOO sig", false),
    ("signal HUP off", false),
    ("signal", false),
    ("pid nope", false),
    ("avail", false),
    ("reread", false),
    ("clear web", false),
    ("clear nope", false),
    ("tail web", false),
    ("tail web stderr", false),
    ("tail -5 web", false),
    ("tail nope", false),
    ("start bad", false),
    ("status bad", false),
    ("stop multi:*", true),
    ("start multi:*", true),
    ("start", false),
    ("stop", false),
    ("version", false),
    ("help", false),
    ("help status", false),
    ("help nosuch", false),
    ("bogus", false),
];

/// After the config changes: a new program, and `off` gone.
const AFTER_EDIT: &[(&str, bool)] = &[
    ("reread", false),
    ("update", false),
    ("status newp", false),
    ("avail", false),
    ("remove web", false),
    ("stop web", false),
    ("remove web", false),
    ("add web", false),
    ("add web", false),
    ("stop all", true),
    ("status", false),
];

fn settled(run: impl Fn(&[&str]) -> Run) -> Result<(), String> {
    poll("all processes settled", DEADLINE, || {
        let r = run(&["status"]);
        let s = &r.stdout;
        (s.contains("bad ")
            && s.contains("FATAL")
            && !s.contains("STARTING")
            && !s.contains("BACKOFF"))
        .then_some(())
    })
}

fn run_all(
    run: &dyn Fn(&[&str]) -> Run,
    commands: &[(&str, bool)],
    dir: &Path,
) -> Vec<(String, String, Option<i32>)> {
    commands
        .iter()
        .map(|(cmd, unordered)| {
            let words: Vec<&str> = cmd.split(' ').collect();
            let r = run(&words);
            let mut text = mask_ctl(&r.stdout, dir);
            if *unordered {
                let mut lines: Vec<&str> = text.lines().collect();
                lines.sort_unstable();
                text = lines.join("\n") + "\n";
            }
            (cmd.to_string(), text, r.code)
        })
        .collect()
}

#[test]
fn supervisorctl_output_and_exit_codes_match_python() {
    let Some(py) = pyref() else { return };
    // Python side.
    let text = crate::daemon::conf(PROGRAMS);
    let pyd = PyDaemon::start(&py, &text);
    let (pconf, pdir) = (pyd.conf.clone(), pyd.dir.path().to_path_buf());
    let pconf_s = pconf.display().to_string();
    let py_run = |args: &[&str]| {
        let mut all = vec!["-c", pconf_s.as_str()];
        all.extend_from_slice(args);
        run_as(&py.supervisorctl, &all, Some(&pdir))
    };
    // Our side.
    let d = Daemon::start(&text);
    let link = d.path("supervisorctl");
    std::os::unix::fs::symlink(crate::support::bin(), &link).expect("symlink");
    let oconf = d.conf.display().to_string();
    let our_run = |args: &[&str]| {
        let mut all = vec!["-c", oconf.as_str()];
        all.extend_from_slice(args);
        run_as(&link, &all, Some(d.dir.path()))
    };
    settled(py_run).unwrap_or_else(|e| panic!("python: {e}"));
    settled(our_run).unwrap_or_else(|e| panic!("ours: {e}\n{}", d.explain()));
    let theirs = run_all(&py_run, COMMANDS, &pdir);
    let ours = run_all(&our_run, COMMANDS, d.dir.path());
    // The same edit on both sides: add a program, remove `off`.
    for conf in [&pconf, &d.conf] {
        let text = std::fs::read_to_string(conf).expect("read conf");
        let text = text.replace("[program:off]", "[program:newp]");
        std::fs::write(conf, text).expect("edit conf");
    }
    let theirs_after = run_all(&py_run, AFTER_EDIT, &pdir);
    let ours_after = run_all(&our_run, AFTER_EDIT, d.dir.path());
    // The oracle really answered: its status lists the programs.
    assert!(
        theirs[0].1.contains("web                              RUNNING   pid N, uptime U"),
        "{:?}",
        theirs[0]
    );
    assert!(
        theirs_after
            .iter()
            .any(|(c, out, _)| c == "update" && out.contains("newp: added process group"))
    );
    let mut diffs = Vec::new();
    for (t, o) in theirs.iter().chain(&theirs_after).zip(ours.iter().chain(&ours_after)) {
        if t != o {
            diffs.push(format!(
                "$ supervisorctl {}\n--- python (exit {:?})\n{}--- ours (exit {:?})\n{}",
                t.0, t.2, t.1, o.2, o.1
            ));
        }
    }
    assert!(
        diffs.is_empty(),
        "{} of {} commands differ:\n{}",
        diffs.len(),
        theirs.len() + theirs_after.len(),
        diffs.join("\n")
    );
}

/// Our supervisorctl reads `status` and `pid all` from our daemon's slim
/// `weka.getAllProcessRows`; Python's reads `getAllProcessInfo` over XML-RPC. Against the
/// same daemon both must print the same bytes and exit alike.
#[test]
fn status_through_the_slim_method_matches_pythons_supervisorctl_on_our_daemon() {
    let Some(py) = pyref() else { return };
    let d = Daemon::start(&crate::daemon::conf(PROGRAMS));
    let conf = d.conf.display().to_string();
    let run = |program: &Path, args: &[&str]| {
        let mut all = vec!["-c", conf.as_str()];
        all.extend_from_slice(args);
        run_as(program, &all, Some(d.dir.path()))
    };
    let ours = d.path("supervisorctl");
    std::os::unix::fs::symlink(crate::support::bin(), &ours).expect("symlink");
    let our_run = |args: &[&str]| run(&ours, args);
    settled(our_run).unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
    for cmd in ["status", "status web nope", "status grp:*", "status bad", "status off", "pid all"]
    {
        let words: Vec<&str> = cmd.split(' ').collect();
        // Uptimes may tick between the two runs; pids may not differ.
        let theirs = run(&py.supervisorctl, &words);
        let mine = our_run(&words);
        let mask = |s: &str| {
            s.lines()
                .map(|l| {
                    crate::support::mask::mask_after(
                        l,
                        "uptime ",
                        |c| c.is_ascii_digit() || c == ':',
                        "U",
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(
            (mask(&mine.stdout), mine.code),
            (mask(&theirs.stdout), theirs.code),
            "$ supervisorctl {cmd}"
        );
        assert!(!theirs.stdout.is_empty(), "python's supervisorctl answered {cmd}");
    }
}
