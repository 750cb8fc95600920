//! The control plane's defences: the unix socket is never reachable before it has its
//! configured mode and owner, basic auth guards every path of both transports, a server
//! without credentials is announced loudly, log-reading methods read only configured log
//! files, and `user=` drops the daemon's supplementary groups.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use base64::Engine;
use serde_json::json;

use supervisord::sys::users;

use crate::daemon::conf;
use crate::support::daemon::{DEADLINE, Daemon, poll, read_lossy};
use crate::support::{bin, rpc, tempdir};

/// A port nothing listens on right now (the kernel's pick, released at once).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// A `chmod`/`chown` shim for `LD_PRELOAD` that sleeps before each call, which widens any
/// window between creating the socket and securing it from microseconds to a second.
const SLOW_CHMOD: &str = r#"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>
int chmod(const char *p, mode_t m) {
    usleep(500000);
    int (*real)(const char *, mode_t) = (int (*)(const char *, mode_t))dlsym(RTLD_NEXT, "chmod");
    return real(p, m);
}
int chown(const char *p, uid_t u, gid_t g) {
    usleep(500000);
    int (*real)(const char *, uid_t, gid_t) =
        (int (*)(const char *, uid_t, gid_t))dlsym(RTLD_NEXT, "chown");
    return real(p, u, g);
}
"#;

/// A wrapper script that runs the daemon with umask 000 (the worst case for a socket
/// created with default permissions) and slow `chmod`/`chown` calls.
fn slow_umask0_wrapper(dir: &Path) -> PathBuf {
    let src = dir.join("slow.c");
    let so = dir.join("slow.so");
    std::fs::write(&src, SLOW_CHMOD).expect("write shim");
    let out = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&so)
        .arg(&src)
        .arg("-ldl")
        .output()
        .expect("run cc");
    assert!(out.status.success(), "cc failed: {out:?}");
    let path = dir.join("sd-umask0");
    let script = format!(
        "#!/bin/sh\numask 000\nLD_PRELOAD={} exec {} \"$@\"\n",
        so.display(),
        bin().display()
    );
    std::fs::write(&path, script).expect("write wrapper");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// A directory entry as first observed: path, mode bits, owner, is a directory.
type Seen = (PathBuf, u32, u32, bool);

#[test]
fn unix_socket_has_its_mode_and_owner_before_anyone_can_connect() {
    let Ok(nobody) = users::lookup_user("nobody") else {
        println!("no 'nobody' user: cannot check chown");
        return;
    };
    let am_root = nix::unistd::getuid().is_root();
    let chown = if am_root { "chown=nobody\n" } else { "" };
    let wrapper_dir = tempdir();
    let wrapper = slow_umask0_wrapper(wrapper_dir.path());
    // Watch the socket's directory from before the daemon starts: every socket and every
    // directory that ever appears there is stat'ed the moment it is seen.
    let dir = tempdir();
    let seen: Arc<std::sync::Mutex<Vec<Seen>>> = Arc::default();
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (root, seen, done) = (dir.path().to_path_buf(), seen.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let Ok(entries) = std::fs::read_dir(&root) else { continue };
                for e in entries.flatten() {
                    let Ok(meta) = std::fs::symlink_metadata(e.path()) else { continue };
                    let ft = meta.file_type();
                    if ft.is_socket() || ft.is_dir() {
                        let rec = (e.path(), meta.mode() & 0o777, meta.uid(), ft.is_dir());
                        let mut seen = seen.lock().expect("lock");
                        if !seen.contains(&rec) {
                            seen.push(rec);
                        }
                    }
                }
                std::thread::yield_now();
            }
        })
    };
    let sock = dir.path().join("sock");
    let text = format!(
        "[supervisord]\nlogfile={d}/main.log\npidfile={d}/sd.pid\nchildlogdir={d}\n\n\
[unix_http_server]\nfile={d}/sock\nchmod=0760\n{chown}\n\
[rpcinterface:supervisor]\n\
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n",
        d = dir.path().display()
    );
    // The daemon gets its own temp dir for its config; the socket lives in the watched one.
    let d = Daemon::start_program(&wrapper, &text, &[]);
    poll("the socket to answer", DEADLINE, || {
        rpc::call(&sock, "supervisor.getState", json!([])).ok()
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
    done.store(true, Ordering::Relaxed);
    watcher.join().expect("watcher");
    let seen = seen.lock().expect("lock").clone();
    let owner = if am_root { nobody.uid } else { nix::unistd::getuid().as_raw() };
    assert!(seen.iter().any(|(p, ..)| p == &sock), "socket never seen: {seen:?}");
    for (path, mode, uid, is_dir) in &seen {
        if *is_dir {
            // The private directory the socket is bound in: no one else may enter it.
            assert_eq!(*mode & 0o077, 0, "{} is open to others: {mode:o}", path.display());
        } else if path == &sock {
            assert_eq!((*mode, *uid), (0o760, owner), "{} first seen as {mode:o}", path.display());
        } else {
            panic!("a socket at {} ({mode:o}) outside a private directory", path.display());
        }
    }
    // A client that is neither the owner nor in the group cannot connect once it is live.
    if am_root {
        use std::os::unix::process::CommandExt;
        let out = std::process::Command::new("python3")
            .arg("-c")
            .arg("import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])")
            .arg(&sock)
            .uid(65533)
            .gid(65533)
            .output()
            .expect("run python3 as a stranger");
        assert!(!out.status.success(), "a stranger connected: {out:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("Permission denied"), "{out:?}");
    }
}

fn auth_header(creds: Option<&str>) -> String {
    creds.map_or(String::new(), |c| {
        format!("Authorization: Basic {}\r\n", base64::engine::general_purpose::STANDARD.encode(c))
    })
}

/// One request on a fresh connection; the response's status code.
fn status(stream: &mut (impl Read + Write), method: &str, path: &str, creds: Option<&str>) -> u16 {
    let body = if method == "POST" { "<x/>" } else { "" };
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        auth_header(creds),
        body.len()
    );
    let _ = stream.write_all(req.as_bytes());
    // Enough for the status line; tail streams never end.
    let mut buf = [0u8; 64];
    let mut got = Vec::new();
    while got.len() < 16 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    crate::support::xrpc::status_of(&got)
}

#[test]
fn basic_auth_guards_every_path_of_both_transports() {
    let port = free_port();
    let d = Daemon::start(&format!(
        "[supervisord]\nlogfile={{dir}}/main.log\npidfile={{dir}}/sd.pid\nchildlogdir={{dir}}\n\n\
[unix_http_server]\nfile={{dir}}/sock\nusername=user\npassword=secret\n\n\
[inet_http_server]\nport=127.0.0.1:{port}\nusername=user\npassword={{SHA}}e5e9fa1ba31ecd1ae84f75caaa474f3a663f05f4\n\n\
[rpcinterface:supervisor]\n\
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n\
[program:p]\ncommand=sleep 1000\nstartsecs=0\n"
    ));
    let sock = d.sock();
    poll("the socket", DEADLINE, || UnixStream::connect(&sock).ok())
        .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
    poll("the port", DEADLINE, || TcpStream::connect(("127.0.0.1", port)).ok())
        .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
    let paths = [
        ("POST", "/RPC2"),
        ("POST", "/RPC2/anything"),
        ("POST", "/weka/jrpc"),
        ("GET", "/logtail/p"),
        ("GET", "/logtail/p/stderr"),
        ("GET", "/mainlogtail"),
        ("GET", "/"),
        ("GET", "/index.html"),
        ("GET", "/metrics"),
        ("GET", "/healthz"),
        ("GET", "/nonexistent"),
        ("GET", "/../../etc/passwd"),
    ];
    let connect_unix = || UnixStream::connect(&sock).ok();
    for (method, path) in paths {
        for creds in [None, Some("user:wrong"), Some("other:secret"), Some("user"), Some(":")] {
            let mut u = connect_unix().expect("connect unix");
            assert_eq!(status(&mut u, method, path, creds), 401, "unix {method} {path} {creds:?}");
            let mut t = TcpStream::connect(("127.0.0.1", port)).expect("connect tcp");
            assert_eq!(status(&mut t, method, path, creds), 401, "tcp {method} {path} {creds:?}");
        }
        // The right credentials get past auth to the handler (whatever it answers).
        let mut u = connect_unix().expect("connect unix");
        assert_ne!(status(&mut u, method, path, Some("user:secret")), 401, "unix {path}");
        let mut t = TcpStream::connect(("127.0.0.1", port)).expect("connect tcp");
        assert_ne!(status(&mut t, method, path, Some("user:secret")), 401, "tcp {path}");
    }
}

/// One POST of `body` to `path` with extra header lines; the status code.
fn post_with(port: u16, path: &str, headers: &str, body: &str) -> u16 {
    let mut t = TcpStream::connect(("127.0.0.1", port)).expect("connect tcp");
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{headers}Content-Type: text/plain\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    t.write_all(req.as_bytes()).expect("send");
    let mut got = Vec::new();
    let _ = t.read_to_end(&mut got);
    crate::support::xrpc::status_of(&got)
}

#[test]
fn a_web_page_of_another_site_cannot_drive_the_daemon() {
    // A page anywhere can make the visitor's browser POST a "simple" request (text/plain,
    // no preflight) to a local port; the browser then sends the page's Origin. Without
    // credentials configured, that would stop every process.
    let port = free_port();
    let d = Daemon::start(&conf(&format!(
        "[inet_http_server]\nport=127.0.0.1:{port}\n\
         [program:p]\ncommand=sleep 1000\nstartsecs=0\n"
    )));
    d.ready();
    d.wait_state("p", "RUNNING");
    let xml = "<?xml version=\"1.0\"?><methodCall><methodName>supervisor.stopAllProcesses\
               </methodName><params></params></methodCall>";
    let json = r#"{"jsonrpc":"2.0","id":1,"method":"supervisor.stopAllProcesses","params":[]}"#;
    for origin in ["http://evil.example", "null", "http://127.0.0.1:1"] {
        let h = format!("Origin: {origin}\r\n");
        assert_eq!(post_with(port, "/RPC2", &h, xml), 403, "/RPC2 from {origin}");
        assert_eq!(post_with(port, "/weka/jrpc", &h, json), 403, "/weka/jrpc from {origin}");
    }
    assert_eq!(d.info("p")["statename"], "RUNNING", "a refused call ran");
    // The page the daemon serves itself (same origin) and clients that send no Origin
    // (supervisorctl, libraries) are served.
    let same = format!("Origin: http://127.0.0.1:{port}\r\n");
    let getstate = "<methodCall><methodName>supervisor.getState</methodName></methodCall>";
    assert_eq!(post_with(port, "/RPC2", &same, getstate), 200);
    assert_eq!(post_with(port, "/RPC2", "", getstate), 200);
}

#[test]
fn a_server_without_credentials_is_announced_loudly() {
    let port = free_port();
    let d = Daemon::start(&conf(&format!("[inet_http_server]\nport=0.0.0.0:{port}\n")));
    d.ready();
    // Python's wording (supervisor/http.py), once for each open server, at CRIT level.
    for section in ["unix_http_server", "inet_http_server"] {
        d.wait_for_log(&format!(
            "CRIT Server '{section}' running without any HTTP authentication checking"
        ));
    }
    let log = read_lossy(&d.path("main.log"));
    assert!(
        log.contains("CRIT Server 'inet_http_server' running without any HTTP authentication"),
        "{log}"
    );
}

#[test]
fn log_reading_reads_only_configured_log_files() {
    let d = Daemon::start(&conf(
        "[program:p]\ncommand=sh -c 'echo configured; exec sleep 1000'\nstartsecs=0\n\
stdout_logfile={dir}/p.out\n",
    ));
    d.ready();
    d.wait_state("p", "RUNNING");
    let sock = d.sock();
    poll("p's output", DEADLINE, || {
        let v = rpc::call(&sock, "supervisor.readProcessStdoutLog", json!(["p", 0, 0])).ok()?;
        v.as_str()?.contains("configured").then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
    let names = [
        "/etc/passwd",
        "../../../../etc/passwd",
        "p/../../../../etc/passwd",
        "p:../../../../etc/passwd",
        "../p",
        "p\0/etc/passwd",
        "%2e%2e/%2e%2e/etc/passwd",
        "",
        ":",
        "*",
    ];
    for name in names {
        for method in [
            "supervisor.readProcessStdoutLog",
            "supervisor.readProcessStderrLog",
            "supervisor.tailProcessStdoutLog",
            "supervisor.tailProcessStderrLog",
        ] {
            match rpc::call(&sock, method, json!([name, 0, 10000])) {
                Err((code, _)) => assert_eq!(code, 10, "{method}({name:?}) must be BAD_NAME"),
                Ok(v) => panic!("{method}({name:?}) read something: {v}"),
            }
        }
    }
    // The main log methods take no name at all, and read the configured main log.
    let main = rpc::ok(&sock, "supervisor.readLog", json!([0, 0]));
    assert!(main.as_str().unwrap_or("").contains("supervisord started"), "{main}");
    // The tail streams resolve names the same way: no path reaches outside the log files.
    for path in [
        "/logtail/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "/logtail/../../../../etc/passwd",
        "/logtail/%2Fetc%2Fpasswd",
        "/logtail/p/..%2F..%2Fetc%2Fpasswd",
        "/mainlogtail/../../etc/passwd",
    ] {
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let mut s = UnixStream::connect(&sock).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(2))).expect("timeout");
        s.write_all(req.as_bytes()).expect("write");
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got);
        let text = String::from_utf8_lossy(&got);
        assert!(!text.contains("root:"), "{path} served /etc/passwd:\n{text}");
    }
}

#[test]
fn user_switch_drops_the_daemons_supplementary_groups() {
    if !nix::unistd::getuid().is_root() {
        println!("not root: a user switch cannot be tested here");
        return;
    }
    let Ok(nobody) = users::lookup_user("nobody") else {
        println!("no 'nobody' user");
        return;
    };
    // The daemon runs with extra supplementary groups that nobody is not a member of.
    let d = Daemon::start(&conf(
        "[program:p]\ncommand=sh -c 'grep ^Groups: /proc/self/status; id -u; exec sleep 1000'\n\
user=nobody\nstartsecs=0\nstdout_logfile={dir}/p.out\n",
    ));
    d.ready();
    d.wait_state("p", "RUNNING");
    let out = poll("p's groups", DEADLINE, || {
        let t = read_lossy(&d.path("p.out"));
        (t.lines().count() >= 2).then_some(t)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
    let mut lines = out.lines();
    let groups_line = lines.next().unwrap_or_default();
    let mut got: Vec<u32> = groups_line
        .trim_start_matches("Groups:")
        .split_whitespace()
        .filter_map(|g| g.parse().ok())
        .collect();
    got.sort_unstable();
    let mut want = users::supplementary_groups(&nobody, &users::etc_groups());
    want.sort_unstable();
    want.dedup();
    assert_eq!(got, want, "child groups: {out}");
    assert_eq!(lines.next(), Some(nobody.uid.to_string().as_str()), "{out}");
    let daemon_groups = std::fs::read_to_string(format!("/proc/{}/status", d.pid()))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Groups:"))
        .unwrap_or_default()
        .to_string();
    // Not vacuous: the daemon itself had a group its child must not keep (root's 0).
    if daemon_groups.split_whitespace().any(|g| g == "0") {
        assert!(!got.contains(&0), "the child kept root's group: {out}");
    }
}
