//! Log reading with Python's offset rules: `readLog`/`readProcess*Log` (`readFile` in
//! `supervisor/options.py`) and `tailProcess*Log` (`tailFile`). The range arithmetic is
//! pure ([`read_range`], [`tail_range`]); [`read_log_file`] and [`tail_log_file`] apply it
//! to a path.
//!
//! Everything returns bytes. Python decodes them as strict UTF-8, so a range with invalid
//! UTF-8 (or a negative offset landing inside a multi-byte character) gives the client an
//! HTTP 500 (Python's `readLog`); callers should decode lossily instead.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

/// Why a `readLog`-style request fails; each maps to a supervisor fault of the same name.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReadError {
    /// The log file does not exist (fault `NO_FILE`, 70). Checked first, as Python does.
    #[error("NO_FILE")]
    NoFile,
    /// A negative length, or a negative offset with a non-zero length (`BAD_ARGUMENTS`, 3).
    #[error("BAD_ARGUMENTS")]
    BadArguments,
    /// The file exists but could not be opened or read (`FAILED`, 30).
    #[error("FAILED")]
    Failed,
}

/// The byte range `[start, end)` that `readFile(offset, length)` returns from a file of
/// `file_len` bytes:
///
/// | offset | length | range |
/// |---|---|---|
/// | ≥ 0 | 0 | offset..EOF (empty past EOF) |
/// | ≥ 0 | > 0 | offset..offset+length, cut at EOF |
/// | ≥ 0 | < 0 | `BadArguments` |
/// | < 0 | 0 | the last `|offset|` bytes (the whole file if smaller) |
/// | < 0 | ≠ 0 | `BadArguments` |
pub fn read_range(file_len: u64, offset: i64, length: i64) -> Result<(u64, u64), ReadError> {
    if offset < 0 {
        if length != 0 {
            return Err(ReadError::BadArguments);
        }
        return Ok((file_len.saturating_sub(offset.unsigned_abs()), file_len));
    }
    if length < 0 {
        return Err(ReadError::BadArguments);
    }
    let start = (offset as u64).min(file_len);
    let end =
        if length == 0 { file_len } else { start.saturating_add(length as u64).min(file_len) };
    Ok((start, end))
}

/// What `tailFile(offset, length)` returns, as a range of a file of `file_len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TailRange {
    /// First byte to send.
    pub start: u64,
    /// One past the last byte to send.
    pub end: u64,
    /// The offset the client should ask for next: always the file size.
    pub new_offset: u64,
    /// True when the file grew past `offset + length` (the client missed bytes).
    pub overflow: bool,
}

/// Python's `tailFile` arithmetic, quirks included (supervisor/options.py): when the
/// file grew past `offset + length` the last `length` bytes are sent with `overflow`; when
/// `offset + length` reaches past EOF the last `min(length, size)` bytes are sent, even if
/// they start before `offset`; a negative length sends nothing.
pub fn tail_range(file_len: u64, offset: i64, length: i64) -> TailRange {
    // Python integers do not overflow; i128 holds every i64 sum and difference.
    let sz = i128::from(file_len);
    let mut offset = i128::from(offset);
    let mut length = i128::from(length);
    let mut overflow = false;
    if sz > offset + length {
        overflow = true;
        offset = sz - 1;
    }
    if offset + length > sz {
        if offset > sz - 1 {
            length = 0;
        }
        offset = sz - length;
    }
    let offset = offset.max(0);
    let length = length.max(0);
    let start = offset.min(sz);
    let end = (offset + length).min(sz);
    // Both are within 0..=sz, which came from a u64.
    let to_u64 = |v: i128| u64::try_from(v).unwrap_or(file_len);
    TailRange { start: to_u64(start), end: to_u64(end.max(start)), new_offset: file_len, overflow }
}

/// `readLog`/`readProcess*Log` on `path`: the bytes [`read_range`] selects.
/// A missing file is `NoFile`; a file that is not a regular file (`/dev/stdout`) is
/// `Failed` (Python's seek fails there, and reading a tty or FIFO would block).
pub fn read_log_file(path: &Path, offset: i64, length: i64) -> Result<Vec<u8>, ReadError> {
    if !path.exists() {
        return Err(ReadError::NoFile);
    }
    let mut file = File::open(path).map_err(|_| ReadError::Failed)?;
    let len = regular_len(&file).ok_or(ReadError::Failed)?;
    let (start, end) = read_range(len, offset, length)?;
    read_span(&mut file, start, end).map_err(|_| ReadError::Failed)
}

/// What `tailProcess*Log` answers: `[data, new_offset, overflow]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tail {
    /// The selected bytes (the caller decodes them).
    pub data: Vec<u8>,
    /// The offset for the next call.
    pub new_offset: i64,
    /// True when bytes were skipped.
    pub overflow: bool,
}

/// `tailProcess*Log` on `path`. A missing file gives `('', 0, false)` (the RPC layer's
/// `os.path.exists` check); a file that cannot be read gives `('', offset, false)`, as
/// Python's `tailFile` does when `open` fails.
pub fn tail_log_file(path: &Path, offset: i64, length: i64) -> Tail {
    let empty = |new_offset| Tail { data: Vec::new(), new_offset, overflow: false };
    if !path.exists() {
        return empty(0);
    }
    let Ok(mut file) = File::open(path) else { return empty(offset) };
    let Some(len) = regular_len(&file) else { return empty(offset) };
    let r = tail_range(len, offset, length);
    match read_span(&mut file, r.start, r.end) {
        Ok(data) => Tail {
            data,
            new_offset: i64::try_from(r.new_offset).unwrap_or(i64::MAX),
            overflow: r.overflow,
        },
        Err(_) => empty(offset),
    }
}

fn regular_len(file: &File) -> Option<u64> {
    let meta = file.metadata().ok()?;
    meta.is_file().then_some(meta.len())
}

/// Reads `[start, end)`; a file that shrank meanwhile gives fewer bytes, as Python's read.
fn read_span(file: &mut File, start: u64, end: u64) -> io::Result<Vec<u8>> {
    let want = end.saturating_sub(start);
    let mut data = Vec::with_capacity(usize::try_from(want).unwrap_or(0).min(1 << 20));
    if want > 0 {
        file.seek(SeekFrom::Start(start))?;
        file.take(want).read_to_end(&mut data)?;
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEN: &[u8] = b"0123456789";

    fn read(offset: i64, length: i64) -> Result<&'static [u8], ReadError> {
        read_range(10, offset, length).map(|(s, e)| &TEN[s as usize..e as usize])
    }

    #[test]
    fn read_range_table() {
        assert_eq!(read(0, 0), Ok(&b"0123456789"[..]));
        assert_eq!(read(3, 0), Ok(&b"3456789"[..]));
        assert_eq!(read(10, 0), Ok(&b""[..]));
        assert_eq!(read(25, 0), Ok(&b""[..]));
        assert_eq!(read(2, 3), Ok(&b"234"[..]));
        assert_eq!(read(8, 5), Ok(&b"89"[..]));
        assert_eq!(read(12, 5), Ok(&b""[..]));
        assert_eq!(read(0, -1), Err(ReadError::BadArguments));
        assert_eq!(read(-3, 0), Ok(&b"789"[..]));
        assert_eq!(read(-30, 0), Ok(&b"0123456789"[..]));
        assert_eq!(read(-3, 2), Err(ReadError::BadArguments));
        assert_eq!(read(-3, -2), Err(ReadError::BadArguments));
        assert_eq!(read_range(0, i64::MIN, 0), Ok((0, 0)));
        assert_eq!(read_range(5, i64::MAX, i64::MAX), Ok((5, 5)));
    }

    fn tail(offset: i64, length: i64) -> (&'static [u8], u64, bool) {
        let r = tail_range(10, offset, length);
        (&TEN[r.start as usize..r.end as usize], r.new_offset, r.overflow)
    }

    #[test]
    fn tail_range_matches_python_on_a_ten_byte_file() {
        // Checked against 4.3.0.
        assert_eq!(tail(0, 5), (&b"56789"[..], 10, true));
        assert_eq!(tail(0, 20), (&b"0123456789"[..], 10, false));
        assert_eq!(tail(5, 20), (&b"0123456789"[..], 10, false));
        assert_eq!(tail(8, 3), (&b"789"[..], 10, false));
        assert_eq!(tail(10, 5), (&b""[..], 10, false));
        assert_eq!(tail(-3, 5), (&b"56789"[..], 10, true));
        assert_eq!(tail(3, -2), (&b""[..], 10, true));
        assert_eq!(tail(5, 5), (&b"56789"[..], 10, false));
    }

    #[test]
    fn tail_range_edges() {
        let r = tail_range(0, 0, 30);
        assert_eq!((r.start, r.end, r.new_offset, r.overflow), (0, 0, 0, false));
        let r = tail_range(10, i64::MAX, i64::MAX);
        assert_eq!((r.start, r.end, r.overflow), (10, 10, false));
        let r = tail_range(10, i64::MIN, i64::MIN);
        assert_eq!((r.start, r.end, r.overflow), (9, 9, true));
    }

    #[test]
    fn file_reads() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.log");
        assert_eq!(read_log_file(&p, 0, 0), Err(ReadError::NoFile));
        assert_eq!(read_log_file(&p, -1, 5), Err(ReadError::NoFile), "NO_FILE wins over args");
        assert_eq!(tail_log_file(&p, 7, 5), Tail { data: vec![], new_offset: 0, overflow: false });
        std::fs::write(&p, b"x\xd8\x98yz").unwrap();
        assert_eq!(read_log_file(&p, -3, 0).unwrap(), b"\x98yz");
        assert_eq!(read_log_file(&p, 1, 2).unwrap(), b"\xd8\x98");
        assert_eq!(read_log_file(&p, 1, -2), Err(ReadError::BadArguments));
        let t = tail_log_file(&p, 0, 2);
        assert_eq!(t, Tail { data: b"yz".to_vec(), new_offset: 5, overflow: true });
        assert_eq!(read_log_file(Path::new("/dev/null"), 0, 0), Err(ReadError::Failed));
        assert_eq!(tail_log_file(Path::new("/dev/null"), 4, 1).new_offset, 4);
    }
}
