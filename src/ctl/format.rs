//! Byte-exact supervisorctl 4.3.0 text: the status and avail tables, every per-process
//! result line, the help texts, the usage text, and Python's rendering of an uncaught
//! exception. Pure: strings in, strings out; nothing here does IO.
//!
//! Widths are counted in characters, as Python's `%-Ns` does (Rust's `{:<N}` agrees).

use std::collections::BTreeMap;

/// supervisorctl's module docstring, printed by `-h` with `%s` replaced by argv[0].
const USAGE: &str = "supervisorctl -- control applications run by supervisord from the cmd line.

Usage: %s [options] [action [arguments]]

Options:
-c/--configuration FILENAME -- configuration file path (searches if not given)
-h/--help -- print usage message and exit
-i/--interactive -- start an interactive shell after executing commands
-s/--serverurl URL -- URL on which supervisord server is listening
     (default \"http://localhost:9001\").
-u/--username USERNAME -- username to use for authentication with server
-p/--password PASSWORD -- password to use for authentication with server
-r/--history-file -- keep a readline history (if readline is available)

action [arguments] -- see below

Actions are commands like \"tail\" or \"stop\".  If -i is specified or no action is
specified on the command line, a \"shell\" interpreting actions typed
interactively is started.  Use the action \"help\" to find out about available
actions.
";

/// The `-h` text: the docstring plus one newline, as `Options.help` writes it.
pub fn usage(progname: &str) -> String {
    let mut s = USAGE.replace("%s", progname);
    s.push('\n');
    s
}

/// A usage error on stderr, as `Options.usage` writes it.
pub fn usage_error(msg: &str, progname: &str) -> String {
    format!("Error: {msg}\nFor help, use {progname} -h\n")
}

/// `help` with no topic: `cmd.Cmd.print_topics` of the default plugin, preceded by an
/// empty line. Recorded from 4.3.0 (note the trailing spaces of the first two rows).
pub const HELP_TOPICS: &str = "
default commands (type help <topic>):
=====================================
add    exit      open  reload  restart   start   tail   
avail  fg        pid   remove  shutdown  status  update 
clear  maintail  quit  reread  signal    stop    version

";

/// The text `help <topic>` prints (each `output()` call's message joined by newlines,
/// without the final newline), or `None` for `*** No help on <topic>`.
pub fn help_topic(topic: &str) -> Option<&'static str> {
    Some(match topic {
        "help" => {
            "help\t\tPrint a list of available actions\nhelp <action>\tPrint help for <action>"
        }
        "status" => {
            "status <name>\t\tGet status for a single process\n\
             status <gname>:*\tGet status for all processes in a group\n\
             status <name> <name>\tGet status for multiple named processes\n\
             status\t\t\tGet all process status info"
        }
        "start" => {
            "start <name>\t\tStart a process\n\
             start <gname>:*\t\tStart all processes in a group\n\
             start <name> <name>\tStart multiple processes or groups\n\
             start all\t\tStart all processes"
        }
        "stop" => {
            "stop <name>\t\tStop a process\n\
             stop <gname>:*\t\tStop all processes in a group\n\
             stop <name> <name>\tStop multiple processes or groups\n\
             stop all\t\tStop all processes"
        }
        "restart" => {
            "restart <name>\t\tRestart a process\n\
             restart <gname>:*\tRestart all processes in a group\n\
             restart <name> <name>\tRestart multiple processes or groups\n\
             restart all\t\tRestart all processes\n\
             Note: restart does not reread config files. For that, see reread and update."
        }
        "signal" => {
            "signal <signal name> <name>\t\tSignal a process\n\
             signal <signal name> <gname>:*\t\tSignal all processes in a group\n\
             signal <signal name> <name> <name>\tSignal multiple processes or groups\n\
             signal <signal name> all\t\tSignal all processes"
        }
        "tail" => {
            "tail [-f] <name> [stdout|stderr] (default stdout)\n\
             Ex:\n\
             tail -f <name>\t\tContinuous tail of named process stdout\n\
             \t\t\tCtrl-C to exit.\n\
             tail -100 <name>\tlast 100 *bytes* of process stdout\n\
             tail <name> stderr\tlast 1600 *bytes* of process stderr"
        }
        // The Python string ends in "\n", so output() leaves an empty line after it.
        "maintail" => {
            "maintail -f \tContinuous tail of supervisor main log file (Ctrl-C to exit)\n\
             maintail -100\tlast 100 *bytes* of supervisord main log file\n\
             maintail\tlast 1600 *bytes* of supervisor main log file\n"
        }
        "pid" => {
            "pid\t\t\tGet the PID of supervisord.\n\
             pid <name>\t\tGet the PID of a single child process by name.\n\
             pid all\t\t\tGet the PID of every child process, one per line."
        }
        "clear" => {
            "clear <name>\t\tClear a process' log files.\n\
             clear <name> <name>\tClear multiple process' log files\n\
             clear all\t\tClear all process' log files"
        }
        "avail" => "avail\t\t\tDisplay all configured processes",
        "reread" => "reread \t\t\tReload the daemon's configuration files without add/remove",
        "update" => {
            "update\t\t\tReload config and add/remove as necessary, and will restart affected programs\n\
             update all\t\tReload config and add/remove as necessary, and will restart affected programs\n\
             update <gname> [...]\tUpdate specific groups"
        }
        "add" => "add <name> [...]\tActivates any updates in config for process/group",
        "remove" => "remove <name> [...]\tRemoves process/group from active config",
        "shutdown" => "shutdown \tShut the remote supervisord down.",
        "reload" => "reload \t\tRestart the remote supervisord.",
        "version" => "version\t\t\tShow the version of the remote supervisord process",
        "fg" => "fg <process>\tConnect to a process in foreground mode\n\t\tCtrl-C to exit",
        "open" => {
            "open <url>\tConnect to a remote supervisord process.\n\
             \t\t(for UNIX domain socket, use unix:///socket/path)"
        }
        "quit" => "quit\tExit the supervisor shell.",
        "exit" => "exit\tExit the supervisor shell.",
        _ => return None,
    })
}

/// `make_namespec`: the short name when group and process names are equal.
pub fn namespec(group: &str, name: &str) -> String {
    if group == name { name.to_string() } else { format!("{group}:{name}") }
}

/// `split_namespec`: `(group, Some(process))`, or `(group, None)` for `g:*` and `g:`.
pub fn split_namespec(spec: &str) -> (&str, Option<&str>) {
    match spec.split_once(':') {
        Some((group, "" | "*")) => (group, None),
        Some((group, name)) => (group, Some(name)),
        None => (spec, Some(spec)),
    }
}

/// One row of the status table.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusRow<'a> {
    pub namespec: String,
    pub statename: &'a str,
    pub description: &'a str,
}

/// `_show_statuses`: the name column is `max(30, longest namespec) + 3` wide, the state
/// column 10; trailing spaces stay (a STARTING row ends in `STARTING  `).
pub fn status_table(rows: &[StatusRow]) -> String {
    let width = rows.iter().map(|r| r.namespec.chars().count()).fold(30, usize::max) + 3;
    let mut out = String::with_capacity(rows.len() * (width + 40));
    for r in rows {
        // `{:<width$}` by hand: core::fmt pads one `write_char` at a time.
        push_padded(&mut out, &r.namespec, width);
        push_padded(&mut out, r.statename, 10);
        out.push_str(r.description);
        out.push('\n');
    }
    out
}

/// `s` left-aligned in `width` characters (Python's `%-Ns`: never truncated).
fn push_padded(out: &mut String, s: &str, width: usize) {
    out.push_str(s);
    let len = if s.is_ascii() { s.len() } else { s.chars().count() };
    out.extend(std::iter::repeat_n(' ', width.saturating_sub(len)));
}

/// One `avail` line: `'%-32s %-9s %-9s %s'`.
pub fn avail_line(namespec: &str, inuse: bool, autostart: bool, priority: &str) -> String {
    let inuse = if inuse { "in use" } else { "avail" };
    let auto = if autostart { "auto" } else { "manual" };
    format!("{namespec:<32} {inuse:<9} {auto:<9} {priority}")
}

/// `_formatChanges` for `reread`: one `name: available|changed|disappeared` line per
/// group, sorted; a name in several lists keeps the last (Python's dict update order).
pub fn changes(added: &[String], changed: &[String], dropped: &[String]) -> String {
    let mut all: BTreeMap<&str, &str> = BTreeMap::new();
    for (names, what) in [(added, "available"), (changed, "changed"), (dropped, "disappeared")] {
        for n in names {
            all.insert(n, what);
        }
    }
    if all.is_empty() {
        return "No config updates to processes\n".to_string();
    }
    all.iter().map(|(n, what)| format!("{n}: {what}\n")).collect()
}

/// A fault code from a result struct (or a caught fault) that a command's result
/// formatter does not know: Python raises `ValueError('Unknown result code N for x')`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownCode(pub String);

fn unknown(code: i64, name: &str) -> UnknownCode {
    UnknownCode(format!("Unknown result code {code} for {name}"))
}

/// `_startresult`.
pub fn start_result(name: &str, code: i64) -> Result<String, UnknownCode> {
    let why = match code {
        10 => "no such process",
        20 => "no such file",
        21 => "file is not executable",
        60 => "already started",
        50 => "spawn error",
        40 => "abnormal termination",
        80 => return Ok(format!("{name}: started")),
        _ => return Err(unknown(code, name)),
    };
    Ok(format!("{name}: ERROR ({why})"))
}

/// `_signalresult` (and `_stopresult` with `success = "stopped"`); FAILED prints the bare
/// fault string.
pub fn signal_result(
    name: &str,
    code: i64,
    description: &str,
    success: &str,
) -> Result<String, UnknownCode> {
    let why = match code {
        10 => "no such process",
        11 => "bad signal name",
        70 => "not running",
        80 => return Ok(format!("{name}: {success}")),
        30 => return Ok(description.to_string()),
        _ => return Err(unknown(code, name)),
    };
    Ok(format!("{name}: ERROR ({why})"))
}

/// `_clearresult`.
pub fn clear_result(name: &str, code: i64) -> Result<String, UnknownCode> {
    match code {
        10 => Ok(format!("{name}: ERROR (no such process)")),
        30 => Ok(format!("{name}: ERROR (failed)")),
        80 => Ok(format!("{name}: cleared")),
        _ => Err(unknown(code, name)),
    }
}

/// The upcheck message for a server without the supervisor namespace (exit 3).
pub const NO_NAMESPACE: &str = "Sorry, supervisord responded but did not recognize the \
supervisor namespace commands that supervisorctl uses to control it.  Please check that the \
[rpcinterface:supervisor] section is enabled in the configuration file (see sample.conf).";

/// The upcheck message for a server with another API version (exit 5).
pub fn wrong_api(remote: &str) -> String {
    format!(
        "Sorry, this version of supervisorctl expects to talk to a server with API version \
         3.0, but the remote version is {remote}."
    )
}

/// What Python names the place an uncaught exception came from. A Rust build has no
/// Python file and line, so this fixed stand-in keeps the line's shape
/// (`error: <class 'X'>, <text>: file: <f> line: <n>`) for scripts that match on it.
const TRACE_FILE: &str = "supervisorctl";
const TRACE_LINE: u32 = 0;

/// `onecmd`'s line for an uncaught exception: `error: <class 'X'>, <str(exc)>: file: … line: …`.
pub fn error_line(class: &str, text: &str) -> String {
    format!("error: <class '{class}'>, {text}: file: {TRACE_FILE} line: {TRACE_LINE}")
}

/// `str(xmlrpc.client.Fault)`: `<Fault 6: 'SHUTDOWN_STATE'>`.
pub fn fault_str(code: i64, string: &str) -> String {
    format!("<Fault {code}: {}>", py_repr(string))
}

/// Python's `repr()` of a `str` (one implementation for the whole crate).
pub use crate::pytext::repr as py_repr;

/// Python's `str.isspace()` set, which `str.split()` and `str.strip()` use: Unicode
/// whitespace plus the four ASCII information separators.
pub fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `str.split()` with no argument.
pub fn py_split(s: &str) -> Vec<&str> {
    s.split(is_py_space).filter(|w| !w.is_empty()).collect()
}

/// `str.strip()` with no argument.
pub fn py_strip(s: &str) -> &str {
    s.trim_matches(is_py_space)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row<'a>(n: &str, s: &'a str, d: &'a str) -> StatusRow<'a> {
        StatusRow { namespec: n.into(), statename: s, description: d }
    }

    #[test]
    fn status_columns_grow_past_thirty() {
        let short = status_table(&[row("b", "STARTING", "")]);
        assert_eq!(short, format!("b{}STARTING  \n", " ".repeat(32)));
        let long = "x".repeat(51);
        let t = status_table(&[
            row(&long, "RUNNING", "pid 1, uptime 0:00:01"),
            row("a", "STOPPED", "Not started"),
        ]);
        assert_eq!(
            t,
            format!(
                "{long}   RUNNING   pid 1, uptime 0:00:01\na{}STOPPED   Not started\n",
                " ".repeat(53)
            )
        );
    }

    #[test]
    fn widths_count_characters_not_bytes() {
        let t = status_table(&[row("ØØ", "RUNNING", "x")]);
        assert_eq!(t, format!("ØØ{}RUNNING   x\n", " ".repeat(31)));
        assert_eq!(
            avail_line("é", true, false, "1:2"),
            format!("é{} in use    manual    1:2", " ".repeat(31))
        );
    }

    #[test]
    fn namespecs() {
        assert_eq!(namespec("a", "a"), "a");
        assert_eq!(namespec("g", "a"), "g:a");
        assert_eq!(split_namespec("g:*"), ("g", None));
        assert_eq!(split_namespec("g:"), ("g", None));
        assert_eq!(split_namespec("g:a:b"), ("g", Some("a:b")));
        assert_eq!(split_namespec("a"), ("a", Some("a")));
    }

    #[test]
    fn result_lines() {
        assert_eq!(start_result("x", 50).as_deref(), Ok("x: ERROR (spawn error)"));
        assert_eq!(start_result("x", 6), Err(UnknownCode("Unknown result code 6 for x".into())));
        assert_eq!(
            signal_result("x", 30, "FAILED: boom", "stopped").as_deref(),
            Ok("FAILED: boom")
        );
        assert_eq!(signal_result("g:x", 80, "OK", "stopped").as_deref(), Ok("g:x: stopped"));
        assert_eq!(clear_result("x", 30).as_deref(), Ok("x: ERROR (failed)"));
    }

    #[test]
    fn reread_changes_are_sorted_and_deduplicated() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            changes(&s(&["newone", "b"]), &s(&["changeme"]), &s(&["b"])),
            "b: disappeared\nchangeme: changed\nnewone: available\n"
        );
        assert_eq!(changes(&[], &[], &[]), "No config updates to processes\n");
    }

    #[test]
    fn python_repr_and_fault_str() {
        assert_eq!(fault_str(6, "SHUTDOWN_STATE"), "<Fault 6: 'SHUTDOWN_STATE'>");
        assert_eq!(fault_str(92, "CANT_REREAD: can't x"), "<Fault 92: \"CANT_REREAD: can't x\">");
        assert_eq!(py_repr("a'b\"c\n\\"), "'a\\'b\"c\\n\\\\'");
        assert_eq!(py_repr("Ø\u{1}\u{85}"), "'Ø\\x01\\x85'");
    }

    #[test]
    fn python_split_and_strip() {
        assert_eq!(py_split(" a\u{1f}b\u{a0}c  "), vec!["a", "b", "c"]);
        assert_eq!(py_strip("\u{3000} x y\t"), "x y");
    }

    #[test]
    fn usage_substitutes_the_program_name() {
        let u = usage("/x/supervisorctl");
        assert!(u.starts_with("supervisorctl -- control applications run by supervisord"));
        assert!(u.contains("Usage: /x/supervisorctl [options] [action [arguments]]\n"));
        assert!(u.ends_with("actions.\n\n"));
    }
}
