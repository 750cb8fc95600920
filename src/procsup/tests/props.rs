//! Property tests: random policies and random input sequences, checked after every step
//! against invariants a shell relies on.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use crate::procsup::{
    Action, AutoRestart, Ctx, ExitStatus, Input, Policy, Proc, ProcessState, TimerKind,
    WaitOutcome, step,
};

#[derive(Debug, Clone)]
enum Op {
    Start,
    Stop,
    Shutdown,
    Signal,
    /// Answer an outstanding spawn: `true` succeeds.
    SpawnReport(bool),
    /// The live child exits with this status.
    Exit(ExitStatus),
    StaleExit,
    KillFailed,
    SignalFailed,
    /// Advance the clock by this many milliseconds and tick.
    Advance(u64),
    /// Jump to the next deadline and tick.
    Wait,
    GateOff,
    GateOn,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Start),
        2 => Just(Op::Stop),
        1 => Just(Op::Shutdown),
        1 => Just(Op::Signal),
        6 => any::<bool>().prop_map(Op::SpawnReport),
        3 => (0..4i32).prop_map(|c| Op::Exit(ExitStatus::Exited(c))),
        2 => (1..16i32).prop_map(|sig| Op::Exit(ExitStatus::Signaled { sig, core: false })),
        1 => Just(Op::StaleExit),
        1 => Just(Op::KillFailed),
        1 => Just(Op::SignalFailed),
        3 => (0..3000u64).prop_map(Op::Advance),
        4 => Just(Op::Wait),
        1 => Just(Op::GateOff),
        1 => Just(Op::GateOn),
    ]
}

fn policy() -> impl Strategy<Value = Policy> {
    (
        -1..3i64,
        0..3u32,
        prop_oneof![
            Just(AutoRestart::False),
            Just(AutoRestart::Unexpected),
            Just(AutoRestart::True)
        ],
        0..3u64,
        any::<bool>(),
    )
        .prop_map(|(startsecs, startretries, autorestart, stopwaitsecs, group)| Policy {
            startsecs,
            startretries,
            autorestart,
            exitcodes: vec![0, 2],
            stopwaitsecs,
            stopasgroup: group,
            killasgroup: group,
            ..Policy::default()
        })
}

/// The fake shell's view of the world, kept only from the actions it was given.
struct Shell {
    now: Instant,
    gate: bool,
    proc: Proc,
    next_pid: u32,
    /// A `Spawn` was asked for and not yet answered.
    spawn_outstanding: bool,
    /// The child the shell forked and has not seen reaped.
    live: Option<u32>,
    /// Timers as mirrored from StartTimer/CancelTimer (and consumed when they fire).
    timers: BTreeMap<TimerKind, Instant>,
    start_waiters: u32,
    stop_waiters: u32,
}

impl Shell {
    fn apply(&mut self, op: Op) -> Result<(), TestCaseError> {
        let mut tick = false;
        let input = match op {
            Op::Start => Input::Start,
            Op::Stop => Input::Stop,
            Op::Shutdown => Input::Shutdown,
            Op::Signal => Input::Signal { sig: 1 },
            Op::SpawnReport(ok) => {
                if !self.spawn_outstanding {
                    return Ok(());
                }
                self.spawn_outstanding = false;
                if ok {
                    let pid = self.next_pid;
                    self.next_pid += 1;
                    self.live = Some(pid);
                    Input::Spawned { pid }
                } else {
                    Input::SpawnFailed { message: "can't find command 'x'".into() }
                }
            }
            Op::Exit(status) => match self.live.take() {
                Some(pid) => Input::Exited { pid, status },
                None => return Ok(()),
            },
            Op::StaleExit => Input::Exited { pid: 1, status: ExitStatus::Exited(0) },
            Op::KillFailed => Input::KillFailed { error: "EPERM".into() },
            Op::SignalFailed => Input::SignalFailed { error: "EPERM".into() },
            Op::Advance(ms) => {
                self.now += Duration::from_millis(ms);
                tick = true;
                Input::Tick
            }
            Op::Wait => {
                if let Some(at) = self.proc.next_deadline() {
                    self.now = self.now.max(at);
                }
                tick = true;
                Input::Tick
            }
            Op::GateOff => {
                self.gate = false;
                return Ok(());
            }
            Op::GateOn => {
                if self.gate {
                    return Ok(());
                }
                self.gate = true;
                Input::AutoRecoveryOn
            }
        };
        let is_start = input == Input::Start;
        let is_stop = matches!(input, Input::Stop | Input::Shutdown);
        let from = self.proc.state();
        let ctx = Ctx { now: self.now, autorecovery_on: self.gate };
        if tick {
            // Deadlines that fire are consumed without a CancelTimer.
            self.timers.retain(|_, at| *at > self.now);
        }
        let actions = step(&mut self.proc, input, &ctx);
        self.check(from, &actions, tick)?;
        // Waiters a caller would register after this step, following the documented protocol.
        if is_start && self.proc.start_wait_result().is_none() {
            self.start_waiters += 1;
        }
        if is_stop && from.is_running() && !self.proc.stop_wait_done() {
            self.stop_waiters += 1;
        }
        Ok(())
    }

    fn check(
        &mut self,
        from: ProcessState,
        actions: &[Action],
        tick: bool,
    ) -> Result<(), TestCaseError> {
        let mut state = from;
        for a in actions {
            match a {
                Action::Spawn => {
                    prop_assert!(
                        !self.spawn_outstanding && self.live.is_none(),
                        "Spawn while a child exists or a spawn is outstanding"
                    );
                    prop_assert_eq!(state, ProcessState::Starting);
                    self.spawn_outstanding = true;
                }
                Action::Signal { pid, .. } => {
                    prop_assert_eq!(Some(*pid), self.live, "Signal to a pid that is not live");
                    prop_assert!(state.is_signallable(), "Signal in {}", state);
                }
                Action::StartTimer { kind, at } => {
                    prop_assert!(*at >= self.now, "timer armed in the past");
                    self.timers.insert(*kind, *at);
                }
                Action::CancelTimer { kind } => {
                    prop_assert!(
                        self.timers.remove(kind).is_some(),
                        "cancel of a timer never started"
                    );
                }
                Action::Emit(sc) => {
                    prop_assert_eq!(sc.from, state, "event chain broken");
                    prop_assert!(
                        sc.from.can_transition_to(sc.to),
                        "illegal edge {}→{}",
                        sc.from,
                        sc.to
                    );
                    state = sc.to;
                }
                Action::ResolveWaiters(WaitOutcome::Start(_)) => self.start_waiters = 0,
                Action::ResolveWaiters(WaitOutcome::Stopped) => self.stop_waiters = 0,
                Action::Log(_) => {}
            }
        }
        let p = &self.proc;
        prop_assert_eq!(p.state(), state, "final state differs from the last event");
        prop_assert!(ProcessState::from_code(p.state().code()).is_some());
        // The pid is the live child's, and exists exactly where Python has one.
        prop_assert_eq!(p.pid(), self.live);
        match p.state() {
            ProcessState::Running | ProcessState::Stopping => prop_assert!(p.pid().is_some()),
            ProcessState::Starting | ProcessState::Unknown => {}
            _ => prop_assert!(p.pid().is_none(), "pid held in {}", p.state()),
        }
        // Mirrored timers agree with the stored deadlines; each belongs to its state.
        for kind in [TimerKind::Startsecs, TimerKind::Backoff, TimerKind::Kill, TimerKind::Restart]
        {
            prop_assert_eq!(p.deadline(kind), self.timers.get(&kind).copied(), "timer {:?}", kind);
        }
        if p.deadline(TimerKind::Startsecs).is_some() {
            prop_assert_eq!(p.state(), ProcessState::Starting);
        }
        if p.deadline(TimerKind::Backoff).is_some() {
            prop_assert_eq!(p.state(), ProcessState::Backoff);
        }
        if p.deadline(TimerKind::Kill).is_some() {
            prop_assert_eq!(p.state(), ProcessState::Stopping);
        }
        if let Some(at) = p.deadline(TimerKind::Restart) {
            prop_assert_eq!(p.state(), ProcessState::Exited);
            let last = p.laststart();
            prop_assert!(
                last.is_some_and(|t| at == t + crate::procsup::machine::MIN_RESTART_INTERVAL)
            );
        }
        if tick {
            prop_assert!(
                p.next_deadline().is_none_or(|at| at > self.now),
                "due deadline left after a tick"
            );
        }
        // Every waiter is answered once its outcome is reached.
        if p.state() != ProcessState::Starting {
            prop_assert_eq!(self.start_waiters, 0, "start waiter left in {}", p.state());
        }
        if p.state().is_stopped() {
            prop_assert_eq!(self.stop_waiters, 0, "stop waiter left in {}", p.state());
        }
        // A process that is due to do something automatically always has a way forward:
        // STARTING waits for a spawn report, an exit or its startsecs deadline.
        if p.state() == ProcessState::Starting && p.pid().is_some() {
            prop_assert!(p.deadline(TimerKind::Startsecs).is_some());
        }
        if p.state() == ProcessState::Starting && p.pid().is_none() {
            prop_assert!(self.spawn_outstanding, "STARTING without a child or a spawn in flight");
        }
        if p.state() == ProcessState::Backoff && self.gate {
            prop_assert!(
                p.deadline(TimerKind::Backoff).is_some(),
                "BACKOFF stuck with the gate on"
            );
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn random_inputs_keep_every_invariant(policy in policy(), ops in proptest::collection::vec(op(), 1..80)) {
        let now = crate::sys::clock::now();
        let mut shell = Shell {
            now,
            gate: true,
            proc: Proc::new("web", policy),
            next_pid: 100,
            spawn_outstanding: false,
            live: None,
            timers: BTreeMap::new(),
            start_waiters: 0,
            stop_waiters: 0,
        };
        for op in ops {
            shell.apply(op)?;
        }
    }
}
