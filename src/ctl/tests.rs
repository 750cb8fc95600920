//! supervisorctl against Python's own transcripts.
//!
//! `testdata/python-4.3.0.jsonl` holds one line per run of the real supervisorctl 4.3.0
//! (recorded as `testdata/record.sh` describes, with `testdata/capture.py`): its
//! arguments, every XML-RPC call it made with the result, fault or errno, its exact
//! stdout and its exit status. [`Replay`] plays those calls back as our [`Rpc`]: each
//! call we make must be the next recorded one, method and params. Python's upcheck
//! (`getVersion`) calls that we skip are stepped over, and when one failed, our first
//! call fails the same way. Nothing is masked: the same pids, uptimes and dates go in
//! and must come out. The only normalisation is the `file: … line: …` tail of an
//! uncaught-exception line, which names a Python source file.

use std::collections::VecDeque;

use serde_json::Value as Json;

use super::client::CallError;
use super::commands::{Ctl, Env, Rpc, StdinLine};
use super::*;
use crate::fault::Fault;
use crate::rpc::value::Value;

const TRANSCRIPTS: &str = include_str!("testdata/python-4.3.0.jsonl");

#[derive(Debug)]
struct Recorded {
    method: String,
    params: Vec<Value>,
    outcome: Result<Value, CallError>,
}

fn outcome(call: &Json) -> Result<Value, CallError> {
    if let Some(f) = call.get("fault") {
        let code = f[0].as_i64().unwrap_or(0) as i32;
        return Err(CallError::Fault(Fault { code, string: f[1].as_str().unwrap_or("").into() }));
    }
    if let Some(e) = call.get("oserror") {
        let errno = e.as_i64().map(|n| n as i32);
        return Err(CallError::Io { errno, message: String::new() });
    }
    if let Some(status) = call.get("http") {
        return Err(CallError::Http {
            status: status.as_u64().unwrap_or(0) as u16,
            reason: "Unauthorized".into(),
        });
    }
    Ok(serde_json::from_value(call["result"].clone()).expect("a recorded result"))
}

/// Plays back recorded calls.
struct Replay {
    url: String,
    calls: VecDeque<Recorded>,
    log: Vec<String>,
    /// Credentials set by the shell, in order.
    credentials: Vec<(String, String)>,
}

impl Replay {
    fn new(url: &str, calls: Vec<Recorded>) -> Replay {
        Replay { url: url.into(), calls: calls.into(), log: Vec::new(), credentials: Vec::new() }
    }
}

impl Rpc for Replay {
    fn call(&mut self, method: &str, params: &[Value]) -> Result<Value, CallError> {
        self.log.push(method.to_string());
        loop {
            let Some(next) = self.calls.pop_front() else {
                panic!("unexpected call {method}{params:?}: nothing more was recorded");
            };
            if next.method == "supervisor.getVersion" && method != "supervisor.getVersion" {
                // A skipped upcheck: a failure there is what our first call meets.
                match next.outcome {
                    Ok(_) => continue,
                    Err(e) => return Err(e),
                }
            }
            assert_eq!((next.method.as_str(), &next.params[..]), (method, params), "call order");
            return next.outcome;
        }
    }
    fn serverurl(&self) -> &str {
        &self.url
    }
    fn set_serverurl(&mut self, url: &str) {
        self.url = url.into();
    }
    fn set_credentials(&mut self, username: &str, password: &str) {
        self.credentials.push((username.into(), password.into()));
    }
}

/// A terminal that is interrupted after `polls` pauses and types scripted lines.
struct Script {
    polls: usize,
    paused: usize,
    input: VecDeque<StdinLine>,
    /// Answers to prompts (`ask` and `ask_password`), with the prompts asked.
    answers: VecDeque<String>,
    asked: Vec<String>,
}

impl Script {
    fn new(polls: usize) -> Script {
        Script {
            polls,
            paused: 0,
            input: VecDeque::new(),
            answers: VecDeque::new(),
            asked: Vec::new(),
        }
    }
}

impl Env for Script {
    fn interrupted(&self) -> bool {
        self.paused >= self.polls
    }
    fn pause(&mut self) {
        self.paused += 1;
    }
    fn stdin_line(&mut self) -> StdinLine {
        self.input.pop_front().unwrap_or(StdinLine::Nothing)
    }
    fn ask(&mut self, prompt: &str) -> Option<String> {
        self.asked.push(prompt.into());
        self.answers.pop_front()
    }
    fn ask_password(&mut self, prompt: &str) -> Option<String> {
        self.ask(prompt)
    }
}

/// Strips what follows `file:` in Python's uncaught-exception lines.
fn normalize(stdout: &str) -> String {
    stdout
        .split('\n')
        .map(|l| match (l.starts_with("error: <class '"), l.rfind(": file: ")) {
            (true, Some(i)) => format!("{}: file: F line: N", &l[..i]),
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

struct Outcome {
    stdout: String,
    stderr: String,
    exit: u8,
    replay: Replay,
}

fn run_line(rpc: Replay, line: &str, env: &mut dyn Env) -> Outcome {
    let mut rpc = rpc;
    let mut out = Vec::new();
    let mut err = Vec::new();
    let exit = {
        let mut ctl = Ctl::new(&mut rpc, &mut out, &mut err, env);
        ctl.onecmd(line);
        ctl.exit
    };
    Outcome {
        stdout: String::from_utf8(out).expect("utf-8 stdout"),
        stderr: String::from_utf8(err).expect("utf-8 stderr"),
        exit,
        replay: rpc,
    }
}

#[test]
fn every_recorded_python_run_is_reproduced() {
    let mut checked = 0;
    for (n, line) in TRANSCRIPTS.lines().enumerate() {
        let t: Json = serde_json::from_str(line).expect("transcript json");
        let args: Vec<String> = t["args"]
            .as_array()
            .expect("args")
            .iter()
            .filter_map(|a| a.as_str().map(String::from))
            .collect();
        // Every recorded run is `-c sup.conf <words…>`.
        let words = args.get(2..).unwrap_or(&[]).join(" ");
        let calls = t["calls"]
            .as_array()
            .expect("calls")
            .iter()
            .map(|c| Recorded {
                method: c["method"].as_str().unwrap_or("").into(),
                params: serde_json::from_value(c["params"].clone()).unwrap_or_default(),
                outcome: outcome(c),
            })
            .collect();
        let got =
            run_line(Replay::new("unix:///tmp/ctlref/sock", calls), &words, &mut Script::new(0));
        let want = t["stdout"].as_str().expect("stdout");
        assert_eq!(
            (normalize(&got.stdout), got.exit),
            (normalize(want), t["rc"].as_u64().expect("rc") as u8),
            "transcript line {}: supervisorctl {words}",
            n + 1
        );
        let left: Vec<_> =
            got.replay.calls.iter().filter(|c| c.method != "supervisor.getVersion").collect();
        assert!(left.is_empty(), "line {}: {words}: calls not made: {left:?}", n + 1);
        checked += 1;
    }
    assert!(checked > 150, "only {checked} transcripts");
}

fn rec(method: &str, params: Vec<Value>, outcome: Result<Value, CallError>) -> Recorded {
    Recorded { method: method.into(), params, outcome }
}

fn io(errno: i32) -> CallError {
    CallError::Io { errno: Some(errno), message: String::new() }
}

fn tail_info(offset: i64) -> Value {
    Value::Array(vec![Value::str(""), Value::Int(offset), Value::Bool(false)])
}

fn s(v: &str) -> Value {
    Value::str(v)
}

fn i(v: i64) -> Value {
    Value::Int(v)
}

#[test]
fn connection_failures_read_like_pythons_upcheck() {
    // Observed with 4.3.0 (no daemon on the socket / port):
    // status → "<url> no such file" rc 4; start x → rc 7; ECONNREFUSED → rc 4 (both);
    // shutdown → "ERROR: <url> … (already shut down?)" rc 1; avail → raw error rc 1.
    let url = "http://127.0.0.1:19999";
    let cases: Vec<(&str, &str, i32, &str, u8)> = vec![
        (
            "status",
            "supervisor.getAllProcessInfo",
            libc::ECONNREFUSED,
            "http://127.0.0.1:19999 refused connection\n",
            4,
        ),
        (
            "status",
            "supervisor.getAllProcessInfo",
            libc::ENOENT,
            "http://127.0.0.1:19999 no such file\n",
            4,
        ),
        (
            "start x",
            "supervisor.startProcess",
            libc::ECONNREFUSED,
            "http://127.0.0.1:19999 refused connection\n",
            4,
        ),
        (
            "start x",
            "supervisor.startProcess",
            libc::ENOENT,
            "http://127.0.0.1:19999 no such file\n",
            7,
        ),
        (
            "shutdown",
            "supervisor.shutdown",
            libc::ECONNREFUSED,
            "ERROR: http://127.0.0.1:19999 refused connection (already shut down?)\n",
            1,
        ),
        (
            "avail",
            "supervisor.getAllConfigInfo",
            libc::ECONNREFUSED,
            "error: <class 'ConnectionRefusedError'>, [Errno 111] Connection refused: file: F line: N\n",
            1,
        ),
    ];
    for (line, method, errno, want, rc) in cases {
        let params = if line == "start x" { vec![s("x")] } else { vec![] };
        let rpc = Replay::new(url, vec![rec(method, params, Err(io(errno)))]);
        let got = run_line(rpc, line, &mut Script::new(0));
        assert_eq!(
            (normalize(&got.stdout), got.exit),
            (normalize(want), rc),
            "{line} errno {errno}"
        );
    }
}

#[test]
fn usage_errors_with_the_daemon_down_show_the_upcheck_first() {
    // Python upchecks before validating `start` with no name: with no daemon, the
    // connection message wins.
    let rpc = Replay::new(
        "unix:///x.sock",
        vec![rec("supervisor.getVersion", vec![], Err(io(libc::ENOENT)))],
    );
    let got = run_line(rpc, "start", &mut Script::new(0));
    assert_eq!((got.stdout.as_str(), got.exit), ("unix:///x.sock no such file\n", 7));
}

#[test]
fn unauthorized_prints_pythons_two_lines() {
    // Observed: "Server requires authentication" then the ProtocolError line, rc 1.
    let rpc = Replay::new(
        "unix:///a",
        vec![rec(
            "supervisor.getAllProcessInfo",
            vec![],
            Err(CallError::Http { status: 401, reason: "Unauthorized".into() }),
        )],
    );
    let got = run_line(rpc, "status", &mut Script::new(0));
    assert_eq!(
        (normalize(&got.stdout), got.exit),
        (
            normalize(
                "Server requires authentication\nerror: <class 'xmlrpc.client.ProtocolError'>, \
                 <ProtocolError for 127.0.0.1/RPC2: 401 Unauthorized>: file: x line: 1\n"
            ),
            1
        )
    );
}

/// `line` in the shell (interactive): stdout and the exit status.
fn run_interactive(rpc: &mut Replay, line: &str, env: &mut Script) -> (String, u8) {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let exit = {
        let mut ctl = Ctl::new(rpc, &mut out, &mut err, env);
        ctl.interactive = true;
        ctl.onecmd(line);
        ctl.exit
    };
    (String::from_utf8_lossy(&out).into_owned(), exit)
}

#[test]
fn the_shell_asks_for_credentials_on_401_and_runs_the_command_again() {
    // Observed in Python's shell: the line, `Username:`, `Password:` (not echoed), an
    // empty line, then the command's output with the new credentials; asked again while
    // refused.
    let unauthorized = || Err(CallError::Http { status: 401, reason: "Unauthorized".into() });
    let row = Value::Struct(vec![
        ("name".into(), s("a")),
        ("group".into(), s("a")),
        ("statename".into(), s("STOPPED")),
        ("description".into(), s("Not started")),
        ("state".into(), Value::Int(0)),
        ("pid".into(), Value::Int(0)),
    ]);
    let rpc = Replay::new(
        "unix:///a",
        vec![
            rec("supervisor.getAllProcessInfo", vec![], unauthorized()),
            rec("supervisor.getAllProcessInfo", vec![], unauthorized()),
            rec("supervisor.getAllProcessInfo", vec![], Ok(Value::Array(vec![row]))),
        ],
    );
    let mut env = Script::new(0);
    env.answers = ["bob", "wrong", "bob", "pw"].map(String::from).into();
    let mut rpc = rpc;
    let (stdout, exit) = run_interactive(&mut rpc, "status", &mut env);
    assert_eq!(
        stdout,
        "Server requires authentication\n\nServer requires authentication\n\n\
         a                                STOPPED   Not started\n"
    );
    assert_eq!(env.asked, ["Username:", "Password:", "Username:", "Password:"]);
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    };
    assert_eq!(rpc.credentials, pairs(&[("bob", "wrong"), ("bob", "pw")]));
    assert_eq!(exit, 3, "status's exit for a stopped process");
}

#[test]
fn end_of_input_at_the_username_prompt_is_pythons_eoferror() {
    let unauthorized = || Err(CallError::Http { status: 401, reason: "Unauthorized".into() });
    let mut rpc =
        Replay::new("unix:///a", vec![rec("supervisor.getAllProcessInfo", vec![], unauthorized())]);
    let (stdout, exit) = run_interactive(&mut rpc, "status", &mut Script::new(0));
    assert_eq!(
        normalize(&stdout),
        "Server requires authentication\nerror: <class 'EOFError'>, : file: F line: N\n"
    );
    assert_eq!(exit, 1);
}

#[test]
fn shutdown_state_during_first_call_is_the_upchecks_fault() {
    // signalAllProcesses has no shutdown check, so `signal … all` makes the upcheck.
    let fault = || Err(CallError::Fault(Fault { code: 6, string: "SHUTDOWN_STATE".into() }));
    let rpc = Replay::new("unix:///a", vec![rec("supervisor.getVersion", vec![], fault())]);
    let got = run_line(rpc, "signal HUP all", &mut Script::new(0));
    assert_eq!(got.replay.log, vec!["supervisor.getVersion"]);
    assert!(
        got.stdout.starts_with("error: <class 'xmlrpc.client.Fault'>, <Fault 6: 'SHUTDOWN_STATE'>")
    );
    assert_eq!(got.exit, 1);
    let rpc = Replay::new("unix:///a", vec![rec("supervisor.startProcess", vec![s("x")], fault())]);
    let got = run_line(rpc, "start x", &mut Script::new(0));
    assert!(
        got.stdout.starts_with("error: <class 'xmlrpc.client.Fault'>, <Fault 6: 'SHUTDOWN_STATE'>")
    );
}

#[test]
fn tail_f_prints_the_head_then_growth_then_an_empty_line_on_ctrl_c() {
    let name = || s("sleeper");
    let rpc = Replay::new(
        "unix:///a",
        vec![
            rec("supervisor.getVersion", vec![], Ok(s("3.0"))),
            rec("supervisor.tailProcessStdoutLog", vec![name(), i(0), i(0)], Ok(tail_info(3000))),
            rec(
                "supervisor.readProcessStdoutLog",
                vec![name(), i(1976), i(1024)],
                Ok(s("head Ø\n")),
            ),
            // Poll 1: nothing new. Poll 2: grew by 4. Poll 3: truncated to 2 bytes.
            rec(
                "supervisor.tailProcessStdoutLog",
                vec![name(), i(3000), i(0)],
                Ok(tail_info(3000)),
            ),
            rec(
                "supervisor.tailProcessStdoutLog",
                vec![name(), i(3000), i(0)],
                Ok(tail_info(3004)),
            ),
            rec("supervisor.readProcessStdoutLog", vec![name(), i(3000), i(4)], Ok(s("✓\n"))),
            rec("supervisor.tailProcessStdoutLog", vec![name(), i(3004), i(0)], Ok(tail_info(2))),
            rec("supervisor.readProcessStdoutLog", vec![name(), i(0), i(2)], Ok(s("x\n"))),
        ],
    );
    let got = run_line(rpc, "tail -f sleeper", &mut Script::new(4));
    assert_eq!(
        got.stdout,
        "==> Press Ctrl-C to exit <==\nhead Ø\n✓\n==> File truncated <==\nx\n\n"
    );
    assert_eq!(got.exit, 0);
    assert!(got.replay.calls.is_empty());
}

#[test]
fn tail_f_on_a_missing_log_is_pythons_404_on_stderr() {
    let rpc = Replay::new(
        "unix:///tmp/ctlref/sock",
        vec![
            rec("supervisor.getVersion", vec![], Ok(s("3.0"))),
            rec(
                "supervisor.tailProcessStderrLog",
                vec![s("nosuch"), i(0), i(0)],
                Err(CallError::Fault(Fault { code: 10, string: "BAD_NAME: nosuch".into() })),
            ),
        ],
    );
    let got = run_line(rpc, "tail -f nosuch stderr", &mut Script::new(5));
    assert_eq!(got.stdout, "==> Press Ctrl-C to exit <==\n");
    assert_eq!(
        got.stderr,
        "unix:///tmp/ctlref/sock/logtail/nosuch/stderr Cannot read, status code 404\n"
    );
    assert_eq!(got.exit, 0);
    // A NONE log: the size is 0 and the one-byte read faults NO_FILE.
    let rpc = Replay::new(
        "unix:///s",
        vec![
            rec("supervisor.getVersion", vec![], Ok(s("3.0"))),
            rec("supervisor.tailProcessStdoutLog", vec![s("nolog"), i(0), i(0)], Ok(tail_info(0))),
            rec(
                "supervisor.readProcessStdoutLog",
                vec![s("nolog"), i(0), i(1)],
                Err(CallError::Fault(Fault { code: 20, string: "NO_FILE: None".into() })),
            ),
        ],
    );
    let got = run_line(rpc, "tail -f nolog", &mut Script::new(5));
    assert_eq!(got.stderr, "unix:///s/logtail/nolog/stdout Cannot read, status code 404\n");
}

/// A main log the fake serves with `readLog`'s offset rules.
struct MainLog {
    text: Vec<u8>,
    calls: usize,
}

impl Rpc for MainLog {
    fn call(&mut self, method: &str, params: &[Value]) -> Result<Value, CallError> {
        self.calls += 1;
        match method {
            "supervisor.getVersion" => Ok(s("3.0")),
            "supervisor.readLog" => {
                let off = params[0].as_int().unwrap_or(0) as usize;
                let len = params[1].as_int().unwrap_or(0) as usize;
                let end = if len == 0 { self.text.len() } else { (off + len).min(self.text.len()) };
                let start = off.min(self.text.len());
                Ok(Value::String(
                    String::from_utf8_lossy(&self.text[start..end.max(start)]).into_owned(),
                ))
            }
            other => panic!("unexpected {other}"),
        }
    }
    fn serverurl(&self) -> &str {
        "unix:///m"
    }
    fn set_serverurl(&mut self, _: &str) {}
}

#[test]
fn maintail_f_finds_the_size_by_probing_and_follows_growth() {
    let mut text: Vec<u8> = (0..5000).map(|n| b'a' + (n % 26) as u8).collect();
    text.extend_from_slice("é\n".as_bytes());
    let mut rpc = MainLog { text: text.clone(), calls: 0 };
    let mut out = Vec::new();
    let mut err = Vec::new();
    let mut env = Script::new(0);
    {
        let mut ctl = Ctl::new(&mut rpc, &mut out, &mut err, &mut env);
        ctl.onecmd("maintail -f");
        assert_eq!(ctl.exit, 0);
    }
    let mut want = b"==> Press Ctrl-C to exit <==\n".to_vec();
    want.extend_from_slice(&text[text.len() - 1024..]);
    want.extend_from_slice(b"\n");
    assert_eq!(String::from_utf8_lossy(&out), String::from_utf8_lossy(&want));
    // Probing is logarithmic: a 5 KB log takes a handful of calls, not thousands.
    assert!(rpc.calls < 30, "{} calls", rpc.calls);
}

#[test]
fn main_log_growth_and_truncation_between_polls() {
    // Drive follow_step directly with a log that changes between polls.
    let mut rpc = MainLog { text: b"0123456789".to_vec(), calls: 0 };
    let mut out = Vec::new();
    let mut err = Vec::new();
    let mut env = Script::new(0);
    {
        let mut ctl = Ctl::new(&mut rpc, &mut out, &mut err, &mut env);
        assert_eq!(ctl.follow_start(&follow::Source::Main).expect("start"), Some(10));
    }
    rpc.text.extend_from_slice(b"abc");
    {
        let mut ctl = Ctl::new(&mut rpc, &mut out, &mut err, &mut env);
        assert_eq!(ctl.follow_step(&follow::Source::Main, 10).expect("step"), 13);
        assert_eq!(ctl.follow_step(&follow::Source::Main, 13).expect("step"), 13);
    }
    rpc.text = b"xy".to_vec();
    {
        let mut ctl = Ctl::new(&mut rpc, &mut out, &mut err, &mut env);
        assert_eq!(ctl.follow_step(&follow::Source::Main, 13).expect("step"), 2);
    }
    assert_eq!(String::from_utf8_lossy(&out), "0123456789abc==> File truncated <==\nxy");
}

#[test]
fn fg_sends_typed_lines_and_notices_the_process_dying() {
    let name = || s("sleeper");
    let running = Value::record([("state", i(20))]);
    let exited = Value::record([("state", i(100))]);
    let rpc = Replay::new(
        "unix:///a",
        vec![
            rec("supervisor.getProcessInfo", vec![name()], Ok(running.clone())),
            rec("supervisor.tailProcessStdoutLog", vec![name(), i(0), i(0)], Ok(tail_info(3))),
            rec("supervisor.readProcessStdoutLog", vec![name(), i(0), i(3)], Ok(s("hi\n"))),
            rec("supervisor.tailProcessStderrLog", vec![name(), i(0), i(0)], Ok(tail_info(0))),
            rec("supervisor.readProcessStderrLog", vec![name(), i(0), i(1)], Ok(s(""))),
            rec("supervisor.sendProcessStdin", vec![name(), s("ping\n")], Ok(Value::Bool(true))),
            rec("supervisor.getProcessInfo", vec![name()], Ok(running)),
            rec("supervisor.tailProcessStdoutLog", vec![name(), i(3), i(0)], Ok(tail_info(8))),
            rec("supervisor.readProcessStdoutLog", vec![name(), i(3), i(5)], Ok(s("pong\n"))),
            rec("supervisor.tailProcessStderrLog", vec![name(), i(0), i(0)], Ok(tail_info(0))),
            rec("supervisor.sendProcessStdin", vec![name(), s("bye\n")], Ok(Value::Bool(true))),
            rec("supervisor.getProcessInfo", vec![name()], Ok(exited)),
        ],
    );
    let mut env = Script::new(100);
    env.input = VecDeque::from([
        StdinLine::Line("ping".into()),
        StdinLine::Nothing,
        StdinLine::Line("bye".into()),
    ]);
    let got = run_line(rpc, "fg sleeper", &mut env);
    assert_eq!(
        got.stdout,
        "==> Press Ctrl-C to exit <==\nhi\npong\nProcess got killed\nExiting foreground\n"
    );
    assert_eq!(got.exit, 0);
    assert!(got.replay.calls.is_empty());
}

#[test]
fn a_closed_stdout_ends_a_stream_quietly() {
    struct Closed;
    impl std::io::Write for Closed {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut rpc = Replay::new(
        "unix:///a",
        vec![
            rec("supervisor.getVersion", vec![], Ok(s("3.0"))),
            rec("supervisor.tailProcessStdoutLog", vec![s("x"), i(0), i(0)], Ok(tail_info(2))),
            rec("supervisor.readProcessStdoutLog", vec![s("x"), i(0), i(2)], Ok(s("a\n"))),
        ],
    );
    let mut out = Closed;
    let mut err = Vec::new();
    // Never interrupted: only the closed pipe can end this.
    let mut env = Script::new(usize::MAX);
    let mut ctl = Ctl::new(&mut rpc, &mut out, &mut err, &mut env);
    ctl.onecmd("tail -f x");
    assert_eq!(ctl.exit, 0);
    assert!(ctl.output_broken());
}

// ----- command line -----

fn opts(args: &[&str]) -> Result<Parsed, String> {
    parse_options(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>())
}

#[test]
fn getopt_messages_are_pythons() {
    // Each message observed from /tmp/ref/bin/supervisorctl 4.3.0.
    for (args, msg) in [
        (&["-Z"][..], "option -Z not recognized"),
        (&["-c"], "option -c requires argument"),
        (&["--foo"], "option --foo not recognized"),
        (&["--serverurl"], "option --serverurl requires argument"),
        (&["--inter=x"], "option --interactive must not have an argument"),
        (&["--h"], "option --h not a unique prefix"),
        (&["-s", "foo"], "invalid value for -s 'foo': value 'foo' is not a URL"),
        (&["-c", "a", "-c", "b"], "conflicting command line option '-c'"),
        (&["-i", "-i"], "conflicting command line option '-i'"),
        (&["-s", "unix:///x", "-s", "x"], "invalid value for -s 'x': value 'x' is not a URL"),
        (&["-u", "", "-u", "x"], "conflicting command line option '-u'"),
        (&["-:"], "option -: not recognized"),
        (&["--history-file=x"], "option --history-file not recognized"),
        (&["-s", "http://"], "invalid value for -s 'http://': value 'http://' is not a URL"),
        (&["-s", "x:"], "invalid value for -s 'x:': value 'x:' is not a URL"),
    ] {
        assert_eq!(opts(args), Err(msg.to_string()), "{args:?}");
    }
}

#[test]
fn getopt_forms() {
    let Ok(Parsed::Run(o)) =
        opts(&["-cfile", "--serv=unix:///s", "-iu", "bob", "--pass", "pw", "status", "-c", "x"])
    else {
        panic!("parse")
    };
    assert_eq!(o.configfile.as_deref(), Some("file"));
    assert_eq!(o.serverurl.as_deref(), Some("unix:///s"));
    assert!(o.interactive);
    assert_eq!((o.username.as_deref(), o.password.as_deref()), (Some("bob"), Some("pw")));
    assert_eq!(o.args, vec!["status", "-c", "x"]);
    assert_eq!(opts(&["--he", "status"]), Ok(Parsed::Help));
    assert_eq!(opts(&["-c", "x", "-?"]), Ok(Parsed::Help));
    let Ok(Parsed::Run(o)) = opts(&["--", "-c"]) else { panic!("parse") };
    assert_eq!(o.args, vec!["-c"]);
    let Ok(Parsed::Run(o)) = opts(&["-s", "x:y", "-", "a"]) else { panic!("parse") };
    assert_eq!(
        (o.serverurl.as_deref(), o.args),
        (Some("x:y"), vec!["-".to_string(), "a".to_string()])
    );
}

fn run_args(args: &[&str]) -> (String, String, u8) {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let code = run("/x/bin/supervisorctl", &args, &mut out, &mut err);
    (String::from_utf8_lossy(&out).into_owned(), String::from_utf8_lossy(&err).into_owned(), code)
}

#[test]
fn run_reports_usage_errors_on_stderr_with_exit_2() {
    let (out, err, code) = run_args(&["-c", "/nonexistent/x.conf", "status"]);
    assert_eq!(
        (out.as_str(), err.as_str(), code),
        (
            "",
            "Error: could not find config file /nonexistent/x.conf\nFor help, use /x/bin/supervisorctl -h\n",
            2
        )
    );
    let (out, _, code) = run_args(&["-h"]);
    assert_eq!(code, 0);
    assert!(out.contains("Usage: /x/bin/supervisorctl [options] [action [arguments]]"));
}

#[test]
fn interactive_flag_with_a_command_runs_the_command_once() {
    let dir = tempfile::Builder::new().prefix("ctlrun").tempdir_in("/tmp").expect("tempdir");
    let conf = dir.path().join("s.conf");
    std::fs::write(&conf, "[unix_http_server]\nfile=%(here)s/none.sock\n[supervisorctl]\n")
        .expect("write");
    let conf = conf.to_string_lossy().into_owned();
    let (out, err, code) = run_args(&["-c", conf.as_str(), "-i", "status"]);
    assert_eq!((err.as_str(), code), ("", 4));
    assert!(out.ends_with("none.sock no such file\n"), "{out}");
}

#[test]
fn run_talks_to_the_configured_socket_and_reports_it_missing() {
    let dir = tempfile::Builder::new().prefix("ctlrun").tempdir_in("/tmp").expect("tempdir");
    let conf = dir.path().join("s.conf");
    std::fs::write(&conf, "[unix_http_server]\nfile=%(here)s/none.sock\n[supervisorctl]\n")
        .expect("write");
    let (out, _, code) = run_args(&["-c", &conf.to_string_lossy(), "status"]);
    assert_eq!(
        (out, code),
        (format!("unix://{}/none.sock no such file\n", dir.path().display()), 4)
    );
}

#[test]
fn search_path_is_pythons() {
    let p = search_paths("/usr/local/bin/supervisorctl");
    let shown: Vec<String> = p.iter().map(|p| p.display().to_string()).collect();
    assert_eq!(
        shown,
        vec![
            "/usr/local/etc/supervisord.conf",
            "/usr/local/supervisord.conf",
            "supervisord.conf",
            "etc/supervisord.conf",
            "/etc/supervisord.conf",
            "/etc/supervisor/supervisord.conf"
        ]
    );
}

#[test]
fn go_style_tail_and_maintail_byte_counts() {
    let read = |method: &str, name: Option<&str>, bytes: i64| {
        let mut params: Vec<Value> = name.map(|n| vec![s(n)]).unwrap_or_default();
        params.extend([i(-bytes), i(0)]);
        rec(method, params, Ok(s("data\n")))
    };
    for (line, call) in [
        ("tail web 100", read("supervisor.readProcessStdoutLog", Some("web"), 100)),
        ("tail web stderr 7", read("supervisor.readProcessStderrLog", Some("web"), 7)),
        ("tail web STDOUT 5", read("supervisor.readProcessStdoutLog", Some("web"), 5)),
        ("maintail 300", read("supervisor.readLog", None, 300)),
    ] {
        let got = run_line(Replay::new("unix:///s", vec![call]), line, &mut Script::new(0));
        assert_eq!((got.stdout.as_str(), got.exit), ("data\n\n", 0), "{line}");
        assert!(got.replay.calls.is_empty(), "{line}: {:?}", got.replay.calls);
    }
    // What Python means stays: a word that is not a number is still a bad channel.
    let version = rec("supervisor.getVersion", vec![], Ok(s("3.0")));
    let got =
        run_line(Replay::new("unix:///s", vec![version]), "tail web 10x", &mut Script::new(0));
    assert_eq!((got.stdout.as_str(), got.exit), ("Error: bad channel '10x'\n", 1));
}
