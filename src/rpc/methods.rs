//! The method table (`TABLE`: name, arity, handler) for `supervisor.*`, `system.*` and
//! `weka.*` with Python's parameters, return shapes and faults, mapped onto orchestrator
//! requests. File reads (logs, the
//! config for `reloadConfig`) happen here, in the request's own task, never in the
//! orchestrator.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use super::docs::METHODS;
use super::server::{
    self, Dispatch, DispatchFuture, JsonFuture, PageFuture, PathFuture, Probe, TailSource,
};
use super::value::Value;
use crate::config::{Config, GroupConfig, LogTarget, ProcessConfig};
use crate::fault::{Fault, FaultKind};
use crate::logio::mainlog::ClearError;
use crate::logio::mainlog_task::MainLogHandle;
use crate::logio::tail;
use crate::orchestrator::names;
use crate::orchestrator::{
    CommandCheck, Detail, LogChannel, OrchestratorHandle, Outcome, Pending, ProcessInfo, Request,
    StatusRow, Target,
};
use crate::runner::StdinError;
use crate::sys::spawn::{self, SpawnError};

/// Re-reads the config the way the daemon first read it (same path, same flags).
pub type Reloader = Arc<dyn Fn() -> Result<Config, String> + Send + Sync>;

/// The methods of one daemon incarnation.
#[derive(Clone)]
pub struct Methods {
    pub orch: OrchestratorHandle,
    pub log: MainLogHandle,
    pub reload: Reloader,
}

impl Dispatch for Methods {
    fn call(&self, method: String, params: Vec<Value>) -> DispatchFuture {
        let this = self.clone();
        Box::pin(async move { this.dispatch(&method, params, true).await })
    }

    fn call_json(&self, method: &str, params: &[Value]) -> Option<JsonFuture> {
        // Wrong arity goes the table's way, to its fault.
        if method != STATUS_ROWS || !params.is_empty() {
            return None;
        }
        let this = self.clone();
        Some(Box::pin(async move {
            let rows = this.ask(|reply| Request::StatusRows { reply }).await??;
            Ok(status_rows_json(&rows))
        }))
    }

    fn probe(&self, probe: Probe) -> PageFuture {
        let orch = self.orch.clone();
        Box::pin(async move {
            match probe {
                Probe::Metrics => super::observe::metrics(&orch).await,
                Probe::Healthz => super::observe::healthz(&orch).await,
                Probe::Readyz => super::observe::readyz(&orch).await,
            }
        })
    }

    fn tail_path(&self, source: TailSource) -> PathFuture {
        let orch = self.orch.clone();
        Box::pin(async move {
            match source {
                TailSource::Main => orch.ask(|reply| Request::MainLogPath { reply }).await.ok()?,
                TailSource::Process { spec, channel } => {
                    // Python serves only a single process, not `group:*`.
                    names::split(&spec).process?;
                    orch.ask(|reply| Request::LogPath { spec, channel, reply }).await.ok()?.ok()?
                }
            }
        })
    }
}

/// `faultCode` 80 / `OK`, or the fault, as one element of a group result list.
fn result_struct(name: &str, group: &str, res: &Result<(), Fault>) -> Value {
    let (status, description) = match res {
        Ok(()) => (FaultKind::Success.code(), "OK".to_string()),
        Err(f) => (f.code, f.string.clone()),
    };
    Value::record([
        ("name", Value::str(name)),
        ("group", Value::str(group)),
        ("status", Value::Int(status.into())),
        ("description", Value::str(description)),
    ])
}

fn incorrect() -> Fault {
    Fault::bare(FaultKind::IncorrectParameters)
}

/// Positional parameters with Python's arity rule: too few or too many is
/// INCORRECT_PARAMETERS; optional ones take their default.
struct Params {
    v: Vec<Value>,
}

impl Params {
    fn new(v: Vec<Value>, min: usize, max: usize) -> Result<Params, Fault> {
        if v.len() < min || v.len() > max { Err(incorrect()) } else { Ok(Params { v }) }
    }

    fn str(&self, i: usize) -> Result<String, Fault> {
        match self.v.get(i) {
            Some(Value::String(s)) => Ok(s.clone()),
            _ => Err(incorrect()),
        }
    }

    /// Python passes offsets and lengths through `int()`, so `"5"`, `5.9` and `True` are
    /// accepted; what `int()` would reject is INCORRECT_PARAMETERS (Python: an HTTP 500).
    fn int(&self, i: usize) -> Result<i64, Fault> {
        match self.v.get(i) {
            Some(Value::Int(n)) => Ok(*n),
            Some(Value::Bool(b)) => Ok(i64::from(*b)),
            Some(Value::Double(f)) if f.is_finite() && f.abs() < 9.2e18 => Ok(f.trunc() as i64),
            Some(Value::String(s)) => s.trim().parse().map_err(|_| incorrect()),
            _ => Err(incorrect()),
        }
    }

    /// Python tests `wait` with a bare `if`, so any value is accepted by its truthiness.
    fn bool_or(&self, i: usize, default: bool) -> Result<bool, Fault> {
        Ok(self.v.get(i).map_or(default, Value::truthy))
    }
}

/// A signal by name (`HUP`, `SIGHUP`, any case) or number, as Python's `signal_number`.
pub fn parse_signal(s: &str) -> Option<i32> {
    if let Ok(n) = s.trim().parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let upper = s.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    (1..=64).find(|&n| crate::procsup::signame(n).strip_prefix("SIG") == Some(bare))
}

fn info_value(i: ProcessInfo) -> Value {
    Value::Struct(info_members(i))
}

/// `getProcessInfo`'s members, in Python's order.
pub(super) fn info_members(i: ProcessInfo) -> Vec<(super::value::Key, Value)> {
    let Value::Struct(mut members) = Value::record([
        ("name", Value::String(i.name)),
        ("group", Value::String(i.group)),
        ("start", Value::Int(i.start)),
        ("stop", Value::Int(i.stop)),
        ("now", Value::Int(i.now)),
        ("state", Value::Int(i.state.code().into())),
        ("statename", Value::str(i.state.name())),
        ("spawnerr", Value::String(i.spawnerr)),
        ("exitstatus", Value::Int(i.exitstatus)),
        ("logfile", Value::str(&i.stdout_logfile)),
        ("stdout_logfile", Value::String(i.stdout_logfile)),
        ("stderr_logfile", Value::String(i.stderr_logfile)),
        ("pid", Value::Int(i.pid)),
        ("description", Value::String(i.description)),
    ]) else {
        return Vec::new();
    };
    // Ours, only for processes that use the lifecycle options.
    if let Some(l) = i.lifecycle {
        let mut add = |k: &'static str, val: Value| members.push((k.into(), val));
        add("waiting_for", Value::String(l.waiting_for));
        if let Some(ready) = l.ready {
            add("ready", Value::Bool(ready));
        }
        add("health", Value::String(l.health));
        add("health_failures", Value::Int(l.health_failures));
        add("health_reason", Value::String(l.health_reason));
        add("restarts", Value::Int(l.restarts));
        add("next_restart", Value::Int(l.next_restart));
    }
    members
}

/// Our method for `supervisorctl status` and `pid all`: of `getAllProcessInfo`'s members
/// only those they print, in the same order (a third of the bytes at scale).
const STATUS_ROWS: &str = "weka.getAllProcessRows";

fn status_row_value(r: &StatusRow) -> Value {
    Value::record([
        ("name", Value::str(&r.config.name)),
        ("group", Value::str(&r.config.group)),
        ("state", Value::Int(r.state.code().into())),
        ("statename", Value::str(r.state.name())),
        ("pid", Value::Int(r.pid)),
        ("description", Value::str(&r.description)),
    ])
}

/// What [`status_row_value`] of every row encodes to in JSON, written directly.
pub(super) fn status_rows_json(rows: &[StatusRow]) -> String {
    use super::jsonrpc::push_json_str;
    let mut out = String::with_capacity(16 + rows.len() * 128);
    out.push('[');
    for (i, r) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"name\":");
        push_json_str(&mut out, &r.config.name);
        out.push_str(",\"group\":");
        push_json_str(&mut out, &r.config.group);
        out.push_str(",\"state\":");
        out.push_str(itoa::Buffer::new().format(r.state.code()));
        out.push_str(",\"statename\":\"");
        out.push_str(r.state.name());
        out.push_str("\",\"pid\":");
        out.push_str(itoa::Buffer::new().format(r.pid));
        out.push_str(",\"description\":");
        push_json_str(&mut out, &r.description);
        out.push('}');
    }
    out.push(']');
    out
}

/// An unsigned config number as an XML-RPC int, saturating (XML-RPC ints are signed).
fn big(n: impl TryInto<i64>) -> Value {
    Value::Int(n.try_into().unwrap_or(i64::MAX))
}

fn none_or(s: Option<String>) -> Value {
    Value::str(s.unwrap_or_else(|| "none".into()))
}

fn logfile_value(t: &LogTarget) -> Value {
    match t {
        LogTarget::None => Value::str("none"),
        LogTarget::Auto => Value::str("auto"),
        LogTarget::Path(p) => Value::str(p.display().to_string()),
    }
}

fn config_value(g: &GroupConfig, p: &ProcessConfig, inuse: bool) -> Value {
    Value::record([
        ("autostart", Value::Bool(p.autostart)),
        ("directory", none_or(p.directory.as_ref().map(|d| d.display().to_string()))),
        ("uid", none_or(p.user.as_deref().map(str::to_owned))),
        ("command", Value::str(&*p.command)),
        ("exitcodes", Value::Array(p.exitcodes.iter().map(|&c| Value::Int(c.into())).collect())),
        ("group", Value::str(&g.name)),
        ("group_prio", Value::Int(g.priority)),
        ("inuse", Value::Bool(inuse)),
        ("killasgroup", Value::Bool(p.killasgroup)),
        ("name", Value::str(&p.name)),
        ("process_prio", Value::Int(p.priority)),
        ("redirect_stderr", Value::Bool(p.redirect_stderr)),
        ("startretries", Value::Int(p.startretries.into())),
        ("startsecs", big(p.startsecs)),
        ("stdout_capture_maxbytes", big(p.stdout.capture_maxbytes)),
        ("stdout_events_enabled", Value::Bool(p.stdout.events_enabled)),
        ("stdout_logfile", logfile_value(&p.stdout.logfile)),
        ("stdout_logfile_backups", Value::Int(p.stdout.backups.into())),
        ("stdout_logfile_maxbytes", big(p.stdout.maxbytes)),
        ("stdout_syslog", Value::Bool(p.stdout.syslog)),
        ("stopsignal", Value::Int(p.stopsignal.into())),
        ("stopwaitsecs", big(p.stopwaitsecs)),
        ("stderr_capture_maxbytes", big(p.stderr.capture_maxbytes)),
        ("stderr_events_enabled", Value::Bool(p.stderr.events_enabled)),
        ("stderr_logfile", logfile_value(&p.stderr.logfile)),
        ("stderr_logfile_backups", Value::Int(p.stderr.backups.into())),
        ("stderr_logfile_maxbytes", big(p.stderr.maxbytes)),
        ("stderr_syslog", Value::Bool(p.stderr.syslog)),
        ("serverurl", none_or(p.serverurl.as_deref().map(str::to_owned))),
    ])
}

/// Awaits every pending outcome, in the order given (priority order), so group results
/// come back in a stable order rather than in completion order.
async fn gather(list: Vec<Pending>) -> Vec<(String, String, Result<(), Fault>)> {
    let mut out = Vec::with_capacity(list.len());
    for p in list {
        let res = match p.outcome {
            Outcome::Done(r) => r,
            Outcome::Wait(rx) => rx.await.unwrap_or_else(|_| {
                Err(Fault::with(
                    FaultKind::Failed,
                    format!("{} was removed while waiting", names::key(&p.group, &p.name)),
                ))
            }),
        };
        out.push((p.name, p.group, res));
    }
    out
}

fn result_list(results: Vec<(String, String, Result<(), Fault>)>) -> Value {
    Value::Array(results.iter().map(|(n, g, r)| result_struct(n, g, r)).collect())
}

/// Reads a log range in the request's task (blocking but short; bounded by `length`).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Fault> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Fault::with(FaultKind::Failed, e))
}

fn read_fault(e: tail::ReadError, path: &std::path::Path) -> Fault {
    match e {
        tail::ReadError::NoFile => Fault::with(FaultKind::NoFile, path.display()),
        tail::ReadError::BadArguments => Fault::bare(FaultKind::BadArguments),
        tail::ReadError::Failed => Fault::with(FaultKind::Failed, path.display()),
    }
}

impl Methods {
    async fn ask<T>(
        &self,
        make: impl FnOnce(crate::orchestrator::msg::Reply<T>) -> Request,
    ) -> Result<T, Fault> {
        self.orch.ask(make).await
    }

    /// One call. `top` is false inside `system.multicall`, which may not nest.
    pub async fn dispatch(
        &self,
        method: &str,
        params: Vec<Value>,
        top: bool,
    ) -> Result<Value, Fault> {
        if method == "system.multicall" && !top {
            return Err(Fault::with(
                FaultKind::IncorrectParameters,
                "Recursive system.multicall forbidden",
            ));
        }
        let entry = TABLE
            .iter()
            .find(|m| m.name == method)
            .ok_or_else(|| Fault::bare(FaultKind::UnknownMethod))?;
        // Python's `_update`: every supervisor method but sendRemoteCommEvent refuses while
        // the daemon shuts down or restarts, getState and getAPIVersion included.
        if method.starts_with("supervisor.") && method != "supervisor.sendRemoteCommEvent" {
            self.refuse_if_stopping().await?;
        }
        let (min, max) = entry.arity;
        (entry.call)(self, Params::new(params, min, max)?).await
    }

    fn list_methods(&self, _: Params) -> Call<'_> {
        let mut names: Vec<&str> = METHODS.iter().map(|(n, _, _)| *n).collect();
        names.extend(WEKA.iter().map(|(n, _, _)| *n));
        names.sort_unstable();
        Box::pin(async move { Ok(Value::Array(names.into_iter().map(Value::str).collect())) })
    }

    /// `system.methodHelp` (`help`) or `system.methodSignature`.
    fn method_doc(p: &Params, help: bool) -> Result<Value, Fault> {
        let name = p.str(0)?;
        let found = METHODS.iter().chain(WEKA.iter()).find(|(n, _, _)| *n == name);
        let (_, sig, text) = found.ok_or_else(|| Fault::bare(FaultKind::SignatureUnsupported))?;
        Ok(if help {
            Value::str(*text)
        } else {
            Value::Array(sig.iter().map(|s| Value::str(*s)).collect())
        })
    }

    async fn multicall(&self, p: Params) -> Result<Value, Fault> {
        let calls = p.v.first().and_then(Value::as_array).ok_or_else(incorrect)?.to_vec();
        let mut out = Vec::with_capacity(calls.len());
        for call in calls {
            let name = call.member("methodName").and_then(Value::as_str).map(str::to_string);
            let res = match name {
                None => Err(Fault::with(FaultKind::IncorrectParameters, "No methodName")),
                Some(name) => {
                    let params = match call.member("params") {
                        None => Vec::new(),
                        Some(Value::Array(a)) => a.clone(),
                        Some(_) => {
                            out.push(fault_value(&incorrect()));
                            continue;
                        }
                    };
                    Box::pin(self.dispatch(&name, params, false)).await
                }
            };
            out.push(match res {
                Ok(v) => v,
                Err(f) => fault_value(&f),
            });
        }
        Ok(Value::Array(out))
    }

    async fn get_identification(&self) -> Result<Value, Fault> {
        Ok(Value::str(self.ask(|reply| Request::GetIdentification { reply }).await?))
    }

    async fn get_state(&self) -> Result<Value, Fault> {
        let s = self.ask(|reply| Request::GetState { reply }).await?;
        Ok(Value::record([
            ("statecode", Value::Int(s.code())),
            ("statename", Value::str(s.name())),
        ]))
    }

    async fn read_main_log(&self, p: Params) -> Result<Value, Fault> {
        let (offset, length) = (p.int(0)?, p.int(1)?);
        let path = self.ask(|reply| Request::MainLogPath { reply }).await?;
        self.read_file(path, offset, length).await
    }

    async fn clear_main_log(&self) -> Result<Value, Fault> {
        let path = self.ask(|reply| Request::MainLogPath { reply }).await?;
        match self.log.clear().await {
            Ok(()) => Ok(Value::Bool(true)),
            Err(ClearError::NoFile) => Err(Fault::with(
                FaultKind::NoFile,
                path.map_or_else(|| "None".to_string(), |p| p.display().to_string()),
            )),
            Err(_) => Err(Fault::bare(FaultKind::Failed)),
        }
    }

    /// `shutdown`, or `restart` when `restart`.
    async fn end(&self, restart: bool) -> Result<Value, Fault> {
        // The incarnation may end at once (nothing running): make it wait until this
        // answer has been written, or the client sees a dropped connection.
        let (written, until) = tokio::sync::oneshot::channel::<()>();
        self.ask(|reply| Request::Linger { until, reply }).await?;
        if restart {
            self.ask(|reply| Request::Restart { reply }).await??;
        } else {
            self.ask(|reply| Request::Shutdown { reply }).await??;
        }
        server::release_after_response(written);
        Ok(Value::Bool(true))
    }

    async fn reload_config(&self) -> Result<Value, Fault> {
        let reload = self.reload.clone();
        let config =
            blocking(move || reload()).await?.map_err(|e| Fault::with(FaultKind::CantReread, e))?;
        let [added, changed, removed] =
            self.ask(|reply| Request::Reread { config: Box::new(config), reply }).await??;
        let list = |v: Vec<String>| Value::Array(v.into_iter().map(Value::String).collect());
        Ok(Value::Array(vec![Value::Array(vec![list(added), list(changed), list(removed)])]))
    }

    async fn add_group(&self, p: Params) -> Result<Value, Fault> {
        let name = p.str(0)?;
        self.ask(|reply| Request::AddGroup { name, reply }).await??;
        Ok(Value::Bool(true))
    }

    async fn remove_group(&self, p: Params) -> Result<Value, Fault> {
        let name = p.str(0)?;
        self.ask(|reply| Request::RemoveGroup { name, reply }).await??;
        Ok(Value::Bool(true))
    }

    /// `startProcess`, or `weka.startProcess` when `idempotent`.
    async fn start_process(&self, p: Params, idempotent: bool) -> Result<Value, Fault> {
        let (spec, wait) = (p.str(0)?, p.bool_or(1, true)?);
        self.start_spec(spec, wait, idempotent).await
    }

    async fn start_group(&self, p: Params) -> Result<Value, Fault> {
        let (group, wait) = (p.str(0)?, p.bool_or(1, true)?);
        let target = Target::Spec(format!("{group}:*"));
        let results =
            self.start(target, wait, false, false).await.map_err(|f| rename_bad_name(f, &group))?;
        Ok(result_list(results))
    }

    async fn start_all(&self, p: Params) -> Result<Value, Fault> {
        let wait = p.bool_or(0, true)?;
        Ok(result_list(self.start(Target::All, wait, false, false).await?))
    }

    async fn stop_process(&self, p: Params) -> Result<Value, Fault> {
        let (spec, wait) = (p.str(0)?, p.bool_or(1, true)?);
        let single = names::split(&spec).process.is_some();
        let target = Target::Spec(spec);
        let list = self.ask(|reply| Request::Stop { target, wait, reply }).await??;
        self.single_or_list(single, list).await
    }

    async fn stop_group(&self, p: Params) -> Result<Value, Fault> {
        let (group, wait) = (p.str(0)?, p.bool_or(1, true)?);
        let target = Target::Spec(format!("{group}:*"));
        let list = self.ask(|reply| Request::Stop { target, wait, reply }).await?;
        Ok(result_list(gather(list.map_err(|f| rename_bad_name(f, &group))?).await))
    }

    async fn stop_all(&self, p: Params) -> Result<Value, Fault> {
        let wait = p.bool_or(0, true)?;
        let list = self.ask(|reply| Request::Stop { target: Target::All, wait, reply }).await??;
        Ok(result_list(gather(list).await))
    }

    async fn all_config_info(&self) -> Result<Value, Fault> {
        let (groups, active) = self.ask(|reply| Request::AllConfigInfo { reply }).await?;
        let mut rows: Vec<(&str, Value)> = Vec::new();
        for g in &groups {
            let inuse = active.contains(&g.name);
            for p in &g.processes {
                rows.push((p.name.as_str(), config_value(g, p, inuse)));
            }
        }
        // Python sorts by process name only.
        rows.sort_by(|a, b| a.0.cmp(b.0));
        Ok(Value::Array(rows.into_iter().map(|(_, v)| v).collect()))
    }

    async fn process_info(&self, p: Params) -> Result<Value, Fault> {
        let spec = p.str(0)?;
        let info = self.ask(|reply| Request::ProcessInfo { spec, reply }).await??;
        Ok(info_value(info))
    }

    async fn all_process_info(&self) -> Result<Value, Fault> {
        let all = self.ask(|reply| Request::AllProcessInfo { reply }).await?;
        Ok(Value::Array(all.into_iter().map(info_value).collect()))
    }

    async fn all_process_rows(&self) -> Result<Value, Fault> {
        let rows = self.ask(|reply| Request::StatusRows { reply }).await??;
        Ok(Value::Array(rows.iter().map(status_row_value).collect()))
    }

    async fn read_process_log(&self, p: Params, channel: LogChannel) -> Result<Value, Fault> {
        let (spec, offset, length) = (p.str(0)?, p.int(1)?, p.int(2)?);
        let path = self.ask(|reply| Request::LogPath { spec, channel, reply }).await??;
        self.read_file(path, offset, length).await
    }

    async fn tail_process_log(&self, p: Params, channel: LogChannel) -> Result<Value, Fault> {
        let (spec, offset, length) = (p.str(0)?, p.int(1)?, p.int(2)?);
        let path = self.ask(|reply| Request::LogPath { spec, channel, reply }).await??;
        let Some(path) = path else {
            return Ok(Value::Array(vec![Value::str(""), Value::Int(0), Value::Bool(false)]));
        };
        let t = blocking(move || tail::tail_log_file(&path, offset, length)).await?;
        Ok(Value::Array(vec![
            Value::str(String::from_utf8_lossy(&t.data).into_owned()),
            Value::Int(t.new_offset),
            Value::Bool(t.overflow),
        ]))
    }

    async fn clear_process_logs(&self, p: Params) -> Result<Value, Fault> {
        let spec = p.str(0)?;
        // Python's `_getGroupAndProcess`: a group spec is BAD_NAME here.
        if names::split(&spec).process.is_none() {
            return Err(Fault::with(FaultKind::BadName, spec));
        }
        let target = Target::Spec(spec);
        let list = self.ask(|reply| Request::ClearLogs { target, reply }).await??;
        for (_, _, r) in gather(list).await {
            r?;
        }
        Ok(Value::Bool(true))
    }

    async fn clear_all_process_logs(&self) -> Result<Value, Fault> {
        let list = self.ask(|reply| Request::ClearLogs { target: Target::All, reply }).await??;
        Ok(result_list(gather(list).await))
    }

    async fn send_stdin(&self, p: Params) -> Result<Value, Fault> {
        let spec = p.str(0)?;
        let data = match p.v.get(1) {
            Some(Value::String(s)) => s.clone().into_bytes(),
            Some(other) => {
                let shown = match other {
                    Value::Int(i) => i.to_string(),
                    other => format!("{other:?}"),
                };
                return Err(Fault::with(FaultKind::IncorrectParameters, shown));
            }
            None => return Err(incorrect()),
        };
        let label = spec.clone();
        let rx = self.ask(|reply| Request::SendStdin { spec, data, reply }).await??;
        match rx.await {
            Ok(Ok(())) => Ok(Value::Bool(true)),
            Ok(Err(StdinError::NotRunning)) => Err(Fault::with(FaultKind::NotRunning, label)),
            Ok(Err(StdinError::Closed)) | Err(_) => Err(Fault::with(FaultKind::NoFile, label)),
        }
    }

    async fn remote_comm_event(&self, p: Params) -> Result<Value, Fault> {
        let (type_, data) = (p.str(0)?, p.str(1)?);
        self.ask(|reply| Request::RemoteCommEvent { type_, data, reply }).await?;
        Ok(Value::Bool(true))
    }

    async fn get_auto_recovery(&self) -> Result<Value, Fault> {
        let (enabled, count) = self.ask(|reply| Request::GetAutoRecovery { reply }).await?;
        Ok(Value::record([("enabled", Value::Bool(enabled)), ("count", Value::Int(count))]))
    }

    /// `weka.enableAutoRecovery`, or `weka.disableAutoRecovery` when not `on`. An optional
    /// `group:name` ties the hold to that process: the daemon releases it when the process
    /// exits (a listener that crashed cannot keep it for good).
    async fn set_auto_recovery(&self, p: Params, on: bool) -> Result<Value, Fault> {
        let holder = if p.v.is_empty() { None } else { Some(p.str(0)?) };
        if on {
            self.ask(|reply| Request::EnableAutoRecovery { holder, reply }).await??;
        } else {
            self.ask(|reply| Request::DisableAutoRecovery { holder, reply }).await??;
        }
        Ok(Value::Bool(true))
    }

    /// The last exit's status (-1 for a signal), also after an exit within startsecs,
    /// where getProcessInfo's exitstatus is 0 as in Python; false before the first exit.
    async fn last_exit_status(&self, p: Params) -> Result<Value, Fault> {
        let spec = p.str(0)?;
        let info = self.ask(|reply| Request::ProcessInfo { spec, reply }).await??;
        Ok(info.last_exit.map_or(Value::Bool(false), Value::Int))
    }

    /// Every `getProcessInfo` field plus restart, exit and output counts, for `status --json`.
    async fn all_process_status(&self) -> Result<Value, Fault> {
        let snap = self.ask(|reply| Request::Snapshot { detail: Detail::Full, reply }).await?;
        Ok(Value::Array(snap.procs.into_iter().map(super::observe::status_value).collect()))
    }

    async fn stop_all_io_nodes(&self, p: Params) -> Result<Value, Fault> {
        let wait = p.bool_or(0, true)?;
        self.ask(|reply| Request::DisableAutoRecovery { holder: None, reply }).await??;
        let res = self.ask(|reply| Request::Stop { target: Target::IoNodes, wait, reply }).await;
        let out = match res {
            Ok(Ok(list)) => Ok(result_list(gather(list).await)),
            Ok(Err(f)) | Err(f) => Err(f),
        };
        // Re-enable whatever happened, so a failed call cannot leave it held off.
        let _ = self.ask(|reply| Request::EnableAutoRecovery { holder: None, reply }).await;
        out
    }

    async fn refuse_if_stopping(&self) -> Result<(), Fault> {
        let state = self.ask(|reply| Request::GetState { reply }).await?;
        if state == crate::orchestrator::DaemonState::Running {
            Ok(())
        } else {
            Err(Fault::bare(FaultKind::ShutdownState))
        }
    }

    async fn start_spec(&self, spec: String, wait: bool, idempotent: bool) -> Result<Value, Fault> {
        let single = names::split(&spec).process.is_some();
        let results = self.start(Target::Spec(spec), wait, idempotent, single).await?;
        if single {
            for (_, _, r) in results {
                r?;
            }
            Ok(Value::Bool(true))
        } else {
            Ok(result_list(results))
        }
    }

    /// Python's start: first the command checks (NO_FILE / NOT_EXECUTABLE, on disk, here in
    /// the request's task), then the start of whatever passed. Failed members come first
    /// in a group's list, as Python answers them before the deferred ones.
    async fn start(
        &self,
        target: Target,
        wait: bool,
        idempotent: bool,
        single: bool,
    ) -> Result<Vec<(String, String, Result<(), Fault>)>, Fault> {
        let probe = target.clone();
        let commands = self.ask(|reply| Request::Commands { target: probe, reply }).await??;
        let daemon_path = commands.daemon_path;
        // Running members are not checked: group starts leave them out, an idempotent start
        // answers true for them. Python checks a single non-idempotent start first anyway.
        let checks: Vec<CommandCheck> = commands.list;
        let verdicts = blocking(move || {
            checks
                .into_iter()
                .map(|c| {
                    let verdict = if c.running && (idempotent || !single) {
                        Ok(())
                    } else {
                        check_command(&c.command, c.path_env.as_deref(), &daemon_path)
                    };
                    (c, verdict)
                })
                .collect::<Vec<_>>()
        })
        .await?;
        let mut failed = Vec::new();
        let mut passed = Vec::new();
        for (c, verdict) in verdicts {
            match verdict {
                Ok(()) => passed.push((c.group, c.name)),
                Err(f) if single => return Err(f),
                Err(f) => failed.push((c.name, c.group, Err(f))),
            }
        }
        let target = if failed.is_empty() || single { target } else { Target::Processes(passed) };
        let list = self.ask(|reply| Request::Start { target, wait, idempotent, reply }).await??;
        failed.extend(gather(list).await);
        Ok(failed)
    }

    /// A single-process call answers `true` or its fault; a group spec answers the list.
    async fn single_or_list(&self, single: bool, list: Vec<Pending>) -> Result<Value, Fault> {
        let results = gather(list).await;
        if single {
            for (_, _, r) in results {
                r?;
            }
            Ok(Value::Bool(true))
        } else {
            Ok(result_list(results))
        }
    }

    /// `signalProcess`, `signalProcessGroup` or `signalAllProcesses`, by `kind`.
    async fn signal(&self, p: Params, kind: SignalKind) -> Result<Value, Fault> {
        let (target, sig_text, single) = match kind {
            SignalKind::All => (Target::All, sig_arg(&p, 0)?, false),
            SignalKind::Group => (Target::Spec(format!("{}:*", p.str(0)?)), sig_arg(&p, 1)?, false),
            SignalKind::Process => {
                let spec = p.str(0)?;
                let single = names::split(&spec).process.is_some();
                (Target::Spec(spec), sig_arg(&p, 1)?, single)
            }
        };
        let group_name = match (&target, kind) {
            (Target::Spec(s), SignalKind::Group) => Some(s.trim_end_matches(":*").to_string()),
            _ => None,
        };
        let Some(sig) = parse_signal(&sig_text) else {
            if single {
                return Err(Fault::with(FaultKind::BadSignal, sig_text));
            }
            // Python reports a bad signal per signallable process of the group.
            let fault = Fault::with(FaultKind::BadSignal, &sig_text);
            let all = self.ask(|reply| Request::AllProcessInfo { reply }).await?;
            let rows = all
                .iter()
                .filter(|i| i.state.is_signallable())
                .filter(|i| match &target {
                    Target::Spec(s) => names::split(s).group == i.group,
                    _ => true,
                })
                .map(|i| result_struct(&i.name, &i.group, &Err(fault.clone())))
                .collect();
            return Ok(Value::Array(rows));
        };
        let list = self.ask(|reply| Request::Signal { target, sig, reply }).await?;
        let list = match (list, group_name) {
            (Err(f), Some(g)) => return Err(rename_bad_name(f, &g)),
            (res, _) => res?,
        };
        self.single_or_list(single, list).await
    }

    async fn read_file(
        &self,
        path: Option<PathBuf>,
        offset: i64,
        length: i64,
    ) -> Result<Value, Fault> {
        let Some(path) = path else { return Err(Fault::with(FaultKind::NoFile, "None")) };
        let shown = path.clone();
        let data = blocking(move || tail::read_log_file(&path, offset, length)).await?;
        let bytes = data.map_err(|e| read_fault(e, &shown))?;
        // Python throws on invalid UTF-8 here (an HTTP 500); we decode lossily instead.
        Ok(Value::str(String::from_utf8_lossy(&bytes).into_owned()))
    }
}

/// Python's `get_execv_args` checks: NO_FILE when the program is not found, NOT_EXECUTABLE
/// for anything else wrong with it (unparseable, empty, a directory, no permission).
fn check_command(
    command: &str,
    path_env: Option<&str>,
    daemon_path: &Option<std::ffi::OsString>,
) -> Result<(), Fault> {
    let not_exec = |e: SpawnError| Fault::with(FaultKind::NotExecutable, e);
    let argv = spawn::split_command(command).map_err(not_exec)?;
    let search = spawn::search_path(path_env.map(std::ffi::OsStr::new), daemon_path.as_deref());
    let program = argv.first().map(String::as_str).unwrap_or_default();
    match spawn::resolve_program(program, &search) {
        Ok(_) => Ok(()),
        Err(e @ SpawnError::NotFound(_)) => Err(Fault::with(FaultKind::NoFile, e)),
        Err(e) => Err(not_exec(e)),
    }
}

fn sig_arg(p: &Params, i: usize) -> Result<String, Fault> {
    match p.v.get(i) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Int(n)) => Ok(n.to_string()),
        _ => Err(incorrect()),
    }
}

/// Group methods name the group, not `group:*`, in BAD_NAME.
fn rename_bad_name(f: Fault, group: &str) -> Fault {
    if f.kind() == Some(FaultKind::BadName) { Fault::with(FaultKind::BadName, group) } else { f }
}

fn fault_value(f: &Fault) -> Value {
    Value::record([
        ("faultCode", Value::Int(f.code.into())),
        ("faultString", Value::str(f.string.clone())),
    ])
}

/// What a table entry's handler returns: the call's future, borrowing the methods.
type Call<'a> = Pin<Box<dyn Future<Output = Result<Value, Fault>> + Send + 'a>>;

/// Which `signal*` method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SignalKind {
    Process,
    Group,
    All,
}

/// One method: its name, how many positional parameters it takes (fewer or more is
/// INCORRECT_PARAMETERS, as Python's call fails), and its handler.
struct Method {
    name: &'static str,
    arity: (usize, usize),
    call: for<'a> fn(&'a Methods, Params) -> Call<'a>,
}

const fn m(
    name: &'static str,
    arity: (usize, usize),
    call: for<'a> fn(&'a Methods, Params) -> Call<'a>,
) -> Method {
    Method { name, arity, call }
}

/// Every method we answer. Help texts and signatures are in `docs::METHODS` and [`WEKA`].
#[rustfmt::skip]
static TABLE: &[Method] = &[
    m("system.multicall", (1, 1), |s, p| Box::pin(s.multicall(p))),
    m("system.listMethods", (0, 0), Methods::list_methods),
    m("system.methodHelp", (1, 1), |_, p| Box::pin(async move { Methods::method_doc(&p, true) })),
    m("system.methodSignature", (1, 1), |_, p| Box::pin(async move { Methods::method_doc(&p, false) })),
    m("supervisor.getAPIVersion", (0, 0), |_, _| Box::pin(async { Ok(Value::str("3.0")) })),
    m("supervisor.getVersion", (0, 0), |_, _| Box::pin(async { Ok(Value::str("3.0")) })),
    m("supervisor.getSupervisorVersion", (0, 0), |_, _| {
        Box::pin(async { Ok(Value::str(crate::config::cli::VERSION)) })
    }),
    m("supervisor.getIdentification", (0, 0), |s, _| Box::pin(s.get_identification())),
    m("supervisor.getState", (0, 0), |s, _| Box::pin(s.get_state())),
    m("supervisor.getPID", (0, 0), |_, _| {
        Box::pin(async { Ok(Value::Int(std::process::id().into())) })
    }),
    m("supervisor.readLog", (2, 2), |s, p| Box::pin(s.read_main_log(p))),
    m("supervisor.readMainLog", (2, 2), |s, p| Box::pin(s.read_main_log(p))),
    m("supervisor.clearLog", (0, 0), |s, _| Box::pin(s.clear_main_log())),
    m("supervisor.shutdown", (0, 0), |s, _| Box::pin(s.end(false))),
    m("supervisor.restart", (0, 0), |s, _| Box::pin(s.end(true))),
    m("supervisor.reloadConfig", (0, 0), |s, _| Box::pin(s.reload_config())),
    m("supervisor.addProcessGroup", (1, 1), |s, p| Box::pin(s.add_group(p))),
    m("supervisor.removeProcessGroup", (1, 1), |s, p| Box::pin(s.remove_group(p))),
    m("supervisor.startProcess", (1, 2), |s, p| Box::pin(s.start_process(p, false))),
    m("supervisor.startProcessGroup", (1, 2), |s, p| Box::pin(s.start_group(p))),
    m("supervisor.startAllProcesses", (0, 1), |s, p| Box::pin(s.start_all(p))),
    m("supervisor.stopProcess", (1, 2), |s, p| Box::pin(s.stop_process(p))),
    m("supervisor.stopProcessGroup", (1, 2), |s, p| Box::pin(s.stop_group(p))),
    m("supervisor.stopAllProcesses", (0, 1), |s, p| Box::pin(s.stop_all(p))),
    m("supervisor.signalProcess", (2, 2), |s, p| Box::pin(s.signal(p, SignalKind::Process))),
    m("supervisor.signalProcessGroup", (2, 2), |s, p| Box::pin(s.signal(p, SignalKind::Group))),
    m("supervisor.signalAllProcesses", (1, 1), |s, p| Box::pin(s.signal(p, SignalKind::All))),
    m("supervisor.getAllConfigInfo", (0, 0), |s, _| Box::pin(s.all_config_info())),
    m("supervisor.getProcessInfo", (1, 1), |s, p| Box::pin(s.process_info(p))),
    m("supervisor.getAllProcessInfo", (0, 0), |s, _| Box::pin(s.all_process_info())),
    m("supervisor.readProcessLog", (3, 3), |s, p| Box::pin(s.read_process_log(p, LogChannel::Stdout))),
    m("supervisor.readProcessStdoutLog", (3, 3), |s, p| Box::pin(s.read_process_log(p, LogChannel::Stdout))),
    m("supervisor.readProcessStderrLog", (3, 3), |s, p| Box::pin(s.read_process_log(p, LogChannel::Stderr))),
    m("supervisor.tailProcessLog", (3, 3), |s, p| Box::pin(s.tail_process_log(p, LogChannel::Stdout))),
    m("supervisor.tailProcessStdoutLog", (3, 3), |s, p| Box::pin(s.tail_process_log(p, LogChannel::Stdout))),
    m("supervisor.tailProcessStderrLog", (3, 3), |s, p| Box::pin(s.tail_process_log(p, LogChannel::Stderr))),
    m("supervisor.clearProcessLog", (1, 1), |s, p| Box::pin(s.clear_process_logs(p))),
    m("supervisor.clearProcessLogs", (1, 1), |s, p| Box::pin(s.clear_process_logs(p))),
    m("supervisor.clearAllProcessLogs", (0, 0), |s, _| Box::pin(s.clear_all_process_logs())),
    m("supervisor.sendProcessStdin", (2, 2), |s, p| Box::pin(s.send_stdin(p))),
    m("supervisor.sendRemoteCommEvent", (2, 2), |s, p| Box::pin(s.remote_comm_event(p))),
    m("weka.getAutoRecovery", (0, 0), |s, _| Box::pin(s.get_auto_recovery())),
    m("weka.disableAutoRecovery", (0, 1), |s, p| Box::pin(s.set_auto_recovery(p, false))),
    m("weka.enableAutoRecovery", (0, 1), |s, p| Box::pin(s.set_auto_recovery(p, true))),
    m("weka.getLastExitStatus", (1, 1), |s, p| Box::pin(s.last_exit_status(p))),
    m("weka.getAllProcessStatus", (0, 0), |s, _| Box::pin(s.all_process_status())),
    m(STATUS_ROWS, (0, 0), |s, _| Box::pin(s.all_process_rows())),
    m("weka.startProcess", (1, 2), |s, p| Box::pin(s.start_process(p, true))),
    m("weka.stopAllIoNodes", (0, 1), |s, p| Box::pin(s.stop_all_io_nodes(p))),
];

/// Our own namespace, listed by `system.listMethods` beside supervisor's.
const WEKA: &[(&str, &[&str], &str)] = &[
    (
        "weka.disableAutoRecovery",
        &["boolean", "string"],
        "Hold off automatic restarts (nestable). With the name of the calling process, the hold is released when that process exits.\n\n@param string holder (optional)\n@return boolean result",
    ),
    (
        "weka.enableAutoRecovery",
        &["boolean", "string"],
        "Undo one disableAutoRecovery (never above on); a holder releases its own hold.\n\n@param string holder (optional)\n@return boolean result",
    ),
    (
        "weka.getLastExitStatus",
        &["int", "string"],
        "The status of a process's last exit, also within startsecs (-1 for a signal; false before any).\n\n@param string name\n@return int result",
    ),
    (
        "weka.getAllProcessStatus",
        &["array"],
        "getAllProcessInfo's records plus restart and exit counts, BACKOFF time and output bytes.\n\n@return array result",
    ),
    (
        STATUS_ROWS,
        &["array"],
        "getAllProcessInfo's name, group, state, statename, pid and description only (what supervisorctl status prints).\n\n@return array result",
    ),
    (
        "weka.getAutoRecovery",
        &["struct"],
        "Whether automatic restarts are on, and the count.\n\n@return struct result",
    ),
    (
        "weka.startProcess",
        &["boolean", "string", "boolean"],
        "Start a process; true when it is already STARTING or RUNNING.\n\n@param string name\n@param boolean wait\n@return boolean result",
    ),
    (
        "weka.stopAllIoNodes",
        &["array", "boolean"],
        "Stop every io_node=true process with autorecovery held off.\n\n@param boolean wait\n@return array result",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_name_and_number() {
        assert_eq!(parse_signal("HUP"), Some(1));
        assert_eq!(parse_signal("sighup"), Some(1));
        assert_eq!(parse_signal("SIGKILL"), Some(9));
        assert_eq!(parse_signal("15"), Some(15));
        assert_eq!(parse_signal("usr2"), Some(12));
        assert_eq!(parse_signal("FOO"), None);
        assert_eq!(parse_signal("0"), None);
        assert_eq!(parse_signal("999"), None);
    }

    #[test]
    fn the_table_answers_exactly_the_documented_methods_once_each() {
        let mut answered: Vec<&str> = TABLE.iter().map(|m| m.name).collect();
        answered.sort_unstable();
        let before = answered.len();
        answered.dedup();
        assert_eq!(answered.len(), before, "a method is in the table twice");
        let mut documented: Vec<&str> =
            METHODS.iter().chain(WEKA.iter()).map(|(n, _, _)| *n).collect();
        documented.sort_unstable();
        assert_eq!(answered, documented);
    }

    #[test]
    fn status_rows_are_written_as_their_values_encode() {
        let dir = tempfile::Builder::new().prefix("rows").tempdir_in("/tmp").expect("dir");
        let conf = dir.path().join("c.conf");
        std::fs::write(
            &conf,
            "[supervisord]\nlogfile=/dev/null\n[program:a]\ncommand=a\n\
             [program:b]\ncommand=b\n[group:g<&>]\nprograms=b\n",
        )
        .expect("write");
        let ctx = crate::config::LoadContext {
            env: Vec::new(),
            cwd: dir.path().to_path_buf(),
            host_node_name: "n".into(),
        };
        let cfg =
            crate::config::load(&conf, &crate::config::Overrides::default(), &ctx).expect("config");
        let configs: Vec<_> = cfg.groups.iter().flat_map(|g| g.processes.iter().cloned()).collect();
        assert_eq!(configs.len(), 2);
        let state = |n| crate::procsup::ProcessState::from_code(n).expect("state");
        let rows: Vec<StatusRow> = configs
            .into_iter()
            .zip([(20, 4242, "pid 4242, uptime 1:02:03"), (100, 0, "q\"uote\nnl \u{1} été")])
            .map(|(config, (s, pid, d))| StatusRow {
                config,
                state: state(s),
                pid,
                description: d.into(),
            })
            .collect();
        let mut want = String::new();
        super::super::jsonrpc::write_value(
            &mut want,
            &Value::Array(rows.iter().map(status_row_value).collect()),
        );
        assert_eq!(status_rows_json(&rows), want);
        assert!(want.contains(r#""group":"g<&>""#), "{want}");
        assert_eq!(status_rows_json(&[]), "[]");
        let parsed: serde_json::Value = serde_json::from_str(&want).expect("valid JSON");
        assert_eq!(parsed[1]["description"], "q\"uote\nnl \u{1} été");
    }

    #[test]
    fn params_arity_and_types() {
        assert!(Params::new(vec![], 1, 2).is_err());
        assert!(Params::new(vec![Value::Int(1); 3], 1, 2).is_err());
        let p = Params::new(vec![Value::str("a"), Value::Int(0)], 1, 2).expect("ok");
        assert_eq!(p.str(0), Ok("a".into()));
        assert_eq!(p.bool_or(1, true), Ok(false));
        assert_eq!(p.bool_or(2, true), Ok(true));
        assert!(p.str(1).is_err());
    }
}
