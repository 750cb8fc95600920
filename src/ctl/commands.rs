//! supervisorctl's commands: which RPCs each one makes, in what order, and how the
//! results become lines and an exit status — `supervisor/supervisorctl.py`'s
//! `Controller.onecmd` and `DefaultControllerPlugin`, behaviour for behaviour.
//!
//! Written against the [`Rpc`] and [`Env`] traits so that tests can replay calls recorded
//! from Python's supervisorctl. Python calls `getVersion` before most commands (the
//! "upcheck"); we skip that round trip and instead read the *first* call's transport
//! error as the upcheck's (see [`Ctl::ucall`]), which prints the same thing. An explicit
//! upcheck is made only where Python would print something before its first real call.

use std::io::Write;

use super::client::{CallError, Client};
use super::follow::Source;
use super::format::{self, py_split, py_strip, split_namespec};
use crate::fault::Fault;
use crate::procsup::ProcessState;
use crate::rpc::value::Value;

/// LSB init exit statuses (`LSBInitExitStatuses`).
pub mod exit {
    pub const GENERIC: u8 = 1;
    pub const INVALID_ARGS: u8 = 2;
    pub const UNIMPLEMENTED_FEATURE: u8 = 3;
    pub const INSUFFICIENT_PRIVILEGES: u8 = 4;
    pub const NOT_INSTALLED: u8 = 5;
    pub const NOT_RUNNING: u8 = 7;
    /// `LSBStatusExitStatuses` for `status`.
    pub const STATUS_NOT_RUNNING: u8 = 3;
    pub const STATUS_UNKNOWN: u8 = 4;
}

/// Supervisor fault codes the commands branch on, as constants for `match` patterns; the
/// numbers come from the one table in `fault`.
mod code {
    use crate::fault::FaultKind as K;
    pub const UNKNOWN_METHOD: i64 = K::UnknownMethod.code() as i64;
    pub const SHUTDOWN_STATE: i64 = K::ShutdownState.code() as i64;
    pub const BAD_NAME: i64 = K::BadName.code() as i64;
    pub const NO_FILE: i64 = K::NoFile.code() as i64;
    pub const FAILED: i64 = K::Failed.code() as i64;
    pub const ABNORMAL_TERMINATION: i64 = K::AbnormalTermination.code() as i64;
    pub const SPAWN_ERROR: i64 = K::SpawnError.code() as i64;
    pub const ALREADY_STARTED: i64 = K::AlreadyStarted.code() as i64;
    pub const NOT_RUNNING: i64 = K::NotRunning.code() as i64;
    pub const SUCCESS: i64 = K::Success.code() as i64;
    pub const ALREADY_ADDED: i64 = K::AlreadyAdded.code() as i64;
    pub const STILL_RUNNING: i64 = K::StillRunning.code() as i64;
    pub const CANT_REREAD: i64 = K::CantReread.code() as i64;
}

/// `ProcessStates.RUNNING` and `STOPPED_STATES` (STOPPED, EXITED, FATAL, UNKNOWN), from
/// `procsup`'s state table.
const RUNNING: i64 = ProcessState::Running.code() as i64;
const STOPPED_STATES: [i64; 4] = [
    ProcessState::Stopped.code() as i64,
    ProcessState::Exited.code() as i64,
    ProcessState::Fatal.code() as i64,
    ProcessState::Unknown.code() as i64,
];

/// What `status` and `pid all` read of one `getAllProcessInfo` entry.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(default)]
pub struct ProcessRow {
    pub name: String,
    pub group: String,
    pub statename: String,
    pub description: String,
    pub state: i64,
    pub pid: i64,
}

impl ProcessRow {
    fn from_value(v: &Value) -> ProcessRow {
        ProcessRow {
            name: member_str(v, "name").to_string(),
            group: member_str(v, "group").to_string(),
            statename: member_str(v, "statename").to_string(),
            description: member_str(v, "description").to_string(),
            state: member_int(v, "state"),
            pid: member_int(v, "pid"),
        }
    }
}

/// One RPC round trip to supervisord.
pub trait Rpc {
    fn call(&mut self, method: &str, params: &[Value]) -> Result<Value, CallError>;
    /// `supervisor.getAllProcessInfo` as rows. [`Client`] asks our daemon for only the rows'
    /// members and parses the reply straight into them (a status run's main cost is this
    /// reply); the default goes through `call`.
    fn all_process_info(&mut self) -> Result<Vec<ProcessRow>, CallError> {
        let all = self.call("supervisor.getAllProcessInfo", &[])?;
        Ok(list(&all).iter().map(ProcessRow::from_value).collect())
    }
    /// The server URL as configured; messages quote it.
    fn serverurl(&self) -> &str;
    /// `open`: talk to another server from now on.
    fn set_serverurl(&mut self, url: &str);
    /// The shell's answer to a 401: these credentials from now on.
    fn set_credentials(&mut self, _username: &str, _password: &str) {}
}

impl Rpc for Client {
    fn call(&mut self, method: &str, params: &[Value]) -> Result<Value, CallError> {
        Client::call(self, method, params)
    }
    /// `weka.getAllProcessRows` (only the members a row reads), or `getAllProcessInfo`
    /// from a daemon that does not have it.
    fn all_process_info(&mut self) -> Result<Vec<ProcessRow>, CallError> {
        match self.call_as("weka.getAllProcessRows", &[]) {
            Err(CallError::Fault(f)) if i64::from(f.code) == code::UNKNOWN_METHOD => {
                self.call_as("supervisor.getAllProcessInfo", &[])
            }
            other => other,
        }
    }
    fn serverurl(&self) -> &str {
        Client::serverurl(self)
    }
    fn set_serverurl(&mut self, url: &str) {
        Client::set_serverurl(self, url);
    }
    fn set_credentials(&mut self, username: &str, password: &str) {
        Client::set_credentials(self, Some(username), Some(password));
    }
}

/// A line typed on stdin, as `fg` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StdinLine {
    Line(String),
    Eof,
    /// Nothing typed since the last look.
    Nothing,
}

/// The outside world of the streaming commands (`tail -f`, `maintail -f`, `fg`).
pub trait Env {
    /// Ctrl-C was pressed.
    fn interrupted(&self) -> bool;
    /// Waits one poll interval.
    fn pause(&mut self);
    /// The next stdin line, without blocking.
    fn stdin_line(&mut self) -> StdinLine;
    /// Python's `raw_input(prompt)` (the shell's confirmations): the prompt on stdout, then
    /// one line of stdin; `None` at EOF.
    fn ask(&mut self, _prompt: &str) -> Option<String> {
        None
    }
    /// Python's `getpass.getpass(prompt)`: the answer is not echoed; `None` at EOF.
    fn ask_password(&mut self, _prompt: &str) -> Option<String> {
        None
    }
    /// The shell now talks to `url` (`open`), or with new credentials: the line editor's
    /// completion, which asks the server for process names, follows.
    fn server_changed(&mut self, _url: Option<&str>, _credentials: Option<(&str, &str)>) {}
    /// The interactive shell's next command line (the prompt shown first).
    fn read_command(&mut self, _prompt: &str) -> ShellInput {
        ShellInput::Eof
    }
    /// A command of the interactive shell is about to run (an earlier Ctrl-C that ended a
    /// streaming command is forgotten).
    fn begin_command(&mut self) {}
}

/// What the interactive shell read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShellInput {
    Line(String),
    Eof,
    /// End of input, and the line editor has already moved to a new line.
    EofShown,
    /// Ctrl-C at the prompt (Python leaves the shell); the editor has ended the line.
    Interrupted,
}

/// stdout with Python's `output()` and a quiet stop on a closed pipe: after the first
/// failed write nothing more is written, and the command still ends normally.
pub struct Out<'a> {
    w: &'a mut dyn Write,
    broken: bool,
}

impl<'a> Out<'a> {
    pub fn new(w: &'a mut dyn Write) -> Out<'a> {
        Out { w, broken: false }
    }

    /// `message + "\n"`.
    pub fn line(&mut self, message: &str) {
        self.raw(message.as_bytes());
        self.raw(b"\n");
    }

    pub fn raw(&mut self, bytes: &[u8]) {
        if !self.broken && self.w.write_all(bytes).is_err() {
            self.broken = true;
        }
    }

    pub fn flush(&mut self) {
        if !self.broken && self.w.flush().is_err() {
            self.broken = true;
        }
    }

    /// stdout is gone (EPIPE or another write error).
    pub fn broken(&self) -> bool {
        self.broken
    }
}

/// An exception escaping a command: `onecmd` prints it as `error: <class 'X'>, text: …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exc {
    pub class: &'static str,
    pub text: String,
}

/// Why a command stopped early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Abort {
    /// Already reported (an upcheck message); the exit status is set.
    Done,
    /// An uncaught exception.
    Raise(Exc),
    /// HTTP 401, which `onecmd` reports specially.
    Auth(Exc),
}

pub(super) type Step<T = ()> = Result<T, Abort>;

fn raise_value_error(text: impl Into<String>) -> Abort {
    Abort::Raise(Exc { class: "ValueError", text: text.into() })
}

/// The exception Python would see for a failed call.
fn exception(e: CallError) -> Abort {
    match e {
        CallError::Fault(f) => Abort::Raise(fault_exc(&f)),
        CallError::Io { errno, message } => Abort::Raise(os_error(errno, &message)),
        CallError::Resolve(msg) => {
            Abort::Raise(Exc { class: "socket.gaierror", text: format!("[Errno -2] {msg}") })
        }
        CallError::BadUrl(msg) => raise_value_error(msg),
        CallError::Http { status, reason } => {
            // SupervisorTransport raises ProtocolError(host + handler, …) with the fake
            // host 127.0.0.1 and handler /RPC2, whatever the real URL.
            let exc = Exc {
                class: "xmlrpc.client.ProtocolError",
                text: format!("<ProtocolError for 127.0.0.1/RPC2: {status} {reason}>"),
            };
            if status == 401 { Abort::Auth(exc) } else { Abort::Raise(exc) }
        }
        CallError::BadReply(msg) => {
            Abort::Raise(Exc { class: "http.client.RemoteDisconnected", text: msg })
        }
    }
}

fn fault_exc(f: &Fault) -> Exc {
    Exc { class: "xmlrpc.client.Fault", text: format::fault_str(i64::from(f.code), &f.string) }
}

/// Python's `OSError` subclass and `str()` for an errno.
fn os_error(errno: Option<i32>, message: &str) -> Exc {
    let Some(n) = errno else { return Exc { class: "OSError", text: message.to_string() } };
    let class = match n {
        libc::ENOENT => "FileNotFoundError",
        libc::ECONNREFUSED => "ConnectionRefusedError",
        libc::ECONNRESET => "ConnectionResetError",
        libc::ECONNABORTED => "ConnectionAbortedError",
        libc::EPIPE => "BrokenPipeError",
        libc::EACCES | libc::EPERM => "PermissionError",
        libc::ETIMEDOUT => "TimeoutError",
        _ => "OSError",
    };
    let full = std::io::Error::from_raw_os_error(n).to_string();
    let strerror = full.split(" (os error").next().unwrap_or(&full);
    Exc { class, text: format!("[Errno {n}] {strerror}") }
}

/// Python's `%s` of an RPC value.
fn py_str(v: Option<&Value>) -> String {
    match v {
        Some(Value::Int(i)) => i.to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => if *b { "True" } else { "False" }.to_string(),
        Some(Value::Double(d)) => format!("{d:?}"),
        Some(Value::Nil) | None => "None".to_string(),
        Some(other) => format!("{other:?}"),
    }
}

/// `status`'s selection: every item for no name or `all`, else the items each
/// `group`, `group:*` or `group:name` names, in the order named; and Python's message for
/// each name that matches nothing.
fn select<'a, T>(
    items: &'a [T],
    arg: &str,
    key: impl Fn(&'a T) -> (&'a str, &'a str),
) -> (Vec<&'a T>, Vec<String>) {
    let names = py_split(arg);
    if names.is_empty() || names.contains(&"all") {
        return (items.iter().collect(), Vec::new());
    }
    let (mut matching, mut unknown) = (Vec::new(), Vec::new());
    for name in names {
        let (group, process) = split_namespec(name);
        let before = matching.len();
        matching.extend(items.iter().filter(|i| {
            let (g, n) = key(i);
            g == group && process.is_none_or(|p| n == p)
        }));
        if matching.len() == before {
            unknown.push(match process {
                None => format!("{group}: ERROR (no such group)"),
                Some(_) => format!("{name}: ERROR (no such process)"),
            });
        }
    }
    (matching, unknown)
}

fn member_str<'v>(v: &'v Value, key: &str) -> &'v str {
    v.member(key).and_then(Value::as_str).unwrap_or("")
}

fn member_int(v: &Value, key: &str) -> i64 {
    v.member(key).and_then(Value::as_int).unwrap_or(0)
}

fn member_truthy(v: &Value, key: &str) -> bool {
    match v.member(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::Int(i)) => *i != 0,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        _ => false,
    }
}

/// The arguments without a `--json` word, when there is one.
fn json_flag(arg: &str) -> Option<String> {
    let words = py_split(arg);
    words
        .contains(&"--json")
        .then(|| words.into_iter().filter(|w| *w != "--json").collect::<Vec<_>>().join(" "))
}

fn list(v: &Value) -> &[Value] {
    v.as_array().unwrap_or(&[])
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// `reloadConfig()[0]`: `(added, changed, removed)`.
fn reload_changes(v: &Value) -> Step<(Vec<String>, Vec<String>, Vec<String>)> {
    let first = list(v).first().and_then(Value::as_array);
    match first {
        Some([a, c, r]) => Ok((strings(Some(a)), strings(Some(c)), strings(Some(r)))),
        _ => Err(raise_value_error("not enough values to unpack (expected 3)")),
    }
}

/// Python's `int()` on a tail modifier: optional sign, digits, single underscores
/// between digits, surrounding whitespace.
fn py_int(s: &str) -> Option<i64> {
    let t = py_strip(s);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.chars().all(|c| c.is_ascii_digit() || c == '_')
    {
        return None;
    }
    let n: i64 = digits.replace('_', "").parse().ok()?;
    Some(if neg { -n } else { n })
}

/// One supervisorctl session: the command runner and its exit status.
pub struct Ctl<'a> {
    pub(super) rpc: &'a mut dyn Rpc,
    pub(super) out: Out<'a>,
    pub(super) err: &'a mut dyn Write,
    pub(super) env: &'a mut dyn Env,
    /// `Controller.exitstatus`.
    pub exit: u8,
    /// Whether a call has reached the server, i.e. the upcheck is behind us.
    upchecked: bool,
    /// `options.interactive` (no command, or `-i`): `shutdown` and `reload` ask first.
    pub interactive: bool,
    /// `EOF`, `quit` or `exit` ran: the shell ends.
    pub quit: bool,
}

impl<'a> Ctl<'a> {
    pub fn new(
        rpc: &'a mut dyn Rpc,
        out: &'a mut dyn Write,
        err: &'a mut dyn Write,
        env: &'a mut dyn Env,
    ) -> Ctl<'a> {
        Ctl {
            rpc,
            out: Out::new(out),
            err,
            env,
            exit: 0,
            upchecked: false,
            interactive: false,
            quit: false,
        }
    }

    /// `Controller.onecmd`: parses one command line and runs it.
    pub fn onecmd(&mut self, line: &str) {
        let line = py_strip(line);
        if line.is_empty() {
            return;
        }
        let line = match line.strip_prefix('?') {
            Some(rest) => format!("help {rest}"),
            None => line.to_string(),
        };
        let end =
            line.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(line.len());
        let (cmd, arg) = (&line[..end], py_strip(&line[end..]));
        let res = match cmd {
            "help" => {
                self.help(arg);
                Ok(())
            }
            "EOF" | "quit" | "exit" => {
                self.out.line("");
                self.quit = true;
                Ok(())
            }
            "status" => self.status(arg),
            "pid" => self.pid(arg),
            "start" => self.start(arg),
            "stop" => self.stop(arg),
            "restart" => self.restart(arg),
            "signal" => self.signal(arg),
            "tail" => self.tail(arg),
            "maintail" => self.maintail(arg),
            "clear" => self.clear(arg),
            "avail" => self.avail(arg),
            "reread" => self.reread(arg),
            "update" => self.update(arg),
            "add" => self.add(arg),
            "remove" => self.remove(arg),
            "shutdown" => self.shutdown(arg),
            "reload" => self.reload(arg),
            "version" => self.version(arg),
            "fg" => self.fg(arg),
            "open" => self.open(arg),
            // Includes an empty command word (a line starting with `!`, `-`, …).
            _ => {
                self.out.line(&format!("*** Unknown syntax: {line}"));
                self.exit = exit::GENERIC;
                Ok(())
            }
        };
        match res {
            Ok(()) | Err(Abort::Done) => {}
            Err(Abort::Raise(e)) => {
                self.out.line(&format::error_line(e.class, &e.text));
                self.exit = exit::GENERIC;
            }
            Err(Abort::Auth(_)) if self.interactive => {
                // Python's shell asks for credentials and runs the command again with
                // them (and asks again while they are refused).
                self.out.line("Server requires authentication");
                self.out.flush();
                let Some(username) = self.env.ask("Username:") else {
                    return self.eof_error();
                };
                let Some(password) = self.env.ask_password("Password:") else {
                    return self.eof_error();
                };
                self.out.line("");
                self.rpc.set_credentials(&username, &password);
                self.env.server_changed(None, Some((&username, &password)));
                return self.onecmd(&line);
            }
            Err(Abort::Auth(e)) => {
                // Python prints this, retries the command once (the retry fails the same
                // way) and then reports the ProtocolError as uncaught.
                self.out.line("Server requires authentication");
                self.out.line(&format::error_line(e.class, &e.text));
                self.exit = exit::GENERIC;
            }
        }
        self.out.flush();
    }

    /// End of input at a credentials prompt: Python's uncaught `EOFError`.
    fn eof_error(&mut self) {
        self.out.line(&format::error_line("EOFError", ""));
        self.exit = exit::GENERIC;
        self.out.flush();
    }

    /// In the shell, asks `question` and says whether the answer starts with `y`; outside
    /// it, yes.
    fn confirm(&mut self, question: &str) -> bool {
        if !self.interactive {
            return true;
        }
        self.out.flush();
        self.env.ask(question).is_some_and(|a| a.to_lowercase().starts_with('y'))
    }

    /// stdout went away; streaming commands (and the shell) stop.
    pub(crate) fn output_broken(&self) -> bool {
        self.out.broken()
    }

    // ----- calls -----

    /// A call whose faults the command handles; other failures are exceptions.
    fn call(&mut self, method: &str, params: &[Value]) -> Step<Result<Value, Fault>> {
        self.call_with(|rpc| rpc.call(method, params))
    }

    /// [`Ctl::call`] for any request `f` makes.
    fn call_with<T>(
        &mut self,
        f: impl FnOnce(&mut dyn Rpc) -> Result<T, CallError>,
    ) -> Step<Result<T, Fault>> {
        match f(&mut *self.rpc) {
            Ok(v) => {
                self.upchecked = true;
                Ok(Ok(v))
            }
            Err(CallError::Fault(f)) => {
                self.upchecked = true;
                Ok(Err(f))
            }
            Err(e) => Err(exception(e)),
        }
    }

    /// A call whose faults are exceptions too.
    fn fcall(&mut self, method: &str, params: &[Value]) -> Step<Value> {
        self.call(method, params)?.map_err(|f| Abort::Raise(fault_exc(&f)))
    }

    /// A call from a command that Python guards with `upcheck()`. On the session's
    /// first call, failures are reported as `upcheck()` reports them: a refused
    /// connection or a missing socket print a message and set 4 or 7, UNKNOWN_METHOD
    /// prints the missing-namespace message (3), and SHUTDOWN_STATE — which
    /// `getVersion` would have raised — is an exception whatever the method.
    fn ucall(&mut self, method: &str, params: &[Value]) -> Step<Result<Value, Fault>> {
        self.ucall_with(|rpc| rpc.call(method, params))
    }

    /// [`Ctl::ucall`] for any request `f` makes.
    fn ucall_with<T>(
        &mut self,
        f: impl FnOnce(&mut dyn Rpc) -> Result<T, CallError>,
    ) -> Step<Result<T, Fault>> {
        if self.upchecked {
            return self.call_with(f);
        }
        match f(&mut *self.rpc) {
            Ok(v) => {
                self.upchecked = true;
                Ok(Ok(v))
            }
            Err(CallError::Fault(f)) if i64::from(f.code) == code::UNKNOWN_METHOD => {
                self.out.line(format::NO_NAMESPACE);
                self.exit = exit::UNIMPLEMENTED_FEATURE;
                Err(Abort::Done)
            }
            Err(CallError::Fault(f)) if i64::from(f.code) == code::SHUTDOWN_STATE => {
                self.exit = exit::GENERIC;
                Err(Abort::Raise(fault_exc(&f)))
            }
            Err(CallError::Fault(f)) => {
                self.upchecked = true;
                Ok(Err(f))
            }
            Err(CallError::Io { errno: Some(libc::ECONNREFUSED), .. }) => {
                let msg = format!("{} refused connection", self.rpc.serverurl());
                self.out.line(&msg);
                self.exit = exit::INSUFFICIENT_PRIVILEGES;
                Err(Abort::Done)
            }
            Err(CallError::Io { errno: Some(libc::ENOENT), .. }) => {
                let msg = format!("{} no such file", self.rpc.serverurl());
                self.out.line(&msg);
                self.exit = exit::NOT_RUNNING;
                Err(Abort::Done)
            }
            Err(e) => {
                self.exit = exit::GENERIC;
                Err(exception(e))
            }
        }
    }

    /// `ucall` whose faults are exceptions.
    fn ufcall(&mut self, method: &str, params: &[Value]) -> Step<Value> {
        self.ufcall_with(|rpc| rpc.call(method, params))
    }

    /// [`Ctl::ufcall`] for any request `f` makes.
    fn ufcall_with<T>(&mut self, f: impl FnOnce(&mut dyn Rpc) -> Result<T, CallError>) -> Step<T> {
        self.ucall_with(f)?.map_err(|f| Abort::Raise(fault_exc(&f)))
    }

    /// A failed shutdown/restart/reload: `msg` for SHUTDOWN_STATE, an exception otherwise;
    /// exit 1 either way.
    fn shutting_down(&mut self, f: &Fault, msg: &str) -> Step {
        self.exit = exit::GENERIC;
        if i64::from(f.code) != code::SHUTDOWN_STATE {
            return Err(Abort::Raise(fault_exc(f)));
        }
        self.out.line(msg);
        Ok(())
    }

    /// An explicit `upcheck()`, for the paths where Python prints something (a usage
    /// error, a header) after the upcheck and before any other call.
    fn upcheck(&mut self) -> Step {
        if self.upchecked {
            return Ok(());
        }
        let api = self.ufcall("supervisor.getVersion", &[])?;
        if api.as_str() != Some("3.0") {
            self.out.line(&format::wrong_api(&py_str(Some(&api))));
            self.exit = exit::NOT_INSTALLED;
            return Err(Abort::Done);
        }
        Ok(())
    }

    /// `set_exitstatus_from_xmlrpc_fault`.
    fn set_exit_from_fault(&mut self, code: i64, ignored: Option<i64>) {
        if code == code::SUCCESS || Some(code) == ignored {
            return;
        }
        self.exit =
            if matches!(code, code::SPAWN_ERROR | code::ABNORMAL_TERMINATION | code::NOT_RUNNING) {
                exit::NOT_RUNNING
            } else {
                exit::GENERIC
            };
    }

    fn help_for(&mut self, topic: &str) {
        if let Some(text) = format::help_topic(topic) {
            self.out.line(text);
        }
    }

    // ----- commands -----

    fn help(&mut self, arg: &str) {
        if arg.is_empty() {
            self.out.raw(format::HELP_TOPICS.as_bytes());
            return;
        }
        match format::help_topic(arg) {
            Some(text) => self.out.line(text),
            None => self.out.line(&format!("*** No help on {arg}")),
        }
    }

    fn status(&mut self, arg: &str) -> Step {
        if let Some(rest) = json_flag(arg) {
            return self.status_json(&rest);
        }
        let infos = match self.ucall_with(|rpc| rpc.all_process_info()) {
            Err(Abort::Done) => {
                self.exit = exit::STATUS_UNKNOWN;
                return Ok(());
            }
            other => other?.map_err(|f| Abort::Raise(fault_exc(&f)))?,
        };
        let (matching, unknown) = select(&infos, arg, |i| (&i.group, &i.name));
        for msg in &unknown {
            self.out.line(msg);
            self.exit = exit::STATUS_UNKNOWN;
        }
        let rows: Vec<format::StatusRow> = matching
            .iter()
            .map(|i| format::StatusRow {
                namespec: format::namespec(&i.group, &i.name),
                statename: &i.statename,
                description: &i.description,
            })
            .collect();
        self.out.raw(format::status_table(&rows).as_bytes());
        if matching.iter().any(|i| STOPPED_STATES.contains(&i.state)) {
            self.exit = exit::STATUS_NOT_RUNNING;
        }
        Ok(())
    }

    /// `status --json [name…]`: one JSON array of `weka.getAllProcessStatus` records
    /// (`getAllProcessInfo`'s from a daemon without it), filtered and exiting as `status`.
    fn status_json(&mut self, arg: &str) -> Step {
        let reply = match self.ucall("weka.getAllProcessStatus", &[]) {
            Ok(Err(f)) if i64::from(f.code) == code::UNKNOWN_METHOD => {
                self.ucall("supervisor.getAllProcessInfo", &[])
            }
            other => other,
        };
        let infos = match reply {
            Err(Abort::Done) => {
                self.exit = exit::STATUS_UNKNOWN;
                return Ok(());
            }
            other => other?.map_err(|f| Abort::Raise(fault_exc(&f)))?,
        };
        let infos = list(&infos);
        let (matching, unknown) =
            select(infos, arg, |i| (member_str(i, "group"), member_str(i, "name")));
        for msg in &unknown {
            // stdout carries only the document.
            let _ = writeln!(self.err, "{msg}");
            self.exit = exit::STATUS_UNKNOWN;
        }
        if matching.iter().any(|i| STOPPED_STATES.contains(&member_int(i, "state"))) {
            self.exit = exit::STATUS_NOT_RUNNING;
        }
        self.json_out(&Value::Array(matching.into_iter().cloned().collect()));
        Ok(())
    }

    fn json_out(&mut self, v: &Value) {
        let mut text = String::new();
        crate::rpc::jsonrpc::write_value(&mut text, v);
        self.out.line(&text);
    }

    fn pid(&mut self, arg: &str) -> Step {
        let names = py_split(arg);
        if names.is_empty() {
            let pid = self.ufcall("supervisor.getPID", &[])?;
            self.out.line(&py_str(Some(&pid)));
        } else if names.contains(&"all") {
            for info in self.ufcall_with(|rpc| rpc.all_process_info())? {
                self.out.line(&info.pid.to_string());
            }
        } else {
            for name in names {
                match self.ucall("supervisor.getProcessInfo", &[Value::str(name)])? {
                    Err(f) => {
                        self.exit = exit::GENERIC;
                        if i64::from(f.code) != code::BAD_NAME {
                            return Err(Abort::Raise(fault_exc(&f)));
                        }
                        self.out.line(&format!("No such process {name}"));
                    }
                    Ok(info) => {
                        let pid = info.member("pid");
                        self.out.line(&py_str(pid));
                        if pid.and_then(Value::as_int) == Some(0) {
                            self.exit = exit::NOT_RUNNING;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Prints the lines for a list of `{name, group, status, description}` results.
    fn results(
        &mut self,
        results: &Value,
        line: impl Fn(&str, i64, &str) -> Result<String, format::UnknownCode>,
        ignored: Option<i64>,
    ) -> Step {
        for r in list(results) {
            let name = format::namespec(member_str(r, "group"), member_str(r, "name"));
            let status = member_int(r, "status");
            let text = line(&name, status, member_str(r, "description"))
                .map_err(|e| raise_value_error(e.0))?;
            self.out.line(&text);
            self.set_exit_from_fault(status, ignored);
        }
        Ok(())
    }

    fn start(&mut self, arg: &str) -> Step {
        let names = py_split(arg);
        if names.is_empty() {
            self.upcheck()?;
            self.out.line("Error: start requires a process name");
            self.exit = exit::INVALID_ARGS;
            self.help_for("start");
            return Ok(());
        }
        let started = |n: &str, c: i64, _: &str| format::start_result(n, c);
        if names.contains(&"all") {
            let results = self.ufcall("supervisor.startAllProcesses", &[])?;
            return self.results(&results, started, Some(code::ALREADY_STARTED));
        }
        for name in names {
            match split_namespec(name) {
                (group, None) => {
                    match self.ucall("supervisor.startProcessGroup", &[Value::str(group)])? {
                        Ok(results) => {
                            self.results(&results, started, Some(code::ALREADY_STARTED))?
                        }
                        Err(f) if i64::from(f.code) == code::BAD_NAME => {
                            self.out.line(&format!("{group}: ERROR (no such group)"));
                            self.exit = exit::INVALID_ARGS;
                        }
                        Err(f) => {
                            self.exit = exit::GENERIC;
                            return Err(Abort::Raise(fault_exc(&f)));
                        }
                    }
                }
                (group, Some(process)) => {
                    let spec = format::namespec(group, process);
                    match self.ucall("supervisor.startProcess", &[Value::str(name)])? {
                        Ok(_) => self.out.line(&format!("{spec}: started")),
                        Err(f) => {
                            let code = i64::from(f.code);
                            let text = format::start_result(&spec, code)
                                .map_err(|e| raise_value_error(e.0))?;
                            self.out.line(&text);
                            self.set_exit_from_fault(code, Some(code::ALREADY_STARTED));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn stop(&mut self, arg: &str) -> Step {
        let names = py_split(arg);
        if names.is_empty() {
            self.upcheck()?;
            self.out.line("Error: stop requires a process name");
            self.exit = exit::GENERIC;
            self.help_for("stop");
            return Ok(());
        }
        let stopped = |n: &str, c: i64, d: &str| format::signal_result(n, c, d, "stopped");
        if names.contains(&"all") {
            let results = self.ufcall("supervisor.stopAllProcesses", &[])?;
            return self.results(&results, stopped, Some(code::NOT_RUNNING));
        }
        for name in names {
            match split_namespec(name) {
                (group, None) => {
                    match self.ucall("supervisor.stopProcessGroup", &[Value::str(group)])? {
                        Ok(results) => self.results(&results, stopped, Some(code::NOT_RUNNING))?,
                        Err(f) => {
                            self.exit = exit::GENERIC;
                            if i64::from(f.code) != code::BAD_NAME {
                                return Err(Abort::Raise(fault_exc(&f)));
                            }
                            self.out.line(&format!("{group}: ERROR (no such group)"));
                        }
                    }
                }
                (group, Some(process)) => {
                    let spec = format::namespec(group, process);
                    match self.ucall("supervisor.stopProcess", &[Value::str(name)])? {
                        Ok(_) => self.out.line(&format!("{spec}: stopped")),
                        Err(f) => {
                            let code = i64::from(f.code);
                            let text = format::signal_result(&spec, code, &f.string, "stopped")
                                .map_err(|e| raise_value_error(e.0))?;
                            self.out.line(&text);
                            self.set_exit_from_fault(code, Some(code::NOT_RUNNING));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn restart(&mut self, arg: &str) -> Step {
        if py_split(arg).is_empty() {
            self.upcheck()?;
            self.out.line("Error: restart requires a process name");
            self.exit = exit::GENERIC;
            self.help_for("restart");
            return Ok(());
        }
        self.stop(arg)?;
        self.start(arg)
    }

    fn signal(&mut self, arg: &str) -> Step {
        let args = py_split(arg);
        let [sig, names @ ..] = args.as_slice() else { return self.signal_usage() };
        if names.is_empty() {
            return self.signal_usage();
        }
        let sig = Value::str(*sig);
        let signalled = |n: &str, c: i64, d: &str| format::signal_result(n, c, d, "signalled");
        if names.contains(&"all") {
            // signalAllProcesses skips the server's shutdown check, which getVersion
            // would have made; keep Python's upcheck here.
            self.upcheck()?;
            let results = self.ufcall("supervisor.signalAllProcesses", &[sig])?;
            return self.results(&results, signalled, None);
        }
        for name in names {
            match split_namespec(name) {
                (group, None) => {
                    match self
                        .ucall("supervisor.signalProcessGroup", &[Value::str(group), sig.clone()])?
                    {
                        Ok(results) => self.results(&results, signalled, None)?,
                        Err(f) if i64::from(f.code) == code::BAD_NAME => {
                            self.out.line(&format!("{group}: ERROR (no such group)"));
                            self.exit = exit::GENERIC;
                        }
                        Err(f) => return Err(Abort::Raise(fault_exc(&f))),
                    }
                }
                (group, Some(process)) => {
                    let spec = format::namespec(group, process);
                    match self
                        .ucall("supervisor.signalProcess", &[Value::str(*name), sig.clone()])?
                    {
                        Ok(_) => self.out.line(&format!("{spec}: signalled")),
                        Err(f) => {
                            let code = i64::from(f.code);
                            let text = format::signal_result(&spec, code, &f.string, "signalled")
                                .map_err(|e| raise_value_error(e.0))?;
                            self.out.line(&text);
                            self.set_exit_from_fault(code, None);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn signal_usage(&mut self) -> Step {
        self.upcheck()?;
        self.out.line("Error: signal requires a signal name and a process name");
        self.help_for("signal");
        self.exit = exit::GENERIC;
        Ok(())
    }

    fn tail(&mut self, arg: &str) -> Step {
        let mut args = py_split(arg);
        let fail = |ctl: &mut Self, msg: &str, help: bool| -> Step {
            ctl.upcheck()?;
            ctl.out.line(msg);
            ctl.exit = exit::GENERIC;
            if help {
                ctl.help_for("tail");
            }
            Ok(())
        };
        if args.is_empty() {
            return fail(self, "Error: too few arguments", true);
        }
        if args.len() > 3 {
            return fail(self, "Error: too many arguments", true);
        }
        let modifier = if args.first().is_some_and(|a| a.starts_with('-')) {
            Some(args.remove(0))
        } else {
            None
        };
        // The Go rewrite's `tail NAME [stdout|stderr] BYTES`: a trailing number, which
        // Python refuses as a bad channel, is the byte count.
        let go_bytes = if modifier.is_none()
            && (2..=3).contains(&args.len())
            && args.last().is_some_and(|b| !b.is_empty() && b.bytes().all(|c| c.is_ascii_digit()))
        {
            args.pop().and_then(py_int)
        } else {
            None
        };
        let (name, channel) = match args.as_slice() {
            [name] => (*name, "stdout".to_string()),
            [name, .., last] => {
                let channel = last.to_lowercase();
                if channel != "stdout" && channel != "stderr" {
                    return fail(
                        self,
                        &format!("Error: bad channel {}", format::py_repr(&channel)),
                        false,
                    );
                }
                (*name, channel)
            }
            [] => return fail(self, "Error: tail requires process name", false),
        };
        let bytes = match modifier {
            None => Some(go_bytes.unwrap_or(1600)),
            Some(m) if &m[1..] == "f" => None,
            Some(m) => match py_int(&m[1..]) {
                Some(n) => Some(n),
                None => return fail(self, &format!("Error: bad argument {m}"), false),
            },
        };
        let stderr = channel == "stderr";
        let Some(bytes) = bytes else {
            self.upcheck()?;
            let path = format!("/logtail/{name}/{channel}");
            return self
                .follow_and_report(&[Source::Process { name: name.to_string(), stderr }], &path);
        };
        let method = if stderr {
            "supervisor.readProcessStderrLog"
        } else {
            "supervisor.readProcessStdoutLog"
        };
        let params = [Value::str(name), Value::Int(bytes.saturating_neg()), Value::Int(0)];
        match self.ucall(method, &params)? {
            Ok(data) => self.out.line(&py_str(Some(&data))),
            Err(f) => {
                self.exit = exit::GENERIC;
                let why = match i64::from(f.code) {
                    code::NO_FILE => "no log file",
                    code::FAILED => "unknown error reading log",
                    code::BAD_NAME => "no such process name",
                    _ => return Err(Abort::Raise(fault_exc(&f))),
                };
                self.out.line(&format!("{name}: ERROR ({why})"));
            }
        }
        Ok(())
    }

    fn maintail(&mut self, arg: &str) -> Step {
        let args = py_split(arg);
        let fail = |ctl: &mut Self, msg: &str, help: bool| -> Step {
            ctl.upcheck()?;
            ctl.out.line(msg);
            ctl.exit = exit::GENERIC;
            if help {
                ctl.help_for("maintail");
            }
            Ok(())
        };
        let bytes = match args.as_slice() {
            [] => 1600,
            [a] => match a.strip_prefix('-') {
                Some("f") => {
                    self.upcheck()?;
                    return self.follow_and_report(&[Source::Main], "/mainlogtail");
                }
                Some(what) => match py_int(what) {
                    Some(n) => n,
                    None => return fail(self, &format!("Error: bad argument {a}"), false),
                },
                // The Go rewrite's `maintail BYTES` (Python: a bad argument).
                None if !a.is_empty() && a.bytes().all(|c| c.is_ascii_digit()) => match py_int(a) {
                    Some(n) => n,
                    None => return fail(self, &format!("Error: bad argument {a}"), false),
                },
                None => return fail(self, &format!("Error: bad argument {a}"), false),
            },
            _ => return fail(self, "Error: too many arguments", true),
        };
        match self
            .ucall("supervisor.readLog", &[Value::Int(bytes.saturating_neg()), Value::Int(0)])?
        {
            Ok(data) => self.out.line(&py_str(Some(&data))),
            Err(f) => {
                self.exit = exit::GENERIC;
                let why = match i64::from(f.code) {
                    code::NO_FILE => "no log file",
                    code::FAILED => "unknown error reading log",
                    _ => return Err(Abort::Raise(fault_exc(&f))),
                };
                self.out.line(&format!("supervisord: ERROR ({why})"));
            }
        }
        Ok(())
    }

    /// `_tailf`: the header, then the stream until Ctrl-C (an empty line) or a closed
    /// stdout. A log that cannot be read is Python's 404 from `/logtail`, on stderr.
    fn follow_and_report(&mut self, sources: &[Source], path: &str) -> Step {
        self.out.line("==> Press Ctrl-C to exit <==");
        self.out.flush();
        match self.follow(sources, None)? {
            super::follow::Ended::Interrupted => self.out.line(""),
            super::follow::Ended::Unreadable => {
                let url = self.rpc.serverurl().to_string();
                // stderr is best effort, like Python's sys.stderr.write.
                let _best_effort = writeln!(self.err, "{url}{path} Cannot read, status code 404");
            }
            super::follow::Ended::OutputClosed | super::follow::Ended::Stopped => {}
        }
        Ok(())
    }

    fn clear(&mut self, arg: &str) -> Step {
        let names = py_split(arg);
        if names.is_empty() {
            self.upcheck()?;
            self.out.line("Error: clear requires a process name");
            self.exit = exit::GENERIC;
            self.help_for("clear");
            return Ok(());
        }
        if names.contains(&"all") {
            let results = self.ufcall("supervisor.clearAllProcessLogs", &[])?;
            return self.results(&results, |n, c, _| format::clear_result(n, c), None);
        }
        for name in names {
            // Python builds the name from split_namespec, so `g:*` shows as `g:None`.
            let (group, process) = split_namespec(name);
            let spec = format::namespec(group, process.unwrap_or("None"));
            match self.ucall("supervisor.clearProcessLogs", &[Value::str(name)])? {
                Ok(_) => self.out.line(&format!("{spec}: cleared")),
                Err(f) => {
                    let code = i64::from(f.code);
                    let text =
                        format::clear_result(&spec, code).map_err(|e| raise_value_error(e.0))?;
                    self.out.line(&text);
                    self.set_exit_from_fault(code, None);
                }
            }
        }
        Ok(())
    }

    fn no_args(&mut self, cmd: &str, arg: &str) -> bool {
        if arg.is_empty() {
            return false;
        }
        self.out.line(&format!("Error: {cmd} accepts no arguments"));
        self.exit = exit::GENERIC;
        self.help_for(cmd);
        true
    }

    fn avail(&mut self, arg: &str) -> Step {
        if let Some(rest) = json_flag(arg) {
            if self.no_args("avail", &rest) {
                return Ok(());
            }
            match self.call("supervisor.getAllConfigInfo", &[])? {
                Ok(infos) => self.json_out(&infos),
                Err(f) => self.shutting_down(&f, "ERROR: supervisor shutting down")?,
            }
            return Ok(());
        }
        if self.no_args("avail", arg) {
            return Ok(());
        }
        match self.call("supervisor.getAllConfigInfo", &[])? {
            Ok(infos) => {
                for i in list(&infos) {
                    let spec = format::namespec(member_str(i, "group"), member_str(i, "name"));
                    let prio = format!(
                        "{}:{}",
                        py_str(i.member("group_prio")),
                        py_str(i.member("process_prio"))
                    );
                    let line = format::avail_line(
                        &spec,
                        member_truthy(i, "inuse"),
                        member_truthy(i, "autostart"),
                        &prio,
                    );
                    self.out.line(&line);
                }
            }
            Err(f) => self.shutting_down(&f, "ERROR: supervisor shutting down")?,
        }
        Ok(())
    }

    fn reread(&mut self, arg: &str) -> Step {
        if self.no_args("reread", arg) {
            return Ok(());
        }
        match self.call("supervisor.reloadConfig", &[])? {
            Ok(result) => {
                let (added, changed, dropped) = reload_changes(&result)?;
                self.out.raw(format::changes(&added, &changed, &dropped).as_bytes());
            }
            Err(f) => {
                self.exit = exit::GENERIC;
                match i64::from(f.code) {
                    code::SHUTDOWN_STATE => self.out.line("ERROR: supervisor shutting down"),
                    code::CANT_REREAD => self.out.line(&format!("ERROR: {}", f.string)),
                    _ => return Err(Abort::Raise(fault_exc(&f))),
                }
            }
        }
        Ok(())
    }

    fn add(&mut self, arg: &str) -> Step {
        for name in py_split(arg) {
            match self.call("supervisor.addProcessGroup", &[Value::str(name)])? {
                Ok(_) => self.out.line(&format!("{name}: added process group")),
                Err(f) => match i64::from(f.code) {
                    code::SHUTDOWN_STATE => {
                        self.out.line("ERROR: shutting down");
                        self.exit = exit::GENERIC;
                    }
                    code::ALREADY_ADDED => self.out.line("ERROR: process group already active"),
                    code::BAD_NAME => {
                        self.out.line(&format!("ERROR: no such process/group: {name}"));
                        self.exit = exit::GENERIC;
                    }
                    _ => {
                        self.exit = exit::GENERIC;
                        return Err(Abort::Raise(fault_exc(&f)));
                    }
                },
            }
        }
        Ok(())
    }

    fn remove(&mut self, arg: &str) -> Step {
        for name in py_split(arg) {
            match self.call("supervisor.removeProcessGroup", &[Value::str(name)])? {
                Ok(_) => self.out.line(&format!("{name}: removed process group")),
                Err(f) => {
                    self.exit = exit::GENERIC;
                    match i64::from(f.code) {
                        code::STILL_RUNNING => {
                            self.out.line(&format!("ERROR: process/group still running: {name}"));
                        }
                        code::BAD_NAME => {
                            self.out.line(&format!("ERROR: no such process/group: {name}"))
                        }
                        _ => return Err(Abort::Raise(fault_exc(&f))),
                    }
                }
            }
        }
        Ok(())
    }

    fn update(&mut self, arg: &str) -> Step {
        let result = match self.call("supervisor.reloadConfig", &[])? {
            Ok(r) => r,
            Err(f) => return self.shutting_down(&f, "ERROR: already shutting down"),
        };
        let (added, changed, removed) = reload_changes(&result)?;
        // Python keeps these in a set; we keep the order they were typed in.
        let mut wanted: Vec<&str> = Vec::new();
        for g in py_split(arg) {
            if !wanted.contains(&g) {
                wanted.push(g);
            }
        }
        if wanted.contains(&"all") {
            wanted.clear();
        }
        if !wanted.is_empty() {
            let infos = self.fcall("supervisor.getAllProcessInfo", &[])?;
            let known: Vec<&str> = list(&infos).iter().map(|i| member_str(i, "group")).collect();
            for g in &wanted {
                if !known.contains(g) && !added.iter().any(|a| a == g) {
                    self.out.line(&format!("ERROR: no such group: {g}"));
                    self.exit = exit::GENERIC;
                }
            }
        }
        let chosen = |g: &str| wanted.is_empty() || wanted.contains(&g);
        for g in removed.iter().filter(|g| chosen(g)) {
            let results = self.fcall("supervisor.stopProcessGroup", &[Value::str(g)])?;
            self.out.line(&format!("{g}: stopped"));
            if list(&results).iter().any(|r| member_int(r, "status") == code::FAILED) {
                self.out.line(&format!("{g}: has problems; not removing"));
                self.exit = exit::GENERIC;
                continue;
            }
            self.fcall("supervisor.removeProcessGroup", &[Value::str(g)])?;
            self.out.line(&format!("{g}: removed process group"));
        }
        for g in changed.iter().filter(|g| chosen(g)) {
            self.fcall("supervisor.stopProcessGroup", &[Value::str(g)])?;
            self.out.line(&format!("{g}: stopped"));
            self.fcall("supervisor.removeProcessGroup", &[Value::str(g)])?;
            self.fcall("supervisor.addProcessGroup", &[Value::str(g)])?;
            self.out.line(&format!("{g}: updated process group"));
        }
        for g in added.iter().filter(|g| chosen(g)) {
            self.fcall("supervisor.addProcessGroup", &[Value::str(g)])?;
            self.out.line(&format!("{g}: added process group"));
        }
        Ok(())
    }

    fn shutdown(&mut self, arg: &str) -> Step {
        if self.no_args("shutdown", arg) {
            return Ok(());
        }
        if !self.confirm("Really shut the remote supervisord process down y/N? ") {
            return Ok(());
        }
        match self.rpc.call("supervisor.shutdown", &[]) {
            Ok(_) => self.out.line("Shut down"),
            Err(CallError::Fault(f)) if i64::from(f.code) == code::SHUTDOWN_STATE => {
                self.out.line("ERROR: already shutting down");
            }
            Err(CallError::Io { errno: Some(n @ (libc::ECONNREFUSED | libc::ENOENT)), .. }) => {
                self.exit = exit::GENERIC;
                let why =
                    if n == libc::ECONNREFUSED { "refused connection" } else { "no such file" };
                let msg = format!("ERROR: {} {why} (already shut down?)", self.rpc.serverurl());
                self.out.line(&msg);
            }
            Err(e) => {
                self.exit = exit::GENERIC;
                return Err(exception(e));
            }
        }
        Ok(())
    }

    fn reload(&mut self, arg: &str) -> Step {
        if self.no_args("reload", arg) {
            return Ok(());
        }
        if !self.confirm("Really restart the remote supervisord process y/N? ") {
            return Ok(());
        }
        match self.call("supervisor.restart", &[])? {
            Ok(_) => self.out.line("Restarted supervisord"),
            Err(f) => self.shutting_down(&f, "ERROR: already shutting down")?,
        }
        Ok(())
    }

    fn version(&mut self, arg: &str) -> Step {
        if self.no_args("version", arg) {
            return Ok(());
        }
        let v = self.ufcall("supervisor.getSupervisorVersion", &[])?;
        self.out.line(&py_str(Some(&v)));
        Ok(())
    }

    fn open(&mut self, arg: &str) -> Step {
        let url = py_strip(arg);
        let scheme = url.split_once(':').map(|(s, _)| s).filter(|s| {
            s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && s.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        });
        if !matches!(scheme.map(str::to_ascii_lowercase).as_deref(), Some("unix" | "http")) {
            self.out.line("ERROR: url must be http:// or unix://");
            self.exit = exit::GENERIC;
            return Ok(());
        }
        self.rpc.set_serverurl(url);
        self.env.server_changed(Some(url), None);
        self.upchecked = false;
        let old = self.exit;
        self.status("")?;
        self.exit = old;
        Ok(())
    }

    fn fg(&mut self, arg: &str) -> Step {
        let names = py_split(arg);
        let name = match names.as_slice() {
            [] => {
                self.upcheck()?;
                self.out.line("ERROR: no process name supplied");
                self.exit = exit::GENERIC;
                self.help_for("fg");
                return Ok(());
            }
            [name] => name.to_string(),
            _ => {
                self.upcheck()?;
                self.out.line("ERROR: too many process names supplied");
                self.exit = exit::GENERIC;
                return Ok(());
            }
        };
        match self.ucall("supervisor.getProcessInfo", &[Value::str(&name)])? {
            Err(f) if i64::from(f.code) == code::BAD_NAME => {
                self.out.line("ERROR: bad process name supplied");
                self.exit = exit::GENERIC;
                return Ok(());
            }
            Err(f) => {
                self.out
                    .line(&format!("ERROR: {}", format::fault_str(i64::from(f.code), &f.string)));
                return Ok(());
            }
            Ok(info) if member_int(&info, "state") != RUNNING => {
                self.out.line("ERROR: process not running");
                self.exit = exit::GENERIC;
                return Ok(());
            }
            Ok(_) => {}
        }
        self.out.line("==> Press Ctrl-C to exit <==");
        self.out.flush();
        let sources = [
            Source::Process { name: name.clone(), stderr: false },
            Source::Process { name: name.clone(), stderr: true },
        ];
        // The stream ends only through `fg_input` (a line, EOF) or Ctrl-C.
        match self.follow(&sources, Some(&name))? {
            super::follow::Ended::Stopped => {}
            _ => self.out.line("Exiting foreground"),
        }
        Ok(())
    }

    /// `fg`'s input side, run between polls: each typed line goes to the process's
    /// stdin; returns false when the session is over (its messages already printed).
    pub(super) fn fg_input(&mut self, name: &str) -> Step<bool> {
        loop {
            match self.env.stdin_line() {
                StdinLine::Nothing => return Ok(true),
                StdinLine::Eof => {
                    self.out.line("Exiting foreground");
                    return Ok(false);
                }
                StdinLine::Line(line) => {
                    let params = [Value::str(name), Value::str(format!("{line}\n"))];
                    if let Err(f) = self.call("supervisor.sendProcessStdin", &params)? {
                        if i64::from(f.code) == code::NOT_RUNNING {
                            self.out.line("Process got killed");
                        } else {
                            self.out.line(&format!(
                                "ERROR: {}",
                                format::fault_str(i64::from(f.code), &f.string)
                            ));
                        }
                        self.out.line("Exiting foreground");
                        return Ok(false);
                    }
                    let info = self.fcall("supervisor.getProcessInfo", &[Value::str(name)])?;
                    if member_int(&info, "state") != RUNNING {
                        self.out.line("Process got killed");
                        self.out.line("Exiting foreground");
                        return Ok(false);
                    }
                }
            }
        }
    }

    /// A follow-mode read: faults are returned, transport failures are exceptions.
    pub(super) fn log_call(
        &mut self,
        method: &str,
        params: &[Value],
    ) -> Step<Result<Value, Fault>> {
        self.call(method, params)
    }

    pub(super) fn env(&mut self) -> &mut dyn Env {
        &mut *self.env
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_int_parsing() {
        assert_eq!(py_int("100"), Some(100));
        assert_eq!(py_int("+5"), Some(5));
        assert_eq!(py_int("-5"), Some(-5));
        assert_eq!(py_int("1_000"), Some(1000));
        for bad in ["", "x", "1__0", "_1", "1_", "-", "1.5", "f"] {
            assert_eq!(py_int(bad), None, "{bad}");
        }
    }

    #[test]
    fn os_errors_read_like_python() {
        let e = os_error(Some(libc::ENOENT), "");
        assert_eq!(
            (e.class, e.text.as_str()),
            ("FileNotFoundError", "[Errno 2] No such file or directory")
        );
        let e = os_error(Some(libc::ECONNREFUSED), "");
        assert_eq!(
            (e.class, e.text.as_str()),
            ("ConnectionRefusedError", "[Errno 111] Connection refused")
        );
    }
}
