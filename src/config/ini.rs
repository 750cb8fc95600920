//! The raw INI layer: Python configparser's dialect, with the file and line of every
//! option kept.
//!
//! Why a hand parser and not `rust-ini`: rust-ini keeps ` ; comment` inside values, keeps
//! duplicate sections apart instead of merging them, keeps key case, and reports no line
//! numbers for options, while our errors name file+line for every bad value. The
//! rules below are those of `RawConfigParser(inline_comment_prefixes=(';','#'),
//! strict=False)` as supervisor 4.3.0 builds it:
//! - `key = value` or `key: value`, split at the first `=` or `:`; keys lowercased;
//! - full-line comments start with `;` or `#`; inline ones need whitespace before them;
//! - a more indented line continues the previous value (joined with `\n`); a blank line
//!   inside a value is kept, trailing blank lines are dropped;
//! - sections with the same name merge, the later key wins; `[DEFAULT]` supplies
//!   fallbacks for every section;
//! - every bad line is reported, not just the first.

use std::path::{Path, PathBuf};

use super::diag::{ConfigError, Loc};

/// One `key = value` with where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IniOption {
    /// Lowercased key.
    pub key: String,
    /// Value with inline comments stripped and continuation lines joined with `\n`.
    pub value: String,
    /// The file the option was read from.
    pub file: PathBuf,
    /// 1-based line of the `key =` line.
    pub line: usize,
}

/// A section after merging every `[name]` block with the same name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The name between the brackets (case kept).
    pub name: String,
    /// The file of the first header with this name (Python's `section_to_file`).
    pub file: PathBuf,
    /// The line of that header.
    pub line: usize,
    /// Options in first-appearance order; a later duplicate replaces the value in place.
    pub options: Vec<IniOption>,
}

impl Section {
    /// The option `key` (already lowercase) of this section, if set.
    pub fn get(&self, key: &str) -> Option<&IniOption> {
        self.options.iter().find(|o| o.key == key)
    }

    fn set(&mut self, opt: IniOption) {
        match self.options.iter_mut().find(|o| o.key == opt.key) {
            Some(old) => *old = opt,
            None => self.options.push(opt),
        }
    }
}

/// Every section read so far, merged, in order of first appearance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ini {
    /// Named sections.
    pub sections: Vec<Section>,
    /// `[DEFAULT]` options: configparser shows them in every section.
    pub defaults: Vec<IniOption>,
}

impl Ini {
    /// The section called exactly `name`.
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// `key` in `section`, falling back to `[DEFAULT]`.
    pub fn get<'a>(&'a self, section: &'a Section, key: &str) -> Option<&'a IniOption> {
        section.get(key).or_else(|| self.defaults.iter().find(|o| o.key == key))
    }

    /// Reads `text` (the contents of `file`) into this set of sections, merging as
    /// configparser does. Returns every syntax error in the text; sections read before an
    /// error are kept, as Python keeps them.
    pub fn read_str(&mut self, text: &str, file: &Path) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        // Where options go: None before the first header, Some(None) for [DEFAULT].
        let mut cur: Option<Option<usize>> = None;
        // The option that continuation lines extend, and the indent of its line.
        let mut cur_opt: Option<String> = None;
        let mut indent_level = 0usize;
        // Values are collected as lines and joined at the end, like configparser does.
        let mut pending: Vec<(Option<usize>, IniOption, Vec<String>)> = Vec::new();

        for (idx, raw_line) in text.split('\n').enumerate() {
            let lineno = idx + 1;
            let line = raw_line.strip_suffix('\r').unwrap_or(raw_line);
            let comment_start = comment_start(line);
            let value = line.get(..comment_start.unwrap_or(line.len())).unwrap_or(line).trim();
            if value.is_empty() {
                // A blank line inside a value is part of it, unless it held a comment.
                if comment_start.is_none()
                    && cur.is_some()
                    && let Some(last) = pending.last_mut().filter(|_| cur_opt.is_some())
                {
                    last.2.push(String::new());
                }
                continue;
            }
            let indent = line.len() - line.trim_start().len();
            if cur.is_some() && cur_opt.is_some() && indent > indent_level {
                if let Some(last) = pending.last_mut() {
                    last.2.push(value.to_string());
                }
                continue;
            }
            indent_level = indent;
            let loc = Loc { line: Some(lineno), ..Loc::file(file) };
            if let Some(name) = section_header(value) {
                self.flush(&mut pending);
                cur_opt = None;
                if name == "DEFAULT" {
                    cur = Some(None);
                } else {
                    let at = match self.sections.iter().position(|s| s.name == name) {
                        Some(at) => at,
                        None => {
                            self.sections.push(Section {
                                name: name.to_string(),
                                file: file.to_path_buf(),
                                line: lineno,
                                options: Vec::new(),
                            });
                            self.sections.len() - 1
                        }
                    };
                    cur = Some(Some(at));
                }
                continue;
            }
            let Some(target) = cur else {
                errors.push(loc.error(format!(
                    "'{value}' comes before the first [section] header; put options inside a section"
                )));
                continue;
            };
            match split_option(value) {
                Some((key, val)) => {
                    let key = key.to_lowercase();
                    cur_opt = Some(key.clone());
                    let opt = IniOption {
                        key,
                        value: String::new(),
                        file: file.to_path_buf(),
                        line: lineno,
                    };
                    pending.push((target, opt, vec![val.to_string()]));
                }
                None => {
                    cur_opt = None;
                    errors.push(loc.error(format!(
                        "cannot parse '{value}': expected 'name = value', '[section]' or a comment"
                    )));
                }
            }
        }
        self.flush(&mut pending);
        errors
    }

    /// Joins pending multi-line values and stores them in their sections.
    fn flush(&mut self, pending: &mut Vec<(Option<usize>, IniOption, Vec<String>)>) {
        for (target, mut opt, lines) in pending.drain(..) {
            opt.value = lines.join("\n").trim_end().to_string();
            match target.and_then(|at| self.sections.get_mut(at)) {
                Some(section) => section.set(opt),
                None => match self.defaults.iter_mut().find(|o| o.key == opt.key) {
                    Some(old) => *old = opt,
                    None => self.defaults.push(opt),
                },
            }
        }
    }
}

/// Byte index where a comment starts on `line`, if any: a full-line `;`/`#`, or an inline
/// one preceded by whitespace (`a=b;c` keeps `;c`, `a=b ;c` does not).
fn comment_start(line: &str) -> Option<usize> {
    let trimmed = line.trim_start();
    if trimmed.starts_with(';') || trimmed.starts_with('#') {
        return Some(0);
    }
    let mut prev_space = true;
    for (i, c) in line.char_indices() {
        if (c == ';' || c == '#') && prev_space {
            return Some(i);
        }
        prev_space = c.is_whitespace();
    }
    None
}

/// The header name of `[name]` (configparser's `\[(?P<header>.+)\]`, greedy, anchored at
/// the start only).
fn section_header(value: &str) -> Option<&str> {
    let rest = value.strip_prefix('[')?;
    let end = rest.rfind(']')?;
    let name = rest.get(..end)?;
    (!name.is_empty()).then_some(name)
}

/// Splits `key = value` at the first `=` or `:`; the key must not be empty.
fn split_option(value: &str) -> Option<(&str, &str)> {
    let at = value.find(['=', ':'])?;
    let key = value.get(..at)?.trim();
    let val = value.get(at + 1..)?.trim();
    (!key.is_empty()).then_some((key, val))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Ini {
        let mut ini = Ini::default();
        let errors = ini.read_str(text, Path::new("t.conf"));
        assert!(errors.is_empty(), "{errors:?}");
        ini
    }

    fn value(ini: &Ini, section: &str, key: &str) -> Option<String> {
        let s = ini.section(section)?;
        ini.get(s, key).map(|o| o.value.clone())
    }

    #[test]
    fn values_follow_configparser_rules() {
        // (source, section, key, expected value); each checked against Python 4.3.0's
        // RawConfigParser with inline comment prefixes.
        let cases: &[(&str, &str, &str, Option<&str>)] = &[
            ("[a]\nk=v", "a", "k", Some("v")),
            ("[a]\nk : v", "a", "k", Some("v")),
            ("[a]\nKEY=v", "a", "key", Some("v")),
            ("[a]\nk=Value", "a", "k", Some("Value")),
            ("[a]\nk=b ;c", "a", "k", Some("b")),
            ("[a]\nk=b;c", "a", "k", Some("b;c")),
            ("[a]\nk=b\t#c", "a", "k", Some("b")),
            ("[a]\nk=b#c", "a", "k", Some("b#c")),
            ("[a]\nk=x=y", "a", "k", Some("x=y")),
            ("[a]\nk=x:y", "a", "k", Some("x:y")),
            ("[a]\nk:x=y", "a", "k", Some("x=y")),
            ("[a]\nk=", "a", "k", Some("")),
            ("[a]\nk=one\n  two\n\tthree", "a", "k", Some("one\ntwo\nthree")),
            ("[a]\nk=one\n\n  two\n\n", "a", "k", Some("one\n\ntwo")),
            ("[a]\nk=one\n  ; comment\n  two", "a", "k", Some("one\ntwo")),
            ("[a]\n; k=1\n# k=2\nk=3", "a", "k", Some("3")),
            ("[a]\nk=1\n[b]\nk=2\n[a]\nk=3", "a", "k", Some("3")),
            ("[a]\nk=1\nk=2", "a", "k", Some("2")),
            ("[DEFAULT]\nd=1\n[a]\nk=1", "a", "d", Some("1")),
            ("[a]\r\nk=v\r\n", "a", "k", Some("v")),
            ("[a] trailing\nk=v", "a", "k", Some("v")),
        ];
        for (src, section, key, want) in cases {
            let ini = parse(src);
            assert_eq!(value(&ini, section, key).as_deref(), *want, "source {src:?}");
        }
    }

    #[test]
    fn sections_are_case_sensitive_and_merged() {
        let ini = parse("[a]\nx=1\n[A]\ny=2\n[a]\nz=3\n");
        let names: Vec<&str> = ini.sections.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["a", "A"]);
        let a = ini.section("a").map(|s| s.options.len());
        assert_eq!(a, Some(2));
    }

    #[test]
    fn every_option_keeps_file_and_line() {
        let ini = parse("[a]\n\nx=1\n  more\ny=2\n[a]\nx=3\n");
        let a = ini.section("a").expect("section a");
        let lines: Vec<(&str, usize)> =
            a.options.iter().map(|o| (o.key.as_str(), o.line)).collect();
        assert_eq!(lines, [("x", 7), ("y", 5)]);
        assert_eq!(a.line, 1);
        assert_eq!(a.options.first().map(|o| o.file.clone()), Some(PathBuf::from("t.conf")));
    }

    #[test]
    fn every_bad_line_is_reported_with_its_number() {
        let mut ini = Ini::default();
        let errors = ini.read_str("x=1\n[a]\nfoo\nk=v\n=bad\n", Path::new("c.conf"));
        let got: Vec<Option<usize>> = errors.iter().map(|e| e.line).collect();
        assert_eq!(got, [Some(1), Some(3), Some(5)]);
        assert!(errors.iter().all(|e| e.file == Path::new("c.conf")));
        assert_eq!(value(&ini, "a", "k").as_deref(), Some("v"));
    }
}
