//! `%(name)s` interpolation with Python's `%`-formatting rules, pure.
//!
//! supervisor expands option values with `value % names`: `%(x)s`, `%(x)d`, `%(x)02d`,
//! `%(x)-5s` and so on, and `%%` for a literal `%`. Which names exist depends on the
//! section and the option; the caller supplies them as [`Names`].

use std::collections::BTreeMap;

/// A value that can be interpolated: strings for most names, integers for
/// `process_num` and `numprocs` (so that `%(process_num)02d` works).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A string (`here`, `program_name`, `ENV_X`, …).
    Str(String),
    /// An integer (`process_num`, `numprocs`).
    Int(i64),
}

/// The names available to one expansion: a shared base (the environment) plus names local
/// to a section or a process. Local names shadow base names.
#[derive(Debug, Clone, Default)]
pub struct Names<'a> {
    base: Option<&'a BTreeMap<String, Value>>,
    local: BTreeMap<String, Value>,
}

impl<'a> Names<'a> {
    /// Names backed by `base`, with no local names yet.
    pub fn new(base: &'a BTreeMap<String, Value>) -> Self {
        Names { base: Some(base), local: BTreeMap::new() }
    }

    /// Adds or replaces a local string name.
    pub fn set(&mut self, name: &str, value: impl Into<String>) -> &mut Self {
        self.local.insert(name.to_string(), Value::Str(value.into()));
        self
    }

    /// Adds or replaces a local integer name.
    pub fn set_int(&mut self, name: &str, value: i64) -> &mut Self {
        self.local.insert(name.to_string(), Value::Int(value));
        self
    }

    /// Looks a name up, local names first.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.local.get(name).or_else(|| self.base.and_then(|b| b.get(name)))
    }

    /// The available names that are not `ENV_*`, sorted: error messages list these and
    /// summarise the environment instead of dumping it.
    pub fn non_env_names(&self) -> Vec<&str> {
        let base = self.base.into_iter().flat_map(|b| b.keys());
        let mut all: Vec<&str> = base
            .chain(self.local.keys())
            .map(String::as_str)
            .filter(|k| !k.starts_with("ENV_"))
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }
}

/// Why a string could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpandError {
    /// `%(name)…` names something that is not available here.
    UnknownName(String),
    /// The format itself is broken (Python's "badly formatted").
    BadFormat(String),
}

/// Expands `s` against `names` the way Python's `s % names` does.
pub fn expand(s: &str, names: &Names<'_>) -> Result<String, ExpandError> {
    if !s.contains('%') {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let spec_start = &rest[at + 1..];
        let (text, used) = one_spec(spec_start, names, s.len() - rest.len() + at)?;
        out.push_str(&text);
        rest = &spec_start[used..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Formats one conversion starting right after a `%`; returns the text and the number of
/// bytes consumed. `index` is the position of the `%` for error messages.
fn one_spec(spec: &str, names: &Names<'_>, index: usize) -> Result<(String, usize), ExpandError> {
    let bytes = spec.as_bytes();
    let mut i = 0;
    if bytes.first() == Some(&b'%') {
        return Ok(("%".to_string(), 1));
    }
    if bytes.first() != Some(&b'(') {
        return Err(ExpandError::BadFormat(match bytes.first() {
            None => {
                "incomplete format (a lone '%' at the end; write %% for a literal %)".to_string()
            }
            Some(_) => format!(
                "'%' at index {index} is not followed by (name) or %; write %% for a literal %"
            ),
        }));
    }
    // Python counts nested parentheses inside the key.
    let mut depth = 0usize;
    let mut key_end = None;
    for (j, &b) in bytes.iter().enumerate() {
        match b {
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    key_end = Some(j);
                    break;
                }
            }
            _ => {}
        }
    }
    let Some(key_end) = key_end else {
        return Err(ExpandError::BadFormat("incomplete format key".to_string()));
    };
    let name = &spec[1..key_end];
    i = i.max(key_end + 1);
    let mut left = false;
    let mut zero = false;
    let mut sign = None;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'-' => left = true,
            b'0' => zero = true,
            b'+' => sign = Some('+'),
            b' ' => sign = sign.or(Some(' ')),
            b'#' => {}
            _ => break,
        }
        i += 1;
    }
    let width = digits(bytes, &mut i);
    let precision = if bytes.get(i) == Some(&b'.') {
        i += 1;
        Some(digits(bytes, &mut i).unwrap_or(0))
    } else {
        None
    };
    while matches!(bytes.get(i), Some(b'h' | b'l' | b'L')) {
        i += 1;
    }
    // Python would build a string of any width it is given; a config value must not make
    // the daemon allocate gigabytes.
    if width.unwrap_or(0) > MAX_WIDTH || precision.unwrap_or(0) > MAX_WIDTH {
        return Err(ExpandError::BadFormat(format!(
            "width or precision too big (at most {MAX_WIDTH})"
        )));
    }
    let Some(&conv) = bytes.get(i) else {
        return Err(ExpandError::BadFormat("incomplete format".to_string()));
    };
    i += 1;
    let value = names.get(name).ok_or_else(|| ExpandError::UnknownName(name.to_string()))?;
    let body = match (conv, value) {
        (b's', Value::Str(v)) => truncate(v, precision),
        (b'r' | b'a', Value::Str(v)) => truncate(&format!("'{v}'"), precision),
        (b's' | b'r' | b'a', Value::Int(n)) => truncate(&n.to_string(), precision),
        (b'd' | b'i' | b'u', Value::Int(n)) => int_body(*n, 10, false, precision, sign),
        (b'x', Value::Int(n)) => int_body(*n, 16, false, precision, sign),
        (b'X', Value::Int(n)) => int_body(*n, 16, true, precision, sign),
        (b'o', Value::Int(n)) => int_body(*n, 8, false, precision, sign),
        (b'd' | b'i' | b'u' | b'x' | b'X' | b'o', Value::Str(_)) => {
            return Err(ExpandError::BadFormat(format!(
                "%{} format: a number is required, not str (name '{name}')",
                conv as char
            )));
        }
        _ => {
            return Err(ExpandError::BadFormat(format!(
                "unsupported format character '{}' (0x{conv:x}) at index {}",
                conv as char,
                index + i
            )));
        }
    };
    Ok((pad(body, width.unwrap_or(0), left, zero && !matches!(conv, b's' | b'r' | b'a')), i))
}

/// The largest field width or precision a `%(name)Ns` conversion may ask for.
const MAX_WIDTH: usize = 4096;

fn digits(bytes: &[u8], i: &mut usize) -> Option<usize> {
    let start = *i;
    while bytes.get(*i).is_some_and(u8::is_ascii_digit) {
        *i += 1;
    }
    let s = std::str::from_utf8(bytes.get(start..*i)?).ok()?;
    // Too many digits for a usize is too big, not absent.
    if s.is_empty() { None } else { Some(s.parse().unwrap_or(usize::MAX)) }
}

fn truncate(s: &str, precision: Option<usize>) -> String {
    match precision {
        Some(p) => s.chars().take(p).collect(),
        None => s.to_string(),
    }
}

fn int_body(
    n: i64,
    radix: u32,
    upper: bool,
    precision: Option<usize>,
    sign: Option<char>,
) -> String {
    let mag = n.unsigned_abs();
    let mut digits = match radix {
        16 if upper => format!("{mag:X}"),
        16 => format!("{mag:x}"),
        8 => format!("{mag:o}"),
        _ => mag.to_string(),
    };
    if let Some(p) = precision {
        while digits.len() < p {
            digits.insert(0, '0');
        }
    }
    match (n < 0, sign) {
        (true, _) => format!("-{digits}"),
        (false, Some(c)) => format!("{c}{digits}"),
        (false, None) => digits,
    }
}

/// Pads to `width` characters: left-justified, zero-filled after the sign, or right-justified.
fn pad(body: String, width: usize, left: bool, zero: bool) -> String {
    let len = body.chars().count();
    if len >= width {
        return body;
    }
    let fill = width - len;
    if left {
        format!("{body}{}", " ".repeat(fill))
    } else if zero {
        let (sign, digits) = match body.chars().next() {
            Some(c @ ('-' | '+' | ' ')) => (c.to_string(), body[1..].to_string()),
            _ => (String::new(), body),
        };
        format!("{sign}{}{digits}", "0".repeat(fill))
    } else {
        format!("{}{body}", " ".repeat(fill))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> BTreeMap<String, Value> {
        let mut b = BTreeMap::new();
        b.insert("ENV_HOME".to_string(), Value::Str("/root".to_string()));
        b.insert("here".to_string(), Value::Str("/etc".to_string()));
        b
    }

    #[test]
    fn expands_like_python_percent_formatting() {
        let base = base();
        let mut names = Names::new(&base);
        names.set("program_name", "web").set_int("process_num", 3).set_int("neg", -4);
        // Each expected value is what Python 3.11 prints for `s % names`.
        let cases = [
            ("plain", "plain"),
            ("%(program_name)s", "web"),
            ("%(ENV_HOME)s/x", "/root/x"),
            ("%(here)s/%(program_name)s.log", "/etc/web.log"),
            ("w_%(process_num)02d", "w_03"),
            ("w_%(process_num)d", "w_3"),
            ("w_%(process_num)s", "w_3"),
            ("%(process_num)5d|", "    3|"),
            ("%(process_num)-5d|", "3    |"),
            ("%(process_num)x %(process_num)o", "3 3"),
            ("%(neg)03d", "-04"),
            ("%(process_num)+d", "+3"),
            ("%(process_num).3d", "003"),
            ("%(program_name)5s", "  web"),
            ("%(program_name).2s", "we"),
            ("%(program_name)r", "'web'"),
            ("%%h:%%p", "%h:%p"),
            ("100%%", "100%"),
        ];
        for (src, want) in cases {
            assert_eq!(expand(src, &names).as_deref(), Ok(want), "source {src:?}");
        }
    }

    #[test]
    fn errors_name_the_problem() {
        let base = base();
        let names = Names::new(&base);
        let cases = [
            ("%(ENV_NOPE)s", ExpandError::UnknownName("ENV_NOPE".to_string())),
            ("%(foo", ExpandError::BadFormat("incomplete format key".to_string())),
            ("%(here)", ExpandError::BadFormat("incomplete format".to_string())),
        ];
        for (src, want) in cases {
            assert_eq!(expand(src, &names), Err(want), "source {src:?}");
        }
        for bad in [
            "50%",
            "%s",
            "%(here)d",
            "%(here)z",
            "%(here)4097s",
            "%(here).4097s",
            "%(here)99999999999999999999999s",
        ] {
            assert!(matches!(expand(bad, &names), Err(ExpandError::BadFormat(_))), "{bad}");
        }
    }

    #[test]
    fn non_env_names_hide_the_environment() {
        let base = base();
        let mut names = Names::new(&base);
        names.set("group_name", "g");
        assert_eq!(names.non_env_names(), ["group_name", "here"]);
    }
}
