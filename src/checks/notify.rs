//! `notify`: systemd's `sd_notify` protocol. The daemon binds one unix datagram socket
//! per process, in a directory it owns, and passes its path in the child's
//! `NOTIFY_SOCKET`; the child (or `systemd-notify --ready`, or any sd_notify library)
//! sends newline-separated `KEY=VALUE` datagrams, `READY=1` meaning ready.
//!
//! The protocol also allows abstract-namespace paths (`@name`); we always give a
//! filesystem path, which every client supports. The socket file belongs to the
//! process's user with mode 0600, so only that user (and root) can declare it ready.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The environment variable that carries the socket path.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// `sockaddr_un.sun_path` holds 108 bytes including the terminating NUL.
const MAX_PATH: usize = 107;

/// What one datagram said. Unknown keys are ignored, as systemd ignores them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Notification {
    /// `READY=1`.
    pub ready: bool,
    /// `STATUS=…`: a free-form status line.
    pub status: Option<String>,
    /// `STOPPING=1`.
    pub stopping: bool,
    /// `RELOADING=1`.
    pub reloading: bool,
    /// `ERRNO=n`: the service's failure reason as an errno.
    pub errno: Option<i32>,
    /// `MAINPID=n`.
    pub mainpid: Option<u32>,
}

/// Parses one datagram. Lines are `KEY=VALUE`; a later key wins; lines without `=` and
/// bytes that are not UTF-8 are skipped or replaced, never an error.
pub fn parse(datagram: &[u8]) -> Notification {
    let mut n = Notification::default();
    for line in datagram.split(|&b| b == b'\n') {
        let line = String::from_utf8_lossy(line);
        let Some((key, value)) = line.split_once('=') else { continue };
        match key {
            "READY" => n.ready = value == "1",
            "STATUS" => n.status = Some(value.to_string()),
            "STOPPING" => n.stopping = value == "1",
            "RELOADING" => n.reloading = value == "1",
            "ERRNO" => n.errno = value.trim().parse().ok(),
            "MAINPID" => n.mainpid = value.trim().parse().ok(),
            _ => {}
        }
    }
    n
}

/// A directory for the notify sockets, created mode 0711 (children of other users can
/// reach their own socket, nobody can list the others) and removed with its contents on
/// drop.
#[derive(Debug)]
pub struct NotifyDir {
    path: PathBuf,
}

impl NotifyDir {
    /// Creates `path` (it must not exist yet).
    pub fn create(path: &Path) -> io::Result<NotifyDir> {
        std::fs::create_dir(path)?;
        let dir = NotifyDir { path: path.to_path_buf() };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o711))?;
        Ok(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the socket of process `group:name` goes.
    pub fn socket_path(&self, group: &str, name: &str) -> PathBuf {
        self.path.join(format!("{group}:{name}.sock"))
    }
}

impl Drop for NotifyDir {
    fn drop(&mut self) {
        // Best effort at shutdown: a leftover directory in a temp dir harms nothing.
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// One process's notify socket; the file is removed on drop.
#[derive(Debug)]
pub struct NotifySocket {
    sock: tokio::net::UnixDatagram,
    path: PathBuf,
}

impl NotifySocket {
    /// Binds a datagram socket at `path` (replacing a stale file left there), owned by
    /// `owner` (the process's `user=` uid; `None` keeps the daemon's) with mode 0600.
    /// Needs a tokio runtime.
    pub fn bind(path: &Path, owner: Option<u32>) -> io::Result<NotifySocket> {
        if path.as_os_str().len() > MAX_PATH {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("notify socket path {} is longer than {MAX_PATH} bytes", path.display()),
            ));
        }
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let sock = tokio::net::UnixDatagram::bind(path)?;
        let me = NotifySocket { sock, path: path.to_path_buf() };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        if let Some(uid) = owner {
            nix::unistd::chown(path, Some(nix::unistd::Uid::from_raw(uid)), None)
                .map_err(io::Error::from)?;
        }
        Ok(me)
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The `NOTIFY_SOCKET=<path>` pair for the child's environment.
    pub fn env(&self) -> (String, String) {
        (NOTIFY_SOCKET.to_string(), self.path.to_string_lossy().into_owned())
    }

    /// The next datagram, parsed. Datagrams longer than 4 KiB are cut (sd_notify
    /// messages are a few bytes).
    pub async fn recv(&self) -> io::Result<Notification> {
        let mut buf = [0u8; 4096];
        let n = self.sock.recv(&mut buf).await?;
        Ok(parse(buf.get(..n).unwrap_or_default()))
    }

    /// Waits for `READY=1`, returning the last `STATUS=` seen with it or before it.
    pub async fn ready(&self) -> io::Result<Option<String>> {
        let mut status = None;
        loop {
            let n = self.recv().await?;
            if n.status.is_some() {
                status = n.status;
            }
            if n.ready {
                return Ok(status);
            }
        }
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        // The process is gone or being replaced; a stale file is replaced at next bind.
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sd_notify_datagrams() {
        assert_eq!(parse(b"READY=1"), Notification { ready: true, ..Default::default() });
        assert_eq!(
            parse(b"READY=1\nSTATUS=Serving on :80\nMAINPID=42\n"),
            Notification {
                ready: true,
                status: Some("Serving on :80".into()),
                mainpid: Some(42),
                ..Default::default()
            }
        );
        assert_eq!(
            parse(b"STATUS=a=b\nERRNO=2\nSTOPPING=1\nRELOADING=1\nX_CUSTOM=1\nnoequals\n\xff"),
            Notification {
                status: Some("a=b".into()),
                errno: Some(2),
                stopping: true,
                reloading: true,
                ..Default::default()
            }
        );
        assert!(!parse(b"READY=0").ready);
        assert_eq!(parse(b""), Notification::default());
    }

    #[tokio::test]
    async fn a_client_declares_readiness_over_the_socket() {
        let tmp = tempfile::Builder::new().prefix("sdnfy").tempdir_in("/tmp").expect("tmp");
        let dir = NotifyDir::create(&tmp.path().join("notify")).expect("dir");
        let mode = std::fs::metadata(dir.path()).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o711);
        let path = dir.socket_path("web", "web_0");
        assert!(path.ends_with("web:web_0.sock"));
        // A stale file from an earlier run is replaced.
        std::fs::write(&path, b"stale").expect("stale file");
        let sock = NotifySocket::bind(&path, None).expect("bind");
        assert_eq!(sock.env(), ("NOTIFY_SOCKET".to_string(), path.to_string_lossy().into_owned()));
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        let client = std::os::unix::net::UnixDatagram::unbound().expect("client");
        client.send_to(b"STATUS=warming up", &path).expect("send");
        client.send_to(b"READY=1", &path).expect("send");
        assert_eq!(sock.ready().await.expect("ready"), Some("warming up".to_string()));
        drop(sock);
        assert!(!path.exists(), "the socket file goes with the socket");
        let dir_path = dir.path().to_path_buf();
        drop(dir);
        assert!(!dir_path.exists());
    }

    #[tokio::test]
    async fn too_long_a_path_is_a_clear_error() {
        let long = PathBuf::from(format!("/tmp/{}", "x".repeat(120)));
        let err = NotifySocket::bind(&long, None).expect_err("too long");
        assert!(err.to_string().contains("longer than 107 bytes"), "{err}");
    }
}
