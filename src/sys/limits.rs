//! Raising RLIMIT_NOFILE/RLIMIT_NPROC to `minfds`/`minprocs` at startup, with Python's
//! behaviour (`ServerOptions.set_rlimits_or_exit`): a soft limit below the minimum is raised
//! to it, lifting the hard limit too when it is lower (which only root may do); a failure
//! is a usage error (`Error: <msg>`, exit 2) whose text Python words, quirks included.
//!
//! Also the descriptor reserve: the top [`SPAWN_RESERVE`] descriptor numbers below the soft
//! RLIMIT_NOFILE are never kept by a spawn (pipes, program logs). The kernel hands out the
//! lowest free number, so once the programs fill the table below the reserve, spawns fail
//! with "too many open files" while the daemon's own short-lived descriptors (control
//! connections, RPC log reads, the daemon log's reopen, `/proc` reads) still find room.

use nix::sys::resource::{Resource, getrlimit, rlim_t, setrlimit};

/// A limit that could not be raised; `Display` is Python's message (the caller prints it as
/// `Error: <msg>` plus the `-h` hint and exits 2).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LimitError(pub String);

/// Which limit, with Python's wording.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// `minfds` → RLIMIT_NOFILE.
    Files,
    /// `minprocs` → RLIMIT_NPROC.
    Procs,
}

impl Limit {
    fn name(self) -> &'static str {
        match self {
            Limit::Files => "RLIMIT_NOFILE",
            Limit::Procs => "RLIMIT_NPROC",
        }
    }

    fn resource(self) -> Resource {
        match self {
            Limit::Files => Resource::RLIMIT_NOFILE,
            Limit::Procs => Resource::RLIMIT_NPROC,
        }
    }

    fn failure(self, min: u64, hard: &str) -> String {
        match self {
            Limit::Files => format!(
                "The minimum number of file descriptors required to run this process is {min} as per \
                 the \"minfds\" command-line argument or config file setting. The current environment \
                 will only allow you to open {hard} file descriptors.  Either raise the number of \
                 usable file descriptors in your environment (see README.rst) or lower the minfds \
                 setting in the config file to allow the process to start."
            ),
            Limit::Procs => format!(
                "The minimum number of available processes required to run this program is {min} as \
                 per the \"minprocs\" command-line argument or config file setting. The current \
                 environment will only allow you to open {hard} processes.  Either raise the number \
                 of usable processes in your environment (see README.rst) or lower the minprocs \
                 setting in the config file to allow the program to start."
            ),
        }
    }
}

/// `RLIM_INFINITY`, which Python shows as -1.
const INFINITY: rlim_t = libc::RLIM_INFINITY;

/// The pure decision: `None` when `(soft, hard)` already satisfies `min`, else the new pair.
/// An unlimited soft limit always satisfies; a hard limit below `min` is lifted to `min`.
pub fn plan(soft: rlim_t, hard: rlim_t, min: rlim_t) -> Option<(rlim_t, rlim_t)> {
    if soft == INFINITY || soft >= min {
        return None;
    }
    let hard = if hard != INFINITY && hard < min { min } else { hard };
    Some((min, hard))
}

fn show(v: rlim_t) -> String {
    if v == INFINITY { "-1".to_owned() } else { v.to_string() }
}

/// Raises one limit. `Ok(Some(msg))` is the INFO line Python queues (`Increased
/// RLIMIT_NOFILE limit to 1024`), `Ok(None)` means nothing to do.
pub fn raise(limit: Limit, min: u64) -> Result<Option<String>, LimitError> {
    let (soft, hard) =
        getrlimit(limit.resource()).map_err(|e| LimitError(format!("getrlimit: {e}")))?;
    let Some((new_soft, new_hard)) = plan(soft, hard, min) else {
        return Ok(None);
    };
    match setrlimit(limit.resource(), new_soft, new_hard) {
        Ok(()) => Ok(Some(format!("Increased {} limit to {min}", limit.name()))),
        // Python's message shows the hard limit *after* lifting it to the minimum.
        Err(_) => Err(LimitError(limit.failure(min, &show(new_hard)))),
    }
}

/// Python's startup step: files first, then processes; stops at the first failure.
/// Returns the INFO lines to log once the logger exists.
pub fn raise_startup_limits(minfds: u64, minprocs: u64) -> Result<Vec<String>, LimitError> {
    let mut infos = Vec::new();
    for (limit, min) in [(Limit::Files, minfds), (Limit::Procs, minprocs)] {
        infos.extend(raise(limit, min)?);
    }
    Ok(infos)
}

/// Descriptor numbers at the top of the soft RLIMIT_NOFILE that a spawn never keeps: room
/// for concurrent control connections and the files and `/proc` entries their requests
/// open, once the programs have taken everything below.
pub const SPAWN_RESERVE: u64 = 32;

/// The lowest descriptor number of the reserve under the current soft limit (one
/// `getrlimit`), or `None` when the limit is unlimited or unreadable.
pub fn reserve_floor() -> Option<u64> {
    let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    floor(soft)
}

fn floor(soft: rlim_t) -> Option<u64> {
    (soft != INFINITY).then(|| soft.saturating_sub(SPAWN_RESERVE))
}

/// True when a descriptor a spawn would keep lies in the reserve that starts at `floor`:
/// the spawn gives it back and fails as if the table were full.
pub fn in_reserve(floor: Option<u64>, fds: impl IntoIterator<Item = std::os::fd::RawFd>) -> bool {
    floor.is_some_and(|f| fds.into_iter().any(|fd| u64::try_from(fd).is_ok_and(|fd| fd >= f)))
}

/// A warning when `needed` descriptors (the configuration's processes, their pipes and
/// logs) exceed the hard RLIMIT_NOFILE: the processes that do not fit will fail to spawn
/// (EMFILE) until some are stopped.
pub fn descriptor_shortfall(needed: u64, programs: usize) -> Option<String> {
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    (hard != INFINITY && needed > hard).then(|| {
        format!(
            "the configuration's {programs} processes need about {needed} file descriptors \
             (pipes and logs), more than the hard limit of {hard} (ulimit -Hn): processes that \
             do not fit will fail to spawn with EMFILE"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_is_the_top_of_the_soft_limit() {
        let reserved = |soft, fds: &[i32]| in_reserve(floor(soft), fds.iter().copied());
        assert!(!reserved(100, &[3, 50, 67]));
        assert!(reserved(100, &[3, 68]));
        assert!(reserved(100, &[99]));
        assert!(reserved(20, &[3]), "a limit below the reserve leaves nothing to spawns");
        assert!(!reserved(INFINITY, &[100_000]));
        assert!(!reserved(100, &[]));
    }

    #[test]
    fn plan_matches_python() {
        assert_eq!(plan(1024, 4096, 1024), None);
        assert_eq!(plan(INFINITY, 10, 1024), None);
        assert_eq!(plan(256, 4096, 1024), Some((1024, 4096)));
        assert_eq!(plan(256, 512, 1024), Some((1024, 1024)));
        assert_eq!(plan(256, INFINITY, 1024), Some((1024, INFINITY)));
    }

    #[test]
    fn failure_text_is_pythons() {
        // Produced by Python 4.3.0's format strings (options.py, set_rlimits_or_exit).
        let files = "The minimum number of file descriptors required to run this process is 100000 as per the \"minfds\" command-line argument or config file setting. The current environment will only allow you to open 100000 file descriptors.  Either raise the number of usable file descriptors in your environment (see README.rst) or lower the minfds setting in the config file to allow the process to start.";
        let procs = "The minimum number of available processes required to run this program is 5 as per the \"minprocs\" command-line argument or config file setting. The current environment will only allow you to open -1 processes.  Either raise the number of usable processes in your environment (see README.rst) or lower the minprocs setting in the config file to allow the program to start.";
        assert_eq!(Limit::Files.failure(100000, "100000"), files);
        assert_eq!(Limit::Procs.failure(5, "-1"), procs);
    }

    #[test]
    fn descriptor_shortfall_compares_with_the_hard_limit() {
        assert_eq!(descriptor_shortfall(0, 0), None);
        let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else { return };
        if hard != INFINITY {
            let msg = descriptor_shortfall(hard + 1, 7).unwrap_or_default();
            assert!(msg.contains("7 processes need about"), "{msg}");
            assert!(msg.contains(&format!("hard limit of {hard}")), "{msg}");
        }
    }

    #[test]
    fn already_satisfied_limits_do_nothing() {
        assert_eq!(raise_startup_limits(0, 0), Ok(Vec::new()));
    }

    #[test]
    fn raising_the_soft_limit_within_the_hard_limit() {
        // Lower our own soft limit a little, then ask for it back: Python's INFO line.
        let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else { return };
        if soft == INFINITY || soft < 64 {
            return;
        }
        assert!(setrlimit(Resource::RLIMIT_NOFILE, soft - 1, hard).is_ok());
        assert_eq!(
            raise(Limit::Files, soft),
            Ok(Some(format!("Increased RLIMIT_NOFILE limit to {soft}")))
        );
        assert_eq!(getrlimit(Resource::RLIMIT_NOFILE).ok(), Some((soft, hard)));
    }
}
