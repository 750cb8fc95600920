//! `strip_ansi` (`-t`): Python's `stripEscapes` (`supervisor/dispatchers.py`), applied to
//! each chunk of child output before it is logged.
//!
//! A sequence is `ESC [` followed by anything up to and including the first of
//! `HfABCDRsuJKhlpm`; an unterminated sequence swallows the rest of the chunk. Like
//! Python, each chunk is stripped on its own: a sequence split across two reads is only
//! half removed.

const TERMINATORS: &[u8] = b"HfABCDRsuJKhlpm";

/// Appends `data` without its ANSI escape sequences to `out`.
pub fn strip_escapes(data: &[u8], out: &mut Vec<u8>) {
    let mut rest = data;
    loop {
        let Some(esc) = rest.windows(2).position(|w| w == b"\x1b[") else {
            out.extend_from_slice(rest);
            return;
        };
        out.extend_from_slice(&rest[..esc]);
        // Skip `ESC [` and look for the terminator from there on; Python checks the byte
        // after ESC too, but `[` is not a terminator.
        let after = &rest[esc + 2..];
        match after.iter().position(|b| TERMINATORS.contains(b)) {
            Some(t) => rest = &after[t + 1..],
            None => return,
        }
    }
}

/// True if `data` may hold an escape sequence (the cheap test before copying).
pub fn has_escape(data: &[u8]) -> bool {
    data.windows(2).any(|w| w == b"\x1b[")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        strip_escapes(data, &mut out);
        out
    }

    #[test]
    fn strips_like_python() {
        assert_eq!(strip(b"plain"), b"plain");
        assert_eq!(strip(b"\x1b[31mred\x1b[0m done\n"), b"red done\n");
        assert_eq!(strip(b"a\x1b[2Jb\x1b[1;1Hc"), b"abc");
        assert_eq!(strip(b"a\x1b[12"), b"a", "an unterminated sequence eats the rest");
        assert_eq!(strip(b"\x1bx\x1b"), b"\x1bx\x1b", "a lone ESC stays");
        assert_eq!(strip(b"\x1b[\x1b[mX"), b"X");
        assert_eq!(strip(b""), b"");
        assert!(has_escape(b"x\x1b[m") && !has_escape(b"x\x1b"));
    }
}
