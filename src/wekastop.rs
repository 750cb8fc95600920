//! `wekastop NAME…`: an operator stop that the restart policy does not fight. It disables
//! autorecovery, stops the named processes with wait (printing exactly what
//! `supervisorctl stop` prints), and enables autorecovery again — also when interrupted by
//! SIGINT, SIGTERM or SIGHUP, which a watcher thread turns into a re-enable and an exit.

use std::ffi::OsString;
use std::io::{BufWriter, Write};

use nix::sys::signal::{SigSet, Signal};

use crate::ctl;
use crate::ctl::client::Client;
use crate::ctl::commands::Ctl;

/// `wekastop`'s command line.
#[derive(Debug, clap::Parser)]
#[command(
    name = "wekastop",
    about = "Disable autorecovery, stop the named processes and enable autorecovery again"
)]
struct Args {
    #[command(flatten)]
    conn: ctl::ConnArgs,
    /// Processes to stop: name, group:name, group:* or all
    #[arg(value_name = "NAME", required = true)]
    names: Vec<String>,
}

fn reenable(client: &mut Client) {
    // A kept-alive connection may have been closed meanwhile; the client retries once.
    let _ = client.call("weka.enableAutoRecovery", &[]);
}

/// Blocks the interrupting signals in this thread (and so in threads it starts) and
/// starts a watcher that re-enables autorecovery and exits when one arrives.
fn watch_signals(serverurl: String, user: Option<String>, pass: Option<String>) {
    let mut set = SigSet::empty();
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(sig);
    }
    if set.thread_block().is_err() {
        return;
    }
    let spawned = std::thread::Builder::new().name("wekastop-signals".into()).spawn(move || {
        if let Ok(sig) = set.wait() {
            let mut client = Client::new(&serverurl, user.as_deref(), pass.as_deref());
            reenable(&mut client);
            std::process::exit(128 + sig as i32);
        }
    });
    if spawned.is_err() {
        // Without a watcher, unblock so the signals at least still end the program.
        let _ = set.thread_unblock();
    }
}

/// Runs wekastop with `args` (argv[0] first).
pub fn main(args: Vec<OsString>) -> u8 {
    let progname =
        args.first().map_or_else(|| "wekastop".to_string(), |a| a.to_string_lossy().into_owned());
    let args: Args = match ctl::parse_clap(args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let opts = args.conn.options();
    let mut client = match ctl::connect(&progname, &opts) {
        Ok(c) => c,
        Err(msg) => {
            let _ = writeln!(std::io::stderr(), "Error: {msg}");
            return 2;
        }
    };
    let disabled = client.call("weka.disableAutoRecovery", &[]).is_ok();
    if disabled {
        watch_signals(client.serverurl().to_string(), opts.username.clone(), opts.password.clone());
    }
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut err = std::io::stderr();
    let mut env = ctl::Terminal::new(ctl::shell::Console::plain());
    let code = {
        let mut ctl = Ctl::new(&mut client, &mut out, &mut err, &mut env);
        // Python's stop, message for message; a dead daemon is reported here too.
        ctl.onecmd(&format!("stop {}", args.names.join(" ")));
        ctl.exit
    };
    if disabled {
        reenable(&mut client);
    }
    let _quiet_on_epipe = out.flush();
    code
}
