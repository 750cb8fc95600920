//! Ordered shutdown (and restart): the group with the highest priority that still has
//! processes up is stopped first, and the next only once all of its processes are down;
//! meanwhile `waiting for … to die` is reported.

use super::shell::Shell;
use super::{Lifecycle, Orchestrator};
use crate::events::Event;
use crate::logio::mainlog::Level;
use crate::procsup::{self, Input, ProcessState};

impl<S: Shell> Orchestrator<S> {
    pub(super) fn begin_stopping(&mut self, restart: bool) {
        if self.lifecycle == Lifecycle::Running {
            self.lifecycle = Lifecycle::Stopping { restart };
            self.bus.publish(Event::supervisor_stopping());
            self.last_die_report = None;
            self.clear_start_queue();
            self.cancel_all_waits();
            let mut order: Vec<(i64, String)> =
                self.groups.values().map(|g| (g.config.priority, g.config.name.clone())).collect();
            order.sort_unstable_by(|a, b| b.cmp(a));
            self.stop_order = order;
            self.stop_cursor = 0;
            self.stop_batch = 0;
        }
    }

    /// Python's ordered shutdown: stop the groups with the highest priority that still have
    /// processes up, and only move on once all of them are down. Groups of one priority stop
    /// together (Python stops them one after the other, a round trip each). True when all
    /// are down. Called after every message: once a batch is told to stop, a call only
    /// looks at the first group of the batch still up (amortised O(1)); with `depends_on`
    /// the whole batch is looked at again, as a stop may wait for its dependents.
    pub(super) fn advance_shutdown(&mut self) -> bool {
        loop {
            while let Some((_, g)) = self.stop_order.get(self.stop_cursor) {
                if self.group_up(g) {
                    break;
                }
                self.stop_cursor += 1;
            }
            if self.stop_cursor < self.stop_batch && !self.uses_deps() {
                return false;
            }
            let Some(&(priority, _)) = self.stop_order.get(self.stop_cursor) else {
                return true;
            };
            let batch: Vec<String> = self.stop_order[self.stop_cursor..]
                .iter()
                .take_while(|(p, _)| *p == priority)
                .map(|(_, g)| g.clone())
                .collect();
            self.stop_batch = self.stop_cursor + batch.len();
            for g in &batch {
                self.stop_group(g);
            }
            // Feeding may have stopped them at once (BACKOFF → FATAL): look again.
            if batch.iter().any(|g| self.group_up(g)) {
                return false;
            }
        }
    }

    fn group_up(&self, g: &str) -> bool {
        self.groups
            .get(g)
            .is_some_and(|grp| grp.procs.values().any(|e| !e.proc.state().is_stopped()))
    }

    /// Tells a group's processes that are up to stop, last in start order first.
    fn stop_group(&mut self, g: &str) {
        let Some(group) = self.groups.get(g) else { return };
        let mut members = Self::proc_order(group);
        members.reverse();
        let up: Vec<String> = members
            .into_iter()
            .filter(|p| group.procs.get(p).is_some_and(|e| !e.proc.state().is_stopped()))
            .collect();
        for p in &up {
            if !self.uses_deps() {
                self.shut_one(g, p);
                continue;
            }
            // Dependents (in any group) go first, each once its own are down.
            let mut chain = self.dependents_to_stop(g, p);
            chain.push(crate::config::ProcessKey { group: g.to_owned(), name: p.clone() });
            for k in chain {
                if self.dependents_down(&k.group, &k.name) {
                    self.shut_one(&k.group, &k.name);
                }
            }
        }
    }

    fn shut_one(&mut self, g: &str, p: &str) {
        let state = self.entry(g, p).map(|e| e.proc.state());
        if matches!(
            state,
            Some(ProcessState::Starting | ProcessState::Running | ProcessState::Backoff)
        ) {
            self.feed(g, p, Input::Shutdown);
        }
    }

    pub(super) fn report_waiting_to_die(&mut self) {
        self.last_die_report = Some(self.shell.now());
        // In start order, as Python walks its groups and their processes.
        let names: Vec<String> = self
            .all_in_order()
            .into_iter()
            .filter_map(|(g, p)| self.entry(&g, &p))
            .filter(|e| !e.proc.state().is_stopped())
            .map(|e| e.config.name.clone())
            .collect();
        if !names.is_empty() {
            let line = procsup::LogLine::WaitingToDie { names };
            self.log.log(line.level(), line.to_string());
            if self.log.enabled(Level::Blather) {
                for (g, p) in self.all_in_order() {
                    if let Some(e) = self.entry(&g, &p).filter(|e| !e.proc.state().is_stopped()) {
                        let line = format!("{} state: {}", e.config.name, e.proc.state());
                        self.log.log(Level::Blather, line);
                    }
                }
            }
        }
    }
}
