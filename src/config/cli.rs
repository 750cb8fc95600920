//! The daemon's command line, with Python's `getopt` semantics and messages, plus our
//! `--check`; and the config search path used when `-c` is absent.
//!
//! Python's rules kept here (supervisor/options.py `Options.realize`, stdlib `getopt`):
//! options stop at the first non-option word; short options cluster (`-nc f`, `-cf`);
//! long options take `--x=v` or `--x v` and may be abbreviated to a unique prefix; each
//! option may be given once; handlers validate values as they are processed, in order,
//! so `-h` after a bad value reports the bad value.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::model::Level;
use super::options as opt;

/// The version `-v` prints: tools parse it, and 4.3.0 is the version we are compatible with.
pub const VERSION: &str = "4.3.0";

/// `[supervisord]` values given on the command line; they win over the file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Overrides {
    /// `-n/--nodaemon`.
    pub nodaemon: Option<bool>,
    /// `-s/--silent`.
    pub silent: Option<bool>,
    /// `-u/--user`.
    pub user: Option<String>,
    /// `-m/--umask`.
    pub umask: Option<u32>,
    /// `-d/--directory`.
    pub directory: Option<PathBuf>,
    /// `-l/--logfile`, as given (`syslog` stays special).
    pub logfile: Option<String>,
    /// `-y/--logfile_maxbytes`.
    pub logfile_maxbytes: Option<u64>,
    /// `-z/--logfile_backups`.
    pub logfile_backups: Option<u32>,
    /// `-e/--loglevel`.
    pub loglevel: Option<Level>,
    /// `-j/--pidfile`, as given.
    pub pidfile: Option<String>,
    /// `-i/--identifier`.
    pub identifier: Option<String>,
    /// `-q/--childlogdir`.
    pub childlogdir: Option<PathBuf>,
    /// `-k/--nocleanup`.
    pub nocleanup: Option<bool>,
    /// `-a/--minfds`.
    pub minfds: Option<u64>,
    /// `--minprocs`.
    pub minprocs: Option<u64>,
    /// `-t/--strip_ansi`.
    pub strip_ansi: Option<bool>,
    /// `--profile_options` (accepted; we have no profiler).
    pub profile_options: Option<String>,
}

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// `-h`/`-?`/`--help`: print [`help_text`] and exit 0.
    Help,
    /// `-v`/`--version`: print [`VERSION`] and exit 0.
    Version,
    /// Load the config and run (or check) it.
    Run(Box<DaemonArgs>),
}

/// The arguments of a run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DaemonArgs {
    /// `-c/--configuration`; None means search ([`search_paths`]).
    pub configuration: Option<PathBuf>,
    /// `--check`: validate, print the process table, exit.
    pub check: bool,
    /// Everything that overrides `[supervisord]`.
    pub overrides: Overrides,
}

/// A usage error: printed as `Error: <msg>` plus `For help, use <argv0> -h`, exit 2.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

/// `Error: <msg>\nFor help, use <argv0> -h\n`, Python's `Options.usage`.
pub fn usage_text(msg: &str, argv0: &str) -> String {
    format!("Error: {msg}\nFor help, use {argv0} -h\n")
}

/// Python's help text with `%s` replaced by argv[0], byte for byte.
pub fn help_text(argv0: &str) -> String {
    HELP.replace("%s", argv0)
}

const HELP: &str = "supervisord -- run a set of applications as daemons.

Usage: %s [options]

Options:
-c/--configuration FILENAME -- configuration file path (searches if not given)
-n/--nodaemon -- run in the foreground (same as 'nodaemon=true' in config file)
-s/--silent -- no logs to stdout (maps to 'silent=true' in config file)
-h/--help -- print this usage message and exit
-v/--version -- print supervisord version number and exit
-u/--user USER -- run supervisord as this user (or numeric uid)
-m/--umask UMASK -- use this umask for daemon subprocess (default is 022)
-d/--directory DIRECTORY -- directory to chdir to when daemonized
-l/--logfile FILENAME -- use FILENAME as logfile path
-y/--logfile_maxbytes BYTES -- use BYTES to limit the max size of logfile
-z/--logfile_backups NUM -- number of backups to keep when max bytes reached
-e/--loglevel LEVEL -- use LEVEL as log level (debug,info,warn,error,critical)
-j/--pidfile FILENAME -- write a pid file for the daemon process to FILENAME
-i/--identifier STR -- identifier used for this instance of supervisord
-q/--childlogdir DIRECTORY -- the log directory for child process logs
-k/--nocleanup --  prevent the process from performing cleanup (removal of
                   old automatic child log files) at startup.
-a/--minfds NUM -- the minimum number of file descriptors for start success
-t/--strip_ansi -- strip ansi escape codes from process output
--minprocs NUM  -- the minimum number of processes available for start success
--profile_options OPTIONS -- run supervisord under profiler and output
                             results based on OPTIONS, which  is a comma-sep'd
                             list of 'cumulative', 'calls', and/or 'callers',
                             e.g. 'cumulative,callers')

";

/// Short options in getopt form: a trailing `:` takes an argument.
const SHORT: &str = "h?c:vnu:m:d:l:y:z:e:j:i:q:ka:ts";

/// Long options in getopt form: a trailing `=` takes an argument.
const LONG: &[&str] = &[
    "help",
    "configuration=",
    "version",
    "nodaemon",
    "user=",
    "umask=",
    "directory=",
    "logfile=",
    "logfile_maxbytes=",
    "logfile_backups=",
    "loglevel=",
    "pidfile=",
    "identifier=",
    "childlogdir=",
    "minfds=",
    "minprocs=",
    "nocleanup",
    "strip_ansi",
    "profile_options=",
    "silent",
    "check",
];

fn getopt(args: &[String]) -> Result<crate::pytext::GetoptResult, UsageError> {
    crate::pytext::getopt(args, SHORT, LONG).map_err(UsageError)
}

/// Parses the daemon's arguments; `args[0]` is argv[0]. `cwd` and `home` resolve the
/// paths that flags name (Python checks `-d`, `-q`, `-l` and `-j` as it reads them).
pub fn parse(args: &[OsString], cwd: &Path, home: Option<&str>) -> Result<Command, UsageError> {
    let args: Vec<String> = args.iter().skip(1).map(|a| a.to_string_lossy().into_owned()).collect();
    let (opts, rest) = getopt(&args)?;
    if !rest.is_empty() {
        let list: Vec<String> = rest.iter().map(|r| crate::pytext::repr(r)).collect();
        return Err(UsageError(format!(
            "positional arguments are not supported: [{}]",
            list.join(", ")
        )));
    }
    let mut run = DaemonArgs::default();
    let mut seen: Vec<&str> = Vec::new();
    for (name, value) in &opts {
        let canonical = canonical(name);
        let invalid = |why: String| {
            UsageError(format!("invalid value for {name} {}: {why}", crate::pytext::repr(value)))
        };
        match canonical {
            "help" => return Ok(Command::Help),
            "version" => return Ok(Command::Version),
            _ => {}
        }
        if seen.contains(&canonical) {
            return Err(UsageError(format!(
                "conflicting command line option {}",
                crate::pytext::repr(name)
            )));
        }
        seen.push(canonical);
        let o = &mut run.overrides;
        match canonical {
            "configuration" => run.configuration = Some(PathBuf::from(value)),
            "check" => run.check = true,
            "nodaemon" => o.nodaemon = Some(true),
            "silent" => o.silent = Some(true),
            "nocleanup" => o.nocleanup = Some(true),
            "strip_ansi" => o.strip_ansi = Some(true),
            "user" => o.user = Some(value.clone()),
            "identifier" => o.identifier = Some(value.clone()),
            "umask" => o.umask = Some(opt::octal(value).map_err(invalid)?),
            "directory" => {
                o.directory = Some(opt::existing_directory(value, home, cwd).map_err(invalid)?)
            }
            "childlogdir" => {
                o.childlogdir = Some(opt::existing_directory(value, home, cwd).map_err(invalid)?)
            }
            "logfile" => {
                if value != "syslog" {
                    opt::existing_dirpath(value, home, cwd).map_err(invalid)?;
                }
                o.logfile = Some(value.clone());
            }
            "pidfile" => {
                opt::existing_dirpath(value, home, cwd).map_err(invalid)?;
                o.pidfile = Some(value.clone());
            }
            "logfile_maxbytes" => {
                o.logfile_maxbytes = Some(opt::byte_size(value).map_err(invalid)?)
            }
            "logfile_backups" => o.logfile_backups = Some(opt::count32(value).map_err(invalid)?),
            "loglevel" => o.loglevel = Some(opt::log_level(value).map_err(invalid)?),
            "minfds" => o.minfds = Some(opt::count(value).map_err(invalid)?),
            "minprocs" => o.minprocs = Some(opt::count(value).map_err(invalid)?),
            "profile_options" => o.profile_options = Some(value.clone()),
            _ => return Err(UsageError(format!("option {name} not recognized"))),
        }
    }
    Ok(Command::Run(Box::new(run)))
}

/// The long name of an option as getopt returned it (`-c` → `configuration`).
fn canonical(name: &str) -> &str {
    match name {
        "-h" | "-?" => "help",
        "-c" => "configuration",
        "-v" => "version",
        "-n" => "nodaemon",
        "-u" => "user",
        "-m" => "umask",
        "-d" => "directory",
        "-l" => "logfile",
        "-y" => "logfile_maxbytes",
        "-z" => "logfile_backups",
        "-e" => "loglevel",
        "-j" => "pidfile",
        "-i" => "identifier",
        "-q" => "childlogdir",
        "-k" => "nocleanup",
        "-a" => "minfds",
        "-t" => "strip_ansi",
        "-s" => "silent",
        long => long.trim_start_matches('-'),
    }
}

/// Where Python looks for the config when `-c` is absent, in order (reference 0.3):
/// `here` is `dirname(dirname(argv[0]))`.
pub fn search_paths(argv0: &str) -> Vec<PathBuf> {
    let here = Path::new(argv0).parent().and_then(Path::parent).unwrap_or(Path::new(""));
    vec![
        here.join("etc").join("supervisord.conf"),
        here.join("supervisord.conf"),
        PathBuf::from("supervisord.conf"),
        PathBuf::from("etc/supervisord.conf"),
        PathBuf::from("/etc/supervisord.conf"),
        PathBuf::from("/etc/supervisor/supervisord.conf"),
    ]
}

/// The first existing search path (relative ones against `cwd`), or Python's error.
pub fn find_config(argv0: &str, cwd: &Path) -> Result<PathBuf, UsageError> {
    let paths = search_paths(argv0);
    if let Some(found) = paths.iter().find(|p| cwd.join(p).exists()) {
        return Ok(found.clone());
    }
    let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    Err(UsageError(format!(
        "No config file found at default paths ({}); use the -c option to specify a config file at a different path",
        shown.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_args(args: &[&str]) -> Result<Command, UsageError> {
        let mut all = vec![OsString::from("supervisord")];
        all.extend(args.iter().map(OsString::from));
        parse(&all, Path::new("/tmp"), None)
    }

    fn run(args: &[&str]) -> DaemonArgs {
        match parse_args(args) {
            Ok(Command::Run(r)) => *r,
            other => panic!("{args:?} gave {other:?}"),
        }
    }

    fn err(args: &[&str]) -> String {
        match parse_args(args) {
            Err(UsageError(m)) => m,
            other => panic!("{args:?} gave {other:?}"),
        }
    }

    #[test]
    fn flags_in_every_spelling() {
        let r = run(&["-c", "a.conf", "-n"]);
        assert_eq!(r.configuration, Some(PathBuf::from("a.conf")));
        assert_eq!(r.overrides.nodaemon, Some(true));
        assert_eq!(run(&["-nca.conf"]).configuration, Some(PathBuf::from("a.conf")));
        assert_eq!(run(&["--configuration=a.conf"]).configuration, Some(PathBuf::from("a.conf")));
        assert_eq!(
            run(&["--configuration", "a.conf"]).configuration,
            Some(PathBuf::from("a.conf"))
        );
        assert_eq!(run(&["--config=a.conf"]).configuration, Some(PathBuf::from("a.conf")));
        assert_eq!(run(&["-m", "002"]).overrides.umask, Some(0o2));
        assert_eq!(run(&["-y", "1KB", "-z", "3"]).overrides.logfile_maxbytes, Some(1024));
        assert_eq!(run(&["-e", "DEBUG"]).overrides.loglevel, Some(Level::Debug));
        assert_eq!(run(&["--minprocs=5", "-a", "9"]).overrides.minprocs, Some(5));
        assert!(run(&["--check", "-c", "x"]).check);
        assert_eq!(run(&["-l", "syslog"]).overrides.logfile.as_deref(), Some("syslog"));
        assert_eq!(run(&["-q", "/tmp"]).overrides.childlogdir, Some(PathBuf::from("/tmp")));
        assert_eq!(parse_args(&["-h"]), Ok(Command::Help));
        assert_eq!(parse_args(&["-?"]), Ok(Command::Help));
        assert_eq!(parse_args(&["--version"]), Ok(Command::Version));
    }

    #[test]
    fn errors_use_python_wording() {
        // Each message checked against `supervisord` 4.3.0.
        let cases: &[(&[&str], &str)] = &[
            (&["-Z"], "option -Z not recognized"),
            (&["--nope"], "option --nope not recognized"),
            (&["foo"], "positional arguments are not supported: ['foo']"),
            (&["-n", "foo", "-n"], "positional arguments are not supported: ['foo', '-n']"),
            (&["-c"], "option -c requires argument"),
            (&["--configuration"], "option --configuration requires argument"),
            (&["--nodaemon=1"], "option --nodaemon must not have an argument"),
            (&["--l=x"], "option --l not a unique prefix"),
            (&["-c", "a", "-c", "b"], "conflicting command line option '-c'"),
            (&["-n", "-n"], "conflicting command line option '-n'"),
            (
                &["-m", "999"],
                "invalid value for -m '999': expected an octal mode such as 022 or 0o755",
            ),
            (
                &["-m", "999", "-h"],
                "invalid value for -m '999': expected an octal mode such as 022 or 0o755",
            ),
            (
                &["-e", "loud"],
                "invalid value for -e 'loud': expected one of critical, error, warn, info, debug, trace, blather",
            ),
            (
                &["-d", "/nonexistent"],
                "invalid value for -d '/nonexistent': expected an existing directory",
            ),
        ];
        for (args, want) in cases {
            assert_eq!(err(args), *want, "{args:?}");
        }
    }

    #[test]
    fn help_and_usage_texts() {
        let help = help_text("/usr/bin/supervisord");
        assert!(help.starts_with("supervisord -- run a set of applications as daemons.\n\nUsage: /usr/bin/supervisord [options]\n"));
        assert!(help.contains("-l/--logfile FILENAME -- use FILENAME as"));
        assert!(help.ends_with("e.g. 'cumulative,callers')\n\n"));
        assert_eq!(
            usage_text("option -Z not recognized", "sd"),
            "Error: option -Z not recognized\nFor help, use sd -h\n"
        );
    }

    #[test]
    fn search_path_follows_argv0() {
        let paths = search_paths("/usr/local/bin/supervisord");
        assert_eq!(paths.first(), Some(&PathBuf::from("/usr/local/etc/supervisord.conf")));
        assert_eq!(paths.get(1), Some(&PathBuf::from("/usr/local/supervisord.conf")));
        let bare = search_paths("supervisord");
        assert_eq!(bare.first(), Some(&PathBuf::from("etc/supervisord.conf")));
        let Err(UsageError(msg)) =
            find_config("/nonexistent/bin/supervisord", Path::new("/nonexistent"))
        else {
            panic!("found a config under /nonexistent");
        };
        assert!(msg.starts_with("No config file found at default paths (/nonexistent/etc/supervisord.conf, /nonexistent/supervisord.conf, supervisord.conf, etc/supervisord.conf, /etc/supervisord.conf, /etc/supervisor/supervisord.conf); use the -c option"), "{msg}");
    }

    #[test]
    fn py_repr_quotes_like_python() {
        assert_eq!(crate::pytext::repr("foo"), "'foo'");
        assert_eq!(crate::pytext::repr("it's"), "\"it's\"");
        assert_eq!(crate::pytext::repr("a\\b"), "'a\\\\b'");
    }
}
