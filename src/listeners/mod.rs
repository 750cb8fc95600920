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

/// Which listener, with its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Logger { logfile: Option<String>, maxbytes: u64, backups: u32 },
    TestReqRestart,
}

/// `supervisord eventlistener`'s command line.
#[derive(Debug, clap::Parser)]
#[command(
    name = "supervisord eventlistener",
    about = "The built-in event listeners, run from an [eventlistener:x] section"
)]
#[command(group = clap::ArgGroup::new("mode").required(true).args(["logger", "test_req_restart"]))]
struct Args {
    /// Write every PROCESS_LOG event's line, prefixed with its process and channel
    #[arg(long)]
    logger: bool,
    /// Hold autorecovery off and restart any process that exits with status 64
    #[arg(long)]
    test_req_restart: bool,
    /// With --logger: the file to write (default: stderr)
    #[arg(long, value_name = "FILE")]
    logfile: Option<String>,
    /// With --logger: rotate the file at this size (e.g. 50MB)
    #[arg(long, value_name = "BYTES", default_value = "50MB", value_parser = byte_size)]
    maxbytes: u64,
    /// With --logger: rotated files to keep
    #[arg(long, value_name = "N", default_value = "10", value_parser = count)]
    backups: u32,
}

fn byte_size(v: &str) -> Result<u64, String> {
    crate::config::options::byte_size(v)
}

fn count(v: &str) -> Result<u32, String> {
    crate::config::options::count32(v)
}

impl Args {
    fn mode(self) -> Mode {
        if self.logger {
            Mode::Logger { logfile: self.logfile, maxbytes: self.maxbytes, backups: self.backups }
        } else {
            Mode::TestReqRestart
        }
    }
}

fn fail(msg: &str) -> u8 {
    let _ = writeln!(std::io::stderr(), "Error: {msg}");
    2
}

/// The `eventlistener` personality. `args[0]` is the program name.
pub fn main(args: Vec<OsString>) -> u8 {
    let mode = match crate::ctl::parse_clap::<Args>(args) {
        Ok(a) => a.mode(),
        Err(code) => return code,
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
    use clap::Parser;

    fn parse(v: &[&str]) -> Result<Mode, clap::Error> {
        let argv = std::iter::once("eventlistener").chain(v.iter().copied());
        Args::try_parse_from(argv).map(Args::mode)
    }

    #[test]
    fn arguments() {
        assert_eq!(
            parse(&["--logger", "--logfile", "/x", "--maxbytes", "1KB", "--backups=2"]).ok(),
            Some(Mode::Logger { logfile: Some("/x".into()), maxbytes: 1024, backups: 2 })
        );
        assert_eq!(
            parse(&["--logger"]).ok(),
            Some(Mode::Logger { logfile: None, maxbytes: 50 * 1024 * 1024, backups: 10 })
        );
        assert_eq!(parse(&["--test-req-restart"]).ok(), Some(Mode::TestReqRestart));
        for bad in [
            &[][..],
            &["--logger", "--logfile"],
            &["--logger", "--maxbytes", "lots"],
            &["--bogus"],
            &["--logger", "--test-req-restart"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn clap_definition_is_consistent() {
        <Args as clap::CommandFactory>::command().debug_assert();
    }
}
