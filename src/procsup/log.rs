//! Daemon log lines about processes, as data. The wording and the level are Python's
//! (supervisor/process.py and supervisord.py, reference section 2.8); rendering them is
//! `Display`, so every line is unit-testable and lives in one place.

use std::fmt;

use super::exit::{ExitStatus, signame};
use super::state::ProcessState;

/// Python's log levels (`loggers.LevelsByName`), ordered by severity, with the four-letter
/// tags its log lines carry. The one level type: `loglevel=`, the daemon log and process
/// lines all use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Blather = 3,
    Trace = 5,
    Debug = 10,
    Info = 20,
    Warn = 30,
    Error = 40,
    Critical = 50,
}

impl Level {
    /// The tag in `2026-11-22 22:48:50,876 INFO spawned: …`.
    pub fn tag(self) -> &'static str {
        match self {
            Level::Blather => "BLAT",
            Level::Trace => "TRAC",
            Level::Debug => "DEBG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERRO",
            Level::Critical => "CRIT",
        }
    }

    /// `loglevel=` / `-e` values, case-insensitive as Python's `logging_level`:
    /// critical, error, warn, info, debug, trace, blather (not `warning`).
    pub fn from_description(s: &str) -> Option<Level> {
        Some(match s.to_ascii_lowercase().as_str() {
            "critical" => Level::Critical,
            "error" => Level::Error,
            "warn" => Level::Warn,
            "info" => Level::Info,
            "debug" => Level::Debug,
            "trace" => Level::Trace,
            "blather" => Level::Blather,
            _ => return None,
        })
    }
}

/// One process-related daemon log line. `name` is the process name (not `group:name`), as
/// Python logs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogLine {
    /// INFO `spawned: 'web' with pid 123`.
    Spawned { name: String, pid: u32 },
    /// INFO `spawnerr: can't find command 'x'`.
    SpawnErr { msg: String },
    /// INFO `success: web entered RUNNING state, process has stayed up for > than 1 seconds (startsecs)`.
    Success { name: String, startsecs: i64 },
    /// `exited: web (exit status 3; not expected)`: INFO when expected, else WARN.
    Exited { name: String, status: ExitStatus, expected: bool },
    /// `stopped: web (terminated by SIGTERM)`: INFO when the status is in `exitcodes`, else WARN.
    Stopped { name: String, status: ExitStatus, expected: bool },
    /// INFO `gave up: web entered FATAL state, too many start retries too quickly`.
    GaveUp { name: String },
    /// DEBG `killing web (pid 123) with signal SIGTERM`, or `… (pid 123) process group with …`.
    Killing { name: String, pid: u32, sig: i32, group: bool },
    /// WARN `killing 'web' (123) with SIGKILL`: stopwaitsecs ran out.
    KillingWithSigkill { name: String, pid: u32 },
    /// DEBG `sending web (pid 123) sig SIGHUP` (signalProcess).
    Sending { name: String, pid: u32, sig: i32 },
    /// DEBG `Attempted to kill web, which is in BACKOFF state.` (a stop in BACKOFF).
    KillInBackoff { name: String },
    /// WARN `process 'web' already running` (a start while the old child still lives).
    AlreadyRunning { name: String },
    /// CRIT `unknown problem killing web (123):<error>`: the process becomes UNKNOWN.
    UnknownProblemKilling { name: String, pid: u32, error: String },
    /// CRIT `unknown problem sending sig web (123):<error>`: the process becomes UNKNOWN.
    UnknownProblemSending { name: String, pid: u32, error: String },
    /// INFO `waiting for web to stop`: logged by the orchestrator, at most every 2 s, while a
    /// stop request waits (Python's `stop_report`).
    WaitingToStop { name: String },
    /// INFO `waiting for a, b to die`: logged by the orchestrator during shutdown, at most
    /// every 3 s.
    WaitingToDie { names: Vec<String> },
    /// DEBG, ours (Python would raise an assertion): an input that makes no sense in the
    /// current state was ignored.
    Ignored { name: String, input: String, state: ProcessState },
    // Ours: the lifecycle options.
    /// INFO `waiting: web waits for db:running` (its dependencies are not met yet).
    Waiting { name: String, what: String },
    /// WARN `not ready: web did not pass its ready check within 30 seconds (connection refused)`.
    NotReady { name: String, secs: String, reason: Option<String> },
    /// WARN `unhealthy: web failed 3 health checks in a row (HTTP 503), restarting`.
    Unhealthy { name: String, failures: u32, reason: String },
    /// INFO `gave up: web entered FATAL state, more than 5 restarts within 60 seconds`.
    GaveUpRestartLimit { name: String, restarts: u32, window: String },
    /// WARN `gave up: web entered FATAL state, dependency db is FATAL`.
    DependencyFailed { name: String, reason: String },
    /// INFO `backoff: web restarts in 4 seconds (failure 3)` (exponential backoff).
    RestartIn { name: String, secs: String, failures: u32 },
    /// CRIT `essential process envoy exited (exit status 3): shutting down with exit code 3`.
    EssentialEnded { name: String, how: String, code: u8 },
}

impl LogLine {
    /// The level Python logs this line at.
    pub fn level(&self) -> Level {
        match self {
            LogLine::Exited { expected, .. } | LogLine::Stopped { expected, .. } => {
                if *expected {
                    Level::Info
                } else {
                    Level::Warn
                }
            }
            LogLine::KillingWithSigkill { .. } | LogLine::AlreadyRunning { .. } => Level::Warn,
            LogLine::UnknownProblemKilling { .. } | LogLine::UnknownProblemSending { .. } => {
                Level::Critical
            }
            LogLine::Killing { .. }
            | LogLine::Sending { .. }
            | LogLine::KillInBackoff { .. }
            | LogLine::Ignored { .. } => Level::Debug,
            LogLine::Spawned { .. }
            | LogLine::SpawnErr { .. }
            | LogLine::Success { .. }
            | LogLine::GaveUp { .. }
            | LogLine::WaitingToStop { .. }
            | LogLine::WaitingToDie { .. }
            | LogLine::Waiting { .. }
            | LogLine::GaveUpRestartLimit { .. }
            | LogLine::RestartIn { .. } => Level::Info,
            LogLine::NotReady { .. }
            | LogLine::Unhealthy { .. }
            | LogLine::DependencyFailed { .. } => Level::Warn,
            LogLine::EssentialEnded { .. } => Level::Critical,
        }
    }
}

impl fmt::Display for LogLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogLine::Spawned { name, pid } => write!(f, "spawned: '{name}' with pid {pid}"),
            LogLine::SpawnErr { msg } => write!(f, "spawnerr: {msg}"),
            LogLine::Success { name, startsecs } => write!(
                f,
                "success: {name} entered RUNNING state, process has stayed up for > than {startsecs} seconds (startsecs)"
            ),
            LogLine::Exited { name, status, expected } => {
                let not = if *expected { "" } else { "not " };
                write!(f, "exited: {name} ({status}; {not}expected)")
            }
            LogLine::Stopped { name, status, .. } => write!(f, "stopped: {name} ({status})"),
            LogLine::GaveUp { name } => {
                write!(f, "gave up: {name} entered FATAL state, too many start retries too quickly")
            }
            LogLine::Killing { name, pid, sig, group } => {
                let as_group = if *group { "process group " } else { "" };
                write!(f, "killing {name} (pid {pid}) {as_group}with signal {}", signame(*sig))
            }
            LogLine::KillingWithSigkill { name, pid } => {
                write!(f, "killing '{name}' ({pid}) with SIGKILL")
            }
            LogLine::Sending { name, pid, sig } => {
                write!(f, "sending {name} (pid {pid}) sig {}", signame(*sig))
            }
            LogLine::KillInBackoff { name } => {
                write!(f, "Attempted to kill {name}, which is in BACKOFF state.")
            }
            LogLine::AlreadyRunning { name } => write!(f, "process '{name}' already running"),
            LogLine::UnknownProblemKilling { name, pid, error } => {
                write!(f, "unknown problem killing {name} ({pid}):{error}")
            }
            LogLine::UnknownProblemSending { name, pid, error } => {
                write!(f, "unknown problem sending sig {name} ({pid}):{error}")
            }
            LogLine::WaitingToStop { name } => write!(f, "waiting for {name} to stop"),
            LogLine::WaitingToDie { names } => write!(f, "waiting for {} to die", names.join(", ")),
            LogLine::Ignored { name, input, state } => {
                write!(f, "ignored {input} for {name} in state {state}")
            }
            LogLine::Waiting { name, what } => write!(f, "waiting: {name} waits for {what}"),
            LogLine::NotReady { name, secs, reason } => {
                write!(f, "not ready: {name} did not pass its ready check within {secs} seconds")?;
                match reason {
                    Some(r) => write!(f, " ({r})"),
                    None => Ok(()),
                }
            }
            LogLine::Unhealthy { name, failures, reason } => write!(
                f,
                "unhealthy: {name} failed {failures} health checks in a row ({reason}), restarting"
            ),
            LogLine::GaveUpRestartLimit { name, restarts, window } => write!(
                f,
                "gave up: {name} entered FATAL state, more than {restarts} restarts within {window} seconds"
            ),
            LogLine::DependencyFailed { name, reason } => {
                write!(f, "gave up: {name} entered FATAL state, {reason}")
            }
            LogLine::EssentialEnded { name, how, code } => {
                write!(f, "essential process {name} {how}: shutting down with exit code {code}")
            }
            LogLine::RestartIn { name, secs, failures } => {
                write!(f, "backoff: {name} restarts in {secs} seconds (failure {failures})")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::expect;

    fn render(lines: &[LogLine]) -> String {
        lines.iter().map(|l| format!("{} {l}\n", l.level().tag())).collect()
    }

    #[test]
    fn wording_and_levels_are_pythons() {
        let name = || "web".to_owned();
        let term = ExitStatus::Signaled { sig: 15, core: false };
        let lines = [
            LogLine::Spawned { name: name(), pid: 123 },
            LogLine::SpawnErr { msg: "can't find command 'x'".into() },
            LogLine::Success { name: name(), startsecs: 1 },
            LogLine::Exited { name: name(), status: ExitStatus::Exited(0), expected: true },
            LogLine::Exited { name: name(), status: ExitStatus::Exited(3), expected: false },
            LogLine::Exited {
                name: name(),
                status: ExitStatus::Signaled { sig: 9, core: false },
                expected: false,
            },
            LogLine::Stopped { name: name(), status: term, expected: false },
            LogLine::Stopped { name: name(), status: ExitStatus::Exited(0), expected: true },
            LogLine::GaveUp { name: name() },
            LogLine::Killing { name: name(), pid: 123, sig: 15, group: false },
            LogLine::Killing { name: name(), pid: 123, sig: 9, group: true },
            LogLine::KillingWithSigkill { name: name(), pid: 123 },
            LogLine::Sending { name: name(), pid: 123, sig: 1 },
            LogLine::KillInBackoff { name: name() },
            LogLine::AlreadyRunning { name: name() },
            LogLine::UnknownProblemKilling { name: name(), pid: 123, error: "EPERM".into() },
            LogLine::UnknownProblemSending { name: name(), pid: 123, error: "EPERM".into() },
            LogLine::WaitingToStop { name: name() },
            LogLine::WaitingToDie { names: vec!["a".into(), "b".into(), "c".into()] },
            LogLine::Waiting { name: name(), what: "db:running".into() },
            LogLine::NotReady { name: name(), secs: "30".into(), reason: Some("HTTP 503".into()) },
            LogLine::Unhealthy { name: name(), failures: 3, reason: "HTTP 503".into() },
            LogLine::GaveUpRestartLimit { name: name(), restarts: 5, window: "60".into() },
            LogLine::DependencyFailed { name: name(), reason: "dependency db is FATAL".into() },
            LogLine::RestartIn { name: name(), secs: "4".into(), failures: 3 },
            LogLine::EssentialEnded { name: name(), how: "exited (exit status 3)".into(), code: 3 },
        ];
        expect![[r#"
            INFO spawned: 'web' with pid 123
            INFO spawnerr: can't find command 'x'
            INFO success: web entered RUNNING state, process has stayed up for > than 1 seconds (startsecs)
            INFO exited: web (exit status 0; expected)
            WARN exited: web (exit status 3; not expected)
            WARN exited: web (terminated by SIGKILL; not expected)
            WARN stopped: web (terminated by SIGTERM)
            INFO stopped: web (exit status 0)
            INFO gave up: web entered FATAL state, too many start retries too quickly
            DEBG killing web (pid 123) with signal SIGTERM
            DEBG killing web (pid 123) process group with signal SIGKILL
            WARN killing 'web' (123) with SIGKILL
            DEBG sending web (pid 123) sig SIGHUP
            DEBG Attempted to kill web, which is in BACKOFF state.
            WARN process 'web' already running
            CRIT unknown problem killing web (123):EPERM
            CRIT unknown problem sending sig web (123):EPERM
            INFO waiting for web to stop
            INFO waiting for a, b, c to die
            INFO waiting: web waits for db:running
            WARN not ready: web did not pass its ready check within 30 seconds (HTTP 503)
            WARN unhealthy: web failed 3 health checks in a row (HTTP 503), restarting
            INFO gave up: web entered FATAL state, more than 5 restarts within 60 seconds
            WARN gave up: web entered FATAL state, dependency db is FATAL
            INFO backoff: web restarts in 4 seconds (failure 3)
            CRIT essential process web exited (exit status 3): shutting down with exit code 3
        "#]]
        .assert_eq(&render(&lines));
    }
}
