//! `supervisord eventlistener --test-req-restart`: status 64 means "restart me for a test
//! request". At start it disables autorecovery (so that ordinary exits stay down while
//! tests run); whenever a process exits (PROCESS_STATE_EXITED, or BACKOFF for an exit
//! within `startsecs`) with status 64 it starts it again; on SIGTERM/SIGINT it enables
//! autorecovery again and exits. The hold names this listener process, so the daemon
//! releases it if the listener exits without doing so (a crash, SIGKILL), and a respawned
//! listener takes a new one. Under Python's supervisord, which has no `weka.*`
//! methods, it uses `supervisor.startProcess` over XML-RPC and leaves autorecovery alone.

use std::io::{self, BufRead, Write};

use super::client::{CallError, Client, xml_member_int};
use super::io::{ListenerIo, Received};
use crate::rpc::value::Value;

/// The exit status that asks for a restart.
pub const RESTART_STATUS: i64 = 64;

/// Which dialect the daemon speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Ours: JSON-RPC with `weka.*`.
    Weka,
    /// Python's supervisord: XML-RPC, no autorecovery.
    Xml,
}

fn say(msg: &str) {
    let _ = writeln!(io::stderr(), "test-req-restart: {msg}");
}

/// `group:name` of this listener process, from the variables supervisord sets, so that the
/// daemon ties the hold to it and releases it if the listener dies without enabling.
fn own_name() -> Option<String> {
    let name = std::env::var("SUPERVISOR_PROCESS_NAME").ok()?;
    let group = std::env::var("SUPERVISOR_GROUP_NAME").unwrap_or_else(|_| name.clone());
    Some(format!("{group}:{name}"))
}

fn holder() -> Vec<Value> {
    own_name().map(Value::str).into_iter().collect()
}

/// Disables autorecovery, learning which dialect the daemon speaks.
pub fn start(client: &Client) -> Dialect {
    match client.json("weka.disableAutoRecovery", &holder()) {
        Ok(_) => {
            say("autorecovery disabled");
            Dialect::Weka
        }
        Err(e) => {
            say(&format!(
                "this supervisord has no weka.disableAutoRecovery ({e}); autorecovery is left as it is"
            ));
            Dialect::Xml
        }
    }
}

/// Enables autorecovery again (on SIGTERM).
pub fn stop(client: &Client, dialect: Dialect) {
    if dialect == Dialect::Weka {
        match client.json("weka.enableAutoRecovery", &holder()) {
            Ok(_) => say("autorecovery enabled"),
            Err(e) => say(&format!("could not enable autorecovery: {e}")),
        }
    }
}

/// The exit status of `name` (`group:name`) as `getProcessInfo` reports it.
fn exit_status(client: &Client, dialect: Dialect, name: &str) -> Result<i64, CallError> {
    let params = [Value::str(name)];
    match dialect {
        // Ours keeps the status of an exit within startsecs (BACKOFF), which Python's
        // getProcessInfo reports as 0.
        Dialect::Weka => {
            let status = client.json("weka.getLastExitStatus", &params)?;
            Ok(status.as_int().unwrap_or(0))
        }
        Dialect::Xml => {
            let doc = client.xml("supervisor.getProcessInfo", &params)?;
            xml_member_int(&doc, "exitstatus")
                .ok_or_else(|| CallError::Protocol("getProcessInfo without exitstatus".into()))
        }
    }
}

fn start_process(client: &Client, dialect: Dialect, name: &str) -> Result<(), CallError> {
    let params = [Value::str(name), Value::Bool(false)];
    match dialect {
        Dialect::Weka => client.json("weka.startProcess", &params).map(drop),
        Dialect::Xml => client.xml("supervisor.startProcess", &params).map(drop),
    }
}

/// `group:name` of the process a PROCESS_STATE_EXITED/BACKOFF event is about, or `None`
/// for events this listener ignores.
pub fn exited_process(ev: &Received) -> Option<String> {
    if !matches!(ev.event_name(), "PROCESS_STATE_EXITED" | "PROCESS_STATE_BACKOFF") {
        return None;
    }
    let (body, _) = ev.body();
    let name = body.get("processname")?;
    let group = body.get("groupname").unwrap_or(name);
    Some(format!("{group}:{name}"))
}

/// Handles one event: restarts its process when it exited with status 64.
pub fn handle(client: &Client, dialect: Dialect, ev: &Received) {
    let Some(name) = exited_process(ev) else { return };
    match exit_status(client, dialect, &name) {
        Ok(RESTART_STATUS) => match start_process(client, dialect, &name) {
            Ok(()) => say(&format!("{name} exited with status 64: started it again")),
            Err(e) => say(&format!("{name} exited with status 64, but starting it failed: {e}")),
        },
        Ok(_) => {}
        Err(e) => say(&format!("cannot read the exit status of {name}: {e}")),
    }
}

/// The event loop; returns at EOF. Every event is acknowledged: a failed restart is
/// reported on stderr, not retried by having supervisord resend the event.
pub fn run<R: BufRead, W: Write>(
    io: &mut ListenerIo<R, W>,
    client: &Client,
    dialect: Dialect,
) -> io::Result<()> {
    while let Some(ev) = io.wait()? {
        handle(client, dialect, &ev);
        io.ok()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn ev(name: &str, body: &str) -> Received {
        let mut headers = HashMap::new();
        headers.insert("eventname".to_string(), name.to_string());
        Received { headers, payload: body.to_string() }
    }

    #[test]
    fn only_exits_and_backoffs_name_a_process() {
        let body = "processname:n_00 groupname:n from_state:RUNNING expected:0 pid:5";
        assert_eq!(exited_process(&ev("PROCESS_STATE_EXITED", body)).as_deref(), Some("n:n_00"));
        let body = "processname:x groupname:x from_state:STARTING tries:1";
        assert_eq!(exited_process(&ev("PROCESS_STATE_BACKOFF", body)).as_deref(), Some("x:x"));
        assert_eq!(exited_process(&ev("PROCESS_STATE_RUNNING", body)), None);
        assert_eq!(exited_process(&ev("PROCESS_STATE_EXITED", "garbage")), None);
    }
}
