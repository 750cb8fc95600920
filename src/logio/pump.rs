//! The output pump: one async task per child pipe (stdout, stderr) that drains it into the
//! channel's log writer until EOF, then reports.
//!
//! Hot path (no capture, no `strip_ansi`, no hook): one 64 KiB read, one `write` of the
//! whole chunk, no per-byte or per-line work and no allocation. Child output is bytes: no
//! newline is required and invalid UTF-8 is written unchanged (Python writes each chunk
//! as is, too, as Python's dispatcher does).
//!
//! Writes are plain blocking `write(2)`s on the tokio worker: a regular file write lands in
//! the page cache in microseconds. A special file (`/dev/stdout` feeding a container log
//! driver, a FIFO) can block on a slow reader, so those writes run under `block_in_place`
//! on the multi-thread runtime, which moves the worker's other tasks (the orchestrator
//! among them) elsewhere. The pump never sends to the orchestrator; events and main-log
//! lines go through the [`OutputHook`], whose implementation must not await either.
//!
//! Pipes held open by a grandchild never reach EOF: the runner decides how long to wait
//! and may drop the task; the writer is shared, so nothing already read is lost.

use std::io;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::runtime::{Handle, RuntimeFlavor};

use super::RotatingWriter;
use super::ansi;
use super::capture::{CaptureParser, Piece};

/// One read's worth: Python reads up to 128 KiB; the default pipe buffer is 64 KiB, so a
/// full pipe drains in one read. Only the touched pages of it become resident.
const READ_BUF: usize = 64 * 1024;

/// A child log writer shared by its pump (which writes) and the control plane (which
/// reopens it on SIGUSR2 and clears it for `clearProcessLogs`). The lock is uncontended
/// except during those rare calls.
#[derive(Debug, Clone)]
pub struct SharedWriter(Arc<Mutex<RotatingWriter>>);

impl SharedWriter {
    /// Shares `writer`.
    pub fn new(writer: RotatingWriter) -> SharedWriter {
        SharedWriter(Arc::new(Mutex::new(writer)))
    }

    /// Locks the writer. A poisoned lock (a panic while writing) still holds a usable file.
    pub fn lock(&self) -> MutexGuard<'_, RotatingWriter> {
        self.0.lock().unwrap_or_else(|poison| poison.into_inner())
    }

    /// SIGUSR2: reopen by name.
    pub fn reopen(&self) -> io::Result<()> {
        self.lock().reopen()
    }

    /// `clearProcessLogs`: remove the current file and reopen it empty.
    pub fn clear(&self) -> io::Result<()> {
        self.lock().clear()
    }
}

/// What a pump does besides writing the log file. Calls happen on the pump's task, in
/// stream order; implementations must be quick and must not block (use `try_send`).
pub trait OutputHook: Send {
    /// A chunk of output that went to the child log (after `strip_ansi`): the place for
    /// PROCESS_LOG events (`*_events_enabled`; Python sends one event per chunk, not per
    /// line) and the DEBG `'name' stdout output:` main-log line.
    fn on_output(&mut self, data: &[u8]);

    /// Output inside a capture section (after `strip_ansi`): not in the child log, but
    /// Python still sends it as PROCESS_LOG and DEBG, so by default it is `on_output`.
    fn on_captured(&mut self, data: &[u8]) {
        self.on_output(data);
    }

    /// A capture section ended: the PROCESS_COMMUNICATION_STDOUT/STDERR payload.
    fn on_communication(&mut self, payload: Vec<u8>);
}

/// Per-channel settings that change what the pump does with each chunk.
#[derive(Debug, Clone, Copy, Default)]
pub struct PumpOptions {
    /// `strip_ansi` (`-t`): remove ANSI escapes before logging.
    pub strip_ansi: bool,
    /// `*_capture_maxbytes`; 0 turns capture mode off.
    pub capture_maxbytes: usize,
}

/// How a pump ended; the runner awaits it to know that output is drained.
#[derive(Debug, Default)]
pub struct PumpReport {
    /// Bytes read from the pipe.
    pub bytes_read: u64,
    /// Chunks that could not be written (disk full, …); the pump kept draining anyway so
    /// the child never blocks on a full pipe.
    pub write_errors: u64,
    /// The last write error, for one daemon-log line.
    pub last_write_error: Option<io::Error>,
    /// Set if the pipe failed with something other than EOF (or was not a pipe).
    pub read_error: Option<io::Error>,
}

/// Drains `pipe` (the read end of a child's stdout or stderr) into `writer` (None for
/// `NONE`) until EOF, applying `opts` and calling `hook`. Spawn it and await its
/// `JoinHandle` to learn that the output is drained.
pub async fn run(
    pipe: OwnedFd,
    writer: Option<SharedWriter>,
    opts: PumpOptions,
    hook: Option<Box<dyn OutputHook>>,
) -> PumpReport {
    let mut report = PumpReport::default();
    // Checks that this is a pipe and makes it non-blocking.
    let rx = match pipe::Receiver::from_owned_fd(pipe) {
        Ok(rx) => rx,
        Err(e) => {
            report.read_error = Some(e);
            return report;
        }
    };
    let can_block_in_place =
        Handle::try_current().is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread);
    let mut sink = Sink {
        writer,
        hook,
        strip_ansi: opts.strip_ansi,
        can_block_in_place,
        stripped: Vec::new(),
        report,
    };
    let mut capture = (opts.capture_maxbytes > 0)
        .then(|| CaptureParser::new(opts.capture_maxbytes, opts.strip_ansi));
    // Capacity, not zeroed memory: an idle process's pump then costs no resident pages
    // (a zero-filled 64 KiB per pump was most of the daemon's RSS with 100 programs).
    let mut buf: Vec<u8> = Vec::with_capacity(READ_BUF);
    let mut rx = rx;
    loop {
        buf.clear();
        // `read_buf` clears readiness after a short read, so the next wait sleeps instead of
        // failing with EAGAIN; it takes part in tokio's cooperative budget, so a child that
        // never stops writing cannot starve the other tasks on this worker.
        let n = match rx.read_buf(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                sink.report.read_error = Some(e);
                break;
            }
        };
        sink.report.bytes_read += n as u64;
        let chunk = &buf[..n];
        match &mut capture {
            None => sink.output(chunk),
            Some(parser) => parser.feed(chunk, &mut |piece| sink.piece(piece)),
        }
    }
    if let Some(parser) = &mut capture {
        parser.finish(&mut |piece| sink.piece(piece));
    }
    sink.report
}

/// The pump's output side, separate from the capture parser so both can be borrowed.
struct Sink {
    writer: Option<SharedWriter>,
    hook: Option<Box<dyn OutputHook>>,
    strip_ansi: bool,
    can_block_in_place: bool,
    /// Reused buffer for `strip_ansi` output.
    stripped: Vec<u8>,
    report: PumpReport,
}

impl Sink {
    fn piece(&mut self, piece: Piece<'_>) {
        match piece {
            Piece::Output(data) => self.output(data),
            Piece::Captured(data) => {
                let data = strip_into(self.strip_ansi, &mut self.stripped, data);
                if let Some(hook) = &mut self.hook {
                    hook.on_captured(data);
                }
            }
            Piece::Communication(payload) => {
                if let Some(hook) = &mut self.hook {
                    hook.on_communication(payload);
                }
            }
        }
    }

    fn output(&mut self, data: &[u8]) {
        let data = strip_into(self.strip_ansi, &mut self.stripped, data);
        if data.is_empty() {
            return;
        }
        if let Some(writer) = &self.writer {
            let mut w = writer.lock();
            let res = if !w.is_regular() && self.can_block_in_place {
                tokio::task::block_in_place(|| w.write_all(data))
            } else {
                w.write_all(data)
            };
            if let Err(e) = res {
                self.report.write_errors += 1;
                self.report.last_write_error = Some(e);
            }
        }
        if let Some(hook) = &mut self.hook {
            hook.on_output(data);
        }
    }
}

/// `data` without ANSI escapes when `strip` is on, built in `buf`; `data` itself when
/// there is nothing to strip (the common case costs one scan, no copy).
fn strip_into<'a>(strip: bool, buf: &'a mut Vec<u8>, data: &'a [u8]) -> &'a [u8] {
    if strip && ansi::has_escape(data) {
        buf.clear();
        ansi::strip_escapes(data, buf);
        buf
    } else {
        data
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logio::rotate::read_rotated;
    use std::io::Write;
    use std::path::Path;
    use std::sync::mpsc;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
    }

    /// Writes `chunks` into a fresh pipe from a thread and pumps it to completion.
    fn pump_chunks(
        chunks: Vec<Vec<u8>>,
        writer: Option<SharedWriter>,
        opts: PumpOptions,
        hook: Option<Box<dyn OutputHook>>,
    ) -> PumpReport {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let feeder = std::thread::spawn(move || {
            let mut w = std::fs::File::from(w);
            for c in chunks {
                w.write_all(&c).unwrap();
            }
        });
        let report =
            runtime().block_on(async { tokio::spawn(run(r, writer, opts, hook)).await.unwrap() });
        feeder.join().unwrap();
        report
    }

    fn shared(path: &Path, maxbytes: u64, backups: u32) -> SharedWriter {
        SharedWriter::new(RotatingWriter::open(path, maxbytes, backups).unwrap())
    }

    /// Records hook calls in order.
    #[derive(Debug, PartialEq, Eq)]
    enum Call {
        Out(Vec<u8>),
        Cap(Vec<u8>),
        Comm(Vec<u8>),
    }
    struct Recorder(mpsc::Sender<Call>);
    impl OutputHook for Recorder {
        fn on_output(&mut self, data: &[u8]) {
            self.0.send(Call::Out(data.to_vec())).unwrap();
        }
        fn on_captured(&mut self, data: &[u8]) {
            self.0.send(Call::Cap(data.to_vec())).unwrap();
        }
        fn on_communication(&mut self, payload: Vec<u8>) {
            self.0.send(Call::Comm(payload)).unwrap();
        }
    }

    /// Merges adjacent calls of the same kind (read boundaries are arbitrary).
    fn merged(rx: mpsc::Receiver<Call>) -> Vec<Call> {
        let mut out: Vec<Call> = Vec::new();
        for c in rx.try_iter() {
            match (out.last_mut(), c) {
                (Some(Call::Out(a)), Call::Out(b)) | (Some(Call::Cap(a)), Call::Cap(b)) => {
                    a.extend(b)
                }
                (_, c) => out.push(c),
            }
        }
        out
    }

    #[test]
    fn invalid_utf8_and_no_newline_are_logged_as_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.log");
        let chunks =
            vec![b"no newline".to_vec(), vec![0xff, 0xfe, 0x00, 0xc3], b"\x88 tail".to_vec()];
        let want: Vec<u8> = chunks.concat();
        let report = pump_chunks(chunks, Some(shared(&p, 0, 0)), PumpOptions::default(), None);
        assert!(report.read_error.is_none() && report.write_errors == 0);
        assert_eq!(report.bytes_read, want.len() as u64);
        assert_eq!(std::fs::read(&p).unwrap(), want);
    }

    fn random_stream(total: usize) -> Vec<Vec<u8>> {
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut chunks = Vec::new();
        let mut n = 0;
        while n < total {
            let len = (next() % 9000) as usize + 1;
            chunks.push((0..len).map(|_| next() as u8).collect::<Vec<u8>>());
            n += len;
        }
        chunks
    }

    #[test]
    fn ten_megabytes_across_many_rotations_lose_nothing() {
        let chunks = random_stream(10 * 1024 * 1024);
        let input: Vec<u8> = chunks.concat();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.log");
        // A file holds at most maxbytes + one 64 KiB read, so 400 backups of 32 KiB hold
        // at least 10 MiB in at least 10 MiB / 96 KiB > 100 files: everything is kept.
        let report =
            pump_chunks(chunks, Some(shared(&p, 32 * 1024, 400)), PumpOptions::default(), None);
        assert_eq!(report.bytes_read, input.len() as u64);
        assert!(dir.path().join("big.log.100").exists(), "rotated many times");
        let kept = read_rotated(&p, 400).unwrap();
        assert!(kept == input, "kept {} of {} bytes, or reordered", kept.len(), input.len());
    }

    #[test]
    fn ten_megabytes_with_few_backups_keep_an_exact_tail() {
        let chunks = random_stream(10 * 1024 * 1024);
        let input: Vec<u8> = chunks.concat();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.log");
        pump_chunks(chunks, Some(shared(&p, 100_000, 5)), PumpOptions::default(), None);
        let kept = read_rotated(&p, 5).unwrap();
        assert!(kept.len() >= 5 * 100_000, "each backup holds at least maxbytes");
        assert!(input.ends_with(&kept), "kept bytes are the tail of the input, in order");
        assert!(!dir.path().join("big.log.6").exists());
    }

    #[test]
    fn none_logfile_still_feeds_the_hook() {
        let (tx, rx) = mpsc::channel();
        let report = pump_chunks(
            vec![b"a".to_vec(), b"b\n".to_vec()],
            None,
            PumpOptions::default(),
            Some(Box::new(Recorder(tx))),
        );
        assert_eq!(report.bytes_read, 3);
        assert_eq!(merged(rx), vec![Call::Out(b"ab\n".to_vec())]);
    }

    #[test]
    fn capture_mode_with_tokens_split_across_writes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cap.log");
        let (tx, rx) = mpsc::channel();
        let stream =
            b"before<!--XSUPERVISOR:BEGIN-->\x1b[1mcaptured data<!--XSUPERVISOR:END-->after\n";
        let chunks: Vec<Vec<u8>> = stream.chunks(7).map(<[u8]>::to_vec).collect();
        let opts = PumpOptions { strip_ansi: true, capture_maxbytes: 1000 };
        pump_chunks(chunks, Some(shared(&p, 0, 0)), opts, Some(Box::new(Recorder(tx))));
        assert_eq!(std::fs::read(&p).unwrap(), b"beforeafter\n");
        assert_eq!(
            merged(rx),
            vec![
                Call::Out(b"before".to_vec()),
                Call::Cap(b"captured data".to_vec()),
                Call::Comm(b"captured data".to_vec()),
                Call::Out(b"after\n".to_vec()),
            ]
        );
    }

    #[test]
    fn strip_ansi_without_capture() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ansi.log");
        let opts = PumpOptions { strip_ansi: true, capture_maxbytes: 0 };
        pump_chunks(
            vec![b"\x1b[31mred\x1b[0m\n".to_vec(), b"plain\n".to_vec()],
            Some(shared(&p, 0, 0)),
            opts,
            None,
        );
        assert_eq!(std::fs::read(&p).unwrap(), b"red\nplain\n");
    }

    #[test]
    fn special_file_with_default_maxbytes() {
        let w = shared(Path::new("/dev/null"), 50 * 1024 * 1024, 10);
        let report = pump_chunks(vec![vec![b'x'; 100_000]], Some(w), PumpOptions::default(), None);
        assert_eq!((report.bytes_read, report.write_errors), (100_000, 0));
    }

    #[test]
    fn clear_while_pumping_keeps_later_output() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.log");
        let w = shared(&p, 0, 0);
        let (r, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let rt = runtime();
        let task = rt.spawn(run(r, Some(w.clone()), PumpOptions::default(), None));
        let mut wr = std::fs::File::from(wr);
        wr.write_all(b"old").unwrap();
        // Poll (with a deadline) until the pump has written the first chunk.
        let deadline = crate::sys::clock::now() + std::time::Duration::from_secs(10);
        while std::fs::read(&p).unwrap() != b"old" {
            assert!(crate::sys::clock::now() < deadline, "pump never wrote");
            std::thread::yield_now();
        }
        w.clear().unwrap();
        wr.write_all(b"new").unwrap();
        drop(wr);
        let report = rt.block_on(task).unwrap();
        assert_eq!(report.bytes_read, 6);
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
    }

    #[test]
    fn not_a_pipe_is_a_read_error() {
        let f = std::fs::File::open("/dev/null").unwrap();
        let report = runtime().block_on(run(f.into(), None, PumpOptions::default(), None));
        assert!(report.read_error.is_some());
    }
}
