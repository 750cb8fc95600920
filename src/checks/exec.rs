//! `exec:COMMAND`: ready (or healthy) when the command exits 0. The command is split like
//! `command=` (no shell), runs with the program's user, directory, umask and environment,
//! is spawned by `sys::spawn` and reaped by the one reaper, and is killed (its whole
//! process group) when the attempt's timeout passes.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use super::{Outcome, secs};
use crate::procsup::ExitStatus;
use crate::sys::reaper::ReaperHandle;
use crate::sys::spawn::{self, SpawnSpec, SupervisorVars};

/// The parts of a process's config a check command inherits.
#[derive(Clone, Copy, Debug)]
pub struct ExecContext<'a> {
    /// The process name (`SUPERVISOR_PROCESS_NAME`).
    pub process_name: &'a str,
    /// Its group (`SUPERVISOR_GROUP_NAME`).
    pub group_name: &'a str,
    /// The program's `environment=` (already merged over `[supervisord] environment`).
    pub environment: &'a [(String, String)],
    /// The daemon's own environment, which children inherit.
    pub daemon_env: &'a [(OsString, OsString)],
    /// `SUPERVISOR_SERVER_URL`.
    pub server_url: Option<&'a str>,
    /// `directory=`.
    pub directory: Option<&'a std::path::Path>,
    /// `umask=`.
    pub umask: Option<u32>,
    /// `user=`, a name or uid.
    pub user: Option<&'a str>,
}

/// Resolves `command` as the runner resolves `command=` (shlex split, PATH lookup with
/// the program's PATH first, the user looked up) into a spec for [`attempt`]. Done once
/// per process start; the `Err` is the spawn error's text.
pub fn prepare(command: &str, ctx: &ExecContext<'_>) -> Result<SpawnSpec, String> {
    let argv = spawn::split_command(command).map_err(|e| e.to_string())?;
    let program_path =
        ctx.environment.iter().rev().find(|(k, _)| k == "PATH").map(|(_, v)| OsString::from(v));
    let daemon_path = ctx.daemon_env.iter().find(|(k, _)| k == "PATH").map(|(_, v)| v.clone());
    let search = spawn::search_path(program_path.as_deref(), daemon_path.as_deref());
    let first = argv.first().cloned().unwrap_or_default();
    let program = spawn::resolve_program(&first, &search).map_err(|e| e.to_string())?;
    let user = match ctx.user {
        None => None,
        Some(u) => Some(
            crate::sys::users::lookup_user(u)
                .map_err(|e| format!("couldn't find user {u}: {e}"))?
                .uid,
        ),
    };
    let vars = SupervisorVars {
        server_url: ctx.server_url,
        process_name: ctx.process_name,
        group_name: ctx.group_name,
    };
    let env = spawn::env_for_child(ctx.daemon_env.iter().cloned(), &vars, ctx.environment);
    Ok(SpawnSpec {
        name: ctx.process_name.to_string(),
        program,
        argv,
        env,
        cwd: ctx.directory.map(PathBuf::from),
        umask: ctx.umask,
        user,
        // One pipe for both streams: its last line is the failure reason.
        redirect_stderr: true,
        stdin_socket: None,
    })
}

/// How much of the command's output is kept for the failure reason.
const KEEP: usize = 512;

/// How long to wait for more output once the command has exited.
const DRAIN: Duration = Duration::from_millis(100);

/// Runs the command once: `Ok` on exit 0, else the exit (and the last line it printed),
/// or `timed out after Ns` once it has been killed and reaped.
pub async fn attempt(spec: &SpawnSpec, reaper: &ReaperHandle, timeout: Duration) -> Outcome {
    let child = spawn::spawn(spec).map_err(|e| e.to_string())?;
    let mut exit = reaper.watch(child.pid, child.birth).await;
    // The check gets EOF on its stdin.
    drop(child.stdin);
    let mut out = tokio::net::unix::pipe::Receiver::from_owned_fd(child.stdout).ok();
    let mut tail: Vec<u8> = Vec::new();
    let mut buf = [0u8; 4096];
    let keep = |tail: &mut Vec<u8>, data: &[u8]| {
        tail.extend_from_slice(data);
        if tail.len() > KEEP {
            tail.drain(..tail.len() - KEEP);
        }
    };
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let reaped = loop {
        tokio::select! {
            r = &mut exit => break r,
            n = read(&mut out, &mut buf) => match n {
                Some(n) => keep(&mut tail, buf.get(..n).unwrap_or_default()),
                None => out = None,
            },
            () = &mut deadline => {
                // The command leads its own process group: take its children with it.
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(child.pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
                let _ = (&mut exit).await;
                return Err(format!("timed out after {}", secs(timeout)));
            }
        }
    };
    // What the command wrote just before exiting is already in the pipe, but the reactor
    // may not have seen it yet (`try_read` would say WouldBlock): read to EOF, giving up
    // on a pipe a leftover grandchild keeps open.
    while out.is_some() {
        match tokio::time::timeout(DRAIN, read(&mut out, &mut buf)).await {
            Ok(Some(n)) => keep(&mut tail, buf.get(..n).unwrap_or_default()),
            Ok(None) | Err(_) => break,
        }
    }
    let Ok(reaped) = reaped else {
        return Err("the reaper is gone".to_string());
    };
    let said = last_line(&tail);
    let why = match reaped.status {
        ExitStatus::Exited(0) => return Ok(()),
        // Python's wording: `exit status 3`, `terminated by SIGKILL`.
        status => status.to_string(),
    };
    Err(if said.is_empty() { why } else { format!("{why}: {said}") })
}

async fn read(out: &mut Option<tokio::net::unix::pipe::Receiver>, buf: &mut [u8]) -> Option<usize> {
    match out {
        Some(rx) => match rx.read(buf).await {
            Ok(0) | Err(_) => None,
            Ok(n) => Some(n),
        },
        None => std::future::pending().await,
    }
}

/// The last non-empty line, trimmed and cut to 200 characters.
fn last_line(tail: &[u8]) -> String {
    let text = String::from_utf8_lossy(tail);
    let line = text.lines().rev().map(str::trim).find(|l| !l.is_empty()).unwrap_or_default();
    line.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_line_is_the_reason() {
        assert_eq!(last_line(b"a\nnot ready yet\n\n"), "not ready yet");
        assert_eq!(last_line(b""), "");
        assert_eq!(last_line("x".repeat(300).as_bytes()).len(), 200);
    }

    #[test]
    fn prepare_resolves_like_the_runner() {
        let env = [("PATH".to_string(), "/usr/bin:/bin".to_string()), ("A".into(), "1".into())];
        let daemon_env = [(OsString::from("HOME"), OsString::from("/root"))];
        let ctx = ExecContext {
            process_name: "web",
            group_name: "edge",
            environment: &env,
            daemon_env: &daemon_env,
            server_url: Some("unix:///tmp/s.sock"),
            directory: Some(std::path::Path::new("/tmp")),
            umask: Some(0o22),
            user: None,
        };
        let spec = prepare("sh -c 'exit 0'", &ctx).expect("sh exists");
        assert!(spec.program.ends_with("sh"), "{spec:?}");
        assert_eq!(spec.argv, ["sh", "-c", "exit 0"]);
        let has = |k: &str, v: &str| spec.env.iter().any(|(a, b)| a == k && b == v);
        assert!(has("A", "1") && has("HOME", "/root") && has("SUPERVISOR_PROCESS_NAME", "web"));
        assert!(has("SUPERVISOR_GROUP_NAME", "edge") && has("SUPERVISOR_ENABLED", "1"));
        assert_eq!(spec.cwd.as_deref(), Some(std::path::Path::new("/tmp")));
        assert_eq!(
            prepare("no-such-cmd-xyz", &ctx).unwrap_err(),
            "can't find command 'no-such-cmd-xyz'"
        );
        assert!(prepare("x 'open", &ctx).unwrap_err().starts_with("can't parse command"));
        let ctx = ExecContext { user: Some("no-such-user-xyz"), ..ctx };
        assert!(
            prepare("true", &ctx).unwrap_err().starts_with("couldn't find user no-such-user-xyz")
        );
    }
}
