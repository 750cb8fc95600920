//! Config changes at run time: `reloadConfig` compares a newly read config with the
//! active groups (added / changed / removed), `addProcessGroup` creates a group from it and
//! autostarts its processes, `removeProcessGroup` retires a stopped group's runners.

use std::sync::Arc;

use super::Orchestrator;
use super::feed::undelivered;
use super::shell::Shell;
use crate::config::Config;
use crate::events::Event;
use crate::fault::{Fault, FaultKind};

impl<S: Shell> Orchestrator<S> {
    pub(super) fn reread(&mut self, config: Config) -> [Vec<String>; 3] {
        let new = Arc::new(config);
        let mut added = Vec::new();
        let mut changed = Vec::new();
        for gc in &new.groups {
            match self.groups.get(&gc.name) {
                None => added.push(gc.name.clone()),
                Some(active) if !active.same_config(gc) => changed.push(gc.name.clone()),
                Some(_) => {}
            }
        }
        let removed = self
            .group_order()
            .into_iter()
            .filter(|name| new.group(name).is_none())
            .collect::<Vec<_>>();
        self.latest = new;
        [added, changed, removed]
    }

    pub(super) fn add_group(&mut self, name: &str) -> Result<(), Fault> {
        let gc = self
            .latest
            .group(name)
            .cloned()
            .ok_or_else(|| Fault::with(FaultKind::BadName, name))?;
        if self.groups.contains_key(name) {
            return Err(Fault::with(FaultKind::AlreadyAdded, name));
        }
        self.create_group(gc);
        self.rebuild_graph();
        // New processes start as Python's next main-loop pass would start them.
        self.autostart();
        Ok(())
    }

    pub(super) fn remove_group(&mut self, name: &str) -> Result<(), Fault> {
        let group = self.groups.get(name).ok_or_else(|| Fault::with(FaultKind::BadName, name))?;
        if group.procs.values().any(|e| !e.proc.state().is_stopped()) {
            return Err(Fault::with(FaultKind::StillRunning, name));
        }
        if let Some(group) = self.groups.remove(name) {
            for e in group.procs.values() {
                self.holds.remove(&e.id);
                self.by_id.remove(&e.id);
                self.waiters.remove(&e.id);
                self.spawn_answered(e.id);
                if let Err(err) = self.shell.retire(e.id) {
                    undelivered(&self.log, &err);
                }
            }
            if let crate::config::GroupKind::FcgiProgram(k) = &group.config.kind {
                let url = crate::sys::socket::url(&k.socket);
                self.log.log(crate::logio::mainlog::Level::Info, format!("Closing socket {url}"));
            }
            // Python unsubscribes the pool before announcing the removal.
            self.bus.remove_pool(name);
            self.bus.publish(Event::group_removed(name));
            self.rebuild_graph();
        }
        Ok(())
    }
}
