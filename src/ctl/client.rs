//! The blocking JSON-RPC client supervisorctl speaks: a minimal HTTP/1.1 client over a
//! `UnixStream` or `TcpStream` (`POST /weka/jrpc`, Content-Length framing, keep-alive so a
//! command that needs several calls reuses one connection, optional basic auth).
//!
//! No runtime and no HTTP library: a `status` run is one connect, one write and one read,
//! which is what keeps it under a millisecond. Every failure is classified into
//! [`CallError`] so that `commands` can print what Python's supervisorctl prints.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use base64::Engine as _;

use crate::fault::Fault;
use crate::rpc::jsonrpc::{self, Reply};
use crate::rpc::value::Value;

/// Where our JSON-RPC endpoint lives on the daemon's HTTP server (docs/control-plane.md).
pub const JRPC_PATH: &str = "/weka/jrpc";

/// A response head or body bigger than this is garbage, not a reply.
const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: u64 = 1 << 30;

/// Why one RPC call did not return a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The daemon answered with a supervisor fault.
    Fault(Fault),
    /// Connecting, writing or reading failed (errno when the OS gave one).
    Io { errno: Option<i32>, message: String },
    /// The host name of an `http://` URL did not resolve (Python's `socket.gaierror`).
    Resolve(String),
    /// The URL is neither `http://` nor `unix://`.
    BadUrl(String),
    /// A status other than 200 (Python's `xmlrpc.client.ProtocolError`).
    Http { status: u16, reason: String },
    /// The bytes that came back are not an HTTP response with a JSON-RPC reply.
    BadReply(String),
}

impl CallError {
    fn io(e: &io::Error) -> CallError {
        CallError::Io { errno: e.raw_os_error(), message: e.to_string() }
    }
}

/// Where the server is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Unix(String),
    Tcp { host: String, port: u16 },
}

/// Parses a server URL the way `SupervisorTransport` does: `unix://<path>` or
/// `http://host[:port][/…]` (port 80 by default); anything else is
/// `Unknown protocol for serverurl <url>`.
pub fn parse_url(url: &str) -> Result<Endpoint, CallError> {
    let bad = || CallError::BadUrl(format!("Unknown protocol for serverurl {url}"));
    if let Some(path) = url.strip_prefix("unix://") {
        return Ok(Endpoint::Unix(path.to_string()));
    }
    let Some(rest) = url.strip_prefix("http://") else { return Err(bad()) };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    // userinfo@host is accepted by urlparse and ignored for the connection.
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or_else(bad)?;
        (h.to_string(), after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (hostport.to_string(), None),
        }
    };
    let port = match port {
        None | Some("") => 80,
        Some(p) => p.parse::<u16>().map_err(|_| {
            CallError::BadUrl(format!("Port could not be cast to integer value as '{p}'"))
        })?,
    };
    Ok(Endpoint::Tcp { host: host.to_ascii_lowercase(), port })
}

enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Unix(s) => s.as_fd(),
            Stream::Tcp(s) => s.as_fd(),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.flush(),
            Stream::Tcp(s) => s.flush(),
        }
    }
}

/// One supervisord server, reached over one keep-alive connection opened on first use.
pub struct Client {
    serverurl: String,
    authorization: Option<String>,
    conn: Option<BufReader<Stream>>,
    next_id: u64,
    /// Read and write timeout of the connection; none by default, as in Python.
    timeout: Option<Duration>,
}

impl Client {
    /// A client for `serverurl`. Basic auth is sent only when both a username and a
    /// password are set, as `SupervisorTransport` does.
    pub fn new(serverurl: &str, username: Option<&str>, password: Option<&str>) -> Client {
        let mut client = Client {
            serverurl: serverurl.to_string(),
            authorization: None,
            conn: None,
            next_id: 1,
            timeout: None,
        };
        client.set_credentials(username, password);
        client
    }

    /// The credentials sent from the next call on.
    pub fn set_credentials(&mut self, username: Option<&str>, password: Option<&str>) {
        self.authorization = match (username, password) {
            (Some(u), Some(p)) => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )),
            _ => None,
        };
    }

    /// The URL as the user gave it; supervisorctl's messages quote it.
    pub fn serverurl(&self) -> &str {
        &self.serverurl
    }

    /// Bounds every read and write of the connection (for callers that must not hang on a
    /// daemon that stopped answering).
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = timeout;
        self.conn = None;
    }

    /// Points the client at another server (the `open` command); the next call connects.
    pub fn set_serverurl(&mut self, url: &str) {
        self.serverurl = url.to_string();
        self.conn = None;
    }

    /// Calls `method` with positional `params`.
    pub fn call(&mut self, method: &str, params: &[Value]) -> Result<Value, CallError> {
        self.call_as(method, params)
    }

    /// Calls `method` and reads its result as `T` while parsing: members `T` does not
    /// name are skipped, not built.
    pub fn call_as<T: serde::de::DeserializeOwned>(
        &mut self,
        method: &str,
        params: &[Value],
    ) -> Result<T, CallError> {
        let id = self.next_id;
        self.next_id += 1;
        let body = jsonrpc::request(method, params, id);
        let resp = self.roundtrip(JRPC_PATH, "application/json", body.as_bytes())?;
        if resp.status != 200 {
            self.conn = None;
            return Err(CallError::Http { status: resp.status, reason: resp.reason });
        }
        match jsonrpc::parse_reply(&resp.body) {
            Ok(Reply::Result(v)) => Ok(v),
            Ok(Reply::Error { code, message }) => {
                Err(CallError::Fault(Fault { code, string: message }))
            }
            Err(e) => Err(CallError::BadReply(e)),
        }
    }

    /// POSTs `body` to `path` and returns the answer's status and body, whatever the
    /// status (the listeners speak XML-RPC at `/RPC2` to Python's supervisord this way).
    pub fn post(
        &mut self,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<(u16, Vec<u8>), CallError> {
        let resp = self.roundtrip(path, content_type, body)?;
        if resp.status != 200 {
            self.conn = None;
        }
        Ok((resp.status, resp.body))
    }

    /// One request and its response over the kept-alive connection (a new one when there
    /// is none, or when the kept one turns out closed).
    fn roundtrip(
        &mut self,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<Response, CallError> {
        let request = self.request_bytes(path, content_type, body);
        let reused = self.conn.is_some();
        let resp = match self.exchange(&request) {
            // A kept-alive connection the server closed while we were idle: the request
            // never reached a method, so sending it once more on a new one is safe.
            Err(Exchange::Stale) if reused => {
                self.conn = None;
                self.exchange(&request)
            }
            other => other,
        };
        let resp = match resp {
            Ok(r) => r,
            Err(Exchange::Stale) => {
                self.conn = None;
                return Err(CallError::BadReply("server closed the connection".into()));
            }
            Err(Exchange::Failed(e)) => {
                self.conn = None;
                return Err(e);
            }
        };
        if !resp.keep_alive {
            self.conn = None;
        }
        Ok(resp)
    }

    fn request_bytes(&self, path: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
        let host = match parse_url(&self.serverurl) {
            Ok(Endpoint::Tcp { host, port }) if port != 80 => format!("{host}:{port}"),
            Ok(Endpoint::Tcp { host, .. }) => host,
            _ => "localhost".to_string(),
        };
        let mut head = format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n\
             Accept: {content_type}\r\nContent-Length: {}\r\n",
            body.len()
        );
        if let Some(auth) = &self.authorization {
            head.push_str("Authorization: ");
            head.push_str(auth);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body);
        bytes
    }

    fn connect(&self) -> Result<BufReader<Stream>, CallError> {
        let stream = match parse_url(&self.serverurl)? {
            Endpoint::Unix(path) => {
                Stream::Unix(UnixStream::connect(&path).map_err(|e| CallError::io(&e))?)
            }
            Endpoint::Tcp { host, port } => {
                use std::net::ToSocketAddrs;
                let addrs: Vec<_> = (host.as_str(), port)
                    .to_socket_addrs()
                    .map_err(|_| CallError::Resolve("Name or service not known".into()))?
                    .collect();
                let mut last = None;
                let mut stream = None;
                for a in addrs {
                    match TcpStream::connect(a) {
                        Ok(s) => {
                            stream = Some(s);
                            break;
                        }
                        Err(e) => last = Some(e),
                    }
                }
                match (stream, last) {
                    (Some(s), _) => {
                        // Small request/response pairs: do not wait for Nagle.
                        let _nodelay = s.set_nodelay(true);
                        Stream::Tcp(s)
                    }
                    (None, Some(e)) => return Err(CallError::io(&e)),
                    (None, None) => {
                        return Err(CallError::Resolve("Name or service not known".into()));
                    }
                }
            }
        };
        if let Some(t) = self.timeout {
            let set = match &stream {
                Stream::Unix(s) => s.set_read_timeout(Some(t)).and(s.set_write_timeout(Some(t))),
                Stream::Tcp(s) => s.set_read_timeout(Some(t)).and(s.set_write_timeout(Some(t))),
            };
            set.map_err(|e| CallError::io(&e))?;
        }
        // Small: std zero-fills a BufReader's whole buffer on first use (our `Stream` has
        // no `read_buf`), and each fresh page is a fault in a run that lasts a millisecond.
        // Bodies are read past it, straight into their own buffer.
        Ok(BufReader::with_capacity(8 * 1024, stream))
    }

    fn exchange(&mut self, request: &[u8]) -> Result<Response, Exchange> {
        if self.conn.is_none() {
            self.conn = Some(self.connect().map_err(Exchange::Failed)?);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(Exchange::Failed(CallError::BadReply("no connection".into())));
        };
        if let Err(e) = conn.get_mut().write_all(request) {
            return Err(if is_disconnect(&e) {
                Exchange::Stale
            } else {
                Exchange::Failed(CallError::io(&e))
            });
        }
        read_response(conn)
    }
}

pub(crate) enum Exchange {
    /// The connection was closed before any byte of a response arrived.
    Stale,
    Failed(CallError),
}

fn is_disconnect(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
    )
}

/// A parsed HTTP response.
#[derive(Debug)]
pub(crate) struct Response {
    status: u16,
    reason: String,
    keep_alive: bool,
    pub(crate) body: Vec<u8>,
}

fn bad(msg: impl Into<String>) -> Exchange {
    Exchange::Failed(CallError::BadReply(msg.into()))
}

/// Reads one response: the head (status line and headers, parsed by `httparse`), then a
/// body framed by Content-Length or chunked encoding (or, for a `Connection: close` reply
/// with neither, by EOF).
pub(crate) fn read_response<R: BufRead>(r: &mut R) -> Result<Response, Exchange> {
    // The head, line by line up to the empty one, then parsed by httparse.
    let mut head = Vec::new();
    let n = read_line(r, &mut head).map_err(|e| {
        if is_disconnect(&e) { Exchange::Stale } else { Exchange::Failed(CallError::io(&e)) }
    })?;
    if n == 0 {
        return Err(Exchange::Stale);
    }
    loop {
        let start = head.len();
        let n = read_line(r, &mut head).map_err(|e| Exchange::Failed(CallError::io(&e)))?;
        if n == 0 {
            return Err(bad("connection closed inside the response head"));
        }
        if head.len() > MAX_HEAD {
            return Err(bad("response head too large"));
        }
        if matches!(&head[start..], b"\r\n" | b"\n") {
            break;
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Response::new(&mut headers);
    let first_line = || {
        let end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
        String::from_utf8_lossy(&head[..end]).trim_end().to_string()
    };
    match parsed.parse(&head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) | Err(_) => {
            return Err(bad(format!("not an HTTP response: {:?}", first_line())));
        }
    }
    let status = parsed.code.ok_or_else(|| bad(format!("bad status line: {:?}", first_line())))?;
    let reason = parsed.reason.unwrap_or("").to_string();
    let mut keep_alive = parsed.version == Some(1);
    let mut length: Option<u64> = None;
    let mut chunked = false;
    for h in parsed.headers.iter() {
        let value = String::from_utf8_lossy(h.value);
        let value = value.trim();
        if h.name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse().map_err(|_| bad(format!("bad Content-Length {value:?}")))?);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        } else if h.name.eq_ignore_ascii_case("connection") {
            let v = value.to_ascii_lowercase();
            if v.contains("close") {
                keep_alive = false;
            } else if v.contains("keep-alive") {
                keep_alive = true;
            }
        }
    }
    let body = if chunked {
        read_chunked(r)?
    } else if let Some(len) = length {
        if len > MAX_BODY {
            return Err(bad("response body too large"));
        }
        let mut body = Vec::with_capacity(usize::try_from(len).unwrap_or(0).min(1 << 20));
        let got = r
            .by_ref()
            .take(len)
            .read_to_end(&mut body)
            .map_err(|e| Exchange::Failed(CallError::io(&e)))?;
        if (got as u64) < len {
            return Err(bad("connection closed inside the response body"));
        }
        body
    } else {
        keep_alive = false;
        let mut body = Vec::new();
        r.by_ref()
            .take(MAX_BODY)
            .read_to_end(&mut body)
            .map_err(|e| Exchange::Failed(CallError::io(&e)))?;
        body
    };
    Ok(Response { status, reason, keep_alive, body })
}

fn read_chunked<R: BufRead>(r: &mut R) -> Result<Vec<u8>, Exchange> {
    let mut body = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        read_line(r, &mut line).map_err(|e| Exchange::Failed(CallError::io(&e)))?;
        let text = String::from_utf8_lossy(&line);
        let size_text = text.trim().split(';').next().unwrap_or("");
        let size = u64::from_str_radix(size_text, 16)
            .map_err(|_| bad(format!("bad chunk size {size_text:?}")))?;
        if size == 0 {
            // Trailers, then the empty line.
            loop {
                line.clear();
                let n = read_line(r, &mut line).map_err(|e| Exchange::Failed(CallError::io(&e)))?;
                if n == 0 || line == b"\r\n" || line == b"\n" {
                    return Ok(body);
                }
            }
        }
        // Subtracting: a chunk size near u64::MAX must not overflow the sum.
        if size > MAX_BODY.saturating_sub(body.len() as u64) {
            return Err(bad("response body too large"));
        }
        let got = r
            .by_ref()
            .take(size)
            .read_to_end(&mut body)
            .map_err(|e| Exchange::Failed(CallError::io(&e)))?;
        if (got as u64) < size {
            return Err(bad("connection closed inside a chunk"));
        }
        line.clear();
        read_line(r, &mut line).map_err(|e| Exchange::Failed(CallError::io(&e)))?;
    }
}

/// `read_until(b'\n')` bounded by [`MAX_HEAD`], so a peer that never sends a newline
/// cannot make us buffer without limit.
fn read_line<R: BufRead>(r: &mut R, buf: &mut Vec<u8>) -> io::Result<usize> {
    r.by_ref().take(MAX_HEAD as u64 + 1).read_until(b'\n', buf)
}

#[cfg(test)]
mod tests;
