//! `supervisorctl`: every non-interactive command of supervisor 4.3.0 with its output and
//! exit codes byte for byte, speaking JSON-RPC to our daemon.
//!
//! - this file: the command line (Python's `getopt` rules and messages), finding the
//!   config file and the server, and one run;
//! - [`conf`]: the few config keys a client needs (a stand-in for `crate::config`);
//! - [`client`]: the blocking HTTP/1.1 JSON-RPC client;
//! - [`commands`]: what each command calls and prints, against the [`commands::Rpc`] trait;
//! - [`follow`]: `tail -f`/`maintail -f`/`fg` by polling;
//! - [`format`]: the pure, byte-exact text;
//! - [`shell`]: the interactive shell (no command, or `-i`) and the console it reads.

pub mod client;
pub mod commands;
pub mod conf;
pub mod follow;
pub mod format;
pub mod shell;

use std::ffi::OsString;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use commands::{Ctl, Env, StdinLine};

/// The server when neither the command line nor a config file names one.
pub const DEFAULT_SERVERURL: &str = "unix:///tmp/supervisor.sock";

/// How often `tail -f` and friends poll the daemon.
const POLL: Duration = Duration::from_millis(150);

/// Runs supervisorctl with `args` (argv[0] first) and returns its exit status.
pub fn main(args: Vec<OsString>) -> u8 {
    let mut args = args.into_iter().map(|a| a.to_string_lossy().into_owned());
    let progname = args.next().unwrap_or_else(|| "supervisorctl".to_string());
    let rest: Vec<String> = args.collect();
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(64 * 1024, stdout.lock());
    let mut err = std::io::stderr();
    let code = run(&progname, &rest, &mut out, &mut err);
    // A closed stdout is a quiet exit: the status stays what the command decided.
    let _quiet_on_epipe = out.flush();
    code
}

/// Everything after argv[0] is parsed and run here; `out`/`err` are stdout/stderr.
pub fn run(progname: &str, args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let opts = match parse_options(args) {
        Ok(Parsed::Help) => {
            let _quiet = out.write_all(format::usage(progname).as_bytes());
            return 0;
        }
        Ok(Parsed::Run(o)) => o,
        Err(msg) => {
            let _quiet = err.write_all(format::usage_error(&msg, progname).as_bytes());
            return 2;
        }
    };
    let (mut rpc, config) = match connect_with_config(progname, &opts) {
        Ok(c) => c,
        Err(msg) => {
            let _quiet = err.write_all(format::usage_error(&msg, progname).as_bytes());
            return 2;
        }
    };
    // Python: a command on the line runs once, `-i` or not; without one, the shell.
    if !opts.args.is_empty() {
        let mut env = Terminal::new(shell::Console::plain());
        let mut ctl = Ctl::new(&mut rpc, out, err, &mut env);
        ctl.interactive = opts.interactive;
        ctl.onecmd(&opts.args.join(" "));
        return ctl.exit;
    }
    let history = config.history_file.map(PathBuf::from);
    let completion = shell::Completion::new(client::Client::new(
        rpc.serverurl(),
        config.username.as_deref(),
        config.password.as_deref(),
    ));
    let mut env = Terminal::new(shell::Console::shell(completion, history));
    let prompt = format!("{}> ", config.prompt.as_deref().unwrap_or("supervisor"));
    let mut ctl = Ctl::new(&mut rpc, out, err, &mut env);
    ctl.cmdloop(&prompt);
    // Interactive mode always exits 0.
    0
}

/// The client for the server the options and the config file name: `-s`, then
/// `[supervisorctl] serverurl`, then `[unix_http_server] file`, then the default socket;
/// credentials from `-u`/`-p`, then the config. Shared by supervisorctl, wekastop and bridge.
pub fn connect(progname: &str, opts: &Options) -> Result<client::Client, String> {
    connect_with_config(progname, opts).map(|(client, _)| client)
}

/// [`connect`], also returning what the config file says (the shell's prompt, history).
fn connect_with_config(
    progname: &str,
    opts: &Options,
) -> Result<(client::Client, conf::ClientConfig), String> {
    let configfile = opts.configfile.clone().map(PathBuf::from).or_else(|| find_config(progname));
    let config = match configfile {
        Some(path) => {
            conf::read(&path, &|k| std::env::var_os(k).map(|v| v.to_string_lossy().into_owned()))?
        }
        // Python's `-r` only counts without a config file: reading one sets the history
        // file from its `history_file`, or to none.
        None => conf::ClientConfig {
            history_file: opts.history_file.clone(),
            ..conf::ClientConfig::default()
        },
    };
    let serverurl = opts
        .serverurl
        .clone()
        .or(config.serverurl.clone())
        .unwrap_or_else(|| DEFAULT_SERVERURL.into());
    let username = opts.username.clone().or(config.username.clone());
    let password = opts.password.clone().or(config.password.clone());
    let client = client::Client::new(&serverurl, username.as_deref(), password.as_deref());
    let config = conf::ClientConfig { username, password, ..config };
    Ok((client, config))
}

/// The config search path of `Options.__init__` (supervisor/options.py), where
/// `here` is two levels above argv[0].
pub fn search_paths(progname: &str) -> Vec<PathBuf> {
    let here = Path::new(progname).parent().and_then(Path::parent).unwrap_or(Path::new(""));
    vec![
        here.join("etc").join("supervisord.conf"),
        here.join("supervisord.conf"),
        PathBuf::from("supervisord.conf"),
        PathBuf::from("etc/supervisord.conf"),
        PathBuf::from("/etc/supervisord.conf"),
        PathBuf::from("/etc/supervisor/supervisord.conf"),
    ]
}

fn find_config(progname: &str) -> Option<PathBuf> {
    search_paths(progname).into_iter().find(|p| p.exists())
}

/// The connection options of our own clients (`wekastop`, `supervisord bridge`), spelled
/// as supervisorctl's.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnArgs {
    /// Configuration file path (default: searched as supervisorctl searches)
    #[arg(short = 'c', long = "configuration", value_name = "FILE")]
    pub configuration: Option<String>,
    /// URL on which supervisord server is listening
    #[arg(short = 's', long = "serverurl", value_name = "URL")]
    pub serverurl: Option<String>,
    /// Username to use for authentication with server
    #[arg(short = 'u', long = "username", value_name = "USER")]
    pub username: Option<String>,
    /// Password to use for authentication with server
    #[arg(short = 'p', long = "password", value_name = "PASSWORD")]
    pub password: Option<String>,
}

impl ConnArgs {
    /// supervisorctl's options with these and no command words.
    pub fn options(&self) -> Options {
        Options {
            configfile: self.configuration.clone(),
            serverurl: self.serverurl.clone(),
            username: self.username.clone(),
            password: self.password.clone(),
            ..Options::default()
        }
    }
}

/// Parses our own clients' command lines with clap. `Err` is the exit code after clap has
/// printed help (0) or a usage error (2).
pub fn parse_clap<T: clap::Parser>(args: Vec<OsString>) -> Result<T, u8> {
    T::try_parse_from(args).map_err(|e| {
        let _ = e.print();
        u8::try_from(e.exit_code()).unwrap_or(2)
    })
}

/// The options supervisorctl takes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Options {
    pub configfile: Option<String>,
    pub interactive: bool,
    pub serverurl: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub history_file: Option<String>,
    /// The command words.
    pub args: Vec<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    Help,
    Run(Options),
}

const SHORT: &str = "h?c:is:u:p:r:";
const LONG: [&str; 7] = [
    "help",
    "configuration=",
    "interactive",
    "serverurl=",
    "username=",
    "password=",
    "history_file=",
];

/// Python's `getopt.getopt(args, SHORT, LONG)` (options stop at the first non-option),
/// then `Options.realize`'s processing in order: `-h` prints help when reached, a value
/// is validated before the "conflicting" check, and each option may be given once.
pub(crate) fn parse_options(args: &[String]) -> Result<Parsed, String> {
    let (pairs, rest) = crate::pytext::getopt(args, SHORT, &LONG)?;
    let mut o = Options { args: rest, ..Options::default() };
    for (opt, value) in pairs {
        let slot = match opt.as_str() {
            "-h" | "-?" | "--help" => return Ok(Parsed::Help),
            "-i" | "--interactive" => {
                if o.interactive {
                    return Err(format!(
                        "conflicting command line option {}",
                        format::py_repr(&opt)
                    ));
                }
                o.interactive = true;
                continue;
            }
            "-c" | "--configuration" => &mut o.configfile,
            "-s" | "--serverurl" => {
                if !is_url(&value) {
                    return Err(format!(
                        "invalid value for {opt} {}: value {} is not a URL",
                        format::py_repr(&value),
                        format::py_repr(&value)
                    ));
                }
                &mut o.serverurl
            }
            "-u" | "--username" => &mut o.username,
            "-p" | "--password" => &mut o.password,
            _ => &mut o.history_file,
        };
        if slot.is_some() {
            return Err(format!("conflicting command line option {}", format::py_repr(&opt)));
        }
        *slot = Some(value);
    }
    Ok(Parsed::Run(o))
}

/// `datatypes.url`: `urlparse` finds a scheme, and a netloc or a path.
fn is_url(value: &str) -> bool {
    let Some((scheme, rest)) = value.split_once(':') else { return false };
    let scheme_ok = scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !scheme_ok {
        return false;
    }
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    match rest.strip_prefix("//") {
        Some(after) => !after.is_empty(),
        None => !rest.is_empty(),
    }
}

/// Set by the SIGINT handler while a streaming command runs.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// The real terminal: Ctrl-C, a sleeping poll interval, and the console that stdin lines
/// (`fg`'s input, the shell's commands) come from.
pub(crate) struct Terminal {
    console: shell::Console,
}

impl Terminal {
    pub(crate) fn new(console: shell::Console) -> Terminal {
        Terminal { console }
    }
}

/// Catches Ctrl-C from the first time a streaming command looks for it.
fn install_sigint() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let action = nix::sys::signal::SigAction::new(
            nix::sys::signal::SigHandler::Handler(on_sigint),
            nix::sys::signal::SaFlags::SA_RESTART,
            nix::sys::signal::SigSet::empty(),
        );
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        let installed =
            unsafe { nix::sys::signal::sigaction(nix::sys::signal::Signal::SIGINT, &action) };
        // Without the handler Ctrl-C kills us with the default action, which is only
        // less tidy (no final empty line).
        debug_assert!(installed.is_ok(), "sigaction(SIGINT)");
    });
}

impl Env for Terminal {
    fn interrupted(&self) -> bool {
        install_sigint();
        INTERRUPTED.load(Ordering::SeqCst)
    }

    fn pause(&mut self) {
        std::thread::sleep(POLL);
    }

    fn stdin_line(&mut self) -> StdinLine {
        self.console.stdin.try_line()
    }

    fn ask(&mut self, prompt: &str) -> Option<String> {
        self.console.ask(prompt)
    }

    fn ask_password(&mut self, prompt: &str) -> Option<String> {
        self.console.ask_password(prompt)
    }

    fn server_changed(&mut self, url: Option<&str>, credentials: Option<(&str, &str)>) {
        self.console.server_changed(url, credentials);
    }

    fn read_command(&mut self, prompt: &str) -> commands::ShellInput {
        self.console.read_command(prompt)
    }

    fn begin_command(&mut self) {
        INTERRUPTED.store(false, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests;
