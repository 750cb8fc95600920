//! The built-in event listeners, run from `[eventlistener:x]` sections as
//! `supervisord eventlistener --logger …` or `… --test-req-restart`. Both
//! speak the ordinary listener protocol on stdin/stdout ([`io`]), so they run under Python's
//! supervisord as well as ours; their own messages go to stderr (the listener's stderr log).

pub mod client;
pub mod io;
pub mod logger;
pub mod test_req_restart;

use std::ffi::OsString;
use std::io::Write;

use nix::sys::signal::{SigSet, Signal};

use crate::logio::RotatingWriter;

const USAGE: &str = "usage: supervisord eventlistener --logger [--logfile FILE] [--maxbytes BYTES] [--backups N]\n       supervisord eventlistener --test-req-restart\n";

/// Which listener, with its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Logger { logfile: Option<String>, maxbytes: u64, backups: u32 },
    TestReqRestart,
}

/// Parses the arguments after `eventlistener`.
pub fn parse_args(args: &[String]) -> Result<Mode, String> {
    let mut mode = None;
    let mut logfile = None;
    let mut maxbytes = 50 * 1024 * 1024;
    let mut backups = 10;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| format!("option {name} needs a value"))
        };
        match flag {
            "--logger" => mode = Some("logger"),
            "--test-req-restart" => mode = Some("test-req-restart"),
            "--logfile" => logfile = Some(value("--logfile")?),
            "--maxbytes" => {
                maxbytes = crate::config::options::byte_size(&value("--maxbytes")?)
                    .map_err(|e| format!("--maxbytes: {e}"))?
            }
            "--backups" => {
                backups = crate::config::options::count32(&value("--backups")?)
                    .map_err(|e| format!("--backups: {e}"))?
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    match mode {
        Some("logger") => Ok(Mode::Logger { logfile, maxbytes, backups }),
        Some(_) => Ok(Mode::TestReqRestart),
        None => Err("choose --logger or --test-req-restart".to_string()),
    }
}

fn fail(msg: &str) -> u8 {
    let _ = write!(std::io::stderr(), "Error: {msg}\n{USAGE}");
    2
}

/// The `eventlistener` personality. `args[0]` is the program name.
pub fn main(args: Vec<OsString>) -> u8 {
    let args: Vec<String> =
        args.into_iter().skip(1).map(|a| a.to_string_lossy().into_owned()).collect();
    let mode = match parse_args(&args) {
        Ok(m) => m,
        Err(e) => return fail(&e),
    };
    let stdin = std::io::stdin().lock();
    let stdout = std::io::stdout().lock();
    let mut io = io::ListenerIo::new(stdin, stdout);
    let res = match mode {
        Mode::Logger { logfile, maxbytes, backups } => {
            let mut sink = match logfile {
                Some(path) => match RotatingWriter::open(&path, maxbytes, backups) {
                    Ok(w) => logger::Sink::File(w),
                    Err(e) => return fail(&format!("cannot open {path}: {e}")),
                },
                None => logger::Sink::Stderr,
            };
            logger::run(&mut io, &mut sink)
        }
        Mode::TestReqRestart => {
            let Some(client) = client::Client::from_env() else {
                return fail(
                    "SUPERVISOR_SERVER_URL is not set or not usable (run me from supervisord)",
                );
            };
            // Signals are taken by a thread of their own, so that a SIGTERM that arrives
            // while the main thread waits for an event still re-enables autorecovery.
            let mut set = SigSet::empty();
            set.add(Signal::SIGTERM);
            set.add(Signal::SIGINT);
            if let Err(e) = set.thread_block() {
                return fail(&format!("cannot block signals: {e}"));
            }
            let dialect = test_req_restart::start(&client);
            let on_signal = client.clone();
            let spawned = std::thread::Builder::new().name("signals".into()).spawn(move || {
                if set.wait().is_ok() {
                    test_req_restart::stop(&on_signal, dialect);
                    std::process::exit(0);
                }
            });
            if let Err(e) = spawned {
                test_req_restart::stop(&client, dialect);
                return fail(&format!("cannot start the signal thread: {e}"));
            }
            let res = test_req_restart::run(&mut io, &client, dialect);
            test_req_restart::stop(&client, dialect);
            res
        }
    };
    match res {
        Ok(()) => 0,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "eventlistener: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn arguments() {
        assert_eq!(
            parse_args(&args(&["--logger", "--logfile", "/x", "--maxbytes", "1KB", "--backups=2"])),
            Ok(Mode::Logger { logfile: Some("/x".into()), maxbytes: 1024, backups: 2 })
        );
        assert_eq!(
            parse_args(&args(&["--logger"])),
            Ok(Mode::Logger { logfile: None, maxbytes: 50 * 1024 * 1024, backups: 10 })
        );
        assert_eq!(parse_args(&args(&["--test-req-restart"])), Ok(Mode::TestReqRestart));
        assert!(parse_args(&args(&[])).is_err());
        assert!(parse_args(&args(&["--logger", "--logfile"])).is_err());
        assert!(parse_args(&args(&["--logger", "--maxbytes", "lots"])).is_err());
        assert!(parse_args(&args(&["--bogus"])).is_err());
    }
}
