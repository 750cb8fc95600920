//! The HTTP/1.1 server of the control plane (hyper), on the `[unix_http_server]` socket and
//! the `[inet_http_server]` port: XML-RPC at `/RPC2`, JSON-RPC at `/weka/jrpc`, the log
//! tail streams, `/metrics`, `/healthz`, `/readyz` and the web page at `/`, all behind HTTP
//! basic auth when configured. One task per connection; request bodies are bounded and slow
//! clients time out, so no client can hold the daemon.

use std::future::Future;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Either, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use sha1::{Digest, Sha1};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::value::Value;
use super::{jsonrpc, logtail, xmlrpc};
use crate::fault::Fault;
use crate::logio::mainlog::{Level, medusa_date};
use crate::logio::mainlog_task::MainLogHandle;
use crate::orchestrator::LogChannel;

/// The largest request body accepted; `sendProcessStdin` is the only method that sends
/// much, and a larger body is answered with 413 rather than buffered.
pub const MAX_BODY: usize = 8 * 1024 * 1024;
/// How long a client may take to send its headers, and then its body.
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long open connections may finish their responses once the daemon stops serving.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);
/// Connections served at once; past this, accepts wait, so a flood cannot exhaust fds.
pub const MAX_CONNECTIONS: usize = 2048;

/// What a method call resolves to.
pub type DispatchFuture = Pin<Box<dyn Future<Output = Result<Value, Fault>> + Send>>;

/// Which log a `/logtail` or `/mainlogtail` stream follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TailSource {
    /// `/logtail/<namespec>[/stdout|stderr]`.
    Process { spec: String, channel: LogChannel },
    /// `/mainlogtail`.
    Main,
}

/// The file a tail stream follows, or `None` (answered 404) for an unknown process or a
/// NONE/syslog log.
pub type PathFuture = Pin<Box<dyn Future<Output = Option<PathBuf>> + Send>>;

/// The JSON text of a result, or the fault.
pub type JsonFuture = Pin<Box<dyn Future<Output = Result<String, Fault>> + Send>>;

/// The plain pages the daemon answers about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    Metrics,
    Healthz,
    Readyz,
}

/// What a probe answers.
pub type PageFuture = Pin<Box<dyn Future<Output = super::observe::Page> + Send>>;

/// The method table behind both transports, the log lookup behind the tail streams, and
/// the probes.
pub trait Dispatch: Send + Sync + 'static {
    fn call(&self, method: String, params: Vec<Value>) -> DispatchFuture;
    /// A JSON-RPC call whose result is written as JSON text directly, without a [`Value`]
    /// tree in between (a reply with a row per process); `None` for every other method.
    fn call_json(&self, _method: &str, _params: &[Value]) -> Option<JsonFuture> {
        None
    }
    fn tail_path(&self, source: TailSource) -> PathFuture;
    fn probe(&self, probe: Probe) -> PageFuture;
}

/// The connection's socket, for noticing a client that has gone away.
pub type Peer = Arc<std::os::fd::OwnedFd>;

/// A configured password: plain, or Python's `{SHA}<hex sha1>` form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Password {
    Plain(String),
    Sha1Hex(String),
}

impl Password {
    /// Parses the config value as Python does: a `{SHA}` prefix means a hex sha1.
    pub fn from_config(s: &str) -> Password {
        match s.strip_prefix("{SHA}") {
            Some(hex) => Password::Sha1Hex(hex.to_ascii_lowercase()),
            None => Password::Plain(s.to_string()),
        }
    }

    fn matches(&self, given: &str) -> bool {
        match self {
            Password::Plain(p) => constant_time_eq(p.as_bytes(), given.as_bytes()),
            Password::Sha1Hex(hex) => {
                let digest = Sha1::digest(given.as_bytes());
                let mut got = String::with_capacity(40);
                for b in digest.iter() {
                    got.push_str(&format!("{b:02x}"));
                }
                constant_time_eq(got.as_bytes(), hex.as_bytes())
            }
        }
    }
}

/// Compares two secrets in time that depends only on their lengths, so a client timing
/// 401s cannot learn a password byte by byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    // Folding over the longer input keeps the work independent of where they differ.
    let len = a.len().max(b.len());
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..len {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= x ^ y;
    }
    // black_box: the optimiser must not turn the fold back into an early exit.
    std::hint::black_box(diff) == 0
}

/// HTTP basic auth credentials of one server section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    pub username: String,
    pub password: Password,
}

impl Auth {
    fn allows(&self, req: &Request<Incoming>) -> bool {
        let Some(value) = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
        else {
            return false;
        };
        let Some(encoded) = value.strip_prefix("Basic ").or_else(|| value.strip_prefix("basic "))
        else {
            return false;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
            return false;
        };
        let Ok(text) = String::from_utf8(decoded) else { return false };
        match text.split_once(':') {
            // Both are compared whatever the first says: no early exit on a wrong user name.
            Some((user, pass)) => {
                let user_ok = constant_time_eq(user.as_bytes(), self.username.as_bytes());
                let pass_ok = self.password.matches(pass);
                user_ok & pass_ok
            }
            None => false,
        }
    }
}

/// One server: its auth and the method table.
pub struct Server {
    pub auth: Option<Auth>,
    pub dispatch: Arc<dyn Dispatch>,
    /// The daemon log when `loglevel` is trace or lower: each XML-RPC call and each request
    /// is then logged at TRAC, as Python's XML-RPC handler and Medusa's access log do.
    pub trace: Option<MainLogHandle>,
}

/// A response body: a whole buffer, or a stream fed by a tail task.
pub type Body = Either<WholeBody, logtail::TailBody>;

/// A complete response, sent with a Content-Length. It carries the guards a method asked
/// to keep until its answer is on the wire ([`release_after_response`]), and drops them
/// when hyper is done with the body.
pub struct WholeBody {
    data: Option<Bytes>,
    _guards: Vec<Box<dyn Send>>,
}

impl hyper::body::Body for WholeBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Ready(self.data.take().map(|d| Ok(hyper::body::Frame::data(d))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.data.as_ref().map_or(0, |d| d.len() as u64))
    }
}

fn whole(body: String) -> WholeBody {
    let guards = AFTER_RESPONSE.try_with(|g| g.take()).unwrap_or_default();
    WholeBody { data: Some(Bytes::from(body)), _guards: guards }
}

tokio::task_local! {
    /// Guards deposited while a request is handled, released with its response body.
    static AFTER_RESPONSE: std::cell::RefCell<Vec<Box<dyn Send>>>;
}

/// Keeps `guard` alive until the response of the request being handled has been written
/// (its body dropped by hyper). Outside a request it is dropped at once.
pub fn release_after_response(guard: impl Send + 'static) {
    let mut guard = Some(guard);
    let _ = AFTER_RESPONSE.try_with(|g| {
        if let Some(x) = guard.take() {
            g.borrow_mut().push(Box::new(x));
        }
    });
}

fn with_server(mut resp: Response<Body>) -> Response<Body> {
    // Python's Medusa names itself on every response; some dashboards log it.
    resp.headers_mut().insert(header::SERVER, HeaderValue::from_static("Medusa/1.12"));
    resp
}

/// Medusa's error page, byte for byte as Python supervisor sends it.
pub fn error_page(code: u16, reason: &str) -> String {
    format!(
        "<head>\r\n<title>Error response</title>\r\n</head>\r\n<body>\r\n<h1>Error response</h1>\r\n<p>Error code {code}.\r\n<p>Message: {reason}.\r\n</body>\r\n"
    )
}

fn html_error(status: StatusCode) -> Response<Body> {
    let reason = status.canonical_reason().unwrap_or("Error");
    let body = error_page(status.as_u16(), reason);
    let mut resp = Response::new(Either::Left(whole(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    resp
}

fn ok(content_type: &'static str, body: String) -> Response<Body> {
    let mut resp = Response::new(Either::Left(whole(body)));
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// A browser's request made by a page of another origin: its `Origin` (which browsers
/// send with every POST, and other clients do not) names another host than `Host`.
/// Calls are refused then, so a web page cannot drive the daemon on the visitor's
/// behalf (the page at `/` is same-origin).
fn cross_origin(req: &Request<Incoming>) -> bool {
    let Some(origin) = req.headers().get(header::ORIGIN) else { return false };
    let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, rest)| rest.trim_end_matches('/'));
    match (origin_host, host) {
        (Some(o), Some(h)) => !o.eq_ignore_ascii_case(h.trim()),
        _ => true,
    }
}

/// The request's Content-Length (hyper has already rejected malformed ones).
fn content_length(req: &Request<Incoming>) -> Option<u64> {
    req.headers().get(header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

enum Route {
    Xml,
    Json,
    Probe(Probe),
    /// The web page (`/`, `/index.html`).
    Web,
    /// `None`: a `/logtail` path naming no valid channel (404 once the method is checked).
    Tail(Option<TailSource>),
}

/// Python's handler order: `/RPC2` (a prefix), then `/logtail/…`, then `/mainlogtail`.
fn route(path: &str) -> Option<Route> {
    if path.starts_with("/RPC2") {
        Some(Route::Xml)
    } else if path == "/weka/jrpc" {
        Some(Route::Json)
    } else if let Some(rest) = path.strip_prefix("/logtail/") {
        Some(Route::Tail(logtail::parse_logtail_path(rest)))
    } else if path.starts_with("/mainlogtail") {
        Some(Route::Tail(Some(TailSource::Main)))
    } else {
        match path {
            "/metrics" => Some(Route::Probe(Probe::Metrics)),
            "/healthz" => Some(Route::Probe(Probe::Healthz)),
            "/readyz" => Some(Route::Probe(Probe::Readyz)),
            "/" | "/index.html" => Some(Route::Web),
            _ => None,
        }
    }
}

impl Server {
    async fn handle(self: Arc<Self>, req: Request<Incoming>, peer: Option<Peer>) -> Response<Body> {
        let access = self.trace.as_ref().map(|_| {
            let addr = peer.as_deref().map_or_else(|| "localhost:0".to_string(), peer_addr);
            (addr, format!("{} {} {:?}", req.method(), req.uri(), req.version()))
        });
        let route = self.clone().route(req, peer);
        let resp =
            with_server(AFTER_RESPONSE.scope(std::cell::RefCell::new(Vec::new()), route).await);
        if let Either::Left(w) = resp.body()
            && w.data.as_ref().is_some_and(|d| d.len() >= crate::sys::memory::LARGE_REPLY)
        {
            // Building it allocated several times its size, all free once it is sent.
            crate::sys::memory::release_soon();
        }
        if let (Some(log), Some((addr, request))) = (&self.trace, access) {
            let wall = crate::sys::clock::wall_now();
            log.log(
                Level::Trace,
                format!(
                    "{addr} - - [{}] \"{request}\" {} {}",
                    medusa_date(wall),
                    resp.status().as_u16(),
                    wire_size(&resp)
                ),
            );
        }
        resp
    }

    async fn route(self: Arc<Self>, req: Request<Incoming>, peer: Option<Peer>) -> Response<Body> {
        // Auth is checked here, once, before any path is looked at: every handler, and any
        // page added to the routes below, is behind it on both transports.
        if let Some(auth) = &self.auth
            && !auth.allows(&req)
        {
            // Read (and drop) the body first: closing on a client still sending it would
            // hand it a broken pipe instead of the 401 (Python's supervisorctl sends the
            // whole call before it reads).
            let within_limit = content_length(&req).is_none_or(|n| n <= MAX_BODY as u64);
            if within_limit {
                let body = Limited::new(req.into_body(), MAX_BODY).collect();
                let _ = tokio::time::timeout(READ_TIMEOUT, body).await;
            }
            let mut resp = html_error(StatusCode::UNAUTHORIZED);
            let h = resp.headers_mut();
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"default\""));
            h.insert(header::CONNECTION, HeaderValue::from_static("close"));
            return resp;
        }
        let Some(route) = route(req.uri().path()) else {
            return html_error(StatusCode::NOT_FOUND);
        };
        let transport = match route {
            Route::Tail(source) => {
                if req.method() != Method::GET {
                    return html_error(StatusCode::BAD_REQUEST);
                }
                let Some(source) = source else { return html_error(StatusCode::NOT_FOUND) };
                let Some(path) = self.dispatch.tail_path(source.clone()).await else {
                    return html_error(StatusCode::NOT_FOUND);
                };
                return match logtail::stream(&path, &source, peer).await {
                    Some(resp) => resp,
                    None => html_error(StatusCode::NOT_FOUND),
                };
            }
            Route::Probe(probe) => {
                if req.method() != Method::GET && req.method() != Method::HEAD {
                    return html_error(StatusCode::METHOD_NOT_ALLOWED);
                }
                let page = self.dispatch.probe(probe).await;
                let mut resp = ok(page.content_type, page.body);
                *resp.status_mut() =
                    StatusCode::from_u16(page.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                resp.headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                return resp;
            }
            Route::Web => {
                if req.method() != Method::GET && req.method() != Method::HEAD {
                    return html_error(StatusCode::METHOD_NOT_ALLOWED);
                }
                return ok("text/html; charset=utf-8", super::web::PAGE.to_string());
            }
            Route::Xml => Transport::Xml,
            Route::Json => Transport::Json,
        };
        if req.method() != Method::POST {
            return html_error(StatusCode::BAD_REQUEST);
        }
        if cross_origin(&req) {
            return html_error(StatusCode::FORBIDDEN);
        }
        // Medusa insists on a Content-Length for a POST (411), chunked or not.
        match content_length(&req) {
            None => return html_error(StatusCode::LENGTH_REQUIRED),
            // Refused from the header alone, before a byte of it is buffered.
            Some(n) if n > MAX_BODY as u64 => return html_error(StatusCode::PAYLOAD_TOO_LARGE),
            Some(_) => {}
        }
        let body = match tokio::time::timeout(
            READ_TIMEOUT,
            Limited::new(req.into_body(), MAX_BODY).collect(),
        )
        .await
        {
            Ok(Ok(collected)) => collected.to_bytes(),
            Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
                return html_error(StatusCode::PAYLOAD_TOO_LARGE);
            }
            Ok(Err(_)) | Err(_) => return html_error(StatusCode::BAD_REQUEST),
        };
        match transport {
            Transport::Xml => self.xml(&body).await,
            Transport::Json => self.json(&body).await,
        }
    }

    async fn xml(&self, body: &[u8]) -> Response<Body> {
        let call = match xmlrpc::parse_call(body) {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!("XML-RPC request data is invalid: {}", e.0);
                return html_error(StatusCode::BAD_REQUEST);
            }
        };
        let traced = self.trace.as_ref().map(|log| {
            log.log(Level::Trace, format!("XML-RPC method called: {}()", call.method));
            (log, call.method.clone())
        });
        let res = self.dispatch.call(call.method, call.params).await;
        if let Some((log, method)) = traced {
            log.log(
                Level::Trace,
                match &res {
                    Ok(_) => format!("XML-RPC method {method}() returned successfully"),
                    Err(f) => {
                        format!(
                            "XML-RPC method {method}() returned fault: [{}] {}",
                            f.code, f.string
                        )
                    }
                },
            );
        }
        let text = match res {
            Ok(v) => xmlrpc::response(&v),
            Err(f) => xmlrpc::fault(&f),
        };
        ok("text/xml", text)
    }

    async fn json(&self, body: &[u8]) -> Response<Body> {
        let text = match jsonrpc::parse_request(body) {
            Err(rej) => jsonrpc::error(&rej.id, rej.code, &rej.message),
            Ok(req) => match self.dispatch.call_json(&req.method, &req.params) {
                Some(fut) => match fut.await {
                    Ok(text) => jsonrpc::result_text(&req.id, &text),
                    Err(f) => jsonrpc::fault(&req.id, &f),
                },
                None => match self.dispatch.call(req.method, req.params).await {
                    Ok(v) => jsonrpc::result(&req.id, &v),
                    Err(f) => jsonrpc::fault(&req.id, &f),
                },
            },
        };
        ok("application/json", text)
    }
}

enum Transport {
    Xml,
    Json,
}

/// `host:port` of a TCP client as Medusa logs it; a unix socket client is `localhost:0`.
fn peer_addr(fd: &std::os::fd::OwnedFd) -> String {
    // A duplicate of the descriptor, viewed as TCP only to ask for the peer's address
    // (which fails for a unix socket).
    match fd.try_clone().map(std::net::TcpStream::from).and_then(|s| s.peer_addr()) {
        Ok(addr) => format!("{}:{}", addr.ip(), addr.port()),
        Err(_) => "localhost:0".into(),
    }
}

/// The bytes the response takes on the wire (Medusa logs what it sent): status line,
/// headers (hyper adds `date` and, for a whole body, `content-length`), blank line, body.
fn wire_size(resp: &Response<Body>) -> u64 {
    let status = resp.status();
    let mut n = "HTTP/1.1 ".len() + 3 + 1 + status.canonical_reason().unwrap_or("").len() + 2;
    for (name, value) in resp.headers() {
        n += name.as_str().len() + 2 + value.len() + 2;
    }
    n += "date: Sun, 29 Nov 2026 19:38:02 GMT\r\n".len() + 2;
    let body = match resp.body() {
        Either::Left(w) => w.data.as_ref().map_or(0, Bytes::len),
        Either::Right(_) => 0,
    };
    if !resp.headers().contains_key(header::CONTENT_LENGTH)
        && matches!(resp.body(), Either::Left(_))
    {
        n += "content-length: ".len() + body.to_string().len() + 2;
    }
    (n + body) as u64
}

/// Serves one accepted connection until the client closes it or `stop` is cancelled.
pub(crate) async fn serve_conn<S>(server: Arc<Server>, stream: S, stop: CancellationToken)
where
    S: AsyncRead + AsyncWrite + AsFd + Unpin + Send + 'static,
{
    // A second handle on the socket, so a tail stream can notice its client is gone while
    // it has nothing to write (hyper keeps half-closed connections open).
    let peer = stream.as_fd().try_clone_to_owned().ok().map(Arc::new);
    let svc = service_fn(move |req| {
        let (server, peer) = (server.clone(), peer.clone());
        async move { Ok::<_, std::convert::Infallible>(server.handle(req, peer).await) }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(READ_TIMEOUT)
        // A client that shuts down its write side after the request still gets the answer,
        // as from Python (`printf 'POST …' | nc -N`).
        .half_close(true)
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), svc);
    tokio::pin!(conn);
    let res = tokio::select! {
        res = conn.as_mut() => res,
        _ = stop.cancelled() => {
            // Finish what is in flight (the answer to `shutdown` itself), then close; a
            // client that does not read (or a tail stream) is cut off after a moment.
            conn.as_mut().graceful_shutdown();
            match tokio::time::timeout(SHUTDOWN_GRACE, conn.as_mut()).await {
                Ok(res) => res,
                Err(_) => Ok(()),
            }
        }
    };
    if let Err(e) = res {
        tracing::debug!("connection ended with an error: {e}");
    }
}

/// A listening socket the server accepts on.
pub trait Listen: Send + 'static {
    type Stream: AsyncRead + AsyncWrite + std::os::fd::AsFd + Unpin + Send + 'static;
    fn accept(&self) -> impl Future<Output = io::Result<Self::Stream>> + Send;
}

impl Listen for tokio::net::UnixListener {
    type Stream = tokio::net::UnixStream;
    async fn accept(&self) -> io::Result<Self::Stream> {
        tokio::net::UnixListener::accept(self).await.map(|(s, _)| s)
    }
}

impl Listen for tokio::net::TcpListener {
    type Stream = tokio::net::TcpStream;
    async fn accept(&self) -> io::Result<Self::Stream> {
        let (s, _) = tokio::net::TcpListener::accept(self).await?;
        // Replies are written whole; small ones must not wait for Nagle.
        let _ = s.set_nodelay(true);
        Ok(s)
    }
}

/// Accepts until `stop` is cancelled, one task per connection, at most
/// `MAX_CONNECTIONS` at once (further accepts wait, so a flood cannot exhaust fds).
pub async fn serve<L: Listen>(listener: L, server: Arc<Server>, stop: CancellationToken) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    // The failure being reported, so a persistent one (EMFILE) is logged once.
    let mut failing: Option<io::ErrorKind> = None;
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else { return };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.cancelled() => return,
        };
        match accepted {
            Ok(stream) => {
                if failing.take().is_some() {
                    tracing::info!("accepting connections again");
                }
                let (server, stop) = (server.clone(), stop.clone());
                tokio::spawn(async move {
                    serve_conn(server, stream, stop).await;
                    drop(permit);
                });
            }
            // EMFILE and friends: back off briefly rather than spin.
            Err(e) => {
                if failing != Some(e.kind()) {
                    tracing::error!("accept failed: {e}");
                    failing = Some(e.kind());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Why a unix socket could not be bound.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// Another daemon answers on the socket: the caller must not touch it.
    #[error(
        "Another program is already listening on a port that one of our HTTP servers is configured to use.  Shut this program down first before starting supervisord."
    )]
    InUse,
    #[error("Cannot open an HTTP server: socket.error reported {0}")]
    Io(#[from] io::Error),
}

/// Creates the unix socket as Python does, bind to a temporary name, set its mode, hard-link
/// it to `<file>`; when `<file>` exists and something answers on it, fail with `InUse`,
/// otherwise it is stale and is replaced. The temporary socket is bound inside a fresh
/// `<file>.<pid>.d` directory of mode 0700, and its mode and owner are set before it is
/// linked into place, so no one else can connect to it before it has its configured mode
/// and owner, whatever the umask. Blocking; called at startup, before any task runs.
pub fn bind_unix(
    path: &Path,
    mode: u32,
    owner: Option<(u32, u32)>,
) -> Result<std::os::unix::net::UnixListener, BindError> {
    let private = PathBuf::from(format!("{}.{}.d", path.display(), std::process::id()));
    let tmp = private.join("s");
    // Left over by an earlier daemon that had our pid and was killed mid-bind.
    let _ = std::fs::remove_file(&tmp);
    let _ = std::fs::remove_dir(&private);
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().mode(0o700).create(&private)?;
    }
    let cleanup = || {
        let _ = std::fs::remove_file(&tmp);
        let _ = std::fs::remove_dir(&private);
    };
    let res = bind_private(path, &tmp, mode, owner);
    cleanup();
    res
}

fn bind_private(
    path: &Path,
    tmp: &Path,
    mode: u32,
    owner: Option<(u32, u32)>,
) -> Result<std::os::unix::net::UnixListener, BindError> {
    let listener = std::os::unix::net::UnixListener::bind(tmp)?;
    std::fs::set_permissions(tmp, std::fs::Permissions::from_mode(mode))?;
    if let Some((uid, gid)) = owner {
        nix::unistd::chown(
            tmp,
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(gid)),
        )
        .map_err(|e| BindError::Io(e.into()))?;
    }
    let mut tries = 0;
    loop {
        match std::fs::hard_link(tmp, path) {
            Ok(()) => break,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && tries < 2 => {
                tries += 1;
                if std::os::unix::net::UnixStream::connect(path).is_ok() {
                    return Err(BindError::InUse);
                }
                // Stale: nobody answers. Python prints this to stderr too.
                eprintln!("Unlinking stale socket {}", path.display());
                let _ = std::fs::remove_file(path);
            }
            Err(e) => return Err(BindError::Io(e)),
        }
    }
    listener.set_nonblocking(true)?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha_passwords_compare_hex_digests() {
        // sha1("thepassword")
        let p = Password::from_config("{SHA}82ab876d1387bfafe46cc1c8a2ef074eae50cb1d");
        assert!(p.matches("thepassword"));
        assert!(!p.matches("other"));
        assert!(Password::from_config("plain").matches("plain"));
        assert!(!Password::from_config("plain").matches("plai"));
        assert!(!Password::from_config("plain").matches("plainx"));
        assert!(!Password::from_config("").matches("x"));
        assert!(Password::from_config("").matches(""));
    }

    #[test]
    fn constant_time_eq_is_equality() {
        for (a, b) in [("", ""), ("a", ""), ("", "a"), ("ab", "ab"), ("ab", "ac"), ("ab", "abc")] {
            assert_eq!(constant_time_eq(a.as_bytes(), b.as_bytes()), a == b, "{a:?} {b:?}");
        }
    }

    #[test]
    fn stale_socket_is_replaced_and_live_one_is_refused() {
        let dir = tempfile::Builder::new().prefix("sd").tempdir_in("/tmp").expect("tempdir");
        let path = dir.path().join("s.sock");
        // A stale socket file: bound, then its listener dropped.
        drop(std::os::unix::net::UnixListener::bind(&path).expect("bind"));
        let live = bind_unix(&path, 0o700, None).expect("stale socket replaced");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert!(matches!(bind_unix(&path, 0o700, None), Err(BindError::InUse)));
        drop(live);
        // The private directory is gone, on success and on failure alike.
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("readdir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(left, [std::ffi::OsString::from("s.sock")]);
    }
}
