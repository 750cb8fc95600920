//! The autostart queue: every never-started `autostart=true` process, grouped into classes
//! of equal (group priority, process priority) and started one class after another, the
//! next class once every spawn of the current one has been answered. `autostart_due` is
//! the one place that decides whether an autostart process may start now.

use super::shell::Shell;
use super::{Lifecycle, Orchestrator};
use crate::procsup::ProcessState;
use crate::runner::ProcId;

impl<S: Shell> Orchestrator<S> {
    fn autostart_due(&self, g: &str, p: &str) -> bool {
        self.entry(g, p).is_some_and(|e| e.config.autostart) && self.never_started(g, p)
    }

    fn never_started(&self, g: &str, p: &str) -> bool {
        self.entry(g, p).is_some_and(|e| {
            e.proc.laststart().is_none()
                && e.proc.state() == ProcessState::Stopped
                && e.life.waiting.is_none()
        })
    }

    /// Python's main-loop autostart: every never-started `autostart` process, in start
    /// order, queued by priority class.
    pub(super) fn autostart(&mut self) {
        if self.lifecycle != Lifecycle::Running {
            return;
        }
        // What an autostart process depends on starts with it, even with autostart=false.
        let mut wanted = std::collections::HashSet::new();
        for (g, p) in self.all_in_order() {
            if self.autostart_due(&g, &p) {
                for k in self
                    .graph
                    .start_first(&crate::config::ProcessKey { group: g.clone(), name: p.clone() })
                {
                    wanted.insert((k.group, k.name));
                }
                wanted.insert((g, p));
            }
        }
        let mut last_key = None;
        for (g, p) in self.all_in_order() {
            if !wanted.contains(&(g.clone(), p.clone())) || !self.never_started(&g, &p) {
                continue;
            }
            let key = self.groups.get(&g).and_then(|grp| {
                grp.procs.get(&p).map(|e| (grp.config.priority, e.config.priority))
            });
            match self.start_queue.back_mut() {
                Some(class) if key == last_key => class.push((g, p)),
                _ => self.start_queue.push_back(vec![(g, p)]),
            }
            last_key = key;
        }
        self.next_start_class();
    }

    /// Starts the next autostart class once the current one has been forked.
    fn next_start_class(&mut self) {
        while self.start_inflight.is_empty() && self.lifecycle == Lifecycle::Running {
            let Some(mut class) = self.start_queue.pop_front() else { return };
            if self.uses_deps() {
                // Within a class, dependencies first: a dependent then waits for them.
                class.sort_by_key(|(g, p)| self.dep_rank(g, p));
            }
            for (g, p) in class {
                if !self.never_started(&g, &p) {
                    continue;
                }
                self.begin_start(&g, &p);
                if let Some(e) = self.entry(&g, &p)
                    && e.proc.state() == ProcessState::Starting
                    && e.proc.pid().is_none()
                {
                    self.start_inflight.insert(e.id);
                }
            }
        }
    }

    /// A spawn was answered: the autostart queue may move on.
    pub(super) fn spawn_answered(&mut self, id: ProcId) {
        if self.start_inflight.remove(&id) {
            self.next_start_class();
            if self.start_inflight.is_empty() && self.start_queue.is_empty() {
                // The burst of spawns is over: what it allocated on the way can go back,
                // the in-flight set's table too (a boot of N programs grew it to N).
                self.start_inflight = std::collections::HashSet::new();
                self.start_queue = std::collections::VecDeque::new();
                self.shell.started_all();
            }
        }
    }

    /// Shutdown drops whatever has not been started yet.
    pub(super) fn clear_start_queue(&mut self) {
        self.start_queue.clear();
        self.start_inflight.clear();
    }
}
