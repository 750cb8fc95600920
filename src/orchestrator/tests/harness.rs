//! A fake world for the orchestrator: a shell that records every runner command and keeps
//! a virtual clock, a captured daemon log, and a script that feeds facts, requests and
//! signals into the actor's methods (no runtime, no processes), writing a transcript.
//!
//! Script tokens, separated by spaces, each optionally `@SECONDS` (virtual time):
//! - `boot` creates the table and starts the autostart queue;
//! - facts: `spawned(p)` `spawnfail(p)` `exit(p,N)` `killed(p,SIG)` `tick(p)`, check
//!   results `ready(p)` `notready(p)` `healthy(p)` `unhealthy(p)` (a failure is
//!   `connection refused`);
//! - requests: `start(spec)` `startw(spec)` (wait) `startnw(spec)` (idempotent, waiting)
//!   `stop(spec)` `stopw(spec)` `signal(spec,SIG)` `shutdown` `restart` `getstate`
//!   `reread(N)` (the world's config N, 0-based) `add(g)` `remove(g)` `disable` `enable`
//!   `autorecovery`;
//! - `killfail(p)` `sigfail(p)` (a signal the runner could not send); `full` / `unfull`
//!   (runners refuse commands, as if gone); `clearlogs(spec)`; `stdin(p)`; `info(p)` (`getProcessInfo`);
//!   `logpath(spec)` (stdout's, `= true` when there is a file);
//! - signals: `sigterm` `sighup`; `report` runs the stop report; `states` lists every
//!   process's state.
//!
//! After each token the harness does what the loop does between messages (move a shutdown
//! on) and prints `=> all stopped` once every process is down; then the runner commands and
//! log lines the token caused, in order, and the parked replies it answered.
//!
//! A process `p` is named `group:name`, or just `name` when that is unique.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use expect_test::Expect;
use tokio::sync::{mpsc, oneshot};

use crate::config::{Config, LoadContext, Overrides};
use crate::fault::Fault;
use crate::logio::mainlog::Level;
use crate::logio::mainlog_task::Captured;
use crate::orchestrator::msg::{Detail, Outcome, Pending, Request, Target};
use crate::orchestrator::shell::{CheckSpec, Shell, Undelivered};
use crate::orchestrator::{Orchestrator, OrchestratorHandle, Parts};
use crate::procsup::ExitStatus;
use crate::runner::{CheckKind, ProcId, RunnerCmd, RunnerSpec, SignalPurpose};
use crate::sys::signals::DaemonSignal;

/// The fake shell: runners are names, commands are lines, the clock moves when told.
pub struct FakeShell {
    pub t0: Instant,
    pub now: Instant,
    names: HashMap<ProcId, String>,
    log: Captured,
    /// While set, every command is refused as if the runner were gone.
    full: bool,
    /// Transcript lines not yet printed: log lines and commands, in the order they happened.
    out: Vec<String>,
    /// Running checks and their generation.
    checks: HashMap<(ProcId, CheckKind), u64>,
}

impl FakeShell {
    fn secs(&self, at: Instant) -> String {
        format!("{}", at.saturating_duration_since(self.t0).as_secs_f64())
    }

    /// Moves the log lines written so far into the transcript.
    fn take_log(&mut self) {
        for (level, text) in self.log.lines() {
            self.out.push(format!("{} {text}", level.tag()));
        }
    }
}

impl Shell for FakeShell {
    fn now(&self) -> Instant {
        self.now
    }

    fn wall_now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000) + (self.now - self.t0)
    }

    fn start_runner(&mut self, spec: RunnerSpec) {
        let name = if spec.config.group == spec.config.name {
            spec.config.name.clone()
        } else {
            format!("{}:{}", spec.config.group, spec.config.name)
        };
        self.names.insert(spec.id, name);
    }

    fn send(&mut self, id: ProcId, cmd: RunnerCmd) -> Result<(), Undelivered> {
        if self.full {
            return Err(Undelivered("the runner is gone".into()));
        }
        let text = match cmd {
            RunnerCmd::Spawn => "spawn".to_string(),
            RunnerCmd::Signal { pid, sig, group, purpose } => format!(
                "{} {}{pid} {}",
                match purpose {
                    SignalPurpose::Kill => "kill",
                    SignalPurpose::Signal => "signal",
                },
                if group { "-" } else { "" },
                crate::procsup::signame(sig)
            ),
            RunnerCmd::Deadline(Some(at)) => format!("deadline @{}", self.secs(at)),
            RunnerCmd::Deadline(None) => "no deadline".into(),
            RunnerCmd::WriteStdin { .. } => "stdin".into(),
            RunnerCmd::ReopenLogs => "reopen logs".into(),
            RunnerCmd::ClearLogs { .. } => "clear logs".into(),
            RunnerCmd::Retire => "retire".into(),
        };
        self.take_log();
        let name = self.names.get(&id).cloned().unwrap_or_default();
        self.out.push(format!("{name}: {text}"));
        Ok(())
    }

    fn retire(&mut self, id: ProcId) -> Result<(), Undelivered> {
        self.send(id, RunnerCmd::Retire)
    }

    fn start_check(&mut self, spec: CheckSpec) {
        self.take_log();
        let name = self.names.get(&spec.id).cloned().unwrap_or_default();
        self.out
            .push(format!("{name}: {:?} check {} (#{})", spec.kind, spec.form, spec.generation));
        self.checks.insert((spec.id, spec.kind), spec.generation);
    }

    fn after_auto_logs(&mut self, then: Box<dyn FnOnce() + Send>) {
        self.take_log();
        self.out.push("(after the AUTO logs queued so far)".into());
        then();
    }

    fn notify_socket(&mut self, group: &str, name: &str) -> Option<std::path::PathBuf> {
        Some(std::path::PathBuf::from(format!("/notify/{group}:{name}.sock")))
    }

    fn stop_check(&mut self, id: ProcId, kind: CheckKind) {
        self.take_log();
        if self.checks.remove(&(id, kind)).is_some() {
            let name = self.names.get(&id).cloned().unwrap_or_default();
            self.out.push(format!("{name}: {kind:?} check stopped"));
        }
    }
}

pub struct World {
    pub orch: Orchestrator<FakeShell>,
    /// The way other tasks reach the actor, for tests that run its loop.
    pub handle: OrchestratorHandle,
    configs: Vec<Config>,
    next_pid: u32,
    pids: HashMap<ProcId, u32>,
    /// Replies not answered yet: (what was asked, its receiver).
    waiting: Vec<(String, oneshot::Receiver<Result<(), Fault>>)>,
    stopped: bool,
    transcript: String,
    _dir: tempfile::TempDir,
    // Kept open so the actor's inboxes stay connected.
    _signals: mpsc::Sender<DaemonSignal>,
    _facts: mpsc::Sender<crate::runner::Fact>,
}

const HEAD: &str = "[supervisord]\nlogfile=/dev/null\n";

fn load(dir: &Path, i: usize, text: &str) -> Config {
    let name = format!("c{i}.conf");
    std::fs::write(dir.join(&name), format!("{HEAD}{text}")).expect("write config");
    let ctx = LoadContext {
        env: vec![("HOME".into(), "/nonexistent".into())],
        cwd: dir.to_path_buf(),
        host_node_name: "node1".into(),
    };
    crate::config::load(Path::new(&name), &Overrides::default(), &ctx)
        .unwrap_or_else(|e| panic!("config {i}: {e:#?}"))
}

impl World {
    /// A world running the first of `configs` (program sections; `[supervisord]` is added).
    pub fn new(configs: &[&str]) -> World {
        let dir = tempfile::Builder::new().prefix("orchtest").tempdir_in("/tmp").expect("dir");
        let configs: Vec<Config> =
            configs.iter().enumerate().map(|(i, t)| load(dir.path(), i, t)).collect();
        let t0 = crate::sys::clock::now();
        let (log, captured) = Captured::start(Level::Info);
        let shell = FakeShell {
            t0,
            now: t0,
            names: HashMap::new(),
            log: captured,
            full: false,
            out: Vec::new(),
            checks: HashMap::new(),
        };
        let (signals_tx, signals) = mpsc::channel(8);
        let (facts_tx, facts) = mpsc::channel(8);
        let (orch, handle) = Orchestrator::with_shell(
            shell,
            Parts {
                config: Arc::new(configs[0].clone()),
                log,
                signals,
                facts,
                daemon_env: Vec::new(),
                seed: 1,
                serial: crate::events::event::Serial::new(),
            },
        );
        World {
            orch,
            handle,
            configs,
            next_pid: 100,
            pids: HashMap::new(),
            waiting: Vec::new(),
            stopped: false,
            transcript: String::new(),
            _dir: dir,
            _signals: signals_tx,
            _facts: facts_tx,
        }
    }

    /// Runs `script` and compares what it printed.
    pub fn check(&mut self, script: &str, expect: Expect) {
        expect.assert_eq(self.run(script));
    }

    pub fn run(&mut self, script: &str) -> &str {
        self.transcript.clear();
        for token in script.split_whitespace() {
            self.token(token);
        }
        &self.transcript
    }

    fn line(&mut self, text: impl AsRef<str>) {
        self.transcript.push_str(text.as_ref());
        self.transcript.push('\n');
    }

    /// The id of `p` (`group:name`, or a unique `name`); the latest runner of that name, so
    /// a removed group's runner can still report.
    fn id(&self, p: &str) -> ProcId {
        let names = &self.orch.shell.names;
        let found: Vec<(&ProcId, &String)> = names
            .iter()
            .filter(|(_, full)| *full == p || full.split_once(':').is_some_and(|(_, n)| n == p))
            .collect();
        let distinct: std::collections::HashSet<&String> = found.iter().map(|(_, n)| *n).collect();
        assert!(distinct.len() == 1, "no single process named {p}");
        found.iter().map(|(id, _)| **id).max().unwrap_or_else(|| panic!("no process {p}"))
    }

    fn fact(&mut self, fact: crate::runner::Fact) {
        self.orch.on_fact(fact);
    }

    fn token(&mut self, token: &str) {
        let (word, at) = match token.split_once('@') {
            Some((w, t)) => (w, Some(t.parse::<f64>().unwrap_or_else(|_| panic!("bad time {t}")))),
            None => (token, None),
        };
        if let Some(secs) = at {
            let shell = &mut self.orch.shell;
            let at = shell.t0 + Duration::from_secs_f64(secs);
            assert!(at >= shell.now, "time goes backwards at {token}");
            shell.now = at;
        }
        let now = self.orch.shell.secs(self.orch.shell.now);
        self.line(format!("@{now} {word}"));
        let (verb, args) = match word.split_once('(') {
            Some((v, rest)) => (v, rest.strip_suffix(')').expect("closing )").split(',').collect()),
            None => (word, Vec::new()),
        };
        let arg = |i: usize| -> &str { args.get(i).unwrap_or_else(|| panic!("{token}: argument")) };
        let num =
            |i: usize| -> i64 { arg(i).parse().unwrap_or_else(|_| panic!("{token}: number")) };
        use crate::runner::Fact;
        match verb {
            "boot" => self.orch.boot(),
            "spawned" => {
                let id = self.id(arg(0));
                let pid = self.next_pid;
                self.next_pid += 1;
                self.pids.insert(id, pid);
                self.fact(Fact::Spawned { id, pid });
            }
            "spawnfail" => {
                let id = self.id(arg(0));
                self.fact(Fact::SpawnFailed { id, message: "can't find command 'x'".into() });
            }
            "exit" | "killed" => {
                let id = self.id(arg(0));
                let pid = self.pids.get(&id).copied().unwrap_or(0);
                let status = if verb == "exit" {
                    ExitStatus::Exited(num(1) as i32)
                } else {
                    ExitStatus::Signaled { sig: num(1) as i32, core: false }
                };
                self.fact(Fact::Exited { id, pid, status });
            }
            "tick" => {
                let id = self.id(arg(0));
                self.fact(Fact::Tick { id });
            }
            "ready" | "notready" | "healthy" | "unhealthy" => {
                let id = self.id(arg(0));
                let kind =
                    if verb.contains("health") { CheckKind::Health } else { CheckKind::Ready };
                let generation = self.orch.shell.checks.get(&(id, kind)).copied().unwrap_or(0);
                let outcome = if verb.starts_with("not") || verb.starts_with("un") {
                    Err("connection refused".to_string())
                } else {
                    Ok(())
                };
                self.fact(Fact::Check { id, kind, generation, outcome });
            }
            "killfail" | "sigfail" => {
                let id = self.id(arg(0));
                let purpose =
                    if verb == "killfail" { SignalPurpose::Kill } else { SignalPurpose::Signal };
                self.fact(Fact::SignalFailed { id, purpose, error: "EPERM".into() });
            }
            "full" => self.orch.shell.full = true,
            "unfull" => self.orch.shell.full = false,
            "clearlogs" => {
                let target = Target::Spec(arg(0).to_string());
                let res = self.ask(|reply| Request::ClearLogs { target, reply });
                self.pendings(verb, res);
            }
            "stdin" => {
                let spec = arg(0).to_string();
                let data = b"hi\n".to_vec();
                match self.ask(|reply| Request::SendStdin { spec, data, reply }) {
                    Ok(_) => self.line("  = ok"),
                    Err(f) => self.line(format!("  = {f}")),
                }
            }
            "logpath" => {
                let spec = arg(0).to_string();
                let channel = crate::orchestrator::msg::LogChannel::Stdout;
                let res = self.ask(|reply| Request::LogPath { spec, channel, reply });
                match res {
                    Ok(path) => self.line(format!("  = {}", path.is_some())),
                    Err(f) => self.line(format!("  = {f}")),
                }
            }
            "info" => {
                let spec = arg(0).to_string();
                match self.ask(|reply| Request::ProcessInfo { spec, reply }) {
                    Ok(i) => self.line(format!(
                        "  = {} pid:{} start:{} now:{} exitstatus:{} spawnerr:{:?} {:?}",
                        i.state, i.pid, i.start, i.now, i.exitstatus, i.spawnerr, i.description
                    )),
                    Err(f) => self.line(format!("  = {f}")),
                }
            }
            "start" | "startw" | "startnw" => {
                let (wait, idempotent) = match verb {
                    "start" => (false, false),
                    "startw" => (true, false),
                    _ => (true, true),
                };
                let target = Target::Spec(arg(0).to_string());
                let res = self.ask(|reply| Request::Start { target, wait, idempotent, reply });
                self.pendings(verb, res);
            }
            "stop" | "stopw" => {
                let target = Target::Spec(arg(0).to_string());
                let wait = verb == "stopw";
                let res = self.ask(|reply| Request::Stop { target, wait, reply });
                self.pendings(verb, res);
            }
            "signal" => {
                let target = Target::Spec(arg(0).to_string());
                let sig = num(1) as i32;
                let res = self.ask(|reply| Request::Signal { target, sig, reply });
                self.pendings(verb, res);
            }
            "shutdown" => {
                let res = self.ask(|reply| Request::Shutdown { reply });
                self.answer(res);
            }
            "restart" => {
                let res = self.ask(|reply| Request::Restart { reply });
                self.answer(res);
            }
            "getstate" => {
                let res = self.ask(|reply| Request::GetState { reply });
                self.line(format!("  = {}", res.name()));
            }
            "reread" => {
                let config = Box::new(self.configs[num(0) as usize].clone());
                match self.ask(|reply| Request::Reread { config, reply }) {
                    Ok([added, changed, removed]) => self.line(format!(
                        "  = added {added:?} changed {changed:?} removed {removed:?}"
                    )),
                    Err(f) => self.line(format!("  = {f}")),
                }
            }
            "add" => {
                let name = arg(0).to_string();
                let res = self.ask(|reply| Request::AddGroup { name, reply });
                self.answer(res);
            }
            "remove" => {
                let name = arg(0).to_string();
                let res = self.ask(|reply| Request::RemoveGroup { name, reply });
                self.answer(res);
            }
            // An optional argument names the holder process (`disable lst:lst`).
            "disable" | "enable" => {
                let holder = args.first().map(|a| a.to_string());
                let res = if verb == "disable" {
                    self.ask(|reply| Request::DisableAutoRecovery { holder, reply })
                } else {
                    self.ask(|reply| Request::EnableAutoRecovery { holder, reply })
                };
                if res.is_err() {
                    self.answer(res);
                }
            }
            "autorecovery" => {
                let (on, count) = self.ask(|reply| Request::GetAutoRecovery { reply });
                self.line(format!("  = on:{on} count:{count}"));
            }
            "sigterm" => self.orch.on_signal(DaemonSignal::Term),
            "sighup" => self.orch.on_signal(DaemonSignal::Hup),
            "report" => self.orch.report_waiting_to_stop(),
            "states" => {
                let rows: Vec<String> = self
                    .orch
                    .all_process_info()
                    .into_iter()
                    .map(|i| format!("{}:{} {}", i.group, i.name, i.state))
                    .collect();
                let rows = if rows.is_empty() { "(none)".to_string() } else { rows.join(", ") };
                self.line(format!("  = {rows}"));
            }
            "counts" => {
                // The lean snapshot metrics and probes ask for agrees with the full one on
                // every field it fills in.
                let full = self.ask(|reply| Request::Snapshot { detail: Detail::Full, reply });
                let counts = self.ask(|reply| Request::Snapshot { detail: Detail::Counts, reply });
                for (f, c) in full.procs.iter().zip(&counts.procs) {
                    let (f, c) = (&f.info, &c.info);
                    let same = (&f.name, &f.group, f.state, f.pid, f.start, f.stop, f.now)
                        == (&c.name, &c.group, c.state, c.pid, c.start, c.stop, c.now)
                        && (f.exitstatus, f.last_exit) == (c.exitstatus, c.last_exit);
                    let verdict = if same { "agree" } else { "differ" };
                    self.line(format!("  = {}:{} {} {verdict}", c.group, c.name, c.state));
                }
            }
            "stats" => {
                let snap = self.ask(|reply| Request::Snapshot { detail: Detail::Counts, reply });
                for p in snap.procs {
                    let s = p.stats;
                    self.line(format!(
                        "  = {}:{} restarts:{:?} exits:{:?} fatal:{} backoff:{}s",
                        p.info.group,
                        p.info.name,
                        s.restarts(),
                        s.exits(),
                        s.fatal(),
                        p.backoff_seconds
                    ));
                }
            }
            _ => panic!("unknown script token {token}"),
        }
        if !self.stopped && self.orch.settle().is_some() {
            self.stopped = true;
            self.flush();
            self.line("  => all stopped");
        }
        self.flush();
    }

    /// Sends a request straight into the actor and takes the immediate answer.
    fn ask<T>(&mut self, make: impl FnOnce(oneshot::Sender<T>) -> Request) -> T {
        let (reply, mut rx) = oneshot::channel();
        self.orch.on_request(make(reply));
        rx.try_recv().expect("every request is answered at once")
    }

    fn answer(&mut self, res: Result<(), Fault>) {
        match res {
            Ok(()) => self.line("  = ok"),
            Err(f) => self.line(format!("  = {f}")),
        }
    }

    fn pendings(&mut self, verb: &str, res: Result<Vec<Pending>, Fault>) {
        let list = match res {
            Ok(list) => list,
            Err(f) => return self.line(format!("  = {f}")),
        };
        for p in list {
            let who = format!("{verb} {}:{}", p.group, p.name);
            match p.outcome {
                Outcome::Done(Ok(())) => self.line(format!("  = {who}: ok")),
                Outcome::Done(Err(f)) => self.line(format!("  = {who}: {f}")),
                Outcome::Wait(rx) => {
                    self.line(format!("  = {who}: waiting"));
                    self.waiting.push((who, rx));
                }
            }
        }
    }

    /// Prints the commands, log lines and answered waiters the last token produced.
    fn flush(&mut self) {
        self.orch.shell.take_log();
        for text in std::mem::take(&mut self.orch.shell.out) {
            self.line(format!("  {text}"));
        }
        let mut still = Vec::new();
        for (who, mut rx) in std::mem::take(&mut self.waiting) {
            match rx.try_recv() {
                Ok(Ok(())) => self.line(format!("  reply {who}: ok")),
                Ok(Err(f)) => self.line(format!("  reply {who}: {f}")),
                Err(oneshot::error::TryRecvError::Empty) => still.push((who, rx)),
                Err(oneshot::error::TryRecvError::Closed) => {
                    self.line(format!("  reply {who}: dropped"))
                }
            }
        }
        self.waiting = still;
    }
}
