//! Raw sections → the typed [`Config`]: which options each section has, their defaults,
//! which names each option is expanded with, and Python's cross-option rules.
//!
//! Everything follows `supervisor/options.py` of 4.3.0 (`ServerOptions.read_config`,
//! `process_groups_from_parser`, `_processes_from_section`, `server_configs_from_parser`),
//! except that every problem is collected (Python stops at the first) and points at a
//! file, line, section and option.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::cli::Overrides;
use super::diag::{ConfigError, ConfigWarning, Loc};
use super::expand::{ExpandError, Names, Value, expand};
use super::ini::{Ini, IniOption, Section};
use super::lifecycle::{self as lc, Lifecycle, PendingDeps, ProcessKey};
use super::model::*;
use super::options as opt;

/// What loading reads from the outside world, injectable so tests need no real
/// environment: the environment for `%(ENV_X)s`, the directory relative paths are
/// resolved against, and the host name for `%(host_node_name)s`.
#[derive(Clone, Debug)]
pub struct LoadContext {
    /// supervisord's environment at startup.
    pub env: Vec<(String, String)>,
    /// The startup directory.
    pub cwd: PathBuf,
    /// `platform.node()`.
    pub host_node_name: String,
}

impl LoadContext {
    /// The running process's environment, directory and host name.
    pub fn from_process() -> LoadContext {
        let env = std::env::vars_os()
            .map(|(k, v)| (k.to_string_lossy().into_owned(), v.to_string_lossy().into_owned()))
            .collect();
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        let host_node_name = nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default();
        LoadContext { env, cwd, host_node_name }
    }

    fn var(&self, name: &str) -> Option<&str> {
        self.env.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Stands for `%(time)s` while a log prefix is expanded (a private-use character no
/// config value has reason to contain), then becomes [`PrefixPart::Time`].
const TIME_MARK: &str = "\u{F8FF}";

const SUPERVISORD_OPTIONS: &[&str] = &[
    "logfile",
    "logfile_maxbytes",
    "logfile_backups",
    "loglevel",
    "pidfile",
    "umask",
    "nodaemon",
    "silent",
    "minfds",
    "minprocs",
    "nocleanup",
    "childlogdir",
    "user",
    "directory",
    "strip_ansi",
    "environment",
    "identifier",
    // Defaults for the programs' own options of the same names.
    "stdout_log_prefix",
    "stderr_log_prefix",
    // Accepted in the file but only the command line sets it (Python ignores it here).
    "profile_options",
];

const PROGRAM_OPTIONS: &[&str] = &[
    "command",
    "process_name",
    "numprocs",
    "numprocs_start",
    "priority",
    "autostart",
    "autorestart",
    "startsecs",
    "startretries",
    "exitcodes",
    "stopsignal",
    "stopwaitsecs",
    "stopasgroup",
    "killasgroup",
    "stopastree",
    "user",
    "directory",
    "umask",
    "redirect_stderr",
    "environment",
    "serverurl",
    "io_node",
    "depends_on",
    "ready_check",
    "ready_timeout",
    "ready_check_interval",
    "ready_check_timeout",
    "health_check",
    "health_check_interval",
    "health_check_timeout",
    "health_check_retries",
    "essential",
    "restart_backoff_initial",
    "restart_backoff_max",
    "restart_limit",
    "stdout_logfile",
    "stdout_logfile_maxbytes",
    "stdout_logfile_backups",
    "stdout_capture_maxbytes",
    "stdout_events_enabled",
    "stdout_syslog",
    "stderr_logfile",
    "stderr_logfile_maxbytes",
    "stderr_logfile_backups",
    "stderr_capture_maxbytes",
    "stderr_events_enabled",
    "stderr_syslog",
    "stdout_log_prefix",
    "stderr_log_prefix",
];

const LISTENER_OPTIONS: &[&str] = &["events", "buffer_size", "result_handler"];
const FCGI_OPTIONS: &[&str] = &["socket", "socket_owner", "socket_mode", "socket_backlog"];
const GROUP_OPTIONS: &[&str] = &["programs", "priority"];
const UNIX_OPTIONS: &[&str] = &["file", "chmod", "chown", "username", "password"];
const INET_OPTIONS: &[&str] = &["port", "username", "password"];
const CTL_OPTIONS: &[&str] = &["serverurl", "username", "password", "prompt", "history_file"];
const INCLUDE_OPTIONS: &[&str] = &["files"];

/// Event type names a listener may subscribe to (supervisor.events.EventTypes).
pub const EVENT_TYPES: &[&str] = &[
    "EVENT",
    "PROCESS_COMMUNICATION",
    "PROCESS_COMMUNICATION_STDERR",
    "PROCESS_COMMUNICATION_STDOUT",
    "PROCESS_GROUP",
    "PROCESS_GROUP_ADDED",
    "PROCESS_GROUP_REMOVED",
    "PROCESS_LOG",
    "PROCESS_LOG_STDERR",
    "PROCESS_LOG_STDOUT",
    "PROCESS_STATE",
    "PROCESS_STATE_BACKOFF",
    "PROCESS_STATE_EXITED",
    "PROCESS_STATE_FATAL",
    "PROCESS_STATE_RUNNING",
    "PROCESS_STATE_STARTING",
    "PROCESS_STATE_STOPPED",
    "PROCESS_STATE_STOPPING",
    "PROCESS_STATE_UNKNOWN",
    "REMOTE_COMMUNICATION",
    "SUPERVISOR_STATE_CHANGE",
    "SUPERVISOR_STATE_CHANGE_RUNNING",
    "SUPERVISOR_STATE_CHANGE_STOPPING",
    "TICK",
    "TICK_3600",
    "TICK_5",
    "TICK_60",
];

const DEFAULT_RESULT_HANDLER: &str = "supervisor.dispatchers:default_handler";

/// Collected problems.
#[derive(Default)]
struct Diag {
    errors: Vec<ConfigError>,
    warnings: Vec<ConfigWarning>,
    /// Where each process's `depends_on` is, for resolving names once all are known.
    depends_on: Vec<PendingDeps>,
}

impl Diag {
    fn error(&mut self, e: ConfigError) {
        if !self.errors.contains(&e) {
            self.errors.push(e);
        }
    }

    fn warn(&mut self, w: ConfigWarning) {
        if !self.warnings.contains(&w) {
            self.warnings.push(w);
        }
    }
}

/// Loads the config file at `path` (spelled as the user gave it), with `overrides` from
/// the command line taking precedence over the file. Returns every problem found.
pub fn load(
    path: &Path,
    overrides: &Overrides,
    ctx: &LoadContext,
) -> Result<Config, Vec<ConfigError>> {
    let mut d = Diag::default();
    let mut ini = Ini::default();
    let main_loc = Loc::file(path);
    let full = ctx.cwd.join(path);
    if !full.exists() {
        return Err(vec![main_loc.error("could not find config file")]);
    }
    match read_text(&full) {
        Ok(text) => d.errors.extend(ini.read_str(&text, path)),
        Err(why) => return Err(vec![main_loc.error(format!("could not read config file: {why}"))]),
    }
    let here =
        opt::normalize_path(".", None, &full.parent().map(Path::to_path_buf).unwrap_or_default());
    let b = Builder { ctx, main: path.to_path_buf(), home: ctx.var("HOME").map(str::to_string) };

    // The environment as ENV_ names; [supervisord] environment= is added below.
    let mut base: BTreeMap<String, Value> =
        ctx.env.iter().map(|(k, v)| (format!("ENV_{k}"), Value::Str(v.clone()))).collect();

    let included = b.includes(&mut ini, &base, &here, &mut d);

    let supervisord = match ini.section("supervisord") {
        Some(s) => Some(b.supervisord(&ini, s, &base, overrides, &mut d)),
        None => {
            d.error(main_loc.clone().error(
                "no [supervisord] section: every supervisord config file needs one, even if empty",
            ));
            None
        }
    };
    if let Some(s) = &supervisord {
        for (k, v) in &s.environment {
            base.insert(format!("ENV_{k}"), Value::Str(v.clone()));
        }
    }
    // One copy of the daemon-wide environment, shared by every process's.
    let global_env: Option<std::sync::Arc<[(String, String)]>> =
        supervisord.as_ref().map(|s| s.environment.as_slice().into());

    let rpcinterfaces = b.rpcinterfaces(&ini, &base, &mut d);
    let mut groups = b.groups(&ini, &base, &global_env, &mut d);
    if d.errors.is_empty() {
        for e in lc::resolve(&mut groups, &d.depends_on) {
            d.error(e);
        }
    }
    let (unix, more_unix) = b.unix_servers(&ini, &base, &mut d);
    let (inet, more_inet) = b.inet_servers(&ini, &base, &mut d);
    let supervisorctl = ini.section("supervisorctl").map(|s| b.ctl(&ini, s, &base, &mut d));
    b.unknown_sections_and_options(&ini, &mut d);

    match supervisord {
        Some(supervisord) if d.errors.is_empty() => Ok(Config {
            source: path.to_path_buf(),
            here,
            supervisord,
            unix_http_server: unix,
            inet_http_server: inet,
            more_unix_http_servers: more_unix,
            more_inet_http_servers: more_inet,
            supervisorctl,
            groups,
            rpcinterfaces,
            warnings: d.warnings,
            included,
        }),
        _ => Err(d.errors),
    }
}

fn read_text(path: &Path) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    String::from_utf8(bytes)
        .map_err(|e| format!("not valid UTF-8 (at byte {})", e.utf8_error().valid_up_to()))
}

/// One section being read, with the names its options are expanded with.
struct Sec<'a> {
    ini: &'a Ini,
    s: &'a Section,
    cwd: &'a Path,
}

impl<'a> Sec<'a> {
    fn opt(&self, key: &str) -> Option<&'a IniOption> {
        self.ini.get(self.s, key)
    }

    /// Where a problem with `key` is: its own line when set, else the section header.
    fn loc(&self, key: &str) -> Loc {
        let (file, line) = match self.opt(key) {
            Some(o) => (o.file.clone(), o.line),
            None => (self.s.file.clone(), self.s.line),
        };
        Loc {
            file,
            line: Some(line),
            section: Some(self.s.name.clone()),
            option: Some(key.to_string()),
        }
    }

    fn section_loc(&self) -> Loc {
        Loc {
            file: self.s.file.clone(),
            line: Some(self.s.line),
            section: Some(self.s.name.clone()),
            option: None,
        }
    }

    /// The raw value, unexpanded.
    fn raw(&self, key: &str) -> Option<&'a str> {
        self.opt(key).map(|o| o.value.as_str())
    }

    /// The value expanded with `names` plus `here` (the directory of the file the option
    /// was written in, which is what Python's literal `%(here)s` replacement amounts to).
    /// None when unset or when expansion failed (the error is recorded).
    fn get(&self, key: &str, names: &Names<'_>, d: &mut Diag) -> Option<String> {
        let o = self.opt(key)?;
        self.expand_value(key, &o.value, names, d)
    }

    fn expand_value(
        &self,
        key: &str,
        value: &str,
        names: &Names<'_>,
        d: &mut Diag,
    ) -> Option<String> {
        let mut names = names.clone();
        if let Some(o) = self.opt(key) {
            let dir = self.cwd.join(&o.file);
            let dir = dir.parent().map(|p| opt::normalize_path(".", None, p)).unwrap_or_default();
            names.set("here", dir.to_string_lossy());
        }
        match expand(value, &names) {
            Ok(v) => Some(v),
            Err(e) => {
                d.error(self.loc(key).error(expand_message(value, &e, &names)));
                None
            }
        }
    }

    /// The expanded value parsed with `parse`, or `default` when unset or bad.
    /// An integer option Python reads with `int()`: a negative value is accepted, with a
    /// warning saying what it does (`acts`), and read as 0.
    fn non_negative(
        &self,
        key: &str,
        names: &Names<'_>,
        d: &mut Diag,
        default: u64,
        acts: &str,
    ) -> u64 {
        let n = self.signed(key, names, d, i64::try_from(default).unwrap_or(i64::MAX), acts);
        u64::try_from(n).unwrap_or(0)
    }

    /// [`Sec::non_negative`] keeping the sign (`startsecs`, which Python shows as given).
    fn signed(&self, key: &str, names: &Names<'_>, d: &mut Diag, default: i64, acts: &str) -> i64 {
        let n = self.typed(key, names, d, default, |v| {
            opt::python_int(v).ok_or_else(|| "expected an integer".to_string())
        });
        if n < 0 {
            d.warn(self.loc(key).warning(format!("{key}={n} is negative: {acts}")));
        }
        n
    }

    fn typed<T>(
        &self,
        key: &str,
        names: &Names<'_>,
        d: &mut Diag,
        default: T,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> T {
        match self.get(key, names, d) {
            Some(v) => match parse(&v) {
                Ok(t) => t,
                Err(why) => {
                    d.error(self.loc(key).error(format!("invalid value '{v}': {why}")));
                    default
                }
            },
            None => default,
        }
    }
}

fn expand_message(value: &str, e: &ExpandError, names: &Names<'_>) -> String {
    match e {
        ExpandError::UnknownName(n) => {
            let hint = if n == "process_num" || n == "numprocs" {
                format!(
                    "; %({n}) is only available in command, process_name, directory, environment and the stdout_*/stderr_* log options"
                )
            } else {
                String::new()
            };
            format!(
                "invalid value '{value}': %({n}) names nothing that can be expanded here{hint}; available names: {}, and ENV_<NAME> for each environment variable",
                names.non_env_names().join(", ")
            )
        }
        ExpandError::BadFormat(why) => {
            format!("invalid value '{value}': badly formatted for %(name)s expansion: {why}")
        }
    }
}

struct Builder<'a> {
    ctx: &'a LoadContext,
    main: PathBuf,
    home: Option<String>,
}

impl<'a> Builder<'a> {
    fn sec<'s>(&'s self, ini: &'s Ini, s: &'s Section) -> Sec<'s> {
        Sec { ini, s, cwd: &self.ctx.cwd }
    }

    /// `[include] files=`: glob patterns joined to the main file's directory, read in
    /// sorted order. Only the main file's `[include]` counts, one level deep, as Python.
    fn includes(
        &self,
        ini: &mut Ini,
        base: &BTreeMap<String, Value>,
        here: &Path,
        d: &mut Diag,
    ) -> Vec<PathBuf> {
        let Some(section) = ini.section("include").cloned() else { return Vec::new() };
        let mut names = Names::new(base);
        names.set("host_node_name", self.ctx.host_node_name.clone());
        let files = {
            let sec = self.sec(ini, &section);
            if sec.opt("files").is_none() {
                d.error(sec.section_loc().error(
                    "an [include] section needs files= (glob patterns, separated by spaces)",
                ));
                return Vec::new();
            }
            sec.get("files", &names, d).unwrap_or_default()
        };
        let mut included = Vec::new();
        let opts =
            glob::MatchOptions { require_literal_leading_dot: true, ..glob::MatchOptions::new() };
        for pattern in files.split_whitespace() {
            let full = here.join(pattern);
            let shown = full.to_string_lossy().into_owned();
            let loc = self.sec(ini, &section).loc("files");
            let mut matches: Vec<PathBuf> = match glob::glob_with(&shown, opts) {
                Ok(paths) => paths.filter_map(Result::ok).collect(),
                Err(e) => {
                    d.error(loc.error(format!("invalid value '{pattern}': bad glob pattern: {e}")));
                    continue;
                }
            };
            if matches.is_empty() {
                d.warn(loc.warning(format!("No file matches via include \"{shown}\"")));
                continue;
            }
            matches.sort();
            for file in matches {
                match read_text(&file) {
                    Ok(text) => {
                        d.errors.extend(ini.read_str(&text, &file));
                        included.push(file);
                    }
                    Err(why) => d.warn(loc.clone().warning(format!(
                        "included file {} could not be read and was skipped: {why}",
                        file.display()
                    ))),
                }
            }
        }
        // An [include] written in an included file is merged into the main one by
        // configparser but never read: say so rather than ignore it silently.
        if let Some(sec) = ini.section("include") {
            for o in sec.options.iter().filter(|o| o.file != self.main) {
                let loc = Loc {
                    file: o.file.clone(),
                    line: Some(o.line),
                    section: Some("include".into()),
                    option: Some(o.key.clone()),
                };
                d.warn(loc.warning("ignored: [include] is only read from the main config file"));
            }
        }
        included
    }

    fn supervisord(
        &self,
        ini: &Ini,
        s: &Section,
        base: &BTreeMap<String, Value>,
        ov: &Overrides,
        d: &mut Diag,
    ) -> SupervisordSection {
        let sec = self.sec(ini, s);
        let names = Names::new(base);
        let home = self.home.as_deref();
        let cwd = &self.ctx.cwd;
        let mut env_names = names.clone();
        env_names.set("host_node_name", self.ctx.host_node_name.clone());
        let logfile_raw = sec.get("logfile", &names, d);
        let pidfile_raw = sec.get("pidfile", &names, d);
        let check_dirpath = |key: &str, v: &Option<String>, d: &mut Diag| {
            if let Some(v) = v.as_deref().filter(|v| !(key == "logfile" && *v == "syslog"))
                && let Err(why) = opt::existing_dirpath(v, home, cwd)
            {
                d.error(sec.loc(key).error(format!("invalid value '{v}': {why}")));
            }
        };
        check_dirpath("logfile", &logfile_raw, d);
        check_dirpath("pidfile", &pidfile_raw, d);
        let logfile =
            ov.logfile.clone().or(logfile_raw).unwrap_or_else(|| "supervisord.log".into());
        let pidfile =
            ov.pidfile.clone().or(pidfile_raw).unwrap_or_else(|| "supervisord.pid".into());
        let tmp = self.ctx.var("TMPDIR").filter(|t| Path::new(t).is_dir()).unwrap_or("/tmp");
        let childlogdir = sec.typed("childlogdir", &names, d, PathBuf::from(tmp), |v| {
            opt::existing_directory(v, home, cwd)
        });
        let directory = sec.typed("directory", &names, d, None, |v| {
            opt::existing_directory(v, home, cwd).map(Some)
        });
        SupervisordSection {
            logfile: if logfile == "syslog" {
                DaemonLog::Syslog
            } else {
                DaemonLog::Path(opt::normalize_path(&logfile, home, cwd))
            },
            logfile_maxbytes: ov.logfile_maxbytes.unwrap_or_else(|| {
                sec.typed("logfile_maxbytes", &names, d, 50 << 20, opt::byte_size)
            }),
            logfile_backups: ov
                .logfile_backups
                .unwrap_or_else(|| sec.typed("logfile_backups", &names, d, 10, opt::count32)),
            loglevel: ov
                .loglevel
                .unwrap_or_else(|| sec.typed("loglevel", &names, d, Level::Info, opt::log_level)),
            pidfile: opt::normalize_path(&pidfile, home, cwd),
            umask: ov.umask.unwrap_or_else(|| sec.typed("umask", &names, d, 0o22, opt::octal)),
            nodaemon: ov
                .nodaemon
                .unwrap_or_else(|| sec.typed("nodaemon", &names, d, false, opt::boolean)),
            silent: ov
                .silent
                .unwrap_or_else(|| sec.typed("silent", &names, d, false, opt::boolean)),
            minfds: ov.minfds.unwrap_or_else(|| {
                sec.non_negative(
                    "minfds",
                    &names,
                    d,
                    1024,
                    "no descriptor minimum is asked for, as with 0",
                )
            }),
            minprocs: ov
                .minprocs
                .unwrap_or_else(|| sec.typed("minprocs", &names, d, 200, opt::count)),
            nocleanup: ov
                .nocleanup
                .unwrap_or_else(|| sec.typed("nocleanup", &names, d, false, opt::boolean)),
            childlogdir: ov.childlogdir.clone().unwrap_or(childlogdir),
            user: ov.user.clone().or_else(|| sec.get("user", &names, d)),
            directory: ov.directory.clone().or(directory),
            strip_ansi: ov
                .strip_ansi
                .unwrap_or_else(|| sec.typed("strip_ansi", &names, d, false, opt::boolean)),
            environment: sec.typed("environment", &env_names, d, Vec::new(), opt::environment),
            identifier: ov
                .identifier
                .clone()
                .or_else(|| sec.get("identifier", &names, d))
                .unwrap_or_else(|| "supervisor".into()),
        }
    }

    fn rpcinterfaces(
        &self,
        ini: &Ini,
        base: &BTreeMap<String, Value>,
        d: &mut Diag,
    ) -> Vec<String> {
        let names = Names::new(base);
        let mut out = Vec::new();
        for s in ini.sections.iter().filter(|s| s.name.starts_with("rpcinterface:")) {
            let sec = self.sec(ini, s);
            let name = s.name.split_once(':').map(|(_, n)| n.to_string()).unwrap_or_default();
            match sec.get("supervisor.rpcinterface_factory", &names, d) {
                None if sec.opt("supervisor.rpcinterface_factory").is_none() => d.error(sec.section_loc().error(
                    "no supervisor.rpcinterface_factory: write supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
                )),
                None => {}
                Some(f) if f.trim() == "supervisor.rpcinterface:make_main_rpcinterface" => {}
                Some(f) => d.warn(sec.loc("supervisor.rpcinterface_factory").warning(format!(
                    "ignored: factory '{f}' is not built in; only the supervisor interface (supervisor.rpcinterface:make_main_rpcinterface) is served"
                ))),
            }
            out.push(name);
        }
        out
    }

    /// Every process group, in Python's order: `[group:x]` sections, then programs not in
    /// a group, event listeners and fcgi-programs; then sorted by (priority, name), and a
    /// second group with an already used name dropped (Python's supervisord adds only the
    /// first).
    fn groups(
        &self,
        ini: &Ini,
        base: &BTreeMap<String, Value>,
        global_env: &Option<std::sync::Arc<[(String, String)]>>,
        d: &mut Diag,
    ) -> Vec<GroupConfig> {
        let names = Names::new(base);
        let mut groups: Vec<(GroupConfig, Loc)> = Vec::new();
        let mut grouped: Vec<&str> = Vec::new();
        for s in ini.sections.iter().filter(|s| s.name.starts_with("group:")) {
            let sec = self.sec(ini, s);
            let Some(group_name) = self.section_suffix_name(&sec, d) else { continue };
            let programs =
                opt::list_of_strings(&sec.get("programs", &names, d).unwrap_or_default());
            let priority = sec.typed("priority", &names, d, 999, opt::integer);
            let mut processes = Vec::new();
            let mut seen: Vec<&str> = Vec::new();
            for program in &programs {
                if seen.contains(&program.as_str()) {
                    d.warn(
                        sec.loc("programs")
                            .warning(format!("program '{program}' is listed twice; using it once")),
                    );
                    continue;
                }
                seen.push(program);
                let p = ini.section(&format!("program:{program}"));
                let f = ini.section(&format!("fcgi-program:{program}"));
                let member = match (p, f) {
                    (Some(_), Some(_)) => {
                        d.error(sec.loc("programs").error(format!(
                            "invalid value '{}': name {program} is ambiguous: both [program:{program}] and [fcgi-program:{program}] exist",
                            sec.raw("programs").unwrap_or_default()
                        )));
                        continue;
                    }
                    (Some(m), None) | (None, Some(m)) => m,
                    (None, None) => {
                        d.error(sec.loc("programs").error(format!(
                            "invalid value '{}': names unknown program '{program}': there is no [program:{program}] or [fcgi-program:{program}] section",
                            sec.raw("programs").unwrap_or_default()
                        )));
                        continue;
                    }
                };
                grouped.push(&member.name);
                // Python builds fcgi members of a [group:x] as plain programs.
                processes.extend(self.processes(ini, member, &group_name, base, global_env, d));
            }
            groups.push((
                new_group(group_name, priority, GroupKind::Program, processes),
                sec.section_loc(),
            ));
        }
        for s in ini
            .sections
            .iter()
            .filter(|s| s.name.starts_with("program:") && !grouped.contains(&s.name.as_str()))
        {
            let sec = self.sec(ini, s);
            let Some(name) = self.section_suffix_name(&sec, d) else { continue };
            let priority = sec.typed("priority", &names, d, 999, opt::integer);
            let processes = self.processes(ini, s, &name, base, global_env, d);
            groups.push((
                new_group(name, priority, GroupKind::Program, processes),
                sec.section_loc(),
            ));
        }
        for s in ini.sections.iter().filter(|s| s.name.starts_with("eventlistener:")) {
            let sec = self.sec(ini, s);
            let Some(name) = self.section_suffix_name(&sec, d) else { continue };
            let priority = sec.typed("priority", &names, d, -1, opt::integer);
            let buffer_size =
                sec.typed("buffer_size", &names, d, 10, |v| match opt::python_int(v) {
                    Some(n) if n >= 1 => {
                        usize::try_from(n).map_err(|_| "expected an integer >= 1".to_string())
                    }
                    _ => Err("expected an integer >= 1".to_string()),
                });
            let result_handler =
                sec.typed("result_handler", &names, d, DEFAULT_RESULT_HANDLER.to_string(), |v| {
                    let spec = v.trim();
                    let well_formed = spec.split_once(':').is_some_and(|(m, f)| !m.is_empty() && !f.is_empty());
                    if well_formed {
                        Ok(spec.to_string())
                    } else {
                        Err(format!("cannot be resolved: expected module:function, such as {DEFAULT_RESULT_HANDLER}"))
                    }
                });
            if result_handler != DEFAULT_RESULT_HANDLER {
                d.warn(sec.loc("result_handler").warning(format!(
                    "result_handler={result_handler} is Python code, which cannot run here; the default handler is used (OK accepts an event, FAIL rejects it)"
                )));
            }
            let events = match sec.get("events", &names, d) {
                None if sec.opt("events").is_none() => {
                    d.error(sec.loc("events").error(
                        "an [eventlistener:x] section needs events= (a comma list of event types such as PROCESS_STATE, TICK_60)",
                    ));
                    Vec::new()
                }
                None => Vec::new(),
                Some(v) => {
                    let mut events: Vec<String> = Vec::new();
                    for e in opt::list_of_strings(&v).into_iter().map(|e| e.to_uppercase()) {
                        if !EVENT_TYPES.contains(&e.as_str()) {
                            d.error(sec.loc("events").error(format!(
                                "invalid value '{v}': unknown event type {e}; known types: {}",
                                EVENT_TYPES.join(", ")
                            )));
                        } else if !events.contains(&e) {
                            events.push(e);
                        }
                    }
                    if events.is_empty() && v.trim().is_empty() {
                        d.error(sec.loc("events").error(
                            "an [eventlistener:x] section needs at least one event type in events=",
                        ));
                    }
                    events
                }
            };
            if sec.typed("redirect_stderr", &names, d, false, opt::boolean) {
                d.error(sec.loc("redirect_stderr").error(
                    "invalid value 'true': redirect_stderr must be false for an event listener, whose stdout is the event protocol",
                ));
            }
            // Only the pool defaults to -1; its processes keep the usual 999 (verified).
            let processes = self.processes(ini, s, &name, base, global_env, d);
            let kind = GroupKind::EventListener(Box::new(ListenerKind {
                events,
                buffer_size,
                result_handler,
            }));
            groups.push((new_group(name, priority, kind, processes), sec.section_loc()));
        }
        for s in ini
            .sections
            .iter()
            .filter(|s| s.name.starts_with("fcgi-program:") && !grouped.contains(&s.name.as_str()))
        {
            let sec = self.sec(ini, s);
            let Some(name) = self.section_suffix_name(&sec, d) else { continue };
            let priority = sec.typed("priority", &names, d, 999, opt::integer);
            let kind = self.fcgi_kind(&sec, &name, &names, d);
            let processes = self.processes(ini, s, &name, base, global_env, d);
            if let Some(kind) = kind {
                groups.push((new_group(name, priority, kind, processes), sec.section_loc()));
            }
        }
        groups.sort_by(|(a, _), (b, _)| (a.priority, &a.name).cmp(&(b.priority, &b.name)));
        let mut out: Vec<GroupConfig> = Vec::with_capacity(groups.len());
        for (g, loc) in groups {
            if out.iter().any(|o| o.name == g.name) {
                d.warn(loc.warning(format!(
                    "ignored: a process group named '{}' is already defined by another section",
                    g.name
                )));
            } else {
                out.push(g);
            }
        }
        out
    }

    fn fcgi_kind(
        &self,
        sec: &Sec<'_>,
        name: &str,
        names: &Names<'_>,
        d: &mut Diag,
    ) -> Option<GroupKind> {
        let socket_backlog =
            sec.typed("socket_backlog", names, d, None, |v| match opt::python_int(v) {
                Some(n) if (1..=65535).contains(&n) => Ok(Some(n as u32)),
                _ => Err("expected an integer from 1 to 65535".to_string()),
            });
        let socket_owner = sec.get("socket_owner", names, d);
        let socket_mode = sec.typed("socket_mode", names, d, None, |v| opt::octal(v).map(Some));
        let mut socket_names = names.clone();
        socket_names.set("program_name", name);
        let Some(raw) = sec.get("socket", &socket_names, d) else {
            if sec.opt("socket").is_none() {
                d.error(sec.loc("socket").error(
                    "an [fcgi-program:x] section needs socket= (unix:///absolute/path or tcp://host:port)",
                ));
            }
            return None;
        };
        let socket = if let Some(path) = raw.strip_prefix("unix://") {
            if !path.starts_with('/') {
                d.error(sec.loc("socket").error(format!(
                    "invalid value '{raw}': the unix socket path must be absolute, as in unix:///run/app.sock"
                )));
                return None;
            }
            FcgiSocket::Unix(opt::normalize_path(path, None, Path::new("/")))
        } else {
            if socket_owner.is_some() || socket_mode.is_some() {
                d.error(sec.loc("socket").error(format!(
                    "invalid value '{raw}': socket_owner and socket_mode can only be used with a unix:// socket"
                )));
                return None;
            }
            let tcp =
                raw.strip_prefix("tcp://").and_then(|hp| hp.rsplit_once(':')).and_then(|(h, p)| {
                    let ok_host =
                        !h.is_empty() && !h.contains(':') && !h.contains(char::is_whitespace);
                    let port =
                        p.parse::<u16>().ok().filter(|_| p.bytes().all(|b| b.is_ascii_digit()));
                    port.filter(|_| ok_host)
                        .map(|port| FcgiSocket::Tcp { host: h.to_string(), port })
                });
            match tcp {
                Some(t) => t,
                None => {
                    d.error(sec.loc("socket").error(format!(
                        "invalid value '{raw}': expected unix:///absolute/path or tcp://host:port"
                    )));
                    return None;
                }
            }
        };
        Some(GroupKind::FcgiProgram(Box::new(FcgiKind {
            socket,
            socket_owner,
            socket_mode,
            socket_backlog,
        })))
    }

    /// The validated `x` of `[kind:x]`.
    fn section_suffix_name(&self, sec: &Sec<'_>, d: &mut Diag) -> Option<String> {
        let raw = sec.s.name.split_once(':').map(|(_, n)| n).unwrap_or_default();
        match opt::process_or_group_name(raw) {
            Ok(n) if !n.is_empty() => Some(n),
            Ok(_) => {
                d.error(sec.section_loc().error("the section name needs a name after the ':'"));
                None
            }
            Err(why) => {
                d.error(
                    sec.section_loc()
                        .error(format!("invalid section name '{}': {why}", sec.s.name)),
                );
                None
            }
        }
    }

    /// `_processes_from_section`: one ProcessConfig per `process_num`.
    fn processes(
        &self,
        ini: &Ini,
        s: &Section,
        group_name: &str,
        base: &BTreeMap<String, Value>,
        global_env: &Option<std::sync::Arc<[(String, String)]>>,
        d: &mut Diag,
    ) -> Vec<ProcessConfig> {
        let sec = self.sec(ini, s);
        let Some(program_name) = self.section_suffix_name(&sec, d) else { return Vec::new() };
        let home = self.home.as_deref();
        let mut names = Names::new(base);
        names
            .set("program_name", program_name.clone())
            .set("host_node_name", self.ctx.host_node_name.clone())
            .set("group_name", group_name);
        let n = &names;
        // Read before the per-process loop, so %(process_num)s is not available to them.
        let priority = sec.typed("priority", n, d, 999, opt::integer);
        let autostart = sec.typed("autostart", n, d, true, opt::boolean);
        let autorestart = sec.typed("autorestart", n, d, AutoRestart::Unexpected, opt::autorestart);
        let startsecs =
            sec.signed("startsecs", n, d, 1, "the process is RUNNING as soon as it is spawned");
        let startretries =
            sec.non_negative("startretries", n, d, 3, "a failed start is FATAL at once, as with 0");
        let startretries = u32::try_from(startretries).unwrap_or(u32::MAX);
        let stopsignal = sec.typed("stopsignal", n, d, 15, opt::signal);
        let stopwaitsecs = sec.non_negative(
            "stopwaitsecs",
            n,
            d,
            10,
            "SIGKILL follows the stop signal at once, as with 0",
        );
        let stopasgroup = sec.typed("stopasgroup", n, d, false, opt::boolean);
        let killasgroup = sec.typed("killasgroup", n, d, stopasgroup, opt::boolean);
        let stopastree = sec.typed("stopastree", n, d, true, opt::boolean);
        let exitcodes = sec.typed("exitcodes", n, d, vec![0], opt::exitcodes);
        let redirect_stderr = sec.typed("redirect_stderr", n, d, false, opt::boolean);
        let numprocs =
            sec.non_negative("numprocs", n, d, 1, "the program has no processes, as with 0");
        let numprocs = u32::try_from(numprocs).unwrap_or(u32::MAX);
        let numprocs_start = sec.typed("numprocs_start", n, d, 0, opt::integer);
        let stdout_capture = sec.typed("stdout_capture_maxbytes", n, d, 0, opt::byte_size);
        let stdout_events = sec.typed("stdout_events_enabled", n, d, false, opt::boolean);
        let stderr_capture = sec.typed("stderr_capture_maxbytes", n, d, 0, opt::byte_size);
        let stderr_events = sec.typed("stderr_events_enabled", n, d, false, opt::boolean);
        let serverurl =
            sec.get("serverurl", n, d).filter(|u| !u.trim().eq_ignore_ascii_case("auto"));
        let user = sec.get("user", n, d);
        let umask = sec.typed("umask", n, d, None, |v| opt::octal(v).map(Some));
        let io_node = sec.typed("io_node", n, d, false, opt::boolean);
        let lifecycle = self.lifecycle(&sec, n, d);
        let environment_raw = sec.raw("environment").unwrap_or_default();
        let process_name_raw = sec.raw("process_name").unwrap_or("%(program_name)s");
        if let Err(why) = opt::process_or_group_name(process_name_raw) {
            d.error(
                sec.loc("process_name").error(format!("invalid value '{process_name_raw}': {why}")),
            );
        }
        if numprocs > 1 && !process_name_raw.contains("%(process_num)") {
            d.error(sec.loc("process_name").error(format!(
                "invalid value '{process_name_raw}': with numprocs={numprocs} the process_name must contain %(process_num), for example process_name=%(program_name)s_%(process_num)02d"
            )));
        }
        if stopasgroup && !killasgroup {
            d.error(
                sec.loc("killasgroup").error(
                    "invalid value 'false': killasgroup cannot be false when stopasgroup=true",
                ),
            );
        }
        if sec.opt("command").is_none() {
            d.error(sec.section_loc().error(format!(
                "no command: a [{}] section needs command= (the program to run)",
                s.name
            )));
        }
        let errors_before = d.errors.len();
        // Sized up front: a grown Vec of one config would hold room for four.
        let mut out = Vec::with_capacity((numprocs as usize).min(1024));
        let count = i64::from(numprocs);
        for process_num in numprocs_start..numprocs_start.saturating_add(count) {
            let mut pn = names.clone();
            pn.set_int("process_num", process_num).set_int("numprocs", count);
            let own_env = sec
                .expand_value("environment", environment_raw, &pn, d)
                .map(|v| match opt::environment(&v) {
                    Ok(env) => env,
                    Err(why) => {
                        d.error(
                            sec.loc("environment").error(format!("invalid value '{v}': {why}")),
                        );
                        Vec::new()
                    }
                })
                .unwrap_or_default();
            // Options read after the environment can use the program's own ENV_ names.
            for (k, v) in &own_env {
                pn.set(&format!("ENV_{k}"), v.clone());
            }
            let directory = sec.get("directory", &pn, d).map(|v| opt::expand_user(&v, home));
            let mut stdout = self.log_config(&sec, "stdout", &pn, stdout_capture, stdout_events, d);
            let mut stderr = self.log_config(&sec, "stderr", &pn, stderr_capture, stderr_events, d);
            if redirect_stderr {
                if matches!(stderr.logfile, LogTarget::Path(_)) {
                    d.warn(sec.loc("stderr_logfile").warning(format!(
                        "For [{}], redirect_stderr=true but stderr_logfile has also been set to a filename, the filename has been ignored",
                        s.name
                    )));
                }
                stderr.logfile = LogTarget::None;
            }
            let command = sec.get("command", &pn, d).unwrap_or_default();
            let name =
                sec.expand_value("process_name", process_name_raw, &pn, d).unwrap_or_default();
            let trimmed = name.trim();
            stdout.prefix =
                self.line_prefix(ini, &sec, "stdout", group_name, trimmed, &pn, d).map(Box::new);
            stderr.prefix =
                self.line_prefix(ini, &sec, "stderr", group_name, trimmed, &pn, d).map(Box::new);
            if sec.opt("process_name").is_some()
                && let Err(why) = opt::process_or_group_name(&name)
            {
                // Python checks only the unexpanded value and runs such a process; its name
                // breaks the listener protocol and `group:name` specs, so say so.
                d.warn(sec.loc("process_name").warning(format!(
                    "process_name '{process_name_raw}' expands to '{name}': {why}; the process runs, but names with these characters break event listeners and supervisorctl name specs"
                )));
            }
            let environment = Environment::new(global_env.clone(), own_env);
            out.push(ProcessConfig {
                name: name.trim().to_string(),
                group: group_name.to_string(),
                program: program_name.as_str().into(),
                command: command.into(),
                process_num,
                numprocs,
                priority,
                autostart,
                autorestart,
                startsecs,
                startretries,
                exitcodes: exitcodes.as_slice().into(),
                stopsignal,
                stopwaitsecs,
                stopasgroup,
                killasgroup,
                stopastree,
                user: user.as_deref().map(Into::into),
                directory: directory.map(PathBuf::into_boxed_path),
                umask,
                environment,
                redirect_stderr,
                serverurl: serverurl.as_deref().map(Into::into),
                stdout,
                stderr,
                io_node,
                lifecycle: (lifecycle != Lifecycle::NONE).then(|| Box::new(lifecycle.clone())),
            });
            if sec.opt("depends_on").is_some() {
                d.depends_on.push(PendingDeps {
                    key: ProcessKey {
                        group: group_name.to_string(),
                        name: name.trim().to_string(),
                    },
                    loc: sec.loc("depends_on"),
                    raw: sec.raw("depends_on").unwrap_or_default().to_string(),
                });
            }
            // One bad per-process value would otherwise be reported numprocs times.
            if d.errors.len() > errors_before {
                break;
            }
        }
        out
    }

    /// The lifecycle options, with their defaults; timings given without their check are
    /// warnings (they do nothing).
    fn lifecycle(&self, sec: &Sec<'_>, n: &Names<'_>, d: &mut Diag) -> Lifecycle {
        let secs = |key: &str, default: u64, d: &mut Diag| {
            sec.typed(key, n, d, Duration::from_secs(default), lc::positive_seconds)
        };
        let depends_on = sec
            .typed("depends_on", n, d, Vec::new(), lc::depends_on)
            .into_iter()
            .map(|(name, condition)| lc::Dependency { name, condition, processes: Vec::new() })
            .collect();
        let ready_form = sec
            .typed("ready_check", n, d, None, |v| lc::check_form(v, lc::CheckUse::Ready).map(Some));
        let ready_timeout = secs("ready_timeout", 60, d);
        let ready_interval = secs("ready_check_interval", 1, d);
        let ready_attempt = secs("ready_check_timeout", 1, d);
        let health_form = sec.typed("health_check", n, d, None, |v| {
            lc::check_form(v, lc::CheckUse::Health).map(Some)
        });
        let health_interval = secs("health_check_interval", 10, d);
        let health_timeout = secs("health_check_timeout", 1, d);
        let health_retries =
            sec.typed("health_check_retries", n, d, 3, |v| match opt::count32(v) {
                Ok(0) => Err("expected an integer >= 1".to_string()),
                other => other,
            });
        let unused = |key: &str, check: &str, d: &mut Diag| {
            if sec.opt(key).is_some() && sec.opt(check).is_none() {
                d.warn(
                    sec.loc(key).warning(format!("ignored: {key} has no effect without {check}")),
                );
            }
        };
        for key in ["ready_timeout", "ready_check_interval", "ready_check_timeout"] {
            unused(key, "ready_check", d);
        }
        for key in ["health_check_interval", "health_check_timeout", "health_check_retries"] {
            unused(key, "health_check", d);
        }
        unused("restart_backoff_initial", "restart_backoff_max", d);
        let essential = sec.typed("essential", n, d, false, opt::boolean);
        let initial = secs("restart_backoff_initial", 1, d);
        let max =
            sec.typed("restart_backoff_max", n, d, None, |v| lc::positive_seconds(v).map(Some));
        if let Some(m) = max
            && m < initial
        {
            d.error(sec.loc("restart_backoff_max").error(format!(
                "invalid value '{}': restart_backoff_max must be at least restart_backoff_initial ({}s)",
                sec.raw("restart_backoff_max").unwrap_or_default(),
                initial.as_secs_f64()
            )));
        }
        let restart_limit =
            sec.typed("restart_limit", n, d, None, |v| lc::restart_limit(v).map(Some));
        Lifecycle {
            depends_on,
            ready_check: ready_form.map(|form| lc::ReadyCheck {
                form,
                timeout: ready_timeout,
                interval: ready_interval,
                attempt_timeout: ready_attempt,
            }),
            health_check: health_form.map(|form| lc::HealthCheck {
                form,
                interval: health_interval,
                timeout: health_timeout,
                retries: health_retries,
            }),
            essential,
            restart_backoff: lc::RestartBackoff { initial, max },
            restart_limit,
        }
    }

    fn log_config(
        &self,
        sec: &Sec<'_>,
        channel: &str,
        names: &Names<'_>,
        capture_maxbytes: u64,
        events_enabled: bool,
        d: &mut Diag,
    ) -> LogConfig {
        let key = format!("{channel}_logfile");
        let maxbytes = sec.typed(&format!("{key}_maxbytes"), names, d, 50 << 20, opt::byte_size);
        let backups = sec.typed(&format!("{key}_backups"), names, d, 10, opt::count32);
        let mut syslog = sec.typed(&format!("{channel}_syslog"), names, d, false, opt::boolean);
        // Python expands *_logfile twice (once on read, once more in the loop), so a
        // literal % needs %%%% there; do the same so such paths mean the same file.
        let value = sec.get(&key, names, d).and_then(|v| sec.expand_value(&key, &v, names, d));
        let logfile = match value {
            None => LogTarget::Auto,
            Some(v) => match v.to_lowercase().as_str() {
                "none" | "off" => LogTarget::None,
                "auto" => LogTarget::Auto,
                "syslog" => {
                    d.warn(sec.loc(&key).warning(format!(
                        "For [{}], {key}=syslog but this is deprecated and will be removed.  Use {channel}_syslog=true to enable syslog instead.",
                        sec.s.name
                    )));
                    syslog = true;
                    LogTarget::None
                }
                _ => match opt::existing_dirpath(&v, self.home.as_deref(), &self.ctx.cwd) {
                    Ok(p) => LogTarget::Path(p),
                    Err(why) => {
                        d.error(sec.loc(&key).error(format!("invalid value '{v}': {why}")));
                        LogTarget::None
                    }
                },
            },
        };
        if logfile == LogTarget::Auto && maxbytes == 0 {
            d.warn(sec.loc(&key).warning(format!(
                "For [{}], AUTO logging used for {key} without rollover, set maxbytes > 0 to avoid filling up filesystem unintentionally",
                sec.s.name
            )));
        }
        LogConfig {
            logfile,
            maxbytes,
            backups,
            capture_maxbytes,
            events_enabled,
            syslog,
            prefix: None,
        }
    }

    /// `<channel>_log_prefix` of a process, or of `[supervisord]` when the program does not
    /// set it: `json`, or a template expanded with the program's names plus
    /// `%(process_name)s`, `%(channel)s` and `%(time)s` (filled in per line).
    #[allow(clippy::too_many_arguments)]
    fn line_prefix(
        &self,
        ini: &Ini,
        sec: &Sec<'_>,
        channel: &str,
        group: &str,
        process: &str,
        names: &Names<'_>,
        d: &mut Diag,
    ) -> Option<LinePrefix> {
        let key = format!("{channel}_log_prefix");
        let daemon = ini.section("supervisord").map(|s| self.sec(ini, s));
        let from = if sec.opt(&key).is_some() { sec } else { daemon.as_ref()? };
        let raw = from.raw(&key)?;
        if raw.trim().eq_ignore_ascii_case("json") {
            let process =
                if group == process { process.to_string() } else { format!("{group}:{process}") };
            return Some(LinePrefix::Json { process, channel: channel.to_string() });
        }
        let mut names = names.clone();
        names.set("process_name", process).set("channel", channel).set("time", TIME_MARK);
        let text = from.expand_value(&key, raw, &names, d)?;
        if text.is_empty() {
            return None;
        }
        // The ini format trims values, so a template cannot end in a space itself: one
        // separates it from the line unless the template ends in other whitespace.
        let text = if text.ends_with(char::is_whitespace) { text } else { text + " " };
        let mut parts = Vec::new();
        for (i, piece) in text.split(TIME_MARK).enumerate() {
            if i > 0 {
                parts.push(PrefixPart::Time);
            }
            if !piece.is_empty() {
                parts.push(PrefixPart::Text(piece.to_string()));
            }
        }
        Some(LinePrefix::Template(parts))
    }

    fn auth(&self, sec: &Sec<'_>, names: &Names<'_>, d: &mut Diag) -> Option<Credentials> {
        let username = sec.get("username", names, d);
        let password = sec.get("password", names, d);
        match (username, password) {
            (Some(username), Some(password)) => Some(Credentials { username, password }),
            (None, None) => None,
            (u, _) => {
                let missing = if u.is_some() { "password" } else { "username" };
                d.error(sec.loc(missing).error(format!(
                    "incomplete authentication: {missing} is missing; set both username and password, or neither"
                )));
                None
            }
        }
    }

    fn unix_servers(
        &self,
        ini: &Ini,
        base: &BTreeMap<String, Value>,
        d: &mut Diag,
    ) -> (Option<UnixHttpServer>, Vec<UnixHttpServer>) {
        let names = Names::new(base);
        let mut main = None;
        let mut more = Vec::new();
        for s in ini.sections.iter().filter(|s| server_name(&s.name, "unix_http_server").is_some())
        {
            let sec = self.sec(ini, s);
            let name = server_name(&s.name, "unix_http_server").flatten();
            let auth = self.auth(&sec, &names, d);
            let file = match sec.get("file", &names, d) {
                Some(f) => opt::normalize_path(f.trim(), self.home.as_deref(), &self.ctx.cwd),
                None => {
                    if sec.opt("file").is_none() {
                        d.error(sec.loc("file").error("no file=: [unix_http_server] needs the socket path, e.g. file=/tmp/supervisor.sock"));
                    }
                    continue;
                }
            };
            let chown = sec.get("chown", &names, d);
            let chmod = sec.typed("chmod", &names, d, 0o700, opt::octal);
            let server = UnixHttpServer { name: name.clone(), file, chmod, chown, auth };
            if name.is_none() && main.is_none() { main = Some(server) } else { more.push(server) }
        }
        (main, more)
    }

    fn inet_servers(
        &self,
        ini: &Ini,
        base: &BTreeMap<String, Value>,
        d: &mut Diag,
    ) -> (Option<InetHttpServer>, Vec<InetHttpServer>) {
        let names = Names::new(base);
        let mut main = None;
        let mut more = Vec::new();
        for s in ini.sections.iter().filter(|s| server_name(&s.name, "inet_http_server").is_some())
        {
            let sec = self.sec(ini, s);
            let name = server_name(&s.name, "inet_http_server").flatten();
            let auth = self.auth(&sec, &names, d);
            if sec.opt("port").is_none() {
                d.error(
                    sec.loc("port").error(
                        "no port=: [inet_http_server] needs port=, e.g. port=127.0.0.1:9001",
                    ),
                );
                continue;
            }
            let Some((host, port)) =
                sec.typed("port", &names, d, None, |v| opt::inet_address(v).map(Some))
            else {
                continue;
            };
            let server = InetHttpServer { name: name.clone(), host, port, auth };
            if name.is_none() && main.is_none() { main = Some(server) } else { more.push(server) }
        }
        (main, more)
    }

    fn ctl(
        &self,
        ini: &Ini,
        s: &Section,
        base: &BTreeMap<String, Value>,
        d: &mut Diag,
    ) -> CtlSection {
        let sec = self.sec(ini, s);
        let names = Names::new(base);
        let home = self.home.as_deref();
        let cwd = &self.ctx.cwd;
        let serverurl =
            sec.get("serverurl", &names, d).unwrap_or_else(|| "http://localhost:9001".into());
        let serverurl = match serverurl.strip_prefix("unix://") {
            Some(p) => format!("unix://{}", opt::normalize_path(p, home, cwd).display()),
            None => serverurl,
        };
        CtlSection {
            serverurl,
            username: sec.get("username", &names, d),
            password: sec.get("password", &names, d),
            prompt: sec.get("prompt", &names, d).unwrap_or_else(|| "supervisor".into()),
            history_file: sec
                .get("history_file", &names, d)
                .filter(|h| !h.is_empty())
                .map(|h| opt::normalize_path(&h, home, cwd)),
        }
    }

    /// Python ignores unknown sections and options silently; we keep going too but say
    /// so, since a misspelt option (`autorestrat`) otherwise looks like a daemon bug.
    fn unknown_sections_and_options(&self, ini: &Ini, d: &mut Diag) {
        for s in &ini.sections {
            let known: Option<Vec<&[&str]>> = match s.name.as_str() {
                "supervisord" => Some(vec![SUPERVISORD_OPTIONS]),
                "supervisorctl" => Some(vec![CTL_OPTIONS]),
                "include" => Some(vec![INCLUDE_OPTIONS]),
                n if server_name(n, "unix_http_server").is_some() => Some(vec![UNIX_OPTIONS]),
                n if server_name(n, "inet_http_server").is_some() => Some(vec![INET_OPTIONS]),
                n if n.starts_with("program:") => Some(vec![PROGRAM_OPTIONS]),
                n if n.starts_with("eventlistener:") => {
                    Some(vec![PROGRAM_OPTIONS, LISTENER_OPTIONS])
                }
                n if n.starts_with("fcgi-program:") => Some(vec![PROGRAM_OPTIONS, FCGI_OPTIONS]),
                n if n.starts_with("group:") => Some(vec![GROUP_OPTIONS]),
                // Keys other than the factory are arguments to the factory.
                n if n.starts_with("rpcinterface:") || n.starts_with("ctlplugin:") => None,
                _ => {
                    let loc = Loc {
                        file: s.file.clone(),
                        line: Some(s.line),
                        section: Some(s.name.clone()),
                        option: None,
                    };
                    d.warn(loc.warning("ignored: unknown section"));
                    None
                }
            };
            let Some(known) = known else { continue };
            for o in &s.options {
                if !known.iter().any(|list| list.contains(&o.key.as_str())) {
                    let loc = Loc {
                        file: o.file.clone(),
                        line: Some(o.line),
                        section: Some(s.name.clone()),
                        option: Some(o.key.clone()),
                    };
                    d.warn(loc.warning("ignored: unknown option"));
                }
            }
        }
    }
}

/// `Some(None)` for `[kind]`, `Some(Some(name))` for `[kind:name]`, None otherwise.
fn server_name(section: &str, kind: &str) -> Option<Option<String>> {
    let rest = section.strip_prefix(kind)?;
    if rest.is_empty() {
        return Some(None);
    }
    rest.strip_prefix(':').map(|n| Some(n.to_string()))
}

/// A group with its processes in start order: Python's `ProcessGroup.start_necessary`
/// sorts by (priority, name), also across the members of a `[group:x]`.
fn new_group(
    name: String,
    priority: i64,
    kind: GroupKind,
    mut processes: Vec<ProcessConfig>,
) -> GroupConfig {
    processes.sort_by(|a, b| (a.priority, &a.name).cmp(&(b.priority, &b.name)));
    // Not `into_iter().collect()`: that reuses the configs' allocation in place, and a
    // group of one would keep 760 bytes for its 8-byte pointer for as long as it exists.
    let mut shared = Vec::with_capacity(processes.len());
    shared.extend(processes.into_iter().map(std::sync::Arc::new));
    GroupConfig { name, priority, kind, processes: shared }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A temp dir holding `files`, loaded from its first file.
    struct Fixture {
        dir: tempfile::TempDir,
    }

    impl Fixture {
        fn new(files: &[(&str, &str)]) -> Fixture {
            let dir =
                tempfile::Builder::new().prefix("sdcfg").tempdir_in("/tmp").expect("temp dir");
            for (name, text) in files {
                let path = dir.path().join(name);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).expect("mkdir");
                }
                std::fs::write(path, text).expect("write");
            }
            Fixture { dir }
        }

        fn ctx(&self) -> LoadContext {
            LoadContext {
                env: vec![("HOME".into(), "/home/u".into()), ("FOO".into(), "bar".into())],
                cwd: self.dir.path().to_path_buf(),
                host_node_name: "node1".into(),
            }
        }

        fn load(&self, name: &str) -> Result<Config, Vec<ConfigError>> {
            load(Path::new(name), &Overrides::default(), &self.ctx())
        }

        fn path(&self) -> &Path {
            self.dir.path()
        }
    }

    fn ok(text: &str) -> (Fixture, Config) {
        let f = Fixture::new(&[("s.conf", text)]);
        let cfg = f.load("s.conf").unwrap_or_else(|e| panic!("{e:#?}"));
        (f, cfg)
    }

    fn errors(text: &str) -> Vec<String> {
        let f = Fixture::new(&[("s.conf", text)]);
        match f.load("s.conf") {
            Ok(_) => panic!("loaded:\n{text}"),
            Err(e) => e.iter().map(ToString::to_string).collect(),
        }
    }

    fn only(cfg: &Config) -> &ProcessConfig {
        let procs: Vec<_> = cfg.processes().collect();
        assert_eq!(procs.len(), 1, "{procs:#?}");
        procs.first().map(|(_, p)| *p).expect("one process")
    }

    #[test]
    fn program_defaults_are_pythons() {
        let (f, cfg) = ok("[supervisord]\n[program:web]\ncommand=/bin/web\n");
        let p = only(&cfg);
        let auto = LogConfig {
            logfile: LogTarget::Auto,
            maxbytes: 50 << 20,
            backups: 10,
            capture_maxbytes: 0,
            events_enabled: false,
            syslog: false,
            prefix: None,
        };
        let want = ProcessConfig {
            name: "web".into(),
            group: "web".into(),
            program: "web".into(),
            command: "/bin/web".into(),
            process_num: 0,
            numprocs: 1,
            priority: 999,
            autostart: true,
            autorestart: AutoRestart::Unexpected,
            startsecs: 1,
            startretries: 3,
            exitcodes: Box::new([0]),
            stopsignal: 15,
            stopwaitsecs: 10,
            stopasgroup: false,
            killasgroup: false,
            stopastree: true,
            user: None,
            directory: None,
            umask: None,
            environment: Environment::default(),
            redirect_stderr: false,
            serverurl: None,
            stdout: auto.clone(),
            stderr: auto,
            io_node: false,
            lifecycle: None,
        };
        assert_eq!(p, &want);
        let s = &cfg.supervisord;
        assert_eq!(s.logfile, DaemonLog::Path(f.path().join("supervisord.log")));
        assert_eq!(s.pidfile, f.path().join("supervisord.pid"));
        assert_eq!(
            (s.logfile_maxbytes, s.logfile_backups, s.loglevel),
            (50 << 20, 10, Level::Info)
        );
        assert_eq!(
            (s.umask, s.minfds, s.minprocs, s.identifier.as_str()),
            (0o22, 1024, 200, "supervisor")
        );
        assert!(!s.nodaemon && !s.silent && !s.nocleanup && !s.strip_ansi);
        assert_eq!(cfg.here, f.path());
        assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
    }

    #[test]
    fn every_program_option_is_typed() {
        let (_f, cfg) = ok(
            "[supervisord]\nenvironment=G=1,A=x\n[program:w]\ncommand=/bin/w %(ENV_FOO)s %(here)s\n\
             priority=5\nautostart=false\nautorestart=true\nstartsecs=0\nstartretries=7\nexitcodes=0,2\n\
             stopsignal=SIGusr1\nstopwaitsecs=3\nstopasgroup=true\nuser=nobody\ndirectory=~/w\numask=002\n\
             environment=A=\"x,y\",B='z'\nredirect_stderr=true\nserverurl=AUTO\nio_node=true\n\
             stdout_logfile=NONE\nstdout_logfile_maxbytes=1KB\nstdout_logfile_backups=0\n\
             stdout_capture_maxbytes=1MB\nstdout_events_enabled=yes\nstdout_syslog=on\n",
        );
        let p = only(&cfg);
        assert!(p.command.starts_with("/bin/w bar /tmp/sdcfg"), "{}", p.command);
        assert_eq!((p.priority, p.autostart, p.autorestart), (5, false, AutoRestart::True));
        assert_eq!((p.startsecs, p.startretries, &*p.exitcodes), (0, 7, &[0, 2][..]));
        assert_eq!(
            (p.stopsignal, p.stopwaitsecs, p.stopasgroup, p.killasgroup),
            (10, 3, true, true)
        );
        assert_eq!(p.user.as_deref(), Some("nobody"));
        assert_eq!(p.directory.as_deref(), Some(Path::new("/home/u/w")));
        assert_eq!(p.umask, Some(0o2));
        // [supervisord] environment first, the program's own keys override in place.
        let env: Vec<(&str, &str)> =
            p.environment.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(env, [("G", "1"), ("A", "x,y"), ("B", "z")]);
        assert!(p.redirect_stderr && p.io_node && p.serverurl.is_none());
        assert_eq!(p.stderr.logfile, LogTarget::None);
        let want = LogConfig {
            logfile: LogTarget::None,
            maxbytes: 1024,
            backups: 0,
            capture_maxbytes: 1 << 20,
            events_enabled: true,
            syslog: true,
            prefix: None,
        };
        assert_eq!(p.stdout, want);
    }

    #[test]
    fn numprocs_expand_names_and_per_process_options() {
        // Python: process_name=b%(process_num)d, numprocs=2, numprocs_start=5 gives b5, b6.
        let (_f, cfg) = ok(
            "[supervisord]\n[program:b]\ncommand=/bin/b %(process_num)02d of %(numprocs)d\n\
             process_name=b%(process_num)d\nnumprocs=2\nnumprocs_start=5\nenvironment=N=%(process_num)d\n\
             stdout_logfile=/tmp/b-%(process_num)d.log\ndirectory=/srv/%(ENV_N)s\n",
        );
        let procs: Vec<&ProcessConfig> = cfg.processes().map(|(_, p)| p).collect();
        let got: Vec<(&str, &str, i64)> =
            procs.iter().map(|p| (p.name.as_str(), &*p.command, p.process_num)).collect();
        assert_eq!(got, [("b5", "/bin/b 05 of 2", 5), ("b6", "/bin/b 06 of 2", 6)]);
        let p6 = procs.get(1).expect("b6");
        assert_eq!(p6.stdout.logfile, LogTarget::Path("/tmp/b-6.log".into()));
        assert_eq!(p6.directory.as_deref(), Some(Path::new("/srv/6")));
        assert_eq!(cfg.groups.len(), 1);
    }

    #[test]
    fn numprocs_without_process_num_fails_like_python() {
        let e = errors("[supervisord]\n[program:a]\ncommand=/bin/cat\nnumprocs=2\n");
        assert_eq!(e.len(), 1, "{e:?}");
        let e = e.first().map(String::as_str).unwrap_or_default();
        assert!(e.starts_with("s.conf:2: [program:a] process_name: invalid value '%(program_name)s': with numprocs=2 the process_name must contain %(process_num)"), "{e}");
    }

    #[test]
    fn process_num_is_not_available_before_the_loop() {
        let e = errors("[supervisord]\n[program:a]\ncommand=x\npriority=%(process_num)d\n");
        let e = e.first().map(String::as_str).unwrap_or_default();
        assert!(e.contains("s.conf:4: [program:a] priority: invalid value '%(process_num)d': %(process_num) names nothing"), "{e}");
        assert!(e.contains("only available in command"), "{e}");
    }

    #[test]
    fn groups_take_their_members_and_sort_like_python() {
        // Verified with the reference: a program may sit in two [group:x] sections, and
        // groups sort by (priority, name) with ASCII order for names.
        let (_f, cfg) = ok(
            "[supervisord]\n[group:g]\nprograms=a,b\n[group:h]\nprograms=a\npriority=1\n\
             [program:a]\ncommand=/bin/a\nprocess_name=%(group_name)s_%(program_name)s\n\
             [program:b]\ncommand=/bin/b\npriority=3\n[program:A]\ncommand=/bin/A\n\
             [program:c]\ncommand=/bin/c\npriority=5\n[eventlistener:l]\ncommand=/bin/l\nevents=PROCESS_STATE,tick_60\n",
        );
        let rows: Vec<(&str, &str)> =
            cfg.processes().map(|(g, p)| (g.name.as_str(), p.name.as_str())).collect();
        assert_eq!(
            rows,
            [("l", "l"), ("h", "h_a"), ("c", "c"), ("A", "A"), ("g", "b"), ("g", "g_a")]
        );
        let l = cfg.group("l").expect("listener");
        assert_eq!(l.priority, -1);
        assert_eq!(l.processes.first().map(|p| p.priority), Some(999));
        assert_eq!(
            l.kind,
            GroupKind::EventListener(Box::new(ListenerKind {
                events: vec!["PROCESS_STATE".into(), "TICK_60".into()],
                buffer_size: 10,
                result_handler: DEFAULT_RESULT_HANDLER.into()
            }))
        );
    }

    #[test]
    fn duplicate_group_names_keep_the_first_and_warn() {
        let (_f, cfg) = ok(
            "[supervisord]\n[program:x]\ncommand=/bin/p\n[eventlistener:x]\ncommand=/bin/l\nevents=TICK_5\npriority=999\n",
        );
        assert_eq!(cfg.groups.len(), 1);
        assert_eq!(cfg.groups.first().map(|g| &g.kind), Some(&GroupKind::Program));
        assert!(
            cfg.warnings.iter().any(|w| w.message.contains("already defined")),
            "{:?}",
            cfg.warnings
        );
    }

    #[test]
    fn include_globs_are_relative_to_the_main_file() {
        let f = Fixture::new(&[
            ("etc/main.conf", "[supervisord]\n[include]\nfiles=conf.d/*.conf other/none.ini\n"),
            ("etc/conf.d/b.conf", "[program:b]\ncommand=%(here)s/b\n[include]\nfiles=*.x\n"),
            ("etc/conf.d/a.conf", "[program:a]\ncommand=/bin/a\n"),
            ("etc/conf.d/.hidden.conf", "[program:h]\ncommand=/bin/h\n"),
        ]);
        let cfg = f.load("etc/main.conf").unwrap_or_else(|e| panic!("{e:#?}"));
        let names: Vec<&str> = cfg.processes().map(|(_, p)| p.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        let b = cfg.group("b").and_then(|g| g.processes.first()).expect("b");
        assert_eq!(PathBuf::from(&*b.command), f.path().join("etc/conf.d/b"));
        let conf_d = f.path().join("etc/conf.d");
        assert_eq!(cfg.included, [conf_d.join("a.conf"), conf_d.join("b.conf")]);
        let warned: Vec<&str> = cfg.warnings.iter().map(|w| w.message.as_str()).collect();
        assert!(warned.iter().any(|w| w.starts_with("No file matches via include")), "{warned:?}");
        assert!(warned.iter().any(|w| w.contains("only read from the main")), "{warned:?}");
    }

    #[test]
    fn errors_in_included_files_name_that_file_and_line() {
        let f = Fixture::new(&[
            ("main.conf", "[supervisord]\n[include]\nfiles=inc/*.conf\n"),
            ("inc/w.conf", "[program:w]\ncommand=/bin/w\nstartsecs=abc\n"),
        ]);
        let e: Vec<String> =
            f.load("main.conf").err().unwrap_or_default().iter().map(ToString::to_string).collect();
        let want = format!(
            "{}:3: [program:w] startsecs: invalid value 'abc': expected an integer",
            f.path().join("inc/w.conf").display()
        );
        assert_eq!(e, [want]);
    }

    #[test]
    fn all_errors_are_collected() {
        let e = errors(
            "[supervisord]\nloglevel=loud\n[program:a]\nstartsecs=x\nstopsignal=FOO\nexitcodes=0,256\n\
             autorestart=maybe\n[program:b]\ncommand=/bin/b\nstdout_logfile=/nonexistent/dir/x.log\n\
             [group:g]\nprograms=nope\n[inet_http_server]\nport=70000\n[unix_http_server]\nusername=u\nfile=/tmp/x.sock\n",
        );
        let want_starts = [
            "s.conf:2: [supervisord] loglevel: invalid value 'loud'",
            "s.conf:4: [program:a] startsecs: invalid value 'x'",
            "s.conf:5: [program:a] stopsignal: invalid value 'FOO'",
            "s.conf:6: [program:a] exitcodes: invalid value '0,256'",
            "s.conf:7: [program:a] autorestart: invalid value 'maybe'",
            "s.conf:3: [program:a] no command",
            "s.conf:10: [program:b] stdout_logfile: invalid value '/nonexistent/dir/x.log': the directory /nonexistent/dir does not exist",
            "s.conf:12: [group:g] programs: invalid value 'nope': names unknown program 'nope'",
            "s.conf:14: [inet_http_server] port: invalid value '70000'",
            "s.conf:15: [unix_http_server] password: incomplete authentication",
        ];
        for want in want_starts {
            assert!(e.iter().any(|l| l.starts_with(want)), "missing {want:?} in\n{}", e.join("\n"));
        }
        assert_eq!(e.len(), want_starts.len(), "{}", e.join("\n"));
    }

    #[test]
    fn missing_supervisord_section_and_syntax_errors() {
        let e = errors("x=1\n[program:a]\ncommand=/bin/a\n");
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e.iter().any(|l| l.starts_with("s.conf:1: 'x=1' comes before the first [section]")),
            "{e:?}"
        );
        assert!(e.iter().any(|l| l.starts_with("s.conf: no [supervisord] section")), "{e:?}");
    }

    #[test]
    fn expansion_names_per_section() {
        let (f, cfg) = ok(
            "[supervisord]\nenvironment=SV=%(host_node_name)s\nchildlogdir=%(here)s\n\
             [unix_http_server]\nfile=%(here)s/s.sock\n[supervisorctl]\nserverurl=unix://%(here)s/../x/s.sock\n\
             [program:p]\ncommand=%(program_name)s %(group_name)s %(host_node_name)s %(ENV_SV)s %%\n\
             stderr_logfile=%(here)s/e%%%%.log\n",
        );
        let p = only(&cfg);
        assert_eq!(&*p.command, "p p node1 node1 %");
        // *_logfile is expanded twice, as in Python, so %%%% is one literal %.
        assert_eq!(p.stderr.logfile, LogTarget::Path(f.path().join("e%.log")));
        assert_eq!(cfg.supervisord.childlogdir, f.path());
        assert_eq!(
            cfg.unix_http_server.as_ref().map(|u| u.file.clone()),
            Some(f.path().join("s.sock"))
        );
        let parent = f.path().parent().expect("parent").join("x/s.sock");
        assert_eq!(
            cfg.supervisorctl.as_ref().map(|c| c.serverurl.clone()),
            Some(format!("unix://{}", parent.display()))
        );
        assert_eq!(
            cfg.default_serverurl(),
            Some(format!("unix://{}", f.path().join("s.sock").display()))
        );
    }

    #[test]
    fn servers_and_ctl_defaults() {
        let (_f, cfg) = ok(
            "[supervisord]\n[inet_http_server]\nport=*:9001\nusername=u\npassword={SHA}ab\n\
             [inet_http_server:two]\nport=LocalHost:9002\n[supervisorctl]\n[rpcinterface:supervisor]\n\
             supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n",
        );
        let inet = cfg.inet_http_server.clone().expect("inet");
        assert_eq!((inet.host.as_str(), inet.port), ("", 9001));
        assert_eq!(inet.auth.map(|a| a.password), Some("{SHA}ab".into()));
        let two = cfg.more_inet_http_servers.first().expect("named server");
        assert_eq!(
            (two.name.as_deref(), two.host.as_str(), two.port),
            (Some("two"), "localhost", 9002)
        );
        let ctl = cfg.supervisorctl.clone().expect("ctl");
        assert_eq!(
            (ctl.serverurl.as_str(), ctl.prompt.as_str()),
            ("http://localhost:9001", "supervisor")
        );
        assert_eq!(cfg.rpcinterfaces, ["supervisor"]);
        assert_eq!(cfg.default_serverurl(), Some("http://localhost:9001".into()));
    }

    #[test]
    fn fcgi_programs() {
        let (_f, cfg) = ok(
            "[supervisord]\n[fcgi-program:f]\ncommand=/bin/f\nsocket=unix:///tmp/%(program_name)s.sock\n\
             socket_mode=0660\n[fcgi-program:t]\ncommand=/bin/t\nsocket=tcp://localhost:8000\nsocket_backlog=5\n",
        );
        let f = cfg.group("f").map(|g| g.kind.clone());
        assert_eq!(
            f,
            Some(GroupKind::FcgiProgram(Box::new(FcgiKind {
                socket: FcgiSocket::Unix("/tmp/f.sock".into()),
                socket_owner: None,
                socket_mode: Some(0o660),
                socket_backlog: None
            })))
        );
        let t = cfg.group("t").map(|g| g.kind.clone());
        assert!(matches!(
            t.as_ref(),
            Some(GroupKind::FcgiProgram(k))
                if matches!(**k, FcgiKind {
                    socket: FcgiSocket::Tcp { port: 8000, .. },
                    socket_backlog: Some(5),
                    ..
                })
        ));
        let e =
            errors("[supervisord]\n[fcgi-program:f]\ncommand=/bin/f\nsocket=unix://rel/x.sock\n");
        assert!(
            e.first().is_some_and(|l| l.contains("socket: invalid value 'unix://rel/x.sock'")),
            "{e:?}"
        );
    }

    #[test]
    fn listener_rules() {
        let e = errors(
            "[supervisord]\n[eventlistener:l]\ncommand=/bin/l\nevents=FOO\nbuffer_size=0\nredirect_stderr=true\n",
        );
        for want in [
            "events: invalid value 'FOO': unknown event type FOO",
            "buffer_size: invalid value '0'",
            "redirect_stderr: invalid value 'true'",
        ] {
            assert!(e.iter().any(|l| l.contains(want)), "missing {want} in {e:?}");
        }
        let e = errors("[supervisord]\n[eventlistener:l]\ncommand=/bin/l\n");
        assert!(
            e.first().is_some_and(|l| l
                .contains("[eventlistener:l] events: an [eventlistener:x] section needs events=")),
            "{e:?}"
        );
    }

    #[test]
    fn unknown_options_and_sections_are_warnings() {
        let (_f, cfg) =
            ok("[supervisord]\nfoo=1\n[program:a]\ncommand=/bin/a\nautorestrat=true\n[wat]\nx=1\n");
        let got: Vec<String> = cfg.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            [
                "s.conf:2: [supervisord] foo: ignored: unknown option",
                "s.conf:5: [program:a] autorestrat: ignored: unknown option",
                "s.conf:6: [wat] ignored: unknown section",
            ]
        );
    }

    #[test]
    fn overrides_beat_the_file() {
        let f = Fixture::new(&[(
            "s.conf",
            "[supervisord]\nnodaemon=false\nloglevel=warn\nidentifier=file\nlogfile=a.log\n",
        )]);
        let ov = Overrides {
            nodaemon: Some(true),
            loglevel: Some(Level::Debug),
            identifier: Some("cli".into()),
            logfile: Some("/tmp/cli.log".into()),
            ..Overrides::default()
        };
        let cfg = load(Path::new("s.conf"), &ov, &f.ctx()).unwrap_or_else(|e| panic!("{e:#?}"));
        let s = &cfg.supervisord;
        assert!(s.nodaemon);
        assert_eq!((s.loglevel, s.identifier.as_str()), (Level::Debug, "cli"));
        assert_eq!(s.logfile, DaemonLog::Path("/tmp/cli.log".into()));
    }

    #[test]
    fn python_warnings_for_auto_logs_redirect_and_syslog() {
        let (_f, cfg) = ok(
            "[supervisord]\n[program:a]\ncommand=/bin/a\nstdout_logfile_maxbytes=0\n\
             redirect_stderr=true\nstderr_logfile=/tmp/e.log\n[program:b]\ncommand=/bin/b\nstdout_logfile=syslog\n",
        );
        let got: Vec<&str> = cfg.warnings.iter().map(|w| w.message.as_str()).collect();
        assert_eq!(
            got,
            [
                "For [program:a], AUTO logging used for stdout_logfile without rollover, set maxbytes > 0 to avoid filling up filesystem unintentionally",
                "For [program:a], redirect_stderr=true but stderr_logfile has also been set to a filename, the filename has been ignored",
                "For [program:b], stdout_logfile=syslog but this is deprecated and will be removed.  Use stdout_syslog=true to enable syslog instead.",
            ]
        );
        let b = cfg.group("b").and_then(|g| g.processes.first()).expect("b");
        assert!(b.stdout.syslog && b.stdout.logfile == LogTarget::None);
    }

    #[test]
    fn stopasgroup_needs_killasgroup() {
        let e =
            errors("[supervisord]\n[program:a]\ncommand=x\nstopasgroup=true\nkillasgroup=false\n");
        assert!(
            e.first().is_some_and(|l| l.starts_with("s.conf:5: [program:a] killasgroup:")),
            "{e:?}"
        );
    }

    #[test]
    fn lifecycle_options_are_typed_with_defaults() {
        let (_f, cfg) = ok("[supervisord]\n\
             [program:cfg]\ncommand=/bin/true\n\
             [program:api]\ncommand=/bin/api\nnumprocs=2\nprocess_name=api_%(process_num)d\n\
             [group:edge]\nprograms=proxy,web\n\
             [program:proxy]\ncommand=/bin/proxy\nessential=true\nrestart_backoff_max=30\n\
             restart_limit=5/60\nready_check=tcp:127.0.0.1:10000\nready_check_interval=0.5\n\
             [program:web]\ncommand=/bin/web\ndepends_on=cfg:completed, api, edge:proxy:started\n\
             ready_check=http://127.0.0.1:8080/ready\nhealth_check=exec:/bin/probe -q\n\
             health_check_retries=5\nrestart_backoff_initial=2\nrestart_backoff_max=2\n");
        let get = |g: &str, n: &str| {
            cfg.processes()
                .find(|(gc, p)| gc.name == g && p.name == n)
                .map(|(_, p)| p.lifecycle().clone())
                .unwrap_or_else(|| panic!("{g}:{n}"))
        };
        assert_eq!(get("cfg", "cfg"), Lifecycle::default());
        let proxy = get("edge", "proxy");
        assert!(proxy.essential);
        assert_eq!(proxy.restart_backoff.initial, Duration::from_secs(1));
        assert_eq!(proxy.restart_backoff.max, Some(Duration::from_secs(30)));
        assert_eq!(
            proxy.restart_limit,
            Some(lc::RestartLimit { restarts: 5, window: Duration::from_secs(60) })
        );
        assert_eq!(
            proxy.ready_check,
            Some(lc::ReadyCheck {
                form: lc::CheckForm::Tcp { host: "127.0.0.1".into(), port: 10000 },
                timeout: Duration::from_secs(60),
                interval: Duration::from_millis(500),
                attempt_timeout: Duration::from_secs(1),
            })
        );
        let web = get("edge", "web");
        let key = |g: &str, n: &str| ProcessKey { group: g.into(), name: n.into() };
        let deps: Vec<_> = web
            .depends_on
            .iter()
            .map(|d| (d.name.as_str(), d.condition, d.processes.clone()))
            .collect();
        use lc::DependencyCondition::*;
        assert_eq!(
            deps,
            [
                ("cfg", Completed, vec![key("cfg", "cfg")]),
                ("api", Running, vec![key("api", "api_0"), key("api", "api_1")]),
                ("edge:proxy", Started, vec![key("edge", "proxy")]),
            ]
        );
        assert_eq!(
            web.health_check,
            Some(lc::HealthCheck {
                form: lc::CheckForm::Exec { command: "/bin/probe -q".into() },
                interval: Duration::from_secs(10),
                timeout: Duration::from_secs(1),
                retries: 5,
            })
        );
        assert_eq!(web.restart_backoff.initial, Duration::from_secs(2));
    }

    #[test]
    fn group_dependencies_mean_every_member() {
        let (_f, cfg) = ok("[supervisord]\n[group:infra]\nprograms=db,cache\n\
             [program:db]\ncommand=/bin/db\n[program:cache]\ncommand=/bin/c\n\
             [program:app]\ncommand=/bin/app\ndepends_on=infra\n");
        let app = cfg.processes().find(|(_, p)| p.name == "app").map(|(_, p)| p).expect("app");
        let names: Vec<String> = app
            .lifecycle()
            .depends_on
            .iter()
            .flat_map(|d| &d.processes)
            .map(|k| k.to_string())
            .collect();
        assert_eq!(names, ["infra:cache", "infra:db"]);
    }

    #[test]
    fn lifecycle_errors_name_file_line_and_option() {
        assert_eq!(
            errors(
                "[supervisord]\n[program:a]\ncommand=/bin/a\ndepends_on=b, nope\n[program:b]\ncommand=/bin/b\n"
            ),
            [
                "s.conf:4: [program:a] depends_on: invalid value 'b, nope': 'nope' names no program, group or group:process in this config"
            ]
        );
        assert_eq!(
            errors(
                "[supervisord]\n[program:a]\ncommand=/bin/a\ndepends_on=b\n\
                 [program:b]\ncommand=/bin/b\ndepends_on=c:started\n\
                 [program:c]\ncommand=/bin/c\ndepends_on=a\n[program:d]\ncommand=/bin/d\ndepends_on=d\n"
            ),
            [
                "s.conf:4: [program:a] depends_on: invalid value 'b': dependency cycle: a -> b -> c -> a",
                "s.conf:13: [program:d] depends_on: invalid value 'd': dependency cycle: d -> d",
            ]
        );
        let errs = errors(
            "[supervisord]\n[program:a]\ncommand=/bin/a\nready_check=ping\n\
             health_check=notify\nready_timeout=0\nhealth_check_retries=0\nessential=maybe\n\
             restart_backoff_initial=5\nrestart_backoff_max=2\nrestart_limit=3\n",
        );
        let want = [
            "s.conf:4: [program:a] ready_check: invalid value 'ping': expected tcp:HOST:PORT, http://HOST:PORT/PATH, exec:COMMAND, log:REGEX or notify",
            "s.conf:6: [program:a] ready_timeout: invalid value '0': expected a number of seconds > 0, such as 1 or 0.5",
            "s.conf:5: [program:a] health_check: invalid value 'notify': notify can only be a ready_check; a health_check is one of tcp:HOST:PORT, http://HOST:PORT/PATH or exec:COMMAND",
            "s.conf:7: [program:a] health_check_retries: invalid value '0': expected an integer >= 1",
            "s.conf:8: [program:a] essential: invalid value 'maybe': expected a boolean: true/false, yes/no, on/off or 1/0",
            "s.conf:10: [program:a] restart_backoff_max: invalid value '2': restart_backoff_max must be at least restart_backoff_initial (5s)",
            "s.conf:11: [program:a] restart_limit: invalid value '3': expected N/SECONDS, such as 5/60 (at most 5 automatic restarts in 60 seconds)",
        ];
        assert_eq!(errs, want);
    }

    #[test]
    fn lifecycle_timings_without_their_check_warn() {
        let (_f, cfg) = ok("[supervisord]\n[program:a]\ncommand=/bin/a\nready_timeout=5\n\
             health_check_interval=3\nrestart_backoff_initial=2\n");
        let warnings: Vec<String> = cfg.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(
            warnings,
            [
                "s.conf:4: [program:a] ready_timeout: ignored: ready_timeout has no effect without ready_check",
                "s.conf:5: [program:a] health_check_interval: ignored: health_check_interval has no effect without health_check",
                "s.conf:6: [program:a] restart_backoff_initial: ignored: restart_backoff_initial has no effect without restart_backoff_max",
            ]
        );
    }

    #[test]
    fn dependency_graph_orders() {
        // db <- api <- web, cache <- web, gen <- api; "zz" unrelated with the lowest
        // priority so config order alone would start it first.
        let (_f, cfg) = ok("[supervisord]\n\
             [program:zz]\ncommand=/bin/z\npriority=1\n\
             [program:web]\ncommand=/bin/w\npriority=2\ndepends_on=api, cache:started\n\
             [program:api]\ncommand=/bin/a\npriority=3\ndepends_on=db,gen:completed\n\
             [program:db]\ncommand=/bin/d\npriority=4\n\
             [program:cache]\ncommand=/bin/c\npriority=5\n\
             [program:gen]\ncommand=/bin/g\npriority=6\n");
        let g = lc::DependencyGraph::new(&cfg);
        let names = |v: Vec<ProcessKey>| v.into_iter().map(|k| k.name).collect::<Vec<_>>();
        let k = |n: &str| ProcessKey { group: n.into(), name: n.into() };
        assert_eq!(names(g.start_order()), ["zz", "db", "gen", "api", "cache", "web"]);
        assert_eq!(names(g.stop_order()), ["web", "cache", "api", "gen", "db", "zz"]);
        assert_eq!(names(g.start_first(&k("web"))), ["db", "gen", "api", "cache"]);
        assert_eq!(names(g.start_first(&k("db"))), Vec::<String>::new());
        assert_eq!(names(g.stop_first(&k("db"))), ["web", "api"]);
        assert_eq!(names(g.stop_first(&k("web"))), Vec::<String>::new());
        assert_eq!(names(g.dependencies(&k("api"))), ["db", "gen"]);
        assert_eq!(names(g.dependents(&k("cache"))), ["web"]);
        assert_eq!(names(g.dependents(&k("nope"))), Vec::<String>::new());
        // Without depends_on the orders are the config's.
        let (_f, cfg) =
            ok("[supervisord]\n[program:b]\ncommand=/b\n[program:a]\ncommand=/a\npriority=5\n");
        let g = lc::DependencyGraph::new(&cfg);
        assert_eq!(names(g.start_order()), ["a", "b"]);
        assert_eq!(names(g.stop_order()), ["b", "a"]);
    }
}
