//! The `GET /logtail/<namespec>[/stdout|stderr]` and `GET /mainlogtail` streams that the
//! stock `supervisorctl tail -f` / `maintail -f` and web dashboards read: a chunked
//! `text/plain` body that starts with the last 1024 bytes of the file and then follows it,
//! saying `==> File truncated <==` when it shrinks and starting over on a new file when it
//! is rotated (its inode changes), as Python's `tail_f_producer` does.
//!
//! Each stream is one task that polls its file every 100 ms (Python's delay) only while a
//! client is connected; it ends as soon as the client goes away or the connection is
//! dropped at daemon stop, because the response body it feeds is then dropped.

use std::convert::Infallible;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Either;
use hyper::Response;
use hyper::body::Frame;
use hyper::header::{self, HeaderValue};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::mpsc;

use super::server::{Body, Peer, TailSource};
use crate::orchestrator::LogChannel;

/// How much of the existing file a new stream starts with (Python's `head`).
pub const HEAD: u64 = 1024;
/// How often the file is looked at (Python's `delay`).
const POLL: Duration = Duration::from_millis(100);
/// The most sent in one chunk, so a huge burst is streamed rather than buffered.
const CHUNK: u64 = 64 * 1024;
/// What Python sends when the file shrinks.
pub const TRUNCATED: &str = "==> File truncated <==\n";

/// A streamed response body fed by the tail task.
pub struct TailBody {
    rx: mpsc::Receiver<Bytes>,
}

impl hyper::body::Body for TailBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.rx.poll_recv(cx).map(|chunk| chunk.map(|b| Ok(Frame::data(b))))
    }
}

/// `<namespec>[/<channel>]` after `/logtail/`, percent-decoded. `None` for a channel other
/// than `stdout`/`stderr` (Python looks up `<channel>_logfile`, finds nothing: 404).
pub fn parse_logtail_path(rest: &str) -> Option<TailSource> {
    let rest = percent_decode(rest.trim_start_matches('/'))?;
    let (spec, channel) = match rest.split_once('/') {
        None => (rest.as_str(), LogChannel::Stdout),
        Some((spec, "stdout")) => (spec, LogChannel::Stdout),
        Some((spec, "stderr")) => (spec, LogChannel::Stderr),
        Some(_) => return None,
    };
    if spec.is_empty() {
        return None;
    }
    Some(TailSource::Process { spec: spec.to_string(), channel })
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            let text = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(text, 16).ok()?);
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// An RFC 1123 date (`Sun, 06 Nov 1994 08:49:37 GMT`) of epoch seconds, for `Last-Modified`.
pub fn http_date(secs: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let weekday = usize::try_from(days.rem_euclid(7)).ok().and_then(|d| DAYS.get(d));
    let month_name = usize::try_from(month - 1).ok().and_then(|m| MONTHS.get(m));
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        weekday.copied().unwrap_or("Thu"),
        month_name.copied().unwrap_or("Jan"),
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Opens `path` and starts following it. `None` when the file cannot be opened (404: the
/// process has not written its log yet, which Python treats as temporary too).
pub async fn stream(
    path: &Path,
    source: &TailSource,
    peer: Option<Peer>,
) -> Option<Response<Body>> {
    let file = tokio::fs::File::open(path).await.ok()?;
    let meta = file.metadata().await.ok()?;
    let start = meta.len().saturating_sub(HEAD);
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(follow(path.to_path_buf(), file, meta.ino(), start, tx, peer));
    let mut resp = Response::new(Either::Right(TailBody { rx }));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain;charset=utf-8"));
    if let Ok(v) = HeaderValue::from_str(&http_date(meta.mtime())) {
        h.insert(header::LAST_MODIFIED, v);
    }
    if matches!(source, TailSource::Process { .. }) {
        h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    }
    Some(resp)
}

/// The stream task: sends what the file gains from `sz` on, until the client goes away.
async fn follow(
    path: PathBuf,
    mut file: tokio::fs::File,
    mut ino: u64,
    mut sz: u64,
    tx: mpsc::Sender<Bytes>,
    peer: Option<Peer>,
) {
    loop {
        if peer.as_deref().is_some_and(peer_gone) {
            return;
        }
        // Rotation: the path now names another file; start over on it.
        if let Ok(m) = tokio::fs::metadata(&path).await
            && m.ino() != ino
            && let Ok(f) = tokio::fs::File::open(&path).await
        {
            file = f;
            ino = m.ino();
            sz = 0;
        }
        let Ok(newsz) = file.metadata().await.map(|m| m.len()) else { return };
        let mut more = false;
        if newsz < sz {
            sz = 0;
            if tx.send(Bytes::from_static(TRUNCATED.as_bytes())).await.is_err() {
                return;
            }
        } else if newsz > sz {
            let want = (newsz - sz).min(CHUNK);
            let mut buf = Vec::new();
            if file.seek(std::io::SeekFrom::Start(sz)).await.is_err() {
                return;
            }
            match (&mut file).take(want).read_to_end(&mut buf).await {
                Ok(0) | Err(_) => {}
                Ok(n) => {
                    sz += n as u64;
                    more = sz < newsz;
                    if tx.send(Bytes::from(buf)).await.is_err() {
                        return;
                    }
                }
            }
        }
        if !more {
            tokio::select! {
                () = tx.closed() => return,
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }
}

/// True when the client closed its side of the socket (or it failed). A tail client has
/// nothing more to send, so its EOF means it is gone even if hyper has not noticed.
fn peer_gone(fd: &std::os::fd::OwnedFd) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let watch = PollFlags::from_bits_retain(libc::POLLRDHUP);
    let mut fds = [PollFd::new(fd.as_fd(), watch)];
    // Only RDHUP is asked for; the kernel adds HUP/ERR/NVAL on its own, and every one of
    // them means the client is gone. (nix's `revents()` cannot show RDHUP, so the count is
    // what is checked.)
    poll(&mut fds, PollTimeout::ZERO).is_ok_and(|n| n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logtail_paths() {
        let p = |spec: &str, channel| Some(TailSource::Process { spec: spec.into(), channel });
        assert_eq!(parse_logtail_path("web"), p("web", LogChannel::Stdout));
        assert_eq!(parse_logtail_path("web/stderr"), p("web", LogChannel::Stderr));
        assert_eq!(parse_logtail_path("grp:a/stdout"), p("grp:a", LogChannel::Stdout));
        assert_eq!(parse_logtail_path("grp%3Aa"), p("grp:a", LogChannel::Stdout));
        assert_eq!(parse_logtail_path("%C3%A9t%C3%A9"), p("été", LogChannel::Stdout));
        assert_eq!(parse_logtail_path("web/other"), None);
        assert_eq!(parse_logtail_path(""), None);
        assert_eq!(parse_logtail_path("web%zz"), None);
        assert_eq!(parse_logtail_path("%ff"), None);
    }

    #[test]
    fn http_dates_are_rfc1123() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(1_709_210_096), "Thu, 29 Feb 2024 12:34:56 GMT");
        assert_eq!(http_date(-1), "Wed, 31 Dec 1969 23:59:59 GMT");
    }
}
