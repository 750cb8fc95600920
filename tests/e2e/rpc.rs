//! The control plane through the real socket: every method on both transports with faults
//! and odd params, raw XML-RPC bodies compared byte for byte with Python supervisord 4.3.0,
//! Python's stock `supervisorctl` against both daemons, the `/logtail` streams, garbage on
//! the socket, 500 concurrent clients, many waiters on one process, auth, socket modes and
//! body limits.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use supervisord::rpc::{Fault, Value, jsonrpc, xmlrpc};

use crate::daemon::conf;
use crate::support::daemon::{DEADLINE, Daemon, poll};
use crate::support::pydaemon::PyDaemon;
use crate::support::pyref::pyref;
use crate::support::xrpc::{self, b, i, s};
use crate::support::{Run, run_as};

/// Programs in every state a method can meet.
const PROGRAMS: &str = "[supervisorctl]\nserverurl=unix://{dir}/sock\n\
[program:sleeper]\ncommand=sleep 1000\nstartsecs=0\n\
[program:quick]\ncommand=sh -c 'echo hi; echo err >&2; exit 0'\nautostart=false\nstartsecs=0\nautorestart=false\n\
[program:bad]\ncommand=sh -c 'exit 3'\nautostart=false\nstartretries=0\n\
[program:nofile]\ncommand=/nonexistent/foo\nautostart=false\n\
[program:noexec]\ncommand=/etc/passwd\nautostart=false\n\
[program:multi]\ncommand=sleep 1000\nnumprocs=2\nprocess_name=%(program_name)s_%(process_num)02d\nautostart=false\n\
[group:grp]\nprograms=g1,g2\n\
[program:g1]\ncommand=sleep 1000\nautostart=false\nstartsecs=0\n\
[program:g2]\ncommand=cat\nautostart=false\nstartsecs=0\n\
[group:mixed]\nprograms=mok,mnofile\n\
[program:mok]\ncommand=sleep 1000\nautostart=false\nstartsecs=0\n\
[program:mnofile]\ncommand=nosuchprogram-xyz --flag\nautostart=false\n";

fn fault(code: i32, string: &str) -> Result<Value, Fault> {
    Err(Fault { code, string: string.to_string() })
}

fn list(items: Vec<Value>) -> Value {
    Value::Array(items)
}

fn strs(items: &[&str]) -> Value {
    Value::Array(items.iter().map(|x| s(x)).collect())
}

fn result(name: &str, group: &str, status: i64, description: &str) -> Value {
    Value::record([
        ("name", s(name)),
        ("group", s(group)),
        ("status", i(status)),
        ("description", s(description)),
    ])
}

/// Struct members sorted by name, recursively: JSON objects come back sorted, so the two
/// transports are compared on content, and member order is checked on XML separately.
fn norm(v: &Value) -> Value {
    match v {
        Value::Array(a) => Value::Array(a.iter().map(norm).collect()),
        Value::Struct(m) => {
            let mut m: Vec<(String, Value)> = m.iter().map(|(k, v)| (k.clone(), norm(v))).collect();
            m.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Struct(m)
        }
        other => other.clone(),
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum T {
    Xml,
    Json,
}

impl T {
    fn call(self, sock: &Path, method: &str, params: &[Value]) -> Result<Value, Fault> {
        match self {
            T::Xml => xrpc::call(sock, method, params),
            T::Json => {
                let body = jsonrpc::request(method, params, 7);
                let (status, resp) = crate::support::rpc::post(
                    sock,
                    "/weka/jrpc",
                    "application/json",
                    body.as_bytes(),
                )
                .unwrap_or_else(|e| panic!("POST /weka/jrpc: {e}"));
                assert_eq!(status, 200, "{method}: {}", String::from_utf8_lossy(&resp));
                match jsonrpc::parse_reply(&resp) {
                    Ok(jsonrpc::Reply::Result(v)) => Ok(norm(&v)),
                    Ok(jsonrpc::Reply::Error { code, message }) => {
                        Err(Fault { code, string: message })
                    }
                    Err(e) => panic!("{method}: {e}: {}", String::from_utf8_lossy(&resp)),
                }
            }
        }
    }

    /// Asserts the call's outcome (struct member order ignored on JSON).
    fn expect(self, sock: &Path, method: &str, params: &[Value], want: Result<Value, Fault>) {
        let got = self.call(sock, method, params);
        let want = match (self, want) {
            (T::Json, Ok(v)) => Ok(norm(&v)),
            (_, w) => w,
        };
        assert_eq!(got, want, "{self:?} {method}{params:?}");
    }
}

fn state_of(t: T, sock: &Path, name: &str) -> String {
    let info = t.call(sock, "supervisor.getProcessInfo", &[s(name)]);
    info.ok()
        .and_then(|v| v.member("statename").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_default()
}

fn wait_state(d: &Daemon, name: &str, state: &str) {
    let sock = d.sock();
    if let Err(e) = poll(&format!("{name} {state}"), DEADLINE, || {
        (state_of(T::Xml, &sock, name) == state).then_some(())
    }) {
        panic!("{e}\n{}", d.explain());
    }
}

#[test]
fn every_method_on_both_transports() {
    let d = Daemon::start(&conf(PROGRAMS));
    d.ready();
    wait_state(&d, "sleeper", "RUNNING");
    let sock = d.sock();
    let sock = sock.as_path();
    for t in [T::Xml, T::Json] {
        // Versions, identity, state.
        t.expect(sock, "supervisor.getAPIVersion", &[], Ok(s("3.0")));
        t.expect(sock, "supervisor.getVersion", &[], Ok(s("3.0")));
        t.expect(sock, "supervisor.getSupervisorVersion", &[], Ok(s("4.3.0")));
        t.expect(sock, "supervisor.getIdentification", &[], Ok(s("supervisor")));
        t.expect(
            sock,
            "supervisor.getState",
            &[],
            Ok(Value::record([("statecode", i(1)), ("statename", s("RUNNING"))])),
        );
        t.expect(sock, "supervisor.getPID", &[], Ok(i(i64::from(d.pid()))));
        // Arity, unknown and forbidden names.
        t.expect(sock, "supervisor.getState", &[i(1)], fault(2, "INCORRECT_PARAMETERS"));
        t.expect(sock, "supervisor.getProcessInfo", &[], fault(2, "INCORRECT_PARAMETERS"));
        t.expect(sock, "supervisor.getProcessInfo", &[i(1)], fault(2, "INCORRECT_PARAMETERS"));
        t.expect(
            sock,
            "supervisor.getProcessInfo",
            &[Value::Nil],
            fault(2, "INCORRECT_PARAMETERS"),
        );
        for m in ["supervisor.nope", "supervisor._update", "a.b.c", "nope.getState", "nodot"] {
            t.expect(sock, m, &[], fault(1, "UNKNOWN_METHOD"));
        }
        // getProcessInfo and names.
        let info = t.call(sock, "supervisor.getProcessInfo", &[s("sleeper")]).expect("info");
        assert_eq!(info.member("statename"), Some(&s("RUNNING")));
        assert!(info.member("pid").and_then(Value::as_int).is_some_and(|p| p > 0));
        let desc = info.member("description").and_then(Value::as_str).unwrap_or_default();
        assert!(desc.starts_with("pid ") && desc.contains(", uptime "), "{desc}");
        let log = info.member("stdout_logfile").and_then(Value::as_str).unwrap_or_default();
        assert!(log.contains("sleeper-stdout---supervisor-"), "{log}");
        assert_eq!(info.member("logfile"), info.member("stdout_logfile"));
        t.expect(sock, "supervisor.getProcessInfo", &[s("nope")], fault(10, "BAD_NAME: nope"));
        t.expect(sock, "supervisor.getProcessInfo", &[s("grp:*")], fault(10, "BAD_NAME: grp:*"));
        t.expect(sock, "supervisor.getProcessInfo", &[s("grp")], fault(10, "BAD_NAME: grp"));
        t.expect(sock, "supervisor.getProcessInfo", &[s("multi")], fault(10, "BAD_NAME: multi"));
        t.expect(sock, "supervisor.getProcessInfo", &[s("ünï<&>")], fault(10, "BAD_NAME: ünï<&>"));
        let g1 = t.call(sock, "supervisor.getProcessInfo", &[s("grp:g1")]).expect("g1");
        assert_eq!(g1.member("group"), Some(&s("grp")));
        if t == T::Xml {
            assert_eq!(g1.member("description"), Some(&s("Not started")));
        }
        let all = t.call(sock, "supervisor.getAllProcessInfo", &[]).expect("all");
        let names: Vec<&str> = all
            .as_array()
            .unwrap_or_default()
            .iter()
            .filter_map(|p| p.member("name").and_then(Value::as_str))
            .collect();
        assert_eq!(
            names,
            [
                "bad", "g1", "g2", "mnofile", "mok", "multi_00", "multi_01", "noexec", "nofile",
                "quick", "sleeper"
            ]
        );
        let configs = t.call(sock, "supervisor.getAllConfigInfo", &[]).expect("configs");
        let configs = configs.as_array().unwrap_or_default();
        assert_eq!(configs.len(), 11);
        let first = configs.first().cloned().unwrap_or(Value::Nil);
        assert_eq!(first.member("name"), Some(&s("bad")));
        assert_eq!(first.member("command"), Some(&s("sh -c 'exit 3'")));
        assert_eq!(first.member("exitcodes"), Some(&list(vec![i(0)])));
        assert_eq!(first.member("stopsignal"), Some(&i(15)));
        assert_eq!(first.member("inuse"), Some(&b(true)));
        assert_eq!(first.member("uid"), Some(&s("none")));

        // Starts: command checks first, then state; group specs; wait flags of any type.
        t.expect(
            sock,
            "supervisor.startProcess",
            &[s("nofile")],
            fault(20, "NO_FILE: can't find command '/nonexistent/foo'"),
        );
        t.expect(
            sock,
            "supervisor.startProcess",
            &[s("noexec")],
            fault(21, "NOT_EXECUTABLE: command at '/etc/passwd' is not executable"),
        );
        t.expect(sock, "supervisor.startProcess", &[s("nope")], fault(10, "BAD_NAME: nope"));
        t.expect(sock, "supervisor.startProcess", &[s("multi")], fault(10, "BAD_NAME: multi"));
        t.expect(
            sock,
            "supervisor.startProcess",
            &[s("sleeper")],
            fault(60, "ALREADY_STARTED: sleeper"),
        );
        t.expect(
            sock,
            "supervisor.startProcess",
            &[s("sleeper"), s("x")],
            fault(60, "ALREADY_STARTED: sleeper"),
        );
        t.expect(
            sock,
            "supervisor.startProcess",
            &[s("sleeper"), i(1), i(2)],
            fault(2, "INCORRECT_PARAMETERS"),
        );
        t.expect(sock, "supervisor.startProcess", &[], fault(2, "INCORRECT_PARAMETERS"));
        t.expect(sock, "supervisor.startProcess", &[s("bad")], fault(50, "SPAWN_ERROR: bad"));
        t.expect(sock, "supervisor.startProcess", &[s("quick"), b(false)], Ok(b(true)));
        wait_state(&d, "quick", "EXITED");
        t.expect(
            sock,
            "supervisor.startProcessGroup",
            &[s("grp")],
            Ok(list(vec![result("g1", "grp", 80, "OK"), result("g2", "grp", 80, "OK")])),
        );
        // Running members are left out of a group start.
        t.expect(sock, "supervisor.startProcessGroup", &[s("grp")], Ok(list(vec![])));
        t.expect(sock, "supervisor.startProcessGroup", &[s("nope")], fault(10, "BAD_NAME: nope"));
        t.expect(sock, "supervisor.startProcessGroup", &[s("grp"), s("")], Ok(list(vec![])));
        // A member whose command is missing fails alone, and first.
        t.expect(
            sock,
            "supervisor.startProcessGroup",
            &[s("mixed")],
            Ok(list(vec![
                result("mnofile", "mixed", 20, "NO_FILE: can't find command 'nosuchprogram-xyz'"),
                result("mok", "mixed", 80, "OK"),
            ])),
        );
        t.expect(
            sock,
            "supervisor.stopProcess",
            &[s("mixed:*")],
            Ok(list(vec![result("mok", "mixed", 80, "OK")])),
        );
        t.expect(
            sock,
            "supervisor.startProcess",
            &[s("multi:*")],
            Ok(list(vec![
                result("multi_00", "multi", 80, "OK"),
                result("multi_01", "multi", 80, "OK"),
            ])),
        );
        // Stops.
        t.expect(sock, "supervisor.stopProcess", &[s("quick")], fault(70, "NOT_RUNNING: quick"));
        t.expect(sock, "supervisor.stopProcess", &[s("nope")], fault(10, "BAD_NAME: nope"));
        t.expect(sock, "supervisor.stopProcess", &[s("multi:multi_00")], Ok(b(true)));
        t.expect(
            sock,
            "supervisor.stopProcessGroup",
            &[s("multi")],
            Ok(list(vec![result("multi_01", "multi", 80, "OK")])),
        );
        t.expect(sock, "supervisor.stopProcess", &[s("multi:*")], Ok(list(vec![])));
        t.expect(sock, "supervisor.stopProcessGroup", &[s("nope")], fault(10, "BAD_NAME: nope"));
        // Signals, by name and number, bad ones per process in a group.
        t.expect(
            sock,
            "supervisor.signalProcess",
            &[s("sleeper"), s("FOO")],
            fault(11, "BAD_SIGNAL: FOO"),
        );
        t.expect(sock, "supervisor.signalProcess", &[s("sleeper"), s("CONT")], Ok(b(true)));
        t.expect(sock, "supervisor.signalProcess", &[s("sleeper"), s("sigcont")], Ok(b(true)));
        t.expect(sock, "supervisor.signalProcess", &[s("sleeper"), i(18)], Ok(b(true)));
        t.expect(
            sock,
            "supervisor.signalProcess",
            &[s("sleeper"), i(-3)],
            fault(11, "BAD_SIGNAL: -3"),
        );
        t.expect(
            sock,
            "supervisor.signalProcess",
            &[s("quick"), s("HUP")],
            fault(70, "NOT_RUNNING: quick"),
        );
        t.expect(
            sock,
            "supervisor.signalProcess",
            &[s("nope"), s("HUP")],
            fault(10, "BAD_NAME: nope"),
        );
        t.expect(
            sock,
            "supervisor.signalProcessGroup",
            &[s("grp"), s("FOO")],
            Ok(list(vec![
                result("g1", "grp", 11, "BAD_SIGNAL: FOO"),
                result("g2", "grp", 11, "BAD_SIGNAL: FOO"),
            ])),
        );
        t.expect(
            sock,
            "supervisor.signalProcessGroup",
            &[s("grp"), s("CONT")],
            Ok(list(vec![result("g1", "grp", 80, "OK"), result("g2", "grp", 80, "OK")])),
        );
        t.expect(sock, "supervisor.signalProcessGroup", &[s("multi"), s("HUP")], Ok(list(vec![])));
        t.expect(
            sock,
            "supervisor.signalProcessGroup",
            &[s("nope"), s("HUP")],
            fault(10, "BAD_NAME: nope"),
        );
        t.expect(
            sock,
            "supervisor.signalAllProcesses",
            &[s("CONT")],
            Ok(list(vec![
                result("g1", "grp", 80, "OK"),
                result("g2", "grp", 80, "OK"),
                result("sleeper", "sleeper", 80, "OK"),
            ])),
        );
        // The daemon log.
        let main = t.call(sock, "supervisor.readLog", &[i(0), i(0)]).expect("readLog");
        // (The first round ends with clearLog.)
        let want = if t == T::Xml { "supervisord started with pid" } else { "spawned: 'quick'" };
        assert!(main.as_str().unwrap_or_default().contains(want), "{main:?}");
        t.expect(sock, "supervisor.readLog", &[i(0), i(-1)], fault(3, "BAD_ARGUMENTS"));
        t.expect(sock, "supervisor.readLog", &[i(-5), i(5)], fault(3, "BAD_ARGUMENTS"));
        t.expect(sock, "supervisor.readMainLog", &[i(0)], fault(2, "INCORRECT_PARAMETERS"));
        // Process logs, with Python's offset rules.
        t.expect(sock, "supervisor.readProcessStdoutLog", &[s("quick"), i(0), i(0)], Ok(s("hi\n")));
        t.expect(sock, "supervisor.readProcessLog", &[s("quick"), i(0), i(0)], Ok(s("hi\n")));
        t.expect(
            sock,
            "supervisor.readProcessStderrLog",
            &[s("quick"), i(0), i(0)],
            Ok(s("err\n")),
        );
        t.expect(sock, "supervisor.readProcessStdoutLog", &[s("quick"), i(-2), i(0)], Ok(s("i\n")));
        t.expect(
            sock,
            "supervisor.readProcessStdoutLog",
            &[s("quick"), i(-100), i(0)],
            Ok(s("hi\n")),
        );
        t.expect(sock, "supervisor.readProcessStdoutLog", &[s("quick"), i(1), i(1)], Ok(s("i")));
        t.expect(sock, "supervisor.readProcessStdoutLog", &[s("quick"), s("1"), i(1)], Ok(s("i")));
        t.expect(
            sock,
            "supervisor.readProcessStdoutLog",
            &[s("quick"), i(0), i(-1)],
            fault(3, "BAD_ARGUMENTS"),
        );
        t.expect(
            sock,
            "supervisor.readProcessStdoutLog",
            &[s("quick"), i(-1), i(1)],
            fault(3, "BAD_ARGUMENTS"),
        );
        t.expect(sock, "supervisor.readProcessStdoutLog", &[s("quick"), i(100), i(10)], Ok(s("")));
        t.expect(
            sock,
            "supervisor.readProcessStdoutLog",
            &[s("nope"), i(0), i(0)],
            fault(10, "BAD_NAME: nope"),
        );
        t.expect(
            sock,
            "supervisor.readProcessStdoutLog",
            &[s("grp:*"), i(0), i(0)],
            fault(10, "BAD_NAME: grp:*"),
        );
        t.expect(
            sock,
            "supervisor.readProcessStdoutLog",
            &[s("quick"), s("a"), i(0)],
            fault(2, "INCORRECT_PARAMETERS"),
        );
        t.expect(
            sock,
            "supervisor.readProcessStdoutLog",
            &[s("quick"), i(0)],
            fault(2, "INCORRECT_PARAMETERS"),
        );
        t.expect(
            sock,
            "supervisor.tailProcessStdoutLog",
            &[s("quick"), i(0), i(1)],
            Ok(list(vec![s("\n"), i(3), b(true)])),
        );
        t.expect(
            sock,
            "supervisor.tailProcessLog",
            &[s("quick"), i(0), i(10)],
            Ok(list(vec![s("hi\n"), i(3), b(false)])),
        );
        t.expect(
            sock,
            "supervisor.tailProcessStderrLog",
            &[s("quick"), i(1), i(10)],
            Ok(list(vec![s("err\n"), i(4), b(false)])),
        );
        t.expect(
            sock,
            "supervisor.tailProcessStdoutLog",
            &[s("quick"), i(3), i(10)],
            Ok(list(vec![s(""), i(3), b(false)])),
        );
        t.expect(
            sock,
            "supervisor.tailProcessStdoutLog",
            &[s("quick"), i(-3), i(10)],
            Ok(list(vec![s("hi\n"), i(3), b(false)])),
        );
        t.expect(
            sock,
            "supervisor.tailProcessStdoutLog",
            &[s("quick"), i(1), i(-2)],
            Ok(list(vec![s(""), i(3), b(true)])),
        );
        t.expect(
            sock,
            "supervisor.tailProcessStdoutLog",
            &[s("nope"), i(0), i(10)],
            fault(10, "BAD_NAME: nope"),
        );
        // stdin: UTF-8 text reaches the child (cat echoes it into its log).
        t.expect(
            sock,
            "supervisor.sendProcessStdin",
            &[s("grp:g2"), s("héllo ✓ <&>\n")],
            Ok(b(true)),
        );
        t.expect(
            sock,
            "supervisor.sendProcessStdin",
            &[s("sleeper"), i(5)],
            fault(2, "INCORRECT_PARAMETERS: 5"),
        );
        t.expect(
            sock,
            "supervisor.sendProcessStdin",
            &[s("sleeper")],
            fault(2, "INCORRECT_PARAMETERS"),
        );
        t.expect(
            sock,
            "supervisor.sendProcessStdin",
            &[s("quick"), s("x")],
            fault(70, "NOT_RUNNING: quick"),
        );
        t.expect(
            sock,
            "supervisor.sendProcessStdin",
            &[s("nope"), s("x")],
            fault(10, "BAD_NAME: nope"),
        );
        poll("cat to echo stdin", DEADLINE, || {
            let out = t.call(sock, "supervisor.readProcessStdoutLog", &[s("grp:g2"), i(0), i(0)]);
            (out == Ok(s("héllo ✓ <&>\n"))).then_some(())
        })
        .unwrap_or_else(|e| panic!("{t:?}: {e}"));
        t.expect(sock, "supervisor.sendRemoteCommEvent", &[s("type"), s("data")], Ok(b(true)));
        t.expect(
            sock,
            "supervisor.sendRemoteCommEvent",
            &[s("type")],
            fault(2, "INCORRECT_PARAMETERS"),
        );
        // Clearing logs.
        t.expect(sock, "supervisor.clearProcessLogs", &[s("grp:g2")], Ok(b(true)));
        t.expect(sock, "supervisor.readProcessStdoutLog", &[s("grp:g2"), i(0), i(0)], Ok(s("")));
        t.expect(sock, "supervisor.clearProcessLog", &[s("nope")], fault(10, "BAD_NAME: nope"));
        t.expect(sock, "supervisor.clearProcessLogs", &[s("grp:*")], fault(10, "BAD_NAME: grp:*"));
        let cleared = t.call(sock, "supervisor.clearAllProcessLogs", &[]).expect("clearAll");
        assert_eq!(cleared.as_array().map(<[Value]>::len), Some(11), "{cleared:?}");
        t.expect(sock, "supervisor.readProcessStdoutLog", &[s("quick"), i(0), i(0)], Ok(s("")));
        t.expect(sock, "supervisor.clearLog", &[], Ok(b(true)));
        // Groups: add/remove/reload.
        t.expect(sock, "supervisor.addProcessGroup", &[s("grp")], fault(90, "ALREADY_ADDED: grp"));
        t.expect(sock, "supervisor.addProcessGroup", &[s("nope")], fault(10, "BAD_NAME: nope"));
        t.expect(
            sock,
            "supervisor.removeProcessGroup",
            &[s("grp")],
            fault(91, "STILL_RUNNING: grp"),
        );
        t.expect(sock, "supervisor.removeProcessGroup", &[s("nope")], fault(10, "BAD_NAME: nope"));
        t.expect(sock, "supervisor.removeProcessGroup", &[s("quick")], Ok(b(true)));
        t.expect(sock, "supervisor.getProcessInfo", &[s("quick")], fault(10, "BAD_NAME: quick"));
        t.expect(sock, "supervisor.addProcessGroup", &[s("quick")], Ok(b(true)));
        t.expect(
            sock,
            "supervisor.reloadConfig",
            &[],
            Ok(list(vec![list(vec![list(vec![]), list(vec![]), list(vec![])])])),
        );
        // system.*
        let methods = t.call(sock, "system.listMethods", &[]).expect("listMethods");
        let methods = methods.as_array().unwrap_or_default();
        assert_eq!(methods.len(), 41 + 5, "{methods:?}");
        assert!(methods.contains(&s("supervisor.tailProcessStderrLog")));
        assert!(methods.contains(&s("system.multicall")));
        assert!(methods.contains(&s("weka.startProcess")));
        let help =
            t.call(sock, "system.methodHelp", &[s("supervisor.startProcess")]).expect("help");
        assert!(
            help.as_str().unwrap_or_default().trim().starts_with("Start a process"),
            "{help:?}"
        );
        t.expect(sock, "system.methodHelp", &[s("nope")], fault(4, "SIGNATURE_UNSUPPORTED"));
        t.expect(
            sock,
            "system.methodSignature",
            &[s("supervisor.startProcess")],
            Ok(strs(&["boolean", "string", "boolean"])),
        );
        t.expect(
            sock,
            "system.methodSignature",
            &[s("supervisor.getAllConfigInfo")],
            Ok(strs(&["array"])),
        );
        t.expect(
            sock,
            "system.methodSignature",
            &[s("system.multicall")],
            Ok(strs(&["array", "array"])),
        );
        t.expect(sock, "system.methodSignature", &[s("x.y")], fault(4, "SIGNATURE_UNSUPPORTED"));
        let call =
            |m: &str, p: Vec<Value>| Value::record([("methodName", s(m)), ("params", list(p))]);
        let fv = |code: i64, string: &str| {
            Value::record([("faultCode", i(code)), ("faultString", s(string))])
        };
        t.expect(
            sock,
            "system.multicall",
            &[list(vec![
                call("supervisor.getAPIVersion", vec![]),
                call("supervisor.getProcessInfo", vec![s("nope")]),
                Value::record([("params", list(vec![]))]),
                call("system.multicall", vec![list(vec![])]),
                call("nope.x", vec![]),
                Value::record([("methodName", s("supervisor.getIdentification"))]),
            ])],
            Ok(list(vec![
                s("3.0"),
                fv(10, "BAD_NAME: nope"),
                fv(2, "INCORRECT_PARAMETERS: No methodName"),
                fv(2, "INCORRECT_PARAMETERS: Recursive system.multicall forbidden"),
                fv(1, "UNKNOWN_METHOD"),
                s("supervisor"),
            ])),
        );
        t.expect(sock, "system.multicall", &[s("x")], fault(2, "INCORRECT_PARAMETERS"));
        t.expect(sock, "system.multicall", &[], fault(2, "INCORRECT_PARAMETERS"));
        // weka.*
        t.expect(
            sock,
            "weka.getAutoRecovery",
            &[],
            Ok(Value::record([("enabled", b(true)), ("count", i(1))])),
        );
        t.expect(sock, "weka.startProcess", &[s("sleeper")], Ok(b(true)));
        t.expect(sock, "weka.startProcess", &[s("nope")], fault(10, "BAD_NAME: nope"));
        t.expect(
            sock,
            "weka.startProcess",
            &[s("nofile")],
            fault(20, "NO_FILE: can't find command '/nonexistent/foo'"),
        );
        t.expect(sock, "weka.disableAutoRecovery", &[], Ok(b(true)));
        t.expect(
            sock,
            "weka.getAutoRecovery",
            &[],
            Ok(Value::record([("enabled", b(false)), ("count", i(0))])),
        );
        t.expect(sock, "weka.enableAutoRecovery", &[], Ok(b(true)));
        t.expect(sock, "weka.enableAutoRecovery", &[], Ok(b(true)));
        t.expect(sock, "weka.stopAllIoNodes", &[], Ok(list(vec![])));
        t.expect(sock, "weka.nope", &[], fault(1, "UNKNOWN_METHOD"));
        // Back to the starting state for the other transport.
        t.expect(
            sock,
            "supervisor.stopProcessGroup",
            &[s("grp")],
            Ok(list(vec![result("g1", "grp", 80, "OK"), result("g2", "grp", 80, "OK")])),
        );
    }
}

#[test]
fn xml_member_order_and_escaping_are_pythons() {
    let d = Daemon::start(&conf(PROGRAMS));
    d.ready();
    wait_state(&d, "sleeper", "RUNNING");
    let info = xrpc::ok(&d.sock(), "supervisor.getProcessInfo", &[s("sleeper")]);
    let keys: Vec<&str> = match &info {
        Value::Struct(m) => m.iter().map(|(k, _)| k.as_str()).collect(),
        _ => Vec::new(),
    };
    assert_eq!(
        keys,
        [
            "name",
            "group",
            "start",
            "stop",
            "now",
            "state",
            "statename",
            "spawnerr",
            "exitstatus",
            "logfile",
            "stdout_logfile",
            "stderr_logfile",
            "pid",
            "description"
        ]
    );
    // JSON: no HTML escaping, no trailing newline, the id echoed.
    let body =
        br#"{"jsonrpc":"2.0","method":"supervisor.getProcessInfo","params":["a<b>&c"],"id":"x"}"#;
    let (status, resp) =
        crate::support::rpc::post(&d.sock(), "/weka/jrpc", "application/json", body).expect("post");
    assert_eq!(status, 200);
    assert_eq!(
        String::from_utf8_lossy(&resp),
        r#"{"jsonrpc":"2.0","error":{"code":10,"message":"BAD_NAME: a<b>&c"},"id":"x"}"#
    );
}

#[test]
fn jsonrpc_envelope_errors() {
    let d = Daemon::start(&conf(""));
    d.ready();
    let post = |body: &[u8]| {
        let (status, resp) =
            crate::support::rpc::post(&d.sock(), "/weka/jrpc", "application/json", body)
                .expect("post");
        assert_eq!(status, 200);
        let text = String::from_utf8_lossy(&resp).into_owned();
        assert!(!text.ends_with('\n'), "{text:?}");
        serde_json::from_str::<serde_json::Value>(&text).expect("JSON reply")
    };
    for garbage in [&b"{"[..], b"", b"\xff\xfe", b"[1,2", b"nul"] {
        let v = post(garbage);
        assert_eq!(v["error"]["code"], -32700, "{v}");
        assert_eq!(v["id"], serde_json::Value::Null);
    }
    for bad in [
        &br#"[]"#[..],
        br#"{"jsonrpc":"1.0","method":"supervisor.getState","id":1}"#,
        br#"{"jsonrpc":"2.0","method":5,"id":1}"#,
        br#"{"jsonrpc":"2.0","method":"supervisor.getState","params":{"a":1},"id":1}"#,
        br#"{"jsonrpc":"2.0","method":"supervisor.getState","id":[1]}"#,
    ] {
        let v = post(bad);
        assert_eq!(v["error"]["code"], -32600, "{v}");
    }
    let v = post(br#"{"jsonrpc":"2.0","method":"supervisor.nope","params":[],"id":9}"#);
    assert_eq!(
        v,
        serde_json::json!({"jsonrpc":"2.0","error":{"code":1,"message":"UNKNOWN_METHOD"},"id":9})
    );
    let v = post(r#"{"jsonrpc":"2.0","method":"supervisor.getAPIVersion","id":"ü"}"#.as_bytes());
    assert_eq!(v, serde_json::json!({"jsonrpc":"2.0","result":"3.0","id":"ü"}));
}
