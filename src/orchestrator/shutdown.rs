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
        }
    }

    /// Python's ordered shutdown: stop the group with the highest priority that still has
    /// processes up, and only move on once all of them are down. True when all are down.
    pub(super) fn advance_shutdown(&mut self) -> bool {
        let order = self.group_order();
        for g in order.iter().rev() {
            let Some(group) = self.groups.get(g) else { continue };
            let mut members = Self::proc_order(group);
            members.reverse();
            let up: Vec<String> = members
                .into_iter()
                .filter(|p| group.procs.get(p).is_some_and(|e| !e.proc.state().is_stopped()))
                .collect();
            if up.is_empty() {
                continue;
            }
            for p in &up {
                if !self.uses_deps() {
                    self.shut_one(g, p);
                    continue;
                }
                // Dependents (in any group) go first, each once its own are down.
                let mut chain = self.dependents_to_stop(g, p);
                chain.push(crate::config::ProcessKey { group: g.clone(), name: p.clone() });
                for k in chain {
                    if self.dependents_down(&k.group, &k.name) {
                        self.shut_one(&k.group, &k.name);
                    }
                }
            }
            // Feeding may have stopped them at once (BACKOFF → FATAL): look again.
            let still_up = self
                .groups
                .get(g)
                .is_some_and(|grp| grp.procs.values().any(|e| !e.proc.state().is_stopped()));
            if still_up {
                return false;
            }
        }
        true
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
