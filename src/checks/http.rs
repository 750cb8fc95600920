//! `http://HOST:PORT/PATH`: ready when a GET answers 2xx or 3xx (redirects are not
//! followed: a redirect already proves the server is serving). One HTTP/1.1 request over
//! hyper's client connection, `Connection: close`, the body never read.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::Request;
use hyper_util::rt::TokioIo;

use super::{Outcome, secs};

/// One GET of `path` on `host:port`, bounded by `timeout` from connect to status line.
pub async fn attempt(host: &str, port: u16, path: &str, timeout: Duration) -> Outcome {
    match tokio::time::timeout(timeout, get(host, port, path)).await {
        Ok(Ok(status)) if (200..400).contains(&status) => Ok(()),
        Ok(Ok(status)) => Err(format!("HTTP {status}")),
        Ok(Err(why)) => Err(why),
        Err(_) => Err(format!("timed out after {}", secs(timeout))),
    }
}

async fn get(host: &str, port: u16, path: &str) -> Result<u16, String> {
    let stream = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| super::tcp::io_reason(&e))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP error: {e}"))?;
    let authority =
        if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
    let req = Request::get(path)
        .header(hyper::header::HOST, authority)
        .header(hyper::header::CONNECTION, "close")
        .header(hyper::header::USER_AGENT, "supervisord-check")
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("bad request: {e}"))?;
    // The connection future does the IO; drive it alongside the request on this task. It
    // can finish first (the server answered and closed): the answer is then waiting.
    let mut conn = std::pin::pin!(conn);
    let mut send = std::pin::pin!(sender.send_request(req));
    let response = tokio::select! {
        r = &mut send => r,
        c = &mut conn => match c {
            Ok(()) => send.await,
            Err(e) => return Err(format!("HTTP error: {e}")),
        },
    }
    .map_err(|e| format!("HTTP error: {e}"))?;
    Ok(response.status().as_u16())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server that answers every connection with `reply` (after reading the request
    /// head) and records the request heads.
    async fn serve(reply: &'static [u8]) -> (u16, tokio::sync::mpsc::Receiver<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(buf.get(..n).unwrap_or_default()),
                    }
                }
                let _ = tx.send(String::from_utf8_lossy(&head).into_owned()).await;
                if !reply.is_empty() {
                    let _ = s.write_all(reply).await;
                } else {
                    // Say nothing, keep the connection open.
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                }
            }
        });
        (port, rx)
    }

    const T: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn two_and_three_hundreds_are_ready() {
        let (port, mut heads) = serve(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
        assert_eq!(attempt("127.0.0.1", port, "/ready?x=1", T).await, Ok(()));
        let head = heads.recv().await.expect("a request");
        assert!(head.starts_with("GET /ready?x=1 HTTP/1.1\r\n"), "{head}");
        assert!(head.to_lowercase().contains(&format!("host: 127.0.0.1:{port}\r\n")), "{head}");
        let (port, _h) =
            serve(b"HTTP/1.1 302 Found\r\nlocation: /x\r\ncontent-length: 0\r\n\r\n").await;
        assert_eq!(attempt("127.0.0.1", port, "/", T).await, Ok(()));
    }

    #[tokio::test]
    async fn errors_say_what_happened() {
        let (port, _h) =
            serve(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n").await;
        assert_eq!(attempt("127.0.0.1", port, "/", T).await, Err("HTTP 503".to_string()));
        let (port, _h) = serve(b"SSH-2.0-OpenSSH\r\n\r\n").await;
        let got = attempt("127.0.0.1", port, "/", T).await;
        assert!(got.as_ref().is_err_and(|e| e.starts_with("HTTP error")), "{got:?}");
        let (port, _h) = serve(b"").await;
        assert_eq!(
            attempt("127.0.0.1", port, "/", Duration::from_millis(200)).await,
            Err("timed out after 0.2s".to_string())
        );
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        assert_eq!(attempt("127.0.0.1", port, "/", T).await, Err("connection refused".to_string()));
    }
}
