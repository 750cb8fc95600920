//! Lines to the local syslog service, as Python's `SyslogHandler` sends them through
//! `syslog.syslog(msg)`: facility user, priority info whatever the line's level (Python
//! passes no priority), ident `supervisord`, and what glibc's `syslog(3)` puts on the wire:
//! `<14>Nov 29 19:38:02 supervisord: <line>` as one datagram to `/dev/log`.
//!
//! The socket path is `/dev/log`, or the value of `SUPERVISORD_SYSLOG_SOCKET` (for tests,
//! and for hosts whose syslog listens elsewhere). Only the daemon-log thread sends, with
//! blocking writes, so a slow syslog daemon delays no process management; a failure is
//! reported (once until the next success) rather than dropped silently.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::SystemTime;

/// Environment variable that overrides the socket path.
pub const SOCKET_ENV: &str = "SUPERVISORD_SYSLOG_SOCKET";

/// `LOG_USER | LOG_INFO`.
const PRIORITY: u8 = 8 + 6;

/// A lazily connected sender to the syslog socket.
#[derive(Debug)]
pub struct Syslog {
    path: PathBuf,
    sock: Option<UnixDatagram>,
}

impl Default for Syslog {
    fn default() -> Syslog {
        let path = std::env::var_os(SOCKET_ENV).map_or_else(|| "/dev/log".into(), PathBuf::from);
        Syslog { path, sock: None }
    }
}

impl Syslog {
    /// Sends one message stamped `wall`; reconnects once if the socket went away (syslog
    /// restarted).
    pub fn send(&mut self, wall: SystemTime, msg: &str) -> io::Result<()> {
        let datagram = format!("<{PRIORITY}>{} supervisord: {msg}", stamp(wall));
        for attempt in 0..2 {
            if self.sock.is_none() {
                let sock = UnixDatagram::unbound()?;
                sock.connect(&self.path)?;
                self.sock = Some(sock);
            }
            let Some(sock) = &self.sock else { continue };
            match sock.send(datagram.as_bytes()) {
                Ok(_) => return Ok(()),
                Err(_) if attempt == 0 => self.sock = None,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The socket's path, for messages.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

/// The messages Python's `SyslogHandler.emit` makes of one record: every line of the text
/// (trailing newlines cut first) formatted on its own by `format`.
pub fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.trim_end_matches('\n').split('\n')
}

/// syslog(3)'s timestamp in local time: `Nov 29 19:38:02`, the day padded with a space.
fn stamp(wall: SystemTime) -> String {
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let t = super::mainlog::LocalTime::of(wall);
    let month = MONTHS.get(t.month.saturating_sub(1) as usize).unwrap_or(&"Jan");
    format!("{month} {:2} {:02}:{:02}:{:02}", t.day, t.hour, t.minute, t.second)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn sends_pythons_lines_as_glibc_frames_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let server = UnixDatagram::bind(&path).unwrap();
        let mut s = Syslog { path, sock: None };
        let wall = UNIX_EPOCH + std::time::Duration::from_secs(1_795_981_082);
        for line in lines("web a\nweb b\n\n") {
            s.send(wall, line).unwrap();
        }
        let mut got = Vec::new();
        let mut buf = [0u8; 512];
        for _ in 0..2 {
            let n = server.recv(&mut buf).unwrap();
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        let t = stamp(wall);
        assert_eq!(
            got,
            [format!("<14>{t} supervisord: web a"), format!("<14>{t} supervisord: web b")]
        );
        assert_eq!(t.len(), "Nov 29 19:38:02".len());
        assert_eq!(lines("\n").collect::<Vec<_>>(), [""]);
    }

    #[test]
    fn a_missing_socket_is_an_error() {
        let mut s = Syslog { path: "/nonexistent/log".into(), sock: None };
        assert!(s.send(UNIX_EPOCH, "x").is_err());
    }
}
