//! A minimal JSON-RPC client for tests: one HTTP/1.1 POST per call over the daemon's unix
//! socket, written by hand so the tests depend on nothing the product provides.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

/// Posts raw bytes to `path` on the socket and returns (status, body).
pub fn post(
    sock: &Path,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    let mut s = UnixStream::connect(sock)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)?;
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    let head = String::from_utf8_lossy(&resp[..split]).into_owned();
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Ok((status, resp[split + 4..].to_vec()))
}

/// Calls `method` and returns `Ok(result)` or `Err((code, message))`.
pub fn call(sock: &Path, method: &str, params: Value) -> Result<Value, (i64, String)> {
    let body = json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 1}).to_string();
    let (status, resp) = post(sock, "/weka/jrpc", "application/json", body.as_bytes())
        .map_err(|e| (-1, format!("transport: {e}")))?;
    assert_eq!(status, 200, "HTTP status for {method}: {}", String::from_utf8_lossy(&resp));
    let v: Value = serde_json::from_slice(&resp).map_err(|e| (-1, format!("bad JSON: {e}")))?;
    if let Some(err) = v.get("error") {
        return Err((
            err["code"].as_i64().unwrap_or(0),
            err["message"].as_str().unwrap_or("").to_string(),
        ));
    }
    Ok(v["result"].clone())
}

/// `call` that must succeed.
pub fn ok(sock: &Path, method: &str, params: Value) -> Value {
    call(sock, method, params).unwrap_or_else(|e| panic!("{method} failed: {e:?}"))
}
