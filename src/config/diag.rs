//! Configuration diagnostics: every problem found while loading a config, with the
//! file, line, section and option it came from.
//!
//! Loading collects all problems instead of stopping at the first, so a user fixes a
//! broken file in one pass. `Display` gives one line per problem; the daemon prefixes it
//! with `Error: ` and `reloadConfig` wraps it in a CANT_REREAD fault.

use std::fmt;
use std::path::{Path, PathBuf};

/// One fatal problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The file the problem is in, spelled as it was given (`-c` or an include match).
    pub file: PathBuf,
    /// 1-based line of the option (or of the section header when an option is missing).
    pub line: Option<usize>,
    /// The section name without brackets, e.g. `program:web`.
    pub section: Option<String>,
    /// The option key, lowercased as configparser does.
    pub option: Option<String>,
    /// What is wrong, with the bad value and what is allowed.
    pub message: String,
}

/// A problem that does not stop loading (unknown option, deprecated value, an include
/// pattern that matched nothing). The daemon logs these at WARN, as Python does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// The file the problem is in.
    pub file: PathBuf,
    /// 1-based line, when the warning is about one line.
    pub line: Option<usize>,
    /// The section name without brackets.
    pub section: Option<String>,
    /// The option key.
    pub option: Option<String>,
    /// What was noticed and what was done about it.
    pub message: String,
}

/// Where a diagnostic points; shared by errors and warnings so both read the same way.
#[derive(Debug, Clone, Default)]
pub(crate) struct Loc {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub section: Option<String>,
    pub option: Option<String>,
}

impl Loc {
    pub fn file(file: &Path) -> Loc {
        Loc { file: file.to_path_buf(), ..Loc::default() }
    }

    pub fn error(self, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file,
            line: self.line,
            section: self.section,
            option: self.option,
            message: message.into(),
        }
    }

    pub fn warning(self, message: impl Into<String>) -> ConfigWarning {
        ConfigWarning {
            file: self.file,
            line: self.line,
            section: self.section,
            option: self.option,
            message: message.into(),
        }
    }
}

/// `file:line: [section] option: message`, leaving out the parts that are unknown.
fn write_line(
    f: &mut fmt::Formatter<'_>,
    file: &Path,
    line: Option<usize>,
    section: Option<&str>,
    option: Option<&str>,
    message: &str,
) -> fmt::Result {
    write!(f, "{}", file.display())?;
    if let Some(line) = line {
        write!(f, ":{line}")?;
    }
    f.write_str(":")?;
    if let Some(section) = section {
        write!(f, " [{section}]")?;
    }
    if let Some(option) = option {
        write!(f, " {option}:")?;
    }
    write!(f, " {message}")
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (s, o) = (self.section.as_deref(), self.option.as_deref());
        write_line(f, &self.file, self.line, s, o, &self.message)
    }
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (s, o) = (self.section.as_deref(), self.option.as_deref());
        write_line(f, &self.file, self.line, s, o, &self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_leaves_out_unknown_parts() {
        let full = Loc {
            file: "/etc/sv.conf".into(),
            line: Some(12),
            section: Some("program:web".into()),
            option: Some("startsecs".into()),
        };
        let cases = [
            (
                full.clone().error("invalid value 'abc': expected an integer >= 0"),
                "/etc/sv.conf:12: [program:web] startsecs: invalid value 'abc': expected an integer >= 0",
            ),
            (
                Loc { option: None, ..full.clone() }.error("no command"),
                "/etc/sv.conf:12: [program:web] no command",
            ),
            (Loc::file(Path::new("a.conf")).error("no [supervisord]"), "a.conf: no [supervisord]"),
        ];
        for (err, want) in cases {
            assert_eq!(err.to_string(), want);
        }
        assert_eq!(
            full.warning("unknown").to_string(),
            "/etc/sv.conf:12: [program:web] startsecs: unknown"
        );
    }
}
