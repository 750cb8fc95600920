//! Value parsers for option types, with Python's accepted forms.
//!
//! Each parser takes the (expanded) option value and returns the typed value or the
//! reason it is wrong; the caller turns the reason into a [`super::ConfigError`] of the
//! form `invalid value '<v>': <reason>`. Nothing here touches the file system except the
//! directory checks, and nothing looks users up: `user=` stays a name for the daemon to
//! resolve.

use std::path::{Path, PathBuf};

use super::model::{AutoRestart, Level};

/// Python `int()`: surrounding whitespace, an optional sign, digits with single
/// underscores between them.
pub fn python_int(v: &str) -> Option<i64> {
    let t = v.trim();
    let (neg, digits) = match t.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    let clean: String = digits.chars().filter(|&c| c != '_').collect();
    if !clean.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i64 = clean.parse().ok()?;
    Some(if neg { -n } else { n })
}

/// Any integer (`priority`, `numprocs_start`).
pub fn integer(v: &str) -> Result<i64, String> {
    python_int(v).ok_or_else(|| "expected an integer".to_string())
}

/// A count or a number of seconds: Python takes any integer, a negative one is
/// meaningless here and rejected.
pub fn count(v: &str) -> Result<u64, String> {
    match python_int(v) {
        Some(n) if n >= 0 => Ok(n.unsigned_abs()),
        _ => Err("expected an integer >= 0".to_string()),
    }
}

/// `count` that must fit 32 bits (retries, backups, numprocs).
pub fn count32(v: &str) -> Result<u32, String> {
    count(v).and_then(|n| {
        u32::try_from(n).map_err(|_| "expected an integer from 0 to 4294967295".into())
    })
}

/// Python's booleans: `yes/true/on/1` and `no/false/off/0`, any case.
pub fn boolean(v: &str) -> Result<bool, String> {
    match v.to_lowercase().as_str() {
        "yes" | "true" | "on" | "1" => Ok(true),
        "no" | "false" | "off" | "0" => Ok(false),
        _ => Err("expected a boolean: true/false, yes/no, on/off or 1/0".to_string()),
    }
}

/// A byte size: an integer with an optional `KB`/`MB`/`GB` suffix (any case, powers of
/// 1024). Python accepts negative sizes meaning "never rotate", which is what 0 means, so
/// they become 0.
pub fn byte_size(v: &str) -> Result<u64, String> {
    let lower = v.to_lowercase();
    let (num, mult) = match lower.len().checked_sub(2).and_then(|at| lower.split_at_checked(at)) {
        Some((n, "kb")) => (n, 1024i64),
        Some((n, "mb")) => (n, 1024 * 1024),
        Some((n, "gb")) => (n, 1024 * 1024 * 1024),
        _ => (lower.as_str(), 1),
    };
    let n = python_int(num).and_then(|n| n.checked_mul(mult)).ok_or_else(|| {
        "expected a byte size: an integer with an optional KB, MB or GB suffix".to_string()
    })?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Python `int(v, 8)`: `022`, `0o22` and `777`; the result must be a mode (0 to 0o7777).
pub fn octal(v: &str) -> Result<u32, String> {
    let t = v.trim();
    let t = t.strip_prefix("0o").or_else(|| t.strip_prefix("0O")).unwrap_or(t);
    let ok = !t.is_empty() && t.bytes().all(|b| (b'0'..=b'7').contains(&b));
    match u32::from_str_radix(t, 8) {
        Ok(n) if ok && n <= 0o7777 => Ok(n),
        _ => Err("expected an octal mode such as 022 or 0o755".to_string()),
    }
}

/// Signal names and numbers Python's `signal` module knows on Linux.
const SIGNALS: &[(&str, i32)] = &[
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("IOT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("STKFLT", 16),
    ("CHLD", 17),
    ("CLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("POLL", 29),
    ("PWR", 30),
    ("SYS", 31),
    ("RTMIN", 34),
    ("RTMAX", 64),
];

/// A signal: a number, or a name with or without `SIG`, any case, whitespace ignored.
/// Python 4.3.0 accepts exactly the numbers of its `signal` module's `SIG*` names, which
/// include 0 (from `SIG_DFL`), so `stopsignal=0` loads (verified against the reference).
pub fn signal(v: &str) -> Result<i32, String> {
    if let Some(n) = python_int(v) {
        let known = n == 0 || SIGNALS.iter().any(|&(_, num)| i64::from(num) == n);
        return match i32::try_from(n) {
            Ok(n) if known => Ok(n),
            _ => Err("expected a signal number from 1 to 31, 34 (RTMIN) or 64 (RTMAX)".to_string()),
        };
    }
    let upper = v.trim().to_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    SIGNALS.iter().find(|(n, _)| *n == name).map(|&(_, num)| num).ok_or_else(|| {
        "expected a signal name such as TERM, HUP, INT, QUIT, KILL, USR1 or USR2 (with or without SIG), or a number".to_string()
    })
}

/// `exitcodes`: a comma list of integers 0..=255; an empty value is an empty list.
pub fn exitcodes(v: &str) -> Result<Vec<u8>, String> {
    if v.is_empty() {
        return Ok(Vec::new());
    }
    v.split(',')
        .map(|part| python_int(part).and_then(|n| u8::try_from(n).ok()))
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(|| "expected a comma-separated list of exit codes from 0 to 255".to_string())
}

/// `autorestart`: a boolean, or `unexpected`.
pub fn autorestart(v: &str) -> Result<AutoRestart, String> {
    match v.to_lowercase().as_str() {
        "unexpected" => Ok(AutoRestart::Unexpected),
        other => match boolean(other) {
            Ok(true) => Ok(AutoRestart::True),
            Ok(false) => Ok(AutoRestart::False),
            Err(_) => Err("expected true, false or unexpected".to_string()),
        },
    }
}

/// `loglevel`: Python's level names (note: `warning` is not one of them).
pub fn log_level(v: &str) -> Result<Level, String> {
    Level::from_description(v).ok_or_else(|| {
        "expected one of critical, error, warn, info, debug, trace, blather".to_string()
    })
}

/// A comma list of stripped strings; empty gives an empty list (Python's `list_of_strings`).
pub fn list_of_strings(v: &str) -> Vec<String> {
    if v.is_empty() {
        return Vec::new();
    }
    v.split(',').map(|s| s.trim().to_string()).collect()
}

/// A process or group name: stripped, without space, `:` or `/` (which would break
/// `group:name` specs and the event protocol).
pub fn process_or_group_name(v: &str) -> Result<String, String> {
    let s = v.trim();
    for c in [' ', ':', '/'] {
        if s.contains(c) {
            return Err(format!("a name must not contain '{c}' (nor space, ':' or '/')"));
        }
    }
    Ok(s.to_string())
}

/// `environment=KEY=val,KEY2="a,b"`: Python tokenises with a non-POSIX `shlex` in which
/// `/.+-():` are word characters, then takes `KEY = VALUE` triples, skipping exactly one
/// token (the separator) between them, and strips quotes from the values. A later
/// duplicate key replaces the earlier value in its original position.
pub fn environment(v: &str) -> Result<Vec<(String, String)>, String> {
    let tokens = shlex_tokens(v)?;
    let mut out: Vec<(String, String)> = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let triple = tokens.get(i..i + 3);
        let Some([k, eq, val]) = triple else {
            return Err("expected KEY=value pairs separated by commas (quote values containing spaces or commas)".into());
        };
        if eq != "=" {
            return Err("expected KEY=value pairs separated by commas (quote values containing spaces or commas)".into());
        }
        let val = val.trim_matches(|c| c == '\'' || c == '"').to_string();
        match out.iter_mut().find(|(key, _)| key == k) {
            Some(slot) => slot.1 = val,
            None => out.push((k.clone(), val)),
        }
        i += 4;
    }
    Ok(out)
}

/// Python's `shlex.shlex(s)` (posix=False) with `wordchars += '/.+-():'`.
fn shlex_tokens(s: &str) -> Result<Vec<String>, String> {
    fn is_word(c: char) -> bool {
        c.is_ascii_alphanumeric() || "_/.+-():".contains(c)
    }
    let is_space = |c: char| " \t\r\n".contains(c);
    let mut tokens = Vec::new();
    let mut chars = s.chars().peekable();
    let mut token = String::new();
    // ' ' between tokens, 'a' in a word, or the open quote character.
    let mut state = ' ';
    while let Some(c) = chars.next() {
        match state {
            ' ' => {
                if is_space(c) {
                    continue;
                } else if c == '#' {
                    // shlex comments run to the end of the line.
                    for n in chars.by_ref() {
                        if n == '\n' {
                            break;
                        }
                    }
                } else if is_word(c) {
                    token.push(c);
                    state = 'a';
                } else if c == '\'' || c == '"' {
                    token.push(c);
                    state = c;
                } else {
                    tokens.push(c.to_string());
                }
            }
            'a' => {
                if is_space(c) {
                    tokens.push(std::mem::take(&mut token));
                    state = ' ';
                } else if c == '#' {
                    for n in chars.by_ref() {
                        if n == '\n' {
                            break;
                        }
                    }
                } else if is_word(c) || c == '\'' || c == '"' {
                    token.push(c);
                } else {
                    tokens.push(std::mem::take(&mut token));
                    tokens.push(c.to_string());
                    state = ' ';
                }
            }
            quote => {
                token.push(c);
                if c == quote {
                    tokens.push(std::mem::take(&mut token));
                    state = ' ';
                }
            }
        }
    }
    match state {
        'a' => tokens.push(token),
        ' ' => {}
        _ => return Err("a quoted value is not closed".to_string()),
    }
    Ok(tokens)
}

/// `~` or `~/…` expanded with `home` (Python's `os.path.expanduser` for the common case).
pub fn expand_user(v: &str, home: Option<&str>) -> PathBuf {
    match (v.strip_prefix('~'), home) {
        (Some(rest), Some(home)) if rest.is_empty() || rest.starts_with('/') => {
            PathBuf::from(format!("{home}{rest}"))
        }
        _ => PathBuf::from(v),
    }
}

/// A path whose directory must exist (`logfile`, `pidfile`, child log paths); relative
/// paths are checked against `cwd`. Returns the `~`-expanded path.
pub fn existing_dirpath(v: &str, home: Option<&str>, cwd: &Path) -> Result<PathBuf, String> {
    let p = expand_user(v, home);
    match p.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !cwd.join(dir).is_dir() => {
            Err(format!("the directory {} does not exist", dir.display()))
        }
        _ => Ok(p),
    }
}

/// An existing directory (`childlogdir`, `[supervisord] directory`).
pub fn existing_directory(v: &str, home: Option<&str>, cwd: &Path) -> Result<PathBuf, String> {
    let p = expand_user(v, home);
    if cwd.join(&p).is_dir() { Ok(p) } else { Err("expected an existing directory".to_string()) }
}

/// Python's `normpath(abspath(expanduser(v)))`: absolute, with `.` and `..` folded.
pub fn normalize_path(v: &str, home: Option<&str>, cwd: &Path) -> PathBuf {
    let joined = cwd.join(expand_user(v, home));
    let mut out = PathBuf::new();
    for part in joined.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// `[inet_http_server] port`: `port`, `host:port`, `*:port` or `:port`; the host is
/// lowercased and `*` means all interfaces (an empty host).
pub fn inet_address(v: &str) -> Result<(String, u16), String> {
    let (host, port) = match v.rsplit_once(':') {
        Some((h, p)) => (h.to_lowercase(), p),
        None => (String::new(), v),
    };
    if port.is_empty() {
        return Err("no port number: expected port, host:port or *:port".to_string());
    }
    let port = match python_int(port) {
        Some(n) if (1..=65535).contains(&n) => n as u16,
        _ => {
            return Err(
                "expected a port number from 1 to 65535, as port, host:port or *:port".to_string()
            );
        }
    };
    let host = if host == "*" { String::new() } else { host };
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_like_python_int() {
        let cases = [
            ("1", Some(1)),
            (" 42 ", Some(42)),
            ("-3", Some(-3)),
            ("+3", Some(3)),
            ("1_000", Some(1000)),
        ];
        for (v, want) in cases {
            assert_eq!(python_int(v), want, "{v}");
        }
        for bad in ["", "abc", "1.5", "1__0", "_1", "0x10", "1 2"] {
            assert_eq!(python_int(bad), None, "{bad}");
        }
        assert!(count("-1").is_err());
        assert_eq!(count("0"), Ok(0));
    }

    #[test]
    fn booleans() {
        for t in ["yes", "TRUE", "On", "1"] {
            assert_eq!(boolean(t), Ok(true), "{t}");
        }
        for f in ["no", "False", "OFF", "0"] {
            assert_eq!(boolean(f), Ok(false), "{f}");
        }
        assert!(boolean("perhaps").is_err());
    }

    #[test]
    fn byte_sizes_match_python() {
        let cases = [
            ("0", Some(0)),
            ("1024", Some(1024)),
            ("1KB", Some(1024)),
            ("50MB", Some(50 * 1024 * 1024)),
            ("1 mb", Some(1024 * 1024)),
            ("2gb", Some(2 * 1024 * 1024 * 1024)),
            ("-1", Some(0)),
            ("1.5MB", None),
            ("1K", None),
            ("10xb", None),
            ("MB", None),
        ];
        for (v, want) in cases {
            assert_eq!(byte_size(v).ok(), want, "{v}");
        }
    }

    #[test]
    fn octals() {
        for (v, want) in [("022", 0o22), ("0o22", 0o22), ("777", 0o777), ("0", 0)] {
            assert_eq!(octal(v), Ok(want), "{v}");
        }
        for bad in ["999", "", "abc", "-1", "77777"] {
            assert!(octal(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn signals_accept_what_python_accepts() {
        // Verified with the reference: TERM, SIGTERM, 15, kill, 0 and 34 load; 32 fails.
        let cases = [
            ("TERM", Some(15)),
            ("SIGTERM", Some(15)),
            ("sigkill", Some(9)),
            (" HUP ", Some(1)),
            ("15", Some(15)),
            ("0", Some(0)),
            ("34", Some(34)),
            ("SIGRTMIN", Some(34)),
            ("usr1", Some(10)),
            ("32", None),
            ("99", None),
            ("FOO", None),
            ("", None),
        ];
        for (v, want) in cases {
            assert_eq!(signal(v).ok(), want, "{v:?}");
        }
    }

    #[test]
    fn exit_codes() {
        assert_eq!(exitcodes("0"), Ok(vec![0]));
        assert_eq!(exitcodes("0,2"), Ok(vec![0, 2]));
        assert_eq!(exitcodes("0, 2 ,255"), Ok(vec![0, 2, 255]));
        assert_eq!(exitcodes(""), Ok(vec![]));
        for bad in ["0,256", "-1", "a", "0,", "0,,1"] {
            assert!(exitcodes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn autorestart_values() {
        assert_eq!(autorestart("unexpected"), Ok(AutoRestart::Unexpected));
        assert_eq!(autorestart("TRUE"), Ok(AutoRestart::True));
        assert_eq!(autorestart("off"), Ok(AutoRestart::False));
        assert!(autorestart("maybe").is_err());
    }

    #[test]
    fn environment_like_python_dict_of_key_value_pairs() {
        let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
        };
        // Each verified against supervisor.datatypes.dict_of_key_value_pairs.
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("", &[]),
            ("A=1", &[("A", "1")]),
            ("A=\"x,y\",B='z',C=1", &[("A", "x,y"), ("B", "z"), ("C", "1")]),
            ("PATH=/usr/bin:/bin,HOME=/root", &[("PATH", "/usr/bin:/bin"), ("HOME", "/root")]),
            ("A=1,", &[("A", "1")]),
            ("A=\"\"", &[("A", "")]),
            ("A=1;B=2", &[("A", "1"), ("B", "2")]),
            ("A=1,A=2,B=3", &[("A", "2"), ("B", "3")]),
            ("A = \"hello world\"", &[("A", "hello world")]),
            ("A=-x+y.z", &[("A", "-x+y.z")]),
        ];
        for (src, want) in cases {
            assert_eq!(environment(src), Ok(pairs(want)), "{src:?}");
        }
        for bad in ["A=1,B", "A", "A=\"x", "A:1"] {
            assert!(environment(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_and_addresses() {
        assert_eq!(process_or_group_name(" web "), Ok("web".to_string()));
        for bad in ["a b", "a:b", "a/b"] {
            assert!(process_or_group_name(bad).is_err(), "{bad}");
        }
        assert_eq!(inet_address("9001"), Ok((String::new(), 9001)));
        assert_eq!(inet_address("*:9001"), Ok((String::new(), 9001)));
        assert_eq!(inet_address("LocalHost:9001"), Ok(("localhost".to_string(), 9001)));
        for bad in ["abc", "0", "70000", "host:"] {
            assert!(inet_address(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn paths() {
        let cwd = Path::new("/tmp");
        assert_eq!(normalize_path("a/../b.sock", None, cwd), PathBuf::from("/tmp/b.sock"));
        assert_eq!(expand_user("~/x", Some("/home/u")), PathBuf::from("/home/u/x"));
        assert!(existing_dirpath("/nonexistent/dir/x.log", None, cwd).is_err());
        assert!(existing_dirpath("x.log", None, cwd).is_ok());
        assert!(existing_directory("/nonexistent", None, cwd).is_err());
        assert!(existing_directory("/", None, cwd).is_ok());
    }
}
