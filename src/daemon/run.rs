//! The daemon's wiring: Python's startup sequence, the runtime, the tasks, and the ordered
//! exit. Everything that can fail because of the environment (a socket in use, a log that
//! cannot be opened, limits that cannot be raised) fails here, before any child exists.

use std::ffi::OsString;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::eprint;
use crate::config::{self, Config, DaemonLog, LoadContext, Overrides};
use crate::logio::mainlog::{Level, MainLog};
use crate::logio::mainlog_task::MainLogHandle;
use crate::orchestrator::{Orchestrator, Setup};
use crate::rpc::methods::{Methods, Reloader};
use crate::rpc::server::{self, Auth, BindError, Password, Server};
use crate::sys::reaper::Reaper;
use crate::sys::{daemonize, limits, signals};

/// How the daemon was launched, kept for `reloadConfig` and SIGHUP.
pub struct Launch {
    pub path: PathBuf,
    pub overrides: Overrides,
    pub ctx: LoadContext,
    pub argv0: String,
}

/// Lines logged once the log exists, in Python's order: criticals, warnings, infos.
#[derive(Default)]
struct Queued {
    crit: Vec<String>,
    warn: Vec<String>,
    info: Vec<String>,
    /// Lines after the INFO ones, at their own levels (daemonizing).
    then: Vec<(Level, String)>,
}

impl Queued {
    fn flush(self, log: &MainLogHandle) {
        for m in self.crit {
            log.log(Level::Critical, m);
        }
        for m in self.warn {
            log.log(Level::Warn, m);
        }
        for m in self.info {
            log.log(Level::Info, m);
        }
        for (level, m) in self.then {
            log.log(level, m);
        }
    }
}

/// The listening sockets of one incarnation.
struct Listeners {
    unix: Vec<(UnixListener, PathBuf, Option<Auth>, String)>,
    tcp: Vec<(std::net::TcpListener, Option<Auth>, String)>,
}

impl Listeners {
    fn remove_files(&self) {
        for (_, path, _, _) in &self.unix {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn auth_of(c: &Option<config::Credentials>) -> Option<Auth> {
    c.as_ref().map(|c| Auth {
        username: c.username.clone(),
        password: Password::from_config(&c.password),
    })
}

fn owner_of(spec: &str) -> Result<(u32, u32), String> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let u = crate::sys::users::lookup_user(user).map_err(|e| e.to_string())?;
    let gid = match group {
        Some(g) => crate::sys::users::lookup_group(g).map_err(|e| e.to_string())?.gid,
        None => u.gid,
    };
    Ok((u.uid, gid))
}

/// Binds every configured server, checking that no other daemon owns a socket before
/// anything else is touched (Python deletes the running daemon's AUTO logs first).
fn bind_all(cfg: &Config) -> Result<Listeners, String> {
    let mut out = Listeners { unix: Vec::new(), tcp: Vec::new() };
    for u in cfg.unix_http_server.iter().chain(&cfg.more_unix_http_servers) {
        let owner = match &u.chown {
            Some(spec) => {
                Some(owner_of(spec).map_err(|e| format!("Invalid chown value {spec}: {e}"))?)
            }
            None => None,
        };
        let section = u
            .name
            .as_ref()
            .map_or("unix_http_server".to_string(), |n| format!("unix_http_server:{n}"));
        match server::bind_unix(&u.file, u.chmod, owner) {
            Ok(l) => out.unix.push((l, u.file.clone(), auth_of(&u.auth), section)),
            Err(e) => {
                out.remove_files();
                return Err(match e {
                    BindError::InUse => e.to_string(),
                    BindError::Io(io) => {
                        format!("Cannot open an HTTP server: socket.error reported {io}")
                    }
                });
            }
        }
    }
    for i in cfg.inet_http_server.iter().chain(&cfg.more_inet_http_servers) {
        let host = if i.host.is_empty() || i.host == "*" { "0.0.0.0" } else { i.host.as_str() };
        let section = i
            .name
            .as_ref()
            .map_or("inet_http_server".to_string(), |n| format!("inet_http_server:{n}"));
        match std::net::TcpListener::bind((host, i.port)) {
            Ok(l) => {
                let _ = l.set_nonblocking(true);
                out.tcp.push((l, auth_of(&i.auth), section));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                out.remove_files();
                return Err(BindError::InUse.to_string());
            }
            Err(e) => {
                out.remove_files();
                return Err(format!("Cannot open an HTTP server: socket.error reported {e}"));
            }
        }
    }
    Ok(out)
}

/// `-u`/`user=`: drop privileges before anything runs, as Python's `set_uid_or_exit`.
fn drop_privileges(user: &str) -> Result<String, String> {
    let u = crate::sys::users::lookup_user(user).map_err(|e| e.to_string())?;
    let current = nix::unistd::getuid().as_raw();
    if current == u.uid {
        return Ok(format!("Set uid to user {} succeeded", u.uid));
    }
    if current != 0 {
        return Err("Can't drop privilege as nonroot user".to_string());
    }
    let groups = crate::sys::users::supplementary_groups(&u, &crate::sys::users::etc_groups());
    let gids: Vec<nix::unistd::Gid> = groups.into_iter().map(nix::unistd::Gid::from_raw).collect();
    nix::unistd::setgroups(&gids)
        .map_err(|e| format!("Could not set groups of effective user: {e}"))?;
    nix::unistd::setgid(nix::unistd::Gid::from_raw(u.gid))
        .map_err(|e| format!("Could not set group id of effective user: {e}"))?;
    nix::unistd::setuid(nix::unistd::Uid::from_raw(u.uid))
        .map_err(|e| format!("Could not set user id of effective user: {e}"))?;
    Ok(format!("Set uid to user {} succeeded", u.uid))
}

fn reloader(launch: &Arc<Launch>) -> Reloader {
    let launch = launch.clone();
    Arc::new(move || {
        config::load(&launch.path, &launch.overrides, &launch.ctx)
            .map_err(|errs| errs.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))
    })
}

/// Runs the daemon until shutdown; the exit code is Python's (0 after a shutdown signal
/// or RPC, 2 for startup errors).
pub fn run(cfg: Config, launch: Launch) -> u8 {
    let launch = Arc::new(launch);
    let fail = |msg: &str| super::usage(msg, &launch.argv0);
    signals::ignore_file_size_signal();
    let listeners = match bind_all(&cfg) {
        Ok(l) => l,
        Err(msg) => return fail(&msg),
    };
    let mut queued = Queued::default();
    match &cfg.supervisord.user {
        Some(user) => match drop_privileges(user) {
            Ok(line) => queued.info.push(line),
            Err(msg) => {
                listeners.remove_files();
                return fail(&msg);
            }
        },
        None if nix::unistd::getuid().is_root() => queued.crit.push(
            "Supervisor is running as root.  Privileges were not dropped because no user is specified in the config file.  If you intend to run as root, you can set user=root in the config file to avoid this message.".into(),
        ),
        None => {}
    }
    match limits::raise_startup_limits(cfg.supervisord.minfds, cfg.supervisord.minprocs) {
        Ok(lines) => queued.info.extend(lines),
        Err(e) => {
            listeners.remove_files();
            return fail(&e.0);
        }
    }
    queued.warn.extend(cfg.warnings.iter().map(|w| w.to_string()));
    queued
        .warn
        .extend(limits::descriptor_shortfall(cfg.descriptors_needed(), cfg.processes().count()));
    queued.info.extend(
        cfg.included
            .iter()
            .map(|p| format!("Included extra file \"{}\" during parsing", p.display())),
    );
    let seed = u64::from_le_bytes(crate::logio::autoname::os_random().unwrap_or([7; 8]));
    if !cfg.supervisord.nodaemon {
        // Python's parent logs the fork before it exits, then the child goes on.
        queued.then.push((Level::Blather, "supervisord forked; parent exiting".into()));
        queued.then.push((Level::Info, "daemonizing the supervisord process".into()));
        match daemonize::daemonize(cfg.supervisord.directory.as_deref(), cfg.supervisord.umask) {
            Ok(Some(outcome)) => queued.then.push((Level::Info, outcome.to_string())),
            Ok(None) => {}
            Err(e) => {
                listeners.remove_files();
                return fail(&format!("could not daemonize: {e}"));
            }
        }
    }
    // One worker thread each: the daemon's work is many tiny wake-ups (pipe reads, facts,
    // requests), and a second worker per runtime mostly adds cross-thread wake-ups
    // (the chatty benchmark: 25% more daemon CPU with two). File reads of RPCs go through the
    // blocking pool. Output pumps get a runtime of their own (one worker too): a log write that blocks
    // (a FIFO's reader asleep, dirty-page throttling) stalls pumps, never the orchestrator,
    // the runners or RPC. Special files' writes use `block_in_place`, which hands the
    // other pumps to a second thread while one waits.
    let runtime = |name: &str| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(name)
            .enable_all()
            .build()
    };
    // The pump runtime pauses a moment before it sleeps after small reads, so that one
    // wake reads many lines (`logio::coalesce`).
    let pump_runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("pumps")
            .on_thread_park(crate::logio::coalesce::before_park)
            .enable_all()
            .build()
    };
    let (rt, pump_rt) = match (runtime("supervisord"), pump_runtime()) {
        (Ok(rt), Ok(p)) => (rt, p),
        (Err(e), _) | (_, Err(e)) => {
            listeners.remove_files();
            return fail(&format!("cannot start the runtime: {e}"));
        }
    };
    let pumps = pump_rt.handle().clone();
    crate::logio::watch::drive_on(&pumps);
    let (code, log_thread) =
        rt.block_on(supervise(cfg, listeners, queued, launch.clone(), seed, pumps));
    // Tasks still running (pumps of children that left grandchildren behind, connections
    // being closed) end here; with them go the last log handles, so the log thread then
    // writes what is queued and ends.
    rt.shutdown_timeout(Duration::from_millis(200));
    pump_rt.shutdown_timeout(Duration::from_millis(200));
    if let Some(t) = log_thread {
        let _ = t.join();
    }
    code
}

/// Medusa's TRAC line for a server it starts (prefixed with the server's address).
fn medusa_started(
    ip: &dyn std::fmt::Display,
    host: &dyn std::fmt::Display,
    port: &dyn std::fmt::Display,
) -> String {
    let when = crate::logio::mainlog::ctime(crate::sys::clock::wall_now());
    format!("{ip}:Medusa (V1.12) started at {when}\n\tHostname: {host}\n\tPort:{port}")
}

fn open_main_log(cfg: &Config) -> Result<MainLog, String> {
    let s = &cfg.supervisord;
    let level = s.loglevel;
    let to_stdout = s.nodaemon && !s.silent;
    match &s.logfile {
        DaemonLog::Path(p) => {
            MainLog::open(p, s.logfile_maxbytes, s.logfile_backups, level, to_stdout)
                .map_err(|e| format!("could not open the log file {}: {e}", p.display()))
        }
        DaemonLog::Syslog => Ok(MainLog::syslog(level, to_stdout)),
    }
}

async fn supervise(
    mut cfg: Config,
    mut listeners: Listeners,
    queued: Queued,
    launch: Arc<Launch>,
    seed: u64,
    pumps: tokio::runtime::Handle,
) -> (u8, Option<std::thread::JoinHandle<()>>) {
    let mainlog = match open_main_log(&cfg) {
        Ok(l) => l,
        Err(msg) => {
            listeners.remove_files();
            eprint(&format!("Error: {msg}\n"));
            return (2, None);
        }
    };
    let (log, log_thread) = MainLogHandle::start(mainlog);
    log.install_tracing();
    queued.flush(&log);
    let reaper = match Reaper::spawn() {
        Ok(r) => r,
        Err(e) => {
            log.log(Level::Critical, format!("cannot start the reaper: {e}"));
            listeners.remove_files();
            return (2, Some(log_thread));
        }
    };
    let mut sigs = match signals::forward() {
        Ok(s) => s,
        Err(e) => {
            log.log(Level::Critical, format!("cannot install signal handlers: {e}"));
            listeners.remove_files();
            return (2, Some(log_thread));
        }
    };
    if std::process::id() != 1
        && let Err(e) = crate::sys::reaper::set_child_subreaper()
    {
        log.log(Level::Warn, format!("cannot become a child subreaper: {e}"));
    }
    let spawner = match crate::runner::Spawner::start() {
        Ok(s) => s,
        Err(e) => {
            log.log(Level::Critical, format!("cannot start the spawner thread: {e}"));
            listeners.remove_files();
            return (2, Some(log_thread));
        }
    };
    let scanner = match crate::sys::proctree::Scanner::start() {
        Ok(s) => s,
        Err(e) => {
            log.log(Level::Critical, format!("cannot start the process-tree thread: {e}"));
            listeners.remove_files();
            return (2, Some(log_thread));
        }
    };
    let daemon_env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    let runners = crate::runner::Services {
        reaper: reaper.clone(),
        spawner,
        scanner,
        pumps,
        daemon_env: Arc::new(daemon_env.clone()),
    };
    let mut first = true;
    let mut serial = crate::events::event::Serial::new();
    let code = loop {
        if !cfg.supervisord.nocleanup {
            let dir = cfg.supervisord.childlogdir.clone();
            let ident = cfg.supervisord.identifier.clone();
            for msg in crate::logio::autoname::clear_autochildlogdir(&dir, &ident) {
                log.log(Level::Warn, msg);
            }
        }
        // Moved, not cloned: the orchestrator's copy is the only one while it runs.
        let cfg_arc = Arc::new(cfg);
        let (orch, handle) = Orchestrator::new(Setup {
            config: cfg_arc.clone(),
            runners: runners.clone(),
            log: log.clone(),
            signals: sigs,
            daemon_env: daemon_env.clone(),
            seed: seed.wrapping_add(u64::from(!first)),
            serial: serial.clone(),
        });
        let methods = Methods { orch: handle, log: log.clone(), reload: reloader(&launch) };
        let stop = CancellationToken::new();
        for (l, path, auth, section) in listeners.unix.drain(..) {
            let path = path.display();
            log.log(Level::Trace, medusa_started(&path, &"<unix domain socket>", &path));
            log.log(Level::Info, "RPC interface 'supervisor' initialized");
            if auth.is_none() {
                log.log(
                    Level::Critical,
                    format!("Server '{section}' running without any HTTP authentication checking"),
                );
            }
            match tokio::net::UnixListener::from_std(l) {
                Ok(l) => {
                    let server = Arc::new(Server {
                        auth,
                        dispatch: Arc::new(methods.clone()),
                        trace: log.enabled(Level::Trace).then(|| log.clone()),
                    });
                    tokio::spawn(server::serve(l, server, stop.clone()));
                }
                Err(e) => log.log(Level::Critical, format!("cannot serve {section}: {e}")),
            }
        }
        for (l, auth, section) in listeners.tcp.drain(..) {
            if let Ok(addr) = l.local_addr() {
                // Medusa's hostname is a reverse lookup; the address stands in for it.
                let ip = addr.ip();
                log.log(Level::Trace, medusa_started(&ip, &ip, &addr.port()));
            }
            log.log(Level::Info, "RPC interface 'supervisor' initialized");
            if auth.is_none() {
                log.log(
                    Level::Critical,
                    format!("Server '{section}' running without any HTTP authentication checking"),
                );
            }
            match tokio::net::TcpListener::from_std(l) {
                Ok(l) => {
                    let server = Arc::new(Server {
                        auth,
                        dispatch: Arc::new(methods.clone()),
                        trace: log.enabled(Level::Trace).then(|| log.clone()),
                    });
                    tokio::spawn(server::serve(l, server, stop.clone()));
                }
                Err(e) => log.log(Level::Critical, format!("cannot serve {section}: {e}")),
            }
        }
        drop(methods);
        let pidfile = cfg_arc.supervisord.pidfile.clone();
        if let Err(e) = daemonize::write_pidfile(&pidfile, std::process::id()) {
            log.log(Level::Critical, format!("could not write pidfile {}: {e}", pidfile.display()));
        }
        log.log(Level::Info, format!("supervisord started with pid {}", std::process::id()));
        first = false;
        // On the worker, next to the tasks it talks to (not on this block_on thread, which
        // would make every request and fact a cross-thread wake-up). If it ever ended by a
        // panic, a PID 1 that manages nothing must not linger: exit non-zero.
        // This thread read the config; it allocates next to nothing from here on.
        crate::sys::memory::release();
        let exit = tokio::spawn(orch.run()).await;
        stop.cancel();
        daemonize::remove_pidfile(&pidfile);
        // Sockets go away with the incarnation; a restart creates them again.
        for u in cfg_arc.unix_http_server.iter().chain(&cfg_arc.more_unix_http_servers) {
            let _ = std::fs::remove_file(&u.file);
        }
        let exit = match exit {
            Ok(exit) => exit,
            Err(e) => {
                log.log(Level::Critical, format!("the orchestrator failed: {e}"));
                break 1;
            }
        };
        sigs = exit.signals;
        serial = exit.serial;
        if !exit.restart {
            break exit.code;
        }
        let reload = reloader(&launch);
        cfg = match tokio::task::spawn_blocking(move || reload()).await {
            Ok(Ok(c)) => c,
            Ok(Err(msg)) => {
                log.log(Level::Critical, format!("could not re-read the config: {msg}"));
                break 2;
            }
            Err(e) => {
                log.log(Level::Critical, format!("could not re-read the config: {e}"));
                break 2;
            }
        };
        // Give connections a moment to see the old socket close before rebinding.
        tokio::time::sleep(Duration::from_millis(10)).await;
        listeners = match bind_all(&cfg) {
            Ok(l) => l,
            Err(msg) => {
                log.log(Level::Critical, msg);
                break 2;
            }
        };
    };
    (code, Some(log_thread))
}
