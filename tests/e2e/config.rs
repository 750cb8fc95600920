//! `supervisord --check` on real configs, and broken configs failing fast.

use std::path::{Path, PathBuf};

use crate::support::{run, tempdir};

fn example(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The `--check` rows as (group, name, priority, command) with whitespace collapsed
/// between the first three columns.
fn rows(stdout: &str) -> Vec<(String, String, String, String)> {
    stdout
        .lines()
        .skip(1)
        .map(|l| {
            let mut parts = l.split_whitespace();
            let mut next = || parts.next().unwrap_or_default().to_string();
            let (g, n, p) = (next(), next(), next());
            let command = parts.collect::<Vec<_>>().join(" ");
            (g, n, p, command)
        })
        .collect()
}

fn row(g: &str, n: &str, p: &str, c: &str) -> (String, String, String, String) {
    (g.into(), n.into(), p.into(), c.into())
}

fn check(conf: &Path) -> crate::support::Run {
    let conf = conf.to_string_lossy().into_owned();
    let r = run(&["--check", "-c", &conf], None);
    r.expect_code(0);
    assert!(r.stdout.starts_with("GROUP"), "{}", r.explain());
    r
}

#[test]
fn python_sample_config_checks() {
    // `echo_supervisord_conf` output with its example program uncommented.
    let r = check(&example("examples/python-sample/supervisord.conf"));
    assert_eq!(
        rows(&r.stdout),
        [row("theprogramname", "theprogramname", "999", "/bin/cat")],
        "{}",
        r.explain()
    );
}

#[test]
fn container_config_checks_in_priority_order() {
    let r = check(&example("examples/container/supervisord.conf"));
    let names: Vec<String> =
        rows(&r.stdout).into_iter().map(|(_, n, p, _)| format!("{n}:{p}")).collect();
    assert_eq!(
        names,
        ["config_generator:1", "brightstaff:10", "envoy:10", "access_log_tail:20"],
        "{}",
        r.explain()
    );
}

/// The lifecycle examples check, with their options listed under their rows.
#[test]
fn lifecycle_examples_check() {
    let r = check(&example("examples/container/gateway.conf"));
    let out = &r.stdout;
    for want in [
        "    depends_on = config_generator:completed\n",
        "    ready_check = http://127.0.0.1:9091/ready (timeout 30s, interval 0.5s, attempt timeout 1s)\n",
        "    depends_on = config_generator:completed, brightstaff:running\n",
        "    essential = true\n",
    ] {
        assert!(out.contains(want), "missing {want:?}\n{}", r.explain());
    }
    assert!(r.stderr.is_empty(), "{}", r.explain());
    let r = check(&example("examples/sidecar/supervisord.conf"));
    assert!(r.stdout.contains("    ready_check = notify ("), "{}", r.explain());
    assert!(r.stdout.contains("    depends_on = app:running\n"), "{}", r.explain());
    assert!(r.stderr.is_empty(), "{}", r.explain());
}

#[test]
fn numprocs_groups_and_includes_check() {
    let dir = example("examples/numprocs");
    let r = check(&dir.join("supervisord.conf"));
    let conf_d = dir.join("conf.d");
    let d = conf_d.display();
    assert_eq!(
        rows(&r.stdout),
        [
            row("ticker", "ticker", "999", "cat"),
            row("web", "api_01", "10", "sh -c 'exec sleep 1000' api-01"),
            row("web", "api_02", "10", "sh -c 'exec sleep 1000' api-02"),
            row("web", "api_03", "10", "sh -c 'exec sleep 1000' api-03"),
            row("web", "static", "20", "sh -c 'exec sleep 1000' static"),
            row("worker", "worker0", "200", &format!("sh -c 'exec sleep 1000' {d} worker 0/2")),
            row("worker", "worker1", "200", &format!("sh -c 'exec sleep 1000' {d} worker 1/2")),
        ],
        "{}",
        r.explain()
    );
}

#[test]
fn bundled_config_checks() {
    let r = check(&example("conf/supervisord.conf"));
    let names: Vec<String> = rows(&r.stdout).into_iter().map(|(_, n, _, _)| n).collect();
    assert_eq!(names, ["ticker", "flaky", "sleeper_0", "sleeper_1"], "{}", r.explain());
}

/// A broken config body (after a valid header that would create a socket and a pidfile)
/// and what its error line must name.
struct Broken {
    body: &'static str,
    section: &'static str,
    option: Option<&'static str>,
}

const BROKEN: &[Broken] = &[
    Broken {
        body: "[program:web]\ncommand=/bin/web\ndepends_on=db\n",
        section: "[program:web]",
        option: Some("depends_on"),
    },
    Broken {
        body: "[program:a]\ncommand=/bin/a\ndepends_on=b\n[program:b]\ncommand=/bin/b\ndepends_on=a:started\n",
        section: "[program:a]",
        option: Some("depends_on"),
    },
    Broken {
        body: "[program:web]\ncommand=/bin/web\nready_check=tcp:localhost\n",
        section: "[program:web]",
        option: Some("ready_check"),
    },
    Broken {
        body: "[program:web]\ncommand=/bin/web\nhealth_check=log:ready\n",
        section: "[program:web]",
        option: Some("health_check"),
    },
    Broken {
        body: "[program:web]\ncommand=/bin/web\nrestart_limit=five/60\n",
        section: "[program:web]",
        option: Some("restart_limit"),
    },
    Broken {
        body: "[program:web]\ncommand=/bin/web\nstartsecs=abc\n",
        section: "[program:web]",
        option: Some("startsecs"),
    },
    Broken {
        body: "[program:web]\ncommand=/bin/web\nnumprocs=2\n",
        section: "[program:web]",
        option: Some("process_name"),
    },
    Broken {
        body: "[program:web]\ncommand=/bin/web\nstopsignal=FOO\n",
        section: "[program:web]",
        option: Some("stopsignal"),
    },
    Broken {
        body: "[program:web]\ncommand=/bin/web\nexitcodes=0,256\n",
        section: "[program:web]",
        option: Some("exitcodes"),
    },
    Broken {
        body: "[program:web]\ncommand=/bin/web\nautorestart=maybe\n",
        section: "[program:web]",
        option: Some("autorestart"),
    },
    Broken {
        body: "[program:web]\ncommand=/bin/web\nenvironment=A=1,B\n",
        section: "[program:web]",
        option: Some("environment"),
    },
    Broken {
        body: "[group:g]\nprograms=web,nope\n[program:web]\ncommand=/bin/web\n",
        section: "[group:g]",
        option: Some("programs"),
    },
    Broken {
        body: "[program:web]\ncommand=/bin/web\nstdout_logfile=/nonexistent/dir/x.log\n",
        section: "[program:web]",
        option: Some("stdout_logfile"),
    },
    Broken {
        body: "[program:web]\ncommand=/bin/web %(ENV_SD_SURELY_UNSET)s\n",
        section: "[program:web]",
        option: Some("command"),
    },
    Broken {
        body: "[eventlistener:l]\ncommand=/bin/l\nevents=FOO\n",
        section: "[eventlistener:l]",
        option: Some("events"),
    },
    Broken {
        body: "[inet_http_server]\nport=70000\n",
        section: "[inet_http_server]",
        option: Some("port"),
    },
    Broken { body: "[program:web]\nautostart=true\n", section: "[program:web]", option: None },
];

#[test]
fn broken_configs_fail_fast_naming_file_section_option_and_create_nothing() {
    for b in BROKEN {
        let dir = tempdir();
        let sock = dir.path().join("s.sock");
        let pid = dir.path().join("sd.pid");
        let conf = dir.path().join("bad.conf");
        let text = format!(
            "[supervisord]\npidfile={}\nlogfile={}/sd.log\n[unix_http_server]\nfile={}\n{}",
            pid.display(),
            dir.path().display(),
            sock.display(),
            b.body
        );
        std::fs::write(&conf, &text).expect("write config");
        for args in [vec!["-n", "-c"], vec!["--check", "-c"]] {
            let mut args: Vec<&str> = args;
            let conf_s = conf.to_string_lossy().into_owned();
            args.push(&conf_s);
            let r = run(&args, Some(dir.path()));
            r.expect_code(2);
            let line = r.stderr.lines().next().unwrap_or_default();
            let ctx = format!("config:\n{text}\n{}", r.explain());
            assert!(
                line.starts_with(&format!("Error: {}:", conf.display())),
                "file not named\n{ctx}"
            );
            assert!(line.contains(b.section), "section not named\n{ctx}");
            if let Some(option) = b.option {
                assert!(line.contains(&format!(" {option}: ")), "option not named\n{ctx}");
            }
            assert!(r.stdout.is_empty(), "{ctx}");
            let left: Vec<_> = std::fs::read_dir(dir.path())
                .expect("read temp dir")
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            assert_eq!(left, ["bad.conf"], "something was created\n{ctx}");
        }
    }
}

#[test]
fn errors_in_included_files_name_the_included_file() {
    let dir = tempdir();
    std::fs::create_dir(dir.path().join("conf.d")).expect("mkdir");
    std::fs::write(dir.path().join("main.conf"), "[supervisord]\n[include]\nfiles=conf.d/*.conf\n")
        .expect("write");
    let inc = dir.path().join("conf.d/web.conf");
    std::fs::write(&inc, "[program:web]\ncommand=/bin/web\nstartretries=x\n").expect("write");
    let r = run(&["--check", "-c", "main.conf"], Some(dir.path()));
    r.expect_code(2);
    let want = format!(
        "Error: {}:3: [program:web] startretries: invalid value 'x': expected an integer\n",
        inc.display()
    );
    assert_eq!(r.stderr, want, "{}", r.explain());
}

#[test]
fn config_is_found_on_the_search_path() {
    let dir = tempdir();
    std::fs::write(
        dir.path().join("supervisord.conf"),
        "[supervisord]\n[program:found]\ncommand=/bin/true\n",
    )
    .expect("write");
    let r = run(&["--check"], Some(dir.path()));
    r.expect_code(0);
    assert_eq!(rows(&r.stdout), [row("found", "found", "999", "/bin/true")], "{}", r.explain());
}

#[test]
fn usage_errors_help_and_version_match_python() {
    let bin = crate::support::bin();
    let argv0 = bin.display().to_string();
    let r = run(&["-Z"], None);
    r.expect_code(2);
    assert_eq!(
        r.stderr,
        format!("Error: option -Z not recognized\nFor help, use {argv0} -h\n"),
        "{}",
        r.explain()
    );

    let r = run(&["-c", "/nonexistent.conf"], None);
    r.expect_code(2);
    assert_eq!(
        r.stderr,
        format!("Error: could not find config file /nonexistent.conf\nFor help, use {argv0} -h\n")
    );

    let r = run(&["-h"], None);
    r.expect_code(0);
    assert!(r.stdout.contains("supervisord -- run a set of applications"), "{}", r.explain());
    assert!(r.stdout.contains(&format!("Usage: {argv0} [options]")), "{}", r.explain());
    assert!(r.stdout.contains("-l/--logfile FILENAME -- use FILENAME as"), "{}", r.explain());

    let r = run(&["-v"], None);
    r.expect_code(0);
    assert_eq!(r.stdout, "4.3.0\n");
}

#[test]
fn warnings_do_not_fail_the_check() {
    let dir = tempdir();
    std::fs::write(
        dir.path().join("w.conf"),
        "[supervisord]\n[program:a]\ncommand=/bin/a\nautorestrat=true\n",
    )
    .expect("write");
    let r = run(&["--check", "-c", "w.conf"], Some(dir.path()));
    r.expect_code(0);
    assert_eq!(
        r.stderr,
        "Warning: w.conf:4: [program:a] autorestrat: ignored: unknown option\n",
        "{}",
        r.explain()
    );
}

/// Python's supervisord ignores the lifecycle options, so a config that uses every one of
/// them still loads and runs there.
#[test]
fn python_supervisord_runs_a_config_with_lifecycle_options() {
    let Some(py) = crate::support::pyref::pyref() else { return };
    let body = "[program:gen]\ncommand=true\nautorestart=false\nstartsecs=0\n\
        [program:web]\ncommand=sleep 100\nstartsecs=0\ndepends_on=gen:completed\n\
        ready_check=tcp:127.0.0.1:9\nready_timeout=5\nready_check_interval=0.5\n\
        ready_check_timeout=1\nhealth_check=exec:true\nhealth_check_interval=5\n\
        health_check_timeout=1\nhealth_check_retries=2\nessential=true\n\
        restart_backoff_initial=1\nrestart_backoff_max=30\nrestart_limit=5/60\n";
    let text = crate::daemon::conf(body);
    let ours = {
        let dir = tempdir();
        let conf = dir.path().join("c.conf");
        std::fs::write(&conf, text.replace("{dir}", &dir.path().display().to_string()))
            .expect("write conf");
        check(&conf)
    };
    assert!(ours.stdout.contains("    essential = true\n"), "{}", ours.explain());
    let pyd = crate::support::pydaemon::PyDaemon::start(&py, &text);
    let url = format!("unix://{}", pyd.sock().display());
    crate::support::daemon::poll("python's web RUNNING", crate::support::daemon::DEADLINE, || {
        let r = crate::support::run_as(&py.supervisorctl, &["-s", &url, "status", "web"], None);
        r.stdout.contains("RUNNING").then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn values_python_accepts_start_with_a_warning() {
    let dir = tempdir();
    std::fs::write(
        dir.path().join("s.conf"),
        "[supervisord]\nminfds=-1\n[program:neg]\ncommand=/bin/true\nstartsecs=-1\nstartretries=-1\n\
         stopwaitsecs=-1\n[program:none]\ncommand=/bin/true\nnumprocs=0\n\
         [eventlistener:l]\ncommand=/bin/cat\nevents=TICK_60\nresult_handler=mymod:handler\n",
    )
    .expect("write");
    let r = run(&["--check", "-c", "s.conf"], Some(dir.path()));
    r.expect_code(0);
    for want in [
        "s.conf:2: [supervisord] minfds: minfds=-1 is negative",
        "s.conf:5: [program:neg] startsecs: startsecs=-1 is negative: the process is RUNNING as soon as it is spawned",
        "s.conf:6: [program:neg] startretries: startretries=-1 is negative",
        "s.conf:7: [program:neg] stopwaitsecs: stopwaitsecs=-1 is negative",
        "s.conf:14: [eventlistener:l] result_handler: result_handler=mymod:handler is Python code",
    ] {
        assert!(r.stderr.contains(want) || r.stdout.contains(want), "{want}\n{}", r.explain());
    }
    assert!(!r.stdout.contains("none "), "numprocs=0 has no processes\n{}", r.explain());
}
