//! The container-native lifecycle options of `[program:x]` (ours; Python's supervisord
//! ignores unknown options, so configs using them still load there): dependencies,
//! readiness and health checks, essential programs, exponential restart backoff and
//! restart budgets. This module owns their typed model, their value parsers and the
//! load-time resolution of `depends_on` names to processes (with cycle detection).

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use super::diag::{ConfigError, Loc};
use super::model::GroupConfig;

/// A process's lifecycle options; `Lifecycle::default()` is a program that uses none.
#[derive(Clone, Debug, PartialEq)]
pub struct Lifecycle {
    /// `depends_on`: what must hold before this process is started.
    pub depends_on: Vec<Dependency>,
    /// `ready_check` and its timings: when a RUNNING process counts as ready.
    pub ready_check: Option<ReadyCheck>,
    /// `health_check` and its timings: the liveness probe of a ready process.
    pub health_check: Option<HealthCheck>,
    /// `essential`: when this process ends for good, the daemon shuts down with its code.
    pub essential: bool,
    /// `restart_backoff_initial` / `restart_backoff_max`.
    pub restart_backoff: RestartBackoff,
    /// `restart_limit = N/SECONDS`.
    pub restart_limit: Option<RestartLimit>,
}

impl Lifecycle {
    /// A program that uses none of the options (`Lifecycle::default()`, usable in a const).
    pub const NONE: Lifecycle = Lifecycle {
        depends_on: Vec::new(),
        ready_check: None,
        health_check: None,
        essential: false,
        restart_backoff: RestartBackoff::DEFAULT,
        restart_limit: None,
    };

    /// The options that are set, as `option = value` in their canonical spelling, for
    /// `supervisord --check`. Empty for a program that uses none of them.
    pub fn describe(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.depends_on.is_empty() {
            let deps: Vec<String> = self.depends_on.iter().map(ToString::to_string).collect();
            out.push(format!("depends_on = {}", deps.join(", ")));
        }
        if let Some(r) = &self.ready_check {
            out.push(format!(
                "ready_check = {} (timeout {}, interval {}, attempt timeout {})",
                r.form,
                secs(r.timeout),
                secs(r.interval),
                secs(r.attempt_timeout)
            ));
        }
        if let Some(h) = &self.health_check {
            out.push(format!(
                "health_check = {} (interval {}, timeout {}, retries {})",
                h.form,
                secs(h.interval),
                secs(h.timeout),
                h.retries
            ));
        }
        if self.essential {
            out.push("essential = true".to_string());
        }
        let b = &self.restart_backoff;
        if let Some(max) = b.max {
            out.push(format!("restart_backoff = {} doubling up to {}", secs(b.initial), secs(max)));
        }
        if let Some(l) = &self.restart_limit {
            out.push(format!("restart_limit = {}/{}", l.restarts, secs(l.window)));
        }
        out
    }
}

/// `1s`, `0.5s`: a duration as written in the config.
fn secs(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

/// One `depends_on` entry, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dependency {
    /// The name as written: a program, a group, or `group:process`.
    pub name: String,
    /// What the processes must have reached.
    pub condition: DependencyCondition,
    /// The concrete processes the name stands for (every process of a group or of a
    /// `numprocs` program), in config order. Filled in when the whole config is loaded.
    pub processes: Vec<ProcessKey>,
}

impl fmt::Display for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, self.condition)
    }
}

/// A process by its table key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProcessKey {
    /// Group name.
    pub group: String,
    /// Process name.
    pub name: String,
}

/// `group:name`, the key supervisorctl and the process table use.
impl fmt::Display for ProcessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.group, self.name)
    }
}

/// The `CONDITION` of `depends_on = NAME[:CONDITION]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DependencyCondition {
    /// `running` (the default): RUNNING, and ready when it has a `ready_check`.
    Running,
    /// `completed`: exited with one of its `exitcodes` (a one-shot job that succeeded).
    Completed,
    /// `started`: spawned (STARTING or later), without waiting for RUNNING.
    Started,
}

impl DependencyCondition {
    const ALL: [(&'static str, DependencyCondition); 3] = [
        ("running", DependencyCondition::Running),
        ("completed", DependencyCondition::Completed),
        ("started", DependencyCondition::Started),
    ];

    fn parse(word: &str) -> Option<DependencyCondition> {
        Self::ALL.iter().find(|(w, _)| w.eq_ignore_ascii_case(word)).map(|(_, c)| *c)
    }
}

impl fmt::Display for DependencyCondition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = Self::ALL.iter().find(|(_, c)| c == self).map_or("running", |(w, _)| w);
        f.write_str(word)
    }
}

/// One check, as `ready_check=` and `health_check=` spell it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckForm {
    /// `tcp:HOST:PORT`: a TCP connection succeeds.
    Tcp {
        /// Host name or address (IPv6 without brackets).
        host: String,
        /// Port.
        port: u16,
    },
    /// `http://HOST[:PORT][/PATH]`: a GET answers 2xx or 3xx.
    Http {
        /// Host name or address (IPv6 without brackets).
        host: String,
        /// Port, default 80.
        port: u16,
        /// Path and query, default `/`.
        path: String,
    },
    /// `exec:COMMAND`: the command (split like `command=`) exits 0.
    Exec {
        /// The command line.
        command: String,
    },
    /// `log:REGEX`: a line of the process's output matches (readiness only).
    Log {
        /// The regular expression (validated at load).
        pattern: String,
    },
    /// `notify`: the process sends `READY=1` to `$NOTIFY_SOCKET` (readiness only).
    Notify,
}

impl fmt::Display for CheckForm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bracket = |h: &str| if h.contains(':') { format!("[{h}]") } else { h.to_string() };
        match self {
            CheckForm::Tcp { host, port } => write!(f, "tcp:{}:{port}", bracket(host)),
            CheckForm::Http { host, port, path } => {
                write!(f, "http://{}:{port}{path}", bracket(host))
            }
            CheckForm::Exec { command } => write!(f, "exec:{command}"),
            CheckForm::Log { pattern } => write!(f, "log:{pattern}"),
            CheckForm::Notify => f.write_str("notify"),
        }
    }
}

/// `ready_check` with its timings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadyCheck {
    /// What is checked.
    pub form: CheckForm,
    /// `ready_timeout`, default 60 s: not ready this long after RUNNING is a failed start.
    pub timeout: Duration,
    /// `ready_check_interval`, default 1 s: pause between attempts (`tcp`/`http`/`exec`).
    pub interval: Duration,
    /// `ready_check_timeout`, default 1 s: how long one attempt may take.
    pub attempt_timeout: Duration,
}

/// `health_check` with its timings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthCheck {
    /// What is checked (`tcp`, `http` or `exec`).
    pub form: CheckForm,
    /// `health_check_interval`, default 10 s.
    pub interval: Duration,
    /// `health_check_timeout`, default 1 s: how long one attempt may take.
    pub timeout: Duration,
    /// `health_check_retries`, default 3: consecutive failures that make it unhealthy.
    pub retries: u32,
}

/// Exponential restart backoff. Without `max` the classic linear BACKOFF applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestartBackoff {
    /// `restart_backoff_initial`, default 1 s: the delay after the first failure.
    pub initial: Duration,
    /// `restart_backoff_max`, unset by default: the delay cap, and how long a process
    /// must stay RUNNING for its failure count to reset.
    pub max: Option<Duration>,
}

impl RestartBackoff {
    /// 1 s, linear (no `restart_backoff_max`).
    pub const DEFAULT: RestartBackoff =
        RestartBackoff { initial: Duration::from_secs(1), max: None };
}

impl Default for RestartBackoff {
    fn default() -> RestartBackoff {
        RestartBackoff::DEFAULT
    }
}

impl Default for Lifecycle {
    fn default() -> Lifecycle {
        Lifecycle::NONE
    }
}

/// `restart_limit = N/SECONDS`: more than `restarts` automatic restarts within `window`
/// make the process FATAL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestartLimit {
    /// N.
    pub restarts: u32,
    /// SECONDS.
    pub window: Duration,
}

// ---------------------------------------------------------------------------------------
// Value parsers: each returns the reason a value is wrong, which the loader turns into
// `invalid value '<v>': <reason>` at the option's file and line.

/// A positive number of seconds, fractions allowed (`0.5`).
pub fn positive_seconds(v: &str) -> Result<Duration, String> {
    let t = v.trim();
    let why = || "expected a number of seconds > 0, such as 1 or 0.5".to_string();
    let digits_ok = !t.is_empty()
        && t.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && t.bytes().filter(|&b| b == b'.').count() <= 1
        && t.bytes().any(|b| b.is_ascii_digit());
    if !digits_ok {
        return Err(why());
    }
    let f: f64 = t.parse().map_err(|_| why())?;
    // Ten years is far beyond any sensible delay and keeps Duration arithmetic safe.
    if !(f > 0.0 && f <= 315_360_000.0) {
        return Err(why());
    }
    Ok(Duration::from_secs_f64(f))
}

/// `depends_on`: `NAME[:CONDITION]` entries separated by commas. A trailing `:WORD` is
/// the condition only when WORD is one, so `group:process` works without a condition.
pub fn depends_on(v: &str) -> Result<Vec<(String, DependencyCondition)>, String> {
    let mut out: Vec<(String, DependencyCondition)> = Vec::new();
    for entry in v.split(',').map(str::trim) {
        if entry.is_empty() {
            return Err("an entry is empty: expected NAME[:CONDITION], comma separated".into());
        }
        let (name, condition) = match entry.rsplit_once(':') {
            Some((name, word)) => match DependencyCondition::parse(word.trim()) {
                Some(c) => (name.trim(), c),
                None => (entry, DependencyCondition::Running),
            },
            None => (entry, DependencyCondition::Running),
        };
        let parts: Vec<&str> = name.split(':').collect();
        let bad_part =
            |p: &&str| p.is_empty() || p.contains(char::is_whitespace) || p.contains('/');
        if parts.len() > 2 || parts.iter().any(bad_part) {
            return Err(format!(
                "'{entry}' is not NAME[:CONDITION]: NAME is a program, a group or group:process, and CONDITION one of running, completed, started"
            ));
        }
        if out.iter().any(|(n, _)| n == name) {
            return Err(format!("'{name}' is listed twice"));
        }
        out.push((name.to_string(), condition));
    }
    Ok(out)
}

/// Which check forms an option accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckUse {
    /// `ready_check`: every form.
    Ready,
    /// `health_check`: not `log:` nor `notify`, which say something once, not repeatedly.
    Health,
}

/// `ready_check` / `health_check`.
pub fn check_form(v: &str, usage: CheckUse) -> Result<CheckForm, String> {
    let t = v.trim();
    let forms = match usage {
        CheckUse::Ready => {
            "tcp:HOST:PORT, http://HOST:PORT/PATH, exec:COMMAND, log:REGEX or notify"
        }
        CheckUse::Health => "tcp:HOST:PORT, http://HOST:PORT/PATH or exec:COMMAND",
    };
    let only_ready = |what: &str| {
        Err(format!("{what} can only be a ready_check; a health_check is one of {forms}"))
    };
    if let Some(rest) = t.strip_prefix("tcp:") {
        let (host, port) = host_port(rest).ok_or_else(|| {
            "expected tcp:HOST:PORT, such as tcp:127.0.0.1:5432 or tcp:[::1]:80".to_string()
        })?;
        let port = port.ok_or_else(|| "tcp: needs a port, as in tcp:127.0.0.1:5432".to_string())?;
        return Ok(CheckForm::Tcp { host, port });
    }
    if let Some(rest) = t.strip_prefix("http://") {
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, "/"),
        };
        let (host, port) = host_port(authority).ok_or_else(|| {
            "expected http://HOST[:PORT]/PATH, such as http://127.0.0.1:8080/ready".to_string()
        })?;
        if path.contains(char::is_whitespace) || path.contains('#') {
            return Err("the path may not contain whitespace or '#'".into());
        }
        return Ok(CheckForm::Http { host, port: port.unwrap_or(80), path: path.to_string() });
    }
    if t.starts_with("https://") {
        return Err(
            "https is not supported: check the plain-http port, or use exec: with a client".into(),
        );
    }
    if let Some(command) = t.strip_prefix("exec:") {
        let argv = crate::pytext::shlex_split(command)
            .map_err(|e| format!("the command cannot be split: {e}"))?;
        if argv.is_empty() {
            return Err("exec: needs a command, as in exec:pg_isready -q".into());
        }
        return Ok(CheckForm::Exec { command: command.trim().to_string() });
    }
    if let Some(pattern) = v.trim_start().strip_prefix("log:") {
        if usage == CheckUse::Health {
            return only_ready("log:");
        }
        if pattern.is_empty() {
            return Err("log: needs a regular expression, as in log:listening on".into());
        }
        regex::Regex::new(pattern).map_err(|e| {
            let first = e.to_string();
            let last = first.lines().last().unwrap_or_default().trim().to_string();
            format!("not a valid regular expression: {last}")
        })?;
        return Ok(CheckForm::Log { pattern: pattern.to_string() });
    }
    if t == "notify" {
        if usage == CheckUse::Health {
            return only_ready("notify");
        }
        return Ok(CheckForm::Notify);
    }
    Err(format!("expected {forms}"))
}

/// `HOST[:PORT]` or `[V6][:PORT]`; None when malformed.
fn host_port(s: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        match after {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':')?)),
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let host_ok = !host.is_empty()
        && !host.contains(|c: char| c.is_whitespace() || c == '/' || c == '@')
        && (s.starts_with('[') || !host.contains(':'));
    if !host_ok {
        return None;
    }
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse::<u16>().ok().filter(|&n| n > 0)?)
        }
        Some(_) => return None,
    };
    Some((host.to_string(), port))
}

/// `restart_limit = N/SECONDS`.
pub fn restart_limit(v: &str) -> Result<RestartLimit, String> {
    let why = || "expected N/SECONDS, such as 5/60 (at most 5 automatic restarts in 60 seconds)";
    let (n, s) = v.trim().split_once('/').ok_or_else(|| why().to_string())?;
    let n = n.trim();
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return Err(why().to_string());
    }
    let restarts = n.parse::<u32>().map_err(|_| why().to_string())?;
    let window = positive_seconds(s).map_err(|_| why().to_string())?;
    Ok(RestartLimit { restarts, window })
}

// ---------------------------------------------------------------------------------------
// Resolution

/// A process's `depends_on` as parsed, waiting for the whole config to resolve it.
#[derive(Clone, Debug)]
pub(crate) struct PendingDeps {
    pub key: ProcessKey,
    pub loc: Loc,
    pub raw: String,
}

/// Resolves every `depends_on` name to processes and rejects unknown names and cycles.
/// `pending` holds the location of each process's `depends_on` option.
pub(crate) fn resolve(groups: &mut [GroupConfig], pending: &[PendingDeps]) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    // Name → processes: groups, programs (all their numprocs, wherever they are grouped),
    // and group:process.
    let mut by_group: HashMap<&str, Vec<ProcessKey>> = HashMap::new();
    let mut by_program: HashMap<&str, Vec<ProcessKey>> = HashMap::new();
    for g in groups.iter() {
        for p in &g.processes {
            let key = ProcessKey { group: g.name.clone(), name: p.name.clone() };
            by_group.entry(&g.name).or_default().push(key.clone());
            by_program.entry(&p.program).or_default().push(key);
        }
    }
    let mut resolved: HashMap<ProcessKey, Vec<Vec<ProcessKey>>> = HashMap::new();
    for pend in pending {
        let mut lists = Vec::new();
        let Some(g) = groups.iter().find(|g| g.name == pend.key.group) else { continue };
        let Some(p) = g.processes.iter().find(|p| p.name == pend.key.name) else { continue };
        for dep in &p.lifecycle().depends_on {
            let found = match dep.name.split_once(':') {
                Some((group, process)) => by_group
                    .get(group)
                    .map(|ks| ks.iter().filter(|k| k.name == process).cloned().collect())
                    .unwrap_or_default(),
                None => {
                    let from_group = by_group.get(dep.name.as_str());
                    let from_program = by_program.get(dep.name.as_str());
                    match (from_group, from_program) {
                        (Some(a), Some(b)) if a != b => {
                            errors.push(pend.loc.clone().error(format!(
                                "invalid value '{}': '{}' is both a group and a program in another group; write group:process to say which",
                                pend.raw, dep.name
                            )));
                            continue;
                        }
                        (Some(a), _) => a.clone(),
                        (None, Some(b)) => b.clone(),
                        (None, None) => Vec::new(),
                    }
                }
            };
            if found.is_empty() {
                errors.push(pend.loc.clone().error(format!(
                    "invalid value '{}': '{}' names no program, group or group:process in this config",
                    pend.raw, dep.name
                )));
            }
            lists.push(found);
        }
        resolved.insert(pend.key.clone(), lists);
    }
    for g in groups.iter_mut() {
        let gname = g.name.clone();
        for p in &mut g.processes {
            let key = ProcessKey { group: gname.clone(), name: p.name.clone() };
            if let Some(lists) = resolved.remove(&key) {
                // The builder's own copy: no other holder yet, so nothing is cloned.
                let p = std::sync::Arc::make_mut(p);
                for (dep, list) in p.lifecycle_mut().depends_on.iter_mut().zip(lists) {
                    dep.processes = list;
                }
            }
        }
    }
    if errors.is_empty() {
        errors.extend(cycles(groups, pending));
    }
    errors
}

/// `web` for a process alone in its group, else `group:process`.
fn short(k: &ProcessKey) -> String {
    if k.group == k.name { k.name.clone() } else { k.to_string() }
}

/// One error per dependency cycle, at the `depends_on` of the cycle's first process in
/// start order, listing it as `a -> b -> a`.
fn cycles(groups: &[GroupConfig], pending: &[PendingDeps]) -> Vec<ConfigError> {
    let mut edges: Vec<(ProcessKey, Vec<ProcessKey>)> = Vec::new();
    for g in groups {
        for p in &g.processes {
            let key = ProcessKey { group: g.name.clone(), name: p.name.clone() };
            let mut to: Vec<ProcessKey> =
                p.lifecycle().depends_on.iter().flat_map(|d| d.processes.iter().cloned()).collect();
            to.dedup();
            edges.push((key, to));
        }
    }
    let index: HashMap<&ProcessKey, usize> =
        edges.iter().enumerate().map(|(i, (k, _))| (k, i)).collect();
    // 0 = unvisited, 1 = on the current path, 2 = done.
    let mut color = vec![0u8; edges.len()];
    let mut errors = Vec::new();
    for start in 0..edges.len() {
        if color.get(start) != Some(&0) {
            continue;
        }
        // Iterative DFS: (node, next edge to follow).
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        if let Some(c) = color.get_mut(start) {
            *c = 1;
        }
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            let targets = edges.get(node).map(|(_, t)| t.as_slice()).unwrap_or_default();
            let Some(target) = targets.get(*next) else {
                if let Some(c) = color.get_mut(node) {
                    *c = 2;
                }
                stack.pop();
                continue;
            };
            *next += 1;
            let Some(&t) = index.get(target) else { continue };
            match color.get(t) {
                Some(0) => {
                    if let Some(c) = color.get_mut(t) {
                        *c = 1;
                    }
                    stack.push((t, 0));
                }
                Some(1) => {
                    let from = stack.iter().position(|&(n, _)| n == t).unwrap_or(0);
                    let cycle: Vec<usize> = stack.iter().skip(from).map(|&(n, _)| n).collect();
                    let names: Vec<String> = cycle
                        .iter()
                        .chain(cycle.first())
                        .filter_map(|&n| edges.get(n).map(|(k, _)| short(k)))
                        .collect();
                    let first = cycle.iter().min().copied().unwrap_or(t);
                    let loc = edges
                        .get(first)
                        .and_then(|(k, _)| pending.iter().find(|p| &p.key == k))
                        .or_else(|| pending.first());
                    if let Some(p) = loc {
                        errors.push(p.loc.clone().error(format!(
                            "invalid value '{}': dependency cycle: {}",
                            p.raw,
                            names.join(" -> ")
                        )));
                    }
                }
                _ => {}
            }
        }
    }
    errors
}

// ---------------------------------------------------------------------------------------
// The dependency graph, for the shell that starts and stops processes

/// The processes' `depends_on` edges, flattened to processes, with the orders the daemon
/// needs: dependencies before dependents to start, dependents before dependencies to stop.
/// Ties keep the config's start order (group priority, name, process priority, name), so
/// a config without `depends_on` orders exactly as before. The loader has rejected cycles.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DependencyGraph {
    /// Every process, in the config's start order.
    order: Vec<ProcessKey>,
    /// Direct dependencies of `order[i]`, as indexes into `order`, without duplicates.
    deps: Vec<Vec<usize>>,
}

impl DependencyGraph {
    /// The graph of a loaded config.
    pub fn new(cfg: &super::model::Config) -> DependencyGraph {
        let order: Vec<ProcessKey> = cfg
            .processes()
            .map(|(g, p)| ProcessKey { group: g.name.clone(), name: p.name.clone() })
            .collect();
        let index: HashMap<&ProcessKey, usize> =
            order.iter().enumerate().map(|(i, k)| (k, i)).collect();
        let deps = cfg
            .processes()
            .map(|(_, p)| {
                let mut d: Vec<usize> = Vec::new();
                for k in p.lifecycle().depends_on.iter().flat_map(|d| &d.processes) {
                    if let Some(&i) = index.get(k)
                        && !d.contains(&i)
                    {
                        d.push(i);
                    }
                }
                d
            })
            .collect();
        DependencyGraph { order, deps }
    }

    fn index(&self, key: &ProcessKey) -> Option<usize> {
        self.order.iter().position(|k| k == key)
    }

    /// The processes `key` depends on directly.
    pub fn dependencies(&self, key: &ProcessKey) -> Vec<ProcessKey> {
        let Some(i) = self.index(key) else { return Vec::new() };
        self.deps.get(i).into_iter().flatten().filter_map(|&j| self.order.get(j).cloned()).collect()
    }

    /// The processes that depend on `key` directly.
    pub fn dependents(&self, key: &ProcessKey) -> Vec<ProcessKey> {
        let Some(i) = self.index(key) else { return Vec::new() };
        self.order
            .iter()
            .zip(&self.deps)
            .filter(|(_, d)| d.contains(&i))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Everything starting `key` must start first, transitively, in an order to start them
    /// (each after its own dependencies); `key` itself is not included.
    pub fn start_first(&self, key: &ProcessKey) -> Vec<ProcessKey> {
        let Some(i) = self.index(key) else { return Vec::new() };
        let mut seen = vec![false; self.order.len()];
        let mut out = Vec::new();
        self.post_order(i, &mut seen, &mut out, |g, n| g.deps.get(n).cloned().unwrap_or_default());
        out.pop(); // `key` itself comes last
        out.into_iter().filter_map(|j| self.order.get(j).cloned()).collect()
    }

    /// Everything stopping `key` must stop first, transitively, in an order to stop them
    /// (each after its own dependents); `key` itself is not included.
    pub fn stop_first(&self, key: &ProcessKey) -> Vec<ProcessKey> {
        let Some(i) = self.index(key) else { return Vec::new() };
        let mut seen = vec![false; self.order.len()];
        let mut out = Vec::new();
        self.post_order(i, &mut seen, &mut out, |g, n| {
            (0..g.order.len()).filter(|&m| g.deps.get(m).is_some_and(|d| d.contains(&n))).collect()
        });
        out.pop();
        out.into_iter().filter_map(|j| self.order.get(j).cloned()).collect()
    }

    /// Every process in an order to start them all: dependencies first, else config order.
    pub fn start_order(&self) -> Vec<ProcessKey> {
        let mut seen = vec![false; self.order.len()];
        let mut out = Vec::new();
        for i in 0..self.order.len() {
            self.post_order(i, &mut seen, &mut out, |g, n| {
                g.deps.get(n).cloned().unwrap_or_default()
            });
        }
        out.into_iter().filter_map(|j| self.order.get(j).cloned()).collect()
    }

    /// Every process in an order to stop them all (shutdown): the reverse of
    /// [`start_order`](Self::start_order), so dependents stop before their dependencies.
    pub fn stop_order(&self) -> Vec<ProcessKey> {
        let mut v = self.start_order();
        v.reverse();
        v
    }

    /// Depth-first post-order from `start` along `next`, skipping what is `seen`. The
    /// graph is acyclic, so the depth is bounded by the number of processes; the walk is
    /// iterative anyway.
    fn post_order(
        &self,
        start: usize,
        seen: &mut [bool],
        out: &mut Vec<usize>,
        next: impl Fn(&DependencyGraph, usize) -> Vec<usize>,
    ) {
        if seen.get(start).copied().unwrap_or(true) {
            return;
        }
        if let Some(s) = seen.get_mut(start) {
            *s = true;
        }
        let mut stack: Vec<(usize, Vec<usize>, usize)> = vec![(start, next(self, start), 0)];
        while let Some((node, children, pos)) = stack.last_mut() {
            match children.get(*pos).copied() {
                Some(c) => {
                    *pos += 1;
                    if !seen.get(c).copied().unwrap_or(true) {
                        if let Some(s) = seen.get_mut(c) {
                            *s = true;
                        }
                        let grand = next(self, c);
                        stack.push((c, grand, 0));
                    }
                }
                None => {
                    out.push(*node);
                    stack.pop();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DependencyCondition::*;

    #[test]
    fn depends_on_entries_and_conditions() {
        let ok = |v: &str| depends_on(v).expect(v);
        assert_eq!(ok("db"), [("db".to_string(), Running)]);
        assert_eq!(
            ok(" cfg:completed , db:started,web:RUNNING"),
            [("cfg".into(), Completed), ("db".into(), Started), ("web".into(), Running)]
        );
        assert_eq!(ok("g:p"), [("g:p".to_string(), Running)]);
        assert_eq!(ok("g:p:completed"), [("g:p".to_string(), Completed)]);
        for bad in ["", "a,,b", "a b", "g:p:q:running", ":running", "a:", "a/b", "a, a:started"] {
            assert!(depends_on(bad).is_err(), "{bad:?} should be rejected");
        }
        assert_eq!(depends_on("a,a:started").unwrap_err(), "'a' is listed twice");
    }

    #[test]
    fn check_forms() {
        let ready = |v: &str| check_form(v, CheckUse::Ready);
        assert_eq!(
            ready("tcp:127.0.0.1:5432"),
            Ok(CheckForm::Tcp { host: "127.0.0.1".into(), port: 5432 })
        );
        assert_eq!(ready("tcp:[::1]:80"), Ok(CheckForm::Tcp { host: "::1".into(), port: 80 }));
        assert_eq!(
            ready("http://localhost:8080/ready?x=1"),
            Ok(CheckForm::Http { host: "localhost".into(), port: 8080, path: "/ready?x=1".into() })
        );
        assert_eq!(
            ready("http://svc"),
            Ok(CheckForm::Http { host: "svc".into(), port: 80, path: "/".into() })
        );
        assert_eq!(
            ready("exec:pg_isready -q"),
            Ok(CheckForm::Exec { command: "pg_isready -q".into() })
        );
        assert_eq!(
            ready("log:listening on \\d+"),
            Ok(CheckForm::Log { pattern: "listening on \\d+".into() })
        );
        assert_eq!(ready(" notify "), Ok(CheckForm::Notify));
        for bad in [
            "tcp:host",
            "tcp::80",
            "tcp:h:0",
            "tcp:h:65536",
            "tcp:h:8x",
            "tcp:::1:80",
            "http://:80/",
            "http://h:80/a b",
            "https://h/",
            "exec:",
            "exec:'unclosed",
            "log:",
            "log:(",
            "notify=1",
            "ping",
        ] {
            assert!(ready(bad).is_err(), "{bad:?} should be rejected");
        }
        let health = |v: &str| check_form(v, CheckUse::Health);
        assert!(
            health("tcp:h:1").is_ok() && health("http://h/").is_ok() && health("exec:true").is_ok()
        );
        assert!(health("notify").unwrap_err().contains("can only be a ready_check"));
        assert!(health("log:x").unwrap_err().contains("can only be a ready_check"));
        assert!(ready("log:(").unwrap_err().starts_with("not a valid regular expression"));
    }

    #[test]
    fn check_forms_display_as_written() {
        for v in ["tcp:h:1", "tcp:[::1]:80", "http://h:8080/r", "exec:true -x", "log:a+", "notify"]
        {
            assert_eq!(check_form(v, CheckUse::Ready).map(|f| f.to_string()).as_deref(), Ok(v));
        }
    }

    #[test]
    fn seconds_and_limits() {
        assert_eq!(positive_seconds("2"), Ok(Duration::from_secs(2)));
        assert_eq!(positive_seconds(" 0.25 "), Ok(Duration::from_millis(250)));
        for bad in ["0", "-1", "", ".", "1e3", "1.2.3", "inf", "NaN", "999999999999"] {
            assert!(positive_seconds(bad).is_err(), "{bad:?} should be rejected");
        }
        assert_eq!(
            restart_limit("5/60"),
            Ok(RestartLimit { restarts: 5, window: Duration::from_secs(60) })
        );
        assert_eq!(
            restart_limit("0/1.5"),
            Ok(RestartLimit { restarts: 0, window: Duration::from_millis(1500) })
        );
        for bad in ["5", "/60", "5/", "-1/60", "5/0", "a/60", "5/60/1"] {
            assert!(restart_limit(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
