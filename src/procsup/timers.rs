//! The deadlines a process waits on, stored as data (quinn's timer table): the shell sleeps
//! until the earliest and sends `Input::Tick`. Every change is mirrored as a
//! `StartTimer`/`CancelTimer` action so a shell keeping one timer per kind stays in step.

use std::time::Instant;

use super::action::{Action, TimerKind};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Timers {
    startsecs: Option<Instant>,
    backoff: Option<Instant>,
    kill: Option<Instant>,
    restart: Option<Instant>,
    ready: Option<Instant>,
}

impl Timers {
    fn slot(&mut self, kind: TimerKind) -> &mut Option<Instant> {
        match kind {
            TimerKind::Startsecs => &mut self.startsecs,
            TimerKind::Backoff => &mut self.backoff,
            TimerKind::Kill => &mut self.kill,
            TimerKind::Restart => &mut self.restart,
            TimerKind::Ready => &mut self.ready,
        }
    }

    pub(crate) fn get(&self, kind: TimerKind) -> Option<Instant> {
        match kind {
            TimerKind::Startsecs => self.startsecs,
            TimerKind::Backoff => self.backoff,
            TimerKind::Kill => self.kill,
            TimerKind::Restart => self.restart,
            TimerKind::Ready => self.ready,
        }
    }

    pub(crate) fn arm(&mut self, kind: TimerKind, at: Instant, out: &mut Vec<Action>) {
        *self.slot(kind) = Some(at);
        out.push(Action::StartTimer { kind, at });
    }

    /// Drop a pending deadline; no action when none was pending.
    pub(crate) fn cancel(&mut self, kind: TimerKind, out: &mut Vec<Action>) {
        if self.slot(kind).take().is_some() {
            out.push(Action::CancelTimer { kind });
        }
    }

    pub(crate) fn cancel_all(&mut self, out: &mut Vec<Action>) {
        for kind in [
            TimerKind::Startsecs,
            TimerKind::Backoff,
            TimerKind::Kill,
            TimerKind::Restart,
            TimerKind::Ready,
        ] {
            self.cancel(kind, out);
        }
    }

    /// Consume the deadline of `kind` if it is due at `now` (it fired: no action).
    pub(crate) fn take_due(&mut self, kind: TimerKind, now: Instant) -> bool {
        let slot = self.slot(kind);
        match *slot {
            Some(at) if at <= now => {
                *slot = None;
                true
            }
            _ => false,
        }
    }

    pub(crate) fn next(&self) -> Option<Instant> {
        [self.startsecs, self.backoff, self.kill, self.restart, self.ready]
            .into_iter()
            .flatten()
            .min()
    }
}
