//! What is reported about processes: `getProcessInfo` rows (times as epoch seconds, the
//! description), the snapshot metrics and probes read, and a start target's commands for the caller's on-disk checks.

use std::path::Path;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::Orchestrator;
use super::describe;
use super::msg::{
    CommandCheck, Commands, Detail, LifecycleInfo, ProcSample, ProcessInfo, Snapshot, StatusRow,
    Target,
};
use super::shell::Shell;
use super::table::Entry;
use crate::fault::{Fault, FaultKind};

impl<S: Shell> Orchestrator<S> {
    pub(super) fn process_info(&self, spec: &str) -> Result<ProcessInfo, Fault> {
        let (g, p) = self.lookup_process(spec)?;
        let e = self.entry(&g, &p).ok_or_else(|| Fault::with(FaultKind::BadName, spec))?;
        Ok(info_of(e, self.shell.now(), self.shell.wall_now(), Detail::Full))
    }

    /// Every process, sorted by group name, then process name.
    pub(super) fn all_process_info(&self) -> Vec<ProcessInfo> {
        let (now, wall) = (self.shell.now(), self.shell.wall_now());
        self.groups
            .values()
            .flat_map(|g| g.procs.values())
            .map(|e| info_of(e, now, wall, Detail::Full))
            .collect()
    }

    /// What `status` shows of every process, in [`Self::all_process_info`]'s order.
    pub(super) fn status_rows(&self) -> Vec<StatusRow> {
        let (now, wall) = (self.shell.now(), self.shell.wall_now());
        let wall_secs = wall.duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
        let epoch = epoch_of(now, wall_secs);
        self.groups
            .values()
            .flat_map(|g| g.procs.values())
            .map(|e| {
                let (state, description) = state_and_description(e, now, &epoch);
                StatusRow {
                    config: e.config.clone(),
                    state,
                    pid: e.proc.pid().map_or(0, i64::from),
                    description,
                }
            })
            .collect()
    }

    /// The table as metrics, probes and `status --json` see it, with or without the
    /// process details (see [`Detail`]).
    pub(super) fn snapshot(&self, detail: Detail) -> Snapshot {
        let (now, wall) = (self.shell.now(), self.shell.wall_now());
        let procs = self
            .groups
            .values()
            .flat_map(|g| g.procs.values())
            .map(|e| ProcSample {
                info: info_of(e, now, wall, detail),
                autostart: e.config.autostart,
                has_health_check: e.config.lifecycle().health_check.is_some(),
                completed: e.proc.state() == crate::procsup::ProcessState::Exited
                    && e.life.completed,
                stats: e.stats.clone(),
                backoff_seconds: e.stats.backoff_time(now).as_secs_f64(),
                output: e.output.clone(),
            })
            .collect();
        Snapshot {
            state: self.state(),
            procs,
            pool_overflows: self.bus.overflows(),
            autorecovery: self.autorecovery.is_on(),
        }
    }

    pub(super) fn commands(&self, target: &Target) -> Result<Commands, Fault> {
        let (members, _single) = self.resolve_target(target)?;
        let list = members
            .into_iter()
            .filter_map(|(_, g, p)| {
                let e = self.entry(&g, &p)?;
                let path_env = e.config.environment.get("PATH");
                Some(CommandCheck {
                    command: e.config.command.to_string(),
                    path_env: path_env.map(str::to_owned),
                    running: e.proc.state().is_running(),
                    group: g,
                    name: p,
                })
            })
            .collect();
        let daemon_path = self.daemon_env.iter().find(|(k, _)| k == "PATH").map(|(_, v)| v.clone());
        Ok(Commands { list, daemon_path })
    }
}

/// Whether the process uses any of the lifecycle options.
fn uses_lifecycle(e: &Entry) -> bool {
    let lc = e.config.lifecycle();
    !lc.depends_on.is_empty()
        || lc.ready_check.is_some()
        || lc.health_check.is_some()
        || lc.essential
        || lc.restart_backoff.max.is_some()
        || lc.restart_limit.is_some()
}

/// What the lifecycle options add, for a process that uses any of them; the texts only in
/// full detail.
fn lifecycle_of(e: &Entry, now: Instant, wall_secs: f64, detail: Detail) -> Option<LifecycleInfo> {
    if !uses_lifecycle(e) {
        return None;
    }
    let lc = e.config.lifecycle();
    let full = detail != Detail::Counts;
    let text =
        |t: Option<&str>| if full { t.unwrap_or_default().to_owned() } else { String::new() };
    // A waiting process reads as STARTING, so it is neither running nor healthy.
    let running =
        e.proc.state() == crate::procsup::ProcessState::Running && e.life.waiting.is_none();
    Some(LifecycleInfo {
        waiting_for: text(e.life.waiting.as_deref()),
        ready: lc.ready_check.as_ref().map(|_| e.proc.ready() || running),
        health: match (&lc.health_check, running, e.life.checks().health_failures) {
            (Some(_), true, 0) => "healthy".to_string(),
            (Some(_), true, _) => "failing".to_string(),
            _ => String::new(),
        },
        health_failures: i64::from(e.life.checks().health_failures),
        health_reason: text(e.life.checks().health_reason.as_deref()),
        restarts: i64::from(e.proc.restarts()),
        next_restart: e.proc.next_restart().map_or(0, |at| {
            (wall_secs + at.saturating_duration_since(now).as_secs_f64()).ceil() as i64
        }),
    })
}

/// An Instant as epoch seconds, by its distance from now.
fn epoch_of(now: Instant, wall_secs: f64) -> impl Fn(Instant) -> i64 {
    move |at: Instant| (wall_secs - now.saturating_duration_since(at).as_secs_f64()).floor() as i64
}

fn info_of(e: &Entry, now: Instant, wall: SystemTime, detail: Detail) -> ProcessInfo {
    let wall_secs = wall.duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
    let epoch = epoch_of(now, wall_secs);
    let start = e.proc.laststart().map_or(0, &epoch);
    let stop = e.proc.laststop().map_or(0, &epoch);
    // A counts-only snapshot (metrics, probes) leaves out the strings and descriptions.
    let counts = detail == Detail::Counts;
    let (state, description) = if counts {
        // What a waiting process reports as its state, as `state_and_description` says.
        let state = if e.life.waiting.is_some() {
            crate::procsup::ProcessState::Starting
        } else {
            e.proc.state()
        };
        (state, String::new())
    } else {
        state_and_description(e, now, &epoch)
    };
    // `to_string_lossy` is what `display` prints, without core::fmt.
    let path_str = |p: &Option<Arc<Path>>| match p {
        Some(p) if !counts => p.to_string_lossy().into_owned(),
        _ => String::new(),
    };
    ProcessInfo {
        name: e.config.name.clone(),
        group: e.config.group.clone(),
        start,
        stop,
        now: wall_secs.floor() as i64,
        state,
        spawnerr: if counts {
            String::new()
        } else {
            e.proc.spawnerr().unwrap_or_default().to_string()
        },
        exitstatus: e.proc.exitstatus().map_or(0, i64::from),
        stdout_logfile: path_str(&e.stdout_path),
        stderr_logfile: path_str(&e.stderr_path),
        pid: e.proc.pid().map_or(0, i64::from),
        description,
        last_exit: e.proc.last_exit().map(|s| i64::from(s.code())),
        lifecycle: lifecycle_of(e, now, wall_secs, detail),
    }
}

/// The state a process reports and its description: Python's, plus what the lifecycle
/// options add.
fn state_and_description(
    e: &Entry,
    now: Instant,
    epoch: &dyn Fn(Instant) -> i64,
) -> (crate::procsup::ProcessState, String) {
    let mut description = e.proc.description(now).render(|at| {
        let secs = at.map_or(0, epoch);
        crate::sys::clock::local_tm(secs).map(|tm| describe::stop_time(&tm)).unwrap_or_default()
    });
    let mut state = e.proc.state();
    // The lifecycle options add to the description; processes without them read as before.
    if let Some(what) = &e.life.waiting {
        state = crate::procsup::ProcessState::Starting;
        description = what.to_string();
    } else if state == crate::procsup::ProcessState::Running
        && e.life.checks().health_failures > 0
        && let (Some(h), Some(reason)) =
            (&e.config.lifecycle().health_check, &e.life.checks().health_reason)
    {
        description = format!(
            "{description}, health check failed {}/{}: {reason}",
            e.life.checks().health_failures,
            h.retries
        );
    }
    if let Some(at) = e.proc.next_restart()
        && e.life.waiting.is_none()
        && uses_lifecycle(e)
    {
        let secs = at.saturating_duration_since(now).as_secs_f64();
        description = format!("{description}; restart {} in {secs:.1}s", e.proc.restarts() + 1);
    }
    (state, description)
}
