//! `tcp:HOST:PORT`: ready when a TCP connection to it succeeds.

use std::time::Duration;

use super::{Outcome, secs};

/// Connects (resolving HOST as needed) and closes at once.
pub async fn attempt(host: &str, port: u16, timeout: Duration) -> Outcome {
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect((host, port))).await {
        Ok(Ok(_stream)) => Ok(()),
        Ok(Err(e)) => Err(io_reason(&e)),
        Err(_) => Err(format!("timed out after {}", secs(timeout))),
    }
}

/// `connection refused`, not `Connection refused (os error 111)`.
pub(crate) fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
        _ => {
            let text = e.to_string();
            let text = text.split(" (os error").next().unwrap_or_default();
            text.to_lowercase()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn open_port_succeeds_closed_port_is_refused() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        assert_eq!(attempt("127.0.0.1", port, Duration::from_secs(5)).await, Ok(()));
        assert_eq!(attempt("localhost", port, Duration::from_secs(5)).await, Ok(()));
        drop(listener);
        assert_eq!(
            attempt("127.0.0.1", port, Duration::from_secs(5)).await,
            Err("connection refused".to_string())
        );
    }

    #[tokio::test]
    async fn unknown_host_is_a_failure_not_a_panic() {
        let got = attempt("no-such-host.invalid", 80, Duration::from_secs(5)).await;
        assert!(got.is_err(), "{got:?}");
    }
}
