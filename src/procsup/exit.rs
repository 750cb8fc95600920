//! How a child ended, as an enum end to end (never a magic number), with Python's wording
//! (`decode_wait_status` and `signame` in supervisor/options.py).

use std::fmt;

/// How a reaped child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// `exit(code)`: the low 8 bits the kernel keeps.
    Exited(i32),
    /// Killed by signal `sig`; `core` when it dumped core.
    Signaled { sig: i32, core: bool },
}

impl ExitStatus {
    /// Decode a raw `waitpid` status word (bit arithmetic only). Stop and continue reports
    /// are not endings; the reaper never asks for them (no `WUNTRACED`/`WCONTINUED`), so
    /// anything that is not a signal death reads as an exit.
    pub fn from_wait_status(raw: i32) -> ExitStatus {
        if libc::WIFSIGNALED(raw) {
            ExitStatus::Signaled { sig: libc::WTERMSIG(raw), core: libc::WCOREDUMP(raw) }
        } else {
            ExitStatus::Exited(libc::WEXITSTATUS(raw))
        }
    }

    /// Python's `exitstatus`: the exit code, or -1 for a death by signal. A signal death is
    /// therefore never in `exitcodes` (which holds 0..=255), so it is never "expected".
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Exited(code) => code,
            ExitStatus::Signaled { .. } => -1,
        }
    }
}

/// `exit status 3`, `terminated by SIGTERM`, `terminated by SIGSEGV (core dumped)`.
impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ExitStatus::Exited(code) => write!(f, "exit status {code}"),
            ExitStatus::Signaled { sig, core } => {
                write!(f, "terminated by {}", signame(sig))?;
                if core {
                    f.write_str(" (core dumped)")?;
                }
                Ok(())
            }
        }
    }
}

/// Python's `signame` on Linux: the name CPython's `signal` module gives the number, else
/// `signal N`. The aliases are resolved as Python resolves them (6 is SIGABRT, 29 is
/// SIGPOLL) and only SIGRTMIN/SIGRTMAX of the real-time range have names.
pub fn signame(sig: i32) -> String {
    let name = match sig {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        5 => "SIGTRAP",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        10 => "SIGUSR1",
        11 => "SIGSEGV",
        12 => "SIGUSR2",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        16 => "SIGSTKFLT",
        17 => "SIGCHLD",
        18 => "SIGCONT",
        19 => "SIGSTOP",
        20 => "SIGTSTP",
        21 => "SIGTTIN",
        22 => "SIGTTOU",
        23 => "SIGURG",
        24 => "SIGXCPU",
        25 => "SIGXFSZ",
        26 => "SIGVTALRM",
        27 => "SIGPROF",
        28 => "SIGWINCH",
        29 => "SIGPOLL",
        30 => "SIGPWR",
        31 => "SIGSYS",
        34 => "SIGRTMIN",
        64 => "SIGRTMAX",
        _ => return format!("signal {sig}"),
    };
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_match_decode_wait_status() {
        assert_eq!(ExitStatus::Exited(3).to_string(), "exit status 3");
        assert_eq!(
            ExitStatus::Signaled { sig: 15, core: false }.to_string(),
            "terminated by SIGTERM"
        );
        assert_eq!(
            ExitStatus::Signaled { sig: 11, core: true }.to_string(),
            "terminated by SIGSEGV (core dumped)"
        );
        assert_eq!(
            ExitStatus::Signaled { sig: 40, core: false }.to_string(),
            "terminated by signal 40"
        );
    }

    #[test]
    fn signal_death_is_minus_one() {
        assert_eq!(ExitStatus::Signaled { sig: 9, core: false }.code(), -1);
        assert_eq!(ExitStatus::Exited(2).code(), 2);
    }

    #[test]
    fn raw_wait_status_decodes() {
        // Linux encoding: exit code in bits 8..16; signal in the low 7 bits, 0x80 = core.
        assert_eq!(ExitStatus::from_wait_status(3 << 8), ExitStatus::Exited(3));
        assert_eq!(ExitStatus::from_wait_status(9), ExitStatus::Signaled { sig: 9, core: false });
        assert_eq!(
            ExitStatus::from_wait_status(11 | 0x80),
            ExitStatus::Signaled { sig: 11, core: true }
        );
    }

    #[test]
    fn signal_names_follow_python() {
        let got: Vec<String> = [0, 6, 9, 15, 29, 32, 34, 35, 64, 65].map(signame).to_vec();
        assert_eq!(
            got.join(","),
            "signal 0,SIGABRT,SIGKILL,SIGTERM,SIGPOLL,signal 32,SIGRTMIN,signal 35,SIGRTMAX,signal 65"
        );
    }
}
