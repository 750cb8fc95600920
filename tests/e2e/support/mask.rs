//! Masking what varies between runs (pids, uptimes, times, AUTO names, temp dirs) so
//! that two daemons' outputs can be compared byte for byte.

use std::path::Path;

/// Replaces the run of `keep` characters after each `prefix` with `with`.
pub fn mask_after(t: &str, prefix: &str, keep: impl Fn(char) -> bool, with: &str) -> String {
    let mut out = String::with_capacity(t.len());
    let mut rest = t;
    while let Some(i) = rest.find(prefix) {
        let after = i + prefix.len();
        out.push_str(&rest[..after]);
        let tail = &rest[after..];
        let n = tail.find(|c: char| !keep(c)).unwrap_or(tail.len());
        if n > 0 {
            out.push_str(with);
        }
        rest = &tail[n..];
    }
    out.push_str(rest);
    out
}

/// supervisorctl output with pids, uptimes, times and the temp dir masked.
pub fn mask_ctl(text: &str, dir: &Path) -> String {
    let text = text.replace(&dir.display().to_string(), "{dir}");
    let mut out = String::new();
    for line in text.lines() {
        let mut l = mask_after(line, "pid ", |c| c.is_ascii_digit(), "N");
        l = mask_after(&l, "uptime ", |c| c.is_ascii_digit() || c == ':', "U");
        for ampm in [" AM", " PM"] {
            if let Some(i) = l.find(ampm)
                && i >= 12
                && l.is_char_boundary(i - 12)
            {
                l.replace_range(i - 12..i + 3, "DATE");
            }
        }
        if !l.is_empty() && l.chars().all(|c| c.is_ascii_digit()) {
            l = "N".into();
        }
        out.push_str(&l);
        out.push('\n');
    }
    out
}
