//! Operating-system mechanics: the only places that fork, wait, read the clock, look up
//! users and handle signals.
//!
//! Everything here is a thin, documented layer over raw syscalls so that the rest of the
//! daemon can stay free of `unsafe` and of process-global side effects:
//! - [`clock`]: the one place that reads time (monotonic and wall).
//! - [`users`]: `/etc/passwd` and `/etc/group` parsed directly (no NSS: the release binary
//!   is statically linked).
//! - [`spawn`]: command splitting and resolution with Python's spawn errors, and the
//!   hand-rolled spawn (`clone` sharing memory until `execve`) that gives each child its own
//!   process group and pipes.
//! - [`reaper`]: the single SIGCHLD-driven `waitpid(-1)` loop; exits are routed by pid.
//! - [`signals`]: TERM/INT/QUIT/HUP/USR2 forwarded as [`signals::DaemonSignal`]s.
//! - [`limits`]: `minfds`/`minprocs` rlimit raising with Python's messages.
//! - [`daemonize`]: the classic fork/setsid detach and the pidfile.
//! - `arena`: the clients' bump allocator (fewer pages touched per run; feature
//!   `client-arena`).
//! - `memcpy`: `memcpy`/`memmove` for the musl build (musl's are slow on short copies;
//!   feature `fast-memcpy`).
//! - [`procfs`]: CPU, memory, descriptors and start time from `/proc`, for metrics.
//! - [`errno`]: Python's `errno.errorcode` names, used in spawn messages.
//! - [`proctree`]: a process's descendants (also those that left its group), from `/proc`.
//!
//! Invariants (enforced by `clippy.toml` where a lint can see them): only [`spawn`] and
//! [`daemonize`] fork, only [`reaper`] waits, only [`clock`] reads the clock, nothing uses
//! `tokio::process`.

#[cfg(any(test, feature = "client-arena"))]
pub mod arena;
pub mod clock;
pub mod daemonize;
pub mod errno;
pub mod limits;
#[cfg(all(target_arch = "x86_64", any(test, feature = "fast-memcpy")))]
pub mod memcpy;
pub mod memory;
pub mod procfs;
pub mod proctree;

pub mod reaper;
pub mod signals;
pub mod socket;
pub mod spawn;
pub mod users;
