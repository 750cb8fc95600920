//! `Proc` (one process's state and memory) and `step`, the transition function
//! `(proc, input, ctx) → actions` that encodes Python's `Subprocess` (spawn, transition,
//! finish, stop, kill, give_up) without IO, clocks or tokio.
//!
//! Deliberate differences from Python 4.3.0, all from judging events when they happen
//! instead of on a 1 s poll loop (docs/design.md):
//! - an exit is judged at the time it is reaped: strictly before `startsecs` is "too
//!   quickly" (BACKOFF); at exactly `startsecs` or later the process stayed up. A process
//!   still alive at exactly `laststart + startsecs` becomes RUNNING (Python: `>` at its next
//!   poll).
//! - follow-ups happen in the same step: an exhausted BACKOFF gives up at once, an
//!   EXITED process that should restart is spawned at once.
//! - an explicit `Start` resets the backoff counter, so a manual start after a stop gets
//!   the full `startretries` (Python keeps the counter of a BACKOFF→STOPPED process).
//! - with `stopwaitsecs=0`, repeated SIGKILLs are spaced 1 s apart (Python's poll period)
//!   rather than in a busy loop.
//! - the spawn is asynchronous: a stop that arrives before `Spawned` is remembered and
//!   carried out as soon as the pid is known (or the process goes STOPPED if the spawn
//!   fails).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::action::{Action, StartOutcome, StateChange, TimerKind, WaitOutcome};
use super::backoff;
use super::exit::ExitStatus;
use super::input::{Ctx, Input};
use super::lifecycle::{BudgetVerdict, FailureStreak, RestartBudget};
use super::log::LogLine;
use super::policy::Policy;
use super::state::ProcessState;
use super::timers::Timers;

/// The shortest time between two automatic starts of a process that keeps exiting at once
/// (`startsecs=0` with `autorestart`). Python's one-second poll loop gave this pace; an
/// event-driven daemon must impose it or a crash loop spins a core.
pub const MIN_RESTART_INTERVAL: Duration = Duration::from_secs(1);

/// Python's spawnerr after an exit before `startsecs`.
pub const EXITED_TOO_QUICKLY: &str = "Exited too quickly (process log may have details)";

/// One process: its state and everything Python's `Subprocess` remembers about it.
#[derive(Debug, Clone)]
pub struct Proc {
    name: Box<str>,
    /// Shared: the orchestrator gives processes with equal options one copy.
    policy: Arc<Policy>,
    state: ProcessState,
    pid: Option<u32>,
    laststart: Option<Instant>,
    laststop: Option<Instant>,
    backoff: u32,
    timers: Timers,
    spawnerr: Option<Box<str>>,
    exitstatus: Option<i32>,
    last_exit: Option<ExitStatus>,
    /// A stop that arrived while the spawn was in flight (STARTING without a pid).
    stop_pending: Option<StopKind>,
    /// The readiness check passed since the last spawn.
    ready: bool,
    /// Why the last readiness attempt failed, while STARTING.
    not_ready: Option<Box<str>>,
    /// The ready timeout passed: the stop signal is out and the exit is a failed start.
    unready_kill: bool,
    /// Being stopped because it is unhealthy (the reason): its exit is restarted.
    unhealthy: Option<Box<str>>,
    /// Consecutive failures, for exponential backoff.
    streak: FailureStreak,
    /// Automatic restarts in the `restart_limit` window (out of line: few programs set it).
    budget: Option<Box<RestartBudget>>,
    /// Automatic restarts since the daemon started.
    restarts: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopKind {
    Stop,
    Shutdown,
}

/// Why a request cannot be carried out; the RPC layer maps it to a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// ALREADY_STARTED (60).
    AlreadyStarted,
    /// NOT_RUNNING (70).
    NotRunning,
    /// FAILED (30) with `<name> is in an unknown process state`.
    UnknownState,
}

/// Python's `getProcessInfo` description, before wall-clock formatting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Description {
    /// `pid 123, uptime 0:01:02`.
    Running { pid: u32, uptime: Duration },
    /// FATAL/BACKOFF: the spawnerr, or `unknown error (try "tail web")`.
    Error(String),
    /// STOPPED/EXITED never started: `Not started`.
    NotStarted,
    /// STOPPED/EXITED: the stop time as `%b %d %I:%M %p` in local time (the caller owns the
    /// wall clock). `None` when it never stopped (Python then formats time 0).
    StoppedAt(Option<Instant>),
    /// STARTING, STOPPING, UNKNOWN: empty.
    Empty,
    /// Ours: a STARTING process not ready yet (`not ready: HTTP 503`).
    Text(String),
}

impl Description {
    /// The text, with `format_stop` turning a stop time into `Apr 01 12:00 PM`.
    pub fn render(&self, format_stop: impl FnOnce(Option<Instant>) -> String) -> String {
        match self {
            Description::Running { pid, uptime } => {
                // One buffer and no core::fmt: a status reply renders this for every
                // process, and formatting machinery was a fifth of the reply's cost.
                let mut s = String::with_capacity(40);
                s.push_str("pid ");
                s.push_str(itoa::Buffer::new().format(*pid));
                s.push_str(", uptime ");
                write_uptime(&mut s, uptime.as_secs());
                s
            }
            Description::Error(text) => text.clone(),
            Description::NotStarted => "Not started".to_owned(),
            Description::StoppedAt(at) => format_stop(*at),
            Description::Empty => String::new(),
            Description::Text(text) => text.clone(),
        }
    }
}

/// Python's `str(timedelta)` for whole seconds: `0:01:02`, `1 day, 2:03:04`, `3 days, …`.
fn write_uptime(out: &mut String, secs: u64) {
    let (days, rest) = (secs / 86_400, secs % 86_400);
    match days {
        0 => {}
        1 => out.push_str("1 day, "),
        n => {
            out.push_str(itoa::Buffer::new().format(n));
            out.push_str(" days, ");
        }
    }
    out.push_str(itoa::Buffer::new().format(rest / 3600));
    for part in [rest % 3600 / 60, rest % 60] {
        // Both are below 60: two digits, zero-padded.
        out.push(':');
        out.push(char::from(b'0' + (part / 10) as u8));
        out.push(char::from(b'0' + (part % 10) as u8));
    }
}

impl Proc {
    /// A never-started process (STOPPED, `Not started`). `name` is the process name used in
    /// log lines.
    pub fn new(name: impl Into<String>, policy: impl Into<Arc<Policy>>) -> Proc {
        let policy = policy.into();
        let budget = policy_budget(&policy);
        Proc {
            name: name.into().into_boxed_str(),
            policy,
            state: ProcessState::Stopped,
            pid: None,
            laststart: None,
            laststop: None,
            backoff: 0,
            timers: Timers::default(),
            spawnerr: None,
            exitstatus: None,
            last_exit: None,
            stop_pending: None,
            ready: false,
            not_ready: None,
            unready_kill: false,
            unhealthy: None,
            streak: FailureStreak::default(),
            budget,
            restarts: 0,
        }
    }

    /// Whether the readiness check has passed since the last spawn.
    pub fn ready(&self) -> bool {
        self.ready
    }

    /// Automatic restarts so far.
    pub fn restarts(&self) -> u32 {
        self.restarts
    }

    /// Consecutive failures counted by the exponential backoff.
    pub fn failures(&self) -> u32 {
        self.streak.failures()
    }

    /// When the next automatic start is due (BACKOFF retry or delayed restart).
    pub fn next_restart(&self) -> Option<Instant> {
        self.timers.get(TimerKind::Backoff).or(self.timers.get(TimerKind::Restart))
    }

    pub fn state(&self) -> ProcessState {
        self.state
    }

    /// How the last child ended, with the signal kept.
    pub fn last_exit(&self) -> Option<ExitStatus> {
        self.last_exit
    }

    /// The live child's pid (`getProcessInfo().pid`, 0 when `None`).
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// When the last start began (`start` in getProcessInfo); `None` if never started.
    pub fn laststart(&self) -> Option<Instant> {
        self.laststart
    }

    /// When the last child was reaped (`stop` in getProcessInfo); `None` if never.
    pub fn laststop(&self) -> Option<Instant> {
        self.laststop
    }

    /// Python's `spawnerr`: why the last start failed (`getProcessInfo().spawnerr`).
    pub fn spawnerr(&self) -> Option<&str> {
        self.spawnerr.as_deref()
    }

    /// Python's `exitstatus` (-1 for a signal; `None` after a too-quick exit or a spawn).
    pub fn exitstatus(&self) -> Option<i32> {
        self.exitstatus
    }

    /// The pending deadline of one kind.
    #[cfg(test)]
    pub(crate) fn deadline(&self, kind: TimerKind) -> Option<Instant> {
        self.timers.get(kind)
    }

    /// The earliest pending deadline: sleep until it, then send `Input::Tick`.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Whether `supervisor.startProcess` may start it (run before `Input::Start`).
    pub fn check_start(&self) -> Result<(), Refusal> {
        if self.state == ProcessState::Unknown {
            Err(Refusal::UnknownState)
        } else if self.state.is_running() {
            Err(Refusal::AlreadyStarted)
        } else {
            Ok(())
        }
    }

    /// Whether `stopProcess` may stop it (run before `Input::Stop`).
    pub fn check_stop(&self) -> Result<(), Refusal> {
        if self.state.is_running() { Ok(()) } else { Err(Refusal::NotRunning) }
    }

    /// Whether `signalProcess` may signal it (run before `Input::Signal`).
    pub fn check_signal(&self) -> Result<(), Refusal> {
        if self.state.is_signallable() && self.pid.is_some() {
            Ok(())
        } else {
            Err(Refusal::NotRunning)
        }
    }

    /// The answer for a waiting start right now (Python's `onwait`): `None` while STARTING
    /// (register a waiter; a `ResolveWaiters(Start(_))` action will answer it).
    pub fn start_wait_result(&self) -> Option<StartOutcome> {
        match self.state {
            ProcessState::Starting => None,
            ProcessState::Running => Some(StartOutcome::Running),
            _ if self.spawnerr.is_some() => Some(StartOutcome::SpawnError),
            _ => Some(StartOutcome::AbnormalTermination),
        }
    }

    /// Whether a waiting stop is answered right now; otherwise register a waiter for
    /// `ResolveWaiters(Stopped)`.
    pub fn stop_wait_done(&self) -> bool {
        self.state.is_stopped()
    }

    /// The getProcessInfo description at `now`.
    pub fn description(&self, now: Instant) -> Description {
        match self.state {
            ProcessState::Running => Description::Running {
                pid: self.pid.unwrap_or(0),
                uptime: self.laststart.map_or(Duration::ZERO, |t| now.saturating_duration_since(t)),
            },
            ProcessState::Fatal | ProcessState::Backoff => {
                Description::Error(self.spawnerr.as_deref().map_or_else(
                    || format!("unknown error (try \"tail {}\")", self.name),
                    str::to_owned,
                ))
            }
            ProcessState::Stopped | ProcessState::Exited => match self.laststart {
                None => Description::NotStarted,
                Some(_) => Description::StoppedAt(self.laststop),
            },
            ProcessState::Starting => match &self.not_ready {
                Some(reason) if self.pid.is_some() => {
                    Description::Text(format!("not ready: {reason}"))
                }
                _ => Description::Empty,
            },
            ProcessState::Stopping | ProcessState::Unknown => Description::Empty,
        }
    }
}

fn policy_budget(policy: &Policy) -> Option<Box<RestartBudget>> {
    policy.restart_limit.map(|(n, window)| Box::new(RestartBudget::new(n, window)))
}

fn secs_text(d: Duration) -> String {
    format!("{}", d.as_secs_f64())
}

/// Feed one input; returns what the shell must do, in order. Never panics: an input that
/// makes no sense in the current state is ignored with a debug `Log`.
pub fn step(proc: &mut Proc, input: Input, ctx: &Ctx) -> Vec<Action> {
    let mut m = Machine { p: proc, now: ctx.now, gate_on: ctx.autorecovery_on, out: Vec::new() };
    m.input(input);
    m.out
}

struct Machine<'a> {
    p: &'a mut Proc,
    now: Instant,
    gate_on: bool,
    out: Vec<Action>,
}

impl Machine<'_> {
    fn input(&mut self, input: Input) {
        use ProcessState::*;
        let state = self.p.state;
        match input {
            Input::Start => match state {
                Stopped | Exited | Fatal | Backoff => {
                    // An explicit start gets the full retries (see the module doc), a
                    // fresh failure streak and restart budget.
                    self.p.backoff = 0;
                    self.p.streak.reset();
                    if let Some(b) = &mut self.p.budget {
                        b.reset();
                    }
                    self.spawn();
                }
                // Idempotent; the caller answers ALREADY_STARTED from `check_start`.
                Starting | Running => {}
                // Python's spawn() with the old child still alive.
                Stopping => self.log(LogLine::AlreadyRunning { name: self.p.name.to_string() }),
                Unknown => self.ignored(&input),
            },
            Input::Stop => {
                self.p.streak.reset();
                self.p.unhealthy = None;
                self.stop(StopKind::Stop);
            }
            Input::Shutdown => {
                self.p.unhealthy = None;
                self.stop(StopKind::Shutdown);
            }
            Input::Signal { sig } => match self.p.pid {
                Some(pid) if state.is_signallable() => {
                    self.log(LogLine::Sending { name: self.p.name.to_string(), pid, sig });
                    self.out.push(Action::Signal { pid, sig, group: false });
                }
                _ => self.ignored(&input),
            },
            Input::Spawned { pid } => match (state, self.p.pid) {
                (Starting, None) if pid != 0 => self.spawned(pid),
                // pid 0 would make every later kill() hit our own process group.
                (Starting, None) => self.spawn_failed("spawn reported pid 0".to_owned()),
                _ => self.ignored(&input),
            },
            Input::SpawnFailed { message } => match (state, self.p.pid) {
                (Starting, None) => self.spawn_failed(message),
                _ => self.ignored(&Input::SpawnFailed { message }),
            },
            Input::Exited { pid, status } => {
                if self.p.pid == Some(pid) {
                    self.finish(status);
                } else {
                    self.ignored(&input);
                }
            }
            Input::KillFailed { ref error } | Input::SignalFailed { ref error } => {
                match self.p.pid {
                    Some(pid) if state.is_signallable() => {
                        let (name, error) = (self.p.name.to_string(), error.clone());
                        self.log(if matches!(input, Input::KillFailed { .. }) {
                            LogLine::UnknownProblemKilling { name, pid, error }
                        } else {
                            LogLine::UnknownProblemSending { name, pid, error }
                        });
                        self.p.timers.cancel_all(&mut self.out);
                        self.change_state(Unknown, true);
                    }
                    _ => self.ignored(&input),
                }
            }
            Input::Tick => self.tick(),
            Input::AutoRecoveryOn => self.autorecovery_on(),
            Input::Ready => {
                if state == Starting && self.p.pid.is_some() && !self.p.unready_kill {
                    self.p.ready = true;
                    self.p.not_ready = None;
                    if self.p.timers.get(TimerKind::Startsecs).is_none() {
                        self.become_running();
                    }
                } else if state != Running {
                    self.ignored(&input);
                }
            }
            Input::NotReady { reason } => {
                if state == Starting && !self.p.ready {
                    self.p.not_ready = Some(reason.into());
                }
            }
            Input::Unhealthy { failures, reason } => match (state, self.p.pid) {
                (Running, Some(_)) => {
                    let name = self.p.name.to_string();
                    self.log(LogLine::Unhealthy { name, failures, reason: reason.clone() });
                    self.p.unhealthy = Some(reason.into());
                    self.kill_for_stop();
                }
                _ => self.ignored(&Input::Unhealthy { failures, reason }),
            },
            Input::DependencyFailed { reason } => match state {
                Stopped | Exited | Fatal | Backoff => {
                    self.p.timers.cancel(TimerKind::Backoff, &mut self.out);
                    self.p.timers.cancel(TimerKind::Restart, &mut self.out);
                    self.p.spawnerr = Some(reason.clone().into());
                    self.p.backoff = 0;
                    self.change_state(Fatal, true);
                    self.log(LogLine::DependencyFailed { name: self.p.name.to_string(), reason });
                }
                _ => self.ignored(&Input::DependencyFailed { reason }),
            },
        }
    }

    /// Python's `spawn()` up to the fork: the shell does the rest.
    fn spawn(&mut self) {
        self.p.spawnerr = None;
        self.p.exitstatus = None;
        self.p.stop_pending = None;
        self.p.ready = false;
        self.p.not_ready = None;
        self.p.unready_kill = false;
        self.p.unhealthy = None;
        self.p.laststart = Some(self.now);
        self.p.timers.cancel(TimerKind::Backoff, &mut self.out);
        self.p.timers.cancel(TimerKind::Restart, &mut self.out);
        self.change_state(ProcessState::Starting, true);
        self.out.push(Action::Spawn);
    }

    fn spawned(&mut self, pid: u32) {
        self.p.pid = Some(pid);
        self.log(LogLine::Spawned { name: self.p.name.to_string(), pid });
        // A stop came while the fork was in flight; now there is something to signal.
        // Stop and shutdown treat STARTING alike.
        if self.p.stop_pending.take().is_some() {
            self.kill_for_stop();
            return;
        }
        if let Some(t) = self.p.policy.ready_timeout {
            let at = self.p.laststart.unwrap_or(self.now) + t;
            self.p.timers.arm(TimerKind::Ready, at, &mut self.out);
        }
        let deadline = self.startsecs_deadline();
        if self.now >= deadline {
            // startsecs=0, or a spawn report that arrived late.
            self.startsecs_passed();
        } else {
            self.p.timers.arm(TimerKind::Startsecs, deadline, &mut self.out);
        }
    }

    fn startsecs_deadline(&self) -> Instant {
        self.p.laststart.unwrap_or(self.now) + self.p.policy.startsecs_duration()
    }

    /// `startsecs` have passed: RUNNING, unless a readiness check has yet to pass.
    fn startsecs_passed(&mut self) {
        if self.p.policy.ready_timeout.is_none() || self.p.ready {
            self.become_running();
        }
    }

    /// The start has failed if the process is not ready (it has a check that has not passed).
    fn unready(&self) -> bool {
        self.p.policy.ready_timeout.is_some() && !self.p.ready
    }

    fn become_running(&mut self) {
        self.p.timers.cancel(TimerKind::Startsecs, &mut self.out);
        self.p.timers.cancel(TimerKind::Ready, &mut self.out);
        self.p.streak.running(self.now);
        self.p.backoff = 0;
        self.change_state(ProcessState::Running, true);
        let startsecs = self.p.policy.startsecs;
        self.log(LogLine::Success { name: self.p.name.to_string(), startsecs });
    }

    fn spawn_failed(&mut self, message: String) {
        self.log(LogLine::SpawnErr { msg: message.clone() });
        self.p.spawnerr = Some(message.into());
        self.enter_backoff();
        self.after_backoff();
    }

    /// `change_state(BACKOFF)`: the counter goes up before the event reports it.
    fn enter_backoff(&mut self) {
        self.p.backoff = self.p.backoff.saturating_add(1);
        self.change_state(ProcessState::Backoff, true);
    }

    /// What BACKOFF leads to, decided now rather than at Python's next poll.
    fn after_backoff(&mut self) {
        match self.p.stop_pending.take() {
            Some(StopKind::Stop) => self.stop_backoff(),
            Some(StopKind::Shutdown) => self.give_up(false),
            None if backoff::exhausted(self.p.backoff, self.p.policy.startretries) => {
                self.give_up(true);
            }
            None => {
                if !self.budget_allows() {
                    return;
                }
                let delay = match self.p.policy.exp_backoff {
                    Some(exp) => {
                        let n = self.p.streak.failed(self.now, &exp);
                        let delay = exp.delay(n);
                        self.log_restart_in(delay, n);
                        delay
                    }
                    None => backoff::delay(self.p.backoff),
                };
                self.p.timers.arm(TimerKind::Backoff, self.now + delay, &mut self.out);
            }
        }
    }

    fn log_restart_in(&mut self, delay: Duration, failures: u32) {
        let name = self.p.name.to_string();
        self.log(LogLine::RestartIn { name, secs: secs_text(delay), failures });
    }

    /// One more automatic restart, as far as `restart_limit` goes: counted and allowed, or
    /// the process gives up (FATAL) and false.
    fn budget_allows(&mut self) -> bool {
        let verdict = match &mut self.p.budget {
            Some(b) => b.request(self.now),
            None => BudgetVerdict::Allowed,
        };
        match verdict {
            BudgetVerdict::Allowed => {
                self.p.restarts = self.p.restarts.saturating_add(1);
                true
            }
            BudgetVerdict::Exhausted => {
                self.p.timers.cancel(TimerKind::Backoff, &mut self.out);
                self.p.timers.cancel(TimerKind::Restart, &mut self.out);
                self.p.backoff = 0;
                let (restarts, window) =
                    self.p.policy.restart_limit.map(|(n, w)| (n, secs_text(w))).unwrap_or_default();
                self.p.spawnerr =
                    Some(format!("more than {restarts} restarts within {window} seconds").into());
                self.change_state(ProcessState::Fatal, true);
                let name = self.p.name.to_string();
                self.log(LogLine::GaveUpRestartLimit { name, restarts, window });
                false
            }
        }
    }

    /// An exit from RUNNING (or an unhealthy stop) the policy restarts: within the
    /// budget, after the exponential delay for a failure, else at once (no sooner than
    /// [`MIN_RESTART_INTERVAL`] after the last start).
    fn restart_after_exit(&mut self, failure: bool) {
        if !self.budget_allows() {
            return;
        }
        if failure && let Some(exp) = self.p.policy.exp_backoff {
            let n = self.p.streak.failed(self.now, &exp);
            let delay = exp.delay(n);
            self.log_restart_in(delay, n);
            self.change_state(ProcessState::Backoff, true);
            self.p.timers.arm(TimerKind::Backoff, self.now + delay, &mut self.out);
            return;
        }
        let earliest = self.p.laststart.map(|t| t + MIN_RESTART_INTERVAL);
        match earliest {
            Some(at) if at > self.now => self.p.timers.arm(TimerKind::Restart, at, &mut self.out),
            _ => self.spawn(),
        }
    }

    /// `give_up()`; the "gave up" line is logged only when retries ran out (a shutdown
    /// gives up silently, as Python's `stop_all` does).
    fn give_up(&mut self, log: bool) {
        self.p.timers.cancel(TimerKind::Backoff, &mut self.out);
        self.p.backoff = 0;
        self.change_state(ProcessState::Fatal, true);
        if log {
            self.log(LogLine::GaveUp { name: self.p.name.to_string() });
        }
    }

    /// A stop in BACKOFF: straight to STOPPED, no signal (there is no child).
    fn stop_backoff(&mut self) {
        self.log(LogLine::KillInBackoff { name: self.p.name.to_string() });
        self.p.timers.cancel(TimerKind::Backoff, &mut self.out);
        self.change_state(ProcessState::Stopped, true);
    }

    fn stop(&mut self, kind: StopKind) {
        use ProcessState::*;
        match (self.p.state, self.p.pid) {
            (Starting | Running, Some(_)) => self.kill_for_stop(),
            (Starting, None) => self.p.stop_pending = Some(kind),
            (Backoff, _) => match kind {
                StopKind::Stop => self.stop_backoff(),
                StopKind::Shutdown => self.give_up(false),
            },
            // STOPPING: the stop signal is already out, the SIGKILL timer runs; no second
            // signal. Stopped states: nothing to stop (the RPC layer says NOT_RUNNING).
            _ => {}
        }
    }

    /// `kill(stopsignal)` from STARTING/RUNNING.
    fn kill_for_stop(&mut self) {
        let Some(pid) = self.p.pid else { return };
        self.p.timers.cancel(TimerKind::Ready, &mut self.out);
        self.p.unready_kill = false;
        self.send_stopsignal(pid, true);
    }

    /// The stop signal, the SIGKILL deadline, and (for a stop) STOPPING before the signal.
    fn send_stopsignal(&mut self, pid: u32, stopping: bool) {
        let (sig, group) = (self.p.policy.stopsignal, self.p.policy.stopasgroup);
        self.log(LogLine::Killing { name: self.p.name.to_string(), pid, sig, group });
        self.p.timers.cancel(TimerKind::Startsecs, &mut self.out);
        let at = self.now + self.p.policy.stopwaitsecs_duration();
        self.p.timers.arm(TimerKind::Kill, at, &mut self.out);
        if stopping {
            self.change_state(ProcessState::Stopping, true);
        }
        self.out.push(Action::Signal { pid, sig, group });
    }

    /// The ready timeout passed: the start failed. The process is stopped (it stays
    /// STARTING) and its exit goes to BACKOFF like an exit before `startsecs`.
    fn ready_timeout(&mut self) {
        let Some(pid) = self.p.pid else { return };
        let secs = self.p.policy.ready_timeout.map(secs_text).unwrap_or_default();
        let name = self.p.name.to_string();
        let reason = self.p.not_ready.as_deref().map(str::to_owned);
        self.log(LogLine::NotReady { name, secs: secs.clone(), reason });
        self.p.spawnerr = Some(format!("not ready within {secs} seconds").into());
        self.p.unready_kill = true;
        self.send_stopsignal(pid, false);
    }

    /// stopwaitsecs ran out: SIGKILL, and again every stopwaitsecs while it survives.
    fn sigkill(&mut self) {
        let Some(pid) = self.p.pid else { return };
        let group = self.p.policy.killasgroup;
        let name = self.p.name.to_string();
        self.log(LogLine::KillingWithSigkill { name: name.clone(), pid });
        self.log(LogLine::Killing { name, pid, sig: libc::SIGKILL, group });
        // At least 1 s between SIGKILLs: with stopwaitsecs=0 a stuck (D state) child would
        // otherwise make the shell spin.
        let again = self.p.policy.stopwaitsecs_duration().max(Duration::from_secs(1));
        self.p.timers.arm(TimerKind::Kill, self.now + again, &mut self.out);
        self.out.push(Action::Signal { pid, sig: libc::SIGKILL, group });
    }

    /// Python's `finish()`: the child was reaped.
    fn finish(&mut self, status: ExitStatus) {
        use ProcessState::*;
        let name = self.p.name.to_string();
        let es = status.code();
        let expected = self.p.policy.exitcodes.contains(&es);
        let too_quickly = self.p.laststart.is_some_and(|t| {
            self.now.saturating_duration_since(t) < self.p.policy.startsecs_duration()
        });
        self.p.laststop = Some(self.now);
        self.p.last_exit = Some(status);
        match self.p.state {
            Stopping if self.p.unhealthy.is_some() => {
                self.p.timers.cancel(TimerKind::Kill, &mut self.out);
                self.p.exitstatus = Some(es);
                let reason = self.p.unhealthy.take().unwrap_or_default();
                self.p.spawnerr = Some(format!("unhealthy: {reason}").into());
                self.change_state(Exited, false);
                self.log(LogLine::Exited { name, status, expected: false });
                self.p.pid = None;
                if self.gate_on {
                    self.restart_after_exit(true);
                }
            }
            Stopping => {
                self.p.timers.cancel(TimerKind::Kill, &mut self.out);
                self.p.exitstatus = Some(es);
                self.change_state(Stopped, true);
                self.log(LogLine::Stopped { name, status, expected });
                self.p.pid = None;
            }
            Starting if too_quickly || self.unready() => {
                self.p.timers.cancel(TimerKind::Startsecs, &mut self.out);
                self.p.timers.cancel(TimerKind::Ready, &mut self.out);
                self.p.timers.cancel(TimerKind::Kill, &mut self.out);
                self.p.exitstatus = None;
                if !self.p.unready_kill {
                    self.p.spawnerr = Some(EXITED_TOO_QUICKLY.into());
                }
                self.p.unready_kill = false;
                self.enter_backoff();
                // Python always says "not expected" here, whatever exitcodes hold.
                self.log(LogLine::Exited { name, status, expected: false });
                self.p.pid = None;
                self.after_backoff();
            }
            Starting | Running => {
                self.p.timers.cancel(TimerKind::Startsecs, &mut self.out);
                self.p.timers.cancel(TimerKind::Ready, &mut self.out);
                self.p.backoff = 0;
                self.p.exitstatus = Some(es);
                if self.p.state == Starting {
                    // It stayed up startsecs but its tick had not come yet: it was RUNNING.
                    self.change_state(Running, true);
                }
                if !expected {
                    self.p.spawnerr = Some(format!("Bad exit code {es}").into());
                }
                self.change_state(Exited, expected);
                self.log(LogLine::Exited { name, status, expected });
                self.p.pid = None;
                if self.gate_on && self.p.policy.wants_restart(es) {
                    self.restart_after_exit(!expected);
                }
            }
            // The child of an UNKNOWN process died: record it, stay UNKNOWN (Python would
            // fail an assertion here).
            Unknown => {
                self.p.exitstatus = Some(es);
                self.log(LogLine::Exited { name, status, expected });
                self.p.pid = None;
            }
            // A pid is only held in the states above.
            Stopped | Backoff | Exited | Fatal => {
                self.ignored(&Input::Exited { pid: self.p.pid.unwrap_or(0), status });
            }
        }
    }

    fn tick(&mut self) {
        use ProcessState::*;
        let now = self.now;
        if self.p.timers.take_due(TimerKind::Startsecs, now)
            && self.p.state == Starting
            && self.p.pid.is_some()
        {
            self.startsecs_passed();
        }
        if self.p.timers.take_due(TimerKind::Ready, now)
            && self.p.state == Starting
            && self.p.pid.is_some()
            && !self.p.ready
        {
            self.ready_timeout();
        }
        if self.p.timers.take_due(TimerKind::Backoff, now) && self.p.state == Backoff {
            // While the gate is off the deadline is simply consumed: the process waits in
            // BACKOFF, due, until `AutoRecoveryOn`.
            if self.gate_on {
                self.spawn();
            }
        }
        if self.p.timers.take_due(TimerKind::Kill, now)
            && (self.p.state == Stopping || (self.p.state == Starting && self.p.unready_kill))
        {
            self.sigkill();
        }
        if self.p.timers.take_due(TimerKind::Restart, now)
            && self.p.state == Exited
            && self.gate_on
            && self.p.exitstatus.is_some_and(|es| self.p.policy.wants_restart(es))
        {
            self.spawn();
        }
    }

    fn autorecovery_on(&mut self) {
        if !self.gate_on {
            return;
        }
        match self.p.state {
            // An exit the gate held back from restarting.
            ProcessState::Exited
                if self.p.exitstatus.is_some_and(|es| self.p.policy.wants_restart(es)) =>
            {
                self.spawn();
            }
            // A retry whose delay passed while the gate was off (no deadline left).
            ProcessState::Backoff if self.p.timers.get(TimerKind::Backoff).is_none() => {
                self.spawn();
            }
            _ => {}
        }
    }

    /// `change_state()`: emit the event and answer the waiters the change concerns.
    fn change_state(&mut self, to: ProcessState, expected: bool) {
        let from = self.p.state;
        if from == to {
            return;
        }
        self.p.state = to;
        self.out.push(Action::Emit(StateChange {
            from,
            to,
            pid: self.p.pid,
            tries: self.p.backoff,
            expected,
        }));
        if from == ProcessState::Starting {
            let outcome = match to {
                ProcessState::Running => StartOutcome::Running,
                _ if self.p.spawnerr.is_some() => StartOutcome::SpawnError,
                _ => StartOutcome::AbnormalTermination,
            };
            self.out.push(Action::ResolveWaiters(WaitOutcome::Start(outcome)));
        }
        // Stop waiters exist only after a stop request, which leaves the process STOPPING
        // (or STARTING with the stop pending, which ends via STOPPING or BACKOFF).
        if to.is_stopped() && matches!(from, ProcessState::Stopping | ProcessState::Backoff) {
            self.out.push(Action::ResolveWaiters(WaitOutcome::Stopped));
        }
    }

    fn log(&mut self, line: LogLine) {
        self.out.push(Action::Log(line));
    }

    fn ignored(&mut self, input: &Input) {
        let line = LogLine::Ignored {
            name: self.p.name.to_string(),
            input: input.label(),
            state: self.p.state,
        };
        self.log(line);
    }
}
