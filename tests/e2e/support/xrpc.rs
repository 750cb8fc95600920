//! XML-RPC and raw-HTTP clients for tests: requests are built with the crate's own XML-RPC
//! writer (`supervisord::rpc::xmlrpc::call`) and parsed back with its reader, and raw bytes
//! can be sent to see exactly what goes over the socket.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use supervisord::fault::Fault;
use supervisord::rpc::{Value, xmlrpc};

/// `POST /RPC2` with a `<methodCall>` and returns (HTTP status, raw body).
pub fn raw_call(sock: &Path, method: &str, params: &[Value]) -> (u16, String) {
    raw_body(sock, xmlrpc::call(method, params).as_bytes())
}

/// `POST /RPC2` with any body; (HTTP status, body as text).
pub fn raw_body(sock: &Path, body: &[u8]) -> (u16, String) {
    let (status, body) = super::rpc::post(sock, "/RPC2", "text/xml", body)
        .unwrap_or_else(|e| panic!("POST /RPC2 on {}: {e}", sock.display()));
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// One XML-RPC call: its value or its fault. Panics on anything but an HTTP 200 with a
/// well-formed response.
pub fn call(sock: &Path, method: &str, params: &[Value]) -> Result<Value, Fault> {
    let (status, body) = raw_call(sock, method, params);
    assert_eq!(status, 200, "HTTP status of {method}{params:?}: {body}");
    xmlrpc::parse_response(body.as_bytes())
        .unwrap_or_else(|e| panic!("bad XML-RPC response to {method}: {e:?}\n{body}"))
}

/// `call` that must succeed.
pub fn ok(sock: &Path, method: &str, params: &[Value]) -> Value {
    call(sock, method, params).unwrap_or_else(|f| panic!("{method}{params:?} faulted: {f:?}"))
}

/// Writes `bytes` on a fresh connection, half-closes it, and returns everything the server
/// sent back before closing (or before `timeout`).
pub fn raw(sock: &Path, bytes: &[u8], timeout: Duration) -> Vec<u8> {
    let Ok(mut s) = UnixStream::connect(sock) else { return Vec::new() };
    let _ = s.set_read_timeout(Some(timeout));
    let _ = s.write_all(bytes);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

/// The status code of a raw HTTP response.
pub fn status_of(resp: &[u8]) -> u16 {
    let head = String::from_utf8_lossy(resp.get(..resp.len().min(64)).unwrap_or_default());
    head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// Splits a raw response into (lower-cased header block, body).
pub fn split_response(resp: &[u8]) -> (String, Vec<u8>) {
    match resp.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => {
            (String::from_utf8_lossy(&resp[..i]).to_ascii_lowercase(), resp[i + 4..].to_vec())
        }
        None => (String::from_utf8_lossy(resp).to_ascii_lowercase(), Vec::new()),
    }
}

pub fn s(v: &str) -> Value {
    Value::str(v)
}

pub fn i(v: i64) -> Value {
    Value::Int(v)
}

pub fn b(v: bool) -> Value {
    Value::Bool(v)
}
