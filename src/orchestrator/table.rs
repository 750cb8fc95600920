//! The process table: groups and their process entries, the start order (ascending group
//! priority, then process priority, then name), lookups by name spec, and creating a
//! group's entries (with their runners and log paths) from its config.

use std::path::Path;
use std::sync::Arc;

use super::Orchestrator;
use super::msg::Target;
use super::names;
use super::shell::Shell;
use super::stats::ProcStats;
use crate::config::{GroupConfig, LogConfig, LogTarget, ProcessConfig};
use crate::events::Event;
use crate::fault::{Fault, FaultKind};
use crate::logio::Channel;
use crate::logio::mainlog::Level;
use crate::logio::pump::OutputCounters;
use crate::procsup::{self, Policy, Proc};
use crate::runner::{LogSpec, ProcId, ReadyWatch, RunnerSpec};

/// One process instance in the table.
pub(super) struct Entry {
    pub(super) id: ProcId,
    pub(super) config: Arc<ProcessConfig>,
    pub(super) proc: Proc,
    /// Shared with the runner's log specs and the log writers.
    pub(super) stdout_path: Option<Arc<Path>>,
    pub(super) stderr_path: Option<Arc<Path>>,
    /// The deadline last sent to the runner, so it is only told about changes.
    pub(super) sent_deadline: Option<std::time::Instant>,
    /// Dependencies, checks and health (the lifecycle options).
    pub(super) life: super::deps::Life,
    /// Restarts, exits and BACKOFF time, for metrics and `status --json`.
    pub(super) stats: ProcStats,
    /// Output bytes of stdout and stderr, counted by the pumps.
    pub(super) output: [Arc<OutputCounters>; 2],
}

/// One active group: its config and its processes by name.
pub(super) struct Group {
    pub(super) config: GroupConfig,
    pub(super) procs: Procs,
}

/// What a [`ByName`] vector is sorted and looked up by.
pub(super) trait HasName {
    fn name(&self) -> &str;
}

impl HasName for Entry {
    fn name(&self) -> &str {
        &self.config.name
    }
}

impl HasName for Group {
    fn name(&self) -> &str {
        &self.config.name
    }
}

/// A group's entries, sorted by process name. Most groups hold one process: a B-tree would
/// give each a node with room for eleven (and a copy of the name as its key); this is a
/// vector of exactly its entries.
pub(super) type Procs = ByName<Entry>;

/// The active groups, sorted by name: a vector of exactly its groups (a B-tree keyed by
/// name held a copy of each name and nodes about half full, ~70 bytes a group beside it).
pub(super) type Groups = ByName<Group>;

/// Items kept sorted by their names, in a vector of exactly its items.
pub(super) struct ByName<T>(Vec<T>);

impl<T> Default for ByName<T> {
    fn default() -> Self {
        ByName(Vec::new())
    }
}

impl<T: HasName> ByName<T> {
    fn find(&self, name: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|item| item.name().cmp(name))
    }

    pub(super) fn get(&self, name: &str) -> Option<&T> {
        self.find(name).ok().and_then(|i| self.0.get(i))
    }

    pub(super) fn get_mut(&mut self, name: &str) -> Option<&mut T> {
        self.find(name).ok().and_then(|i| self.0.get_mut(i))
    }

    pub(super) fn contains_key(&self, name: &str) -> bool {
        self.find(name).is_ok()
    }

    /// The names, in order.
    pub(super) fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(T::name)
    }

    /// The items in name order.
    pub(super) fn values(&self) -> impl Iterator<Item = &T> {
        self.0.iter()
    }

    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    /// Room for `n` more items (a boot's groups, so the vector is sized once).
    pub(super) fn reserve_exact(&mut self, n: usize) {
        self.0.reserve_exact(n);
    }

    pub(super) fn remove(&mut self, name: &str) -> Option<T> {
        self.find(name).ok().map(|i| self.0.remove(i))
    }

    /// Adds `item` under its name, replacing one of the same name.
    fn insert(&mut self, item: T) {
        match self.find(item.name()) {
            Ok(i) => {
                if let Some(slot) = self.0.get_mut(i) {
                    *slot = item;
                }
            }
            Err(i) => self.0.insert(i, item),
        }
    }
}

impl Group {
    /// Whether `gc` is this group's config: its own settings, and each process's config as
    /// its entry holds it (the group keeps no second copy of them).
    pub(super) fn same_config(&self, gc: &GroupConfig) -> bool {
        let own = GroupConfig { processes: Vec::new(), ..gc.clone() };
        self.config == own
            && gc.processes.len() == self.procs.len()
            && gc
                .processes
                .iter()
                .all(|pc| self.procs.get(&pc.name).is_some_and(|e| e.config == *pc))
    }
}

/// A process a target covers: (label for faults, group, name).
pub(super) type Member = (String, String, String);

impl<S: Shell> Orchestrator<S> {
    /// Groups in start order: ascending (priority, name).
    pub(super) fn group_order(&self) -> Vec<String> {
        let mut v: Vec<(&i64, &String)> =
            self.groups.values().map(|g| (&g.config.priority, &g.config.name)).collect();
        v.sort();
        v.into_iter().map(|(_, n)| n.clone()).collect()
    }

    /// A group's processes in start order: ascending (priority, name).
    pub(super) fn proc_order(group: &Group) -> Vec<String> {
        let mut v: Vec<(&i64, &String)> =
            group.procs.values().map(|e| (&e.config.priority, &e.config.name)).collect();
        v.sort();
        v.into_iter().map(|(_, n)| n.clone()).collect()
    }

    /// Every process, groups and members in start order.
    pub(super) fn all_in_order(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for g in self.group_order() {
            if let Some(group) = self.groups.get(&g) {
                out.extend(Self::proc_order(group).into_iter().map(|p| (g.clone(), p)));
            }
        }
        out
    }

    pub(super) fn entry(&self, group: &str, name: &str) -> Option<&Entry> {
        self.groups.get(group).and_then(|g| g.procs.get(name))
    }

    pub(super) fn entry_mut(&mut self, group: &str, name: &str) -> Option<&mut Entry> {
        self.groups.get_mut(group).and_then(|g| g.procs.get_mut(name))
    }

    /// Python's `_getGroupAndProcess` for a spec that must name one process.
    pub(super) fn lookup_process(&self, spec: &str) -> Result<(String, String), Fault> {
        let s = names::split(spec);
        let bad = || Fault::with(FaultKind::BadName, spec);
        let group = self.groups.get(s.group).ok_or_else(bad)?;
        let name = s.process.ok_or_else(bad)?;
        group.procs.get(name).ok_or_else(bad)?;
        Ok((s.group.to_string(), name.to_string()))
    }

    /// The processes a target covers, in start order, with the label faults use. `single`
    /// is true when the spec names one process.
    pub(super) fn resolve_target(&self, target: &Target) -> Result<(Vec<Member>, bool), Fault> {
        match target {
            Target::All => Ok((
                self.all_in_order().into_iter().map(|(g, p)| (names::key(&g, &p), g, p)).collect(),
                false,
            )),
            Target::IoNodes => Ok((
                self.all_in_order()
                    .into_iter()
                    .filter(|(g, p)| self.entry(g, p).is_some_and(|e| e.config.io_node))
                    .map(|(g, p)| (names::key(&g, &p), g, p))
                    .collect(),
                false,
            )),
            Target::Processes(list) => Ok((
                list.iter()
                    .filter(|(g, p)| self.entry(g, p).is_some())
                    .map(|(g, p)| (names::key(g, p), g.clone(), p.clone()))
                    .collect(),
                false,
            )),
            Target::Spec(spec) => {
                let s = names::split(spec);
                let bad = || Fault::with(FaultKind::BadName, spec);
                let group = self.groups.get(s.group).ok_or_else(bad)?;
                match s.process {
                    Some(p) => {
                        group.procs.get(p).ok_or_else(bad)?;
                        Ok((vec![(spec.clone(), s.group.to_string(), p.to_string())], true))
                    }
                    None => Ok((
                        Self::proc_order(group)
                            .into_iter()
                            .map(|p| (names::key(s.group, &p), s.group.to_string(), p))
                            .collect(),
                        false,
                    )),
                }
            }
        }
    }

    fn next_random(&mut self) -> [u8; 8] {
        // xorshift64*: AUTO log names only need to differ, not to be secret.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes()
    }

    fn log_path(
        &mut self,
        cfg: &ProcessConfig,
        log: &LogConfig,
        channel: Channel,
    ) -> Option<Arc<Path>> {
        match &log.logfile {
            LogTarget::None => None,
            LogTarget::Path(p) => Some(Arc::from(p.as_path())),
            LogTarget::Auto => {
                let random = crate::logio::autoname::random_part(self.next_random());
                let file = crate::logio::autoname::auto_log_file_name(
                    &cfg.name,
                    channel,
                    &self.config.supervisord.identifier,
                    &random,
                );
                Some(Arc::from(self.config.supervisord.childlogdir.join(file)))
            }
        }
    }

    /// An `[fcgi-program:x]`'s socket, made when its group is (a bind error is logged and
    /// becomes every spawn's error). The runners hold it; it closes with the last of them.
    fn fcgi_socket(
        &self,
        gc: &GroupConfig,
    ) -> Option<Result<std::sync::Arc<std::os::fd::OwnedFd>, String>> {
        let crate::config::GroupKind::FcgiProgram(kind) = &gc.kind else {
            return None;
        };
        let crate::config::FcgiKind { socket, socket_owner, socket_mode, socket_backlog } = &**kind;
        let url = crate::sys::socket::url(socket);
        // Python gives the socket to the programs' user unless socket_owner says otherwise.
        let owner = socket_owner
            .clone()
            .or_else(|| gc.processes.first().and_then(|p| p.user.as_deref().map(str::to_owned)));
        self.log.log(Level::Info, format!("Creating socket {url}"));
        match crate::sys::socket::listen(socket, owner.as_deref(), *socket_mode, *socket_backlog) {
            Ok(fd) => Some(Ok(std::sync::Arc::new(fd))),
            Err(e) => {
                let msg = format!("Could not create FastCGI socket {url}: {e}");
                self.log.log(Level::Critical, msg.clone());
                Some(Err(msg))
            }
        }
    }

    /// `pc`'s policy; most programs' are equal, and they share one copy.
    fn shared_policy(&mut self, pc: &ProcessConfig) -> Arc<Policy> {
        let policy = policy_of(pc);
        match &self.last_policy {
            Some(last) if **last == policy => Arc::clone(last),
            _ => Arc::clone(self.last_policy.insert(Arc::new(policy))),
        }
    }

    /// Adds a group to the table, starting a runner for each of its processes.
    pub(super) fn create_group(&mut self, mut gc: GroupConfig) {
        // The pool exists before PROCESS_GROUP_ADDED, so it receives its own.
        let pool = self.bus.add_pool(&gc);
        let fcgi = self.fcgi_socket(&gc);
        let mut procs = ByName(Vec::with_capacity(gc.processes.len()));
        // Each entry keeps its own process config; the group's copy would be a duplicate.
        for pc in std::mem::take(&mut gc.processes) {
            let id = self.next_id;
            self.next_id += 1;
            let stdout_path = self.log_path(&pc, &pc.stdout, Channel::Stdout);
            // With redirect_stderr there is no stderr log (Python ignores stderr_logfile).
            let stderr_path = if pc.redirect_stderr {
                None
            } else {
                self.log_path(&pc, &pc.stderr, Channel::Stderr)
            };
            let output = [Arc::default(), Arc::default()];
            let log_spec = |path: &Option<Arc<Path>>, lc: &LogConfig, counters| LogSpec {
                path: path.clone(),
                maxbytes: lc.maxbytes,
                backups: lc.backups,
                capture_maxbytes: lc.capture_maxbytes,
                create_now: lc.logfile == LogTarget::Auto,
                events_enabled: lc.events_enabled,
                syslog: lc.syslog,
                prefix: lc.prefix.clone(),
                counters,
            };
            let wants_events = [&pc.stdout, &pc.stderr]
                .iter()
                .any(|lc| lc.events_enabled || lc.capture_maxbytes > 0);
            let readiness = match pc.lifecycle().ready_check.as_ref().map(|r| &r.form) {
                Some(crate::config::CheckForm::Log { pattern }) => {
                    Some(ReadyWatch::Log(pattern.clone()))
                }
                Some(crate::config::CheckForm::Notify) => {
                    self.shell.notify_socket(&gc.name, &pc.name).map(ReadyWatch::Notify)
                }
                _ => None,
            };
            let spec = RunnerSpec {
                id,
                config: Arc::clone(&pc),
                server_url: match &pc.serverurl {
                    Some(url) => Some(Arc::from(&**url)),
                    None => self.default_url.clone(),
                },
                stdout: log_spec(&stdout_path, &pc.stdout, Arc::clone(&output[0])),
                stderr: log_spec(&stderr_path, &pc.stderr, Arc::clone(&output[1])),
                strip_ansi: self.config.supervisord.strip_ansi,
                publisher: wants_events.then(|| self.bus.publisher()),
                pool: pool.clone(),
                mainlog: self.log.enabled(Level::Debug).then(|| self.log.clone()),
                syslog: (pc.stdout.syslog || pc.stderr.syslog).then(|| self.log.clone()),
                fcgi_socket: fcgi.clone(),
                readiness,
                auto_logs: Default::default(),
            };
            self.shell.start_runner(spec);
            let entry = Entry {
                id,
                proc: Proc::new(pc.name.clone(), self.shared_policy(&pc)),
                config: pc,
                stdout_path,
                stderr_path,
                sent_deadline: None,
                life: super::deps::Life::default(),
                stats: ProcStats::default(),
                output,
            };
            self.by_id.insert(id, Arc::clone(&entry.config));
            procs.insert(entry);
        }
        let name = gc.name.clone();
        self.groups.insert(Group { config: gc, procs });
        self.bus.publish(Event::group_added(&name));
    }
}

/// A program's options as the state machine's policy.
pub fn policy_of(pc: &ProcessConfig) -> Policy {
    Policy {
        startsecs: pc.startsecs,
        startretries: pc.startretries,
        autorestart: match pc.autorestart {
            crate::config::AutoRestart::False => procsup::AutoRestart::False,
            crate::config::AutoRestart::Unexpected => procsup::AutoRestart::Unexpected,
            crate::config::AutoRestart::True => procsup::AutoRestart::True,
        },
        exitcodes: pc.exitcodes.iter().map(|&c| i32::from(c)).collect(),
        stopsignal: pc.stopsignal,
        stopwaitsecs: pc.stopwaitsecs,
        stopasgroup: pc.stopasgroup,
        killasgroup: pc.killasgroup,
        ready_timeout: pc.lifecycle().ready_check.as_ref().map(|r| r.timeout),
        exp_backoff: pc.lifecycle().restart_backoff.max.map(|max| procsup::ExpBackoff {
            initial: pc.lifecycle().restart_backoff.initial,
            max,
        }),
        restart_limit: pc.lifecycle().restart_limit.map(|l| (l.restarts, l.window)),
    }
}

#[cfg(test)]
mod tests {
    use std::mem::size_of;

    /// What the daemon keeps per idle process is a few of these; each bound sits at or
    /// under an allocator size class (the spec and the config live in an `Arc`, 16 bytes
    /// more), so growing one costs every process a whole class.
    #[test]
    fn per_process_data_stays_within_its_size_class() {
        assert!(size_of::<super::Entry>() <= 384, "Entry {}", size_of::<super::Entry>());
        let proc = size_of::<crate::procsup::Proc>();
        assert!(proc <= 256, "Proc {proc}");
        let spec = size_of::<crate::runner::RunnerSpec>();
        assert!(spec <= 240, "RunnerSpec {spec}");
        let config = size_of::<crate::config::ProcessConfig>();
        assert!(config <= 368, "ProcessConfig {config}");
        let group = size_of::<super::Group>();
        assert!(group <= 96, "Group {group}");
        assert!(size_of::<super::ProcStats>() <= 16);
        assert!(size_of::<super::super::deps::Life>() <= 32);
    }
}
