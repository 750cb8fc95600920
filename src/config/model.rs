//! The validated, typed configuration: what the daemon runs from.
//!
//! Every type derives `Clone, Debug, PartialEq` because `reread`/`update` diff the old
//! and new models to decide which groups changed. None derives `Serialize`: only `rpc`
//! knows wire formats.

use std::path::PathBuf;

use super::diag::ConfigWarning;
use super::lifecycle::Lifecycle;

/// A whole loaded configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The main config file, spelled as given (`-c` or the search path).
    pub source: PathBuf,
    /// The absolute directory of the main config file (`%(here)s`).
    pub here: PathBuf,
    /// `[supervisord]`, with command-line overrides applied.
    pub supervisord: SupervisordSection,
    /// `[unix_http_server]`.
    pub unix_http_server: Option<UnixHttpServer>,
    /// `[inet_http_server]`.
    pub inet_http_server: Option<InetHttpServer>,
    /// Named extra servers: `[unix_http_server:foo]` (Python serves every one).
    pub more_unix_http_servers: Vec<UnixHttpServer>,
    /// Named extra servers: `[inet_http_server:foo]`.
    pub more_inet_http_servers: Vec<InetHttpServer>,
    /// `[supervisorctl]`, when present.
    pub supervisorctl: Option<CtlSection>,
    /// Process groups in start order: by (priority, name), as Python sorts them.
    pub groups: Vec<GroupConfig>,
    /// The `x` of every `[rpcinterface:x]` (the supervisor interface is built in).
    pub rpcinterfaces: Vec<String>,
    /// Non-fatal findings to log at WARN at startup.
    pub warnings: Vec<ConfigWarning>,
    /// Files read through `[include]`, in reading order (Python logs each at INFO).
    pub included: Vec<PathBuf>,
}

/// Descriptors the daemon keeps for itself beyond its processes' (see
/// [`Config::descriptors_needed`]).
pub const DESCRIPTOR_RESERVE: u64 = 64;

impl Config {
    /// Descriptors the daemon holds once every process runs: per process the write end of
    /// its stdin pipe, the read ends of its stdout and stderr pipes (one with
    /// `redirect_stderr`) and one per log file, plus a reserve for the daemon's own (its
    /// log, sockets, the event loop, connections, a spawn's pipes).
    pub fn descriptors_needed(&self) -> u64 {
        let file = |t: &LogTarget| u64::from(!matches!(t, LogTarget::None));
        let per_process = |p: &ProcessConfig| {
            if p.redirect_stderr {
                2 + file(&p.stdout.logfile)
            } else {
                3 + file(&p.stdout.logfile) + file(&p.stderr.logfile)
            }
        };
        DESCRIPTOR_RESERVE + self.processes().map(|(_, p)| per_process(p)).sum::<u64>()
    }

    /// Every process in start order, with its group.
    pub fn processes(&self) -> impl Iterator<Item = (&GroupConfig, &ProcessConfig)> {
        self.groups.iter().flat_map(|g| g.processes.iter().map(move |p| (g, &**p)))
    }

    /// The group called `name`.
    pub fn group(&self, name: &str) -> Option<&GroupConfig> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// The URL children get as `SUPERVISOR_SERVER_URL` when their `serverurl` is AUTO:
    /// the first unix server, else the first inet server (`localhost` for all
    /// interfaces), else none (Python's `ServerOptions.realize`).
    pub fn default_serverurl(&self) -> Option<String> {
        let unix = self.unix_http_server.iter().chain(&self.more_unix_http_servers).next();
        if let Some(u) = unix {
            return Some(format!("unix://{}", u.file.display()));
        }
        let inet = self.inet_http_server.iter().chain(&self.more_inet_http_servers).next();
        inet.map(|i| {
            let host = if i.host.is_empty() { "localhost" } else { i.host.as_str() };
            format!("http://{host}:{}", i.port)
        })
    }
}

pub use crate::procsup::log::Level;

/// Where the daemon's own log goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DaemonLog {
    /// `logfile=syslog` (exactly): the syslog service.
    Syslog,
    /// An absolute path (Python normalises it against the startup directory).
    Path(PathBuf),
}

/// `[supervisord]`: the daemon's own settings.
#[derive(Clone, Debug, PartialEq)]
pub struct SupervisordSection {
    /// `logfile`, default `supervisord.log` in the startup directory.
    pub logfile: DaemonLog,
    /// `logfile_maxbytes`, default 50MB; 0 means never rotate.
    pub logfile_maxbytes: u64,
    /// `logfile_backups`, default 10.
    pub logfile_backups: u32,
    /// `loglevel`, default info.
    pub loglevel: Level,
    /// `pidfile`, absolute, default `supervisord.pid` in the startup directory.
    pub pidfile: PathBuf,
    /// `umask`, default 022 (Python applies it only when daemonizing).
    pub umask: u32,
    /// `nodaemon`, default false.
    pub nodaemon: bool,
    /// `silent`, default false.
    pub silent: bool,
    /// `minfds`, default 1024.
    pub minfds: u64,
    /// `minprocs`, default 200.
    pub minprocs: u64,
    /// `nocleanup`, default false.
    pub nocleanup: bool,
    /// `childlogdir`, default the temp dir; where AUTO child logs go.
    pub childlogdir: PathBuf,
    /// `user`: a name or uid, resolved by the daemon (not here).
    pub user: Option<String>,
    /// `directory`: chdir target when daemonizing.
    pub directory: Option<PathBuf>,
    /// `strip_ansi`, default false.
    pub strip_ansi: bool,
    /// `environment`: merged under every program's environment.
    pub environment: Vec<(String, String)>,
    /// `identifier`, default `supervisor`.
    pub identifier: String,
}

/// `[unix_http_server]` (or `[unix_http_server:name]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnixHttpServer {
    /// The `name` of `[unix_http_server:name]`, None for the plain section.
    pub name: Option<String>,
    /// `file`: absolute socket path.
    pub file: PathBuf,
    /// `chmod`, default 0700.
    pub chmod: u32,
    /// `chown`: `user` or `user:group`, resolved by the daemon.
    pub chown: Option<String>,
    /// `username`/`password`: both or neither. The password may be `{SHA}<hex>`.
    pub auth: Option<Credentials>,
}

/// `[inet_http_server]` (or `[inet_http_server:name]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InetHttpServer {
    /// The `name` of `[inet_http_server:name]`, None for the plain section.
    pub name: Option<String>,
    /// Lowercased host; empty means all interfaces (`*` or no host).
    pub host: String,
    /// 1..=65535.
    pub port: u16,
    /// `username`/`password`.
    pub auth: Option<Credentials>,
}

/// HTTP basic-auth credentials for a server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// `username`.
    pub username: String,
    /// `password`, possibly `{SHA}<hex sha1>`.
    pub password: String,
}

/// `[supervisorctl]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CtlSection {
    /// `serverurl`, default `http://localhost:9001`; a `unix://` path is normalised.
    pub serverurl: String,
    /// `username`.
    pub username: Option<String>,
    /// `password`.
    pub password: Option<String>,
    /// `prompt`, default `supervisor`.
    pub prompt: String,
    /// `history_file`, absolute.
    pub history_file: Option<PathBuf>,
}

/// A process group: a `[program:x]`, a `[group:x]`, an `[eventlistener:x]` pool or an
/// `[fcgi-program:x]`.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupConfig {
    /// Group name.
    pub name: String,
    /// Group priority: lower starts first, stops last.
    pub priority: i64,
    /// What kind of group and its kind-specific settings.
    pub kind: GroupKind,
    /// Its processes, sorted by (priority, name). Shared with the process table's entries,
    /// so the latest config and the running processes hold one copy between them.
    pub processes: Vec<std::sync::Arc<ProcessConfig>>,
}

/// The kind-specific part of a group; the settings of the rarer kinds are out of line, so
/// the many plain program groups do not carry room for them.
#[derive(Clone, Debug, PartialEq)]
pub enum GroupKind {
    /// `[program:x]` or `[group:x]`.
    Program,
    /// `[eventlistener:x]`: a listener pool.
    EventListener(Box<ListenerKind>),
    /// `[fcgi-program:x]`.
    FcgiProgram(Box<FcgiKind>),
}

/// The settings of an `[eventlistener:x]` pool.
#[derive(Clone, Debug, PartialEq)]
pub struct ListenerKind {
    /// Subscribed event type names, upper-cased, in the order written, no duplicates.
    pub events: Vec<String>,
    /// `buffer_size`, default 10, at least 1.
    pub buffer_size: usize,
    /// `result_handler` spec, default `supervisor.dispatchers:default_handler`.
    pub result_handler: String,
}

/// The settings of an `[fcgi-program:x]` group.
#[derive(Clone, Debug, PartialEq)]
pub struct FcgiKind {
    /// `socket`.
    pub socket: FcgiSocket,
    /// `socket_owner`: `user[:group]`, resolved by the daemon.
    pub socket_owner: Option<String>,
    /// `socket_mode`, default 0700 for unix sockets.
    pub socket_mode: Option<u32>,
    /// `socket_backlog`, default SOMAXCONN.
    pub socket_backlog: Option<u32>,
}

/// The socket an fcgi-program's processes share as fd 0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FcgiSocket {
    /// `unix:///abs/path`.
    Unix(PathBuf),
    /// `tcp://host:port`.
    Tcp {
        /// Host name or address.
        host: String,
        /// Port.
        port: u16,
    },
}

/// `autorestart`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AutoRestart {
    /// Never restart automatically.
    False,
    /// Restart when the exit code is not in `exitcodes` (the default).
    Unexpected,
    /// Always restart.
    True,
}

/// Where one output channel is logged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogTarget {
    /// `NONE`/`OFF`: no file.
    None,
    /// `AUTO`: a file in `childlogdir`, named by the daemon.
    Auto,
    /// A path, `~`-expanded; relative paths are relative to the daemon's directory.
    Path(PathBuf),
}

/// The six per-channel log options (`stdout_*` or `stderr_*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// `*_logfile`, default AUTO.
    pub logfile: LogTarget,
    /// `*_logfile_maxbytes`, default 50MB; 0 means never rotate.
    pub maxbytes: u64,
    /// `*_logfile_backups`, default 10.
    pub backups: u32,
    /// `*_capture_maxbytes`, default 0 (capture mode off).
    pub capture_maxbytes: u64,
    /// `*_events_enabled`: emit PROCESS_LOG events.
    pub events_enabled: bool,
    /// `*_syslog`: copy each line to syslog.
    pub syslog: bool,
    /// `*_log_prefix`: what each line written to the log file is wrapped in (out of line:
    /// few programs set it).
    pub prefix: Option<Box<LinePrefix>>,
}

/// `stdout_log_prefix`/`stderr_log_prefix`: a prefix for every line of a child's log, or
/// one JSON object per line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinePrefix {
    /// The expanded template; `%(time)s` is the only part filled in per line.
    Template(Vec<PrefixPart>),
    /// `json`: `{"time":…,"process":…,"channel":…,"message":…}` per line.
    Json {
        /// `group:name`, or `name` when they are equal.
        process: String,
        channel: String,
    },
}

/// One piece of a prefix template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrefixPart {
    Text(String),
    /// The line's UTC time, RFC 3339 with milliseconds.
    Time,
}

/// One process to run: a program section expanded for one `process_num`.
#[derive(Clone, Debug, PartialEq)]
pub struct ProcessConfig {
    /// Process name (`process_name` expanded).
    pub name: String,
    /// The group it belongs to.
    pub group: String,
    /// The `x` of the section it came from.
    pub program: Box<str>,
    /// `command`, expanded; split with shlex at spawn time.
    pub command: Box<str>,
    /// This process's number, from `numprocs_start`.
    pub process_num: i64,
    /// `numprocs` of its section.
    pub numprocs: u32,
    /// `priority`, default 999 (-1 for event listeners).
    pub priority: i64,
    /// `autostart`, default true.
    pub autostart: bool,
    /// `autorestart`, default unexpected.
    pub autorestart: AutoRestart,
    /// `startsecs`, default 1; negative (accepted with a warning) acts as 0.
    pub startsecs: i64,
    /// `startretries`, default 3.
    pub startretries: u32,
    /// `exitcodes`, default `[0]`.
    pub exitcodes: Box<[u8]>,
    /// `stopsignal` number, default 15 (TERM).
    pub stopsignal: i32,
    /// `stopwaitsecs`, default 10.
    pub stopwaitsecs: u64,
    /// `stopasgroup`, default false.
    pub stopasgroup: bool,
    /// `killasgroup`, default `stopasgroup`.
    pub killasgroup: bool,
    /// `stopastree` (ours), default true: a stop also signals the process's descendants
    /// that left its process group (`setsid`, double fork), with the same escalation, and
    /// the process counts as stopped once they are gone too.
    pub stopastree: bool,
    /// `user`: a name or uid, resolved by the daemon.
    pub user: Option<Box<str>>,
    /// `directory`: chdir in the child; not checked at load (Python fails at spawn).
    pub directory: Option<Box<std::path::Path>>,
    /// `umask`, default inherit.
    pub umask: Option<u32>,
    /// `[supervisord] environment` overlaid with the program's own, in order.
    pub environment: Environment,
    /// `redirect_stderr`, default false.
    pub redirect_stderr: bool,
    /// `serverurl`; None means AUTO (the daemon's own URL).
    pub serverurl: Option<Box<str>>,
    /// stdout logging.
    pub stdout: LogConfig,
    /// stderr logging (always `LogTarget::None` with `redirect_stderr`).
    pub stderr: LogConfig,
    /// `io_node=` (ours, docs/control-plane.md): stopped by `weka.stopAllIoNodes`.
    pub io_node: bool,
    /// Dependencies, checks, essential, restart backoff and budget (ours); `None` when the
    /// program uses none of them (most do not): read it through [`ProcessConfig::lifecycle`].
    pub(crate) lifecycle: Option<Box<Lifecycle>>,
}

/// The options of a program that uses no lifecycle option.
static NO_LIFECYCLE: Lifecycle = Lifecycle::NONE;

impl ProcessConfig {
    /// Dependencies, checks, essential, restart backoff and budget (ours).
    pub fn lifecycle(&self) -> &Lifecycle {
        self.lifecycle.as_deref().unwrap_or(&NO_LIFECYCLE)
    }

    /// The lifecycle options to change in place (given room when it had none).
    pub fn lifecycle_mut(&mut self) -> &mut Lifecycle {
        self.lifecycle.get_or_insert_with(|| Box::new(Lifecycle::NONE))
    }
}

/// A process's environment: `[supervisord] environment` (one copy shared by every process
/// of a config) overlaid with the program's own `environment=`. Iterates as the merged
/// list: the daemon-wide variables in their order, each with the program's value when it
/// sets the same name, then the program's other variables in their order.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Environment {
    global: Option<std::sync::Arc<[(String, String)]>>,
    /// The program's own variables, one entry per name.
    own: Box<[(String, String)]>,
}

impl Environment {
    /// `own` overlaid on `global`; a name set twice in `own` keeps its last value at its
    /// first place.
    pub fn new(
        global: Option<std::sync::Arc<[(String, String)]>>,
        own: Vec<(String, String)>,
    ) -> Self {
        let mut merged: Vec<(String, String)> = Vec::with_capacity(own.len());
        for (k, v) in own {
            match merged.iter_mut().find(|(key, _)| *key == k) {
                Some(slot) => slot.1 = v,
                None => merged.push((k, v)),
            }
        }
        Environment { global: global.filter(|g| !g.is_empty()), own: merged.into() }
    }

    /// The merged variables, in order.
    pub fn iter(&self) -> impl Iterator<Item = &(String, String)> {
        let global: &[(String, String)] = self.global.as_deref().unwrap_or(&[]);
        let own = &self.own;
        global
            .iter()
            .map(move |g| own.iter().find(|(k, _)| *k == g.0).unwrap_or(g))
            .chain(own.iter().filter(move |(k, _)| !global.iter().any(|(g, _)| g == k)))
    }

    /// The merged variables as a list of their own.
    pub fn to_vec(&self) -> Vec<(String, String)> {
        self.iter().cloned().collect()
    }

    /// The value the merged list gives `name` (`None` when unset; the last when set twice).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter().filter(|(k, _)| k == name).last().map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(env: &Environment) -> Vec<(&str, &str)> {
        env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }

    fn owned(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn environment_overlays_the_programs_own_on_one_shared_daemon_wide_list() {
        let global: std::sync::Arc<[(String, String)]> = owned(&[("G", "1"), ("A", "x")]).into();
        let a =
            Environment::new(Some(global.clone()), owned(&[("B", "2"), ("A", "y"), ("B", "3")]));
        let b = Environment::new(Some(global.clone()), Vec::new());
        // Daemon-wide names first, each with the program's value; a name set twice keeps
        // its last value at its first place.
        assert_eq!(pairs(&a), [("G", "1"), ("A", "y"), ("B", "3")]);
        assert_eq!(pairs(&b), [("G", "1"), ("A", "x")]);
        assert_eq!((a.get("A"), a.get("B"), a.get("C")), (Some("y"), Some("3"), None));
        assert_eq!(a.to_vec(), owned(&[("G", "1"), ("A", "y"), ("B", "3")]));
        // Both hold the one daemon-wide list, not copies of it.
        let shared =
            |e: &Environment| e.global.as_ref().is_some_and(|g| std::sync::Arc::ptr_eq(g, &global));
        assert!(shared(&a) && shared(&b));
        assert_eq!(pairs(&Environment::new(None, owned(&[("X", "1")]))), [("X", "1")]);
        assert!(Environment::default().iter().next().is_none());
    }
}
