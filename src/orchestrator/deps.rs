//! `depends_on`: starts that wait for dependencies, dependencies started first, waiting
//! starts that fail when a dependency can no longer be met, and stops that stop dependents
//! first. A waiting process is STOPPED (or EXITED, FATAL) in the state machine and shown
//! as STARTING with `waiting for NAME:CONDITION`; whether a dependency is met is
//! `procsup::dependency_status`, fed with what the table knows.

use super::Orchestrator;
use super::names;
use super::shell::Shell;
use crate::config::{DependencyCondition, DependencyGraph, ProcessKey};
use crate::procsup::{
    DepStatus, DepView, Input, Need, ProcessState, StartOutcome, WaitOutcome, dependency_status,
};

/// What the orchestrator remembers about a process for the lifecycle options.
#[derive(Debug, Default)]
pub(super) struct Life {
    /// A start is waiting for dependencies: what it waits for (the first unmet one).
    pub(super) waiting: Option<Box<str>>,
    /// Spawned since it was last started.
    pub(super) spawned: bool,
    /// Its last exit since it was last started had an expected code.
    pub(super) completed: bool,
    /// Its start failed because a dependency can never be met (an essential process
    /// that never ran).
    pub(super) dependency_failed: bool,
    /// A stop waits for its dependents to stop first.
    pub(super) stop_deferred: bool,
    /// Its checks' state, out of line: most processes have no checks.
    checks: Option<Box<CheckLife>>,
}

/// What the orchestrator remembers about a process's readiness and health checks.
#[derive(Debug, Default)]
pub(super) struct CheckLife {
    /// Consecutive failed health attempts and the last reason.
    pub(super) health_failures: u32,
    pub(super) health_reason: Option<String>,
    /// The generation of its running checks (results of older ones are stale).
    pub(super) generation: u64,
}

/// The check state of a process that never ran a check.
static NO_CHECKS: CheckLife = CheckLife { health_failures: 0, health_reason: None, generation: 0 };

impl Life {
    pub(super) fn checks(&self) -> &CheckLife {
        self.checks.as_deref().unwrap_or(&NO_CHECKS)
    }

    pub(super) fn checks_mut(&mut self) -> &mut CheckLife {
        self.checks.get_or_insert_with(Box::default)
    }
}

/// Whether one dependency is met, waiting, or failed (with the text for status / FATAL).
enum Verdict {
    Met,
    Waiting(String),
    Failed(String),
}

fn need_of(c: DependencyCondition) -> Need {
    match c {
        DependencyCondition::Running => Need::Running,
        DependencyCondition::Completed => Need::Completed,
        DependencyCondition::Started => Need::Started,
    }
}

/// `web`, or `g:web` for a process of a group with another name.
fn label(k: &ProcessKey) -> String {
    if k.group == k.name { k.name.clone() } else { names::key(&k.group, &k.name) }
}

impl<S: Shell> Orchestrator<S> {
    /// The dependency graph of the active groups, rebuilt when groups come and go.
    pub(super) fn rebuild_graph(&mut self) {
        let uses = self
            .groups
            .values()
            .flat_map(|g| g.procs.values())
            .any(|e| !e.config.lifecycle().depends_on.is_empty());
        self.dependents_of.clear();
        self.dep_rank.clear();
        if !uses {
            self.graph = DependencyGraph::default();
            return;
        }
        let mut cfg = (*self.config).clone();
        cfg.groups = self
            .group_order()
            .iter()
            .filter_map(|g| self.groups.get(g))
            .map(|g| {
                // The entries hold the process configs (the group keeps no copy).
                let mut gc = g.config.clone();
                gc.processes = Self::proc_order(g)
                    .iter()
                    .filter_map(|n| g.procs.get(n))
                    .map(|e| e.config.clone())
                    .collect();
                gc
            })
            .collect();
        self.graph = DependencyGraph::new(&cfg);
        let order = self.graph.start_order();
        for k in &order {
            for d in self.graph.dependencies(k) {
                self.dependents_of.entry(d).or_default().push(k.clone());
            }
        }
        self.dep_rank = order.into_iter().enumerate().map(|(i, k)| (k, i)).collect();
    }

    /// Where a process comes in the dependency start order (for sorting a boot class).
    pub(super) fn dep_rank(&self, g: &str, p: &str) -> Option<usize> {
        self.dep_rank.get(&Self::key(g, p)).copied()
    }

    /// Everything that depends on `g:p`, transitively, each after its own dependents
    /// (an order to stop them in); `g:p` itself is not included.
    pub(super) fn dependents_to_stop(&self, g: &str, p: &str) -> Vec<ProcessKey> {
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let root = Self::key(g, p);
        seen.insert(root.clone());
        // Iterative post-order: (node, index of the next child to visit).
        let mut stack: Vec<(ProcessKey, usize)> = vec![(root, 0)];
        while let Some((node, i)) = stack.last_mut() {
            let next = self.dependents_of.get(node).and_then(|c| c.get(*i)).cloned();
            *i += 1;
            match next {
                Some(c) => {
                    if seen.insert(c.clone()) {
                        stack.push((c, 0));
                    }
                }
                None => {
                    if let Some((done, _)) = stack.pop()
                        && !stack.is_empty()
                    {
                        out.push(done);
                    }
                }
            }
        }
        out
    }

    /// Whether any process has `depends_on`.
    pub(super) fn uses_deps(&self) -> bool {
        self.graph != DependencyGraph::default()
    }

    fn key(g: &str, p: &str) -> ProcessKey {
        ProcessKey { group: g.to_string(), name: p.to_string() }
    }

    /// Whether a start of `k` is coming without anyone asking. Only asked of a process
    /// that is down (the queue scan is linear).
    fn start_coming(&self, k: &ProcessKey) -> bool {
        let Some(e) = self.entry(&k.group, &k.name) else { return false };
        e.life.waiting.is_some()
            || e.proc.next_restart().is_some()
            || self.start_queue.iter().flatten().any(|(g, p)| *g == k.group && *p == k.name)
    }

    fn dep_view(&self, k: &ProcessKey) -> Option<DepView> {
        let e = self.entry(&k.group, &k.name)?;
        let state = e.proc.state();
        let down = !matches!(
            state,
            ProcessState::Starting | ProcessState::Running | ProcessState::Backoff
        );
        Some(DepView {
            state,
            spawned: e.life.spawned,
            completed: e.life.completed,
            start_coming: down && self.start_coming(k),
        })
    }

    /// Whether every dependency of a process is met; the first unmet one decides.
    fn verdict(&self, g: &str, p: &str) -> Verdict {
        let Some(e) = self.entry(g, p) else { return Verdict::Met };
        let mut waiting = None;
        for d in &e.config.lifecycle().depends_on {
            let need = need_of(d.condition);
            for k in &d.processes {
                let Some(view) = self.dep_view(k) else { continue };
                match dependency_status(need, view) {
                    DepStatus::Met => {}
                    DepStatus::Waiting => {
                        if waiting.is_none() {
                            waiting = Some(format!("waiting for {}:{}", d.name, d.condition));
                        }
                    }
                    DepStatus::Failed => {
                        let why = match view.state {
                            ProcessState::Fatal => "is FATAL",
                            ProcessState::Exited => "exited unexpectedly",
                            ProcessState::Stopped => "is stopped",
                            _ => "can no longer be met",
                        };
                        return Verdict::Failed(format!("dependency {} {why}", label(k)));
                    }
                }
            }
        }
        waiting.map_or(Verdict::Met, Verdict::Waiting)
    }

    /// Starts a process whose start was asked for (boot, a request, a dependent's start):
    /// spawned now when its dependencies are met, else waiting, or FATAL when they can no
    /// longer be met.
    pub(super) fn begin_start(&mut self, g: &str, p: &str) {
        let stopping = |state| state == ProcessState::Stopping;
        if self.entry(g, p).is_some_and(|e| stopping(e.proc.state()) && e.life.waiting.is_some()) {
            // A dependency a dependent's start asked for: started once its stop is over.
            return;
        }
        match self.verdict(g, p) {
            Verdict::Met => {
                if let Some(e) = self.entry_mut(g, p) {
                    e.life.waiting = None;
                    e.life.spawned = false;
                    e.life.completed = false;
                    e.life.dependency_failed = false;
                }
                self.feed(g, p, Input::Start);
            }
            Verdict::Waiting(what) => self.set_waiting(g, p, what),
            Verdict::Failed(reason) => self.fail_start(g, p, reason),
        }
    }

    fn set_waiting(&mut self, g: &str, p: &str, what: String) {
        let Some(e) = self.entry_mut(g, p) else { return };
        if e.life.waiting.as_deref() == Some(what.as_str()) {
            return;
        }
        let name = e.config.name.clone();
        let line = crate::procsup::LogLine::Waiting {
            name,
            what: what.trim_start_matches("waiting for ").to_string(),
        };
        e.life.waiting = Some(what.into());
        self.log.log(line.level(), line.to_string());
        self.deps_dirty = true;
    }

    fn fail_start(&mut self, g: &str, p: &str, reason: String) {
        let Some(e) = self.entry_mut(g, p) else { return };
        e.life.waiting = None;
        e.life.dependency_failed = true;
        let id = e.id;
        self.feed(g, p, Input::DependencyFailed { reason });
        self.resolve(id, WaitOutcome::Start(StartOutcome::AbnormalTermination));
        self.resolve_spawned(id, Err(()));
        self.deps_dirty = true;
    }

    /// A waiting start given up (a stop, the daemon's shutdown): its waiters are answered.
    pub(super) fn cancel_wait(&mut self, g: &str, p: &str) {
        let Some(e) = self.entry_mut(g, p) else { return };
        if e.life.waiting.take().is_none() {
            return;
        }
        let id = e.id;
        self.resolve(id, WaitOutcome::Start(StartOutcome::AbnormalTermination));
        self.resolve_spawned(id, Err(()));
        self.deps_dirty = true;
    }

    /// Every waiting start is dropped (shutdown).
    pub(super) fn cancel_all_waits(&mut self) {
        for (g, p) in self.all_in_order() {
            self.cancel_wait(&g, &p);
        }
    }

    /// Whether a process waits for its dependencies.
    pub(super) fn is_waiting(&self, g: &str, p: &str) -> bool {
        self.entry(g, p).is_some_and(|e| e.life.waiting.is_some())
    }

    /// Starting `g:p` first starts what it depends on that is not up, transitively: a
    /// `completed` dependency that completed is not run again.
    pub(super) fn start_dependencies(&mut self, g: &str, p: &str) {
        for k in self.graph.start_first(&Self::key(g, p)) {
            let Some(e) = self.entry(&k.group, &k.name) else { continue };
            let state = e.proc.state();
            // A dependency still stopping is started again once it is down.
            let up = matches!(
                state,
                ProcessState::Starting | ProcessState::Running | ProcessState::Backoff
            );
            let done = state == ProcessState::Exited && e.life.completed;
            if up || done || e.life.waiting.is_some() || state == ProcessState::Unknown {
                continue;
            }
            if state == ProcessState::Stopping {
                self.set_waiting(&k.group, &k.name, "waiting for its stop".to_string());
                continue;
            }
            self.begin_start(&k.group, &k.name);
        }
    }

    /// The loop's follow-up after a state change: waiting starts whose dependencies are
    /// now met are spawned, those that can no longer be met fail, and stops deferred for
    /// dependents go ahead once those are down.
    pub(super) fn settle_dependencies(&mut self) {
        let mut rounds = 0;
        while self.deps_dirty && rounds < 1000 {
            self.deps_dirty = false;
            rounds += 1;
            for (g, p) in self.all_in_order() {
                let Some(e) = self.entry(&g, &p) else { continue };
                if e.life.waiting.is_some() {
                    self.begin_start(&g, &p);
                } else if e.life.stop_deferred && self.dependents_down(&g, &p) {
                    if let Some(e) = self.entry_mut(&g, &p) {
                        e.life.stop_deferred = false;
                    }
                    if self.entry(&g, &p).is_some_and(|e| e.proc.check_stop().is_ok()) {
                        self.feed(&g, &p, Input::Stop);
                    }
                }
            }
        }
    }

    /// Whether everything that depends on `g:p` (transitively) is down.
    pub(super) fn dependents_down(&self, g: &str, p: &str) -> bool {
        self.dependents_to_stop(g, p).iter().all(|k| {
            self.entry(&k.group, &k.name)
                .is_none_or(|e| e.proc.state().is_stopped() && e.life.waiting.is_none())
        })
    }

    /// Stopping `g:p` first stops its running dependents, transitively (and gives up
    /// their waiting starts). True when it may be stopped now; false when it must wait
    /// for them (it is marked to be stopped once they are down).
    pub(super) fn stop_dependents(&mut self, g: &str, p: &str) -> bool {
        let first = self.dependents_to_stop(g, p);
        if first.is_empty() {
            return true;
        }
        for k in &first {
            self.cancel_wait(&k.group, &k.name);
            if let Some(e) = self.entry_mut(&k.group, &k.name) {
                e.life.stop_deferred = false;
            }
        }
        // In stop order: each after its own dependents.
        for k in &first {
            if self.dependents_down(&k.group, &k.name) {
                if self.entry(&k.group, &k.name).is_some_and(|e| e.proc.check_stop().is_ok()) {
                    self.feed(&k.group, &k.name, Input::Stop);
                }
            } else if let Some(e) = self.entry_mut(&k.group, &k.name)
                && e.proc.check_stop().is_ok()
            {
                e.life.stop_deferred = true;
            }
        }
        if self.dependents_down(g, p) {
            return true;
        }
        if let Some(e) = self.entry_mut(g, p) {
            e.life.stop_deferred = true;
        }
        false
    }

    /// Bookkeeping after a state change for `depends_on`.
    pub(super) fn track_dependency_facts(
        &mut self,
        g: &str,
        p: &str,
        change: &crate::procsup::StateChange,
    ) {
        if let Some(e) = self.entry_mut(g, p) {
            match change.to {
                ProcessState::Starting => e.life.completed = false,
                ProcessState::Exited => e.life.completed = change.expected,
                _ => {}
            }
        }
        // Without `depends_on` nothing waits on anyone: no walk of the table per change.
        self.deps_dirty |= self.uses_deps();
    }
}
