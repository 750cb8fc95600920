//! What is reported about processes: `getProcessInfo` rows (times as epoch seconds, the
//! description), the snapshot metrics and probes read, and a start target's commands for the caller's on-disk checks.

use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::Orchestrator;
use super::describe;
use super::msg::{CommandCheck, Commands, ProcSample, ProcessInfo, Snapshot, Target};
use super::shell::Shell;
use super::table::Entry;
use crate::fault::{Fault, FaultKind};

impl<S: Shell> Orchestrator<S> {
    pub(super) fn process_info(&self, spec: &str) -> Result<ProcessInfo, Fault> {
        let (g, p) = self.lookup_process(spec)?;
        let e = self.entry(&g, &p).ok_or_else(|| Fault::with(FaultKind::BadName, spec))?;
        Ok(info_of(e, self.shell.now(), self.shell.wall_now()))
    }

    /// Every process, sorted by group name, then process name.
    pub(super) fn all_process_info(&self) -> Vec<ProcessInfo> {
        let (now, wall) = (self.shell.now(), self.shell.wall_now());
        self.groups.values().flat_map(|g| g.procs.values()).map(|e| info_of(e, now, wall)).collect()
    }

    /// The table as metrics, probes and `status --json` see it.
    pub(super) fn snapshot(&self) -> Snapshot {
        let (now, wall) = (self.shell.now(), self.shell.wall_now());
        let procs = self
            .groups
            .values()
            .flat_map(|g| g.procs.values())
            .map(|e| ProcSample {
                info: info_of(e, now, wall),
                autostart: e.config.autostart,
                stats: e.stats,
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
                let path_env =
                    e.config.environment.iter().rev().find(|(k, _)| k == "PATH").map(|(_, v)| v);
                Some(CommandCheck {
                    command: e.config.command.clone(),
                    path_env: path_env.cloned(),
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

fn info_of(e: &Entry, now: Instant, wall: SystemTime) -> ProcessInfo {
    let wall_secs = wall.duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
    // An Instant becomes epoch seconds by its distance from now.
    let epoch =
        |at: Instant| (wall_secs - now.saturating_duration_since(at).as_secs_f64()).floor() as i64;
    let start = e.proc.laststart().map_or(0, epoch);
    let stop = e.proc.laststop().map_or(0, epoch);
    let description = e.proc.description(now).render(|at| {
        let secs = at.map_or(0, epoch);
        crate::sys::clock::local_tm(secs).map(|tm| describe::stop_time(&tm)).unwrap_or_default()
    });
    // `to_string_lossy` is what `display` prints, without core::fmt.
    let path_str = |p: &Option<PathBuf>| {
        p.as_ref().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default()
    };
    ProcessInfo {
        name: e.config.name.clone(),
        group: e.config.group.clone(),
        start,
        stop,
        now: wall_secs.floor() as i64,
        state: e.proc.state(),
        spawnerr: e.proc.spawnerr().unwrap_or_default().to_string(),
        exitstatus: e.proc.exitstatus().map_or(0, i64::from),
        stdout_logfile: path_str(&e.stdout_path),
        stderr_logfile: path_str(&e.stderr_path),
        pid: e.proc.pid().map_or(0, i64::from),
        description,
        last_exit: e.proc.last_exit().map(|s| i64::from(s.code())),
    }
}
