//! A fake shell for `step`: a virtual clock that only moves when the script says so (or
//! jumps to `next_deadline()`), a pid allocator, a spawn that succeeds or fails on demand,
//! and a transcript of every input and the actions it produced.
//!
//! Script tokens, separated by spaces, each optionally `@SECONDS` (absolute virtual time):
//! `start stop shutdown tick wait` · `spawned` `spawned(PID)` `spawnfail` (with
//! `spawns=manual`) · `exit(N)` `killed(SIG)` `core(SIG)` `stale-exit` · `sig(N)` `killfail`
//! `sigfail` · `gate-off` `gate-on` · `spawns=ok|fail|manual` · the lifecycle inputs
//! `ready` `notready` `unhealthy` `depfail`.
//! Policy words beyond Python's: `ready_timeout=S` `backoff_max=S` `backoff_initial=S`
//! `limit=N/S`.
//! `wait` jumps the clock to the next deadline and ticks.

use std::time::{Duration, Instant};

use expect_test::Expect;

use crate::procsup::{
    Action, AutoRestart, Ctx, ExitStatus, ExpBackoff, Input, Policy, Proc, StartOutcome, TimerKind,
    WaitOutcome, step,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpawnMode {
    Ok,
    Fail,
    Manual,
}

pub struct World {
    pub t0: Instant,
    pub now: Instant,
    pub proc: Proc,
    pub gate: bool,
    pub next_pid: u32,
    pub spawns: SpawnMode,
    pub transcript: String,
    /// Every action of the last input (automatic spawn reports included).
    pub last: Vec<Action>,
}

pub fn policy(spec: &str) -> Policy {
    let mut p = Policy::default();
    for word in spec.split_whitespace() {
        let (key, value) = word.split_once('=').unwrap_or((word, ""));
        let num = || value.parse::<u64>().unwrap_or_else(|_| panic!("bad number in {word}"));
        match key {
            "startsecs" => {
                p.startsecs =
                    value.parse::<i64>().unwrap_or_else(|_| panic!("bad number in {word}"))
            }
            "startretries" => p.startretries = num() as u32,
            "stopwaitsecs" => p.stopwaitsecs = num(),
            "stopsignal" => p.stopsignal = num() as i32,
            "stopasgroup" => p.stopasgroup = true,
            "killasgroup" => p.killasgroup = true,
            "exitcodes" => {
                p.exitcodes =
                    value.split(',').filter(|s| !s.is_empty()).map(|s| s.parse().unwrap()).collect()
            }
            "ready_timeout" => p.ready_timeout = Some(Duration::from_secs(num())),
            "backoff_max" => {
                let initial = p.exp_backoff.map_or(Duration::from_secs(1), |e| e.initial);
                p.exp_backoff = Some(ExpBackoff { initial, max: Duration::from_secs(num()) });
            }
            "backoff_initial" => {
                let e = p.exp_backoff.get_or_insert(ExpBackoff {
                    initial: Duration::ZERO,
                    max: Duration::from_secs(3600),
                });
                e.initial = Duration::from_secs(num());
            }
            "limit" => {
                let (n, s) = value.split_once('/').expect("limit=N/S");
                let n = n.parse().expect("N");
                p.restart_limit = Some((n, Duration::from_secs(s.parse().expect("S"))));
            }
            "autorestart" => {
                p.autorestart = match value {
                    "true" => AutoRestart::True,
                    "false" => AutoRestart::False,
                    "unexpected" => AutoRestart::Unexpected,
                    _ => panic!("bad autorestart {value}"),
                }
            }
            _ => panic!("unknown policy word {word}"),
        }
    }
    p
}

impl World {
    pub fn new(policy_spec: &str) -> World {
        let t0 = crate::sys::clock::now();
        World {
            t0,
            now: t0,
            proc: Proc::new("web", policy(policy_spec)),
            gate: true,
            next_pid: 100,
            spawns: SpawnMode::Ok,
            transcript: String::new(),
            last: Vec::new(),
        }
    }

    pub fn secs(&self, at: Instant) -> String {
        format!("{}", at.saturating_duration_since(self.t0).as_secs_f64())
    }

    /// Run a script; returns the transcript of this script.
    pub fn run(&mut self, script: &str) -> &str {
        self.transcript.clear();
        for token in script.split_whitespace() {
            self.token(token);
        }
        &self.transcript
    }

    fn token(&mut self, token: &str) {
        let (word, at) = match token.split_once('@') {
            Some((w, t)) => (w, Some(t.parse::<f64>().unwrap_or_else(|_| panic!("bad time {t}")))),
            None => (token, None),
        };
        if let Some(secs) = at {
            let at = self.t0 + Duration::from_secs_f64(secs);
            assert!(at >= self.now, "time goes backwards at {token}");
            self.now = at;
        }
        let (name, arg) = match word.split_once('(') {
            Some((n, rest)) => (n, rest.strip_suffix(')')),
            None => (word, None),
        };
        let num = || {
            arg.and_then(|a| a.parse::<i64>().ok())
                .unwrap_or_else(|| panic!("{token} needs a number"))
        };
        let pid = self.proc.pid().unwrap_or(0);
        let input = match name {
            "start" => Input::Start,
            "stop" => Input::Stop,
            "shutdown" => Input::Shutdown,
            "tick" => Input::Tick,
            "wait" => match self.proc.next_deadline() {
                Some(at) => {
                    self.now = self.now.max(at);
                    Input::Tick
                }
                None => {
                    self.line(format!("@{} wait: no deadline", self.secs(self.now)));
                    return;
                }
            },
            "spawned" => {
                let pid = arg.map_or_else(|| self.alloc_pid(), |_| num() as u32);
                Input::Spawned { pid }
            }
            "spawnfail" => Input::SpawnFailed { message: "can't find command 'x'".into() },
            "exit" => Input::Exited { pid, status: ExitStatus::Exited(num() as i32) },
            "killed" => Input::Exited {
                pid,
                status: ExitStatus::Signaled { sig: num() as i32, core: false },
            },
            "core" => Input::Exited {
                pid,
                status: ExitStatus::Signaled { sig: num() as i32, core: true },
            },
            "stale-exit" => Input::Exited { pid: 999, status: ExitStatus::Exited(0) },
            "ready" => Input::Ready,
            "notready" => Input::NotReady { reason: "connection refused".into() },
            "unhealthy" => Input::Unhealthy { failures: 3, reason: "HTTP 503".into() },
            "depfail" => Input::DependencyFailed { reason: "dependency db is FATAL".into() },
            "sig" => Input::Signal { sig: num() as i32 },
            "killfail" => Input::KillFailed { error: "EPERM".into() },
            "sigfail" => Input::SignalFailed { error: "EPERM".into() },
            "gate-off" => {
                self.gate = false;
                self.line(format!("@{} gate off", self.secs(self.now)));
                return;
            }
            "gate-on" => {
                self.gate = true;
                Input::AutoRecoveryOn
            }
            "spawns=ok" | "spawns=fail" | "spawns=manual" => {
                self.spawns = match name {
                    "spawns=ok" => SpawnMode::Ok,
                    "spawns=fail" => SpawnMode::Fail,
                    _ => SpawnMode::Manual,
                };
                return;
            }
            _ => panic!("unknown script token {token}"),
        };
        self.last.clear();
        self.feed(input);
    }

    fn line(&mut self, text: String) {
        self.transcript.push_str(&text);
        self.transcript.push('\n');
    }

    fn alloc_pid(&mut self) -> u32 {
        let pid = self.next_pid;
        self.next_pid += 1;
        pid
    }

    /// Feed one input, record it, and answer a `Spawn` the way `spawns` says.
    pub fn feed(&mut self, input: Input) {
        let label = input.label();
        let ctx = Ctx { now: self.now, autorecovery_on: self.gate };
        let actions = step(&mut self.proc, input, &ctx);
        self.line(format!("@{} {label} → {}", self.secs(self.now), self.proc.state()));
        for a in &actions {
            let text = format!("  {}", self.render(a));
            self.line(text);
        }
        let spawn = actions.contains(&Action::Spawn);
        self.last.extend(actions);
        if spawn {
            match self.spawns {
                SpawnMode::Ok => {
                    let pid = self.alloc_pid();
                    self.feed(Input::Spawned { pid });
                }
                SpawnMode::Fail => {
                    self.feed(Input::SpawnFailed { message: "can't find command 'x'".into() })
                }
                SpawnMode::Manual => {}
            }
        }
    }

    pub fn render(&self, a: &Action) -> String {
        match a {
            Action::Spawn => "spawn".into(),
            Action::Signal { pid, sig, group } => {
                format!(
                    "kill {}{pid} {}",
                    if *group { "-" } else { "" },
                    crate::procsup::signame(*sig)
                )
            }
            Action::StartTimer { kind, at } => {
                format!("timer {} @{}", kind_name(*kind), self.secs(*at))
            }
            Action::CancelTimer { kind } => format!("cancel {}", kind_name(*kind)),
            Action::Emit(sc) => {
                format!("{}→{} {}", sc.from, sc.to, sc.extra_fields()).trim_end().to_owned()
            }
            Action::ResolveWaiters(WaitOutcome::Stopped) => "resolve stop".into(),
            Action::ResolveWaiters(WaitOutcome::Start(o)) => format!(
                "resolve start: {}",
                match o {
                    StartOutcome::Running => "running",
                    StartOutcome::SpawnError => "SPAWN_ERROR",
                    StartOutcome::AbnormalTermination => "ABNORMAL_TERMINATION",
                }
            ),
            Action::Log(line) => format!("{} {line}", line.level().tag()),
        }
    }
}

fn kind_name(kind: TimerKind) -> &'static str {
    match kind {
        TimerKind::Startsecs => "startsecs",
        TimerKind::Backoff => "backoff",
        TimerKind::Kill => "kill",
        TimerKind::Restart => "restart",
        TimerKind::Ready => "ready",
    }
}

/// Run `script` against a fresh process with `policy_spec` and compare the transcript.
pub fn check(policy_spec: &str, script: &str, expect: Expect) {
    let mut w = World::new(policy_spec);
    expect.assert_eq(w.run(script));
}
