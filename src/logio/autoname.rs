//! `AUTO` child logs: their names in `childlogdir`, their creation (once per process, by
//! whichever of the preparing thread and the first spawn gets there first: [`CreateOnce`])
//! and their cleanup at startup (`get_autochildlog_name` and `clear_autochildlogdir` in
//! `supervisor/options.py`).
//!
//! Python makes each name with `tempfile.mkstemp(suffix='.log', prefix='<name>-<channel>---
//! <identifier>-', dir=childlogdir)`: 8 random characters from `a-z0-9_`, the file created
//! empty with mode 0600 (seen: `auto-stdout---supervisor-c1rjsf96.log`, `-rw-------`). It
//! does this when the group is created, so the files exist before the first start, and
//! again under new names on every reload.
//!
//! At startup, unless `nocleanup`, every entry of `childlogdir` matching Python's regex
//! `.+?---<identifier>-\S+\.log\.{0,1}\d{0,4}` (anchored at the start only) is removed,
//! backups included. The daemon must call [`clear_autochildlogdir`] only once it knows it
//! is the sole instance (docs/compatibility.md: "A second daemon on the same config does not wipe the running
//! instance").

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Once;

use super::Channel;

/// Python's `tempfile` alphabet for the random part.
const ALPHABET: &[u8; 37] = b"abcdefghijklmnopqrstuvwxyz0123456789_";

/// The file name (without directory) of an AUTO log.
pub fn auto_log_file_name(name: &str, channel: Channel, identifier: &str, random: &str) -> String {
    format!("{name}-{}---{identifier}-{random}.log", channel.as_str())
}

/// Maps 8 random bytes to Python's 8-character random part.
pub fn random_part(bytes: [u8; 8]) -> String {
    bytes.iter().map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()])).collect()
}

/// 8 bytes from the kernel's random source.
pub fn os_random() -> io::Result<[u8; 8]> {
    let mut buf = [0u8; 8];
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // The raw syscall: a static musl build links `getrandom()` as a weak symbol that
        // can resolve to null.
        // SAFETY: `rest` is a valid, writable buffer of `rest.len()` bytes for the call.
        let n = unsafe {
            libc::syscall(libc::SYS_getrandom, rest.as_mut_ptr(), rest.len(), 0 as libc::c_uint)
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        filled += n as usize;
    }
    Ok(buf)
}

/// Creates the AUTO log at `path` (named by the orchestrator) as `mkstemp` would: mode
/// 0600 and exclusive, so a file or symlink planted under that name is never written
/// through; one found there is removed and the create retried once. The file is returned
/// open for appending, so a spawn that creates it can log into it without opening it again.
pub fn create_private(path: &Path) -> io::Result<File> {
    let create = || OpenOptions::new().append(true).create_new(true).mode(0o600).open(path);
    match create() {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            std::fs::remove_file(path)?;
            create()
        }
        other => other,
    }
}

/// A process's AUTO log creation, done exactly once by whichever side needs it first:
/// the thread that creates the logs of new processes in the background, or the process's
/// first spawn. A side that finds the creation under way on the other waits for that one
/// process's files only.
pub struct CreateOnce(Once);

impl Default for CreateOnce {
    fn default() -> CreateOnce {
        CreateOnce(Once::new())
    }
}

impl CreateOnce {
    /// Runs `create` if nobody has yet; returns what it returned, or `None` when the files
    /// were created elsewhere.
    pub fn take<T>(&self, create: impl FnOnce() -> T) -> Option<T> {
        let mut out = None;
        self.0.call_once(|| out = Some(create()));
        out
    }

    /// True until the creation has been done.
    pub fn pending(&self) -> bool {
        !self.0.is_completed()
    }
}

/// A copy is pending only if the original still is: files created once are never
/// created (emptied) again through a copy.
impl Clone for CreateOnce {
    fn clone(&self) -> CreateOnce {
        let copy = CreateOnce::default();
        if !self.pending() {
            copy.0.call_once(|| {});
        }
        copy
    }
}

impl std::fmt::Debug for CreateOnce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.pending() { "pending" } else { "done" })
    }
}

/// True if Python's cleanup regex matches `file_name`: at least one character, then
/// `---<identifier>-`, then a run of non-space characters containing `.log` after its
/// first character. (Python interpolates the identifier into the regex unescaped; here it
/// is taken literally, which differs only for identifiers with regex metacharacters.)
pub fn is_auto_log_name(file_name: &str, identifier: &str) -> bool {
    let marker = format!("---{identifier}-");
    let mut from = 0;
    while let Some(found) = file_name.get(from..).and_then(|s| s.find(&marker)) {
        let at = from + found;
        // `.+?` is at least one character and never a newline.
        let prefix_ok = at >= 1 && !file_name[..at].contains('\n');
        if prefix_ok {
            let rest = &file_name[at + marker.len()..];
            let run_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            // `\S+\.log`: `.log` inside the non-space run, after at least one character.
            if rest[..run_end]
                .char_indices()
                .skip(1)
                .any(|(i, _)| rest[i..run_end].starts_with(".log"))
            {
                return true;
            }
        }
        from = at + 1;
    }
    false
}

/// Removes every AUTO log (and backup) of `identifier` from `childlogdir`. Returns the
/// WARN messages Python logs, word for word: `Could not clear childlog dir` when the
/// directory cannot be listed, `Failed to clean up '<path>'` per file that resists.
pub fn clear_autochildlogdir(childlogdir: &Path, identifier: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(childlogdir) else {
        return vec!["Could not clear childlog dir".to_string()];
    };
    let mut warnings = Vec::new();
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        if is_auto_log_name(&file_name.to_string_lossy(), identifier) {
            let path = childlogdir.join(&file_name);
            if std::fs::remove_file(&path).is_err() {
                warnings.push(format!(
                    "Failed to clean up {}",
                    crate::pytext::repr(&path.to_string_lossy())
                ));
            }
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_pythons_pattern() {
        assert_eq!(
            auto_log_file_name("multi_00", Channel::Stdout, "supervisor", "r__wc0z5"),
            "multi_00-stdout---supervisor-r__wc0z5.log"
        );
        assert_eq!(random_part([0, 25, 26, 35, 36, 37, 255, 74]), "az09_a7a");
    }

    #[test]
    fn cleanup_regex_agrees_with_python() {
        // Each case was run through Python's `re.match` with identifier `supervisor`.
        let cases = [
            ("a-stdout---supervisor-abc.log", true),
            ("a-stdout---supervisor-abc.log.3", true),
            ("---supervisor-x.log", false),
            ("a---supervisor-.log", false),
            ("a---supervisor-x y.log", false),
            ("a b---supervisor-x.log", true),
            ("a---supervisor-x.logfoo", true),
            ("a---supervisor-x.lo", false),
            ("supervisord.log", false),
            ("a---supervisor-..log", true),
            ("a---other-x.log", false),
            ("x---supervisor-a b---supervisor-c.log", true),
            ("----supervisor-x.log", true),
        ];
        for (name, want) in cases {
            assert_eq!(is_auto_log_name(name, "supervisor"), want, "{name}");
        }
    }

    #[test]
    fn clear_removes_only_this_identifiers_auto_logs() {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "w-stdout---sv-abcdefgh.log",
            "w-stdout---sv-abcdefgh.log.1",
            "w-stdout---other-abcdefgh.log",
            "keep.log",
        ] {
            std::fs::write(dir.path().join(f), b"x").unwrap();
        }
        std::fs::create_dir(dir.path().join("d---sv-x.log")).unwrap();
        let warnings = clear_autochildlogdir(dir.path(), "sv");
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["d---sv-x.log", "keep.log", "w-stdout---other-abcdefgh.log"]);
        assert_eq!(
            warnings,
            [format!("Failed to clean up '{}'", dir.path().join("d---sv-x.log").display())]
        );
        assert_eq!(
            clear_autochildlogdir(&dir.path().join("missing"), "sv"),
            ["Could not clear childlog dir"]
        );
    }

    #[test]
    fn create_private_never_writes_through_a_planted_symlink() {
        use std::io::Write;
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, b"keep").unwrap();
        let path = dir.path().join("a-stdout---sv-abcdefgh.log");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let mut file = create_private(&path).unwrap();
        file.write_all(b"x").unwrap();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_file());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read(&path).unwrap(), b"x");
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
    }

    #[test]
    fn create_once_runs_once_whoever_asks() {
        let once = CreateOnce::default();
        assert!(once.pending());
        assert!(once.clone().pending());
        assert_eq!(once.take(|| 1), Some(1));
        assert_eq!(once.take(|| 2), None);
        assert!(!once.pending() && !once.clone().pending());
        // Two sides at once: exactly one creates, and neither returns before it is done.
        for _ in 0..100 {
            let once = std::sync::Arc::new(CreateOnce::default());
            let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let side =
                |once: std::sync::Arc<CreateOnce>,
                 done: std::sync::Arc<std::sync::atomic::AtomicUsize>| {
                    move || {
                        let ran =
                            once.take(|| done.fetch_add(1, std::sync::atomic::Ordering::SeqCst));
                        assert_eq!(done.load(std::sync::atomic::Ordering::SeqCst), 1);
                        ran.is_some()
                    }
                };
            let other = std::thread::spawn(side(once.clone(), done.clone()));
            let here = side(once, done)();
            assert!(here ^ other.join().unwrap());
        }
    }
}
