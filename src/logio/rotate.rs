//! `RotatingWriter`: an append-only log file that rolls over by size, with Python
//! supervisor 4.3.0's semantics and names (`x.log` → `x.log.1` → `x.log.2` …).
//!
//! Rules, from `supervisor/loggers.py` (`RotatingFileHandler`) and checked by running
//! `/tmp/ref/bin/supervisord` with `stdout_logfile_maxbytes=200`, `backups=3` and a child
//! printing 41-byte lines and then two single 300-byte writes:
//! - rollover is checked **after** each write, once the file holds `>= maxbytes`; a write
//!   is never split, so a backup can be larger than `maxbytes` (Python left `chat.log.3` at
//!   205 bytes = five lines, then `chat.log.2` and `chat.log.1` at 300 bytes each, and an
//!   empty `chat.log`);
//! - rollover renames `x.N-1` → `x.N` … `x.1` → `x.2`, `x` → `x.1`, then starts a new,
//!   empty `x`; the oldest backup is overwritten;
//! - `backups == 0` truncates the file instead (its bytes are gone, as in Python);
//! - `maxbytes == 0` never rotates.
//!
//! Deliberate difference (README, "Differences from supervisord"): a file that is not a regular file (`/dev/stdout`, a FIFO, a tty) is never
//! rotated, whatever `maxbytes` says. Python calls `tell()` on it after the first write,
//! gets `Illegal seek`, logs `CRIT uncaptured python exception, closing channel …` and
//! stops logging that channel (seen with `stdout_logfile=/dev/stdout` piped to `cat`).
//!
//! Invariant: with `backups > 0`, concatenating `x.backups`, …, `x.1`, `x` in that order
//! gives the tail of everything written, byte for byte (the tests check it).

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A size-rotating, append-only log file (one per `*_logfile`, and the daemon's `logfile`).
#[derive(Debug)]
pub struct RotatingWriter {
    /// Shared with whoever else names this log (a pump holds one writer per channel, for
    /// the process's whole life, so the writer stays small).
    path: Arc<Path>,
    file: File,
    /// Rotate once the file holds this many bytes; 0 means never.
    maxbytes: u64,
    /// How many numbered backups to keep; 0 means truncate on rollover.
    backups: u32,
    /// False for `/dev/stdout`, FIFOs, ttys: never rotated, never seeked, never unlinked.
    regular: bool,
    /// Bytes in the file as far as we know: the size at open plus what we wrote. Checked
    /// against the real position before rotating, so an external truncation (logrotate's
    /// `copytruncate`) does not cause a premature rollover.
    size: u64,
}

impl RotatingWriter {
    /// Opens (creating if needed) `path` for appending. `maxbytes == 0` never rotates.
    pub fn open(path: impl AsRef<Path>, maxbytes: u64, backups: u32) -> io::Result<Self> {
        Self::open_shared(Arc::from(path.as_ref()), maxbytes, backups)
    }

    /// [`Self::open`] for a path held elsewhere too, which the writer then shares.
    pub fn open_shared(path: Arc<Path>, maxbytes: u64, backups: u32) -> io::Result<Self> {
        let (file, regular, size) = open_append(&path, false)?;
        Ok(RotatingWriter { path, file, maxbytes, backups, regular, size })
    }

    /// Writes to `file`, just created empty at `path` and open for appending (an AUTO
    /// log's first spawn), which saves opening it again.
    pub fn from_new(path: Arc<Path>, file: File, maxbytes: u64, backups: u32) -> Self {
        RotatingWriter { path, file, maxbytes, backups, regular: true, size: 0 }
    }

    /// The path this writer was opened with (backups are `path.1`, `path.2`, …).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The descriptor being written.
    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&self.file)
    }

    /// True for regular files; false for special files such as `/dev/stdout`, whose
    /// writes may block on a slow reader (the pump keeps them off the async workers).
    pub fn is_regular(&self) -> bool {
        self.regular
    }

    /// Writes all of `buf`, then rolls over if the file reached `maxbytes`. `Err` means
    /// the bytes were not (all) written. A rollover that fails after a good write (a
    /// directory removed, a full disk) is `Ok(Some(error))`: the bytes are in the file,
    /// which keeps growing until a rollover works.
    pub fn write_all(&mut self, buf: &[u8]) -> io::Result<Option<io::Error>> {
        if buf.is_empty() {
            return Ok(None);
        }
        self.file.write_all(buf)?;
        self.size = self.size.saturating_add(buf.len() as u64);
        if self.regular && self.maxbytes > 0 && self.size >= self.maxbytes {
            // O_APPEND puts the position at end of file after each write, so this is the
            // true size even if someone truncated the file behind our back.
            let rotated = self.file.stream_position().and_then(|size| {
                self.size = size;
                if size >= self.maxbytes { self.roll_over() } else { Ok(()) }
            });
            return Ok(rotated.err());
        }
        Ok(None)
    }

    /// Closes and reopens the file by name (SIGUSR2, after an external rotation).
    pub fn reopen(&mut self) -> io::Result<()> {
        let (file, regular, size) = open_append(&self.path, false)?;
        self.replace_file(file);
        self.regular = regular;
        self.size = size;
        Ok(())
    }

    /// `clearProcessLogs` / `clearLog`: deletes the current file (not the backups) and
    /// reopens it empty, as Python's `FileHandler.remove` + `reopen`. A special file is
    /// never unlinked (Python would remove the `/dev/stdout` symlink when run as root);
    /// it is only reopened.
    pub fn clear(&mut self) -> io::Result<()> {
        self.unlink()?;
        self.reopen()
    }

    /// Removes the file by name but keeps writing to the open (now unlinked) file until
    /// [`reopen`](Self::reopen); the first half of `clear`, for `clearLog`'s ordering.
    /// A missing file is fine; a special file is left alone.
    pub fn unlink(&self) -> io::Result<()> {
        if self.regular { remove_if_exists(&self.path) } else { Ok(()) }
    }

    fn roll_over(&mut self) -> io::Result<()> {
        if self.backups > 0 {
            for i in (1..self.backups).rev() {
                rename_if_exists(&self.numbered(i), &self.numbered(i + 1))?;
            }
            let first = self.numbered(1);
            if !rename_if_exists(&self.path, &first)? {
                // Python's removeAndRename deletes the target before renaming, so a log
                // deleted by a cleanup script leaves no stale `.1` behind.
                remove_if_exists(&first)?;
            }
        }
        // Python reopens with 'wb': a fresh, empty file (truncated when backups == 0).
        let (file, regular, size) = open_append(&self.path, true)?;
        self.replace_file(file);
        self.regular = regular;
        self.size = size;
        Ok(())
    }

    /// Puts `file` in place of the current file under the current descriptor number when
    /// it got a higher one (`dup3`): at a full descriptor table the new file is opened in
    /// the daemon's reserve (`sys::limits`), which must not keep it.
    fn replace_file(&mut self, file: File) {
        use std::os::fd::{AsRawFd, OwnedFd};
        let old = std::mem::replace(&mut self.file, file);
        if self.file.as_raw_fd() > old.as_raw_fd() {
            let mut old = OwnedFd::from(old);
            if nix::unistd::dup3(&self.file, &mut old, nix::fcntl::OFlag::O_CLOEXEC).is_ok() {
                self.file = File::from(old);
            }
        }
    }

    fn numbered(&self, n: u32) -> PathBuf {
        let mut s = self.path.as_os_str().to_os_string();
        s.push(format!(".{n}"));
        PathBuf::from(s)
    }
}

/// Opens for append (creating, mode 0666 & umask as Python's `open(…, 'ab')`); returns the
/// file, whether it is regular, and its current size (0 for special files).
fn open_append(path: &Path, truncate: bool) -> io::Result<(File, bool, u64)> {
    let mut opts = OpenOptions::new();
    // O_NONBLOCK for the open only: a FIFO nobody reads fails with ENXIO instead of
    // blocking the opener for ever (Python hangs there). Writes block as usual.
    opts.append(true).create(true).mode(0o666).custom_flags(libc::O_NONBLOCK);
    let file = opts.open(path)?;
    let flags = nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_GETFL)?;
    let flags = nix::fcntl::OFlag::from_bits_retain(flags) - nix::fcntl::OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_SETFL(flags))?;
    let meta = file.metadata()?;
    let ft = meta.file_type();
    let regular = ft.is_file();
    if truncate && regular {
        file.set_len(0)?;
    }
    // Char devices, FIFOs and sockets are "special": no seek, no rotation, no unlink.
    let size = if regular && !truncate { meta.len() } else { 0 };
    Ok((file, regular, size))
}

/// Renames `from` over `to`; Ok(false) if `from` does not exist (Python ignores ENOENT).
fn rename_if_exists(from: &Path, to: &Path) -> io::Result<bool> {
    match std::fs::rename(from, to) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

fn remove_if_exists(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Reads `path.backups`, …, `path.1`, `path` in order and concatenates them: the bytes a
/// rotating log kept, oldest first. Missing files count as empty. For tests.
#[cfg(test)]
pub(crate) fn read_rotated(path: &Path, backups: u32) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut names: Vec<PathBuf> = (1..=backups)
        .rev()
        .map(|n| {
            let mut s = path.to_path_buf().into_os_string();
            s.push(format!(".{n}"));
            PathBuf::from(s)
        })
        .collect();
    names.push(path.to_path_buf());
    for name in names {
        match std::fs::read(&name) {
            Ok(bytes) => out.extend_from_slice(&bytes),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(dir: &Path, base: &str, backups: u32) -> Vec<Option<u64>> {
        let mut v = vec![std::fs::metadata(dir.join(base)).ok().map(|m| m.len())];
        for n in 1..=backups + 1 {
            v.push(std::fs::metadata(dir.join(format!("{base}.{n}"))).ok().map(|m| m.len()));
        }
        v
    }

    #[test]
    fn python_transcript_lines_then_large_writes() {
        // The oracle run described in the module doc: 40 lines of 41 bytes, then 300 + 300.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("chat.log");
        let mut w = RotatingWriter::open(&p, 200, 3).unwrap();
        for i in 0..40 {
            w.write_all(format!("line-{i:04}-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n").as_bytes())
                .unwrap();
        }
        w.write_all(&[b'0'; 300]).unwrap();
        w.write_all(&[b'1'; 300]).unwrap();
        assert_eq!(
            sizes(dir.path(), "chat.log", 3),
            vec![Some(0), Some(300), Some(300), Some(205), None]
        );
        let three = std::fs::read_to_string(dir.path().join("chat.log.3")).unwrap();
        assert!(
            three.starts_with("line-0035-")
                && three.ends_with("line-0039-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n")
        );
        assert_eq!(std::fs::read(dir.path().join("chat.log.1")).unwrap(), vec![b'1'; 300]);
    }

    #[test]
    fn rolls_over_after_the_write_that_reaches_maxbytes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.log");
        let mut w = RotatingWriter::open(&p, 10, 2).unwrap();
        w.write_all(b"123456789").unwrap();
        assert_eq!(sizes(dir.path(), "x.log", 2), vec![Some(9), None, None, None]);
        w.write_all(b"0").unwrap(); // exactly maxbytes: rolls
        assert_eq!(sizes(dir.path(), "x.log", 2), vec![Some(0), Some(10), None, None]);
        w.write_all(b"abcdefghijklmnop").unwrap(); // larger than maxbytes: not split
        assert_eq!(sizes(dir.path(), "x.log", 2), vec![Some(0), Some(16), Some(10), None]);
        w.write_all(b"0123456789").unwrap(); // the oldest backup falls off
        assert_eq!(sizes(dir.path(), "x.log", 2), vec![Some(0), Some(10), Some(16), None]);
        assert_eq!(std::fs::read(dir.path().join("x.log.2")).unwrap(), b"abcdefghijklmnop");
    }

    #[test]
    fn zero_backups_truncates() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.log");
        let mut w = RotatingWriter::open(&p, 5, 0).unwrap();
        w.write_all(b"abc").unwrap();
        w.write_all(b"defg").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"");
        w.write_all(b"hi").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"hi");
        assert!(!dir.path().join("x.log.1").exists());
    }

    #[test]
    fn zero_maxbytes_never_rotates() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.log");
        let mut w = RotatingWriter::open(&p, 0, 3).unwrap();
        for _ in 0..100 {
            w.write_all(b"0123456789").unwrap();
        }
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 1000);
        assert!(!dir.path().join("x.log.1").exists());
    }

    #[test]
    fn appends_to_an_existing_file_and_counts_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.log");
        std::fs::write(&p, b"12345678").unwrap();
        let mut w = RotatingWriter::open(&p, 10, 1).unwrap();
        w.write_all(b"ab").unwrap();
        assert_eq!(std::fs::read(dir.path().join("x.log.1")).unwrap(), b"12345678ab");
        assert_eq!(std::fs::read(&p).unwrap(), b"");
    }

    #[test]
    fn external_truncation_does_not_rotate_early() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.log");
        let mut w = RotatingWriter::open(&p, 10, 1).unwrap();
        w.write_all(b"123456").unwrap();
        std::fs::OpenOptions::new().write(true).open(&p).unwrap().set_len(0).unwrap();
        w.write_all(b"abcd").unwrap(); // our count says 10, the file holds 4
        assert!(!dir.path().join("x.log.1").exists());
        assert_eq!(std::fs::read(&p).unwrap(), b"abcd");
        w.write_all(b"efghij").unwrap();
        assert_eq!(std::fs::read(dir.path().join("x.log.1")).unwrap(), b"abcdefghij");
    }

    #[test]
    fn deleted_current_file_removes_stale_first_backup() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.log");
        let mut w = RotatingWriter::open(&p, 4, 2).unwrap();
        w.write_all(b"1111").unwrap();
        std::fs::remove_file(&p).unwrap();
        w.write_all(b"2222").unwrap(); // written to the unlinked file, then rolled
        assert!(p.exists());
        assert!(!dir.path().join("x.log.1").exists());
        assert_eq!(std::fs::read(dir.path().join("x.log.2")).unwrap(), b"1111");
    }

    #[test]
    fn clear_removes_current_file_but_keeps_backups() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.log");
        let mut w = RotatingWriter::open(&p, 4, 2).unwrap();
        w.write_all(b"1111").unwrap();
        w.write_all(b"22").unwrap();
        w.clear().unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"");
        assert_eq!(std::fs::read(dir.path().join("x.log.1")).unwrap(), b"1111");
        w.write_all(b"33").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"33");
    }

    #[test]
    fn reopen_follows_the_name_after_an_external_move() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.log");
        let moved = dir.path().join("moved.log");
        let mut w = RotatingWriter::open(&p, 0, 0).unwrap();
        w.write_all(b"before").unwrap();
        std::fs::rename(&p, &moved).unwrap();
        w.write_all(b"-still-old").unwrap();
        w.reopen().unwrap();
        w.write_all(b"after").unwrap();
        assert_eq!(std::fs::read(&moved).unwrap(), b"before-still-old");
        assert_eq!(std::fs::read(&p).unwrap(), b"after");
    }

    #[test]
    fn reopen_and_rollover_keep_the_descriptor_number() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.log");
        let mut w = RotatingWriter::open(&p, 10, 1).unwrap();
        let fd = w.raw_fd();
        w.reopen().unwrap();
        // Other tests' threads open and close descriptors too: never higher is the point.
        assert!(w.raw_fd() <= fd, "{} > {fd}", w.raw_fd());
        let fd = w.raw_fd();
        w.write_all(b"0123456789").unwrap();
        w.write_all(b"after").unwrap();
        assert!(w.raw_fd() <= fd, "{} > {fd}", w.raw_fd());
        assert_eq!(std::fs::read(&p).unwrap(), b"after");
        assert_eq!(std::fs::read(dir.path().join("x.log.1")).unwrap(), b"0123456789");
    }

    #[test]
    fn special_files_are_never_rotated_or_unlinked() {
        let mut w = RotatingWriter::open("/dev/null", 1, 3).unwrap();
        assert!(!w.is_regular());
        for _ in 0..10 {
            w.write_all(b"0123456789").unwrap();
        }
        w.clear().unwrap();
        w.reopen().unwrap();
        assert!(Path::new("/dev/null").exists());
        assert!(!Path::new("/dev/null.1").exists());
    }

    #[test]
    fn fifo_with_default_maxbytes_works() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        // Keep a reader open so the writer's open does not block; read on a thread.
        let reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap();
        let mut w = RotatingWriter::open(&fifo, 50 * 1024 * 1024, 10).unwrap();
        w.write_all(b"to-fifo\n").unwrap();
        let mut buf = [0u8; 16];
        let n = nix::unistd::read(&reader, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"to-fifo\n");
        assert!(!w.is_regular());
    }

    #[test]
    fn many_rotations_lose_and_reorder_nothing() {
        // Deterministic xorshift for chunk sizes and contents.
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for &(maxbytes, backups) in &[(1000u64, 5u32), (1u64, 3u32), (4096, 1), (777, 9)] {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("x.log");
            let mut w = RotatingWriter::open(&p, maxbytes, backups).unwrap();
            let mut input = Vec::new();
            // Track the chunk boundaries of each file to know what is kept.
            let mut files: Vec<Vec<u8>> = vec![Vec::new()];
            for _ in 0..2000 {
                let len = (next() % 600) as usize;
                let chunk: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                w.write_all(&chunk).unwrap();
                input.extend_from_slice(&chunk);
                if let Some(cur) = files.last_mut() {
                    cur.extend_from_slice(&chunk);
                    if cur.len() as u64 >= maxbytes {
                        files.push(Vec::new());
                    }
                }
            }
            let keep = files.len().min(backups as usize + 1);
            let expected: Vec<u8> = files[files.len() - keep..].concat();
            let got = read_rotated(&p, backups).unwrap();
            assert_eq!(got.len(), expected.len(), "maxbytes={maxbytes} backups={backups}");
            assert!(got == expected, "content differs for maxbytes={maxbytes}");
            assert!(input.ends_with(&got));
        }
    }
}
