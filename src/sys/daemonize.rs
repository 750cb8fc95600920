//! Detaching from the terminal as Python's `ServerOptions._daemonize` does, and the
//! pidfile.
//!
//! [`daemonize`] forks, so it must run while the process is still single-threaded: before
//! the tokio runtime is built.

use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::unistd::ForkResult;

use crate::pytext;

/// What happened to `directory=` while daemonizing; the caller logs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChdirOutcome {
    /// INFO `set current directory: '<dir>'`.
    Changed(PathBuf),
    /// CRIT `can't chdir into '<dir>': [Errno 2] No such file or directory: '<dir>'`; the
    /// daemon carries on in its old directory, as Python does.
    Failed {
        /// The configured directory.
        dir: PathBuf,
        /// Why chdir failed.
        errno: Errno,
    },
}

impl std::fmt::Display for ChdirOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChdirOutcome::Changed(dir) => {
                write!(f, "set current directory: {}", pytext::repr(&dir.to_string_lossy()))
            }
            ChdirOutcome::Failed { dir, errno } => {
                let d = pytext::repr(&dir.to_string_lossy());
                // Python prints the OSError: `[Errno N] <strerror>: '<path>'`.
                write!(f, "can't chdir into {d}: [Errno {}] {}: {d}", *errno as i32, errno.desc())
            }
        }
    }
}

/// Python's daemonize: fork and let the parent `_exit(0)`; in the child chdir to
/// `directory` (if set), point fds 0/1/2 at /dev/null, `setsid`, and set `umask`. Returns
/// in the child only. Before calling, the caller logs INFO `daemonizing the supervisord
/// process`; afterwards it logs the [`ChdirOutcome`].
///
/// Must be called before any thread is started (no tokio runtime yet).
pub fn daemonize(directory: Option<&Path>, umask: u32) -> Result<Option<ChdirOutcome>, Errno> {
    // SAFETY: the caller guarantees the process is single-threaded, so the child is a full
    // copy and may keep running ordinary Rust code.
    match unsafe { nix::unistd::fork() }? {
        // SAFETY: _exit skips atexit handlers and buffered-output flushing that belong to
        // the child now, which is what Python's os._exit(0) does here.
        ForkResult::Parent { .. } => unsafe { libc::_exit(0) },
        ForkResult::Child => {}
    }
    let chdir = directory.map(|dir| match nix::unistd::chdir(dir) {
        Ok(()) => ChdirOutcome::Changed(dir.to_path_buf()),
        Err(errno) => ChdirOutcome::Failed { dir: dir.to_path_buf(), errno },
    });
    let null = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
    for target in 0..=2 {
        // SAFETY: dup2 onto the standard descriptors; `null` stays valid for the call.
        if unsafe { libc::dup2(null.as_raw_fd(), target) } < 0 {
            return Err(Errno::last());
        }
    }
    nix::unistd::setsid()?;
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(umask as libc::mode_t));
    Ok(chdir)
}

/// Writes `<pid>\n` to `path`, as Python does after daemonizing. On error the caller logs
/// CRIT `could not write pidfile <path>` and carries on.
pub fn write_pidfile(path: &Path, pid: u32) -> std::io::Result<()> {
    std::fs::write(path, format!("{pid}\n"))
}

/// Removes the pidfile at exit; like Python, a failure is not an error worth reporting
/// beyond a debug line.
pub fn remove_pidfile(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        tracing::debug!("could not remove pidfile {}: {e}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chdir_messages_are_pythons() {
        assert_eq!(
            ChdirOutcome::Changed("/srv".into()).to_string(),
            "set current directory: '/srv'"
        );
        assert_eq!(
            ChdirOutcome::Failed { dir: "/nope".into(), errno: Errno::ENOENT }.to_string(),
            "can't chdir into '/nope': [Errno 2] No such file or directory: '/nope'"
        );
    }

    #[test]
    fn pidfile_roundtrip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("supervisord.pid");
        write_pidfile(&p, 4242).expect("write");
        assert_eq!(std::fs::read_to_string(&p).ok().as_deref(), Some("4242\n"));
        remove_pidfile(&p);
        assert!(!p.exists());
        remove_pidfile(&p);
    }
}
