//! One attempt of each readiness and health check form (`ready_check=`, `health_check=`),
//! for the shell to schedule: it decides when to try, how often and what a failure means;
//! this module only answers "did this attempt succeed, and if not, why" (a short reason
//! for logs and `status`).
//!
//! - [`tcp`] and [`http`]: polled probes over the network, each bounded by a timeout;
//! - [`exec`]: a command run like the program's own (its user, directory and
//!   environment), through `sys::spawn` and the one reaper, killed at its timeout;
//! - [`log`]: a line matcher the output pump feeds (`log:REGEX`);
//! - [`notify`]: the systemd `sd_notify` datagram socket (`notify`).

pub mod exec;
pub mod http;
pub mod log;
pub mod notify;
pub mod tcp;

use std::time::Duration;

use crate::config::CheckForm;
use crate::sys::reaper::ReaperHandle;

/// `Ok` when the attempt succeeded, else a short reason (`connection refused`, `HTTP 503`,
/// `exit status 1: not ready`, `timed out after 1s`).
pub type Outcome = Result<(), String>;

/// `1s`, `0.5s`.
pub(crate) fn secs(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

/// One attempt of a polled form (`tcp:`, `http://`, `exec:`), bounded by `timeout`.
/// `exec` is the prepared command (see [`exec::prepare`]) and is only used for `exec:`.
/// `log:` and `notify` are not polled (they are fed by the pump and the notify socket)
/// and answer `Err`.
pub async fn attempt(
    form: &CheckForm,
    timeout: Duration,
    exec: Option<(&crate::sys::spawn::SpawnSpec, &ReaperHandle)>,
) -> Outcome {
    match form {
        CheckForm::Tcp { host, port } => tcp::attempt(host, *port, timeout).await,
        CheckForm::Http { host, port, path } => http::attempt(host, *port, path, timeout).await,
        CheckForm::Exec { .. } => match exec {
            Some((spec, reaper)) => exec::attempt(spec, reaper, timeout).await,
            None => Err("the check command was not prepared".to_string()),
        },
        CheckForm::Log { .. } | CheckForm::Notify => {
            Err("this check is not polled: its events decide it".to_string())
        }
    }
}
