//! Pure policy for the lifecycle options: whether a dependency is met, exponential restart
//! backoff, the restart budget (`restart_limit = N/SECONDS`) and the exit code an essential
//! program's end gives the daemon. No IO and no clock: every `now` is an argument.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::exit::ExitStatus;
use super::state::ProcessState;

/// What a dependent needs of a dependency (`depends_on = NAME:CONDITION`); procsup's own
/// type, mapped from the config's by the shell as [`super::AutoRestart`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// `running`: RUNNING (which a `ready_check` delays until ready).
    Running,
    /// `completed`: exited with an expected code since its last start.
    Completed,
    /// `started`: spawned since its last start request.
    Started,
}

/// What the shell knows about one dependency process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DepView {
    /// Its state.
    pub state: ProcessState,
    /// It has had a pid since it was last started (a process waiting for its own
    /// dependencies is STARTING without one).
    pub spawned: bool,
    /// Its last exit since it was last started had an expected code.
    pub completed: bool,
    /// A start is coming without anyone asking: an automatic restart, a BACKOFF retry,
    /// or a start the shell has queued (boot, or a dependent's start).
    pub start_coming: bool,
}

/// Whether a dependency is met.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DepStatus {
    /// The dependent may start (as far as this dependency goes).
    Met,
    /// Not yet; it may still be met.
    Waiting,
    /// It can no longer be met without someone starting the dependency again: a waiting
    /// dependent becomes FATAL.
    Failed,
}

/// Whether `dep` meets `need`. FATAL always fails; a dependency that is down with no
/// start coming fails, since waiting would be forever.
pub fn dependency_status(need: Need, dep: DepView) -> DepStatus {
    use ProcessState::*;
    if dep.state == Fatal {
        return DepStatus::Failed;
    }
    let met = match need {
        Need::Running => dep.state == Running,
        Need::Completed => dep.completed,
        Need::Started => dep.spawned,
    };
    if met {
        return DepStatus::Met;
    }
    match dep.state {
        Starting | Backoff => DepStatus::Waiting,
        // Running (for `completed`: it has yet to exit) keeps the hope alive.
        Running => DepStatus::Waiting,
        Stopped | Exited | Stopping | Unknown | Fatal if dep.start_coming => DepStatus::Waiting,
        Stopped | Exited | Stopping | Unknown | Fatal => DepStatus::Failed,
    }
}

/// `restart_backoff_initial` and `restart_backoff_max`: the delay before the n-th
/// consecutive automatic restart is `min(initial × 2^(n−1), max)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpBackoff {
    /// The first delay.
    pub initial: Duration,
    /// The cap; also how long a process must stay RUNNING for the count to reset.
    pub max: Duration,
}

impl ExpBackoff {
    /// The delay before restart number `failures` (1 for the first failure; 0 is treated
    /// as 1). Saturates instead of overflowing for any count.
    pub fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1);
        // 2^31 × anything positive is beyond any cap a config can hold.
        let factor = 1u32.checked_shl(doublings.min(31)).unwrap_or(u32::MAX);
        self.initial.checked_mul(factor).map_or(self.max, |d| d.min(self.max))
    }
}

/// The consecutive-failure count behind [`ExpBackoff`]: it grows with each failure and
/// starts over once the process has stayed RUNNING for `max`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FailureStreak {
    failures: u32,
    running_since: Option<Instant>,
}

impl FailureStreak {
    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The process entered RUNNING at `now`.
    pub fn running(&mut self, now: Instant) {
        self.running_since = Some(now);
    }

    /// The process failed (exited unexpectedly, or failed its start) at `now`: returns the
    /// failure number to pass to [`ExpBackoff::delay`]. A run of at least `backoff.max`
    /// before this failure starts the count over, so this is failure 1 again.
    pub fn failed(&mut self, now: Instant, backoff: &ExpBackoff) -> u32 {
        let stayed = self.running_since.take().map(|since| now.saturating_duration_since(since));
        if stayed.is_some_and(|s| s >= backoff.max) {
            self.failures = 0;
        }
        self.failures = self.failures.saturating_add(1);
        self.failures
    }

    /// An explicit start or stop by an operator: the next failure is the first again.
    pub fn reset(&mut self) {
        *self = FailureStreak::default();
    }

    /// When a process that is RUNNING since `since` will have earned a reset (for a shell
    /// that wants to show or log it); `None` when not running.
    pub fn resets_at(&self, backoff: &ExpBackoff) -> Option<Instant> {
        self.running_since.and_then(|s| s.checked_add(backoff.max))
    }
}

/// What the restart budget says about one more automatic restart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BudgetVerdict {
    /// Within budget: restart (the restart is recorded).
    Allowed,
    /// More than N restarts within the window: give up (FATAL).
    Exhausted,
}

/// `restart_limit = N/SECONDS` as a sliding window: an automatic restart is allowed while
/// at most `limit` of them (this one included) fall within the last `window`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestartBudget {
    limit: u32,
    window: Duration,
    /// Times of the allowed restarts still inside the window, oldest first; never more
    /// than `limit` long.
    recent: VecDeque<Instant>,
}

impl RestartBudget {
    /// A budget of `limit` automatic restarts per `window`.
    pub fn new(limit: u32, window: Duration) -> RestartBudget {
        RestartBudget { limit, window, recent: VecDeque::new() }
    }

    /// Asks for one automatic restart at `now`, recording it when allowed. Restarts
    /// exactly `window` ago have left the window.
    pub fn request(&mut self, now: Instant) -> BudgetVerdict {
        while let Some(&oldest) = self.recent.front() {
            if now.saturating_duration_since(oldest) >= self.window {
                self.recent.pop_front();
            } else {
                break;
            }
        }
        if self.recent.len() >= self.limit as usize {
            return BudgetVerdict::Exhausted;
        }
        self.recent.push_back(now);
        BudgetVerdict::Allowed
    }

    /// Restarts counted in the window as of the last request.
    pub fn used(&self) -> usize {
        self.recent.len()
    }

    /// An explicit start by an operator: a fresh budget.
    pub fn reset(&mut self) {
        self.recent.clear();
    }
}

/// The daemon's exit code when an essential process ends for good: its exit code; 128 +
/// the signal number when a signal killed it; 1 when it never ran (it could not be
/// spawned, or a dependency can never be met).
pub fn essential_exit_code(last_exit: Option<ExitStatus>) -> u8 {
    match last_exit {
        Some(ExitStatus::Exited(code)) => u8::try_from(code & 0xff).unwrap_or(1),
        Some(ExitStatus::Signaled { sig, .. }) => u8::try_from(128 + (sig & 0x7f)).unwrap_or(255),
        None => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn delay_doubles_from_initial_up_to_max() {
        let b = ExpBackoff { initial: s(1), max: s(30) };
        let delays: Vec<u64> = (0..=8).map(|n| b.delay(n).as_secs()).collect();
        assert_eq!(delays, [1, 1, 2, 4, 8, 16, 30, 30, 30]);
        let b = ExpBackoff { initial: Duration::from_millis(250), max: s(1) };
        let ms: Vec<u128> = (1..=5).map(|n| b.delay(n).as_millis()).collect();
        assert_eq!(ms, [250, 500, 1000, 1000, 1000]);
        // initial == max: constant.
        let b = ExpBackoff { initial: s(5), max: s(5) };
        assert!((1..100).all(|n| b.delay(n) == s(5)));
    }

    #[test]
    fn delay_never_overflows() {
        let b = ExpBackoff { initial: s(315_360_000), max: s(315_360_000) };
        for n in [31, 32, 33, 64, 1000, u32::MAX] {
            assert_eq!(b.delay(n), s(315_360_000));
        }
        let b = ExpBackoff { initial: Duration::from_nanos(1), max: s(u64::MAX / 4) };
        assert_eq!(b.delay(u32::MAX), Duration::from_nanos(1 << 31));
    }

    #[test]
    fn streak_counts_failures_and_resets_after_a_long_run() {
        let b = ExpBackoff { initial: s(1), max: s(10) };
        let t0 = crate::sys::clock::now();
        let at = |secs: u64| t0 + s(secs);
        let mut st = FailureStreak::default();
        // Failures while starting (never RUNNING) keep counting.
        assert_eq!([st.failed(at(0), &b), st.failed(at(1), &b), st.failed(at(3), &b)], [1, 2, 3]);
        // RUNNING for 9 s is not long enough.
        st.running(at(10));
        assert_eq!(st.failed(at(19), &b), 4);
        assert_eq!(b.delay(st.failures()), s(8));
        // RUNNING for exactly max resets: this is failure 1 again.
        st.running(at(20));
        assert_eq!(st.resets_at(&b), Some(at(30)));
        assert_eq!(st.failed(at(30), &b), 1);
        assert_eq!(st.resets_at(&b), None);
        // A failure after a reset without RUNNING since counts on.
        assert_eq!(st.failed(at(31), &b), 2);
        st.reset();
        assert_eq!(st.failures(), 0);
        assert_eq!(st.failed(at(32), &b), 1);
    }

    #[test]
    fn budget_is_a_sliding_window() {
        let t0 = crate::sys::clock::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut b = RestartBudget::new(3, s(10));
        use BudgetVerdict::*;
        let got: Vec<_> = [0, 1000, 2000, 3000].iter().map(|&t| b.request(at(t))).collect();
        assert_eq!(got, [Allowed, Allowed, Allowed, Exhausted]);
        // An exhausted request is not recorded: at 10 s the first restart leaves the
        // window (exactly SECONDS ago), so one more fits.
        assert_eq!(b.used(), 3);
        assert_eq!(b.request(at(9_999)), Exhausted);
        assert_eq!(b.request(at(10_000)), Allowed);
        assert_eq!(b.request(at(10_500)), Exhausted);
        assert_eq!(b.request(at(12_000)), Allowed);
        // Long quiet: everything has left the window.
        assert_eq!(b.request(at(100_000)), Allowed);
        assert_eq!(b.used(), 1);
        b.reset();
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn budget_of_zero_allows_no_automatic_restart() {
        let t0 = crate::sys::clock::now();
        let mut b = RestartBudget::new(0, s(60));
        assert_eq!(b.request(t0), BudgetVerdict::Exhausted);
        assert_eq!(b.request(t0 + s(3600)), BudgetVerdict::Exhausted);
    }

    #[test]
    fn budget_matches_a_brute_force_count() {
        // Every pattern of requests on a 0..16 s grid, limit 0..4, window 1..6 s: allowed
        // exactly when fewer than `limit` allowed restarts lie in (now - window, now].
        for limit in 0..4u32 {
            for window in 1..6u64 {
                for pattern in 0u32..(1 << 16) {
                    if pattern % 97 != 0 {
                        continue; // a spread-out sample keeps this fast
                    }
                    let t0 = crate::sys::clock::now();
                    let mut b = RestartBudget::new(limit, s(window));
                    let mut allowed: Vec<u64> = Vec::new();
                    for t in (0..16u64).filter(|t| pattern & (1 << t) != 0) {
                        let in_window = allowed.iter().filter(|&&a| t - a < window).count() as u32;
                        let want = in_window < limit;
                        let got = b.request(t0 + s(t)) == BudgetVerdict::Allowed;
                        assert_eq!(
                            got, want,
                            "limit {limit} window {window} pattern {pattern:b} t {t}"
                        );
                        if got {
                            allowed.push(t);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn dependency_status_table() {
        use DepStatus::*;
        use ProcessState::*;
        let states = [Stopped, Starting, Running, Backoff, Stopping, Exited, Fatal, Unknown];
        // Every combination; the expected value is spelled out per rule.
        for need in [Need::Running, Need::Completed, Need::Started] {
            for state in states {
                for bits in 0..8u8 {
                    let dep = DepView {
                        state,
                        spawned: bits & 1 != 0,
                        completed: bits & 2 != 0,
                        start_coming: bits & 4 != 0,
                    };
                    let met = match need {
                        Need::Running => state == Running,
                        Need::Completed => dep.completed,
                        Need::Started => dep.spawned,
                    };
                    let want = if state == Fatal {
                        Failed
                    } else if met {
                        Met
                    } else if matches!(state, Starting | Backoff | Running) || dep.start_coming {
                        Waiting
                    } else {
                        Failed
                    };
                    assert_eq!(dependency_status(need, dep), want, "{need:?} {dep:?}");
                }
            }
        }
        // The cases the docs name.
        let view = |state, spawned, completed, start_coming| DepView {
            state,
            spawned,
            completed,
            start_coming,
        };
        // A one-shot generator that exited 0 is completed, even though EXITED.
        assert_eq!(dependency_status(Need::Completed, view(Exited, true, true, false)), Met);
        // ... that exited 1 with no restart coming has failed for good.
        assert_eq!(dependency_status(Need::Completed, view(Exited, true, false, false)), Failed);
        // A service that is STARTING (not ready yet) is waited for.
        assert_eq!(dependency_status(Need::Running, view(Starting, true, false, false)), Waiting);
        // ... and meets `started` once it has a pid.
        assert_eq!(dependency_status(Need::Started, view(Starting, true, false, false)), Met);
        assert_eq!(dependency_status(Need::Started, view(Starting, false, false, false)), Waiting);
        // STOPPED at boot with its start queued is waited for.
        assert_eq!(dependency_status(Need::Running, view(Stopped, false, false, true)), Waiting);
    }

    #[test]
    fn essential_exit_codes() {
        assert_eq!(essential_exit_code(Some(ExitStatus::Exited(0))), 0);
        assert_eq!(essential_exit_code(Some(ExitStatus::Exited(3))), 3);
        assert_eq!(essential_exit_code(Some(ExitStatus::Exited(255))), 255);
        let sig = |sig, core| Some(ExitStatus::Signaled { sig, core });
        assert_eq!(essential_exit_code(sig(libc::SIGTERM, false)), 143);
        assert_eq!(essential_exit_code(sig(libc::SIGKILL, false)), 137);
        assert_eq!(essential_exit_code(sig(libc::SIGSEGV, true)), 139);
        assert_eq!(essential_exit_code(None), 1);
    }
}
