//! The daemon log (`logfile`, `logfile_maxbytes`, `logfile_backups`, `loglevel`): Python's
//! line format and level names, level filtering, and the copy to stdout under `-n`.
//!
//! Format (`supervisor/options.py` `make_logger`, `loggers.py` `LogRecord.asdict`):
//! `%(asctime)s %(levelname)s %(message)s\n`, asctime `YYYY-MM-DD HH:MM:SS,mmm` in local
//! time with the milliseconds truncated, level names `CRIT ERRO WARN INFO DEBG TRAC BLAT`.
//! A multi-line message is written as is. With `nodaemon` and not `silent` the same lines
//! go to stdout too, before the file (so with `logfile=/dev/stdout` they appear twice).
//!
//! Local time comes from `sys::clock::local_tm`, as Python's `time.localtime`. [`MainLog`]
//! is a plain synchronous writer: the daemon gives it to one log task, and nothing else
//! writes it.

use std::io::{self, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{Channel, RotatingWriter};
use crate::pytext::repr as py_repr;

pub use crate::procsup::log::Level;

/// Broken-down local time, the part of `struct tm` the timestamp needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    /// Full year, e.g. 2026.
    pub year: i32,
    /// 1..=12.
    pub month: u32,
    /// 1..=31.
    pub day: u32,
    /// 0..=23.
    pub hour: u32,
    /// 0..=59.
    pub minute: u32,
    /// 0..=60.
    pub second: u32,
    /// 0..=999, truncated.
    pub millis: u32,
}

impl LocalTime {
    /// `wall` in the local time zone (the epoch for a time before 1970).
    pub fn of(wall: SystemTime) -> LocalTime {
        let since = wall.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = i64::try_from(since.as_secs()).unwrap_or(i64::MAX);
        let Some(tm) = crate::sys::clock::local_tm(secs) else {
            // Only for times glibc cannot represent; keep the line well-formed.
            return LocalTime {
                year: 1970,
                month: 1,
                day: 1,
                hour: 0,
                minute: 0,
                second: 0,
                millis: 0,
            };
        };
        let u = |v: libc::c_int| u32::try_from(v).unwrap_or(0);
        LocalTime {
            year: tm.tm_year.saturating_add(1900),
            month: u(tm.tm_mon) + 1,
            day: u(tm.tm_mday),
            hour: u(tm.tm_hour),
            minute: u(tm.tm_min),
            second: u(tm.tm_sec),
            millis: since.subsec_millis(),
        }
    }
}

/// The line Python writes, trailing newline included, for a given broken-down time.
pub fn format_line_at(t: LocalTime, level: Level, msg: &str) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02},{:03} {} {}\n",
        t.year,
        t.month,
        t.day,
        t.hour,
        t.minute,
        t.second,
        t.millis,
        level.tag(),
        msg
    )
}

/// The line Python writes for `msg` logged at `wall`: `2026-11-22 22:48:50,876 INFO msg\n`.
pub fn format_line(wall: SystemTime, level: Level, msg: &str) -> String {
    format_line_at(LocalTime::of(wall), level, msg)
}

/// Python's `time.ctime()` in local time: `Sun Nov 29 19:37:59 2026`.
pub fn ctime(wall: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let secs = i64::try_from(wall.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs())
        .unwrap_or(i64::MAX);
    // SAFETY: an all-zero `tm` is a valid value (the fallback when localtime fails).
    let tm = crate::sys::clock::local_tm(secs).unwrap_or(unsafe { std::mem::zeroed() });
    let day = usize::try_from(tm.tm_wday).ok().and_then(|d| DAYS.get(d)).unwrap_or(&"Sun");
    let month = usize::try_from(tm.tm_mon).ok().and_then(|m| MONTHS.get(m)).unwrap_or(&"Jan");
    format!(
        "{day} {month} {:2} {:02}:{:02}:{:02} {}",
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        tm.tm_year + 1900
    )
}

/// Medusa's access-log date: the UTC time followed by the local zone's standard offset
/// (`29/Nov/2026:19:38:02 +0000`; Medusa pairs GMT with the local offset, and so do we).
pub fn medusa_date(wall: SystemTime) -> String {
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let secs = i64::try_from(wall.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs())
        .unwrap_or(i64::MAX);
    // SAFETY: an all-zero `tm` is a valid value; gmtime_r only writes the `tm` it is given
    // and is thread-safe.
    let mut gmt: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::gmtime_r(&secs, &mut gmt) };
    // SAFETY: an all-zero `tm` is a valid value (the fallback when localtime fails).
    let local = crate::sys::clock::local_tm(secs).unwrap_or(unsafe { std::mem::zeroed() });
    // Python's `time.timezone`: the offset without daylight saving.
    let mut offset = local.tm_gmtoff;
    if local.tm_isdst > 0 {
        offset -= 3600;
    }
    let sign = if offset < 0 { '-' } else { '+' };
    let offset = offset.unsigned_abs();
    let month = usize::try_from(gmt.tm_mon).ok().and_then(|m| MONTHS.get(m)).unwrap_or(&"Jan");
    format!(
        "{:02}/{month}/{}:{:02}:{:02}:{:02} {sign}{:02}{:02}",
        gmt.tm_mday,
        gmt.tm_year + 1900,
        gmt.tm_hour,
        gmt.tm_min,
        gmt.tm_sec,
        offset / 3600,
        offset % 3600 / 60
    )
}

/// The DEBG message Python logs for each chunk of child output when `loglevel` is debug or
/// lower: `'web' stdout output:\n<text>`, or `Undecodable: b'…'` when the chunk is not
/// UTF-8 (Python's `POutputDispatcher._log`).
pub fn child_output_message(name: &str, channel: Channel, data: &[u8]) -> String {
    let text = match std::str::from_utf8(data) {
        Ok(s) => s.to_string(),
        Err(_) => format!("Undecodable: {}", py_bytes_repr(data)),
    };
    format!("{} {} output:\n{}", py_repr(name), channel.as_str(), text)
}

/// Python's `repr()` of a bytes object: `b'...'`, printable ASCII as is, `\t \n \r \\`
/// escaped, everything else as `\xNN`; double quotes when it holds `'` but no `"`.
pub fn py_bytes_repr(data: &[u8]) -> String {
    let quote = if data.contains(&b'\'') && !data.contains(&b'"') { b'"' } else { b'\'' };
    let mut out = String::with_capacity(data.len() + 3);
    out.push('b');
    out.push(char::from(quote));
    for &b in data {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b if b == quote => {
                out.push('\\');
                out.push(char::from(b));
            }
            0x20..=0x7e => out.push(char::from(b)),
            b => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push(char::from(quote));
    out
}

/// Why `clearLog` fails; each is the supervisor fault of the same name.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClearError {
    /// There is no log file, or it does not exist (`NO_FILE`).
    #[error("NO_FILE")]
    NoFile,
    /// The file could not be removed (`FAILED`).
    #[error("FAILED")]
    Failed,
}

/// The daemon log: a rotating file (or syslog) and, under `-n` without `-s`, stdout. It
/// also sends the children's `*_syslog` lines, so that only its thread talks to syslog.
#[derive(Debug)]
pub struct MainLog {
    level: Level,
    file: Option<RotatingWriter>,
    to_stdout: bool,
    /// True after a failed file write, so a full disk is reported once, not per line.
    failing: bool,
    /// `logfile=syslog`.
    to_syslog: bool,
    syslog: super::syslog::Syslog,
    /// True after a failed syslog send, reported once until a send succeeds.
    syslog_failing: bool,
}

impl MainLog {
    /// A log over an already opened writer (or none), at `level`.
    pub fn new(level: Level, file: Option<RotatingWriter>, to_stdout: bool) -> MainLog {
        MainLog {
            level,
            file,
            to_stdout,
            failing: false,
            to_syslog: false,
            syslog: super::syslog::Syslog::default(),
            syslog_failing: false,
        }
    }

    /// A log that goes to syslog (`logfile=syslog`), each line of a message on its own, as
    /// Python's `SyslogHandler` sends it.
    pub fn syslog(level: Level, to_stdout: bool) -> MainLog {
        MainLog { to_syslog: true, ..MainLog::new(level, None, to_stdout) }
    }

    /// Sends one message to syslog; a failure is reported once (on stderr, and in the log
    /// file when there is one) until a send succeeds again.
    pub fn send_syslog(&mut self, wall: SystemTime, msg: &str) {
        match self.syslog.send(wall, msg) {
            Ok(()) => self.syslog_failing = false,
            Err(e) => {
                if !self.syslog_failing {
                    self.syslog_failing = true;
                    let note = format!(
                        "cannot send to syslog at {}: {e} (lines are lost until it answers)",
                        self.syslog.path().display()
                    );
                    eprintln!("supervisord: {note}");
                    if let Some(file) = &mut self.file {
                        let _ = file.write_all(format_line(wall, Level::Error, &note).as_bytes());
                    }
                }
            }
        }
    }

    /// Opens `logfile` with its rotation settings; `to_stdout` is `nodaemon && !silent`.
    pub fn open(
        path: &Path,
        maxbytes: u64,
        backups: u32,
        level: Level,
        to_stdout: bool,
    ) -> io::Result<MainLog> {
        Ok(MainLog::new(level, Some(RotatingWriter::open(path, maxbytes, backups)?), to_stdout))
    }

    /// The configured `loglevel`.
    pub fn level(&self) -> Level {
        self.level
    }

    /// True if a message at `level` would be written (check before formatting costly text).
    pub fn enabled(&self, level: Level) -> bool {
        level >= self.level
    }

    /// Writes `msg` at `level`, stamped with `wall`, if the level passes.
    pub fn log(&mut self, wall: SystemTime, level: Level, msg: &str) {
        if !self.enabled(level) {
            return;
        }
        let line = format_line(wall, level, msg);
        if self.to_stdout {
            // Python's stdout handler ignores EPIPE; a closed stdout must not stop logging.
            let mut out = io::stdout().lock();
            let _ = out.write_all(line.as_bytes()).and_then(|()| out.flush());
        }
        if self.to_syslog {
            for part in super::syslog::lines(msg) {
                self.send_syslog(wall, &format_line(wall, level, part));
            }
        }
        if let Some(file) = &mut self.file {
            match file.write_all(line.as_bytes()) {
                Ok(_) => self.failing = false,
                Err(e) => {
                    // Python prints a traceback to stderr per failed line; once is enough.
                    if !self.failing {
                        eprintln!(
                            "supervisord: cannot write log file {}: {e}",
                            file.path().display()
                        );
                    }
                    self.failing = true;
                }
            }
        }
    }

    /// SIGUSR2: logs `supervisord logreopen` (to the old file), then reopens by name.
    pub fn reopen(&mut self, wall: SystemTime) -> io::Result<()> {
        self.log(wall, Level::Info, "supervisord logreopen");
        match &mut self.file {
            Some(file) => file.reopen(),
            None => Ok(()),
        }
    }

    /// `supervisor.clearLog`: removes the file (backups stay) and reopens it. Python logs
    /// `reopening log file` once per handler before reopening it, so under `-n` the line
    /// appears twice on stdout, and never in the new file.
    pub fn clear(&mut self, wall: SystemTime) -> Result<(), ClearError> {
        let Some(file) = &self.file else { return Err(ClearError::NoFile) };
        if !file.path().exists() {
            return Err(ClearError::NoFile);
        }
        file.unlink().map_err(|_| ClearError::Failed)?;
        for _ in 0..(1 + usize::from(self.to_stdout)) {
            self.log(wall, Level::Info, "reopening log file");
        }
        match &mut self.file {
            Some(file) => file.reopen().map_err(|_| ClearError::Failed),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn line_format_is_pythons() {
        let t = LocalTime {
            year: 2026,
            month: 11,
            day: 22,
            hour: 22,
            minute: 48,
            second: 50,
            millis: 876,
        };
        assert_eq!(
            format_line_at(t, Level::Info, "spawned: 'web' with pid 123"),
            "2026-11-22 22:48:50,876 INFO spawned: 'web' with pid 123\n"
        );
        let t =
            LocalTime { year: 2026, month: 1, day: 2, hour: 3, minute: 4, second: 5, millis: 7 };
        assert_eq!(format_line_at(t, Level::Debug, "a\nb"), "2026-01-02 03:04:05,007 DEBG a\nb\n");
    }

    #[test]
    fn local_time_truncates_millis_and_agrees_with_localtime() {
        let wall =
            UNIX_EPOCH + Duration::from_millis(1_795_000_000_999) + Duration::from_micros(900);
        let t = LocalTime::of(wall);
        assert_eq!(t.millis, 999);
        let whole = LocalTime::of(UNIX_EPOCH + Duration::from_secs(1_795_000_000));
        assert_eq!(
            (t.year, t.month, t.day, t.hour, t.minute, t.second),
            (whole.year, whole.month, whole.day, whole.hour, whole.minute, whole.second)
        );
        let line = format_line(wall, Level::Warn, "x");
        assert_eq!(line.len(), "2026-11-22 22:48:50,999 WARN x\n".len());
        assert!(line.contains(",999 WARN x\n"), "{line}");
    }

    #[test]
    fn levels() {
        let names: Vec<&str> = [
            Level::Critical,
            Level::Error,
            Level::Warn,
            Level::Info,
            Level::Debug,
            Level::Trace,
            Level::Blather,
        ]
        .map(Level::tag)
        .into();
        assert_eq!(names, ["CRIT", "ERRO", "WARN", "INFO", "DEBG", "TRAC", "BLAT"]);
        assert_eq!(Level::from_description("DEBUG"), Some(Level::Debug));
        assert_eq!(Level::from_description("blather"), Some(Level::Blather));
        assert_eq!(Level::from_description("warning"), None);
        assert_eq!(Level::Critical as u8, 50);
        assert!(Level::Trace < Level::Debug);
    }

    #[test]
    fn bytes_repr() {
        assert_eq!(py_bytes_repr(b"it's \"x\"\\\t\x7f"), "b'it\\'s \"x\"\\\\\\t\\x7f'");
        assert_eq!(py_bytes_repr(b"it's"), "b\"it's\"");
    }

    #[test]
    fn medusa_and_ctime_dates() {
        // 2026-11-29 19:38:02 UTC, a Sunday; under TZ=UTC (the test's zone may differ, so
        // only the zone-free parts are exact).
        let wall = UNIX_EPOCH + Duration::from_secs(1_795_981_082);
        let d = medusa_date(wall);
        assert!(d.starts_with("29/Nov/2026:19:38:02 "), "{d}");
        assert_eq!(d.len(), "29/Nov/2026:19:38:02 +0000".len());
        let c = ctime(UNIX_EPOCH + Duration::from_secs(1_795_000_000));
        assert_eq!(c.len(), "Sun Nov 29 19:37:59 2026".len(), "{c}");
        assert!(c.ends_with(" 2026"), "{c}");
    }

    #[test]
    fn filters_by_level_and_writes_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("supervisord.log");
        let mut log = MainLog::open(&p, 0, 0, Level::Info, false).unwrap();
        let wall = UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        log.log(wall, Level::Debug, "hidden");
        log.log(wall, Level::Info, "shown");
        log.log(wall, Level::Critical, "also");
        let text = std::fs::read_to_string(&p).unwrap();
        let want = format!(
            "{}{}",
            format_line(wall, Level::Info, "shown"),
            format_line(wall, Level::Critical, "also")
        );
        assert_eq!(text, want);
    }

    #[test]
    fn reopen_and_clear_follow_python() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("supervisord.log");
        let moved = dir.path().join("old.log");
        let wall = UNIX_EPOCH;
        let mut log = MainLog::open(&p, 0, 0, Level::Info, false).unwrap();
        log.log(wall, Level::Info, "one");
        std::fs::rename(&p, &moved).unwrap();
        log.reopen(wall).unwrap();
        log.log(wall, Level::Info, "two");
        assert!(std::fs::read_to_string(&moved).unwrap().ends_with("INFO supervisord logreopen\n"));
        assert!(std::fs::read_to_string(&p).unwrap().ends_with("INFO two\n"));

        log.clear(wall).unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "",
            "'reopening log file' went to the old file"
        );
        std::fs::remove_file(&p).unwrap();
        assert_eq!(log.clear(wall), Err(ClearError::NoFile));
        assert_eq!(MainLog::new(Level::Info, None, false).clear(wall), Err(ClearError::NoFile));
    }

    #[test]
    fn rotates_like_child_logs() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("supervisord.log");
        let mut log = MainLog::open(&p, 100, 2, Level::Info, false).unwrap();
        for i in 0..10 {
            log.log(UNIX_EPOCH, Level::Info, &format!("message number {i}"));
        }
        assert!(dir.path().join("supervisord.log.1").exists());
        assert!(dir.path().join("supervisord.log.2").exists());
        assert!(!dir.path().join("supervisord.log.3").exists());
    }
}
