//! The listening socket of an `[fcgi-program:x]`, created by the daemon and given to every
//! process of the group as its fd 0, as Python's `SocketManager` does: a TCP socket with
//! `SO_REUSEADDR` bound to an IPv4 address, or a unix socket (any old file at the path
//! removed first) with its owner and mode set; then `listen(socket_backlog or SOMAXCONN)`.

use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;

use crate::config::FcgiSocket;

/// Python's text for the socket (`SocketConfig.__str__`): `tcp://host:port` with the host
/// lower-cased, or `unix:///path`.
pub fn url(socket: &FcgiSocket) -> String {
    match socket {
        FcgiSocket::Unix(path) => format!("unix://{}", path.display()),
        FcgiSocket::Tcp { host, port } => format!("tcp://{}:{port}", host.to_lowercase()),
    }
}

/// Creates, binds and listens. `owner` is `socket_owner` as `user[:group]` (names or ids);
/// `mode` applies to unix sockets (Python's default is 0700).
pub fn listen(
    socket: &FcgiSocket,
    owner: Option<&str>,
    mode: Option<u32>,
    backlog: Option<u32>,
) -> io::Result<OwnedFd> {
    let fd: OwnedFd = match socket {
        FcgiSocket::Tcp { host, port } => {
            let addr = (host.to_lowercase().as_str(), *port)
                .to_socket_addrs()?
                .find(SocketAddr::is_ipv4)
                .ok_or_else(|| io::Error::other(format!("no IPv4 address for {host}")))?;
            // std sets SO_REUSEADDR before binding, as Python's socket config does.
            TcpListener::bind(addr)?.into()
        }
        FcgiSocket::Unix(path) => {
            if std::fs::symlink_metadata(path).is_ok() {
                std::fs::remove_file(path)?;
            }
            let listener = UnixListener::bind(path)?;
            let set = || -> io::Result<()> {
                if let Some(owner) = owner {
                    let (uid, gid) = resolve_owner(owner)?;
                    std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
                }
                let mode = mode.unwrap_or(0o700);
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            };
            if let Err(e) = set() {
                let _ = std::fs::remove_file(path);
                return Err(e);
            }
            listener.into()
        }
    };
    let backlog = backlog.map_or(libc::SOMAXCONN, |b| i32::try_from(b).unwrap_or(i32::MAX));
    // SAFETY: listen(2) on a socket we own; a second listen only sets the backlog.
    if unsafe { libc::listen(fd.as_raw_fd(), backlog) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

/// `user[:group]`: the user's primary group unless a group is named.
fn resolve_owner(spec: &str) -> io::Result<(u32, u32)> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let u = super::users::lookup_user(user).map_err(|e| io::Error::other(e.to_string()))?;
    let gid = match group {
        Some(g) => super::users::lookup_group(g).map_err(|e| io::Error::other(e.to_string()))?.gid,
        None => u.gid,
    };
    Ok((u.uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_socket_replaces_a_stale_file_and_gets_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.sock");
        std::fs::write(&path, "stale").unwrap();
        let sock = FcgiSocket::Unix(path.clone());
        let fd = listen(&sock, None, Some(0o660), Some(5)).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660);
        let _client = std::os::unix::net::UnixStream::connect(&path).unwrap();
        drop(fd);
        assert_eq!(url(&sock), format!("unix://{}", path.display()));
    }

    #[test]
    fn tcp_socket_listens_on_ipv4() {
        let sock = FcgiSocket::Tcp { host: "LOCALHOST".into(), port: 0 };
        let fd = listen(&sock, None, None, None).unwrap();
        let l = TcpListener::from(fd);
        let addr = l.local_addr().unwrap();
        assert!(addr.is_ipv4());
        let _client = std::net::TcpStream::connect(addr).unwrap();
        assert_eq!(
            url(&FcgiSocket::Tcp { host: "LocalHost".into(), port: 9 }),
            "tcp://localhost:9"
        );
    }
}
