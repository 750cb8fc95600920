//! Log files: rotation, output pumps, reading with offsets.
//!
//! - [`rotate`]: `RotatingWriter`, size-based rollover with Python's names and timing.
//! - [`autoname`]: `AUTO` child log names in `childlogdir` and their cleanup at startup.
//! - [`mainlog`]: the daemon log, Python's line format, level names and filtering.
//! - [`pump`]: the task that drains one child pipe into its log writer.
//! - [`watch`]: readiness of the output pipes, one epoll descriptor and thread for all.
//! - [`coalesce`]: read coalescing, the pump runtime's short pause before it sleeps.
//! - [`capture`]: the pure capture-mode (`<!--XSUPERVISOR:BEGIN-->`) parser.
//! - [`ansi`]: Python's `strip_ansi` escape stripping.
//! - [`tail`]: the pure offset rules of `readLog`/`tailProcessStdoutLog`, and the reads.
//! - [`syslog`]: lines to the local syslog socket, framed as Python's (glibc's) are.

pub mod ansi;
pub mod autoname;
pub mod capture;
pub mod coalesce;
pub mod mainlog;
pub mod mainlog_task;
pub mod prefix;
pub mod pump;
pub mod rotate;
pub mod syslog;
pub mod tail;
pub mod watch;

pub use rotate::RotatingWriter;

/// Which child output stream a log, pump or event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// The child's fd 1 (and fd 2 under `redirect_stderr`).
    Stdout,
    /// The child's fd 2.
    Stderr,
}

impl Channel {
    /// The name Python uses in file names and messages: `stdout` / `stderr`.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Stdout => "stdout",
            Channel::Stderr => "stderr",
        }
    }
}
