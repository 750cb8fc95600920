//! Python text algorithms our messages depend on: `shlex.split` (POSIX mode, no comments),
//! `repr()` of a `str`, `getopt`, and the text of a UTF-8 `UnicodeDecodeError`.
//!
//! The `shlex` crate is not used for splitting commands because it follows sh rather than
//! Python: it treats `#` as a comment and lets `\$` escape inside double quotes, and it does
//! not say *why* a split failed, while supervisor prints Python's reason.

/// Why Python's `shlex.split` rejects a string; the text is Python's `ValueError` message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShlexError {
    /// A quote was opened and never closed.
    #[error("No closing quotation")]
    NoClosingQuotation,
    /// The string ends with a backslash.
    #[error("No escaped character")]
    NoEscapedCharacter,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between tokens.
    Space,
    /// Inside an unquoted word.
    Word,
    /// Inside `'…'` or `"…"`; the char is the quote.
    Quote(char),
    /// After a backslash; the field is the state to return to.
    Escape(Escaped),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Escaped {
    Word,
    DoubleQuote,
}

/// Python's `shlex.split(s)`: POSIX mode, `whitespace_split=True`, no comment characters.
/// Whitespace is space, tab, CR and LF; `'…'` is literal; inside `"…"` a backslash escapes
/// only `"` and `\`; an empty quoted string is an (empty) argument.
pub fn shlex_split(s: &str) -> Result<Vec<String>, ShlexError> {
    let is_ws = |c: char| matches!(c, ' ' | '\t' | '\r' | '\n');
    let mut out = Vec::new();
    let mut token = String::new();
    // Python's `quoted`: the current token saw a quote, so it is emitted even when empty.
    let mut quoted = false;
    let mut state = State::Space;
    for c in s.chars() {
        match state {
            State::Space | State::Word => {
                if is_ws(c) {
                    if state == State::Word || quoted {
                        out.push(std::mem::take(&mut token));
                        quoted = false;
                    }
                    state = State::Space;
                } else if c == '\\' {
                    state = State::Escape(Escaped::Word);
                } else if c == '\'' || c == '"' {
                    state = State::Quote(c);
                } else {
                    token.push(c);
                    state = State::Word;
                }
            }
            State::Quote(q) => {
                quoted = true;
                if c == q {
                    state = State::Word;
                } else if c == '\\' && q == '"' {
                    state = State::Escape(Escaped::DoubleQuote);
                } else {
                    token.push(c);
                }
            }
            State::Escape(back) => {
                if back == Escaped::DoubleQuote && c != '"' && c != '\\' {
                    token.push('\\');
                }
                token.push(c);
                state = match back {
                    Escaped::Word => State::Word,
                    Escaped::DoubleQuote => State::Quote('"'),
                };
            }
        }
    }
    match state {
        State::Quote(_) => return Err(ShlexError::NoClosingQuotation),
        State::Escape(_) => return Err(ShlexError::NoEscapedCharacter),
        State::Word => out.push(token),
        State::Space if quoted => out.push(token),
        State::Space => {}
    }
    Ok(out)
}

/// Python's `repr()` of a `str`, as supervisor's `%r` shows it: single quotes unless the
/// text contains `'` and no `"`, with backslash escapes for the quote, `\`, and
/// non-printable characters.
pub fn repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            // Python's str.isprintable() is false for C0/C1 controls, DEL, no-break space and
            // the soft hyphen; other non-ASCII text is printed as is.
            c if (c as u32) < 0x20
                || ((c as u32) >= 0x7f && (c as u32) <= 0xa0)
                || c == '\u{ad}' =>
            {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// How many bytes Python's text files decode at a time (`TextIOWrapper._CHUNK_SIZE`).
const TEXT_CHUNK: usize = 8192;

/// The `UnicodeDecodeError` text Python gives when it reads `bytes` as a UTF-8 text file
/// and reaches `e`: `'utf-8' codec can't decode byte 0xff in position 25: invalid start
/// byte`. The position counts from the start of the chunk being decoded (with the bytes of
/// a character the previous chunk left incomplete), as Python's reader reports it.
pub fn utf8_decode_error(bytes: &[u8], e: &std::str::Utf8Error) -> String {
    let at = e.valid_up_to();
    let lead = bytes.get(at).copied().unwrap_or(0);
    let (len, reason, pos) = match e.error_len() {
        // Python decodes a final chunk's incomplete tail only at EOF, on its own.
        None => (bytes.len() - at, "unexpected end of data", 0),
        // A lead byte whose sequence breaks at `at + n`: Python blames the sequence so far.
        Some(n) if (0xc2..=0xf4).contains(&lead) => {
            (n, "invalid continuation byte", chunk_position(bytes, at, at + n))
        }
        Some(n) => (n, "invalid start byte", chunk_position(bytes, at, at)),
    };
    if len <= 1 {
        format!("'utf-8' codec can't decode byte 0x{lead:02x} in position {pos}: {reason}")
    } else {
        format!("'utf-8' codec can't decode bytes in position {pos}-{}: {reason}", pos + len - 1)
    }
}

/// Where `at` lies in the input of the decode call that sees byte `seen`: the chunk
/// holding it, preceded by the previous chunk's unfinished character, if any.
fn chunk_position(bytes: &[u8], at: usize, seen: usize) -> usize {
    let chunk_start = seen / TEXT_CHUNK * TEXT_CHUNK;
    let carried = (1..=3.min(chunk_start))
        .find(|&back| {
            let need = match bytes.get(chunk_start - back) {
                Some(0xc0..=0xdf) => 2,
                Some(0xe0..=0xef) => 3,
                Some(0xf0..=0xf7) => 4,
                _ => 0,
            };
            need > back
        })
        .unwrap_or(0);
    at - (chunk_start - carried).min(at)
}

/// getopt's result: (option as written, argument) pairs, then the words after them.
pub type GetoptResult = (Vec<(String, String)>, Vec<String>);

/// Python's `getopt.getopt(args, short, long)`: options stop at the first non-option (or
/// after `--`); returns (option as written — `-c` or `--configuration` in full —, argument)
/// pairs and the remaining words, or getopt's error message (`option -Z not recognized`).
pub fn getopt(args: &[String], short: &str, long: &[&str]) -> Result<GetoptResult, String> {
    let mut opts = Vec::new();
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        if !arg.starts_with('-') || arg == "-" {
            break;
        }
        i += 1;
        if arg == "--" {
            break;
        }
        if let Some(body) = arg.strip_prefix("--") {
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            let (takes_arg, full) = long_has_args(name, long)?;
            let value = match (takes_arg, value) {
                (true, Some(v)) => v,
                (true, None) => {
                    let v =
                        args.get(i).ok_or_else(|| format!("option --{full} requires argument"))?;
                    i += 1;
                    v.clone()
                }
                (false, Some(_)) => {
                    return Err(format!("option --{full} must not have an argument"));
                }
                (false, None) => String::new(),
            };
            opts.push((format!("--{full}"), value));
            continue;
        }
        for (pos, c) in arg[1..].char_indices() {
            let takes_arg = match short.find(c) {
                Some(at) if c != ':' => short[at + c.len_utf8()..].starts_with(':'),
                _ => return Err(format!("option -{c} not recognized")),
            };
            if !takes_arg {
                opts.push((format!("-{c}"), String::new()));
                continue;
            }
            let rest = &arg[1 + pos + c.len_utf8()..];
            let value = if rest.is_empty() {
                let v = args.get(i).ok_or_else(|| format!("option -{c} requires argument"))?;
                i += 1;
                v.clone()
            } else {
                rest.to_string()
            };
            opts.push((format!("-{c}"), value));
            break;
        }
    }
    Ok((opts, args.get(i..).unwrap_or_default().to_vec()))
}

/// `getopt.long_has_args`: an exact match, or a unique prefix (`name=` takes an argument).
fn long_has_args(name: &str, long: &[&str]) -> Result<(bool, String), String> {
    let matches: Vec<&str> = long.iter().copied().filter(|o| o.starts_with(name)).collect();
    if matches.is_empty() {
        return Err(format!("option --{name} not recognized"));
    }
    if long.contains(&name) {
        return Ok((false, name.to_string()));
    }
    if long.iter().any(|o| o.strip_suffix('=') == Some(name)) {
        return Ok((true, name.to_string()));
    }
    match matches.as_slice() {
        [only] => Ok(match only.strip_suffix('=') {
            Some(n) => (true, n.to_string()),
            None => (false, only.to_string()),
        }),
        _ => Err(format!("option --{name} not a unique prefix")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(s: &str) -> Result<Vec<String>, ShlexError> {
        shlex_split(s)
    }

    fn ok(v: &[&str]) -> Result<Vec<String>, ShlexError> {
        Ok(v.iter().map(|s| s.to_string()).collect())
    }

    // Expected values were produced by Python 3.11's shlex.split.
    #[test]
    fn splits_like_python() {
        assert_eq!(split("sh -c 'echo out; exit 3'"), ok(&["sh", "-c", "echo out; exit 3"]));
        assert_eq!(split("  a\tb\n c  "), ok(&["a", "b", "c"]));
        assert_eq!(split("a '' b"), ok(&["a", "", "b"]));
        assert_eq!(split("''"), ok(&[""]));
        assert_eq!(split("a\"b c\"d"), ok(&["ab cd"]));
        assert_eq!(split(r#""a\$b\"c\\d""#), ok(&[r#"a\$b"c\d"#]));
        assert_eq!(split(r"'a\b'"), ok(&[r"a\b"]));
        assert_eq!(split(r"a\ b \x"), ok(&["a b", "x"]));
        assert_eq!(split("echo #not-a-comment"), ok(&["echo", "#not-a-comment"]));
        assert_eq!(split("é ü"), ok(&["é", "ü"]));
        assert_eq!(split(r#"a\"b"#), ok(&["a\"b"]));
        assert_eq!(split("a\"\"b"), ok(&["ab"]));
        assert_eq!(split("a'' b"), ok(&["a", "b"]));
        assert_eq!(split(""), ok(&[]));
        assert_eq!(split("   "), ok(&[]));
    }

    #[test]
    fn errors_like_python() {
        assert_eq!(split("echo 'abc"), Err(ShlexError::NoClosingQuotation));
        assert_eq!(split("echo \"abc\\\""), Err(ShlexError::NoClosingQuotation));
        assert_eq!(split("echo abc\\"), Err(ShlexError::NoEscapedCharacter));
        assert_eq!(ShlexError::NoClosingQuotation.to_string(), "No closing quotation");
    }

    #[test]
    fn repr_like_python() {
        assert_eq!(repr("/bin/x"), "'/bin/x'");
        assert_eq!(repr("it's"), "\"it's\"");
        assert_eq!(repr("a'b\"c"), "'a\\'b\"c'");
        assert_eq!(repr("tab\there\\"), "'tab\\there\\\\'");
        assert_eq!(repr("\u{1}\u{7f}é"), "'\\x01\\x7fé'");
    }

    #[test]
    fn utf8_errors_read_as_pythons_text_reader_reports_them() {
        // Expected texts from Python 3 reading each as a UTF-8 text file.
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"ab\xffcd\n".to_vec(), "byte 0xff in position 2: invalid start byte"),
            (b"\xc3(".to_vec(), "byte 0xc3 in position 0: invalid continuation byte"),
            (b"\xe2\x82(".to_vec(), "bytes in position 0-1: invalid continuation byte"),
            (b"\xed\xa0\x80".to_vec(), "byte 0xed in position 0: invalid continuation byte"),
            (b"\xc0\xaf".to_vec(), "byte 0xc0 in position 0: invalid start byte"),
            (b"ab\xe2".to_vec(), "byte 0xe2 in position 0: unexpected end of data"),
            (b"abc\n\xe2\x82".to_vec(), "bytes in position 0-1: unexpected end of data"),
            (
                [&[b'a'; 9000][..], b"\xff\n"].concat(),
                "byte 0xff in position 808: invalid start byte",
            ),
            (
                [&[b'a'; 8191][..], b"\xc3\x28\n"].concat(),
                "byte 0xc3 in position 0: invalid continuation byte",
            ),
            (
                [&[b'a'; 8190][..], b"\xe2\x82\xac", &[b'a'; 10], b"\xff"].concat(),
                "byte 0xff in position 13: invalid start byte",
            ),
            (
                [&[b'a'; 8191][..], b"\xe2"].concat(),
                "byte 0xe2 in position 0: unexpected end of data",
            ),
        ];
        for (bytes, want) in cases {
            let Err(e) = std::str::from_utf8(&bytes) else { panic!("valid: {bytes:?}") };
            assert_eq!(utf8_decode_error(&bytes, &e), format!("'utf-8' codec can't decode {want}"));
        }
    }
}
