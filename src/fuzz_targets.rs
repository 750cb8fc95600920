//! Entry points for fuzzing every parser that reads untrusted or user input: the config
//! (ini, interpolation, option values, the whole load, supervisorctl's reader), the JSON-RPC
//! and XML-RPC decoders, the HTTP server (auth, routing, bodies), both ends of the event
//! listener protocol, capture-mode output, and supervisorctl's reply parsing. Each takes arbitrary
//! bytes and must return without panicking, hanging or allocating without bound.
//!
//! Shared by the cargo-fuzz targets under `fuzz/` and by the bounded proptest runs below, so
//! stable CI exercises the same code the fuzzer does. Not part of the product's API.

use std::collections::BTreeMap;
use std::io::{BufReader, Cursor};
use std::path::Path;
use std::sync::Arc;

use crate::config::expand::{self, Names};
use crate::config::ini::Ini;
use crate::config::{LoadContext, Overrides, options};
use crate::events::protocol::Protocol;
use crate::logio::capture::CaptureParser;
use crate::rpc::server::{self, Auth, Dispatch, DispatchFuture, Password, PathFuture, Server};
use crate::rpc::{Value, jsonrpc, xmlrpc};

/// The ini reader, `%(name)s` interpolation and every option-value parser over each value.
pub fn config_values(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut ini = Ini::default();
    let _ = ini.read_str(&text, Path::new("fuzz.conf"));
    let mut base = BTreeMap::new();
    base.insert("ENV_HOME".to_string(), expand::Value::Str("/root".to_string()));
    base.insert("here".to_string(), expand::Value::Str("/etc".to_string()));
    let mut names = Names::new(&base);
    names.set("program_name", "p").set_int("process_num", 3).set_int("numprocs", 4);
    let values = ini.sections.iter().flat_map(|s| &s.options).chain(&ini.defaults);
    for opt in values {
        let v = expand::expand(&opt.value, &names).unwrap_or_else(|_| opt.value.clone());
        option_values(&v);
    }
    // Values need not come from an ini line: the raw text is a value too.
    option_values(&text);
}

fn option_values(v: &str) {
    let _ = options::python_int(v);
    let _ = options::integer(v);
    let _ = options::count(v);
    let _ = options::count32(v);
    let _ = options::boolean(v);
    let _ = options::byte_size(v);
    let _ = options::octal(v);
    let _ = options::signal(v);
    let _ = options::exitcodes(v);
    let _ = options::autorestart(v);
    let _ = options::log_level(v);
    let _ = options::list_of_strings(v);
    let _ = options::process_or_group_name(v);
    let _ = options::environment(v);
    let _ = options::expand_user(v, Some("/root"));
    let _ = options::normalize_path(v, Some("/root"), Path::new("/tmp"));
    let _ = options::inet_address(v);
    let _ = crate::pytext::shlex_split(v);
}

/// The whole config load (every section's rules, numprocs expansion, validation) and
/// supervisorctl's config reader, on a file holding `data`. `[include]` is left out: it
/// would glob the fuzzing machine's file system.
pub fn config_load(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if text.to_ascii_lowercase().contains("include") {
        return;
    }
    // A directory of this call's own, removed afterwards: nothing is left in /tmp.
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("supervisord-fuzz-{}-{n}", std::process::id()));
    if std::fs::create_dir(&dir).is_err() {
        return;
    }
    load_in(&dir, data);
    let _ = std::fs::remove_dir_all(&dir);
}

fn load_in(dir: &Path, data: &[u8]) {
    let path = dir.join("fuzz.conf");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let ctx = LoadContext {
        env: vec![("HOME".into(), "/root".into()), ("X".into(), "1".into())],
        cwd: dir.to_path_buf(),
        host_node_name: "fuzz".into(),
    };
    let _ = crate::config::load(&path, &Overrides::default(), &ctx);
    let _ = crate::ctl::conf::read(&path, &|_| None);
}

/// The JSON-RPC request decoder, and the encoder over whatever it accepted.
pub fn jsonrpc_request(data: &[u8]) {
    match jsonrpc::parse_request(data) {
        Ok(req) => {
            let _ = jsonrpc::result(&req.id, &Value::Array(req.params));
        }
        Err(rej) => {
            let _ = jsonrpc::error(&rej.id, rej.code, &rej.message);
        }
    }
}

/// The XML-RPC call and response decoders; an accepted call must survive a round trip.
pub fn xmlrpc_message(data: &[u8]) {
    if let Ok(call) = xmlrpc::parse_call(data) {
        let again = xmlrpc::call(&call.method, &call.params);
        let _ = xmlrpc::parse_call(again.as_bytes());
        let _ = xmlrpc::response(&Value::Array(call.params));
    }
    if let Ok(Ok(v)) = xmlrpc::parse_response(data) {
        let _ = xmlrpc::response(&v);
    }
}

/// supervisorctl's side: an HTTP response as the server might send it, then its body as a
/// JSON-RPC reply, generic and as the rows `status` reads.
pub fn ctl_reply(data: &[u8]) {
    let mut r = BufReader::new(Cursor::new(data));
    if let Ok(resp) = crate::ctl::client::read_response(&mut r) {
        let _ = jsonrpc::parse_reply::<Value>(&resp.body);
    }
    let _ = jsonrpc::parse_reply::<Value>(data);
    let _ = jsonrpc::parse_reply::<Vec<crate::ctl::commands::ProcessRow>>(data);
    let _ = crate::ctl::client::parse_url(&String::from_utf8_lossy(data));
}

/// The event listener protocol: what a listener writes, fed in pieces, with events sent
/// in between.
pub fn listener_protocol(data: &[u8]) {
    let mut p = Protocol::new();
    // The first byte picks where the input is cut, so tokens split across reads are tried.
    let step = usize::from(data.first().copied().unwrap_or(1)).max(1);
    for (i, chunk) in data.chunks(step).enumerate() {
        if i % 3 == 1 {
            p.sent();
        }
        for note in p.feed(chunk) {
            let _ = note.lines("listener");
        }
    }
}

/// The built-in listeners' side of the protocol: event headers and payloads as they read
/// them from stdin, until the input ends or is refused.
pub fn listener_input(data: &[u8]) {
    let mut io = crate::listeners::io::ListenerIo::new(Cursor::new(data), std::io::sink());
    while let Ok(Some(ev)) = io.wait() {
        let _ = ev.event_name();
        let _ = ev.body();
        let _ = io.ok();
    }
}

/// Capture mode over a child's output, fed in pieces.
pub fn capture_output(data: &[u8]) {
    let step = usize::from(data.first().copied().unwrap_or(1)).max(1);
    let mut parser = CaptureParser::new(64, data.len().is_multiple_of(2));
    let mut sink = |_: crate::logio::capture::Piece<'_>| {};
    for chunk in data.chunks(step) {
        parser.feed(chunk, &mut sink);
    }
    parser.finish(&mut sink);
    let mut out = Vec::new();
    crate::logio::ansi::strip_escapes(data, &mut out);
}

/// The method table a fuzzed server calls: it echoes the params; there are no logs.
struct Echo;

impl Dispatch for Echo {
    fn call(&self, _method: String, params: Vec<Value>) -> DispatchFuture {
        Box::pin(async move { Ok(Value::Array(params)) })
    }
    fn tail_path(&self, _source: server::TailSource) -> PathFuture {
        Box::pin(async { None })
    }
    fn probe(&self, _probe: server::Probe) -> server::PageFuture {
        let page = crate::rpc::observe::Page {
            status: 200,
            content_type: "text/plain; charset=utf-8",
            body: String::new(),
        };
        Box::pin(async move { page })
    }
}

/// The HTTP server (hyper's parser, auth, routing, body limits, both decoders) over a real
/// socket pair: `data` is what a client sends before it shuts down its side. An odd first
/// byte puts the server behind basic auth.
pub fn http_request(data: &[u8]) {
    thread_local! {
        static RT: Option<tokio::runtime::Runtime> =
            tokio::runtime::Builder::new_current_thread().enable_all().build().ok();
    }
    let auth = data
        .first()
        .is_some_and(|b| b % 2 == 1)
        .then(|| Auth { username: "user".into(), password: Password::from_config("123") });
    let server = Arc::new(Server { auth, dispatch: Arc::new(Echo), trace: None });
    RT.with(|rt| {
        let Some(rt) = rt else { return };
        rt.block_on(async {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let Ok((ours, theirs)) = tokio::net::UnixStream::pair() else { return };
            let stop = tokio_util::sync::CancellationToken::new();
            let conn = tokio::spawn(server::serve_conn(server, theirs, stop.clone()));
            let client = async move {
                let mut ours = ours;
                let _ = ours.write_all(data).await;
                let _ = ours.shutdown().await;
                let mut sink = Vec::new();
                let _ = ours.read_to_end(&mut sink).await;
            };
            // A request the server cannot finish within this is a hang.
            let done = tokio::time::timeout(std::time::Duration::from_secs(10), client).await;
            stop.cancel();
            let _ = conn.await;
            assert!(done.is_ok(), "the server did not finish a {}-byte request", data.len());
        });
    });
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    /// The corpus the cargo-fuzz targets start from, shared with these runs.
    fn corpus(target: &str) -> Vec<Vec<u8>> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
        let mut out: Vec<Vec<u8>> = std::fs::read_dir(&dir)
            .map(|rd| rd.flatten().filter_map(|e| std::fs::read(e.path()).ok()).collect())
            .unwrap_or_default();
        assert!(!out.is_empty(), "no corpus in {}", dir.display());
        out.sort();
        out
    }

    /// Corpus inputs mutated by byte flips, insertions, deletions and splices, plus raw bytes.
    fn inputs(target: &'static str) -> impl Strategy<Value = Vec<u8>> {
        let corpus = corpus(target);
        let n = corpus.len();
        let mutated = (
            0..n,
            0..n,
            proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 0..8),
        )
            .prop_map(move |(a, b, edits)| {
                let mut v = corpus[a].clone();
                for (at, byte, kind) in edits {
                    let i = if v.is_empty() { 0 } else { at.index(v.len()) };
                    match kind {
                        0 if !v.is_empty() => v[i] = byte,
                        1 => v.insert(i, byte),
                        2 if !v.is_empty() => {
                            v.remove(i);
                        }
                        _ => {
                            let other = &corpus[b];
                            let j = if other.is_empty() { 0 } else { at.index(other.len()) };
                            v.truncate(i);
                            v.extend_from_slice(&other[j..]);
                        }
                    }
                }
                v
            });
        prop_oneof![4 => mutated, 1 => proptest::collection::vec(any::<u8>(), 0..256)]
    }

    /// Cases per target in `cargo test`; `FUZZ_CASES` asks for a longer run.
    fn config() -> ProptestConfig {
        let cases = std::env::var("FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256);
        ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn config_values(data in inputs("config_values")) { super::config_values(&data) }

        #[test]
        fn config_load(data in inputs("config_load")) { super::config_load(&data) }

        #[test]
        fn jsonrpc_request(data in inputs("jsonrpc_request")) { super::jsonrpc_request(&data) }

        #[test]
        fn xmlrpc_message(data in inputs("xmlrpc_message")) { super::xmlrpc_message(&data) }

        #[test]
        fn ctl_reply(data in inputs("ctl_reply")) { super::ctl_reply(&data) }

        #[test]
        fn listener_protocol(data in inputs("listener_protocol")) { super::listener_protocol(&data) }

        #[test]
        fn listener_input(data in inputs("listener_input")) { super::listener_input(&data) }

        #[test]
        fn capture_output(data in inputs("capture_output")) { super::capture_output(&data) }

        #[test]
        fn http_request(data in inputs("http_request")) { super::http_request(&data) }
    }

    /// Inputs the fuzzers found; each once panicked or allocated without bound.
    #[test]
    fn regressions() {
        super::config_values(b"[p]\nx=%(program_name)999999999999s\n");
        super::config_values(b"[p]\nx=%(process_num)99999999999999999999999d\n");
        super::ctl_reply(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\nffffffffffffffff\r\n",
        );
    }
}
