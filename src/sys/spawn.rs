//! Starting children: command splitting and resolution, the child environment, and the
//! hand-rolled fork/exec. This is the only module that forks a child program.
//!
//! The flow a runner follows, mirroring Python's `Subprocess.spawn` (process.py):
//! 1. [`split_command`] then [`resolve_program`] (with [`search_path`]): failures are
//!    *spawn errors* (`can't find command 'x'`, …) that go to BACKOFF without a fork.
//! 2. [`env_for_child`] builds the final environment.
//! 3. [`spawn`] makes the pipes and forks. Pipe and fork failures are spawn errors too.
//!    Everything that can fail *in the child* (setuid, chdir, exec) is written to the
//!    child's stderr in Python's words and surfaces as an ordinary exit 127, exactly as in
//!    Python: the parent has a pid and logs `spawned: 'x' with pid N` either way.
//!
//! The child is a `clone(CLONE_VM | CLONE_VFORK)` (as `posix_spawn` makes): until `execve`
//! it runs in the daemon's own memory while the spawning thread waits, so it makes only
//! raw syscalls on data prepared before the clone: no allocation, no locks, no logging, no
//! libc call that reaches other threads. `fork` would copy the daemon's page tables and
//! make it refault its pages after every spawn.

use std::ffi::{CString, OsStr, OsString, c_char, c_int};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::signal::{SigSet, SigmaskHow, pthread_sigmask};

use super::errno;
use super::reaper::{self, Birth};
use super::users;
use crate::pytext::{self, ShlexError};

/// Why a process could not be spawned. `Display` is Python's `spawnerr` text, which the
/// daemon logs as `spawnerr: <msg>` and shows in `status`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpawnError {
    /// `command=` splits to nothing.
    #[error("command is empty")]
    CommandEmpty,
    /// `command=` is not valid shell-like syntax.
    #[error("can't parse command {}: {reason}", pytext::repr(.command))]
    CommandParse {
        /// The command as configured.
        command: String,
        /// Python's `shlex` message.
        reason: ShlexError,
    },
    /// Neither the path nor any PATH entry exists.
    #[error("can't find command {}", pytext::repr(.0))]
    NotFound(String),
    /// The program path is a directory.
    #[error("command at {} is a directory", pytext::repr(.0))]
    IsDirectory(String),
    /// The program file has no execute bit at all.
    #[error("command at {} is not executable", pytext::repr(.0))]
    NotExecutable(String),
    /// Some execute bit is set, but not one that applies to us.
    #[error("no permission to run command {}", pytext::repr(.0))]
    NoPermission(String),
    /// `pipe()` or a log file's open failed with EMFILE, or what they gave is in the
    /// descriptor reserve (`sys::limits::SPAWN_RESERVE`).
    #[error("too many open files to spawn '{name}'")]
    TooManyOpenFiles {
        /// The process name.
        name: String,
    },
    /// `pipe()` failed otherwise.
    #[error("unknown error making dispatchers for '{name}': {}", errno::display(*.errno as i32))]
    Pipe {
        /// The process name.
        name: String,
        /// What `pipe()` said.
        errno: Errno,
    },
    /// `fork()` failed with EAGAIN.
    #[error("Too many processes in process table to spawn '{name}'")]
    ProcessTableFull {
        /// The process name.
        name: String,
    },
    /// `fork()` failed otherwise.
    #[error("unknown error during fork for '{name}': {}", errno::display(*.errno as i32))]
    Fork {
        /// The process name.
        name: String,
        /// What `fork()` said.
        errno: Errno,
    },
}

/// Splits `command=` as Python's `shlex.split` does; an empty result is an error, as in
/// `get_execv_args`.
pub fn split_command(command: &str) -> Result<Vec<String>, SpawnError> {
    let argv = pytext::shlex_split(command)
        .map_err(|reason| SpawnError::CommandParse { command: command.to_owned(), reason })?;
    if argv.is_empty() {
        return Err(SpawnError::CommandEmpty);
    }
    Ok(argv)
}

/// The directories a bare program name is looked up in, Python's `get_path` rules: the
/// program's own `environment=` PATH when it sets one (even empty), else the daemon's PATH
/// when non-empty, else `/bin:/usr/bin:/usr/local/bin`.
pub fn search_path(program_env_path: Option<&OsStr>, daemon_path: Option<&OsStr>) -> Vec<PathBuf> {
    let split = |p: &OsStr| -> Vec<PathBuf> {
        p.as_bytes().split(|b| *b == b':').map(|d| PathBuf::from(OsStr::from_bytes(d))).collect()
    };
    match (program_env_path, daemon_path) {
        (Some(p), _) => split(p),
        (None, Some(p)) if !p.is_empty() => split(p),
        _ => ["/bin", "/usr/bin", "/usr/local/bin"].iter().map(PathBuf::from).collect(),
    }
}

/// Finds the file to exec for `program` (argv\[0\]) with Python's checks and messages: a name
/// containing `/` is used as is; otherwise the first PATH entry where `stat` succeeds wins
/// (even if it is a directory, as in Python). Blocking (a few `stat`s).
pub fn resolve_program(program: &str, search_path: &[PathBuf]) -> Result<PathBuf, SpawnError> {
    let (filename, meta) = if program.contains('/') {
        (PathBuf::from(program), std::fs::metadata(program).ok())
    } else {
        search_path
            .iter()
            .find_map(|dir| {
                // os.path.join: an empty directory means the current one.
                let found = if dir.as_os_str().is_empty() {
                    PathBuf::from(program)
                } else {
                    dir.join(program)
                };
                std::fs::metadata(&found).ok().map(|m| (found, Some(m)))
            })
            .unwrap_or_else(|| (PathBuf::from(program), None))
    };
    let shown = filename.to_string_lossy().into_owned();
    let Some(meta) = meta else {
        return Err(SpawnError::NotFound(shown));
    };
    if meta.is_dir() {
        return Err(SpawnError::IsDirectory(shown));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(SpawnError::NotExecutable(shown));
    }
    if nix::unistd::access(&filename, nix::unistd::AccessFlags::X_OK).is_err() {
        return Err(SpawnError::NoPermission(shown));
    }
    Ok(filename)
}

/// The `SUPERVISOR_*` variables Python adds to every child's environment.
#[derive(Clone, Copy, Debug)]
pub struct SupervisorVars<'a> {
    /// `SUPERVISOR_SERVER_URL`: the program's `serverurl`, else the daemon's; absent when
    /// `None` or empty.
    pub server_url: Option<&'a str>,
    /// `SUPERVISOR_PROCESS_NAME`.
    pub process_name: &'a str,
    /// `SUPERVISOR_GROUP_NAME`.
    pub group_name: &'a str,
}

/// The child environment, in Python's order: a copy of the daemon's environment, then
/// `SUPERVISOR_ENABLED=1`, `SUPERVISOR_SERVER_URL`, `SUPERVISOR_PROCESS_NAME`,
/// `SUPERVISOR_GROUP_NAME`, then the program's `environment=` (which may override any of
/// them). Like a Python dict, a key keeps the position where it first appeared.
pub fn env_for_child<'e>(
    daemon_env: impl IntoIterator<Item = (OsString, OsString)>,
    vars: &SupervisorVars<'_>,
    program_env: impl IntoIterator<Item = &'e (String, String)>,
) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = Vec::new();
    let mut index: std::collections::HashMap<OsString, usize> = std::collections::HashMap::new();
    let mut set = |k: OsString, v: OsString| match index.get(&k) {
        Some(&i) => {
            if let Some(slot) = env.get_mut(i) {
                slot.1 = v;
            }
        }
        None => {
            index.insert(k.clone(), env.len());
            env.push((k, v));
        }
    };
    for (k, v) in daemon_env {
        set(k, v);
    }
    set("SUPERVISOR_ENABLED".into(), "1".into());
    if let Some(url) = vars.server_url.filter(|u| !u.is_empty()) {
        set("SUPERVISOR_SERVER_URL".into(), url.into());
    }
    set("SUPERVISOR_PROCESS_NAME".into(), vars.process_name.into());
    set("SUPERVISOR_GROUP_NAME".into(), vars.group_name.into());
    for (k, v) in program_env {
        set(k.into(), v.into());
    }
    env
}

/// Everything [`spawn`] needs, already decided by the caller.
#[derive(Clone, Debug)]
pub struct SpawnSpec {
    /// The process name, only used in Python's pipe/fork error messages.
    pub name: String,
    /// The file to exec, from [`resolve_program`].
    pub program: PathBuf,
    /// The argument vector from [`split_command`]; `argv[0]` is the command's first word.
    pub argv: Vec<String>,
    /// The complete environment, from [`env_for_child`].
    pub env: Vec<(OsString, OsString)>,
    /// `directory=`: chdir there after dropping privileges.
    pub cwd: Option<PathBuf>,
    /// `umask=`: set just before exec.
    pub umask: Option<u32>,
    /// `user=` as a uid (the config resolves names with [`users::lookup_user`]). The passwd
    /// entry and groups are read again at each spawn, as Python does.
    pub user: Option<u32>,
    /// `redirect_stderr=`: the child's fd 2 is its stdout pipe, and there is no stderr pipe.
    pub redirect_stderr: bool,
    /// An `[fcgi-program:x]`'s listening socket: the child's fd 0 instead of its stdin pipe
    /// (which is still made, as Python does). The caller keeps it open across the call.
    pub stdin_socket: Option<std::os::fd::RawFd>,
}

/// A forked child and the parent's ends of its pipes.
///
/// The pipe ends are non-blocking and close-on-exec, ready for
/// `tokio::net::unix::pipe::{Sender, Receiver}::from_owned_fd` or `AsyncFd`. Dropping the
/// stdin end gives the child EOF on its stdin; Python keeps it open for `sendProcessStdin`.
#[derive(Debug)]
pub struct Child {
    /// The child's pid, which is also its process group id.
    pub pid: i32,
    /// When the child was forked relative to the reaper's reaps; pass it to
    /// [`reaper::ReaperHandle::watch`].
    pub birth: Birth,
    /// Write end of the child's stdin (Python always gives children a stdin pipe).
    pub stdin: OwnedFd,
    /// Read end of the child's stdout (and stderr with `redirect_stderr`).
    pub stdout: OwnedFd,
    /// Read end of the child's stderr; `None` with `redirect_stderr`.
    pub stderr: Option<OwnedFd>,
}

/// Forks and execs `spec` in a new process group with fresh pipes on 0/1/2, every other fd
/// closed, default signal dispositions (except SIGPIPE and SIGXFSZ, which stay ignored as
/// under Python), an empty signal mask, then groups/gid/uid, chdir, umask and `execve`.
///
/// `Err` only for what Python reports as a spawn error (pipes, fork). Everything that fails
/// in the child is written to its stderr with Python's text followed by `supervisor: child
/// process was not spawned` and becomes exit status 127.
///
/// Blocking but quick (reads `/etc/passwd` when `user` is set, then forks); the reaper must
/// be running (see [`reaper`]) or the child's exit is never collected.
pub fn spawn(spec: &SpawnSpec) -> Result<Child, SpawnError> {
    let pipe_err = |e: Errno| match e {
        Errno::EMFILE => SpawnError::TooManyOpenFiles { name: spec.name.clone() },
        errno => SpawnError::Pipe { name: spec.name.clone(), errno },
    };
    let pipe = || -> Result<(OwnedFd, OwnedFd), SpawnError> {
        let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(pipe_err)?;
        Ok((r, w))
    };
    // The child's ends live only until the clone: they go into the descriptor reserve
    // (`limits::SPAWN_RESERVE`), so the slots below it hold only the ends the daemon keeps,
    // which must all be below it. Above 0/1/2 in any case: the child dup2()s them onto
    // 0/1/2, so no dup2 clobbers another source fd (and dup2 clears close-on-exec).
    let floor = super::limits::reserve_floor();
    let child_min = floor.and_then(|f| c_int::try_from(f).ok()).unwrap_or(3).max(3);
    let (child_stdin, stdin) = pipe()?;
    let child_stdin = child_end(child_stdin, child_min).map_err(pipe_err)?;
    let (stdout, child_stdout) = pipe()?;
    let child_stdout = child_end(child_stdout, child_min).map_err(pipe_err)?;
    let child_stderr = if spec.redirect_stderr {
        None
    } else {
        let (r, w) = pipe()?;
        Some((r, child_end(w, child_min).map_err(pipe_err)?))
    };
    let kept = [&stdin, &stdout].into_iter().chain(child_stderr.as_ref().map(|p| &p.0));
    if super::limits::in_reserve(floor, kept.map(AsRawFd::as_raw_fd)) {
        return Err(SpawnError::TooManyOpenFiles { name: spec.name.clone() });
    }
    for fd in
        [Some(&stdin), Some(&stdout), child_stderr.as_ref().map(|p| &p.0)].into_iter().flatten()
    {
        set_nonblocking(fd).map_err(pipe_err)?;
    }
    let stderr_src = child_stderr.as_ref().map_or(child_stdout.as_raw_fd(), |(_, w)| w.as_raw_fd());
    let socket = match spec.stdin_socket {
        Some(raw) => {
            let dup = fcntl(
                // SAFETY: the caller keeps `raw` open for the duration of this call.
                unsafe { std::os::fd::BorrowedFd::borrow_raw(raw) },
                FcntlArg::F_DUPFD_CLOEXEC(3),
            )
            .map_err(pipe_err)?;
            // SAFETY: F_DUPFD_CLOEXEC just returned this new fd and nothing else owns it.
            Some(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(dup) })
        }
        None => None,
    };
    let stdin_src = socket.as_ref().map_or(child_stdin.as_raw_fd(), AsRawFd::as_raw_fd);

    let stdio = [stdin_src, child_stdout.as_raw_fd(), stderr_src];
    // Held until the child has exec'd: the slots carry this child's descriptors meanwhile.
    let mut slots = SLOTS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let lent = if has_close_range() { Lent::new(&mut slots, stdio) } else { None };
    let fds = match &lent {
        Some(l) => FdPlan::Shared { slots: l.fds, above: l.above },
        None => FdPlan::Copied {
            stdio,
            // Listing /proc/self/fd costs what is open (tens of thousands of entries with
            // thousands of programs), so only a kernel without `close_range` pays for it.
            max_fd: if has_close_range() { 3 } else { highest_open_fd().saturating_add(1) },
        },
    };
    let plan = ChildPlan::new(spec, fds);

    // Block every signal across the clone so no inherited handler (tokio's, which would
    // write to our memory) runs in the child before it resets dispositions; the parent's
    // mask is restored right after.
    let mut old_mask = SigSet::empty();
    pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::all()), Some(&mut old_mask))
        .map_err(|errno| SpawnError::Fork { name: spec.name.clone(), errno })?;
    // Uninitialised: the child writes its frames before it reads them.
    let mut stack: Vec<u8> = Vec::with_capacity(CHILD_STACK);
    let arg = std::ptr::from_ref(&plan).cast_mut().cast::<libc::c_void>();
    // SAFETY: `child_entry` runs `ChildPlan::exec`, which keeps spawn_gated's contract;
    // `plan` and `stack` live until after the call returns.
    let forked = unsafe {
        reaper::spawn_gated(child_entry, arg, stack.spare_capacity_mut(), lent.is_some())
    };
    drop(lent);
    drop(slots);
    if let Err(e) = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old_mask), None) {
        tracing::error!("could not restore the signal mask after fork: {e}");
    }
    let (pid, birth) = forked.map_err(|errno| match errno {
        Errno::EAGAIN => SpawnError::ProcessTableFull { name: spec.name.clone() },
        errno => SpawnError::Fork { name: spec.name.clone(), errno },
    })?;
    // No parent-side setpgid: with CLONE_VFORK the clone returns only after the child ran
    // its own setpgid(0, 0) and exec'd (or exited), so the group already exists here.
    // The child ends close here (drop); the parent keeps only its own ends.
    drop((child_stdin, child_stdout, socket));
    Ok(Child { pid, birth, stdin, stdout, stderr: child_stderr.map(|(r, _w)| r) })
}

fn set_nonblocking(fd: &OwnedFd) -> Result<(), Errno> {
    let flags = OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

/// Moves a child's end of a pipe to number `min` or above (close-on-exec) when it is
/// below; where nothing is free up there, it stays where it is if that is above 0/1/2.
fn child_end(fd: OwnedFd, min: c_int) -> Result<OwnedFd, Errno> {
    if fd.as_raw_fd() >= min {
        return Ok(fd);
    }
    match fcntl(&fd, FcntlArg::F_DUPFD_CLOEXEC(min)) {
        // SAFETY: F_DUPFD_CLOEXEC just returned this new fd and nothing else owns it.
        Ok(raw) => Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) }),
        Err(_) if fd.as_raw_fd() > 2 => Ok(fd),
        Err(e) => Err(e),
    }
}

/// The child's stack until it execs: `ChildPlan::exec` keeps a few small frames.
const CHILD_STACK: usize = 64 * 1024;

/// Where the child starts (see [`reaper::spawn_gated`]).
extern "C" fn child_entry(arg: *mut libc::c_void) -> c_int {
    // SAFETY: `arg` is the `&ChildPlan` that `spawn` passed; the parent waits in the clone
    // until this child exec'd or exited (CLONE_VFORK), so it is alive throughout.
    let plan = unsafe { &*arg.cast::<ChildPlan>() };
    plan.exec()
}

/// Linux's signal numbers run 1..=64; the loop in the child covers them all.
const NSIG: c_int = 65;
/// A zeroed kernel `struct sigaction` (larger than the real one): handler SIG_DFL (0).
static KERNEL_SIG_DFL: [u64; 4] = [0; 4];
const NOT_SPAWNED: &[u8] = b"supervisor: child process was not spawned\n";

/// Privilege change decided before the fork (Python's `drop_privileges` order).
enum UserPlan {
    /// No `user=`, or already running as that uid.
    Keep,
    /// Write this (complete) line and give up: unknown uid, or not root.
    Fail(Vec<u8>),
    /// setgroups, setgid, setuid; each failure line is precomputed.
    Switch {
        uid: libc::uid_t,
        gid: libc::gid_t,
        groups: Vec<libc::gid_t>,
        groups_failed: Vec<u8>,
        gid_failed: Vec<u8>,
    },
}

/// Everything the child needs, prepared before the fork so the child never allocates.
struct ChildPlan {
    /// Where the sources for fds 0, 1, 2 are and how the child gets its own table.
    fds: FdPlan,
    user: UserPlan,
    /// `directory=` and the message prefix `supervisor: couldn't chdir to <dir>: `.
    cwd: Option<(CString, Vec<u8>)>,
    umask: Option<libc::mode_t>,
    /// `execve` arguments; `None` when an argument or variable holds a NUL byte, in which
    /// case `exec_failed` is the whole message.
    exec: Option<ExecArgs>,
    /// `supervisor: couldn't exec <argv0>: ` (or the full NUL-byte message).
    exec_failed: Vec<u8>,
}

/// How the child ends up with only its three descriptors.
#[derive(Clone, Copy)]
enum FdPlan {
    /// The child starts on the daemon's own table (`CLONE_FILES`), and
    /// `close_range(above, ~0, CLOSE_RANGE_UNSHARE)` gives it a private copy of only the
    /// descriptors below `above`: the daemon's first few and the [`SLOTS`] that hold the
    /// sources. The kernel then copies and closes a handful of descriptors per spawn
    /// instead of the whole table (five per program, so a boot was quadratic).
    Shared {
        /// Sources for fds 0, 1, 2 (all > 2 and below `above`).
        slots: [RawFd; 3],
        /// One past the highest slot.
        above: c_int,
    },
    /// The child gets a copy of the whole table (a kernel without `close_range`, or no
    /// slots could be reserved) and closes everything but its sources.
    Copied {
        /// Sources for fds 0, 1, 2 (all > 2).
        stdio: [RawFd; 3],
        /// Upper bound for the fallback close loop when `close_range` is unavailable: one
        /// past the highest fd open before the clone. A descriptor another thread opens
        /// after that is close-on-exec (Rust opens everything so), so exec closes it anyway.
        max_fd: c_int,
    },
}

/// Three descriptors reserved low in the table (the first spawn reserves them, when the
/// daemon holds few descriptors yet), and a placeholder they hold between spawns. The
/// lock is held from lending the slots until the child has exec'd.
static SLOTS: std::sync::Mutex<Option<Slots>> = std::sync::Mutex::new(None);

struct Slots {
    fds: [OwnedFd; 3],
    /// The read end of a pipe whose write end is closed: what an idle slot refers to.
    placeholder: OwnedFd,
}

impl Slots {
    fn reserve() -> Result<Slots, Errno> {
        let (placeholder, _write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        let slot = || -> Result<OwnedFd, Errno> {
            let raw = fcntl(&placeholder, FcntlArg::F_DUPFD_CLOEXEC(3))?;
            // SAFETY: F_DUPFD_CLOEXEC just returned this new fd and nothing else owns it.
            Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) })
        };
        Ok(Slots { fds: [slot()?, slot()?, slot()?], placeholder })
    }
}

/// The slots lent to one spawn, pointing at its sources; dropping it points them back at
/// the placeholder, so the daemon keeps no reference to the child's pipe ends.
struct Lent<'a> {
    slots: &'a mut Option<Slots>,
    fds: [RawFd; 3],
    above: c_int,
}

impl<'a> Lent<'a> {
    /// `None` when no slots can be had (the caller copies the whole table instead).
    fn new(slots: &'a mut Option<Slots>, stdio: [RawFd; 3]) -> Option<Lent<'a>> {
        if slots.is_none() {
            match Slots::reserve() {
                Ok(s) => *slots = Some(s),
                Err(e) => {
                    tracing::debug!("no spawn slots ({e}); children copy the descriptor table");
                    return None;
                }
            }
        }
        let fds = slots.as_ref()?.fds.each_ref().map(AsRawFd::as_raw_fd);
        let above = fds.iter().max().copied().unwrap_or(2).saturating_add(1);
        let lent = Lent { slots, fds, above };
        for (slot, src) in fds.iter().zip(stdio) {
            // SAFETY: both are open descriptors (the slot is ours, the caller owns `src`).
            if unsafe { libc::dup3(src, *slot, libc::O_CLOEXEC) } < 0 {
                return None; // `lent` drops here and restores the slots.
            }
        }
        Some(lent)
    }
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        let Some(s) = self.slots.as_ref() else { return };
        let placeholder = s.placeholder.as_raw_fd();
        // SAFETY: the slots and the placeholder are open and owned by `s`.
        let restored = self
            .fds
            .iter()
            .all(|slot| unsafe { libc::dup3(placeholder, *slot, libc::O_CLOEXEC) } >= 0);
        if !restored {
            // Closing the slots is what matters (a pipe end held here would hide EOF);
            // the next spawn reserves new ones.
            tracing::error!("could not reset the spawn slots: {}", Errno::last());
            *self.slots = None;
        }
    }
}

struct ExecArgs {
    program: CString,
    // The pointer arrays point into these; they must live as long as the plan.
    _argv: Vec<CString>,
    _envp: Vec<CString>,
    argv_ptrs: Vec<*const c_char>,
    envp_ptrs: Vec<*const c_char>,
}

impl ChildPlan {
    fn new(spec: &SpawnSpec, fds: FdPlan) -> ChildPlan {
        let argv0 = spec.argv.first().map_or("", String::as_str);
        let exec = ExecArgs::new(spec);
        let exec_failed = match exec {
            Some(_) => format!("supervisor: couldn't exec {argv0}: ").into_bytes(),
            None => format!(
                "supervisor: couldn't exec {}: ValueError: embedded null byte\n",
                spec.program.display()
            )
            .into_bytes(),
        };
        let cwd = spec.cwd.as_ref().map(|dir| {
            let prefix = format!("supervisor: couldn't chdir to {}: ", dir.display()).into_bytes();
            // A NUL byte cannot name a directory; chdir("") then fails with ENOENT.
            (CString::new(dir.as_os_str().as_bytes()).unwrap_or_default(), prefix)
        });
        ChildPlan {
            fds,
            user: spec.user.map_or(UserPlan::Keep, user_plan),
            cwd,
            umask: spec.umask.map(|m| m as libc::mode_t),
            exec,
            exec_failed,
        }
    }

    /// The child side of the spawn, running in the parent's memory until `execve`. Only
    /// raw syscalls on prepared data: `sigaction` (via `signal`), `sigprocmask`, `setpgid`,
    /// `dup2`, `close_range`/`close`, `setgroups`, `setgid`, `setuid` (as bare syscalls:
    /// libc's broadcast to every thread of the process, and it would find the parent's),
    /// `chdir`, `umask`, `execve`, `write`, `_exit`.
    fn exec(&self) -> ! {
        // SAFETY: we are the only thread of a child sharing the parent's memory while the
        // parent's spawning thread waits; every call here is a plain syscall wrapper taking
        // pointers to memory prepared before the clone; nothing allocates, locks or writes
        // memory the parent reads (errno lands in the waiting thread's own slot, unread).
        unsafe {
            for sig in 1..NSIG {
                if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                    continue;
                }
                if sig == libc::SIGPIPE || sig == libc::SIGXFSZ {
                    // Python starts with SIGPIPE and SIGXFSZ ignored and its children inherit
                    // that (verified: SigIgn 0x1001000 under supervisord 4.3.0); we match it.
                    libc::signal(sig, libc::SIG_IGN);
                } else {
                    // The raw syscall, because glibc refuses to touch its reserved realtime
                    // signals (32, 33), which may still arrive here ignored. An all-zero
                    // kernel sigaction is SIG_DFL, no flags, empty mask on every layout.
                    libc::syscall(
                        libc::SYS_rt_sigaction,
                        sig,
                        KERNEL_SIG_DFL.as_ptr(),
                        std::ptr::null::<u8>(),
                        8usize,
                    );
                }
            }
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());

            // Own process group, so signals aimed at the daemon's group (Ctrl-C) spare it.
            if libc::setpgid(0, 0) != 0 {
                child_fail(&[]);
            }
            let (stdio, max_fd) = match self.fds {
                FdPlan::Shared { slots, above } => {
                    // Until this succeeds the table is the daemon's: change nothing in it.
                    if libc::syscall(
                        libc::SYS_close_range,
                        above as libc::c_uint,
                        libc::c_uint::MAX,
                        libc::CLOSE_RANGE_UNSHARE,
                    ) != 0
                        && libc::syscall(libc::SYS_unshare, libc::CLONE_FILES) != 0
                    {
                        // Nowhere to say it without touching the daemon's descriptors.
                        libc::_exit(127);
                    }
                    (slots, above)
                }
                FdPlan::Copied { stdio, max_fd } => (stdio, max_fd),
            };
            for (target, src) in stdio.iter().enumerate() {
                if libc::dup2(*src, target as c_int) < 0 {
                    child_fail(&[]);
                }
            }
            if libc::syscall(
                libc::SYS_close_range,
                3 as libc::c_uint,
                libc::c_uint::MAX,
                0 as libc::c_uint,
            ) != 0
            {
                for fd in 3..max_fd {
                    libc::close(fd);
                }
            }

            match &self.user {
                UserPlan::Keep => {}
                UserPlan::Fail(msg) => child_fail(&[msg]),
                UserPlan::Switch { uid, gid, groups, groups_failed, gid_failed } => {
                    if libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) != 0 {
                        child_fail(&[groups_failed]);
                    }
                    if libc::syscall(libc::SYS_setgid, *gid) != 0 {
                        child_fail(&[gid_failed]);
                    }
                    // Python lets a setuid error escape: only the "not spawned" line.
                    if libc::syscall(libc::SYS_setuid, *uid) != 0 {
                        child_fail(&[]);
                    }
                }
            }

            if let Some((dir, prefix)) = &self.cwd
                && libc::chdir(dir.as_ptr()) != 0
            {
                let code = Errno::last_raw();
                child_fail_errno(prefix, code);
            }
            if let Some(mask) = self.umask {
                libc::umask(mask);
            }
            match &self.exec {
                Some(args) => {
                    libc::execve(
                        args.program.as_ptr(),
                        args.argv_ptrs.as_ptr(),
                        args.envp_ptrs.as_ptr(),
                    );
                    let code = Errno::last_raw();
                    child_fail_errno(&self.exec_failed, code)
                }
                None => child_fail(&[&self.exec_failed]),
            }
        }
    }
}

impl ExecArgs {
    fn new(spec: &SpawnSpec) -> Option<ExecArgs> {
        let program = CString::new(spec.program.as_os_str().as_bytes()).ok()?;
        let argv: Vec<CString> =
            spec.argv.iter().map(|a| CString::new(a.as_bytes()).ok()).collect::<Option<_>>()?;
        let envp: Vec<CString> = spec
            .env
            .iter()
            .map(|(k, v)| {
                let mut kv = Vec::with_capacity(k.len() + v.len() + 1);
                kv.extend_from_slice(k.as_bytes());
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                CString::new(kv).ok()
            })
            .collect::<Option<_>>()?;
        let argv_ptrs =
            argv.iter().map(|a| a.as_ptr()).chain(std::iter::once(std::ptr::null())).collect();
        let envp_ptrs =
            envp.iter().map(|a| a.as_ptr()).chain(std::iter::once(std::ptr::null())).collect();
        Some(ExecArgs { program, _argv: argv, _envp: envp, argv_ptrs, envp_ptrs })
    }
}

/// Python's `drop_privileges(uid)` decisions that do not need the child: the passwd entry
/// must exist; the same uid is a no-op; only root can switch.
fn user_plan(uid: u32) -> UserPlan {
    let line = |why: &str| format!("supervisor: couldn't setuid to {uid}: {why}\n").into_bytes();
    let Some(user) = users::user_by_uid(uid) else {
        return UserPlan::Fail(line(&format!("Can't find uid {uid}")));
    };
    let current = nix::unistd::getuid().as_raw();
    if current == uid {
        return UserPlan::Keep;
    }
    if current != 0 {
        return UserPlan::Fail(line("Can't drop privilege as nonroot user"));
    }
    UserPlan::Switch {
        uid,
        gid: user.gid,
        groups: users::supplementary_groups(&user, &users::etc_groups()),
        groups_failed: line("Could not set groups of effective user"),
        gid_failed: line("Could not set group id of effective user"),
    }
}

/// Whether the kernel has `close_range` (Linux 5.9): asked once, by closing a range where
/// nothing is open.
fn has_close_range() -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| {
        // SAFETY: closes nothing (no fd is that high); only the return value matters.
        let r = unsafe {
            libc::syscall(
                libc::SYS_close_range,
                c_int::MAX as libc::c_uint,
                c_int::MAX as libc::c_uint,
                0 as libc::c_uint,
            )
        };
        r == 0
    })
}

/// The highest fd this process has open (from `/proc/self/fd`), so the child's fallback
/// close loop costs what is open, not `RLIMIT_NOFILE` (which may be a million). Without
/// `/proc`, the soft limit, capped.
fn highest_open_fd() -> c_int {
    match std::fs::read_dir("/proc/self/fd") {
        Ok(dir) => dir
            .flatten()
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<c_int>().ok()))
            .max()
            .unwrap_or(2),
        Err(_) => nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .map_or(1024, |(soft, _)| soft.min(1 << 16) as c_int),
    }
}

/// Writes `parts` and the "not spawned" line to fd 2, then `_exit(127)`. Post-fork safe.
fn child_fail(parts: &[&[u8]]) -> ! {
    for p in parts {
        write_all_stderr(p);
    }
    write_all_stderr(NOT_SPAWNED);
    // SAFETY: _exit is async-signal-safe and skips atexit handlers that the parent owns.
    unsafe { libc::_exit(127) }
}

/// `prefix` + Python's errno name (or the number) + newline, then [`child_fail`].
fn child_fail_errno(prefix: &[u8], code: i32) -> ! {
    let mut digits = [0u8; 12];
    let name: &[u8] = match errno::name(code) {
        Some(n) => n.as_bytes(),
        None => format_int(code, &mut digits),
    };
    child_fail(&[prefix, name, b"\n"])
}

/// Formats `n` into `buf` without allocating and without a path that can panic (it runs
/// in the pre-exec child): 12 bytes hold `-2147483648`.
fn format_int(n: i32, buf: &mut [u8; 12]) -> &[u8] {
    let mut v = i64::from(n).unsigned_abs();
    let mut i = buf.len();
    let mut put = |i: &mut usize, b: u8| {
        *i = i.saturating_sub(1);
        if let Some(slot) = buf.get_mut(*i) {
            *slot = b;
        }
    };
    loop {
        put(&mut i, b'0' + (v % 10) as u8);
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if n < 0 {
        put(&mut i, b'-');
    }
    buf.get(i..).unwrap_or_default()
}

fn write_all_stderr(mut buf: &[u8]) {
    while !buf.is_empty() {
        // SAFETY: writes from a valid slice to fd 2; async-signal-safe.
        let n = unsafe { libc::write(2, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            if Errno::last_raw() == libc::EINTR {
                continue;
            }
            return;
        }
        buf = buf.get(n as usize..).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_errors_are_pythons() {
        assert_eq!(
            split_command("   ").map_err(|e| e.to_string()),
            Err("command is empty".to_owned())
        );
        assert_eq!(
            split_command("echo 'oops").map_err(|e| e.to_string()),
            Err("can't parse command \"echo 'oops\": No closing quotation".to_owned())
        );
        assert_eq!(
            split_command("x\\").map_err(|e| e.to_string()),
            Err("can't parse command 'x\\\\': No escaped character".to_owned())
        );
        assert_eq!(
            split_command("sh -c 'exit 3'"),
            Ok(vec!["sh".into(), "-c".into(), "exit 3".into()])
        );
    }

    #[test]
    fn search_path_rules() {
        let def: Vec<PathBuf> =
            ["/bin", "/usr/bin", "/usr/local/bin"].iter().map(PathBuf::from).collect();
        assert_eq!(search_path(None, None), def);
        assert_eq!(search_path(None, Some(OsStr::new(""))), def);
        assert_eq!(
            search_path(None, Some(OsStr::new("/a:/b"))),
            [PathBuf::from("/a"), PathBuf::from("/b")]
        );
        assert_eq!(
            search_path(Some(OsStr::new("/p")), Some(OsStr::new("/a"))),
            [PathBuf::from("/p")]
        );
        assert_eq!(search_path(Some(OsStr::new("")), Some(OsStr::new("/a"))), [PathBuf::from("")]);
    }

    #[test]
    fn resolve_messages_are_pythons() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let write = |name: &str, mode: u32| {
            let p = d.join(name);
            std::fs::write(&p, "#!/bin/sh\n").expect("write");
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
            p
        };
        let exe = write("prog", 0o755);
        let noexec = write("noexec", 0o644);
        std::fs::create_dir(d.join("sub")).expect("mkdir");
        let path = vec![d.join("missing"), d.to_path_buf()];
        let msg = |p: &str| resolve_program(p, &path).map_err(|e| e.to_string());

        assert_eq!(resolve_program("prog", &path), Ok(exe.clone()));
        assert_eq!(resolve_program(exe.to_str().unwrap_or_default(), &[]), Ok(exe));
        assert_eq!(msg("nosuch"), Err("can't find command 'nosuch'".to_owned()));
        assert_eq!(msg("/nonexistent/x"), Err("can't find command '/nonexistent/x'".to_owned()));
        assert_eq!(
            msg("sub"),
            Err(format!("command at '{}' is a directory", d.join("sub").display()))
        );
        assert_eq!(
            msg("noexec"),
            Err(format!("command at '{}' is not executable", noexec.display()))
        );
        // A PATH entry that is a directory of the same name stops the search, as in Python.
        assert!(
            matches!(resolve_program("sh", &[d.to_path_buf(), "/bin".into()]), Ok(p) if p.ends_with("bin/sh"))
        );
    }

    #[test]
    fn env_merge_order_and_overrides() {
        let daemon = vec![("PATH".into(), "/bin".into()), ("HOME".into(), "/root".into())];
        let vars = SupervisorVars {
            server_url: Some("unix:///tmp/s.sock"),
            process_name: "web_01",
            group_name: "web",
        };
        let program =
            vec![("FOO".to_owned(), "bar baz".to_owned()), ("HOME".to_owned(), "/srv".to_owned())];
        let env = env_for_child(daemon, &vars, &program);
        let flat: Vec<String> = env
            .iter()
            .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
            .collect();
        assert_eq!(
            flat,
            [
                "PATH=/bin",
                "HOME=/srv",
                "SUPERVISOR_ENABLED=1",
                "SUPERVISOR_SERVER_URL=unix:///tmp/s.sock",
                "SUPERVISOR_PROCESS_NAME=web_01",
                "SUPERVISOR_GROUP_NAME=web",
                "FOO=bar baz",
            ]
        );
        let no_url = SupervisorVars { server_url: Some(""), ..vars };
        let env = env_for_child(Vec::new(), &no_url, &[("SUPERVISOR_ENABLED".into(), "0".into())]);
        assert!(!env.iter().any(|(k, _)| k == "SUPERVISOR_SERVER_URL"));
        assert_eq!(env.first(), Some(&("SUPERVISOR_ENABLED".into(), "0".into())));
    }

    #[test]
    fn spawn_error_texts() {
        let e = SpawnError::Pipe { name: "web".into(), errno: Errno::ENFILE };
        assert_eq!(e.to_string(), "unknown error making dispatchers for 'web': ENFILE");
        let e = SpawnError::TooManyOpenFiles { name: "web".into() };
        assert_eq!(e.to_string(), "too many open files to spawn 'web'");
        let e = SpawnError::ProcessTableFull { name: "web".into() };
        assert_eq!(e.to_string(), "Too many processes in process table to spawn 'web'");
        let e = SpawnError::Fork { name: "web".into(), errno: Errno::ENOMEM };
        assert_eq!(e.to_string(), "unknown error during fork for 'web': ENOMEM");
    }

    #[test]
    fn int_formatting_without_allocation() {
        let mut b = [0u8; 12];
        assert_eq!(format_int(0, &mut b), b"0");
        assert_eq!(format_int(4095, &mut b), b"4095");
        assert_eq!(format_int(i32::MIN, &mut b), b"-2147483648");
    }

    #[test]
    fn user_plan_follows_drop_privileges() {
        // The running uid is a no-op; an unknown uid is Python's message.
        let me = nix::unistd::getuid().as_raw();
        if users::user_by_uid(me).is_some() {
            assert!(matches!(user_plan(me), UserPlan::Keep));
        }
        let ghost = 3_999_999_999;
        assert!(users::user_by_uid(ghost).is_none());
        match user_plan(ghost) {
            UserPlan::Fail(m) => assert_eq!(
                String::from_utf8_lossy(&m),
                "supervisor: couldn't setuid to 3999999999: Can't find uid 3999999999\n"
            ),
            _ => panic!("an unknown uid must fail"),
        }
    }
}
