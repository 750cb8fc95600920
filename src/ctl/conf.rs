//! What supervisorctl needs from a config file, and nothing more: `[supervisorctl]`
//! `serverurl`/`username`/`password` and `[unix_http_server] file`, read with
//! `RawConfigParser`'s rules as supervisor sets them up (the daemon's line lexer,
//! `config::ini::Lexer`; lower-cased keys, repeated sections merged) and
//! `%(here)s`/`%(ENV_X)s` expansion.
//!
//! Deliberately not `crate::config`: supervisorctl runs once per command, and building a
//! daemon's whole model (every program, expansion, user lookup) would cost more than the
//! request itself. Only the two sections it needs are kept.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use crate::config::ini::{Lexer, Line};

/// The client-side settings of one config file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientConfig {
    /// `[supervisorctl] serverurl` (a `unix://` path normalized as Python does), else
    /// `unix://<[unix_http_server] file>`; `None` when neither is set.
    pub serverurl: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// `prompt` (the shell's prompt is this and `> `); `None` for Python's `supervisor`.
    pub prompt: Option<String>,
    /// `history_file` (`%(here)s` expanded, made absolute): the shell's readline history.
    pub history_file: Option<String>,
}

/// Reads `path`. The error is the message Python's `ClientOptions` gives (printed as a
/// usage error, exit 2).
/// `env` looks up an environment variable (for `%(ENV_X)s`).
pub fn read(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<ClientConfig, String> {
    let shown = path.display();
    if !path.exists() {
        return Err(format!("could not find config file {shown}"));
    }
    let text = std::fs::read(path).map_err(|_| format!("could not read config file {shown}"))?;
    // Python reads the file as UTF-8 text and stops at the first undecodable byte.
    let text = match String::from_utf8(text) {
        Ok(t) => t,
        Err(e) => return Err(crate::pytext::utf8_decode_error(e.as_bytes(), &e.utf8_error())),
    };
    let sections = parse(&text).map_err(|e| format!("{e} in {shown}"))?;
    let here = normalize_path(path.parent().unwrap_or(Path::new(".")));
    let here = here.to_string_lossy().into_owned();
    let Some(ctl) = sections.get("supervisorctl") else {
        return Err(".ini file does not include supervisorctl section".to_string());
    };
    let mut names = Names { env, here: None };
    let get = |sec: &HashMap<String, String>, sec_name: &str, key: &str, names: &Names| {
        sec.get(key).map(|v| expand(v, names, &format!("{sec_name}.{key}"))).transpose()
    };
    let username = get(ctl, "supervisorctl", "username", &names)?;
    let password = get(ctl, "supervisorctl", "password", &names)?;
    let prompt = get(ctl, "supervisorctl", "prompt", &names)?;
    names.here = Some(&here);
    let history_file = get(ctl, "supervisorctl", "history_file", &names)?
        .filter(|h| !h.is_empty())
        .map(|h| normalize_path(Path::new(&h)).to_string_lossy().into_owned());
    let mut serverurl = get(ctl, "supervisorctl", "serverurl", &names)?;
    if serverurl.is_none()
        && let Some(http) = sections.get("unix_http_server")
        && let Some(file) = get(http, "unix_http_server", "file", &names)?
    {
        serverurl = Some(format!("unix://{file}"));
    }
    let serverurl = serverurl.map(|url| match url.strip_prefix("unix://") {
        Some(p) => format!("unix://{}", normalize_path(Path::new(p)).display()),
        None => url,
    });
    Ok(ClientConfig { serverurl, username, password, prompt, history_file })
}

type Sections = HashMap<String, HashMap<String, String>>;

/// The sections [`read`] looks at; the others are only checked for syntax.
const WANTED: [&str; 2] = ["supervisorctl", "unix_http_server"];

/// `RawConfigParser(inline_comment_prefixes=(';','#'), strict=False)` (the line rules are
/// the daemon's, `config::ini::Lexer`), keeping only the [`WANTED`] sections. A daemon
/// config lists hundreds of programs and supervisorctl runs once per command, so the others
/// are walked without allocating: every line still gets configparser's syntax checks, and a
/// bad line anywhere is the same error.
fn parse(text: &str) -> Result<Sections, String> {
    let mut sections: Sections = HashMap::new();
    // The kept section options go to, and the kept key continuation lines extend.
    let mut section: Option<&str> = None;
    let mut key: Option<String> = None;
    // Empty lines inside the value so far: kept only if more of the value follows.
    let mut blanks = 0;
    for (lineno, line) in Lexer::new(text) {
        match line {
            Line::Blank { in_value } => blanks += usize::from(in_value),
            Line::Continuation(more) => {
                if let (Some(sec), Some(key)) = (section, &key)
                    && let Some(v) = sections.get_mut(sec).and_then(|s| s.get_mut(key))
                {
                    for _ in 0..=blanks {
                        v.push('\n');
                    }
                    v.push_str(more);
                }
                blanks = 0;
            }
            Line::Header(name) => {
                let keep = WANTED.contains(&name);
                if keep {
                    sections.entry(name.to_string()).or_default();
                }
                section = keep.then_some(name);
                key = None;
            }
            Line::NoSection(_) => {
                return Err(format!("File contains no section headers (line {lineno})"));
            }
            Line::Bad(_) => return Err(format!("Source contains parsing errors: line {lineno}")),
            Line::Option { key: k, value } => {
                blanks = 0;
                key = None;
                if let Some(sec) = section {
                    let k = k.to_lowercase();
                    sections.entry(sec.to_string()).or_default().insert(k.clone(), value.into());
                    key = Some(k);
                }
            }
        }
    }
    Ok(sections)
}

/// The names a `%(name)s` can use: `ENV_X` from the environment, and `here` where Python
/// offers it. Looked up on use: collecting the whole environment up front cost more than
/// reading the file, and most configs expand nothing.
struct Names<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    here: Option<&'a str>,
}

impl Names<'_> {
    fn get(&self, key: &str) -> Option<String> {
        match key {
            "here" => self.here.map(str::to_string),
            _ => key.strip_prefix("ENV_").and_then(|k| (self.env)(k)),
        }
    }
}

/// Python's `s % names` for the `%(name)s` and `%%` forms supervisor documents.
fn expand(s: &str, names: &Names, what: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('%') {
            out.push('%');
            rest = r;
            continue;
        }
        let badly = || format!("Format string {s:?} for {what:?} is badly formatted");
        let Some(r) = after.strip_prefix('(') else { return Err(badly()) };
        let Some(close) = r.find(')') else { return Err(badly()) };
        let key = &r[..close];
        let Some(r) = r[close + 1..].strip_prefix('s') else { return Err(badly()) };
        let Some(v) = names.get(key) else {
            return Err(format!(
                "Format string {s:?} for {what:?} contains names ('{key}') which cannot be expanded"
            ));
        };
        out.push_str(&v);
        rest = r;
    }
    out.push_str(rest);
    Ok(out)
}

/// `os.path.normpath(os.path.abspath(os.path.expanduser(p)))`.
pub fn normalize_path(p: &Path) -> PathBuf {
    let expanded = match p.to_str().and_then(|s| s.strip_prefix('~')) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => match std::env::var_os("HOME") {
            Some(home) => PathBuf::from(format!("{}{rest}", home.to_string_lossy())),
            None => p.to_path_buf(),
        },
        _ => p.to_path_buf(),
    };
    let abs = if expanded.is_absolute() {
        expanded
    } else {
        std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")).join(expanded)
    };
    let mut out = PathBuf::from("/");
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn write(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("s.conf");
        std::fs::write(&p, text).expect("write conf");
        p
    }

    #[test]
    fn supervisorctl_section_wins_then_unix_http_server_file() {
        let dir = tempfile::Builder::new().prefix("ctlconf").tempdir_in("/tmp").expect("tempdir");
        let p = write(
            dir.path(),
            "[unix_http_server]\nfile=%(here)s/a.sock ; comment\n[supervisorctl]\nUserName = bob\npassword: s3;cret\n",
        );
        let c = read(&p, &no_env).expect("read");
        let here = dir.path().display();
        assert_eq!(c.serverurl, Some(format!("unix://{here}/a.sock")));
        assert_eq!(c.username.as_deref(), Some("bob"));
        assert_eq!(c.password.as_deref(), Some("s3;cret"));
        let p = write(
            dir.path(),
            "[supervisorctl]\nserverurl=unix://%(here)s/../x//b.sock\n[unix_http_server]\nfile=/nope\n",
        );
        let parent = dir.path().parent().map(|d| d.display().to_string()).unwrap_or_default();
        assert_eq!(
            read(&p, &no_env).expect("read").serverurl,
            Some(format!("unix://{parent}/x/b.sock"))
        );
    }

    #[test]
    fn env_expansion_and_percent_escape() {
        let dir = tempfile::Builder::new().prefix("ctlconf").tempdir_in("/tmp").expect("tempdir");
        let env = |k: &str| (k == "PORT").then(|| "9009".to_string());
        let p = write(dir.path(), "[supervisorctl]\nserverurl = http://h:%(ENV_PORT)s/%%x\n");
        assert_eq!(read(&p, &env).expect("read").serverurl.as_deref(), Some("http://h:9009/%x"));
        let p = write(dir.path(), "[supervisorctl]\nserverurl = http://h:%(ENV_NOPE)s\n");
        assert!(read(&p, &env).expect_err("unknown name").contains("cannot be expanded"));
    }

    #[test]
    fn pythons_errors_for_missing_files_and_sections() {
        let dir = tempfile::Builder::new().prefix("ctlconf").tempdir_in("/tmp").expect("tempdir");
        let missing = dir.path().join("nope.conf");
        assert_eq!(
            read(&missing, &no_env),
            Err(format!("could not find config file {}", missing.display()))
        );
        let p = write(dir.path(), "[supervisord]\n[x]\n");
        assert_eq!(
            read(&p, &no_env),
            Err(".ini file does not include supervisorctl section".into())
        );
        let p = write(dir.path(), "[supervisorctl]\n");
        assert_eq!(read(&p, &no_env), Ok(ClientConfig::default()));
        let p = write(dir.path(), "garbage\n");
        assert!(read(&p, &no_env).is_err());
        // A bad line in a section supervisorctl does not read is still configparser's error.
        let p = write(dir.path(), "[supervisorctl]\n[program:x]\ncommand=true\nbad line\n");
        assert_eq!(
            read(&p, &no_env),
            Err(format!("Source contains parsing errors: line 4 in {}", p.display()))
        );
    }

    #[test]
    fn continuation_lines_and_comments() {
        let s = parse(
            "# c\n[supervisorctl]\nk = v\n  more\n; x\nz=1 #c\n[other]\nq=1\n  cont\n[supervisorctl]\ny=2\n",
        )
        .expect("parse");
        assert!(!s.contains_key("other"), "sections supervisorctl does not read are skipped");
        let a = &s["supervisorctl"];
        assert_eq!(a["k"], "v\nmore");
        assert_eq!(a["z"], "1");
        assert_eq!(a["y"], "2");
    }

    #[test]
    fn empty_lines_inside_a_value_are_kept_as_configparser_keeps_them() {
        let s = parse("[supervisorctl]\nk = a\n\n  b\n\n[x]\n").expect("parse");
        assert_eq!(s["supervisorctl"]["k"], "a\n\nb");
        let s = parse("[supervisorctl]\nk = a\n\n\n").expect("parse");
        assert_eq!(s["supervisorctl"]["k"], "a");
        assert!(parse("[supervisorctl]\n=x\n").is_err(), "an empty key is a parsing error");
    }

    #[test]
    fn invalid_utf8_anywhere_is_pythons_decode_error() {
        let dir = tempfile::Builder::new().prefix("ctlconf").tempdir_in("/tmp").expect("tempdir");
        let p = dir.path().join("s.conf");
        let mut text = b"[program:x]\ncommand=echo \xff\xfe\n; \xc3\n".to_vec();
        text.extend_from_slice(b"[supervisorctl]\nserverurl=unix:///tmp/x.sock\n");
        std::fs::write(&p, text).expect("write conf");
        assert_eq!(
            read(&p, &no_env),
            Err("'utf-8' codec can't decode byte 0xff in position 25: invalid start byte".into())
        );
    }
}
