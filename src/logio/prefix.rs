//! Log line prefixes (`stdout_log_prefix`/`stderr_log_prefix`): cuts a channel's output
//! into lines and writes each with its prefix, or as one JSON object. Lines split across
//! reads are joined; what is left without a newline when the pipe closes is written as a
//! last line. Pure: the time is an argument.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::{LinePrefix, PrefixPart};

/// A line longer than this without a newline is written as a line of its own, so a
/// program that never writes a newline cannot grow the daemon's memory.
pub const MAX_LINE: usize = 64 * 1024;

/// The per-pump state: the prefix and the unfinished line.
#[derive(Debug)]
pub struct LineFramer {
    prefix: LinePrefix,
    partial: Vec<u8>,
    out: Vec<u8>,
}

impl LineFramer {
    pub fn new(prefix: LinePrefix) -> LineFramer {
        LineFramer { prefix, partial: Vec::new(), out: Vec::new() }
    }

    /// The framed form of every line `data` completes (empty when it completes none).
    pub fn feed(&mut self, mut data: &[u8], now: SystemTime) -> &[u8] {
        self.out.clear();
        while let Some(nl) = data.iter().position(|&b| b == b'\n') {
            let (line, rest) = data.split_at(nl + 1);
            if self.partial.is_empty() {
                render(&self.prefix, &line[..nl], now, &mut self.out);
            } else {
                self.partial.extend_from_slice(&line[..nl]);
                render(&self.prefix, &self.partial, now, &mut self.out);
                self.partial.clear();
            }
            data = rest;
        }
        self.partial.extend_from_slice(data);
        while self.partial.len() >= MAX_LINE {
            let rest = self.partial.split_off(MAX_LINE);
            render(&self.prefix, &self.partial, now, &mut self.out);
            self.partial = rest;
        }
        &self.out
    }

    /// The unfinished line, framed as a whole line (empty when there is none).
    pub fn finish(&mut self, now: SystemTime) -> &[u8] {
        self.out.clear();
        if !self.partial.is_empty() {
            render(&self.prefix, &self.partial, now, &mut self.out);
            self.partial.clear();
        }
        &self.out
    }
}

/// Appends one framed line (`line` without its newline) to `out`, newline included.
fn render(prefix: &LinePrefix, line: &[u8], now: SystemTime, out: &mut Vec<u8>) {
    match prefix {
        LinePrefix::Template(parts) => {
            for part in parts {
                match part {
                    PrefixPart::Text(t) => out.extend_from_slice(t.as_bytes()),
                    PrefixPart::Time => out.extend_from_slice(rfc3339(now).as_bytes()),
                }
            }
            out.extend_from_slice(line);
        }
        LinePrefix::Json { process, channel } => {
            out.extend_from_slice(b"{\"time\":\"");
            out.extend_from_slice(rfc3339(now).as_bytes());
            out.extend_from_slice(b"\",\"process\":");
            json_string(process, out);
            out.extend_from_slice(b",\"channel\":");
            json_string(channel, out);
            out.extend_from_slice(b",\"message\":");
            json_string(&String::from_utf8_lossy(line), out);
            out.push(b'}');
        }
    }
    out.push(b'\n');
}

fn json_string(s: &str, out: &mut Vec<u8>) {
    // Serializing a str cannot fail; the fallback keeps the line valid JSON regardless.
    if serde_json::to_writer(&mut *out, s).is_err() {
        out.extend_from_slice(b"\"\"");
    }
}

/// `2026-11-29T19:36:41.123Z`: UTC, so lines from different hosts and time zones sort.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    fn template(parts: Vec<PrefixPart>) -> LineFramer {
        LineFramer::new(LinePrefix::Template(parts))
    }

    #[test]
    fn time_is_utc_rfc3339_with_milliseconds() {
        assert_eq!(rfc3339(at(0)), "1970-01-01T00:00:00.000Z");
        // 2024-02-29 23:59:59.999 UTC: a leap day.
        assert_eq!(rfc3339(at(1_709_251_199_999)), "2024-02-29T23:59:59.999Z");
        assert_eq!(rfc3339(at(1_798_573_001_050)), "2026-12-29T19:36:41.050Z");
    }

    #[test]
    fn lines_split_across_reads_are_joined_and_the_rest_is_flushed() {
        let mut f = template(vec![PrefixPart::Text("web | ".into())]);
        assert_eq!(f.feed(b"hel", at(0)), b"");
        assert_eq!(f.feed(b"lo\nwor", at(0)), b"web | hello\n");
        assert_eq!(f.feed(b"ld\n\nx", at(0)), b"web | world\nweb | \n");
        assert_eq!(f.finish(at(0)), b"web | x\n");
        assert_eq!(f.finish(at(0)), b"");
    }

    #[test]
    fn time_parts_are_filled_per_line() {
        let mut f = template(vec![PrefixPart::Time, PrefixPart::Text(" a: ".into())]);
        assert_eq!(f.feed(b"x\n", at(1)), b"1970-01-01T00:00:00.001Z a: x\n");
    }

    #[test]
    fn json_lines_escape_and_replace_invalid_utf8() {
        let mut f =
            LineFramer::new(LinePrefix::Json { process: "g:web".into(), channel: "stderr".into() });
        let out = f.feed(b"say \"hi\"\t\xff\n", at(0)).to_vec();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "{\"time\":\"1970-01-01T00:00:00.000Z\",\"process\":\"g:web\",\"channel\":\"stderr\",\"message\":\"say \\\"hi\\\"\\t\u{fffd}\"}\n"
        );
        let v: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(v["message"], "say \"hi\"\t\u{fffd}");
    }

    #[test]
    fn a_line_longer_than_the_limit_is_cut() {
        let mut f = template(vec![PrefixPart::Text("> ".into())]);
        let long = vec![b'a'; MAX_LINE + 10];
        let out = f.feed(&long, at(0)).to_vec();
        assert_eq!(out.len(), 2 + MAX_LINE + 1);
        assert_eq!(f.finish(at(0)), [&b"> "[..], &[b'a'; 10][..], b"\n"].concat());
    }
}
