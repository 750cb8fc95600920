//! A minimal blocking RPC client for the listeners: one HTTP/1.1 POST per call to
//! `SUPERVISOR_SERVER_URL` (`unix:///path` or `http://host:port`, with
//! `SUPERVISOR_USERNAME`/`SUPERVISOR_PASSWORD` as childutils uses them), JSON-RPC at
//! `/weka/jrpc` for our daemon and XML-RPC at `/RPC2` for Python's.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;

use crate::rpc::jsonrpc::{self, Reply};
use crate::rpc::value::Value;

/// How long one call may take; a daemon that stopped answering must not hang a listener.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the daemon listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Unix(PathBuf),
    Tcp(String),
}

/// The server URL and credentials a child of supervisord gets in its environment.
#[derive(Debug, Clone)]
pub struct Client {
    pub endpoint: Endpoint,
    auth: Option<String>,
}

/// Why a call failed.
#[derive(Debug)]
pub enum CallError {
    /// No connection, or no HTTP answer.
    Transport(io::Error),
    /// The server answered, but not with a reply of the protocol asked for (e.g. Python's
    /// supervisord has no `/weka/jrpc`).
    Protocol(String),
    /// A supervisor fault.
    Fault { code: i64, message: String },
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Transport(e) => write!(f, "cannot reach supervisord: {e}"),
            CallError::Protocol(m) => write!(f, "{m}"),
            CallError::Fault { code, message } => write!(f, "fault {code}: {message}"),
        }
    }
}

/// Parses `unix:///path` or `http://host[:port][/…]`.
pub fn parse_url(url: &str) -> Option<Endpoint> {
    if let Some(path) = url.strip_prefix("unix://") {
        return (!path.is_empty()).then(|| Endpoint::Unix(PathBuf::from(path)));
    }
    let rest = url.strip_prefix("http://")?;
    let host = rest.split('/').next().unwrap_or(rest);
    if host.is_empty() {
        return None;
    }
    Some(Endpoint::Tcp(if host.contains(':') { host.to_string() } else { format!("{host}:80") }))
}

impl Client {
    /// The client for `SUPERVISOR_SERVER_URL`, or `None` when it is missing or unusable.
    pub fn from_env() -> Option<Client> {
        let url = std::env::var("SUPERVISOR_SERVER_URL").ok()?;
        let endpoint = parse_url(&url)?;
        let user = std::env::var("SUPERVISOR_USERNAME").unwrap_or_default();
        let pass = std::env::var("SUPERVISOR_PASSWORD").unwrap_or_default();
        let auth = (!user.is_empty())
            .then(|| base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}")));
        Some(Client { endpoint, auth })
    }

    pub fn new(endpoint: Endpoint) -> Client {
        Client { endpoint, auth: None }
    }

    /// One POST; returns the status and the body.
    pub fn post(&self, path: &str, content_type: &str, body: &[u8]) -> io::Result<(u16, Vec<u8>)> {
        let mut head = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        if let Some(a) = &self.auth {
            head.push_str(&format!("Authorization: Basic {a}\r\n"));
        }
        head.push_str("\r\n");
        let mut resp = Vec::new();
        match &self.endpoint {
            Endpoint::Unix(p) => {
                let mut s = UnixStream::connect(p)?;
                s.set_read_timeout(Some(CALL_TIMEOUT))?;
                s.write_all(head.as_bytes())?;
                s.write_all(body)?;
                s.read_to_end(&mut resp)?;
            }
            Endpoint::Tcp(addr) => {
                let mut s = TcpStream::connect(addr)?;
                s.set_read_timeout(Some(CALL_TIMEOUT))?;
                s.write_all(head.as_bytes())?;
                s.write_all(body)?;
                s.read_to_end(&mut resp)?;
            }
        }
        parse_response(&resp)
    }

    /// A JSON-RPC call at `/weka/jrpc`.
    pub fn json(&self, method: &str, params: &[Value]) -> Result<Value, CallError> {
        let body = jsonrpc::request(method, params, 1);
        let (status, resp) = self
            .post("/weka/jrpc", "application/json", body.as_bytes())
            .map_err(CallError::Transport)?;
        if status != 200 {
            return Err(CallError::Protocol(format!("HTTP {status} from /weka/jrpc")));
        }
        match jsonrpc::parse_reply(&resp).map_err(CallError::Protocol)? {
            Reply::Result(v) => Ok(v),
            Reply::Error { code, message } => Err(CallError::Fault { code: code.into(), message }),
        }
    }

    /// An XML-RPC call at `/RPC2`; returns the response document.
    pub fn xml(&self, method: &str, params: &[Value]) -> Result<String, CallError> {
        let body = crate::rpc::xmlrpc::call(method, params);
        let (status, resp) =
            self.post("/RPC2", "text/xml", body.as_bytes()).map_err(CallError::Transport)?;
        if status != 200 {
            return Err(CallError::Protocol(format!("HTTP {status} from /RPC2")));
        }
        let doc = String::from_utf8_lossy(&resp).into_owned();
        if doc.contains("<fault>") {
            let code = xml_member_int(&doc, "faultCode").unwrap_or(0);
            let message = xml_member_string(&doc, "faultString").unwrap_or_default();
            return Err(CallError::Fault { code, message });
        }
        Ok(doc)
    }
}

/// Splits an HTTP response into status and body, undoing chunked encoding.
fn parse_response(resp: &[u8]) -> io::Result<(u16, Vec<u8>)> {
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no HTTP header end"))?;
    let head = String::from_utf8_lossy(resp.get(..split).unwrap_or_default()).to_ascii_lowercase();
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = resp.get(split + 4..).unwrap_or_default();
    if head.contains("transfer-encoding: chunked") {
        return Ok((status, dechunk(body)));
    }
    Ok((status, body.to_vec()))
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = body.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(body.get(..eol).unwrap_or_default()).into_owned();
        let size_hex = size_text.split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size_hex, 16) else { break };
        if size == 0 {
            break;
        }
        let start = eol + 2;
        let Some(chunk) = body.get(start..start + size) else { break };
        out.extend_from_slice(chunk);
        body = body.get(start + size + 2..).unwrap_or_default();
    }
    out
}

/// The text between `<name>{name}</name>` and the end of its value, in an XML-RPC struct.
fn xml_member_value<'a>(doc: &'a str, name: &str) -> Option<&'a str> {
    let key = format!("<name>{name}</name>");
    let at = doc.find(&key)? + key.len();
    let rest = doc.get(at..)?;
    let end = rest.find("</value>")?;
    rest.get(..end)
}

/// An `<int>`/`<i4>` member of an XML-RPC struct.
pub fn xml_member_int(doc: &str, name: &str) -> Option<i64> {
    let v = xml_member_value(doc, name)?;
    let start = ["<int>", "<i4>", "<i8>"].iter().find_map(|t| v.find(t).map(|at| at + t.len()))?;
    let rest = v.get(start..)?;
    rest.get(..rest.find("</")?)?.trim().parse().ok()
}

/// A `<string>` member of an XML-RPC struct (entities left as sent).
pub fn xml_member_string(doc: &str, name: &str) -> Option<String> {
    let v = xml_member_value(doc, name)?;
    let start = v.find("<string>")? + "<string>".len();
    let end = v.find("</string>")?;
    v.get(start..end).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(parse_url("unix:///tmp/s.sock"), Some(Endpoint::Unix("/tmp/s.sock".into())));
        assert_eq!(
            parse_url("http://127.0.0.1:9001"),
            Some(Endpoint::Tcp("127.0.0.1:9001".into()))
        );
        assert_eq!(parse_url("http://localhost/RPC2"), Some(Endpoint::Tcp("localhost:80".into())));
        assert_eq!(parse_url("unix://"), None);
        assert_eq!(parse_url("ftp://x"), None);
    }

    #[test]
    fn responses_plain_and_chunked() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
        assert_eq!(parse_response(r).unwrap(), (200, b"hi".to_vec()));
        let r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_response(r).unwrap(), (200, b"abcde".to_vec()));
        let r = b"HTTP/1.0 404 Not Found\r\n\r\n";
        assert_eq!(parse_response(r).unwrap().0, 404);
        assert!(parse_response(b"garbage").is_err());
    }

    #[test]
    fn xml_members() {
        let doc = "<value><struct>\n<member>\n<name>faultCode</name>\n<value><int>10</int></value>\n</member>\n<member>\n<name>faultString</name>\n<value><string>BAD_NAME: x</string></value>\n</member>\n<member><name>exitstatus</name><value><i4>-64</i4></value></member></struct></value>";
        assert_eq!(xml_member_int(doc, "faultCode"), Some(10));
        assert_eq!(xml_member_string(doc, "faultString").as_deref(), Some("BAD_NAME: x"));
        assert_eq!(xml_member_int(doc, "exitstatus"), Some(-64));
        assert_eq!(xml_member_int(doc, "nope"), None);
    }
}
