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
//!
//! The line rules live in [`Lexer`], which supervisorctl's small reader (`ctl::conf`) shares;
//! [`Ini`] builds the daemon's merged sections with file and line on top of it.

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
        // Values are collected as lines and joined at the end, like configparser does.
        let mut pending: Vec<(Option<usize>, IniOption, Vec<String>)> = Vec::new();

        for (lineno, line) in Lexer::new(text) {
            let loc = Loc { line: Some(lineno), ..Loc::file(file) };
            match line {
                Line::Blank { in_value } => {
                    if in_value && let Some(last) = pending.last_mut() {
                        last.2.push(String::new());
                    }
                }
                Line::Continuation(value) => {
                    if let Some(last) = pending.last_mut() {
                        last.2.push(value.to_string());
                    }
                }
                Line::Header(name) => {
                    self.flush(&mut pending);
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
                }
                Line::NoSection(value) => errors.push(loc.error(format!(
                    "'{value}' comes before the first [section] header; put options inside a section"
                ))),
                Line::Option { key, value } => {
                    let opt = IniOption {
                        key: key.to_lowercase(),
                        value: String::new(),
                        file: file.to_path_buf(),
                        line: lineno,
                    };
                    // The lexer yields options only after a header.
                    if let Some(target) = cur {
                        pending.push((target, opt, vec![value.to_string()]));
                    }
                }
                Line::Bad(value) => errors.push(loc.error(format!(
                    "cannot parse '{value}': expected 'name = value', '[section]' or a comment"
                ))),
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

/// One line of an INI file, classified by configparser's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line<'a> {
    /// Nothing but whitespace or a comment. `in_value`: a line with no comment inside an
    /// option's value, which configparser keeps as an empty line of that value.
    Blank { in_value: bool },
    /// A line indented deeper than the option line before it: the next line of its value.
    Continuation(&'a str),
    /// `[name]`.
    Header(&'a str),
    /// `key = value` or `key: value`, split at the first `=` or `:`, both sides trimmed,
    /// the key as written (configparser lowercases it).
    Option { key: &'a str, value: &'a str },
    /// A non-blank line before the first header.
    NoSection(&'a str),
    /// A line in a section that is neither a header nor an option.
    Bad(&'a str),
}

/// Classifies the lines of an INI text, yielding each with its 1-based number.
/// `RawConfigParser(inline_comment_prefixes=(';','#'), strict=False)`'s line rules:
/// comments, continuation lines, headers and options. What to keep is the caller's.
pub struct Lexer<'a> {
    rest: &'a str,
    lineno: usize,
    in_section: bool,
    /// Whether an option's value is open for continuation lines.
    in_option: bool,
    /// The indent of the last non-blank, non-continuation line.
    indent_level: usize,
}

impl<'a> Lexer<'a> {
    /// Lines of `text`.
    pub fn new(text: &'a str) -> Lexer<'a> {
        Lexer { rest: text, lineno: 0, in_section: false, in_option: false, indent_level: 0 }
    }

    /// The next raw line, split as `str::lines` (at `\n`, a `\r` before it dropped)
    /// without its per-line searcher set-up: supervisorctl reads the config on every run.
    fn next_raw(&mut self) -> Option<&'a str> {
        if self.rest.is_empty() {
            return None;
        }
        let rest = self.rest;
        let (line, next) = match rest.bytes().position(|b| b == b'\n') {
            Some(i) => (rest[..i].strip_suffix('\r').unwrap_or(&rest[..i]), &rest[i + 1..]),
            None => (rest, ""),
        };
        self.rest = next;
        Some(line)
    }
}

impl<'a> Iterator for Lexer<'a> {
    type Item = (usize, Line<'a>);

    fn next(&mut self) -> Option<(usize, Line<'a>)> {
        let raw = self.next_raw()?;
        self.lineno += 1;
        let unindented = raw.trim_start();
        let comment = comment_start(raw, unindented);
        let value = trim(&raw[..comment.unwrap_or(raw.len())]);
        let line = if value.is_empty() {
            Line::Blank { in_value: comment.is_none() && self.in_option }
        } else {
            let indent = raw.len() - unindented.len();
            if self.in_option && indent > self.indent_level {
                Line::Continuation(value)
            } else {
                self.indent_level = indent;
                self.in_option = false;
                if let Some(name) = section_header(value) {
                    self.in_section = true;
                    Line::Header(name)
                } else if !self.in_section {
                    Line::NoSection(value)
                } else if let Some((key, value)) = split_option(value) {
                    self.in_option = true;
                    Line::Option { key, value }
                } else {
                    Line::Bad(value)
                }
            }
        };
        Some((self.lineno, line))
    }
}

/// Byte index where a comment starts on `line`, if any: a full-line `;`/`#`, or an inline
/// one preceded by whitespace (`a=b;c` keeps `;c`, `a=b ;c` does not). Scans bytes (both
/// markers are ASCII) and decodes only the character before a marker.
/// `unindented` is `line` without its leading whitespace.
fn comment_start(line: &str, unindented: &str) -> Option<usize> {
    if matches!(unindented.as_bytes().first(), Some(b';' | b'#')) {
        return Some(0);
    }
    line.bytes().enumerate().position(|(i, b)| {
        (b == b';' || b == b'#') && line[..i].chars().next_back().is_some_and(char::is_whitespace)
    })
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
    // Bytes, not a char search: both are ASCII, and supervisorctl lexes every line per run.
    let at = value.bytes().position(|b| b == b'=' || b == b':')?;
    let key = trim(value.get(..at)?);
    let val = trim(value.get(at + 1..)?);
    (!key.is_empty()).then_some((key, val))
}

/// `str::trim` (Python's `strip()`: Unicode whitespace), answering at once for the usual
/// text that starts and ends with a visible ASCII character: supervisorctl lexes every
/// line of the config on every run.
fn trim(s: &str) -> &str {
    match (s.as_bytes().first(), s.as_bytes().last()) {
        (Some(a), Some(z)) if a.is_ascii_graphic() && z.is_ascii_graphic() => s,
        _ => s.trim(),
    }
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
    fn lexer_splits_lines_like_str_lines() {
        for text in ["", "a", "a\n", "a\r\nb", "\n\n", "a\r\r\nb\r", "x\ry\n", "\r\n"] {
            let mut lexer = Lexer::new(text);
            let got: Vec<&str> = std::iter::from_fn(|| lexer.next_raw()).collect();
            assert_eq!(got, text.lines().collect::<Vec<_>>(), "{text:?}");
        }
    }

    #[test]
    fn trim_is_str_trim() {
        for s in ["", " ", "a", " a ", "a b", "\ta\u{a0}", "\u{a0}x", "x\u{2003}", "é", " é "] {
            assert_eq!(trim(s), s.trim(), "{s:?}");
        }
    }

    #[test]
    fn lexer_classifies_lines() {
        let got: Vec<Line> =
            Lexer::new("k=1\n[a] ;c\nx : 1 #c\n  two\n\n ; c\n   three\nbad\n  more\n")
                .map(|(_, l)| l)
                .collect();
        assert_eq!(
            got,
            [
                Line::NoSection("k=1"),
                Line::Header("a"),
                Line::Option { key: "x", value: "1" },
                Line::Continuation("two"),
                Line::Blank { in_value: true },
                Line::Blank { in_value: false },
                Line::Continuation("three"),
                Line::Bad("bad"),
                Line::Bad("more"),
            ]
        );
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
