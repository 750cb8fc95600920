//! The HTTP client against a tiny server on a unix socket in a temp dir (std threads).

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::thread;

use super::*;

/// The requests one test server saw, per connection: (head, body).
type Seen = Vec<Vec<(String, Vec<u8>)>>;

fn sock_dir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("ctlhttp").tempdir_in("/tmp").expect("tempdir")
}

/// Reads one request (head and Content-Length body) from `s`.
fn read_request(s: &mut UnixStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).ok()? == 0 {
            return None;
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).ok()?;
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).ok()?;
    Some((head, body))
}

fn ok_json(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Serves `conns` connections; `answer(request_index, head, body)` gives the raw reply
/// bytes and whether to close afterwards. Returns the requests seen per connection.
fn serve(
    path: PathBuf,
    conns: usize,
    answer: impl Fn(usize, &str, &[u8]) -> (Vec<u8>, bool) + Send + 'static,
) -> (UnixListener, thread::JoinHandle<Seen>) {
    let listener = UnixListener::bind(&path).expect("bind");
    let l2 = listener.try_clone().expect("clone");
    let handle = thread::spawn(move || {
        let mut seen = Vec::new();
        let mut n = 0;
        for _ in 0..conns {
            let Ok((mut s, _)) = l2.accept() else { break };
            let mut on_conn = Vec::new();
            while let Some((head, body)) = read_request(&mut s) {
                let (reply, close) = answer(n, &head, &body);
                n += 1;
                on_conn.push((head, body));
                if s.write_all(&reply).is_err() || close {
                    break;
                }
            }
            seen.push(on_conn);
        }
        seen
    });
    (listener, handle)
}

fn url(path: &std::path::Path) -> String {
    format!("unix://{}", path.display())
}

#[test]
fn request_bytes_and_keep_alive_reuse() {
    let dir = sock_dir();
    let path = dir.path().join("s");
    let (_l, h) = serve(path.clone(), 1, |n, _, _| {
        (ok_json(&format!("{{\"jsonrpc\":\"2.0\",\"result\":{n},\"id\":1}}")), n == 1)
    });
    let mut c = Client::new(&url(&path), Some("user"), Some("123"));
    assert_eq!(c.call("supervisor.getPID", &[]), Ok(Value::Int(0)));
    assert_eq!(c.call("supervisor.getProcessInfo", &[Value::str("a<b")]), Ok(Value::Int(1)));
    let seen = h.join().expect("server");
    assert_eq!(seen.len(), 1, "both calls on one connection");
    let (head, body) = &seen[0][0];
    let want_body = br#"{"jsonrpc":"2.0","method":"supervisor.getPID","params":[],"id":1}"#;
    assert_eq!(body, want_body.as_slice());
    assert_eq!(
        head,
        &format!(
            "POST /weka/jrpc HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
             Accept: application/json\r\nContent-Length: {}\r\n\
             Authorization: Basic dXNlcjoxMjM=\r\n\r\n",
            want_body.len()
        )
    );
    let (_, body) = &seen[0][1];
    assert_eq!(
        body,
        br#"{"jsonrpc":"2.0","method":"supervisor.getProcessInfo","params":["a<b"],"id":2}"#
            .as_slice()
    );
}

#[test]
fn no_auth_header_without_both_username_and_password() {
    let dir = sock_dir();
    let path = dir.path().join("s");
    let (_l, h) = serve(path.clone(), 1, |_, _, _| (ok_json(r#"{"result":true}"#), true));
    let mut c = Client::new(&url(&path), Some("user"), None);
    assert_eq!(c.call("x.y", &[]), Ok(Value::Bool(true)));
    let seen = h.join().expect("server");
    assert!(!seen[0][0].0.contains("Authorization"));
}

#[test]
fn a_closed_keep_alive_connection_is_reopened_once() {
    let dir = sock_dir();
    let path = dir.path().join("s");
    // The first connection answers once and closes without saying so.
    let (_l, h) = serve(path.clone(), 2, |_, _, _| (ok_json(r#"{"result":"ok"}"#), true));
    let mut c = Client::new(&url(&path), None, None);
    assert_eq!(c.call("a.b", &[]), Ok(Value::str("ok")));
    assert_eq!(c.call("a.b", &[]), Ok(Value::str("ok")));
    let seen = h.join().expect("server");
    assert_eq!(seen.iter().map(Vec::len).collect::<Vec<_>>(), vec![1, 1]);
}

#[test]
fn faults_401_and_other_statuses() {
    let dir = sock_dir();
    let path = dir.path().join("s");
    let (_l, h) = serve(path.clone(), 2, |n, _, _| {
        match n {
        0 => (ok_json(r#"{"jsonrpc":"2.0","error":{"code":10,"message":"BAD_NAME: x"},"id":1}"#), false),
        1 => (
            b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"default\"\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
                .to_vec(),
            true,
        ),
        _ => (b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 3\r\n\r\nbad".to_vec(), true),
    }
    });
    let mut c = Client::new(&url(&path), None, None);
    assert_eq!(
        c.call("a.b", &[]),
        Err(CallError::Fault(Fault { code: 10, string: "BAD_NAME: x".into() }))
    );
    assert_eq!(
        c.call("a.b", &[]),
        Err(CallError::Http { status: 401, reason: "Unauthorized".into() })
    );
    assert_eq!(
        c.call("a.b", &[]),
        Err(CallError::Http { status: 500, reason: "Internal Server Error".into() })
    );
    h.join().expect("server");
}

#[test]
fn chunked_and_split_responses() {
    let dir = sock_dir();
    let path = dir.path().join("s");
    let (_l, h) = serve(path.clone(), 1, |_, _, _| {
        (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\n{\"res\r\nb;x=y\r\nult\":\"\xc3\x98\"}\r\n0\r\n\r\n"
                .to_vec(),
            false,
        )
    });
    let mut c = Client::new(&url(&path), None, None);
    assert_eq!(c.call("a.b", &[]), Ok(Value::str("Ø")));
    drop(c);
    h.join().expect("server");
}

#[test]
fn missing_socket_and_refused_connection_keep_their_errno() {
    let dir = sock_dir();
    let missing = dir.path().join("none");
    let mut c = Client::new(&url(&missing), None, None);
    assert!(matches!(c.call("a.b", &[]), Err(CallError::Io { errno: Some(libc::ENOENT), .. })));
    // A socket file nobody listens on any more.
    let stale = dir.path().join("stale");
    drop(UnixListener::bind(&stale).expect("bind"));
    let mut c = Client::new(&url(&stale), None, None);
    assert!(matches!(
        c.call("a.b", &[]),
        Err(CallError::Io { errno: Some(libc::ECONNREFUSED), .. })
    ));
}

#[test]
fn garbage_never_panics() {
    let replies: Vec<&[u8]> = vec![
        b"",
        b"hello\r\n\r\n",
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{\"r",
        b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnull",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n\xff\xfe",
        b"HTTP/1.0 200 OK\r\n\r\n{\"result\":1}",
    ];
    for (n, reply) in replies.iter().enumerate() {
        let mut r = std::io::BufReader::new(*reply);
        let got = read_response(&mut r);
        if n == replies.len() - 1 {
            let resp = got.ok().expect("an HTTP/1.0 body runs to EOF");
            assert_eq!((resp.body.as_slice(), resp.keep_alive), (&b"{\"result\":1}"[..], false));
        } else if let Ok(resp) = got {
            assert!(
                jsonrpc::parse_reply::<Value>(&resp.body).is_err() || resp.status != 200,
                "case {n}"
            );
        }
    }
    // A head that never ends is cut off, not buffered forever.
    let endless = vec![b'a'; MAX_HEAD * 2];
    assert!(read_response(&mut std::io::BufReader::new(endless.as_slice())).is_err());
}

#[test]
fn url_parsing() {
    assert_eq!(parse_url("unix:///tmp/s.sock"), Ok(Endpoint::Unix("/tmp/s.sock".into())));
    assert_eq!(
        parse_url("http://127.0.0.1:9001"),
        Ok(Endpoint::Tcp { host: "127.0.0.1".into(), port: 9001 })
    );
    assert_eq!(parse_url("http://Host/RPC2"), Ok(Endpoint::Tcp { host: "host".into(), port: 80 }));
    assert_eq!(parse_url("http://u:p@[::1]:7/"), Ok(Endpoint::Tcp { host: "::1".into(), port: 7 }));
    assert_eq!(
        parse_url("x:y"),
        Err(CallError::BadUrl("Unknown protocol for serverurl x:y".into()))
    );
    assert!(matches!(parse_url("http://h:99999"), Err(CallError::BadUrl(_))));
}

#[test]
fn post_sends_any_path_and_type_and_returns_any_status() {
    let dir = sock_dir();
    let path = dir.path().join("s");
    let (_l, h) = serve(path.clone(), 1, |n, _, _| match n {
        0 => (b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n<x>1</x>".to_vec(), false),
        _ => (b"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\ngone".to_vec(), true),
    });
    let mut c = Client::new(&url(&path), None, None);
    c.set_timeout(Some(Duration::from_secs(5)));
    assert_eq!(c.post("/RPC2", "text/xml", b"<call/>"), Ok((200, b"<x>1</x>".to_vec())));
    assert_eq!(c.post("/RPC2", "text/xml", b""), Ok((404, b"gone".to_vec())));
    let seen = h.join().expect("server");
    let (head, body) = &seen[0][0];
    assert!(head.starts_with("POST /RPC2 HTTP/1.1\r\n"), "{head}");
    assert!(head.contains("Content-Type: text/xml\r\n"), "{head}");
    assert_eq!(body, b"<call/>");
}

#[test]
fn a_silent_server_is_a_timeout_not_a_hang() {
    let dir = sock_dir();
    let path = dir.path().join("s");
    let listener = UnixListener::bind(&path).expect("bind");
    let mut c = Client::new(&url(&path), None, None);
    c.set_timeout(Some(Duration::from_millis(200)));
    // Accepted by the kernel's backlog, never answered.
    let got = c.post("/weka/jrpc", "application/json", b"{}");
    assert!(matches!(got, Err(CallError::Io { .. })), "{got:?}");
    drop(listener);
}

#[test]
fn status_rows_come_from_the_slim_method_or_else_get_all_process_info() {
    use crate::ctl::commands::{ProcessRow, Rpc};
    let row = r#"{"name":"a","group":"g","state":20,"statename":"RUNNING","pid":7,"description":"pid 7, uptime 0:00:01"}"#;
    let want = vec![ProcessRow {
        name: "a".into(),
        group: "g".into(),
        statename: "RUNNING".into(),
        description: "pid 7, uptime 0:00:01".into(),
        state: 20,
        pid: 7,
    }];
    // Our daemon: one call.
    let dir = sock_dir();
    let path = dir.path().join("s");
    let reply = format!(r#"{{"jsonrpc":"2.0","result":[{row}],"id":1}}"#);
    let (_l, h) = serve(path.clone(), 1, move |_, _, _| (ok_json(&reply), true));
    let mut c = Client::new(&url(&path), None, None);
    assert_eq!(Rpc::all_process_info(&mut c), Ok(want.clone()));
    let seen = h.join().expect("server");
    assert_eq!(seen.concat().len(), 1);
    assert!(String::from_utf8_lossy(&seen[0][0].1).contains("\"weka.getAllProcessRows\""));
    // A daemon without it (UNKNOWN_METHOD): getAllProcessInfo, whose extra members are
    // skipped.
    let path = dir.path().join("s2");
    let full = format!(
        r#"{{"jsonrpc":"2.0","result":[{}],"id":2}}"#,
        row.replace("\"pid\":7", "\"spawnerr\":\"\",\"stdout_logfile\":\"/x\",\"pid\":7")
    );
    let (_l, h) = serve(path.clone(), 1, move |n, _, _| match n {
        0 => (
            ok_json(r#"{"jsonrpc":"2.0","error":{"code":1,"message":"UNKNOWN_METHOD"},"id":1}"#),
            false,
        ),
        _ => (ok_json(&full), true),
    });
    let mut c = Client::new(&url(&path), None, None);
    assert_eq!(Rpc::all_process_info(&mut c), Ok(want));
    let seen = h.join().expect("server");
    let methods: Vec<String> =
        seen.concat().iter().map(|(_, b)| String::from_utf8_lossy(b).into_owned()).collect();
    assert_eq!(methods.len(), 2, "{methods:?}");
    assert!(methods[1].contains("\"supervisor.getAllProcessInfo\""), "{methods:?}");
    // Any other fault is the answer, not a reason to ask again.
    let path = dir.path().join("s3");
    let (_l, h) = serve(path.clone(), 1, |_, _, _| {
        (ok_json(r#"{"jsonrpc":"2.0","error":{"code":6,"message":"SHUTDOWN_STATE"},"id":1}"#), true)
    });
    let mut c = Client::new(&url(&path), None, None);
    assert_eq!(
        Rpc::all_process_info(&mut c),
        Err(CallError::Fault(Fault { code: 6, string: "SHUTDOWN_STATE".into() }))
    );
    assert_eq!(h.join().expect("server").concat().len(), 1);
}
